/* rpc.c — JSON-RPC 2.0 on a worker thread: strict parsing, the method table,
 * parameter checking, and every method that needs no ordering.
 *
 * One table drives the dispatcher, parameter checks and rpc.discover, so the
 * published description cannot drift from what the daemon does: adding a
 * method is adding a row.
 */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "daemon.h"
#include "job.h"
#include "log.h"
#include "subscribe.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_json.h"
#include "tr_limits.h"
#include "tr_query.h"

/* ---- parameter kinds ---- */

typedef enum {
  P_STRING,     /* any string (tx bytes) */
  P_KEY,        /* 64 lowercase hex: a public key or hash */
  P_SIG,        /* 128 lowercase hex */
  P_TXID_STR,   /* a tx `id` */
  P_ASSET,      /* an asset id */
  P_UINT,       /* integer 0..2^53-1 */
  P_POS,        /* integer 1..2^53-1 */
  P_LIMIT,      /* integer 1..1000 */
  P_CURSOR,     /* string or null */
} ptype_t;

#define PARAMS_MAX 4

typedef struct {
  const char *name;
  ptype_t type;
  bool required;
  const char *doc;
} param_t;

typedef struct {
  bool present;
  const char *s;          /* into the request tree */
  size_t len;
  uint64_t u;
  uint8_t bin[64];
} pval_t;

typedef struct {
  tr_worker_t *w;
  tr_daemon_t *d;
  tr_job_t *job;
  tr_elem_t *elem;
  const cJSON *params;
  pval_t v[PARAMS_MAX];
} call_t;

/* Returns a result (0), or fills code and msg for an error. */
typedef int (*handler_fn)(call_t *c, cJSON **result, int *code, char *msg, size_t msglen);

enum {
  M_SUBMIT = 1, /* goes to the sequencer */
  M_LIVE = 2,   /* answers from the process, not the state tables: never waits for them */
};

typedef struct tr_method {
  const char *name;
  handler_fn handler;
  unsigned flags;
  const char *summary;
  const char *result_doc;
  param_t params[PARAMS_MAX];
} method_t;

/* ---- helpers for handlers ---- */

static tr_store_t *R(call_t *c) { return c->w->reader; }

static int query_status(call_t *c, int rc, const tr_query_error_t *qe, int *code, char *msg, size_t msglen) {
  if (rc == 0) return 0;
  if (rc == TR_EIO && tr_store_failure_is_fatal()) { /* a read found the database damaged: stop writing */
    snprintf(msg, msglen, "storage error: %s", tr_store_error_text(R(c), rc));
    *code = TR_RPC_INTERNAL_ERROR;
    tr_sequencer_halt(&c->d->seq, "a read", msg + strlen("storage error: "));
    return -1;
  }
  if (rc == TR_ENOT_FOUND) {
    *code = TR_RPC_NOT_FOUND;
    snprintf(msg, msglen, "not_found%s%s", qe->message[0] ? ": " : "", qe->message);
  } else if (rc == TR_EARG || rc == TR_EINVALID) {
    *code = TR_RPC_INVALID_PARAMS;
    snprintf(msg, msglen, "%s", qe->message[0] ? qe->message : "invalid params");
  } else if (rc == TR_ECORRUPT && qe->message[0]) { /* damage the query found: say what, and tell the operator */
    *code = TR_RPC_INTERNAL_ERROR;
    snprintf(msg, msglen, "storage error: %s", qe->message);
    log_error("rpc", "a query found damaged data: %s", qe->message);
  } else {
    *code = TR_RPC_INTERNAL_ERROR;
    snprintf(msg, msglen, "internal error: %s", tr_strerror(rc));
  }
  return -1;
}

static tr_page_t page_of(const call_t *c, int cursor_i, int limit_i) {
  tr_page_t p = {NULL, TR_RPC_PAGE_LIMIT_DEFAULT};
  if (c->v[cursor_i].present && c->v[cursor_i].s) p.cursor = c->v[cursor_i].s;
  if (c->v[limit_i].present) p.limit = c->v[limit_i].u;
  return p;
}

#define QUERY(expr)                                  \
  do {                                               \
    tr_query_error_t qe = {{0}};                     \
    int rc_ = (expr);                                \
    return query_status(c, rc_, &qe, code, msg, msglen); \
  } while (0)


/* ---- handlers ---- */

static int h_ledger_head(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  QUERY(tr_query_head(R(c), out, &qe));
}
static int h_ledger_entry(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  QUERY(tr_query_entry(R(c), c->v[0].u, out, &qe));
}
static int h_ledger_entries(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  QUERY(tr_query_entries(R(c), c->v[0].u, c->v[1].present ? c->v[1].u : TR_RPC_PAGE_LIMIT_DEFAULT, out, &qe));
}
static int h_ledger_checkpoint(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  QUERY(tr_query_checkpoint(R(c), c->d->vkey, out, &qe));
}
static int h_ledger_proof(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  QUERY(tr_query_proof(R(c), c->v[0].u, c->v[1].u, out, &qe));
}
static int h_ledger_consistency(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  QUERY(tr_query_consistency(R(c), c->v[0].u, c->v[1].u, out, &qe));
}
static int h_tx_get(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  QUERY(tr_query_tx_get(R(c), c->v[0].bin, out, &qe));
}
static int h_tx_find(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  tr_key_t k;
  memcpy(k.b, c->v[0].bin, 32);
  QUERY(tr_query_tx_find(R(c), &k, c->v[1].s, out, &qe));
}
static int h_account_get(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  tr_key_t k;
  memcpy(k.b, c->v[0].bin, 32);
  QUERY(tr_query_account(R(c), &k, out, &qe));
}
static int h_account_history(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  tr_key_t k;
  memcpy(k.b, c->v[0].bin, 32);
  tr_page_t p = page_of(c, 1, 2);
  QUERY(tr_query_account_history(R(c), &k, &p, out, &qe));
}
static int h_asset_get(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  QUERY(tr_query_asset(R(c), c->v[0].s, out, &qe));
}
static int h_asset_list(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  tr_page_t p = page_of(c, 0, 1);
  QUERY(tr_query_asset_list(R(c), &p, out, &qe));
}
static int h_asset_holders(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  tr_page_t p = page_of(c, 1, 2);
  QUERY(tr_query_asset_holders(R(c), c->v[0].s, &p, out, &qe));
}
static int h_asset_payouts(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  tr_page_t p = page_of(c, 2, 3);
  QUERY(tr_query_asset_payouts(R(c), c->v[0].s, c->v[1].present ? c->v[1].u : 0, &p, out, &qe));
}
static int h_risk_exposure(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  tr_key_t k;
  memcpy(k.b, c->v[0].bin, 32);
  QUERY(tr_query_risk_exposure(R(c), &k, out, &qe));
}

