/* test_replay.c — a property test of the ledger state machine and replay.
 *
 * A seeded xorshift PRNG (fixed seed: a failure reproduces) drives a few
 * thousand random txs of every type, valid and invalid, over a small world
 * (a pool of keys, three asset ids) in a database FILE.  For every tx:
 *   - tr_ledger_check's verdict (first reason, or none) equals
 *     tr_ledger_apply's (refusal reason, or accepted);
 *   - no tx gives an internal error.
 * After every batch (one write transaction, as the daemon's group commit):
 *   - for every asset, the sum of holding units equals issued, holders equals
 *     the number of holding rows, 0 < units and frozen ≤ units;
 *   - every distribution's payouts sum to its amount, one row per holder.
 * At the end tr_ledger_replay rebuilds the state from the journal and must
 * find it identical; then copies of the file are tampered with directly in
 * SQLite (triggers dropped) and replay must report TR_ECORRUPT and, for an
 * entry tamper, the right seq.  Checkpoints signed by the node key are
 * stored every few batches, as the daemon does; rows added to checkpoints
 * that the node did not sign for this tree must fail the audit.
 */
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_delta.h"
#include "tr_ledger.h"
#include "tr_mem.h"
#include "tr_note.h"
#include "tr_store.h"
#include "tr_tx.h"
#include "tr_test.h"

#define CHAIN "test.example/replay"
#define SEED 0x2545F4914F6CDD1DULL
#define N_TXS 3000
#define BATCH 50
#define N_KEYS 24      /* 0 node, 1 admin, 2-3 issuers, 4 agent, 5-13 investors, 14-23 not yet accounts */
#define N_ASSETS 3

/* ---- PRNG: xorshift64* ---- */
static uint64_t rng = SEED;
static uint64_t rnd(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1DULL;
}
static uint64_t rr(uint64_t n) { return n ? rnd() % n : 0; }
static bool chance(unsigned pct) { return rr(100) < pct; }

/* ---- keys ---- */
typedef struct {
  uint8_t sk[64];
  tr_key_t pk;
  char hex[65];
} who_t;
static who_t K[N_KEYS];
static const char *const ASSETS[N_ASSETS] = {"AAA", "BBB", "CCC"};
static const char *const JURS[] = {"US", "GB", "DE"};
static const char *const STATUSES[] = {"active", "matured", "defaulted", "paused", "closed"};
static const char *const ROLE_SETS[] = {"[]", "[\"investor\"]", "[\"agent\"]", "[\"issuer\"]", "[\"issuer\",\"investor\"]",
                                        "[\"admin\"]", "[\"agent\",\"investor\"]"};
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static int key_index(const uint8_t *pk) {
  for (int i = 0; i < N_KEYS; i++)
    if (memcmp(K[i].pk.b, pk, 32) == 0) return i;
  return -1;
}

/* ---- the world ---- */
typedef struct {
  tr_store_t *s;
  tr_ledger_t l;
  uint64_t now;
  unsigned next_id;
  char bytes[TR_TX_BYTES_MAX + 1], prev_bytes[TR_TX_BYTES_MAX + 1];
  size_t len, prev_len;
  int prev_signer;
  char prev_id[16], acc_id[16];   /* the last tx's id; the last accepted tx's id */
  bool conflict;                  /* next tx reuses the last accepted (signer, id) */
} world_t;

typedef struct {
  unsigned accepted, refused, envelope;
} tally_t;

static tally_t tally[TR_TX_TYPE_COUNT];
static unsigned reasons_seen[32], duplicates, internal_errors, check_mismatches;

/* Query helpers on the writer connection. */
static int accounts_list(world_t *w, int *out, int max) {
  sqlite3_stmt *st = NULL;
  int n = 0;
  sqlite3_prepare_v2(tr_store_db(w->s), "SELECT id FROM accounts ORDER BY id", -1, &st, NULL);
  while (sqlite3_step(st) == SQLITE_ROW && n < max) {
    int i = key_index(sqlite3_column_blob(st, 0));
    if (i >= 0) out[n++] = i;
  }
  sqlite3_finalize(st);
  return n;
}

typedef struct {
  int who;
  uint64_t units, frozen;
} hold_t;

static int holdings_list(world_t *w, const char *asset, hold_t *out, int max) {
  sqlite3_stmt *st = NULL;
  int n = 0;
  sqlite3_prepare_v2(tr_store_db(w->s), "SELECT account, units, frozen FROM holdings WHERE asset = ?1 ORDER BY account",
                     -1, &st, NULL);
  sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW && n < max) {
    out[n].who = key_index(sqlite3_column_blob(st, 0));
    out[n].units = (uint64_t)sqlite3_column_int64(st, 1);
    out[n].frozen = (uint64_t)sqlite3_column_int64(st, 2);
    if (out[n].who >= 0) n++;
  }
  sqlite3_finalize(st);
  return n;
}

/* The asset's issuer (a key index), -1 when the asset does not exist. */
static int asset_issuer(world_t *w, const char *asset, uint64_t *units, uint64_t *issued) {
  tr_asset_t a;
  if (tr_store_asset_get(w->s, asset, &a) != 0) return -1;
  tr_asset_clear(&a);
  if (units) *units = a.units;
  if (issued) *issued = a.issued;
  return key_index(a.issuer.b);
}

static int pick_account(world_t *w) {
  int v[N_KEYS];
  int n = accounts_list(w, v, N_KEYS);
  if (n == 0 || chance(8)) return 1 + (int)rr(N_KEYS - 1);
  return v[rr((uint64_t)n)];
}

static int pick_role(world_t *w, unsigned role) {
  int v[N_KEYS], c[N_KEYS], m = 0;
  int n = accounts_list(w, v, N_KEYS);
  for (int i = 0; i < n; i++) {
    tr_account_t a;
    if (tr_store_account_get(w->s, &K[v[i]].pk, &a) == 0 && (a.roles & role) && !a.frozen) c[m++] = v[i];
  }
  if (m == 0 || chance(10)) return pick_account(w);
  return c[rr((uint64_t)m)];
}

static const char *pick_asset(void) { return chance(3) ? "NOPE" : ASSETS[rr(N_ASSETS)]; }

static void rules_json(world_t *w, char *out, size_t n) {
  char j[32] = "";
  if (chance(50)) {
    int k = 1 + (int)rr(3);
    size_t o = 0;
    for (int i = 0; i < k; i++) o += (size_t)snprintf(j + o, sizeof j - o, "%s\"%s\"", i ? "," : "", JURS[(i + rr(2)) % 3]);
    /* a repeated code makes the tx invalid at the envelope: that is fine too */
  }
  snprintf(out, n, "{%s%s%s\"max_holders\":%llu,\"min_units\":%llu,\"lockup_until\":%llu}", j[0] ? "\"jurisdictions\":[" : "",
           j, j[0] ? "]," : "", (unsigned long long)(chance(50) ? 0 : 2 + rr(5)),
           (unsigned long long)(chance(60) ? 0 : 1 + rr(20)),
           (unsigned long long)(chance(70) ? 0 : w->now + rr(30000)));
}

