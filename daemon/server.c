/* server.c — the loop thread: TCP connections, line framing, tickets, the
 * reorder buffer in front of the sequencer, and in-order responses.
 *
 * Bounds: TR_RPC_CONNECTIONS_MAX connections; per connection at most
 * TR_RPC_INFLIGHT_MAX unanswered lines (then we stop reading it) and
 * about TR_RPC_OUT_BYTES_MAX response bytes made and not yet written (a
 * client that never reads stops being read, and its queries wait before they
 * make more: tr_out_budget_t); all connections together
 * TR_INFLIGHT_BYTES_MAX request bytes in flight and TR_OUT_BYTES_TOTAL_MAX
 * response bytes.  Nothing is dropped: TCP backpressure does the waiting.
 */
#include <linux/sockios.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cluster.h"
#include "daemon.h"
#include "explorer.h"
#include "frame.h"
#include "log.h"
#include "subscribe.h"
#include "ws.h"
#include "tr_err.h"
#include "tr_limits.h"

#define READ_CHUNK_BYTES (64 * 1024)

typedef enum {
  CONN_SNIFF = 0,   /* no byte yet: the first ones choose (tr_frame_sniff) */
  CONN_LINES,       /* newline-delimited JSON-RPC */
  CONN_HTTP,        /* HTTP/1.1 (http.c) */
  CONN_WS,          /* WebSocket after GET /ws (ws.c): JSON-RPC in text messages */
} conn_mode_t;

/* A peer's IP address, IPv4-mapped IPv6 folded to IPv4, for the per-peer cap. */
typedef struct {
  uint8_t len; /* 4 or 16; 0 when unknown */
  uint8_t b[16];
} tr_peer_t;

typedef struct tr_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;             /* the request deadline while a request is partial, else the idle timeout */
  tr_daemon_t *d;
  tr_peer_t peer;
  conn_mode_t mode;
  tr_http_t *http;              /* CONN_HTTP: the parser and the request being read */
  tr_ws_t *ws;                  /* CONN_WS: the frame parser and the message being read */
  bool linger;                  /* refused mid-request: discard its input until it closes (conn_done) */
  bool shut;                    /* linger: our side is shut down */
  uv_shutdown_t shutdown_req;
  uint64_t partial_since_ms;    /* loop time of a partial request's first byte; 0 when none */
  uint64_t progress_ms;         /* loop time of the last whole request (or of accept) */
  struct tr_conn *next, *prev;
  char *buf;                    /* bytes of the line being received */
  size_t len, cap;
  tr_job_t *q_head, *q_tail;    /* jobs in request order, until written */
  size_t inflight;              /* lines not yet answered */
  size_t jobs_alive;            /* jobs that still point here */
  size_t out_bytes;             /* response bytes handed to uv_write, not yet written */
  size_t writes_pending;
  tr_out_budget_t out;          /* response bytes made for it, shared with workers */
  tr_job_t *parked, *parked_tail; /* jobs whose queries wait for the client to read (linked by next) */
  bool reading, closing, eof, handles_closed;
  bool flush_queued;            /* on d->flush_list: responses to write once the mailbox is drained */
  struct tr_conn *flush_next;
  int open_handles;
  tr_sub_t *subs;               /* its ledger.subscribe feeds (subscribe.c) */
  uint64_t stall_since_ms;      /* over its output bound with no byte written since; 0 when not */
  size_t stall_queue, stall_outq; /* its write queue and kernel send queue at the last sweep */
} tr_conn_t;

static void conn_maybe_read(tr_conn_t *c);
static void conn_arm_timer(tr_conn_t *c);
static void conn_done(tr_conn_t *c);
static void conn_process_buffer(tr_conn_t *c);
static void conn_close(tr_conn_t *c);
static void conn_timer_cb_linger(uv_timer_t *t) { conn_close(t->data); }
static void job_finish(tr_daemon_t *d, tr_job_t *job);

/* ---- lifetime ---- */

static void conn_free_if_done(tr_conn_t *c) {
  if (!c->handles_closed || c->open_handles > 0 || c->jobs_alive > 0 || c->writes_pending > 0) return;
  if (c->http) tr_http_free(c->http);
  free(c->http);
  if (c->ws) tr_ws_free(c->ws);
  free(c->ws);
  free(c->buf);
  free(c);
}

static void conn_handle_closed_cb(uv_handle_t *h) {
  tr_conn_t *c = h->data;
  c->open_handles--;
  conn_free_if_done(c);
}

static void conn_maybe_read(tr_conn_t *c);

/* Connections that stopped reading for a daemon-wide bound (request bytes in
 * flight, or the reorder window) have no event of their own to wake them. */
static void resume_paused(tr_daemon_t *d) {
  d->budget_paused = false;
  for (tr_conn_t *o = d->conns; o; o = o->next) conn_maybe_read(o);
}

/* Frees a job that is done with.  Request bytes leave the global budget;
 * connections that stopped reading only because of that budget resume once
 * it has room again (they have no event of their own to wake them). */
static void job_release(tr_conn_t *c, tr_job_t *j) {
  tr_daemon_t *d = c->d;
  uint64_t left = atomic_fetch_sub(&d->stats.inflight_bytes, j->len) - j->len;
  tr_job_uncount_output(j);
  tr_job_free(j);
  c->jobs_alive--;
  if (d->budget_paused && left < TR_INFLIGHT_BYTES_MAX / 4 * 3 &&
      atomic_load(&d->stats.out_unwritten) < TR_OUT_BYTES_TOTAL_MAX / 4 * 3)
    resume_paused(d);
}

/* The oldest unanswered job never waits for output room (tr_out_budget_t). */
static void conn_head_changed(tr_conn_t *c) {
  atomic_store(&c->out.oldest, c->q_head ? c->q_head->ticket : UINT64_MAX);
}

/* Parked jobs whose connection has room again (or that became its oldest)
 * go back to the workers; the rest keep waiting. */
static void conn_unpark(tr_conn_t *c) {
  tr_job_t *keep = NULL, *keep_tail = NULL;
  for (tr_job_t *j = c->parked, *next; j; j = next) {
    next = j->next;
    j->next = NULL;
    if (!c->closing && tr_job_output_parked(j)) {
      if (keep_tail) keep_tail->next = j;
      else keep = j;
      keep_tail = j;
    } else {
      tr_pool_push(&c->d->pool, j);
    }
  }
  c->parked = keep;
  c->parked_tail = keep_tail;
}

/* On a closing connection: frees every finished job; those still in workers
 * or the sequencer come back through the mailbox and are reaped then. */
static void conn_reap(tr_conn_t *c) {
  tr_job_t **p = &c->q_head, *prev = NULL;
  while (*p) {
    tr_job_t *j = *p;
    if (!j->complete) {
      prev = j;
      p = &j->conn_next;
      continue;
    }
    *p = j->conn_next;
    job_release(c, j);
  }
  c->q_tail = prev;
}

