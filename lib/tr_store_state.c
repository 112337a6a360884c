/* tr_store_state.c — tr_state_ops_t over the SQLite store: what the ledger's
 * rules read and write on a node (tr_state.h).  Mostly adapters to the
 * tr_store_* row functions, plus the few multi-row statements only the rules
 * need (account.update's admin count, account.recover's moves, a
 * distribution's holders and payouts).
 */
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_state.h"
#include "tr_store.h"

static int head(void *ctx, uint64_t *size, uint8_t hash[32], uint64_t *time) {
  return tr_store_head(ctx, size, hash, time);
}

static int append(void *ctx, uint64_t time, const uint8_t txid[32], const uint8_t sig[64], const tr_key_t *signer,
                  const char *tx_id, const char *tx, size_t tx_len, tr_entry_t *out) {
  return tr_store_append(ctx, time, txid, sig, signer, tx_id, tx, tx_len, out);
}

static int entry_by_signer_id(void *ctx, const tr_key_t *signer, const char *id, uint64_t *seq, uint8_t txid[32]) {
  return tr_store_entry_by_signer_id(ctx, signer, id, seq, txid);
}

static int entry_get(void *ctx, uint64_t seq, tr_entry_t *e) { return tr_store_entry_get(ctx, seq, e); }
static int receipt_get(void *ctx, uint64_t seq, char **json) { return tr_store_receipt_get(ctx, seq, json); }
static int receipt_put(void *ctx, uint64_t seq, const char *json) { return tr_store_receipt_put(ctx, seq, json); }
static int meta_put(void *ctx, const char *key, const char *value) { return tr_store_meta_put(ctx, key, value); }
static int account_get(void *ctx, const tr_key_t *id, tr_account_t *a) { return tr_store_account_get(ctx, id, a); }
static int account_put(void *ctx, const tr_account_t *a) { return tr_store_account_put(ctx, a); }
static int asset_get(void *ctx, const char *id, tr_asset_t *a) { return tr_store_asset_get(ctx, id, a); }
static int asset_put(void *ctx, const tr_asset_t *a) { return tr_store_asset_put(ctx, a); }

static int account_entry_add(void *ctx, const tr_key_t *account, uint64_t seq) {
  return tr_store_account_entry_add(ctx, account, seq);
}

static int holding_get(void *ctx, const char *asset, const tr_key_t *account, tr_holding_t *h) {
  return tr_store_holding_get(ctx, asset, account, h);
}

static int holding_put(void *ctx, const char *asset, const tr_key_t *account, const tr_holding_t *h) {
  return tr_store_holding_put(ctx, asset, account, h);
}

