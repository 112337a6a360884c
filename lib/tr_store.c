/* tr_store.c — SQLite connections, schema migrations, the journal, Merkle
 * nodes, checkpoints and derived-state rows.
 *
 * Workload: one writer appending in group commits of up to
 * TR_COMMIT_BATCH_MAX entries, several readers doing point lookups and short
 * index range scans.  Every statement is prepared once per connection.
 */
#include "tr_store.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_merkle.h"

extern const char *const tr_schema_migrations[];
extern const size_t tr_schema_migrations_count;

#define STMT_CACHE_MAX 96 /* distinct SQL texts in the project, with room to spare */
#define WCACHE_ACCOUNTS 256 /* direct-mapped by key bytes */
#define WCACHE_HOLDINGS 512
#define WCACHE_ASSETS 4     /* round robin: a batch names few assets */

struct tr_store {
  sqlite3 *db;
  int flags;
  /* The journal head, remembered inside this connection's own write
   * transaction (where nobody else can append): saves two queries a tx. */
  bool in_write, head_known;
  uint64_t head_size, head_time;
  uint8_t head_hash[32];
  size_t stmts_n;
  struct { const char *sql; sqlite3_stmt *stmt; } stmts[STMT_CACHE_MAX];
  /* Rows this connection read or wrote inside its own write transaction,
   * where nobody else can change them: a transfer reads the same accounts,
   * asset and holdings in its checks and again when applying, and a group
   * commit repeats them tx after tx.  Write-through; a slot is valid only
   * while its gen equals wgen, which moves at every begin, commit, rollback
   * and whenever SQL from outside this file may write (tr_store_stmt). */
  uint64_t wgen;
  struct { uint64_t gen; bool found; tr_account_t a; } wacct[WCACHE_ACCOUNTS];
  struct { uint64_t gen; char asset[TR_ASSET_ID_CHARS_MAX + 1]; tr_key_t account; tr_holding_t h; } whold[WCACHE_HOLDINGS];
  struct { uint64_t gen; tr_asset_t a; } wasset[WCACHE_ASSETS];
  unsigned wasset_next;
  /* The newest Merkle node stored at each level: exactly the left siblings
   * the next append asks for (level 0 is the previous entry's hash). */
  struct { uint64_t gen, idx; uint8_t hash[32]; } wmerkle[TR_MERKLE_PATH_MAX + 1];
  /* account_entries rows made inside write transactions, in seq order, not
   * yet written (see tr_store_history_defer).  The first hist_written were
   * written in the open transaction; hist_at_begin were pending before it. */
  struct hist_row { tr_key_t account; uint64_t seq; } *hist;
  size_t hist_n, hist_cap, hist_written, hist_at_begin;
  size_t hist_defer_rows;          /* 0: write at every commit */
};

static int history_write(tr_store_t *s);

static sqlite3_stmt *stmt_get(tr_store_t *s, const char *sql);
static void wcache_close(tr_store_t *s);
static bool wcache_account(tr_store_t *s, const tr_key_t *id, tr_account_t *a, int *rc);
static void wcache_account_set(tr_store_t *s, const tr_key_t *id, const tr_account_t *a);
static bool wcache_holding(tr_store_t *s, const char *asset, const tr_key_t *account, tr_holding_t *h);
static void wcache_holding_set(tr_store_t *s, const char *asset, const tr_key_t *account, const tr_holding_t *h);
static bool wcache_asset(tr_store_t *s, const char *id, tr_asset_t *a, int *rc);
static void wcache_asset_set(tr_store_t *s, const tr_asset_t *a);
static bool wcache_merkle(tr_store_t *s, unsigned level, uint64_t index, uint8_t out[32]);
static void wcache_merkle_set(tr_store_t *s, unsigned level, uint64_t index, const uint8_t hash[32]);

int tr_store_schema_version(void) { return (int)tr_schema_migrations_count; }
sqlite3 *tr_store_db(tr_store_t *s) {
  s->wgen++; /* the caller may write behind the row caches */
  return s->db;
}

/* SQLite's message, plus the operating system's reason when a system call
 * failed: "unable to open database file" alone hides "Too many open files". */
static const char *db_errmsg(sqlite3 *db, char *buf, size_t len) {
  if (db == NULL) return "out of memory";
  int e = sqlite3_system_errno(db);
  if (e == 0) return sqlite3_errmsg(db);
  snprintf(buf, len, "%s (%s)", sqlite3_errmsg(db), strerror(e));
  return buf;
}

const char *tr_store_errmsg(tr_store_t *s) { return sqlite3_errmsg(s->db); }

/* The first SQLite failure since the last tr_store_begin on this thread.
 * Captured where it happens: by the time the caller logs, a reset or a
 * rollback has often cleared sqlite3_errmsg to "not an error".  Each
 * connection lives on one thread, so thread-local is per connection. */
static _Thread_local struct {
  int code;
  char text[256];
} first_failure;

void tr_store_note_failure(sqlite3 *db, int sqlite_rc) {
  if (first_failure.code != 0 || sqlite_rc == SQLITE_OK || sqlite_rc == SQLITE_ROW || sqlite_rc == SQLITE_DONE)
    return;
  first_failure.code = db ? sqlite3_extended_errcode(db) : sqlite_rc;
  snprintf(first_failure.text, sizeof first_failure.text, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(sqlite_rc));
}

static void failure_forget(void) { first_failure.code = 0; }

const char *tr_store_error_text(tr_store_t *s, int rc) {
  static _Thread_local char text[400];
  int code = first_failure.code ? first_failure.code : (s ? sqlite3_extended_errcode(s->db) : SQLITE_OK);
  const char *detail = first_failure.code ? first_failure.text : (s ? sqlite3_errmsg(s->db) : "");
  if (code == SQLITE_OK) return tr_strerror(rc);
  int primary = code & 0xff;
  if (code == SQLITE_IOERR_SHORT_READ)
    snprintf(text, sizeof text, "database is damaged (a file is shorter than SQLite's own index of it says: "
             "truncated?)");
  else if (primary == SQLITE_FULL)
    snprintf(text, sizeof text, "disk full (%s)", detail);
  else if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
    snprintf(text, sizeof text, "database is damaged (%s)", detail);
  else if (primary == SQLITE_IOERR)
    snprintf(text, sizeof text, "I/O error (%s, code %d)", detail, code);
  else
    snprintf(text, sizeof text, "%s (%s)", tr_strerror(rc), detail);
  return text;
}

int tr_store_failure_is_fatal(void) {
  int primary = first_failure.code & 0xff;
  /* A short read: a file is shorter than SQLite's own index of it says
   * (a truncated WAL or database): damage, not a passing fault. */
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || first_failure.code == SQLITE_IOERR_SHORT_READ;
}

static int exec(tr_store_t *s, const char *sql) {
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
  tr_store_note_failure(s->db, rc);
  return rc == SQLITE_OK ? 0 : TR_EIO;
}

static sqlite3_stmt *stmt_get(tr_store_t *s, const char *sql) {
  for (size_t i = 0; i < s->stmts_n; i++) {
    if (s->stmts[i].sql == sql) {
      sqlite3_reset(s->stmts[i].stmt);
      sqlite3_clear_bindings(s->stmts[i].stmt);
      return s->stmts[i].stmt;
    }
  }
  if (s->stmts_n == STMT_CACHE_MAX) return NULL;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
    return NULL;
  s->stmts[s->stmts_n].sql = sql;
  s->stmts[s->stmts_n].stmt = st;
  s->stmts_n++;
  return st;
}

static int user_version(tr_store_t *s, int *v) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) return TR_EIO;
  int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : TR_EIO;
  if (rc == 0) *v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return rc;
}

/* Upgrades forward in order, each migration in its own transaction. */
static int migrate(tr_store_t *s, char *errbuf, size_t errlen) {
  int v = 0;
  if (user_version(s, &v) != 0) return TR_EIO;
  if (v > (int)tr_schema_migrations_count) {
    snprintf(errbuf, errlen, "database schema version %d is newer than this program's %d", v,
             (int)tr_schema_migrations_count);
    return TR_ECORRUPT;
  }
  for (int i = v; i < (int)tr_schema_migrations_count; i++) {
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", i + 1);
    if (exec(s, "BEGIN IMMEDIATE") != 0 || exec(s, tr_schema_migrations[i]) != 0) {
      snprintf(errbuf, errlen, "schema migration %d failed: %s", i + 1, sqlite3_errmsg(s->db));
      exec(s, "ROLLBACK");
      return TR_EIO;
    }
    if (exec(s, pragma) != 0 || exec(s, "COMMIT") != 0) {
      snprintf(errbuf, errlen, "schema migration %d commit failed: %s", i + 1, sqlite3_errmsg(s->db));
      exec(s, "ROLLBACK");
      return TR_EIO;
    }
  }
  return 0;
}