static void conn_close(tr_conn_t *c) {
  if (c->closing) return;
  tr_daemon_t *d = c->d;
  c->closing = true;
  c->reading = false;
  tr_sub_conn_closed(d, c);
  if (c->prev) c->prev->next = c->next;
  else d->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  atomic_fetch_sub(&d->stats.connections_open, 1);
  while (c->parked) { /* nobody will read their answers: end them here */
    tr_job_t *j = c->parked;
    c->parked = j->next;
    j->next = NULL;
    job_finish(d, j);
  }
  c->parked_tail = NULL;
  conn_reap(c);
  c->handles_closed = true;
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed_cb);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed_cb);
}

/* ---- finishing ---- */

static void conn_shutdown_cb(uv_shutdown_t *req, int status) {
  (void)status;
  tr_conn_t *c = req->data;
  c->writes_pending--;
  if (c->closing) {
    conn_free_if_done(c);
    return;
  }
  uv_timer_start(&c->timer, conn_timer_cb_linger, TR_HTTP_LINGER_MS, 0);
}

/* Everything asked is answered and nothing more will be read.  A peer
 * refused mid-request (413: it may still be sending its body) would get a
 * reset that destroys the answer it has not read yet, so its side of the
 * stream is drained first: FIN, then its bytes are discarded until it
 * closes, for at most TR_HTTP_LINGER_MS. */
static void conn_done(tr_conn_t *c) {
  if (!c->linger || c->shut) {
    conn_close(c);
    return;
  }
  c->shut = true;
  c->shutdown_req.data = c;
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_shutdown_cb) != 0) {
    conn_close(c);
    return;
  }
  c->writes_pending++; /* the request points at c */
}

/* ---- writing ---- */

#define WRITE_JOBS_MAX 64 /* responses gathered into one writev */

typedef struct {
  uv_write_t req;
  tr_conn_t *conn;
  size_t n, bytes;
  tr_job_t *jobs[WRITE_JOBS_MAX];
  uv_buf_t bufs[WRITE_JOBS_MAX];
} write_t;

static void shutdown_progress(tr_daemon_t *d);


static void conn_write_cb(uv_write_t *req, int status) {
  write_t *w = req->data;
  tr_conn_t *c = w->conn;
  c->out_bytes -= w->bytes;
  atomic_store(&c->out.in_writes, c->out_bytes);
  c->writes_pending--;
  for (size_t i = 0; i < w->n; i++) job_release(c, w->jobs[i]);
  free(w);
  if (c->parked) conn_unpark(c);
  if (status != 0 && !c->closing) conn_close(c);
  if (c->subs && !c->closing) tr_sub_on_written(c->d, c);
  if (c->closing) {
    conn_free_if_done(c);
    return;
  }
  if (c->eof && c->inflight == 0 && c->writes_pending == 0) conn_done(c); /* answered all it asked */
  else conn_maybe_read(c);
  shutdown_progress(c->d);
}

/* Takes the finished responses at the head of the queue, in order, into one
 * write request (one writev).  Returns NULL when there are none, with
 * *must_close set when the connection cannot go on: no memory for the write,
 * or a lost answer (tr_job_t.lost) at the head. */
static write_t *conn_gather(tr_conn_t *c, bool *must_close) {
  write_t *w = NULL;
  while (c->q_head && c->q_head->complete && (w == NULL || w->n < WRITE_JOBS_MAX)) {
    tr_job_t *j = c->q_head;
    if (j->lost && w != NULL) break; /* the answers before it are written first */
    c->q_head = j->conn_next;
    if (c->q_head == NULL) c->q_tail = NULL;
    conn_head_changed(c);
    if (!j->notice) c->inflight--;
    if (j->lost) { /* its client would wait for ever: the connection closes instead */
      job_release(c, j);
      *must_close = true;
      return NULL;
    }
    if (j->response == NULL) { /* notifications only */
      job_release(c, j);
      continue;
    }
    if (w == NULL && (w = calloc(1, sizeof *w)) == NULL) {
      job_release(c, j);
      *must_close = true;
      return NULL;
    }
    w->jobs[w->n] = j;
    w->bufs[w->n++] = uv_buf_init(j->response, (unsigned)j->response_len);
    w->bytes += j->response_len;
  }
  return w;
}

/* Writes every finished response at the head of the queue, in order. */
static void conn_flush(tr_conn_t *c) {
  if (c->closing) return;
  for (;;) {
    bool must_close = false;
    write_t *w = conn_gather(c, &must_close);
    if (must_close) {
      conn_close(c);
      return;
    }
    if (w == NULL) break;
    if (c->parked) conn_unpark(c); /* the oldest job may be a parked one now */
    w->conn = c;
    w->req.data = w;
    c->out_bytes += w->bytes;
    atomic_store(&c->out.in_writes, c->out_bytes);
    c->writes_pending++;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, (unsigned)w->n, conn_write_cb) != 0) {
      c->out_bytes -= w->bytes;
      atomic_store(&c->out.in_writes, c->out_bytes);
      c->writes_pending--;
      for (size_t i = 0; i < w->n; i++) job_release(c, w->jobs[i]);
      free(w);
      conn_close(c);
      return;
    }
  }
  if (c->eof && c->inflight == 0 && !c->closing && c->writes_pending == 0) conn_done(c);
}

/* ---- jobs coming back ---- */

/* The connection is written once every message of this wake-up has been
 * handled: a group commit completes responses on many connections, and one
 * writev per connection costs far less than one per response.  A queued
 * connection cannot be freed before then (handles close on a later loop
 * turn). */
static void job_wrap_http(tr_job_t *job);

/* A WebSocket request's answer line becomes one text message. */
static void job_wrap_ws(tr_job_t *job) {
  if (job->response == NULL) return; /* notifications only: nothing to send */
  size_t len = 0;
  char *r = tr_ws_frame_lines(TR_WS_OP_TEXT, job->response, job->response_len, &len);
  if (r == NULL) job->lost = true;
  free(job->response);
  job->response = r;
  job->response_len = r ? len : 0;
}

static void conn_queue_flush(tr_daemon_t *d, tr_conn_t *c) {
  if (c->flush_queued) return;
  c->flush_queued = true;
  c->flush_next = d->flush_list;
  d->flush_list = c;
}

