/* fuzz_rpc.c — one JSON-RPC line through the daemon's worker-side code.
 *
 * Links daemon/rpc.c and daemon/job.c unchanged, with a minimal daemon
 * context: one worker whose reader is a private in-memory store holding a
 * genesis entry and a checkpoint (fixed keys, see make_seeds.py), so seeds
 * signed by the fuzz admin key reach the ledger rules.  The line goes
 * through tr_rpc_work (phase 0: strict JSON, envelope, params, tx decode,
 * chain, signature, queries); txs handed to the sequencer are applied with
 * tr_ledger_apply in a transaction that is rolled back (so the state never
 * drifts between inputs), as daemon/sequencer.c renders them; deferred
 * queries run (phase 1); then tr_job_render.
 *
 * Invariants: a rendered response is one line ending in "\n" with no other
 * newline, strict JSON (tr_json_check), an array exactly when the request
 * was a batch, whose every element is a JSON-RPC 2.0 response object with an
 * id and exactly one of result/error; never more answers than elements;
 * a notification (valid request without id) is never answered (§5); a
 * single request is answered exactly as the same request alone in a batch
 * (so a lone tx.submit, read without cJSON on its own path in rpc.c, gets
 * the general path's answer byte for byte), but for the two methods whose
 * answers read the clock.
 *
 * Not covered here: the loop side in daemon/server.c (line framing, the
 * 1 MiB limit, reorder buffer, backpressure, connection limits) and the
 * group commit — the integration tests test_hostile.py / test_crash.py
 * exercise those against the real daemon.
 */
#include <cJSON.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "fuzz.h"
#include "rpc_harness.h"
#include "job.h"
#include "log.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_json.h"
#include "tr_ledger.h"
#include "tr_merkle.h"
#include "tr_query.h"
#include "tr_store.h"


int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  rpc_harness_setup();
  return 0;
}

static void check_response(const tr_job_t *job) {
  if (job->response == NULL) return;
  const char *r = job->response;
  size_t n = job->response_len;
  FUZZ_CHECK(n >= 2 && r[n - 1] == '\n', "response is not one line");
  FUZZ_CHECK(memchr(r, '\n', n - 1) == NULL, "newline inside a response line");
  tr_json_error_t jerr;
  if (tr_json_check(r, n - 1, TR_JSON_ANY_VALUE, &jerr) != 0) {
    fprintf(stderr, "not strict JSON at %zu (%s): %.*s\n", jerr.offset, jerr.message, (int)(n > 2000 ? 2000 : n), r);
    FUZZ_CHECK(0, "response is not strict JSON");
  }
  cJSON *root = cJSON_ParseWithLength(r, n - 1);
  FUZZ_CHECK(root != NULL, "cJSON cannot parse the response");
  FUZZ_CHECK(cJSON_IsArray(root) == job->batch, "batch answered as single or single as batch");
  size_t count = 0;
  for (const cJSON *o = cJSON_IsArray(root) ? root->child : root; o; o = cJSON_IsArray(root) ? o->next : NULL) {
    count++;
    FUZZ_CHECK(cJSON_IsObject(o), "response element is not an object");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "jsonrpc");
    FUZZ_CHECK(cJSON_IsString(v) && strcmp(v->valuestring, "2.0") == 0, "no jsonrpc 2.0");
    FUZZ_CHECK(cJSON_GetObjectItemCaseSensitive(o, "id") != NULL, "response without id");
    bool has_result = cJSON_GetObjectItemCaseSensitive(o, "result") != NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    FUZZ_CHECK(has_result != (e != NULL), "not exactly one of result/error");
    if (e) {
      FUZZ_CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "code")), "error without code");
      FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")), "error without message");
    }
  }
  FUZZ_CHECK(count >= 1 && count <= (job->n_elems ? job->n_elems : 1), "more answers than requests");
  cJSON_Delete(root);
}

/* A strict-JSON object line, run again as a batch of one: the element's
 * answer must be the single answer, byte for byte. */
static void same_as_batch_of_one(const char *line, size_t size, bool shed, const tr_job_t *single) {
  size_t i = 0;
  while (i < size && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) i++;
  if (i == size || line[i] != '{' || tr_json_check(line, size, TR_JSON_ANY_VALUE, NULL) != 0) return;
  cJSON *req = cJSON_ParseWithLength(line, size);
  const cJSON *method = cJSON_GetObjectItemCaseSensitive(req, "method");
  /* Answers that read the clock differ between two runs: node.status (uptime,
   * rates) and tx.check (an expiry or lockup detail names the time now). */
  bool clocked = cJSON_IsString(method) &&
                 (strcmp(method->valuestring, "node.status") == 0 || strcmp(method->valuestring, "tx.check") == 0);
  cJSON_Delete(req);
  if (clocked) return;
  char *wrapped = malloc(size + 2);
  if (wrapped == NULL) return;
  wrapped[0] = '[';
  memcpy(wrapped + 1, line, size);
  wrapped[size + 1] = ']';
  tr_job_t *batch = rpc_harness_run(wrapped, size + 2, shed);
  free(wrapped);
  if (batch == NULL) return;
  if (single->response == NULL) {
    FUZZ_CHECK(batch->response == NULL, "a batch of one answered what the single request did not");
  } else {
    size_t n = single->response_len; /* "r\n" against "[r]\n" */
    FUZZ_CHECK(batch->response != NULL && batch->response_len == n + 2 && batch->response[0] == '[' &&
                   memcmp(batch->response + 1, single->response, n - 1) == 0,
               "a single request and the same request in a batch of one were answered differently");
  }
  tr_job_free(batch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > TR_RPC_LINE_BYTES_MAX - 2) return 0; /* the loop refuses longer lines before any worker */
  bool shed = (size % 13) == 7; /* sometimes "full" */
  tr_job_t *job = rpc_harness_run((const char *)data, size, shed);
  if (job == NULL) return 0;
  size_t answers = rpc_harness_answers;
  FUZZ_CHECK((answers == 0) == (job->response == NULL), "a notification was answered, or an answer was lost");
  if (getenv("FUZZ_SHOW") && job->response) fprintf(stderr, "%.*s", (int)job->response_len, job->response);
  check_response(job);
  same_as_batch_of_one((const char *)data, size, shed, job);
  tr_job_free(job);
  return 0;
}
