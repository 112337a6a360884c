/* test_dispatch.c — the JSON-RPC dispatcher (daemon/rpc.c, job.c) line by
 * line: JSON-RPC 2.0 error codes, batches, notifications, params checking,
 * the method table behind rpc.discover, tx.submit's steps 1–3, shedding and
 * batch ordering.  Runs on the in-memory ledger of tests/support/rpc_harness. */
#include <cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_harness.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_test.h"
#include "tr_tx.h"

/* The rendered response of one line, parsed; NULL when nothing is answered. */
static cJSON *run(const char *line, bool shed) {
  tr_job_t *job = rpc_harness_run(line, strlen(line), shed);
  cJSON *r = job && job->response ? cJSON_ParseWithLength(job->response, job->response_len) : NULL;
  tr_job_free(job);
  return r;
}

/* The rendered response line of one request line, without its "\n"; NULL when nothing is answered. */
static char *run_text(const char *line) {
  tr_job_t *job = rpc_harness_run(line, strlen(line), false);
  char *text = NULL;
  if (job && job->response && job->response_len > 0 && (text = malloc(job->response_len)) != NULL) {
    memcpy(text, job->response, job->response_len - 1);
    text[job->response_len - 1] = '\0';
  }
  tr_job_free(job);
  return text;
}

static int error_code(const cJSON *r) {
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
  return cJSON_IsNumber(c) ? c->valueint : 0;
}

static const char *refusal(const cJSON *r) {
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "error"), "data");
  const cJSON *w = cJSON_GetObjectItemCaseSensitive(d, "reason");
  return cJSON_IsString(w) ? w->valuestring : "";
}

static bool id_is_null(const cJSON *r) { return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "id")); }

static void expect_error(const char *line, int code, bool null_id, const char *what) {
  cJSON *r = run(line, false);
  TR_CHECK(r && !cJSON_IsArray(r) && error_code(r) == code && (!null_id || id_is_null(r)), "%s -> %d", what, code);
  cJSON_Delete(r);
}

static void test_errors(void) {
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"id\":1", -32700, true, "truncated JSON");
  expect_error("", -32700, true, "empty line");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"id\":1,\"id\":2}", -32700, true, "duplicate names");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":1,\"params\":\"bar\"}", -32600, true, "method not a string");
  expect_error("{\"jsonrpc\":\"1.0\",\"method\":\"ledger.head\",\"id\":1}", -32600, false, "jsonrpc 1.0");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"id\":{}}", -32600, true, "object id");
  expect_error("42", -32600, true, "a bare number");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":1}", -32601, false, "unknown method");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.entry\",\"id\":1}", -32602, false, "missing param");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.entry\",\"params\":{\"seq\":1,\"x\":2},\"id\":1}", -32602,
               false, "unknown param");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.entry\",\"params\":{\"seq\":\"1\"},\"id\":1}", -32602, false,
               "string for an integer");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.entry\",\"params\":{\"seq\":1.0},\"id\":1}", -32602, false,
               "1.0 for an integer");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.entry\",\"p\\u0061rams\":{\"seq\":1.0},\"id\":1}", -32602,
               false, "1.0 for an integer, the params member named with an escape");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.entry\",\"params\":[1],\"id\":1}", -32602, false,
               "params by position");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.entries\",\"params\":{\"from\":1,\"limit\":1001},\"id\":1}",
               -32602, false, "limit over 1000");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.entry\",\"params\":{\"seq\":99},\"id\":1}", -32004, false,
               "unknown entry");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"params\":{\"min_size\":99},\"id\":1}", -32602, false,
               "min_size beyond a single node's journal");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"params\":{\"min_size\":\"1\"},\"id\":1}", -32602,
               false, "min_size not an integer");
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"tx.get\",\"params\":{\"txid\":\"00\",\"min_size\":0},\"id\":1}",
               -32602, false, "min_size with a bad other param: that one's error");
  cJSON *r = run("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"params\":{\"min_size\":1},\"id\":1}", false);
  TR_CHECK(cJSON_GetObjectItemCaseSensitive(r, "result") != NULL, "min_size within the journal: an answer");
  cJSON_Delete(r);
  expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"node.status\",\"params\":{\"min_size\":1},\"id\":1}", -32602, false,
               "min_size is a query param only (node.status answers from the process)");
}