static void job_finish(tr_daemon_t *d, tr_job_t *job) {
  tr_conn_t *c = job->conn;
  if (!c->closing) tr_sub_on_job(d, job);
  if (tr_job_render(job) != 0) job->lost = true;
  if (!job->lost && job->http) job_wrap_http(job);
  if (!job->lost && job->ws) job_wrap_ws(job);
  if (job->lost && !c->closing) /* conn_gather closes the connection there */
    log_error("rpc", "out of memory making an answer: closing the connection after the answers before it");
  if (job->started_ns) tr_hist_observe(&d->stats.request_seconds, &TR_HIST_DURATION, tr_clock_ns() - job->started_ns);
  d->jobs_in_flight--;
  if (c->closing) {
    conn_reap(c); /* nobody to answer */
    conn_free_if_done(c);
  } else {
    conn_queue_flush(d, c);
  }
}

void tr_server_on_drained(tr_mailbox_t *box) {
  tr_daemon_t *d = box->data;
  while (d->flush_list) {
    tr_conn_t *c = d->flush_list;
    d->flush_list = c->flush_next;
    c->flush_queued = false;
    if (c->closing) continue;
    conn_flush(c);
    conn_maybe_read(c);
  }
  shutdown_progress(d); /* after the writes: idle means nothing left to write */
}

/* Its queries run now: the state tables reach what the job must see. */
static void job_run_queries(tr_daemon_t *d, tr_job_t *job) {
  tr_conn_t *c = job->conn;
  if (tr_job_output_parked(job)) {
    atomic_fetch_add(&d->stats.output_parked, 1);
    job->next = NULL;
    if (c->parked_tail) c->parked_tail->next = job;
    else c->parked = job;
    c->parked_tail = job;
    return;
  }
  tr_pool_push(&d->pool, job);
}

/* The writer behind cannot write (disk full, ...): queries that wait for it
 * get an error now rather than a wait with no end or a short answer. */
static void job_tables_failed(tr_daemon_t *d, tr_job_t *job) {
  char msg[600], why[400];
  tr_derived_failure(&d->seq.derived, why, sizeof why);
  snprintf(msg, sizeof msg, "storage error: the state tables are not written up to this request's journal size "
           "(%s); retry later", why[0] ? why : "the writer is failing");
  for (size_t i = 0; i < job->n_elems; i++) {
    tr_elem_t *e = &job->elems[i];
    if (e->state != TR_ELEM_DEFERRED) continue;
    cJSON_Delete(e->params);
    e->params = NULL;
    e->state = TR_ELEM_ANSWERED;
    if (!e->notification) e->response = tr_rpc_error_text(e->id, TR_RPC_INTERNAL_ERROR, msg, NULL);
  }
  job_finish(d, job);
}

static void job_after_sequencer(tr_daemon_t *d, tr_job_t *job) {
  tr_conn_t *c = job->conn;
  if (!tr_job_has_deferred(job) || c->closing) { /* nobody to run the rest for */
    job_finish(d, job);
    return;
  }
  job->phase = 1;
  /* Its queries must also see the txs it submitted. */
  uint64_t size = atomic_load(&d->seq.stats.size);
  if (size > job->need) job->need = size;
  if (tr_derived_readable(&d->seq.derived) >= job->need) {
    job_run_queries(d, job);
    return;
  }
  job->next = NULL;
  if (d->tables_wait_tail) d->tables_wait_tail->next = job;
  else d->tables_wait = job;
  d->tables_wait_tail = job;
  tr_derived_hurry(&d->seq.derived, job->need); /* the writer stops gathering batches */
}

/* The writer behind moved its mark (or failed): the jobs it now covers run. */
static void on_tables_written(tr_daemon_t *d) {
  uint64_t through = tr_derived_readable(&d->seq.derived);
  bool failing = tr_derived_failing(&d->seq.derived);
  tr_job_t *keep = NULL, *keep_tail = NULL;
  for (tr_job_t *j = d->tables_wait, *next; j; j = next) {
    next = j->next;
    j->next = NULL;
    if (j->conn->closing) job_finish(d, j);
    else if (through >= j->need) job_run_queries(d, j);
    else if (failing) job_tables_failed(d, j);
    else {
      if (keep_tail) keep_tail->next = j;
      else keep = j;
      keep_tail = j;
    }
  }
  d->tables_wait = keep;
  d->tables_wait_tail = keep_tail;
}

/* In ticket order: hand verified txs to the sequencer. */
static void job_forward(tr_daemon_t *d, tr_job_t *job) {
  for (size_t i = 0; i < job->n_elems; i++) {
    tr_elem_t *e = &job->elems[i];
    if (e->state != TR_ELEM_AWAIT_SEQ) continue;
    if (d->cluster && !atomic_load(&d->seq.accepting)) { /* a follower: §5 -32005, naming the leader */
      char leader[128];
      bool known = tr_cluster_leader_rpc(d->cluster, leader, sizeof leader);
      e->state = TR_ELEM_ANSWERED;
      e->response = tr_rpc_not_leader_text(e->id, known ? leader : NULL,
                                           known ? "not_leader: send the tx to the cluster's leader (data.leader)"
                                                 : "not_leader: no leader is known yet (an election); retry shortly");
      continue;
    }
    if (tr_sequencer_push(&d->seq, job, e) == 0) {
      job->awaiting++;
    } else {
      e->state = TR_ELEM_ANSWERED;
      e->response = tr_rpc_error_text(e->id, TR_RPC_OVERLOADED, "overloaded: sequencer queue full, retry later", NULL);
      atomic_fetch_add(&d->stats.overloaded, 1);
    }
  }
  if (job->awaiting == 0) job_after_sequencer(d, job);
}

static void on_job_done(tr_daemon_t *d, tr_job_t *job) {
  if (job->phase == 1) { /* its ticket was forwarded already; queries may still wait for the client */
    job_after_sequencer(d, job);
    return;
  }
  d->reorder[job->ticket % TR_REORDER_SLOTS] = job;
  for (;;) {
    tr_job_t **slot = &d->reorder[d->next_forward % TR_REORDER_SLOTS];
    if (*slot == NULL || (*slot)->ticket != d->next_forward) break;
    tr_job_t *next = *slot;
    *slot = NULL;
    d->next_forward++;
    job_forward(d, next);
  }
  if (d->budget_paused && d->next_ticket - d->next_forward < TR_REORDER_SLOTS / 2) resume_paused(d);
}

static void on_seq_done(tr_daemon_t *d, tr_seq_batch_t *b) {
  tr_sub_on_committed(d, b); /* the live feed, while every element still holds its receipt */
  for (size_t i = 0; i < b->n; i++) {
    tr_job_t *job = b->items[i].job;
    tr_elem_t *e = b->items[i].elem;
    e->state = TR_ELEM_ANSWERED;
    if (--job->awaiting == 0) job_after_sequencer(d, job);
  }
  free(b);
}

