/* sequencer.c — the serial section: §4 steps 4–8 over the in-memory
 * state, then the journal's group commit, on a thread of its own (tr-seq)
 * so fsync never stalls the event loop (sequencer.h).  A single node's loop
 * is here; a cluster node's is replica.c, over the same steps.
 */
#include "sequencer.h"
#include "sequencer_steps.h"

#include <errno.h>
#include <sched.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "tr_batch.h"
#include "tr_err.h"
#include "tr_json.h"
#include "tr_limits.h"
#include "tr_merkle.h"
#include "tr_node.h"
#include "tr_query.h"

/* ---- receipts ---- */

static char *put(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}
#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* Public hashes: a table lookup, no constant-time encoder needed. */
static char *put_hex32(char *p, const uint8_t b[32]) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < 32; i++) {
    *p++ = digits[b[i] >> 4];
    *p++ = digits[b[i] & 15];
  }
  return p;
}

#define RECEIPT_ID_TEXT_MAX 256 /* longer ids take the general path */

/* The whole response object, written directly in one allocation: the stored
 * effects are already JSON text with plain-digit integers, so there is
 * nothing to parse and re-print on the one thread every tx passes through. */
static char *receipt_text(const tr_elem_t *e, const tr_receipt_t *r) {
  const char *effects = r->effects_json ? r->effects_json : "{\"holdings\":[]}";
  char id[RECEIPT_ID_TEXT_MAX];
  size_t id_len = tr_rpc_id_text(e->id, id, sizeof id), effects_len = strlen(effects);
  size_t cap = effects_len + id_len + 320; /* the fixed members (~110), two hashes (128), two integers (40) */
  char *out = malloc(cap), *p = out;
  if (out == NULL) return NULL;
  p = PUT_LIT(p, "{\"seq\":");
  p = tr_json_put_u64(p, r->seq);
  p = PUT_LIT(p, ",\"txid\":\"");
  p = put_hex32(p, r->txid);
  p = PUT_LIT(p, "\",\"hash\":\"");
  p = put_hex32(p, r->hash);
  p = PUT_LIT(p, "\",\"time\":");
  p = tr_json_put_u64(p, r->time);
  p = r->duplicate ? PUT_LIT(p, ",\"duplicate\":true,\"effects\":") : PUT_LIT(p, ",\"duplicate\":false,\"effects\":");
  p = put(p, effects, effects_len);
  p = PUT_LIT(p, "}");
  *p = '\0';
  if (id_len == 0) { /* an unusual id: the general renderer */
    char *text = tr_rpc_result_raw(e->id, out);
    free(out);
    return text;
  }
  /* wrap in place: {"jsonrpc":"2.0","result":RESULT,"id":ID} */
  static const char head[] = "{\"jsonrpc\":\"2.0\",\"result\":";
  size_t result_len = (size_t)(p - out);
  memmove(out + sizeof head - 1, out, result_len);
  memcpy(out, head, sizeof head - 1);
  p = out + sizeof head - 1 + result_len;
  p = PUT_LIT(p, ",\"id\":");
  p = put(p, id, id_len);
  p = PUT_LIT(p, "}");
  *p = '\0';
  return out;
}

/* ---- the in-memory state ---- */

/* tr-seq's connection for reading the store: its own while tr-journal
 * writes on the writer's. */
static tr_store_t *seq_store(tr_sequencer_t *seq) { return seq->reader ? seq->reader : seq->writer; }

/* A duplicate's entry is in the current batch (the delta sink looks there
 * first), in a batch the journal stage holds, or committed in the journal.
 * A batch leaves the stage only once committed: looked for in that order,
 * it is never missed. */
static int lookup_entry(void *ctx, uint64_t seq_no, tr_entry_t *e) {
  tr_sequencer_t *seq = ctx;
  int rc = tr_journal_stage_entry_get(seq, seq_no, e);
  return rc == TR_ENOT_FOUND ? tr_store_entry_get(seq_store(seq), seq_no, e) : rc;
}

/* A duplicate's receipt is in a batch the journal stage holds, in a delta
 * the writer behind has not written yet, or in the store (each hands it on
 * to the next before letting it go). */
static int lookup_receipt(void *ctx, uint64_t seq_no, char **effects_json) {
  tr_sequencer_t *seq = ctx;
  int rc = tr_journal_stage_receipt_get(seq, seq_no, effects_json);
  if (rc == TR_ENOT_FOUND && seq->derived.started) rc = tr_derived_receipt_get(&seq->derived, seq_no, effects_json);
  return rc == TR_ENOT_FOUND ? tr_store_receipt_get(seq_store(seq), seq_no, effects_json) : rc;
}

/* A fresh delta for the next batch's rows. */
static int delta_begin(tr_sequencer_t *seq) {
  seq->delta = tr_delta_new();
  seq->sink.delta = seq->delta;
  return seq->delta ? 0 : TR_ENOMEM;
}

/* The state's size, for node.status (other threads read these). */
void seq_state_counted(tr_sequencer_t *seq) {
  atomic_store(&seq->stats.mem_keys, seq->mem.keys_n);
  atomic_store(&seq->stats.mem_accounts, seq->mem.accounts_n);
  atomic_store(&seq->stats.mem_assets, seq->mem.assets_n);
  atomic_store(&seq->stats.mem_holdings, seq->mem.holdings_positive);
}

