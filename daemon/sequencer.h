/* sequencer.h — the one place txs are ordered: applies verified txs in
 * arrival order and makes their entries durable in group commits.
 *
 * The loop pushes (job, element) pairs in ticket order.  The sequencer
 * thread (tr-seq) takes everything ready (up to TR_COMMIT_BATCH_MAX), forms a
 * batch and applies §4 steps 4–8 to each tx over the in-memory state
 * (tr_mem.h: no SQL on this path), then passes it to the journal stage
 * (journal_stage.h, tr-journal), which appends the batch's entries to the
 * journal in one SQLite transaction (one fsync) while tr-seq applies the
 * next batch, and only then hands the receipts to the loop.  What the batch changed (a tr_delta_t) goes to the
 * writer behind it (derived.h), which writes the state tables, account
 * history, receipts, Merkle nodes and checkpoints on its own thread; queries
 * wait until those tables reach the journal size they arrived at (server.c).
 *
 * After a hard stop the state loads from the derived tables and the
 * journal's entries past the derived mark are replayed (tr_mem_replay).
 * After a failed journal commit the memory is rebuilt the same way.
 *
 * Cluster mode (PROTOCOL.md §8, cluster.h): the batch is what is
 * replicated.  The leader forms a batch, encodes it (tr_batch.h: its txs,
 * the clock reading, the head it extends) and proposes it, one at a time;
 * every node — the leader too — applies each committed batch here, in log
 * order, with the same rules, so entry bytes, hashes and Merkle roots are
 * identical everywhere, and passes it to the same journal stage.  Receipts
 * go out when the leader's own batch is durable: after a quorum has it in
 * raft's fsynced log and this node has it in its fsynced journal.
 * Followers answer tx.submit with -32005 not_leader.
 * That loop is replica.c; the steps both loops share, sequencer_steps.h.
 */
#ifndef TR_SEQUENCER_H
#define TR_SEQUENCER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "derived.h"
#include "job.h"
#include "journal_stage.h"
#include "mailbox.h"
#include "metrics.h"
#include "tr_delta.h"
#include "tr_ledger.h"
#include "tr_node.h"
#include "tr_mem.h"
#include "tr_note.h"
#include "tr_store.h"

struct tr_cluster;
struct tr_cluster_event;

typedef struct {
  tr_job_t *job;
  tr_elem_t *elem;
} tr_seq_item_t;

typedef struct tr_seq_batch {
  size_t n;
  uint64_t size_after;                    /* the journal size once applied (replicated batches: n is 0) */
  tr_seq_item_t items[];
} tr_seq_batch_t;

typedef struct {
  atomic_ullong committed_txs, refused_txs, batches, batch_max, last_batch;
  atomic_ullong apply_ns, commit_ns, handover_ns; /* rules over memory; journal commit; queueing the delta */
  atomic_ullong size, storage_errors;   /* size: the journal, durable */
  atomic_ullong recent_tx_per_s;        /* txs through the sequencer, recent average */
  atomic_llong clock_ahead_ms;          /* last wall reading minus the elapsed-time estimate */
  atomic_ullong clock_refused;          /* readings further ahead than clock_skew_max */
  atomic_bool halted;                   /* the database is damaged: no more writes */
  atomic_ullong mem_keys, mem_accounts, mem_assets, mem_holdings; /* the state's size, after each batch */
  tr_hist_t batch_size, commit_seconds; /* for /metrics (metrics.h) */
} tr_seq_stats_t;

