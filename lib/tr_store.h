/* tr_store.h — the SQLite side of the ledger: schema, connections, the
 * journal, Merkle nodes, checkpoints and derived-state rows.
 *
 * One writer connection (the sequencer's, or a CLI's) and any number of
 * read-only connections, each used by one thread at a time.  The database
 * runs in WAL mode with synchronous=FULL: a COMMIT returns only after the WAL
 * is fsynced, so an acknowledged entry survives power loss, and readers see
 * a consistent snapshot without ever waiting for the writer.
 *
 * All SQL of the project lives in this file, tr_store_state.c, tr_query.c
 * and tr_audit.c; daemon/ and tools/ never run SQL directly.
 */
#ifndef TR_STORE_H
#define TR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "tr_tx.h"

typedef struct tr_store tr_store_t;

enum {
  TR_STORE_READONLY = 1,   /* a reader: no schema changes, no writes */
  TR_STORE_CREATE = 2,     /* create the file and schema (init only) */
  TR_STORE_MEMORY = 4,     /* a private in-memory database (tests) */
  TR_STORE_SCAN = 8,       /* with READONLY: a reader of a private copy that it
                              scans whole (the audit): the file is memory-mapped,
                              so pages are not copied into SQLite's cache */
};

/* Opens `path` (ignored with TR_STORE_MEMORY).  Applies pending schema
 * migrations for writers; readers refuse a schema newer or older than ours.
 * Returns 0 and *out, or a negative tr_err with a message in errbuf. */
int tr_store_open(const char *path, int flags, tr_store_t **out, char *errbuf, size_t errlen);
void tr_store_close(tr_store_t *s);
sqlite3 *tr_store_db(tr_store_t *s);
const char *tr_store_errmsg(tr_store_t *s);
/* Why the last write work on this thread failed with tr_err rc, in words an
 * operator can act on: the first SQLite error since tr_store_begin ("disk
 * full (database or disk is full)", "database is damaged (…)"), never
 * SQLite's "not an error".  Valid until the next call on this thread. */
const char *tr_store_error_text(tr_store_t *s, int rc);
/* True when the first failure since tr_store_open, tr_store_begin,
 * tr_store_read_begin or tr_store_wal_checkpoint on this thread means the file is damaged: writing on would only make it worse. */
int tr_store_failure_is_fatal(void);
/* Steps a write statement to its end and resets it: 0, or TR_EIO with the
 * failure remembered for tr_store_error_text (a NULL statement is TR_EIO). */
int tr_store_step_done(sqlite3_stmt *st);
/* Remembers a failed SQLite call for tr_store_error_text (used by the
 * modules that step statements themselves). */
void tr_store_note_failure(sqlite3 *db, int sqlite_rc);
/* PRAGMA quick_check at start: a damaged file is refused, with SQLite's
 * words, before anything is written to it. */
int tr_store_integrity_check(tr_store_t *s, char *err, size_t errlen);

/* Copies committed WAL frames into the database file without blocking the
 * writer or readers (SQLITE_CHECKPOINT_PASSIVE).  Run beside the writer, it
 * does most of the copying in parallel, so the writer's own automatic
 * checkpoint (which must run to let the WAL restart) finds little left. */
int tr_store_wal_checkpoint(tr_store_t *s, int *wal_frames, int *checkpointed_frames);

/* The current schema version (number of migrations). */
int tr_store_schema_version(void);

/* Transactions.  Writers use BEGIN IMMEDIATE; readers take a snapshot with
 * tr_store_read_begin so multi-statement queries see one journal size. */
int tr_store_begin(tr_store_t *s);
int tr_store_commit(tr_store_t *s);
int tr_store_rollback(tr_store_t *s);
/* Whether this connection's commits fsync the WAL (synchronous FULL, the
 * default) or leave it to the next commit that does (NORMAL: still atomic
 * and consistent, but a power loss may take the newest such commits).  For
 * rows that are rebuilt from the journal anyway: the writer behind's.  Set
 * between transactions. */