/* The state as the store holds it: derived tables at their mark, then the
 * journal's entries after the mark through the rules.  What the replay
 * makes is in seq->delta, for the derived writer. */
static int state_load(tr_sequencer_t *seq, uint64_t through, char *err, size_t errlen) {
  uint64_t head = 0, t0 = tr_clock_ns();
  seq->sink = (tr_delta_sink_t){.mem = &seq->mem, .lookup_entry = lookup_entry, .lookup_receipt = lookup_receipt,
                                .lookup_ctx = seq};
  int rc = tr_mem_init(&seq->mem, &tr_delta_sink_ops, &seq->sink);
  if (rc == 0) rc = delta_begin(seq);
  if (rc == 0) rc = tr_mem_load(&seq->mem, seq->writer, through, err, errlen);
  seq->ledger.ops = &tr_mem_state_ops;
  seq->ledger.ctx = &seq->mem;
  tr_mem_track_changes(&seq->mem, true);
  if (rc == 0 && (rc = tr_store_head(seq->writer, &head, NULL, NULL)) != 0)
    snprintf(err, errlen, "cannot read the journal head: %s", tr_store_error_text(seq->writer, rc));
  if (rc == 0) rc = tr_mem_replay(&seq->mem, &seq->ledger, seq->writer, head, err, errlen);
  if (rc == 0) rc = tr_delta_take_changes(seq->delta, &seq->mem);
  seq_state_counted(seq);
  if (rc == TR_ENOMEM && err[0] == '\0') snprintf(err, errlen, "out of memory loading the state");
  if (rc != 0) return rc;
  seq->load_ms = (tr_clock_ns() - t0) / 1000000u;
  log_info("seq", "state in memory in %llu ms: %zu accounts, %zu assets, %zu holdings, %llu entries "
           "(%llu replayed after the derived mark %llu)", (unsigned long long)seq->load_ms, seq->mem.accounts_n,
           seq->mem.assets_n, seq->mem.holdings_n, (unsigned long long)head, (unsigned long long)(head - through),
           (unsigned long long)through);
  return 0;
}

static void state_free(tr_sequencer_t *seq) {
  tr_delta_free(seq->delta);
  seq->delta = NULL;
  tr_mem_free(&seq->mem);
}

/* Hands the current delta to the derived writer when it holds anything. */
static int delta_hand_over(tr_sequencer_t *seq) {
  tr_delta_t *d = seq->delta;
  if (d->entries_n == 0 && d->accounts_n == 0 && d->assets_n == 0 && d->holdings_n == 0) return 0;
  tr_derived_push(&seq->derived, d);
  return delta_begin(seq);
}

/* After a failed journal commit the memory is ahead of the store: it is
 * rebuilt from the store (what the derived writer had not written yet is
 * made again by the replay).  A node that cannot rebuild stops writing. */
void seq_state_reset(tr_sequencer_t *seq) {
  char err[512] = "";
  uint64_t through = tr_derived_drop(&seq->derived);
  state_free(seq);
  int rc = state_load(seq, through, err, sizeof err);
  if (rc == 0) rc = delta_hand_over(seq);
  if (rc != 0) tr_sequencer_halt(seq, "rebuilding the state after a failed commit", err[0] ? err : tr_strerror(rc));
}

/* Every element of a batch that was not recorded gets an error. */
void seq_batch_fail(tr_seq_batch_t *b, const char *why) {
  char msg[512];
  for (size_t i = 0; i < b->n; i++) {
    tr_elem_t *e = b->items[i].elem;
    snprintf(msg, sizeof msg, "storage error: the tx was not recorded: %s", why);
    free(e->response);
    e->response = tr_rpc_error_text(e->id, TR_RPC_INTERNAL_ERROR, msg, NULL);
  }
}

void seq_batch_answer_error(tr_seq_batch_t *b, const char *message) {
  for (size_t i = 0; i < b->n; i++) {
    tr_elem_t *e = b->items[i].elem;
    free(e->response);
    e->response = tr_rpc_error_text(e->id, TR_RPC_INTERNAL_ERROR, message, NULL);
  }
}

/* Milliseconds on the monotonic clock, for intervals and for bounding the
 * wall clock. */
uint64_t seq_mono_ms(void) { return tr_clock_ns() / 1000000u; }

/* The wall clock reading a batch may use: one more than the configured skew
 * ahead of the last accepted reading plus the monotonic time elapsed since
 * is refused (a clock stepped a year ahead for one batch would otherwise fix
 * every later entry time a year ahead, §4 keeps times from decreasing).  A
 * refused reading is replaced by that elapsed-time estimate. */