static void add_u64(cJSON *o, const char *name, uint64_t v) { tr_query_add_u64(o, name, v); }

/* PROTOCOL.md §8: {id, role, term, leader, commit, applied, nodes: [{id,
 * raft, rpc, role}]}, plus on the leader each node's replicated index and
 * lag, and what this node's sequencer did with the batches. */
static cJSON *cluster_status_json(tr_daemon_t *d) {
  tr_cluster_status_t st;
  tr_cluster_status(d->cluster, &st);
  cJSON *o = cJSON_CreateObject();
  add_u64(o, "id", st.id);
  cJSON_AddStringToObject(o, "role", st.role);
  add_u64(o, "term", st.term);
  if (st.leader) add_u64(o, "leader", st.leader);
  else cJSON_AddNullToObject(o, "leader");
  add_u64(o, "commit", st.commit);
  add_u64(o, "applied", st.applied);
  add_u64(o, "last_index", st.last_index);
  cJSON_AddBoolToObject(o, "taking_writes", atomic_load(&d->seq.accepting));
  add_u64(o, "role_changes", st.role_changes);
  add_u64(o, "batches_applied", atomic_load(&d->seq.replicated_batches));
  add_u64(o, "txs_applied", atomic_load(&d->seq.replicated_txs));
  add_u64(o, "batches_skipped", atomic_load(&d->seq.skipped_batches));
  add_u64(o, "apply_retries", atomic_load(&d->seq.apply_retries));
  cJSON *nodes = cJSON_AddArrayToObject(o, "nodes");
  for (size_t i = 0; i < st.n; i++) {
    cJSON *n = cJSON_CreateObject();
    add_u64(n, "id", st.nodes[i].id);
    cJSON_AddStringToObject(n, "raft", st.nodes[i].raft);
    if (st.nodes[i].rpc[0]) cJSON_AddStringToObject(n, "rpc", st.nodes[i].rpc);
    else cJSON_AddNullToObject(n, "rpc");
    cJSON_AddStringToObject(n, "role", st.nodes[i].role);
    if (st.nodes[i].known_progress) {
      add_u64(n, "match", st.nodes[i].match);
      add_u64(n, "lag", st.last_index > st.nodes[i].match ? st.last_index - st.nodes[i].match : 0);
    }
    cJSON_AddItemToArray(nodes, n);
  }
  return o;
}

