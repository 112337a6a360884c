/* http.c — HTTP/1.1 requests on the shared port: llhttp does the parsing,
 * this file keeps the few headers routes need and decides the route. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "explorer.h"
#include "tr_limits.h"

static tr_http_t *of(llhttp_t *p) { return p->data; }

/* Any byte of the head counts against TR_HTTP_HEAD_BYTES_MAX: a peer cannot
 * make us parse an endless head (the request deadline bounds its time). */
static int head_add(tr_http_t *h, size_t n) {
  h->head_bytes += n;
  if (h->head_bytes > TR_HTTP_HEAD_BYTES_MAX) {
    h->error_status = 431;
    return -1;
  }
  return 0;
}

static int on_message_begin(llhttp_t *p) {
  of(p)->in_message = true;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  tr_http_t *h = of(p);
  if (head_add(h, n) != 0) return -1;
  if (n > TR_HTTP_URL_BYTES_MAX - h->url_len) {
    h->error_status = 431;
    return -1;
  }
  memcpy(h->url + h->url_len, at, n);
  h->url_len += n;
  h->url[h->url_len] = '\0';
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  tr_http_t *h = of(p);
  if (head_add(h, n) != 0) return -1;
  size_t room = TR_HTTP_FIELD_NAME_BYTES_MAX - h->field_len;
  size_t take = n < room ? n : room;
  memcpy(h->field + h->field_len, at, take);
  h->field_len += take;
  h->field[h->field_len] = '\0';
  return 0;
}

/* The header whose value we keep, chosen by name once the name is whole. */
static int on_header_field_complete(llhttp_t *p) {
  tr_http_t *h = of(p);
  if (++h->headers > TR_HTTP_HEADERS_MAX) {
    h->error_status = 431;
    return -1;
  }
  static const struct {
    const char *name;
    size_t value_off, len_off;
  } kept[] = {
      {"host", offsetof(tr_http_t, host), offsetof(tr_http_t, host_len)},
      {"content-type", offsetof(tr_http_t, content_type), offsetof(tr_http_t, content_type_len)},
      {"origin", offsetof(tr_http_t, origin), offsetof(tr_http_t, origin_len)},
      {"upgrade", offsetof(tr_http_t, upgrade), offsetof(tr_http_t, upgrade_len)},
      {"connection", offsetof(tr_http_t, connection), offsetof(tr_http_t, connection_len)},
      {"sec-websocket-key", offsetof(tr_http_t, ws_key), offsetof(tr_http_t, ws_key_len)},
      {"sec-websocket-version", offsetof(tr_http_t, ws_version), offsetof(tr_http_t, ws_version_len)},
  };
  h->value = NULL;
  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
    if (h->field_len == strlen(kept[i].name) && strcasecmp(h->field, kept[i].name) == 0) {
      h->value = (char *)h + kept[i].value_off;
      h->value_len = (size_t *)((char *)h + kept[i].len_off);
      /* A second Host or Content-Type is ambiguous: refused.  Others: the last one. */
      if (i == 0 && h->host_count++ > 0) return h->error_status = 400, -1;
      if (i == 1 && h->content_type_count++ > 0) return h->error_status = 400, -1;
      *h->value_len = 0;
      h->value[0] = '\0';
    }
  h->field_len = 0;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  tr_http_t *h = of(p);
  if (head_add(h, n) != 0) return -1;
  if (h->value == NULL) return 0;
  if (n > TR_HTTP_VALUE_BYTES_MAX - *h->value_len) {
    h->error_status = 431;
    return -1;
  }
  memcpy(h->value + *h->value_len, at, n);
  *h->value_len += n;
  h->value[*h->value_len] = '\0';
  return 0;
}

static int on_header_value_complete(llhttp_t *p) {
  of(p)->value = NULL;
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  tr_http_t *h = of(p);
  /* Refused before a byte of the body is read. */
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > TR_RPC_LINE_BYTES_MAX) {
    h->error_status = 413;
    return -1;
  }
  h->method = p->method;
  h->keep_alive = llhttp_should_keep_alive(p);
  h->upgrade_wanted = p->upgrade;
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  tr_http_t *h = of(p);
  if (n > TR_RPC_LINE_BYTES_MAX - h->body_len) { /* chunked bodies have no length up front */
    h->error_status = 413;
    return -1;
  }
  if (h->body_len + n > h->body_cap) {
    size_t cap = h->body_cap ? h->body_cap : 4096;
    while (cap < h->body_len + n) cap *= 2;
    char *b = realloc(h->body, cap);
    if (b == NULL) {
      h->error_status = 503;
      return -1;
    }
    h->body = b;
    h->body_cap = cap;
  }
  memcpy(h->body + h->body_len, at, n);
  h->body_len += n;
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  tr_http_t *h = of(p);
  h->in_message = false;
  h->keep_alive = llhttp_should_keep_alive(p);
  return HPE_PAUSED; /* one request at a time: the caller answers it first */
}

