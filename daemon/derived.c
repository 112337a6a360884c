/* derived.c — the writer behind the sequencer (derived.h). */
#include "derived.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "sequencer.h"
#include "tr_err.h"
#include "tr_limits.h"
#include "tr_node.h"
#include "tr_note.h"

static uint64_t mono_ms(void) { return tr_clock_ns() / 1000000u; }

/* ---- checkpoints ---- */

static bool checkpoint_due(const tr_derived_t *w, uint64_t size, uint64_t now) {
  return size > w->cp_size && (w->cp_mono_ms == 0 || now >= w->cp_mono_ms + TR_CHECKPOINT_INTERVAL_MS);
}

/* Inside the open transaction, once the Merkle nodes up to `size` are in:
 * the checkpoint row; *note_out gets the note for the file. */
static int checkpoint_add(tr_derived_t *w, uint64_t size, char **note_out) {
  uint8_t root[32];
  char note[TR_CHECKPOINT_NOTE_BUF_BYTES];
  size_t note_len = 0;
  int rc = tr_store_merkle_root(w->conn, size, root);
  if (rc == 0) rc = tr_checkpoint_sign(w->chain, size, root, w->node_sk, note, sizeof note, &note_len);
  if (rc == 0) rc = tr_store_checkpoint_put(w->conn, size, root, w->last_time, note);
  if (rc == 0 && (*note_out = strdup(note)) == NULL) rc = TR_ENOMEM;
  return rc;
}

/* After the commit: the file outside the database that a restored old
 * database cannot match (PROTOCOL.md §3: durable before served). */
static void checkpoint_published(tr_derived_t *w, char *note, uint64_t size, uint64_t now) {
  if (note == NULL) return;
  if (tr_file_replace(w->checkpoint_path, note, strlen(note)) != 0)
    log_error("derive", "cannot write %s: %s; the database copy of checkpoint %llu is durable", w->checkpoint_path,
              strerror(errno), (unsigned long long)size);
  w->cp_size = size;
  w->cp_mono_ms = now;
  atomic_fetch_add(&w->stats.checkpoints, 1);
  free(note);
}

/* ---- one write ---- */

static size_t delta_rows(const tr_delta_t *d) {
  return d->receipts_n + d->history_n + d->distributions_n + d->payouts_n + d->nodes_n + d->accounts_n +
         d->assets_n + d->holdings_n;
}

/* After a failed write: the words for waiting queries, and the node halts
 * writes when the database is damaged (else the write is retried). */
static void write_failed(tr_derived_t *w, int rc, const char *what) {
  char why[sizeof w->why];
  snprintf(why, sizeof why, "%s", tr_store_error_text(w->conn, rc));
  bool fatal = tr_store_failure_is_fatal();
  tr_store_rollback(w->conn);
  tr_sequencer_behind_unlock(w->seq);
  uv_mutex_lock(&w->mu);
  memcpy(w->why, why, sizeof why);
  uv_mutex_unlock(&w->mu);
  atomic_fetch_add(&w->stats.errors, 1);
  if (fatal) tr_sequencer_halt(w->seq, what, why);
  else log_error("derive", "%s failed: %s; retrying", what, why);
}

/* ---- one write ---- */

/* Writes deltas first..last (the queue's head part) and, when due or
 * `final`, a checkpoint, in one transaction.  Runs without the lock. */
