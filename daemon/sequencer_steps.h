/* sequencer_steps.h — the steps of the serial section that a single node's
 * loop (sequencer.c) and the cluster's (replica.c) share; private to those
 * two files (and journal_stage.c).  All run on tr-seq, except those the
 * journal stage runs on tr-journal: seq_journal_commit_deltas,
 * seq_batch_fail, seq_batch_answer_error, seq_batch_done, seq_rate_update
 * and seq_write_failed.
 */
#ifndef TR_SEQUENCER_STEPS_H
#define TR_SEQUENCER_STEPS_H

#include "sequencer.h"
#include "tr_batch.h"

/* Milliseconds on the monotonic clock; the wall clock a batch may use. */
uint64_t seq_mono_ms(void);
uint64_t seq_clock_reading(tr_sequencer_t *seq, uint64_t now_mono);

/* One tx over the in-memory state; e (NULL on a follower) gets its answer. */
int seq_apply_one(tr_sequencer_t *seq, tr_elem_t *e, const tr_tx_t *tx, const char *bytes, size_t len,
                  const uint8_t sig[TR_SIG_BYTES], uint64_t clock_ms);
/* A batch (b's elements, or the txs r reads) applied and journalled; 0 when
 * durable, else the state was rebuilt and b's elements answered. */
int seq_batch_commit(tr_sequencer_t *seq, tr_seq_batch_t *b, tr_batch_reader_t *r, uint64_t clock_ms);
int seq_journal_commit(tr_sequencer_t *seq);               /* seq->delta's entries */
int seq_journal_commit_deltas(tr_sequencer_t *seq, tr_delta_t *const *d, size_t n);
tr_seq_batch_t *seq_batch_form(tr_sequencer_t *seq); /* under seq->mu */

/* A cluster node's committed batch (r; b this node's own proposal, or
 * NULL): 0 once it is applied over memory and queued for tr-journal with
 * its raft buffer buf (then the stage's) and tx count.  Otherwise nothing
 * was queued, buf is still the caller's, and the memory must be rebuilt
 * before the batch is applied again. */
int seq_replicated_queue(tr_sequencer_t *seq, tr_seq_batch_t *b, tr_batch_reader_t *r, uint64_t clock_ms,
                         void *buf, size_t len, unsigned txs);

/* Answers. */
#define SEQ_NOT_WRITTEN_HERE "storage error on this node: the tx is committed in the cluster but not yet written " \
                             "here (it will be once the write succeeds); resubmitting the same tx bytes is safe"
void seq_batch_fail(tr_seq_batch_t *b, const char *why);
void seq_batch_answer_error(tr_seq_batch_t *b, const char *message); /* every element, as is */
void seq_batch_refuse_halted(tr_sequencer_t *seq, tr_seq_batch_t *b);
void seq_batch_post(tr_sequencer_t *seq, tr_seq_batch_t *b);  /* sized by the state as it is now */
void seq_batch_done(tr_sequencer_t *seq, tr_seq_batch_t *b);  /* counted, then posted as sized */

/* After a batch: the delta to the writer behind; the state's counters. */
void seq_batch_hand_over(tr_sequencer_t *seq);
void seq_state_counted(tr_sequencer_t *seq);
void seq_rate_update(tr_sequencer_t *seq, size_t n);
/* Failures: the words for the log and the callers; the memory rebuilt. */
const char *seq_write_failed(tr_sequencer_t *seq, int rc, const char *what);
void seq_state_reset(tr_sequencer_t *seq);

/* replica.c */
void tr_replica_main(void *arg);
void tr_replica_events_free(tr_sequencer_t *seq);

#endif