uint64_t seq_clock_reading(tr_sequencer_t *seq, uint64_t now_mono) {
  uint64_t wall = tr_now_ms();
  uint64_t estimate = seq->clock_ref_wall_ms + (now_mono - seq->clock_ref_mono_ms);
  int64_t ahead = (int64_t)(wall - estimate);
  atomic_store(&seq->stats.clock_ahead_ms, ahead);
  if (ahead > (int64_t)seq->clock_skew_max_ms) {
    atomic_fetch_add(&seq->stats.clock_refused, 1);
    if (seq->clock_warned_mono_ms == 0 || now_mono >= seq->clock_warned_mono_ms + 10000) {
      log_error("seq", "the system clock is %lld ms ahead of the time elapsed since the last good reading "
                "(clock_skew_max %llu ms): not using it; entry times follow the monotonic clock until it is "
                "corrected", (long long)ahead, (unsigned long long)seq->clock_skew_max_ms);
      seq->clock_warned_mono_ms = now_mono;
    }
    wall = estimate;
  } else {
    seq->clock_warned_mono_ms = 0;
  }
  /* A clock stepped back is not followed (entry times never decrease
   * anyway), so that its later correction is not taken for a jump ahead. */
  seq->clock_ref_wall_ms = wall > estimate ? wall : estimate;
  seq->clock_ref_mono_ms = now_mono;
  return wall;
}

void tr_sequencer_halt(tr_sequencer_t *seq, const char *what, const char *why) {
  bool expected = false;
  if (!atomic_compare_exchange_strong(&seq->halting, &expected, true)) return; /* the first reason stands */
  snprintf(seq->halt_reason, sizeof seq->halt_reason, "%s", why);
  atomic_store(&seq->stats.halted, true); /* after the reason: readers of the flag may read it */
  log_error("seq", "%s failed: %s; the node takes no more writes (reads go on): stop it, then check the "
            "database with tranchectl verify and restore a backup", what, why);
}

/* After a failed write: the words for the log and the callers, and whether
 * the node must stop writing (a damaged database only gets worse). */
const char *seq_write_failed(tr_sequencer_t *seq, int rc, const char *what) {
  static _Thread_local char why[512];
  snprintf(why, sizeof why, "%s", tr_store_error_text(seq->writer, rc));
  bool fatal = tr_store_failure_is_fatal();
  tr_store_rollback(seq->writer);
  atomic_fetch_add(&seq->stats.storage_errors, 1);
  if (fatal) tr_sequencer_halt(seq, what, why);
  else log_error("seq", "%s failed: %s", what, why);
  return why;
}

/* A halted node answers writes without touching the database. */
void seq_batch_refuse_halted(tr_sequencer_t *seq, tr_seq_batch_t *b) {
  char why[600];
  snprintf(why, sizeof why, "the node stopped taking writes (%s)", seq->halt_reason);
  seq_batch_fail(b, why);
}

/* ---- a batch ---- */

/* Applies one tx to the in-memory state; e (NULL on a follower, whose
 * client is elsewhere) gets the receipt or the refusal.  Returns 0, or an
 * error after which the state must be rebuilt (seq_state_reset). */
int seq_apply_one(tr_sequencer_t *seq, tr_elem_t *e, const tr_tx_t *tx, const char *bytes, size_t len,
                     const uint8_t sig[TR_SIG_BYTES], uint64_t clock_ms) {
  tr_receipt_t receipt;
  tr_refusal_t refusal = {0};
  int rc = tr_ledger_apply(&seq->ledger, tx, bytes, len, sig, clock_ms, &receipt, &refusal);
  if (rc == 0) {
    if (e) e->response = receipt_text(e, &receipt);
    tr_receipt_clear(&receipt);
    if (!receipt.duplicate) atomic_fetch_add(&seq->stats.committed_txs, 1);
  } else if (tr_err_is_refusal(rc)) {
    if (e) e->response = tr_rpc_refusal_text(e->id, rc, refusal.detail);
    atomic_fetch_add(&seq->stats.refused_txs, 1);
  } else {
    return rc;
  }
  return 0;
}

/* Applies each tx in order: the batch's own elements, or (r != NULL) the
 * txs of a replicated batch, of which b, when not NULL, is this node's
 * proposal.  Returns 0, or an error after which the state must be rebuilt. */
static int batch_apply(tr_sequencer_t *seq, tr_seq_batch_t *b, tr_batch_reader_t *r, uint64_t clock_ms) {
  if (r == NULL) {
    for (size_t i = 0; i < b->n; i++) {
      tr_elem_t *e = b->items[i].elem;
      int rc = seq_apply_one(seq, e, e->tx, e->tx_bytes, e->tx_len, e->sig, clock_ms);
      if (rc != 0) return rc;
    }
    return tr_delta_take_changes(seq->delta, &seq->mem);
  }
  tr_batch_tx_t t;
  int more;
  for (size_t i = 0; (more = tr_batch_next(r, &t)) == 1; i++) {
    tr_elem_t *e = b && i < b->n ? b->items[i].elem : NULL;
    const tr_tx_t *tx = e ? e->tx : seq->scratch_tx; /* the leader decoded its own already */
    if (e == NULL && tr_tx_decode(t.bytes, t.len, seq->scratch_tx, NULL) != 0) return TR_ECORRUPT;
    int rc = seq_apply_one(seq, e, tx, t.bytes, t.len, t.sig, clock_ms);
    if (rc != 0) return rc;
  }
  return more == 0 ? tr_delta_take_changes(seq->delta, &seq->mem) : TR_ECORRUPT;
}