/* Builds the next tx into w->bytes; returns the signer's key index. */
static int generate(world_t *w) {
  char body[4096], rules[256];
  const char *type = NULL;
  int signer = 1;
  const char *asset = pick_asset();
  uint64_t authorised = 0, issued = 0;
  int issuer = asset_issuer(w, asset, &authorised, &issued);
  hold_t h[N_KEYS];
  int nh = holdings_list(w, asset, h, N_KEYS);
  hold_t *hp = nh ? &h[rr((uint64_t)nh)] : NULL;
  uint64_t r = rr(100);
  if (r >= 91 && r < 95) r = 40; /* more transfers */
  if (r < 6) {
    type = "account.open";
    signer = pick_role(w, TR_ROLE_ADMIN);
    int acct = chance(85) ? 5 + (int)rr(N_KEYS - 5) : (int)rr(5);
    snprintf(body, sizeof body, "\"account\":\"%s\",\"roles\":%s,\"jurisdiction\":\"%s\",\"kyc\":%s", K[acct].hex,
             ROLE_SETS[rr(ARRAY_LEN(ROLE_SETS))], JURS[rr(3)], chance(80) ? "true" : "false");
  } else if (r < 14) {
    type = "account.update";
    signer = pick_role(w, TR_ROLE_ADMIN);
    int acct = pick_account(w);
    switch (rr(4)) {
    case 0: snprintf(body, sizeof body, "\"account\":\"%s\",\"frozen\":%s", K[acct].hex, chance(15) ? "true" : "false"); break;
    case 1: snprintf(body, sizeof body, "\"account\":\"%s\",\"kyc\":%s", K[acct].hex, chance(85) ? "true" : "false"); break;
    case 2: snprintf(body, sizeof body, "\"account\":\"%s\",\"jurisdiction\":\"%s\"", K[acct].hex, JURS[rr(3)]); break;
    default:
      snprintf(body, sizeof body, "\"account\":\"%s\",\"roles\":%s,\"frozen\":false", K[acct].hex,
               ROLE_SETS[rr(ARRAY_LEN(ROLE_SETS))]);
    }
  } else if (r < 16) {
    type = "account.recover";
    signer = chance(50) ? pick_role(w, TR_ROLE_AGENT) : pick_role(w, TR_ROLE_ADMIN);
    int from = pick_account(w), to = 1 + (int)rr(N_KEYS - 1);
    if (chance(5)) to = 0; /* the node key: exists */
    snprintf(body, sizeof body, "\"account\":\"%s\",\"to\":\"%s\",\"reason\":\"lost key\"", K[from].hex, K[to].hex);
  } else if (r < 20) {
    type = "asset.create";
    signer = pick_role(w, TR_ROLE_ISSUER);
    rules_json(w, rules, sizeof rules);
    uint64_t units = chance(10) ? TR_INT_MAX : 1000 + rr(100000);
    snprintf(body, sizeof body,
             "\"asset\":\"%s\",\"name\":\"Asset\",\"kind\":\"bond\",\"currency\":\"USD\",\"principal\":%llu,\"units\":%llu,"
             "\"coupon_bps\":%llu,\"maturity\":\"2030-02-28\",\"rating\":\"AA\",\"risk_weight_pct\":%llu,\"rules\":%s",
             asset, (unsigned long long)(1 + rr(1000000000)), (unsigned long long)units,
             (unsigned long long)rr(2000), (unsigned long long)rr(1251), rules);
  } else if (r < 24) {
    type = "asset.update";
    signer = issuer >= 0 && chance(90) ? issuer : pick_account(w);
    rules_json(w, rules, sizeof rules);
    if (chance(50)) snprintf(body, sizeof body, "\"asset\":\"%s\",\"rules\":%s", asset, rules);
    else snprintf(body, sizeof body, "\"asset\":\"%s\",\"rating\":\"B\",\"documents\":[{\"name\":\"terms\",\"sha256\":\"%s\"}]",
                  asset, K[0].hex);
  } else if (r < 38) {
    type = "asset.issue";
    signer = issuer >= 0 && chance(90) ? issuer : pick_account(w);
    uint64_t units = chance(10) && authorised > issued ? authorised - issued + rr(2) : 1 + rr(300);
    snprintf(body, sizeof body, "\"asset\":\"%s\",\"to\":\"%s\",\"units\":%llu", asset, K[pick_account(w)].hex,
             (unsigned long long)units);
  } else if (r < 64) {
    type = "transfer";
    signer = hp && chance(90) ? hp->who : pick_account(w);
    uint64_t held = hp ? hp->units : 10;
    uint64_t units = chance(25) ? held : chance(10) ? held + 1 : 1 + rr(held);
    int to = pick_account(w);
    if (to == signer) to = (to % (N_KEYS - 1)) + 1;
    snprintf(body, sizeof body, "\"asset\":\"%s\",\"to\":\"%s\",\"units\":%llu%s", asset, K[to].hex,
             (unsigned long long)units, chance(20) ? ",\"memo\":\"inv 42\"" : "");
  } else if (r < 70) {
    type = "transfer.force";
    signer = chance(50) ? pick_role(w, TR_ROLE_AGENT) : pick_role(w, TR_ROLE_ADMIN);
    int from = hp ? hp->who : pick_account(w), to = pick_account(w);
    if (to == from) to = (to % (N_KEYS - 1)) + 1;
    uint64_t held = hp ? hp->units : 5;
    snprintf(body, sizeof body, "\"asset\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"units\":%llu,\"reason\":\"court\"", asset,
             K[from].hex, K[to].hex, (unsigned long long)(chance(30) ? held : 1 + rr(held + 1)));
  } else if (r < 77) {
    type = "holding.freeze";
    signer = chance(50) ? pick_role(w, TR_ROLE_AGENT) : pick_role(w, TR_ROLE_ADMIN);
    int acct = hp && chance(90) ? hp->who : pick_account(w);
    uint64_t held = hp ? hp->units : 3;
    snprintf(body, sizeof body, "\"asset\":\"%s\",\"account\":\"%s\",\"units\":%llu", asset, K[acct].hex,
             (unsigned long long)(chance(30) ? 0 : rr(held + 2)));
  } else if (r < 84) {
    type = "asset.redeem";
    signer = issuer >= 0 && chance(90) ? issuer : pick_account(w);
    int from = hp ? hp->who : pick_account(w);
    uint64_t held = hp ? hp->units : 5;
    snprintf(body, sizeof body, "\"asset\":\"%s\",\"from\":\"%s\",\"units\":%llu,\"amount\":%llu", asset, K[from].hex,
             (unsigned long long)(chance(40) ? held : 1 + rr(held + 1)), (unsigned long long)rr(100000));
  } else if (r < 91) {
    type = "asset.distribute";
    signer = issuer >= 0 && chance(90) ? issuer : pick_account(w);
    uint64_t amount = chance(10) ? TR_INT_MAX - rr(1000) : 1 + rr(chance(50) ? 100 : 100000000);
    snprintf(body, sizeof body, "\"asset\":\"%s\",\"amount\":%llu,\"kind\":\"%s\"", asset, (unsigned long long)amount,
             chance(50) ? "interest" : "principal");
  } else {
    type = "asset.status";
    signer = chance(60) && issuer >= 0 ? issuer : pick_role(w, TR_ROLE_ADMIN);
    /* closing is rare unless nothing is issued */
    const char *st = chance(50) ? "active" : STATUSES[rr(issued == 0 ? 5 : 4)];
    snprintf(body, sizeof body, "\"asset\":\"%s\",\"status\":\"%s\"", asset, st);
  }
  if (signer < 0) signer = 1;
  snprintf(w->prev_id, sizeof w->prev_id, "r%u", ++w->next_id);
  if (w->conflict) {
    signer = w->prev_signer;
    snprintf(w->prev_id, sizeof w->prev_id, "%s", w->acc_id);
  }
  char exp[48] = "";
  if (chance(5)) snprintf(exp, sizeof exp, ",\"expires\":%llu", (unsigned long long)(w->now - 2000 + rr(4000)));
  w->len = (size_t)snprintf(w->bytes, sizeof w->bytes, "{\"type\":\"%s\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"%s\"%s,%s}",
                            type, CHAIN, K[signer].hex, w->prev_id, exp, body);
  return signer;
}

/* Applies w->bytes signed by K[signer]; checks tx.check agrees with apply. */
static void step(world_t *w, int signer) {
  tr_tx_t *tx = calloc(1, sizeof *tx);
  tr_tx_error_t err;
  if (tr_tx_decode(w->bytes, w->len, tx, &err) != 0) {
    /* envelope refusals (e.g. to = signer) are step 1: nothing to apply */
    tally[TR_TX_GENESIS].envelope++;
    free(tx);
    return;
  }
  uint8_t sig[64];
  tr_tx_sign(w->bytes, w->len, K[signer].sk, sig);
  tr_refusal_t reasons[TR_REFUSALS_MAX];
  size_t n = 0;
  uint64_t dup = 0;
  int crc = tr_ledger_check(&w->l, tx, w->now, reasons, &n, &dup);
  tr_receipt_t rcpt = {0};
  tr_refusal_t ref = {0};
  int rc = tr_ledger_apply(&w->l, tx, w->bytes, w->len, sig, w->now, &rcpt, &ref);
  if (rc != 0 && !tr_err_is_refusal(rc)) {
    internal_errors++;
    printf("# internal error %s on %s\n", tr_strerror(rc), w->bytes);
  } else if (crc != 0) {
    internal_errors++;
    printf("# tx.check internal error %s on %s\n", tr_strerror(crc), w->bytes);
  } else {
    bool agree = rc == 0 ? (n == 0 && (dup != 0) == rcpt.duplicate && (dup == 0 || dup == rcpt.seq))
                         : (n > 0 && reasons[0].code == rc && ref.code == rc);
    if (!agree) {
      check_mismatches++;
      printf("# check/apply disagree (apply %s, check %s) on %s\n", rc ? tr_err_reason(rc) : "ok",
             n ? tr_err_reason(reasons[0].code) : "ok", w->bytes);
    }
    if (rc == 0 && rcpt.duplicate) duplicates++;
    else if (rc == 0) tally[tx->type].accepted++;
    else {
      tally[tx->type].refused++;
      unsigned c = (unsigned)(rc - TR_ERR_FIRST_);
      if (c < 32) reasons_seen[c]++;
    }
  }
  if (rc == 0 && !rcpt.duplicate) {
    memcpy(w->prev_bytes, w->bytes, w->len + 1);
    w->prev_len = w->len;
    w->prev_signer = signer;
    memcpy(w->acc_id, w->prev_id, sizeof w->acc_id);
  }
  tr_receipt_clear(&rcpt);
  free(tx);
}

