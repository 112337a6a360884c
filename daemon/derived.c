/* derived.c — the writer behind the sequencer (derived.h). */
#include "derived.h"

#include <errno.h>
#include <sched.h>
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

/* Ends a write: releases the lock the journal's commit shares.  A mutex is
 * not a queue: relocking for the next write (a chunk of lookup rows, a
 * hurried write) at once would often win it again and keep the journal
 * waiting for a whole run.  So a waiting commit goes first (it takes the
 * lock within microseconds; the bound, ~1 ms of yields, only guards against
 * a missed wake, and reads no clock: a clock read per turn is a cost, and
 * under libfaketime a file read). */
#define WRITE_UNLOCK_YIELDS 2000

static void write_unlock(tr_derived_t *w) {
  uv_mutex_unlock(&w->seq->write_mu);
  for (unsigned i = 0; i < WRITE_UNLOCK_YIELDS && atomic_load(&w->seq->journal_waiting) > 0; i++) sched_yield();
}

/* After a failed write: the words for waiting queries, and the node halts
 * writes when the database is damaged (else the write is retried). */
static void write_failed(tr_derived_t *w, int rc, const char *what) {
  char why[sizeof w->why];
  snprintf(why, sizeof why, "%s", tr_store_error_text(w->conn, rc));
  bool fatal = tr_store_failure_is_fatal();
  tr_store_rollback(w->conn);
  write_unlock(w);
  uv_mutex_lock(&w->mu);
  memcpy(w->why, why, sizeof why);
  uv_mutex_unlock(&w->mu);
  atomic_fetch_add(&w->stats.errors, 1);
  if (fatal) tr_sequencer_halt(w->seq, what, why);
  else log_error("derive", "%s failed: %s; retrying", what, why);
}

/* ---- the lookup tables, written late (schema 005) ---- */

/* Keeps the lookup rows of a written delta's entries while they follow the
 * lookup mark without a gap.  After a gap (a start behind, or memory short)
 * none are kept, and lookups_flush catches up from the journal instead;
 * so too past TR_LOOKUP_WRITE_MAX rows (the flushes keep failing). */
static void lookups_collect(tr_derived_t *w, const tr_delta_t *d) {
  if (d->entries_n == 0) return;
  if (d->first != atomic_load(&w->stats.lookups_through) + w->lk_n + 1) {
    w->lk_n = 0;
    return;
  }
  if (w->lk_n + d->entries_n > TR_LOOKUP_WRITE_MAX) { /* flushes keep failing: the journal has them */
    w->lk_n = 0;
    return;
  }
  if (w->lk_n + d->entries_n > w->lk_cap) {
    size_t cap = w->lk_cap ? w->lk_cap * 2 : TR_LOOKUP_WRITE_EVERY;
    while (cap < w->lk_n + d->entries_n) cap *= 2;
    tr_lookup_row_t *lk = realloc(w->lk, cap * sizeof *lk);
    if (lk == NULL) {
      w->lk_n = 0;
      return;
    }
    w->lk = lk;
    w->lk_cap = cap;
  }
  for (size_t i = 0; i < d->entries_n; i++) {
    const tr_entry_t *e = &d->entries[i];
    tr_lookup_row_t *r = &w->lk[w->lk_n++];
    r->seq = e->seq;
    memcpy(r->txid8, e->txid, 8);
    memcpy(r->signer8, e->signer.b, 8);
    memcpy(r->tx_id, e->tx_id, sizeof r->tx_id);
  }
}

static int cmp_seq(uint64_t a, uint64_t b) { return (a > b) - (a < b); }

static int cmp_by_txid(const void *a, const void *b) {
  const tr_lookup_row_t *x = a, *y = b;
  int c = memcmp(x->txid8, y->txid8, 8);
  return c ? c : cmp_seq(x->seq, y->seq);
}

static int cmp_by_id(const void *a, const void *b) {
  const tr_lookup_row_t *x = a, *y = b;
  int c = memcmp(x->signer8, y->signer8, 8);
  if (c == 0) c = strcmp(x->tx_id, y->tx_id);
  return c ? c : cmp_seq(x->seq, y->seq);
}

/* One short transaction of a flush (not fsynced: the rows are rebuilt from
 * the journal): `rows`, or with rows == NULL the journal's entries
 * after..through read back; and the mark moved when `through` is set. */
static int lookups_txn(tr_derived_t *w, const tr_lookup_row_t *rows, size_t n, bool by_id, uint64_t after,
                       uint64_t through) {
  int rc = w->durable ? tr_store_set_durable(w->conn, false) : 0;
  if (rc == 0) w->durable = false;
  uv_mutex_lock(&w->seq->write_mu);
  if (rc == 0) rc = tr_store_begin(w->conn);
  if (rc == 0 && rows == NULL) rc = tr_store_lookups_write(w->conn, after, through);
  if (rc == 0 && rows != NULL) rc = tr_store_lookup_rows_put(w->conn, rows, n, by_id);
  if (rc == 0 && rows != NULL && through > 0) rc = tr_store_lookups_mark_move(w->conn, after, through);
  if (rc == 0) rc = tr_store_commit(w->conn);
  if (rc != 0) {
    write_failed(w, rc, "writing the lookup tables");
    return rc;
  }
  write_unlock(w);
  return 0;
}

