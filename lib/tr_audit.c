/* tr_audit.c — the offline audit's replay (tr_ledger_replay): the journal's
 * rules re-run by tr_ledger.c against the in-memory state (tr_mem.h), and
 * every derived row checked against the stored database.
 *
 * Workload: one pass over up to millions of entries, mostly transfers, each
 * a handful of hash lookups.  The stored database is only ever scanned in key
 * order: entries by seq as they are replayed; receipts, distributions and
 * payouts in step with the replay, since the rules produce them in key order;
 * accounts, assets, holdings and meta when the replay reaches the derived
 * mark (a node writes those rows behind its journal: derived_progress says
 * how far); account history, Merkle nodes and checkpoints once the journal
 * is replayed.  No second copy of the journal is kept: what stays in memory
 * is the live state plus, per entry, its (signer, id) digest, its
 * account-history rows and its Merkle nodes (~120 bytes an entry).
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_delta.h"
#include "tr_ledger.h"
#include "tr_mem.h"
#include "tr_merkle.h"
#include "tr_note.h"
#include "tr_query.h"
#include "tr_state.h"

#define NONE TR_MEM_NONE
#define REPLAY_PROGRESS_ENTRIES 1000 /* progress callback period */
#define META_MAX 8                   /* meta rows genesis writes (two), with room */

/* Array v (n used, *cap allocated) with room for one more element: v or its
 * new place, or NULL when memory runs out (then v is untouched). */
static void *grown(void *v, size_t n, size_t *cap, size_t elem) {
  if (n < *cap) return v;
  size_t want = *cap ? *cap * 2 : 64;
  if (want > SIZE_MAX / elem || want > NONE) return NULL;
  void *p = realloc(v, want * elem);
  if (p != NULL) *cap = want;
  return p;
}

typedef struct {
  uint32_t key;                 /* a key record, later its rank */
  uint64_t seq;
} history_t;

/* A stored table read in key order in step with the replay. */
typedef struct {
  sqlite3_stmt *st;
  const char *table;
} cursor_t;

typedef struct {
  tr_store_t *src;              /* the audited database, read-only, in one read transaction */
  tr_mem_t m;                   /* the replayed state; its rows come to the sink below */
  uint64_t derived_through;     /* stored derived_progress: rows are due up to it */

  history_t *history;
  uint64_t history_through;     /* stored history_progress, once read */
  size_t history_n, history_cap;

  /* Merkle: level L >= 1 node idx is levels[L][idx] (produced in idx order). */
  uint8_t (*levels[TR_MERKLE_PATH_MAX + 1])[32];
  size_t level_n[TR_MERKLE_PATH_MAX + 1], level_cap[TR_MERKLE_PATH_MAX + 1];

  struct { char key[32], value[128]; } meta[META_MAX];
  size_t meta_n, meta_checked;

  cursor_t receipts, distributions, payouts;

  tr_note_vkey_t node_vkey;     /* genesis's node key under the chain id: checkpoints verify with it */
  bool node_vkey_set;

  /* The first difference found: the replay reports it. */
  uint64_t bad_seq;
  char message[256];
} audit_t;

