/* tr_delta.c — a batch's changes collected from the in-memory state, and
 * their two writes to SQLite (tr_delta.h).
 */
#include "tr_delta.h"

#include <stdlib.h>
#include <string.h>

#include "tr_err.h"

/* Room for one more element of an array (n used, *cap allocated): 0, or
 * TR_ENOMEM with the array untouched. */
static int room(void **v, size_t n, size_t *cap, size_t elem) {
  if (n < *cap) return 0;
  size_t want = *cap ? *cap * 2 : 16;
  if (want > SIZE_MAX / elem) return TR_ENOMEM;
  void *p = realloc(*v, want * elem);
  if (p == NULL) return TR_ENOMEM;
  *v = p;
  *cap = want;
  return 0;
}
#define ROOM(d, name) room((void **)&(d)->name, (d)->name##_n, &(d)->name##_cap, sizeof *(d)->name)

tr_delta_t *tr_delta_new(void) { return calloc(1, sizeof(tr_delta_t)); }

void tr_delta_free(tr_delta_t *d) {
  if (d == NULL) return;
  for (size_t i = 0; i < d->entries_n; i++) tr_entry_clear(&d->entries[i]);
  for (size_t i = 0; i < d->receipts_n; i++) free(d->receipts[i].effects);
  for (size_t i = 0; i < d->assets_n; i++) tr_asset_clear(&d->assets[i]);
  free(d->entries);
  free(d->receipts);
  free(d->history);
  free(d->distributions);
  free(d->payouts);
  free(d->nodes);
  free(d->meta);
  free(d->accounts);
  free(d->assets);
  free(d->holdings);
  free(d);
}

/* ------------------------------------------------------------------------ */
/* The sink                                                                  */

static int sink_entry(void *ctx, const tr_entry_t *e, const char *tx, size_t tx_len) {
  tr_delta_t *d = ((tr_delta_sink_t *)ctx)->delta;
  char *copy = malloc(tx_len + 1);
  if (copy == NULL || ROOM(d, entries) != 0) {
    free(copy);
    return TR_ENOMEM;
  }
  memcpy(copy, tx, tx_len);
  copy[tx_len] = '\0';
  tr_entry_t *to = &d->entries[d->entries_n++];
  *to = *e;
  to->tx = copy;
  to->tx_len = tx_len;
  if (d->first == 0) d->first = e->seq;
  d->last = e->seq;
  d->bytes += sizeof *to + tx_len;
  return 0;
}

int tr_delta_entry_get(const tr_delta_t *d, uint64_t seq, tr_entry_t *e) {
  if (d->entries_n == 0 || seq < d->first || seq > d->last) return TR_ENOT_FOUND;
  const tr_entry_t *from = &d->entries[seq - d->first]; /* entries are consecutive */
  *e = *from;
  e->tx = NULL; /* the rules compare txids; nobody reads the bytes of an earlier tx */
  e->tx_len = 0;
  return 0;
}

static int sink_entry_get(void *ctx, uint64_t seq, tr_entry_t *e) {
  tr_delta_sink_t *k = ctx;
  int rc = tr_delta_entry_get(k->delta, seq, e);
  return rc == TR_ENOT_FOUND ? k->lookup_entry(k->lookup_ctx, seq, e) : rc;
}

static int sink_receipt_put(void *ctx, uint64_t seq, const char *json) {
  tr_delta_t *d = ((tr_delta_sink_t *)ctx)->delta;
  char *copy = strdup(json);
  if (copy == NULL || ROOM(d, receipts) != 0) {
    free(copy);
    return TR_ENOMEM;
  }
  d->receipts[d->receipts_n++] = (tr_delta_receipt_t){seq, copy};
  d->bytes += sizeof(tr_delta_receipt_t) + strlen(json);
  return 0;
}

