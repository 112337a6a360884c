/* derived.h — the writer behind the sequencer: derived rows and checkpoints.
 *
 * The sequencer applies txs to the in-memory state, commits only their
 * journal entries, answers, and hands the batch's changes (tr_delta_t) here.
 * This thread (tr-derive), on its own SQLite connection, writes every
 * queued delta in one transaction — accounts, assets, holdings, receipts,
 * account history, distributions, payouts, Merkle nodes — moves the
 * derived mark, adds a checkpoint when one is due (at least every second
 * while the journal grows, PROTOCOL.md §3), commits, then publishes the
 * checkpoint file and tells the loop how far the tables now reach, so
 * queries that wait for a size can run (server.c).  The written entries
 * then go to the lookup tables' writer (lookups.h), a thread of its own.
 *
 * It gathers batches for up to TR_DERIVED_LINGER_MS first, so their rows
 * share pages, but never while a query waits for them (tr_derived_hurry).
 * The queue is bounded in bytes: past TR_DERIVED_QUEUE_BYTES_MAX the
 * sequencer waits, and the intake queues back up to the clients.  Writes are
 * idempotent, so a failed transaction is retried with the same deltas; a
 * database found damaged halts the node's writes (tr_sequencer_halt).
 */
#ifndef TR_DERIVED_H
#define TR_DERIVED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "lookups.h"
#include "mailbox.h"
#include "tr_delta.h"
#include "tr_ledger.h"
#include "tr_store.h"

struct tr_sequencer;

typedef struct {
  atomic_ullong through;              /* every derived row is written up to this seq */
  atomic_ullong writes, write_ns, rows; /* transactions, their time, rows written */
  atomic_ullong queued_deltas, queued_bytes;
  atomic_ullong checkpoints, errors;
  atomic_bool failing;                /* the last write failed; retried every TR_DERIVED_RETRY_MS */
} tr_derived_stats_t;

typedef struct tr_derived {
  uv_mutex_t mu;
  uv_cond_t cond;                     /* work queued, or room made, or stop */
  tr_delta_t *head, *tail;            /* queued; a write in progress takes from head, frees after commit */
  size_t queued_bytes;
  bool stopping, pause;               /* pause: write nothing (tr_derived_drop waits for it) */
  bool unbounded;                     /* the node is stopping: a push no longer waits for room */
  bool busy;                          /* a write is in progress */
  uint64_t oldest_ns;                 /* since when the queue's head has waited (about) */
  atomic_ullong wanted;               /* the size a waiting query needs the tables at (tr_derived_hurry) */
  uv_thread_t thread;
  bool started;
  int final_rc;                       /* the last write at stop */

  tr_store_t *conn;                   /* this thread's own connection */
  bool durable;                       /* its commits fsync (synchronous FULL): set per write */
  tr_lookups_t lookups;               /* the lookup tables' writer, fed what this thread wrote */
  struct tr_sequencer *seq;           /* halted when the database is found damaged */
  tr_mailbox_t *done;                 /* TR_MSG_DERIVED to the loop */
  char chain[TR_CHAIN_ID_CHARS_MAX + 1];
  uint8_t node_sk[64];
  char checkpoint_path[4096];
  uint64_t cp_size, cp_mono_ms;       /* last checkpoint: size, monotonic ms (0: due now) */
  uint64_t last_time;                 /* time of the newest entry written (stored with checkpoints) */
  char why[400];                      /* the last failure, for waiting queries (under mu) */
  tr_derived_stats_t stats;
} tr_derived_t;

/* Opens its connection to db_path and starts the thread.  through: the
 * derived mark now; cp_size: the newest checkpoint published. */
int tr_derived_start(tr_derived_t *w, const char *db_path, const char *checkpoint_path, const char *chain,
                     const uint8_t node_sk[64], uint64_t through, uint64_t cp_size, uint64_t last_time,
                     struct tr_sequencer *seq, tr_mailbox_t *done, char *err, size_t errlen);
/* Loop thread: a query waits for the tables to reach `need`; the writer
 * stops gathering batches (TR_DERIVED_LINGER_MS) and writes now. */
void tr_derived_hurry(tr_derived_t *w, uint64_t need);
/* Sequencer thread: queues d (taken), waiting while the queue is full. */
void tr_derived_push(tr_derived_t *w, tr_delta_t *d);
/* The node is stopping: pushes stop waiting for room (a writer that cannot
 * write, disk full, would otherwise hold the sequencer, and the stop, for ever). */
void tr_derived_unbound(tr_derived_t *w);
/* Sequencer thread: the receipt effects of seq if a queued delta holds it
 * (TR_ENOT_FOUND otherwise: then it is in the store). */
int tr_derived_receipt_get(tr_derived_t *w, uint64_t seq, char **effects_json);
/* Sequencer thread: waits for the write in progress, then drops every
 * queued delta (the state is being rebuilt from the store, which makes
 * them again) and returns the derived mark. */
uint64_t tr_derived_drop(tr_derived_t *w);
/* Any thread: why the last write failed ("" when it did not). */
void tr_derived_failure(tr_derived_t *w, char *out, size_t outlen);
/* Any thread: every table a query reads is written up to this seq (the
 * lower of the derived mark and account history's, lookups.h); and whether
 * either writer is failing. */
static inline uint64_t tr_derived_readable(const tr_derived_t *w) {
  uint64_t history = atomic_load(&w->lookups.stats.history_through);
  uint64_t through = atomic_load(&w->stats.through);
  return !w->started || through < history ? through : history;
}
bool tr_derived_failing(tr_derived_t *w);
/* Writes everything queued and a final checkpoint, joins, closes.
 * Returns 0 or the error of that last write. */
int tr_derived_stop(tr_derived_t *w);

#endif