int tr_store_set_durable(tr_store_t *s, bool durable);
int tr_store_read_begin(tr_store_t *s);
int tr_store_read_end(tr_store_t *s);

/* Prepared statements are cached per connection by their SQL text pointer
 * (a string literal), reset on fetch.  Never finalize the result. */
sqlite3_stmt *tr_store_stmt(tr_store_t *s, const char *sql);

/* Many rows of one table, TR_STORE_ROWS_PER_INSERT to a statement: `many`
 * is the INSERT with that many value tuples of `cols` parameters, `one` the
 * same INSERT with one tuple, for the rest (both string literals, as for
 * tr_store_stmt).  bind(st, first, row) binds a row's columns from parameter
 * `first` on.  Rows are rows[0..n) `stride` bytes apart; when `same` is
 * given, a row for which same(previous row, row) holds is left out (sorted
 * rows naming one key twice).  Per row, a statement's own work (step, halt,
 * reset) is about a third of a one-row insert; this pays it once per 32. */
#define TR_STORE_ROWS_PER_INSERT 32
typedef struct {
  const char *one, *many;
  int cols;
  void (*bind)(sqlite3_stmt *st, int first, const void *row);
  bool (*same)(const void *prev, const void *row);
} tr_store_rows_t;
int tr_store_insert_rows(tr_store_t *s, const tr_store_rows_t *spec, const void *rows, size_t stride, size_t n);

/* A VALUES list of 32 copies of tuple t, for tr_store_rows_t.many. */
#define TR_SQL_X8(t) t "," t "," t "," t "," t "," t "," t "," t
#define TR_SQL_X32(t) TR_SQL_X8(t) "," TR_SQL_X8(t) "," TR_SQL_X8(t) "," TR_SQL_X8(t)

/* ---- meta ---- */
int tr_store_meta_put(tr_store_t *s, const char *key, const char *value);
int tr_store_meta_get(tr_store_t *s, const char *key, char *out, size_t outlen);

/* ---- journal ---- */
typedef struct {
  uint64_t seq, time;
  uint8_t prev[TR_HASH_BYTES], hash[TR_HASH_BYTES], txid[TR_HASH_BYTES];
  uint8_t sig[TR_SIG_BYTES];
  tr_key_t signer;
  char tx_id[TR_TX_ID_CHARS_MAX + 1];
  char *tx;          /* heap copy, NUL-terminated; free with tr_entry_clear */
  size_t tx_len;
} tr_entry_t;

void tr_entry_clear(tr_entry_t *e);

#define TR_ENTRY_BYTES_LEN (16 + 8 + 8 + 32 + 32 + 64)
/* entry_bytes of §3 and its hash = SHA-256(0x00 || entry_bytes). */
void tr_entry_bytes(uint64_t seq, uint64_t time, const uint8_t prev[32], const uint8_t txid[32],
                    const uint8_t sig[64], uint8_t out[TR_ENTRY_BYTES_LEN]);
void tr_entry_hash(uint64_t seq, uint64_t time, const uint8_t prev[32], const uint8_t txid[32],
                   const uint8_t sig[64], uint8_t out[32]);

/* Head of the journal: size 0 with zero hash and time on an empty one. */
int tr_store_head(tr_store_t *s, uint64_t *size, uint8_t hash[32], uint64_t *time);
/* What readers see: the head as of the derived mark (derived_progress).
 * A node commits entries before the writer behind it has written their
 * state rows; queries answer for the size whose rows are all written, so
 * every row they read and the `size` they report agree. */
int tr_store_visible_head(tr_store_t *s, uint64_t *size, uint8_t hash[32], uint64_t *time);

/* Appends entry head+1 with the given time (the caller chose it >= head time):
 * computes prev and hash, stores the row and the new Merkle nodes. */
int tr_store_append(tr_store_t *s, uint64_t time, const uint8_t txid[32], const uint8_t sig[64],
                    const tr_key_t *signer, const char *tx_id, const char *tx, size_t tx_len,
                    tr_entry_t *out /* seq, time, prev, hash filled; tx not copied */);

