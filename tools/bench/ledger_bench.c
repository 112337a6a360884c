/* ledger_bench.c — the sequencer's side alone, and query cost vs journal size.
 *
 *   ledger-bench [--entries N] [--batch B] [--dir DIR] [--verify-seconds S]
 *
 * 1. Applies N pre-decoded, pre-signed transfers as tranched's sequencer
 *    does: tr_ledger_apply over the in-memory state (tr_mem), then the
 *    batch's journal entries in one group commit on a file database with
 *    the daemon's durability settings (WAL, synchronous=FULL).  Prints tx/s
 *    of that serial section and its rules/journal split; the writer behind
 *    (the state rows, tr_store_derived_write) runs on the same thread here
 *    but is timed apart, as it has a thread of its own in tranched.  No
 *    signature checks: that is the workers' part.  Then, in the same run,
 *    the raw 1-thread libsodium verify rate on a message as long as the
 *    transfers, and the sequencer's rate ÷ that (issue #13: how many verify
 *    cores the sequencer alone could feed).
 * 2. Times the query library (account.get, asset.holders page, tx.get,
 *    ledger.proof, account.history page) as the journal passes 10^3, 10^4,
 *    ... entries and again at N, to show how indexed queries grow with it.
 * Prints figures; passes or fails nothing.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tr_delta.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_ledger.h"
#include "tr_limits.h"
#include "tr_mem.h"
#include "tr_node.h"
#include "tr_query.h"
#include "tr_store.h"
#include "bench_verify.h"

#define HOLDERS 64

typedef struct {
  uint8_t pk[32], sk[64];
  char hex[65];
} key_t_;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void key_new(key_t_ *k) {
  crypto_sign_keypair(k->pk, k->sk);
  tr_hex_encode(k->pk, 32, k->hex);
}

static int apply_text(tr_ledger_t *l, const char *tx, const key_t_ *k, uint64_t clock) {
  static tr_tx_t t;
  tr_tx_error_t err;
  uint8_t sig[64];
  tr_receipt_t r;
  tr_refusal_t ref;
  if (tr_tx_decode(tx, strlen(tx), &t, &err) != 0) {
    fprintf(stderr, "decode: %s\n", err.detail);
    return -1;
  }
  tr_tx_sign(tx, strlen(tx), k->sk, sig);
  int rc = tr_ledger_apply(l, &t, tx, strlen(tx), sig, clock, &r, &ref);
  if (rc != 0) {
    fprintf(stderr, "apply: %s %s\n", tr_strerror(rc), ref.detail);
    return -1;
  }
  tr_receipt_clear(&r);
  return 0;
}

typedef struct {
  char *bytes;
  size_t len;
  tr_tx_t tx;
  uint8_t sig[64];
} prepared_t;

static double time_query(tr_store_t *s, int which, const key_t_ *holder, uint64_t size, int reps) {
  double t0 = now_s();
  for (int i = 0; i < reps; i++) {
    cJSON *out = NULL;
    tr_query_error_t qe;
    tr_page_t page = {NULL, 100};
    tr_key_t k;
    memcpy(k.b, holder->pk, 32);
    int rc = 0;
    uint64_t seq = 1 + (uint64_t)i * 7919 % size;
    switch (which) {
    case 0: rc = tr_query_account(s, &k, &out, &qe); break;
    case 1: rc = tr_query_asset_holders(s, "BENCH", &page, &out, &qe); break;
    case 2: rc = tr_query_entry(s, seq, &out, &qe); break;
    case 3: rc = tr_query_proof(s, seq, size, &out, &qe); break;
    case 4: rc = tr_query_account_history(s, &k, &page, &out, &qe); break;
    }
    if (rc != 0) fprintf(stderr, "query %d failed: %s\n", which, tr_strerror(rc));
    cJSON_Delete(out);
  }
  return (now_s() - t0) / reps * 1e6;
}

/* The node's serial section over store s: the in-memory state and the
 * delta its batches fill (duplicates never occur here: no lookups). */
typedef struct {
  tr_mem_t m;
  tr_delta_t *delta;
  tr_delta_sink_t sink;
  tr_store_t *s;
} node_t;

static int no_entry(void *ctx, uint64_t seq, tr_entry_t *e) {
  return tr_store_entry_get(((node_t *)ctx)->s, seq, e);
}
static int no_receipt(void *ctx, uint64_t seq, char **json) {
  return tr_store_receipt_get(((node_t *)ctx)->s, seq, json);
}

static int node_load(node_t *n, tr_store_t *s, tr_ledger_t *l) {
  char err[256] = "";
  uint64_t through = 0;
  n->s = s;
  n->sink = (tr_delta_sink_t){.mem = &n->m, .lookup_entry = no_entry, .lookup_receipt = no_receipt, .lookup_ctx = n};
  int rc = tr_mem_init(&n->m, &tr_delta_sink_ops, &n->sink);
  if (rc == 0) rc = tr_store_derived_mark(s, &through);
  if (rc == 0) rc = tr_mem_load(&n->m, s, through, err, sizeof err);
  if (rc != 0) fprintf(stderr, "cannot load the state: %s %s\n", tr_strerror(rc), err);
  tr_mem_track_changes(&n->m, true);
  l->ops = &tr_mem_state_ops;
  l->ctx = &n->m;
  return rc;
}

