/* test_query.c — the read-side methods (lib/tr_query.c) against a ledger
 * built in memory through the real decoder and state machine.
 *
 * Every expected value is computed here independently: Merkle roots by a
 * recursive RFC 9162 MTH over the entry hashes, exposure in 128-bit integers
 * with literal decimal expectations, pages re-assembled and compared with the
 * rows the scenario wrote. */
#include <cJSON.h>
#include <inttypes.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_ledger.h"
#include "tr_merkle.h"
#include "tr_note.h"
#include "tr_query.h"
#include "tr_store.h"
#include "tr_test.h"
#include "tr_tx.h"

#define CHAIN "test.example/query"
#define T0 UINT64_C(1700000000000)
#define INVESTORS 7
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SEQ_MAX 64 /* entries the scenario writes, with room */

typedef struct {
  uint8_t pk[32], sk[64];
  char hex[65];
} key_t_;

static tr_store_t *S;
static tr_ledger_t L;
static key_t_ node, admin, issuer, agent, inv[INVESTORS];
static uint64_t N;                       /* journal size after the scenario */
static uint8_t hashes[SEQ_MAX + 1][32];  /* entry hashes by seq, from receipts */
static uint8_t txids[SEQ_MAX + 1][32];
static int next_id;

/* Per investor: the seqs account.history must list, in order. */
static uint64_t hist[INVESTORS][SEQ_MAX];
static size_t hist_n[INVESTORS];

static void key_make(key_t_ *k, uint8_t seed_byte) {
  uint8_t seed[32];
  memset(seed, seed_byte, sizeof seed);
  crypto_sign_seed_keypair(k->pk, k->sk, seed);
  tr_hex_encode(k->pk, 32, k->hex);
}

static tr_key_t key_of(const key_t_ *k) {
  tr_key_t t;
  memcpy(t.b, k->pk, 32);
  return t;
}