int tr_delta_receipt_get(const tr_delta_t *d, uint64_t seq, char **json) {
  size_t lo = 0, hi = d->receipts_n; /* made in seq order */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->receipts[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  if (lo == d->receipts_n || d->receipts[lo].seq != seq) return TR_ENOT_FOUND;
  return (*json = strdup(d->receipts[lo].effects)) ? 0 : TR_ENOMEM;
}

static int sink_receipt_get(void *ctx, uint64_t seq, char **json) {
  tr_delta_sink_t *k = ctx;
  int rc = tr_delta_receipt_get(k->delta, seq, json);
  return rc == TR_ENOT_FOUND ? k->lookup_receipt(k->lookup_ctx, seq, json) : rc;
}

static int sink_meta_put(void *ctx, const char *key, const char *value) {
  tr_delta_t *d = ((tr_delta_sink_t *)ctx)->delta;
  if (strlen(key) >= sizeof d->meta[0].key || strlen(value) >= sizeof d->meta[0].value) return TR_ELIMIT;
  if (ROOM(d, meta) != 0) return TR_ENOMEM;
  tr_delta_meta_t *m = &d->meta[d->meta_n++];
  snprintf(m->key, sizeof m->key, "%s", key);
  snprintf(m->value, sizeof m->value, "%s", value);
  return 0;
}

static int sink_history_add(void *ctx, uint32_t key, uint64_t seq) {
  tr_delta_sink_t *k = ctx;
  tr_delta_t *d = k->delta;
  if (ROOM(d, history) != 0) return TR_ENOMEM;
  d->history[d->history_n++] = (tr_delta_history_t){k->mem->keys[key].a.id, seq};
  d->bytes += sizeof(tr_delta_history_t);
  return 0;
}

static int sink_distribution_put(void *ctx, uint64_t seq, const char *asset, uint64_t amount, tr_dist_kind_t kind,
                                 uint64_t count) {
  tr_delta_t *d = ((tr_delta_sink_t *)ctx)->delta;
  if (ROOM(d, distributions) != 0) return TR_ENOMEM;
  tr_delta_distribution_t *x = &d->distributions[d->distributions_n++];
  *x = (tr_delta_distribution_t){.seq = seq, .amount = amount, .count = count, .kind = kind};
  snprintf(x->asset, sizeof x->asset, "%s", asset);
  d->bytes += sizeof *x;
  return 0;
}

static int sink_payout_put(void *ctx, uint64_t seq, const tr_key_t *account, const char *asset, uint64_t amount) {
  tr_delta_t *d = ((tr_delta_sink_t *)ctx)->delta;
  if (ROOM(d, payouts) != 0) return TR_ENOMEM;
  tr_delta_payout_t *x = &d->payouts[d->payouts_n++];
  *x = (tr_delta_payout_t){.seq = seq, .amount = amount, .account = *account};
  snprintf(x->asset, sizeof x->asset, "%s", asset);
  d->bytes += sizeof *x;
  return 0;
}

static int sink_merkle_node(void *ctx, const tr_merkle_node_t *n) {
  tr_delta_t *d = ((tr_delta_sink_t *)ctx)->delta;
  if (ROOM(d, nodes) != 0) return TR_ENOMEM;
  d->nodes[d->nodes_n++] = *n;
  d->bytes += sizeof *n;
  return 0;
}

const tr_mem_sink_t tr_delta_sink_ops = {
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

int tr_delta_take_changes(tr_delta_t *d, tr_mem_t *m) {
  int rc = 0;
  for (size_t i = 0; i < m->changed_keys_n && rc == 0; i++) {
    const tr_mem_key_t *k = &m->keys[m->changed_keys[i]];
    if ((rc = ROOM(d, accounts)) == 0) d->accounts[d->accounts_n++] = k->a;
  }
  for (size_t i = 0; i < m->changed_assets_n && rc == 0; i++) {
    const tr_asset_t *a = &m->assets[m->changed_assets[i]].a;
    char *docs = strdup(a->documents_json ? a->documents_json : "[]");
    if (docs == NULL || (rc = ROOM(d, assets)) != 0) {
      free(docs);
      rc = TR_ENOMEM;
      break;
    }
    tr_asset_t *to = &d->assets[d->assets_n++];
    *to = *a;
    to->documents_json = docs;
    d->bytes += sizeof *to + strlen(docs);
  }
  for (size_t i = 0; i < m->changed_holdings_n && rc == 0; i++) {
    const tr_mem_holding_t *h = &m->holdings[m->changed_holdings[i]];
    if ((rc = ROOM(d, holdings)) != 0) break;
    tr_delta_holding_t *to = &d->holdings[d->holdings_n++];
    snprintf(to->asset, sizeof to->asset, "%s", m->assets[h->asset].a.id);
    to->account = m->keys[h->key].a.id;
    to->h = h->h;
  }
  d->bytes += m->changed_keys_n * sizeof(tr_account_t) + m->changed_holdings_n * sizeof(tr_delta_holding_t);
  if (rc == 0) tr_mem_changes_clear(m);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* The two writes                                                            */

static void bind_entry(sqlite3_stmt *st, int first, const void *row) {
  const tr_entry_t *e = row;
  sqlite3_bind_int64(st, first, (sqlite3_int64)e->seq);
  sqlite3_bind_int64(st, first + 1, (sqlite3_int64)e->time);
  sqlite3_bind_blob(st, first + 2, e->prev, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, first + 3, e->hash, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, first + 4, e->txid, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, first + 5, e->sig, 64, SQLITE_STATIC);
  sqlite3_bind_blob(st, first + 6, e->signer.b, 32, SQLITE_STATIC);
  sqlite3_bind_text(st, first + 7, e->tx_id, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, first + 8, e->tx, (int)e->tx_len, SQLITE_STATIC);
}

#define ENTRY_ROWS "INSERT INTO entries (seq, time, prev, hash, txid, sig, signer, tx_id, tx) VALUES "
#define ENTRY_TUPLE "(?,?,?,?,?,?,?,?,?)"
static const tr_store_rows_t ENTRY_ROWS_SPEC = {ENTRY_ROWS ENTRY_TUPLE, ENTRY_ROWS TR_SQL_X32(ENTRY_TUPLE), 9,
                                                bind_entry, NULL};

int tr_store_journal_append(tr_store_t *s, const tr_delta_t *d) {
  return tr_store_insert_rows(s, &ENTRY_ROWS_SPEC, d->entries, sizeof *d->entries, d->entries_n);
}

static int cmp_history(const void *a, const void *b) {
  const tr_delta_history_t *x = a, *y = b;
  int c = memcmp(x->account.b, y->account.b, 32);
  return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

void tr_delta_history_sort(tr_delta_history_t *rows, size_t n) {
  if (n > 1) qsort(rows, n, sizeof *rows, cmp_history);
}

static void bind_history_row(sqlite3_stmt *st, int first, const void *row) {
  const tr_delta_history_t *r = row;
  sqlite3_bind_blob(st, first, r->account.b, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, first + 1, (sqlite3_int64)r->seq);
}

static bool same_history_row(const void *prev, const void *row) { return cmp_history(prev, row) == 0; }

static void bind_receipt(sqlite3_stmt *st, int first, const void *row) {
  const tr_delta_receipt_t *r = row;
  sqlite3_bind_int64(st, first, (sqlite3_int64)r->seq);
  sqlite3_bind_text(st, first + 1, r->effects, -1, SQLITE_STATIC);
}

#define HISTORY_ROWS "INSERT OR IGNORE INTO account_entries (account, seq) VALUES "
#define RECEIPT_ROWS "INSERT OR IGNORE INTO receipts (seq, effects) VALUES "
static const tr_store_rows_t HISTORY_ROWS_SPEC = {HISTORY_ROWS "(?,?)", HISTORY_ROWS TR_SQL_X32("(?,?)"), 2,
                                                  bind_history_row, same_history_row /* one account named twice */};
static const tr_store_rows_t RECEIPT_ROWS_SPEC = {RECEIPT_ROWS "(?,?)", RECEIPT_ROWS TR_SQL_X32("(?,?)"), 2,
                                                  bind_receipt, NULL};

/* Rows keyed by (account, seq), sorted: written in key order, so each page
 * of account_entries is touched once for them all. */
static int write_history_rows(tr_store_t *s, const tr_delta_history_t *rows, size_t n) {
  return tr_store_insert_rows(s, &HISTORY_ROWS_SPEC, rows, sizeof *rows, n);
}

static int write_receipts(tr_store_t *s, const tr_delta_t *d) {
  return tr_store_insert_rows(s, &RECEIPT_ROWS_SPEC, d->receipts, sizeof *d->receipts, d->receipts_n);
}

static int write_distributions(tr_store_t *s, const tr_delta_t *d) {
  sqlite3_stmt *st = tr_store_stmt(s,
      "INSERT OR IGNORE INTO distributions (seq, asset, amount, kind, count) VALUES (?1, ?2, ?3, ?4, ?5)");
  int rc = 0;
  for (size_t i = 0; i < d->distributions_n && rc == 0; i++) {
    const tr_delta_distribution_t *x = &d->distributions[i];
    if (st == NULL) return TR_EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)x->seq);
    sqlite3_bind_text(st, 2, x->asset, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)x->amount);
    sqlite3_bind_int(st, 4, (int)x->kind);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)x->count);
    rc = tr_store_step_done(st);
  }
  st = tr_store_stmt(s, "INSERT OR IGNORE INTO payouts (distribution, account, asset, amount) VALUES (?1, ?2, ?3, ?4)");
  for (size_t i = 0; i < d->payouts_n && rc == 0; i++) {
    const tr_delta_payout_t *x = &d->payouts[i];
    if (st == NULL) return TR_EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)x->seq);
    sqlite3_bind_blob(st, 2, x->account.b, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, x->asset, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)x->amount);
    rc = tr_store_step_done(st);
  }
  return rc;
}