/* A mutex is not a queue: a writer behind relocking for its next
 * transaction (a chunk of lookup rows, a hurried write) at once would often
 * win the lock again and keep the journal waiting for a whole run.  So a
 * waiting commit goes first (it takes the lock within microseconds; the
 * bound, ~1 ms of yields, only guards against a missed wake, and reads no
 * clock: a clock read per turn is a cost, and under libfaketime a file
 * read). */
#define BEHIND_UNLOCK_YIELDS 2000

void tr_sequencer_behind_lock(tr_sequencer_t *seq) { uv_mutex_lock(&seq->write_mu); }

void tr_sequencer_behind_unlock(tr_sequencer_t *seq) {
  uv_mutex_unlock(&seq->write_mu);
  for (unsigned i = 0; i < BEHIND_UNLOCK_YIELDS && atomic_load(&seq->journal_waiting) > 0; i++) sched_yield();
}

/* The entries of n batches' deltas, in order, in one fsynced transaction:
 * after it, their receipts may go. */
int seq_journal_commit_deltas(tr_sequencer_t *seq, tr_delta_t *const *d, size_t n) {
  size_t entries = 0;
  for (size_t i = 0; i < n; i++) entries += d[i]->entries_n;
  if (entries == 0) return 0; /* refusals and duplicates only: nothing to make durable */
  atomic_fetch_add(&seq->journal_waiting, 1);
  uv_mutex_lock(&seq->write_mu);
  atomic_fetch_sub(&seq->journal_waiting, 1);
  int rc = tr_store_begin(seq->writer);
  for (size_t i = 0; i < n && rc == 0; i++) rc = tr_store_journal_append(seq->writer, d[i]);
  if (rc == 0) rc = tr_store_commit(seq->writer);
  uv_mutex_unlock(&seq->write_mu);
  return rc;
}

int seq_journal_commit(tr_sequencer_t *seq) { return seq_journal_commit_deltas(seq, &seq->delta, 1); }

/* A batch that could not be applied or journalled: its elements (b, when
 * not NULL) get their errors, and the memory is rebuilt from the store. */
static void batch_failed(tr_sequencer_t *seq, tr_seq_batch_t *b, bool replicated, int rc, const char *what) {
  char label[64];
  if (b || !replicated) snprintf(label, sizeof label, "%s of %zu txs", what, b ? b->n : (size_t)0);
  else snprintf(label, sizeof label, "%s of a committed batch", what);
  if (rc == TR_ELIMIT) {
    log_error("seq", "%s failed: the in-memory state is at its limit (tr_limits.h TR_MEM_*)", label);
    if (b) seq_batch_fail(b, "the node's state is at its size limit; the operator must act");
  } else if (rc == TR_ECORRUPT && replicated) {
    tr_sequencer_halt(seq, label, "a committed batch holds a tx this node cannot decode");
    if (b) seq_batch_refuse_halted(seq, b);
  } else {
    const char *why = seq_write_failed(seq, rc, label);
    if (b) seq_batch_fail(b, why);
  }
  seq_state_reset(seq);
}

/* Applies a batch and makes its entries durable: b's own elements, or the
 * txs r reads (a replicated batch; b is then this node's proposal or NULL).
 * Returns 0 when the changes are durable and seq->delta holds them for the
 * writer behind (handed over once the receipts are posted).  On failure the
 * state is rebuilt from the store, and b's elements have their errors. */
int seq_batch_commit(tr_sequencer_t *seq, tr_seq_batch_t *b, tr_batch_reader_t *r, uint64_t clock_ms) {
  uint64_t t0 = tr_clock_ns();
  int rc = batch_apply(seq, b, r, clock_ms);
  const char *what = "applying a batch";
  uint64_t t1 = tr_clock_ns();
  if (rc == 0) rc = seq_journal_commit(seq), what = "the group commit";
  uint64_t t2 = tr_clock_ns();
  if (rc != 0) {
    batch_failed(seq, b, r != NULL, rc, what);
  } else {
    if (seq->delta->entries_n > 0) atomic_store(&seq->stats.size, seq->delta->last); /* before the receipts */
    seq_state_counted(seq);
  }
  atomic_fetch_add(&seq->stats.apply_ns, t1 - t0);
  atomic_fetch_add(&seq->stats.commit_ns, t2 - t1);
  tr_hist_observe(&seq->stats.commit_seconds, &TR_HIST_DURATION, t2 - t1);
  return rc;
}

tr_seq_batch_t *seq_batch_form(tr_sequencer_t *seq) {
  size_t n = seq->count < TR_COMMIT_BATCH_MAX ? seq->count : TR_COMMIT_BATCH_MAX;
  if (n == 0) return NULL;
  tr_seq_batch_t *b = malloc(sizeof *b + n * sizeof b->items[0]);
  if (b == NULL) return NULL;
  b->n = n;
  for (size_t i = 0; i < n; i++) {
    b->items[i] = seq->ring[seq->head];
    seq->head = (seq->head + 1) % seq->cap;
  }
  seq->count -= n;
  return b;
}

