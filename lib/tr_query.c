/* tr_query.c — the read-side JSON-RPC methods of PROTOCOL.md §5.
 *
 * Workload: many small reads on reader connections, each one snapshot
 * (tr_store_read_begin .. tr_store_read_end).  Every list is a page of at
 * most TR_RPC_PAGE_LIMIT_MAX rows read by an index range scan starting after
 * the cursor, fetching limit + 1 rows to learn whether a next page exists, so
 * a page costs the same at the start of the journal as at its end.
 *
 * Cursors (all opaque to clients, validated strictly here):
 *   account.history  "<seq>"               the last seq returned
 *   asset.list       "<asset id>"          the last asset id returned
 *   asset.holders    "<account hex>"       the last account returned
 *   asset.payouts    "<seq>:<account hex>" the last (distribution, account)
 * A seq is written 0|[1-9][0-9]{0,15} and at most 2^53-1, like every integer
 * of the contract; hex is 64 lowercase chars.
 *
 * Integers: cJSON 1.7.15 prints numbers >= 10^15 with "%1.15g" and accepts
 * the result when it is within DBL_EPSILON relative error, so 10^15 comes out
 * as 1e+15 and 2^53-1 as 9.00719925474099e+15 (a wrong value).  tr_query_add_u64
 * therefore writes such integers as raw decimal digits; smaller ones stay
 * cJSON numbers (exactly printed).  Sums that may pass 2^53-1 (exposure, rwa)
 * are decimal strings, computed in unsigned 128-bit integers.  No value is
 * computed in floating point: doubles only carry integers below 10^15 (exact)
 * into cJSON.
 */
#include "tr_query.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_limits.h"
#include "tr_merkle.h"
#include "tr_note.h"

#define CJSON_EXACT_BELOW UINT64_C(1000000000000000) /* 10^15: cJSON prints integers below it exactly */

typedef unsigned __int128 u128;

/* ------------------------------------------------------------------------ */
/* JSON building helpers: each returns nonzero on failure (out of memory or a
 * value that has no name), so a run of them chains with ||.                */

cJSON *tr_query_add_u64(cJSON *obj, const char *name, uint64_t v) {
  if (v < CJSON_EXACT_BELOW) return cJSON_AddNumberToObject(obj, name, (double)v);
  char digits[24];
  snprintf(digits, sizeof digits, "%" PRIu64, v);
  return cJSON_AddRawToObject(obj, name, digits);
}