static void bind_node(sqlite3_stmt *st, int first, const void *row) {
  const tr_merkle_node_t *n = row;
  sqlite3_bind_int(st, first, (int)n->level);
  sqlite3_bind_int64(st, first + 1, (sqlite3_int64)n->index);
  sqlite3_bind_blob(st, first + 2, n->hash, 32, SQLITE_STATIC);
}

#define NODE_ROWS "INSERT OR IGNORE INTO merkle_nodes (level, idx, hash) VALUES "
static const tr_store_rows_t NODE_ROWS_SPEC = {NODE_ROWS "(?,?,?)", NODE_ROWS TR_SQL_X32("(?,?,?)"), 3, bind_node, NULL};

static int write_nodes(tr_store_t *s, const tr_delta_t *d) {
  return tr_store_insert_rows(s, &NODE_ROWS_SPEC, d->nodes, sizeof *d->nodes, d->nodes_n);
}

static int write_state(tr_store_t *s, const tr_delta_t *d) {
  int rc = 0;
  for (size_t i = 0; i < d->meta_n && rc == 0; i++) {
    char have[sizeof d->meta[0].value];
    rc = tr_store_meta_get(s, d->meta[i].key, have, sizeof have); /* meta is write-once */
    if (rc == TR_ENOT_FOUND) rc = tr_store_meta_put(s, d->meta[i].key, d->meta[i].value);
    else if (rc == 0 && strcmp(have, d->meta[i].value) != 0) rc = TR_ECORRUPT;
  }
  for (size_t i = 0; i < d->accounts_n && rc == 0; i++) rc = tr_store_account_put(s, &d->accounts[i]);
  for (size_t i = 0; i < d->assets_n && rc == 0; i++) rc = tr_store_asset_put(s, &d->assets[i]);
  for (size_t i = 0; i < d->holdings_n && rc == 0; i++)
    rc = tr_store_holding_put(s, d->holdings[i].asset, &d->holdings[i].account, &d->holdings[i].h);
  return rc;
}