static int configure(tr_store_t *s, char *errbuf, size_t errlen) {
  sqlite3_busy_timeout(s->db, TR_SQLITE_BUSY_TIMEOUT_MS);
  sqlite3_extended_result_codes(s->db, 1);
  if (s->flags & TR_STORE_MEMORY) return exec(s, "PRAGMA foreign_keys = OFF");
  if (!(s->flags & TR_STORE_READONLY)) {
    /* WAL: readers never block the writer; FULL: the WAL is fsynced at every
     * commit, so a receipt is only sent for an entry that survives power loss. */
    if (exec(s, "PRAGMA journal_mode = WAL") != 0 || exec(s, "PRAGMA synchronous = FULL") != 0) {
      char why[256];
      snprintf(errbuf, errlen, "cannot enable WAL: %s", db_errmsg(s->db, why, sizeof why));
      return TR_EIO;
    }
    /* A WAL that grew under a burst is cut back to this size once it restarts. */
    if (exec(s, "PRAGMA journal_size_limit = 67108864") != 0) return TR_EIO;
    /* The writer's own checkpoint runs inside its COMMIT, fsync of the
     * database included, and stalls every receipt behind it.  At SQLite's
     * default of 1000 pages it ran several times a second under load and
     * did most of the copying; 8192 pages (32 MiB of WAL) leave that to the
     * passive checkpointer beside the writer (daemon/walcheck.c) and copy a
     * page rewritten by many commits once instead of many times.  The writer
     * still checkpoints at this size, which lets the WAL restart: bounded. */
    if (exec(s, "PRAGMA wal_autocheckpoint = 8192") != 0) return TR_EIO;
  }
  /* A copy that nobody else writes can be mapped: reads then cost no copy. */
  if ((s->flags & TR_STORE_SCAN) && exec(s, "PRAGMA mmap_size = 1099511627776") != 0) return TR_EIO;
  /* Readers: snapshot reads only; a reader never writes or checkpoints. */
  return exec(s, "PRAGMA cache_size = -16384");
}

int tr_store_open(const char *path, int flags, tr_store_t **out, char *errbuf, size_t errlen) {
  failure_forget();
  tr_store_t *s = calloc(1, sizeof *s);
  if (s == NULL) return TR_ENOMEM;
  s->flags = flags;
  s->wgen = 1; /* calloc'ed slots have gen 0: never valid */
  int oflags = SQLITE_OPEN_NOMUTEX;
  if (flags & TR_STORE_READONLY) oflags |= SQLITE_OPEN_READONLY;
  else oflags |= SQLITE_OPEN_READWRITE | ((flags & TR_STORE_CREATE) ? SQLITE_OPEN_CREATE : 0);
  const char *name = path;
  if (flags & TR_STORE_MEMORY) {
    name = ":memory:";
    oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  }
  if (sqlite3_open_v2(name, &s->db, oflags, NULL) != SQLITE_OK) {
    char why[256];
    snprintf(errbuf, errlen, "cannot open %s: %s", name, db_errmsg(s->db, why, sizeof why));
    tr_store_close(s);
    return TR_EIO;
  }
  int rc = configure(s, errbuf, errlen);
  if (rc == 0 && !(flags & TR_STORE_READONLY)) rc = migrate(s, errbuf, errlen);
  if (rc == 0 && (flags & TR_STORE_READONLY)) {
    int v = 0;
    rc = user_version(s, &v);
    if (rc == 0 && v != (int)tr_schema_migrations_count) {
      snprintf(errbuf, errlen, "database schema version %d, this program needs %d", v,
               (int)tr_schema_migrations_count);
      rc = TR_ECORRUPT;
    }
  }
  if (rc != 0) {
    tr_store_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

void tr_store_close(tr_store_t *s) {
  if (s == NULL) return;
  for (size_t i = 0; i < s->stmts_n; i++) sqlite3_finalize(s->stmts[i].stmt);
  wcache_close(s);
  free(s->hist);
  if (s->db) sqlite3_close(s->db);
  free(s);
}

int tr_store_wal_checkpoint(tr_store_t *s, int *wal_frames, int *checkpointed_frames) {
  failure_forget();
  int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, wal_frames, checkpointed_frames);
  if (rc != SQLITE_BUSY) tr_store_note_failure(s->db, rc);
  return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : TR_EIO; /* BUSY: another checkpoint runs; try later */
}

int tr_store_set_durable(tr_store_t *s, bool durable) {
  return exec(s, durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

int tr_store_begin(tr_store_t *s) {
  failure_forget();
  s->head_known = false;
  s->wgen++;
  int rc = exec(s, "BEGIN IMMEDIATE");
  s->in_write = rc == 0;
  s->hist_at_begin = s->hist_n;
  s->hist_written = 0;
  return rc;
}

/* History rows are written here when they are not deferred, or when the
 * deferred ones reached their bound.  A failed write leaves the
 * transaction open for the caller's rollback. */
int tr_store_commit(tr_store_t *s) {
  if (s->in_write && s->hist_n > s->hist_written &&
      (s->hist_defer_rows == 0 || s->hist_n - s->hist_written >= s->hist_defer_rows)) {
    int rc = history_write(s);
    if (rc != 0) return rc;
  }
  s->in_write = s->head_known = false;
  s->wgen++;
  int rc = exec(s, "COMMIT");
  if (rc == 0 && s->hist_written > 0) { /* the written rows are committed now: forget them */
    memmove(s->hist, s->hist + s->hist_written, (s->hist_n - s->hist_written) * sizeof *s->hist);
    s->hist_n -= s->hist_written;
  } else if (rc != 0) { /* the caller rolls back: the transaction's own rows go with it */
    s->hist_n = s->hist_at_begin;
  }
  s->hist_written = 0;
  return rc;
}

int tr_store_rollback(tr_store_t *s) {
  s->in_write = s->head_known = false;
  s->wgen++;
  s->hist_n = s->hist_at_begin; /* rows of the rolled-back entries; those from before stay pending */
  s->hist_written = 0;
  return exec(s, "ROLLBACK");
}
int tr_store_read_begin(tr_store_t *s) {
  failure_forget();
  return exec(s, "BEGIN DEFERRED");
}
int tr_store_read_end(tr_store_t *s) { return exec(s, "COMMIT"); }

int tr_store_integrity_check(tr_store_t *s, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  const char *verdict = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
  int ok = verdict != NULL && strcmp(verdict, "ok") == 0;
  if (!ok)
    snprintf(err, errlen, "the database failed its integrity check: %s", verdict ? verdict : sqlite3_errmsg(s->db));
  sqlite3_finalize(st);
  return ok ? 0 : TR_ECORRUPT;
}

/* Steps a write statement to completion. */
int tr_store_step_done(sqlite3_stmt *st) {
  if (st == NULL) return TR_EIO;
  int rc = sqlite3_step(st);
  tr_store_note_failure(sqlite3_db_handle(st), rc);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : TR_EIO;
}

int tr_store_insert_rows(tr_store_t *s, const tr_store_rows_t *spec, const void *rows, size_t stride, size_t n) {
  const char *base = rows, *prev = NULL;
  const char *chunk[TR_STORE_ROWS_PER_INSERT];
  size_t k = 0;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *row = base + i * stride;
    if (prev != NULL && spec->same != NULL && spec->same(prev, row)) continue;
    prev = row;
    chunk[k++] = row;
    if (k < TR_STORE_ROWS_PER_INSERT) continue;
    sqlite3_stmt *st = stmt_get(s, spec->many);
    if (st == NULL) return TR_EIO;
    for (size_t j = 0; j < k; j++) spec->bind(st, 1 + (int)j * spec->cols, chunk[j]);
    rc = tr_store_step_done(st);
    k = 0;
  }
  for (size_t j = 0; j < k && rc == 0; j++) { /* the rest, one by one */
    sqlite3_stmt *st = stmt_get(s, spec->one);
    if (st == NULL) return TR_EIO;
    spec->bind(st, 1, chunk[j]);
    rc = tr_store_step_done(st);
  }
  return rc;
}

/* Steps a read statement for one row: 0 with the row, TR_ENOT_FOUND, or TR_EIO. */
static int step_row(sqlite3_stmt *st) {
  if (st == NULL) return TR_EIO;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) return 0;
  tr_store_note_failure(sqlite3_db_handle(st), rc);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? TR_ENOT_FOUND : TR_EIO;
}

static int column_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t len) {
  if (sqlite3_column_bytes(st, col) != (int)len) return TR_ECORRUPT;
  const void *b = sqlite3_column_blob(st, col);
  if (b == NULL) return TR_ECORRUPT;
  memcpy(out, b, len);
  return 0;
}

static void column_text(sqlite3_stmt *st, int col, char *out, size_t outlen) {
  const unsigned char *t = sqlite3_column_text(st, col);
  snprintf(out, outlen, "%s", t ? (const char *)t : "");
}

/* ---- meta ---- */

int tr_store_meta_put(tr_store_t *s, const char *key, const char *value) {
  sqlite3_stmt *st = stmt_get(s, "INSERT INTO meta (key, value) VALUES (?1, ?2)");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
  return tr_store_step_done(st);
}

