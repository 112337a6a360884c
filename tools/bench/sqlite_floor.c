/* sqlite_floor.c — SQLite's own floor for the journal append (issue #13).
 *
 *   sqlite-floor [--rows N] [--batch B] [--tx-bytes L] [--signers S] [--dir DIR] [--keep]
 *
 * Inserts N journal rows into the `entries` table exactly as the schema
 * migrations make it (the same SQL text, compiled into libtranche: columns,
 * CHECKs, the append-only triggers; since schema 005 no random-key index),
 * B rows per transaction, with the node writer's
 * durability settings (WAL, synchronous=FULL, its autocheckpoint and cache),
 * and nothing else: no rules, no hashing, no other table.  Rows have the
 * sizes of real ones (32-byte prev/hash/txid/signer, 64-byte sig, L-byte
 * tx, a tx_id like "t123"); txids are random, as SHA-256 makes them; the
 * signers rotate over S keys, as the benchmarks' senders do.
 *
 * Prints µs per row and per batch (wall-clock and this thread's CPU), and
 * the COMMIT (WAL write + fsync) part, so a stage of the node that appends
 * the same rows in the same batches can be reported ÷ this floor, measured
 * in the same minutes.  Plain SQLite calls, not tr_store: the floor must not
 * include the node's own code.
 */
#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tr_limits.h"

extern const char *const tr_schema_migrations[]; /* schema/0NN_*.sql, in order */
extern const size_t tr_schema_migrations_count;

#define FLOOR_SIGNERS_MAX 4096   /* distinct signers in a run; the benches use 64 */
#define FLOOR_TX_BYTES_DEFAULT 245 /* a tranche-bench transfer's tx bytes */
#define FLOOR_PATH_MAX 4096      /* PATH_MAX */
#define FLOOR_BATCH_MAX 65536    /* the node's batches are ≤ 1024; a batch's random bytes are made up front */
#define ROW_RANDOM_BYTES 128     /* hash 32 + txid 32 + sig 64 */

typedef struct {
  long rows, batch, tx_bytes, signers;
  const char *dir;
  bool keep;
} floor_opts_t;

static double clock_s(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void) {
  fprintf(stderr,
          "usage: sqlite-floor [--rows N] [--batch B] [--tx-bytes L] [--signers S] [--dir DIR] [--keep]\n"
          "Inserts N rows (default 20000) into the journal's `entries` table (schema/001_journal.sql) in\n"
          "transactions of B rows (default 256, at most %d), WAL + synchronous=FULL as the node's writer, and prints\n"
          "us per row and per batch, wall-clock and CPU, with the COMMIT's share: SQLite's floor for\n"
          "appending the same rows in the same batches.\n"
          "  --tx-bytes L   bytes of each row's tx (default %d, a benchmark transfer; at most %d)\n"
          "  --signers S    distinct signer keys, rotated (default 64, at most %d)\n"
          "  --dir DIR      where floor.db goes (default a new /tmp/sqlite-floor-XXXXXX)\n"
          "  --keep         keep the database (default: removed)\n",
          FLOOR_BATCH_MAX, FLOOR_TX_BYTES_DEFAULT, TR_TX_BYTES_MAX, FLOOR_SIGNERS_MAX);
  return 2;
}

static int parse(int argc, char **argv, floor_opts_t *o) {
  *o = (floor_opts_t){.rows = 20000, .batch = 256, .tx_bytes = FLOOR_TX_BYTES_DEFAULT, .signers = 64};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--keep") == 0) {
      o->keep = true;
      continue;
    }
    if (v == NULL) return -1;
    i++;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    bool num = *v != '\0' && *end == '\0';
    if (strcmp(a, "--dir") == 0) o->dir = v;
    else if (strcmp(a, "--rows") == 0 && num) o->rows = n;
    else if (strcmp(a, "--batch") == 0 && num) o->batch = n;
    else if (strcmp(a, "--tx-bytes") == 0 && num) o->tx_bytes = n;
    else if (strcmp(a, "--signers") == 0 && num) o->signers = n;
    else return -1;
  }
  if (o->rows < 1 || o->batch < 1 || o->batch > o->rows || o->batch > FLOOR_BATCH_MAX || o->tx_bytes < 1 || o->tx_bytes > TR_TX_BYTES_MAX ||
      o->signers < 1 || o->signers > FLOOR_SIGNERS_MAX)
    return -1;
  return 0;
}

