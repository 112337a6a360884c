/* sequencer.h — the one writer: applies verified txs in arrival order and
 * appends them in group commits.
 *
 * The loop pushes (job, element) pairs in ticket order.  The sequencer
 * thread takes everything ready (up to TR_COMMIT_BATCH_MAX), forms a batch,
 * applies §4 steps 4–8 to each tx in one SQLite transaction, publishes a
 * checkpoint in the same transaction when one is due, commits (one fsync for
 * the whole batch), and only then hands the receipts to the loop.
 *
 * account.history rows are not written with their entries: the writer
 * holds them and writes them sorted, once a second or TR_HISTORY_PENDING_MAX
 * rows, or when an account.history query asks (a flush item in the queue,
 * in arrival order like a tx), so the query sees every entry before it.
 *
 * Replication seam: a batch is self-contained — its txs in order and the
 * clock reading that fixes every entry's time — and applying it is
 * deterministic.  A Raft layer (C-Raft) would replicate that batch between
 * `batch_form` and `batch_apply` below, and apply it on every node.
 */
#ifndef TR_SEQUENCER_H
#define TR_SEQUENCER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "job.h"
#include "mailbox.h"
#include "metrics.h"
#include "tr_ledger.h"
#include "tr_note.h"
#include "tr_store.h"

typedef struct {
  tr_job_t *job;
  tr_elem_t *elem;
} tr_seq_item_t;

typedef struct {
  size_t n;
  tr_seq_item_t items[];
} tr_seq_batch_t;

typedef struct {
  atomic_ullong committed_txs, refused_txs, batches, batch_max, last_batch;
  atomic_ullong apply_ns, commit_ns, size, checkpoints, storage_errors;
  atomic_ullong recent_tx_per_s;        /* txs through the sequencer, recent average */
  atomic_ullong history_through;        /* account.history is written up to this seq */
  atomic_ullong history_pending, history_flushes, history_ns;
  atomic_llong clock_ahead_ms;          /* last wall reading minus the elapsed-time estimate */
  atomic_ullong clock_refused;          /* readings further ahead than clock_skew_max */
  atomic_bool halted;                   /* the database is damaged: no more writes */
  tr_hist_t batch_size, commit_seconds; /* for /metrics (metrics.h) */
} tr_seq_stats_t;

typedef struct tr_sequencer {
  uv_mutex_t mu;
  uv_cond_t cond;
  tr_seq_item_t *ring;
  size_t cap, head, count;
  bool stopping;
  uv_thread_t thread;
  bool started;
  tr_store_t *writer;
  tr_ledger_t ledger;
  uint8_t node_sk[64];
  char checkpoint_path[4096];
  tr_mailbox_t *done;
  uint64_t cp_size, cp_mono_ms;            /* last checkpoint: size, monotonic ms (0: due now) */
  uint64_t clock_skew_max_ms;
  uint64_t clock_ref_wall_ms, clock_ref_mono_ms; /* the last accepted wall reading, and when */
  uint64_t clock_warned_mono_ms;
  atomic_bool halting;                    /* taken by the first tr_sequencer_halt */
  char halt_reason[512];                  /* set before stats.halted */
  int final_write_rc;                     /* the last checkpoint and history rows at stop */
  uint64_t rate_at_ms, rate_txs;          /* sequencer thread only */
  uint64_t history_since_ms;              /* when the oldest pending history row was made; 0: none */
  tr_seq_stats_t stats;
} tr_sequencer_t;

/* Opens the writer, checks the journal against the last checkpoint (refusing
 * a journal that does not extend it), and starts the thread. */
int tr_sequencer_start(tr_sequencer_t *seq, const char *datadir, const uint8_t node_sk[64],
                       tr_mailbox_t *done, unsigned clock_skew_max_s, char *err, size_t errlen);
/* `tranched --check`: opens the journal read-only and runs every check of
 * tr_sequencer_start without writing a byte or starting the thread. */
int tr_sequencer_check(tr_sequencer_t *seq, const char *datadir, const uint8_t node_sk[64], uint64_t *size,
                       char *err, size_t errlen);
/* Loop thread. Returns 0, or -1 when the queue is full (answer -32002).
 * An element with history_flush set is not a tx: the batch that takes it
 * writes the pending history rows. */
int tr_sequencer_push(tr_sequencer_t *seq, tr_job_t *job, tr_elem_t *elem);
size_t tr_sequencer_depth(tr_sequencer_t *seq);
/* Any thread: the database is damaged (a write or a read found it so):
 * from now on writes are refused with `why`; reads go on.  The first call's
 * reason stands; `what` names the work that failed, for the log. */
void tr_sequencer_halt(tr_sequencer_t *seq, const char *what, const char *why);
/* Commits everything queued, writes a final checkpoint, joins, closes.
 * Returns 0, or the error of that last write (logged). */
int tr_sequencer_stop(tr_sequencer_t *seq);

#endif
