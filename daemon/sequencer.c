/* sequencer.c — ordered application and group commit on a thread of its own,
 * so fsync never stalls the event loop. */
#include "sequencer.h"

#include <sodium.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_json.h"
#include "tr_limits.h"
#include "tr_merkle.h"
#include "tr_node.h"
#include "tr_query.h"

/* ---- checkpoints ---- */

static bool checkpoint_due(const tr_sequencer_t *seq, uint64_t size, uint64_t mono_ms) {
  return size > seq->cp_size && (seq->cp_mono_ms == 0 || mono_ms >= seq->cp_mono_ms + TR_CHECKPOINT_INTERVAL_MS);
}

/* Adds a checkpoint row for the current head inside the open transaction
 * when one is due (intervals on the monotonic clock: a wall clock stepped
 * back must not stop checkpoints).  *note_out gets the note for the file
 * once committed; time_ms is the time stored with it. */
static int checkpoint_if_due(tr_sequencer_t *seq, uint64_t mono_ms, uint64_t time_ms, char **note_out,
                             uint64_t *size_out) {
  uint64_t size = 0;
  int rc = tr_store_head(seq->writer, &size, NULL, NULL);
  if (rc != 0 || !checkpoint_due(seq, size, mono_ms)) return rc;
  uint8_t root[32];
  char note[TR_CHECKPOINT_NOTE_BUF_BYTES];
  size_t note_len = 0;
  rc = tr_store_merkle_root(seq->writer, size, root);
  if (rc == 0) rc = tr_checkpoint_sign(seq->ledger.chain, size, root, seq->node_sk, note, sizeof note, &note_len);
  if (rc == 0) rc = tr_store_checkpoint_put(seq->writer, size, root, time_ms, note);
  if (rc == 0) {
    *note_out = strdup(note);
    *size_out = size;
    if (*note_out == NULL) rc = TR_ENOMEM;
  }
  return rc;
}

/* After the commit: the file outside the database that a restored old
 * database cannot match. */
static void checkpoint_published(tr_sequencer_t *seq, char *note, uint64_t size, uint64_t mono_ms) {
  if (note == NULL) return;
  if (tr_file_replace(seq->checkpoint_path, note, strlen(note)) != 0)
    log_error("seq", "cannot write %s: %s; the database copy of checkpoint %llu is durable", seq->checkpoint_path,
              strerror(errno), (unsigned long long)size);
  seq->cp_size = size;
  seq->cp_mono_ms = mono_ms;
  atomic_fetch_add(&seq->stats.checkpoints, 1);
  free(note);
}

/* ---- account history ---- */

/* After a commit: what readers may now rely on, for node.status and for the
 * loop's choice whether an account.history query must wait. */
static void history_published(tr_sequencer_t *seq, uint64_t mono_ms) {
  size_t pending = tr_store_history_pending(seq->writer);
  uint64_t size = 0;
  if (pending == 0) {
    if (tr_store_head(seq->writer, &size, NULL, NULL) == 0) atomic_store(&seq->stats.history_through, size);
    seq->history_since_ms = 0;
  } else if (seq->history_since_ms == 0) {
    seq->history_since_ms = mono_ms;
  }
  atomic_store(&seq->stats.history_pending, pending);
}

static bool history_due(const tr_sequencer_t *seq, uint64_t mono_ms) {
  return seq->history_since_ms != 0 && mono_ms >= seq->history_since_ms + TR_HISTORY_LAG_MS;
}

/* Inside the open transaction. */
static int history_flush(tr_sequencer_t *seq) {
  if (tr_store_history_pending(seq->writer) == 0) return 0;
  uint64_t t0 = tr_clock_ns();
  int rc = tr_store_history_flush(seq->writer);
  atomic_fetch_add(&seq->stats.history_flushes, 1);
  atomic_fetch_add(&seq->stats.history_ns, tr_clock_ns() - t0);
  return rc;
}

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

/* Applies each tx in order inside the open transaction.  Returns 0, or a
 * storage error after which the whole batch must be rolled back. */
static int batch_apply(tr_sequencer_t *seq, tr_seq_batch_t *b, uint64_t clock_ms, bool *history_asked) {
  for (size_t i = 0; i < b->n; i++) {
    tr_elem_t *e = b->items[i].elem;
    if (e->history_flush) {
      *history_asked = true;
      continue;
    }
    tr_receipt_t receipt;
    tr_refusal_t refusal = {0};
    int rc = tr_ledger_apply(&seq->ledger, e->tx, e->tx_bytes, e->tx_len, e->sig, clock_ms, &receipt, &refusal);
    if (rc == 0) {
      e->response = receipt_text(e, &receipt);
      tr_receipt_clear(&receipt);
      if (!receipt.duplicate) atomic_fetch_add(&seq->stats.committed_txs, 1);
    } else if (tr_err_is_refusal(rc)) {
      e->response = tr_rpc_refusal_text(e->id, rc, refusal.detail);
      atomic_fetch_add(&seq->stats.refused_txs, 1);
    } else {
      log_error("seq", "storage error applying a tx: %s (%s)", tr_strerror(rc), tr_store_errmsg(seq->writer));
      return rc;
    }
  }
  return 0;
}

