/* subscribe.c — ledger.subscribe and ledger.unsubscribe (subscribe.h). */
#include "subscribe.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_json.h"
#include "tr_limits.h"

typedef enum {
  SUB_LIVE = 0,    /* next > live_head: entries come from committed batches */
  SUB_FETCHING,    /* a worker reads a backlog page */
  SUB_WAIT_ROOM,   /* backlog: waits for the client to read */
  SUB_RETRY,       /* backlog: an entry's receipt is not written yet; the timer asks again */
} sub_state_t;

typedef struct {
  char *p;
  size_t len, cap;
  bool oom;
} buf_t;

struct tr_sub {
  tr_sub_t *next_all, *next_conn;
  struct tr_conn *conn;
  char id[TR_SUB_ID_BYTES];
  uint64_t next;             /* the next seq to send */
  sub_state_t state;
  bool dropped;              /* ended while a worker reads its page: freed when it comes back */
  buf_t pend;                /* live: this batch's notifications */
  uint64_t pend_first;
  bool gap;                  /* live: an entry went by that it had not reached: read from the store */
  /* the page, written by the worker while SUB_FETCHING */
  char *page;
  size_t page_len;
  uint64_t page_next;
  int page_rc;
};

/* ---- text ---- */

static void buf_add(buf_t *b, const char *s, size_t n) {
  if (b->oom) return;
  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->len < n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}
#define BUF_LIT(b, lit) buf_add((b), (lit), sizeof(lit) - 1)

static void buf_u64(buf_t *b, uint64_t v) {
  char digits[24];
  char *end = tr_json_put_u64(digits, v);
  buf_add(b, digits, (size_t)(end - digits));
}

static void buf_clear(buf_t *b) {
  free(b->p);
  *b = (buf_t){0};
}

/* One field of an entry: raw JSON text (a span of a document we rendered or
 * checked, so valid as is). */
typedef struct {
  const char *p;
  size_t n;
} span_t;

typedef struct {
  uint64_t seq, time;
  char hash[65], txid[65], signer[65];
  span_t type, effects;
} entry_t;

/* {"jsonrpc":"2.0","method":"ledger.entry","params":{"subscription":S,"entry":{…}}}\n */
static void put_entry_note(buf_t *b, const char *sub_id, const entry_t *e) {
  BUF_LIT(b, "{\"jsonrpc\":\"2.0\",\"method\":\"ledger.entry\",\"params\":{\"subscription\":\"");
  buf_add(b, sub_id, strlen(sub_id));
  BUF_LIT(b, "\",\"entry\":{\"seq\":");
  buf_u64(b, e->seq);
  BUF_LIT(b, ",\"time\":");
  buf_u64(b, e->time);
  BUF_LIT(b, ",\"hash\":\"");
  buf_add(b, e->hash, 64);
  BUF_LIT(b, "\",\"txid\":\"");
  buf_add(b, e->txid, 64);
  BUF_LIT(b, "\",\"type\":");
  buf_add(b, e->type.p, e->type.n);
  BUF_LIT(b, ",\"signer\":\"");
  buf_add(b, e->signer, 64);
  BUF_LIT(b, "\",\"effects\":");
  buf_add(b, e->effects.p, e->effects.n);
  BUF_LIT(b, "}}}\n");
}

static char *end_note(const char *sub_id, const char *reason, uint64_t next, size_t *len) {
  buf_t b = {0};
  BUF_LIT(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"ledger.subscription_end\",\"params\":{\"subscription\":\"");
  buf_add(&b, sub_id, strlen(sub_id));
  BUF_LIT(&b, "\",\"reason\":\"");
  buf_add(&b, reason, strlen(reason));
  BUF_LIT(&b, "\",\"next\":");
  buf_u64(&b, next);
  BUF_LIT(&b, "}}\n");
  if (b.oom) {
    buf_clear(&b);
    return NULL;
  }
  *len = b.len;
  return b.p;
}

/* A member of a JSON object we rendered or checked ourselves. */
static bool member(const char *obj, size_t len, const char *name, span_t *out) {
  size_t start, n;
  if (tr_json_member_span(obj, len, name, &start, &n) != 0 || n == 0) return false;
  *out = (span_t){obj + start, n};
  return true;
}

static bool span_u64(span_t s, uint64_t *v) {
  if (s.n == 0 || s.n > 16) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < s.n; i++) {
    if (s.p[i] < '0' || s.p[i] > '9') return false;
    x = x * 10 + (uint64_t)(s.p[i] - '0');
  }
  *v = x;
  return true;
}

static bool span_hex64(span_t s, char out[65]) {
  if (s.n != 66 || s.p[0] != '"') return false;
  memcpy(out, s.p + 1, 64);
  out[64] = '\0';
  return true;
}