/* One write transaction of the store. */
static int write_txn(tr_store_t *s, int (*write)(tr_store_t *, tr_delta_t *), tr_delta_t *d) {
  int rc = tr_store_begin(s);
  if (rc == 0) rc = write(s, d);
  if (rc == 0) rc = tr_store_commit(s);
  if (rc != 0) {
    tr_store_rollback(s);
    fprintf(stderr, "write failed: %s\n", tr_strerror(rc));
  }
  return rc;
}

static int journal_append(tr_store_t *s, tr_delta_t *d) { return tr_store_journal_append(s, d); }

static void report_queries(const char *db, const key_t_ *holder, uint64_t size) {
  tr_store_t *r = NULL;
  char err[256];
  if (tr_store_open(db, TR_STORE_READONLY, &r, err, sizeof err) != 0) return;
  static const char *names[] = {"account.get", "asset.holders(100)", "ledger.entry", "ledger.proof",
                                "account.history(100)"};
  printf("queries at %llu entries:", (unsigned long long)size);
  for (int q = 0; q < 5; q++) printf("  %s %.1f us", names[q], time_query(r, q, holder, size, 2000));
  printf("\n");
  tr_store_close(r);
}

static int usage(void) {
  fprintf(stderr,
          "usage: ledger-bench [--entries N>=2000] [--batch B] [--dir DIR] [--verify-seconds S]\n"
          "Applies N transfers in group commits of B (default 100000, 256) on DIR/bench.db (default a new\n"
          "/tmp/ledger-bench-XXXXXX), times queries as the journal grows, then measures the raw 1-thread\n"
          "libsodium verify rate for S seconds (default 2) on a message as long as the transfers and\n"
          "prints the sequencer's rate / that rate (same run).\n");
  return 2;
}