/* Builds, signs and applies one tx; returns its seq, or a negative refusal. */
static int64_t submit(const key_t_ *signer, const char *type, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int64_t submit(const key_t_ *signer, const char *type, const char *fields_fmt, ...) {
  char fields[4096], tx[8192];
  va_list ap;
  va_start(ap, fields_fmt);
  vsnprintf(fields, sizeof fields, fields_fmt, ap);
  va_end(ap);
  int len = snprintf(tx, sizeof tx, "{\"type\":\"%s\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"t%d\",%s}",
                     type, CHAIN, signer->hex, ++next_id, fields);
  static tr_tx_t t;
  tr_tx_error_t err;
  int rc = tr_tx_decode(tx, (size_t)len, &t, &err);
  if (rc != 0) {
    printf("# decode %s: %s\n", type, err.detail);
    return rc;
  }
  uint8_t sig[64];
  tr_tx_sign(tx, (size_t)len, signer->sk, sig);
  tr_receipt_t r;
  tr_refusal_t ref = {0};
  if ((rc = tr_store_begin(S)) != 0) return rc;
  rc = tr_ledger_apply(&L, &t, tx, (size_t)len, sig, T0 + (uint64_t)next_id * 1000, &r, &ref);
  if (rc != 0) {
    printf("# apply %s: %s: %s\n", type, tr_strerror(rc), ref.detail);
    tr_store_rollback(S);
    return rc;
  }
  tr_store_commit(S);
  if (r.seq <= SEQ_MAX) {
    memcpy(hashes[r.seq], r.hash, 32);
    memcpy(txids[r.seq], r.txid, 32);
  }
  tr_receipt_clear(&r);
  return (int64_t)r.seq;
}

static void hist_add(int i, int64_t seq) { hist[i][hist_n[i]++] = (uint64_t)seq; }

/* ---- small JSON readers ---- */

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = get(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}
static uint64_t u64(const cJSON *o, const char *k) {
  uint64_t v = UINT64_MAX;
  if (tr_query_get_u64(get(o, k), &v) != 0) return UINT64_MAX;
  return v;
}
static bool is_null(const cJSON *o, const char *k) { return cJSON_IsNull(get(o, k)); }
static bool hex32(const char *s, uint8_t out[32]) { return s && tr_hex_decode(s, strlen(s), out, 32) == 0; }

static char *printed(const cJSON *o) { return cJSON_PrintUnformatted(o); }

/* ---- an independent RFC 9162 MTH ---- */

/* MTH of leaves[lo..lo+n): each entry hash is its leaf hash. */
static void mth_of(const uint8_t (*leaves)[32], uint64_t lo, uint64_t n, uint8_t out[32]) {
  if (n == 1) {
    memcpy(out, leaves[lo], 32);
    return;
  }
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  uint8_t l[32], r[32];
  mth_of(leaves, lo, k, l);
  mth_of(leaves, lo + k, n - k, r);
  tr_merkle_node_hash(l, r, out);
}

static void mth(uint64_t lo, uint64_t n, uint8_t out[32]) { mth_of(hashes + 1, lo, n, out); }

/* ---- scenario ---- */

static int64_t seq_create_bond, seq_dist1, seq_dist2, seq_dist_loan, seq_freeze;
#define BOND_PRINCIPAL UINT64_C(9007199254740000)
#define BOND_UNITS UINT64_C(9007199254740991)
#define BIG_UNITS UINT64_C(4503599627370496) /* 2^52 */

static void scenario(void) {
  key_make(&node, 1);
  key_make(&admin, 2);
  key_make(&issuer, 3);
  key_make(&agent, 4);
  for (int i = 0; i < INVESTORS; i++) key_make(&inv[i], (uint8_t)(10 + i));
  tr_key_t admin_key = key_of(&admin);
  TR_CHECK(tr_ledger_genesis(S, CHAIN, node.sk, &admin_key, T0) == 0, "genesis written");
  TR_CHECK(tr_ledger_load(&L, S) == 0, "ledger loads");
  tr_entry_t e;
  if (tr_store_entry_get(S, 1, &e) == 0) {
    memcpy(hashes[1], e.hash, 32);
    memcpy(txids[1], e.txid, 32);
    tr_entry_clear(&e);
  }
  int64_t q;
  q = submit(&admin, "account.open",
             "\"account\":\"%s\",\"roles\":[\"issuer\"],\"jurisdiction\":\"US\",\"kyc\":true", issuer.hex);
  TR_CHECK(q == 2, "issuer opened at seq 2 (%lld)", (long long)q);
  q = submit(&admin, "account.open",
             "\"account\":\"%s\",\"roles\":[\"investor\",\"issuer\",\"agent\",\"admin\"],\"jurisdiction\":\"DE\","
             "\"kyc\":false", agent.hex);
  TR_CHECK(q == 3, "agent opened (%lld)", (long long)q);
  for (int i = 0; i < INVESTORS; i++) {
    q = submit(&admin, "account.open", "\"account\":\"%s\",\"roles\":[\"investor\"],\"jurisdiction\":\"%s\",\"kyc\":true",
               inv[i].hex, i % 2 ? "GB" : "US");
    TR_CHECK(q > 0, "investor %d opened", i);
    hist_add(i, q);
  }
  seq_create_bond = submit(&issuer, "asset.create",
      "\"asset\":\"BOND-A\",\"name\":\"Bond \\u00e9 A\",\"kind\":\"bond\",\"currency\":\"USD\",\"principal\":%" PRIu64
      ",\"units\":%" PRIu64 ",\"coupon_bps\":525,\"maturity\":\"2030-02-28\",\"rating\":\"AA-\",\"risk_weight_pct\":1250,"
      "\"rules\":{\"jurisdictions\":[\"US\",\"GB\"],\"min_units\":0,\"lockup_until\":0},"
      "\"documents\":[{\"name\":\"term sheet\",\"sha256\":\"%s\"}]",
      BOND_PRINCIPAL, BOND_UNITS, issuer.hex);
  TR_CHECK(seq_create_bond > 0, "BOND-A created");
  q = submit(&issuer, "asset.create",
             "\"asset\":\"LOAN.B\",\"name\":\"Loan B\",\"kind\":\"term_loan\",\"currency\":\"EUR\",\"principal\":1000000,"
             "\"units\":1000,\"coupon_bps\":0,\"maturity\":\"2028-02-29\",\"rating\":\"BBB\",\"risk_weight_pct\":100,"
             "\"rules\":{}");
  TR_CHECK(q > 0, "LOAN.B created");
  q = submit(&issuer, "asset.create",
             "\"asset\":\"C1\",\"name\":\"C one\",\"kind\":\"other\",\"currency\":\"USD\",\"principal\":1000000000000000,"
             "\"units\":3,\"coupon_bps\":100000,\"maturity\":\"2031-01-01\",\"rating\":\"B\",\"risk_weight_pct\":50,"
             "\"rules\":{\"max_holders\":5}");
  TR_CHECK(q > 0, "C1 created");
  /* BOND-A to every investor: 2^52 to investor 0, 1000*(i+1) to the others. */
  for (int i = 0; i < INVESTORS; i++) {
    q = submit(&issuer, "asset.issue", "\"asset\":\"BOND-A\",\"to\":\"%s\",\"units\":%" PRIu64, inv[i].hex,
               i == 0 ? BIG_UNITS : (uint64_t)(1000 * (i + 1)));
    TR_CHECK(q > 0, "BOND-A issued to investor %d", i);
    hist_add(i, q);
  }
  q = submit(&issuer, "asset.issue", "\"asset\":\"LOAN.B\",\"to\":\"%s\",\"units\":400", inv[0].hex);
  hist_add(0, q);
  q = submit(&issuer, "asset.issue", "\"asset\":\"LOAN.B\",\"to\":\"%s\",\"units\":600", inv[1].hex);
  hist_add(1, q);
  q = submit(&issuer, "asset.issue", "\"asset\":\"C1\",\"to\":\"%s\",\"units\":1", inv[0].hex);
  TR_CHECK(q > 0, "C1 issued");
  hist_add(0, q);
  q = submit(&inv[0], "transfer", "\"asset\":\"BOND-A\",\"to\":\"%s\",\"units\":96", inv[2].hex);
  TR_CHECK(q > 0, "transfer 0 -> 2");
  hist_add(0, q);
  hist_add(2, q);
  seq_freeze = submit(&admin, "holding.freeze", "\"asset\":\"BOND-A\",\"account\":\"%s\",\"units\":500", inv[1].hex);
  TR_CHECK(seq_freeze > 0, "freeze investor 1");
  hist_add(1, seq_freeze);
  seq_dist1 = submit(&issuer, "asset.distribute", "\"asset\":\"BOND-A\",\"amount\":1000,\"kind\":\"interest\"");
  TR_CHECK(seq_dist1 > 0, "distribution 1");
  for (int i = 0; i < INVESTORS; i++) hist_add(i, seq_dist1);
  seq_dist_loan = submit(&issuer, "asset.distribute", "\"asset\":\"LOAN.B\",\"amount\":999,\"kind\":\"principal\"");
  TR_CHECK(seq_dist_loan > 0, "LOAN.B distribution");
  hist_add(0, seq_dist_loan);
  hist_add(1, seq_dist_loan);
  seq_dist2 = submit(&issuer, "asset.distribute", "\"asset\":\"BOND-A\",\"amount\":7,\"kind\":\"other\"");
  TR_CHECK(seq_dist2 > 0, "distribution 2");
  for (int i = 0; i < INVESTORS; i++) hist_add(i, seq_dist2);
  uint8_t h[32];
  TR_CHECK(tr_store_head(S, &N, h, NULL) == 0 && N <= SEQ_MAX, "journal has %" PRIu64 " entries", N);
}

/* ---- integers ---- */

static void test_integers(void) {
  static const struct { uint64_t v; const char *text; } cases[] = {
    {0, "{\"n\":0}"},
    {1, "{\"n\":1}"},
    {UINT64_C(999999999999999), "{\"n\":999999999999999}"},
    {UINT64_C(1000000000000000), "{\"n\":1000000000000000}"},
    {UINT64_C(1234567890123450), "{\"n\":1234567890123450}"},
    {UINT64_C(9007199254740991), "{\"n\":9007199254740991}"},
    {UINT64_MAX, "{\"n\":18446744073709551615}"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cJSON *o = cJSON_CreateObject();
    tr_query_add_u64(o, "n", cases[i].v);
    char *t = printed(o);
    TR_CHECK_EQ_STR(t, cases[i].text, "tr_query_add_u64 prints plain digits");
    uint64_t back = 0;
    TR_CHECK(tr_query_get_u64(get(o, "n"), &back) == 0 && back == cases[i].v, "tr_query_get_u64 reads it back");
    cJSON *re = cJSON_Parse(t);
    TR_CHECK(cJSON_IsNumber(get(re, "n")), "the printed text parses as a JSON number");
    cJSON_Delete(re);
    free(t);
    cJSON_Delete(o);
  }
  /* Why the helper exists: cJSON's own printing of 10^15 and 2^53-1. */
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "a", 1e15);
  cJSON_AddNumberToObject(o, "b", 9007199254740991.0);
  char *t = printed(o);
  TR_CHECK(strcmp(t, "{\"a\":1000000000000000,\"b\":9007199254740991}") != 0,
           "cJSON 1.7.15 alone does not print integers >= 10^15 as digits (got %s)", t);
  free(t);
  cJSON_Delete(o);
  char dec[TR_U128_DEC_BYTES];
  TR_CHECK_EQ_STR(tr_u128_to_dec(0, dec), "0", "u128 0");
  TR_CHECK_EQ_STR(tr_u128_to_dec(10, dec), "10", "u128 10");
  TR_CHECK_EQ_STR(tr_u128_to_dec((unsigned __int128)1 << 64, dec), "18446744073709551616", "u128 2^64");
  TR_CHECK_EQ_STR(tr_u128_to_dec(~(unsigned __int128)0, dec), "340282366920938463463374607431768211455",
                  "u128 2^128-1");
}

/* ---- empty store ---- */

static void test_empty(void) {
  tr_store_t *e = NULL;
  char msg[128];
  TR_CHECK(tr_store_open(NULL, TR_STORE_MEMORY, &e, msg, sizeof msg) == 0, "empty store opens");
  cJSON *o = NULL;
  tr_query_error_t err;
  TR_CHECK(tr_query_head(e, &o, &err) == 0, "head of an empty journal");
  TR_CHECK(u64(o, "size") == 0 && u64(o, "time") == 0, "size 0, time 0");
  TR_CHECK_EQ_STR(str(o, "root"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                  "root of the empty tree is SHA-256 of nothing");
  cJSON_Delete(o);
  char vkey[TR_NOTE_VKEY_BUF_BYTES];
  TR_CHECK(tr_note_vkey_format(CHAIN, node.pk, vkey, sizeof vkey) == 0, "node vkey");
  TR_CHECK(tr_query_checkpoint(e, vkey, &o, &err) == TR_ENOT_FOUND, "no checkpoint yet: not_found");
  TR_CHECK(tr_query_entry(e, 1, &o, &err) == TR_ENOT_FOUND, "no entry 1 yet");
  tr_store_close(e);
}

/* ---- journal ---- */

static void test_head_entries(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  uint8_t root[32], b[32];
  mth(0, N, root);
  TR_CHECK(tr_query_head(S, &o, &err) == 0, "ledger.head");
  TR_CHECK_EQ_INT(u64(o, "size"), N, "head size");
  TR_CHECK(hex32(str(o, "hash"), b) && memcmp(b, hashes[N], 32) == 0, "head hash is entry N's hash");
  TR_CHECK(hex32(str(o, "root"), b) && memcmp(b, root, 32) == 0, "head root is MTH of all entries");
  TR_CHECK_EQ_INT(u64(o, "time"), T0 + (uint64_t)next_id * 1000, "head time");
  TR_CHECK_EQ_INT(cJSON_GetArraySize(o), 4, "head has exactly size, hash, root, time");
  cJSON_Delete(o);

  TR_CHECK(tr_query_entry(S, 1, &o, &err) == 0, "ledger.entry 1");
  TR_CHECK_EQ_STR(str(o, "prev"), "0000000000000000000000000000000000000000000000000000000000000000",
                  "entry 1 prev is zeros");
  char genesis[512];
  tr_key_t nk = key_of(&node), ak = key_of(&admin);
  tr_genesis_bytes(CHAIN, &nk, &ak, genesis, sizeof genesis);
  TR_CHECK_EQ_STR(str(o, "tx"), genesis, "entry 1 tx is the genesis bytes as a string");
  TR_CHECK(str(o, "sig") && strlen(str(o, "sig")) == 128, "sig is 128 hex");
  TR_CHECK(u64(o, "seq") == 1 && u64(o, "time") == T0 && u64(o, "size") == N, "seq, time, size");
  TR_CHECK(get(o, "signer") == NULL, "ledger.entry has no signer member");
  cJSON_Delete(o);
  TR_CHECK(tr_query_entry(S, 5, &o, &err) == 0, "ledger.entry 5");
  TR_CHECK(hex32(str(o, "prev"), b) && memcmp(b, hashes[4], 32) == 0, "entry 5 prev = entry 4 hash");
  TR_CHECK(hex32(str(o, "hash"), b) && memcmp(b, hashes[5], 32) == 0, "entry 5 hash");
  TR_CHECK(hex32(str(o, "txid"), b) && memcmp(b, txids[5], 32) == 0, "entry 5 txid");
  cJSON_Delete(o);
  o = NULL;
  TR_CHECK(tr_query_entry(S, 0, &o, &err) == TR_ENOT_FOUND && o == NULL, "entry 0: not_found");
  TR_CHECK(tr_query_entry(S, N + 1, &o, &err) == TR_ENOT_FOUND, "entry N+1: not_found");

  for (uint64_t limit = 1; limit <= 4; limit++) {
    uint64_t from = 1, seen = 0, pages = 0;
    bool ok = true;
    while (pages++ < 100) {
      if (tr_query_entries(S, from, limit, &o, &err) != 0) { ok = false; break; }
      const cJSON *arr = get(o, "entries"), *it;
      cJSON_ArrayForEach(it, arr) ok = ok && u64(it, "seq") == ++seen && get(it, "prev") && get(it, "tx");
      ok = ok && (uint64_t)cJSON_GetArraySize(arr) <= limit && u64(o, "size") == N;
      bool last = is_null(o, "next");
      if (!last) from = u64(o, "next");
      ok = ok && (last || from == seen + 1);
      cJSON_Delete(o);
      if (last) break;
    }
    TR_CHECK(ok && seen == N, "ledger.entries limit %" PRIu64 ": every entry once, in order, next null at the end",
             limit);
  }
  TR_CHECK(tr_query_entries(S, N, 10, &o, &err) == 0 && cJSON_GetArraySize(get(o, "entries")) == 1 &&
               is_null(o, "next"), "entries from N: one entry, next null");
  cJSON_Delete(o);
  TR_CHECK(tr_query_entries(S, N - 1, 1, &o, &err) == 0 && u64(o, "next") == N, "entries N-1 limit 1: next N");
  cJSON_Delete(o);
  TR_CHECK(tr_query_entries(S, N + 5, 10, &o, &err) == 0 && cJSON_GetArraySize(get(o, "entries")) == 0 &&
               is_null(o, "next"), "entries past the end: empty, next null");
  cJSON_Delete(o);
  TR_CHECK(tr_query_entries(S, 0, 10, &o, &err) == TR_EARG && err.message[0], "entries from 0: bad argument");
  TR_CHECK(tr_query_entries(S, 1, 0, &o, &err) == TR_EARG, "entries limit 0: bad argument");
  TR_CHECK(tr_query_entries(S, 1, 1001, &o, &err) == TR_EARG, "entries limit 1001: bad argument");
}

static void test_tx(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  TR_CHECK(tr_query_tx_get(S, txids[seq_dist1], &o, &err) == 0, "tx.get");
  TR_CHECK_EQ_INT(u64(o, "seq"), seq_dist1, "tx.get seq");
  TR_CHECK_EQ_STR(str(o, "signer"), issuer.hex, "tx.get signer");
  TR_CHECK(str(o, "tx") && strstr(str(o, "tx"), "\"asset.distribute\"") != NULL, "tx.get tx bytes");
  TR_CHECK(get(o, "prev") == NULL && get(o, "hash") && get(o, "sig") && get(o, "time") && u64(o, "size") == N,
           "tx.get shape {seq, txid, hash, time, tx, sig, signer, size}");
  TR_CHECK_EQ_INT(cJSON_GetArraySize(o), 8, "tx.get member count");
  cJSON_Delete(o);
  uint8_t zero[32] = {0};
  TR_CHECK(tr_query_tx_get(S, zero, &o, &err) == TR_ENOT_FOUND, "tx.get unknown txid: not_found");
  tr_key_t ik = key_of(&issuer), zk = {{0}};
  char id[16];
  snprintf(id, sizeof id, "t%d", (int)(seq_create_bond - 1));
  TR_CHECK(tr_query_tx_find(S, &ik, id, &o, &err) == 0 && u64(o, "seq") == (uint64_t)seq_create_bond,
           "tx.find (issuer, %s) is the create", id);
  cJSON_Delete(o);
  tr_key_t nk = key_of(&node);
  TR_CHECK(tr_query_tx_find(S, &nk, "genesis", &o, &err) == 0 && u64(o, "seq") == 1, "tx.find genesis");
  cJSON_Delete(o);
  TR_CHECK(tr_query_tx_find(S, &ik, "nope", &o, &err) == TR_ENOT_FOUND, "tx.find unknown id: not_found");
  TR_CHECK(tr_query_tx_find(S, &zk, id, &o, &err) == TR_ENOT_FOUND, "tx.find unknown signer: not_found");
}

/* ---- accounts ---- */

static void test_account(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  tr_key_t k = key_of(&admin);
  TR_CHECK(tr_query_account(S, &k, &o, &err) == 0, "account.get admin");
  char *t = printed(o);
  char want[512];
  snprintf(want, sizeof want,
           "{\"account\":\"%s\",\"roles\":[\"admin\"],\"jurisdiction\":\"ZZ\",\"kyc\":true,\"frozen\":false,"
           "\"holdings\":[],\"size\":%" PRIu64 "}", admin.hex, N);
  TR_CHECK_EQ_STR(t, want, "admin account, exactly");
  free(t);
  cJSON_Delete(o);
  k = key_of(&agent);
  TR_CHECK(tr_query_account(S, &k, &o, &err) == 0, "account.get agent");
  t = printed(get(o, "roles"));
  TR_CHECK_EQ_STR(t, "[\"admin\",\"agent\",\"issuer\",\"investor\"]", "roles in contract order");
  free(t);
  TR_CHECK(cJSON_IsFalse(get(o, "kyc")) && strcmp(str(o, "jurisdiction"), "DE") == 0, "kyc false, DE");
  cJSON_Delete(o);
  k = key_of(&inv[0]);
  TR_CHECK(tr_query_account(S, &k, &o, &err) == 0, "account.get investor 0");
  t = printed(get(o, "holdings"));
  TR_CHECK_EQ_STR(t, "[{\"asset\":\"BOND-A\",\"units\":4503599627370400,\"frozen\":0},"
                     "{\"asset\":\"C1\",\"units\":1,\"frozen\":0},{\"asset\":\"LOAN.B\",\"units\":400,\"frozen\":0}]",
                  "holdings by asset, big units as digits");
  free(t);
  TR_CHECK(get(o, "holdings_truncated") == NULL, "not truncated");
  cJSON_Delete(o);
  k = key_of(&inv[1]);
  TR_CHECK(tr_query_account(S, &k, &o, &err) == 0, "account.get investor 1");
  const cJSON *h0 = cJSON_GetArrayItem(get(o, "holdings"), 0);
  TR_CHECK(u64(h0, "units") == 2000 && u64(h0, "frozen") == 500, "frozen units shown");
  cJSON_Delete(o);
  k = key_of(&node);
  TR_CHECK(tr_query_account(S, &k, &o, &err) == TR_ENOT_FOUND, "node key is no account: not_found");
}

static void test_history(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  for (int i = 0; i < INVESTORS; i++) {
    tr_key_t k = key_of(&inv[i]);
    for (uint64_t limit = 1; limit <= 3; limit++) {
      char cursor[32] = "";
      size_t seen = 0, pages = 0;
      bool ok = true, last = false;
      while (!last && ok && pages++ < 100) {
        tr_page_t pg = {pages == 1 ? NULL : cursor, limit};
        if (tr_query_account_history(S, &k, &pg, &o, &err) != 0) { ok = false; break; }
        const cJSON *it;
        cJSON_ArrayForEach(it, get(o, "entries")) {
          ok = ok && seen < hist_n[i] && u64(it, "seq") == hist[i][seen++] && str(it, "type") && str(it, "signer") &&
               str(it, "txid") && get(it, "time");
        }
        ok = ok && (uint64_t)cJSON_GetArraySize(get(o, "entries")) <= limit && u64(o, "size") == N;
        last = is_null(o, "next");
        if (!last) snprintf(cursor, sizeof cursor, "%s", str(o, "next") ? str(o, "next") : "?");
        cJSON_Delete(o);
      }
      TR_CHECK(ok && last && seen == hist_n[i], "account.history investor %d limit %" PRIu64 ": %zu entries, each once",
               i, limit, hist_n[i]);
    }
  }
  tr_key_t k = key_of(&inv[0]);
  tr_page_t pg = {NULL, 1};
  TR_CHECK(tr_query_account_history(S, &k, &pg, &o, &err) == 0, "history first page");
  const cJSON *e0 = cJSON_GetArrayItem(get(o, "entries"), 0);
  TR_CHECK_EQ_STR(str(e0, "type"), "account.open", "first entry type");
  TR_CHECK_EQ_STR(str(e0, "signer"), admin.hex, "first entry signer");
  TR_CHECK(hex32(str(e0, "txid"), (uint8_t[32]){0}), "txid hex");
  char want[32];
  snprintf(want, sizeof want, "%" PRIu64, hist[0][0]);
  TR_CHECK_EQ_STR(str(o, "next"), want, "cursor is the last seq in decimal");
  TR_CHECK_EQ_INT(cJSON_GetArraySize(e0), 5, "history entry has seq, time, txid, type, signer");
  cJSON_Delete(o);
  pg.limit = 1000;
  TR_CHECK(tr_query_account_history(S, &k, &pg, &o, &err) == 0 && is_null(o, "next") &&
               (size_t)cJSON_GetArraySize(get(o, "entries")) == hist_n[0], "one page holds all: next null");
  cJSON_Delete(o);
  pg.cursor = "9007199254740991";
  TR_CHECK(tr_query_account_history(S, &k, &pg, &o, &err) == 0 && cJSON_GetArraySize(get(o, "entries")) == 0 &&
               is_null(o, "next"), "cursor past the end: empty page");
  cJSON_Delete(o);
  static const char *const bad[] = {"", "0", "01", "-1", "1x", " 1", "1.0", "1e3", "9007199254740992",
                                    "99999999999999999999", "abc"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    pg.cursor = bad[i];
    err.message[0] = '\0';
    o = NULL;
    TR_CHECK(tr_query_account_history(S, &k, &pg, &o, &err) == TR_EARG && err.message[0] && o == NULL,
             "history cursor \"%s\": bad argument (%s)", bad[i], err.message);
  }
  pg.cursor = NULL;
  pg.limit = 0;
  TR_CHECK(tr_query_account_history(S, &k, &pg, &o, &err) == TR_EARG, "history limit 0: bad argument");
  pg.limit = 10;
  tr_key_t nk = key_of(&node);
  TR_CHECK(tr_query_account_history(S, &nk, &pg, &o, &err) == TR_ENOT_FOUND, "history of a non-account: not_found");
}

/* ---- assets ---- */

static void test_asset(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  TR_CHECK(tr_query_asset(S, "BOND-A", &o, &err) == 0, "asset.get BOND-A");
  char *t = printed(o);
  char want[2048];
  uint64_t issued = BIG_UNITS;
  for (int i = 1; i < INVESTORS; i++) issued += (uint64_t)(1000 * (i + 1));
  snprintf(want, sizeof want,
           "{\"asset\":\"BOND-A\",\"name\":\"Bond \xc3\xa9 A\",\"kind\":\"bond\",\"currency\":\"USD\","
           "\"principal\":9007199254740000,\"units\":9007199254740991,\"coupon_bps\":525,\"maturity\":\"2030-02-28\","
           "\"rating\":\"AA-\",\"risk_weight_pct\":1250,\"rules\":{\"jurisdictions\":[\"US\",\"GB\"],\"max_holders\":0,"
           "\"min_units\":0,\"lockup_until\":0},\"documents\":[{\"name\":\"term sheet\",\"sha256\":\"%s\"}],"
           "\"issuer\":\"%s\",\"status\":\"active\",\"issued\":%" PRIu64 ",\"holders\":%d,\"size\":%" PRIu64 "}",
           issuer.hex, issuer.hex, issued, INVESTORS, N);
  TR_CHECK_EQ_STR(t, want, "asset.get BOND-A, exactly");
  free(t);
  cJSON_Delete(o);
  TR_CHECK(tr_query_asset(S, "C1", &o, &err) == 0, "asset.get C1");
  TR_CHECK(u64(get(o, "rules"), "max_holders") == 5 && cJSON_GetArraySize(get(get(o, "rules"), "jurisdictions")) == 0 &&
               cJSON_IsArray(get(o, "documents")) && cJSON_GetArraySize(get(o, "documents")) == 0,
           "C1 rules and empty documents");
  cJSON_Delete(o);
  TR_CHECK(tr_query_asset(S, "NOPE", &o, &err) == TR_ENOT_FOUND, "asset.get unknown: not_found");

  static const char *const ids[] = {"BOND-A", "C1", "LOAN.B"};
  for (uint64_t limit = 1; limit <= 4; limit++) {
    char cursor[64] = "";
    size_t seen = 0, pages = 0;
    bool ok = true, last = false;
    while (!last && ok && pages++ < 10) {
      tr_page_t pg = {pages == 1 ? NULL : cursor, limit};
      if (tr_query_asset_list(S, &pg, &o, &err) != 0) { ok = false; break; }
      const cJSON *it;
      cJSON_ArrayForEach(it, get(o, "assets")) {
        ok = ok && seen < 3 && strcmp(str(it, "asset"), ids[seen++]) == 0 && get(it, "size") == NULL &&
             get(it, "issuer") && get(it, "holders");
      }
      last = is_null(o, "next");
      if (!last) snprintf(cursor, sizeof cursor, "%s", str(o, "next") ? str(o, "next") : "?");
      ok = ok && u64(o, "size") == N;
      cJSON_Delete(o);
    }
    TR_CHECK(ok && last && seen == 3, "asset.list limit %" PRIu64 ": every asset once by id", limit);
  }
  tr_page_t pg = {"BOND-A", 1};
  TR_CHECK(tr_query_asset_list(S, &pg, &o, &err) == 0 && strcmp(str(o, "next"), "C1") == 0, "asset.list next = last id");
  cJSON_Delete(o);
  pg.cursor = "ZZZ";
  TR_CHECK(tr_query_asset_list(S, &pg, &o, &err) == 0 && cJSON_GetArraySize(get(o, "assets")) == 0 &&
               is_null(o, "next"), "asset.list past the end: empty");
  cJSON_Delete(o);
  static const char *const bad[] = {"", "bond-a", "-A", "A B", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    pg.cursor = bad[i];
    TR_CHECK(tr_query_asset_list(S, &pg, &o, &err) == TR_EARG, "asset.list cursor \"%s\": bad argument", bad[i]);
  }
}

static int cmp_hex(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_holders(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  const char *sorted[INVESTORS];
  for (int i = 0; i < INVESTORS; i++) sorted[i] = inv[i].hex;
  qsort(sorted, INVESTORS, sizeof sorted[0], cmp_hex);
  uint64_t issued = BIG_UNITS;
  for (int i = 1; i < INVESTORS; i++) issued += (uint64_t)(1000 * (i + 1));
  for (uint64_t limit = 1; limit <= 8; limit++) {
    char cursor[80] = "";
    size_t seen = 0, pages = 0;
    uint64_t sum = 0;
    bool ok = true, last = false;
    while (!last && ok && pages++ < 20) {
      tr_page_t pg = {pages == 1 ? NULL : cursor, limit};
      if (tr_query_asset_holders(S, "BOND-A", &pg, &o, &err) != 0) { ok = false; break; }
      const cJSON *it;
      cJSON_ArrayForEach(it, get(o, "holders")) {
        ok = ok && seen < INVESTORS && strcmp(str(it, "account"), sorted[seen++]) == 0;
        sum += u64(it, "units");
      }
      last = is_null(o, "next");
      if (!last) snprintf(cursor, sizeof cursor, "%s", str(o, "next") ? str(o, "next") : "?");
      ok = ok && u64(o, "size") == N;
      cJSON_Delete(o);
    }
    TR_CHECK(ok && last && seen == INVESTORS && sum == issued,
             "asset.holders limit %" PRIu64 ": every holder once by account, units sum to issued", limit);
  }
  tr_page_t pg = {NULL, 100};
  TR_CHECK(tr_query_asset_holders(S, "LOAN.B", &pg, &o, &err) == 0 && cJSON_GetArraySize(get(o, "holders")) == 2,
           "LOAN.B has 2 holders");
  cJSON_Delete(o);
  TR_CHECK(tr_query_asset_holders(S, "NOPE", &pg, &o, &err) == TR_ENOT_FOUND, "holders of unknown asset: not_found");
  char upper[65];
  snprintf(upper, sizeof upper, "%s", inv[0].hex);
  for (char *p = upper; *p; p++)
    if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 32);
  const char *bad[] = {"", "00", upper, "zz00000000000000000000000000000000000000000000000000000000000000",
                       "000000000000000000000000000000000000000000000000000000000000000"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    pg.cursor = bad[i];
    TR_CHECK(tr_query_asset_holders(S, "BOND-A", &pg, &o, &err) == TR_EARG, "holders cursor %zu: bad argument", i);
  }
}

static void test_payouts(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  /* Everything of BOND-A in one page, as the reference for the paged walks. */
  tr_page_t pg = {NULL, 1000};
  TR_CHECK(tr_query_asset_payouts(S, "BOND-A", 0, &pg, &o, &err) == 0, "asset.payouts all");
  cJSON *all = cJSON_Duplicate(get(o, "payouts"), 1);
  TR_CHECK(is_null(o, "next"), "one page: next null");
  cJSON_Delete(o);
  int n_all = cJSON_GetArraySize(all);
  TR_CHECK_EQ_INT(n_all, 2 * INVESTORS, "two distributions to 7 holders (zero allocations recorded)");
  uint64_t sum1 = 0, sum2 = 0, prev_d = 0;
  char prev_a[65] = "";
  bool ordered = true;
  const cJSON *it;
  cJSON_ArrayForEach(it, all) {
    uint64_t d = u64(it, "distribution");
    const char *a = str(it, "account");
    ordered = ordered && a && (d > prev_d || (d == prev_d && strcmp(a, prev_a) > 0));
    prev_d = d;
    snprintf(prev_a, sizeof prev_a, "%s", a ? a : "");
    if (d == (uint64_t)seq_dist1) sum1 += u64(it, "amount");
    if (d == (uint64_t)seq_dist2) sum2 += u64(it, "amount");
    ordered = ordered && cJSON_GetArraySize(it) == 3;
  }
  TR_CHECK(ordered, "ordered by (distribution, account), {distribution, account, amount}");
  TR_CHECK(sum1 == 1000 && sum2 == 7, "allocations sum to the amounts (%" PRIu64 ", %" PRIu64 ")", sum1, sum2);
  for (uint64_t limit = 1; limit <= 5; limit++) {
    char cursor[100] = "";
    int seen = 0, pages = 0;
    bool ok = true, last = false;
    while (!last && ok && pages++ < 50) {
      tr_page_t p = {pages == 1 ? NULL : cursor, limit};
      if (tr_query_asset_payouts(S, "BOND-A", 0, &p, &o, &err) != 0) { ok = false; break; }
      cJSON_ArrayForEach(it, get(o, "payouts")) ok = ok && seen < n_all && cJSON_Compare(it, cJSON_GetArrayItem(all, seen++), 1);
      last = is_null(o, "next");
      if (!last) snprintf(cursor, sizeof cursor, "%s", str(o, "next") ? str(o, "next") : "?");
      cJSON_Delete(o);
    }
    TR_CHECK(ok && last && seen == n_all, "asset.payouts limit %" PRIu64 ": every payout once, in order", limit);
  }
  for (uint64_t limit = 1; limit <= 3; limit++) {
    char cursor[100] = "";
    int seen = 0, pages = 0;
    bool ok = true, last = false;
    while (!last && ok && pages++ < 50) {
      tr_page_t p = {pages == 1 ? NULL : cursor, limit};
      if (tr_query_asset_payouts(S, "BOND-A", (uint64_t)seq_dist2, &p, &o, &err) != 0) { ok = false; break; }
      cJSON_ArrayForEach(it, get(o, "payouts")) {
        ok = ok && seen < INVESTORS && cJSON_Compare(it, cJSON_GetArrayItem(all, INVESTORS + seen++), 1);
      }
      last = is_null(o, "next");
      if (!last) snprintf(cursor, sizeof cursor, "%s", str(o, "next") ? str(o, "next") : "?");
      cJSON_Delete(o);
    }
    TR_CHECK(ok && last && seen == INVESTORS, "payouts of distribution 2, limit %" PRIu64 ": that distribution only",
             limit);
  }
  pg.limit = 1;
  TR_CHECK(tr_query_asset_payouts(S, "BOND-A", 0, &pg, &o, &err) == 0, "payouts first page of 1");
  char want[100];
  snprintf(want, sizeof want, "%" PRIu64 ":%s", (uint64_t)seq_dist1, str(cJSON_GetArrayItem(all, 0), "account"));
  TR_CHECK_EQ_STR(str(o, "next"), want, "payout cursor is <seq>:<account>");
  cJSON_Delete(o);
  pg.limit = 100;
  TR_CHECK(tr_query_asset_payouts(S, "LOAN.B", 0, &pg, &o, &err) == 0 && cJSON_GetArraySize(get(o, "payouts")) == 2,
           "LOAN.B payouts: 2");
  cJSON_Delete(o);
  TR_CHECK(tr_query_asset_payouts(S, "NOPE", 0, &pg, &o, &err) == TR_ENOT_FOUND, "payouts unknown asset: not_found");
  TR_CHECK(tr_query_asset_payouts(S, "BOND-A", (uint64_t)seq_dist_loan, &pg, &o, &err) == TR_ENOT_FOUND,
           "another asset's distribution: not_found");
  TR_CHECK(tr_query_asset_payouts(S, "BOND-A", (uint64_t)seq_freeze, &pg, &o, &err) == TR_ENOT_FOUND,
           "a seq that is no distribution: not_found");
  TR_CHECK(tr_query_asset_payouts(S, "BOND-A", N + 100, &pg, &o, &err) == TR_ENOT_FOUND,
           "a seq past the journal: not_found");
  char other[100];
  snprintf(other, sizeof other, "%" PRIu64 ":%s", (uint64_t)seq_dist1, inv[0].hex);
  pg.cursor = other;
  TR_CHECK(tr_query_asset_payouts(S, "BOND-A", (uint64_t)seq_dist2, &pg, &o, &err) == TR_EARG,
           "cursor of another distribution: bad argument");
  char b1[100], b2[100], b3[100], b4[100];
  snprintf(b1, sizeof b1, "0:%s", inv[0].hex);
  snprintf(b2, sizeof b2, "%" PRIu64 "%s", (uint64_t)seq_dist1, inv[0].hex);
  snprintf(b3, sizeof b3, "%" PRIu64 ":%s:", (uint64_t)seq_dist1, inv[0].hex);
  snprintf(b4, sizeof b4, "0%" PRIu64 ":%s", (uint64_t)seq_dist1, inv[0].hex);
  const char *bad[] = {"", "5", "5:", ":", b1, b2, b3, b4};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    pg.cursor = bad[i];
    TR_CHECK(tr_query_asset_payouts(S, "BOND-A", 0, &pg, &o, &err) == TR_EARG, "payouts cursor %zu: bad argument", i);
  }
  cJSON_Delete(all);
}

/* ---- risk ---- */

static void test_exposure(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  tr_key_t k = key_of(&inv[0]);
  TR_CHECK(tr_query_risk_exposure(S, &k, &o, &err) == 0, "risk.exposure investor 0");
  /* Expected values by exact integer arithmetic (python):
   *   BOND-A: held 2^52 - 96 = 4503599627370400
   *     exposure = 9007199254740000 * 4503599627370400 // 9007199254740991 = 4503599627369904
   *     rwa      = 4503599627369904 * 1250 // 100 = 56294995342123800
   *   C1:     exposure = 10^15 * 1 // 3 = 333333333333333, rwa = 333333333333333 * 50 // 100 = 166666666666666
   *   LOAN.B: exposure = 1000000 * 400 // 1000 = 400000, rwa = 400000
   *   totals: EUR 400000 / 400000; USD 4836932960703237 / 56461662008790466 */
  char *t = printed(o);
  char want[2048];
  snprintf(want, sizeof want,
           "{\"account\":\"%s\",\"holdings\":["
           "{\"asset\":\"BOND-A\",\"currency\":\"USD\",\"units\":4503599627370400,\"exposure\":\"4503599627369904\","
           "\"risk_weight_pct\":1250,\"rwa\":\"56294995342123800\"},"
           "{\"asset\":\"C1\",\"currency\":\"USD\",\"units\":1,\"exposure\":\"333333333333333\",\"risk_weight_pct\":50,"
           "\"rwa\":\"166666666666666\"},"
           "{\"asset\":\"LOAN.B\",\"currency\":\"EUR\",\"units\":400,\"exposure\":\"400000\",\"risk_weight_pct\":100,"
           "\"rwa\":\"400000\"}],"
           "\"totals\":[{\"currency\":\"EUR\",\"exposure\":\"400000\",\"rwa\":\"400000\"},"
           "{\"currency\":\"USD\",\"exposure\":\"4836932960703237\",\"rwa\":\"56461662008790466\"}],"
           "\"size\":%" PRIu64 "}", inv[0].hex, N);
  TR_CHECK_EQ_STR(t, want, "risk.exposure investor 0, exactly");
  free(t);
  cJSON_Delete(o);
  k = key_of(&admin);
  TR_CHECK(tr_query_risk_exposure(S, &k, &o, &err) == 0 && cJSON_GetArraySize(get(o, "holdings")) == 0 &&
               cJSON_GetArraySize(get(o, "totals")) == 0, "no holdings: empty lists");
  cJSON_Delete(o);
  k = key_of(&node);
  TR_CHECK(tr_query_risk_exposure(S, &k, &o, &err) == TR_ENOT_FOUND, "risk.exposure of a non-account: not_found");
}

/* ---- proofs ---- */

static bool path_of(const cJSON *o, uint8_t path[][32], size_t *n) {
  const cJSON *arr = get(o, "path"), *it;
  *n = 0;
  if (!cJSON_IsArray(arr)) return false;
  cJSON_ArrayForEach(it, arr) {
    if (*n == TR_MERKLE_PATH_MAX || !cJSON_IsString(it) || !hex32(it->valuestring, path[*n])) return false;
    (*n)++;
  }
  return true;
}

static void test_proofs(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  uint8_t path[TR_MERKLE_PATH_MAX][32], root[32], root2[32], leaf[32];
  size_t n;
  int bad_incl = 0, bad_cons = 0, checked = 0;
  for (uint64_t size = 1; size <= N; size++) {
    mth(0, size, root);
    for (uint64_t seq = 1; seq <= size; seq++) {
      checked++;
      if (tr_query_proof(S, seq, size, &o, &err) != 0) { bad_incl++; continue; }
      bool ok = u64(o, "seq") == seq && u64(o, "size") == size && hex32(str(o, "leaf"), leaf) &&
                memcmp(leaf, hashes[seq], 32) == 0 && path_of(o, path, &n) &&
                tr_merkle_verify_inclusion(leaf, seq - 1, size, (const uint8_t(*)[32])path, n, root) == 0;
      if (ok && n > 0) { /* a flipped bit must fail */
        path[0][0] ^= 1;
        ok = tr_merkle_verify_inclusion(leaf, seq - 1, size, (const uint8_t(*)[32])path, n, root) != 0;
      }
      if (!ok) bad_incl++;
      cJSON_Delete(o);
    }
    for (uint64_t from = 1; from <= size; from++) {
      mth(0, from, root2);
      if (tr_query_consistency(S, from, size, &o, &err) != 0) { bad_cons++; continue; }
      bool ok = u64(o, "from") == from && u64(o, "to") == size && u64(o, "size") == N && path_of(o, path, &n) &&
                (from != size || n == 0) &&
                tr_merkle_verify_consistency(from, size, root2, root, (const uint8_t(*)[32])path, n) == 0;
      if (!ok) bad_cons++;
      cJSON_Delete(o);
    }
  }
  TR_CHECK(bad_incl == 0, "ledger.proof verifies for all %d (seq, size) pairs (%d bad)", checked, bad_incl);
  TR_CHECK(bad_cons == 0, "ledger.consistency verifies for every 1 <= from <= to <= %" PRIu64 " (%d bad)", N, bad_cons);
  TR_CHECK(tr_query_proof(S, 1, N, &o, &err) == 0 && u64(o, "size") == N && cJSON_GetArraySize(o) == 4,
           "proof result is {seq, size, leaf, path}");
  cJSON_Delete(o);
  err.message[0] = '\0';
  TR_CHECK(tr_query_proof(S, 1, N + 1, &o, &err) == TR_EARG && strstr(err.message, "size beyond the journal"),
           "proof size > journal: \"%s\"", err.message);
  TR_CHECK(tr_query_proof(S, 0, N, &o, &err) == TR_EARG && err.message[0], "proof seq 0: bad argument");
  TR_CHECK(tr_query_proof(S, 3, 2, &o, &err) == TR_EARG, "proof seq > size: bad argument");
  TR_CHECK(tr_query_consistency(S, 0, 2, &o, &err) == TR_EARG, "consistency from 0: bad argument");
  TR_CHECK(tr_query_consistency(S, 3, 2, &o, &err) == TR_EARG, "consistency from > to: bad argument");
  TR_CHECK(tr_query_consistency(S, 1, N + 1, &o, &err) == TR_EARG && err.message[0],
           "consistency to > journal: \"%s\"", err.message);
}

/* One row added to checkpoints as sqlite3 would (the schema stops UPDATE
 * and DELETE, not INSERT), queried, then removed again. */
static int checkpoint_with_row(uint64_t size, const uint8_t root[32], const char *note, const char *vkey,
                               tr_query_error_t *err) {
  cJSON *o = NULL;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(tr_store_db(S), "INSERT INTO checkpoints (size, root, time, note) VALUES (?1, ?2, 1, ?3)",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
    sqlite3_bind_blob(st, 2, root, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, note, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) return 1;
  err->message[0] = '\0';
  rc = tr_query_checkpoint(S, vkey, &o, err);
  cJSON_Delete(o);
  char sql[96];
  snprintf(sql, sizeof sql, "DELETE FROM checkpoints WHERE size = %llu", (unsigned long long)size);
  if (sqlite3_exec(tr_store_db(S), sql, NULL, NULL, NULL) != SQLITE_OK) return 1;
  return rc;
}

static void test_checkpoint(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  char vkey[TR_NOTE_VKEY_BUF_BYTES], note[TR_CHECKPOINT_NOTE_BUF_BYTES], notes[2][TR_CHECKPOINT_NOTE_BUF_BYTES];
  size_t len;
  TR_CHECK(tr_note_vkey_format(CHAIN, node.pk, vkey, sizeof vkey) == 0, "node vkey");
  TR_CHECK(tr_query_checkpoint(S, vkey, &o, &err) == TR_ENOT_FOUND, "no checkpoint: not_found");
  TR_CHECK(tr_query_checkpoint(S, "vk", &o, &err) == TR_EARG, "no usable verifier key: nothing is served");
  uint8_t root[32], zero[32] = {0};
  uint64_t sizes[] = {3, 5};
  for (int i = 0; i < 2; i++) {
    mth(0, sizes[i], root);
    TR_CHECK(tr_checkpoint_sign(CHAIN, sizes[i], root, node.sk, notes[i], sizeof notes[i], &len) == 0, "signed %d", i);
    tr_store_begin(S);
    TR_CHECK(tr_store_checkpoint_put(S, sizes[i], root, T0, notes[i]) == 0, "checkpoint %d stored", i);
    tr_store_commit(S);
  }
  TR_CHECK(tr_query_checkpoint(S, vkey, &o, &err) == 0, "ledger.checkpoint");
  TR_CHECK(str(o, "checkpoint") && strcmp(str(o, "checkpoint"), notes[1]) == 0, "the latest note text");
  TR_CHECK_EQ_INT(u64(o, "size"), 5, "size is the checkpoint's tree size");
  TR_CHECK_EQ_STR(str(o, "vkey"), vkey, "vkey passed through");
  TR_CHECK_EQ_INT(cJSON_GetArraySize(o), 3, "{checkpoint, size, vkey}");
  cJSON_Delete(o);

  /* Rows the node did not sign, or that do not match the store, are never
   * served (issue #12, finding 10). */
  TR_CHECK(sqlite3_exec(tr_store_db(S), "DROP TRIGGER checkpoints_append_only_d", NULL, NULL, NULL) == SQLITE_OK,
           "test only: rows may be deleted again");
  uint8_t root6[32], root7[32];
  mth(0, 6, root6);
  mth(0, 7, root7);
  static const struct { int size; const char *mention, *what; } bad[] = {
    {12, "not a note signed", "a bogus note beyond the head (the report: size 12, head 7)"},
    {6, "not a note signed", "a note signed by another key"},
    {6, "not a note signed", "a note signed by the node key for another origin"},
    {6, "size or root column", "the root column differs from the note"},
    {6, "size or root column", "the note is for another size than its row"},
    {60, "beyond the journal", "a node-signed note beyond the journal"},
    {6, "Merkle root", "a node-signed note with a root that is not the tree's"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const uint8_t *col = root6;
    int rc = 0;
    switch (i) {
    case 0: snprintf(note, sizeof note, "bogus"); col = zero; break;
    case 1: rc = tr_checkpoint_sign(CHAIN, 6, root6, admin.sk, note, sizeof note, &len); break;
    case 2: rc = tr_checkpoint_sign("other.example/chain", 6, root6, node.sk, note, sizeof note, &len); break;
    case 3: rc = tr_checkpoint_sign(CHAIN, 6, root6, node.sk, note, sizeof note, &len); col = zero; break;
    case 4: rc = tr_checkpoint_sign(CHAIN, 7, root7, node.sk, note, sizeof note, &len); col = root7; break;
    case 5: rc = tr_checkpoint_sign(CHAIN, 60, zero, node.sk, note, sizeof note, &len); col = zero; break;
    default: rc = tr_checkpoint_sign(CHAIN, 6, zero, node.sk, note, sizeof note, &len); col = zero; break;
    }
    int got = rc == 0 ? checkpoint_with_row((uint64_t)bad[i].size, col, note, vkey, &err) : rc;
    TR_CHECK(got == TR_ECORRUPT && strstr(err.message, bad[i].mention), "%s: refused, \"%s\"", bad[i].what,
             err.message);
  }
  TR_CHECK(tr_checkpoint_sign(CHAIN, 6, root6, node.sk, note, sizeof note, &len) == 0 &&
               checkpoint_with_row(6, root6, note, vkey, &err) == 0,
           "a row the node signed for the tree at its size is served (%s)", err.message);
  TR_CHECK(tr_query_checkpoint(S, vkey, &o, &err) == 0 && u64(o, "size") == 5, "the last good row is served again");
  cJSON_Delete(o);
}

static void test_receipt(void) {
  uint8_t txid[32], hash[32];
  memset(txid, 0xab, 32);
  memset(hash, 0x01, 32);
  cJSON *o = tr_query_receipt_json(UINT64_C(9007199254740991), T0, txid, hash, 1,
                                   "{\"holdings\":[{\"asset\":\"A\",\"units\":0}],\"issued\":5}");
  char *t = printed(o);
  TR_CHECK_EQ_STR(t,
                  "{\"seq\":9007199254740991,\"txid\":\"abababababababababababababababababababababababababababababababab\","
                  "\"hash\":\"0101010101010101010101010101010101010101010101010101010101010101\",\"time\":1700000000000,"
                  "\"duplicate\":true,\"effects\":{\"holdings\":[{\"asset\":\"A\",\"units\":0}],\"issued\":5}}",
                  "receipt, exactly");
  free(t);
  cJSON_Delete(o);
  o = tr_query_receipt_json(2, T0, txid, hash, 0,
                            "{\"holdings\":[{\"units\":9007199254740991,\"frozen\":1e15}],\"issued\":1000000000000000,"
                            "\"distribution\":{\"seq\":2,\"count\":1,\"amount\":999999999999999}}");
  t = printed(get(o, "effects"));
  TR_CHECK_EQ_STR(t, "{\"holdings\":[{\"units\":9007199254740991,\"frozen\":1000000000000000}],"
                     "\"issued\":1000000000000000,\"distribution\":{\"seq\":2,\"count\":1,\"amount\":999999999999999}}",
                  "effects re-printed with every integer as plain digits");
  TR_CHECK(cJSON_IsFalse(get(o, "duplicate")), "duplicate false");
  free(t);
  cJSON_Delete(o);
  o = tr_query_receipt_json(2, T0, txid, hash, 0, "not json");
  TR_CHECK(o == NULL, "unparsable effects: NULL");
}

/* A result's "size" is the snapshot's journal size even as the journal grows. */
static void test_size_tracks(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  int64_t q = submit(&issuer, "asset.update", "\"asset\":\"C1\",\"rating\":\"CCC\"");
  TR_CHECK(q == (int64_t)N + 1, "one more entry");
  N++;
  TR_CHECK(tr_query_asset(S, "C1", &o, &err) == 0 && u64(o, "size") == N && strcmp(str(o, "rating"), "CCC") == 0,
           "asset.get sees the update, size N+1");
  cJSON_Delete(o);
}

/* More than TR_QUERY_ACCOUNT_HOLDINGS_MAX holdings: the list stops at the
 * bound with "holdings_truncated", risk totals still count every holding. */
static void test_truncation(void) {
  cJSON *o = NULL;
  tr_query_error_t err;
  const int extra = TR_QUERY_ACCOUNT_HOLDINGS_MAX + 1;
  bool ok = true;
  for (int i = 0; i < extra && ok; i++) {
    ok = submit(&issuer, "asset.create",
                "\"asset\":\"T%04d\",\"name\":\"t\",\"kind\":\"other\",\"currency\":\"JPY\",\"principal\":1000,"
                "\"units\":10,\"coupon_bps\":0,\"maturity\":\"2031-01-01\",\"rating\":\"B\",\"risk_weight_pct\":100,"
                "\"rules\":{}", i) > 0 &&
         submit(&issuer, "asset.issue", "\"asset\":\"T%04d\",\"to\":\"%s\",\"units\":1", i, inv[6].hex) > 0;
  }
  TR_CHECK(ok, "%d more assets issued to investor 6", extra);
  tr_key_t k = key_of(&inv[6]);
  TR_CHECK(tr_query_account(S, &k, &o, &err) == 0, "account.get with %d holdings", extra + 1);
  const cJSON *h = get(o, "holdings");
  TR_CHECK(cJSON_GetArraySize(h) == TR_QUERY_ACCOUNT_HOLDINGS_MAX && cJSON_IsTrue(get(o, "holdings_truncated")),
           "first %d holdings and holdings_truncated", TR_QUERY_ACCOUNT_HOLDINGS_MAX);
  TR_CHECK(strcmp(str(cJSON_GetArrayItem(h, 0), "asset"), "BOND-A") == 0 &&
               strcmp(str(cJSON_GetArrayItem(h, TR_QUERY_ACCOUNT_HOLDINGS_MAX - 1), "asset"), "T0998") == 0,
           "they are the first by asset id");
  cJSON_Delete(o);
  TR_CHECK(tr_query_risk_exposure(S, &k, &o, &err) == 0, "risk.exposure with %d holdings", extra + 1);
  TR_CHECK(cJSON_GetArraySize(get(o, "holdings")) == TR_QUERY_ACCOUNT_HOLDINGS_MAX &&
               cJSON_IsTrue(get(o, "holdings_truncated")), "exposure list truncated too");
  const cJSON *jpy = cJSON_GetArrayItem(get(o, "totals"), 0);
  TR_CHECK(strcmp(str(jpy, "currency"), "JPY") == 0 && strcmp(str(jpy, "exposure"), "100100") == 0 &&
               strcmp(str(jpy, "rwa"), "100100") == 0, "JPY totals count all 1001 holdings");
  cJSON_Delete(o);
  tr_page_t pg = {NULL, 1000};
  TR_CHECK(tr_query_asset_list(S, &pg, &o, &err) == 0 && cJSON_GetArraySize(get(o, "assets")) == 1000 &&
               str(o, "next") && strcmp(str(o, "next"), "T0996") == 0, "asset.list page of 1000, next T0996");
  cJSON_Delete(o);
  pg.cursor = "T0996";
  TR_CHECK(tr_query_asset_list(S, &pg, &o, &err) == 0 && cJSON_GetArraySize(get(o, "assets")) == 4 &&
               is_null(o, "next"), "second page: the last 4, next null");
  cJSON_Delete(o);
}

/* Merkle nodes are kept at every TR_MERKLE_STRATUM-th level only, the rest
 * folded on demand (tr_store_merkle_get).  Past 512 entries every fold is
 * exercised up to level 9.  Every root to 600 and a sample beyond, and
 * proofs at the edges of powers of two, against a tree computed here from
 * the entry hashes alone. */
#define STRATA_MAX 4096
static uint8_t strata_leaves[STRATA_MAX][32];

static void test_tree_strata(void) {
  tr_query_error_t err;
  cJSON *o = NULL;
  uint64_t size = 0;
  TR_CHECK(tr_store_head(S, &size, NULL, NULL) == 0 && size > 600 && size <= STRATA_MAX,
           "the tests above left a journal past 512 entries (%" PRIu64 ")", size);
  if (size > STRATA_MAX) size = STRATA_MAX;
  int bad_entries = 0, bad_roots = 0, bad_incl = 0, bad_cons = 0, checked = 0;
  for (uint64_t seq = 1; seq <= size; seq++) {
    tr_entry_t e;
    if (tr_store_entry_get(S, seq, &e) == 0) {
      memcpy(strata_leaves[seq - 1], e.hash, 32);
      tr_entry_clear(&e);
    } else {
      bad_entries++;
    }
  }
  TR_CHECK(bad_entries == 0, "every entry's hash read (%d not)", bad_entries);
  for (uint64_t n = 1; n <= size; n += n < 600 ? 1 : 97) { /* every size to 600, then a sample */
    uint8_t want[32], got[32];
    mth_of(strata_leaves, 0, n, want);
    if (tr_store_merkle_root(S, n, got) != 0 || memcmp(got, want, 32) != 0) bad_roots++;
  }
  const uint64_t edges[] = {1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025,
                            size - 1, size};
  for (size_t a = 0; a < ARRAY_LEN(edges); a++) {
    uint8_t root[32], from_root[32], path[TR_MERKLE_PATH_MAX][32], leaf[32];
    size_t n;
    uint64_t to = edges[a];
    mth_of(strata_leaves, 0, to, root);
    for (size_t b = 0; b <= a; b++) {
      uint64_t x = edges[b];
      checked++;
      bool ok = tr_query_proof(S, x, to, &o, &err) == 0 && hex32(str(o, "leaf"), leaf) && path_of(o, path, &n) &&
                tr_merkle_verify_inclusion(leaf, x - 1, to, (const uint8_t(*)[32])path, n, root) == 0;
      cJSON_Delete(o);
      if (!ok) bad_incl++;
      mth_of(strata_leaves, 0, x, from_root);
      ok = tr_query_consistency(S, x, to, &o, &err) == 0 && path_of(o, path, &n) &&
           tr_merkle_verify_consistency(x, to, from_root, root, (const uint8_t(*)[32])path, n) == 0;
      cJSON_Delete(o);
      if (!ok) bad_cons++;
    }
  }
  TR_CHECK(bad_roots == 0, "roots of sizes 1..600 and a sample to %" PRIu64 " fold right from the kept levels (%d bad)",
           size, bad_roots);
  TR_CHECK(bad_incl == 0 && bad_cons == 0,
           "inclusion and consistency proofs at the strata's edges verify (%d pairs; %d, %d bad)", checked, bad_incl,
           bad_cons);
  sqlite3 *db = tr_store_db(S);
  sqlite3_stmt *st = NULL;
  long long rows = -1, off = -1, want_rows = 0;
  if (sqlite3_prepare_v2(db, "SELECT count(*), sum(level % ?1 != 0) FROM merkle_nodes", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_bind_int(st, 1, TR_MERKLE_STRATUM) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    rows = sqlite3_column_int64(st, 0);
    off = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  for (unsigned level = TR_MERKLE_STRATUM; level < 64; level += TR_MERKLE_STRATUM) want_rows += (long long)(size >> level);
  TR_CHECK(rows == want_rows && off == 0, "merkle_nodes keeps the levels of its strata only: %lld rows (%lld), %lld others",
           rows, want_rows, off);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  char msg[128];
  TR_CHECK(tr_store_open(NULL, TR_STORE_MEMORY, &S, msg, sizeof msg) == 0, "memory store opens");
  test_integers();
  test_empty();
  scenario();
  test_head_entries();
  test_tx();
  test_account();
  test_history();
  test_asset();
  test_holders();
  test_payouts();
  test_exposure();
  test_proofs();
  test_checkpoint();
  test_receipt();
  test_size_tracks();
  test_truncation();
  test_tree_strata();
  tr_store_close(S);
  return tr_test_done();
}