int tr_query_get_u64(const cJSON *item, uint64_t *out) {
  if (cJSON_IsNumber(item)) {
    double d = item->valuedouble;
    if (!(d >= 0 && d <= (double)TR_INT_MAX) || d != (double)(uint64_t)d) return TR_EINVALID; /* exact */
    *out = (uint64_t)d;
    return 0;
  }
  if (!cJSON_IsRaw(item) || item->valuestring == NULL) return TR_EINVALID;
  const char *p = item->valuestring;
  size_t n = strlen(p);
  if (n == 0 || n > 20 || (p[0] == '0' && n > 1)) return TR_EINVALID;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return TR_EINVALID;
    unsigned d = (unsigned)(p[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return TR_EINVALID;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

char *tr_u128_to_dec(unsigned __int128 v, char out[TR_U128_DEC_BYTES]) {
  char tmp[TR_U128_DEC_BYTES];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + (unsigned)(v % 10));
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = '\0';
  return out;
}

static int put_u64(cJSON *o, const char *k, uint64_t v) { return tr_query_add_u64(o, k, v) == NULL; }
static int put_str(cJSON *o, const char *k, const char *v) {
  return v == NULL || cJSON_AddStringToObject(o, k, v) == NULL;
}
static int put_bool(cJSON *o, const char *k, bool v) { return cJSON_AddBoolToObject(o, k, v) == NULL; }
static int put_null(cJSON *o, const char *k) { return cJSON_AddNullToObject(o, k) == NULL; }
static int put_hex(cJSON *o, const char *k, const uint8_t *b, size_t n) {
  char hex[2 * TR_SIG_BYTES + 1];
  if (2 * n + 1 > sizeof hex) return 1;
  return cJSON_AddStringToObject(o, k, tr_hex_encode(b, n, hex)) == NULL;
}
static int push_hex(cJSON *arr, const uint8_t *b, size_t n) {
  char hex[2 * TR_HASH_BYTES + 1];
  if (2 * n + 1 > sizeof hex) return 1;
  cJSON *s = cJSON_CreateString(tr_hex_encode(b, n, hex));
  return s == NULL || !cJSON_AddItemToArray(arr, s);
}
/* cJSON re-prints a parsed 10^15 as 1e+15: turn every integral number at or
 * above CJSON_EXACT_BELOW in a parsed tree into raw digits.  Parsed doubles
 * of integers up to 2^53 are exact, so the digits are the stored ones.
 * Depth is bounded by cJSON's own parse nesting limit (CJSON_NESTING_LIMIT). */
static int normalize_numbers(cJSON *parent) {
  cJSON *it = parent ? parent->child : NULL;
  while (it != NULL) {
    cJSON *next = it->next;
    if (cJSON_IsNumber(it) && it->valuedouble >= (double)CJSON_EXACT_BELOW &&
        it->valuedouble < 18446744073709551616.0 && it->valuedouble == (double)(uint64_t)it->valuedouble) {
      char digits[24];
      snprintf(digits, sizeof digits, "%" PRIu64, (uint64_t)it->valuedouble);
      cJSON *raw = cJSON_CreateRaw(digits);
      if (raw == NULL) return 1;
      /* In an object the replacement must take the member name (our texts
       * have no duplicate names, so the name finds exactly `it`). */
      bool ok = cJSON_IsObject(parent) ? cJSON_ReplaceItemInObjectCaseSensitive(parent, it->string, raw)
                                       : cJSON_ReplaceItemViaPointer(parent, it, raw);
      if (!ok) {
        cJSON_Delete(raw);
        return 1;
      }
    } else if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
      if (normalize_numbers(it)) return 1;
    }
    it = next;
  }
  return 0;
}

/* Parses a JSON text we stored ourselves (documents, effects) into o[k]. */
static int put_parsed(cJSON *o, const char *k, const char *text) {
  cJSON *v = cJSON_Parse(text);
  if (v == NULL) return 1;
  if (normalize_numbers(v)) {
    cJSON_Delete(v);
    return 1;
  }
  if (!cJSON_AddItemToObject(o, k, v)) {
    cJSON_Delete(v);
    return 1;
  }
  return 0;
}

/* Adds an empty object to array arr; NULL on failure. */
static cJSON *push_object(cJSON *arr) {
  cJSON *o = cJSON_CreateObject();
  if (o != NULL && !cJSON_AddItemToArray(arr, o)) {
    cJSON_Delete(o);
    o = NULL;
  }
  return o;
}

/* A put_* chain failed: out of memory (or a NULL text from a damaged row). */
#define BUILD_FAILED TR_ENOMEM

static int earg(tr_query_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int earg(tr_query_error_t *err, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return TR_EARG;
}

/* ------------------------------------------------------------------------ */
/* Snapshot bracket                                                          */

/* Opens the snapshot, reads the journal size and creates the result object. */
static int q_begin(tr_store_t *s, uint64_t *size, cJSON **obj, tr_query_error_t *err) {
  if (err != NULL) err->message[0] = '\0';
  *obj = NULL;
  int rc = tr_store_read_begin(s);
  if (rc != 0) return rc;
  rc = tr_store_visible_head(s, size, NULL, NULL);
  if (rc == 0 && (*obj = cJSON_CreateObject()) == NULL) rc = TR_ENOMEM;
  if (rc != 0) tr_store_read_end(s);
  return rc;
}

/* Closes the snapshot; on success adds "size" (unless the method set it) and
 * hands the object out, else frees it. */
static int q_end(tr_store_t *s, int rc, uint64_t size, cJSON *obj, cJSON **out) {
  int end = tr_store_read_end(s);
  if (rc == 0) rc = end;
  if (rc == 0 && !cJSON_HasObjectItem(obj, "size") && put_u64(obj, "size", size)) rc = TR_ENOMEM;
  if (rc != 0) {
    cJSON_Delete(obj);
    return rc;
  }
  *out = obj;
  return 0;
}

static int check_page(const tr_page_t *page, tr_query_error_t *err) {
  if (page == NULL) return 0;
  if (page->limit < 1 || page->limit > TR_RPC_PAGE_LIMIT_MAX)
    return earg(err, "limit must be 1..%d", TR_RPC_PAGE_LIMIT_MAX);
  return 0;
}

static uint64_t page_limit(const tr_page_t *page) { return page ? page->limit : TR_RPC_PAGE_LIMIT_DEFAULT; }
static const char *page_cursor(const tr_page_t *page) { return page ? page->cursor : NULL; }

/* ------------------------------------------------------------------------ */
/* Cursor parsing                                                            */

/* A seq of §1 integer form, 1..2^53-1, exactly `len` chars. */
static bool parse_seq(const char *p, size_t len, uint64_t *out) {
  if (len == 0 || len > 16 || p[0] < '1' || p[0] > '9') return false;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] < '0' || p[i] > '9') return false;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  if (v > TR_INT_MAX) return false;
  *out = v;
  return true;
}

static bool parse_key(const char *p, size_t len, uint8_t out[32]) {
  return tr_hex_decode(p, len, out, 32) == 0;
}

/* ------------------------------------------------------------------------ */
/* Entries and txs                                                           */

enum { ENTRY_PREV = 1, ENTRY_SIGNER = 2 };

/* {seq, time, [prev,] hash, txid, tx, sig, [signer]} of a stored entry. */
static int entry_fill(cJSON *o, const tr_entry_t *e, unsigned what) {
  if (put_u64(o, "seq", e->seq) || put_u64(o, "time", e->time)) return BUILD_FAILED;
  if ((what & ENTRY_PREV) && put_hex(o, "prev", e->prev, 32)) return BUILD_FAILED;
  if (put_hex(o, "hash", e->hash, 32) || put_hex(o, "txid", e->txid, 32) || put_str(o, "tx", e->tx) ||
      put_hex(o, "sig", e->sig, 64))
    return BUILD_FAILED;
  if ((what & ENTRY_SIGNER) && put_hex(o, "signer", e->signer.b, 32)) return BUILD_FAILED;
  return 0;
}

static int entry_load_fill(tr_store_t *s, uint64_t seq, cJSON *o, unsigned what) {
  tr_entry_t e;
  int rc = tr_store_entry_get(s, seq, &e);
  if (rc != 0) return rc;
  rc = entry_fill(o, &e, what);
  tr_entry_clear(&e);
  return rc;
}

int tr_query_head(tr_store_t *s, cJSON **out, tr_query_error_t *err) {
  uint64_t size, time;
  uint8_t hash[32], root[32];
  cJSON *o;
  int rc = q_begin(s, &size, &o, err);
  if (rc != 0) return rc;
  rc = tr_store_visible_head(s, &size, hash, &time);
  if (rc == 0) rc = tr_store_merkle_root(s, size, root);
  if (rc == 0 && (put_u64(o, "size", size) || put_hex(o, "hash", hash, 32) || put_hex(o, "root", root, 32) ||
                  put_u64(o, "time", time)))
    rc = BUILD_FAILED;
  return q_end(s, rc, size, o, out);
}

int tr_query_entry(tr_store_t *s, uint64_t seq, cJSON **out, tr_query_error_t *err) {
  uint64_t size;
  cJSON *o;
  int rc = q_begin(s, &size, &o, err);
  if (rc != 0) return rc;
  rc = (seq == 0 || seq > size) ? TR_ENOT_FOUND : entry_load_fill(s, seq, o, ENTRY_PREV);
  return q_end(s, rc, size, o, out);
}

