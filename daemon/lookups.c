/* lookups.c — the writer of the lookup tables and of account history
 * (lookups.h). */
#include "lookups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "sequencer.h"
#include "tr_err.h"
#include "tr_limits.h"

/* ---- the rows, in memory ---- */

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

static bool held_room(tr_lookups_t *l, size_t more) {
  if (l->held_n + more <= l->held_cap) return true;
  size_t cap = l->held_cap ? l->held_cap * 2 : TR_LOOKUP_WRITE_EVERY;
  while (cap < l->held_n + more) cap *= 2;
  tr_lookup_row_t *rows = realloc(l->held, cap * sizeof *rows);
  if (rows == NULL) return false;
  l->held = rows;
  l->held_cap = cap;
  return true;
}

/* Under mu.  The held rows stay one run of consecutive seqs: an entry that
 * does not follow the last held one starts the run anew (what came between
 * is read back from the journal).  Past TR_LOOKUP_WRITE_MAX rows (writes
 * keep failing), or without memory, none are held: the journal has them. */
static void hold_entries(tr_lookups_t *l, const tr_delta_t *d) {
  if (d->entries_n == 0) return;
  if (l->held_n > 0 && l->held[l->held_n - 1].seq + 1 != d->entries[0].seq) l->held_n = 0;
  if (l->held_n + d->entries_n > TR_LOOKUP_WRITE_MAX || !held_room(l, d->entries_n)) {
    l->held_n = 0;
    return;
  }
  for (size_t i = 0; i < d->entries_n; i++) {
    const tr_entry_t *e = &d->entries[i];
    tr_lookup_row_t *r = &l->held[l->held_n++];
    r->seq = e->seq;
    memcpy(r->txid8, e->txid, 8);
    memcpy(r->signer8, e->signer.b, 8);
    memcpy(r->tx_id, e->tx_id, sizeof r->tx_id);
  }
}

/* Under mu.  History rows are held while their entries follow on from the
 * last held; a delta that does not (a replay after a failed commit resumes
 * at the derived mark, which history may be past) or memory short gives up
 * what is held: the journal has it. */
static void hold_history(tr_lookups_t *l, const tr_delta_t *d) {
  if (d->entries_n == 0) return;
  if (d->entries[0].seq != l->hist_fed + 1) l->hist_gap = true;
  l->hist_fed = d->last;
  if (!l->hist_gap && l->hist_n + d->history_n > l->hist_cap) {
    size_t cap = l->hist_cap ? l->hist_cap * 2 : 4096;
    while (cap < l->hist_n + d->history_n) cap *= 2;
    tr_delta_history_t *rows = cap <= TR_HISTORY_HELD_MAX ? realloc(l->hist, cap * sizeof *rows) : NULL;
    if (rows == NULL) l->hist_gap = true;
    else l->hist = rows, l->hist_cap = cap;
  }
  if (l->hist_gap) {
    l->hist_n = 0;
    return;
  }
  if (l->hist_n == 0) l->hist_from = d->entries[0].seq, l->hist_oldest_ns = tr_clock_ns();
  memcpy(l->hist + l->hist_n, d->history, d->history_n * sizeof *d->history);
  l->hist_n += d->history_n;
}

void tr_lookups_feed(tr_lookups_t *l, const tr_delta_t *first, const tr_delta_t *last, uint64_t through) {
  if (!l->started) return;
  uv_mutex_lock(&l->mu);
  for (const tr_delta_t *d = first; d != NULL; d = d == last ? NULL : d->next) {
    hold_entries(l, d);
    hold_history(l, d);
  }
  if (through > l->fed_through) l->fed_through = through;
  if (l->fed_through - atomic_load(&l->stats.through) >= TR_LOOKUP_WRITE_EVERY) uv_cond_signal(&l->cond);
  uv_cond_signal(&l->hist_cond);
  uv_mutex_unlock(&l->mu);
}