static int h_node_status(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  (void)code; (void)msg; (void)msglen;
  tr_daemon_t *d = c->d;
  tr_seq_stats_t *s = &d->seq.stats;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "version", TR_VERSION);
  cJSON_AddStringToObject(o, "chain", d->chain);
  cJSON_AddStringToObject(o, "node_key", d->node_key_hex);
  cJSON_AddStringToObject(o, "vkey", d->vkey);
  add_u64(o, "schema_version", (uint64_t)tr_store_schema_version());
  cJSON_AddStringToObject(o, "log_level", tr_log_level_name(tr_log_level()));
  add_u64(o, "uptime_ms", tr_now_ms() - d->started_ms);
  tr_query_error_t qe = {{0}};
  cJSON *head = NULL;
  if (tr_query_head(R(c), &head, &qe) == 0) cJSON_AddItemToObject(o, "head", head);
  cJSON *w = cJSON_AddObjectToObject(o, "workers");
  add_u64(w, "threads", d->workers);
  add_u64(w, "jobs_done", atomic_load(&d->pool.jobs_done));
  add_u64(w, "busy_ms", atomic_load(&d->pool.busy_ns) / 1000000u);
  cJSON *q = cJSON_AddObjectToObject(o, "queues");
  add_u64(q, "intake", tr_pool_depth(&d->pool));
  add_u64(q, "intake_max", TR_INTAKE_JOBS_MAX);
  add_u64(q, "sequencer", tr_sequencer_depth(&d->seq));
  add_u64(q, "sequencer_max", TR_SEQ_QUEUE_MAX);
  cJSON *k = cJSON_AddObjectToObject(o, "counters");
  add_u64(k, "connections_open", atomic_load(&d->stats.connections_open));
  add_u64(k, "connections_accepted", atomic_load(&d->stats.connections_accepted));
  add_u64(k, "connections_refused", atomic_load(&d->stats.connections_refused));
  add_u64(k, "connections_refused_peer", atomic_load(&d->stats.connections_refused_peer));
  add_u64(k, "connections_evicted", atomic_load(&d->stats.connections_evicted));
  add_u64(k, "connections_stalled", atomic_load(&d->stats.connections_stalled));
  add_u64(k, "requests_too_slow", atomic_load(&d->stats.deadline_closed));
  add_u64(k, "lines", atomic_load(&d->stats.lines));
  add_u64(k, "subscriptions_open", atomic_load(&d->stats.subscriptions_open));
  add_u64(k, "subscriptions_slow", atomic_load(&d->stats.subscriptions_slow));
  add_u64(k, "overloaded", atomic_load(&d->stats.overloaded));
  add_u64(k, "committed_txs", atomic_load(&s->committed_txs));
  add_u64(k, "refused_txs", atomic_load(&s->refused_txs));
  add_u64(k, "storage_errors", atomic_load(&s->storage_errors));
  add_u64(k, "checkpoints", atomic_load(&d->seq.derived.stats.checkpoints));
  cJSON *b = cJSON_AddObjectToObject(o, "batches");
  uint64_t batches = atomic_load(&s->batches), txs = atomic_load(&s->committed_txs) + atomic_load(&s->refused_txs);
  add_u64(b, "count", batches);
  add_u64(b, "last_size", atomic_load(&s->last_batch));
  add_u64(b, "max_size", atomic_load(&s->batch_max));
  add_u64(b, "mean_size", batches ? txs / batches : 0);
  cJSON *t = cJSON_AddObjectToObject(o, "time_ms");
  add_u64(t, "verify_and_parse", atomic_load(&d->pool.busy_ns) / 1000000u);
  add_u64(t, "apply", atomic_load(&s->apply_ns) / 1000000u);
  add_u64(t, "journal_wait", atomic_load(&d->seq.journal.wait_ns) / 1000000u); /* tr-seq, the journal stage full */
  add_u64(t, "commit", atomic_load(&s->commit_ns) / 1000000u);
  add_u64(t, "handover", atomic_load(&s->handover_ns) / 1000000u);
  add_u64(t, "derived_write", atomic_load(&d->seq.derived.stats.write_ns) / 1000000u);
  add_u64(t, "lookups_write", atomic_load(&d->seq.derived.lookups.stats.write_ns) / 1000000u);
  add_u64(t, "history_write", atomic_load(&d->seq.derived.lookups.stats.history_write_ns) / 1000000u);
  add_u64(o, "recent_tx_per_s", atomic_load(&s->recent_tx_per_s));
  const tr_derived_stats_t *ds = &d->seq.derived.stats;
  /* read in this order, each behind the next, so they show lookups <= written <= journal */
  uint64_t lookups = atomic_load(&d->seq.derived.lookups.stats.through);
  uint64_t history = atomic_load(&d->seq.derived.lookups.stats.history_through);
  uint64_t through = atomic_load(&ds->through), journal = atomic_load(&s->size);
  cJSON *dv = cJSON_AddObjectToObject(o, "derived");
  add_u64(dv, "written_through", through);
  add_u64(dv, "behind", journal > through ? journal - through : 0);
  add_u64(dv, "lookups_through", lookups);
  add_u64(dv, "lookups_merges", atomic_load(&d->seq.derived.lookups.stats.merges)); /* two levels (lookups.h) */
  add_u64(dv, "history_through", history); /* account history: written at once, by tr-lookups */
  add_u64(dv, "queued_batches", atomic_load(&ds->queued_deltas));
  add_u64(dv, "queued_bytes", atomic_load(&ds->queued_bytes));
  add_u64(dv, "queued_bytes_max", TR_DERIVED_QUEUE_BYTES_MAX);
  add_u64(dv, "writes", atomic_load(&ds->writes));
  add_u64(dv, "rows", atomic_load(&ds->rows));
  add_u64(dv, "write_ms", atomic_load(&ds->write_ns) / 1000000u);
  /* failed write transactions, of the derived tables and of the lookup tables */
  add_u64(dv, "errors", atomic_load(&ds->errors) + atomic_load(&d->seq.derived.lookups.stats.errors));
  cJSON_AddBoolToObject(dv, "failing", atomic_load(&ds->failing));
  cJSON *mem = cJSON_AddObjectToObject(o, "state");
  add_u64(mem, "accounts", atomic_load(&s->mem_accounts));
  add_u64(mem, "keys", atomic_load(&s->mem_keys));
  add_u64(mem, "keys_max", TR_MEM_KEYS_MAX);
  add_u64(mem, "assets", atomic_load(&s->mem_assets));
  add_u64(mem, "holdings", atomic_load(&s->mem_holdings));
  add_u64(mem, "holdings_max", TR_MEM_HOLDINGS_MAX);
  add_u64(mem, "entries_max", TR_MEM_ENTRIES_MAX);
  add_u64(mem, "load_ms", d->seq.load_ms);
  cJSON *cl = cJSON_AddObjectToObject(o, "clock");
  add_u64(cl, "skew_max_ms", d->seq.clock_skew_max_ms);
  cJSON_AddNumberToObject(cl, "ahead_ms", (double)atomic_load(&s->clock_ahead_ms)); /* |value| < 2^53 */
  add_u64(cl, "refused_readings", atomic_load(&s->clock_refused));
  cJSON *wr = cJSON_AddObjectToObject(o, "writes");
  bool halted = atomic_load(&s->halted);
  cJSON_AddBoolToObject(wr, "halted", halted);
  if (halted) cJSON_AddStringToObject(wr, "reason", d->seq.halt_reason);
  else cJSON_AddNullToObject(wr, "reason");
  if (d->cluster) cJSON_AddItemToObject(o, "cluster", cluster_status_json(d));
  *out = o;
  return 0;
}

static int h_rpc_discover(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  (void)c; (void)code; (void)msg; (void)msglen;
  *out = tr_rpc_discover();
  return 0;
}

/* Subscriptions belong to the loop thread (subscribe.c): the worker checks
 * the params and the loop answers when the job comes back. */
static int h_ledger_subscribe(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  (void)out; (void)code; (void)msg; (void)msglen;
  c->elem->sub_op = TR_SUB_OP_SUBSCRIBE;
  c->elem->sub_from = c->v[0].present ? c->v[0].u : 0;
  return 1;
}
static int h_ledger_unsubscribe(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  (void)out; (void)code; (void)msg; (void)msglen;
  c->elem->sub_op = TR_SUB_OP_UNSUBSCRIBE;
  if (c->v[0].len < sizeof c->elem->sub_id) memcpy(c->elem->sub_id, c->v[0].s, c->v[0].len + 1);
  return 1; /* an id too long to be one stays "": no subscription has it */
}

/* Steps 1–3 of §4: envelope, chain, signature.  0, or a refusal code. */
static int tx_precheck(call_t *c, const char *bytes, size_t len, const uint8_t *sig, tr_tx_t *tx, char *detail,
                       size_t dlen) {
  tr_tx_error_t te = {{0}};
  if (tr_tx_decode(bytes, len, tx, &te) != 0) {
    snprintf(detail, dlen, "%s", te.detail);
    return TR_EINVALID;
  }
  if (tx->type == TR_TX_GENESIS) {
    snprintf(detail, dlen, "a genesis tx is written only by tranchectl init");
    return TR_EINVALID;
  }
  if (strcmp(tx->chain, c->d->chain) != 0) {
    snprintf(detail, dlen, "tx is for chain \"%s\", this node serves \"%s\"", tx->chain, c->d->chain);
    return TR_EWRONG_CHAIN;
  }
  if (sig && tr_tx_verify(bytes, len, &tx->signer, sig) != 0) {
    snprintf(detail, dlen, "signature does not verify for signer over \"TRANCHE/TX/1\\n\" || tx");
    return TR_EBAD_SIGNATURE;
  }
  return 0;
}

static cJSON *reason_json(int code, const char *detail) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "reason", tr_err_reason(code));
  cJSON_AddStringToObject(o, "detail", detail);
  return o;
}