/* Entries from..from+limit-1 that exist; `next` is the seq after the last
 * one returned while the journal goes on, else null.  A `from` past the end
 * gives an empty page (a client following the journal polls this way). */
int tr_query_entries(tr_store_t *s, uint64_t from, uint64_t limit, cJSON **out, tr_query_error_t *err) {
  if (from < 1) return earg(err, "from must be at least 1");
  if (limit < 1 || limit > TR_RPC_PAGE_LIMIT_MAX) return earg(err, "limit must be 1..%d", TR_RPC_PAGE_LIMIT_MAX);
  uint64_t size;
  cJSON *o;
  int rc = q_begin(s, &size, &o, err);
  if (rc != 0) return rc;
  cJSON *arr = cJSON_AddArrayToObject(o, "entries");
  if (arr == NULL) rc = TR_ENOMEM;
  uint64_t seq = from;
  for (; rc == 0 && seq <= size && seq - from < limit; seq++) {
    cJSON *e = push_object(arr);
    rc = e ? entry_load_fill(s, seq, e, ENTRY_PREV) : TR_ENOMEM;
    if (rc == TR_ENOT_FOUND) rc = TR_ECORRUPT; /* a gap below the head */
  }
  if (rc == 0 && (seq <= size ? put_u64(o, "next", seq) : put_null(o, "next"))) rc = TR_ENOMEM;
  return q_end(s, rc, size, o, out);
}

int tr_query_tx_get(tr_store_t *s, const uint8_t txid[32], cJSON **out, tr_query_error_t *err) {
  uint64_t size, seq = 0;
  cJSON *o;
  int rc = q_begin(s, &size, &o, err);
  if (rc != 0) return rc;
  rc = tr_store_entry_by_txid(s, txid, &seq);
  if (rc == 0 && seq > size) rc = TR_ENOT_FOUND; /* its state rows are still being written */
  if (rc == 0) rc = entry_load_fill(s, seq, o, ENTRY_SIGNER);
  return q_end(s, rc, size, o, out);
}

int tr_query_tx_find(tr_store_t *s, const tr_key_t *signer, const char *id, cJSON **out,
                     tr_query_error_t *err) {
  if (signer == NULL || id == NULL) return earg(err, "signer and id are required");
  uint64_t size, seq = 0;
  cJSON *o;
  int rc = q_begin(s, &size, &o, err);
  if (rc != 0) return rc;
  rc = tr_store_entry_by_signer_id(s, signer, id, &seq, NULL);
  if (rc == 0 && seq > size) rc = TR_ENOT_FOUND; /* its state rows are still being written */
  if (rc == 0) rc = entry_load_fill(s, seq, o, ENTRY_SIGNER);
  return q_end(s, rc, size, o, out);
}

/* ------------------------------------------------------------------------ */
/* Accounts                                                                  */

static int roles_fill(cJSON *o, unsigned roles) {
  char text[64];
  tr_roles_json(roles, text, sizeof text); /* the one place role names live */
  return put_parsed(o, "roles", text) ? BUILD_FAILED : 0;
}

static const char SQL_ACCOUNT_HOLDINGS[] =
    "SELECT asset, units, frozen FROM holdings WHERE account = ?1 ORDER BY asset LIMIT ?2";

/* holdings: [{asset, units, frozen}] by asset, at most TR_QUERY_ACCOUNT_HOLDINGS_MAX. */
static int account_holdings_fill(tr_store_t *s, const tr_key_t *account, cJSON *o) {
  cJSON *arr = cJSON_AddArrayToObject(o, "holdings");
  sqlite3_stmt *st = tr_store_stmt(s, SQL_ACCOUNT_HOLDINGS);
  if (arr == NULL) return TR_ENOMEM;
  if (st == NULL) return TR_EIO;
  sqlite3_bind_blob(st, 1, account->b, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, TR_QUERY_ACCOUNT_HOLDINGS_MAX + 1);
  int step, rc = 0;
  size_t n = 0;
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    if (n++ == TR_QUERY_ACCOUNT_HOLDINGS_MAX) {
      if (put_bool(o, "holdings_truncated", true)) rc = TR_ENOMEM;
      step = SQLITE_DONE;
      break;
    }
    cJSON *h = push_object(arr);
    if (h == NULL || put_str(h, "asset", (const char *)sqlite3_column_text(st, 0)) ||
        put_u64(h, "units", (uint64_t)sqlite3_column_int64(st, 1)) ||
        put_u64(h, "frozen", (uint64_t)sqlite3_column_int64(st, 2)))
      rc = TR_ENOMEM;
  }
  if (rc == 0 && step != SQLITE_DONE) rc = TR_EIO;
  sqlite3_reset(st);
  return rc;
}

int tr_query_account(tr_store_t *s, const tr_key_t *account, cJSON **out, tr_query_error_t *err) {
  uint64_t size;
  cJSON *o;
  tr_account_t a;
  int rc = q_begin(s, &size, &o, err);
  if (rc != 0) return rc;
  rc = tr_store_account_get(s, account, &a);
  if (rc == 0 && (put_hex(o, "account", a.id.b, 32) || roles_fill(o, a.roles) ||
                  put_str(o, "jurisdiction", a.jurisdiction) || put_bool(o, "kyc", a.kyc) ||
                  put_bool(o, "frozen", a.frozen)))
    rc = BUILD_FAILED;
  if (rc == 0) rc = account_holdings_fill(s, account, o);
  return q_end(s, rc, size, o, out);
}

static const char SQL_ACCOUNT_HISTORY[] =
    "SELECT e.seq, e.time, e.txid, e.signer, e.tx FROM account_entries AS a"
    " JOIN entries AS e ON e.seq = a.seq"
    " WHERE a.account = ?1 AND a.seq > ?2 ORDER BY a.seq LIMIT ?3";