static int write_deltas(tr_derived_t *w, tr_delta_t *first, tr_delta_t *last, bool final) {
  uint64_t t0 = tr_clock_ns(), now = t0 / 1000000u, through = atomic_load(&w->stats.through), rows = 0;
  for (tr_delta_t *d = first; d != NULL; d = d == last ? NULL : d->next)
    if (d->last > through) through = d->last;
  bool checkpoint = final ? through > w->cp_size : checkpoint_due(w, through, now);
  char *note = NULL;
  /* Derived rows are rebuilt from the journal, so their commits need not
   * fsync (a power loss takes the newest with the mark, and the node
   * replays them); a checkpoint's, published outside the database, and the
   * last at stop do.  The journal's next commit fsyncs what came before. */
  bool durable = checkpoint || final;
  int rc = durable == w->durable ? 0 : tr_store_set_durable(w->conn, durable);
  if (rc == 0) w->durable = durable;
  tr_sequencer_behind_lock(w->seq);
  if (rc == 0) rc = tr_store_begin(w->conn);
  for (tr_delta_t *d = first; rc == 0 && d != NULL; d = d == last ? NULL : d->next) {
    rc = tr_store_derived_write_but_history(w->conn, d); /* history: tr-lookups, at once (lookups.h) */
    rows += delta_rows(d);
    if (d->entries_n > 0) w->last_time = d->entries[d->entries_n - 1].time;
  }
  if (rc == 0 && checkpoint) rc = checkpoint_add(w, through, &note);
  if (rc == 0) rc = tr_store_commit(w->conn);
  if (rc != 0) {
    free(note);
    write_failed(w, rc, "writing the derived tables");
    return rc;
  }
  tr_sequencer_behind_unlock(w->seq);
  checkpoint_published(w, note, through, now);
  atomic_store(&w->stats.through, through);
  atomic_fetch_add(&w->stats.writes, 1);
  atomic_fetch_add(&w->stats.rows, rows);
  atomic_fetch_add(&w->stats.write_ns, tr_clock_ns() - t0);
  return 0;
}

/* Tells the loop: queries waiting for a size may run (or learn of a failure). */
static void notify_loop(tr_derived_t *w) {
  if (w->done != NULL && tr_mailbox_post(w->done, TR_MSG_DERIVED, NULL) != 0)
    log_warn("derive", "out of memory telling the loop; waiting queries run at the next write");
}

/* Writes the whole queue (one transaction: rows of many batches share pages)
 * and frees what was written.  Called and returns with the lock held. */
static void write_queue(tr_derived_t *w) {
  /* Many batches in one transaction share pages; but not so many that the
   * journal's next commit, which waits for the write lock, waits long. */
  tr_delta_t *first = w->head, *last = w->head;
  for (size_t bytes = last->bytes; last->next != NULL && bytes + last->next->bytes <= TR_DERIVED_WRITE_BYTES_MAX;)
    last = last->next, bytes += last->bytes;
  w->busy = true;
  uv_mutex_unlock(&w->mu);
  int rc = write_deltas(w, first, last, false);
  if (rc == 0) tr_lookups_feed(&w->lookups, first, last, atomic_load(&w->stats.through));
  uv_mutex_lock(&w->mu);
  w->busy = false;
  atomic_store(&w->stats.failing, rc != 0);
  if (rc == 0) {
    tr_delta_t *stop = last->next;
    w->oldest_ns = tr_clock_ns(); /* the rest gathers anew (it waited no longer than this write) */
    for (tr_delta_t *d = first, *next; d != stop; d = next) {
      next = d->next;
      w->queued_bytes -= d->bytes;
      atomic_fetch_sub(&w->stats.queued_deltas, 1);
      tr_delta_free(d);
    }
    w->head = stop;
    if (w->head == NULL) w->tail = NULL;
    atomic_store(&w->stats.queued_bytes, w->queued_bytes);
  }
  uv_cond_broadcast(&w->cond); /* room for the sequencer, or a drop may go on */
  uv_mutex_unlock(&w->mu);
  notify_loop(w);
  uv_mutex_lock(&w->mu);
}

/* Idle: a checkpoint of what is written, when one is due; and the lookup
 * rows of whatever entries they lack are written now, however few. */
static void idle_write(tr_derived_t *w) {
  uint64_t through = atomic_load(&w->stats.through);
  if (atomic_load(&w->lookups.stats.through) < through) tr_lookups_settle(&w->lookups, through);
  if (!checkpoint_due(w, through, mono_ms())) return;
  w->busy = true;
  uv_mutex_unlock(&w->mu);
  write_deltas(w, NULL, NULL, false);
  uv_mutex_lock(&w->mu);
  w->busy = false;
  uv_cond_broadcast(&w->cond);
}

/* Whether to wait for more batches before writing the queue, and for how
 * long (ns): while the first queued batch is younger than
 * TR_DERIVED_LINGER_MS, less than a write's worth is queued, no query waits
 * for the tables and the node is not stopping. */