static void test_batches_and_notifications(void) {
  TR_CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\"}", false) == NULL, "a notification gets no answer");
  TR_CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}", false) == NULL,
           "a notification of an unknown method gets no answer");
  TR_CHECK(run("[{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\"},{\"jsonrpc\":\"2.0\",\"method\":\"node.status\"}]",
               false) == NULL, "a batch of notifications gets no answer at all");
  expect_error("[]", -32600, true, "empty batch is one error");
  char big[16000] = "[";
  for (int i = 0; i < 101; i++) strcat(big, i ? ",1" : "1");
  strcat(big, "]");
  expect_error(big, -32600, true, "a batch of 101 is one error");
  cJSON *r = run("[1,2,3]", false);
  TR_CHECK(cJSON_IsArray(r) && cJSON_GetArraySize(r) == 3 && error_code(r->child) == -32600, "[1,2,3]: three -32600");
  cJSON_Delete(r);
  r = run("[{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"id\":\"a\"},{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\"},"
          "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":\"c\"}]", false);
  const cJSON *second = r ? cJSON_GetArrayItem(r, 1) : NULL;
  TR_CHECK(cJSON_IsArray(r) && cJSON_GetArraySize(r) == 2 &&
               cJSON_GetObjectItemCaseSensitive(r->child, "result") && error_code(second) == -32601 &&
               strcmp(cJSON_GetObjectItemCaseSensitive(second, "id")->valuestring, "c") == 0,
           "mixed batch: answers in order, the notification skipped");
  cJSON_Delete(r);
}

/* rpc.discover lists exactly the methods of PROTOCOL.md §5 and §5.2. */
static void test_discover(void) {
  static const char *const want[] = {"tx.submit", "tx.check", "tx.get", "tx.find", "ledger.head", "ledger.entry",
                                     "ledger.entries", "ledger.subscribe", "ledger.unsubscribe", "ledger.checkpoint", "ledger.proof", "ledger.consistency",
                                     "account.get", "account.history", "asset.get", "asset.list", "asset.holders",
                                     "asset.payouts", "risk.exposure", "node.status", "rpc.discover"};
  cJSON *r = run("{\"jsonrpc\":\"2.0\",\"method\":\"rpc.discover\",\"id\":1}", false);
  const cJSON *methods = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "result"), "methods");
  size_t found = 0;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const cJSON *m;
    cJSON_ArrayForEach(m, methods) {
      const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "name");
      if (cJSON_IsString(n) && strcmp(n->valuestring, want[i]) == 0) {
        found++;
        break;
      }
    }
  }
  TR_CHECK(found == sizeof want / sizeof want[0] && cJSON_GetArraySize(methods) == (int)found,
           "rpc.discover lists the %zu methods of the table and no other (found %zu)", sizeof want / sizeof want[0],
           found);
  cJSON_Delete(r);
}

/* tx.submit lines signed by the harness admin key. */
static char *submit_line(const char *tx, bool good_sig) {
  uint8_t seed[32], pk[32], sk[64], sig[64];
  crypto_hash_sha256(seed, (const uint8_t *)"tranche-fuzz-admin", 18);
  crypto_sign_seed_keypair(pk, sk, seed);
  tr_tx_sign(tx, strlen(tx), sk, sig);
  if (!good_sig) sig[0] ^= 1;
  char hex[129];
  cJSON *req = cJSON_CreateObject(), *params = cJSON_CreateObject();
  cJSON_AddStringToObject(req, "jsonrpc", "2.0");
  cJSON_AddStringToObject(req, "method", "tx.submit");
  cJSON_AddStringToObject(params, "tx", tx);
  cJSON_AddStringToObject(params, "sig", tr_hex_encode(sig, 64, hex));
  cJSON_AddItemToObject(req, "params", params);
  cJSON_AddNumberToObject(req, "id", 7);
  char *line = cJSON_PrintUnformatted(req);
  cJSON_Delete(req);
  return line;
}

