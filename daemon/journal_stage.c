/* journal_stage.c — the journal commit, behind tr-seq, on tr-journal
 * (journal_stage.h).
 */
#include "journal_stage.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "pool.h"
#include "sequencer.h"
#include "sequencer_steps.h"
#include "tr_err.h"
#include "tr_limits.h"

/* An idle node's rate decays to 0 this often (node.status). */
#define JOURNAL_IDLE_NS (250u * 1000000u)

/* Commits the entries of a group of batches in one transaction; 0 when
 * durable (or nothing to record). */
static int group_commit(tr_sequencer_t *seq, tr_journal_job_t *const *group, size_t n) {
  tr_delta_t *deltas[TR_JOURNAL_QUEUE_MAX];
  size_t k = 0;
  uint64_t last = 0;
  for (size_t i = 0; i < n; i++)
    if (group[i]->delta) {
      deltas[k++] = group[i]->delta;
      if (group[i]->delta->entries_n > 0) last = group[i]->delta->last;
    }
  if (last == 0) return 0;
  uint64_t t0 = tr_clock_ns();
  int rc = seq_journal_commit_deltas(seq, deltas, k);
  uint64_t t1 = tr_clock_ns();
  atomic_fetch_add(&seq->stats.commit_ns, t1 - t0);
  tr_hist_observe(&seq->stats.commit_seconds, &TR_HIST_DURATION, t1 - t0);
  if (rc == 0) atomic_store(&seq->stats.size, last); /* before the receipts */
  return rc;
}

/* A failed group commit: why, for the log, the callers and the batches
 * failed after it until tr-seq has rebuilt its memory. */
static void group_failed(tr_sequencer_t *seq, int rc, size_t txs) {
  tr_journal_stage_t *j = &seq->journal;
  char label[64];
  snprintf(label, sizeof label, "the group commit of %zu txs", txs);
  const char *why = seq_write_failed(seq, rc, label);
  uv_mutex_lock(&j->mu);
  snprintf(j->why, sizeof j->why, "%s", why);
  uv_mutex_unlock(&j->mu);
}

/* A cluster node's batch whose commit failed: the cluster has committed it,
 * so its clients hear it is not written here yet, and tr-seq applies it
 * again once it has rebuilt its memory (the redo list, in log order). */
static void replicated_failed(tr_sequencer_t *seq, tr_journal_job_t *job) {
  tr_journal_stage_t *j = &seq->journal;
  if (job->batch->n > 0) {
    seq_batch_answer_error(job->batch, SEQ_NOT_WRITTEN_HERE);
    seq_batch_done(seq, job->batch);
  } else {
    free(job->batch); /* nothing to answer, and the journal did not grow */
  }
  job->batch = NULL;
  job->next = NULL;
  uv_mutex_lock(&j->mu);
  if (j->redo_tail) j->redo_tail->next = job;
  else j->redo_head = job;
  j->redo_tail = job;
  uv_mutex_unlock(&j->mu);
}

static void journal_main(void *arg) {
  tr_thread_name("tr-journal");
  tr_sequencer_t *seq = arg;
  tr_journal_stage_t *j = &seq->journal;
  uv_mutex_lock(&j->mu);
  for (;;) {
    while (j->head == NULL && !j->stopping) {
      if (uv_cond_timedwait(&j->cond, &j->mu, JOURNAL_IDLE_NS) == UV_ETIMEDOUT && j->head == NULL)
        seq_rate_update(seq, 0); /* an idle node's rate decays to 0 */
    }
    if (j->head == NULL) break; /* stopping, and everything is committed */
    /* The group: every batch queued now, taken under mu (tr-seq appends
     * to the last one's next meanwhile). */
    tr_journal_job_t *group[TR_JOURNAL_QUEUE_MAX];
    size_t n = 0, txs = 0;
    for (tr_journal_job_t *job = j->head; job != NULL && n < TR_JOURNAL_QUEUE_MAX; job = job->next) {
      group[n++] = job;
      txs += job->replicated ? job->replicated_txs : job->batch->n;
    }
    j->busy = true;
    bool earlier_failed = j->failed;
    uv_mutex_unlock(&j->mu);

    int rc = earlier_failed ? TR_EIO : group_commit(seq, group, n);
    if (rc != 0 && !earlier_failed) group_failed(seq, rc, txs);
    char why[600];
    if (rc != 0) {
      uv_mutex_lock(&j->mu);
      if (earlier_failed) snprintf(why, sizeof why, "an earlier batch's commit failed (%s)", j->why);
      else snprintf(why, sizeof why, "%s", j->why);
      uv_mutex_unlock(&j->mu);
    }

    /* Out of the queue and into the writer behind in one step under mu, so
     * tr-seq's lookups find each batch in one place or the other. */
    uint64_t t0 = tr_clock_ns();
    uv_mutex_lock(&j->mu);
    for (size_t i = 0; i < n; i++) {
      if (rc == 0 && group[i]->delta) tr_derived_push(&seq->derived, group[i]->delta);
      else tr_delta_free(group[i]->delta);
      group[i]->delta = NULL;
    }
    if (rc != 0) j->failed = true;
    j->head = group[n - 1]->next;
    if (j->head == NULL) j->tail = NULL;
    j->n -= n;
    uv_cond_broadcast(&j->cond);
    uv_mutex_unlock(&j->mu);
    atomic_fetch_add(&seq->stats.handover_ns, tr_clock_ns() - t0);

    for (size_t i = 0; i < n; i++) { /* the answers, in batch order; the loop owns each batch from here */
      tr_journal_job_t *job = group[i];
      if (rc != 0 && job->replicated) {
        replicated_failed(seq, job);
        continue;
      }
      if (rc != 0) seq_batch_fail(job->batch, why);
      if (job->replicated && job->batch->n == 0) seq_rate_update(seq, job->replicated_txs); /* no client here */
      seq_batch_done(seq, job->batch);
      free(job->replicated);
      free(job);
    }
    uv_mutex_lock(&j->mu);
    j->busy = false;
    uv_cond_broadcast(&j->cond);
  }
  uv_mutex_unlock(&j->mu);
}