/* The "type" member of stored tx bytes (strictly checked when accepted). */
static int history_type(sqlite3_stmt *st, int col, cJSON *h) {
  const char *tx = sqlite3_column_blob(st, col);
  int n = sqlite3_column_bytes(st, col);
  cJSON *parsed = tx ? cJSON_ParseWithLength(tx, (size_t)n) : NULL;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(parsed, "type");
  int rc = cJSON_IsString(type) ? (put_str(h, "type", type->valuestring) ? TR_ENOMEM : 0)
                                : (parsed ? TR_ECORRUPT : TR_ENOMEM);
  cJSON_Delete(parsed);
  return rc;
}

static int history_row(sqlite3_stmt *st, cJSON *arr) {
  cJSON *h = push_object(arr);
  if (h == NULL) return TR_ENOMEM;
  if (sqlite3_column_bytes(st, 2) != 32 || sqlite3_column_bytes(st, 3) != 32) return TR_ECORRUPT;
  if (put_u64(h, "seq", (uint64_t)sqlite3_column_int64(st, 0)) ||
      put_u64(h, "time", (uint64_t)sqlite3_column_int64(st, 1)) ||
      put_hex(h, "txid", sqlite3_column_blob(st, 2), 32))
    return TR_ENOMEM;
  int rc = history_type(st, 4, h);
  if (rc == 0 && put_hex(h, "signer", sqlite3_column_blob(st, 3), 32)) rc = TR_ENOMEM;
  return rc;
}

/* Steps a page statement: rows 1..limit go through row_fn into arr; when a
 * row limit+1 exists, *more is set.  Resets the statement. */
typedef int (*page_row_fn)(sqlite3_stmt *st, cJSON *arr);
static int page_rows(sqlite3_stmt *st, uint64_t limit, page_row_fn row_fn, cJSON *arr, bool *more) {
  int step, rc = 0;
  uint64_t n = 0;
  *more = false;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (n++ == limit) {
      *more = true;
      step = SQLITE_DONE;
      break;
    }
    if ((rc = row_fn(st, arr)) != 0) break;
  }
  if (rc == 0 && step != SQLITE_DONE) rc = TR_EIO;
  sqlite3_reset(st);
  return rc;
}

/* next = the string member `key` of the page's last element, or null. */
static int put_next(cJSON *o, cJSON *arr, bool more, const char *key) {
  if (!more) return put_null(o, "next") ? TR_ENOMEM : 0;
  const cJSON *last = cJSON_GetArrayItem(arr, cJSON_GetArraySize(arr) - 1);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(last, key);
  char buf[24];
  uint64_t n;
  if (cJSON_IsString(v)) return put_str(o, "next", v->valuestring) ? TR_ENOMEM : 0;
  if (tr_query_get_u64(v, &n) != 0) return TR_ECORRUPT;
  snprintf(buf, sizeof buf, "%" PRIu64, n);
  return put_str(o, "next", buf) ? TR_ENOMEM : 0;
}

int tr_query_account_history(tr_store_t *s, const tr_key_t *account, const tr_page_t *page, cJSON **out,
                             tr_query_error_t *err) {
  uint64_t after = 0;
  const char *cursor = page_cursor(page);
  int rc = check_page(page, err);
  if (rc != 0) return rc;
  if (cursor != NULL && !parse_seq(cursor, strlen(cursor), &after))
    return earg(err, "cursor is not a seq from a previous page");
  uint64_t size;
  cJSON *o;
  tr_account_t a;
  if ((rc = q_begin(s, &size, &o, err)) != 0) return rc;
  rc = tr_store_account_get(s, account, &a);
  /* The writer adds history rows a while after their entries: the page
   * reflects the journal up to the entry they are written through. */
  if (rc == 0) rc = tr_store_history_through(s, &size);
  cJSON *arr = rc == 0 ? cJSON_AddArrayToObject(o, "entries") : NULL;
  if (rc == 0 && arr == NULL) rc = TR_ENOMEM;
  sqlite3_stmt *st = rc == 0 ? tr_store_stmt(s, SQL_ACCOUNT_HISTORY) : NULL;
  if (rc == 0 && st == NULL) rc = TR_EIO;
  bool more = false;
  if (rc == 0) {
    sqlite3_bind_blob(st, 1, account->b, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)page_limit(page) + 1);
    rc = page_rows(st, page_limit(page), history_row, arr, &more);
  }
  if (rc == 0) rc = put_next(o, arr, more, "seq");
  return q_end(s, rc, size, o, out);
}

/* ------------------------------------------------------------------------ */
/* Assets                                                                    */

static int rules_fill(cJSON *o, const tr_rules_t *r) {
  cJSON *rules = cJSON_AddObjectToObject(o, "rules");
  cJSON *j = rules ? cJSON_AddArrayToObject(rules, "jurisdictions") : NULL;
  if (j == NULL) return BUILD_FAILED;
  for (size_t i = 0; i < r->jurisdictions_n; i++) {
    cJSON *c = cJSON_CreateString(r->jurisdictions[i]);
    if (c == NULL || !cJSON_AddItemToArray(j, c)) {
      cJSON_Delete(c);
      return BUILD_FAILED;
    }
  }
  if (put_u64(rules, "max_holders", r->max_holders) || put_u64(rules, "min_units", r->min_units) ||
      put_u64(rules, "lockup_until", r->lockup_until))
    return BUILD_FAILED;
  return 0;
}