int tr_store_meta_get(tr_store_t *s, const char *key, char *out, size_t outlen) {
  sqlite3_stmt *st = stmt_get(s, "SELECT value FROM meta WHERE key = ?1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  int rc = step_row(st);
  if (rc == 0) column_text(st, 0, out, outlen);
  sqlite3_reset(st);
  return rc;
}

/* ---- journal ---- */

void tr_entry_clear(tr_entry_t *e) {
  free(e->tx);
  e->tx = NULL;
}

static void put_u64be(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
}

void tr_entry_bytes(uint64_t seq, uint64_t time, const uint8_t prev[32], const uint8_t txid[32],
                    const uint8_t sig[64], uint8_t out[TR_ENTRY_BYTES_LEN]) {
  memcpy(out, "TRANCHE/ENTRY/1\n", 16);
  put_u64be(out + 16, seq);
  put_u64be(out + 24, time);
  memcpy(out + 32, prev, 32);
  memcpy(out + 64, txid, 32);
  memcpy(out + 96, sig, 64);
}

void tr_entry_hash(uint64_t seq, uint64_t time, const uint8_t prev[32], const uint8_t txid[32],
                   const uint8_t sig[64], uint8_t out[32]) {
  uint8_t bytes[TR_ENTRY_BYTES_LEN];
  tr_entry_bytes(seq, time, prev, txid, sig, bytes);
  tr_merkle_leaf_hash(bytes, sizeof bytes, out);
}

/* Reads (seq, hash, time) from st's one row: zeros when there is none (an
 * empty journal). */
static int head_row(sqlite3_stmt *st, uint64_t *size, uint8_t hash[32], uint64_t *time) {
  uint64_t n = 0, t = 0;
  uint8_t h[32] = {0};
  int rc = step_row(st);
  if (rc == 0) {
    n = (uint64_t)sqlite3_column_int64(st, 0);
    rc = column_blob(st, 1, h, 32);
    t = (uint64_t)sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
  } else if (rc == TR_ENOT_FOUND) {
    rc = 0;
  }
  if (rc != 0) return rc;
  *size = n;
  if (hash) memcpy(hash, h, 32);
  if (time) *time = t;
  return 0;
}

int tr_store_visible_head(tr_store_t *s, uint64_t *size, uint8_t hash[32], uint64_t *time) {
  return head_row(stmt_get(s, "SELECT e.seq, e.hash, e.time FROM derived_progress d JOIN entries e ON e.seq = d.seq"
                              " WHERE d.id = 1"),
                  size, hash, time);
}

int tr_store_head(tr_store_t *s, uint64_t *size, uint8_t hash[32], uint64_t *time) {
  if (s->in_write && s->head_known) {
    *size = s->head_size;
    if (hash) memcpy(hash, s->head_hash, 32);
    if (time) *time = s->head_time;
    return 0;
  }
  int rc = head_row(stmt_get(s, "SELECT seq, hash, time FROM entries ORDER BY seq DESC LIMIT 1"), size,
                    s->head_hash, &s->head_time);
  if (rc != 0) return rc;
  if (hash) memcpy(hash, s->head_hash, 32);
  if (time) *time = s->head_time;
  s->head_size = *size;
  s->head_known = s->in_write; /* outside a write the head moves under us */
  return 0;
}

static int merkle_store_nodes(tr_store_t *s, uint64_t leaf_index, const uint8_t leaf[32]) {
  tr_merkle_node_t nodes[TR_MERKLE_PATH_MAX + 1];
  size_t n = 0;
  int rc = tr_merkle_append(tr_store_merkle_get, s, leaf_index, leaf, nodes, &n);
  if (rc != 0) return rc;
  sqlite3_stmt *st = stmt_get(s, "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?1, ?2, ?3)");
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (st == NULL) return TR_EIO;
    wcache_merkle_set(s, nodes[i].level, nodes[i].index, nodes[i].hash);
    if (!tr_merkle_level_kept(nodes[i].level)) continue; /* a leaf is its entry's hash; the rest is folded */
    sqlite3_bind_int(st, 1, (int)nodes[i].level);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)nodes[i].index);
    sqlite3_bind_blob(st, 3, nodes[i].hash, 32, SQLITE_STATIC);
    rc = tr_store_step_done(st);
  }
  if (rc != 0) s->wgen++;
  return rc;
}

static void bind_txid_row(sqlite3_stmt *st, int first, const void *row) {
  const tr_lookup_row_t *r = row;
  sqlite3_bind_blob(st, first, r->txid8, 8, SQLITE_STATIC);
  sqlite3_bind_int64(st, first + 1, (sqlite3_int64)r->seq);
}

static void bind_id_row(sqlite3_stmt *st, int first, const void *row) {
  const tr_lookup_row_t *r = row;
  sqlite3_bind_blob(st, first, r->signer8, 8, SQLITE_STATIC);
  sqlite3_bind_text(st, first + 1, r->tx_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, first + 2, (sqlite3_int64)r->seq);
}

/* Each lookup table in its two levels (schema 007): [large][by_id]. */
#define TXID_ROWS(level) "INSERT OR IGNORE INTO entry_txids" level " (txid8, seq) VALUES "
#define ID_ROWS(level) "INSERT OR IGNORE INTO entry_ids" level " (signer8, tx_id, seq) VALUES "
#define LOOKUP_SPECS(level)                                                                 \
  {{TXID_ROWS(level) "(?,?)", TXID_ROWS(level) TR_SQL_X32("(?,?)"), 2, bind_txid_row, NULL}, \
   {ID_ROWS(level) "(?,?,?)", ID_ROWS(level) TR_SQL_X32("(?,?,?)"), 3, bind_id_row, NULL}}
static const tr_store_rows_t LOOKUP_ROWS_SPEC[2][2] = {LOOKUP_SPECS("_recent"), LOOKUP_SPECS("")};

/* The SQLite state path (genesis, offline tools) writes an entry's lookup
 * rows with it, into the large level, and moves the mark when it was
 * complete up to the entry before: that path has no writer behind to write
 * them late. */
static int lookups_put(tr_store_t *s, uint64_t seq, const uint8_t txid[32], const tr_key_t *signer,
                       const char *tx_id) {
  tr_lookup_row_t row = {.seq = seq};
  memcpy(row.txid8, txid, 8);
  memcpy(row.signer8, signer->b, 8);
  snprintf(row.tx_id, sizeof row.tx_id, "%s", tx_id);
  int rc = tr_store_lookup_rows_put(s, &row, 1, false, true);
  if (rc == 0) rc = tr_store_lookup_rows_put(s, &row, 1, true, true);
  sqlite3_stmt *m = rc == 0 ? stmt_get(s, "UPDATE lookup_progress SET seq = ?1 WHERE id = 1 AND seq = ?1 - 1") : NULL;
  if (rc == 0 && m == NULL) rc = TR_EIO;
  if (rc == 0) {
    sqlite3_bind_int64(m, 1, (sqlite3_int64)seq);
    rc = tr_store_step_done(m);
  }
  return rc;
}

int tr_store_lookups_mark(tr_store_t *s, uint64_t *seq) {
  sqlite3_stmt *st = stmt_get(s, "SELECT seq FROM lookup_progress WHERE id = 1");
  int rc = step_row(st);
  if (rc == TR_ENOT_FOUND) return TR_ECORRUPT; /* the migration made the row; nothing deletes it */
  if (rc == 0) *seq = (uint64_t)sqlite3_column_int64(st, 0);
  if (st) sqlite3_reset(st);
  return rc;
}

/* Sorted by key, so a run of thousands of entries dirties each page of the
 * level about once; the entries are recent, so read from the cache. */
int tr_store_lookups_write(tr_store_t *s, uint64_t after, uint64_t through, bool large) {
  static const char *const sql[2][2] = {
      {"INSERT OR IGNORE INTO entry_txids_recent (txid8, seq) SELECT substr(txid, 1, 8), seq FROM entries"
       " WHERE seq > ?1 AND seq <= ?2 ORDER BY 1, 2",
       "INSERT OR IGNORE INTO entry_ids_recent (signer8, tx_id, seq) SELECT substr(signer, 1, 8), tx_id, seq"
       " FROM entries WHERE seq > ?1 AND seq <= ?2 ORDER BY 1, 2, 3"},
      {"INSERT OR IGNORE INTO entry_txids (txid8, seq) SELECT substr(txid, 1, 8), seq FROM entries"
       " WHERE seq > ?1 AND seq <= ?2 ORDER BY 1, 2",
       "INSERT OR IGNORE INTO entry_ids (signer8, tx_id, seq) SELECT substr(signer, 1, 8), tx_id, seq FROM entries"
       " WHERE seq > ?1 AND seq <= ?2 ORDER BY 1, 2, 3"},
  };
  int rc = 0;
  for (int by_id = 0; by_id < 2 && rc == 0; by_id++) {
    sqlite3_stmt *st = stmt_get(s, sql[large][by_id]);
    if (st == NULL) return TR_EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)through);
    rc = tr_store_step_done(st);
  }
  return rc == 0 ? tr_store_lookups_mark_move(s, after, through) : rc;
}

int tr_store_lookup_rows_put(tr_store_t *s, const tr_lookup_row_t *rows, size_t n, bool by_id, bool large) {
  return tr_store_insert_rows(s, &LOOKUP_ROWS_SPEC[large][by_id], rows, sizeof *rows, n);
}

