/* replica.c — the sequencer in cluster mode (sequencer.h, cluster.h): its
 * thread (tr-seq) takes raft's events in log order and applies every
 * committed batch with the same steps as a single node (sequencer_steps.h),
 * then hands it to the journal stage (journal_stage.h), which commits it on
 * tr-journal while the next one applies; while this node leads it also
 * proposes its clients' txs, one batch at a time, and its own batch is
 * answered once durable.  Snapshots and their installs are made here, where
 * the state is, once the stage is idle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "log.h"
#include "pool.h"
#include "sequencer.h"
#include "sequencer_steps.h"
#include "tr_batch.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_limits.h"

/* tr-raft: events arrive in log order; a committed batch waits while the
 * queue holds TR_CLUSTER_APPLY_QUEUE_BYTES_MAX, so memory stays bounded on
 * a follower slower than its leader. */
void tr_sequencer_cluster_post(void *ctx, tr_cluster_event_t *ev) {
  tr_sequencer_t *seq = ctx;
  uv_mutex_lock(&seq->mu);
  if (ev->kind == TR_CLUSTER_COMMITTED)
    while (seq->events_bytes > TR_CLUSTER_APPLY_QUEUE_BYTES_MAX && !seq->stopping && !seq->cluster_closing)
      uv_cond_wait(&seq->room, &seq->mu);
  ev->next = NULL;
  if (seq->events_tail) seq->events_tail->next = ev;
  else seq->events = ev;
  seq->events_tail = ev;
  if (ev->kind == TR_CLUSTER_COMMITTED) seq->events_bytes += ev->len;
  uv_cond_signal(&seq->cond);
  uv_mutex_unlock(&seq->mu);
}

void tr_sequencer_cluster_closing(tr_sequencer_t *seq) {
  uv_mutex_lock(&seq->mu);
  seq->cluster_closing = true;
  uv_cond_broadcast(&seq->room);
  uv_cond_signal(&seq->cond);
  uv_mutex_unlock(&seq->mu);
}

void tr_sequencer_cluster_attach(tr_sequencer_t *seq, struct tr_cluster *cluster, const char *rpc) {
  uv_mutex_lock(&seq->mu);
  seq->cluster = cluster;
  snprintf(seq->cluster_rpc, sizeof seq->cluster_rpc, "%s", rpc);
  uv_mutex_unlock(&seq->mu);
}

/* -32005 not_leader naming the leader's JSON-RPC address when one is known. */
static void batch_not_leader(tr_sequencer_t *seq, tr_seq_batch_t *b, const char *why) {
  char leader[128];
  bool known = seq->cluster != NULL && tr_cluster_leader_rpc(seq->cluster, leader, sizeof leader);
  for (size_t i = 0; i < b->n; i++) {
    tr_elem_t *e = b->items[i].elem;
    free(e->response);
    e->response = tr_rpc_not_leader_text(e->id, known ? leader : NULL, why);
  }
}

#define OUTCOME_UNKNOWN "not_leader: leadership changed while the tx was being replicated, so its outcome is " \
                        "unknown here; resubmitting the same tx bytes to the leader is safe (a tx already " \
                        "recorded is answered with its receipt, duplicate: true)"

/* The proposal in flight will get no receipt from this node. */
static void inflight_unknown(tr_sequencer_t *seq) {
  if (seq->inflight == NULL) return;
  batch_not_leader(seq, seq->inflight, OUTCOME_UNKNOWN);
  seq_batch_post(seq, seq->inflight);
  seq->inflight = NULL;
}

static bool journal_settled(tr_sequencer_t *seq);

/* A batch applies on exactly the head it names.  Returns 0 to apply it, 1
 * to skip it (it names an older head: proposed by a deposed leader, or
 * applied here before a restart), -1 when this node stopped (diverged or
 * missing entries: never serve a fork). */
