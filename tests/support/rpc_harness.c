/* rpc_harness.c — one JSON-RPC line through the daemon's worker-side code,
 * shared by the dispatcher unit test and the RPC fuzz harness.
 *
 * Links daemon/rpc.c and daemon/job.c unchanged, with a minimal daemon
 * context: one worker whose reader is a private in-memory store holding a
 * genesis entry and a checkpoint (fixed keys: the node and admin seeds are
 * SHA-256 of "tranche-fuzz-node" / "tranche-fuzz-admin"), so requests signed
 * by that admin key reach the ledger rules.  A line goes through tr_rpc_work
 * (phase 0); txs handed to the sequencer are applied with tr_ledger_apply
 * in a transaction that is rolled back (the state never drifts between
 * lines; rpc_harness_keep_txs commits instead), rendered as daemon/sequencer.c does; deferred queries run
 * (phase 1); then tr_job_render.
 */
#include "rpc_harness.h"

#include <cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "log.h"
#include "subscribe.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_ledger.h"
#include "tr_merkle.h"
#include "tr_query.h"
#include "tr_store.h"

#define HARNESS_CHECK(cond, what)                                                    \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "rpc harness: %s (%s) at %s:%d\n", what, #cond, __FILE__, __LINE__); \
      abort();                                                                       \
    }                                                                                \
  } while (0)

/* The daemon functions rpc.c calls that live in pool.c / sequencer.c. */
size_t tr_pool_depth(tr_pool_t *pool) { (void)pool; return 0; }
/* A single node: node.status and min_size never ask for the cluster. */
bool tr_cluster_is_leader(tr_cluster_t *c) {
  (void)c;
  return false;
}
bool tr_cluster_leader_rpc(tr_cluster_t *c, char *out, size_t cap) {
  (void)c, (void)out, (void)cap;
  return false;
}
void tr_cluster_status(tr_cluster_t *c, tr_cluster_status_t *st) {
  (void)c;
  memset(st, 0, sizeof *st);
}
size_t tr_sequencer_depth(tr_sequencer_t *seq) { (void)seq; return 0; }
void tr_sequencer_halt(tr_sequencer_t *seq, const char *what, const char *why) {
  (void)seq;
  fprintf(stderr, "rpc harness: %s found the database damaged: %s\n", what, why);
  abort(); /* the harness's store is in memory: damage is a bug */
}

/* Backlog pages are read only for subscriptions, which live on the loop. */
void tr_sub_read_page(tr_worker_t *w, tr_job_t *job) {
  (void)w;
  (void)job;
  HARNESS_CHECK(false, "a subscription page in the harness");
}

bool rpc_harness_keep_txs;
size_t rpc_harness_answers;
tr_daemon_t g_daemon;
tr_worker_t g_worker;
static tr_store_t *g_store;