int tr_store_lookups_recent_rows(tr_store_t *s, uint64_t *rows) {
  sqlite3_stmt *st = stmt_get(s, "SELECT count(*) FROM entry_txids_recent");
  int rc = step_row(st);
  if (rc == 0) *rows = (uint64_t)sqlite3_column_int64(st, 0);
  if (rc == 0) sqlite3_reset(st);
  return rc == TR_ENOT_FOUND ? TR_EIO : rc; /* count(*) always has its row */
}

/* A merge copies the small level's rows into the large one, a key range a
 * step after the cursor (the last key copied; all zeroes sort before every
 * row), the range's end found with one probe (none: every row left), over
 * the small table's primary key; then empties the small level at once (a
 * DELETE without WHERE drops its pages without visiting a row). */
typedef struct {
  const char *next_end, *copy_to, *copy_rest, *drop_all;
} merge_sql_t;
#define TXID_AFTER " (txid8, seq) > (?1, ?2)"
#define ID_AFTER " (signer8, tx_id, seq) > (?1, ?2, ?3)"
static const merge_sql_t MERGE_SQL[2] = {
    {"SELECT txid8, seq FROM entry_txids_recent WHERE" TXID_AFTER " ORDER BY txid8, seq LIMIT 1 OFFSET ?3",
     "INSERT OR IGNORE INTO entry_txids (txid8, seq) SELECT txid8, seq FROM entry_txids_recent WHERE" TXID_AFTER
     " AND (txid8, seq) <= (?3, ?4) ORDER BY txid8, seq",
     "INSERT OR IGNORE INTO entry_txids (txid8, seq) SELECT txid8, seq FROM entry_txids_recent WHERE" TXID_AFTER
     " ORDER BY txid8, seq",
     "DELETE FROM entry_txids_recent"},
    {"SELECT signer8, tx_id, seq FROM entry_ids_recent WHERE" ID_AFTER " ORDER BY signer8, tx_id, seq LIMIT 1 OFFSET ?4",
     "INSERT OR IGNORE INTO entry_ids (signer8, tx_id, seq) SELECT signer8, tx_id, seq FROM entry_ids_recent WHERE"
     ID_AFTER " AND (signer8, tx_id, seq) <= (?4, ?5, ?6) ORDER BY signer8, tx_id, seq",
     "INSERT OR IGNORE INTO entry_ids (signer8, tx_id, seq) SELECT signer8, tx_id, seq FROM entry_ids_recent WHERE"
     ID_AFTER " ORDER BY signer8, tx_id, seq",
     "DELETE FROM entry_ids_recent"},
};

/* Binds `key` (the cursor, or a range's end) from parameter `first` on:
 * the prefix, (tx_id,) seq.  Returns the next free parameter. */
static int bind_merge_key(sqlite3_stmt *st, int first, bool by_id, const tr_lookup_row_t *key) {
  sqlite3_bind_blob(st, first++, by_id ? key->signer8 : key->txid8, 8, SQLITE_STATIC);
  if (by_id) sqlite3_bind_text(st, first++, key->tx_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, first++, (sqlite3_int64)key->seq);
  return first;
}

int tr_store_lookups_merge_step(tr_store_t *s, bool by_id, size_t max_rows, tr_lookup_row_t *cursor, bool *done) {
  *done = false;
  if (max_rows == 0) return TR_EARG;
  const merge_sql_t *q = &MERGE_SQL[by_id];
  sqlite3_stmt *next_end = stmt_get(s, q->next_end);
  if (next_end == NULL) return TR_EIO;
  sqlite3_bind_int64(next_end, bind_merge_key(next_end, 1, by_id, cursor), (sqlite3_int64)(max_rows - 1));
  tr_lookup_row_t end = {0};
  int rc = step_row(next_end);
  if (rc == 0) {
    int c = 0;
    rc = column_blob(next_end, c++, by_id ? end.signer8 : end.txid8, 8);
    if (by_id) column_text(next_end, c++, end.tx_id, sizeof end.tx_id);
    end.seq = (uint64_t)sqlite3_column_int64(next_end, c);
    sqlite3_reset(next_end);
    if (rc != 0) return rc;
  } else if (rc != TR_ENOT_FOUND) {
    return rc;
  }
  bool last = rc == TR_ENOT_FOUND;
  sqlite3_stmt *copy = stmt_get(s, last ? q->copy_rest : q->copy_to);
  if (copy == NULL) return TR_EIO;
  int next = bind_merge_key(copy, 1, by_id, cursor);
  if (!last) bind_merge_key(copy, next, by_id, &end);
  rc = tr_store_step_done(copy);
  if (rc != 0) return rc;
  if (last) *done = true;
  else *cursor = end;
  return 0;
}

int tr_store_lookups_merge_end(tr_store_t *s) {
  int rc = 0;
  for (int by_id = 0; by_id < 2 && rc == 0; by_id++) {
    sqlite3_stmt *drop = stmt_get(s, MERGE_SQL[by_id].drop_all);
    rc = drop != NULL ? tr_store_step_done(drop) : TR_EIO;
  }
  return rc;
}