static int h_tx_check(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  tr_tx_t *tx = malloc(sizeof *tx);
  if (tx == NULL) {
    *code = TR_RPC_INTERNAL_ERROR;
    snprintf(msg, msglen, "out of memory");
    return -1;
  }
  char detail[TR_DETAIL_MAX];
  tr_refusal_t reasons[TR_REFUSALS_MAX];
  size_t n = 0;
  uint64_t dup = 0;
  int rc = tx_precheck(c, c->v[0].s, c->v[0].len, c->v[1].present ? c->v[1].bin : NULL, tx, detail, sizeof detail);
  if (rc != 0) {
    reasons[0].code = rc;
    snprintf(reasons[0].detail, sizeof reasons[0].detail, "%s", detail);
    n = 1;
  } else {
    rc = tr_store_read_begin(R(c));
    if (rc == 0) rc = tr_ledger_check(&c->w->ledger, tx, tr_now_ms(), reasons, &n, &dup);
    tr_store_read_end(R(c));
  }
  free(tx);
  if (rc != 0 && !tr_err_is_refusal(rc)) {
    *code = TR_RPC_INTERNAL_ERROR;
    snprintf(msg, msglen, "internal error: %s", tr_strerror(rc));
    return -1;
  }
  cJSON *o = cJSON_CreateObject(), *arr;
  cJSON_AddBoolToObject(o, "ok", n == 0);
  cJSON_AddBoolToObject(o, "duplicate", dup != 0);
  if (dup) add_u64(o, "seq", dup);
  else cJSON_AddNullToObject(o, "seq");
  arr = cJSON_AddArrayToObject(o, "reasons");
  for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, reason_json(reasons[i].code, reasons[i].detail));
  *out = o;
  return 0;
}

/* tx.submit on the worker: steps 1–3, then the element waits for the sequencer. */
static int h_tx_submit(call_t *c, cJSON **out, int *code, char *msg, size_t msglen) {
  (void)out;
  tr_elem_t *e = c->elem;
  if (c->job->shed) {
    *code = TR_RPC_OVERLOADED;
    snprintf(msg, msglen, "overloaded: intake queue full, retry later");
    return -1;
  }
  e->tx = malloc(sizeof *e->tx);
  e->tx_bytes = malloc(c->v[0].len + 1);
  if (e->tx == NULL || e->tx_bytes == NULL) {
    *code = TR_RPC_INTERNAL_ERROR;
    snprintf(msg, msglen, "out of memory");
    return -1;
  }
  char detail[TR_DETAIL_MAX];
  int rc = tx_precheck(c, c->v[0].s, c->v[0].len, c->v[1].bin, e->tx, detail, sizeof detail);
  if (rc != 0) {
    e->response = tr_rpc_refusal_text(e->id, rc, detail);
    return 1; /* answered */
  }
  memcpy(e->tx_bytes, c->v[0].s, c->v[0].len);
  e->tx_bytes[c->v[0].len] = '\0';
  e->tx_len = c->v[0].len;
  memcpy(e->sig, c->v[1].bin, 64);
  e->state = TR_ELEM_AWAIT_SEQ;
  return 1;
}

/* ---- the method table ---- */

#define PAGE_PARAMS {"cursor", P_CURSOR, false, "previous page's next; absent or null for the first"}, \
                    {"limit", P_LIMIT, false, "1-1000, default 100"}

static const method_t METHODS[] = {
  {"tx.submit", h_tx_submit, M_SUBMIT, "Submit a signed tx; answers after the entry is durable.",
   "receipt {seq, txid, hash, time, duplicate, effects}",
   {{"tx", P_STRING, true, "the tx JSON text, exactly the signed bytes"},
    {"sig", P_SIG, true, "Ed25519 signature over \"TRANCHE/TX/1\\n\" || tx, 128 hex"}}},
  {"tx.check", h_tx_check, 0, "Dry run: every reason the tx would be refused now.",
   "{ok, duplicate, seq, reasons: [{reason, detail}]}",
   {{"tx", P_STRING, true, "the tx JSON text"}, {"sig", P_SIG, false, "signature; checked when given"}}},
  {"tx.get", h_tx_get, 0, "An accepted tx by txid.", "{seq, txid, hash, time, tx, sig, signer}",
   {{"txid", P_KEY, true, "SHA-256 of the tx bytes, 64 hex"}}},
  {"tx.find", h_tx_find, 0, "An accepted tx by (signer, id).", "{seq, txid, hash, time, tx, sig, signer}",
   {{"signer", P_KEY, true, "public key, 64 hex"}, {"id", P_TXID_STR, true, "the tx id"}}},
  {"ledger.head", h_ledger_head, 0, "The journal head.", "{size, hash, root, time}", {{0}}},
  {"ledger.entry", h_ledger_entry, 0, "One journal entry.", "{seq, time, prev, hash, txid, tx, sig}",
   {{"seq", P_POS, true, "entry number, from 1"}}},
  {"ledger.entries", h_ledger_entries, 0, "Journal entries from a seq.", "{entries, next}",
   {{"from", P_POS, true, "first seq"}, {"limit", P_LIMIT, false, "1-1000, default 100"}}},
  {"ledger.subscribe", h_ledger_subscribe, 0,
   "Follow the journal on this connection (newline-delimited or WebSocket): one ledger.entry notification "
   "{subscription, entry: {seq, time, hash, txid, type, signer, effects}} per entry from `from`, in seq order, "
   "backlog first, then live. A subscriber that reads too slowly gets ledger.subscription_end "
   "{subscription, reason: \"slow_consumer\", next} and the subscription ends; resubscribe from next.",
   "{subscription, from}", {{"from", P_POS, false, "first seq; absent: the entry after the head"}}},
  {"ledger.unsubscribe", h_ledger_unsubscribe, 0, "End a subscription of this connection.",
   "true if it was open, else false", {{"subscription", P_STRING, true, "the id ledger.subscribe returned"}}},
  {"ledger.checkpoint", h_ledger_checkpoint, 0, "The latest signed checkpoint (C2SP tlog-checkpoint).",
   "{checkpoint, size, vkey}", {{0}}},
  {"ledger.proof", h_ledger_proof, 0, "RFC 9162 inclusion proof of entry seq in the tree of size.",
   "{seq, size, leaf, path}", {{"seq", P_POS, true, "entry"}, {"size", P_POS, true, "tree size"}}},
  {"ledger.consistency", h_ledger_consistency, 0, "RFC 9162 consistency proof between two tree sizes.",
   "{from, to, path}", {{"from", P_POS, true, "older size"}, {"to", P_POS, true, "newer size"}}},
  {"account.get", h_account_get, 0, "An account and its holdings.",
   "{account, roles, jurisdiction, kyc, frozen, holdings, size}", {{"account", P_KEY, true, "public key"}}},
  {"account.history", h_account_history, 0, "Entries the account signed, was named in, or was paid by.",
   "{entries, next, size}", {{"account", P_KEY, true, "public key"}, PAGE_PARAMS}},
  {"asset.get", h_asset_get, 0, "An asset's terms and state.", "terms + {issuer, status, issued, holders, size}",
   {{"asset", P_ASSET, true, "asset id"}}},
  {"asset.list", h_asset_list, 0, "All assets by id.", "{assets, next, size}", {PAGE_PARAMS}},
  {"asset.holders", h_asset_holders, 0, "Holders of an asset by account.", "{holders, next, size}",
   {{"asset", P_ASSET, true, "asset id"}, PAGE_PARAMS}},
  {"asset.payouts", h_asset_payouts, 0, "Distribution allocations by (distribution, account).",
   "{payouts, next, size}",
   {{"asset", P_ASSET, true, "asset id"}, {"distribution", P_POS, false, "seq of one distribution"}, PAGE_PARAMS}},
  {"risk.exposure", h_risk_exposure, 0, "Exposure and risk-weighted assets of an account.",
   "{account, holdings, totals, size}", {{"account", P_KEY, true, "public key"}}},
  {"node.status", h_node_status, M_LIVE, "Version, chain, keys, head, workers, queues, counters.", "status object",
   {{0}}},
  {"rpc.discover", h_rpc_discover, M_LIVE, "This OpenRPC document.", "OpenRPC document", {{0}}},
};