/* Lookups; return TR_ENOT_FOUND when absent.  The *_seq variants fill only seq. */
int tr_store_entry_get(tr_store_t *s, uint64_t seq, tr_entry_t *e);
/* Calls fn for each stored entry with first <= seq <= last, in seq order;
 * e->tx points into the row (not NUL-terminated) and, like *e, is valid only
 * during the call.  A gap in seqs is the caller's to notice.  Stops at fn's
 * first nonzero return and returns it; TR_ECORRUPT for a malformed row. */
typedef int (*tr_entry_fn)(void *ctx, const tr_entry_t *e);
int tr_store_entries_scan(tr_store_t *s, uint64_t first, uint64_t last, tr_entry_fn fn, void *ctx);
/* Lookups by txid and by (signer, id) read entry_txids and entry_ids,
 * complete up to the lookup mark (schema 005), then the entries after it.
 * Each table has two levels (schema 007), *_recent the small one: every
 * entry up to the mark has its row in one of them (in both while a merge
 * runs), and each row names its entry.  tr_store_append writes an entry's
 * rows with it, into the large level; a node's journal append does not, and
 * its writer behind writes them late into either level, with
 * tr_store_lookups_write (the entries after..through, moving the mark) or
 * tr_store_lookup_rows_put, and merges the small level into the large one. */
int tr_store_lookups_mark(tr_store_t *s, uint64_t *seq);
int tr_store_lookups_write(tr_store_t *s, uint64_t after, uint64_t through, bool large);
/* The same rows from memory, for a writer that holds the entries already:
 * one lookup row of each entry, inserted in the order given (sort them by
 * key, so a run shares pages), into entry_txids or (by_id) entry_ids, the
 * large level or the small one; rows there already are left.  Then the
 * mark moves from `after` to `through` once every row of the entries
 * between is in. */
typedef struct {
  uint64_t seq;
  uint8_t txid8[8], signer8[8];
  char tx_id[TR_TX_ID_CHARS_MAX + 1];
} tr_lookup_row_t;
int tr_store_lookup_rows_put(tr_store_t *s, const tr_lookup_row_t *rows, size_t n, bool by_id, bool large);
int tr_store_lookups_mark_move(tr_store_t *s, uint64_t after, uint64_t through);
/* Rows in the small level (of entry_txids; entry_ids has as many). */
int tr_store_lookups_recent_rows(tr_store_t *s, uint64_t *rows);
/* A merge of the small level into the large one, in the caller's
 * transactions: steps, then the end.  A step copies the rows of the small
 * level of entry_txids or (by_id) entry_ids with keys after *cursor
 * (zeroed: from the first), at most max_rows of them, into the large level,
 * moves the cursor to the last, and says *done once none is left.  The end
 * empties the small level of both.  Between them a row is in both levels,
 * and a merge cut short leaves it so: the next merge copies it again (rows
 * there already are left). */
int tr_store_lookups_merge_step(tr_store_t *s, bool by_id, size_t max_rows, tr_lookup_row_t *cursor, bool *done);
int tr_store_lookups_merge_end(tr_store_t *s);
int tr_store_entry_by_txid(tr_store_t *s, const uint8_t txid[32], uint64_t *seq);
/* The entry of an accepted (signer, id), with its txid when txid != NULL. */
int tr_store_entry_by_signer_id(tr_store_t *s, const tr_key_t *signer, const char *id, uint64_t *seq,
                                uint8_t txid[32]);

/* ---- Merkle ---- */
int tr_store_merkle_get(void *store, unsigned level, uint64_t index, uint8_t out[32]);
int tr_store_merkle_root(tr_store_t *s, uint64_t size, uint8_t out[32]);

/* ---- checkpoints ---- */
int tr_store_checkpoint_put(tr_store_t *s, uint64_t size, const uint8_t root[32], uint64_t time,
                            const char *note);