static int exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK) return 0;
  fprintf(stderr, "sqlite-floor: %s: %s\n", sql, err ? err : sqlite3_errmsg(db));
  sqlite3_free(err);
  return -1;
}

/* The node writer's settings (lib/tr_store.c, configure). */
static int open_db(const char *path, sqlite3 **db) {
  if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    fprintf(stderr, "sqlite-floor: cannot open %s: %s\n", path, sqlite3_errmsg(*db));
    return -1;
  }
  if (exec(*db, "PRAGMA journal_mode = WAL") || exec(*db, "PRAGMA synchronous = FULL") ||
      exec(*db, "PRAGMA journal_size_limit = 67108864") || exec(*db, "PRAGMA wal_autocheckpoint = 8192") ||
      exec(*db, "PRAGMA cache_size = -16384"))
    return -1;
  if (exec(*db, "BEGIN IMMEDIATE")) return -1;
  for (size_t i = 0; i < tr_schema_migrations_count; i++) /* the table as a node has it now */
    if (exec(*db, tr_schema_migrations[i])) return -1;
  return exec(*db, "COMMIT") ? -1 : 0;
}

typedef struct {
  double wall_s, cpu_s, commit_wall_s, commit_cpu_s;
} floor_times_t;

/* One row, as the sequencer appends it: the chain links prev to the last
 * hash.  rnd: this row's ROW_RANDOM_BYTES, made before the timing. */
static int insert_row(sqlite3_stmt *st, long seq, uint8_t prev[32], const uint8_t (*signers)[32], long n_signers,
                      const char *tx, long tx_bytes, const uint8_t *rnd) {
  const uint8_t *hash = rnd, *txid = rnd + 32, *sig = rnd + 64;
  char tx_id[32];
  snprintf(tx_id, sizeof tx_id, "t%ld", seq);
  int rc = sqlite3_bind_int64(st, 1, seq);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, 1700000000000 + seq);
  if (rc == SQLITE_OK) rc = sqlite3_bind_blob(st, 3, prev, 32, SQLITE_TRANSIENT);
  if (rc == SQLITE_OK) rc = sqlite3_bind_blob(st, 4, hash, 32, SQLITE_TRANSIENT);
  if (rc == SQLITE_OK) rc = sqlite3_bind_blob(st, 5, txid, 32, SQLITE_TRANSIENT);
  if (rc == SQLITE_OK) rc = sqlite3_bind_blob(st, 6, sig, 64, SQLITE_TRANSIENT);
  if (rc == SQLITE_OK) rc = sqlite3_bind_blob(st, 7, signers[seq % n_signers], 32, SQLITE_STATIC);
  if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 8, tx_id, -1, SQLITE_TRANSIENT);
  if (rc == SQLITE_OK) rc = sqlite3_bind_blob(st, 9, tx, (int)tx_bytes, SQLITE_STATIC);
  if (rc == SQLITE_OK) rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  sqlite3_reset(st);
  memcpy(prev, hash, 32);
  return rc == SQLITE_OK ? 0 : -1;
}