/* Invariants over the derived state; returns the number of violations. */
static unsigned invariants(world_t *w, const char **what) {
  static const struct { const char *name, *sql; } checks[] = {
    {"sum of holdings = issued",
     "SELECT count(*) FROM assets a WHERE a.issued != (SELECT coalesce(sum(units), 0) FROM holdings h WHERE h.asset = a.id)"},
    {"holders = holding rows",
     "SELECT count(*) FROM assets a WHERE a.holders != (SELECT count(*) FROM holdings h WHERE h.asset = a.id)"},
    {"0 < units, 0 <= frozen <= units", "SELECT count(*) FROM holdings WHERE units <= 0 OR frozen < 0 OR frozen > units"},
    {"issued <= authorised", "SELECT count(*) FROM assets WHERE issued > units OR issued < 0"},
    {"holdings name known assets and accounts",
     "SELECT count(*) FROM holdings h WHERE NOT EXISTS (SELECT 1 FROM assets a WHERE a.id = h.asset)"
     " OR NOT EXISTS (SELECT 1 FROM accounts c WHERE c.id = h.account)"},
    {"payouts sum to the distribution amount",
     "SELECT count(*) FROM distributions d WHERE d.amount != (SELECT coalesce(sum(amount), 0) FROM payouts p WHERE"
     " p.distribution = d.seq) OR d.count != (SELECT count(*) FROM payouts p WHERE p.distribution = d.seq)"},
    {"one receipt per entry", "SELECT (SELECT count(*) FROM entries) - (SELECT count(*) FROM receipts)"},
  };
  unsigned bad = 0;
  for (size_t i = 0; i < ARRAY_LEN(checks); i++) {
    sqlite3_stmt *st = NULL;
    sqlite3_int64 v = -1;
    if (sqlite3_prepare_v2(tr_store_db(w->s), checks[i].sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (v != 0) {
      bad++;
      *what = checks[i].name;
    }
  }
  return bad;
}

/* ---- files ---- */
static int copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
  if (!in || !out) {
    if (in) fclose(in);
    return -1;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
  fclose(in);
  return fclose(out);
}

/* A copy of the database (and its WAL, if any) at dir/name. */
static void copy_db(const char *db, const char *dir, const char *name, char *out, size_t n) {
  char wal[600], owal[600];
  int a = snprintf(out, n, "%s/%s", dir, name);
  int b = snprintf(wal, sizeof wal, "%s-wal", db);
  int c = snprintf(owal, sizeof owal, "%s-wal", out);
  if (a < 0 || (size_t)a >= n || b < 0 || (size_t)b >= sizeof wal || c < 0 || (size_t)c >= sizeof owal) {
    printf("# path too long for a copy: %s/%s\n", dir, name);
    exit(1);
  }
  copy_file(db, out);
  if (access(wal, F_OK) == 0) copy_file(wal, owal);
}

static int sql_exec(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
  char *err = NULL;
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) printf("# sql on %s: %s\n", path, err ? err : sqlite3_errmsg(db));
  sqlite3_free(err);
  sqlite3_close(db);
  return rc;
}

/* The first column of the first row of a query, as an integer (-1 on error). */
static long long sql_int(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

/* Flips one byte of entry seq's tx bytes (the append-only trigger dropped). */
static int tamper_tx_byte(const char *path, uint64_t seq) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "DROP TRIGGER entries_append_only_u", NULL, NULL, NULL);
  char *tx = NULL;
  int n = 0;
  if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, "SELECT tx FROM entries WHERE seq = ?1", -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    if (sqlite3_step(st) == SQLITE_ROW) {
      n = sqlite3_column_bytes(st, 0);
      tx = malloc((size_t)n + 1);
      memcpy(tx, sqlite3_column_blob(st, 0), (size_t)n);
      tx[n] = '\0';
    }
    sqlite3_finalize(st);
    st = NULL;
  }
  if (tx == NULL) rc = SQLITE_ERROR;
  if (rc == SQLITE_OK) {
    /* an id character r1234 → s1234: still valid JSON, another tx */
    char *p = strstr(tx, "\"id\":\"r");
    if (p) p[6] = 's';
    else tx[n / 2] ^= 1;
    rc = sqlite3_prepare_v2(db, "UPDATE entries SET tx = ?2 WHERE seq = ?1", -1, &st, NULL);
  }
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_blob(st, 2, tx, n, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db) == 1 ? SQLITE_OK : SQLITE_ERROR;
  }
  sqlite3_finalize(st);
  free(tx);
  sqlite3_close(db);
  return rc;
}

/* A checkpoint of the head signed by the node key (K[0]), as the sequencer
 * stores one inside a batch's transaction. */
static int put_checkpoint(tr_store_t *s, uint64_t time) {
  uint64_t size = 0;
  uint8_t root[32];
  char note[TR_CHECKPOINT_NOTE_BUF_BYTES];
  size_t len;
  int rc = tr_store_head(s, &size, NULL, NULL);
  if (rc == 0) rc = tr_store_merkle_root(s, size, root);
  if (rc == 0) rc = tr_checkpoint_sign(CHAIN, size, root, K[0].sk, note, sizeof note, &len);
  if (rc == 0) rc = tr_store_checkpoint_put(s, size, root, time, note);
  return rc;
}

/* Adds one row to checkpoints, as sqlite3 on the file would (no trigger stops
 * an INSERT).  root NULL: 32 zero bytes; time_text: the time column as text. */