void tr_lookups_hurry(tr_lookups_t *l, uint64_t need) {
  if (!l->started) return;
  uint64_t have = atomic_load(&l->hist_wanted);
  while (have < need && !atomic_compare_exchange_weak(&l->hist_wanted, &have, need)) {}
  if (have >= need) return; /* asked for already */
  uv_mutex_lock(&l->mu);
  uv_cond_signal(&l->hist_cond);
  uv_mutex_unlock(&l->mu);
}

void tr_lookups_history_failure(tr_lookups_t *l, char *out, size_t outlen) {
  if (!l->started) {
    snprintf(out, outlen, "%s", "");
    return;
  }
  uv_mutex_lock(&l->mu);
  snprintf(out, outlen, "%s", atomic_load(&l->stats.history_failing) ? l->hist_why : "");
  uv_mutex_unlock(&l->mu);
}

void tr_lookups_settle(tr_lookups_t *l, uint64_t through) {
  if (!l->started) return;
  uv_mutex_lock(&l->mu);
  if (through > l->fed_through) l->fed_through = through;
  if (l->fed_through > atomic_load(&l->stats.through)) {
    l->settle = true;
    uv_cond_signal(&l->cond);
  }
  uv_mutex_unlock(&l->mu);
}

/* ---- the writes ---- */

/* One short transaction of this writer, not fsynced (the rows are rebuilt
 * from the journal), under the database's write lock, which the journal
 * gets back after it: txn_begin, the statements, then txn_end with their
 * verdict, which commits or rolls back (a damaged database halts the node). */
static int txn_begin(tr_lookups_t *l) {
  int rc = l->durable ? tr_store_set_durable(l->conn, false) : 0;
  if (rc == 0) l->durable = false;
  tr_sequencer_behind_lock(l->seq);
  return rc == 0 ? tr_store_begin(l->conn) : rc;
}

static int txn_end(tr_lookups_t *l, int rc, const char *doing) {
  if (rc == 0) rc = tr_store_commit(l->conn);
  if (rc != 0) {
    char why[400];
    snprintf(why, sizeof why, "%s", tr_store_error_text(l->conn, rc));
    bool fatal = tr_store_failure_is_fatal();
    tr_store_rollback(l->conn);
    tr_sequencer_behind_unlock(l->seq);
    atomic_fetch_add(&l->stats.errors, 1);
    if (fatal) tr_sequencer_halt(l->seq, doing, why);
    else log_error("lookups", "%s failed: %s; retrying from the journal", doing, why);
    return rc;
  }
  tr_sequencer_behind_unlock(l->seq);
  return 0;
}

/* The level a write goes into (schema 007, tr_limits.h): the large one
 * while it is small enough that a run dirties few of its pages; past that,
 * the small one, merged into it at a ratio of their sizes. */
static uint64_t large_rows(const tr_lookups_t *l, uint64_t mark) {
  return mark > l->recent_rows ? mark - l->recent_rows : 0;
}

static bool into_large(const tr_lookups_t *l, uint64_t mark) {
  return large_rows(l, mark) < l->seq->lookup_two_levels_from;
}

/* `rows`, or with rows == NULL the journal's entries after..through read
 * back, into the large level or the small one; the mark moved when
 * `through` is set. */
static int write_txn(tr_lookups_t *l, const tr_lookup_row_t *rows, size_t n, bool by_id, bool large, uint64_t after,
                     uint64_t through) {
  int rc = txn_begin(l);
  if (rc == 0 && rows == NULL) rc = tr_store_lookups_write(l->conn, after, through, large);
  if (rc == 0 && rows != NULL) rc = tr_store_lookup_rows_put(l->conn, rows, n, by_id, large);
  if (rc == 0 && rows != NULL && through > 0) rc = tr_store_lookups_mark_move(l->conn, after, through);
  return txn_end(l, rc, "writing the lookup tables");
}

/* Brings the tables from `mark` towards `target` with the taken run
 * rows[0..n): what comes before the run is read back from the journal
 * first; the run itself is written sorted by each key, in transactions of
 * TR_LOOKUP_CHUNK_ROWS (each a key range of its own, so a page is written
 * about once and the journal's commit never waits for more than one), the
 * last moving the mark.  Returns the new mark (the old one on failure:
 * rows already in are skipped next time). */