static int differ(audit_t *au, uint64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int differ(audit_t *au, uint64_t seq, const char *fmt, ...) {
  if (au->message[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(au->message, sizeof au->message, fmt, ap);
    va_end(ap);
    au->bad_seq = seq;
  }
  return TR_ECORRUPT;
}

/* ------------------------------------------------------------------------ */
/* Cursors: stored per-entry rows, checked as the replay produces them       */

static int cursor_open(audit_t *au, cursor_t *c, const char *table, const char *sql) {
  c->table = table;
  if (sqlite3_prepare_v2(tr_store_db(au->src), sql, -1, &c->st, NULL) != SQLITE_OK)
    return differ(au, 0, "cannot read stored %s: %s", table, tr_store_errmsg(au->src));
  return 0;
}

/* The next stored row, which must exist since the replay produced one. */
static int cursor_step(audit_t *au, cursor_t *c, uint64_t seq) {
  int rc = sqlite3_step(c->st);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return differ(au, seq, "stored %s lacks the row of entry %llu", c->table, (unsigned long long)seq);
  return differ(au, seq, "cannot read stored %s: %s", c->table, tr_store_errmsg(au->src));
}

/* At the end: the stored table must hold nothing more. */
static int cursor_finish(audit_t *au, cursor_t *c) {
  int rc = sqlite3_step(c->st);
  if (rc == SQLITE_DONE) return 0;
  if (rc == SQLITE_ROW)
    return differ(au, (uint64_t)sqlite3_column_int64(c->st, 0), "stored %s has a row the replay does not (seq %lld)",
                  c->table, (long long)sqlite3_column_int64(c->st, 0));
  return differ(au, 0, "cannot read stored %s: %s", c->table, tr_store_errmsg(au->src));
}

/* Column col holds exactly these bytes, stored as a blob (keys, hashes). */
static bool column_blob_is(sqlite3_stmt *st, int col, const void *bytes, size_t n) {
  if (sqlite3_column_type(st, col) != SQLITE_BLOB) return false;
  const void *p = sqlite3_column_blob(st, col);
  return (size_t)sqlite3_column_bytes(st, col) == n && (n == 0 || memcmp(p, bytes, n) == 0);
}

/* Column col holds exactly the text s. */
static bool column_text_is(sqlite3_stmt *st, int col, const char *s) {
  if (sqlite3_column_type(st, col) != SQLITE_TEXT) return false;
  const unsigned char *p = sqlite3_column_text(st, col);
  size_t n = strlen(s);
  return p != NULL && (size_t)sqlite3_column_bytes(st, col) == n && memcmp(p, s, n) == 0;
}

static bool column_int_is(sqlite3_stmt *st, int col, uint64_t v) {
  return sqlite3_column_type(st, col) == SQLITE_INTEGER && (uint64_t)sqlite3_column_int64(st, col) == v;
}

/* ------------------------------------------------------------------------ */
/* The sink: the rows the replay makes, checked or kept                      */

/* Rows of entries past the derived mark are not written yet (a node that
 * stopped hard rebuilds them at start). */
static bool row_due(const audit_t *au, uint64_t seq) { return seq <= au->derived_through; }

static int sink_entry(void *ctx, const tr_entry_t *e, const char *tx, size_t tx_len) {
  (void)ctx, (void)e, (void)tx, (void)tx_len; /* the stored entry is compared by replay_same */
  return 0;
}

/* Any earlier entry with this (signer, id) is a journal that repeats itself:
 * a node refuses or deduplicates such a tx, it never appends it. */
static int sink_entry_get(void *ctx, uint64_t seq, tr_entry_t *e) {
  audit_t *au = ctx;
  (void)e;
  return differ(au, au->m.size + 1, "tx repeats the signer and id of entry %llu", (unsigned long long)seq);
}

static int sink_receipt_get(void *ctx, uint64_t seq, char **json) {
  (void)ctx, (void)seq, (void)json;
  return TR_ECORRUPT; /* asked only for duplicates, which sink_entry_get refuses */
}

static int sink_receipt_put(void *ctx, uint64_t seq, const char *json) {
  audit_t *au = ctx;
  sqlite3_stmt *st = au->receipts.st;
  if (!row_due(au, seq)) return 0;
  int rc = cursor_step(au, &au->receipts, seq);
  if (rc == 0 && !(column_int_is(st, 0, seq) && column_text_is(st, 1, json)))
    rc = differ(au, seq, "stored receipt of entry %llu differs from replay", (unsigned long long)seq);
  return rc;
}

static int sink_meta_put(void *ctx, const char *key, const char *value) {
  audit_t *au = ctx;
  if (au->meta_n == META_MAX || strlen(key) >= sizeof au->meta[0].key || strlen(value) >= sizeof au->meta[0].value)
    return TR_ELIMIT;
  snprintf(au->meta[au->meta_n].key, sizeof au->meta[0].key, "%s", key);
  snprintf(au->meta[au->meta_n].value, sizeof au->meta[0].value, "%s", value);
  au->meta_n++;
  return 0;
}

static int sink_history_add(void *ctx, uint32_t key, uint64_t seq) {
  audit_t *au = ctx;
  history_t *history = grown(au->history, au->history_n, &au->history_cap, sizeof *history);
  if (history == NULL) return TR_ENOMEM;
  au->history = history;
  au->history[au->history_n++] = (history_t){key, seq}; /* repeats are dropped when sorted */
  return 0;
}

static int sink_distribution_put(void *ctx, uint64_t seq, const char *asset, uint64_t amount, tr_dist_kind_t kind,
                                 uint64_t count) {
  audit_t *au = ctx;
  sqlite3_stmt *st = au->distributions.st;
  if (!row_due(au, seq)) return 0;
  int rc = cursor_step(au, &au->distributions, seq);
  if (rc == 0 && !(column_int_is(st, 0, seq) && column_text_is(st, 1, asset) &&
                   column_int_is(st, 2, amount) && column_int_is(st, 3, (uint64_t)kind) && column_int_is(st, 4, count)))
    rc = differ(au, seq, "stored distributions row of entry %llu differs from replay", (unsigned long long)seq);
  return rc;
}

static int sink_payout_put(void *ctx, uint64_t seq, const tr_key_t *account, const char *asset, uint64_t amount) {
  audit_t *au = ctx;
  sqlite3_stmt *st = au->payouts.st;
  char k[17];
  if (!row_due(au, seq)) return 0;
  int rc = cursor_step(au, &au->payouts, seq);
  if (rc == 0 && !(column_int_is(st, 0, seq) && column_blob_is(st, 1, account->b, 32) &&
                   column_text_is(st, 2, asset) && column_int_is(st, 3, amount)))
    rc = differ(au, seq, "stored payouts of distribution %llu differ from replay (account %s…)", (unsigned long long)seq,
                tr_hex_encode(account->b, 8, k));
  return rc;
}

/* Level L >= 1 nodes completed by leaves up to the derived mark, kept for
 * the final comparison (the leaf being appended is entry size + 1). */
static int sink_merkle_node(void *ctx, const tr_merkle_node_t *n) {
  audit_t *au = ctx;
  unsigned l = n->level;
  if (!row_due(au, au->m.size + 1)) return 0;
  if (l == 0 || l > TR_MERKLE_PATH_MAX || n->index != au->level_n[l]) return TR_ECORRUPT;
  uint8_t(*nodes)[32] = grown(au->levels[l], au->level_n[l], &au->level_cap[l], 32);
  if (nodes == NULL) return TR_ENOMEM;
  au->levels[l] = nodes;
  memcpy(au->levels[l][au->level_n[l]++], n->hash, 32);
  return 0;
}

static const tr_mem_sink_t audit_sink = {
  .entry = sink_entry,
  .entry_get = sink_entry_get,
  .receipt_put = sink_receipt_put,
  .receipt_get = sink_receipt_get,
  .meta_put = sink_meta_put,
  .history_add = sink_history_add,
  .distribution_put = sink_distribution_put,
  .payout_put = sink_payout_put,
  .merkle_node = sink_merkle_node,
};

/* ------------------------------------------------------------------------ */
/* The final comparison: stored tables, each in key order                    */

/* Steps a full-table scan; 1 with a row, 0 at the end, <0 on error. */
static int scan_step(audit_t *au, sqlite3_stmt *st, const char *table) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) return 1;
  if (rc == SQLITE_DONE) return 0;
  return differ(au, 0, "cannot read stored %s: %s", table, tr_store_errmsg(au->src));
}