static int batch_base_check(tr_sequencer_t *seq, const tr_batch_header_t *h) {
  char why[400], want[65], have[65];
  uint8_t stored[32];
  bool older = h->base_size < seq->mem.size;
  if (older && !journal_settled(seq)) return -1; /* stopping with a failed commit not yet redone */
  older = h->base_size < seq->mem.size;
  if (older) {
    tr_entry_t e = {0};
    int rc = tr_store_entry_get(seq->writer, h->base_size, &e);
    memcpy(stored, e.hash, 32);
    tr_entry_clear(&e);
    if (rc != 0) {
      snprintf(why, sizeof why, "cannot read entry %llu: %s", (unsigned long long)h->base_size,
               tr_store_error_text(seq->writer, rc));
      tr_sequencer_halt(seq, "checking a committed batch against the journal", why);
      return -1;
    }
  }
  switch (tr_batch_verdict(h, seq->mem.size, seq->mem.head_hash, older ? stored : NULL)) {
  case TR_BATCH_APPLY:
    return 0;
  case TR_BATCH_SKIP:
    return 1;
  case TR_BATCH_MISSING:
    snprintf(why, sizeof why, "a committed batch extends entry %llu but this journal ends at %llu: entries are "
             "missing here; wipe this node's journal and raft directory so that it rejoins from the others",
             (unsigned long long)h->base_size, (unsigned long long)seq->mem.size);
    break;
  case TR_BATCH_DIVERGED:
    tr_hex_encode(h->base_hash, 32, want);
    tr_hex_encode(older ? stored : seq->mem.head_hash, 32, have);
    snprintf(why, sizeof why, "the journals diverged: the cluster's entry %llu has hash %s, this node's has %s",
             (unsigned long long)h->base_size, want, have);
    break;
  }
  tr_sequencer_halt(seq, "checking a committed batch against the journal", why);
  return -1;
}

/* Opens a committed batch and checks the head it names.  Returns 0 to apply
 * it (h, r set; *bp this node's own proposal or NULL); otherwise it was
 * skipped or this node stopped, and the proposal, if any, is answered. */
static int replicated_open(tr_sequencer_t *seq, const void *buf, size_t len, tr_batch_header_t *h,
                           tr_batch_reader_t *r, tr_seq_batch_t **bp) {
  int rc = tr_batch_open(buf, len, h, r);
  tr_seq_batch_t *b = NULL;
  if (rc == 0 && seq->inflight && h->proposer == seq->cluster_id && h->token == seq->inflight_token) {
    b = seq->inflight;
    seq->inflight = NULL;
  }
  if (rc != 0) {
    char why[160];
    const uint8_t *p = buf;
    snprintf(why, sizeof why, "it is not a tranche batch (%zu bytes, starting %02x%02x%02x%02x)", len,
             len > 0 ? p[0] : 0, len > 1 ? p[1] : 0, len > 2 ? p[2] : 0, len > 3 ? p[3] : 0);
    tr_sequencer_halt(seq, "applying a committed raft entry", why);
  }
  int base = atomic_load(&seq->stats.halted) ? -1 : batch_base_check(seq, h);
  if (base != 0) {
    if (base > 0) atomic_fetch_add(&seq->skipped_batches, 1);
    if (b && base < 0) seq_batch_refuse_halted(seq, b);
    if (b && base > 0) batch_not_leader(seq, b, OUTCOME_UNKNOWN);
    if (b) seq_batch_post(seq, b);
    return -1;
  }
  *bp = b;
  return 0;
}

/* After a batch is applied here (queued or durable): counted, and the
 * proposer's address noted. */
static void replicated_counted(tr_sequencer_t *seq, const tr_batch_header_t *h) {
  atomic_fetch_add(&seq->replicated_batches, 1);
  atomic_fetch_add(&seq->replicated_txs, h->n);
  if (h->proposer_rpc[0] && seq->cluster) tr_cluster_note_rpc(seq->cluster, h->proposer, h->proposer_rpc);
}

/* Applies an opened batch and commits it on this thread.  The leader's own
 * batch (b) gets its receipts; a batch that cannot be made durable here
 * (disk full) is tried again until it is, since the cluster has committed
 * it and later batches build on it.  Returns false when it was given up
 * (the node halted, or stops: raft's log has it for the next start). */