/* Committed txs per second over roughly the last few seconds (an
 * exponentially weighted average of per-batch rates), for node.status. */
void seq_rate_update(tr_sequencer_t *seq, size_t n) {
  uint64_t now = seq_mono_ms();
  uv_mutex_lock(&seq->rate_mu);
  if (seq->rate_at_ms == 0) seq->rate_at_ms = now;
  seq->rate_txs += n;
  uint64_t dt = now - seq->rate_at_ms;
  if (dt >= 250) {
    uint64_t sample = seq->rate_txs * 1000u / dt, old = atomic_load(&seq->stats.recent_tx_per_s);
    atomic_store(&seq->stats.recent_tx_per_s, old ? (old * 3 + sample) / 4 : sample);
    seq->rate_txs = 0;
    seq->rate_at_ms = now;
  }
  uv_mutex_unlock(&seq->rate_mu);
}

/* Hands a batch's answers to the loop; b->size_after is set. */
static void batch_post_sized(tr_sequencer_t *seq, tr_seq_batch_t *b) {
  while (tr_mailbox_post(seq->done, TR_MSG_SEQ_DONE, b) != 0) { /* answers are owed: never drop them */
    log_error("seq", "out of memory posting answers; retrying");
    uv_sleep(10);
  }
}

void seq_batch_post(tr_sequencer_t *seq, tr_seq_batch_t *b) {
  b->size_after = seq->mem.size;
  batch_post_sized(seq, b);
}

/* Counts a batch that went through and posts its receipts to the loop
 * (b->size_after is set: tr-journal must not read the memory tr-seq runs
 * ahead in). */
void seq_batch_done(tr_sequencer_t *seq, tr_seq_batch_t *b) {
  if (b->n == 0) { /* a cluster node's batch with no client here: the loop learns the journal grew */
    batch_post_sized(seq, b);
    return;
  }
  atomic_fetch_add(&seq->stats.batches, 1);
  atomic_store(&seq->stats.last_batch, b->n);
  if (b->n > atomic_load(&seq->stats.batch_max)) atomic_store(&seq->stats.batch_max, b->n);
  tr_hist_observe(&seq->stats.batch_size, &TR_HIST_BATCH, b->n);
  seq_rate_update(seq, b->n);
  batch_post_sized(seq, b);
}

/* Then the changes to the writer behind (this may wait for room in its queue). */
void seq_batch_hand_over(tr_sequencer_t *seq) {
  uint64_t t0 = tr_clock_ns();
  if (delta_hand_over(seq) != 0) seq_state_reset(seq); /* no memory for the next delta */
  atomic_fetch_add(&seq->stats.handover_ns, tr_clock_ns() - t0);
}

/* A single node's batch: the rules here, then the journal stage commits it
 * and posts its answers (halted refusals too, so answers keep batch order)
 * while the next batch is applied. */
static void batch_apply_and_queue(tr_sequencer_t *seq, tr_seq_batch_t *b) {
  if (tr_journal_stage_failed(seq)) { /* the memory is ahead of the store: rebuilt, as before a commit */
    seq_state_reset(seq);
    tr_journal_stage_recovered(seq);
  }
  tr_delta_t *changed = NULL;
  bool no_next_delta = false;
  if (atomic_load(&seq->stats.halted)) {
    seq_batch_refuse_halted(seq, b);
  } else {
    uint64_t t0 = tr_clock_ns();
    int rc = batch_apply(seq, b, NULL, seq_clock_reading(seq, seq_mono_ms()));
    atomic_fetch_add(&seq->stats.apply_ns, tr_clock_ns() - t0);
    if (rc != 0) {
      tr_journal_stage_drain(seq); /* the batches queued before are sound: they commit first */
      batch_failed(seq, b, false, rc, "applying a batch");
      tr_journal_stage_recovered(seq); /* the rebuild covers a commit that failed meanwhile */
    } else {
      seq_state_counted(seq);
      tr_delta_t *d = seq->delta;
      if (d->entries_n > 0 || d->accounts_n > 0 || d->assets_n > 0 || d->holdings_n > 0) {
        changed = d;
        no_next_delta = delta_begin(seq) != 0;
      }
    }
  }
  b->size_after = seq->mem.size; /* the journal's size once this batch is committed */
  tr_journal_stage_push(seq, b, changed, NULL, 0, 0);
  if (no_next_delta) { /* out of memory: this batch commits, then the state is rebuilt */
    tr_journal_stage_drain(seq);
    seq_state_reset(seq);
    tr_journal_stage_recovered(seq);
  }
}