static char *open_tx(const char *chain, const char *id) {
  uint8_t seed[32], pk[32], sk[64], acct[32];
  char admin[65], account[65], *out = malloc(512);
  crypto_hash_sha256(seed, (const uint8_t *)"tranche-fuzz-admin", 18);
  crypto_sign_seed_keypair(pk, sk, seed);
  crypto_hash_sha256(seed, (const uint8_t *)id, strlen(id));
  crypto_sign_seed_keypair(acct, sk, seed);
  snprintf(out, 512, "{\"type\":\"account.open\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"%s\",\"account\":\"%s\","
           "\"roles\":[\"investor\"],\"jurisdiction\":\"GB\",\"kyc\":true}", chain, tr_hex_encode(pk, 32, admin), id,
           tr_hex_encode(acct, 32, account));
  return out;
}

static void expect_submit(const char *tx, bool good_sig, bool shed, int code, const char *reason, const char *what) {
  char *line = submit_line(tx, good_sig);
  cJSON *r = run(line, shed);
  bool ok = code == 0 ? cJSON_GetObjectItemCaseSensitive(r, "result") != NULL
                      : error_code(r) == code && (reason == NULL || strcmp(refusal(r), reason) == 0);
  TR_CHECK(ok, "%s", what);
  cJSON_Delete(r);
  free(line);
}

static void test_submit(void) {
  char *good = open_tx(RPC_HARNESS_CHAIN, "dispatch-1"), *other = open_tx("other.example/chain", "dispatch-2");
  expect_submit(good, true, false, 0, NULL, "a valid account.open gets a receipt");
  expect_submit("{\"type\":\"nope\"}", true, false, -32001, "invalid", "an undecodable tx is invalid");
  expect_submit(other, false, false, -32001, "wrong_chain", "wrong chain is reported before a bad signature");
  expect_submit(good, false, false, -32001, "bad_signature", "a bad signature");
  expect_submit(good, true, true, -32002, NULL, "a full intake queue answers overloaded at once");
  free(good);
  free(other);
}

/* A query after a tx.submit in the same batch sees the tx (§5: batches in order). */
static void test_batch_order(void) {
  char *tx = open_tx(RPC_HARNESS_CHAIN, "dispatch-3"), *sub = submit_line(tx, true);
  size_t n = strlen(sub) + 200;
  char *line = malloc(n);
  snprintf(line, n, "[%s,{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"id\":8}]", sub);
  rpc_harness_keep_txs = true; /* the deferred query must see the committed tx */
  cJSON *r = run(line, false);
  rpc_harness_keep_txs = false;
  const cJSON *head = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(r, 1), "result");
  const cJSON *receipt = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(r, 0), "result");
  const cJSON *size = cJSON_GetObjectItemCaseSensitive(head, "size"), *seq = cJSON_GetObjectItemCaseSensitive(receipt, "seq");
  TR_CHECK(cJSON_IsNumber(size) && cJSON_IsNumber(seq) && size->valuedouble == seq->valuedouble,
           "ledger.head after tx.submit in one batch reflects the new entry");
  cJSON_Delete(r);
  free(line);
  free(sub);
  free(tx);
}

/* The receipt line's fast id writer (tr_rpc_id_text) must echo every id as
 * the general renderer does; an id too long for the buffer says so (0). */