static bool replicated_commit_here(tr_sequencer_t *seq, const tr_batch_header_t *h, tr_batch_reader_t r,
                                   tr_seq_batch_t *b) {
  int rc;
  for (unsigned attempt = 0;; attempt++) {
    tr_batch_reader_t each = r;
    rc = seq_batch_commit(seq, b, &each, h->clock_ms);
    if (rc == 0 || atomic_load(&seq->stats.halted)) break;
    if (rc == TR_ELIMIT) { /* every node reaches the same limit at the same entry */
      tr_sequencer_halt(seq, "applying a committed batch", "the in-memory state is at its limit (tr_limits.h TR_MEM_*)");
      break;
    }
    if (b) { /* the clients hear now; the retries are this node's own business */
      seq_batch_answer_error(b, SEQ_NOT_WRITTEN_HERE);
      seq_batch_post(seq, b);
      b = NULL;
      if (seq->leading && seq->cluster) tr_cluster_transfer(seq->cluster, 0, NULL, NULL); /* let a healthy node lead */
    }
    atomic_fetch_add(&seq->apply_retries, 1);
    if (attempt == 0)
      log_error("seq", "a committed batch of %u txs cannot be written here; retrying every %d ms (the node lags "
                "its cluster meanwhile)", h->n, TR_DERIVED_RETRY_MS);
    uv_mutex_lock(&seq->mu);
    bool stopping = seq->stopping || seq->cluster_closing;
    uv_mutex_unlock(&seq->mu);
    if (stopping) return false; /* raft's log has it: applied at the next start */
    uv_sleep(TR_DERIVED_RETRY_MS);
  }
  if (rc != 0) {
    if (b) seq_batch_post(seq, b);
    return false;
  }
  replicated_counted(seq, h);
  if (b) {
    b->size_after = seq->mem.size;
    seq_batch_done(seq, b);
  } else { /* no client here: an empty batch tells the loop the journal grew (subscriptions) */
    tr_seq_batch_t *none = calloc(1, sizeof *none);
    if (none) seq_batch_post(seq, none);
    seq_rate_update(seq, h->n);
  }
  seq_batch_hand_over(seq);
  return true;
}

/* The journal stage idle, and the memory rebuilt from the store; then the
 * batches whose commit failed on tr-journal applied again, in log order,
 * on this thread (the stage is idle and stays so: nothing is queued
 * meanwhile).  Returns true when the journal holds every batch applied so
 * far. */
static bool rebuild_and_redo(tr_sequencer_t *seq) {
  tr_journal_stage_drain(seq);
  bool failed = tr_journal_stage_failed(seq);
  seq_state_reset(seq);
  tr_journal_job_t *redo = tr_journal_stage_take_redo(seq);
  if (failed) tr_journal_stage_recovered(seq);
  if (redo && seq->leading && seq->cluster) tr_cluster_transfer(seq->cluster, 0, NULL, NULL); /* a healthy node */
  bool all = true;
  for (tr_journal_job_t *job = redo, *next; job; job = next) {
    next = job->next;
    tr_batch_header_t h;
    tr_batch_reader_t r;
    tr_seq_batch_t *b = NULL;
    if (all && !atomic_load(&seq->stats.halted) &&
        replicated_open(seq, job->replicated, job->replicated_len, &h, &r, &b) == 0)
      all = replicated_commit_here(seq, &h, r, b);
    else if (atomic_load(&seq->stats.halted))
      all = false;
    free(job->replicated);
    free(job);
  }
  return all && !atomic_load(&seq->stats.halted);
}

/* Before tr-seq reads the journal on the writer's connection (an older
 * head, a snapshot): the stage idle, and any failed commit redone.  Returns
 * true when the journal holds every batch applied so far. */
static bool journal_settled(tr_sequencer_t *seq) {
  if (!seq->journal.started) return true;
  tr_journal_stage_drain(seq);
  return tr_journal_stage_failed(seq) ? rebuild_and_redo(seq) : true;
}

/* Every node, in log order: a committed raft batch.  With the journal stage
 * running it is applied here and committed on tr-journal while the next one
 * applies (the event's buffer goes with it, for a redo); otherwise, or when
 * the apply fails, applied and committed here. */
static void replicated_apply(tr_sequencer_t *seq, tr_cluster_event_t *ev) {
  if (seq->journal.started && tr_journal_stage_failed(seq)) rebuild_and_redo(seq);
  if (atomic_load(&seq->stats.halted)) { /* a redo can halt the node */
    if (seq->inflight) inflight_unknown(seq);
    return;
  }
  tr_batch_header_t h;
  tr_batch_reader_t r;
  tr_seq_batch_t *b = NULL;
  if (replicated_open(seq, ev->buf, ev->len, &h, &r, &b) != 0) return;
  if (seq->journal.started) {
    tr_batch_reader_t each = r;
    if (seq_replicated_queue(seq, b, &each, h.clock_ms, ev->buf, ev->len, h.n) == 0) {
      ev->buf = NULL; /* the stage's now */
      replicated_counted(seq, &h);
      return;
    }
    rebuild_and_redo(seq); /* the apply stopped part way: then as below, retried here */
  }
  replicated_commit_here(seq, &h, r, b);
}

