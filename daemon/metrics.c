/* metrics.c — /metrics: what node.status reports, as Prometheus text. */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "daemon.h"
#include "tr_limits.h"

#define MS 1000000ull
const tr_hist_bounds_t TR_HIST_DURATION = {
    16, {MS / 10, MS / 4, MS / 2, MS, 5 * MS / 2, 5 * MS, 10 * MS, 25 * MS, 50 * MS, 100 * MS, 250 * MS, 500 * MS,
         1000 * MS, 2500 * MS, 5000 * MS, 10000 * MS}, 1};
const tr_hist_bounds_t TR_HIST_BATCH = {11, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}, 0};

void tr_hist_observe(tr_hist_t *h, const tr_hist_bounds_t *b, uint64_t value) {
  size_t i = 0;
  while (i < b->n && value > b->le[i]) i++;
  atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
}

/* A growing text buffer; the page is a few kilobytes. */
typedef struct {
  char *p;
  size_t len, cap;
  bool oom;
} out_t;

static void put(out_t *o, const char *fmt, ...) {
  if (o->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      o->oom = true;
      return;
    }
    if ((size_t)n < o->cap - o->len) {
      o->len += (size_t)n;
      return;
    }
    size_t cap = o->cap * 2 + (size_t)n;
    char *p = realloc(o->p, cap);
    if (p == NULL) {
      o->oom = true;
      return;
    }
    o->p = p;
    o->cap = cap;
  }
}