void tr_server_on_message(tr_mailbox_t *box, tr_msg_t *msg) {
  tr_daemon_t *d = box->data;
  if (msg->kind == TR_MSG_JOB_DONE) {
    for (tr_job_t *j = msg->payload, *next; j; j = next) { /* a worker's share, in order */
      next = j->next;
      j->next = NULL;
      if (j->feed) tr_sub_on_page(d, j); /* a subscription's backlog page, not a request */
      else on_job_done(d, j);
    }
  }
  else if (msg->kind == TR_MSG_SEQ_DONE) on_seq_done(d, msg->payload);
  else if (msg->kind == TR_MSG_DERIVED) on_tables_written(d);
  free(msg);
}

/* ---- reading and framing ---- */

static void conn_enqueue(tr_conn_t *c, tr_job_t *job) {
  job->conn_next = NULL;
  if (c->q_tail) c->q_tail->conn_next = job;
  else c->q_head = job;
  c->q_tail = job;
  if (c->q_head == job) conn_head_changed(c);
  c->inflight++;
  c->jobs_alive++;
}

/* A line over the limit: one -32600 with id null, then the connection closes. */
static void conn_line_too_long(tr_conn_t *c) {
  tr_job_t *job = tr_job_new(c, "", 0, 0);
  atomic_fetch_add(&c->d->stats.line_too_long, 1);
  if (job == NULL) {
    conn_close(c);
    return;
  }
  job->response = tr_rpc_error_text(NULL, TR_RPC_INVALID_REQUEST, "invalid request: line over the 1 MiB limit", NULL);
  job->response_len = job->response ? strlen(job->response) : 0;
  if (job->response) {
    char *r = realloc(job->response, job->response_len + 2);
    if (r) {
      job->response = r;
      r[job->response_len++] = '\n';
      r[job->response_len] = '\0';
    }
  }
  job->complete = true;
  conn_enqueue(c, job);
  c->eof = true; /* read nothing more; close once answered */
  c->len = 0;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = false;
  conn_flush(c);
}

/* Jobs of one read, handed to the pool together: one lock and one wake-up. */
typedef struct {
  tr_job_t *head, *tail;
  size_t n;
} job_list_t;

static void conn_submit_line(tr_conn_t *c, const char *line, size_t len, job_list_t *out) {
  tr_daemon_t *d = c->d;
  tr_job_t *job = tr_job_new(c, line, len, d->next_ticket);
  if (job == NULL) {
    log_error("net", "out of memory: closing a connection");
    conn_close(c);
    return;
  }
  d->next_ticket++;
  c->progress_ms = uv_now(d->loop);
  job->shed = tr_pool_depth(&d->pool) + out->n >= TR_INTAKE_JOBS_MAX || d->stopping;
  if (job->shed) atomic_fetch_add(&d->stats.overloaded, 1);
  job->started_ns = tr_clock_ns();
  job->need = atomic_load(&d->seq.stats.size); /* every tx answered before it is in the journal by now */
  job->out = &c->out;
  atomic_fetch_add(&d->stats.lines, 1);
  atomic_fetch_add(&d->stats.inflight_bytes, len);
  conn_enqueue(c, job);
  d->jobs_in_flight++;
  job->next = NULL;
  if (out->tail) out->tail->next = job;
  else out->head = job;
  out->tail = job;
  out->n++;
}

static bool conn_may_take_line(tr_conn_t *c) {
  if (c->closing || c->inflight >= TR_RPC_INFLIGHT_MAX || atomic_load(&c->out.unwritten) >= TR_RPC_OUT_BYTES_MAX)
    return false;
  tr_daemon_t *d = c->d;
  /* Tickets waiting to be forwarded must fit the reorder buffer: connections
   * that closed with lines in flight are not counted by the per-connection bound. */
  if (atomic_load(&d->stats.inflight_bytes) < TR_INFLIGHT_BYTES_MAX &&
      atomic_load(&d->stats.out_unwritten) < TR_OUT_BYTES_TOTAL_MAX &&
      d->next_ticket - d->next_forward < TR_REORDER_SLOTS - 1)
    return true;
  d->budget_paused = true; /* job_release or on_job_done wakes us */
  return false;
}

static void conn_process_http(tr_conn_t *c);
static void conn_process_ws(tr_conn_t *c);

/* The first bytes choose the framing, once; anything but HTTP or JSON is
 * closed before a byte of it is executed. */
static bool conn_choose_framing(tr_conn_t *c) {
  tr_sniff_t k = tr_frame_sniff(c->buf, c->len);
  if (k == TR_SNIFF_MORE) return false;
  if (k == TR_SNIFF_JUNK) {
    log_debug("net", "closing a connection whose first bytes are neither HTTP nor JSON");
    atomic_fetch_add(&c->d->stats.junk_closed, 1);
    conn_close(c);
    return false;
  }
  if (k == TR_SNIFF_HTTP) {
    if ((c->http = malloc(sizeof *c->http)) == NULL) {
      conn_close(c);
      return false;
    }
    tr_http_init(c->http);
    c->mode = CONN_HTTP;
  } else {
    c->mode = CONN_LINES;
  }
  return true;
}

/* Takes complete requests from the buffer while the connection's bounds allow. */
static void conn_process_buffer(tr_conn_t *c) {
  if (c->mode == CONN_SNIFF && !conn_choose_framing(c)) return;
  if (c->mode == CONN_HTTP) {
    conn_process_http(c);
    return;
  }
  if (c->mode == CONN_WS) {
    conn_process_ws(c);
    return;
  }
  size_t pos = 0, len = 0;
  tr_frame_t f = TR_FRAME_PARTIAL;
  job_list_t jobs = {NULL, NULL, 0};
  while (conn_may_take_line(c)) {
    size_t start = pos;
    f = tr_frame_next(c->buf, c->len, &pos, TR_RPC_LINE_BYTES_MAX, &len);
    if (f != TR_FRAME_LINE) break;
    conn_submit_line(c, c->buf + start, len, &jobs);
  }
  if (jobs.n > 0) tr_pool_push_list(&c->d->pool, jobs.head, jobs.tail, jobs.n);
  if (f == TR_FRAME_TOO_LONG) {
    conn_line_too_long(c);
    return;
  }
  if (pos > 0) {
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
  }
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  tr_conn_t *c = h->data;
  if (c->cap - c->len < READ_CHUNK_BYTES) {
    size_t cap = c->cap ? c->cap * 2 : READ_CHUNK_BYTES * 2;
    while (cap - c->len < READ_CHUNK_BYTES) cap *= 2;
    char *b = realloc(c->buf, cap);
    if (b == NULL) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->buf = b;
    c->cap = cap;
  }
  *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  tr_conn_t *c = s->data;
  if (nread < 0) {
    uv_read_stop(s);
    c->reading = false;
    c->eof = true; /* half-closed: answer what was asked, then close */
    if (nread != UV_EOF || (c->linger && c->shut)) {
      conn_close(c);
      return;
    }
    conn_flush(c);
    return;
  }
  c->len += (size_t)nread;
  if (c->linger) { /* refused: what it still sends is discarded */
    c->len = 0;
    return;
  }
  conn_process_buffer(c);
  conn_maybe_read(c);
  conn_arm_timer(c);
}