/* The leader: one proposal at a time, so each names the head it extends. */
static void propose(tr_sequencer_t *seq, tr_seq_batch_t *b) {
  tr_batch_header_t h = {.proposer = seq->cluster_id, .token = ++seq->next_token, .base_size = seq->mem.size,
                         .clock_ms = seq_clock_reading(seq, seq_mono_ms())};
  snprintf(h.proposer_rpc, sizeof h.proposer_rpc, "%s", seq->cluster_rpc);
  memcpy(h.base_hash, seq->mem.head_hash, 32);
  tr_batch_writer_t w;
  tr_batch_begin(&w, &h);
  for (size_t i = 0; i < b->n; i++) {
    tr_elem_t *e = b->items[i].elem;
    tr_batch_add(&w, e->tx_bytes, (uint32_t)e->tx_len, e->sig);
  }
  void *buf;
  size_t len;
  if (tr_batch_finish(&w, &buf, &len) != 0) {
    seq_batch_fail(b, "out of memory encoding the batch");
    seq_batch_post(seq, b);
    return;
  }
  seq->inflight = b;
  seq->inflight_token = h.token;
  tr_cluster_propose(seq->cluster, buf, len, h.token);
}

/* The journal as a snapshot (tr_batch.h): every entry after genesis. */
typedef struct {
  tr_batch_writer_t w;
  bool too_big;
} snapshot_ctx_t;

static int snapshot_entry(void *ctx, const tr_entry_t *e) {
  snapshot_ctx_t *s = ctx;
  tr_snapshot_add(&s->w, e->time, e->tx, (uint32_t)e->tx_len, e->sig);
  if (s->w.len > TR_CLUSTER_SNAPSHOT_BYTES_MAX) {
    s->too_big = true;
    return TR_ELIMIT;
  }
  return s->w.failed ? TR_ENOMEM : 0;
}

static int snapshot_make(tr_sequencer_t *seq, void **out, size_t *len) {
  snapshot_ctx_t s;
  tr_snapshot_begin(&s.w, seq->mem.size, seq->mem.head_hash);
  s.too_big = false;
  int rc = seq->mem.size > 1 ? tr_store_entries_scan(seq->writer, 2, seq->mem.size, snapshot_entry, &s) : 0;
  if (rc != 0) {
    if (s.too_big)
      log_warn("seq", "no snapshot: the journal is over %llu bytes (TR_CLUSTER_SNAPSHOT_BYTES_MAX); raft keeps "
               "its log", (unsigned long long)TR_CLUSTER_SNAPSHOT_BYTES_MAX);
    free(s.w.buf);
    return rc;
  }
  return tr_snapshot_finish(&s.w, out, len);
}

/* Installs a snapshot: the entries this journal lacks go through the rules
 * at their recorded times, in commits of at most TR_COMMIT_BATCH_MAX, and
 * the head must come out as the snapshot says. */
static int snapshot_install(tr_sequencer_t *seq, const void *buf, size_t len) {
  uint64_t size;
  uint8_t head[32];
  tr_batch_reader_t r;
  if (tr_snapshot_open(buf, len, &size, head, &r) != 0) {
    tr_sequencer_halt(seq, "installing a snapshot", "it is not a tranche snapshot");
    return TR_EINVALID;
  }
  tr_batch_header_t as_base = {.base_size = size};
  memcpy(as_base.base_hash, head, 32);
  if (size <= seq->mem.size) /* this journal holds it already (raft's start loads its last snapshot) */
    return batch_base_check(seq, &as_base) < 0 ? TR_ECORRUPT : 0;
  log_info("seq", "installing a snapshot of %llu entries over this journal's %llu", (unsigned long long)size,
           (unsigned long long)seq->mem.size);
  tr_batch_tx_t t;
  int more, rc = 0;
  size_t pending = 0;
  for (uint64_t at = 2; rc == 0 && (more = tr_batch_next(&r, &t)) == 1; at++) {
    if (at <= seq->mem.size) continue;
    if (tr_tx_decode(t.bytes, t.len, seq->scratch_tx, NULL) != 0) rc = TR_ECORRUPT;
    if (rc == 0) rc = seq_apply_one(seq, NULL, seq->scratch_tx, t.bytes, t.len, t.sig, t.time);
    if (rc == 0 && seq->mem.size != at) rc = TR_ECORRUPT; /* refused here: not the cluster's journal */
    if (rc == 0 && ++pending == TR_COMMIT_BATCH_MAX) {
      rc = tr_delta_take_changes(seq->delta, &seq->mem);
      if (rc == 0) rc = seq_journal_commit(seq);
      if (rc == 0) seq_batch_hand_over(seq);
      pending = 0;
    }
  }
  if (rc == 0 && more < 0) rc = TR_ECORRUPT;
  if (rc == 0 && pending > 0) {
    rc = tr_delta_take_changes(seq->delta, &seq->mem);
    if (rc == 0) rc = seq_journal_commit(seq);
    if (rc == 0) seq_batch_hand_over(seq);
  }
  if (rc == 0 && memcmp(seq->mem.head_hash, head, 32) != 0) rc = TR_ECORRUPT;
  if (rc != 0) {
    if (rc == TR_ECORRUPT) tr_sequencer_halt(seq, "installing a snapshot", "its entries do not rebuild its head here");
    else seq_write_failed(seq, rc, "installing a snapshot");
    seq_state_reset(seq);
    return rc;
  }
  atomic_store(&seq->stats.size, seq->mem.size);
  seq_state_counted(seq);
  tr_seq_batch_t *none = calloc(1, sizeof *none);
  if (none) seq_batch_post(seq, none);
  log_info("seq", "snapshot installed: the journal has %llu entries", (unsigned long long)seq->mem.size);
  return 0;
}