/* The terms as created or updated, plus issuer, status, issued, holders. */
static int asset_fill(cJSON *o, const tr_asset_t *a) {
  const char *kind = tr_asset_kind_name(a->kind), *status = tr_status_name(a->status);
  if (kind == NULL || status == NULL) return TR_ECORRUPT;
  if (put_str(o, "asset", a->id) || put_str(o, "name", a->name) || put_str(o, "kind", kind) ||
      put_str(o, "currency", a->currency) || put_u64(o, "principal", a->principal) ||
      put_u64(o, "units", a->units) || put_u64(o, "coupon_bps", a->coupon_bps) ||
      put_str(o, "maturity", a->maturity) || put_str(o, "rating", a->rating) ||
      put_u64(o, "risk_weight_pct", a->risk_weight_pct) || rules_fill(o, &a->rules))
    return BUILD_FAILED;
  if (put_parsed(o, "documents", a->documents_json ? a->documents_json : "[]")) return BUILD_FAILED;
  if (put_hex(o, "issuer", a->issuer.b, 32) || put_str(o, "status", status) ||
      put_u64(o, "issued", a->issued) || put_u64(o, "holders", a->holders))
    return BUILD_FAILED;
  return 0;
}

static int asset_load_fill(tr_store_t *s, const char *id, cJSON *o) {
  tr_asset_t *a = malloc(sizeof *a); /* ~2 KiB of fixed buffers: keep it off small stacks */
  if (a == NULL) return TR_ENOMEM;
  int rc = tr_store_asset_get(s, id, a);
  if (rc == 0) {
    rc = asset_fill(o, a);
    tr_asset_clear(a);
  }
  free(a);
  return rc;
}

int tr_query_asset(tr_store_t *s, const char *asset, cJSON **out, tr_query_error_t *err) {
  if (asset == NULL) return earg(err, "asset is required");
  uint64_t size;
  cJSON *o;
  int rc = q_begin(s, &size, &o, err);
  if (rc != 0) return rc;
  rc = asset_load_fill(s, asset, o);
  return q_end(s, rc, size, o, out);
}

static const char SQL_ASSET_IDS[] = "SELECT id FROM assets WHERE id > ?1 ORDER BY id LIMIT ?2";

/* Reads the page's ids first (one range scan), then each asset by its key:
 * one decoder of asset rows (tr_store_asset_get) for get and list alike. */
int tr_query_asset_list(tr_store_t *s, const tr_page_t *page, cJSON **out, tr_query_error_t *err) {
  const char *cursor = page_cursor(page);
  int rc = check_page(page, err);
  if (rc != 0) return rc;
  if (cursor != NULL && !tr_asset_id_valid(cursor, strlen(cursor))) return earg(err, "cursor is not an asset id from a previous page");
  uint64_t limit = page_limit(page), size, n = 0;
  char(*ids)[TR_ASSET_ID_CHARS_MAX + 1] = calloc((size_t)limit + 1, sizeof *ids);
  if (ids == NULL) return TR_ENOMEM;
  cJSON *o;
  if ((rc = q_begin(s, &size, &o, err)) != 0) {
    free(ids);
    return rc;
  }
  sqlite3_stmt *st = tr_store_stmt(s, SQL_ASSET_IDS);
  if (st == NULL) rc = TR_EIO;
  if (rc == 0) {
    sqlite3_bind_text(st, 1, cursor ? cursor : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit + 1);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
      if (n > limit) { rc = TR_ECORRUPT; break; } /* LIMIT limit + 1 */
      snprintf(ids[n++], sizeof ids[0], "%s", (const char *)sqlite3_column_text(st, 0));
    }
    if (rc == 0 && step != SQLITE_DONE) rc = TR_EIO;
    sqlite3_reset(st);
  }
  cJSON *arr = rc == 0 ? cJSON_AddArrayToObject(o, "assets") : NULL;
  if (rc == 0 && arr == NULL) rc = TR_ENOMEM;
  for (uint64_t i = 0; rc == 0 && i < n && i < limit; i++) {
    cJSON *a = push_object(arr);
    rc = a ? asset_load_fill(s, ids[i], a) : TR_ENOMEM;
    if (rc == TR_ENOT_FOUND) rc = TR_ECORRUPT; /* same snapshot: it was just listed */
  }
  free(ids);
  if (rc == 0) rc = put_next(o, arr, n > limit, "asset");
  return q_end(s, rc, size, o, out);
}

/* asset must exist in the snapshot; TR_ENOT_FOUND otherwise. */
static int asset_exists(tr_store_t *s, const char *asset) {
  sqlite3_stmt *st = tr_store_stmt(s, "SELECT 1 FROM assets WHERE id = ?1");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  sqlite3_reset(st);
  return step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? TR_ENOT_FOUND : TR_EIO;
}

static const char SQL_ASSET_HOLDERS[] =
    "SELECT account, units, frozen FROM holdings WHERE asset = ?1 AND account > ?2 ORDER BY account LIMIT ?3";

static int holder_row(sqlite3_stmt *st, cJSON *arr) {
  cJSON *h = push_object(arr);
  if (h == NULL) return TR_ENOMEM;
  if (sqlite3_column_bytes(st, 0) != 32) return TR_ECORRUPT;
  if (put_hex(h, "account", sqlite3_column_blob(st, 0), 32) ||
      put_u64(h, "units", (uint64_t)sqlite3_column_int64(st, 1)) ||
      put_u64(h, "frozen", (uint64_t)sqlite3_column_int64(st, 2)))
    return TR_ENOMEM;
  return 0;
}

