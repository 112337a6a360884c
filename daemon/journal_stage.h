/* journal_stage.h — the journal commit on a thread of its own
 * (tr-journal), so that tr-seq applies the rules to batch N+1 while batch N
 * is written and fsynced (issue #13: "rules and hashing, then the SQLite
 * append, then the derived writer").
 *
 * tr-seq applies a batch over the in-memory state, then queues it here with
 * what it changed (a tr_delta_t).  tr-journal takes every batch queued when
 * it comes round (a group) and appends their entries, in order, in one
 * fsynced transaction; then it publishes the durable size, passes the
 * deltas to the writer behind and posts the receipts to the loop, batch by
 * batch.  So receipts still go out only after fsync, and in batch order: a
 * duplicate answered in batch N+1 never goes out before the entry it names
 * (batch N) is durable.  Batches that queue up during one commit share the
 * next: a tx waits for at most the commit under way and its own, as when
 * tr-seq committed each batch itself.
 *
 * While a batch waits here its entries and receipts are not in the store
 * yet: tr-seq looks in the queue first (tr_journal_stage_entry_get,
 * _receipt_get).  A batch leaves the queue only once it is committed and its
 * delta is with the writer behind, so a lookup finds it in one place or the
 * other.
 *
 * A failed commit fails its group and every batch queued after it (their
 * entries extend the ones that failed).  tr-seq sees that before its next
 * batch (tr_journal_stage_failed), waits for the queue to empty and rebuilds
 * its memory from the store, as after a failed commit before.
 *
 * The queue holds at most TR_JOURNAL_QUEUE_MAX batches, those being
 * committed included; past that tr-seq waits, and txs gather in its own
 * queue to make its next batch larger.
 *
 * A cluster node (replica.c) queues the batches raft committed, in log
 * order, each with its raft buffer.  The cluster has committed those, so a
 * failed commit here cannot refuse them: its clients hear that this node
 * has not written the tx yet, and the jobs go to a redo list with their
 * buffers; tr-seq rebuilds its memory and applies them again, on its own
 * connection and retrying, before anything else (tr_journal_stage_take_redo).
 */
#ifndef TR_JOURNAL_STAGE_H
#define TR_JOURNAL_STAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "tr_delta.h"
#include "tr_store.h"

struct tr_sequencer;
struct tr_seq_batch;

typedef struct tr_journal_job {
  struct tr_journal_job *next;
  struct tr_seq_batch *batch; /* its answers, already made by the rules (a cluster node's may hold none) */
  tr_delta_t *delta;          /* what it changed; NULL when it changed nothing */
  void *replicated;           /* a cluster node: the raft buffer the batch came in, kept until durable */
  size_t replicated_len;
  unsigned replicated_txs;
} tr_journal_job_t;

typedef struct {
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cond;               /* a job queued, room made, the queue emptied, stop */
  tr_journal_job_t *head, *tail; /* in batch order; from the head, the group being committed */
  size_t n;
  bool failed;                  /* a commit failed: jobs fail until tr-seq has rebuilt */
  char why[512];                /* that failure, for the batches failed after it */
  bool busy;                    /* tr-journal holds a group, until its answers are posted */
  tr_journal_job_t *redo_head, *redo_tail; /* a cluster node's failed batches, to apply again */
  bool stopping, started;
  atomic_ullong wait_ns;        /* tr-seq waiting for room */
} tr_journal_stage_t;

/* Before tr-seq starts; and by tr-seq as it ends (the queue is committed
 * first). */
int tr_journal_stage_start(struct tr_sequencer *seq);
void tr_journal_stage_stop(struct tr_sequencer *seq);

/* tr-seq: queues an applied batch; waits while the queue is full.  A
 * cluster node passes the raft buffer it came in (owned from here on) and
 * its tx count; a single node NULL, 0, 0. */
void tr_journal_stage_push(struct tr_sequencer *seq, struct tr_seq_batch *b, tr_delta_t *delta, void *replicated,
                           size_t replicated_len, unsigned replicated_txs);
/* tr-seq: waits until everything queued is committed (or failed) and
 * answered. */
void tr_journal_stage_drain(struct tr_sequencer *seq);
/* tr-seq: true when a commit failed; the queue is then empty and the caller
 * must rebuild its memory, then call tr_journal_stage_recovered. */
bool tr_journal_stage_failed(struct tr_sequencer *seq);
void tr_journal_stage_recovered(struct tr_sequencer *seq);
/* tr-seq, after tr_journal_stage_failed and the rebuild: a cluster node's
 * failed batches in log order (each job's replicated buffer is the caller's
 * to free, with the job), or NULL. */
tr_journal_job_t *tr_journal_stage_take_redo(struct tr_sequencer *seq);

/* tr-seq: an entry or receipt of a queued batch, or TR_ENOT_FOUND. */
int tr_journal_stage_entry_get(struct tr_sequencer *seq, uint64_t seq_no, tr_entry_t *e);
int tr_journal_stage_receipt_get(struct tr_sequencer *seq, uint64_t seq_no, char **effects_json);

#endif