#define METHODS_N (sizeof METHODS / sizeof METHODS[0])

static const method_t *method_find(const char *name) {
  for (size_t i = 0; i < METHODS_N; i++)
    if (strcmp(METHODS[i].name, name) == 0) return &METHODS[i];
  return NULL;
}

static const char *ptype_schema_type(ptype_t t) {
  switch (t) {
  case P_UINT: case P_POS: case P_LIMIT: return "integer";
  default: return "string";
  }
}

cJSON *tr_rpc_discover(void) {
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "openrpc", "1.2.6");
  cJSON *info = cJSON_AddObjectToObject(doc, "info");
  cJSON_AddStringToObject(info, "title", "tranche");
  cJSON_AddStringToObject(info, "version", TR_VERSION);
  cJSON_AddStringToObject(info, "description", "Ledger daemon for tokenized private credit; protocol version 1.");
  cJSON *methods = cJSON_AddArrayToObject(doc, "methods");
  for (size_t i = 0; i < METHODS_N; i++) {
    const method_t *m = &METHODS[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "summary", m->summary);
    cJSON_AddStringToObject(o, "paramStructure", "by-name");
    cJSON *ps = cJSON_AddArrayToObject(o, "params");
    for (size_t k = 0; k < PARAMS_MAX && m->params[k].name; k++) {
      cJSON *p = cJSON_CreateObject();
      cJSON_AddStringToObject(p, "name", m->params[k].name);
      cJSON_AddStringToObject(p, "description", m->params[k].doc);
      cJSON_AddBoolToObject(p, "required", m->params[k].required);
      cJSON *schema = cJSON_AddObjectToObject(p, "schema");
      if (m->params[k].type == P_CURSOR) {
        cJSON *types = cJSON_AddArrayToObject(schema, "type");
        cJSON_AddItemToArray(types, cJSON_CreateString("string"));
        cJSON_AddItemToArray(types, cJSON_CreateString("null"));
      } else {
        cJSON_AddStringToObject(schema, "type", ptype_schema_type(m->params[k].type));
      }
      cJSON_AddItemToArray(ps, p);
    }
    cJSON *res = cJSON_AddObjectToObject(o, "result");
    cJSON_AddStringToObject(res, "name", "result");
    cJSON_AddStringToObject(res, "description", m->result_doc);
    cJSON_AddItemToObject(res, "schema", cJSON_CreateObject());
    cJSON_AddItemToArray(methods, o);
  }
  return doc;
}

/* ---- parameter checking ---- */

static bool integer_of(const cJSON *item, uint64_t *out) {
  if (!cJSON_IsNumber(item)) return false;
  double v = item->valuedouble;
  if (!(v >= 0) || v > (double)TR_INT_MAX || floor(v) != v) return false;
  *out = (uint64_t)v;
  return true;
}

static bool param_value(const param_t *p, const cJSON *item, pval_t *v) {
  v->present = true;
  if (p->type == P_CURSOR && cJSON_IsNull(item)) return true;
  if (p->type == P_UINT || p->type == P_POS || p->type == P_LIMIT) {
    if (!integer_of(item, &v->u)) return false;
    if (p->type == P_POS && v->u < 1) return false;
    return p->type != P_LIMIT || (v->u >= 1 && v->u <= TR_RPC_PAGE_LIMIT_MAX);
  }
  if (!cJSON_IsString(item)) return false;
  v->s = item->valuestring;
  v->len = strlen(v->s);
  switch (p->type) {
  case P_KEY: return tr_hex_decode(v->s, v->len, v->bin, 32) == 0;
  case P_SIG: return tr_hex_decode(v->s, v->len, v->bin, 64) == 0;
  case P_ASSET: return tr_asset_id_valid(v->s, v->len);
  case P_TXID_STR: return tr_tx_id_valid(v->s, v->len);
  default: return true;
  }
}

/* Bytes of s to print so that at most max bytes are shown and a UTF-8
 * sequence is never cut (a cut one would make the response invalid JSON). */
static int utf8_prefix(const char *s, int max) {
  int n = (int)strnlen(s, (size_t)max);
  if (s[n] != '\0')
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  return n;
}