static void test_id_text(void) {
  static const char *const ids[] = {"1", "0", "-5", "9007199254740993", "1.5", "1e300", "-0", "\"abc\"",
                                    "\"a\\\"b\\u00e9\"", "null", "123456789012345678901234567890"};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    cJSON *id = cJSON_Parse(ids[i]);
    char fast[256];
    size_t n = tr_rpc_id_text(id, fast, sizeof fast);
    char *general = tr_rpc_result_raw(id, "1");
    const char *tail = general ? strstr(general, ",\"id\":") : NULL;
    bool same = n > 0 && tail && strlen(tail + 6) == n + 1 && memcmp(tail + 6, fast, n) == 0 && tail[6 + n] == '}';
    TR_CHECK(same, "id %s echoed alike by both writers (fast %.*s, general %s)", ids[i], (int)n, fast,
             general ? general : "(null)");
    free(general);
    cJSON_Delete(id);
  }
  /* a request's number id, kept as its source text (rpc.c) */
  static const char *const raw_ids[] = {"18446744073709551616", "-12345678901234567890", "1e400", "1.50", "-0"};
  for (size_t i = 0; i < sizeof raw_ids / sizeof raw_ids[0]; i++) {
    cJSON *id = cJSON_CreateRaw(raw_ids[i]);
    char fast[256];
    size_t n = tr_rpc_id_text(id, fast, sizeof fast);
    char *general = tr_rpc_result_raw(id, "1");
    const char *tail = general ? strstr(general, ",\"id\":") : NULL;
    TR_CHECK(n == strlen(raw_ids[i]) && strcmp(fast, raw_ids[i]) == 0 && tail && strncmp(tail + 6, raw_ids[i], n) == 0 &&
                 strcmp(tail + 6 + n, "}") == 0,
             "raw id %s echoed as is by both writers (fast %s, general %s)", raw_ids[i], fast, general ? general : "");
    free(general);
    cJSON_Delete(id);
  }
  cJSON *long_id = cJSON_CreateString("0123456789012345678901234567890123456789");
  char small[16];
  TR_CHECK(tr_rpc_id_text(long_id, small, sizeof small) == 0, "an id longer than the buffer gives 0 (the general path)");
  cJSON_Delete(long_id);
}

/* A number id comes back exactly as the request wrote it (issue #12, 12):
 * cJSON alone gives 1.8446744073709552e+19 for 2^64 and null for 1e400. */
static void test_id_exact(void) {
  static const char *const ids[] = {"18446744073709551616", "-12345678901234567890", "1e400", "-1e400", "1.50",
                                    "-0", "1E+2", "0", "7", "9999999999999999", "9007199254740993", "1e-400",
                                    "123456789012345678901234567890.000000000000000000001"};
  char line[512], want[256];
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"id\" : %s }", ids[i]);
    snprintf(want, sizeof want, ",\"id\":%s}", ids[i]);
    char *r = run_text(line);
    size_t rl = r ? strlen(r) : 0, wl = strlen(want);
    TR_CHECK(r && rl > wl && strcmp(r + rl - wl, want) == 0 && strstr(r, "\"result\":"), "id %s echoed exactly (%s)",
             ids[i], r ? r : "(no answer)");
    free(r);
    /* an error answer too */
    snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":%s}", ids[i]);
    r = run_text(line);
    rl = r ? strlen(r) : 0;
    TR_CHECK(r && rl > wl && strcmp(r + rl - wl, want) == 0 && strstr(r, "-32601"), "id %s echoed in an error (%s)",
             ids[i], r ? r : "(no answer)");
    free(r);
  }
  /* a batch: each element its own id, in order, results and errors alike */
  char *r = run_text("[{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"id\":18446744073709551616},"
                     " {\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":-12345678901234567890},"
                     "{\"jsonrpc\":\"2.0\",\"method\":\"ledger.entry\",\"params\":{\"seq\":1.0},\"id\":1e400},"
                     "{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"id\":\"1e400\"}]");
  const char *a = r ? strstr(r, "\"id\":18446744073709551616}") : NULL;
  const char *b = a ? strstr(a, "\"id\":-12345678901234567890}") : NULL;
  const char *c = b ? strstr(b, "\"id\":1e400}") : NULL;
  const char *d = c ? strstr(c, "\"id\":\"1e400\"}") : NULL;
  const char *e1 = a ? strstr(a, "-32601") : NULL, *e2 = b ? strstr(b, "-32602") : NULL;
  TR_CHECK(d != NULL && e1 && e1 < b && e2 && e2 < c,
           "a batch echoes each element's id exactly, in order (%s)", r ? r : "(no answer)");
  free(r);
  /* the member named with an escape is the id too (cJSON decodes names) */
  r = run_text("{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"\\u0069d\":18446744073709551616}");
  TR_CHECK(r && strstr(r, "\"id\":18446744073709551616}"), "an id member written \\u0069d is echoed exactly (%s)",
           r ? r : "(no answer)");
  free(r);
  /* an invalid request keeps its id */
  r = run_text("{\"jsonrpc\":\"1.0\",\"method\":\"ledger.head\",\"id\":1e400}");
  TR_CHECK(r && strstr(r, "-32600") && strstr(r, "\"id\":1e400}"), "an invalid request echoes its id (%s)",
           r ? r : "(no answer)");
  free(r);
  /* tx.submit: the receipt path, committed and refused */
  char *tx = open_tx(RPC_HARNESS_CHAIN, "dispatch-id"), *sub = submit_line(tx, true);
  char *seven = strstr(sub, "\"id\":7");
  size_t n = strlen(sub) + 64;
  char *big = malloc(n);
  if (seven) snprintf(big, n, "%.*s\"id\":-12345678901234567890}", (int)(seven - sub), sub);
  r = seven ? run_text(big) : NULL;
  TR_CHECK(r && strstr(r, "\"result\":{\"seq\":") && strstr(r, "\"id\":-12345678901234567890}"),
           "a receipt echoes the id exactly (%s)", r ? r : "(no answer)");
  free(r);
  free(big);
  free(sub);
  sub = submit_line(tx, false);
  seven = strstr(sub, "\"id\":7");
  big = malloc(n);
  if (seven) snprintf(big, n, "%.*s\"id\":1e400}", (int)(seven - sub), sub);
  r = seven ? run_text(big) : NULL;
  TR_CHECK(r && strstr(r, "bad_signature") && strstr(r, "\"id\":1e400}"), "a refusal echoes the id exactly (%s)",
           r ? r : "(no answer)");
  free(r);
  free(big);
  free(sub);
  free(tx);
}