int tr_query_asset_holders(tr_store_t *s, const char *asset, const tr_page_t *page, cJSON **out,
                           tr_query_error_t *err) {
  uint8_t after[32];
  const char *cursor = page_cursor(page);
  int rc = check_page(page, err);
  if (rc != 0) return rc;
  if (asset == NULL) return earg(err, "asset is required");
  if (cursor != NULL && !parse_key(cursor, strlen(cursor), after))
    return earg(err, "cursor is not an account from a previous page");
  uint64_t size;
  cJSON *o;
  if ((rc = q_begin(s, &size, &o, err)) != 0) return rc;
  rc = asset_exists(s, asset);
  cJSON *arr = rc == 0 ? cJSON_AddArrayToObject(o, "holders") : NULL;
  if (rc == 0 && arr == NULL) rc = TR_ENOMEM;
  sqlite3_stmt *st = rc == 0 ? tr_store_stmt(s, SQL_ASSET_HOLDERS) : NULL;
  if (rc == 0 && st == NULL) rc = TR_EIO;
  bool more = false;
  if (rc == 0) {
    sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, after, cursor ? 32 : 0, SQLITE_STATIC); /* x'' sorts before every key */
    sqlite3_bind_int64(st, 3, (sqlite3_int64)page_limit(page) + 1);
    rc = page_rows(st, page_limit(page), holder_row, arr, &more);
  }
  if (rc == 0) rc = put_next(o, arr, more, "account");
  return q_end(s, rc, size, o, out);
}

/* Payouts, by (distribution, account): every distribution of the asset via
 * payouts_by_asset, or one distribution via the primary key. */
static const char SQL_PAYOUTS_ALL[] =
    "SELECT distribution, account, amount FROM payouts WHERE asset = ?1"
    " AND (distribution, account) > (?2, ?3) ORDER BY distribution, account LIMIT ?4";
static const char SQL_PAYOUTS_ONE[] =
    "SELECT distribution, account, amount FROM payouts WHERE distribution = ?2"
    " AND account > ?3 AND asset = ?1 ORDER BY account LIMIT ?4";
static const char SQL_DISTRIBUTION_ASSET[] = "SELECT asset FROM distributions WHERE seq = ?1";

static int payout_row(sqlite3_stmt *st, cJSON *arr) {
  cJSON *p = push_object(arr);
  if (p == NULL) return TR_ENOMEM;
  if (sqlite3_column_bytes(st, 1) != 32) return TR_ECORRUPT;
  if (put_u64(p, "distribution", (uint64_t)sqlite3_column_int64(st, 0)) ||
      put_hex(p, "account", sqlite3_column_blob(st, 1), 32) ||
      put_u64(p, "amount", (uint64_t)sqlite3_column_int64(st, 2)))
    return TR_ENOMEM;
  return 0;
}

/* The distribution must be one of this asset's: TR_ENOT_FOUND otherwise. */
static int distribution_of(tr_store_t *s, uint64_t seq, const char *asset) {
  sqlite3_stmt *st = tr_store_stmt(s, SQL_DISTRIBUTION_ASSET);
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
  int step = sqlite3_step(st), rc;
  if (step == SQLITE_ROW) {
    const unsigned char *a = sqlite3_column_text(st, 0);
    rc = (a && strcmp((const char *)a, asset) == 0) ? 0 : TR_ENOT_FOUND;
  } else {
    rc = step == SQLITE_DONE ? TR_ENOT_FOUND : TR_EIO;
  }
  sqlite3_reset(st);
  return rc;
}

/* "<seq>:<account hex>" */
static bool parse_payout_cursor(const char *c, uint64_t *seq, uint8_t account[32]) {
  const char *colon = strchr(c, ':');
  return colon != NULL && parse_seq(c, (size_t)(colon - c), seq) &&
         parse_key(colon + 1, strlen(colon + 1), account);
}

static int payouts_next(cJSON *o, cJSON *arr, bool more) {
  if (!more) return put_null(o, "next") ? TR_ENOMEM : 0;
  const cJSON *last = cJSON_GetArrayItem(arr, cJSON_GetArraySize(arr) - 1);
  uint64_t seq;
  const cJSON *acct = cJSON_GetObjectItemCaseSensitive(last, "account");
  if (tr_query_get_u64(cJSON_GetObjectItemCaseSensitive(last, "distribution"), &seq) != 0 ||
      !cJSON_IsString(acct))
    return TR_ECORRUPT;
  char next[24 + 64];
  snprintf(next, sizeof next, "%" PRIu64 ":%s", seq, acct->valuestring);
  return put_str(o, "next", next) ? TR_ENOMEM : 0;
}

int tr_query_asset_payouts(tr_store_t *s, const char *asset, uint64_t distribution, const tr_page_t *page,
                           cJSON **out, tr_query_error_t *err) {
  uint64_t after_seq = 0;
  uint8_t after_acct[32];
  const char *cursor = page_cursor(page);
  int rc = check_page(page, err);
  if (rc != 0) return rc;
  if (asset == NULL) return earg(err, "asset is required");
  if (cursor != NULL && !parse_payout_cursor(cursor, &after_seq, after_acct))
    return earg(err, "cursor is not \"<seq>:<account>\" from a previous page");
  if (cursor != NULL && distribution != 0 && after_seq != distribution)
    return earg(err, "cursor belongs to another distribution");
  uint64_t size;
  cJSON *o;
  if ((rc = q_begin(s, &size, &o, err)) != 0) return rc;
  rc = asset_exists(s, asset);
  if (rc == 0 && distribution != 0) rc = distribution_of(s, distribution, asset);
  cJSON *arr = rc == 0 ? cJSON_AddArrayToObject(o, "payouts") : NULL;
  if (rc == 0 && arr == NULL) rc = TR_ENOMEM;
  sqlite3_stmt *st = rc == 0 ? tr_store_stmt(s, distribution ? SQL_PAYOUTS_ONE : SQL_PAYOUTS_ALL) : NULL;
  if (rc == 0 && st == NULL) rc = TR_EIO;
  bool more = false;
  if (rc == 0) {
    sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(distribution ? distribution : after_seq));
    sqlite3_bind_blob(st, 3, after_acct, cursor ? 32 : 0, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)page_limit(page) + 1);
    rc = page_rows(st, page_limit(page), payout_row, arr, &more);
  }
  if (rc == 0) rc = payouts_next(o, arr, more);
  return q_end(s, rc, size, o, out);
}