static int insert_checkpoint(const char *path, uint64_t size, const uint8_t *root, const char *time_text,
                             const char *note) {
  static const uint8_t zero[32];
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db, "INSERT INTO checkpoints (size, root, time, note) VALUES (?1, ?2, ?3, ?4)", -1, &st,
                            NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
    sqlite3_bind_blob(st, 2, root ? root : zero, 32, SQLITE_STATIC);
    if (time_text) sqlite3_bind_text(st, 3, time_text, -1, SQLITE_STATIC);
    else sqlite3_bind_int64(st, 3, 1700000000000LL);
    sqlite3_bind_text(st, 4, note, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  }
  if (rc != SQLITE_OK) printf("# insert checkpoint %llu on %s: %s\n", (unsigned long long)size, path, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

typedef struct {
  tr_store_t *s;
  uint64_t next, stop_at;
  unsigned mismatches;
} scan_t;

static int scan_check(void *ctx, const tr_entry_t *e) {
  scan_t *sc = ctx;
  if (e->seq == sc->stop_at) return TR_ELIMIT;
  tr_entry_t g;
  if (e->seq != sc->next || tr_store_entry_get(sc->s, e->seq, &g) != 0) {
    sc->mismatches++;
    return 0;
  }
  if (g.time != e->time || memcmp(g.hash, e->hash, 32) || memcmp(g.prev, e->prev, 32) || memcmp(g.txid, e->txid, 32) ||
      memcmp(g.sig, e->sig, 64) || memcmp(g.signer.b, e->signer.b, 32) || strcmp(g.tx_id, e->tx_id) != 0 ||
      g.tx_len != e->tx_len || memcmp(g.tx, e->tx, e->tx_len) != 0)
    sc->mismatches++;
  tr_entry_clear(&g);
  sc->next++;
  return 0;
}


/* ---- the node's path: rules over tr_mem, journal first, state rows behind ---- */

typedef struct {
  tr_store_t *s;                  /* the node's store */
  tr_mem_t m;
  tr_ledger_t l;
  tr_delta_t *delta, *pending;    /* the current batch's; one journalled, not yet written behind */
  tr_delta_sink_t sink;
  unsigned crashes, lagging_audits;
} node_t;

static int node_entry(void *ctx, uint64_t seq, tr_entry_t *e) { return tr_store_entry_get(((node_t *)ctx)->s, seq, e); }

static int node_receipt(void *ctx, uint64_t seq, char **json) {
  node_t *n = ctx;
  int rc = n->pending ? tr_delta_receipt_get(n->pending, seq, json) : TR_ENOT_FOUND;
  return rc == TR_ENOT_FOUND ? tr_store_receipt_get(n->s, seq, json) : rc;
}

/* As tranched's writer behind: the pending delta's rows, and (`lookups`)
 * the lookup rows of every entry after their mark up to the delta's last. */
static int node_write_behind(node_t *n, bool lookups) {
  if (n->pending == NULL) return 0;
  uint64_t mark = 0;
  int rc = tr_store_begin(n->s);
  if (rc == 0) rc = tr_store_derived_write(n->s, n->pending);
  if (rc == 0 && lookups) rc = tr_store_lookups_mark(n->s, &mark);
  if (rc == 0 && lookups && n->pending->last > mark) rc = tr_store_lookups_write(n->s, mark, n->pending->last, false);
  if (rc == 0) rc = tr_store_commit(n->s);
  tr_delta_free(n->pending);
  n->pending = NULL;
  return rc;
}

/* As tranched starts: the state tables at their mark, then the journal's tail. */
static int node_load(node_t *n) {
  uint64_t through = 0, head = 0;
  char err[256] = "";
  n->sink = (tr_delta_sink_t){.mem = &n->m, .lookup_entry = node_entry, .lookup_receipt = node_receipt,
                              .lookup_ctx = n};
  int rc = tr_mem_init(&n->m, &tr_delta_sink_ops, &n->sink);
  if (rc == 0) rc = (n->delta = tr_delta_new()) ? 0 : TR_ENOMEM;
  n->sink.delta = n->delta;
  if (rc == 0) rc = tr_store_derived_mark(n->s, &through);
  if (rc == 0) rc = tr_mem_load(&n->m, n->s, through, err, sizeof err);
  if (rc == 0) rc = tr_ledger_load(&n->l, n->s);
  n->l.ops = &tr_mem_state_ops;
  n->l.ctx = &n->m;
  tr_mem_track_changes(&n->m, true);
  if (rc == 0) rc = tr_store_head(n->s, &head, NULL, NULL);
  if (rc == 0) rc = tr_mem_replay(&n->m, &n->l, n->s, head, err, sizeof err);
  if (rc == 0) rc = tr_delta_take_changes(n->delta, &n->m);
  if (rc != 0) printf("# node load: %s %s\n", tr_strerror(rc), err);
  n->pending = n->delta; /* the replayed tail's rows, written behind next */
  n->delta = NULL;
  return rc;
}

/* A hard stop: the delta not written behind is lost with the memory. */
static int node_crash(node_t *n, const char *path) {
  tr_delta_free(n->pending);
  tr_delta_free(n->delta);
  n->pending = n->delta = NULL;
  tr_mem_free(&n->m);
  tr_store_close(n->s);
  char err[256];
  n->crashes++;
  int rc = tr_store_open(path, 0, &n->s, err, sizeof err);
  return rc == 0 ? node_load(n) : rc;
}

/* Entries 2..size of `from` (the SQLite path's journal) through the node's
 * path into a fresh store at `path`: batches of ~40 entries, each journalled
 * and then written behind one batch later; every fifth batch's rows are lost
 * to a crash, and every seventh time the node is audited while it lags. */
static void node_path(const char *from_path, const char *path, uint64_t size) {
  node_t *n = calloc(1, sizeof *n);
  tr_store_t *from = NULL;
  char err[256] = "";
  uint64_t genesis_time = 0;
  tr_entry_t g;
  int rc = tr_store_open(from_path, TR_STORE_READONLY, &from, err, sizeof err);
  if (rc == 0 && (rc = tr_store_entry_get(from, 1, &g)) == 0) {
    genesis_time = g.time;
    tr_entry_clear(&g);
  }
  if (rc == 0) rc = tr_store_open(path, TR_STORE_CREATE, &n->s, err, sizeof err);
  if (rc == 0) rc = tr_ledger_genesis(n->s, CHAIN, K[0].sk, &K[1].pk, genesis_time);
  if (rc == 0) rc = node_load(n);
  TR_CHECK(rc == 0, "node path: a fresh store with the same genesis, loaded into memory (%s %s)", tr_strerror(rc), err);
  tr_tx_t *tx = calloc(1, sizeof *tx);
  unsigned batch = 0, same = 0, differ = 0;
  for (uint64_t seq = 2; rc == 0 && seq <= size; seq++) {
    if (n->delta == NULL && (n->delta = tr_delta_new()) == NULL) rc = TR_ENOMEM;
    n->sink.delta = n->delta;
    tr_entry_t e;
    tr_tx_error_t txerr;
    if (rc == 0) rc = tr_store_entry_get(from, seq, &e);
    if (rc != 0) break;
    rc = tr_tx_decode(e.tx, e.tx_len, tx, &txerr);
    tr_receipt_t r = {0};
    tr_refusal_t ref = {0};
    if (rc == 0) rc = tr_ledger_apply(&n->l, tx, e.tx, e.tx_len, e.sig, e.time, &r, &ref);
    if (rc == 0 && !r.duplicate && r.seq == e.seq && memcmp(r.hash, e.hash, 32) == 0) same++;
    else differ++;
    tr_receipt_clear(&r);
    tr_entry_clear(&e);
    if (rc != 0 || (seq % 40 != 0 && seq != size)) continue;
    /* the group commit: entries only; then last batch's rows behind */
    rc = tr_delta_take_changes(n->delta, &n->m);
    if (rc == 0) rc = tr_store_begin(n->s);
    if (rc == 0) rc = tr_store_journal_append(n->s, n->delta);
    if (rc == 0) rc = tr_store_commit(n->s);
    if (rc == 0) rc = node_write_behind(n, batch % 3 == 2); /* late, in runs of ~120 entries */
    n->pending = n->delta;
    n->delta = NULL;
    batch++;
    if (rc == 0 && batch % 7 == 6) {
      tr_replay_report_t rep;
      int a = tr_ledger_replay(path, NULL, NULL, &rep);
      if (a != 0) printf("# audit of the lagging node at %llu: %s\n", (unsigned long long)seq, rep.message);
      else n->lagging_audits++;
    }
    if (rc == 0 && batch % 5 == 4) rc = node_crash(n, path);
  }
  if (rc == 0) rc = node_write_behind(n, true); /* as at a stop: every lookup row */
  TR_CHECK(rc == 0 && differ == 0 && same == size - 1,
           "node path: all %llu entries come out of memory as the SQLite path made them (%u differ; %s)",
           (unsigned long long)size - 1, differ, tr_strerror(rc));
  TR_CHECK(n->crashes >= 4 && n->lagging_audits >= 3,
           "node path: %u crashes with rows unwritten rebuilt from the journal; %u audits while lagging passed",
           n->crashes, n->lagging_audits);
  free(tx);
  tr_delta_free(n->delta);
  tr_mem_free(&n->m);
  tr_store_close(n->s);
  tr_store_close(from);
  free(n);
}

/* One integer from sql on `a` with `b` attached as "other". */
static long long sql_int_attached(const char *a, const char *b, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *att = NULL, *st = NULL;
  long long v = -1;
  if (sqlite3_open_v2(a, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "ATTACH ?1 AS other", -1, &att, NULL) == SQLITE_OK &&
      sqlite3_bind_text(att, 1, b, -1, SQLITE_STATIC) == SQLITE_OK && sqlite3_step(att) == SQLITE_DONE &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  else
    printf("# sql on %s + %s: %s\n", a, b, sqlite3_errmsg(db));
  sqlite3_finalize(att);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

/* Every row of every state table is the same in both files; a lookup
 * table's rows in either of its two levels (schema 007). */
static long long tables_differ(const char *a, const char *b) {
  static const char *const tables[] = {"meta", "accounts", "assets", "holdings", "account_entries", "receipts",
                                       "distributions", "payouts", "merkle_nodes", "entry_txids", "entry_ids",
                                       "lookup_progress"};
  long long rows = 0;
  for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
    const char *t = tables[i];
    bool leveled = strncmp(t, "entry_", 6) == 0;
    char mine[160], theirs[160], q[1024];
    snprintf(mine, sizeof mine, leveled ? "SELECT * FROM (SELECT * FROM %s UNION ALL SELECT * FROM %s_recent)"
                                        : "SELECT * FROM %s", t, t);
    snprintf(theirs, sizeof theirs,
             leveled ? "SELECT * FROM (SELECT * FROM other.%s UNION ALL SELECT * FROM other.%s_recent)"
                     : "SELECT * FROM other.%s", t, t);
    snprintf(q, sizeof q,
             "SELECT (SELECT count(*) FROM (%s EXCEPT %s)) + (SELECT count(*) FROM (%s EXCEPT %s))", mine, theirs,
             theirs, mine);
    long long d = sql_int_attached(a, b, q);
    if (d != 0) printf("# table %s: %lld rows differ\n", t, d);
    rows += d < 0 ? 1 : d;
  }
  return rows;
}

/* Opens a database of an older schema for writing, which migrates it. */
static void migrate(const char *path) {
  tr_store_t *s = NULL;
  char err[256] = "";
  int rc = tr_store_open(path, 0, &s, err, sizeof err);
  TR_CHECK(rc == 0, "opening it migrates it (%s)", err);
  tr_store_close(s);
}

static uint64_t progress_done, progress_total;
static void progress(void *ctx, uint64_t done, uint64_t total) {
  (void)ctx;
  progress_done = done;
  progress_total = total;
}

static void expect_corrupt(const char *path, uint64_t bad_seq, const char *mention, const char *what) {
  tr_replay_report_t rep;
  int rc = tr_ledger_replay(path, NULL, NULL, &rep);
  TR_CHECK(rc == TR_ECORRUPT && rep.bad_seq == bad_seq && (mention == NULL || strstr(rep.message, mention)),
           "%s: replay reports TR_ECORRUPT at seq %llu (got %s, seq %llu: %s)", what, (unsigned long long)bad_seq,
           tr_strerror(rc), (unsigned long long)rep.bad_seq, rep.message);
}

int main(void) {
  if (sodium_init() < 0) return 2;
  for (int i = 0; i < N_KEYS; i++) {
    uint8_t seed[32];
    for (int j = 0; j < 32; j++) seed[j] = (uint8_t)(i * 31 + j + 1);
    crypto_sign_seed_keypair(K[i].pk.b, K[i].sk, seed);
    tr_hex_encode(K[i].pk.b, 32, K[i].hex);
  }
  /* odd characters a datadir may hold: a URI built from it must escape them */
  char dir[] = "/tmp/tranche replay #1 ?50%-XXXXXX";
  if (mkdtemp(dir) == NULL) return 2;
  char path[512], err[256] = "";
  snprintf(path, sizeof path, "%s/tranche.db", dir);

  world_t *w = calloc(1, sizeof *w);
  w->now = 1700000000000ULL;
  int rc = tr_store_open(path, TR_STORE_CREATE, &w->s, err, sizeof err);
  if (rc == 0) rc = tr_ledger_genesis(w->s, CHAIN, K[0].sk, &K[1].pk, w->now);
  if (rc == 0) rc = tr_ledger_load(&w->l, w->s);
  TR_CHECK(rc == 0, "file store with genesis (%s %s)", tr_strerror(rc), err);
  if (rc != 0) return tr_test_done();

  /* A starting world: issuers, an agent, investors in three jurisdictions. */
  static const struct { int key; const char *roles, *jur; bool kyc; } start[] = {
    {2, "[\"issuer\"]", "US", true}, {3, "[\"issuer\",\"investor\"]", "GB", true}, {4, "[\"agent\"]", "US", true},
    {5, "[\"investor\"]", "US", true}, {6, "[\"investor\"]", "US", true}, {7, "[\"investor\"]", "GB", true},
    {8, "[\"investor\"]", "DE", true}, {9, "[\"investor\"]", "US", false}, {10, "[\"investor\"]", "US", true},
  };
  tr_store_begin(w->s);
  for (size_t i = 0; i < ARRAY_LEN(start); i++) {
    snprintf(w->prev_id, sizeof w->prev_id, "s%zu", i);
    w->len = (size_t)snprintf(w->bytes, sizeof w->bytes,
                              "{\"type\":\"account.open\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"%s\",\"account\":\"%s\","
                              "\"roles\":%s,\"jurisdiction\":\"%s\",\"kyc\":%s}",
                              CHAIN, K[1].hex, w->prev_id, K[start[i].key].hex, start[i].roles, start[i].jur,
                              start[i].kyc ? "true" : "false");
    step(w, 1);
  }
  tr_store_commit(w->s);

  unsigned violations = 0, batches = 0;
  const char *violated = "";
  for (int i = 0; i < N_TXS; i++) {
    if (i % BATCH == 0) tr_store_begin(w->s);
    w->now += rr(3000);
    uint64_t clock = w->now;
    if (chance(5)) w->now -= rr(5000); /* a clock behind the head: entry time stays the head time */
    uint64_t r = rr(100);
    if (r < 3 && w->prev_len) {
      /* the same bytes again: a duplicate */
      memcpy(w->bytes, w->prev_bytes, w->prev_len + 1);
      w->len = w->prev_len;
      step(w, w->prev_signer);
    } else if (r < 5 && w->prev_len) {
      /* a different tx reusing an accepted (signer, id): id_conflict */
      w->conflict = true;
      step(w, generate(w));
      w->conflict = false;
    } else {
      step(w, generate(w));
    }
    w->now = clock;
    if (i % BATCH == BATCH - 1 || i == N_TXS - 1) {
      if (batches % 7 == 3 && put_checkpoint(w->s, clock) != 0) internal_errors++;
      if (tr_store_commit(w->s) != 0) internal_errors++;
      batches++;
      violations += invariants(w, &violated);
    }
  }
  TR_CHECK(violations == 0, "invariants held after each of %u batches (%u violations, last: %s)", batches, violations,
           violated);
  TR_CHECK(internal_errors == 0, "no internal errors (%u)", internal_errors);
  TR_CHECK(check_mismatches == 0, "tx.check's first reason equals apply's verdict on every tx (%u mismatches)",
           check_mismatches);
  unsigned total_acc = 0, total_ref = 0;
  for (int t = TR_TX_ACCOUNT_OPEN; t < TR_TX_TYPE_COUNT; t++) {
    printf("# %-16s accepted %4u refused %4u\n", tr_tx_type_name((tr_tx_type_t)t), tally[t].accepted, tally[t].refused);
    TR_CHECK(tally[t].accepted > 0 && tally[t].refused > 0, "%s: both accepted and refused txs generated",
             tr_tx_type_name((tr_tx_type_t)t));
    total_acc += tally[t].accepted;
    total_ref += tally[t].refused;
  }
  printf("# envelope-invalid %u, duplicates %u\n", tally[TR_TX_GENESIS].envelope, duplicates);
  unsigned distinct = 0;
  for (int c = 0; c < 32; c++) {
    if (reasons_seen[c]) {
      distinct++;
      printf("# %-20s %u\n", tr_err_reason(TR_ERR_FIRST_ + c), reasons_seen[c]);
    }
  }
  TR_CHECK(duplicates > 0, "duplicates exercised (%u)", duplicates);
  TR_CHECK(distinct >= 12, "at least 12 distinct refusal reasons exercised (%u)", distinct);
  TR_CHECK(total_acc > 500 && total_ref > 300, "a real mix: %u accepted, %u refused", total_acc, total_ref);

  uint64_t size = 0;
  tr_store_head(w->s, &size, NULL, NULL);

  /* The range scan the audit reads with: every seq in order, each entry as
   * tr_store_entry_get gives it, and a nonzero return stops it. */
  scan_t sc = {.s = w->s, .next = 5, .stop_at = 0};
  rc = tr_store_entries_scan(w->s, 5, 204, scan_check, &sc);
  TR_CHECK(rc == 0 && sc.next == 205 && sc.mismatches == 0, "entries_scan 5..204 in order, same as entry_get (%s, next %llu, %u mismatches)",
           tr_strerror(rc), (unsigned long long)sc.next, sc.mismatches);
  sc = (scan_t){.s = w->s, .next = size - 1, .stop_at = 0};
  rc = tr_store_entries_scan(w->s, size - 1, size + 50, scan_check, &sc);
  TR_CHECK(rc == 0 && sc.next == size + 1, "entries_scan past the head ends at the head (next %llu)", (unsigned long long)sc.next);
  sc = (scan_t){.s = w->s, .next = 1, .stop_at = 3};
  rc = tr_store_entries_scan(w->s, 1, size, scan_check, &sc);
  TR_CHECK(rc == TR_ELIMIT && sc.next == 3, "entries_scan stops at the callback's first nonzero return (%s)", tr_strerror(rc));

  /* A size with no checkpoint row, and the tree's root there and one past it. */
  uint64_t cp_free = size / 3;
  char q[96];
  for (;; cp_free++) {
    snprintf(q, sizeof q, "SELECT count(*) FROM checkpoints WHERE size = %llu", (unsigned long long)cp_free);
    if (sql_int(path, q) == 0) break;
  }
  uint8_t root_free[32], root_next[32];
  rc = tr_store_merkle_root(w->s, cp_free, root_free);
  if (rc == 0) rc = tr_store_merkle_root(w->s, cp_free + 1, root_next);
  TR_CHECK(rc == 0 && cp_free + 1 < size, "roots at %llu and %llu, which hold no checkpoint row",
           (unsigned long long)cp_free, (unsigned long long)cp_free + 1);
  tr_store_close(w->s);
  free(w);
  long long checkpoints = sql_int(path, "SELECT count(*) FROM checkpoints");
  TR_CHECK(checkpoints >= 5, "the run stored checkpoints signed by the node key (%lld)", checkpoints);

  /* Replay equals the live state. */
  tr_replay_report_t rep;
  rc = tr_ledger_replay(path, progress, NULL, &rep);
  TR_CHECK(rc == 0, "replay of %llu entries equals the live state (%s: seq %llu %s)", (unsigned long long)size,
           tr_strerror(rc), (unsigned long long)rep.bad_seq, rep.message);
  TR_CHECK(progress_done == size && progress_total == size, "progress reached %llu/%llu",
           (unsigned long long)progress_done, (unsigned long long)progress_total);

  /* The node's path over the same journal gives the same tables. */
  char node_db[600];
  snprintf(node_db, sizeof node_db, "%s/node.db", dir);
  node_path(path, node_db, size);
  long long differ = tables_differ(path, node_db);
  TR_CHECK(differ == 0, "node path: every state table equals the SQLite path's (%lld rows differ)", differ);
  rc = tr_ledger_replay(node_db, NULL, NULL, &rep);
  TR_CHECK(rc == 0, "node path: the audit passes on the node's store (%s)", rep.message);

  /* A relative path works too. */
  char cwd[1024];
  if (getcwd(cwd, sizeof cwd) != NULL && chdir(dir) == 0) {
    rc = tr_ledger_replay("tranche.db", NULL, NULL, &rep);
    TR_CHECK(rc == 0, "replay by a relative path (%s)", rep.message);
    if (chdir(cwd) != 0) return 2;
  }

  /* Tampering. */
  char copy[600];
  uint64_t k = size / 2;
  copy_db(path, dir, "copy.db", copy, sizeof copy);
  rc = tr_ledger_replay(copy, NULL, NULL, &rep);
  TR_CHECK(rc == 0, "an untouched copy replays clean (%s)", rep.message);

  copy_db(path, dir, "tx.db", copy, sizeof copy);
  TR_CHECK(tamper_tx_byte(copy, k) == SQLITE_OK, "tampered entry %llu's tx bytes", (unsigned long long)k);
  expect_corrupt(copy, k, "txid", "one tx byte changed");

  copy_db(path, dir, "genesis.db", copy, sizeof copy);
  TR_CHECK(tamper_tx_byte(copy, 1) == SQLITE_OK, "tampered the genesis bytes");
  expect_corrupt(copy, 1, NULL, "genesis byte changed");

  /* One SQL edit of a copy each.  Rows made by one entry name that entry (its
   * seq read from the untouched file by seq_sql when not fixed); state rows
   * and the schema name the table or object. */
  static const struct {
    const char *sql, *seq_sql, *mention, *what;
    long long seq; /* -1: the journal size */
  } edits[] = {
    {"DROP TRIGGER entries_append_only_u; UPDATE entries SET time = time + 1 WHERE seq = 7", NULL, "hash",
     "an entry's time changed", 7},
    {"DROP TRIGGER entries_append_only_u; UPDATE entries SET prev = zeroblob(32) WHERE seq = 5", NULL, "prev",
     "an entry's prev link changed", 5},
    {"UPDATE holdings SET units = units + 1 WHERE (asset, account) IN"
     " (SELECT asset, account FROM holdings ORDER BY asset, account LIMIT 1)", NULL, "holdings",
     "a holding's units changed", 0},
    {"UPDATE payouts SET amount = amount + 1 WHERE (distribution, account) IN"
     " (SELECT distribution, account FROM payouts ORDER BY 1, 2 LIMIT 1)",
     "SELECT min(distribution) FROM payouts", "payouts", "a payout changed", 0},
    {"UPDATE distributions SET count = count + 1 WHERE seq = (SELECT max(seq) FROM distributions)",
     "SELECT max(seq) FROM distributions", "distributions", "a distribution's holder count changed", 0},
    {"UPDATE receipts SET effects = replace(effects, '\"units\":', '\"units\":1') WHERE seq = "
     "(SELECT min(seq) FROM receipts WHERE effects LIKE '%\"units\":%')",
     "SELECT min(seq) FROM receipts WHERE effects LIKE '%\"units\":%'", "receipt", "a receipt's units changed", 0},
    {"DELETE FROM account_entries WHERE seq = 9", NULL, "account_entries", "an account.history row deleted", 9},
    {"DELETE FROM account_entries WHERE seq = 9; INSERT INTO account_entries (account, seq) VALUES (x'"
     "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', 9)", NULL, "account_entries",
     "an account.history row deleted, another added", 9},
    {"INSERT INTO account_entries (account, seq) VALUES (zeroblob(32), 3)", NULL, "account_entries",
     "an account.history row added", 3},
    {"DROP TRIGGER merkle_append_only_u; UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = 4 AND idx = 1",
     NULL, "merkle_nodes", "a stored Merkle node changed", 0},
    {"INSERT INTO merkle_nodes (level, idx, hash) VALUES (40, 0, zeroblob(32))", NULL, "merkle_nodes",
     "a Merkle node added", 0},
    {"UPDATE assets SET rating = 'D' WHERE id = (SELECT min(id) FROM assets)", NULL, "column rating",
     "an asset's rating changed", 0},
    {"DROP TRIGGER entries_append_only_d", NULL, "trigger entries_append_only_d (missing)",
     "an append-only trigger dropped, every row intact", 0},
    {"CREATE INDEX extra ON entries (time)", NULL, "index extra (not tranche's)", "an index added", 0},
    {"INSERT INTO meta (key, value) VALUES ('zz', 'extra')", NULL, "meta", "a meta row added", 0},
    {"UPDATE entry_txids SET seq = seq + 1 WHERE seq = 5", NULL, "entry_txids", "a txid lookup row moved", 0},
    {"DELETE FROM entry_ids WHERE seq = 7", NULL, "entry_ids", "a (signer, id) lookup row deleted", 0},
    {"INSERT INTO entry_txids_recent SELECT txid8, seq + 1 FROM entry_txids WHERE seq = 5", NULL, "entry_txids",
     "a txid lookup row in the small level naming another entry", 0},
    {"UPDATE lookup_progress SET seq = seq + 1", NULL, "lookup_progress", "lookups said to reach past the journal", 0},
    {"UPDATE accounts SET frozen = 1 - frozen WHERE id IN (SELECT id FROM accounts ORDER BY id LIMIT 1)", NULL,
     "accounts", "an account's frozen flag changed", 0},
    {"DROP TRIGGER entries_append_only_d; DELETE FROM entries WHERE seq = (SELECT max(seq) FROM entries)", NULL,
     "derived_progress", "the last entry deleted, state kept", 0},
    {"DROP TRIGGER entries_append_only_d; DELETE FROM entries WHERE seq = 11", NULL, "missing",
     "an entry in the middle deleted", 11},
    {"UPDATE history_progress SET seq = seq + 1", NULL, "history_progress",
     "account.history said to be written past the journal", 0},
    {"UPDATE history_progress SET seq = 20; DELETE FROM account_entries WHERE seq > 20 OR seq BETWEEN 9 AND 12",
     NULL, "account_entries", "rows missing below a lowered mark", 9},
    {"UPDATE history_progress SET seq = 20",
     "SELECT seq FROM account_entries WHERE seq > 20 ORDER BY account, seq LIMIT 1", "account_entries",
     "rows past the mark", 0},
    {"UPDATE history_progress SET seq = 20; DELETE FROM account_entries WHERE seq > 20;"
     " INSERT INTO account_entries (account, seq) VALUES (zeroblob(32), 30)", NULL,
     "account_entries", "a row past the mark that no entry made", 30},
  };
  for (size_t i = 0; i < ARRAY_LEN(edits); i++) {
    long long seq = edits[i].seq_sql ? sql_int(path, edits[i].seq_sql) : edits[i].seq < 0 ? (long long)size : edits[i].seq;
    copy_db(path, dir, "edit.db", copy, sizeof copy);
    TR_CHECK(seq >= 0 && sql_exec(copy, edits[i].sql) == SQLITE_OK, "edited a copy: %s", edits[i].what);
    expect_corrupt(copy, (uint64_t)seq, edits[i].mention, edits[i].what);
  }

  /* Rows added to checkpoints (issue #12, finding 10): each must be a note
   * the genesis node key signed for this tree, its columns what the note
   * says; the audit names the row. */
  static const struct {
    int kind;
    const char *mention, *what;
  } cps[] = {
    {0, "checkpoint", "a bogus note beyond the head"},
    {1, "not a note signed by the node key", "a note signed by the admin key"},
    {2, "not a note signed by the node key", "a note signed by the node key for another origin"},
    {3, "Merkle root", "a node-signed note whose root is not the tree's"},
    {4, "beyond the journal", "a node-signed note beyond the journal"},
    {5, "size or root column", "the root column is not the note's"},
    {6, "size or root column", "the note is for the next size, not its row's"},
    {7, "malformed columns", "the time column is text"},
  };
  for (size_t i = 0; i < ARRAY_LEN(cps); i++) {
    char note[TR_CHECKPOINT_NOTE_BUF_BYTES];
    size_t len;
    uint64_t at = cp_free;
    const uint8_t *col = root_free;
    const char *time_text = NULL;
    int src = 0;
    static const uint8_t zero[32];
    switch (cps[i].kind) {
    case 0: snprintf(note, sizeof note, "bogus"); at = size + 5; col = NULL; break;
    case 1: src = tr_checkpoint_sign(CHAIN, at, root_free, K[1].sk, note, sizeof note, &len); break;
    case 2: src = tr_checkpoint_sign("other.example/chain", at, root_free, K[0].sk, note, sizeof note, &len); break;
    case 3: src = tr_checkpoint_sign(CHAIN, at, zero, K[0].sk, note, sizeof note, &len); col = zero; break;
    case 4: at = size + 3; src = tr_checkpoint_sign(CHAIN, at, zero, K[0].sk, note, sizeof note, &len); col = zero; break;
    case 5: src = tr_checkpoint_sign(CHAIN, at, root_free, K[0].sk, note, sizeof note, &len); col = zero; break;
    case 6: src = tr_checkpoint_sign(CHAIN, at + 1, root_next, K[0].sk, note, sizeof note, &len); col = root_next; break;
    default: src = tr_checkpoint_sign(CHAIN, at, root_free, K[0].sk, note, sizeof note, &len); time_text = "noon"; break;
    }
    copy_db(path, dir, "edit.db", copy, sizeof copy);
    TR_CHECK(src == 0 && insert_checkpoint(copy, at, col, time_text, note) == SQLITE_OK, "added a checkpoint row: %s",
             cps[i].what);
    char named[32];
    snprintf(named, sizeof named, "checkpoint %llu", (unsigned long long)at);
    expect_corrupt(copy, 0, named, cps[i].what);
    expect_corrupt(copy, 0, cps[i].mention, cps[i].what);
  }
  {
    char note[TR_CHECKPOINT_NOTE_BUF_BYTES];
    size_t len;
    copy_db(path, dir, "edit.db", copy, sizeof copy);
    rc = tr_checkpoint_sign(CHAIN, cp_free, root_free, K[0].sk, note, sizeof note, &len);
    TR_CHECK(rc == 0 && insert_checkpoint(copy, cp_free, root_free, NULL, note) == SQLITE_OK &&
                 tr_ledger_replay(copy, NULL, NULL, &rep) == 0,
             "one more checkpoint the node key signed for the tree at its size passes (%s)", rep.message);
  }

  /* A node stopped hard holds the newest history rows in memory only: the
   * mark is behind the head and the rows after it are missing, which the
   * audit accepts (the node rebuilds them when it starts). */
  copy_db(path, dir, "edit.db", copy, sizeof copy);
  TR_CHECK(sql_exec(copy, "UPDATE history_progress SET seq = 20; DELETE FROM account_entries WHERE seq > 20") ==
               SQLITE_OK,
           "a copy as a hard stop leaves it: rows after entry 20 not yet written");
  rc = tr_ledger_replay(copy, NULL, NULL, &rep);
  TR_CHECK(rc == 0, "history written only through entry 20 of %llu replays clean (%s)", (unsigned long long)size,
           rep.message);

  /* The lookup tables (schema 005), as a hard stop leaves them: written only
   * through entry 20.  The audit accepts the lag; lookups find entries on
   * both sides of the mark; the late write brings the tables to the
   * SQLite path's rows.  Each lookup confirms the whole key on the entry. */
  copy_db(path, dir, "edit.db", copy, sizeof copy);
  TR_CHECK(sql_exec(copy, "UPDATE lookup_progress SET seq = 20; DELETE FROM entry_txids WHERE seq > 20;"
                          " DELETE FROM entry_ids WHERE seq > 20; INSERT INTO entry_txids_recent SELECT * FROM entry_txids;"
                          " INSERT INTO entry_ids_recent SELECT * FROM entry_ids; DELETE FROM entry_txids;"
                          " DELETE FROM entry_ids") == SQLITE_OK,
           "a copy whose lookup rows reach entry 20 only, in the small level");
  rc = tr_ledger_replay(copy, NULL, NULL, &rep);
  TR_CHECK(rc == 0, "lookup rows written only through entry 20 replay clean (%s)", rep.message);
  {
    tr_store_t *s = NULL;
    char err[256] = "";
    rc = tr_store_open(copy, 0, &s, err, sizeof err);
    TR_CHECK(rc == 0, "opened the lagging copy (%s)", err);
    /* The two levels (schema 007): the small one merged into the large one
     * a key range a step, then the late write into the small one again, so
     * the probes below find entries in the large level (2, 10, 20), in the
     * small one (21, k, size after the write) and after the mark (before). */
    for (int by_id = 0; by_id < 2 && rc == 0; by_id++) {
      const char *table = by_id ? "entry_ids" : "entry_txids";
      char count[64];
      snprintf(count, sizeof count, "SELECT count(*) FROM %s", table);
      tr_lookup_row_t cursor = {0};
      bool first_done = true, second_done = false;
      rc = tr_store_begin(s);
      if (rc == 0) rc = tr_store_lookups_merge_step(s, by_id, 8, &cursor, &first_done);
      if (rc == 0) rc = tr_store_commit(s);
      TR_CHECK(rc == 0 && !first_done && cursor.seq >= 1 && sql_int(copy, count) == 8,
               "a merge step copies 8 rows of %s into the large level", table);
      if (by_id == 0) {
        rc = tr_ledger_replay(copy, NULL, NULL, &rep);
        TR_CHECK(rc == 0, "a merge cut short, 8 rows in both levels, replays clean (%s)", rep.message);
      }
      /* for entry_ids, as after a restart: a new merge from the first key */
      if (by_id) memset(&cursor, 0, sizeof cursor);
      if (rc == 0) rc = tr_store_begin(s);
      if (rc == 0) rc = tr_store_lookups_merge_step(s, by_id, 1000, &cursor, &second_done);
      if (rc == 0) rc = tr_store_commit(s);
      TR_CHECK(rc == 0 && second_done && sql_int(copy, count) == 20, "the %s step takes the other 12 and is done",
               by_id ? "next merge's first (the 8 copied already left as they are)" : "next");
    }
    uint64_t recent = 0;
    TR_CHECK(tr_store_lookups_recent_rows(s, &recent) == 0 && recent == 20, "until the end the small level keeps them");
    rc = tr_store_begin(s);
    if (rc == 0) rc = tr_store_lookups_merge_end(s);
    if (rc == 0) rc = tr_store_commit(s);
    if (rc == 0) rc = tr_store_lookups_recent_rows(s, &recent);
    TR_CHECK(rc == 0 && recent == 0 && sql_int(copy, "SELECT count(*) FROM entry_ids_recent") == 0,
             "the merge's end empties the small level of both tables (%llu left)", (unsigned long long)recent);
    uint64_t probes[] = {2, 10, 20, 21, k, size}, mark = 0;
    for (size_t i = 0; rc == 0 && i < ARRAY_LEN(probes); i++) {
      tr_entry_t e;
      uint64_t by_txid = 0, by_id = 0;
      uint8_t txid[32];
      int a = tr_store_entry_get(s, probes[i], &e);
      if (a == 0) a = tr_store_entry_by_txid(s, e.txid, &by_txid);
      if (a == 0) a = tr_store_entry_by_signer_id(s, &e.signer, e.tx_id, &by_id, txid);
      TR_CHECK(a == 0 && by_txid == probes[i] && by_id == probes[i] && memcmp(txid, e.txid, 32) == 0,
               "entry %llu found by txid and by (signer, id) with the lookup mark at 20 (%s)",
               (unsigned long long)probes[i], tr_strerror(a));
      if (a == 0) tr_entry_clear(&e);
    }
    uint8_t unknown[32] = {0};
    uint64_t none = 0;
    TR_CHECK(tr_store_entry_by_txid(s, unknown, &none) == TR_ENOT_FOUND, "an unknown txid is not found");
    rc = tr_store_begin(s);
    TR_CHECK(rc == 0 && tr_store_lookups_write(s, 19, size, false) == TR_ECORRUPT,
             "a late write that does not start at the mark is refused");
    tr_store_rollback(s); /* its rows with it, as the writer does */
    rc = tr_store_begin(s);
    if (rc == 0) rc = tr_store_lookups_write(s, 20, size, false);
    if (rc == 0) rc = tr_store_commit(s);
    if (rc == 0) rc = tr_store_lookups_mark(s, &mark);
    TR_CHECK(rc == 0 && mark == size, "the late write brings the mark to the head (%llu)", (unsigned long long)mark);
    for (size_t i = 3; rc == 0 && i < ARRAY_LEN(probes); i++) {
      tr_entry_t e;
      uint64_t by_txid = 0, by_id = 0;
      int a = tr_store_entry_get(s, probes[i], &e);
      if (a == 0) a = tr_store_entry_by_txid(s, e.txid, &by_txid);
      if (a == 0) a = tr_store_entry_by_signer_id(s, &e.signer, e.tx_id, &by_id, NULL);
      TR_CHECK(a == 0 && by_txid == probes[i] && by_id == probes[i],
               "entry %llu found by txid and by (signer, id) in the small level (%s)", (unsigned long long)probes[i],
               tr_strerror(a));
      if (a == 0) tr_entry_clear(&e);
    }
    tr_store_close(s);
  }
  TR_CHECK(tables_differ(path, copy) == 0, "after it the lookup tables equal the SQLite path's");
  rc = tr_ledger_replay(copy, NULL, NULL, &rep);
  TR_CHECK(rc == 0, "rows in both levels, none in both, replay clean (%s)", rep.message);
  copy_db(path, dir, "edit.db", copy, sizeof copy);
  TR_CHECK(sql_exec(copy, "UPDATE lookup_progress SET seq = 20") == SQLITE_OK,
           "a copy as a late write killed part-way leaves it: rows past the mark, the mark not moved");
  rc = tr_ledger_replay(copy, NULL, NULL, &rep);
  TR_CHECK(rc == 0, "lookup rows past their mark, each naming its entry, replay clean (%s)", rep.message);
  TR_CHECK(sql_exec(copy, "INSERT INTO entry_txids_recent SELECT * FROM entry_txids WHERE seq > 20;"
                          " DELETE FROM entry_txids WHERE seq > 20; INSERT INTO entry_ids_recent SELECT * FROM entry_ids"
                          " WHERE seq > 20; DELETE FROM entry_ids WHERE seq > 20") == SQLITE_OK,
           "the rows past the mark in the small level instead");
  rc = tr_ledger_replay(copy, NULL, NULL, &rep);
  TR_CHECK(rc == 0, "so they replay clean too (%s)", rep.message);
  {
    tr_store_t *s = NULL;
    char err[256] = "";
    bool done = false;
    rc = tr_store_open(copy, 0, &s, err, sizeof err);
    if (rc == 0) rc = tr_store_begin(s);
    for (int by_id = 0; by_id < 2 && rc == 0; by_id++) {
      tr_lookup_row_t cursor = {0};
      rc = tr_store_lookups_merge_step(s, by_id, 1000, &cursor, &done);
    }
    if (rc == 0) rc = tr_store_lookups_merge_end(s);
    if (rc == 0) rc = tr_store_commit(s);
    tr_store_close(s);
    TR_CHECK(rc == 0 && done && sql_int(copy, "SELECT count(*) FROM entry_txids") == (long long)size &&
                 sql_int(copy, "SELECT count(*) FROM entry_ids_recent") == 0,
             "a merge takes them all, past the mark too, and empties the small level");
    rc = tr_ledger_replay(copy, NULL, NULL, &rep);
    TR_CHECK(rc == 0, "then it replays clean (%s)", rep.message);
  }
  copy_db(path, dir, "edit.db", copy, sizeof copy);
  {
    /* a row that names entry k+1 under entry k's txid prefix: lookups of
     * entry k's txid must still answer k (a prefix is only a candidate) */
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO entry_txids (txid8, seq) SELECT substr(txid, 1, 8), seq + 1 FROM entries"
                              " WHERE seq = %llu", (unsigned long long)k);
    TR_CHECK(sql_exec(copy, sql) == SQLITE_OK, "a colliding entry_txids row added");
    tr_store_t *s = NULL;
    char err[256] = "";
    tr_entry_t e;
    uint64_t by_txid = 0;
    rc = tr_store_open(copy, 0, &s, err, sizeof err);
    if (rc == 0) rc = tr_store_entry_get(s, k, &e);
    if (rc == 0) {
      rc = tr_store_entry_by_txid(s, e.txid, &by_txid);
      tr_entry_clear(&e);
    }
    TR_CHECK(rc == 0 && by_txid == k, "a txid lookup confirms its candidates on the entry (%llu)",
             (unsigned long long)by_txid);
    tr_store_close(s);
    expect_corrupt(copy, 0, "entry_txids", "a lookup row whose prefix is not its entry's");
  }

  /* A database of schema 004 (the journal with its UNIQUE indexes, no
   * lookup tables) migrates forward: the same rows, the lookups complete,
   * the audit clean. */
  copy_db(path, dir, "edit.db", copy, sizeof copy);
  TR_CHECK(sql_exec(copy,
                    "DROP TABLE entry_txids; DROP TABLE entry_ids; DROP TABLE lookup_progress;"
                    " DROP TABLE entry_txids_recent; DROP TABLE entry_ids_recent;"
                    " CREATE TABLE entries_v4 (seq INTEGER PRIMARY KEY CHECK (seq >= 1),"
                    " time INTEGER NOT NULL CHECK (time >= 0), prev BLOB NOT NULL CHECK (length(prev) = 32),"
                    " hash BLOB NOT NULL CHECK (length(hash) = 32),"
                    " txid BLOB NOT NULL UNIQUE CHECK (length(txid) = 32),"
                    " sig BLOB NOT NULL CHECK (length(sig) = 64), signer BLOB NOT NULL CHECK (length(signer) = 32),"
                    " tx_id TEXT NOT NULL, tx BLOB NOT NULL, UNIQUE (signer, tx_id));"
                    " INSERT INTO entries_v4 SELECT * FROM entries; DROP TABLE entries;"
                    " ALTER TABLE entries_v4 RENAME TO entries;"
                    " CREATE TRIGGER entries_append_only_u BEFORE UPDATE ON entries"
                    " BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;"
                    " CREATE TRIGGER entries_append_only_d BEFORE DELETE ON entries"
                    " BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;"
                    " PRAGMA user_version = 4") == SQLITE_OK,
           "a copy made a schema-004 database");
  TR_CHECK(sql_int(copy, "PRAGMA user_version") == 4 &&
               sql_int(copy, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_entries%'") == 2,
           "at version 4, with the journal's two UNIQUE indexes");
  migrate(copy);
  TR_CHECK(sql_int(copy, "PRAGMA user_version") == tr_store_schema_version() &&
               sql_int(copy, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_entries%'") == 0,
           "after it: the current version, and no index on the journal but its seq");
  TR_CHECK(tables_differ(path, copy) == 0 && sql_int(copy, "SELECT count(*) FROM entries") == (long long)size,
           "the migrated copy has every entry and the same lookup rows as a database made at 005");
  rc = tr_ledger_replay(copy, NULL, NULL, &rep);
  TR_CHECK(rc == 0, "the migrated copy replays clean (%s)", rep.message);

  /* A database of schema 005 kept a Merkle node at every level; 006 keeps
   * every second (TR_MERKLE_STRATUM) and drops the odd ones.  Their hashes
   * do not matter here: nothing reads them, and the migration drops them
   * unread. */
  copy_db(path, dir, "edit.db", copy, sizeof copy);
  TR_CHECK(sql_exec(copy,
                    "INSERT INTO merkle_nodes (level, idx, hash) SELECT 1, seq / 2 - 1, hash FROM entries WHERE seq % 2 = 0;"
                    " INSERT INTO merkle_nodes (level, idx, hash) SELECT 3, seq / 8 - 1, hash FROM entries WHERE seq % 8 = 0;"
                    " INSERT INTO merkle_nodes (level, idx, hash) SELECT 5, seq / 32 - 1, hash FROM entries WHERE seq % 32 = 0;"
                    " DROP TABLE entry_txids_recent; DROP TABLE entry_ids_recent; PRAGMA user_version = 5") == SQLITE_OK &&
               sql_int(copy, "SELECT count(*) FROM merkle_nodes WHERE level % 2 != 0") > (long long)size / 2,
           "a copy made a schema-005 database, with nodes at every level");
  migrate(copy);
  TR_CHECK(sql_int(copy, "PRAGMA user_version") == tr_store_schema_version() &&
               sql_int(copy, "SELECT count(*) FROM merkle_nodes WHERE level % 2 != 0") == 0 &&
               tables_differ(path, copy) == 0,
           "after it: the current version, only every second level kept, the same rows as a database made at 006");
  rc = tr_ledger_replay(copy, NULL, NULL, &rep);
  TR_CHECK(rc == 0, "the 006-migrated copy replays clean (%s)", rep.message);
  TR_CHECK(sql_exec(copy, "DELETE FROM merkle_nodes WHERE level = 4") != SQLITE_OK,
           "the append-only trigger on merkle_nodes is back after the migration");

  /* A database of schema 006 had one level of each lookup table: 007 adds
   * the small one, empty. */
  copy_db(path, dir, "edit.db", copy, sizeof copy);
  TR_CHECK(sql_exec(copy, "DROP TABLE entry_txids_recent; DROP TABLE entry_ids_recent; PRAGMA user_version = 6") ==
               SQLITE_OK,
           "a copy made a schema-006 database");
  migrate(copy);
  TR_CHECK(sql_int(copy, "PRAGMA user_version") == tr_store_schema_version() &&
               sql_int(copy, "SELECT count(*) FROM entry_txids_recent") == 0 && tables_differ(path, copy) == 0,
           "after it: the current version, the small levels there and empty, the same rows");
  rc = tr_ledger_replay(copy, NULL, NULL, &rep);
  TR_CHECK(rc == 0, "the 006-migrated copy replays clean (%s)", rep.message);

  /* clean up the temp dir */
  static const char *const names[] = {"tranche.db", "copy.db", "tx.db", "genesis.db", "edit.db"};
  for (size_t i = 0; i < ARRAY_LEN(names); i++) {
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t j = 0; j < ARRAY_LEN(sfx); j++) {
      char p[700];
      snprintf(p, sizeof p, "%s/%s%s", dir, names[i], sfx[j]);
      unlink(p);
    }
  }
  rmdir(dir);
  return tr_test_done();
}