/* A line owes an answer it cannot give when its elements, or one element's
 * response, could not be allocated: tr_job_render says so (the connection
 * then closes, daemon/server.c) instead of leaving the id unanswered. */
static void test_render_missing_answer(void) {
  tr_job_t *job = tr_job_new(NULL, "", 0, 0);
  TR_CHECK(job != NULL, "a job");
  if (job == NULL) return;
  TR_CHECK(tr_job_render(job) == TR_ENOMEM && job->response == NULL && job->complete,
           "a request line with no elements (calloc failed) is an answer missing");
  job->elems = calloc(2, sizeof *job->elems);
  TR_CHECK(job->elems != NULL, "two elements");
  if (job->elems == NULL) {
    tr_job_free(job);
    return;
  }
  job->n_elems = 2;
  job->batch = true;
  job->elems[0].notification = true;
  job->elems[1].notification = true;
  TR_CHECK(tr_job_render(job) == 0 && job->response == NULL, "notifications only: nothing owed, nothing sent");
  job->elems[1].notification = false;
  job->elems[0].response = tr_rpc_error_text(NULL, TR_RPC_INTERNAL_ERROR, "x", NULL);
  TR_CHECK(tr_job_render(job) == TR_ENOMEM && job->response == NULL,
           "a batch with one element's response missing is an answer missing, not a shorter batch");
  job->elems[1].response = tr_rpc_error_text(NULL, TR_RPC_INTERNAL_ERROR, "y", NULL);
  job->elems[0].notification = false;
  TR_CHECK(tr_job_render(job) == 0 && job->response && strncmp(job->response, "[{", 2) == 0,
           "with every response made, the batch renders");
  tr_job_free(job);
}

int main(void) {
  rpc_harness_setup();
  test_id_text();
  test_id_exact();
  test_errors();
  test_batches_and_notifications();
  test_discover();
  test_submit();
  test_batch_order();
  test_render_missing_answer();
  return tr_test_done();
}