void rpc_harness_setup(void) {
  static int ready;
  if (ready) return;
  ready = 1;
  HARNESS_CHECK(sodium_init() >= 0, "sodium_init");
  tr_log_set_level(TR_LOG_ERROR);
  uint8_t seed[32], node_pk[32], node_sk[64], admin_pk[32], admin_sk[64];
  crypto_hash_sha256(seed, (const uint8_t *)"tranche-fuzz-node", 17);
  crypto_sign_seed_keypair(node_pk, node_sk, seed);
  crypto_hash_sha256(seed, (const uint8_t *)"tranche-fuzz-admin", 18);
  crypto_sign_seed_keypair(admin_pk, admin_sk, seed);
  char err[256];
  HARNESS_CHECK(tr_store_open(NULL, TR_STORE_MEMORY, &g_store, err, sizeof err) == 0, "memory store");
  tr_key_t admin;
  memcpy(admin.b, admin_pk, 32);
  HARNESS_CHECK(tr_ledger_genesis(g_store, RPC_HARNESS_CHAIN, node_sk, &admin, RPC_HARNESS_TIME_MS) == 0, "genesis");
  uint8_t root[32];
  char note[TR_CHECKPOINT_NOTE_BUF_BYTES];
  size_t note_len;
  HARNESS_CHECK(tr_store_merkle_root(g_store, 1, root) == 0, "root");
  HARNESS_CHECK(tr_checkpoint_sign(RPC_HARNESS_CHAIN, 1, root, node_sk, note, sizeof note, &note_len) == 0, "cp sign");
  HARNESS_CHECK(tr_store_begin(g_store) == 0, "begin");
  HARNESS_CHECK(tr_store_checkpoint_put(g_store, 1, root, RPC_HARNESS_TIME_MS, note) == 0, "cp put");
  HARNESS_CHECK(tr_store_commit(g_store) == 0, "commit");

  tr_daemon_t *d = &g_daemon;
  snprintf(d->chain, sizeof d->chain, "%s", RPC_HARNESS_CHAIN);
  tr_hex_encode(node_pk, 32, d->node_key_hex);
  HARNESS_CHECK(tr_note_vkey_format(RPC_HARNESS_CHAIN, node_pk, d->vkey, sizeof d->vkey) == 0, "vkey");
  d->workers = 1;
  d->started_ms = RPC_HARNESS_TIME_MS;
  atomic_store(&d->seq.stats.size, 1); /* genesis, journalled and its tables written */
  atomic_store(&d->seq.derived.stats.through, 1);
  d->pool.ctx = d;
  d->pool.n = 1;
  d->pool.workers = &g_worker;
  g_worker.pool = &d->pool;
  g_worker.reader = g_store;
  HARNESS_CHECK(tr_ledger_load(&g_worker.ledger, g_store) == 0, "ledger load");
}


/* What daemon/sequencer.c does with the txs of one batch, then rolls back. */
static void sequence(tr_job_t *job) {
  bool any = false;
  for (size_t i = 0; i < job->n_elems; i++) any |= job->elems[i].state == TR_ELEM_AWAIT_SEQ;
  if (!any) return;
  HARNESS_CHECK(tr_store_begin(g_store) == 0, "begin");
  for (size_t i = 0; i < job->n_elems; i++) {
    tr_elem_t *e = &job->elems[i];
    if (e->state != TR_ELEM_AWAIT_SEQ) continue;
    HARNESS_CHECK(e->tx != NULL && e->tx_bytes != NULL && e->response == NULL, "AWAIT_SEQ element incomplete");
    tr_receipt_t r;
    tr_refusal_t refusal = {0};
    int rc = tr_ledger_apply(&g_worker.ledger, e->tx, e->tx_bytes, e->tx_len, e->sig, RPC_HARNESS_TIME_MS + 1, &r,
                             &refusal);
    if (rc == 0) {
      cJSON *res = tr_query_receipt_json(r.seq, r.time, r.txid, r.hash, r.duplicate, r.effects_json);
      e->response = res ? tr_rpc_result_text(e->id, res) : NULL;
      tr_receipt_clear(&r);
    } else {
      HARNESS_CHECK(tr_err_is_refusal(rc), "storage error applying a tx in memory");
      e->response = tr_rpc_refusal_text(e->id, rc, refusal.detail);
    }
    e->state = TR_ELEM_ANSWERED;
  }
  if (rpc_harness_keep_txs) HARNESS_CHECK(tr_store_commit(g_store) == 0, "commit");
  else HARNESS_CHECK(tr_store_rollback(g_store) == 0, "rollback");
}


tr_job_t *rpc_harness_run(const char *line, size_t len, bool shed) {
  rpc_harness_setup();
  tr_job_t *job = tr_job_new(NULL, line, len, 1);
  if (job == NULL) return NULL;
  job->shed = shed;
  tr_rpc_work(&g_worker, job);
  sequence(job);
  if (tr_job_has_deferred(job)) {
    job->phase = 1;
    tr_rpc_work(&g_worker, job);
  }
  HARNESS_CHECK(!tr_job_has_deferred(job), "deferred element left after phase 1");
  rpc_harness_answers = 0;
  for (size_t i = 0; i < job->n_elems; i++) rpc_harness_answers += job->elems[i].response && !job->elems[i].notification;
  HARNESS_CHECK(tr_job_render(job) == 0, "render");
  return job;
}