/* Unknown, missing or wrongly typed params are -32602 (§5). */
static bool params_check(const method_t *m, const cJSON *params, pval_t v[PARAMS_MAX], char *msg, size_t msglen) {
  memset(v, 0, sizeof(pval_t) * PARAMS_MAX);
  if (params != NULL && !cJSON_IsObject(params)) {
    snprintf(msg, msglen, "params must be an object (by name)");
    return false;
  }
  for (const cJSON *it = params ? params->child : NULL; it; it = it->next) {
    if (strcmp(it->string, "min_size") == 0 && !(m->flags & (M_SUBMIT | M_LIVE))) continue; /* min_size_wait */
    size_t k = 0;
    while (k < PARAMS_MAX && m->params[k].name && strcmp(m->params[k].name, it->string) != 0) k++;
    if (k == PARAMS_MAX || m->params[k].name == NULL) {
      snprintf(msg, msglen, "unknown param `%.*s` for %s", utf8_prefix(it->string, 40), it->string, m->name);
      return false;
    }
    if (!param_value(&m->params[k], it, &v[k])) {
      snprintf(msg, msglen, "param `%s` has the wrong type or range", m->params[k].name);
      return false;
    }
  }
  for (size_t k = 0; k < PARAMS_MAX && m->params[k].name; k++) {
    if (m->params[k].required && !v[k].present) {
      snprintf(msg, msglen, "missing param `%s`", m->params[k].name);
      return false;
    }
  }
  return true;
}

/* ---- request elements ---- */

static void elem_answer_error(tr_elem_t *e, int code, const char *msg) {
  if (e->notification) return;
  e->response = tr_rpc_error_text(e->id, code, msg, NULL);
}

/* A number id as its exact source text (a cJSON raw item): cJSON keeps
 * numbers as doubles, so 18446744073709551616 would come back as
 * 1.8446744073709552e+19 and 1e400 as null.  JSON-RPC clients match answers
 * by id, so the id is echoed byte for byte as the request wrote it.  src is
 * the element's own text (strict JSON, one object); NULL when out of memory. */
static cJSON *id_source_text(const char *src, size_t src_len) {
  size_t start, len;
  if (tr_json_member_span(src, src_len, "id", &start, &len) != 0 || len == 0) return NULL;
  char *text = malloc(len + 1);
  if (text == NULL) return NULL;
  memcpy(text, src + start, len);
  text[len] = '\0';
  cJSON *raw = cJSON_CreateRaw(text);
  free(text);
  return raw;
}

/* Reads envelope members; returns false with an error answered when invalid.
 * src: the element's text, for the exact bytes of a number id. */
static bool elem_envelope(tr_elem_t *e, const cJSON *req, const char *src, size_t src_len, const cJSON **method,
                          const cJSON **params) {
  if (!cJSON_IsObject(req)) {
    e->response = tr_rpc_error_text(NULL, TR_RPC_INVALID_REQUEST, "invalid request: not an object", NULL);
    return false;
  }
  const cJSON *jsonrpc = NULL, *id = NULL;
  bool has_id = false, extra = false;
  *method = *params = NULL;
  for (const cJSON *it = req->child; it; it = it->next) {
    if (strcmp(it->string, "jsonrpc") == 0) jsonrpc = it;
    else if (strcmp(it->string, "method") == 0) *method = it;
    else if (strcmp(it->string, "params") == 0) *params = it;
    else if (strcmp(it->string, "id") == 0) { id = it; has_id = true; }
    else extra = true;
  }
  bool id_ok = !has_id || cJSON_IsString(id) || cJSON_IsNumber(id) || cJSON_IsNull(id);
  if (id_ok && has_id) e->id = cJSON_IsNumber(id) ? id_source_text(src, src_len) : cJSON_Duplicate(id, 1);
  if (id_ok && has_id && e->id == NULL) { /* out of memory: no answer could carry the right id */
    e->response = tr_rpc_error_text(NULL, TR_RPC_INTERNAL_ERROR, "internal error: cannot keep the request id", NULL);
    return false;
  }
  e->notification = !has_id;
  bool ok = id_ok && !extra && cJSON_IsString(jsonrpc) && strcmp(jsonrpc->valuestring, "2.0") == 0 &&
            cJSON_IsString(*method) && (*params == NULL || cJSON_IsObject(*params) || cJSON_IsArray(*params));
  if (!ok) {
    /* An invalid request is answered even without an id (spec §5: id null). */
    e->notification = false;
    if (!id_ok) {
      cJSON_Delete(e->id);
      e->id = NULL;
    }
    e->response = tr_rpc_error_text(e->id, TR_RPC_INVALID_REQUEST, "invalid request", NULL);
    return false;
  }
  return true;
}

/* Runs the element's handler on its checked params (c->v) and answers it. */
static void elem_call(call_t *c) {
  char msg[256]; /* room for a prefix and a whole tr_query_error_t message */
  int code = 0;
  cJSON *result = NULL;
  tr_elem_t *e = c->elem;
  int rc = e->method->handler(c, &result, &code, msg, sizeof msg);
  if (rc == 1) return; /* the handler answered, or handed the element on */
  if (rc != 0) {
    elem_answer_error(e, code, msg);
    return;
  }
  if (e->notification) cJSON_Delete(result);
  else e->response = tr_rpc_result_text(e->id, result);
}

static void elem_run(tr_worker_t *w, tr_job_t *job, tr_elem_t *e, const cJSON *params) {
  call_t c = {.w = w, .d = w->pool->ctx, .job = job, .elem = e, .params = params};
  char msg[256];
  if (e->params_not_integers) {
    elem_answer_error(e, TR_RPC_INVALID_PARAMS, "params: numbers must be integers written as plain digits");
    return;
  }
  if (!params_check(e->method, params, c.v, msg, sizeof msg)) {
    elem_answer_error(e, TR_RPC_INVALID_PARAMS, msg);
    return;
  }
  elem_call(&c);
}

/* The state tables have not reached the journal size the job arrived at. */
static bool tables_behind(const tr_job_t *job, const tr_daemon_t *d) {
  return tr_derived_readable(&d->seq.derived) < job->need;
}

/* `min_size` (any query, README "A cluster"): the answer reflects a journal
 * of at least that size, so a client reads its own writes on any node.  The
 * query waits for the state tables when this node's journal has the entries
 * already; a node whose journal is shorter answers at once, a follower with
 * -32005 naming the leader (retry there, or here later), a single node with
 * -32602.  Returns false when e was answered. */