int tr_store_lookups_mark_move(tr_store_t *s, uint64_t after, uint64_t through) {
  sqlite3_stmt *st = stmt_get(s, "UPDATE lookup_progress SET seq = ?2 WHERE id = 1 AND seq = ?1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)through);
  int rc = tr_store_step_done(st);
  return rc == 0 && sqlite3_changes(s->db) != 1 ? TR_ECORRUPT : rc; /* the mark was not at `after` */
}

int tr_store_append(tr_store_t *s, uint64_t time, const uint8_t txid[32], const uint8_t sig[64],
                    const tr_key_t *signer, const char *tx_id, const char *tx, size_t tx_len,
                    tr_entry_t *out) {
  uint64_t size = 0, head_time = 0;
  uint8_t prev[32];
  int rc = tr_store_head(s, &size, prev, &head_time);
  if (rc != 0) return rc;
  if (time < head_time) return TR_EARG; /* time never decreases (§3) */
  out->seq = size + 1;
  out->time = time;
  memcpy(out->prev, prev, 32);
  memcpy(out->txid, txid, 32);
  memcpy(out->sig, sig, 64);
  out->signer = *signer;
  tr_entry_hash(out->seq, time, prev, txid, sig, out->hash);

  sqlite3_stmt *st = stmt_get(s,
      "INSERT INTO entries (seq, time, prev, hash, txid, sig, signer, tx_id, tx)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)out->seq);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)time);
  sqlite3_bind_blob(st, 3, prev, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 4, out->hash, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 5, txid, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 6, sig, 64, SQLITE_STATIC);
  sqlite3_bind_blob(st, 7, signer->b, 32, SQLITE_STATIC);
  sqlite3_bind_text(st, 8, tx_id, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 9, tx, (int)tx_len, SQLITE_STATIC);
  rc = tr_store_step_done(st);
  if (rc == 0) rc = lookups_put(s, out->seq, txid, signer, tx_id);
  if (rc == 0) rc = merkle_store_nodes(s, out->seq - 1, out->hash);
  if (rc != 0) {
    s->head_known = false;
    return rc;
  }
  if (s->in_write) {
    s->head_known = true;
    s->head_size = out->seq, s->head_time = time;
    memcpy(s->head_hash, out->hash, 32);
  }
  return 0;
}

int tr_store_entry_get(tr_store_t *s, uint64_t seq, tr_entry_t *e) {
  sqlite3_stmt *st = stmt_get(s,
      "SELECT seq, time, prev, hash, txid, sig, signer, tx_id, tx FROM entries WHERE seq = ?1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
  int rc = step_row(st);
  if (rc != 0) return rc;
  memset(e, 0, sizeof *e);
  e->seq = (uint64_t)sqlite3_column_int64(st, 0);
  e->time = (uint64_t)sqlite3_column_int64(st, 1);
  rc = column_blob(st, 2, e->prev, 32);
  if (rc == 0) rc = column_blob(st, 3, e->hash, 32);
  if (rc == 0) rc = column_blob(st, 4, e->txid, 32);
  if (rc == 0) rc = column_blob(st, 5, e->sig, 64);
  if (rc == 0) rc = column_blob(st, 6, e->signer.b, 32);
  column_text(st, 7, e->tx_id, sizeof e->tx_id);
  if (rc == 0) {
    int n = sqlite3_column_bytes(st, 8);
    const void *b = sqlite3_column_blob(st, 8);
    e->tx = malloc((size_t)n + 1);
    if (e->tx == NULL) rc = TR_ENOMEM;
    else {
      if (n > 0) memcpy(e->tx, b, (size_t)n);
      e->tx[n] = '\0';
      e->tx_len = (size_t)n;
    }
  }
  sqlite3_reset(st);
  return rc;
}

int tr_store_entries_scan(tr_store_t *s, uint64_t first, uint64_t last, tr_entry_fn fn, void *ctx) {
  sqlite3_stmt *st = stmt_get(s,
      "SELECT seq, time, prev, hash, txid, sig, signer, tx_id, tx FROM entries"
      " WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)first);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)last);
  int rc = 0, step;
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    tr_entry_t e;
    memset(&e, 0, sizeof e);
    e.seq = (uint64_t)sqlite3_column_int64(st, 0);
    e.time = (uint64_t)sqlite3_column_int64(st, 1);
    rc = column_blob(st, 2, e.prev, 32);
    if (rc == 0) rc = column_blob(st, 3, e.hash, 32);
    if (rc == 0) rc = column_blob(st, 4, e.txid, 32);
    if (rc == 0) rc = column_blob(st, 5, e.sig, 64);
    if (rc == 0) rc = column_blob(st, 6, e.signer.b, 32);
    const unsigned char *id = sqlite3_column_text(st, 7);
    if (rc == 0 && (id == NULL || strlen((const char *)id) > TR_TX_ID_CHARS_MAX)) rc = TR_ECORRUPT;
    if (rc == 0) {
      strcpy(e.tx_id, (const char *)id);
      e.tx = (char *)sqlite3_column_blob(st, 8);
      e.tx_len = (size_t)sqlite3_column_bytes(st, 8);
      rc = fn(ctx, &e);
    }
  }
  if (rc == 0 && step != SQLITE_DONE) rc = TR_EIO;
  sqlite3_reset(st);
  return rc;
}

/* Both lookups: each level's candidates (8-byte prefixes), each confirmed
 * on its entry, then the entries after the lookup mark (at most
 * TR_LOOKUP_WRITE_EVERY plus the writer's lag, which a merge lengthens:
 * ~0.4 s of entries at 10^6), scanned by seq. */
int tr_store_entry_by_txid(tr_store_t *s, const uint8_t txid[32], uint64_t *seq) {
  sqlite3_stmt *st = stmt_get(s,
      "SELECT e.seq FROM entry_txids_recent t JOIN entries e ON e.seq = t.seq WHERE t.txid8 = substr(?1, 1, 8)"
      " AND e.txid = ?1 UNION ALL SELECT e.seq FROM entry_txids t JOIN entries e ON e.seq = t.seq"
      " WHERE t.txid8 = substr(?1, 1, 8) AND e.txid = ?1 UNION ALL SELECT seq FROM entries"
      " WHERE seq > (SELECT seq FROM lookup_progress WHERE id = 1) AND txid = ?1 LIMIT 1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_blob(st, 1, txid, 32, SQLITE_STATIC);
  int rc = step_row(st);
  if (rc == 0) *seq = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc;
}

int tr_store_entry_by_signer_id(tr_store_t *s, const tr_key_t *signer, const char *id, uint64_t *seq,
                                uint8_t txid[32]) {
  sqlite3_stmt *st = stmt_get(s,
      "SELECT e.seq, e.txid FROM entry_ids_recent i JOIN entries e ON e.seq = i.seq WHERE i.signer8 = substr(?1, 1, 8)"
      " AND i.tx_id = ?2 AND e.signer = ?1 AND e.tx_id = ?2 UNION ALL SELECT e.seq, e.txid FROM entry_ids i"
      " JOIN entries e ON e.seq = i.seq WHERE i.signer8 = substr(?1, 1, 8) AND i.tx_id = ?2 AND e.signer = ?1"
      " AND e.tx_id = ?2 UNION ALL SELECT seq, txid FROM entries"
      " WHERE seq > (SELECT seq FROM lookup_progress WHERE id = 1) AND signer = ?1 AND tx_id = ?2 LIMIT 1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_blob(st, 1, signer->b, 32, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  int rc = step_row(st);
  if (rc == 0) *seq = (uint64_t)sqlite3_column_int64(st, 0);
  if (rc == 0 && txid) rc = column_blob(st, 1, txid, 32);
  sqlite3_reset(st);
  return rc;
}

/* ---- Merkle ---- */

/* The hash of a complete subtree.  Only every TR_MERKLE_STRATUM-th level is
 * stored (tr_merkle.h), so node (level, index) is folded from the 2^k kept
 * nodes of the level below it that is kept (or the entry hashes, at level
 * 0): read as one range, hashed pairwise up k levels. */
int tr_store_merkle_get(void *store, unsigned level, uint64_t index, uint8_t out[32]) {
  tr_store_t *s = store;
  if (wcache_merkle(s, level, index, out)) return 0;
  unsigned k = level % TR_MERKLE_STRATUM, base = level - k;
  uint64_t first = index << k, count = UINT64_C(1) << k;
  sqlite3_stmt *st = base == 0
      ? stmt_get(s, "SELECT hash FROM entries WHERE seq BETWEEN ?2 + 1 AND ?3 + 1 AND ?1 = 0 ORDER BY seq")
      : stmt_get(s, "SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx BETWEEN ?2 AND ?3 ORDER BY idx");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int(st, 1, (int)base);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)first);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)(first + count - 1));
  uint8_t hashes[1u << (TR_MERKLE_STRATUM - 1)][32];
  uint64_t n = 0;
  int rc;
  while ((rc = step_row(st)) == 0 && n < count && (rc = column_blob(st, 0, hashes[n], 32)) == 0) n++;
  if (rc == 0 || rc == TR_ECORRUPT) sqlite3_reset(st); /* step_row reset it otherwise */
  if (rc == TR_ENOT_FOUND) rc = n == count ? 0 : TR_ECORRUPT; /* asked only for complete subtrees */
  else if (rc == 0) rc = TR_ECORRUPT;                         /* more rows than the range holds */
  if (rc != 0) return rc;
  for (; count > 1; count /= 2)
    for (uint64_t i = 0; i < count / 2; i++) tr_merkle_node_hash(hashes[2 * i], hashes[2 * i + 1], hashes[i]);
  memcpy(out, hashes[0], 32);
  return 0;
}

int tr_store_merkle_root(tr_store_t *s, uint64_t size, uint8_t out[32]) {
  return tr_merkle_root(tr_store_merkle_get, s, size, out);
}

/* ---- checkpoints ---- */

int tr_store_checkpoint_put(tr_store_t *s, uint64_t size, const uint8_t root[32], uint64_t time,
                            const char *note) {
  sqlite3_stmt *st = stmt_get(s,
      "INSERT INTO checkpoints (size, root, time, note) VALUES (?1, ?2, ?3, ?4)");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
  sqlite3_bind_blob(st, 2, root, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)time);
  sqlite3_bind_text(st, 4, note, -1, SQLITE_STATIC);
  return tr_store_step_done(st);
}

int tr_store_checkpoint_latest(tr_store_t *s, uint64_t *size, uint8_t root[32], char **note) {
  sqlite3_stmt *st = stmt_get(s,
      "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1");
  int rc = step_row(st);
  if (rc != 0) return rc;
  *size = (uint64_t)sqlite3_column_int64(st, 0);
  rc = column_blob(st, 1, root, 32);
  if (rc == 0 && note) {
    const unsigned char *t = sqlite3_column_text(st, 2);
    *note = strdup(t ? (const char *)t : "");
    if (*note == NULL) rc = TR_ENOMEM;
  }
  sqlite3_reset(st);
  return rc;
}

/* ---- derived state ---- */