static sqlite3_stmt *scan_open(audit_t *au, const char *sql, const char *table) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tr_store_db(au->src), sql, -1, &st, NULL) != SQLITE_OK) {
    differ(au, 0, "cannot read stored %s: %s", table, tr_store_errmsg(au->src));
    sqlite3_finalize(st);
    return NULL;
  }
  return st;
}

/* Checks the scan's current row against the replay: true when it matches,
 * else false with what differs (the key and column) in why. */
typedef bool (*row_check_fn)(audit_t *au, sqlite3_stmt *st, char *why, size_t whylen);

/* A stored table, scanned in key order, must hold exactly the replay's rows. */
static int compare_table(audit_t *au, const char *table, const char *sql, row_check_fn check, size_t replay_rows) {
  sqlite3_stmt *st = scan_open(au, sql, table);
  if (st == NULL) return TR_ECORRUPT;
  size_t rows = 0;
  int rc;
  char why[160];
  while ((rc = scan_step(au, st, table)) == 1) {
    rows++;
    if (!check(au, st, why, sizeof why)) {
      rc = differ(au, 0, "stored %s differs from replay at %s", table, why);
      break;
    }
  }
  if (rc == 0 && rows != replay_rows) rc = differ(au, 0, "stored %s has %zu rows, replay %zu", table, rows, replay_rows);
  sqlite3_finalize(st);
  return rc < 0 ? rc : 0;
}

static bool meta_row(audit_t *au, sqlite3_stmt *st, char *why, size_t whylen) {
  size_t i = au->meta_checked++;
  const char *k = (const char *)sqlite3_column_text(st, 0);
  snprintf(why, whylen, "key %s", k ? k : "(null)");
  return i < au->meta_n && column_text_is(st, 0, au->meta[i].key) && column_text_is(st, 1, au->meta[i].value);
}

static int cmp_meta(const void *a, const void *b) { return strcmp(a, b); } /* key is the first member */

static bool account_row(audit_t *au, sqlite3_stmt *st, char *why, size_t whylen) {
  tr_key_t id = {{0}};
  bool key_ok = sqlite3_column_type(st, 0) == SQLITE_BLOB && sqlite3_column_bytes(st, 0) == 32;
  if (key_ok) memcpy(id.b, sqlite3_column_blob(st, 0), 32);
  uint32_t r = key_ok ? tr_mem_key_find(&au->m, &id) : NONE;
  const tr_account_t *a = r != NONE && au->m.keys[r].is_account ? &au->m.keys[r].a : NULL;
  const char *col = a == NULL ? "id" : !column_int_is(st, 1, a->roles) ? "roles"
                  : !column_text_is(st, 2, a->jurisdiction) ? "jurisdiction"
                  : !column_int_is(st, 3, a->kyc) ? "kyc" : !column_int_is(st, 4, a->frozen) ? "frozen" : NULL;
  char k[17];
  snprintf(why, whylen, "account %s…, column %s", tr_hex_encode(id.b, 8, k), col ? col : "");
  return col == NULL;
}

/* The first member in which two assets differ, or NULL. */
static const char *asset_difference(const tr_asset_t *x, const tr_asset_t *y) {
  if (memcmp(x->issuer.b, y->issuer.b, 32) != 0) return "issuer";
  if (strcmp(x->name, y->name) != 0) return "name";
  if (x->kind != y->kind) return "kind";
  if (strcmp(x->currency, y->currency) != 0) return "currency";
  if (x->principal != y->principal) return "principal";
  if (x->units != y->units) return "units";
  if (x->coupon_bps != y->coupon_bps) return "coupon_bps";
  if (strcmp(x->maturity, y->maturity) != 0) return "maturity";
  if (strcmp(x->rating, y->rating) != 0) return "rating";
  if (x->risk_weight_pct != y->risk_weight_pct) return "risk_weight_pct";
  if (x->rules.jurisdictions_n != y->rules.jurisdictions_n) return "jurisdictions";
  for (size_t i = 0; i < x->rules.jurisdictions_n; i++)
    if (strcmp(x->rules.jurisdictions[i], y->rules.jurisdictions[i]) != 0) return "jurisdictions";
  if (x->rules.max_holders != y->rules.max_holders) return "max_holders";
  if (x->rules.min_units != y->rules.min_units) return "min_units";
  if (x->rules.lockup_until != y->rules.lockup_until) return "lockup_until";
  if (strcmp(x->documents_json ? x->documents_json : "", y->documents_json ? y->documents_json : "") != 0)
    return "documents";
  if (x->status != y->status) return "status";
  if (x->paused_from != y->paused_from) return "paused_from";
  if (x->issued != y->issued) return "issued";
  if (x->holders != y->holders) return "holders";
  if (x->created_seq != y->created_seq) return "created_seq";
  return NULL;
}