/* Latest checkpoint; TR_ENOT_FOUND when none. note is a heap string the caller frees. */
int tr_store_checkpoint_latest(tr_store_t *s, uint64_t *size, uint8_t root[32], char **note);

/* ---- derived state ---- */
typedef struct {
  tr_key_t id;
  unsigned roles;
  char jurisdiction[3];
  bool kyc, frozen;
} tr_account_t;

typedef struct {
  char id[TR_ASSET_ID_CHARS_MAX + 1];
  tr_key_t issuer;
  char name[TR_TEXT_BYTES_MAX + 1];
  tr_asset_kind_t kind;
  char currency[4];
  uint64_t principal, units, coupon_bps, risk_weight_pct;
  char maturity[11];
  char rating[TR_RATING_CHARS_MAX * 4 + 1];
  tr_rules_t rules;
  char *documents_json;     /* heap; "[]" when none */
  tr_status_t status, paused_from;
  uint64_t issued, holders, created_seq;
} tr_asset_t;

typedef struct { uint64_t units, frozen; } tr_holding_t;

int tr_store_account_get(tr_store_t *s, const tr_key_t *id, tr_account_t *a);
int tr_store_account_put(tr_store_t *s, const tr_account_t *a);
int tr_store_asset_get(tr_store_t *s, const char *id, tr_asset_t *a);  /* a->documents_json must be freed: tr_asset_clear */
int tr_store_asset_put(tr_store_t *s, const tr_asset_t *a);
void tr_asset_clear(tr_asset_t *a);
/* Missing holdings read as zero. Writing units 0 deletes the row. */
int tr_store_holding_get(tr_store_t *s, const char *asset, const tr_key_t *account, tr_holding_t *h);
int tr_store_holding_put(tr_store_t *s, const char *asset, const tr_key_t *account, const tr_holding_t *h);
/* account.history rows.  Inside a write transaction a row is kept in
 * memory and written at commit, sorted with the others; with
 * tr_store_history_defer(s, max) they wait across commits until `max` are
 * pending or tr_store_history_flush, so a page of account_entries is
 * written once for many entries.  history_progress.seq says how far rows
 * are written: every entry up to it has all of its rows.  Pending rows are
 * lost with the process; tr_store_history_catch_up rebuilds them from the
 * journal (a writer runs it before its first apply). */
int tr_store_account_entry_add(tr_store_t *s, const tr_key_t *account, uint64_t seq);
void tr_store_history_defer(tr_store_t *s, size_t max_rows /* 0: write at every commit */);
size_t tr_store_history_pending(const tr_store_t *s);
/* Inside a write transaction: writes every pending row and moves the mark to the head. */
int tr_store_history_flush(tr_store_t *s);
/* The mark as this connection sees it (any connection, in or out of a snapshot). */
int tr_store_history_through(tr_store_t *s, uint64_t *seq);
/* In its own transaction: rows for the entries after the mark through
 * `limit` (or the head, if lower), from their tx bytes and the stored
 * payouts: so no further than the derived mark, which the payouts reach;
 * only the history mark moves.  *rebuilt = how many entries that was. */
int tr_store_history_catch_up(tr_store_t *s, uint64_t limit, uint64_t *rebuilt);
int tr_store_receipt_put(tr_store_t *s, uint64_t seq, const char *effects_json);
int tr_store_receipt_get(tr_store_t *s, uint64_t seq, char **effects_json);

/* Unicode-aware helpers shared by store and ledger. */
int tr_jurisdictions_join(const tr_rules_t *r, char *out, size_t outlen);
int tr_jurisdictions_split(const char *joined, tr_rules_t *r);

/* Writes a consistent copy of the database at db_path to dest_path (which
 * must not exist: TR_EEXISTS) with the SQLite online backup API on its own
 * read-only connection, safe while a writer keeps committing.  The copy is a
 * single self-contained file (not WAL), written to a temp file, fsynced and
 * renamed into place.  Returns 0, or a negative tr_err with err filled. */
int tr_store_backup(const char *db_path, const char *dest_path, char *err, size_t errlen);

#endif