static uint64_t write_run_into(tr_lookups_t *l, tr_lookup_row_t *rows, size_t n, uint64_t mark, uint64_t target,
                               bool large) {
  while (n > 0 && rows[0].seq <= mark) rows++, n--; /* in already */
  uint64_t before = n > 0 ? rows[0].seq - 1 : target;
  if (before > mark) {
    uint64_t to = before - mark > TR_LOOKUP_WRITE_MAX ? mark + TR_LOOKUP_WRITE_MAX : before;
    if (write_txn(l, NULL, 0, false, large, mark, to) != 0) return mark;
    mark = to;
    if (mark < before) return mark; /* the run waits for the journal's turn again: it is read back then */
  }
  if (n == 0) return mark;
  uint64_t through = rows[n - 1].seq;
  for (int by_id = 0; by_id < 2; by_id++) {
    qsort(rows, n, sizeof *rows, by_id ? cmp_by_id : cmp_by_txid);
    for (size_t at = 0; at < n; at += TR_LOOKUP_CHUNK_ROWS) {
      size_t k = n - at < TR_LOOKUP_CHUNK_ROWS ? n - at : TR_LOOKUP_CHUNK_ROWS;
      bool last = by_id && at + k == n;
      if (write_txn(l, rows + at, k, by_id, large, mark, last ? through : 0) != 0) return mark;
    }
  }
  return through;
}

static uint64_t write_run(tr_lookups_t *l, tr_lookup_row_t *rows, size_t n, uint64_t mark, uint64_t target) {
  bool large = into_large(l, mark);
  uint64_t reached = write_run_into(l, rows, n, mark, target, large);
  if (!large) l->recent_rows += reached - mark; /* a run cut short is counted at the next start */
  return reached;
}

/* ---- the two levels (schema 007) ---- */

/* Whether the small level holds enough to merge: an eighth of the large
 * one, and at least a run's worth (tr_limits.h). */
static bool merge_due(const tr_lookups_t *l, uint64_t mark) {
  return l->recent_rows >= TR_LOOKUP_MERGE_MIN && l->recent_rows >= large_rows(l, mark) / TR_LOOKUP_MERGE_RATIO;
}

/* Copies the small level's rows into the large one, lowest keys first,
 * TR_LOOKUP_CHUNK_ROWS a transaction: each is a key range of its own, so a
 * page of the large level is written about once a merge, and the
 * journal's commit waits for one at most.  Then one transaction empties
 * the small level.  A failed step leaves the rest for the next merge:
 * every row is in one level or both either way. */
static void merge(tr_lookups_t *l) {
  uint64_t t0 = tr_clock_ns(), rows = l->recent_rows;
  for (int by_id = 0; by_id < 2; by_id++) {
    tr_lookup_row_t cursor = {0};
    bool done = false;
    while (!done) {
      int rc = txn_begin(l);
      if (rc == 0) rc = tr_store_lookups_merge_step(l->conn, by_id, TR_LOOKUP_CHUNK_ROWS, &cursor, &done);
      if (txn_end(l, rc, "merging the lookup tables") != 0) return;
    }
  }
  int rc = txn_begin(l);
  if (rc == 0) rc = tr_store_lookups_merge_end(l->conn);
  if (txn_end(l, rc, "merging the lookup tables") != 0) return;
  atomic_fetch_add(&l->stats.merges, 1);
  l->recent_rows = 0;
  log_info("lookups", "merged ~%llu lookup rows into the large level in %llu ms", (unsigned long long)rows,
           (unsigned long long)((tr_clock_ns() - t0) / 1000000u));
}

/* ---- account history ---- */

/* Tells the loop: queries waiting for history may run (or learn of a failure). */
static void notify_loop(tr_lookups_t *l) {
  if (l->done != NULL && tr_mailbox_post(l->done, TR_MSG_DERIVED, NULL) != 0)
    log_warn("lookups", "out of memory telling the loop; waiting queries run at the next write");
}