static bool asset_row(audit_t *au, sqlite3_stmt *st, char *why, size_t whylen) {
  char id[TR_ASSET_ID_CHARS_MAX + 1];
  const unsigned char *t = sqlite3_column_text(st, 0);
  snprintf(id, sizeof id, "%s", t ? (const char *)t : "");
  uint32_t r = tr_mem_asset_find(&au->m, id);
  const char *col = "id";
  if (r != NONE && column_text_is(st, 0, id)) {
    tr_asset_t stored;
    int rc = tr_store_asset_get(au->src, id, &stored);
    col = rc != 0 ? "(unreadable)" : asset_difference(&au->m.assets[r].a, &stored);
    if (rc == 0) tr_asset_clear(&stored);
  }
  snprintf(why, whylen, "asset %s, column %s", id, col ? col : "");
  return col == NULL;
}

static bool holding_row(audit_t *au, sqlite3_stmt *st, char *why, size_t whylen) {
  const unsigned char *asset = sqlite3_column_text(st, 0);
  tr_key_t id = {{0}};
  bool key_ok = sqlite3_column_type(st, 1) == SQLITE_BLOB && sqlite3_column_bytes(st, 1) == 32;
  if (key_ok) memcpy(id.b, sqlite3_column_blob(st, 1), 32);
  uint32_t a = asset ? tr_mem_asset_find(&au->m, (const char *)asset) : NONE, kr = key_ok ? tr_mem_key_find(&au->m, &id) : NONE;
  uint32_t r = a != NONE && kr != NONE ? tr_mem_holding_find(&au->m, a, kr) : NONE;
  const tr_holding_t *h = r != NONE && au->m.holdings[r].h.units != 0 ? &au->m.holdings[r].h : NULL;
  const char *col = h == NULL ? "(no such holding)" : !column_int_is(st, 2, h->units) ? "units"
                  : !column_int_is(st, 3, h->frozen) ? "frozen" : NULL;
  char k[17];
  snprintf(why, whylen, "asset %s, account %s…, column %s", asset ? (const char *)asset : "(null)",
           tr_hex_encode(id.b, 8, k), col ? col : "");
  return col == NULL;
}

typedef struct {
  tr_key_t id;
  uint32_t rec;
} key_order_t;

static int cmp_key_order(const void *a, const void *b) {
  return memcmp(((const key_order_t *)a)->id.b, ((const key_order_t *)b)->id.b, 32);
}