static bool min_size_wait(tr_job_t *job, tr_elem_t *e, const cJSON *params, tr_daemon_t *d) {
  const cJSON *item = params ? cJSON_GetObjectItemCaseSensitive(params, "min_size") : NULL;
  uint64_t want;
  if (item == NULL || e->params_not_integers) return true; /* the latter is answered -32602 by elem_run */
  if (!integer_of(item, &want)) {
    elem_answer_error(e, TR_RPC_INVALID_PARAMS, "param `min_size` must be an integer");
    return false;
  }
  uint64_t size = atomic_load(&d->seq.stats.size);
  if (want <= size) {
    if (want > job->need) job->need = want; /* read by the loop after this pass */
    return true;
  }
  char msg[200];
  if (d->cluster == NULL || tr_cluster_is_leader(d->cluster)) { /* it has every entry anyone was answered */
    snprintf(msg, sizeof msg, "min_size %llu is beyond the journal (size %llu)", (unsigned long long)want,
             (unsigned long long)size);
    elem_answer_error(e, TR_RPC_INVALID_PARAMS, msg);
    return false;
  }
  char leader[128];
  bool known = tr_cluster_leader_rpc(d->cluster, leader, sizeof leader);
  snprintf(msg, sizeof msg, "not_leader: this node's journal is at size %llu, below min_size %llu; read from the "
           "leader (data.leader) or retry here shortly", (unsigned long long)size, (unsigned long long)want);
  if (!e->notification) e->response = tr_rpc_not_leader_text(e->id, known ? leader : NULL, msg);
  return false;
}

/* Phase 0: one element of the request. `after_submit`: a tx.submit earlier in
 * this batch is waiting, so a query must wait for it (batches run in order). */
static void elem_first_pass(tr_worker_t *w, tr_job_t *job, tr_elem_t *e, const cJSON *req, const char *src,
                            size_t src_len, bool after_submit, bool may_park) {
  const cJSON *method = NULL, *params = NULL;
  if (!elem_envelope(e, req, src, src_len, &method, &params)) return;
  e->method = method_find(method->valuestring);
  if (e->method == NULL) {
    char msg[120];
    snprintf(msg, sizeof msg, "method not found: %.*s", utf8_prefix(method->valuestring, 60), method->valuestring);
    elem_answer_error(e, TR_RPC_METHOD_NOT_FOUND, msg);
    return;
  }
  /* A query waits for a tx before it in the batch, for the state tables to
   * reach the journal size it arrived at (tr_job_t.need: it must see every
   * tx answered before it), and for the client to read what was made for
   * it already (tr_job_output_parked). */
  if (!(e->method->flags & (M_SUBMIT | M_LIVE)) && !min_size_wait(job, e, params, w->pool->ctx)) return;
  bool waits = after_submit || (!(e->method->flags & M_LIVE) && tables_behind(job, w->pool->ctx)) ||
               (may_park && tr_job_output_parked(job));
  if (!(e->method->flags & M_SUBMIT) && waits) {
    e->params = params ? cJSON_Duplicate(params, 1) : NULL;
    if (params != NULL && e->params == NULL) {
      elem_answer_error(e, TR_RPC_INTERNAL_ERROR, "out of memory");
      return;
    }
    e->state = TR_ELEM_DEFERRED;
    return;
  }
  elem_run(w, job, e, params);
  tr_job_count_output(job, e);
}

/* Every number in params is an integer (§1: `1.0`, `1e3`, `-0` are invalid),
 * judged on the request's own bytes because cJSON reads 1.0 and 1 alike. */
static bool params_are_integral(const char *req, size_t len) {
  size_t start, vlen;
  if (tr_json_member_span(req, len, "params", &start, &vlen) != 0) return true;
  return tr_json_check(req + start, vlen, TR_JSON_INTEGERS_ONLY, NULL) == 0;
}

/* ---- the plain tx.submit line ----
 * Most lines a busy node reads are one tx.submit: {"jsonrpc":"2.0",
 * "method":"tx.submit","params":{"tx":…,"sig":…},"id":…} in any member
 * order.  Such a line is read straight from its checked bytes
 * (tr_json_next_member), with no cJSON tree: the tree cost about as many
 * instructions as the tx's own decode.  Anything else — a batch, another
 * method, a param missing, unknown or of the wrong type, an id that is not a
 * string, number or null, a tx longer than the limit — returns false
 * untouched and takes the general path, so what this path accepts is
 * exactly what the general one accepts the same way, and every error is
 * still worded there. */

typedef struct {
  tr_json_value_t jsonrpc, method, params, id, tx, sig;
  bool has_jsonrpc, has_method, has_params, has_id, has_tx, has_sig;
} plain_submit_t;

/* Which of `names` (NULL-ended, each under 16 bytes) a string is, or -1.
 * The string is decoded once, then compared with each. */
static int member_index(const tr_json_value_t *name, const char *const *names) {
  char buf[16];
  size_t n = tr_json_string(name, buf, sizeof buf);
  for (int i = 0; names[i] && n <= sizeof buf; i++)
    if (n == strlen(names[i]) && memcmp(buf, names[i], n) == 0) return i;
  return -1;
}

static bool value_is(const tr_json_value_t *v, const char *word) {
  return v->type == TR_JSON_STRING && member_index(v, (const char *const[]){word, NULL}) == 0;
}

static bool plain_submit_read(const char *line, size_t len, plain_submit_t *p) {
  static const char *const top[] = {"jsonrpc", "method", "params", "id", NULL};
  static const char *const params[] = {"tx", "sig", NULL};
  size_t pos = 0;
  tr_json_value_t name, value;
  *p = (plain_submit_t){0};
  while (tr_json_next_member(line, len, &pos, &name, &value)) {
    switch (member_index(&name, top)) {
    case 0: p->jsonrpc = value; p->has_jsonrpc = true; break;
    case 1: p->method = value; p->has_method = true; break;
    case 2: p->params = value; p->has_params = true; break;
    case 3: p->id = value; p->has_id = true; break;
    default: return false;
    }
  }
  if (!p->has_jsonrpc || !value_is(&p->jsonrpc, "2.0") || !p->has_method || !value_is(&p->method, "tx.submit") ||
      !p->has_params || p->params.type != TR_JSON_OBJECT)
    return false;
  if (p->has_id && p->id.type != TR_JSON_STRING && p->id.type != TR_JSON_NUMBER && p->id.type != TR_JSON_NULL)
    return false;
  for (pos = 0; tr_json_next_member(p->params.raw, p->params.len, &pos, &name, &value);) {
    switch (member_index(&name, params)) {
    case 0: p->tx = value; p->has_tx = true; break;
    case 1: p->sig = value; p->has_sig = true; break;
    default: return false;
    }
  }
  return p->has_tx && p->tx.type == TR_JSON_STRING && p->tx.len <= TR_TX_BYTES_MAX && p->has_sig &&
         p->sig.type == TR_JSON_STRING && p->sig.len == 2 * TR_SIG_BYTES && !p->sig.escaped;
}