/* One transaction, not fsynced (rebuilt from the journal): sorted held
 * rows, moving the mark to `through` unless it is 0; or with rows == NULL
 * every entry after the mark through `through` read back from the journal
 * (the derived mark as fed: a distribution's payees are read from its
 * stored payouts).  Returns 0 and the mark. */
static int history_txn(tr_lookups_t *l, const tr_delta_history_t *rows, size_t n, uint64_t through,
                       uint64_t *reached) {
  tr_store_t *conn = l->hist_conn;
  int rc = l->hist_durable ? tr_store_set_durable(conn, false) : 0;
  if (rc == 0) l->hist_durable = false;
  uint64_t rebuilt = 0;
  tr_sequencer_behind_lock(l->seq);
  if (rc == 0 && rows == NULL) {
    rc = tr_store_history_catch_up(conn, through, &rebuilt); /* its own transaction */
  } else if (rc == 0) {
    rc = tr_store_begin(conn);
    if (rc == 0) rc = tr_store_history_rows_put(conn, rows, n, through);
    if (rc == 0) rc = tr_store_commit(conn);
  }
  if (rc == 0) rc = tr_store_history_through(conn, reached);
  if (rc != 0) {
    char why[sizeof l->hist_why];
    snprintf(why, sizeof why, "%s", tr_store_error_text(conn, rc));
    bool fatal = tr_store_failure_is_fatal();
    tr_store_rollback(conn);
    tr_sequencer_behind_unlock(l->seq);
    atomic_fetch_add(&l->stats.errors, 1);
    uv_mutex_lock(&l->mu);
    memcpy(l->hist_why, why, sizeof why);
    uv_mutex_unlock(&l->mu);
    if (fatal) tr_sequencer_halt(l->seq, "writing account history", why);
    else log_error("lookups", "writing account history failed: %s; retrying from the journal", why);
    return rc;
  }
  tr_sequencer_behind_unlock(l->seq);
  return 0;
}

/* Under mu: rows to read back, or held rows to write now: a query waits for
 * them, they have gathered long enough or are many, or the node stops.
 * Else *wake_ns says when they will be due (0: when fed). */
static bool history_due(const tr_lookups_t *l, uint64_t now, uint64_t *wake_ns) {
  *wake_ns = 0;
  if (l->hist_gap) return true;
  if (l->hist_n == 0) return false;
  uint64_t until = l->hist_oldest_ns + (uint64_t)TR_HISTORY_LINGER_MS * 1000000u;
  if (l->stopping || l->hist_n >= TR_HISTORY_WRITE_ROWS || now >= until ||
      atomic_load(&l->hist_wanted) > atomic_load(&l->stats.history_through))
    return true;
  *wake_ns = until;
  return false;
}

/* Called and returns with mu held: writes the held history rows (or reads
 * back from the journal what is not held).  False when it failed. */
static bool history_pass(tr_lookups_t *l) {
  tr_delta_history_t *rows = l->hist;
  size_t n = l->hist_n, cap = l->hist_cap;
  l->hist = l->hist_work, l->hist_cap = l->hist_work_cap, l->hist_n = 0;
  l->hist_work = rows, l->hist_work_cap = cap;
  uint64_t from = l->hist_from, through = l->hist_fed, mark = atomic_load(&l->stats.history_through);
  bool gap = l->hist_gap;
  l->hist_gap = false;
  uv_mutex_unlock(&l->mu);

  uint64_t t0 = tr_clock_ns(), reached = mark;
  int rc = 0;
  if (gap || from > mark + 1) { /* rows between the mark and the run are not held */
    rc = history_txn(l, NULL, 0, through, &reached);
  } else {
    tr_delta_history_sort(rows, n); /* then a chunk a key range: a page is written about once */
    for (size_t at = 0; at < n && rc == 0; at += TR_LOOKUP_CHUNK_ROWS) {
      size_t k = n - at < TR_LOOKUP_CHUNK_ROWS ? n - at : TR_LOOKUP_CHUNK_ROWS;
      rc = history_txn(l, rows + at, k, at + k == n ? through : 0, &reached);
    }
  }
  if (rc == 0) atomic_store(&l->stats.history_through, reached);
  atomic_store(&l->stats.history_failing, rc != 0);
  atomic_fetch_add(&l->stats.history_write_ns, tr_clock_ns() - t0);
  notify_loop(l);

  uv_mutex_lock(&l->mu);
  if (rc != 0) { /* what was taken is given up: read back from the journal next time */
    l->hist_gap = true;
    l->hist_n = 0;
  }
  return rc == 0;
}