static int admins_unfrozen_except(void *ctx, const tr_key_t *except, uint64_t *count) {
  sqlite3_stmt *st = tr_store_stmt(ctx,
      "SELECT count(*) FROM accounts WHERE (roles & 1) != 0 AND frozen = 0 AND id != ?1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_blob(st, 1, except->b, 32, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : TR_EIO;
  if (rc == 0) *count = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc;
}

static int assets_reissue(void *ctx, const tr_key_t *from, const tr_key_t *to) {
  sqlite3_stmt *st = tr_store_stmt(ctx, "UPDATE assets SET issuer = ?2 WHERE issuer = ?1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_blob(st, 1, from->b, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, to->b, 32, SQLITE_STATIC);
  return tr_store_step_done(st);
}

/* Array v (n used, *cap allocated) with room for one more element: v or its
 * new place, or NULL when memory runs out (then v is untouched).  The lists
 * are bounded by the rules: one account's holdings, one asset's holders. */
static void *room_for_one(void *v, size_t n, size_t *cap, size_t size) {
  if (n < *cap) return v;
  size_t c = *cap ? *cap * 2 : 8;
  void *p = realloc(v, c * size);
  if (p != NULL) *cap = c;
  return p;
}

static int account_holdings(void *ctx, const tr_key_t *account, tr_account_holding_t **out, size_t *out_n) {
  sqlite3_stmt *st = tr_store_stmt(ctx, "SELECT asset, units, frozen FROM holdings WHERE account = ?1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_blob(st, 1, account->b, 32, SQLITE_STATIC);
  tr_account_holding_t *v = NULL;
  size_t n = 0, cap = 0;
  int step, rc = 0;
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    tr_account_holding_t *more = room_for_one(v, n, &cap, sizeof *v);
    if (more == NULL) { rc = TR_ENOMEM; break; }
    v = more;
    const unsigned char *asset = sqlite3_column_text(st, 0);
    if (asset == NULL || strlen((const char *)asset) > TR_ASSET_ID_CHARS_MAX) { rc = TR_ECORRUPT; break; }
    strcpy(v[n].asset, (const char *)asset);
    v[n].h.units = (uint64_t)sqlite3_column_int64(st, 1);
    v[n].h.frozen = (uint64_t)sqlite3_column_int64(st, 2);
    n++;
  }
  if (rc == 0 && step != SQLITE_DONE) rc = TR_EIO;
  sqlite3_reset(st);
  if (rc != 0) { free(v); return rc; }
  *out = v;
  *out_n = n;
  return 0;
}

static int asset_holders(void *ctx, const char *asset, tr_asset_holder_t **out, size_t *out_n) {
  sqlite3_stmt *st = tr_store_stmt(ctx, "SELECT account, units FROM holdings WHERE asset = ?1 ORDER BY account");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
  tr_asset_holder_t *v = NULL;
  size_t n = 0, cap = 0;
  int step, rc = 0;
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    tr_asset_holder_t *more = room_for_one(v, n, &cap, sizeof *v);
    if (more == NULL) { rc = TR_ENOMEM; break; }
    v = more;
    if (sqlite3_column_bytes(st, 0) != 32) { rc = TR_ECORRUPT; break; }
    memcpy(v[n].account.b, sqlite3_column_blob(st, 0), 32);
    v[n].units = (uint64_t)sqlite3_column_int64(st, 1);
    n++;
  }
  if (rc == 0 && step != SQLITE_DONE) rc = TR_EIO;
  sqlite3_reset(st);
  if (rc != 0) { free(v); return rc; }
  *out = v;
  *out_n = n;
  return 0;
}

static int distribution_put(void *ctx, uint64_t seq, const char *asset, uint64_t amount, tr_dist_kind_t kind,
                            uint64_t count) {
  sqlite3_stmt *st = tr_store_stmt(ctx,
      "INSERT INTO distributions (seq, asset, amount, kind, count) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
  sqlite3_bind_text(st, 2, asset, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)amount);
  sqlite3_bind_int(st, 4, (int)kind);
  sqlite3_bind_int64(st, 5, (sqlite3_int64)count);
  return tr_store_step_done(st);
}

static int payout_put(void *ctx, uint64_t seq, const tr_key_t *account, const char *asset, uint64_t amount) {
  sqlite3_stmt *st = tr_store_stmt(ctx,
      "INSERT INTO payouts (distribution, account, asset, amount) VALUES (?1, ?2, ?3, ?4)");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
  sqlite3_bind_blob(st, 2, account->b, 32, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, asset, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, (sqlite3_int64)amount);
  return tr_store_step_done(st);
}

const tr_state_ops_t tr_store_state_ops = {
  .head = head,
  .append = append,
  .entry_by_signer_id = entry_by_signer_id,
  .entry_get = entry_get,
  .receipt_get = receipt_get,
  .receipt_put = receipt_put,
  .meta_put = meta_put,
  .account_get = account_get,
  .account_put = account_put,
  .admins_unfrozen_except = admins_unfrozen_except,
  .account_entry_add = account_entry_add,
  .asset_get = asset_get,
  .asset_put = asset_put,
  .assets_reissue = assets_reissue,
  .holding_get = holding_get,
  .holding_put = holding_put,
  .account_holdings = account_holdings,
  .asset_holders = asset_holders,
  .distribution_put = distribution_put,
  .payout_put = payout_put,
};