int tr_store_account_get(tr_store_t *s, const tr_key_t *id, tr_account_t *a) {
  int cached_rc;
  if (wcache_account(s, id, a, &cached_rc)) return cached_rc;
  sqlite3_stmt *st = stmt_get(s,
      "SELECT roles, jurisdiction, kyc, frozen FROM accounts WHERE id = ?1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_blob(st, 1, id->b, 32, SQLITE_STATIC);
  int rc = step_row(st);
  if (rc == TR_ENOT_FOUND) wcache_account_set(s, id, NULL);
  if (rc != 0) return rc;
  a->id = *id;
  a->roles = (unsigned)sqlite3_column_int(st, 0);
  column_text(st, 1, a->jurisdiction, sizeof a->jurisdiction);
  a->kyc = sqlite3_column_int(st, 2) != 0;
  a->frozen = sqlite3_column_int(st, 3) != 0;
  sqlite3_reset(st);
  wcache_account_set(s, id, a);
  return 0;
}

int tr_store_account_put(tr_store_t *s, const tr_account_t *a) {
  sqlite3_stmt *st = stmt_get(s,
      "INSERT INTO accounts (id, roles, jurisdiction, kyc, frozen) VALUES (?1, ?2, ?3, ?4, ?5)"
      " ON CONFLICT (id) DO UPDATE SET roles = ?2, jurisdiction = ?3, kyc = ?4, frozen = ?5");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_blob(st, 1, a->id.b, 32, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, (int)a->roles);
  sqlite3_bind_text(st, 3, a->jurisdiction, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, a->kyc);
  sqlite3_bind_int(st, 5, a->frozen);
  int rc = tr_store_step_done(st);
  if (rc == 0) wcache_account_set(s, &a->id, a);
  else s->wgen++;
  return rc;
}

int tr_jurisdictions_join(const tr_rules_t *r, char *out, size_t outlen) {
  if (outlen < r->jurisdictions_n * 3 + 1) return TR_ELIMIT;
  size_t o = 0;
  for (size_t i = 0; i < r->jurisdictions_n; i++) {
    if (i) out[o++] = ',';
    out[o++] = r->jurisdictions[i][0];
    out[o++] = r->jurisdictions[i][1];
  }
  out[o] = '\0';
  return 0;
}

int tr_jurisdictions_split(const char *joined, tr_rules_t *r) {
  r->jurisdictions_n = 0;
  size_t len = strlen(joined);
  for (size_t i = 0; i < len; i += 3) {
    if (r->jurisdictions_n == TR_JURISDICTIONS_MAX || i + 2 > len) return TR_ECORRUPT;
    r->jurisdictions[r->jurisdictions_n][0] = joined[i];
    r->jurisdictions[r->jurisdictions_n][1] = joined[i + 1];
    r->jurisdictions[r->jurisdictions_n][2] = '\0';
    r->jurisdictions_n++;
  }
  return 0;
}

void tr_asset_clear(tr_asset_t *a) {
  free(a->documents_json);
  a->documents_json = NULL;
}

/* String literals, not buffers filled on first use: reader threads call these
 * concurrently (one connection each), and the statement cache is keyed by the
 * SQL text pointer. */
#define ASSET_COLUMNS                                                                              \
  "issuer, name, kind, currency, principal, units, coupon_bps, maturity, rating, risk_weight_pct," \
  " jurisdictions, max_holders, min_units, lockup_until, documents, status, paused_from, issued,"  \
  " holders, created_seq"
static const char ASSET_GET_SQL[] = "SELECT " ASSET_COLUMNS " FROM assets WHERE id = ?1";
static const char ASSET_PUT_SQL[] =
    "INSERT OR REPLACE INTO assets (id, " ASSET_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
    " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)";

int tr_store_asset_get(tr_store_t *s, const char *id, tr_asset_t *a) {
  int cached_rc;
  if (wcache_asset(s, id, a, &cached_rc)) return cached_rc;
  sqlite3_stmt *st = stmt_get(s, ASSET_GET_SQL);
  if (st == NULL) return TR_EIO;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  int rc = step_row(st);
  if (rc != 0) return rc;
  memset(a, 0, sizeof *a);
  snprintf(a->id, sizeof a->id, "%s", id);
  rc = column_blob(st, 0, a->issuer.b, 32);
  column_text(st, 1, a->name, sizeof a->name);
  a->kind = (tr_asset_kind_t)sqlite3_column_int(st, 2);
  column_text(st, 3, a->currency, sizeof a->currency);
  a->principal = (uint64_t)sqlite3_column_int64(st, 4);
  a->units = (uint64_t)sqlite3_column_int64(st, 5);
  a->coupon_bps = (uint64_t)sqlite3_column_int64(st, 6);
  column_text(st, 7, a->maturity, sizeof a->maturity);
  column_text(st, 8, a->rating, sizeof a->rating);
  a->risk_weight_pct = (uint64_t)sqlite3_column_int64(st, 9);
  const unsigned char *j = sqlite3_column_text(st, 10);
  if (rc == 0) rc = tr_jurisdictions_split(j ? (const char *)j : "", &a->rules);
  a->rules.max_holders = (uint64_t)sqlite3_column_int64(st, 11);
  a->rules.min_units = (uint64_t)sqlite3_column_int64(st, 12);
  a->rules.lockup_until = (uint64_t)sqlite3_column_int64(st, 13);
  const unsigned char *d = sqlite3_column_text(st, 14);
  a->documents_json = strdup(d ? (const char *)d : "[]");
  if (a->documents_json == NULL && rc == 0) rc = TR_ENOMEM;
  a->status = (tr_status_t)sqlite3_column_int(st, 15);
  a->paused_from = (tr_status_t)sqlite3_column_int(st, 16);
  a->issued = (uint64_t)sqlite3_column_int64(st, 17);
  a->holders = (uint64_t)sqlite3_column_int64(st, 18);
  a->created_seq = (uint64_t)sqlite3_column_int64(st, 19);
  sqlite3_reset(st);
  if (rc != 0) tr_asset_clear(a);
  else wcache_asset_set(s, a);
  return rc;
}

int tr_store_asset_put(tr_store_t *s, const tr_asset_t *a) {
  char juris[TR_JURISDICTIONS_MAX * 3 + 1];
  if (tr_jurisdictions_join(&a->rules, juris, sizeof juris) != 0) return TR_ELIMIT;
  sqlite3_stmt *st = stmt_get(s, ASSET_PUT_SQL);
  if (st == NULL) return TR_EIO;
  sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, a->issuer.b, 32, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, a->name, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, (int)a->kind);
  sqlite3_bind_text(st, 5, a->currency, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, (sqlite3_int64)a->principal);
  sqlite3_bind_int64(st, 7, (sqlite3_int64)a->units);
  sqlite3_bind_int64(st, 8, (sqlite3_int64)a->coupon_bps);
  sqlite3_bind_text(st, 9, a->maturity, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 10, a->rating, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 11, (sqlite3_int64)a->risk_weight_pct);
  sqlite3_bind_text(st, 12, juris, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 13, (sqlite3_int64)a->rules.max_holders);
  sqlite3_bind_int64(st, 14, (sqlite3_int64)a->rules.min_units);
  sqlite3_bind_int64(st, 15, (sqlite3_int64)a->rules.lockup_until);
  sqlite3_bind_text(st, 16, a->documents_json ? a->documents_json : "[]", -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 17, (int)a->status);
  sqlite3_bind_int(st, 18, (int)a->paused_from);
  sqlite3_bind_int64(st, 19, (sqlite3_int64)a->issued);
  sqlite3_bind_int64(st, 20, (sqlite3_int64)a->holders);
  sqlite3_bind_int64(st, 21, (sqlite3_int64)a->created_seq);
  int rc = tr_store_step_done(st);
  if (rc == 0) wcache_asset_set(s, a);
  else s->wgen++;
  return rc;
}

int tr_store_holding_get(tr_store_t *s, const char *asset, const tr_key_t *account, tr_holding_t *h) {
  if (wcache_holding(s, asset, account, h)) return 0;
  sqlite3_stmt *st = stmt_get(s,
      "SELECT units, frozen FROM holdings WHERE asset = ?1 AND account = ?2");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, account->b, 32, SQLITE_STATIC);
  int rc = step_row(st);
  h->units = h->frozen = 0;
  if (rc == TR_ENOT_FOUND) rc = 0;
  else if (rc != 0) return rc;
  else {
    h->units = (uint64_t)sqlite3_column_int64(st, 0);
    h->frozen = (uint64_t)sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
  }
  wcache_holding_set(s, asset, account, h);
  return 0;
}

int tr_store_holding_put(tr_store_t *s, const char *asset, const tr_key_t *account, const tr_holding_t *h) {
  sqlite3_stmt *st;
  tr_holding_t before = {0};
  bool known = wcache_holding(s, asset, account, &before); /* then a plain UPDATE or INSERT does */
  if (h->units == 0) {
    st = stmt_get(s, "DELETE FROM holdings WHERE asset = ?1 AND account = ?2");
  } else if (known && before.units != 0) {
    st = stmt_get(s, "UPDATE holdings SET units = ?3, frozen = ?4 WHERE asset = ?1 AND account = ?2");
  } else if (known) {
    st = stmt_get(s, "INSERT INTO holdings (asset, account, units, frozen) VALUES (?1, ?2, ?3, ?4)");
  } else {
    st = stmt_get(s,
        "INSERT INTO holdings (asset, account, units, frozen) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (asset, account) DO UPDATE SET units = ?3, frozen = ?4");
  }
  if (st == NULL) return TR_EIO;
  sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, account->b, 32, SQLITE_STATIC);
  if (h->units != 0) {
    sqlite3_bind_int64(st, 3, (sqlite3_int64)h->units);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)h->frozen);
  }
  int rc = tr_store_step_done(st);
  if (rc == 0 && known && h->units != 0 && before.units != 0 && sqlite3_changes(s->db) != 1) rc = TR_ECORRUPT;
  if (rc == 0) wcache_holding_set(s, asset, account, h);
  else s->wgen++;
  return rc;
}

/* ---- account history, written late ---- */