static void cluster_event(tr_sequencer_t *seq, tr_cluster_event_t *ev) {
  switch (ev->kind) {
  case TR_CLUSTER_COMMITTED:
    if (!atomic_load(&seq->stats.halted)) replicated_apply(seq, ev);
    else if (seq->inflight) inflight_unknown(seq);
    free(ev->buf);
    free(ev);
    return;
  case TR_CLUSTER_PROPOSE_FAILED:
    if (seq->inflight && ev->token == seq->inflight_token) inflight_unknown(seq);
    free(ev);
    return;
  case TR_CLUSTER_LEADER_READY:
    seq->leading = true;
    atomic_store(&seq->accepting, true);
    free(ev);
    return;
  case TR_CLUSTER_LEADER_LOST:
    seq->leading = false;
    atomic_store(&seq->accepting, false);
    inflight_unknown(seq); /* if it commits after all, resubmitting finds it */
    free(ev);
    return;
  case TR_CLUSTER_SNAPSHOT: /* of the journal, which must hold every batch raft counts as applied */
    tr_cluster_event_done(ev->from, ev, journal_settled(seq) ? snapshot_make(seq, &ev->out, &ev->out_len) : TR_EIO);
    return; /* the cluster frees it */
  case TR_CLUSTER_RESTORE:
    tr_cluster_event_done(ev->from, ev, journal_settled(seq) ? snapshot_install(seq, ev->buf, ev->len) : TR_EIO);
    return;
  }
}

void tr_replica_main(void *arg) {
  tr_thread_name("tr-seq");
  tr_sequencer_t *seq = arg;
  for (;;) {
    uv_mutex_lock(&seq->mu);
    while (seq->events == NULL && !seq->stopping && (seq->count == 0 || seq->inflight != NULL))
      uv_cond_timedwait(&seq->cond, &seq->mu, (uint64_t)TR_CHECKPOINT_INTERVAL_MS * 1000000u / 4);
    tr_cluster_event_t *ev = seq->events;
    if (ev) {
      seq->events = ev->next;
      if (seq->events == NULL) seq->events_tail = NULL;
      if (ev->kind == TR_CLUSTER_COMMITTED) seq->events_bytes -= ev->len;
      uv_cond_signal(&seq->room);
    }
    tr_seq_batch_t *b = ev == NULL && seq->count > 0 && seq->inflight == NULL ? seq_batch_form(seq) : NULL;
    bool stop = seq->stopping && ev == NULL && seq->count == 0;
    uv_mutex_unlock(&seq->mu);
    if (ev) {
      cluster_event(seq, ev);
    } else if (b && atomic_load(&seq->stats.halted)) {
      seq_batch_refuse_halted(seq, b);
      seq_batch_post(seq, b);
    } else if (b && (!seq->leading || seq->stopping || seq->cluster == NULL)) {
      batch_not_leader(seq, b, "not_leader: this node is not the cluster's leader; send the tx to the leader "
                               "(data.leader), or retry once one is known");
      seq_batch_post(seq, b);
    } else if (b) {
      propose(seq, b);
    } else if (!seq->journal.started) {
      seq_rate_update(seq, 0); /* an idle node's rate decays to 0 (tr-journal's idle wake does it otherwise) */
    }
    if (stop) break;
  }
  tr_journal_stage_stop(seq); /* everything queued is committed first */
  inflight_unknown(seq);
}

void tr_replica_events_free(tr_sequencer_t *seq) {
  for (tr_cluster_event_t *ev = seq->events, *next; ev; ev = next) { /* raft's log keeps what they carried */
    next = ev->next;
    if (ev->kind == TR_CLUSTER_COMMITTED) free(ev->buf);
    free(ev);
  }
  seq->events = seq->events_tail = NULL;
}
