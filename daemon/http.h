/* http.h — HTTP/1.1 request framing (llhttp) and routing for the shared port
 * (PROTOCOL.md §5.1).
 *
 * No I/O and no libuv: server.c feeds received bytes, gets one request at a
 * time (the parser pauses after each, so pipelined requests are answered in
 * order and under the connection's backpressure), asks for its route and
 * writes the answer.  Only the headers a route needs are kept, each bounded;
 * the head as a whole and the body are bounded too (tr_limits.h).
 */
#ifndef TR_HTTP_H
#define TR_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "llhttp.h"
#include "tr_limits.h"

typedef enum {
  TR_HTTP_MORE = 0,    /* every byte consumed; no whole request yet */
  TR_HTTP_REQUEST,     /* a whole request is ready (tr_http_next() before feeding more) */
  TR_HTTP_BAD,         /* answer h->error_status and close */
} tr_http_event_t;

typedef struct {
  llhttp_t parser;
  llhttp_settings_t settings;
  bool in_message;      /* bytes of a request arrived, not yet all of it */
  int error_status;     /* 400, 413 or 431 once TR_HTTP_BAD */

  /* the request being assembled */
  int method;           /* llhttp_method_t */
  char url[TR_HTTP_URL_BYTES_MAX + 1];
  size_t url_len;
  char field[TR_HTTP_FIELD_NAME_BYTES_MAX + 1];
  size_t field_len;
  char *value;          /* the kept header the current value goes to, or NULL */
  size_t *value_len, value_cap;
  char host[TR_HTTP_VALUE_BYTES_MAX + 1], content_type[TR_HTTP_VALUE_BYTES_MAX + 1];
  char origin[TR_HTTP_VALUE_BYTES_MAX + 1], upgrade[TR_HTTP_VALUE_BYTES_MAX + 1];
  char connection[TR_HTTP_VALUE_BYTES_MAX + 1], ws_key[TR_HTTP_VALUE_BYTES_MAX + 1];
  char ws_version[TR_HTTP_VALUE_BYTES_MAX + 1];
  size_t host_len, content_type_len, origin_len, upgrade_len, connection_len, ws_key_len, ws_version_len;
  unsigned host_count, content_type_count;
  size_t head_bytes;    /* request line and headers so far */
  unsigned headers;
  char *body;
  size_t body_len, body_cap;
  bool keep_alive;      /* the peer may send another request after this one */
  bool upgrade_wanted;  /* the request asked to switch protocols */
} tr_http_t;

void tr_http_init(tr_http_t *h);
void tr_http_free(tr_http_t *h);
/* Parses buf[0, len); *consumed is how much was used.  After TR_HTTP_REQUEST
 * the request's fields are valid until tr_http_next(). */
tr_http_event_t tr_http_feed(tr_http_t *h, const char *buf, size_t len, size_t *consumed);
/* Forgets the request just handled and lets the parser go on. */
void tr_http_next(tr_http_t *h);

typedef enum {
  TR_ROUTE_RPC = 0,     /* POST /: the body is a JSON-RPC request */
  TR_ROUTE_HEALTH,
  TR_ROUTE_READY,
  TR_ROUTE_METRICS,
  TR_ROUTE_WS,          /* GET /ws with a WebSocket upgrade */
  TR_ROUTE_PREFLIGHT,   /* OPTIONS from the configured CORS origin */
  TR_ROUTE_EXPLORER,    /* GET / or one of the explorer's files (explorer.h) */
  TR_ROUTE_REFUSE,      /* answer *status with a short text body */
} tr_route_t;

/* What the browser-safety rules allow (config, fixed at start). */
typedef struct {
  const char *listen_host;  /* the listen address's host, always allowed */
  const char *hosts;        /* config http_hosts: comma-separated extra names, "*" = any */
  const char *cors;         /* config http_cors: the one origin allowed, "" = none */
} tr_http_policy_t;

/* Chooses the route of the request h holds; on TR_ROUTE_REFUSE sets *status
 * (400 no Host, 403 host or origin not allowed, 404, 405, 415) and *why. */
tr_route_t tr_http_route(const tr_http_t *h, const tr_http_policy_t *p, int *status, const char **why);
/* The CORS origin to echo for this request, or NULL. */
const char *tr_http_cors_origin(const tr_http_t *h, const tr_http_policy_t *p);
/* "Not Found" for 404 and so on. */
const char *tr_http_reason(int status);
/* A whole response: status line, Content-Type (unless NULL), Content-Length,
 * Connection: close when !keep_alive, extra header lines (each ending
 * "\r\n", may be NULL), then the body unless head_only.  Heap; NULL on OOM. */
char *tr_http_response(int status, const char *content_type, const char *extra, const char *body, size_t body_len,
                       bool keep_alive, bool head_only, size_t *out_len);

#endif
