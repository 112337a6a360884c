/* test_ledger.c — the ledger state machine (PROTOCOL.md §2–§4, §6):
 * every refusal reason steps 4–8 can give, every rule boundary, the order of
 * checks, receipts and their effects, distributions, recovery, status moves,
 * and the known-answer vectors of §2–§3.
 *
 * Each test opens a fresh in-memory world (genesis + a few accounts), builds
 * tx JSON with snprintf, decodes it with tr_tx_decode, signs it with a fixed
 * key and applies it with tr_ledger_apply inside a write transaction.  Time
 * is the clock argument, so every time rule is exact.  A refused tx must
 * change nothing: the whole database (journal and derived state) is hashed
 * before and after.
 */
#include <cJSON.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kat_vectors.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_ledger.h"
#include "tr_store.h"
#include "tr_tx.h"
#include "tr_test.h"

#define CHAIN "test.example/ledger"
#define T0 1700000000000ULL
#define NOW0 (T0 + 1000)

/* ------------------------------------------------------------------------ */
/* Keys                                                                      */

typedef struct {
  uint8_t sk[64];
  tr_key_t pk;
  char hex[65];
} who_t;

static who_t NODE, ADMIN, ADMIN2, ISSUER, ISSUER2, AGENT, ALICE, BOB, CAROL, DAVE, EVE, FRANK, GHOST, NEWKEY,
    NEWKEY2;

static void mkkey(who_t *k, uint8_t tag) {
  uint8_t seed[32];
  for (int i = 0; i < 32; i++) seed[i] = (uint8_t)(tag * 7 + i);
  crypto_sign_seed_keypair(k->pk.b, k->sk, seed);
  tr_hex_encode(k->pk.b, 32, k->hex);
}

static void keys_init(void) {
  mkkey(&NODE, 1), mkkey(&ADMIN, 2), mkkey(&ADMIN2, 3), mkkey(&ISSUER, 4), mkkey(&ISSUER2, 5);
  mkkey(&AGENT, 6), mkkey(&ALICE, 7), mkkey(&BOB, 8), mkkey(&CAROL, 9), mkkey(&DAVE, 10);
  mkkey(&EVE, 11), mkkey(&FRANK, 12), mkkey(&GHOST, 13), mkkey(&NEWKEY, 14), mkkey(&NEWKEY2, 15);
}

static int cmp_who(const void *a, const void *b) {
  return memcmp((*(const who_t *const *)a)->pk.b, (*(const who_t *const *)b)->pk.b, 32);
}

/* ------------------------------------------------------------------------ */
/* World: a store after genesis, and the last tx submitted                  */

typedef struct {
  tr_store_t *s;
  tr_ledger_t l;
  uint64_t now;             /* clock_ms given to the next apply */
  unsigned next_id;
  const char *id;           /* when set, the next tx uses this id instead of t<n> */
  const char *expires;      /* when set, the next tx gets "expires": this */
  char bytes[TR_TX_BYTES_MAX + 1];
  size_t len;
  uint8_t sig[64];
  int rc;
  tr_receipt_t rcpt;
  tr_refusal_t ref;
} world_t;

/* A store in memory, or a new file at path. */
static world_t *world_open_at(const char *path) {
  world_t *w = calloc(1, sizeof *w);
  char err[256] = "";
  int rc = tr_store_open(path, path ? TR_STORE_CREATE : TR_STORE_MEMORY, &w->s, err, sizeof err);
  if (rc == 0) rc = tr_ledger_genesis(w->s, CHAIN, NODE.sk, &ADMIN.pk, T0);
  if (rc == 0) rc = tr_ledger_load(&w->l, w->s);
  if (rc != 0) {
    fprintf(stderr, "cannot open world: %s %s\n", tr_strerror(rc), err);
    exit(2);
  }
  w->now = NOW0;
  return w;
}

static world_t *world_open_bare(void) { return world_open_at(NULL); }

static void world_close(world_t *w) {
  tr_receipt_clear(&w->rcpt);
  tr_store_close(w->s);
  free(w);
}

/* Decodes, signs and applies w->bytes in its own write transaction. */
static int apply_bytes(world_t *w, const who_t *signer) {
  tr_tx_t *tx = calloc(1, sizeof *tx);
  tr_tx_error_t err = {""};
  tr_receipt_clear(&w->rcpt);
  memset(&w->ref, 0, sizeof w->ref);
  int rc = tr_tx_decode(w->bytes, w->len, tx, &err);
  if (rc != 0) {
    printf("# decode refused %s: %s\n", w->bytes, err.detail);
  } else {
    tr_tx_sign(w->bytes, w->len, signer->sk, w->sig);
    rc = tr_store_begin(w->s);
    if (rc == 0) {
      rc = tr_ledger_apply(&w->l, tx, w->bytes, w->len, w->sig, w->now, &w->rcpt, &w->ref);
      if (rc == 0 || tr_err_is_refusal(rc)) {
        int c = tr_store_commit(w->s);
        if (c != 0) rc = c;
      } else {
        tr_store_rollback(w->s);
      }
    }
  }
  free(tx);
  return w->rc = rc;
}

static void build(world_t *w, const who_t *signer, const char *type, const char *fmt, va_list ap) {
  char body[TR_TX_BYTES_MAX], id[16], exp[48] = "";
  vsnprintf(body, sizeof body, fmt, ap);
  snprintf(id, sizeof id, "t%u", ++w->next_id);
  if (w->expires) snprintf(exp, sizeof exp, ",\"expires\":%s", w->expires);
  int n = snprintf(w->bytes, sizeof w->bytes, "{\"type\":\"%s\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"%s\"%s%s%s}",
                   type, CHAIN, signer->hex, w->id ? w->id : id, exp, body[0] ? "," : "", body);
  w->len = (size_t)n;
  w->id = NULL;
  w->expires = NULL;
}

static void build_tx(world_t *w, const who_t *signer, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void build_tx(world_t *w, const who_t *signer, const char *type, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  build(w, signer, type, fmt, ap);
  va_end(ap);
}

static int submit(world_t *w, const who_t *signer, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int submit(world_t *w, const who_t *signer, const char *type, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  build(w, signer, type, fmt, ap);
  va_end(ap);
  return apply_bytes(w, signer);
}

/* A digest of every table: journal, Merkle nodes, meta and derived state. */
static void state_digest(world_t *w, uint8_t out[32]) {
  static const char *const tables[] = {"entries", "merkle_nodes", "meta", "accounts", "assets", "holdings",
                                       "distributions", "payouts", "account_entries", "receipts", "checkpoints",
                                       "history_progress"};
  crypto_hash_sha256_state h;
  crypto_hash_sha256_init(&h);
  sqlite3 *db = tr_store_db(w->s);
  for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY 1, 2", tables[t]);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
      fprintf(stderr, "digest: %s\n", sqlite3_errmsg(db));
      exit(2);
    }
    crypto_hash_sha256_update(&h, (const uint8_t *)sql, strlen(sql));
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(st); c++) {
        uint8_t type = (uint8_t)sqlite3_column_type(st, c);
        const void *b = sqlite3_column_blob(st, c);
        uint32_t n = (uint32_t)sqlite3_column_bytes(st, c);
        crypto_hash_sha256_update(&h, &type, 1);
        crypto_hash_sha256_update(&h, (const uint8_t *)&n, sizeof n);
        if (n) crypto_hash_sha256_update(&h, b, n);
      }
    }
    sqlite3_finalize(st);
  }
  crypto_hash_sha256_final(&h, out);
}

static uint64_t head_size(world_t *w) {
  uint64_t size = 0;
  tr_store_head(w->s, &size, NULL, NULL);
  return size;
}

/* Accepted, silently (a failure is a test point). */
#define DO(w, signer, type, ...)                                                                      \
  do {                                                                                                \
    if (submit((w), (signer), (type), __VA_ARGS__) != 0)                                              \
      TR_CHECK(0, "line %d: setup %s refused: %s (%s)", __LINE__, (type), tr_err_reason((w)->rc) ?    \
               tr_err_reason((w)->rc) : tr_strerror((w)->rc), (w)->ref.detail);                       \
  } while (0)

/* Accepted, as a test point. */
#define OK(w, what, signer, type, ...)                                                                \
  do {                                                                                                \
    int rc_ = submit((w), (signer), (type), __VA_ARGS__);                                             \
    TR_CHECK(rc_ == 0 && !(w)->rcpt.duplicate, "%s: accepted (got %s: %s)", (what),                   \
             rc_ == 0 ? "ok" : tr_err_reason(rc_) ? tr_err_reason(rc_) : tr_strerror(rc_), (w)->ref.detail); \
  } while (0)

/* Refused with exactly `reason`, and nothing in the database changed. */
static void refused_check(world_t *w, int line, const char *what, int want, const uint8_t before[32],
                          uint64_t size_before) {
  uint8_t after[32];
  state_digest(w, after);
  const char *got = w->rc == 0 ? "accepted" : tr_err_reason(w->rc) ? tr_err_reason(w->rc) : tr_strerror(w->rc);
  TR_CHECK(w->rc == want && w->ref.code == want, "line %d: %s: refused %s (got %s: %s)", line, what,
           tr_err_reason(want), got, w->ref.detail);
  TR_CHECK(memcmp(before, after, 32) == 0 && head_size(w) == size_before,
           "line %d: %s: the refusal changed nothing", line, what);
}

#define REFUSE(w, reason, what, signer, type, ...)                                                    \
  do {                                                                                                \
    uint8_t before_[32];                                                                              \
    state_digest((w), before_);                                                                       \
    uint64_t size_ = head_size(w);                                                                    \
    submit((w), (signer), (type), __VA_ARGS__);                                                       \
    refused_check((w), __LINE__, (what), (reason), before_, size_);                                   \
  } while (0)

/* ---- world building ---- */

static void open_account(world_t *w, const who_t *k, const char *roles, const char *jur, bool kyc) {
  DO(w, &ADMIN, "account.open", "\"account\":\"%s\",\"roles\":%s,\"jurisdiction\":\"%s\",\"kyc\":%s", k->hex,
     roles, jur, kyc ? "true" : "false");
}

/* Genesis, then: ISSUER, ISSUER2 (issuers, US), AGENT, ALICE/BOB/CAROL/DAVE
 * (investors, US), EVE (investor, no kyc), FRANK (investor, GB). */
static world_t *world_open_accounts(world_t *w) {
  open_account(w, &ISSUER, "[\"issuer\"]", "US", true);
  open_account(w, &ISSUER2, "[\"issuer\"]", "US", true);
  open_account(w, &AGENT, "[\"agent\"]", "US", true);
  open_account(w, &ALICE, "[\"investor\"]", "US", true);
  open_account(w, &BOB, "[\"investor\"]", "US", true);
  open_account(w, &CAROL, "[\"investor\"]", "US", true);
  open_account(w, &DAVE, "[\"investor\"]", "US", true);
  open_account(w, &EVE, "[\"investor\"]", "US", false);
  open_account(w, &FRANK, "[\"investor\"]", "GB", true);
  return w;
}
static world_t *world_open(void) { return world_open_accounts(world_open_bare()); }

static void create_asset(world_t *w, const who_t *issuer, const char *id, uint64_t units, const char *rules) {
  DO(w, issuer, "asset.create",
     "\"asset\":\"%s\",\"name\":\"Loan %s\",\"kind\":\"term_loan\",\"currency\":\"EUR\",\"principal\":1000000,"
     "\"units\":%llu,\"coupon_bps\":450,\"maturity\":\"2031-06-30\",\"rating\":\"BBB\",\"risk_weight_pct\":100,"
     "\"rules\":%s",
     id, id, (unsigned long long)units, rules);
}

static void issue(world_t *w, const char *asset, const who_t *to, uint64_t units) {
  DO(w, &ISSUER, "asset.issue", "\"asset\":\"%s\",\"to\":\"%s\",\"units\":%llu", asset, to->hex,
     (unsigned long long)units);
}

static void set_status(world_t *w, const who_t *signer, const char *asset, const char *status) {
  DO(w, signer, "asset.status", "\"asset\":\"%s\",\"status\":\"%s\"", asset, status);
}