/* Every element of a batch that was rolled back gets an error, an
 * account.history query too: run on what is written it would be a silently
 * short page. */
static void batch_fail(tr_seq_batch_t *b, const char *why) {
  char msg[512];
  for (size_t i = 0; i < b->n; i++) {
    tr_elem_t *e = b->items[i].elem;
    snprintf(msg, sizeof msg, "storage error: %s: %s", e->history_flush ? "account history is not written" :
             "the tx was not recorded", why);
    free(e->response);
    e->response = tr_rpc_error_text(e->id, TR_RPC_INTERNAL_ERROR, msg, NULL);
  }
}

/* Milliseconds on the monotonic clock, for intervals and for bounding the
 * wall clock. */
static uint64_t mono_ms(void) { return tr_clock_ns() / 1000000u; }

/* The wall clock reading a batch may use: one more than the configured skew
 * ahead of the last accepted reading plus the monotonic time elapsed since
 * is refused (a clock stepped a year ahead for one batch would otherwise fix
 * every later entry time a year ahead, §4 keeps times from decreasing).  A
 * refused reading is replaced by that elapsed-time estimate. */
static uint64_t clock_reading(tr_sequencer_t *seq, uint64_t now_mono) {
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
static const char *write_failed(tr_sequencer_t *seq, int rc, const char *what) {
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
static void batch_refuse_halted(tr_sequencer_t *seq, tr_seq_batch_t *b) {
  char why[600];
  snprintf(why, sizeof why, "the node stopped taking writes (%s)", seq->halt_reason);
  batch_fail(b, why);
}

static void batch_commit(tr_sequencer_t *seq, tr_seq_batch_t *b) {
  if (atomic_load(&seq->stats.halted)) {
    batch_refuse_halted(seq, b);
    return;
  }
  uint64_t t0 = tr_clock_ns(), now_mono = t0 / 1000000u, clock_ms = clock_reading(seq, now_mono);
  char *note = NULL;
  uint64_t cp_size = 0;
  bool history_asked = false;
  int rc = tr_store_begin(seq->writer);
  if (rc == 0) rc = batch_apply(seq, b, clock_ms, &history_asked);
  if (rc == 0) rc = checkpoint_if_due(seq, now_mono, clock_ms, &note, &cp_size);
  if (rc == 0 && (history_asked || history_due(seq, now_mono))) rc = history_flush(seq);
  uint64_t t1 = tr_clock_ns();
  if (rc == 0) rc = tr_store_commit(seq->writer); /* fsync: after this, receipts may go out */
  if (rc != 0) {
    char what[64];
    snprintf(what, sizeof what, "group commit of %zu txs", b->n);
    batch_fail(b, write_failed(seq, rc, what));
    free(note);
    note = NULL;
  }
  atomic_fetch_add(&seq->stats.apply_ns, t1 - t0);
  uint64_t commit_ns = tr_clock_ns() - t1;
  atomic_fetch_add(&seq->stats.commit_ns, commit_ns);
  tr_hist_observe(&seq->stats.commit_seconds, &TR_HIST_DURATION, commit_ns);
  checkpoint_published(seq, note, cp_size, now_mono);
  history_published(seq, now_mono);
  uint64_t size = 0;
  if (tr_store_head(seq->writer, &size, NULL, NULL) == 0) atomic_store(&seq->stats.size, size);
}

/* Takes up to TR_COMMIT_BATCH_MAX ready items; NULL when none. Lock held. */
static tr_seq_batch_t *batch_form(tr_sequencer_t *seq) {
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

/* With nothing to apply: a checkpoint when one is due, and history rows
 * that have waited long enough (all of them when `final`). */
static int idle_write(tr_sequencer_t *seq, bool final) {
  uint64_t now = mono_ms(), size = 0;
  char *note = NULL;
  if (atomic_load(&seq->stats.halted)) return TR_EIO;
  if (tr_store_head(seq->writer, &size, NULL, NULL) != 0) return TR_EIO;
  bool checkpoint = final ? size > seq->cp_size : checkpoint_due(seq, size, now);
  bool history = tr_store_history_pending(seq->writer) > 0 && (final || history_due(seq, now));
  if (!checkpoint && !history) return 0;
  if (final) seq->cp_mono_ms = 0; /* due now: the last checkpoint covers everything committed */
  int rc = tr_store_begin(seq->writer);
  if (rc == 0 && checkpoint) rc = checkpoint_if_due(seq, now, clock_reading(seq, now), &note, &size);
  if (rc == 0 && history) rc = history_flush(seq);
  if (rc == 0) rc = tr_store_commit(seq->writer);
  if (rc != 0) {
    free(note);
    write_failed(seq, rc, checkpoint ? "writing a checkpoint" : "writing account history");
    return rc;
  }
  checkpoint_published(seq, note, size, now);
  history_published(seq, now);
  return 0;
}

/* Committed txs per second over roughly the last few seconds (an
 * exponentially weighted average of per-batch rates), for node.status. */
static void rate_update(tr_sequencer_t *seq, size_t n) {
  uint64_t now = mono_ms();
  if (seq->rate_at_ms == 0) seq->rate_at_ms = now;
  seq->rate_txs += n;
  uint64_t dt = now - seq->rate_at_ms;
  if (dt < 250) return;
  uint64_t sample = seq->rate_txs * 1000u / dt, old = atomic_load(&seq->stats.recent_tx_per_s);
  atomic_store(&seq->stats.recent_tx_per_s, old ? (old * 3 + sample) / 4 : sample);
  seq->rate_txs = 0;
  seq->rate_at_ms = now;
}

static void sequencer_main(void *arg) {
  tr_thread_name("tr-seq");
  tr_sequencer_t *seq = arg;
  for (;;) {
    uv_mutex_lock(&seq->mu);
    if (seq->count == 0 && !seq->stopping)
      uv_cond_timedwait(&seq->cond, &seq->mu, (uint64_t)TR_CHECKPOINT_INTERVAL_MS * 1000000u / 4);
    bool stop = seq->stopping && seq->count == 0;
    tr_seq_batch_t *b = batch_form(seq);
    uv_mutex_unlock(&seq->mu);
    if (b) {
      batch_commit(seq, b);
      atomic_fetch_add(&seq->stats.batches, 1);
      atomic_store(&seq->stats.last_batch, b->n);
      tr_hist_observe(&seq->stats.batch_size, &TR_HIST_BATCH, b->n);
      if (b->n > atomic_load(&seq->stats.batch_max)) atomic_store(&seq->stats.batch_max, b->n);
      rate_update(seq, b->n);
      while (tr_mailbox_post(seq->done, TR_MSG_SEQ_DONE, b) != 0) { /* receipts are owed: never drop them */
        log_error("seq", "out of memory posting receipts; retrying");
        uv_sleep(10);
      }
    } else {
      rate_update(seq, 0); /* an idle node's rate decays to 0 */
      idle_write(seq, false);
    }
    if (stop) break;
  }
  /* A final checkpoint of everything committed, and every history row; main
   * reports a failure (exit status, no "stopped cleanly"). */
  seq->final_write_rc = idle_write(seq, true);
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
  if (seq->ring == NULL || uv_mutex_init(&seq->mu) != 0 || uv_cond_init(&seq->cond) != 0) return TR_ENOMEM;
  return 0;
}

int tr_sequencer_check(tr_sequencer_t *seq, const char *datadir, const uint8_t node_sk[64], uint64_t *size,
                       char *err, size_t errlen) {
  int rc = sequencer_init(seq, node_sk, NULL);
  if (rc == 0) rc = journal_open(seq, datadir, 1, err, errlen);
  if (rc == 0) rc = tr_store_head(seq->writer, size, NULL, NULL);
  tr_sequencer_stop(seq);
  return rc;
}

int tr_sequencer_start(tr_sequencer_t *seq, const char *datadir, const uint8_t node_sk[64], tr_mailbox_t *done,
                       unsigned clock_skew_max_s, char *err, size_t errlen) {
  int rc = sequencer_init(seq, node_sk, done);
  seq->clock_skew_max_ms = (uint64_t)clock_skew_max_s * 1000u;
  seq->clock_ref_wall_ms = tr_now_ms(); /* trusted once, at start */
  seq->clock_ref_mono_ms = mono_ms();
  if (rc == 0) rc = journal_open(seq, datadir, 0, err, errlen);
  if (rc != 0) return rc;
  checkpoint_file_catch_up(seq);
  uint64_t size = 0, rebuilt = 0;
  /* History rows of the last second before a hard stop were in memory only. */
  if ((rc = tr_store_history_catch_up(seq->writer, &rebuilt)) != 0)
    snprintf(err, errlen, "cannot rebuild account history: %s", tr_store_error_text(seq->writer, rc));
  if (rc != 0) tr_store_rollback(seq->writer);
  if (rc == 0 && rebuilt > 0)
    log_info("seq", "rebuilt account history of the last %llu entries", (unsigned long long)rebuilt);
  if (rc == 0) {
    tr_store_history_defer(seq->writer, TR_HISTORY_PENDING_MAX);
    rc = tr_store_head(seq->writer, &size, NULL, NULL);
  }
  atomic_store(&seq->stats.size, size);
  atomic_store(&seq->stats.history_through, size);
  if (rc == 0 && uv_thread_create(&seq->thread, sequencer_main, seq) != 0) rc = TR_EIO;
  if (rc != 0) {
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
  int rc = 0;
  if (seq->started) {
    uv_mutex_lock(&seq->mu);
    seq->stopping = true;
    uv_cond_signal(&seq->cond);
    uv_mutex_unlock(&seq->mu);
    uv_thread_join(&seq->thread);
    seq->started = false;
    rc = seq->final_write_rc;
  }
  tr_store_close(seq->writer);
  seq->writer = NULL;
  sodium_memzero(seq->node_sk, sizeof seq->node_sk);
  free(seq->ring);
  seq->ring = NULL;
  return rc;
}