/* The request id as the general path keeps it: a number as its source
 * text, a string or null as cJSON would copy it.  NULL when out of memory. */
static cJSON *plain_id(const tr_json_value_t *id) {
  if (id->type == TR_JSON_NULL) return cJSON_CreateNull();
  char *text = malloc(id->len + 1); /* decoding never lengthens a string */
  if (text == NULL) return NULL;
  size_t n = id->type == TR_JSON_NUMBER ? id->len : tr_json_string(id, text, id->len);
  if (id->type == TR_JSON_NUMBER) memcpy(text, id->raw, n);
  text[n] = '\0';
  cJSON *item = id->type == TR_JSON_NUMBER ? cJSON_CreateRaw(text) : cJSON_CreateString(text);
  free(text);
  return item;
}

/* True when the line was a plain tx.submit and has been run; false, with
 * nothing done, when the general path must take it. */
static bool plain_submit_run(tr_worker_t *w, tr_job_t *job) {
  plain_submit_t p;
  if (!plain_submit_read(job->line, job->len, &p)) return false;
  call_t c = {.w = w, .d = w->pool->ctx, .job = job};
  if (tr_hex_decode(p.sig.raw, p.sig.len, c.v[1].bin, TR_SIG_BYTES) != 0) return false;
  char tx[TR_TX_BYTES_MAX + 1];
  c.v[0] = (pval_t){.present = true, .s = tx, .len = tr_json_string(&p.tx, tx, TR_TX_BYTES_MAX)};
  tx[c.v[0].len] = '\0';
  c.v[1].present = true;
  c.v[1].s = p.sig.raw;
  c.v[1].len = p.sig.len;
  job->elems = calloc(1, sizeof *job->elems);
  if (job->elems == NULL) return true; /* out of memory: an answer lost (tr_job_render), as on the general path */
  job->n_elems = 1;
  tr_elem_t *e = c.elem = &job->elems[0];
  e->method = method_find("tx.submit");
  e->notification = !p.has_id;
  if (p.has_id && (e->id = plain_id(&p.id)) == NULL) {
    e->response = tr_rpc_error_text(NULL, TR_RPC_INTERNAL_ERROR, "internal error: cannot keep the request id", NULL);
    return true;
  }
  elem_call(&c);
  tr_job_count_output(job, e);
  return true;
}

static void job_parse_and_run(tr_worker_t *w, tr_job_t *job) {
  tr_json_error_t jerr;
  /* One pass settles the common case: a valid line whose numbers are all
   * plain integers has integral params in every element, so nothing needs
   * rescanning.  Otherwise the line is judged as before. */
  bool all_integral = tr_json_check(job->line, job->len, TR_JSON_ANY_VALUE | TR_JSON_INTEGERS_ONLY, NULL) == 0;
  if (all_integral && plain_submit_run(w, job)) return;
  if (!all_integral && tr_json_check(job->line, job->len, TR_JSON_ANY_VALUE, &jerr) != 0) {
    job->elems = calloc(1, sizeof *job->elems);
    if (job->elems == NULL) return;
    job->n_elems = 1;
    char msg[160];
    snprintf(msg, sizeof msg, "parse error at byte %zu: %s", jerr.offset, jerr.message);
    job->elems[0].response = tr_rpc_error_text(NULL, TR_RPC_PARSE_ERROR, msg, NULL);
    return;
  }
  cJSON *root = cJSON_ParseWithLength(job->line, job->len);
  size_t n = 1;
  job->batch = cJSON_IsArray(root);
  if (job->batch) n = (size_t)cJSON_GetArraySize(root);
  bool bad_batch = job->batch && (n == 0 || n > TR_RPC_BATCH_MAX);
  job->elems = calloc(bad_batch ? 1 : n, sizeof *job->elems);
  if (job->elems == NULL) {
    cJSON_Delete(root);
    return;
  }
  if (root == NULL || bad_batch) {
    job->batch = false;
    job->n_elems = 1;
    job->elems[0].response = tr_rpc_error_text(NULL, root ? TR_RPC_INVALID_REQUEST : TR_RPC_PARSE_ERROR,
        root ? (n == 0 ? "invalid request: empty batch" : "invalid request: batch over 100 elements") :
               "parse error", NULL);
    cJSON_Delete(root);
    return;
  }
  job->n_elems = n;
  bool waiting = false;
  const cJSON *req = job->batch ? root->child : root;
  size_t pos = 0, start = 0;
  /* Queries may wait for the client to read only in a line without txs: a
   * query before a tx.submit must see the state before it. */
  bool may_park = true;
  for (const cJSON *r = req; r != NULL && may_park; r = job->batch ? r->next : NULL) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "method");
    if (cJSON_IsString(m) && strcmp(m->valuestring, "tx.submit") == 0) may_park = false;
  }
  for (size_t i = 0; i < n; i++, req = req->next) {
    size_t len = tr_json_span_next(job->line, job->len, &pos, &start); /* this element's own bytes */
    if (!all_integral) job->elems[i].params_not_integers = !params_are_integral(job->line + start, len);
    elem_first_pass(w, job, &job->elems[i], req, job->line + start, len, waiting, may_park);
    if (job->elems[i].state == TR_ELEM_AWAIT_SEQ) waiting = true;
  }
  cJSON_Delete(root);
}

static void job_run_deferred(tr_worker_t *w, tr_job_t *job) {
  for (size_t i = 0; i < job->n_elems; i++) {
    tr_elem_t *e = &job->elems[i];
    if (e->state != TR_ELEM_DEFERRED) continue;
    if (tr_job_output_parked(job)) return; /* the rest waits, in order, for the client to read */
    e->state = TR_ELEM_ANSWERED;
    cJSON *params = e->params; /* the handler may keep a copy for another round */
    e->params = NULL;
    elem_run(w, job, e, params);
    cJSON_Delete(params);
    tr_job_count_output(job, e);
  }
}

void tr_rpc_work(tr_worker_t *w, tr_job_t *job) {
  if (job->feed) tr_sub_read_page(w, job);
  else if (job->phase == 0) job_parse_and_run(w, job);
  else job_run_deferred(w, job);
}