static int history_row_insert(tr_store_t *s, const tr_key_t *account, uint64_t seq) {
  sqlite3_stmt *st = stmt_get(s,
      "INSERT OR IGNORE INTO account_entries (account, seq) VALUES (?1, ?2)");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_blob(st, 1, account->b, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
  return tr_store_step_done(st);
}

int tr_store_account_entry_add(tr_store_t *s, const tr_key_t *account, uint64_t seq) {
  if (!s->in_write) return history_row_insert(s, account, seq);
  if (s->hist_n == s->hist_cap) {
    size_t cap = s->hist_cap ? s->hist_cap * 2 : 1024;
    struct hist_row *h = realloc(s->hist, cap * sizeof *h);
    if (h == NULL) return TR_ENOMEM;
    s->hist = h;
    s->hist_cap = cap;
  }
  s->hist[s->hist_n++] = (struct hist_row){*account, seq};
  return 0;
}

static int hist_row_cmp(const void *a, const void *b) {
  const struct hist_row *x = a, *y = b;
  int c = memcmp(x->account.b, y->account.b, 32);
  if (c != 0) return c;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int tr_store_history_through(tr_store_t *s, uint64_t *seq) {
  sqlite3_stmt *st = stmt_get(s, "SELECT seq FROM history_progress WHERE id = 1");
  int rc = step_row(st);
  if (rc == TR_ENOT_FOUND) return TR_ECORRUPT; /* the migration made the row; nothing deletes it */
  if (rc != 0) return rc;
  *seq = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return 0;
}

/* Writes the pending rows in key order, so each page of account_entries
 * is written once for all of them, and moves the mark to `size` (0: the
 * head; and then the derived mark with it: the SQLite state path writes
 * every derived row with its entry).  The rows start right after the mark
 * (every entry has its signer's row), which is checked: a gap would mean
 * rows lost and not rebuilt. */
static int history_write_to(tr_store_t *s, uint64_t size) {
  size_t n = s->hist_n - s->hist_written;
  if (n == 0) return 0;
  bool both = size == 0;
  uint64_t through = 0;
  int rc = tr_store_history_through(s, &through);
  if (rc == 0 && both) rc = tr_store_head(s, &size, NULL, NULL);
  if (rc != 0) return rc;
  if (s->hist[s->hist_written].seq != through + 1) return TR_ECORRUPT;
  struct hist_row *sorted = malloc(n * sizeof *sorted);
  if (sorted == NULL) return TR_ENOMEM;
  memcpy(sorted, s->hist + s->hist_written, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, hist_row_cmp);
  for (size_t i = 0; i < n && rc == 0; i++) /* a tx may name one account twice: one row */
    if (i == 0 || hist_row_cmp(&sorted[i], &sorted[i - 1]) != 0)
      rc = history_row_insert(s, &sorted[i].account, sorted[i].seq);
  free(sorted);
  /* Written with their entries, every derived row is complete: both marks move. */
  static const char *const marks[] = {"UPDATE history_progress SET seq = ?1 WHERE id = 1",
                                      "UPDATE derived_progress SET seq = ?1 WHERE id = 1"};
  for (size_t i = 0; i < (both ? 2u : 1u) && rc == 0; i++) {
    sqlite3_stmt *st = stmt_get(s, marks[i]);
    if (st == NULL) return TR_EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
    rc = tr_store_step_done(st);
  }
  if (rc == 0) s->hist_written = s->hist_n;
  return rc;
}

static int history_write(tr_store_t *s) { return history_write_to(s, 0); }

void tr_store_history_defer(tr_store_t *s, size_t max_rows) { s->hist_defer_rows = max_rows; }

size_t tr_store_history_pending(const tr_store_t *s) { return s->hist_n - s->hist_written; }

int tr_store_history_flush(tr_store_t *s) {
  if (!s->in_write) return TR_EARG;
  return history_write(s);
}

/* The payees of the distribution at seq, for the rebuild. */
static int history_payees(tr_store_t *s, uint64_t seq) {
  sqlite3_stmt *st = stmt_get(s, "SELECT account FROM payouts WHERE distribution = ?1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
  int step, rc = 0;
  tr_key_t k;
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    rc = column_blob(st, 0, k.b, 32);
    if (rc == 0) rc = tr_store_account_entry_add(s, &k, seq);
  }
  if (rc == 0 && step != SQLITE_DONE) rc = TR_EIO;
  sqlite3_reset(st);
  return rc;
}

typedef struct {
  tr_store_t *s;
  tr_tx_t *tx;
  uint64_t next;
} rebuild_t;

static int history_rebuild_entry(void *ctx, const tr_entry_t *e) {
  rebuild_t *r = ctx;
  if (e->seq != r->next) return TR_ECORRUPT;
  r->next++;
  int rc = tr_tx_decode(e->tx, e->tx_len, r->tx, NULL);
  if (rc == TR_EINVALID) return TR_ECORRUPT; /* it was strictly checked when accepted */
  if (rc != 0) return rc;
  const tr_key_t *named[TR_TX_NAMED_MAX];
  size_t n = tr_tx_named_accounts(r->tx, named);
  for (size_t i = 0; i < n && rc == 0; i++) rc = tr_store_account_entry_add(r->s, named[i], e->seq);
  if (rc == 0 && r->tx->type == TR_TX_ASSET_DISTRIBUTE) rc = history_payees(r->s, e->seq);
  return rc;
}

int tr_store_history_catch_up(tr_store_t *s, uint64_t limit, uint64_t *rebuilt) {
  uint64_t through = 0, head = 0, size = 0;
  *rebuilt = 0;
  int rc = tr_store_begin(s);
  if (rc == 0) rc = tr_store_history_through(s, &through);
  if (rc == 0) rc = tr_store_head(s, &head, NULL, NULL);
  if (rc == 0 && through > head) rc = TR_ECORRUPT;
  size = head < limit ? head : limit;
  if (rc == 0 && through < size) {
    rebuild_t r = {s, malloc(sizeof *r.tx), through + 1};
    rc = r.tx == NULL ? TR_ENOMEM : tr_store_entries_scan(s, through + 1, size, history_rebuild_entry, &r);
    if (rc == 0 && r.next != size + 1) rc = TR_ECORRUPT;
    free(r.tx);
    if (rc == 0) rc = history_write_to(s, size);
  } else {
    size = through;
  }
  if (rc == 0) rc = tr_store_commit(s);
  if (rc != 0) tr_store_rollback(s);
  else *rebuilt = size - through;
  return rc;
}

int tr_store_receipt_put(tr_store_t *s, uint64_t seq, const char *effects_json) {
  sqlite3_stmt *st = stmt_get(s, "INSERT INTO receipts (seq, effects) VALUES (?1, ?2)");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
  sqlite3_bind_text(st, 2, effects_json, -1, SQLITE_STATIC);
  return tr_store_step_done(st);
}

int tr_store_receipt_get(tr_store_t *s, uint64_t seq, char **effects_json) {
  sqlite3_stmt *st = stmt_get(s, "SELECT effects FROM receipts WHERE seq = ?1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
  int rc = step_row(st);
  if (rc != 0) return rc;
  const unsigned char *t = sqlite3_column_text(st, 0);
  *effects_json = strdup(t ? (const char *)t : "{}");
  sqlite3_reset(st);
  return *effects_json ? 0 : TR_ENOMEM;
}

/* ---- online backup ----
 * The SQLite online backup API on a separate read-only connection: one
 * sqlite3_backup_step(-1) copies every page inside a single read transaction,
 * so the copy is one consistent journal size even while the daemon keeps
 * committing (WAL: the writer is never blocked).  The copy is switched out of
 * WAL mode so it is one self-contained file, fsynced, then renamed into
 * place (and the directory fsynced): a crash leaves either no file or a
 * complete one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKUP_BUSY_RETRY_MS 10
#define BACKUP_PARTIAL ".partial-"
#define BACKUP_DIR_ENTRIES_MAX 100000 /* entries looked at for stale partials: a huge directory is not scanned forever */

/* The pid of a "NAME.partial-PID" or "NAME.partial-PID-journal" (the copy's
 * rollback journal) name, or 0 when the name is neither. */
static long partial_pid(const char *name, bool *is_journal) {
  const char *p = NULL;
  for (const char *q = strstr(name, BACKUP_PARTIAL); q; q = strstr(q + 1, BACKUP_PARTIAL)) p = q;
  if (p == NULL || p == name) return 0;
  const char *digits = p + strlen(BACKUP_PARTIAL);
  if (*digits < '1' || *digits > '9') return 0;
  char *end;
  errno = 0;
  long pid = strtol(digits, &end, 10);
  if (errno != 0 || pid <= 0) return 0;
  *is_journal = strcmp(end, "-journal") == 0;
  return *end == '\0' || *is_journal ? pid : 0;
}

/* A backup killed half-way (kill -9 of the daemon, a crash) leaves its
 * NAME.partial-PID and NAME.partial-PID-journal behind; nothing else would
 * ever remove them.  In the directory we are about to write, remove those of
 * dead processes: our own uid's regular files, the copy itself only when it
 * is empty or starts with SQLite's header (or zeros: page 1 not yet written). */
static void backup_remove_stale_partials(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return;
  int dfd = dirfd(d);
  struct dirent *e;
  for (size_t seen = 0; (e = readdir(d)) != NULL && seen < BACKUP_DIR_ENTRIES_MAX; seen++) {
    bool journal = false;
    long pid = partial_pid(e->d_name, &journal);
    if (pid == 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    struct stat st;
    if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
      continue;
    if (!journal && st.st_size > 0) { /* page 1 may not be written yet: zeros are a copy in progress too */
      static const char zeros[16];
      char head[16];
      int fd = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
      ssize_t n = fd >= 0 ? read(fd, head, sizeof head) : -1;
      if (fd >= 0) close(fd);
      if (n != (ssize_t)sizeof head || (memcmp(head, "SQLite format 3", 16) != 0 && memcmp(head, zeros, 16) != 0))
        continue;
    }
    unlinkat(dfd, e->d_name, 0);
  }
  closedir(d);
}

static int backup_fsync_path(const char *path, bool is_dir) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
  if (fd < 0) return TR_EIO;
  int rc = fsync(fd) == 0 ? 0 : TR_EIO;
  close(fd);
  return rc;
}

/* Copies src into the (new, empty) database at tmp_path. */
static int backup_copy(sqlite3 *src, const char *tmp_path, char *err, size_t errlen) {
  sqlite3 *dst = NULL;
  int rc = TR_EIO;
  char why[256];
  if (sqlite3_open_v2(tmp_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot create %s: %s", tmp_path, db_errmsg(dst, why, sizeof why));
    sqlite3_close(dst);
    return TR_EIO;
  }
  sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
  if (b == NULL) {
    snprintf(err, errlen, "backup: %s", db_errmsg(dst, why, sizeof why));
    sqlite3_close(dst);
    return TR_EIO;
  }
  int step, waited_ms = 0;
  while ((step = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || step == SQLITE_LOCKED) {
    if (waited_ms >= TR_SQLITE_BUSY_TIMEOUT_MS) break;
    sqlite3_sleep(BACKUP_BUSY_RETRY_MS);
    waited_ms += BACKUP_BUSY_RETRY_MS;
  }
  sqlite3_backup_finish(b);
  if (step != SQLITE_DONE) {
    int e = sqlite3_system_errno(dst) ? sqlite3_system_errno(dst) : sqlite3_system_errno(src);
    snprintf(err, errlen, "backup: %s%s%s%s", sqlite3_errstr(step), e ? " (" : "", e ? strerror(e) : "", e ? ")" : "");
  } else if (sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "backup: cannot leave WAL mode: %s", db_errmsg(dst, why, sizeof why));
  }
  else rc = 0;
  if (sqlite3_close(dst) != SQLITE_OK && rc == 0) {
    snprintf(err, errlen, "backup: cannot close %s", tmp_path);
    rc = TR_EIO;
  }
  return rc;
}

int tr_store_backup(const char *db_path, const char *dest_path, char *err, size_t errlen) {
  char tmp[4096], dir[4096];
  struct stat st;
  if (lstat(dest_path, &st) == 0) {
    snprintf(err, errlen, "%s already exists; a backup never overwrites a file", dest_path);
    return TR_EEXISTS;
  }
  int n = snprintf(tmp, sizeof tmp, "%s.partial-%ld", dest_path, (long)getpid());
  if (n < 0 || (size_t)n >= sizeof tmp) return TR_ELIMIT;
  unlink(tmp); /* a leftover of an earlier crash with our pid */
  snprintf(dir, sizeof dir, "%s", dest_path);
  backup_remove_stale_partials(dirname(dir));
  sqlite3 *src = NULL;
  if (sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    char why[256];
    snprintf(err, errlen, "cannot open %s: %s", db_path, db_errmsg(src, why, sizeof why));
    sqlite3_close(src);
    return TR_EIO;
  }
  sqlite3_busy_timeout(src, TR_SQLITE_BUSY_TIMEOUT_MS);
  int rc = backup_copy(src, tmp, err, errlen);
  sqlite3_close(src);
  if (rc == 0 && backup_fsync_path(tmp, false) != 0) {
    snprintf(err, errlen, "cannot fsync %s: %s", tmp, strerror(errno));
    rc = TR_EIO;
  }
  if (rc == 0 && rename(tmp, dest_path) != 0) {
    snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, dest_path, strerror(errno));
    rc = TR_EIO;
  }
  snprintf(dir, sizeof dir, "%s", dest_path);
  if (rc == 0 && backup_fsync_path(dirname(dir), true) != 0) {
    snprintf(err, errlen, "cannot fsync the directory of %s: %s", dest_path, strerror(errno));
    rc = TR_EIO;
  }
  if (rc != 0) unlink(tmp);
  return rc;
}

/* ---- the writer's row caches (see struct tr_store) ---- */

/* SQL from outside this file (tr_ledger.c, tr_query.c) runs through here; one
 * that may write makes every cached row suspect. */
sqlite3_stmt *tr_store_stmt(tr_store_t *s, const char *sql) {
  sqlite3_stmt *st = stmt_get(s, sql);
  if (st != NULL && s->in_write && !sqlite3_stmt_readonly(st)) s->wgen++;
  return st;
}

static void wcache_close(tr_store_t *s) {
  for (size_t i = 0; i < WCACHE_ASSETS; i++) tr_asset_clear(&s->wasset[i].a);
}

static size_t key_slot(const tr_key_t *k, size_t n) {
  uint32_t v;
  memcpy(&v, k->b, sizeof v); /* keys are uniform: any 4 bytes index well */
  return v % n;
}

/* true when the answer is known: *rc is 0 (a copied into *a) or TR_ENOT_FOUND. */
static bool wcache_account(tr_store_t *s, const tr_key_t *id, tr_account_t *a, int *rc) {
  if (!s->in_write) return false;
  size_t i = key_slot(id, WCACHE_ACCOUNTS);
  if (s->wacct[i].gen != s->wgen || memcmp(s->wacct[i].a.id.b, id->b, 32) != 0) return false;
  *rc = s->wacct[i].found ? 0 : TR_ENOT_FOUND;
  if (s->wacct[i].found) *a = s->wacct[i].a;
  return true;
}

/* a == NULL: the account does not exist. */
static void wcache_account_set(tr_store_t *s, const tr_key_t *id, const tr_account_t *a) {
  if (!s->in_write) return;
  size_t i = key_slot(id, WCACHE_ACCOUNTS);
  s->wacct[i].gen = s->wgen;
  s->wacct[i].found = a != NULL;
  if (a) s->wacct[i].a = *a;
  else memset(&s->wacct[i].a, 0, sizeof s->wacct[i].a);
  s->wacct[i].a.id = *id;
}

static size_t holding_slot(const char *asset, const tr_key_t *account) {
  uint32_t h = 2166136261u; /* FNV-1a over the asset id */
  for (const char *p = asset; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
  return (h ^ (uint32_t)key_slot(account, 1u << 30)) % WCACHE_HOLDINGS;
}

static bool wcache_holding(tr_store_t *s, const char *asset, const tr_key_t *account, tr_holding_t *h) {
  if (!s->in_write) return false;
  size_t i = holding_slot(asset, account);
  if (s->whold[i].gen != s->wgen || memcmp(s->whold[i].account.b, account->b, 32) != 0 ||
      strcmp(s->whold[i].asset, asset) != 0)
    return false;
  *h = s->whold[i].h;
  return true;
}

static void wcache_holding_set(tr_store_t *s, const char *asset, const tr_key_t *account, const tr_holding_t *h) {
  if (!s->in_write) return;
  size_t n = strlen(asset), i = holding_slot(asset, account);
  if (n >= sizeof s->whold[i].asset) return; /* never: asset ids are bounded */
  memcpy(s->whold[i].asset, asset, n + 1);
  s->whold[i].account = *account;
  s->whold[i].h = *h;
  s->whold[i].gen = s->wgen;
}

static bool wcache_asset(tr_store_t *s, const char *id, tr_asset_t *a, int *rc) {
  if (!s->in_write) return false;
  for (size_t i = 0; i < WCACHE_ASSETS; i++) {
    const tr_asset_t *c = &s->wasset[i].a;
    if (s->wasset[i].gen != s->wgen || strcmp(c->id, id) != 0) continue;
    *a = *c;
    a->documents_json = strdup(c->documents_json);
    *rc = a->documents_json ? 0 : TR_ENOMEM;
    return true;
  }
  return false;
}

static void wcache_asset_set(tr_store_t *s, const tr_asset_t *a) {
  if (!s->in_write) return;
  size_t slot = WCACHE_ASSETS;
  for (size_t i = 0; i < WCACHE_ASSETS && slot == WCACHE_ASSETS; i++)
    if (s->wasset[i].gen == s->wgen && strcmp(s->wasset[i].a.id, a->id) == 0) slot = i;
  if (slot == WCACHE_ASSETS) slot = s->wasset_next++ % WCACHE_ASSETS;
  char *docs = strdup(a->documents_json ? a->documents_json : "[]"); /* as the row stores it */
  tr_asset_clear(&s->wasset[slot].a);
  s->wasset[slot].gen = 0;
  if (docs == NULL) return; /* out of memory: just not cached */
  s->wasset[slot].a = *a;
  s->wasset[slot].a.documents_json = docs;
  s->wasset[slot].gen = s->wgen;
}

static bool wcache_merkle(tr_store_t *s, unsigned level, uint64_t index, uint8_t out[32]) {
  if (!s->in_write || level > TR_MERKLE_PATH_MAX) return false;
  if (s->wmerkle[level].gen != s->wgen || s->wmerkle[level].idx != index) return false;
  memcpy(out, s->wmerkle[level].hash, 32);
  return true;
}

static void wcache_merkle_set(tr_store_t *s, unsigned level, uint64_t index, const uint8_t hash[32]) {
  if (!s->in_write || level > TR_MERKLE_PATH_MAX) return;
  s->wmerkle[level].gen = s->wgen;
  s->wmerkle[level].idx = index;
  memcpy(s->wmerkle[level].hash, hash, 32);
}