static void head(out_t *o, const char *name, const char *type, const char *help) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(out_t *o, const char *name, const char *help, uint64_t v) {
  head(o, name, "counter", help);
  put(o, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(out_t *o, const char *name, const char *help, uint64_t v) {
  head(o, name, "gauge", help);
  put(o, "%s %llu\n", name, (unsigned long long)v);
}

/* Nanoseconds as decimal seconds, exactly (no floating point). */
static void put_seconds(out_t *o, uint64_t ns) {
  put(o, "%llu.%09llu", (unsigned long long)(ns / 1000000000u), (unsigned long long)(ns % 1000000000u));
}

static void histogram(out_t *o, const char *name, const char *help, tr_hist_t *h, const tr_hist_bounds_t *b) {
  head(o, name, "histogram", help);
  uint64_t cum = 0;
  for (size_t i = 0; i <= b->n; i++) {
    cum += atomic_load(&h->bucket[i]);
    put(o, "%s_bucket{le=\"", name);
    if (i == b->n) put(o, "+Inf");
    else if (b->unit_ns) put_seconds(o, b->le[i]);
    else put(o, "%llu", (unsigned long long)b->le[i]);
    put(o, "\"} %llu\n", (unsigned long long)cum);
  }
  /* Sum and count read after the buckets: never fewer than the +Inf bucket. */
  uint64_t sum = atomic_load(&h->sum), count = atomic_load(&h->count);
  put(o, "%s_sum ", name);
  if (b->unit_ns) put_seconds(o, sum);
  else put(o, "%llu", (unsigned long long)sum);
  put(o, "\n%s_count %llu\n", name, (unsigned long long)(count > cum ? count : cum));
}

char *tr_metrics_text(struct tr_daemon *d, size_t *len) {
  out_t o = {malloc(8192), 0, 8192, false};
  if (o.p == NULL) return NULL;
  tr_server_stats_t *st = &d->stats;
  tr_seq_stats_t *s = &d->seq.stats;
  head(&o, "tranche_build_info", "gauge", "Version and chain of this node.");
  put(&o, "tranche_build_info{version=\"%s\",chain=\"%s\"} 1\n", TR_VERSION, d->chain);
  head(&o, "tranche_uptime_seconds", "gauge", "Seconds since the daemon started.");
  put(&o, "tranche_uptime_seconds %llu\n", (unsigned long long)((tr_now_ms() - d->started_ms) / 1000u));
  gauge(&o, "tranche_writes_halted", "1 when the database is damaged and writes stopped.", atomic_load(&s->halted));
  gauge(&o, "tranche_connections_open", "Open client connections.", atomic_load(&st->connections_open));
  gauge(&o, "tranche_connections_max", "Connection slots.", d->config.connections_max);
  counter(&o, "tranche_connections_accepted_total", "Connections accepted.", atomic_load(&st->connections_accepted));
  counter(&o, "tranche_connections_refused_total", "Connections closed at accept.", atomic_load(&st->connections_refused));
  counter(&o, "tranche_connections_refused_peer_total", "Refused: their address held its share.",
          atomic_load(&st->connections_refused_peer));
  counter(&o, "tranche_connections_evicted_total", "Closed to make room for a newcomer.",
          atomic_load(&st->connections_evicted));
  counter(&o, "tranche_connections_stalled_total", "Closed: over their output bound and reading none of it.",
          atomic_load(&st->connections_stalled));
  counter(&o, "tranche_connections_junk_total", "Closed: first bytes neither HTTP nor JSON.",
          atomic_load(&st->junk_closed));
  counter(&o, "tranche_requests_too_slow_total", "Requests that did not arrive whole within the deadline.",
          atomic_load(&st->deadline_closed));
  counter(&o, "tranche_rpc_lines_total", "JSON-RPC requests or batches taken (lines and HTTP bodies).",
          atomic_load(&st->lines));
  counter(&o, "tranche_http_requests_total", "HTTP requests parsed.", atomic_load(&st->http_requests));
  counter(&o, "tranche_websocket_upgrades_total", "Connections switched to WebSocket (GET /ws).",
          atomic_load(&st->ws_upgrades));
  counter(&o, "tranche_rpc_overloaded_total", "Answers -32002 overloaded.", atomic_load(&st->overloaded));
  counter(&o, "tranche_rpc_line_too_long_total", "Requests over the size limit.", atomic_load(&st->line_too_long));
  gauge(&o, "tranche_request_bytes_in_flight", "Request bytes taken and not yet answered.",
        atomic_load(&st->inflight_bytes));
  gauge(&o, "tranche_response_bytes_unwritten", "Response bytes made and not yet written.",
        atomic_load(&st->out_unwritten));
  gauge(&o, "tranche_subscriptions_open", "ledger.subscribe feeds open.", atomic_load(&st->subscriptions_open));
  counter(&o, "tranche_subscriptions_slow_total", "Subscriptions ended because the client read too slowly.",
          atomic_load(&st->subscriptions_slow));
  gauge(&o, "tranche_intake_queue_jobs", "Requests waiting for a worker.", tr_pool_depth(&d->pool));
  gauge(&o, "tranche_sequencer_queue_txs", "Verified txs waiting for the sequencer.", tr_sequencer_depth(&d->seq));
  head(&o, "tranche_worker_busy_seconds_total", "counter", "Worker time spent parsing, verifying and querying.");
  put(&o, "tranche_worker_busy_seconds_total ");
  put_seconds(&o, atomic_load(&d->pool.busy_ns));
  put(&o, "\n");
  head(&o, "tranche_apply_seconds_total", "counter", "Sequencer time spent applying rules.");
  put(&o, "tranche_apply_seconds_total ");
  put_seconds(&o, atomic_load(&s->apply_ns));
  put(&o, "\n");
  counter(&o, "tranche_txs_committed_total", "Txs appended to the journal.", atomic_load(&s->committed_txs));
  counter(&o, "tranche_txs_refused_total", "Txs refused by the rules.", atomic_load(&s->refused_txs));
  counter(&o, "tranche_storage_errors_total", "Failed writes.", atomic_load(&s->storage_errors));
  counter(&o, "tranche_checkpoints_total", "Checkpoints signed.", atomic_load(&d->seq.derived.stats.checkpoints));
  counter(&o, "tranche_batches_total", "Group commits.", atomic_load(&s->batches));
  const tr_derived_stats_t *ds = &d->seq.derived.stats;
  uint64_t journal = atomic_load(&s->size), through = atomic_load(&ds->through);
  gauge(&o, "tranche_journal_entries", "Entries in the journal (durable).", journal);
  gauge(&o, "tranche_derived_behind_entries", "Journal entries whose state rows are not written yet.",
        journal > through ? journal - through : 0);
  gauge(&o, "tranche_derived_queue_bytes", "Batches waiting for the writer behind, in bytes.",
        atomic_load(&ds->queued_bytes));
  head(&o, "tranche_derived_write_seconds_total", "counter", "Writer-behind time spent writing state rows.");
  put(&o, "tranche_derived_write_seconds_total ");
  put_seconds(&o, atomic_load(&ds->write_ns));
  put(&o, "\n");
  counter(&o, "tranche_derived_errors_total", "Failed writes of state rows (retried).", atomic_load(&ds->errors));
  gauge(&o, "tranche_state_accounts", "Accounts in the in-memory state.", atomic_load(&s->mem_accounts));
  gauge(&o, "tranche_state_holdings", "Holdings (units > 0) in the in-memory state.", atomic_load(&s->mem_holdings));
  if (d->cluster) {
    tr_cluster_status_t cs;
    tr_cluster_status(d->cluster, &cs);
    gauge(&o, "tranche_cluster_node_id", "This node's id in its cluster.", cs.id);
    gauge(&o, "tranche_cluster_is_leader", "1 while this node leads and takes writes.", atomic_load(&d->seq.accepting));
    gauge(&o, "tranche_cluster_leader_id", "The leader's id; 0 while none is known.", cs.leader);
    gauge(&o, "tranche_cluster_term", "Raft's current term.", cs.term);
    gauge(&o, "tranche_cluster_commit_index", "Raft's commit index.", cs.commit);
    gauge(&o, "tranche_cluster_applied_index", "Raft's last applied index.", cs.applied);
    gauge(&o, "tranche_cluster_nodes", "Nodes in the raft configuration.", cs.n);
    counter(&o, "tranche_cluster_role_changes_total", "Role changes of this node.", cs.role_changes);
    counter(&o, "tranche_cluster_batches_applied_total", "Committed batches applied here.",
            atomic_load(&d->seq.replicated_batches));
    counter(&o, "tranche_cluster_batches_skipped_total", "Committed batches naming an older head, skipped.",
            atomic_load(&d->seq.skipped_batches));
    counter(&o, "tranche_cluster_apply_retries_total", "Retries of a committed batch this node could not write.",
            atomic_load(&d->seq.apply_retries));
  }
  histogram(&o, "tranche_rpc_request_duration_seconds", "Time from taking a request to its answer being ready.",
            &st->request_seconds, &TR_HIST_DURATION);
  histogram(&o, "tranche_batch_size_txs", "Txs per group commit.", &s->batch_size, &TR_HIST_BATCH);
  histogram(&o, "tranche_commit_duration_seconds", "Time of one group commit's COMMIT, fsync included.",
            &s->commit_seconds, &TR_HIST_DURATION);
  if (o.oom) {
    free(o.p);
    return NULL;
  }
  *len = o.len;
  return o.p;
}