/* ------------------------------------------------------------------------ */
/* Risk                                                                      */

typedef struct {
  char currency[4];
  u128 exposure, rwa;
} currency_total_t;

typedef struct {
  currency_total_t *v;
  size_t n, cap;
} totals_t;

/* Adds to the total of `currency`, keeping v sorted by currency. */
static int totals_add(totals_t *t, const char *currency, u128 exposure, u128 rwa) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(t->v[mid].currency, currency);
    if (c == 0) {
      t->v[mid].exposure += exposure;
      t->v[mid].rwa += rwa;
      return 0;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 8;
    currency_total_t *v = realloc(t->v, cap * sizeof *v);
    if (v == NULL) return TR_ENOMEM;
    t->v = v;
    t->cap = cap;
  }
  memmove(&t->v[lo + 1], &t->v[lo], (t->n - lo) * sizeof *t->v);
  snprintf(t->v[lo].currency, sizeof t->v[lo].currency, "%s", currency);
  t->v[lo].exposure = exposure;
  t->v[lo].rwa = rwa;
  t->n++;
  return 0;
}

static int put_u128(cJSON *o, const char *k, u128 v) {
  char dec[TR_U128_DEC_BYTES];
  return put_str(o, k, tr_u128_to_dec(v, dec));
}

static const char SQL_EXPOSURE[] =
    "SELECT h.asset, h.units, a.currency, a.principal, a.units, a.risk_weight_pct"
    " FROM holdings AS h JOIN assets AS a ON a.id = h.asset WHERE h.account = ?1 ORDER BY h.asset";

/* One holding: exposure = floor(principal * held / authorised), rwa =
 * floor(exposure * risk_weight_pct / 100), both in 128 bits. */
static int exposure_row(sqlite3_stmt *st, cJSON *arr, bool listed, totals_t *t) {
  const char *asset = (const char *)sqlite3_column_text(st, 0);
  const char *currency = (const char *)sqlite3_column_text(st, 2);
  uint64_t held = (uint64_t)sqlite3_column_int64(st, 1), principal = (uint64_t)sqlite3_column_int64(st, 3);
  uint64_t authorised = (uint64_t)sqlite3_column_int64(st, 4), weight = (uint64_t)sqlite3_column_int64(st, 5);
  if (asset == NULL || currency == NULL || authorised == 0 || held > authorised) return TR_ECORRUPT;
  u128 exposure = (u128)principal * held / authorised;
  u128 rwa = exposure * weight / 100;
  int rc = totals_add(t, currency, exposure, rwa);
  if (rc != 0 || !listed) return rc;
  cJSON *h = push_object(arr);
  if (h == NULL || put_str(h, "asset", asset) || put_str(h, "currency", currency) || put_u64(h, "units", held) ||
      put_u128(h, "exposure", exposure) || put_u64(h, "risk_weight_pct", weight) || put_u128(h, "rwa", rwa))
    return TR_ENOMEM;
  return 0;
}

static int totals_fill(cJSON *o, const totals_t *t) {
  cJSON *arr = cJSON_AddArrayToObject(o, "totals");
  if (arr == NULL) return TR_ENOMEM;
  for (size_t i = 0; i < t->n; i++) {
    cJSON *c = push_object(arr);
    if (c == NULL || put_str(c, "currency", t->v[i].currency) || put_u128(c, "exposure", t->v[i].exposure) ||
        put_u128(c, "rwa", t->v[i].rwa))
      return TR_ENOMEM;
  }
  return 0;
}

/* Lists the first TR_QUERY_ACCOUNT_HOLDINGS_MAX holdings (then adds
 * "holdings_truncated": true) but totals every holding of the account. */
static int exposure_fill(tr_store_t *s, const tr_key_t *account, cJSON *o) {
  cJSON *arr = cJSON_AddArrayToObject(o, "holdings");
  if (arr == NULL) return TR_ENOMEM;
  sqlite3_stmt *st = tr_store_stmt(s, SQL_EXPOSURE);
  if (st == NULL) return TR_EIO;
  sqlite3_bind_blob(st, 1, account->b, 32, SQLITE_STATIC);
  totals_t t = {0};
  int step, rc = 0;
  size_t n = 0;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if ((rc = exposure_row(st, arr, n < TR_QUERY_ACCOUNT_HOLDINGS_MAX, &t)) != 0) break;
    n++;
  }
  if (rc == 0 && step != SQLITE_DONE) rc = TR_EIO;
  sqlite3_reset(st);
  if (rc == 0 && n > TR_QUERY_ACCOUNT_HOLDINGS_MAX && put_bool(o, "holdings_truncated", true)) rc = TR_ENOMEM;
  if (rc == 0) rc = totals_fill(o, &t);
  free(t.v);
  return rc;
}

int tr_query_risk_exposure(tr_store_t *s, const tr_key_t *account, cJSON **out, tr_query_error_t *err) {
  uint64_t size;
  cJSON *o;
  tr_account_t a;
  int rc = q_begin(s, &size, &o, err);
  if (rc != 0) return rc;
  rc = tr_store_account_get(s, account, &a);
  if (rc == 0 && put_hex(o, "account", account->b, 32)) rc = TR_ENOMEM;
  if (rc == 0) rc = exposure_fill(s, account, o);
  return q_end(s, rc, size, o, out);
}

/* ------------------------------------------------------------------------ */
/* Proofs and checkpoints                                                    */

static int path_fill(cJSON *o, uint8_t path[][TR_MERKLE_HASH_BYTES], size_t n) {
  cJSON *arr = cJSON_AddArrayToObject(o, "path");
  if (arr == NULL) return TR_ENOMEM;
  for (size_t i = 0; i < n; i++)
    if (push_hex(arr, path[i], TR_MERKLE_HASH_BYTES)) return TR_ENOMEM;
  return 0;
}