void tr_http_init(tr_http_t *h) {
  memset(h, 0, sizeof *h);
  llhttp_settings_init(&h->settings);
  h->settings.on_message_begin = on_message_begin;
  h->settings.on_url = on_url;
  h->settings.on_header_field = on_header_field;
  h->settings.on_header_field_complete = on_header_field_complete;
  h->settings.on_header_value = on_header_value;
  h->settings.on_header_value_complete = on_header_value_complete;
  h->settings.on_headers_complete = on_headers_complete;
  h->settings.on_body = on_body;
  h->settings.on_message_complete = on_message_complete;
  llhttp_init(&h->parser, HTTP_REQUEST, &h->settings);
  h->parser.data = h;
}

void tr_http_free(tr_http_t *h) {
  free(h->body);
  h->body = NULL;
  h->body_len = h->body_cap = 0;
}

void tr_http_next(tr_http_t *h) {
  h->url_len = h->field_len = h->head_bytes = h->body_len = 0;
  h->host_len = h->content_type_len = h->origin_len = h->upgrade_len = 0;
  h->connection_len = h->ws_key_len = h->ws_version_len = 0;
  h->url[0] = h->host[0] = h->content_type[0] = h->origin[0] = h->upgrade[0] = '\0';
  h->connection[0] = h->ws_key[0] = h->ws_version[0] = '\0';
  h->host_count = h->content_type_count = h->headers = 0;
  h->value = NULL;
  h->upgrade_wanted = false;
  if (h->body_cap > 64 * 1024) tr_http_free(h); /* a big body's buffer goes; small ones are reused */
  if (llhttp_get_errno(&h->parser) == HPE_PAUSED) llhttp_resume(&h->parser);
}

tr_http_event_t tr_http_feed(tr_http_t *h, const char *buf, size_t len, size_t *consumed) {
  *consumed = 0;
  if (h->error_status) return TR_HTTP_BAD;
  llhttp_errno_t e = llhttp_execute(&h->parser, buf, len);
  if (e == HPE_OK) {
    *consumed = len;
    return TR_HTTP_MORE;
  }
  if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
    const char *pos = llhttp_get_error_pos(&h->parser);
    *consumed = pos && pos >= buf && pos <= buf + len ? (size_t)(pos - buf) : len;
    return TR_HTTP_REQUEST;
  }
  if (h->error_status == 0) h->error_status = 400;
  return TR_HTTP_BAD;
}

/* ---- routes ---- */

/* The Host header's name part: "[::1]:7707" -> "[::1]", "a.b:80" -> "a.b". */
static size_t host_name_len(const char *host) {
  if (host[0] == '[') {
    const char *end = strchr(host, ']');
    return end ? (size_t)(end - host) + 1 : strlen(host);
  }
  const char *colon = strchr(host, ':');
  return colon ? (size_t)(colon - host) : strlen(host);
}

static bool name_in_list(const char *name, size_t n, const char *list) {
  for (const char *s = list; s && *s;) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    while (len > 0 && (*s == ' ' || *s == '\t')) s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    if (len == 1 && *s == '*') return true;
    if (len == n && strncasecmp(s, name, n) == 0) return true;
    s = comma ? comma + 1 : NULL;
  }
  return false;
}

/* DNS rebinding: a page on evil.example that makes its name resolve to
 * 127.0.0.1 still sends "Host: evil.example". */
static bool host_allowed(const tr_http_t *h, const tr_http_policy_t *p) {
  size_t n = host_name_len(h->host);
  if (n == 0) return false;
  static const char *loopback = "localhost,127.0.0.1,[::1]";
  if (name_in_list(h->host, n, loopback) || name_in_list(h->host, n, p->hosts)) return true;
  const char *lh = p->listen_host;
  if (lh && *lh) {
    size_t ln = strlen(lh);
    /* the listen host as written in config, IPv6 without brackets */
    if (ln == n && strncasecmp(lh, h->host, n) == 0) return true;
    if (h->host[0] == '[' && n == ln + 2 && strncasecmp(lh, h->host + 1, ln) == 0) return true;
  }
  return false;
}

const char *tr_http_cors_origin(const tr_http_t *h, const tr_http_policy_t *p) {
  if (p->cors == NULL || p->cors[0] == '\0' || h->origin_len == 0) return NULL;
  if (strcmp(p->cors, "*") == 0) return "*";
  return strcmp(p->cors, h->origin) == 0 ? p->cors : NULL;
}

/* An Origin that is neither this server (same origin) nor the CORS one. */
static bool origin_foreign(const tr_http_t *h, const tr_http_policy_t *p) {
  if (h->origin_len == 0 || tr_http_cors_origin(h, p)) return false;
  const char *o = h->origin;
  if (strncasecmp(o, "http://", 7) != 0) return true;
  return strcasecmp(o + 7, h->host) != 0;
}