/* A committed element's entry, from the receipt the sequencer rendered
 * ({"jsonrpc","result":{seq,txid,hash,time,duplicate,effects},"id"}) and the
 * tx it applied.  False for anything that appended no entry: a refusal, a
 * duplicate, an error. */
static bool entry_of_receipt(const tr_elem_t *e, entry_t *out) {
  if (e->tx == NULL || e->tx_bytes == NULL || e->response == NULL) return false;
  span_t result, dup, v;
  if (!member(e->response, strlen(e->response), "result", &result)) return false;
  if (!member(result.p, result.n, "duplicate", &dup) || dup.n != 5) return false; /* "false" */
  if (!member(result.p, result.n, "seq", &v) || !span_u64(v, &out->seq)) return false;
  if (!member(result.p, result.n, "time", &v) || !span_u64(v, &out->time)) return false;
  if (!member(result.p, result.n, "hash", &v) || !span_hex64(v, out->hash)) return false;
  if (!member(result.p, result.n, "txid", &v) || !span_hex64(v, out->txid)) return false;
  if (!member(result.p, result.n, "effects", &out->effects)) return false;
  if (!member(e->tx_bytes, e->tx_len, "type", &out->type)) return false;
  tr_hex_encode(e->tx->signer.b, 32, out->signer);
  return true;
}

/* ---- the worker's page ---- */

void tr_sub_read_page(tr_worker_t *w, tr_job_t *job) {
  tr_sub_t *s = job->feed;
  tr_store_t *r = w->reader;
  buf_t b = {0};
  uint64_t seq = s->next, size = 0;
  int rc = tr_store_read_begin(r);
  if (rc != 0) goto out;
  rc = tr_store_visible_head(r, &size, NULL, NULL); /* entries whose receipts are written */
  for (size_t n = 0; rc == 0 && seq <= size && n < TR_SUB_PAGE_ENTRIES_MAX && b.len < TR_SUB_PAGE_BYTES_MAX; n++) {
    tr_entry_t je;
    char *effects = NULL;
    if ((rc = tr_store_entry_get(r, seq, &je)) != 0) break;
    rc = tr_store_receipt_get(r, seq, &effects);
    if (rc == 0) {
      entry_t e = {.seq = seq, .time = je.time, .effects = {effects, strlen(effects)}};
      tr_hex_encode(je.hash, 32, e.hash);
      tr_hex_encode(je.txid, 32, e.txid);
      tr_hex_encode(je.signer.b, 32, e.signer);
      if (member(je.tx, je.tx_len, "type", &e.type)) {
        put_entry_note(&b, s->id, &e);
        seq++;
      } else {
        rc = TR_ECORRUPT;
      }
    }
    free(effects);
    tr_entry_clear(&je);
  }
  if (rc == TR_ENOT_FOUND && seq <= size) rc = 0; /* the receipt is not written yet: the page ends before it */
  int end = tr_store_read_end(r);
  if (rc == 0) rc = end;
  if (rc == 0 && b.oom) rc = TR_ENOMEM;
out:
  if (rc != 0) buf_clear(&b);
  s->page = b.p;
  s->page_len = b.len;
  s->page_next = seq;
  s->page_rc = rc;
}

/* ---- lifetime ---- */

static void sub_free(tr_sub_t *s) {
  buf_clear(&s->pend);
  free(s->page);
  free(s);
}

static void list_remove(tr_sub_t **head, tr_sub_t *s, bool all) {
  for (tr_sub_t **p = head; *p; p = all ? &(*p)->next_all : &(*p)->next_conn)
    if (*p == s) {
      *p = all ? s->next_all : s->next_conn;
      return;
    }
}

/* Ends s (after its end notification, if any): out of both lists; freed now,
 * or when its page comes back. */
static void sub_drop(tr_daemon_t *d, tr_sub_t *s) {
  list_remove(&d->subs, s, true);
  if (s->conn) list_remove(tr_server_conn_subs(s->conn), s, false);
  s->conn = NULL;
  d->subs_n--;
  atomic_store(&d->stats.subscriptions_open, d->subs_n);
  if (s->state == SUB_FETCHING) s->dropped = true;
  else sub_free(s);
}

static void sub_end(tr_daemon_t *d, tr_sub_t *s, const char *reason, uint64_t next) {
  size_t len = 0;
  char *note = end_note(s->id, reason, next, &len);
  if (note) tr_server_notify(s->conn, note, len);
  else log_error("net", "out of memory ending subscription %s", s->id);
  sub_drop(d, s);
}

/* ---- moving a subscription on ---- */