static int set_mark(tr_store_t *s, const char *sql, uint64_t seq) {
  sqlite3_stmt *st = tr_store_stmt(s, sql);
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
  return tr_store_step_done(st);
}

#define DERIVED_MARK_SQL "UPDATE derived_progress SET seq = ?1 WHERE id = 1 AND seq < ?1"
#define HISTORY_MARK_SQL "UPDATE history_progress SET seq = ?1 WHERE id = 1 AND seq < ?1"

int tr_store_derived_write_but_history(tr_store_t *s, tr_delta_t *d) {
  int rc = write_state(s, d);
  if (rc == 0) rc = write_receipts(s, d);
  if (rc == 0) rc = write_distributions(s, d);
  if (rc == 0) rc = write_nodes(s, d);
  if (rc == 0 && d->last > 0) rc = set_mark(s, DERIVED_MARK_SQL, d->last);
  return rc;
}

int tr_store_derived_write(tr_store_t *s, tr_delta_t *d) {
  int rc = tr_store_derived_write_but_history(s, d);
  tr_delta_history_sort(d->history, d->history_n);
  if (rc == 0) rc = write_history_rows(s, d->history, d->history_n);
  if (rc == 0 && d->last > 0) rc = set_mark(s, HISTORY_MARK_SQL, d->last); /* with the derived mark */
  return rc;
}

int tr_store_history_rows_put(tr_store_t *s, const tr_delta_history_t *rows, size_t n, uint64_t through) {
  int rc = write_history_rows(s, rows, n);
  if (rc == 0 && through > 0) rc = set_mark(s, HISTORY_MARK_SQL, through);
  return rc;
}

int tr_store_derived_mark(tr_store_t *s, uint64_t *seq) {
  sqlite3_stmt *st = tr_store_stmt(s, "SELECT seq FROM derived_progress WHERE id = 1");
  if (st == NULL) return TR_EIO;
  int step = sqlite3_step(st);
  tr_store_note_failure(sqlite3_db_handle(st), step);
  int rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? TR_ECORRUPT : TR_EIO;
  if (rc == 0) *seq = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc;
}