/* ---- the lookup tables, late ---- */

/* Under mu: whether the tables lag enough to write now. */
static bool due(const tr_lookups_t *l) {
  uint64_t mark = atomic_load(&l->stats.through);
  if (l->fed_through <= mark) return false;
  return l->settle || l->stopping || l->fed_through - mark >= TR_LOOKUP_WRITE_EVERY;
}

static void lookups_main(void *arg) {
  tr_lookups_t *l = arg;
  tr_thread_name("tr-lookups");
  uint64_t retry_at_ns = 0; /* after a failure: not before then (feeds would wake it at every write) */
  uv_mutex_lock(&l->mu);
  for (;;) {
    if (!due(l)) {
      if (l->stopping) break;
      uv_cond_wait(&l->cond, &l->mu);
      continue;
    }
    uint64_t now = tr_clock_ns();
    if (!l->stopping && now < retry_at_ns) {
      uv_cond_timedwait(&l->cond, &l->mu, retry_at_ns - now);
      continue;
    }
    /* Take the run: the derived writer goes on filling an empty one. */
    tr_lookup_row_t *rows = l->held;
    size_t n = l->held_n, cap = l->held_cap;
    l->held = l->work, l->held_cap = l->work_cap, l->held_n = 0;
    l->work = rows, l->work_cap = cap;
    uint64_t mark = atomic_load(&l->stats.through), target = l->fed_through;
    bool stopping = l->stopping;
    l->settle = false;
    uv_mutex_unlock(&l->mu);

    uint64_t t0 = tr_clock_ns();
    uint64_t reached = write_run(l, rows, n, mark, target);
    atomic_store(&l->stats.through, reached);
    if (!stopping && merge_due(l, reached)) merge(l);
    atomic_fetch_add(&l->stats.write_ns, tr_clock_ns() - t0);

    uv_mutex_lock(&l->mu);
    if (stopping) break; /* one pass at stop, as long as one write: the next start catches up the rest */
    if (reached == mark) { /* failed: the journal is read back at the next try */
      retry_at_ns = tr_clock_ns() + (uint64_t)TR_DERIVED_RETRY_MS * 1000000u;
      l->settle = true;
    } else if (reached < target) {
      l->settle = true; /* a catch-up a part at a time, or a run still behind it */
    }
  }
  uv_mutex_unlock(&l->mu);
}

/* tr-history: account history, on a connection of its own. */
static void history_main(void *arg) {
  tr_lookups_t *l = arg;
  tr_thread_name("tr-history");
  uint64_t retry_at_ns = 0; /* after a failure: not before then */
  uv_mutex_lock(&l->mu);
  for (;;) {
    uint64_t now = tr_clock_ns(), wake = 0;
    bool stopping = l->stopping, due = history_due(l, now, &wake);
    if (due && (stopping || now >= retry_at_ns)) {
      if (!history_pass(l)) retry_at_ns = tr_clock_ns() + (uint64_t)TR_DERIVED_RETRY_MS * 1000000u;
      if (stopping) break; /* one pass at stop: the next start reads back the rest */
      continue;
    }
    if (stopping) break;
    if (due) wake = retry_at_ns;
    if (wake > now) uv_cond_timedwait(&l->hist_cond, &l->mu, wake - now);
    else uv_cond_wait(&l->hist_cond, &l->mu);
  }
  uv_mutex_unlock(&l->mu);
}