int main(int argc, char **argv) {
  long entries = 100000, batch = 256;
  double verify_seconds = 2.0;
  const char *dir = NULL;
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    printf("ledger-bench %s\n", TR_VERSION);
    return 0;
  }
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 == argc) return usage(); /* --help, or an option without its value */
    if (strcmp(argv[i], "--entries") == 0) entries = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--batch") == 0) batch = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    else if (strcmp(argv[i], "--verify-seconds") == 0) verify_seconds = atof(argv[i + 1]);
    else return usage();
  }
  if (sodium_init() < 0 || entries < 2000 || batch < 1 || verify_seconds <= 0) return usage();
  char tmpl[] = "/tmp/ledger-bench-XXXXXX", db[512], err[256], tx[1024];
  if (dir == NULL && (dir = mkdtemp(tmpl)) == NULL) return 1;
  snprintf(db, sizeof db, "%s/bench.db", dir);
  unlink(db);
  tr_store_t *s = NULL;
  if (tr_store_open(db, TR_STORE_CREATE, &s, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  key_t_ node, admin, issuer, h[HOLDERS];
  key_new(&node), key_new(&admin), key_new(&issuer);
  tr_key_t admin_k;
  memcpy(admin_k.b, admin.pk, 32);
  tr_ledger_genesis(s, "bench.example/l", node.sk, &admin_k, 1);
  tr_ledger_t l;
  tr_ledger_load(&l, s);
  uint64_t clock = 2;
  tr_store_begin(s);
  snprintf(tx, sizeof tx, "{\"type\":\"account.open\",\"chain\":\"bench.example/l\",\"signer\":\"%s\",\"id\":\"i\","
           "\"account\":\"%s\",\"roles\":[\"issuer\"],\"jurisdiction\":\"US\",\"kyc\":true}", admin.hex, issuer.hex);
  int rc = apply_text(&l, tx, &admin, clock);
  snprintf(tx, sizeof tx, "{\"type\":\"asset.create\",\"chain\":\"bench.example/l\",\"signer\":\"%s\",\"id\":\"c\","
           "\"asset\":\"BENCH\",\"name\":\"n\",\"kind\":\"bond\",\"currency\":\"USD\",\"principal\":1000000,"
           "\"units\":9000000000000,\"coupon_bps\":0,\"maturity\":\"2030-01-01\",\"rating\":\"A\",\"risk_weight_pct\":100,"
           "\"rules\":{}}", issuer.hex);
  if (rc == 0) rc = apply_text(&l, tx, &issuer, clock);
  for (int i = 0; i < HOLDERS && rc == 0; i++) {
    key_new(&h[i]);
    snprintf(tx, sizeof tx, "{\"type\":\"account.open\",\"chain\":\"bench.example/l\",\"signer\":\"%s\",\"id\":\"o%d\","
             "\"account\":\"%s\",\"roles\":[\"investor\"],\"jurisdiction\":\"US\",\"kyc\":true}", admin.hex, i, h[i].hex);
    rc = apply_text(&l, tx, &admin, clock);
    snprintf(tx, sizeof tx, "{\"type\":\"asset.issue\",\"chain\":\"bench.example/l\",\"signer\":\"%s\",\"id\":\"s%d\","
             "\"asset\":\"BENCH\",\"to\":\"%s\",\"units\":100000000000}", issuer.hex, i, h[i].hex);
    if (rc == 0) rc = apply_text(&l, tx, &issuer, clock);
  }
  if (rc != 0 || tr_store_commit(s) != 0) return 1;
  node_t node_state;
  if (node_load(&node_state, s, &l) != 0) return 1;

  /* prepare transfers outside the timed part */
  long n = entries;
  prepared_t *p = calloc((size_t)batch, sizeof *p);
  double apply_s = 0, commit_s = 0, derived_s = 0, prep_s = 0;
  size_t msg_len = 0; /* signed bytes of the last transfer: what one verify would check */
  uint64_t report_at = 1000; /* query costs at every power of ten the journal passes */
  for (long done = 0; done < n;) {
    long m = n - done < batch ? n - done : batch;
    double t0 = now_s();
    for (long i = 0; i < m; i++) {
      long k = done + i;
      const key_t_ *from = &h[k % HOLDERS], *to = &h[(k + 1) % HOLDERS];
      snprintf(tx, sizeof tx, "{\"type\":\"transfer\",\"chain\":\"bench.example/l\",\"signer\":\"%s\",\"id\":\"t%ld\","
               "\"asset\":\"BENCH\",\"to\":\"%s\",\"units\":1}", from->hex, k, to->hex);
      free(p[i].bytes);
      p[i].bytes = strdup(tx);
      p[i].len = strlen(tx);
      msg_len = 13 + p[i].len;
      tr_tx_error_t e;
      tr_tx_decode(p[i].bytes, p[i].len, &p[i].tx, &e);
      tr_tx_sign(p[i].bytes, p[i].len, from->sk, p[i].sig);
    }
    double t1 = now_s();
    tr_delta_t *d = node_state.delta = node_state.sink.delta = tr_delta_new();
    if (d == NULL) return 1;
    for (long i = 0; i < m; i++) {
      tr_receipt_t r;
      tr_refusal_t ref;
      if (tr_ledger_apply(&l, &p[i].tx, p[i].bytes, p[i].len, p[i].sig, ++clock, &r, &ref) != 0) {
        fprintf(stderr, "transfer refused: %s\n", ref.detail);
        return 1;
      }
      tr_receipt_clear(&r);
    }
    if (tr_delta_take_changes(d, &node_state.m) != 0) return 1;
    double t2 = now_s();
    if (write_txn(s, journal_append, d) != 0) return 1;
    double t3 = now_s();
    if (write_txn(s, tr_store_derived_write, d) != 0) return 1;
    double t4 = now_s();
    tr_delta_free(d);
    prep_s += t1 - t0, apply_s += t2 - t1, commit_s += t3 - t2, derived_s += t4 - t3;
    done += m;
    uint64_t size_now = (uint64_t)done + 2 * HOLDERS + 3;
    if (size_now >= report_at && done < n) {
      report_queries(db, &h[0], size_now);
      while (report_at <= size_now) report_at *= 10;
    }
  }
  double seq_rate = (double)n / (apply_s + commit_s);
  printf("sequencer alone: %ld transfers in batches of %ld: %.0f tx/s (rules over memory %.1f us/tx, journal "
         "commit %.1f us/tx = %.2f ms/batch)\n", n, batch, seq_rate, apply_s / (double)n * 1e6,
         commit_s / (double)n * 1e6, commit_s / ((double)n / (double)batch) * 1e3);
  printf("writer behind (its own thread in tranched): %.1f us/tx (state rows, receipts, history, Merkle nodes)\n",
         derived_s / (double)n * 1e6);
  double verify_rate = bench_verify_rate(1, verify_seconds, msg_len, NULL);
  if (verify_rate <= 0) return 1;
  printf("sequencer alone / 1-thread verify: %.2f  (%.0f tx/s / %.0f verifies/s on 1 thread, %zu-byte messages, "
         "same run)\n", seq_rate / verify_rate, seq_rate, verify_rate, msg_len);
  fflush(stdout);
  uint64_t size = 0;
  tr_store_head(s, &size, NULL, NULL);
  report_queries(db, &h[0], size);
  tr_mem_free(&node_state.m);
  tr_store_close(s);
  for (long i = 0; i < batch; i++) free(p[i].bytes);
  free(p);
  (void)prep_s;
  printf("database: %s\n", db);
  return 0;
}