int tr_query_proof(tr_store_t *s, uint64_t seq, uint64_t size, cJSON **out, tr_query_error_t *err) {
  if (seq < 1 || size < seq) return earg(err, "need 1 <= seq <= size");
  uint64_t journal;
  cJSON *o;
  int rc = q_begin(s, &journal, &o, err);
  if (rc != 0) return rc;
  uint8_t path[TR_MERKLE_PATH_MAX][TR_MERKLE_HASH_BYTES], leaf[TR_MERKLE_HASH_BYTES];
  size_t n = 0;
  if (size > journal) rc = earg(err, "size beyond the journal (%" PRIu64 " entries)", journal);
  if (rc == 0) rc = tr_store_merkle_get(s, 0, seq - 1, leaf); /* the entry hash is the leaf */
  if (rc == 0) rc = tr_merkle_inclusion_proof(tr_store_merkle_get, s, seq - 1, size, path, &n);
  if (rc == 0 && (put_u64(o, "seq", seq) || put_u64(o, "size", size) || put_hex(o, "leaf", leaf, 32)))
    rc = TR_ENOMEM;
  if (rc == 0) rc = path_fill(o, path, n);
  return q_end(s, rc, journal, o, out);
}

int tr_query_consistency(tr_store_t *s, uint64_t from, uint64_t to, cJSON **out, tr_query_error_t *err) {
  if (from < 1 || to < from) return earg(err, "need 1 <= from <= to");
  uint64_t journal;
  cJSON *o;
  int rc = q_begin(s, &journal, &o, err);
  if (rc != 0) return rc;
  uint8_t path[TR_MERKLE_PATH_MAX][TR_MERKLE_HASH_BYTES];
  size_t n = 0;
  if (to > journal) rc = earg(err, "to is beyond the journal (%" PRIu64 " entries)", journal);
  if (rc == 0) rc = tr_merkle_consistency_proof(tr_store_merkle_get, s, from, to, path, &n);
  if (rc == 0 && (put_u64(o, "from", from) || put_u64(o, "to", to))) rc = TR_ENOMEM;
  if (rc == 0) rc = path_fill(o, path, n);
  return q_end(s, rc, journal, o, out);
}

static int bad_row(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad_row(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return TR_ECORRUPT;
}

int tr_query_checkpoint_verify(tr_store_t *s, const tr_note_vkey_t *vk, uint64_t journal, uint64_t size,
                               const uint8_t root[32], const char *note, char *why, size_t whylen) {
  tr_checkpoint_t cp;
  uint8_t tree[TR_MERKLE_HASH_BYTES];
  size_t len = note ? strnlen(note, TR_NOTE_BYTES_MAX + 1) : 0;
  if (len == 0 || len > TR_NOTE_BYTES_MAX || tr_checkpoint_open(note, len, vk, &cp) != 0)
    return bad_row(why, whylen, "stored checkpoint %" PRIu64 " is not a note signed by the node key %s", size,
                   vk->name);
  if (cp.size != size || memcmp(cp.root, root, sizeof cp.root) != 0)
    return bad_row(why, whylen, "stored checkpoint %" PRIu64 ": its size or root column is not what its note says "
                   "(size %" PRIu64 ")", size, cp.size);
  if (size < 1 || size > journal)
    return bad_row(why, whylen, "stored checkpoint %" PRIu64 " is beyond the journal (%" PRIu64 " entries)", size,
                   journal);
  int rc = tr_store_merkle_root(s, size, tree);
  if (rc != 0) return rc; /* cannot read: the caller's storage error, not a verdict */
  if (memcmp(tree, cp.root, sizeof tree) != 0)
    return bad_row(why, whylen, "stored checkpoint %" PRIu64 ": its root is not the Merkle root of entries 1..%" PRIu64,
                   size, size);
  return 0;
}

/* size here is the checkpoint's tree size (PROTOCOL.md §5 ledger.checkpoint).
 * The stored row is checked before it is served, on every query: a row
 * anyone added to the file with sqlite3 (the schema stops UPDATE and DELETE,
 * not INSERT) must never go out as the node's word.  The cost is one
 * Ed25519 verify and O(log n) Merkle node reads, the same as one tx.check
 * with a sig; a cache of the last verified row would save that but is one
 * more piece of shared state between the workers to get right, for a method
 * clients poll about once a second. */
int tr_query_checkpoint(tr_store_t *s, const char *vkey, cJSON **out, tr_query_error_t *err) {
  tr_note_vkey_t vk;
  if (vkey == NULL || tr_note_vkey_parse(vkey, strlen(vkey), &vk) != 0)
    return earg(err, "no verifier key to check the stored checkpoint with");
  uint64_t journal, size = 0;
  uint8_t root[32];
  char *note = NULL;
  cJSON *o;
  int rc = q_begin(s, &journal, &o, err);
  if (rc != 0) return rc;
  rc = tr_store_checkpoint_latest(s, &size, root, &note);
  if (rc == 0) rc = tr_query_checkpoint_verify(s, &vk, journal, size, root, note, err ? err->message : NULL,
                                               err ? sizeof err->message : 0);
  if (rc == 0 && (put_str(o, "checkpoint", note) || put_u64(o, "size", size) || put_str(o, "vkey", vkey)))
    rc = TR_ENOMEM;
  free(note);
  return q_end(s, rc, journal, o, out);
}

/* ------------------------------------------------------------------------ */
/* Receipts                                                                  */

cJSON *tr_query_receipt_json(uint64_t seq, uint64_t time, const uint8_t txid[32], const uint8_t hash[32],
                             int duplicate, const char *effects_json) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) return NULL;
  if (put_u64(o, "seq", seq) || put_hex(o, "txid", txid, 32) || put_hex(o, "hash", hash, 32) ||
      put_u64(o, "time", time) || put_bool(o, "duplicate", duplicate != 0) ||
      put_parsed(o, "effects", effects_json ? effects_json : "{\"holdings\":[]}")) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}