int seq_replicated_queue(tr_sequencer_t *seq, tr_seq_batch_t *b, tr_batch_reader_t *r, uint64_t clock_ms,
                         void *buf, size_t len, unsigned txs) {
  tr_seq_batch_t *answers = b ? b : calloc(1, sizeof *answers); /* none: still tells the loop the journal grew */
  if (answers == NULL) return TR_ENOMEM;
  uint64_t t0 = tr_clock_ns();
  int rc = batch_apply(seq, b, r, clock_ms);
  atomic_fetch_add(&seq->stats.apply_ns, tr_clock_ns() - t0);
  if (rc != 0) { /* the caller applies it again: the answers made so far go */
    for (size_t i = 0; b && i < b->n; i++) {
      free(b->items[i].elem->response);
      b->items[i].elem->response = NULL;
    }
    if (answers != b) free(answers);
    return rc;
  }
  seq_state_counted(seq);
  tr_delta_t *d = seq->delta, *changed = NULL;
  bool no_next_delta = false;
  if (d->entries_n > 0 || d->accounts_n > 0 || d->assets_n > 0 || d->holdings_n > 0) {
    changed = d;
    no_next_delta = delta_begin(seq) != 0;
  }
  answers->size_after = seq->mem.size;
  tr_journal_stage_push(seq, answers, changed, buf, len, txs);
  if (no_next_delta) { /* out of memory: this batch commits, then the state is rebuilt */
    tr_journal_stage_drain(seq);
    seq_state_reset(seq);
  }
  return 0;
}

static void sequencer_main(void *arg) {
  tr_thread_name("tr-seq");
  tr_sequencer_t *seq = arg;
  for (;;) {
    uv_mutex_lock(&seq->mu);
    while (seq->count == 0 && !seq->stopping) uv_cond_wait(&seq->cond, &seq->mu);
    bool stop = seq->stopping && seq->count == 0;
    tr_seq_batch_t *b = seq_batch_form(seq);
    uv_mutex_unlock(&seq->mu);
    if (b) batch_apply_and_queue(seq, b);
    if (stop) break;
  }
  tr_journal_stage_stop(seq); /* everything queued is committed first */
}

/* ---- start and stop ---- */

/* The journal must extend the checkpoint last published outside the database. */
static int check_against_checkpoint_file(tr_sequencer_t *seq, char *err, size_t errlen) {
  char *note = NULL, vkey_text[TR_NOTE_VKEY_BUF_BYTES];
  size_t len = 0;
  int rc = tr_file_read(seq->checkpoint_path, TR_NOTE_BYTES_MAX, &note, &len);
  if (rc == TR_ENOT_FOUND) return 0;
  if (rc != 0) {
    snprintf(err, errlen, "cannot read %s", seq->checkpoint_path);
    return rc;
  }
  tr_note_vkey_t vkey;
  tr_checkpoint_t cp;
  rc = tr_note_vkey_format(seq->ledger.chain, seq->ledger.node_key.b, vkey_text, sizeof vkey_text);
  if (rc == 0) rc = tr_note_vkey_parse(vkey_text, strlen(vkey_text), &vkey);
  if (rc == 0) rc = tr_checkpoint_open(note, len, &vkey, &cp);
  free(note);
  if (rc != 0) {
    snprintf(err, errlen, "%s is not a checkpoint signed by this node's key", seq->checkpoint_path);
    return TR_ECORRUPT;
  }
  uint64_t size = 0;
  uint8_t root[32];
  rc = tr_store_head(seq->writer, &size, NULL, NULL);
  if (rc == 0 && size < cp.size) {
    snprintf(err, errlen, "the journal has %llu entries but checkpoint %s covers %llu: this looks like an old "
             "backup; refusing to fork the log", (unsigned long long)size, seq->checkpoint_path,
             (unsigned long long)cp.size);
    return TR_ECORRUPT;
  }
  if (rc == 0) rc = tr_store_merkle_root(seq->writer, cp.size, root);
  if (rc == 0 && memcmp(root, cp.root, 32) != 0) {
    snprintf(err, errlen, "the journal does not extend checkpoint %s (root at size %llu differs): refusing to start",
             seq->checkpoint_path, (unsigned long long)cp.size);
    return TR_ECORRUPT;
  }
  seq->cp_size = cp.size;
  return rc;
}

/* The latest stored checkpoint must be one this node signed for this journal:
 * a row added with sqlite3 would be served by nobody (tr_query_checkpoint
 * checks too) but would collide with the node's own row at that size. */
static int check_stored_checkpoint(tr_sequencer_t *seq, char *err, size_t errlen) {
  char vkey_text[TR_NOTE_VKEY_BUF_BYTES], why[256] = "";
  tr_note_vkey_t vkey;
  uint64_t journal = 0, size = 0;
  uint8_t root[32];
  char *note = NULL;
  int rc = tr_note_vkey_format(seq->ledger.chain, seq->ledger.node_key.b, vkey_text, sizeof vkey_text);
  if (rc == 0) rc = tr_note_vkey_parse(vkey_text, strlen(vkey_text), &vkey);
  if (rc == 0) rc = tr_store_read_begin(seq->writer);
  if (rc != 0) {
    snprintf(err, errlen, "cannot read the stored checkpoints: %s", tr_store_error_text(seq->writer, rc));
    return rc;
  }
  rc = tr_store_head(seq->writer, &journal, NULL, NULL);
  if (rc == 0) rc = tr_store_checkpoint_latest(seq->writer, &size, root, &note);
  if (rc == TR_ENOT_FOUND) rc = 0; /* none yet (a node that never ran) */
  else if (rc == 0) rc = tr_query_checkpoint_verify(seq->writer, &vkey, journal, size, root, note, why, sizeof why);
  tr_store_read_end(seq->writer);
  free(note);
  if (rc == TR_ECORRUPT)
    snprintf(err, errlen, "the checkpoints table holds a row this node did not sign (%s): it was edited; "
             "restore a backup or remove that row", why);
  else if (rc != 0)
    snprintf(err, errlen, "cannot read the stored checkpoints: %s", tr_store_error_text(seq->writer, rc));
  return rc;
}