static int run(sqlite3 *db, const floor_opts_t *o, floor_times_t *t) {
  static uint8_t signers[FLOOR_SIGNERS_MAX][32];
  uint8_t prev[32] = {0};
  char *tx = malloc((size_t)o->tx_bytes);
  uint8_t *rnd = malloc((size_t)o->batch * ROW_RANDOM_BYTES);
  sqlite3_stmt *st = NULL;
  if (tx == NULL || rnd == NULL) {
    free(tx);
    free(rnd);
    return -1;
  }
  memset(tx, 'x', (size_t)o->tx_bytes);
  randombytes_buf(signers, sizeof signers);
  if (sqlite3_prepare_v2(db, "INSERT INTO entries (seq, time, prev, hash, txid, sig, signer, tx_id, tx) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "sqlite-floor: %s\n", sqlite3_errmsg(db));
    free(tx);
    free(rnd);
    return -1;
  }
  int rc = 0;
  for (long seq = 1; seq <= o->rows && rc == 0;) {
    long end = seq + o->batch - 1 < o->rows ? seq + o->batch - 1 : o->rows;
    randombytes_buf(rnd, (size_t)(end - seq + 1) * ROW_RANDOM_BYTES); /* not timed: SHA-256 and Ed25519's part */
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    rc = exec(db, "BEGIN IMMEDIATE");
    for (const uint8_t *r = rnd; rc == 0 && seq <= end; seq++, r += ROW_RANDOM_BYTES)
      rc = insert_row(st, seq, prev, signers, o->signers, tx, o->tx_bytes, r);
    double cw = clock_s(CLOCK_MONOTONIC), cc = clock_s(CLOCK_THREAD_CPUTIME_ID);
    if (rc == 0) rc = exec(db, "COMMIT");
    else fprintf(stderr, "sqlite-floor: insert failed: %s\n", sqlite3_errmsg(db));
    double w1 = clock_s(CLOCK_MONOTONIC), c1 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    t->commit_wall_s += w1 - cw, t->commit_cpu_s += c1 - cc;
    t->wall_s += w1 - w0, t->cpu_s += c1 - c0;
  }
  sqlite3_finalize(st);
  free(tx);
  free(rnd);
  return rc;
}

/* Removes the database and its WAL and shared-memory files. */
static int remove_db(const char *path) {
  char side[FLOOR_PATH_MAX + 8];
  int rc = unlink(path) == 0 || errno == ENOENT ? 0 : -1;
  snprintf(side, sizeof side, "%s-wal", path);
  if (unlink(side) != 0 && errno != ENOENT) rc = -1;
  snprintf(side, sizeof side, "%s-shm", path);
  if (unlink(side) != 0 && errno != ENOENT) rc = -1;
  if (rc != 0) fprintf(stderr, "sqlite-floor: cannot remove %s: %s\n", path, strerror(errno));
  return rc;
}

int main(int argc, char **argv) {
  floor_opts_t o;
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    printf("sqlite-floor %s\n", TR_VERSION);
    return 0;
  }
  if (sodium_init() < 0 || parse(argc, argv, &o) != 0) return usage();
  char tmpl[] = "/tmp/sqlite-floor-XXXXXX", path[FLOOR_PATH_MAX];
  bool made_dir = o.dir == NULL;
  if (made_dir && (o.dir = mkdtemp(tmpl)) == NULL) {
    perror("sqlite-floor: mkdtemp");
    return 1;
  }
  if (snprintf(path, sizeof path, "%s/floor.db", o.dir) >= (int)sizeof path) return usage();
  sqlite3 *db = NULL;
  floor_times_t t = {0};
  int rc = remove_db(path) == 0 && open_db(path, &db) == 0 && run(db, &o, &t) == 0 ? 0 : 1; /* a fresh journal */
  sqlite3_close(db);
  if (rc == 0) {
    double batches = (double)((o.rows + o.batch - 1) / o.batch);
    printf("sqlite floor: %ld entries rows in batches of %ld (tx %ld bytes, %ld signers), WAL + synchronous=FULL\n",
           o.rows, o.batch, o.tx_bytes, o.signers);
    printf("  per row:   %.2f us wall, %.2f us CPU  (%.0f rows/s)\n", t.wall_s / (double)o.rows * 1e6,
           t.cpu_s / (double)o.rows * 1e6, (double)o.rows / t.wall_s);
    printf("  per batch: %.3f ms wall, %.3f ms CPU; of it COMMIT (WAL write + fsync) %.3f ms wall, %.3f ms CPU\n",
           t.wall_s / batches * 1e3, t.cpu_s / batches * 1e3, t.commit_wall_s / batches * 1e3,
           t.commit_cpu_s / batches * 1e3);
  }
  if (o.keep) {
    if (rc == 0) printf("database: %s\n", path);
  } else {
    if (remove_db(path) != 0 || (made_dir && rmdir(o.dir) != 0)) rc = 1;
  }
  return rc;
}
