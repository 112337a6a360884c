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
 * a notification (valid request without id) is never answered (§5).
 *
 * Not covered here: the loop side in daemon/server.c (line framing, the
 * 1 MiB limit, reorder buffer, backpressure, connection limits) and the
 * group commit — the integration tests test_hostile.py / test_crash.py
 * exercise those against the real daemon.
 */
#include <cJSON.h>
#include <sodium.h>
#include <string.h>

#include "daemon.h"
#include "fuzz.h"
#include "job.h"
#include "log.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_json.h"
#include "tr_ledger.h"
#include "tr_merkle.h"
#include "tr_query.h"
#include "tr_store.h"

#define FUZZ_CHAIN "fuzz.example/chain"
#define FUZZ_TIME_MS 1700000000000ULL

/* The two daemon functions rpc.c calls that live in pool.c / sequencer.c. */
size_t tr_pool_depth(tr_pool_t *pool) { (void)pool; return 0; }
size_t tr_sequencer_depth(tr_sequencer_t *seq) { (void)seq; return 0; }

static tr_daemon_t g_daemon;
static tr_worker_t g_worker;
static tr_store_t *g_store;

static void setup(void) {
  static int ready;
  if (ready) return;
  ready = 1;
  FUZZ_CHECK(sodium_init() >= 0, "sodium_init");
  tr_log_set_level(TR_LOG_ERROR);
  uint8_t seed[32], node_pk[32], node_sk[64], admin_pk[32], admin_sk[64];
  crypto_hash_sha256(seed, (const uint8_t *)"tranche-fuzz-node", 17);
  crypto_sign_seed_keypair(node_pk, node_sk, seed);
  crypto_hash_sha256(seed, (const uint8_t *)"tranche-fuzz-admin", 18);
  crypto_sign_seed_keypair(admin_pk, admin_sk, seed);
  char err[256];
  FUZZ_CHECK(tr_store_open(NULL, TR_STORE_MEMORY, &g_store, err, sizeof err) == 0, "memory store");
  tr_key_t admin;
  memcpy(admin.b, admin_pk, 32);
  FUZZ_CHECK(tr_ledger_genesis(g_store, FUZZ_CHAIN, node_sk, &admin, FUZZ_TIME_MS) == 0, "genesis");
  uint8_t root[32];
  char note[TR_CHECKPOINT_NOTE_BUF_BYTES];
  size_t note_len;
  FUZZ_CHECK(tr_store_merkle_root(g_store, 1, root) == 0, "root");
  FUZZ_CHECK(tr_checkpoint_sign(FUZZ_CHAIN, 1, root, node_sk, note, sizeof note, &note_len) == 0, "cp sign");
  FUZZ_CHECK(tr_store_begin(g_store) == 0, "begin");
  FUZZ_CHECK(tr_store_checkpoint_put(g_store, 1, root, FUZZ_TIME_MS, note) == 0, "cp put");
  FUZZ_CHECK(tr_store_commit(g_store) == 0, "commit");

  tr_daemon_t *d = &g_daemon;
  snprintf(d->chain, sizeof d->chain, "%s", FUZZ_CHAIN);
  tr_hex_encode(node_pk, 32, d->node_key_hex);
  FUZZ_CHECK(tr_note_vkey_format(FUZZ_CHAIN, node_pk, d->vkey, sizeof d->vkey) == 0, "vkey");
  d->workers = 1;
  d->started_ms = FUZZ_TIME_MS;
  d->pool.ctx = d;
  d->pool.n = 1;
  d->pool.workers = &g_worker;
  g_worker.pool = &d->pool;
  g_worker.reader = g_store;
  FUZZ_CHECK(tr_ledger_load(&g_worker.ledger, g_store) == 0, "ledger load");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  setup();
  return 0;
}

/* What daemon/sequencer.c does with the txs of one batch, then rolls back. */
static void sequence(tr_job_t *job) {
  bool any = false;
  for (size_t i = 0; i < job->n_elems; i++) any |= job->elems[i].state == TR_ELEM_AWAIT_SEQ;
  if (!any) return;
  FUZZ_CHECK(tr_store_begin(g_store) == 0, "begin");
  for (size_t i = 0; i < job->n_elems; i++) {
    tr_elem_t *e = &job->elems[i];
    if (e->state != TR_ELEM_AWAIT_SEQ) continue;
    FUZZ_CHECK(e->tx != NULL && e->tx_bytes != NULL && e->response == NULL, "AWAIT_SEQ element incomplete");
    tr_receipt_t r;
    tr_refusal_t refusal = {0};
    int rc = tr_ledger_apply(&g_worker.ledger, e->tx, e->tx_bytes, e->tx_len, e->sig, FUZZ_TIME_MS + 1, &r,
                             &refusal);
    if (rc == 0) {
      cJSON *res = tr_query_receipt_json(r.seq, r.time, r.txid, r.hash, r.duplicate, r.effects_json);
      e->response = res ? tr_rpc_result_text(e->id, res) : NULL;
      tr_receipt_clear(&r);
    } else {
      FUZZ_CHECK(tr_err_is_refusal(rc), "storage error applying a tx in memory");
      e->response = tr_rpc_refusal_text(e->id, rc, refusal.detail);
    }
    e->state = TR_ELEM_ANSWERED;
  }
  FUZZ_CHECK(tr_store_rollback(g_store) == 0, "rollback");
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  if (size > TR_RPC_LINE_BYTES_MAX) return 0; /* the loop refuses longer lines before any worker */
  tr_job_t *job = tr_job_new(NULL, (const char *)data, size, 1);
  if (job == NULL) return 0;
  job->shed = (size % 13) == 7; /* sometimes the intake queue is "full" */
  tr_rpc_work(&g_worker, job);
  sequence(job);
  if (tr_job_has_deferred(job)) {
    job->phase = 1;
    tr_rpc_work(&g_worker, job);
  }
  FUZZ_CHECK(!tr_job_has_deferred(job), "deferred element left after phase 1");
  FUZZ_CHECK(tr_job_render(job) == 0, "render");
  size_t answers = 0;
  for (size_t i = 0; i < job->n_elems; i++) answers += job->elems[i].response && !job->elems[i].notification;
  FUZZ_CHECK((answers == 0) == (job->response == NULL), "a notification was answered, or an answer was lost");
  if (getenv("FUZZ_SHOW") && job->response) fprintf(stderr, "%.*s", (int)job->response_len, job->response);
  check_response(job);
  tr_job_free(job);
  return 0;
}