static int cmp_history(const void *a, const void *b) {
  const history_t *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* How far the node had written account_entries (history_progress): a node
 * that stopped hard keeps the newest entries' rows in memory only and
 * rebuilds them when it starts, so rows are due up to the mark, not beyond. */
static int history_mark(audit_t *au, uint64_t *through) {
  sqlite3_stmt *st = scan_open(au, "SELECT id, seq FROM history_progress", "history_progress");
  int rc = st ? scan_step(au, st, "history_progress") : TR_ECORRUPT;
  if (rc == 0) rc = differ(au, 0, "stored history_progress has no row");
  if (rc == 1 && (!column_int_is(st, 0, 1) || sqlite3_column_int64(st, 1) < 0 ||
                  (uint64_t)sqlite3_column_int64(st, 1) > au->m.size))
    rc = differ(au, 0, "stored history_progress is not one seq within the journal");
  if (rc == 1) {
    *through = (uint64_t)sqlite3_column_int64(st, 1);
    rc = scan_step(au, st, "history_progress");
    if (rc == 1) rc = differ(au, 0, "stored history_progress has more than one row");
  }
  sqlite3_finalize(st);
  return rc;
}

/* account_entries in (account, seq) order: the rows are made in seq order,
 * so they are sorted by each key's rank in key order, made unique (the
 * store ignores a repeated row), then merged with the stored table. */
static int compare_history(audit_t *au) {
  uint64_t through = 0;
  int mark = history_mark(au, &through);
  if (mark != 0) return mark;
  au->history_through = through;
  size_t due = 0; /* rows of entries up to the mark; they were made in seq order */
  while (due < au->history_n && au->history[due].seq <= through) due++;
  au->history_n = due;
  key_order_t *order = malloc((au->m.keys_n ? au->m.keys_n : 1) * sizeof *order);
  if (order == NULL) return TR_ENOMEM;
  for (size_t i = 0; i < au->m.keys_n; i++) order[i] = (key_order_t){au->m.keys[i].a.id, (uint32_t)i};
  qsort(order, au->m.keys_n, sizeof *order, cmp_key_order);
  for (size_t i = 0; i < au->m.keys_n; i++) au->m.keys[order[i].rec].rank = (uint32_t)i;
  for (size_t i = 0; i < au->history_n; i++) au->history[i].key = au->m.keys[au->history[i].key].rank;
  qsort(au->history, au->history_n, sizeof *au->history, cmp_history);
  size_t n = 0;
  for (size_t i = 0; i < au->history_n; i++)
    if (n == 0 || cmp_history(&au->history[i], &au->history[n - 1]) != 0) au->history[n++] = au->history[i];

  sqlite3_stmt *st = scan_open(au, "SELECT account, seq FROM account_entries ORDER BY account, seq", "account_entries");
  int rc = TR_ECORRUPT;
  size_t i = 0;
  char k[17] = "";
  while (st != NULL && (rc = scan_step(au, st, "account_entries")) == 1) {
    const history_t *want = i < n ? &au->history[i] : NULL;
    const tr_key_t *key = want ? &order[want->key].id : NULL;
    if (want == NULL || !column_blob_is(st, 0, key->b, 32) || !column_int_is(st, 1, want->seq)) {
      /* Name the entry of whichever row comes first in key order: a stored
       * row the replay does not make, or a replay row the table lacks. */
      uint64_t seq = (uint64_t)sqlite3_column_int64(st, 1);
      int order = -1;
      if (want && sqlite3_column_bytes(st, 0) == 32) {
        order = memcmp(sqlite3_column_blob(st, 0), key->b, 32);
        if (order == 0) order = seq < want->seq ? -1 : 1;
      }
      if (order > 0) seq = want->seq;
      if (key) tr_hex_encode(key->b, 8, k);
      rc = differ(au, seq, "stored account_entries differs from replay near entry %llu (replay's row: account %s…)",
                  (unsigned long long)seq, want ? k : "none");
      break;
    }
    i++;
  }
  if (rc == 0 && i < n)
    rc = differ(au, au->history[i].seq, "stored account_entries lacks the row of entry %llu",
                (unsigned long long)au->history[i].seq);
  sqlite3_finalize(st);
  free(order);
  return rc < 0 ? rc : 0;
}

static int compare_merkle(audit_t *au) {
  sqlite3_stmt *st = scan_open(au, "SELECT level, idx, hash FROM merkle_nodes ORDER BY level, idx", "merkle_nodes");
  if (st == NULL) return TR_ECORRUPT;
  unsigned level = 1;
  size_t idx = 0;
  int rc;
  while ((rc = scan_step(au, st, "merkle_nodes")) == 1) {
    while (level <= TR_MERKLE_PATH_MAX && idx == au->level_n[level]) level++, idx = 0;
    if (level > TR_MERKLE_PATH_MAX || !column_int_is(st, 0, level) || !column_int_is(st, 1, idx) ||
        !column_blob_is(st, 2, au->levels[level][idx], 32)) {
      rc = differ(au, 0, "stored merkle_nodes differs from replay at level %lld, index %lld",
                  (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1));
      break;
    }
    idx++;
  }
  while (rc == 0 && level <= TR_MERKLE_PATH_MAX && idx == au->level_n[level]) level++, idx = 0;
  if (rc == 0 && level <= TR_MERKLE_PATH_MAX)
    rc = differ(au, 0, "stored merkle_nodes lacks level %u, index %zu", level, idx);
  sqlite3_finalize(st);
  return rc < 0 ? rc : 0;
}

/* The stored schema must be exactly the one tranche creates: a missing
 * append-only trigger or unique index is someone's edit of the file, even
 * when every row still checks out. */
static int compare_schema(audit_t *au) {
  static const char sql[] = "SELECT type, name, tbl_name, ifnull(sql, '') FROM sqlite_master ORDER BY type, name";
  tr_store_t *fresh = NULL;
  char err[256];
  if (tr_store_open(NULL, TR_STORE_MEMORY, &fresh, err, sizeof err) != 0)
    return differ(au, 0, "cannot build the expected schema: %s", err);
  sqlite3_stmt *want = NULL, *have = scan_open(au, sql, "schema");
  int rc = have && sqlite3_prepare_v2(tr_store_db(fresh), sql, -1, &want, NULL) == SQLITE_OK ? 0 : TR_ECORRUPT;
  if (rc != 0 && have) rc = differ(au, 0, "cannot build the expected schema: %s", tr_store_errmsg(fresh));
  while (rc == 0) {
    int w = sqlite3_step(want), h = scan_step(au, have, "schema");
    if (h < 0) { rc = h; break; }
    if (w != SQLITE_ROW && w != SQLITE_DONE) { rc = differ(au, 0, "cannot read the expected schema"); break; }
    if (w == SQLITE_DONE && h == 0) break;
    bool same = w == SQLITE_ROW && h == 1;
    for (int c = 0; same && c < 4; c++) same = column_text_is(have, c, (const char *)sqlite3_column_text(want, c));
    if (same) continue;
    /* Which object: the one of the two that sorts first by (type, name). */
    int order = w != SQLITE_ROW ? 1 : h != 1 ? -1 : 0;
    for (int c = 0; order == 0 && c < 2; c++) {
      const char *x = (const char *)sqlite3_column_text(want, c), *y = (const char *)sqlite3_column_text(have, c);
      order = strcmp(x ? x : "", y ? y : "");
    }
    sqlite3_stmt *at = order <= 0 ? want : have;
    const char *type = (const char *)sqlite3_column_text(at, 0), *name = (const char *)sqlite3_column_text(at, 1);
    rc = differ(au, 0, "the stored schema differs from tranche's at %s %s (%s)", type ? type : "?", name ? name : "?",
                order < 0 ? "missing" : order > 0 ? "not tranche's" : "changed");
  }
  sqlite3_finalize(want);
  sqlite3_finalize(have);
  tr_store_close(fresh);
  return rc < 0 ? rc : 0;
}

/* Every stored checkpoint must be one the node signed for this journal
 * (PROTOCOL.md §3): the schema stops UPDATE and DELETE of rows, not INSERT,
 * so a row added with sqlite3 would otherwise pass.  Each row's note must
 * verify with the genesis node key, carry the row's size and root, and
 * that root must be the Merkle root at its size (the stored Merkle nodes
 * were compared with the replay's just before).  Sizes only grow: size is
 * the table's rowid, so row order is size order, and what a later insert
 * could change is only the time column, which the note does not carry (a
 * C2SP checkpoint is origin, size and root) and so is checked only to be a
 * time at all. */
static int compare_checkpoints(audit_t *au) {
  if (!au->node_vkey_set) return differ(au, 1, "no node key: genesis was not replayed");
  sqlite3_stmt *st = scan_open(au, "SELECT size, root, time, note FROM checkpoints ORDER BY size", "checkpoints");
  if (st == NULL) return TR_ECORRUPT;
  uint64_t prev = 0;
  int rc;
  char why[200];
  while ((rc = scan_step(au, st, "checkpoints")) == 1) {
    sqlite3_int64 size = sqlite3_column_int64(st, 0);
    bool typed = sqlite3_column_type(st, 0) == SQLITE_INTEGER && sqlite3_column_type(st, 1) == SQLITE_BLOB &&
                 sqlite3_column_bytes(st, 1) == 32 && sqlite3_column_type(st, 2) == SQLITE_INTEGER &&
                 sqlite3_column_int64(st, 2) >= 0 && sqlite3_column_type(st, 3) == SQLITE_TEXT;
    if (!typed) {
      rc = differ(au, 0, "stored checkpoint %lld has malformed columns (size, root, time or note)", (long long)size);
      break;
    }
    if ((uint64_t)size <= prev) {
      rc = differ(au, 0, "stored checkpoints do not grow: %lld after %llu", (long long)size, (unsigned long long)prev);
      break;
    }
    int v = tr_query_checkpoint_verify(au->src, &au->node_vkey, au->derived_through, (uint64_t)size, sqlite3_column_blob(st, 1),
                                       (const char *)sqlite3_column_text(st, 3), why, sizeof why);
    if (v != 0) {
      rc = v == TR_ECORRUPT ? differ(au, 0, "%s", why)
                            : differ(au, 0, "cannot check stored checkpoint %lld: %s", (long long)size, tr_strerror(v));
      break;
    }
    prev = (uint64_t)size;
  }
  sqlite3_finalize(st);
  return rc < 0 ? rc : 0;
}

/* When the replay reaches the derived mark: the state tables as the node
 * last wrote them. */
static int compare_state(audit_t *au) {
  qsort(au->meta, au->meta_n, sizeof au->meta[0], cmp_meta);
  int rc = compare_table(au, "meta", "SELECT key, value FROM meta ORDER BY key", meta_row, au->meta_n);
  if (rc == 0)
    rc = compare_table(au, "accounts", "SELECT id, roles, jurisdiction, kyc, frozen FROM accounts ORDER BY id",
                       account_row, au->m.accounts_n);
  if (rc == 0) rc = compare_table(au, "assets", "SELECT id FROM assets ORDER BY id", asset_row, au->m.assets_n);
  if (rc == 0)
    rc = compare_table(au, "holdings", "SELECT asset, account, units, frozen FROM holdings ORDER BY asset, account",
                       holding_row, au->m.holdings_positive);
  return rc;
}

/* entry_txids and entry_ids (tx.get, tx.find) are projections of the
 * journal written late (schema 005), each in two levels (schema 007): every
 * row of either names an entry with that key prefix, and every entry up to
 * the lookup mark has its row in a level (in both, a merge cut short). */
#define LOOKUP_TXID_ROW(t) t ".txid8 = substr(e.txid, 1, 8) AND " t ".seq = e.seq"
#define LOOKUP_ID_ROW(t) t ".signer8 = substr(e.signer, 1, 8) AND " t ".tx_id = e.tx_id AND " t ".seq = e.seq"
#define LOOKUP_CHECK(large, recent, row_is_entry)                                                              \
  "SELECT NOT EXISTS (SELECT 1 FROM entries e WHERE e.seq <= ?1 AND NOT EXISTS (SELECT 1 FROM " large " t"    \
  " WHERE " row_is_entry("t") ") AND NOT EXISTS (SELECT 1 FROM " recent " t WHERE " row_is_entry("t") "))"   \
  " AND NOT EXISTS (SELECT 1 FROM " large " t WHERE NOT EXISTS (SELECT 1 FROM entries e"                     \
  " WHERE " row_is_entry("t") "))"                                                                             \
  " AND NOT EXISTS (SELECT 1 FROM " recent " t WHERE NOT EXISTS (SELECT 1 FROM entries e"                      \
  " WHERE " row_is_entry("t") "))"
static int compare_lookups(audit_t *au, uint64_t size) {
  uint64_t mark = 0;
  int rc = tr_store_lookups_mark(au->src, &mark);
  if (rc == TR_ECORRUPT) return differ(au, 0, "stored lookup_progress has no row");
  if (rc != 0) return differ(au, 0, "cannot read stored lookup_progress: %s", tr_store_errmsg(au->src));
  if (mark > size)
    return differ(au, 0, "stored lookup_progress (%llu) is past the journal (%llu entries)", (unsigned long long)mark,
                  (unsigned long long)size);
  static const struct { const char *table, *sql; } checks[] = {
    {"entry_txids", LOOKUP_CHECK("entry_txids", "entry_txids_recent", LOOKUP_TXID_ROW)},
    {"entry_ids", LOOKUP_CHECK("entry_ids", "entry_ids_recent", LOOKUP_ID_ROW)},
  };
  for (size_t i = 0; i < sizeof checks / sizeof checks[0] && rc == 0; i++) {
    sqlite3_stmt *st = scan_open(au, checks[i].sql, checks[i].table);
    if (st == NULL) return TR_ECORRUPT;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)mark);
    rc = scan_step(au, st, checks[i].table);
    if (rc == 1 && sqlite3_column_int64(st, 0) != 1)
      rc = differ(au, 0, "stored %s is not a row of every entry up to the lookup mark %llu in one of its two"
                  " levels, each naming its entry",
                  checks[i].table, (unsigned long long)mark);
    else if (rc == 1) rc = 0;
    else if (rc == 0) rc = differ(au, 0, "cannot read stored %s", checks[i].table);
    sqlite3_finalize(st);
  }
  return rc < 0 ? rc : 0;
}