static bool linger(tr_derived_t *w, uint64_t *wait_ns) {
  if (w->stopping || w->unbounded || w->queued_bytes >= TR_DERIVED_WRITE_BYTES_MAX ||
      atomic_load(&w->wanted) > atomic_load(&w->stats.through))
    return false;
  uint64_t now = tr_clock_ns(), until = w->oldest_ns + (uint64_t)TR_DERIVED_LINGER_MS * 1000000u;
  if (now >= until) return false;
  *wait_ns = until - now;
  return true;
}

static void derived_main(void *arg) {
  tr_derived_t *w = arg;
  tr_thread_name("tr-derive");
  uv_mutex_lock(&w->mu);
  for (;;) {
    bool work = w->head != NULL && !w->pause, failing = atomic_load(&w->stats.failing);
    if (w->stopping && (!work || failing)) break; /* a failing write is given up at stop: the next start replays */
    uint64_t wait_ns = 0;
    if (work && !failing && linger(w, &wait_ns)) {
      uv_cond_timedwait(&w->cond, &w->mu, wait_ns); /* a push, a hurry or the stop wakes it */
      continue;
    }
    if (work && !failing) {
      write_queue(w);
      continue;
    }
    /* Idle (wake for checkpoints), or failing (wake to retry). */
    uv_cond_timedwait(&w->cond, &w->mu,
                      (uint64_t)(failing ? TR_DERIVED_RETRY_MS : TR_CHECKPOINT_INTERVAL_MS / 4) * 1000000u);
    if (failing && w->head != NULL && !w->pause && !w->stopping) write_queue(w);
    else if (!failing && w->head == NULL && !w->pause && !w->stopping) idle_write(w);
  }
  bool left = w->head != NULL;
  uv_mutex_unlock(&w->mu);
  int rc = write_deltas(w, NULL, NULL, true); /* the final checkpoint of what is written */
  tr_lookups_settle(&w->lookups, atomic_load(&w->stats.through)); /* written as it stops (tr_derived_stop) */
  w->final_rc = rc != 0 ? rc : left ? TR_EIO : 0;
  notify_loop(w);
}

/* ---- the sequencer's side ---- */

/* Drops every queued delta (with the lock held, or after the thread ended). */
static void queue_free(tr_derived_t *w) {
  for (tr_delta_t *d = w->head, *next; d != NULL; d = next) {
    next = d->next;
    tr_delta_free(d);
  }
  w->head = w->tail = NULL;
  w->queued_bytes = 0;
  atomic_store(&w->stats.queued_deltas, 0);
  atomic_store(&w->stats.queued_bytes, 0);
}

void tr_derived_push(tr_derived_t *w, tr_delta_t *d) {
  d->next = NULL;
  uv_mutex_lock(&w->mu);
  while (w->queued_bytes > TR_DERIVED_QUEUE_BYTES_MAX && !w->stopping && !w->unbounded)
    uv_cond_wait(&w->cond, &w->mu);
  if (w->tail) w->tail->next = d;
  else w->head = d, w->oldest_ns = tr_clock_ns();
  w->tail = d;
  w->queued_bytes += d->bytes;
  atomic_fetch_add(&w->stats.queued_deltas, 1);
  atomic_store(&w->stats.queued_bytes, w->queued_bytes);
  uv_cond_broadcast(&w->cond);
  uv_mutex_unlock(&w->mu);
}

void tr_derived_hurry(tr_derived_t *w, uint64_t need) {
  if (!w->started) return;
  tr_lookups_hurry(&w->lookups, need); /* account history, after this writer */
  uint64_t have = atomic_load(&w->wanted);
  while (have < need && !atomic_compare_exchange_weak(&w->wanted, &have, need)) {}
  if (have >= need) return; /* asked for already */
  uv_mutex_lock(&w->mu);
  uv_cond_broadcast(&w->cond);
  uv_mutex_unlock(&w->mu);
}