static void conn_maybe_read(tr_conn_t *c) {
  if (c->closing || c->eof) return;
  if (c->len > 0) conn_process_buffer(c);
  if (c->closing || c->eof) return;
  bool want = conn_may_take_line(c) && !c->d->stopping;
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == 0) c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

/* ---- HTTP (PROTOCOL.md §5.1) ---- */

/* The JSON-RPC answer to POST / becomes an HTTP response: 200 with the
 * response (JSON-RPC errors included), 204 when only notifications came. */
static void job_wrap_http(tr_job_t *job) {
  char extra[320] = "";
  if (job->http_cors) snprintf(extra, sizeof extra, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n", job->http_cors);
  size_t body_len = job->response_len;
  if (body_len > 0 && job->response[body_len - 1] == '\n') body_len--;
  size_t len = 0;
  char *r = tr_http_response(job->response ? 200 : 204, job->response ? "application/json" : NULL, extra,
                             job->response, body_len, job->http_keep_alive, false, &len);
  if (r == NULL) job->lost = true; /* never a 204 in its place */
  free(job->response);
  job->response = r;
  job->response_len = r ? len : 0;
}

/* An answer made here, queued in request order behind the ones in work. */
static void conn_http_reply_extra(tr_conn_t *c, int status, const char *ctype, const char *extra, const char *body,
                                  size_t body_len, bool keep_alive, bool head_only) {
  tr_job_t *job = tr_job_new(c, "", 0, 0);
  size_t len = 0;
  char *r = job ? tr_http_response(status, ctype, extra, body, body_len, keep_alive, head_only, &len) : NULL;
  if (r == NULL) {
    tr_job_free(job);
    log_error("net", "out of memory answering an HTTP request: closing");
    conn_close(c);
    return;
  }
  job->response = r;
  job->response_len = len;
  job->complete = true;
  conn_enqueue(c, job);
  if (!keep_alive) { /* read nothing more; close once everything is answered */
    c->eof = true;
    if (c->reading && !c->linger) uv_read_stop((uv_stream_t *)&c->tcp);
    if (!c->linger) c->reading = false;
  }
}

static void conn_http_reply(tr_conn_t *c, int status, const char *ctype, const char *extra, const char *body,
                            size_t body_len, bool keep_alive) {
  conn_http_reply_extra(c, status, ctype, extra, body, body_len, keep_alive, false);
}

/* Journal open, writer running and not halted, not shutting down. */
static bool node_ready(tr_daemon_t *d, const char **why) {
  if (d->stopping) return *why = "shutting down\n", false;
  if (atomic_load(&d->seq.stats.halted)) return *why = "writes halted: the database is damaged\n", false;
  if (d->cluster) {
    tr_cluster_status_t st;
    tr_cluster_status(d->cluster, &st);
    if (st.leader == 0) return *why = "no cluster leader known (an election)\n", false;
  }
  return *why = "ready\n", true;
}

static void conn_submit_line(tr_conn_t *c, const char *line, size_t len, job_list_t *out);

/* Bytes made here (a handshake, a pong, a close frame), queued in order
 * behind the answers in work. */
static bool conn_queue_raw(tr_conn_t *c, char *bytes, size_t len) {
  tr_job_t *job = bytes ? tr_job_new(c, "", 0, 0) : NULL;
  if (job == NULL) {
    free(bytes);
    log_error("net", "out of memory answering a connection: closing it");
    conn_close(c);
    return false;
  }
  job->response = bytes;
  job->response_len = len;
  job->complete = true;
  conn_enqueue(c, job);
  return true;
}

/* GET /ws (RFC 6455 §4.2.2): 101 with the accept key, then the connection
 * speaks WebSocket; bytes after the request are frames. */
static void conn_ws_upgrade(tr_conn_t *c) {
  tr_http_t *h = c->http;
  char accept[29];
  if (tr_ws_accept(h->ws_key, h->ws_key_len, accept) != 0) {
    static const char why[] = "Sec-WebSocket-Key is not the base64 of 16 bytes\n";
    conn_http_reply(c, 400, "text/plain; charset=utf-8", NULL, why, sizeof why - 1, false);
    return;
  }
  tr_ws_t *ws = malloc(sizeof *ws);
  char *resp = malloc(160);
  if (ws == NULL || resp == NULL) {
    free(ws);
    free(resp);
    conn_close(c);
    return;
  }
  int n = snprintf(resp, 160, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
  if (!conn_queue_raw(c, resp, (size_t)n)) {
    free(ws);
    return;
  }
  tr_ws_init(ws, TR_RPC_LINE_BYTES_MAX);
  c->ws = ws;
  c->mode = CONN_WS;
  atomic_fetch_add(&c->d->stats.ws_upgrades, 1);
}

/* After a close frame (ours answering theirs, or ours failing the
 * connection): nothing more is read; the TCP connection closes once every
 * answer before it is written.  A peer failed mid-message may still be
 * sending: its bytes are drained first so our close frame is not lost to a
 * reset (conn_done). */
static void conn_ws_close(tr_conn_t *c, uint16_t code, const char *reason, bool drain) {
  size_t len = 0;
  char *frame = tr_ws_close_frame(code, reason, &len);
  if (!conn_queue_raw(c, frame, len)) return;
  c->eof = true;
  c->linger = drain && c->reading;
  if (c->reading && !c->linger) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

/* Feeds the buffer to the frame parser while the connection's bounds allow:
 * each text message is one JSON-RPC request or batch, as a line would be. */
static void conn_process_ws(tr_conn_t *c) {
  size_t pos = 0;
  job_list_t jobs = {NULL, NULL, 0};
  while (pos < c->len && !c->closing && !c->eof && conn_may_take_line(c)) {
    size_t used = 0;
    tr_ws_event_t ev = tr_ws_feed(c->ws, (const uint8_t *)c->buf + pos, c->len - pos, &used);
    pos += used;
    if (ev == TR_WS_MORE) break;
    if (ev == TR_WS_MESSAGE) {
      size_t before = jobs.n;
      conn_submit_line(c, c->ws->msg, c->ws->msg_len, &jobs);
      tr_ws_message_done(c->ws);
      if (jobs.n > before) jobs.tail->ws = true;
    } else if (ev == TR_WS_PING) {
      size_t len = 0;
      char *pong = tr_ws_frame(TR_WS_OP_PONG, c->ws->ctl, c->ws->ctl_len, &len);
      conn_queue_raw(c, pong, len);
    } else if (ev == TR_WS_CLOSE) {
      conn_ws_close(c, c->ws->close_code, "", false);
    } else if (ev == TR_WS_FAIL) {
      if (c->ws->fail_code == 1009) atomic_fetch_add(&c->d->stats.line_too_long, 1);
      conn_ws_close(c, c->ws->fail_code, c->ws->fail_reason, true);
      pos = c->len;
    }
  }
  if (jobs.n > 0) tr_pool_push_list(&c->d->pool, jobs.head, jobs.tail, jobs.n);
  if (c->closing) return;
  if (pos > 0) {
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
  }
  if (c->eof) c->len = 0;
  conn_flush(c);
}

/* One whole request: its route, then an answer queued in order. */
static void conn_http_request(tr_conn_t *c, job_list_t *jobs) {
  tr_daemon_t *d = c->d;
  tr_http_t *h = c->http;
  atomic_fetch_add(&d->stats.http_requests, 1);
  int status;
  const char *why;
  tr_route_t r = tr_http_route(h, &d->http_policy, &status, &why);
  bool keep = h->keep_alive && !h->upgrade_wanted, head = h->method == HTTP_HEAD;
  const char *cors = tr_http_cors_origin(h, &d->http_policy);
  char extra[320] = "";
  if (cors) snprintf(extra, sizeof extra, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n", cors);
  switch (r) {
  case TR_ROUTE_RPC: {
    size_t before = jobs->n;
    conn_submit_line(c, h->body ? h->body : "", h->body_len, jobs);
    if (c->closing || jobs->n == before) return;
    tr_job_t *job = jobs->tail;
    job->http = true;
    job->http_keep_alive = keep;
    job->http_cors = cors;
    if (!keep) {
      c->eof = true;
      if (c->reading) uv_read_stop((uv_stream_t *)&c->tcp);
      c->reading = false;
    }
    return;
  }
  case TR_ROUTE_HEALTH:
    conn_http_reply_extra(c, 200, "text/plain; charset=utf-8", extra, "ok\n", 3, keep, head);
    return;
  case TR_ROUTE_READY: {
    bool ok = node_ready(d, &why);
    conn_http_reply_extra(c, ok ? 200 : 503, "text/plain; charset=utf-8", extra, why, strlen(why), keep, head);
    return;
  }
  case TR_ROUTE_METRICS: {
    size_t len = 0;
    char *text = tr_metrics_text(d, &len);
    if (text == NULL) {
      conn_http_reply(c, 503, "text/plain", extra, "out of memory\n", 14, false);
      return;
    }
    conn_http_reply_extra(c, 200, "text/plain; version=0.0.4; charset=utf-8", extra, text, len, keep, head);
    free(text);
    return;
  }
  case TR_ROUTE_PREFLIGHT: {
    char pre[512];
    snprintf(pre, sizeof pre,
             "%sAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\nAccess-Control-Allow-Headers: Content-Type\r\n"
             "Access-Control-Max-Age: 600\r\n", extra);
    conn_http_reply(c, 204, NULL, pre, NULL, 0, keep);
    return;
  }
  case TR_ROUTE_WS:
    conn_ws_upgrade(c);
    return;
  case TR_ROUTE_EXPLORER: {
    const tr_explorer_asset_t *a = tr_explorer_find(h->url[0] == '/' ? h->url : "/", strcspn(h->url, "?"));
    if (a == NULL) a = tr_explorer_find("/", 1);
    conn_http_reply_extra(c, 200, a->content_type, TR_EXPLORER_HEADERS, a->data, a->len, keep, head);
    return;
  }
  case TR_ROUTE_REFUSE:
    conn_http_reply_extra(c, status, "text/plain; charset=utf-8",
                          status == 405 ? "Allow: GET, HEAD, POST, OPTIONS\r\n" :
                          status == 426 ? "Sec-WebSocket-Version: 13\r\n" : extra, why, strlen(why),
                          keep && status != 400, head);
    return;
  }
}

/* Feeds the buffer to the parser one request at a time, while the
 * connection's bounds allow (the rest waits in the buffer, unparsed). */
static void conn_process_http(tr_conn_t *c) {
  size_t pos = 0;
  job_list_t jobs = {NULL, NULL, 0};
  while (pos < c->len && !c->closing && !c->eof && conn_may_take_line(c)) {
    size_t used = 0;
    tr_http_event_t ev = tr_http_feed(c->http, c->buf + pos, c->len - pos, &used);
    pos += used;
    if (ev == TR_HTTP_MORE) break;
    if (ev == TR_HTTP_BAD) {
      int st = c->http->error_status;
      const char *why = st == 413 ? "body over the 1 MiB limit\n" : st == 431 ? "request head too large\n"
                                                                            : "malformed HTTP request\n";
      if (st == 413) atomic_fetch_add(&c->d->stats.line_too_long, 1);
      c->linger = c->reading;
      conn_http_reply(c, st, "text/plain; charset=utf-8", NULL, why, strlen(why), false);
      pos = c->len;
      c->http->in_message = false;
      break;
    }
    conn_http_request(c, &jobs);
    tr_http_next(c->http);
    if (c->mode == CONN_WS) break; /* the rest are frames */
  }
  if (jobs.n > 0) tr_pool_push_list(&c->d->pool, jobs.head, jobs.tail, jobs.n);
  if (c->closing) return;
  if (pos > 0) {
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
  }
  if (c->eof) c->len = 0; /* nothing after a closing request is read */
  if (c->mode == CONN_WS) {
    tr_http_free(c->http);
    free(c->http);
    c->http = NULL;
    conn_process_ws(c);
    return;
  }
  conn_flush(c);
}

/* ---- deadlines ---- */

/* Bytes of a request that has not arrived whole: a partial line.  Whole
 * lines waiting in the buffer wait for us (backpressure), not for the peer. */
static bool conn_has_partial(const tr_conn_t *c) {
  if (c->mode == CONN_HTTP) return c->http->in_message;
  if (c->mode == CONN_WS) return c->len > 0 || tr_ws_partial(c->ws);
  return c->len > 0 && memchr(c->buf, '\n', c->len) == NULL;
}

static void conn_timer_cb(uv_timer_t *t);
static void conn_http_reply(tr_conn_t *c, int status, const char *ctype, const char *extra, const char *body,
                            size_t body_len, bool keep_alive);

/* After every read: a partial request runs against the deadline from its
 * first byte (later bytes never extend it); otherwise the idle timeout
 * restarts. */
static void conn_arm_timer(tr_conn_t *c) {
  if (c->closing) return;
  tr_daemon_t *d = c->d;
  uint64_t now = uv_now(d->loop);
  if (conn_has_partial(c)) {
    if (c->partial_since_ms != 0) return; /* already running */
    c->partial_since_ms = now;
    uv_timer_start(&c->timer, conn_timer_cb, (uint64_t)d->config.request_deadline_s * 1000u, 0);
  } else {
    c->partial_since_ms = 0;
    uv_timer_start(&c->timer, conn_timer_cb, TR_RPC_IDLE_TIMEOUT_MS, 0);
  }
}

static void conn_timer_cb(uv_timer_t *t) {
  tr_conn_t *c = t->data;
  tr_daemon_t *d = c->d;
  if (c->partial_since_ms != 0 && conn_has_partial(c)) {
    /* Too slow: answer what it asked already, read nothing more. */
    log_debug("net", "closing a connection whose request took over %us", d->config.request_deadline_s);
    atomic_fetch_add(&d->stats.deadline_closed, 1);
    c->partial_since_ms = 0;
    c->len = 0;
    if (c->mode == CONN_HTTP) c->linger = c->reading;
    if (c->mode == CONN_HTTP) conn_http_reply(c, 408, "text/plain", NULL, "request not received in time\n", 29, false);
    c->eof = true;
    if (c->reading) uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    conn_flush(c);
    return;
  }
  if (c->inflight == 0 && c->writes_pending == 0 && c->subs == NULL) { /* a subscriber waits for entries */
    log_debug("net", "closing an idle connection");
    conn_close(c);
    return;
  }
  conn_arm_timer(c); /* busy, or its partial bytes became whole lines: look again later */
}

/* ---- clients that stopped reading ----
 *
 * As Redis's client-output-buffer-limit and nginx's send_timeout: a
 * connection over its output bound (TR_RPC_OUT_BYTES_MAX, so we stopped
 * reading it) whose write queue has not shrunk for request_deadline seconds
 * — the mirror of a request that does not arrive in time — is closed: it
 * would otherwise hold its slot and its memory for ever, and is never
 * evicted since it has writes pending.  And while every connection's
 * unwritten output together is at TR_OUT_BYTES_TOTAL_MAX (reading paused
 * for all), the largest stalled ones are closed at once, so a few dozen
 * clients that never read cannot stall the honest ones.  A sweep each
 * second; a client that reads at all, however slowly, is never closed. */

#define STALL_SWEEP_MS 1000

/* Bytes the kernel holds for the peer, sent or not, unacknowledged: a
 * client reading slowly drains it long before the socket is writable again
 * (and libuv's own queue moves). 0 when unknown. */
static size_t kernel_outq(tr_conn_t *c) {
  uv_os_fd_t fd;
  int n = 0;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &n) != 0 || n < 0) return 0;
  return (size_t)n;
}

static void stall_close(tr_conn_t *c, const char *why) {
  log_debug("net", "closing a connection that reads none of its answers (%zu bytes unwritten): %s",
            (size_t)atomic_load(&c->out.unwritten), why);
  atomic_fetch_add(&c->d->stats.connections_stalled, 1);
  conn_close(c);
}

static void stall_sweep_cb(uv_timer_t *t) {
  tr_daemon_t *d = t->data;
  uint64_t now = uv_now(d->loop), limit_ms = (uint64_t)d->config.request_deadline_s * 1000u;
  for (tr_conn_t *c = d->conns, *next; c; c = next) {
    next = c->next;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp), outq = kernel_outq(c);
    /* A subscriber's backlog waits for room at TR_SUB_OUT_BYTES_MAX: that is its bound. */
    size_t bound = c->subs ? TR_SUB_OUT_BYTES_MAX : TR_RPC_OUT_BYTES_MAX;
    bool over = atomic_load(&c->out.unwritten) >= bound && queued > 0;
    /* Taken: the kernel sent some (the peer's window opened) or we gave the kernel more. */
    bool taken = queued < c->stall_queue || outq < c->stall_outq;
    c->stall_outq = outq;
    if (!over || taken) {
      c->stall_since_ms = 0; /* under its bound, or it took some bytes since the last sweep */
    } else if (c->stall_since_ms == 0) {
      c->stall_since_ms = now;
    } else if (now - c->stall_since_ms >= limit_ms) {
      stall_close(c, "none taken within request_deadline");
      continue;
    }
    c->stall_queue = queued;
  }
  size_t total = atomic_load(&d->stats.out_unwritten);
  while (total >= TR_OUT_BYTES_TOTAL_MAX) {
    tr_conn_t *victim = NULL;
    for (tr_conn_t *c = d->conns; c; c = c->next)
      if (c->stall_since_ms != 0 &&
          (victim == NULL || atomic_load(&c->out.unwritten) > atomic_load(&victim->out.unwritten)))
        victim = c;
    if (victim == NULL) break; /* nobody stalled: everyone is being written, room comes back by itself */
    size_t its = atomic_load(&victim->out.unwritten);
    stall_close(victim, "the daemon-wide output bound is reached and it is the largest stalled client");
    total = total > its ? total - its : 0; /* its written-out requests are released a moment later */
  }
}

/* ---- accepting ---- */

static void refuse_close_cb(uv_handle_t *h) { free(h); }

static void peer_of(uv_tcp_t *tcp, tr_peer_t *p) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  memset(p, 0, sizeof *p);
  if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0) return;
  if (ss.ss_family == AF_INET) {
    p->len = 4;
    memcpy(p->b, &((struct sockaddr_in *)&ss)->sin_addr, 4);
  } else if (ss.ss_family == AF_INET6) {
    const uint8_t *a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, v4mapped, 12) == 0) {
      p->len = 4;
      memcpy(p->b, a + 12, 4);
    } else {
      p->len = 16;
      memcpy(p->b, a, 16);
    }
  }
}