/* Opens the journal (read-only when `readonly`), checks that it is sound,
 * that it belongs to this node key and that it extends the checkpoint file.
 * On failure seq->writer is closed again and err says why. */
static int journal_open(tr_sequencer_t *seq, const char *datadir, int readonly, char *err, size_t errlen) {
  char db[TR_PATH_MAX];
  int rc = tr_path_join(db, sizeof db, datadir, TR_DB_FILE);
  if (rc == 0) rc = tr_path_join(seq->checkpoint_path, sizeof seq->checkpoint_path, datadir, TR_CHECKPOINT_FILE);
  if (rc != 0) {
    snprintf(err, errlen, "%s: path too long", datadir);
    return rc;
  }
  rc = tr_store_open(db, readonly ? TR_STORE_READONLY : 0, &seq->writer, err, errlen);
  if (rc == 0) rc = tr_store_integrity_check(seq->writer, err, errlen);
  if (rc == 0 && (rc = tr_ledger_load(&seq->ledger, seq->writer)) != 0)
    snprintf(err, errlen, "%s has no genesis: run tranchectl init", db);
  if (rc == 0 && memcmp(seq->ledger.node_key.b, seq->node_sk + 32, 32) != 0) {
    snprintf(err, errlen, "node.key does not match the node key of the genesis entry");
    rc = TR_ECORRUPT;
  }
  if (rc == 0) rc = check_against_checkpoint_file(seq, err, errlen);
  if (rc == 0) rc = check_stored_checkpoint(seq, err, errlen);
  if (rc != 0) {
    tr_store_close(seq->writer);
    seq->writer = NULL;
  }
  return rc;
}

/* The database may hold a newer checkpoint than the file: the file write
 * failed (out of descriptors, disk full) or a forced restore moved the file
 * aside.  Publish that one again, and never sign a second note for a size
 * already stored (its row is unique). */
static void checkpoint_file_catch_up(tr_sequencer_t *seq) {
  uint64_t size = 0;
  uint8_t root[32];
  char *note = NULL;
  if (tr_store_checkpoint_latest(seq->writer, &size, root, &note) != 0 || size <= seq->cp_size) {
    free(note);
    return;
  }
  if (tr_file_replace(seq->checkpoint_path, note, strlen(note)) != 0)
    log_error("seq", "cannot write %s: %s; the database copy of checkpoint %llu is durable", seq->checkpoint_path,
              strerror(errno), (unsigned long long)size);
  else
    log_info("seq", "%s brought up to the stored checkpoint %llu", seq->checkpoint_path, (unsigned long long)size);
  seq->cp_size = size;
  free(note);
}

static int sequencer_init(tr_sequencer_t *seq, const uint8_t node_sk[64], tr_mailbox_t *done) {
  memset(seq, 0, sizeof *seq);
  seq->done = done;
  memcpy(seq->node_sk, node_sk, 64);
  seq->cap = TR_SEQ_QUEUE_MAX;
  seq->ring = calloc(seq->cap, sizeof *seq->ring);
  if (seq->ring == NULL || uv_mutex_init(&seq->mu) != 0 || uv_mutex_init(&seq->write_mu) != 0 ||
      uv_mutex_init(&seq->rate_mu) != 0 ||
      uv_cond_init(&seq->cond) != 0 || uv_cond_init(&seq->room) != 0)
    return TR_ENOMEM;
  return 0;
}

/* Old databases kept account history behind its own mark; bring it up to
 * the derived mark before the state loads (it never is behind since 004). */
static int history_upgrade(tr_sequencer_t *seq, uint64_t through, char *err, size_t errlen) {
  uint64_t history = 0, rebuilt = 0;
  int rc = tr_store_history_through(seq->writer, &history);
  if (rc == 0 && history < through && (rc = tr_store_history_catch_up(seq->writer, through, &rebuilt)) != 0)
    tr_store_rollback(seq->writer);
  if (rc != 0) snprintf(err, errlen, "cannot rebuild account history: %s", tr_store_error_text(seq->writer, rc));
  else if (rebuilt > 0) log_info("seq", "rebuilt account history of the last %llu entries", (unsigned long long)rebuilt);
  return rc;
}

static int derived_through(tr_sequencer_t *seq, uint64_t *through, char *err, size_t errlen) {
  int rc = tr_store_derived_mark(seq->writer, through);
  if (rc != 0) snprintf(err, errlen, "cannot read the derived mark: %s", tr_store_error_text(seq->writer, rc));
  return rc;
}