/* ---- start and stop ---- */

int tr_lookups_start(tr_lookups_t *l, const char *db_path, struct tr_sequencer *seq, tr_mailbox_t *done,
                     char *err, size_t errlen) {
  memset(l, 0, sizeof *l);
  l->seq = seq;
  l->done = done;
  l->durable = l->hist_durable = true; /* tr_store_open's setting */
  if (uv_mutex_init(&l->mu) != 0) return TR_ENOMEM;
  if (uv_cond_init(&l->cond) != 0) {
    uv_mutex_destroy(&l->mu);
    return TR_ENOMEM;
  }
  if (uv_cond_init(&l->hist_cond) != 0) {
    uv_cond_destroy(&l->cond);
    uv_mutex_destroy(&l->mu);
    return TR_ENOMEM;
  }
  uint64_t mark = 0;
  int rc = tr_store_open(db_path, 0, &l->conn, err, errlen);
  if (rc == 0 && (rc = tr_store_lookups_mark(l->conn, &mark)) != 0)
    snprintf(err, errlen, "cannot read the lookup mark: %s", tr_store_error_text(l->conn, rc));
  if (rc == 0 && (rc = tr_store_lookups_recent_rows(l->conn, &l->recent_rows)) != 0)
    snprintf(err, errlen, "cannot count the small level of the lookup tables: %s", tr_store_error_text(l->conn, rc));
  atomic_store(&l->stats.through, mark);
  l->fed_through = mark;
  if (rc == 0) rc = tr_store_open(db_path, 0, &l->hist_conn, err, errlen);
  if (rc == 0 && (rc = tr_store_history_through(l->hist_conn, &mark)) != 0)
    snprintf(err, errlen, "cannot read the history mark: %s", tr_store_error_text(l->hist_conn, rc));
  atomic_store(&l->stats.history_through, mark);
  l->hist_fed = mark;
  if (rc == 0 && uv_thread_create(&l->thread, lookups_main, l) != 0) {
    snprintf(err, errlen, "cannot start the lookup writer thread");
    rc = TR_EIO;
  }
  bool lookups_running = rc == 0;
  if (rc == 0 && uv_thread_create(&l->hist_thread, history_main, l) != 0) {
    snprintf(err, errlen, "cannot start the account history writer thread");
    rc = TR_EIO;
  }
  if (rc != 0) {
    if (lookups_running) {
      uv_mutex_lock(&l->mu);
      l->stopping = true;
      uv_cond_signal(&l->cond);
      uv_mutex_unlock(&l->mu);
      uv_thread_join(&l->thread);
    }
    tr_store_close(l->hist_conn);
    tr_store_close(l->conn);
    l->conn = l->hist_conn = NULL;
    uv_cond_destroy(&l->hist_cond);
    uv_cond_destroy(&l->cond);
    uv_mutex_destroy(&l->mu);
    return rc;
  }
  l->started = true;
  return 0;
}

void tr_lookups_stop(tr_lookups_t *l) {
  if (!l->started) return;
  uv_mutex_lock(&l->mu);
  l->stopping = true;
  uv_cond_signal(&l->cond);
  uv_cond_signal(&l->hist_cond);
  uv_mutex_unlock(&l->mu);
  uv_thread_join(&l->hist_thread);
  uv_thread_join(&l->thread);
  l->started = false;
  free(l->held);
  free(l->work);
  l->held = l->work = NULL;
  l->held_n = l->held_cap = l->work_cap = 0;
  free(l->hist);
  free(l->hist_work);
  l->hist = l->hist_work = NULL;
  l->hist_n = l->hist_cap = l->hist_work_cap = 0;
  tr_store_close(l->hist_conn);
  tr_store_close(l->conn);
  l->conn = l->hist_conn = NULL;
  uv_cond_destroy(&l->hist_cond);
  uv_cond_destroy(&l->cond);
  uv_mutex_destroy(&l->mu);
}