static bool peer_eq(const tr_peer_t *a, const tr_peer_t *b) {
  return a->len != 0 && a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

/* When every slot is taken: the connection with nothing in flight whose last
 * whole request is oldest (a slow sender that never completes one, a silent
 * one, then the longest idle).  Connections being answered are never chosen:
 * refusing the newcomer would let whoever holds the slots keep them, while
 * evicting the least progress leaves honest clients served, and a request
 * deadline ends the slow ones anyway. */
static tr_conn_t *eviction_victim(tr_daemon_t *d) {
  tr_conn_t *victim = NULL;
  for (tr_conn_t *c = d->conns; c; c = c->next) {
    if (c->closing || c->inflight > 0 || c->writes_pending > 0) continue;
    if (victim == NULL || c->progress_ms < victim->progress_ms) victim = c;
  }
  return victim;
}

static void refuse(tr_daemon_t *d, uv_stream_t *server, atomic_ullong *counter) {
  uv_tcp_t *t = malloc(sizeof *t);
  if (t && uv_tcp_init(d->loop, t) == 0) {
    if (uv_accept(server, (uv_stream_t *)t) != 0) log_debug("net", "accept failed while refusing");
    uv_close((uv_handle_t *)t, refuse_close_cb);
  } else {
    free(t);
  }
  atomic_fetch_add(&d->stats.connections_refused, 1);
  if (counter) atomic_fetch_add(counter, 1);
}

static void on_connection(uv_stream_t *server, int status) {
  tr_daemon_t *d = server->data;
  if (status != 0 || d->stopping) return;
  tr_conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    refuse(d, server, NULL);
    return;
  }
  c->d = d;
  if (uv_tcp_init(d->loop, &c->tcp) != 0) {
    free(c);
    refuse(d, server, NULL);
    return;
  }
  c->tcp.data = c;
  c->open_handles = 1;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || uv_timer_init(d->loop, &c->timer) != 0) {
    c->handles_closed = true;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed_cb);
    return;
  }
  c->timer.data = c;
  peer_of(&c->tcp, &c->peer);
  unsigned same_peer = 0;
  for (tr_conn_t *o = d->conns; o; o = o->next)
    if (peer_eq(&o->peer, &c->peer)) same_peer++;
  tr_conn_t *victim = NULL;
  bool full = atomic_load(&d->stats.connections_open) >= d->config.connections_max;
  if (same_peer >= d->config.connections_per_peer || (full && (victim = eviction_victim(d)) == NULL)) {
    /* Over its address's share, or every slot busy answering: the newcomer goes. */
    if (same_peer >= d->config.connections_per_peer) atomic_fetch_add(&d->stats.connections_refused_peer, 1);
    atomic_fetch_add(&d->stats.connections_refused, 1);
    c->handles_closed = true;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed_cb);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed_cb);
    c->open_handles = 2;
    return;
  }
  if (victim) {
    log_debug("net", "all %u connections taken: evicting the one that made least progress", d->config.connections_max);
    atomic_fetch_add(&d->stats.connections_evicted, 1);
    conn_close(victim);
  }
  c->open_handles = 2;
  atomic_init(&c->out.unwritten, 0);
  atomic_init(&c->out.in_writes, 0);
  atomic_init(&c->out.oldest, UINT64_MAX);
  c->out.total = &d->stats.out_unwritten;
  uv_tcp_nodelay(&c->tcp, 1);
  c->next = d->conns;
  if (d->conns) d->conns->prev = c;
  d->conns = c;
  atomic_fetch_add(&d->stats.connections_open, 1);
  atomic_fetch_add(&d->stats.connections_accepted, 1);
  c->progress_ms = uv_now(d->loop);
  conn_arm_timer(c);
  conn_maybe_read(c);
}