static void sub_fetch(tr_daemon_t *d, tr_sub_t *s) {
  tr_job_t *job = tr_job_new(NULL, "", 0, 0);
  if (job == NULL) {
    log_error("net", "out of memory reading a subscription's backlog");
    sub_end(d, s, "error", s->next);
    return;
  }
  job->feed = s;
  s->state = SUB_FETCHING;
  d->jobs_in_flight++;
  tr_pool_push(&d->pool, job);
}

static void retry_cb(uv_timer_t *t);

static void arm_retry(tr_daemon_t *d) {
  if (!uv_is_active((uv_handle_t *)&d->sub_timer)) uv_timer_start(&d->sub_timer, retry_cb, TR_SUB_RETRY_MS, 0);
}

/* Live once past what the loop has seen; otherwise the next backlog page,
 * when the client has read enough to make room for it. */
static void sub_advance(tr_daemon_t *d, tr_sub_t *s) {
  if (s->next > d->live_head) s->state = SUB_LIVE;
  else if (d->stopping || tr_server_unwritten(s->conn) >= TR_SUB_OUT_BYTES_MAX) s->state = SUB_WAIT_ROOM;
  else sub_fetch(d, s);
}

static void retry_cb(uv_timer_t *t) {
  tr_daemon_t *d = t->data;
  for (tr_sub_t *s = d->subs, *next; s; s = next) {
    next = s->next_all;
    if (s->state == SUB_RETRY) sub_advance(d, s);
  }
}

void tr_sub_on_page(tr_daemon_t *d, tr_job_t *job) {
  tr_sub_t *s = job->feed;
  tr_job_free(job);
  d->jobs_in_flight--;
  if (s->dropped) {
    sub_free(s);
    return;
  }
  char *page = s->page;
  size_t len = s->page_len;
  s->page = NULL;
  s->state = SUB_WAIT_ROOM;
  if (s->page_rc != 0) {
    free(page);
    log_error("net", "reading subscription %s's backlog from %llu: %s", s->id, (unsigned long long)s->next,
              tr_strerror(s->page_rc));
    sub_end(d, s, "error", s->next);
    return;
  }
  bool empty = s->page_next == s->next;
  s->next = s->page_next;
  if (len > 0) tr_server_notify(s->conn, page, len);
  else free(page);
  if (empty && s->next <= d->live_head) {
    s->state = SUB_RETRY;
    arm_retry(d);
    return;
  }
  sub_advance(d, s);
}

void tr_sub_on_written(tr_daemon_t *d, struct tr_conn *c) {
  for (tr_sub_t *s = *tr_server_conn_subs(c), *next; s; s = next) {
    next = s->next_conn;
    if (s->state == SUB_WAIT_ROOM) sub_advance(d, s);
  }
}

void tr_sub_conn_closed(tr_daemon_t *d, struct tr_conn *c) {
  tr_sub_t **head = tr_server_conn_subs(c);
  while (*head) sub_drop(d, *head);
}

/* ---- live ---- */

/* The seq a committed element appended, read from its receipt alone. */
static bool appended_seq(const tr_elem_t *e, uint64_t *seq) {
  span_t result, dup, v;
  if (e->tx == NULL || e->response == NULL || !member(e->response, strlen(e->response), "result", &result)) return false;
  if (!member(result.p, result.n, "duplicate", &dup) || dup.n != 5) return false; /* "false" */
  return member(result.p, result.n, "seq", &v) && span_u64(v, seq);
}

void tr_sub_on_committed(tr_daemon_t *d, const tr_seq_batch_t *b) {
  if (d->subs == NULL) { /* nobody follows: the seam needs only the newest seq, the last appended */
    if (b->n == 0 && b->size_after > d->live_head) d->live_head = b->size_after;
    uint64_t seq;
    for (size_t i = b->n; i-- > 0;)
      if (appended_seq(b->items[i].elem, &seq)) {
        if (seq > d->live_head) d->live_head = seq;
        break;
      }
    return;
  }
  if (b->n == 0 && b->size_after > d->live_head) { /* a cluster follower's batch: no receipts here, the store has it */
    d->live_head = b->size_after;
    for (tr_sub_t *s = d->subs; s; s = s->next_all)
      if (s->state == SUB_LIVE && s->next <= b->size_after) s->gap = true;
  }
  for (size_t i = 0; i < b->n; i++) {
    entry_t e;
    if (!entry_of_receipt(b->items[i].elem, &e) || e.seq <= d->live_head) continue;
    d->live_head = e.seq;
    for (tr_sub_t *s = d->subs; s; s = s->next_all) {
      if (s->state != SUB_LIVE || s->gap || s->next > e.seq) continue;
      if (s->next < e.seq) { /* an entry it never saw: the store has it */
        s->gap = true;
        continue;
      }
      if (s->pend.len == 0) s->pend_first = e.seq;
      put_entry_note(&s->pend, s->id, &e);
      s->next = e.seq + 1;
    }
  }
  for (tr_sub_t *s = d->subs, *next; s; s = next) {
    next = s->next_all;
    if (s->pend.len == 0 && !s->gap && !s->pend.oom) continue;
    if (s->pend.oom || (s->pend.len > 0 && tr_server_unwritten(s->conn) >= TR_SUB_OUT_BYTES_MAX)) {
      bool slow = !s->pend.oom;
      uint64_t from = s->pend.len > 0 ? s->pend_first : s->next;
      buf_clear(&s->pend);
      if (slow) atomic_fetch_add(&d->stats.subscriptions_slow, 1);
      sub_end(d, s, slow ? "slow_consumer" : "error", from);
      continue;
    }
    if (s->pend.len > 0) {
      tr_server_notify(s->conn, s->pend.p, s->pend.len);
      s->pend = (buf_t){0};
    }
    if (s->gap) {
      s->gap = false;
      sub_advance(d, s);
    }
  }
}