/* "application/json", any case, optionally followed by parameters. */
static bool content_type_json(const char *ct) {
  static const char want[] = "application/json";
  if (strncasecmp(ct, want, sizeof want - 1) != 0) return false;
  char next = ct[sizeof want - 1];
  return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

static bool header_has_token(const char *value, const char *token) {
  size_t n = strlen(token);
  for (const char *s = value; *s;) {
    while (*s == ' ' || *s == '\t' || *s == ',') s++;
    size_t len = strcspn(s, ",");
    size_t t = len;
    while (t > 0 && (s[t - 1] == ' ' || s[t - 1] == '\t')) t--;
    if (t == n && strncasecmp(s, token, n) == 0) return true;
    s += len;
  }
  return false;
}

tr_route_t tr_http_route(const tr_http_t *h, const tr_http_policy_t *p, int *status, const char **why) {
  *status = 0;
  *why = "";
  if (h->host_len == 0) return *status = 400, *why = "a Host header is required\n", TR_ROUTE_REFUSE;
  if (!host_allowed(h, p)) return *status = 403, *why = "host not allowed (http_hosts)\n", TR_ROUTE_REFUSE;
  size_t path_len = strcspn(h->url, "?");
  bool root = path_len == 1 && h->url[0] == '/';
#define PATH_IS(s) (path_len == sizeof(s) - 1 && memcmp(h->url, s, path_len) == 0)
  bool get = h->method == HTTP_GET || h->method == HTTP_HEAD;
  if (h->method == HTTP_OPTIONS) {
    if (tr_http_cors_origin(h, p) && (root || PATH_IS("/health") || PATH_IS("/ready") || PATH_IS("/metrics")))
      return TR_ROUTE_PREFLIGHT;
    return *status = 405, *why = "method not allowed\n", TR_ROUTE_REFUSE;
  }
  if (root) {
    if (h->method == HTTP_POST) {
      if (origin_foreign(h, p)) return *status = 403, *why = "origin not allowed (http_cors)\n", TR_ROUTE_REFUSE;
      if (!content_type_json(h->content_type))
        return *status = 415, *why = "POST / needs Content-Type: application/json\n", TR_ROUTE_REFUSE;
      return TR_ROUTE_RPC;
    }
    if (get) return TR_ROUTE_EXPLORER;
    return *status = 405, *why = "method not allowed\n", TR_ROUTE_REFUSE;
  }
  tr_route_t r;
  if (PATH_IS("/health")) r = TR_ROUTE_HEALTH;
  else if (PATH_IS("/ready")) r = TR_ROUTE_READY;
  else if (PATH_IS("/metrics")) r = TR_ROUTE_METRICS;
  else if (PATH_IS("/ws")) r = TR_ROUTE_WS;
  else if (tr_explorer_find(h->url, path_len)) r = TR_ROUTE_EXPLORER;
  else return *status = 404, *why = "not found\n", TR_ROUTE_REFUSE;
#undef PATH_IS
  if (!get) return *status = 405, *why = "method not allowed\n", TR_ROUTE_REFUSE;
  if (r == TR_ROUTE_WS) {
    if (h->method != HTTP_GET || !h->upgrade_wanted || strcasecmp(h->upgrade, "websocket") != 0 ||
        !header_has_token(h->connection, "upgrade") || h->ws_key_len == 0)
      return *status = 400, *why = "a WebSocket upgrade is required\n", TR_ROUTE_REFUSE;
    if (strcmp(h->ws_version, "13") != 0) return *status = 426, *why = "WebSocket version 13 only\n", TR_ROUTE_REFUSE;
    if (origin_foreign(h, p)) return *status = 403, *why = "origin not allowed (http_cors)\n", TR_ROUTE_REFUSE;
  }
  return r;
}

const char *tr_http_reason(int status) {
  switch (status) {
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 413: return "Content Too Large";
  case 415: return "Unsupported Media Type";
  case 426: return "Upgrade Required";
  case 431: return "Request Header Fields Too Large";
  case 503: return "Service Unavailable";
  default: return "Error";
  }
}

char *tr_http_response(int status, const char *content_type, const char *extra, const char *body, size_t body_len,
                       bool keep_alive, bool head_only, size_t *out_len) {
  char head[1024];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n%sCache-Control: no-store\r\n"
                   "X-Content-Type-Options: nosniff\r\n%s\r\n",
                   status, tr_http_reason(status), content_type ? "Content-Type: " : "",
                   content_type ? content_type : "", content_type ? "\r\n" : "", body_len,
                   keep_alive ? "" : "Connection: close\r\n", extra ? extra : "");
  if (n < 0 || (size_t)n >= sizeof head) return NULL;
  size_t total = (size_t)n + (head_only ? 0 : body_len);
  char *out = malloc(total + 1);
  if (out == NULL) return NULL;
  memcpy(out, head, (size_t)n);
  if (!head_only && body_len) memcpy(out + n, body, body_len);
  out[total] = '\0';
  *out_len = total;
  return out;
}
