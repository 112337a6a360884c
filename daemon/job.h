/* job.h — one request line on its way through the daemon.
 *
 * A line read from a connection becomes a job with a ticket (its global
 * arrival number).  A worker parses it and does everything that needs no
 * ordering: strict JSON, params, tx decoding, chain and signature checks,
 * read-only queries.  The loop then forwards its verified txs to the
 * sequencer in ticket order, so txs are applied in arrival order however the
 * workers finish.  When every element has its answer, the loop renders the
 * response line and the connection writes responses in request order.
 */
#ifndef TR_JOB_H
#define TR_JOB_H

#include <cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_ledger.h"
#include "tr_tx.h"

struct tr_conn;
struct tr_method;

#define TR_SUB_ID_BYTES 24          /* a subscription id as text, with its NUL */
enum { TR_SUB_OP_NONE = 0, TR_SUB_OP_SUBSCRIBE, TR_SUB_OP_UNSUBSCRIBE };

typedef enum {
  TR_ELEM_ANSWERED = 0,   /* response (or nothing, for a notification) is ready */
  TR_ELEM_AWAIT_SEQ,      /* a verified tx (or a history flush) waiting for the sequencer */
  TR_ELEM_DEFERRED,       /* a query after a tx.submit in the same batch: runs after it */
} tr_elem_state_t;

typedef struct {
  tr_elem_state_t state;
  bool notification;
  bool params_not_integers;         /* a number in params is not written 0|[1-9][0-9]* */
  cJSON *id;                        /* detached copy of the request id; NULL when absent */
  const struct tr_method *method;
  cJSON *params;                    /* kept only while DEFERRED */
  tr_tx_t *tx;                      /* AWAIT_SEQ: decoded tx (heap) */
  char *tx_bytes;
  size_t tx_len;
  uint8_t sig[TR_SIG_BYTES];
  char *response;                   /* one JSON-RPC response object, or NULL */
  uint8_t sub_op;                   /* TR_SUB_OP_*: answered on the loop (subscribe.c), which owns subscriptions */
  uint64_t sub_from;                /* subscribe: first seq, 0 = after the head */
  char sub_id[TR_SUB_ID_BYTES];     /* unsubscribe: the id asked for ("" when too long to be one) */
} tr_elem_t;

/* A connection's response bytes, shared with the workers that make them so
 * that a client which pipelines big queries and never reads cannot make the
 * daemon hold more than about TR_RPC_OUT_BYTES_MAX for it: past that, query
 * elements wait (DEFERRED, the job parked on its connection) until the
 * client reads.  The connection's oldest unanswered job never waits: its
 * answer is the next to be written, so waiting for it to drain would never end. */
typedef struct tr_out_budget {
  atomic_size_t unwritten;          /* bytes made for the connection, not yet written */
  atomic_size_t in_writes;          /* of those, handed to the socket (uv_write) and not yet taken by the peer */
  atomic_ullong oldest;             /* ticket of its oldest unanswered job */
  atomic_size_t *total;             /* the same summed over every connection */
} tr_out_budget_t;

typedef struct tr_job {
  struct tr_job *next;              /* intake queue / connection order link */
  struct tr_job *conn_next;
  struct tr_conn *conn;
  uint64_t ticket;
  char *line;
  size_t len;
  bool shed;                        /* intake full: answer tx.submit with -32002 */
  bool batch;
  int phase;                        /* 0: first pass; 1: deferred queries */
  size_t n_elems;
  tr_elem_t *elems;
  size_t awaiting;                  /* elements still with the sequencer */
  bool complete;
  char *response;                   /* whole response line incl. "\n", or NULL */
  size_t response_len;
  uint64_t started_ns;
  uint64_t need;                    /* queries see the journal at least this far (its size at arrival) */
  tr_out_budget_t *out;             /* its connection's; NULL for jobs answered at once */
  size_t out_counted;               /* bytes this job added to out->unwritten */
  bool http;                        /* the body of POST /: answered as an HTTP response */
  bool http_keep_alive;
  const char *http_cors;            /* Access-Control-Allow-Origin to send, or NULL */
  bool ws;                          /* a WebSocket message: each response line becomes a text frame */
  bool notice;                      /* notifications made by the daemon (subscribe.c): not a request */
  struct tr_sub *feed;              /* a backlog page to read for this subscription (subscribe.c), not a request */
  bool lost;                        /* an answer it owes could not be made (out of memory): its connection
                                       closes there, since its client would wait for it for ever */
} tr_job_t;

tr_job_t *tr_job_new(struct tr_conn *conn, const char *line, size_t len, uint64_t ticket);
void tr_job_free(tr_job_t *job);
/* Renders job->response from its elements; call when nothing is pending.
 * TR_ENOMEM when an answer the request is owed is missing: its elements,
 * or an element's response, could not be allocated, or the line itself. */
int tr_job_render(tr_job_t *job);
bool tr_job_has_deferred(const tr_job_t *job);
/* Worker or loop: true when the next query element of this job must wait
 * for its connection to read what was already made for it. */
bool tr_job_output_parked(const tr_job_t *job);
/* Counts an element's fresh response against the connection; past
 * TR_RPC_RESPONSE_BYTES_MAX for the whole line the response is replaced by
 * a -32600 error (a batch cannot promise an answer of unbounded size). */
void tr_job_count_output(tr_job_t *job, tr_elem_t *e);
/* Gives the job's bytes back to its connection once written or dropped. */
void tr_job_uncount_output(tr_job_t *job);

/* JSON-RPC response objects as text. */
char *tr_rpc_result_text(const cJSON *id, cJSON *result /* consumed */);
/* The same with a result that is already JSON text (trusted: rendered by us). */
char *tr_rpc_result_raw(const cJSON *id, const char *result_json);
/* The response's "id" member value as JSON text into out (NUL-terminated);
 * returns its length, or 0 when it does not fit in cap bytes. */
size_t tr_rpc_id_text(const cJSON *id, char *out, size_t cap);
char *tr_rpc_error_text(const cJSON *id, int code, const char *message, cJSON *data /* consumed, may be NULL */);
char *tr_rpc_refusal_text(const cJSON *id, int reason_code, const char *detail);
/* -32005 with data {"leader": "HOST:PORT"} (leader NULL: null, none known yet). */
char *tr_rpc_not_leader_text(const cJSON *id, const char *leader, const char *message);

#define TR_RPC_PARSE_ERROR      (-32700)
#define TR_RPC_INVALID_REQUEST  (-32600)
#define TR_RPC_METHOD_NOT_FOUND (-32601)
#define TR_RPC_INVALID_PARAMS   (-32602)
#define TR_RPC_INTERNAL_ERROR   (-32603)
#define TR_RPC_REFUSED          (-32001)
#define TR_RPC_OVERLOADED       (-32002)
#define TR_RPC_NOT_FOUND        (-32004)
#define TR_RPC_NOT_LEADER       (-32005)

#endif