typedef struct tr_sequencer {
  uv_mutex_t mu;
  /* Held around every write transaction of the journal and of the writers
   * behind it (derived, lookups): the connections share one database file,
   * and SQLite's own wait for its write lock sleeps in steps of
   * milliseconds. */
  uv_mutex_t write_mu;
  atomic_uint journal_waiting;        /* the journal's commit waits for write_mu: the writers behind yield */
  uv_cond_t cond;
  tr_seq_item_t *ring;
  size_t cap, head, count;
  bool stopping;
  uv_thread_t thread;
  bool started;
  tr_store_t *writer;
  tr_store_t *reader;                     /* tr-seq's lookups while tr-journal writes */
  tr_journal_stage_t journal;             /* the journal commits, behind tr-seq */
  tr_ledger_t ledger;
  uint8_t node_sk[64];
  char checkpoint_path[4096];
  tr_mailbox_t *done;
  uint64_t cp_size;                        /* the checkpoint published at start */
  uint64_t clock_skew_max_ms;
  uint64_t lookup_two_levels_from;        /* config: the lookup writer's (lookups.c) */
  uint64_t clock_ref_wall_ms, clock_ref_mono_ms; /* the last accepted wall reading, and when */
  uint64_t clock_warned_mono_ms;
  atomic_bool halting;                    /* taken by the first tr_sequencer_halt */
  char halt_reason[512];                  /* set before stats.halted */
  uv_mutex_t rate_mu;                     /* tr-journal's answers and tr-seq's own (a cluster node's redo) */
  uint64_t rate_at_ms, rate_txs;          /* under rate_mu */
  tr_mem_t mem;                           /* the state the rules run on (sequencer thread only) */
  tr_delta_t *delta;                      /* what the current batch changes */
  tr_delta_sink_t sink;                   /* mem's rows go to delta */
  uint64_t load_ms;                       /* how long the state took to load at start */
  tr_derived_t derived;                   /* the writer behind */
  tr_seq_stats_t stats;

  /* Cluster mode; cluster is NULL on a single node. */
  struct tr_cluster *cluster;
  uint64_t cluster_id;
  char cluster_rpc[128];                  /* this node's JSON-RPC address, named in the batches it proposes */
  uv_cond_t room;                         /* events_bytes fell (raft's thread waits on it) */
  struct tr_cluster_event *events, *events_tail; /* from tr-raft, in order (under mu) */
  size_t events_bytes;
  bool leading;                           /* tr-seq: leader, barrier applied: it may propose */
  atomic_bool accepting;                  /* the same, for the loop's quick refusal */
  bool cluster_closing;                   /* tr_sequencer_cluster_closing was called (under mu) */
  tr_seq_batch_t *inflight;               /* the proposal awaiting its commit (one at a time) */
  uint64_t inflight_token, next_token;
  tr_tx_t *scratch_tx;                    /* a follower decodes the batch's txs here */
  atomic_ullong replicated_batches, replicated_txs, skipped_batches, apply_retries;
} tr_sequencer_t;

/* Opens the writer, checks the journal against the last checkpoint (refusing
 * a journal that does not extend it), and starts the thread.  Of config:
 * clock_skew_max, lookup_two_levels_from, and cluster_id (0: a single node;
 * else this node's id in a cluster, and it waits for events). */
int tr_sequencer_start(tr_sequencer_t *seq, const char *datadir, const uint8_t node_sk[64],
                       tr_mailbox_t *done, const tr_config_t *config, char *err, size_t errlen);
/* `tranched --check`: opens the journal read-only and runs every check of
 * tr_sequencer_start without writing a byte or starting the thread. */
int tr_sequencer_check(tr_sequencer_t *seq, const char *datadir, const uint8_t node_sk[64], uint64_t *size,
                       char *err, size_t errlen);
/* Cluster mode (tr_sequencer_start with a node id): the cluster's events
 * go to tr_sequencer_cluster_post with seq as ctx; attach the cluster once
 * it runs, and detach it before stopping it. */
void tr_sequencer_cluster_attach(tr_sequencer_t *seq, struct tr_cluster *cluster, const char *rpc);
/* Before tr_cluster_stop: raft's thread never waits for room again, and a
 * batch this node cannot write is left to raft's log for the next start. */
void tr_sequencer_cluster_closing(tr_sequencer_t *seq);
void tr_sequencer_cluster_post(void *seq, struct tr_cluster_event *ev);
/* Loop thread. Returns 0, or -1 when the queue is full (answer -32002). */
int tr_sequencer_push(tr_sequencer_t *seq, tr_job_t *job, tr_elem_t *elem);
size_t tr_sequencer_depth(tr_sequencer_t *seq);
/* Any thread: the database is damaged (a write or a read found it so):
 * from now on writes are refused with `why`; reads go on.  The first call's
 * reason stands; `what` names the work that failed, for the log. */
void tr_sequencer_halt(tr_sequencer_t *seq, const char *what, const char *why);
/* The writers behind (derived.c, lookups.c) around each write transaction:
 * write_mu, released so that a journal commit waiting for it goes first. */
void tr_sequencer_behind_lock(tr_sequencer_t *seq);
void tr_sequencer_behind_unlock(tr_sequencer_t *seq);
/* Commits everything queued, lets the writer behind write its queue and a
 * final checkpoint, joins, closes.  Returns 0, or the error of that last
 * write (logged). */
int tr_sequencer_stop(tr_sequencer_t *seq);

#endif