int tr_server_start(tr_daemon_t *d, char *err, size_t errlen) {
  char host[128];
  int port;
  struct sockaddr_storage addr;
  if (tr_hostport_parse(d->config.listen, host, sizeof host, &port) != 0) {
    snprintf(err, errlen, "bad listen address %s (want HOST:PORT)", d->config.listen);
    return -1;
  }
  snprintf(d->listen_host, sizeof d->listen_host, "%s", host);
  d->http_policy = (tr_http_policy_t){d->listen_host, d->config.http_hosts, d->config.http_cors};
  int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                             : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
  if (rc == 0) rc = uv_tcp_init(d->loop, &d->listener);
  if (rc == 0) {
    d->listener.data = d;
    rc = uv_tcp_bind(&d->listener, (const struct sockaddr *)&addr, 0);
  }
  if (rc == 0) rc = uv_listen((uv_stream_t *)&d->listener, 511, on_connection);
  if (rc == 0) rc = tr_sub_start(d);
  if (rc == 0) rc = uv_timer_init(d->loop, &d->stall_timer);
  if (rc == 0) {
    d->stall_timer.data = d;
    rc = uv_timer_start(&d->stall_timer, stall_sweep_cb, STALL_SWEEP_MS, STALL_SWEEP_MS);
  }
  if (rc != 0) snprintf(err, errlen, "cannot listen on %s: %s", d->config.listen, uv_strerror(rc));
  return rc;
}