/* ---- the methods ---- */

static void answer_error(tr_elem_t *e, int code, const char *msg) {
  if (!e->notification) e->response = tr_rpc_error_text(e->id, code, msg, NULL);
}

static void subscribe(tr_daemon_t *d, tr_job_t *job, tr_elem_t *e) {
  tr_sub_t **conn_subs = tr_server_conn_subs(job->conn);
  size_t mine = 0;
  for (tr_sub_t *s = *conn_subs; s; s = s->next_conn) mine++;
  if (mine >= TR_SUBS_PER_CONN_MAX || d->subs_n >= TR_SUBS_MAX) {
    char msg[120];
    snprintf(msg, sizeof msg, "overloaded: at most %d subscriptions per connection and %d in all",
             TR_SUBS_PER_CONN_MAX, TR_SUBS_MAX);
    answer_error(e, TR_RPC_OVERLOADED, msg);
    return;
  }
  tr_sub_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    answer_error(e, TR_RPC_INTERNAL_ERROR, "out of memory");
    return;
  }
  uint8_t rnd[8];
  randombytes_buf(rnd, sizeof rnd);
  tr_hex_encode(rnd, sizeof rnd, s->id);
  s->conn = job->conn;
  s->next = e->sub_from ? e->sub_from : d->live_head + 1;
  char result[96];
  snprintf(result, sizeof result, "{\"subscription\":\"%s\",\"from\":%llu}", s->id, (unsigned long long)s->next);
  if (!e->notification && (e->response = tr_rpc_result_raw(e->id, result)) == NULL) {
    free(s);
    return;
  }
  s->next_all = d->subs;
  d->subs = s;
  s->next_conn = *conn_subs;
  *conn_subs = s;
  d->subs_n++;
  atomic_store(&d->stats.subscriptions_open, d->subs_n);
  sub_advance(d, s);
}

static void unsubscribe(tr_daemon_t *d, tr_job_t *job, tr_elem_t *e) {
  tr_sub_t *s = *tr_server_conn_subs(job->conn);
  while (s && strcmp(s->id, e->sub_id) != 0) s = s->next_conn;
  if (s) sub_drop(d, s);
  if (!e->notification) e->response = tr_rpc_result_text(e->id, cJSON_CreateBool(s != NULL));
}

void tr_sub_on_job(tr_daemon_t *d, tr_job_t *job) {
  for (size_t i = 0; i < job->n_elems; i++) {
    tr_elem_t *e = &job->elems[i];
    if (e->sub_op == TR_SUB_OP_NONE || e->response != NULL) continue;
    if (job->http) {
      answer_error(e, TR_RPC_INVALID_REQUEST, "invalid request: subscriptions need a connection that stays open: "
                                              "newline-delimited JSON or WebSocket (GET /ws)");
    } else if (e->sub_op == TR_SUB_OP_SUBSCRIBE) {
      subscribe(d, job, e);
    } else {
      unsubscribe(d, job, e);
    }
    e->sub_op = TR_SUB_OP_NONE;
  }
}

/* ---- start and stop ---- */

int tr_sub_start(tr_daemon_t *d) {
  d->live_head = atomic_load(&d->seq.stats.size);
  int rc = uv_timer_init(d->loop, &d->sub_timer);
  if (rc == 0) d->sub_timer.data = d;
  return rc;
}

void tr_sub_stop(tr_daemon_t *d) {
  if (!uv_is_closing((uv_handle_t *)&d->sub_timer)) uv_close((uv_handle_t *)&d->sub_timer, NULL);
}