static void freeze_account(world_t *w, const who_t *k, bool frozen) {
  DO(w, &ADMIN, "account.update", "\"account\":\"%s\",\"frozen\":%s", k->hex, frozen ? "true" : "false");
}

static tr_holding_t holding(world_t *w, const char *asset, const who_t *k) {
  tr_holding_t h = {0, 0};
  tr_store_holding_get(w->s, asset, &k->pk, &h);
  return h;
}

static tr_asset_t asset_get(world_t *w, const char *id) {
  tr_asset_t a;
  memset(&a, 0, sizeof a);
  if (tr_store_asset_get(w->s, id, &a) != 0) TR_CHECK(0, "asset %s exists", id);
  tr_asset_clear(&a);
  return a;
}

static tr_account_t account_get(world_t *w, const who_t *k) {
  tr_account_t a;
  memset(&a, 0, sizeof a);
  if (tr_store_account_get(w->s, &k->pk, &a) != 0) TR_CHECK(0, "account %.16s… exists", k->hex);
  return a;
}

static uint64_t payout(world_t *w, uint64_t dist, const who_t *k) {
  sqlite3_stmt *st = NULL;
  uint64_t v = UINT64_MAX;
  sqlite3_prepare_v2(tr_store_db(w->s), "SELECT amount FROM payouts WHERE distribution = ?1 AND account = ?2", -1,
                     &st, NULL);
  sqlite3_bind_int64(st, 1, (sqlite3_int64)dist);
  sqlite3_bind_blob(st, 2, k->pk.b, 32, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) v = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static uint64_t sql_u64(world_t *w, const char *sql) {
  sqlite3_stmt *st = NULL;
  uint64_t v = UINT64_MAX;
  if (sqlite3_prepare_v2(tr_store_db(w->s), sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* Compares effects JSON as parsed JSON (object member order does not matter). */
static void check_effects(world_t *w, const char *want, const char *what) {
  cJSON *a = w->rcpt.effects_json ? cJSON_Parse(w->rcpt.effects_json) : NULL, *b = cJSON_Parse(want);
  TR_CHECK(a && b && cJSON_Compare(a, b, true), "%s: effects %s (want %s)", what,
           w->rcpt.effects_json ? w->rcpt.effects_json : "(none)", want);
  cJSON_Delete(a);
  cJSON_Delete(b);
}

#define NORULES "{}"
#define ASSET_A "LOAN-A"
#define ASSET_B "LOAN-B"

/* Transfer body helper. */
#define XFER "\"asset\":\"%s\",\"to\":\"%s\",\"units\":%llu"
#define U(x) ((unsigned long long)(x))

static void holding_json(char *out, size_t n, const char *asset, const who_t *k, uint64_t units, uint64_t frozen) {
  snprintf(out, n, "{\"asset\":\"%s\",\"account\":\"%s\",\"units\":%llu,\"frozen\":%llu}", asset, k->hex, U(units),
           U(frozen));
}

/* ------------------------------------------------------------------------ */
/* Step 4 and 5                                                              */

/* Duplicates keep the exact bytes of the first submission. */
static void test_duplicate(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  issue(w, ASSET_A, &ALICE, 100);
  w->expires = "1700000002000";
  w->id = "xfer-1";
  OK(w, "transfer alice→bob 40", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(40));
  char first[TR_TX_BYTES_MAX + 1];
  size_t first_len = w->len;
  memcpy(first, w->bytes, w->len + 1);
  uint64_t seq = w->rcpt.seq, time = w->rcpt.time;
  uint8_t hash[32], txid[32];
  memcpy(hash, w->rcpt.hash, 32);
  memcpy(txid, w->rcpt.txid, 32);
  char *effects = strdup(w->rcpt.effects_json);

  /* The state moves on: alice ends at 0, time passes beyond `expires`. */
  w->now = T0 + 10000;
  DO(w, &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(60));
  uint8_t before[32], after[32];
  state_digest(w, before);
  uint64_t size = head_size(w);

  memcpy(w->bytes, first, first_len + 1);
  w->len = first_len;
  int rc = apply_bytes(w, &ALICE);
  state_digest(w, after);
  TR_CHECK(rc == 0 && w->rcpt.duplicate, "same bytes again: receipt with duplicate=true (rc %d)", rc);
  TR_CHECK(w->rcpt.seq == seq && w->rcpt.time == time, "duplicate: same seq %llu and time",
           (unsigned long long)w->rcpt.seq);
  TR_CHECK(memcmp(w->rcpt.hash, hash, 32) == 0 && memcmp(w->rcpt.txid, txid, 32) == 0, "duplicate: same hash and txid");
  TR_CHECK_EQ_STR(w->rcpt.effects_json, effects, "duplicate: same effects");
  TR_CHECK(memcmp(before, after, 32) == 0 && head_size(w) == size, "duplicate: nothing appended or changed");
  free(effects);

  /* tx.check of the duplicate: no reasons, its seq. */
  tr_tx_t *tx = calloc(1, sizeof *tx);
  tr_refusal_t reasons[TR_REFUSALS_MAX];
  size_t n = 99;
  uint64_t dup = 0;
  tr_tx_decode(first, first_len, tx, NULL);
  rc = tr_ledger_check(&w->l, tx, w->now, reasons, &n, &dup);
  TR_CHECK(rc == 0 && n == 0 && dup == seq, "tx.check of a duplicate: no reasons, seq %llu", (unsigned long long)dup);
  free(tx);

  /* Same (signer, id), different bytes: id_conflict; even when also expired. */
  w->id = "xfer-1";
  REFUSE(w, TR_EID_CONFLICT, "same (signer, id), other bytes", &ALICE, "transfer", XFER, ASSET_A, CAROL.hex, U(1));
  w->id = "xfer-1";
  w->expires = "1";
  REFUSE(w, TR_EID_CONFLICT, "id_conflict comes before expired", &ALICE, "transfer", XFER, ASSET_A, CAROL.hex, U(1));
  /* The same id under another signer is fine. */
  w->id = "xfer-1";
  OK(w, "same id, other signer", &BOB, "transfer", XFER, ASSET_A, CAROL.hex, U(1));
  world_close(w);
}

static void test_expired(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  issue(w, ASSET_A, &ALICE, 100);
  w->now = T0 + 5000;
  w->expires = "1700000004999";
  REFUSE(w, TR_EEXPIRED, "expires one ms before the entry time", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  w->expires = "1700000005000";
  OK(w, "expires == entry time", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  /* The entry time is max(head time, clock): a clock behind the head does not help. */
  w->now = T0 + 1;
  w->expires = "1700000004999";
  REFUSE(w, TR_EEXPIRED, "clock behind the head: entry time is the head time", &ALICE, "transfer", XFER, ASSET_A,
         BOB.hex, U(1));
  OK(w, "clock behind the head", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  TR_CHECK_EQ_INT(w->rcpt.time, T0 + 5000, "entry time = max(head time, clock)");
  /* Expired comes before the signer checks (step 5 before 6). */
  w->expires = "1";
  REFUSE(w, TR_EEXPIRED, "expired and unknown signer", &GHOST, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  world_close(w);
}

/* ------------------------------------------------------------------------ */
/* Steps 6 and 7                                                             */

static void test_not_found(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  issue(w, ASSET_A, &ALICE, 100);
  REFUSE(w, TR_ENOT_FOUND, "unknown signer", &GHOST, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  REFUSE(w, TR_ENOT_FOUND, "unknown asset (transfer)", &ALICE, "transfer", XFER, "NOPE", BOB.hex, U(1));
  REFUSE(w, TR_ENOT_FOUND, "unknown asset (issue)", &ISSUER, "asset.issue", XFER, "NOPE", BOB.hex, U(1));
  REFUSE(w, TR_ENOT_FOUND, "unknown asset (status)", &ADMIN, "asset.status", "\"asset\":\"NOPE\",\"status\":\"paused\"");
  REFUSE(w, TR_ENOT_FOUND, "unknown account (update)", &ADMIN, "account.update",
         "\"account\":\"%s\",\"kyc\":true", GHOST.hex);
  REFUSE(w, TR_ENOT_FOUND, "unknown account (recover)", &ADMIN, "account.recover",
         "\"account\":\"%s\",\"to\":\"%s\",\"reason\":\"lost\"", GHOST.hex, NEWKEY.hex);
  REFUSE(w, TR_ENOT_FOUND, "unknown account (freeze)", &AGENT, "holding.freeze",
         "\"asset\":\"%s\",\"account\":\"%s\",\"units\":0", ASSET_A, GHOST.hex);
  REFUSE(w, TR_ENOT_FOUND, "unknown from (force)", &AGENT, "transfer.force",
         "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":1,\"reason\":\"court order\"", ASSET_A, GHOST.hex,
         BOB.hex);
  REFUSE(w, TR_ENOT_FOUND, "unknown from (redeem)", &ISSUER, "asset.redeem",
         "\"asset\":\"%s\",\"from\":\"%s\",\"units\":1,\"amount\":0", ASSET_A, GHOST.hex);
  REFUSE(w, TR_ENOT_FOUND, "unknown receiver (transfer)", &ALICE, "transfer", XFER, ASSET_A, GHOST.hex, U(1));
  REFUSE(w, TR_ENOT_FOUND, "unknown receiver (issue)", &ISSUER, "asset.issue", XFER, ASSET_A, GHOST.hex, U(1));
  REFUSE(w, TR_ENOT_FOUND, "unknown receiver (force)", &AGENT, "transfer.force",
         "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":1,\"reason\":\"court order\"", ASSET_A, ALICE.hex,
         GHOST.hex);
  /* The node key signs only genesis: it is no account. */
  REFUSE(w, TR_ENOT_FOUND, "node key as signer", &NODE, "account.open",
         "\"account\":\"%s\",\"roles\":[],\"jurisdiction\":\"US\",\"kyc\":true", GHOST.hex);
  world_close(w);
}

static void test_exists(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  REFUSE(w, TR_EEXISTS, "account.open of an existing account", &ADMIN, "account.open",
         "\"account\":\"%s\",\"roles\":[\"investor\"],\"jurisdiction\":\"US\",\"kyc\":true", ALICE.hex);
  REFUSE(w, TR_EEXISTS, "account.open of the node key", &ADMIN, "account.open",
         "\"account\":\"%s\",\"roles\":[\"investor\"],\"jurisdiction\":\"US\",\"kyc\":true", NODE.hex);
  REFUSE(w, TR_EEXISTS, "asset.create of an existing asset", &ISSUER2, "asset.create",
         "\"asset\":\"%s\",\"name\":\"x\",\"kind\":\"bond\",\"currency\":\"USD\",\"principal\":1,\"units\":1,"
         "\"coupon_bps\":0,\"maturity\":\"2030-01-01\",\"rating\":\"A\",\"risk_weight_pct\":0,\"rules\":{}",
         ASSET_A);
  REFUSE(w, TR_EEXISTS, "recover to an existing account", &AGENT, "account.recover",
         "\"account\":\"%s\",\"to\":\"%s\",\"reason\":\"lost\"", ALICE.hex, BOB.hex);
  REFUSE(w, TR_EEXISTS, "recover to the node key", &AGENT, "account.recover",
         "\"account\":\"%s\",\"to\":\"%s\",\"reason\":\"lost\"", ALICE.hex, NODE.hex);
  REFUSE(w, TR_EEXISTS, "recover to the admin", &ADMIN, "account.recover",
         "\"account\":\"%s\",\"to\":\"%s\",\"reason\":\"lost\"", ALICE.hex, ADMIN.hex);
  world_close(w);
}

static void test_unauthorized(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  issue(w, ASSET_A, &ALICE, 100);
  REFUSE(w, TR_EUNAUTHORIZED, "investor opens an account", &ALICE, "account.open",
         "\"account\":\"%s\",\"roles\":[],\"jurisdiction\":\"US\",\"kyc\":true", GHOST.hex);
  REFUSE(w, TR_EUNAUTHORIZED, "agent opens an account (admin only)", &AGENT, "account.open",
         "\"account\":\"%s\",\"roles\":[],\"jurisdiction\":\"US\",\"kyc\":true", GHOST.hex);
  REFUSE(w, TR_EUNAUTHORIZED, "agent updates an account (admin only)", &AGENT, "account.update",
         "\"account\":\"%s\",\"kyc\":false", ALICE.hex);
  REFUSE(w, TR_EUNAUTHORIZED, "investor recovers", &BOB, "account.recover",
         "\"account\":\"%s\",\"to\":\"%s\",\"reason\":\"lost\"", ALICE.hex, NEWKEY.hex);
  REFUSE(w, TR_EUNAUTHORIZED, "investor forces a transfer", &BOB, "transfer.force",
         "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":1,\"reason\":\"x\"", ASSET_A, ALICE.hex, BOB.hex);
  REFUSE(w, TR_EUNAUTHORIZED, "issuer freezes a holding (admin or agent)", &ISSUER, "holding.freeze",
         "\"asset\":\"%s\",\"account\":\"%s\",\"units\":1", ASSET_A, ALICE.hex);
  REFUSE(w, TR_EUNAUTHORIZED, "investor creates an asset", &ALICE, "asset.create",
         "\"asset\":\"NEW\",\"name\":\"x\",\"kind\":\"bond\",\"currency\":\"USD\",\"principal\":1,\"units\":1,"
         "\"coupon_bps\":0,\"maturity\":\"2030-01-01\",\"rating\":\"A\",\"risk_weight_pct\":0,\"rules\":{}");
  REFUSE(w, TR_EUNAUTHORIZED, "admin issues (needs role issuer)", &ADMIN, "asset.issue", XFER, ASSET_A, BOB.hex, U(1));
  REFUSE(w, TR_EUNAUTHORIZED, "another issuer issues", &ISSUER2, "asset.issue", XFER, ASSET_A, BOB.hex, U(1));
  REFUSE(w, TR_EUNAUTHORIZED, "another issuer redeems", &ISSUER2, "asset.redeem",
         "\"asset\":\"%s\",\"from\":\"%s\",\"units\":1,\"amount\":0", ASSET_A, ALICE.hex);
  REFUSE(w, TR_EUNAUTHORIZED, "another issuer distributes", &ISSUER2, "asset.distribute",
         "\"asset\":\"%s\",\"amount\":10,\"kind\":\"interest\"", ASSET_A);
  REFUSE(w, TR_EUNAUTHORIZED, "another issuer updates", &ISSUER2, "asset.update", "\"asset\":\"%s\",\"rating\":\"C\"",
         ASSET_A);
  REFUSE(w, TR_EUNAUTHORIZED, "another issuer changes status", &ISSUER2, "asset.status",
         "\"asset\":\"%s\",\"status\":\"matured\"", ASSET_A);
  REFUSE(w, TR_EUNAUTHORIZED, "investor changes status", &ALICE, "asset.status",
         "\"asset\":\"%s\",\"status\":\"paused\"", ASSET_A);
  REFUSE(w, TR_EUNAUTHORIZED, "admin makes an issuer move", &ADMIN, "asset.status",
         "\"asset\":\"%s\",\"status\":\"matured\"", ASSET_A);
  REFUSE(w, TR_EUNAUTHORIZED, "issuer pauses", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"paused\"",
         ASSET_A);
  /* Role before asset existence (step 7 order). */
  REFUSE(w, TR_EUNAUTHORIZED, "investor issues on an unknown asset", &ALICE, "asset.issue", XFER, "NOPE", BOB.hex,
         U(1));
  /* Ownership before a named `from` exists. */
  REFUSE(w, TR_EUNAUTHORIZED, "another issuer redeems from an unknown account", &ISSUER2, "asset.redeem",
         "\"asset\":\"%s\",\"from\":\"%s\",\"units\":1,\"amount\":0", ASSET_A, GHOST.hex);
  world_close(w);
}

static void test_frozen(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  issue(w, ASSET_A, &ALICE, 100);
  issue(w, ASSET_A, &BOB, 100);
  freeze_account(w, &ALICE, true);
  REFUSE(w, TR_EFROZEN, "frozen signer", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  REFUSE(w, TR_EFROZEN, "frozen signer and unknown asset: frozen (step 6 before 7)", &ALICE, "transfer", XFER, "NOPE",
         BOB.hex, U(1));
  REFUSE(w, TR_EFROZEN, "transfer to a frozen receiver", &BOB, "transfer", XFER, ASSET_A, ALICE.hex, U(1));
  REFUSE(w, TR_EFROZEN, "issue to a frozen receiver", &ISSUER, "asset.issue", XFER, ASSET_A, ALICE.hex, U(1));
  OK(w, "force to a frozen receiver", &AGENT, "transfer.force",
     "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":10,\"reason\":\"court order\"", ASSET_A, BOB.hex,
     ALICE.hex);
  OK(w, "force from a frozen account", &AGENT, "transfer.force",
     "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":110,\"reason\":\"court order\"", ASSET_A, ALICE.hex,
     CAROL.hex);
  TR_CHECK(holding(w, ASSET_A, &ALICE).units == 0 && holding(w, ASSET_A, &CAROL).units == 110 &&
               holding(w, ASSET_A, &BOB).units == 90,
           "force moved the units");
  freeze_account(w, &ISSUER, true);
  REFUSE(w, TR_EFROZEN, "frozen issuer", &ISSUER, "asset.issue", XFER, ASSET_A, BOB.hex, U(1));
  freeze_account(w, &AGENT, true);
  REFUSE(w, TR_EFROZEN, "frozen agent", &AGENT, "holding.freeze", "\"asset\":\"%s\",\"account\":\"%s\",\"units\":1",
         ASSET_A, BOB.hex);
  world_close(w);
}

static void test_not_verified(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  REFUSE(w, TR_ENOT_VERIFIED, "issue to a receiver without kyc", &ISSUER, "asset.issue", XFER, ASSET_A, EVE.hex, U(1));
  issue(w, ASSET_A, &ALICE, 100);
  REFUSE(w, TR_ENOT_VERIFIED, "transfer to a receiver without kyc", &ALICE, "transfer", XFER, ASSET_A, EVE.hex, U(1));
  OK(w, "force to a receiver without kyc is still checked", &AGENT, "transfer.force",
     "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":1,\"reason\":\"x\"", ASSET_A, ALICE.hex, BOB.hex);
  REFUSE(w, TR_ENOT_VERIFIED, "force to a receiver without kyc", &AGENT, "transfer.force",
         "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":1,\"reason\":\"x\"", ASSET_A, ALICE.hex, EVE.hex);
  DO(w, &ADMIN, "account.update", "\"account\":\"%s\",\"kyc\":false", ISSUER.hex);
  REFUSE(w, TR_ENOT_VERIFIED, "issuer without kyc creates an asset", &ISSUER, "asset.create",
         "\"asset\":\"NEW\",\"name\":\"x\",\"kind\":\"bond\",\"currency\":\"USD\",\"principal\":1,\"units\":1,"
         "\"coupon_bps\":0,\"maturity\":\"2030-01-01\",\"rating\":\"A\",\"risk_weight_pct\":0,\"rules\":{}");
  REFUSE(w, TR_ENOT_VERIFIED, "issuer without kyc issues", &ISSUER, "asset.issue", XFER, ASSET_A, BOB.hex, U(1));
  REFUSE(w, TR_ENOT_VERIFIED, "issuer without kyc distributes", &ISSUER, "asset.distribute",
         "\"asset\":\"%s\",\"amount\":10,\"kind\":\"interest\"", ASSET_A);
  /* Ownership: not the issuer is unauthorized before kyc is looked at. */
  DO(w, &ADMIN, "account.update", "\"account\":\"%s\",\"kyc\":false", ISSUER2.hex);
  REFUSE(w, TR_EUNAUTHORIZED, "other issuer without kyc: unauthorized first", &ISSUER2, "asset.issue", XFER, ASSET_A,
         BOB.hex, U(1));
  /* asset.status is not an issuer-only type: a kyc-less issuer may still move it. */
  OK(w, "issuer without kyc moves status", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"matured\"", ASSET_A);
  world_close(w);
}

/* ------------------------------------------------------------------------ */
/* Step 8: rules and boundaries                                              */

static void test_jurisdiction(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, "{\"jurisdictions\":[\"US\",\"DE\"]}");
  REFUSE(w, TR_EJURISDICTION, "issue to GB holder", &ISSUER, "asset.issue", XFER, ASSET_A, FRANK.hex, U(1));
  issue(w, ASSET_A, &ALICE, 10);
  REFUSE(w, TR_EJURISDICTION, "transfer to GB holder", &ALICE, "transfer", XFER, ASSET_A, FRANK.hex, U(1));
  REFUSE(w, TR_EJURISDICTION, "force to GB holder", &AGENT, "transfer.force",
         "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":1,\"reason\":\"x\"", ASSET_A, ALICE.hex, FRANK.hex);
  DO(w, &ADMIN, "account.update", "\"account\":\"%s\",\"jurisdiction\":\"DE\"", FRANK.hex);
  OK(w, "transfer to DE holder", &ALICE, "transfer", XFER, ASSET_A, FRANK.hex, U(1));
  /* An empty list admits any. */
  create_asset(w, &ISSUER, ASSET_B, 1000, "{\"jurisdictions\":[]}");
  DO(w, &ADMIN, "account.update", "\"account\":\"%s\",\"jurisdiction\":\"JP\"", FRANK.hex);
  OK(w, "empty jurisdictions: any", &ISSUER, "asset.issue", XFER, ASSET_B, FRANK.hex, U(1));
  /* The admin's "ZZ" is just a code. */
  REFUSE(w, TR_EJURISDICTION, "ZZ not in list", &ISSUER, "asset.issue", XFER, ASSET_A, ADMIN.hex, U(1));
  world_close(w);
}

static void test_lockup(void) {
  world_t *w = world_open();
  const uint64_t L = T0 + 50000;
  char rules[96];
  snprintf(rules, sizeof rules, "{\"lockup_until\":%llu}", U(L));
  create_asset(w, &ISSUER, ASSET_A, 1000, rules);
  issue(w, ASSET_A, &ALICE, 100); /* issue is not locked up */
  OK(w, "issue during lockup", &ISSUER, "asset.issue", XFER, ASSET_A, BOB.hex, U(5));
  OK(w, "force during lockup", &AGENT, "transfer.force",
     "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":1,\"reason\":\"x\"", ASSET_A, BOB.hex, CAROL.hex);
  w->now = L - 1;
  REFUSE(w, TR_ELOCKUP, "transfer one ms before lockup_until", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  w->now = L;
  OK(w, "transfer at lockup_until", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  TR_CHECK_EQ_INT(w->rcpt.time, L, "entry time is the clock");
  world_close(w);
}

static void test_min_units(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, "{\"min_units\":10}");
  REFUSE(w, TR_EMIN_UNITS, "issue one below min_units", &ISSUER, "asset.issue", XFER, ASSET_A, ALICE.hex, U(9));
  OK(w, "issue exactly min_units", &ISSUER, "asset.issue", XFER, ASSET_A, ALICE.hex, U(10));
  OK(w, "issue 1 to an existing holder (new holding 11 ≥ 10)", &ISSUER, "asset.issue", XFER, ASSET_A, ALICE.hex, U(1));
  issue(w, ASSET_A, &ALICE, 19); /* alice 30 */
  REFUSE(w, TR_EMIN_UNITS, "transfer leaving the sender 9", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(21));
  REFUSE(w, TR_EMIN_UNITS, "transfer giving the receiver 9", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(9));
  OK(w, "transfer leaving the sender exactly 10", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(20));
  OK(w, "transfer of the whole holding (remainder 0)", &ALICE, "transfer", XFER, ASSET_A, CAROL.hex, U(10));
  OK(w, "transfer of 1 to a holder with 10 (sender keeps 19)", &BOB, "transfer", XFER, ASSET_A, CAROL.hex, U(1));
  /* force: the receiver's minimum applies, the sender's remainder does not. */
  REFUSE(w, TR_EMIN_UNITS, "force giving the receiver 5", &AGENT, "transfer.force",
         "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":5,\"reason\":\"x\"", ASSET_A, BOB.hex, DAVE.hex);
  OK(w, "force leaving the sender 1", &AGENT, "transfer.force",
     "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":18,\"reason\":\"x\"", ASSET_A, BOB.hex, DAVE.hex);
  TR_CHECK_EQ_INT(holding(w, ASSET_A, &BOB).units, 1, "force left bob 1 unit");
  /* redeem ignores min_units */
  OK(w, "redeem leaving 1", &ISSUER, "asset.redeem", "\"asset\":\"%s\",\"from\":\"%s\",\"units\":17,\"amount\":0",
     ASSET_A, DAVE.hex);
  world_close(w);
}

static void test_max_holders(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, "{\"max_holders\":3}");
  issue(w, ASSET_A, &ALICE, 100);
  issue(w, ASSET_A, &BOB, 100);
  OK(w, "the 3rd holder (limit 3)", &ISSUER, "asset.issue", XFER, ASSET_A, CAROL.hex, U(100));
  REFUSE(w, TR_EMAX_HOLDERS, "a 4th holder by issue", &ISSUER, "asset.issue", XFER, ASSET_A, DAVE.hex, U(1));
  REFUSE(w, TR_EMAX_HOLDERS, "a 4th holder by partial transfer", &ALICE, "transfer", XFER, ASSET_A, DAVE.hex, U(99));
  REFUSE(w, TR_EMAX_HOLDERS, "a 4th holder by partial force", &AGENT, "transfer.force",
         "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":99,\"reason\":\"x\"", ASSET_A, ALICE.hex, DAVE.hex);
  OK(w, "issue to an existing holder at the limit", &ISSUER, "asset.issue", XFER, ASSET_A, CAROL.hex, U(1));
  OK(w, "transfer to an existing holder at the limit", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  OK(w, "transfer of a whole holding to a new holder at the limit", &ALICE, "transfer", XFER, ASSET_A, DAVE.hex, U(99));
  TR_CHECK_EQ_INT(asset_get(w, ASSET_A).holders, 3, "holders after = 3 + 1 − 1");
  OK(w, "force of a whole holding to a new holder at the limit", &AGENT, "transfer.force",
     "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":101,\"reason\":\"x\"", ASSET_A, CAROL.hex, ALICE.hex);
  TR_CHECK_EQ_INT(asset_get(w, ASSET_A).holders, 3, "holders after force = 3");
  /* Redeeming a whole holding frees a slot. */
  DO(w, &ISSUER, "asset.redeem", "\"asset\":\"%s\",\"from\":\"%s\",\"units\":101,\"amount\":0", ASSET_A, ALICE.hex);
  TR_CHECK_EQ_INT(asset_get(w, ASSET_A).holders, 2, "holders after whole redemption = 2");
  OK(w, "new holder after a slot freed", &ISSUER, "asset.issue", XFER, ASSET_A, CAROL.hex, U(1));
  /* max_holders 0 means the v1 maximum: no refusal for a few holders. */
  create_asset(w, &ISSUER, ASSET_B, 1000, "{\"max_holders\":0}");
  issue(w, ASSET_B, &ALICE, 1), issue(w, ASSET_B, &BOB, 1), issue(w, ASSET_B, &CAROL, 1);
  OK(w, "max_holders 0: a 4th holder", &ISSUER, "asset.issue", XFER, ASSET_B, DAVE.hex, U(1));
  /* asset.update lowering the limit: existing holdings stay, new holders refused. */
  OK(w, "rules lowered below the holder count", &ISSUER, "asset.update", "\"asset\":\"%s\",\"rules\":{\"max_holders\":2}",
     ASSET_B);
  TR_CHECK_EQ_INT(asset_get(w, ASSET_B).holders, 4, "holdings stay after a rules update");
  OK(w, "a move between holders is still fine", &ALICE, "transfer", XFER, ASSET_B, BOB.hex, U(1));
  REFUSE(w, TR_EMAX_HOLDERS, "a new holder over the lowered limit", &BOB, "transfer", XFER, ASSET_B, ALICE.hex, U(1));
  world_close(w);
}

static void test_insufficient_units(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  REFUSE(w, TR_EINSUFFICIENT_UNITS, "distribute with issued 0", &ISSUER, "asset.distribute",
         "\"asset\":\"%s\",\"amount\":10,\"kind\":\"interest\"", ASSET_A);
  REFUSE(w, TR_EINSUFFICIENT_UNITS, "transfer with no holding", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  issue(w, ASSET_A, &ALICE, 100);
  OK(w, "freeze 60 of 100", &AGENT, "holding.freeze", "\"asset\":\"%s\",\"account\":\"%s\",\"units\":60", ASSET_A,
     ALICE.hex);
  char want[512], h1[256];
  holding_json(h1, sizeof h1, ASSET_A, &ALICE, 100, 60);
  snprintf(want, sizeof want, "{\"holdings\":[%s]}", h1);
  check_effects(w, want, "freeze effects");
  REFUSE(w, TR_EINSUFFICIENT_UNITS, "transfer 41 with 40 available", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(41));
  OK(w, "transfer 40 with 40 available", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(40));
  REFUSE(w, TR_EINSUFFICIENT_UNITS, "freeze more than held", &AGENT, "holding.freeze",
         "\"asset\":\"%s\",\"account\":\"%s\",\"units\":61", ASSET_A, ALICE.hex);
  OK(w, "freeze exactly held", &ADMIN, "holding.freeze", "\"asset\":\"%s\",\"account\":\"%s\",\"units\":60", ASSET_A,
     ALICE.hex);
  REFUSE(w, TR_EINSUFFICIENT_UNITS, "force more than held", &AGENT, "transfer.force",
         "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":61,\"reason\":\"x\"", ASSET_A, ALICE.hex, BOB.hex);
  OK(w, "force ignores freezes", &AGENT, "transfer.force",
     "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":20,\"reason\":\"x\"", ASSET_A, ALICE.hex, BOB.hex);
  tr_holding_t h = holding(w, ASSET_A, &ALICE);
  TR_CHECK(h.units == 40 && h.frozen == 40, "force: sender frozen = min(frozen, held after) (%llu/%llu)", U(h.units),
           U(h.frozen));
  REFUSE(w, TR_EINSUFFICIENT_UNITS, "redeem more than held", &ISSUER, "asset.redeem",
         "\"asset\":\"%s\",\"from\":\"%s\",\"units\":41,\"amount\":0", ASSET_A, ALICE.hex);
  OK(w, "redeem ignores freezes", &ISSUER, "asset.redeem", "\"asset\":\"%s\",\"from\":\"%s\",\"units\":15,\"amount\":7",
     ASSET_A, ALICE.hex);
  h = holding(w, ASSET_A, &ALICE);
  TR_CHECK(h.units == 25 && h.frozen == 25, "redeem: frozen = min(frozen, held after) (%llu/%llu)", U(h.units),
           U(h.frozen));
  OK(w, "freeze 0 unfreezes", &AGENT, "holding.freeze", "\"asset\":\"%s\",\"account\":\"%s\",\"units\":0", ASSET_A,
     ALICE.hex);
  TR_CHECK_EQ_INT(holding(w, ASSET_A, &ALICE).frozen, 0, "unfrozen");
  REFUSE(w, TR_EINSUFFICIENT_UNITS, "freeze 1 of a zero holding", &AGENT, "holding.freeze",
         "\"asset\":\"%s\",\"account\":\"%s\",\"units\":1", ASSET_A, CAROL.hex);
  world_close(w);
}

static void test_exceeds_authorised(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 100, NORULES);
  issue(w, ASSET_A, &ALICE, 60);
  REFUSE(w, TR_EEXCEEDS_AUTHORISED, "issued + units = authorised + 1", &ISSUER, "asset.issue", XFER, ASSET_A, BOB.hex,
         U(41));
  OK(w, "issued + units = authorised", &ISSUER, "asset.issue", XFER, ASSET_A, BOB.hex, U(40));
  TR_CHECK_EQ_INT(asset_get(w, ASSET_A).issued, 100, "issued = authorised");
  REFUSE(w, TR_EEXCEEDS_AUTHORISED, "one more when full", &ISSUER, "asset.issue", XFER, ASSET_A, BOB.hex, U(1));
  /* exceeds_authorised comes before the receiver checks */
  REFUSE(w, TR_EEXCEEDS_AUTHORISED, "exceeds and unknown receiver", &ISSUER, "asset.issue", XFER, ASSET_A, GHOST.hex,
         U(1));
  /* redeeming frees authorisation */
  DO(w, &ISSUER, "asset.redeem", "\"asset\":\"%s\",\"from\":\"%s\",\"units\":10,\"amount\":0", ASSET_A, ALICE.hex);
  OK(w, "issue after redemption", &ISSUER, "asset.issue", XFER, ASSET_A, BOB.hex, U(10));
  /* 2^53-1 authorised */
  create_asset(w, &ISSUER, ASSET_B, 9007199254740991ULL, NORULES);
  OK(w, "issue 2^53-1", &ISSUER, "asset.issue", XFER, ASSET_B, ALICE.hex, U(9007199254740991ULL));
  REFUSE(w, TR_EEXCEEDS_AUTHORISED, "issue 1 over 2^53-1", &ISSUER, "asset.issue", XFER, ASSET_B, BOB.hex, U(1));
  world_close(w);
}

static void test_asset_not_active(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  issue(w, ASSET_A, &ALICE, 100);
  set_status(w, &ISSUER, ASSET_A, "matured");
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "issue when matured", &ISSUER, "asset.issue", XFER, ASSET_A, BOB.hex, U(1));
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "transfer when matured", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  OK(w, "redeem when matured", &ISSUER, "asset.redeem", "\"asset\":\"%s\",\"from\":\"%s\",\"units\":1,\"amount\":100",
     ASSET_A, ALICE.hex);
  OK(w, "distribute when matured", &ISSUER, "asset.distribute", "\"asset\":\"%s\",\"amount\":10,\"kind\":\"principal\"",
     ASSET_A);
  OK(w, "force when matured", &AGENT, "transfer.force",
     "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":1,\"reason\":\"x\"", ASSET_A, ALICE.hex, BOB.hex);
  set_status(w, &ISSUER, ASSET_A, "defaulted");
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "transfer when defaulted", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  OK(w, "redeem when defaulted", &ISSUER, "asset.redeem", "\"asset\":\"%s\",\"from\":\"%s\",\"units\":1,\"amount\":0",
     ASSET_A, ALICE.hex);
  OK(w, "distribute when defaulted", &ISSUER, "asset.distribute", "\"asset\":\"%s\",\"amount\":10,\"kind\":\"other\"",
     ASSET_A);
  set_status(w, &ISSUER, ASSET_A, "active");
  set_status(w, &ADMIN, ASSET_A, "paused");
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "transfer when paused", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "issue when paused", &ISSUER, "asset.issue", XFER, ASSET_A, BOB.hex, U(1));
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "redeem when paused", &ISSUER, "asset.redeem",
         "\"asset\":\"%s\",\"from\":\"%s\",\"units\":1,\"amount\":0", ASSET_A, ALICE.hex);
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "distribute when paused", &ISSUER, "asset.distribute",
         "\"asset\":\"%s\",\"amount\":10,\"kind\":\"interest\"", ASSET_A);
  OK(w, "force when paused", &AGENT, "transfer.force",
     "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":1,\"reason\":\"x\"", ASSET_A, ALICE.hex, BOB.hex);
  OK(w, "freeze when paused", &AGENT, "holding.freeze", "\"asset\":\"%s\",\"account\":\"%s\",\"units\":1", ASSET_A,
     ALICE.hex);
  OK(w, "update when paused", &ISSUER, "asset.update", "\"asset\":\"%s\",\"rating\":\"CCC\"", ASSET_A);
  set_status(w, &ADMIN, ASSET_A, "active");
  /* Redeem everything, then close. */
  uint64_t a = holding(w, ASSET_A, &ALICE).units, b = holding(w, ASSET_A, &BOB).units;
  DO(w, &ISSUER, "asset.redeem", "\"asset\":\"%s\",\"from\":\"%s\",\"units\":%llu,\"amount\":0", ASSET_A, ALICE.hex,
     U(a));
  DO(w, &ISSUER, "asset.redeem", "\"asset\":\"%s\",\"from\":\"%s\",\"units\":%llu,\"amount\":0", ASSET_A, BOB.hex,
     U(b));
  set_status(w, &ISSUER, ASSET_A, "closed");
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "redeem when closed", &ISSUER, "asset.redeem",
         "\"asset\":\"%s\",\"from\":\"%s\",\"units\":1,\"amount\":0", ASSET_A, ALICE.hex);
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "issue when closed", &ISSUER, "asset.issue", XFER, ASSET_A, BOB.hex, U(1));
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "update when closed", &ISSUER, "asset.update", "\"asset\":\"%s\",\"rating\":\"D\"",
         ASSET_A);
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "force when closed", &AGENT, "transfer.force",
         "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":1,\"reason\":\"x\"", ASSET_A, ALICE.hex, BOB.hex);
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "freeze when closed", &AGENT, "holding.freeze",
         "\"asset\":\"%s\",\"account\":\"%s\",\"units\":0", ASSET_A, ALICE.hex);
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "distribute when closed", &ISSUER, "asset.distribute",
         "\"asset\":\"%s\",\"amount\":10,\"kind\":\"interest\"", ASSET_A);
  REFUSE(w, TR_EASSET_NOT_ACTIVE, "transfer when closed", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  world_close(w);
}

static void test_invalid_updates(void) {
  world_t *w = world_open();
  REFUSE(w, TR_EINVALID, "the only admin freezes itself", &ADMIN, "account.update", "\"account\":\"%s\",\"frozen\":true",
         ADMIN.hex);
  REFUSE(w, TR_EINVALID, "the only admin drops its role", &ADMIN, "account.update",
         "\"account\":\"%s\",\"roles\":[\"agent\"]", ADMIN.hex);
  OK(w, "the only admin changes jurisdiction", &ADMIN, "account.update", "\"account\":\"%s\",\"jurisdiction\":\"US\"",
     ADMIN.hex);
  open_account(w, &ADMIN2, "[\"admin\",\"investor\"]", "US", true);
  freeze_account(w, &ADMIN2, true);
  REFUSE(w, TR_EINVALID, "a frozen second admin does not count", &ADMIN, "account.update",
         "\"account\":\"%s\",\"frozen\":true", ADMIN.hex);
  freeze_account(w, &ADMIN2, false);
  OK(w, "freeze the first admin when another exists", &ADMIN, "account.update", "\"account\":\"%s\",\"frozen\":true",
     ADMIN.hex);
  REFUSE(w, TR_EFROZEN, "the frozen admin signs", &ADMIN, "account.update", "\"account\":\"%s\",\"frozen\":false",
         ADMIN.hex);
  REFUSE(w, TR_EINVALID, "the last unfrozen admin drops admin with other roles", &ADMIN2, "account.update",
         "\"account\":\"%s\",\"roles\":[\"investor\"]", ADMIN2.hex);
  OK(w, "unfreeze the first admin", &ADMIN2, "account.update", "\"account\":\"%s\",\"frozen\":false", ADMIN.hex);
  OK(w, "the second admin may now drop its role", &ADMIN2, "account.update", "\"account\":\"%s\",\"roles\":[]",
     ADMIN2.hex);
  tr_account_t a = account_get(w, &ADMIN2);
  TR_CHECK(a.roles == 0 && !a.frozen, "roles replaced by the empty set");
  world_close(w);
}

/* ------------------------------------------------------------------------ */
/* Status moves                                                              */

static void test_status_moves(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  issue(w, ASSET_A, &ALICE, 10);
  REFUSE(w, TR_EINVALID, "active → active", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"active\"", ASSET_A);
  OK(w, "active → matured", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"matured\"", ASSET_A);
  check_effects(w, "{\"holdings\":[],\"status\":\"matured\"}", "status effects");
  OK(w, "matured → defaulted", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"defaulted\"", ASSET_A);
  OK(w, "defaulted → matured", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"matured\"", ASSET_A);
  OK(w, "matured → active", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"active\"", ASSET_A);
  OK(w, "active → defaulted", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"defaulted\"", ASSET_A);
  REFUSE(w, TR_EINVALID, "defaulted → closed with units issued", &ISSUER, "asset.status",
         "\"asset\":\"%s\",\"status\":\"closed\"", ASSET_A);
  REFUSE(w, TR_EINVALID, "admin: closed with units issued (neither may)", &ADMIN, "asset.status",
         "\"asset\":\"%s\",\"status\":\"closed\"", ASSET_A);
  /* pause remembers defaulted */
  OK(w, "admin pauses a defaulted asset", &ADMIN, "asset.status", "\"asset\":\"%s\",\"status\":\"paused\"", ASSET_A);
  TR_CHECK_EQ_INT(asset_get(w, ASSET_A).status, TR_STATUS_PAUSED, "status paused");
  REFUSE(w, TR_EINVALID, "paused → paused", &ADMIN, "asset.status", "\"asset\":\"%s\",\"status\":\"paused\"", ASSET_A);
  REFUSE(w, TR_EINVALID, "admin lifts a pause to another status", &ADMIN, "asset.status",
         "\"asset\":\"%s\",\"status\":\"active\"", ASSET_A);
  REFUSE(w, TR_EUNAUTHORIZED, "issuer lifts the pause (admin's move)", &ISSUER, "asset.status",
         "\"asset\":\"%s\",\"status\":\"defaulted\"", ASSET_A);
  REFUSE(w, TR_EINVALID, "issuer moves a paused asset elsewhere", &ISSUER, "asset.status",
         "\"asset\":\"%s\",\"status\":\"matured\"", ASSET_A);
  OK(w, "admin lifts the pause to the previous status", &ADMIN, "asset.status",
     "\"asset\":\"%s\",\"status\":\"defaulted\"", ASSET_A);
  TR_CHECK_EQ_INT(asset_get(w, ASSET_A).status, TR_STATUS_DEFAULTED, "back to defaulted");
  /* close once nothing is issued */
  DO(w, &ISSUER, "asset.redeem", "\"asset\":\"%s\",\"from\":\"%s\",\"units\":10,\"amount\":0", ASSET_A, ALICE.hex);
  REFUSE(w, TR_EUNAUTHORIZED, "admin closes (issuer's move)", &ADMIN, "asset.status",
         "\"asset\":\"%s\",\"status\":\"closed\"", ASSET_A);
  OK(w, "defaulted → closed with issued 0", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"closed\"", ASSET_A);
  REFUSE(w, TR_EINVALID, "closed → active", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"active\"", ASSET_A);
  REFUSE(w, TR_EINVALID, "closed → closed", &ISSUER, "asset.status", "\"asset\":\"%s\",\"status\":\"closed\"", ASSET_A);
  REFUSE(w, TR_EINVALID, "admin pauses a closed asset", &ADMIN, "asset.status", "\"asset\":\"%s\",\"status\":\"paused\"",
         ASSET_A);
  /* A signer that is both issuer and admin may make both kinds of move. */
  open_account(w, &ADMIN2, "[\"admin\",\"issuer\"]", "US", true);
  create_asset(w, &ADMIN2, ASSET_B, 10, NORULES);
  OK(w, "issuer-admin pauses", &ADMIN2, "asset.status", "\"asset\":\"%s\",\"status\":\"paused\"", ASSET_B);
  OK(w, "issuer-admin unpauses", &ADMIN2, "asset.status", "\"asset\":\"%s\",\"status\":\"active\"", ASSET_B);
  OK(w, "issuer-admin closes with issued 0 from active", &ADMIN2, "asset.status",
     "\"asset\":\"%s\",\"status\":\"closed\"", ASSET_B);
  world_close(w);
}

/* ------------------------------------------------------------------------ */
/* Receipts, recovery, distributions                                        */


static void test_effects(void) {
  world_t *w = world_open();
  char want[2048], h1[256], h2[256];
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  check_effects(w, "{\"holdings\":[]}", "asset.create effects");
  OK(w, "issue 100 to alice", &ISSUER, "asset.issue", XFER, ASSET_A, ALICE.hex, U(100));
  holding_json(h1, sizeof h1, ASSET_A, &ALICE, 100, 0);
  snprintf(want, sizeof want, "{\"holdings\":[%s],\"issued\":100}", h1);
  check_effects(w, want, "issue effects");
  OK(w, "transfer 30 alice → bob", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(30));
  const who_t *x = &ALICE, *y = &BOB;
  uint64_t xu = 70, yu = 30;
  if (memcmp(x->pk.b, y->pk.b, 32) > 0) { const who_t *t = x; x = y; y = t; uint64_t u = xu; xu = yu; yu = u; }
  holding_json(h1, sizeof h1, ASSET_A, x, xu, 0);
  holding_json(h2, sizeof h2, ASSET_A, y, yu, 0);
  snprintf(want, sizeof want, "{\"holdings\":[%s,%s]}", h1, h2);
  check_effects(w, want, "transfer effects sorted by account, no issued");
  OK(w, "transfer the whole 70 alice → bob", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(70));
  holding_json(h1, sizeof h1, ASSET_A, x, x == &ALICE ? 0 : 100, 0);
  holding_json(h2, sizeof h2, ASSET_A, y, y == &ALICE ? 0 : 100, 0);
  snprintf(want, sizeof want, "{\"holdings\":[%s,%s]}", h1, h2);
  check_effects(w, want, "a holding that dropped to 0 is listed with units 0");
  OK(w, "redeem all of bob", &ISSUER, "asset.redeem", "\"asset\":\"%s\",\"from\":\"%s\",\"units\":100,\"amount\":5",
     ASSET_A, BOB.hex);
  holding_json(h1, sizeof h1, ASSET_A, &BOB, 0, 0);
  snprintf(want, sizeof want, "{\"holdings\":[%s],\"issued\":0}", h1);
  check_effects(w, want, "redeem effects: units 0 and issued 0");
  OK(w, "account.open", &ADMIN, "account.open", "\"account\":\"%s\",\"roles\":[],\"jurisdiction\":\"FR\",\"kyc\":true",
     NEWKEY.hex);
  check_effects(w, "{\"holdings\":[]}", "account.open effects");
  issue(w, ASSET_A, &CAROL, 10);
  OK(w, "distribute", &ISSUER, "asset.distribute", "\"asset\":\"%s\",\"amount\":100,\"kind\":\"interest\",\"memo\":\"Q1\"",
     ASSET_A);
  snprintf(want, sizeof want, "{\"holdings\":[],\"distribution\":{\"seq\":%llu,\"count\":1,\"amount\":100}}",
           U(w->rcpt.seq));
  check_effects(w, want, "distribution effects");
  TR_CHECK_EQ_INT(payout(w, w->rcpt.seq, &CAROL), 100, "sole holder takes it all");
  {
    char q[256];
    /* account.history: the signer and every account the tx names or whose units it moved */
    snprintf(q, sizeof q, "SELECT count(*) FROM account_entries WHERE seq = %llu", U(w->rcpt.seq));
    TR_CHECK_EQ_INT(sql_u64(w, q), 2, "distribution history: the issuer and the holder");
    snprintf(q, sizeof q, "SELECT count(*) FROM account_entries WHERE account = x'%s'", CAROL.hex);
    TR_CHECK_EQ_INT(sql_u64(w, q), 3, "carol's history: open, issue, distribution");
    snprintf(q, sizeof q, "SELECT count(*) FROM account_entries WHERE account = x'%s'", BOB.hex);
    TR_CHECK_EQ_INT(sql_u64(w, q), 4, "bob's history: open, two transfers in, redemption");
    snprintf(q, sizeof q, "SELECT count(*) FROM account_entries WHERE account = x'%s'", NODE.hex);
    TR_CHECK_EQ_INT(sql_u64(w, q), 1, "the node key's history: genesis");
  }
  TR_CHECK(w->rcpt.seq == head_size(w) && w->rcpt.time == w->now, "receipt seq is the head, time the clock");
  /* §5: integers are plain digits, never 1e+15 — also at and above 10^15. */
  create_asset(w, &ISSUER, ASSET_B, 9007199254740991ULL, NORULES);
  OK(w, "issue 10^15 units", &ISSUER, "asset.issue", XFER, ASSET_B, DAVE.hex, U(1000000000000000ULL));
  TR_CHECK(w->rcpt.effects_json && strstr(w->rcpt.effects_json, "\"units\":1000000000000000,") &&
               strstr(w->rcpt.effects_json, "\"issued\":1000000000000000}"),
           "effects text has plain digits: %s", w->rcpt.effects_json ? w->rcpt.effects_json : "");
  OK(w, "distribute 2·10^15", &ISSUER, "asset.distribute", "\"asset\":\"%s\",\"amount\":2000000000000000,\"kind\":\"other\"",
     ASSET_B);
  TR_CHECK(w->rcpt.effects_json && strstr(w->rcpt.effects_json, "\"amount\":2000000000000000}"),
           "distribution amount in plain digits: %s", w->rcpt.effects_json ? w->rcpt.effects_json : "");
  world_close(w);
}

static void test_recover(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, "ZED", 1000, NORULES);
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  issue(w, ASSET_A, &ALICE, 100);
  issue(w, ASSET_A, &BOB, 50);
  issue(w, "ZED", &ALICE, 7);
  DO(w, &AGENT, "holding.freeze", "\"asset\":\"%s\",\"account\":\"%s\",\"units\":30", ASSET_A, ALICE.hex);
  DO(w, &ADMIN, "account.update", "\"account\":\"%s\",\"roles\":[\"investor\",\"agent\"],\"jurisdiction\":\"CA\"",
     ALICE.hex);
  OK(w, "agent recovers alice to a new key", &AGENT, "account.recover",
     "\"account\":\"%s\",\"to\":\"%s\",\"reason\":\"lost phone\"", ALICE.hex, NEWKEY.hex);
  /* effects: sorted by (asset, account) — LOAN-A before ZED */
  char want[2048], a1[256], a2[256], z1[256], z2[256];
  const who_t *lo = &ALICE, *hi = &NEWKEY;
  if (memcmp(lo->pk.b, hi->pk.b, 32) > 0) { lo = &NEWKEY; hi = &ALICE; }
  holding_json(a1, sizeof a1, ASSET_A, lo, lo == &ALICE ? 0 : 100, lo == &ALICE ? 0 : 30);
  holding_json(a2, sizeof a2, ASSET_A, hi, hi == &ALICE ? 0 : 100, hi == &ALICE ? 0 : 30);
  holding_json(z1, sizeof z1, "ZED", lo, lo == &ALICE ? 0 : 7, 0);
  holding_json(z2, sizeof z2, "ZED", hi, hi == &ALICE ? 0 : 7, 0);
  snprintf(want, sizeof want, "{\"holdings\":[%s,%s,%s,%s]}", a1, a2, z1, z2);
  check_effects(w, want, "recover effects sorted by (asset, account)");
  tr_account_t old = account_get(w, &ALICE), fresh = account_get(w, &NEWKEY);
  TR_CHECK(old.frozen && old.roles == 0, "old account frozen with no roles");
  TR_CHECK(strcmp(old.jurisdiction, "CA") == 0, "old account keeps its jurisdiction");
  TR_CHECK(!fresh.frozen && fresh.roles == (TR_ROLE_INVESTOR | TR_ROLE_AGENT) && fresh.kyc &&
               strcmp(fresh.jurisdiction, "CA") == 0,
           "new account has the old roles, jurisdiction and kyc");
  tr_holding_t h = holding(w, ASSET_A, &NEWKEY);
  TR_CHECK(h.units == 100 && h.frozen == 30, "holding moved with its frozen units");
  TR_CHECK(holding(w, ASSET_A, &ALICE).units == 0 && holding(w, "ZED", &ALICE).units == 0, "old holdings gone");
  TR_CHECK_EQ_INT(holding(w, "ZED", &NEWKEY).units, 7, "second asset moved");
  TR_CHECK_EQ_INT(asset_get(w, ASSET_A).holders, 2, "holder count unchanged");
  REFUSE(w, TR_EFROZEN, "old key signs", &ALICE, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  OK(w, "new key transfers available units", &NEWKEY, "transfer", XFER, ASSET_A, BOB.hex, U(70));
  REFUSE(w, TR_EINSUFFICIENT_UNITS, "frozen units moved too", &NEWKEY, "transfer", XFER, ASSET_A, BOB.hex, U(1));
  REFUSE(w, TR_EEXISTS, "recover again to the same new key", &ADMIN, "account.recover",
         "\"account\":\"%s\",\"to\":\"%s\",\"reason\":\"again\"", ALICE.hex, NEWKEY.hex);

  /* Recovering an issuer moves its assets. */
  OK(w, "admin recovers the issuer", &ADMIN, "account.recover",
     "\"account\":\"%s\",\"to\":\"%s\",\"reason\":\"compromised\"", ISSUER.hex, NEWKEY2.hex);
  tr_asset_t a = asset_get(w, ASSET_A);
  TR_CHECK(memcmp(a.issuer.b, NEWKEY2.pk.b, 32) == 0, "asset names the new issuer");
  a = asset_get(w, "ZED");
  TR_CHECK(memcmp(a.issuer.b, NEWKEY2.pk.b, 32) == 0, "every asset of the old issuer moved");
  OK(w, "new issuer issues", &NEWKEY2, "asset.issue", XFER, ASSET_A, CAROL.hex, U(5));
  REFUSE(w, TR_EFROZEN, "old issuer issues", &ISSUER, "asset.issue", XFER, ASSET_A, CAROL.hex, U(5));
  /* Recovering a frozen account: the new one starts unfrozen. */
  freeze_account(w, &BOB, true);
  OK(w, "recover a frozen account", &AGENT, "account.recover", "\"account\":\"%s\",\"to\":\"%s\",\"reason\":\"x\"",
     BOB.hex, GHOST.hex);
  TR_CHECK(!account_get(w, &GHOST).frozen, "recovered account starts unfrozen");
  world_close(w);
}

static void three_sorted(const who_t *v[3]) { qsort(v, 3, sizeof v[0], cmp_who); }

static void test_distribution(void) {
  world_t *w = world_open();
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  issue(w, ASSET_A, &ALICE, 10), issue(w, ASSET_A, &BOB, 10), issue(w, ASSET_A, &CAROL, 10);
  const who_t *s[3] = {&ALICE, &BOB, &CAROL};
  three_sorted(s);
  OK(w, "distribute 100 over 3 equal holders", &ISSUER, "asset.distribute",
     "\"asset\":\"%s\",\"amount\":100,\"kind\":\"interest\"", ASSET_A);
  uint64_t d = w->rcpt.seq;
  TR_CHECK(payout(w, d, s[0]) == 34 && payout(w, d, s[1]) == 33 && payout(w, d, s[2]) == 33,
           "34/33/33 with the extra unit to the smallest account id");
  OK(w, "distribute 2 over 3 equal holders", &ISSUER, "asset.distribute",
     "\"asset\":\"%s\",\"amount\":2,\"kind\":\"interest\"", ASSET_A);
  d = w->rcpt.seq;
  TR_CHECK(payout(w, d, s[0]) == 1 && payout(w, d, s[1]) == 1 && payout(w, d, s[2]) == 0,
           "1/1/0: ties to the smaller ids, zero allocation recorded");
  char q[160];
  snprintf(q, sizeof q, "SELECT count FROM distributions WHERE seq = %llu", U(d));
  TR_CHECK_EQ_INT(sql_u64(w, q), 3, "distribution count 3");

  /* Different remainders: units 1, 2, 4 of 7, amount 10:
   * 10/7 = 1 r3, 20/7 = 2 r6, 40/7 = 5 r5 → two extra units to r6 and r5: 1, 3, 6. */
  create_asset(w, &ISSUER, ASSET_B, 1000, NORULES);
  issue(w, ASSET_B, &ALICE, 1), issue(w, ASSET_B, &BOB, 2), issue(w, ASSET_B, &CAROL, 4);
  DO(w, &AGENT, "holding.freeze", "\"asset\":\"%s\",\"account\":\"%s\",\"units\":4", ASSET_B, CAROL.hex);
  freeze_account(w, &BOB, true);
  DO(w, &ADMIN, "account.update", "\"account\":\"%s\",\"kyc\":false", ALICE.hex);
  OK(w, "distribute 10 over 1/2/4 (frozen, kyc-less holders take part)", &ISSUER, "asset.distribute",
     "\"asset\":\"%s\",\"amount\":10,\"kind\":\"principal\"", ASSET_B);
  d = w->rcpt.seq;
  TR_CHECK(payout(w, d, &ALICE) == 1 && payout(w, d, &BOB) == 3 && payout(w, d, &CAROL) == 6,
           "largest remainders win: 1/3/6 (got %llu/%llu/%llu)", U(payout(w, d, &ALICE)), U(payout(w, d, &BOB)),
           U(payout(w, d, &CAROL)));
  snprintf(q, sizeof q, "SELECT sum(amount) FROM payouts WHERE distribution = %llu", U(d));
  TR_CHECK_EQ_INT(sql_u64(w, q), 10, "allocations sum to amount");
  freeze_account(w, &BOB, false);
  DO(w, &ADMIN, "account.update", "\"account\":\"%s\",\"kyc\":true", ALICE.hex);

  /* 128-bit: units and amount near 2^53. */
  create_asset(w, &ISSUER, "BIG", 9007199254740991ULL, NORULES);
  issue(w, "BIG", &ALICE, 6004799503160661ULL);
  issue(w, "BIG", &BOB, 3002399751580330ULL);
  OK(w, "distribute 2^53-2 over units summing to 2^53-1", &ISSUER, "asset.distribute",
     "\"asset\":\"BIG\",\"amount\":9007199254740990,\"kind\":\"interest\"");
  d = w->rcpt.seq;
  TR_CHECK(payout(w, d, &ALICE) == 6004799503160660ULL && payout(w, d, &BOB) == 3002399751580330ULL,
           "128-bit allocation exact (got %llu/%llu)", U(payout(w, d, &ALICE)), U(payout(w, d, &BOB)));
  /* three holders: remainders 6004799503160660, 6004799503160661 ×2: two extras to the two largest. */
  DO(w, &ISSUER, "asset.redeem", "\"asset\":\"BIG\",\"from\":\"%s\",\"units\":%llu,\"amount\":0", ALICE.hex,
     U(6004799503160661ULL - 3002399751580331ULL));
  issue(w, "BIG", &CAROL, 3002399751580330ULL);
  OK(w, "distribute 2^53-1 minus 1 over three near-equal holders", &ISSUER, "asset.distribute",
     "\"asset\":\"BIG\",\"amount\":9007199254740990,\"kind\":\"interest\"");
  d = w->rcpt.seq;
  TR_CHECK(payout(w, d, &ALICE) == 3002399751580330ULL && payout(w, d, &BOB) == 3002399751580330ULL &&
               payout(w, d, &CAROL) == 3002399751580330ULL,
           "128-bit with remainders: each 3002399751580330");
  OK(w, "distribute the maximum amount", &ISSUER, "asset.distribute",
     "\"asset\":\"BIG\",\"amount\":9007199254740991,\"kind\":\"other\"");
  d = w->rcpt.seq;
  snprintf(q, sizeof q, "SELECT sum(amount) FROM payouts WHERE distribution = %llu", U(d));
  TR_CHECK_EQ_INT(sql_u64(w, q), 9007199254740991LL, "maximum amount: allocations sum exactly");
  TR_CHECK(payout(w, d, &ALICE) == 3002399751580331ULL, "holder with the extra unit gets its exact share");
  world_close(w);
}

/* ------------------------------------------------------------------------ */
/* Order of checks and tx.check                                             */

static int check_reasons(world_t *w, const who_t *signer, tr_refusal_t reasons[TR_REFUSALS_MAX], size_t *n,
                         const char *type, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int check_reasons(world_t *w, const who_t *signer, tr_refusal_t reasons[TR_REFUSALS_MAX], size_t *n,
                         const char *type, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  build(w, signer, type, fmt, ap);
  va_end(ap);
  tr_tx_t *tx = calloc(1, sizeof *tx);
  tr_tx_error_t err = {""};
  uint64_t dup = 0;
  int rc = tr_tx_decode(w->bytes, w->len, tx, &err);
  if (rc == 0) rc = tr_ledger_check(&w->l, tx, w->now, reasons, n, &dup);
  else printf("# decode: %s\n", err.detail);
  free(tx);
  return rc;
}

static void want_reasons(tr_refusal_t *r, size_t n, const int *want, size_t nw, const char *what) {
  bool same = n == nw;
  for (size_t i = 0; same && i < n; i++) same = r[i].code == want[i];
  char got[256] = "";
  size_t o = 0;
  for (size_t i = 0; i < n && o < sizeof got - 32; i++)
    o += (size_t)snprintf(got + o, sizeof got - o, "%s%s", i ? "," : "", tr_err_reason(r[i].code));
  TR_CHECK(same, "%s: reasons [%s]", what, got);
}

static void test_check_order(void) {
  world_t *w = world_open();
  char rules[128];
  snprintf(rules, sizeof rules, "{\"jurisdictions\":[\"US\"],\"lockup_until\":%llu,\"min_units\":5}", U(T0 + 99000));
  create_asset(w, &ISSUER, ASSET_A, 1000, rules);
  issue(w, ASSET_A, &ALICE, 10);
  tr_refusal_t r[TR_REFUSALS_MAX];
  size_t n = 0;
  uint8_t before[32], after[32];
  state_digest(w, before);
  int rc = check_reasons(w, &ALICE, r, &n, "transfer", XFER, ASSET_A, FRANK.hex, U(20));
  TR_CHECK(rc == 0, "tx.check runs");
  want_reasons(r, n, (const int[]){TR_ELOCKUP, TR_EINSUFFICIENT_UNITS, TR_EJURISDICTION}, 3,
               "transfer failing lockup, units and receiver jurisdiction");
  TR_CHECK(n == 3 && strstr(r[1].detail, "10") != NULL, "detail names the available units: %s", n ? r[1].detail : "");
  rc = check_reasons(w, &ALICE, r, &n, "transfer", XFER, ASSET_A, GHOST.hex, U(8));
  want_reasons(r, n, (const int[]){TR_ELOCKUP, TR_ENOT_FOUND, TR_EMIN_UNITS}, 3,
               "lockup, unknown receiver, sender remainder 2 < 5");
  rc = check_reasons(w, &ALICE, r, &n, "transfer", XFER, ASSET_A, EVE.hex, U(3));
  want_reasons(r, n, (const int[]){TR_ELOCKUP, TR_ENOT_VERIFIED, TR_EMIN_UNITS}, 3,
               "lockup, receiver kyc, receiver min (sender keeps 7)");
  rc = check_reasons(w, &ALICE, r, &n, "transfer", XFER, "NOPE", FRANK.hex, U(20));
  want_reasons(r, n, (const int[]){TR_ENOT_FOUND}, 1, "step 7 failure is the only reason");
  rc = check_reasons(w, &GHOST, r, &n, "transfer", XFER, "NOPE", FRANK.hex, U(20));
  want_reasons(r, n, (const int[]){TR_ENOT_FOUND}, 1, "unknown signer is the only reason");
  w->expires = "1";
  rc = check_reasons(w, &ALICE, r, &n, "transfer", XFER, ASSET_A, FRANK.hex, U(20));
  want_reasons(r, n, (const int[]){TR_EEXPIRED}, 1, "expired is the only reason");
  set_status(w, &ISSUER, ASSET_A, "matured");
  state_digest(w, before);
  rc = check_reasons(w, &ISSUER, r, &n, "asset.issue", XFER, ASSET_A, FRANK.hex, U(991));
  want_reasons(r, n, (const int[]){TR_EASSET_NOT_ACTIVE, TR_EEXCEEDS_AUTHORISED, TR_EJURISDICTION}, 3,
               "issue when matured, over authorised, to a GB receiver");
  rc = check_reasons(w, &ISSUER, r, &n, "asset.issue", XFER, ASSET_A, BOB.hex, U(5));
  want_reasons(r, n, (const int[]){TR_EASSET_NOT_ACTIVE}, 1, "issue when matured only");
  set_status(w, &ISSUER, ASSET_A, "active");
  rc = check_reasons(w, &ISSUER, r, &n, "asset.issue", XFER, ASSET_A, BOB.hex, U(5));
  want_reasons(r, n, NULL, 0, "a valid issue: no reasons");
  uint8_t after2[32];
  state_digest(w, after2);
  rc = check_reasons(w, &ISSUER, r, &n, "asset.issue", XFER, ASSET_A, BOB.hex, U(5));
  state_digest(w, after);
  TR_CHECK(memcmp(after2, after, 32) == 0, "tx.check writes nothing");
  /* The sender's remainder is held − units: still listed when frozen units
   * make the transfer insufficient (10 held, 8 frozen, 7 sent: 3 < 5). */
  DO(w, &AGENT, "holding.freeze", "\"asset\":\"%s\",\"account\":\"%s\",\"units\":8", ASSET_A, ALICE.hex);
  rc = check_reasons(w, &ALICE, r, &n, "transfer", XFER, ASSET_A, BOB.hex, U(7));
  want_reasons(r, n, (const int[]){TR_ELOCKUP, TR_EINSUFFICIENT_UNITS, TR_EMIN_UNITS}, 3,
               "insufficient available units and a sender remainder under the minimum");
  rc = check_reasons(w, &ALICE, r, &n, "transfer", XFER, ASSET_A, BOB.hex, U(11));
  want_reasons(r, n, (const int[]){TR_ELOCKUP, TR_EINSUFFICIENT_UNITS}, 2,
               "more than held: no remainder rule to judge");
  /* apply agrees with check's first reason */
  w->now = T0 + 2000;
  REFUSE(w, TR_ELOCKUP, "apply: lockup first", &ALICE, "transfer", XFER, ASSET_A, FRANK.hex, U(20));
  world_close(w);
}

/* ------------------------------------------------------------------------ */
/* Known answers (tests/unit/kat_vectors.h, computed with Python)           */

static void hex32(const char *hex, uint8_t *out, size_t n) {
  if (tr_hex_decode(hex, strlen(hex), out, n) != 0) {
    fprintf(stderr, "bad KAT hex\n");
    exit(2);
  }
}

static void test_kat(void) {
  uint8_t seed[32], pk[32], node_sk[64], admin_sk[64], inv_sk[64], want[160], got[160];
  char hex[321];
  hex32(KAT_NODE_SEED, seed, 32);
  crypto_sign_seed_keypair(pk, node_sk, seed);
  TR_CHECK_EQ_STR(tr_hex_encode(pk, 32, hex), KAT_NODE_PK, "KAT node public key");
  hex32(KAT_ADMIN_SEED, seed, 32);
  crypto_sign_seed_keypair(pk, admin_sk, seed);
  TR_CHECK_EQ_STR(tr_hex_encode(pk, 32, hex), KAT_ADMIN_PK, "KAT admin public key");
  hex32(KAT_INVESTOR_SEED, seed, 32);
  crypto_sign_seed_keypair(pk, inv_sk, seed);
  TR_CHECK_EQ_STR(tr_hex_encode(pk, 32, hex), KAT_INVESTOR_PK, "KAT investor public key");

  tr_key_t node, admin;
  memcpy(node.b, node_sk + 32, 32);
  memcpy(admin.b, admin_sk + 32, 32);
  char g[512];
  int len = tr_genesis_bytes(KAT_CHAIN, &node, &admin, g, sizeof g);
  TR_CHECK(len == KAT_TX1_LEN && strcmp(g, KAT_TX1_TEXT) == 0, "genesis bytes match KAT TX1");

  static const char *const texts[2] = {KAT_TX1_TEXT, KAT_TX2_TEXT};
  static const char *const txids[2] = {KAT_TX1_TXID, KAT_TX2_TXID};
  static const char *const sigs[2] = {KAT_TX1_SIG, KAT_TX2_SIG};
  static const char *const entries[2] = {KAT_ENTRY1_BYTES, KAT_ENTRY2_BYTES};
  static const char *const hashes[2] = {KAT_ENTRY1_HASH, KAT_ENTRY2_HASH};
  const uint64_t times[2] = {KAT_TIME1, KAT_TIME2};
  const size_t lens[2] = {KAT_TX1_LEN, KAT_TX2_LEN};
  const uint8_t *sks[2] = {node_sk, admin_sk};
  uint8_t prev[32] = {0}, txid[32], sig[64], hash[32];
  tr_tx_t *tx = calloc(1, sizeof *tx);
  for (int i = 0; i < 2; i++) {
    TR_CHECK_EQ_INT(strlen(texts[i]), lens[i], "KAT tx length");
    crypto_hash_sha256(txid, (const uint8_t *)texts[i], lens[i]);
    TR_CHECK_EQ_STR(tr_hex_encode(txid, 32, hex), txids[i], "SHA-256(tx) = KAT txid");
    TR_CHECK(tr_tx_decode(texts[i], lens[i], tx, NULL) == 0 && memcmp(tx->txid, txid, 32) == 0,
             "tr_tx_decode accepts the KAT tx and computes its txid");
    TR_CHECK(tr_tx_sign(texts[i], lens[i], sks[i], sig) == 0, "tr_tx_sign");
    TR_CHECK_EQ_STR(tr_hex_encode(sig, 64, hex), sigs[i], "tr_tx_sign = KAT signature");
    TR_CHECK(tr_tx_verify(texts[i], lens[i], &tx->signer, sig) == 0, "tr_tx_verify accepts the KAT signature");
    hex32(entries[i], want, 160);
    tr_entry_bytes((uint64_t)i + 1, times[i], prev, txid, sig, got);
    TR_CHECK(memcmp(want, got, 160) == 0, "entry bytes of seq %d = KAT", i + 1);
    tr_entry_hash((uint64_t)i + 1, times[i], prev, txid, sig, hash);
    TR_CHECK_EQ_STR(tr_hex_encode(hash, 32, hex), hashes[i], "entry hash = KAT");
    memcpy(prev, hash, 32);
  }

  /* The ledger writes the same entries. */
  tr_store_t *s = NULL;
  char err[256];
  int rc = tr_store_open(NULL, TR_STORE_MEMORY, &s, err, sizeof err);
  if (rc == 0) rc = tr_ledger_genesis(s, KAT_CHAIN, node_sk, &admin, KAT_TIME1);
  TR_CHECK(rc == 0, "tr_ledger_genesis with the KAT keys");
  uint64_t size = 0, time = 0;
  tr_store_head(s, &size, hash, &time);
  TR_CHECK(size == 1 && time == KAT_TIME1, "genesis is entry 1 at KAT_TIME1");
  TR_CHECK_EQ_STR(tr_hex_encode(hash, 32, hex), KAT_ENTRY1_HASH, "stored genesis hash = KAT");
  tr_ledger_t l;
  rc = tr_ledger_load(&l, s);
  TR_CHECK(rc == 0 && strcmp(l.chain, KAT_CHAIN) == 0 && memcmp(l.node_key.b, node.b, 32) == 0, "ledger meta");
  tr_account_t a;
  TR_CHECK(tr_store_account_get(s, &admin, &a) == 0 && a.roles == TR_ROLE_ADMIN && a.kyc && !a.frozen &&
               strcmp(a.jurisdiction, "ZZ") == 0,
           "genesis admin: [admin], kyc, ZZ");
  TR_CHECK(tr_store_account_get(s, &node, &a) == TR_ENOT_FOUND, "the node key is no account");
  tr_tx_decode(KAT_TX2_TEXT, KAT_TX2_LEN, tx, NULL);
  hex32(KAT_TX2_SIG, sig, 64);
  tr_receipt_t rcpt = {0};
  tr_refusal_t ref = {0};
  rc = tr_store_begin(s);
  if (rc == 0) rc = tr_ledger_apply(&l, tx, KAT_TX2_TEXT, KAT_TX2_LEN, sig, KAT_TIME2, &rcpt, &ref);
  if (rc == 0) rc = tr_store_commit(s);
  TR_CHECK(rc == 0 && rcpt.seq == 2 && rcpt.time == KAT_TIME2, "KAT TX2 accepted as entry 2 (%s)", ref.detail);
  TR_CHECK_EQ_STR(tr_hex_encode(rcpt.hash, 32, hex), KAT_ENTRY2_HASH, "receipt hash = KAT entry 2 hash");
  uint8_t root[32];
  TR_CHECK(tr_store_merkle_root(s, 2, root) == 0, "Merkle root of size 2");
  TR_CHECK_EQ_STR(tr_hex_encode(root, 32, hex), KAT_ROOT2, "root = KAT_ROOT2");
  tr_receipt_clear(&rcpt);
  tr_store_close(s);
  free(tx);
}

/* Genesis is not for tx.submit; a second genesis is refused by the store. */
static void test_genesis(void) {
  world_t *w = world_open_bare();
  char g[512];
  int len = tr_genesis_bytes(CHAIN, &NODE.pk, &ADMIN.pk, g, sizeof g);
  memcpy(w->bytes, g, (size_t)len + 1);
  w->len = (size_t)len;
  uint8_t before[32], after[32];
  state_digest(w, before);
  int rc = apply_bytes(w, &NODE);
  state_digest(w, after);
  TR_CHECK(rc == TR_EINVALID && memcmp(before, after, 32) == 0, "genesis through tr_ledger_apply is invalid");
  TR_CHECK(tr_ledger_genesis(w->s, CHAIN, NODE.sk, &ADMIN.pk, T0) != 0, "a second genesis is refused");
  TR_CHECK_EQ_INT(head_size(w), 1, "still one entry");
  world_close(w);
}

/* The writer's row caches (tr_store.c) must never answer with a row that
 * changed behind them: SQL from outside the file that may write, a
 * rollback, and the end of the write transaction all drop them. */
static void test_writer_caches(void) {
  tr_store_t *s = NULL;
  char err[256];
  TR_CHECK(tr_store_open(NULL, TR_STORE_MEMORY, &s, err, sizeof err) == 0, "memory store for the cache test");
  if (s == NULL) return;
  tr_key_t k = ADMIN.pk;
  tr_holding_t h = {5, 1}, got = {0, 0};
  tr_account_t a = {.id = k, .roles = TR_ROLE_ADMIN, .jurisdiction = "US", .kyc = true}, ga;
  tr_store_begin(s);
  TR_CHECK(tr_store_holding_put(s, "A", &k, &h) == 0 && tr_store_account_put(s, &a) == 0, "rows written in a write txn");
  tr_store_holding_get(s, "A", &k, &got);
  TR_CHECK(got.units == 5 && got.frozen == 1, "holding read back (%llu/%llu)", (unsigned long long)got.units,
           (unsigned long long)got.frozen);
  sqlite3_stmt *st = tr_store_stmt(s, "UPDATE holdings SET units = 7 WHERE asset = 'A'");
  TR_CHECK(st != NULL && sqlite3_step(st) == SQLITE_DONE, "a write from outside the store");
  sqlite3_reset(st);
  tr_store_holding_get(s, "A", &k, &got);
  TR_CHECK(got.units == 7, "after SQL through tr_store_stmt the holding is read again (%llu)", (unsigned long long)got.units);
  TR_CHECK(sqlite3_exec(tr_store_db(s), "UPDATE accounts SET kyc = 0", NULL, NULL, NULL) == SQLITE_OK, "raw SQL");
  TR_CHECK(tr_store_account_get(s, &k, &ga) == 0 && !ga.kyc, "after SQL on the raw handle the account is read again");
  tr_store_rollback(s);
  tr_store_begin(s);
  got.units = 99;
  tr_store_holding_get(s, "A", &k, &got);
  TR_CHECK(got.units == 0 && tr_store_account_get(s, &k, &ga) == TR_ENOT_FOUND,
           "after a rollback neither row is remembered (units %llu)", (unsigned long long)got.units);
  tr_store_commit(s);
  tr_store_close(s);
}

/* ------------------------------------------------------------------------ */
/* account.history rows written late                                        */

static void history_script(world_t *w) {
  create_asset(w, &ISSUER, ASSET_A, 1000, NORULES);
  issue(w, ASSET_A, &ALICE, 10), issue(w, ASSET_A, &BOB, 20);
  DO(w, &ALICE, "transfer", "\"asset\":\"%s\",\"to\":\"%s\",\"units\":3", ASSET_A, CAROL.hex);
  DO(w, &ISSUER, "asset.distribute", "\"asset\":\"%s\",\"amount\":99,\"kind\":\"interest\"", ASSET_A);
  DO(w, &AGENT, "holding.freeze", "\"asset\":\"%s\",\"account\":\"%s\",\"units\":1", ASSET_A, BOB.hex);
}

/* UINT64_MAX when unreadable (no check here: it is called inside checks). */
static uint64_t history_mark_of(world_t *w) {
  uint64_t v = UINT64_MAX;
  if (tr_store_history_through(w->s, &v) != 0) v = UINT64_MAX;
  return v;
}

/* The same txs on a store that writes rows at every commit and on one that
 * holds them: held rows are not in the table and the mark stays; a rollback
 * drops only its own rows; a flush makes the two stores identical; rows lost
 * with the process are rebuilt from the journal and the payouts. */
static void test_history_deferred(void) {
  char dir[] = "/tmp/tr-history-XXXXXX", path[64];
  if (mkdtemp(dir) == NULL) {
    TR_CHECK(0, "temp dir");
    return;
  }
  snprintf(path, sizeof path, "%s/h.db", dir);
  world_t *ref = world_open(), *w = world_open_at(path);
  tr_store_history_defer(w->s, 1000);
  world_open_accounts(w);
  uint64_t mark = history_mark_of(w), rows = sql_u64(w, "SELECT count(*) FROM account_entries");
  TR_CHECK(mark == 1 && tr_store_history_pending(w->s) > 0,
           "deferred: only genesis is written (mark %llu), the rest held (%zu rows)", U(mark),
           tr_store_history_pending(w->s));
  history_script(ref), history_script(w);
  TR_CHECK(history_mark_of(w) == 1 && sql_u64(w, "SELECT count(*) FROM account_entries") == rows,
           "commits leave held rows unwritten and the mark where it was");
  TR_CHECK_EQ_INT(history_mark_of(ref), head_size(ref), "a store that does not defer is written through its head");

  size_t held = tr_store_history_pending(w->s);
  tr_tx_t *tx = calloc(1, sizeof *tx);
  build_tx(w, &BOB, "transfer", "\"asset\":\"%s\",\"to\":\"%s\",\"units\":1", ASSET_A, DAVE.hex);
  tr_tx_sign(w->bytes, w->len, BOB.sk, w->sig);
  int rc = tx ? tr_tx_decode(w->bytes, w->len, tx, NULL) : TR_ENOMEM;
  tr_receipt_clear(&w->rcpt);
  if (rc == 0) rc = tr_store_begin(w->s);
  if (rc == 0) rc = tr_ledger_apply(&w->l, tx, w->bytes, w->len, w->sig, w->now, &w->rcpt, &w->ref);
  size_t during = tr_store_history_pending(w->s);
  tr_store_rollback(w->s);
  free(tx);
  TR_CHECK(rc == 0 && during == held + 2 && tr_store_history_pending(w->s) == held,
           "a rolled-back transfer's two rows go, the held ones stay (%zu, %zu, %zu)", held, during,
           tr_store_history_pending(w->s));
  w->next_id--; /* the rolled-back tx's id is free again: both stores go on in step */

  uint8_t a[32], b[32];
  rc = tr_store_begin(w->s);
  if (rc == 0) rc = tr_store_history_flush(w->s);
  if (rc == 0) rc = tr_store_commit(w->s);
  state_digest(ref, a), state_digest(w, b);
  TR_CHECK(rc == 0 && tr_store_history_pending(w->s) == 0 && memcmp(a, b, 32) == 0,
           "after a flush every table, history_progress included, equals the written-through store's");

  DO(ref, &BOB, "transfer", "\"asset\":\"%s\",\"to\":\"%s\",\"units\":2", ASSET_A, DAVE.hex);
  DO(w, &BOB, "transfer", "\"asset\":\"%s\",\"to\":\"%s\",\"units\":2", ASSET_A, DAVE.hex);
  DO(ref, &ALICE, "transfer", "\"asset\":\"%s\",\"to\":\"%s\",\"units\":1", ASSET_A, BOB.hex);
  DO(w, &ALICE, "transfer", "\"asset\":\"%s\",\"to\":\"%s\",\"units\":1", ASSET_A, BOB.hex);
  DO(ref, &ISSUER, "asset.distribute", "\"asset\":\"%s\",\"amount\":7,\"kind\":\"interest\"", ASSET_A);
  DO(w, &ISSUER, "asset.distribute", "\"asset\":\"%s\",\"amount\":7,\"kind\":\"interest\"", ASSET_A);
  uint64_t lost_from = history_mark_of(w) + 1, size = head_size(w);
  tr_store_close(w->s); /* a hard stop: the held rows were in memory only */
  char err[256] = "";
  uint64_t rebuilt = 0;
  rc = tr_store_open(path, 0, &w->s, err, sizeof err);
  TR_CHECK(rc == 0 && history_mark_of(w) == lost_from - 1 && history_mark_of(w) < size,
           "reopened: the mark is behind the head (%llu < %llu)", U(lost_from - 1), U(size));
  if (rc == 0) rc = tr_store_history_catch_up(w->s, UINT64_MAX, &rebuilt);
  state_digest(w, b);
  TR_CHECK(rc == 0 && rebuilt == size - lost_from + 1 && memcmp(a, b, 32) != 0,
           "catch-up rebuilt %llu entries' rows", U(rebuilt));
  state_digest(ref, a);
  TR_CHECK(memcmp(a, b, 32) == 0, "rebuilt rows (payees of a distribution included) equal the written ones");
  rc = tr_store_history_catch_up(w->s, UINT64_MAX, &rebuilt);
  TR_CHECK(rc == 0 && rebuilt == 0, "a second catch-up has nothing to do");

  TR_CHECK(sqlite3_exec(tr_store_db(w->s), "UPDATE history_progress SET seq = seq - 2", NULL, NULL, NULL) == SQLITE_OK,
           "mark moved back behind written rows");
  tr_ledger_t l;
  tr_store_history_defer(w->s, 1000);
  rc = tr_ledger_load(&l, w->s);
  w->l = l;
  if (rc == 0) rc = submit(w, &BOB, "transfer", "\"asset\":\"%s\",\"to\":\"%s\",\"units\":1", ASSET_A, DAVE.hex);
  if (rc == 0) rc = tr_store_begin(w->s);
  if (rc == 0) rc = tr_store_history_flush(w->s);
  TR_CHECK_EQ_INT(rc, TR_ECORRUPT, "a flush whose rows do not start right after the mark is refused");
  tr_store_rollback(w->s);
  world_close(w);
  world_close(ref);
  unlink(path);
  char wal[80];
  snprintf(wal, sizeof wal, "%s-wal", path), unlink(wal);
  snprintf(wal, sizeof wal, "%s-shm", path), unlink(wal);
  rmdir(dir);
}

int main(void) {
  if (sodium_init() < 0) return 2;
  keys_init();
  test_writer_caches();
  test_history_deferred();
  test_kat();
  test_genesis();
  test_duplicate();
  test_expired();
  test_not_found();
  test_exists();
  test_unauthorized();
  test_frozen();
  test_not_verified();
  test_jurisdiction();
  test_lockup();
  test_min_units();
  test_max_holders();
  test_insufficient_units();
  test_exceeds_authorised();
  test_asset_not_active();
  test_invalid_updates();
  test_status_moves();
  test_effects();
  test_recover();
  test_distribution();
  test_check_order();
  return tr_test_done();
}