/* ---- shutdown ---- */

void tr_server_stop_accepting(tr_daemon_t *d) {
  if (!uv_is_closing((uv_handle_t *)&d->listener)) uv_close((uv_handle_t *)&d->listener, NULL);
  for (tr_conn_t *c = d->conns; c; c = c->next) {
    if (c->reading) uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    c->eof = true;
  }
  tr_conn_t *c = d->conns;
  while (c) {
    tr_conn_t *next = c->next;
    if (c->inflight == 0 && c->writes_pending == 0) conn_close(c);
    c = next;
  }
}

bool tr_server_idle(tr_daemon_t *d) {
  if (d->jobs_in_flight > 0) return false;
  for (tr_conn_t *c = d->conns; c; c = c->next)
    if (c->writes_pending > 0) return false;
  return true;
}

void tr_server_close_all(tr_daemon_t *d) {
  while (d->conns) conn_close(d->conns);
  tr_sub_stop(d);
  if (!uv_is_closing((uv_handle_t *)&d->stall_timer)) uv_close((uv_handle_t *)&d->stall_timer, NULL);
}

/* ---- for subscribe.c ---- */

void tr_server_notify(tr_conn_t *c, char *text, size_t len) {
  if (c == NULL || c->closing) {
    free(text);
    return;
  }
  tr_job_t *job = tr_job_new(c, "", 0, 0);
  if (job == NULL) {
    free(text);
    log_error("net", "out of memory queueing notifications: closing the connection");
    conn_close(c);
    return;
  }
  if (c->mode == CONN_WS) { /* each notification one text message */
    size_t framed_len = 0;
    char *framed = tr_ws_frame_lines(TR_WS_OP_TEXT, text, len, &framed_len);
    free(text);
    if (framed == NULL) {
      tr_job_free(job);
      log_error("net", "out of memory framing notifications: closing the connection");
      conn_close(c);
      return;
    }
    text = framed;
    len = framed_len;
  }
  job->notice = true;
  job->response = text;
  job->response_len = len;
  job->complete = true;
  job->out = &c->out; /* counts against the client's output bounds like any answer */
  job->out_counted = len;
  atomic_fetch_add(&c->out.unwritten, len);
  atomic_fetch_add(c->out.total, len);
  job->conn_next = NULL;
  if (c->q_tail) c->q_tail->conn_next = job;
  else c->q_head = job;
  c->q_tail = job;
  if (c->q_head == job) conn_head_changed(c);
  c->jobs_alive++; /* not a request: not in `inflight` */
  c->progress_ms = uv_now(c->d->loop); /* a fed subscriber is not the idle one to evict */
  conn_queue_flush(c->d, c);
}

size_t tr_server_unwritten(tr_conn_t *c) { return c ? atomic_load(&c->out.unwritten) : 0; }

tr_sub_t **tr_server_conn_subs(tr_conn_t *c) { return &c->subs; }

/* main.c provides the last step. */
void tr_daemon_finish_shutdown(tr_daemon_t *d);

static void shutdown_progress(tr_daemon_t *d) {
  if (d->stopping && tr_server_idle(d)) tr_daemon_finish_shutdown(d);
}