void tr_derived_unbound(tr_derived_t *w) {
  if (!w->started) return;
  uv_mutex_lock(&w->mu);
  w->unbounded = true;
  uv_cond_broadcast(&w->cond);
  uv_mutex_unlock(&w->mu);
}

int tr_derived_receipt_get(tr_derived_t *w, uint64_t seq, char **effects_json) {
  int rc = TR_ENOT_FOUND;
  uv_mutex_lock(&w->mu);
  for (tr_delta_t *d = w->head; d != NULL && rc == TR_ENOT_FOUND; d = d->next)
    if (d->entries_n > 0 && seq >= d->first && seq <= d->last) rc = tr_delta_receipt_get(d, seq, effects_json);
  uv_mutex_unlock(&w->mu);
  return rc;
}

void tr_derived_failure(tr_derived_t *w, char *out, size_t outlen) {
  uv_mutex_lock(&w->mu);
  snprintf(out, outlen, "%s", atomic_load(&w->stats.failing) ? w->why : "");
  uv_mutex_unlock(&w->mu);
  if (out[0] == '\0') tr_lookups_history_failure(&w->lookups, out, outlen);
}

bool tr_derived_failing(tr_derived_t *w) {
  return atomic_load(&w->stats.failing) || atomic_load(&w->lookups.stats.history_failing);
}

uint64_t tr_derived_drop(tr_derived_t *w) {
  uv_mutex_lock(&w->mu);
  w->pause = true;
  while (w->busy) uv_cond_wait(&w->cond, &w->mu);
  queue_free(w);
  w->pause = false;
  uint64_t through = atomic_load(&w->stats.through);
  uv_mutex_unlock(&w->mu);
  return through;
}

int tr_derived_start(tr_derived_t *w, const char *db_path, const char *checkpoint_path, const char *chain,
                     const uint8_t node_sk[64], uint64_t through, uint64_t cp_size, uint64_t last_time,
                     struct tr_sequencer *seq, tr_mailbox_t *done, char *err, size_t errlen) {
  memset(w, 0, sizeof *w);
  w->seq = seq;
  w->done = done;
  w->cp_size = cp_size;
  w->last_time = last_time;
  memcpy(w->node_sk, node_sk, 64);
  snprintf(w->chain, sizeof w->chain, "%s", chain);
  snprintf(w->checkpoint_path, sizeof w->checkpoint_path, "%s", checkpoint_path);
  atomic_store(&w->stats.through, through);
  if (uv_mutex_init(&w->mu) != 0) return TR_ENOMEM;
  if (uv_cond_init(&w->cond) != 0) {
    uv_mutex_destroy(&w->mu);
    return TR_ENOMEM;
  }
  w->durable = true; /* tr_store_open's setting */
  int rc = tr_store_open(db_path, 0, &w->conn, err, errlen);
  if (rc == 0) rc = tr_lookups_start(&w->lookups, db_path, seq, done, err, errlen);
  if (rc == 0 && uv_thread_create(&w->thread, derived_main, w) != 0) {
    snprintf(err, errlen, "cannot start the derived writer thread");
    tr_lookups_stop(&w->lookups);
    rc = TR_EIO;
  }
  if (rc != 0) {
    tr_store_close(w->conn);
    w->conn = NULL;
    uv_cond_destroy(&w->cond);
    uv_mutex_destroy(&w->mu);
    sodium_memzero(w->node_sk, sizeof w->node_sk);
    return rc;
  }
  w->started = true;
  return 0;
}

int tr_derived_stop(tr_derived_t *w) {
  if (!w->started) return 0;
  uv_mutex_lock(&w->mu);
  w->stopping = true;
  uv_cond_broadcast(&w->cond);
  uv_mutex_unlock(&w->mu);
  uv_thread_join(&w->thread);
  w->started = false;
  int rc = w->final_rc;
  queue_free(w); /* anything left after a failed last write: the next start replays it */
  tr_lookups_stop(&w->lookups); /* after the last feed */
  tr_store_close(w->conn);
  w->conn = NULL;
  uv_cond_destroy(&w->cond);
  uv_mutex_destroy(&w->mu);
  sodium_memzero(w->node_sk, sizeof w->node_sk);
  return rc;
}