int tr_sequencer_check(tr_sequencer_t *seq, const char *datadir, const uint8_t node_sk[64], uint64_t *size,
                       char *err, size_t errlen) {
  uint64_t through = 0;
  int rc = sequencer_init(seq, node_sk, NULL);
  if (rc == 0) rc = journal_open(seq, datadir, 1, err, errlen);
  if (rc == 0) rc = derived_through(seq, &through, err, errlen);
  if (rc == 0) rc = state_load(seq, through, err, errlen); /* in memory only: the tail replays */
  if (rc == 0) rc = tr_store_head(seq->writer, size, NULL, NULL);
  tr_sequencer_stop(seq);
  return rc;
}

/* Commits run on tr-journal; tr-seq then reads the store on a connection
 * of its own. */
static int journal_stage_open(tr_sequencer_t *seq, const char *db, char *err, size_t errlen) {
  int rc = tr_store_open(db, TR_STORE_READONLY, &seq->reader, err, errlen);
  if (rc == 0 && (rc = tr_journal_stage_start(seq)) != 0) snprintf(err, errlen, "cannot start the journal thread");
  return rc;
}

int tr_sequencer_start(tr_sequencer_t *seq, const char *datadir, const uint8_t node_sk[64], tr_mailbox_t *done,
                       const tr_config_t *config, char *err, size_t errlen) {
  int rc = sequencer_init(seq, node_sk, done);
  seq->cluster_id = config->cluster_id;
  if (rc == 0 && seq->cluster_id != 0 && (seq->scratch_tx = malloc(sizeof *seq->scratch_tx)) == NULL) rc = TR_ENOMEM;
  seq->clock_skew_max_ms = (uint64_t)config->clock_skew_max_s * 1000u;
  seq->lookup_two_levels_from = config->lookup_two_levels_from;
  seq->clock_ref_wall_ms = tr_now_ms(); /* trusted once, at start */
  seq->clock_ref_mono_ms = seq_mono_ms();
  if (rc == 0) rc = journal_open(seq, datadir, 0, err, errlen);
  if (rc != 0) return rc;
  checkpoint_file_catch_up(seq);
  char db[TR_PATH_MAX];
  uint64_t through = 0, head_time = 0;
  rc = tr_path_join(db, sizeof db, datadir, TR_DB_FILE);
  if (rc == 0) rc = derived_through(seq, &through, err, errlen);
  if (rc == 0) rc = history_upgrade(seq, through, err, errlen);
  if (rc == 0) rc = state_load(seq, through, err, errlen);
  if (rc == 0) {
    atomic_store(&seq->stats.size, seq->mem.size);
    head_time = seq->mem.head_time;
    rc = tr_derived_start(&seq->derived, db, seq->checkpoint_path, seq->ledger.chain, seq->node_sk, through,
                          seq->cp_size, head_time, seq, done, err, errlen);
  }
  if (rc == 0) rc = delta_hand_over(seq); /* the replayed tail, if any */
  if (rc == 0) rc = journal_stage_open(seq, db, err, errlen);
  if (rc == 0 && uv_thread_create(&seq->thread, seq->cluster_id ? tr_replica_main : sequencer_main, seq) != 0) {
    snprintf(err, errlen, "cannot start the sequencer thread");
    rc = TR_EIO;
  }
  if (rc != 0) {
    tr_journal_stage_stop(seq);
    tr_store_close(seq->reader);
    seq->reader = NULL;
    tr_derived_stop(&seq->derived);
    state_free(seq);
    tr_store_close(seq->writer);
    seq->writer = NULL;
    return rc;
  }
  seq->started = true;
  return 0;
}

int tr_sequencer_push(tr_sequencer_t *seq, tr_job_t *job, tr_elem_t *elem) {
  uv_mutex_lock(&seq->mu);
  if (seq->count == seq->cap || seq->stopping) {
    uv_mutex_unlock(&seq->mu);
    return -1;
  }
  seq->ring[(seq->head + seq->count) % seq->cap] = (tr_seq_item_t){job, elem};
  seq->count++;
  uv_cond_signal(&seq->cond);
  uv_mutex_unlock(&seq->mu);
  return 0;
}

size_t tr_sequencer_depth(tr_sequencer_t *seq) {
  uv_mutex_lock(&seq->mu);
  size_t n = seq->count;
  uv_mutex_unlock(&seq->mu);
  return n;
}

int tr_sequencer_stop(tr_sequencer_t *seq) {
  if (seq->started) {
    uv_mutex_lock(&seq->mu);
    seq->stopping = true;
    uv_cond_signal(&seq->cond);
    uv_cond_broadcast(&seq->room);
    uv_mutex_unlock(&seq->mu);
    tr_derived_unbound(&seq->derived); /* its last batches must not wait for a writer that cannot write */
    uv_thread_join(&seq->thread);
    seq->started = false;
  }
  /* The writer behind drains its queue and writes the last checkpoint. */
  int rc = tr_derived_stop(&seq->derived);
  state_free(seq);
  tr_store_close(seq->reader);
  seq->reader = NULL;
  tr_store_close(seq->writer);
  seq->writer = NULL;
  sodium_memzero(seq->node_sk, sizeof seq->node_sk);
  free(seq->ring);
  seq->ring = NULL;
  free(seq->scratch_tx);
  seq->scratch_tx = NULL;
  tr_replica_events_free(seq);
  return rc;
}