/* The lookup rows of the entries after their mark up to the derived mark:
 * when they lag by TR_LOOKUP_WRITE_EVERY, or whatever the lag when `settle`
 * (idle, or the stop).  Rows held in memory are sorted by key and written in
 * transactions of TR_LOOKUP_CHUNK_ROWS, each a key range of its own, so a
 * page is written about once per flush and the journal's commit never waits
 * for more than one chunk.  Without them (a gap) the journal is read back,
 * TR_LOOKUP_WRITE_MAX entries a time.  A failure leaves the rows for the next
 * try; rows already in are skipped then. */
static void lookups_flush(tr_derived_t *w, bool settle) {
  uint64_t mark = atomic_load(&w->stats.lookups_through), through = atomic_load(&w->stats.through);
  if (through <= mark || (!settle && through - mark < TR_LOOKUP_WRITE_EVERY)) return;
  uint64_t t0 = tr_clock_ns();
  if (w->lk_n != through - mark) { /* not all in memory: from the journal */
    w->lk_n = 0;
    uint64_t to = through - mark > TR_LOOKUP_WRITE_MAX ? mark + TR_LOOKUP_WRITE_MAX : through;
    if (lookups_txn(w, NULL, 0, false, mark, to) == 0) atomic_store(&w->stats.lookups_through, to);
  } else {
    int rc = 0;
    for (int by_id = 0; by_id < 2 && rc == 0; by_id++) {
      qsort(w->lk, w->lk_n, sizeof *w->lk, by_id ? cmp_by_id : cmp_by_txid);
      for (size_t at = 0; at < w->lk_n && rc == 0; at += TR_LOOKUP_CHUNK_ROWS) {
        size_t n = w->lk_n - at < TR_LOOKUP_CHUNK_ROWS ? w->lk_n - at : TR_LOOKUP_CHUNK_ROWS;
        bool last = by_id && at + n == w->lk_n;
        rc = lookups_txn(w, w->lk + at, n, by_id, mark, last ? through : 0);
      }
    }
    if (rc == 0) {
      w->lk_n = 0;
      atomic_store(&w->stats.lookups_through, through);
    }
  }
  atomic_fetch_add(&w->stats.lookups_ns, tr_clock_ns() - t0);
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
  uv_mutex_lock(&w->seq->write_mu);
  if (rc == 0) rc = tr_store_begin(w->conn);
  for (tr_delta_t *d = first; rc == 0 && d != NULL; d = d == last ? NULL : d->next) {
    rc = tr_store_derived_write(w->conn, d);
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
  write_unlock(w);
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
  for (tr_delta_t *d = first; rc == 0 && d != NULL; d = d == last ? NULL : d->next) lookups_collect(w, d);
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
  if (rc == 0) lookups_flush(w, false); /* after the loop is told: queries never wait for it */
  uv_mutex_lock(&w->mu);
}

/* Idle: a checkpoint of what is written, when one is due, and the lookup
 * rows of whatever entries they lack. */
static void idle_write(tr_derived_t *w) {
  uint64_t through = atomic_load(&w->stats.through);
  if (!checkpoint_due(w, through, mono_ms()) && atomic_load(&w->stats.lookups_through) >= through) return;
  w->busy = true;
  uv_mutex_unlock(&w->mu);
  if (!checkpoint_due(w, through, mono_ms()) || write_deltas(w, NULL, NULL, false) == 0) lookups_flush(w, true);
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
  if (rc == 0) lookups_flush(w, true);
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
  uint64_t lookups_through = 0;
  w->durable = true; /* tr_store_open's setting */
  int rc = tr_store_open(db_path, 0, &w->conn, err, errlen);
  if (rc == 0 && (rc = tr_store_lookups_mark(w->conn, &lookups_through)) != 0)
    snprintf(err, errlen, "cannot read the lookup mark: %s", tr_store_error_text(w->conn, rc));
  atomic_store(&w->stats.lookups_through, lookups_through);
  if (rc == 0 && uv_thread_create(&w->thread, derived_main, w) != 0) {
    snprintf(err, errlen, "cannot start the derived writer thread");
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
  free(w->lk);
  w->lk = NULL;
  w->lk_n = w->lk_cap = 0;
  tr_store_close(w->conn);
  w->conn = NULL;
  uv_cond_destroy(&w->cond);
  uv_mutex_destroy(&w->mu);
  sodium_memzero(w->node_sk, sizeof w->node_sk);
  return rc;
}