int tr_journal_stage_start(tr_sequencer_t *seq) {
  tr_journal_stage_t *j = &seq->journal;
  if (uv_mutex_init(&j->mu) != 0) return TR_ENOMEM;
  if (uv_cond_init(&j->cond) != 0) {
    uv_mutex_destroy(&j->mu);
    return TR_ENOMEM;
  }
  if (uv_thread_create(&j->thread, journal_main, seq) != 0) {
    uv_cond_destroy(&j->cond);
    uv_mutex_destroy(&j->mu);
    return TR_EIO;
  }
  j->started = true;
  return 0;
}

void tr_journal_stage_stop(tr_sequencer_t *seq) {
  tr_journal_stage_t *j = &seq->journal;
  if (!j->started) return;
  uv_mutex_lock(&j->mu);
  j->stopping = true;
  uv_cond_broadcast(&j->cond);
  uv_mutex_unlock(&j->mu);
  uv_thread_join(&j->thread);
  for (tr_journal_job_t *job = j->redo_head, *next; job; job = next) { /* raft's log has them: the next start */
    next = job->next;
    free(job->replicated);
    free(job);
  }
  j->redo_head = j->redo_tail = NULL;
  uv_cond_destroy(&j->cond);
  uv_mutex_destroy(&j->mu);
  j->started = false;
}

void tr_journal_stage_push(tr_sequencer_t *seq, tr_seq_batch_t *b, tr_delta_t *delta, void *replicated,
                           size_t replicated_len, unsigned replicated_txs) {
  tr_journal_stage_t *j = &seq->journal;
  tr_journal_job_t *job;
  while ((job = malloc(sizeof *job)) == NULL) { /* answers are owed: never drop them */
    log_error("seq", "out of memory queueing a batch for the journal; retrying");
    uv_sleep(10);
  }
  *job = (tr_journal_job_t){.batch = b, .delta = delta, .replicated = replicated, .replicated_len = replicated_len,
                            .replicated_txs = replicated_txs};
  uv_mutex_lock(&j->mu);
  if (j->n >= TR_JOURNAL_QUEUE_MAX) {
    uint64_t t0 = tr_clock_ns();
    while (j->n >= TR_JOURNAL_QUEUE_MAX) uv_cond_wait(&j->cond, &j->mu);
    atomic_fetch_add(&j->wait_ns, tr_clock_ns() - t0);
  }
  if (j->tail) j->tail->next = job;
  else j->head = job;
  j->tail = job;
  j->n++;
  uv_cond_broadcast(&j->cond);
  uv_mutex_unlock(&j->mu);
}

void tr_journal_stage_drain(tr_sequencer_t *seq) {
  tr_journal_stage_t *j = &seq->journal;
  uv_mutex_lock(&j->mu);
  while (j->n > 0 || j->busy) uv_cond_wait(&j->cond, &j->mu);
  uv_mutex_unlock(&j->mu);
}

bool tr_journal_stage_failed(tr_sequencer_t *seq) {
  tr_journal_stage_t *j = &seq->journal;
  uv_mutex_lock(&j->mu);
  bool failed = j->failed;
  while (failed && (j->n > 0 || j->busy)) uv_cond_wait(&j->cond, &j->mu); /* those fail too */
  uv_mutex_unlock(&j->mu);
  return failed;
}

void tr_journal_stage_recovered(tr_sequencer_t *seq) {
  tr_journal_stage_t *j = &seq->journal;
  uv_mutex_lock(&j->mu);
  j->failed = false;
  uv_mutex_unlock(&j->mu);
}

tr_journal_job_t *tr_journal_stage_take_redo(tr_sequencer_t *seq) {
  tr_journal_stage_t *j = &seq->journal;
  uv_mutex_lock(&j->mu);
  tr_journal_job_t *redo = j->redo_head;
  j->redo_head = j->redo_tail = NULL;
  uv_mutex_unlock(&j->mu);
  return redo;
}

int tr_journal_stage_entry_get(tr_sequencer_t *seq, uint64_t seq_no, tr_entry_t *e) {
  tr_journal_stage_t *j = &seq->journal;
  int rc = TR_ENOT_FOUND;
  if (!j->started) return rc;
  uv_mutex_lock(&j->mu);
  for (tr_journal_job_t *job = j->head; job && rc == TR_ENOT_FOUND; job = job->next)
    if (job->delta) rc = tr_delta_entry_get(job->delta, seq_no, e);
  uv_mutex_unlock(&j->mu);
  return rc;
}

int tr_journal_stage_receipt_get(tr_sequencer_t *seq, uint64_t seq_no, char **effects_json) {
  tr_journal_stage_t *j = &seq->journal;
  int rc = TR_ENOT_FOUND;
  if (!j->started) return rc;
  uv_mutex_lock(&j->mu);
  for (tr_journal_job_t *job = j->head; job && rc == TR_ENOT_FOUND; job = job->next)
    if (job->delta && job->delta->entries_n > 0 && seq_no >= job->delta->first && seq_no <= job->delta->last)
      rc = tr_delta_receipt_get(job->delta, seq_no, effects_json);
  uv_mutex_unlock(&j->mu);
  return rc;
}