/* Once the journal is replayed. */
static int compare_all(audit_t *au) {
  int rc = cursor_finish(au, &au->receipts);
  if (rc == 0) rc = cursor_finish(au, &au->distributions);
  if (rc == 0) rc = cursor_finish(au, &au->payouts);
  if (rc == 0) rc = compare_history(au);
  if (rc == 0) rc = compare_lookups(au, au->m.size);
  if (rc == 0) rc = compare_merkle(au);
  if (rc == 0) rc = compare_checkpoints(au);
  if (rc == 0) rc = compare_schema(au);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* The audit's lifetime                                                      */

/* How far the node had written its derived rows (derived_progress). */
static int derived_mark(audit_t *au, uint64_t size) {
  int rc = tr_store_derived_mark(au->src, &au->derived_through);
  if (rc == TR_ECORRUPT) return differ(au, 0, "stored derived_progress has no row");
  if (rc != 0) return differ(au, 0, "cannot read stored derived_progress: %s", tr_store_errmsg(au->src));
  if (au->derived_through > size || au->derived_through == 0)
    return differ(au, 0, "stored derived_progress (%llu) is not a seq within the journal (%llu entries)",
                  (unsigned long long)au->derived_through, (unsigned long long)size);
  return 0;
}

static int audit_open(audit_t *au, tr_store_t *src, uint64_t size) {
  memset(au, 0, sizeof *au);
  au->src = src;
  int rc = tr_mem_init(&au->m, &audit_sink, au);
  if (rc == 0) rc = derived_mark(au, size);
  if (rc == 0) rc = cursor_open(au, &au->receipts, "receipts", "SELECT seq, effects FROM receipts ORDER BY seq");
  if (rc == 0)
    rc = cursor_open(au, &au->distributions, "distributions",
                     "SELECT seq, asset, amount, kind, count FROM distributions ORDER BY seq");
  if (rc == 0)
    rc = cursor_open(au, &au->payouts, "payouts",
                     "SELECT distribution, account, asset, amount FROM payouts ORDER BY distribution, account");
  return rc;
}

static void audit_close(audit_t *au) {
  sqlite3_finalize(au->receipts.st);
  sqlite3_finalize(au->distributions.st);
  sqlite3_finalize(au->payouts.st);
  for (size_t l = 0; l <= TR_MERKLE_PATH_MAX; l++) free(au->levels[l]);
  free(au->history);
  tr_mem_free(&au->m);
}

/* ------------------------------------------------------------------------ */
/* Replay                                                                    */

static int replay_fail(tr_replay_report_t *rep, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int replay_fail(tr_replay_report_t *rep, uint64_t seq, const char *fmt, ...) {
  va_list ap;
  rep->bad_seq = seq;
  va_start(ap, fmt);
  vsnprintf(rep->message, sizeof rep->message, fmt, ap);
  va_end(ap);
  return TR_ECORRUPT;
}

/* Entry e's own bytes: link, txid, envelope, genesis position, columns.
 * Its hash is checked once replayed: the append recomputes it from the same
 * bytes (replay_apply). */
static int replay_check_entry(const tr_entry_t *e, const uint8_t prev[32], tr_tx_t *tx, tr_replay_report_t *rep) {
  tr_tx_error_t err;
  if (memcmp(e->prev, prev, 32) != 0)
    return replay_fail(rep, e->seq, "prev does not link to entry %llu", (unsigned long long)e->seq - 1);
  int rc = tr_tx_decode(e->tx, e->tx_len, tx, &err); /* computes tx->txid = SHA-256(bytes) */
  if (rc == TR_ENOMEM) return rc;
  if (rc != 0) crypto_hash_sha256(tx->txid, (const uint8_t *)e->tx, e->tx_len);
  if (memcmp(tx->txid, e->txid, 32) != 0) return replay_fail(rep, e->seq, "txid does not match tx bytes");
  if (rc != 0) return replay_fail(rep, e->seq, "tx does not decode: %s", err.detail);
  if ((e->seq == 1) != (tx->type == TR_TX_GENESIS))
    return replay_fail(rep, e->seq, "genesis must be entry 1 and only entry 1");
  if (memcmp(tx->signer.b, e->signer.b, 32) != 0 || strcmp(tx->id, e->tx_id) != 0)
    return replay_fail(rep, e->seq, "stored signer or id does not match the tx");
  return 0;
}

/* The replayed entry against the stored one.  Seq, prev, txid and sig went
 * into the append from the stored row (prev through the replayed head), so a
 * different hash means different stored hash bytes or time. */
static int replay_same(const audit_t *au, const tr_entry_t *e, tr_replay_report_t *rep) {
  if (au->m.size != e->seq) return replay_fail(rep, e->seq, "replay gives a different entry");
  if (au->m.head_time != e->time) return replay_fail(rep, e->seq, "stored time is not the entry time the rules give");
  if (memcmp(au->m.head_hash, e->hash, 32) != 0) return replay_fail(rep, e->seq, "stored hash does not match entry bytes");
  return 0;
}

/* Re-applies entry e to the audit's ledger; it must be accepted identically. */
static int replay_apply(tr_ledger_t *mem, audit_t *au, const tr_entry_t *e, const tr_tx_t *tx,
                        tr_replay_report_t *rep) {
  int rc;
  if (e->seq == 1) {
    rc = tr_ledger_genesis_apply(mem, tx, e->tx, e->tx_len, e->sig, e->time);
    if (rc == TR_ENOMEM) return rc;
    if (rc != 0) return replay_fail(rep, 1, "genesis does not apply: %s", au->message[0] ? au->message : tr_strerror(rc));
    char vkey[TR_NOTE_VKEY_BUF_BYTES];
    if (tr_note_vkey_format(tx->chain, tx->signer.b, vkey, sizeof vkey) != 0 ||
        tr_note_vkey_parse(vkey, strlen(vkey), &au->node_vkey) != 0)
      return replay_fail(rep, 1, "genesis names no usable node key for checkpoints");
    au->node_vkey_set = true;
    return replay_same(au, e, rep);
  }
  if (strcmp(tx->chain, mem->chain) != 0) return replay_fail(rep, e->seq, "tx names another chain");
  tr_receipt_t rcpt;
  tr_refusal_t ref = {0};
  rc = tr_ledger_apply(mem, tx, e->tx, e->tx_len, e->sig, e->time, &rcpt, &ref);
  if (tr_err_is_refusal(rc)) return replay_fail(rep, e->seq, "replay refuses it: %s: %s", tr_err_reason(rc), ref.detail);
  if (rc == TR_ENOMEM) return rc;
  if (rc != 0 && au->message[0]) return replay_fail(rep, au->bad_seq, "%s", au->message);
  if (rc != 0) return replay_fail(rep, e->seq, "replay failed: %s", tr_strerror(rc));
  bool duplicate = rcpt.duplicate;
  tr_receipt_clear(&rcpt);
  if (duplicate) return replay_fail(rep, e->seq, "replay gives a different entry");
  return replay_same(au, e, rep);
}

typedef struct {
  audit_t *au;
  tr_ledger_t mem;
  tr_tx_t *tx;
  uint64_t next, size;          /* the seq expected next, the journal size */
  uint8_t prev[32];
  tr_replay_progress_fn progress;
  void *progress_ctx;
  tr_replay_report_t *rep;
} replay_t;

static int replay_entry(void *ctx, const tr_entry_t *e) {
  replay_t *rp = ctx;
  if (e->seq != rp->next)
    return replay_fail(rp->rep, rp->next, "entry missing (the next stored seq is %llu)", (unsigned long long)e->seq);
  int rc = replay_check_entry(e, rp->prev, rp->tx, rp->rep);
  if (rc == 0) rc = replay_apply(&rp->mem, rp->au, e, rp->tx, rp->rep);
  if (rc == 0 && e->seq == rp->au->derived_through && compare_state(rp->au) != 0)
    rc = replay_fail(rp->rep, rp->au->bad_seq, "%s", rp->au->message);
  memcpy(rp->prev, e->hash, 32);
  rp->next++;
  if (rc == 0 && rp->progress && (e->seq % REPLAY_PROGRESS_ENTRIES == 0 || e->seq == rp->size))
    rp->progress(rp->progress_ctx, e->seq, rp->size);
  return rc;
}

static int replay_entries(audit_t *au, uint64_t size, tr_replay_progress_fn progress, void *ctx,
                          tr_replay_report_t *rep) {
  replay_t rp = {.au = au, .mem = {.ops = &tr_mem_state_ops, .ctx = &au->m}, .tx = malloc(sizeof(tr_tx_t)), .next = 1,
                 .size = size, .progress = progress, .progress_ctx = ctx, .rep = rep};
  if (rp.tx == NULL) return TR_ENOMEM;
  int rc = tr_store_entries_scan(au->src, 1, size, replay_entry, &rp);
  if (rc == TR_ECORRUPT && rep->message[0] == '\0') rc = replay_fail(rep, rp.next, "stored entry has malformed columns");
  else if (rc != 0 && rc != TR_ECORRUPT && rc != TR_ENOMEM) rc = replay_fail(rep, rp.next, "cannot read entry: %s", tr_store_errmsg(au->src));
  else if (rc == 0 && rp.next != size + 1) rc = replay_fail(rep, rp.next, "entry missing");
  free(rp.tx);
  return rc;
}

static uint64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int tr_ledger_replay(const char *db_path, tr_replay_progress_fn progress, void *ctx, tr_replay_report_t *rep) {
  tr_store_t *src = NULL;
  memset(rep, 0, sizeof *rep);
  audit_t *au = calloc(1, sizeof *au);
  if (au == NULL) return TR_ENOMEM;
  int rc = tr_store_open(db_path, TR_STORE_READONLY | TR_STORE_SCAN, &src, rep->message, sizeof rep->message);
  uint64_t size = 0;
  if (rc == 0) rc = tr_store_read_begin(src);
  if (rc == 0) rc = tr_store_head(src, &size, NULL, NULL);
  if (rc == 0 && size == 0) rc = replay_fail(rep, 1, "the journal is empty: no genesis");
  if (rc == 0 && audit_open(au, src, size) != 0)
    rc = replay_fail(rep, 0, "%s", au->message[0] ? au->message : "out of memory");
  uint64_t t0 = monotonic_ms();
  if (rc == 0) rc = replay_entries(au, size, progress, ctx, rep);
  uint64_t t1 = monotonic_ms();
  if (rc == 0 && (rc = compare_all(au)) == TR_ECORRUPT) replay_fail(rep, au->bad_seq, "%s", au->message);
  if (rc != 0 && rep->message[0] == '\0') /* out of memory, or a read that failed without a word */
    snprintf(rep->message, sizeof rep->message, "the audit stopped: %s", tr_strerror(rc));
  rep->entries_ms = t1 - t0;
  rep->compare_ms = monotonic_ms() - t1;
  rep->size = size;
  rep->history_through = au->history_through;
  audit_close(au);
  if (src) tr_store_read_end(src);
  free(au);
  tr_store_close(src);
  return rc;
}
