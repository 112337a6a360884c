/* control.c — the Unix control socket (see control.h): accept, line framing,
 * the three methods, and the backup on the thread pool.
 *
 * Workload: an operator's occasional command.  One request per connection
 * is handled at a time: while a backup runs the connection is not read, so
 * at most TR_CONTROL_CONNECTIONS_MAX backups are ever in flight.  Only the
 * owner of the data directory can connect (socket 0600 in a 0700 dir), so
 * requests are trusted like the command line, but still bounded and checked.
 */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "tr_err.h"
#include "tr_store.h"

#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_INTERNAL -32603

typedef struct ctl_conn {
  uv_pipe_t pipe;
  struct ctl_conn *next;
  size_t len;
  bool busy;          /* a backup is running for this connection */
  bool closing;       /* uv_close called; freed when closed and not busy */
  bool closed;
  bool reading;
  char buf[TR_CONTROL_LINE_BYTES_MAX];
} ctl_conn_t;

typedef struct {
  uv_work_t req;
  ctl_conn_t *conn;
  cJSON *id;
  char db[TR_PATH_MAX], to[TR_PATH_MAX], err[512];
  int rc;
  uint64_t size, bytes;
} backup_job_t;

typedef struct {
  uv_write_t req;
  tr_daemon_t *d;
  bool stop_after;    /* the answer to `shutdown`: stop once it is written */
  char *text;
} ctl_write_t;

static struct {
  tr_daemon_t *d;
  uv_pipe_t listener;
  bool listening;
  ctl_conn_t *conns;
  size_t n_conns;
} g;

static void conn_process(ctl_conn_t *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* ---- lifetime ---- */

static void conn_unlink(ctl_conn_t *c) {
  for (ctl_conn_t **p = &g.conns; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      g.n_conns--;
      return;
    }
}

static void conn_closed_cb(uv_handle_t *h) {
  ctl_conn_t *c = h->data;
  c->closed = true;
  if (!c->busy) free(c);
}

static void conn_close(ctl_conn_t *c) {
  if (c->closing) return;
  c->closing = true;
  conn_unlink(c);
  uv_close((uv_handle_t *)&c->pipe, conn_closed_cb);
}

/* ---- answers ---- */

static void write_cb(uv_write_t *req, int status) {
  ctl_write_t *w = (ctl_write_t *)req;
  (void)status;
  if (w->stop_after) tr_daemon_request_stop(w->d);
  free(w->text);
  free(w);
}

/* Sends {"jsonrpc","id",result|error}; takes ownership of result and id. */
static void reply(ctl_conn_t *c, cJSON *id, cJSON *result, int code, const char *message, bool stop_after) {
  cJSON *r = cJSON_CreateObject();
  cJSON_AddStringToObject(r, "jsonrpc", "2.0");
  cJSON_AddItemToObject(r, "id", id ? id : cJSON_CreateNull());
  if (result) cJSON_AddItemToObject(r, "result", result);
  else {
    cJSON *e = cJSON_AddObjectToObject(r, "error");
    cJSON_AddNumberToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
  }
  ctl_write_t *w = calloc(1, sizeof *w);
  char *text = cJSON_PrintUnformatted(r);
  cJSON_Delete(r);
  size_t len = text ? strlen(text) : 0;
  char *line = text ? realloc(text, len + 2) : NULL;
  if (w == NULL || line == NULL || c->closing) {
    free(w);
    free(line ? line : text);
    if (stop_after) tr_daemon_request_stop(g.d);
    return;
  }
  memcpy(line + len, "\n", 2);
  w->d = g.d, w->stop_after = stop_after, w->text = line;
  uv_buf_t buf = uv_buf_init(line, (unsigned)len + 1);
  if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, write_cb) != 0) write_cb(&w->req, -1);
}

static void add_u64(cJSON *o, const char *name, uint64_t v) {
  char digits[24];
  snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
  cJSON_AddItemToObject(o, name, cJSON_CreateRaw(digits));
}

/* ---- backup (thread pool) ---- */

static void backup_work_cb(uv_work_t *req) {
  backup_job_t *j = req->data;
  j->rc = tr_store_backup(j->db, j->to, j->err, sizeof j->err);
  if (j->rc != 0) return;
  tr_store_t *s = NULL;
  uint8_t hash[32];
  uint64_t time;
  struct stat st;
  if (tr_store_open(j->to, TR_STORE_READONLY, &s, j->err, sizeof j->err) == 0) {
    tr_store_head(s, &j->size, hash, &time);
    tr_store_close(s);
  }
  if (stat(j->to, &st) == 0) j->bytes = (uint64_t)st.st_size;
}

static void backup_after_cb(uv_work_t *req, int status) {
  backup_job_t *j = req->data;
  ctl_conn_t *c = j->conn;
  c->busy = false;
  if (c->closed) {
    free(c);
  } else if (status != 0 || j->rc != 0) {
    log_warn("control", "backup to %s failed: %s", j->to, status ? uv_strerror(status) : j->err);
    reply(c, j->id, NULL, RPC_INTERNAL, status ? uv_strerror(status) : j->err, false);
    j->id = NULL;
    conn_process(c);
  } else {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "path", j->to);
    add_u64(r, "size", j->size);
    add_u64(r, "bytes", j->bytes);
    log_info("control", "backup of %llu entries written to %s", (unsigned long long)j->size, j->to);
    reply(c, j->id, r, 0, NULL, false);
    j->id = NULL;
    conn_process(c);
  }
  cJSON_Delete(j->id);
  free(j);
}

static void start_backup(ctl_conn_t *c, cJSON *id, const cJSON *params) {
  const cJSON *to = cJSON_GetObjectItemCaseSensitive(params, "to");
  if (!cJSON_IsString(to) || to->valuestring[0] != '/' || strlen(to->valuestring) >= TR_PATH_MAX) {
    reply(c, id, NULL, RPC_INVALID_PARAMS, "backup needs `to`: an absolute path", false);
    return;
  }
  backup_job_t *j = calloc(1, sizeof *j);
  if (j == NULL || tr_path_join(j->db, sizeof j->db, g.d->datadir, TR_DB_FILE) != 0) {
    free(j);
    reply(c, id, NULL, RPC_INTERNAL, "out of memory", false);
    return;
  }
  snprintf(j->to, sizeof j->to, "%s", to->valuestring);
  j->conn = c, j->id = id, j->req.data = j;
  if (uv_queue_work(g.d->loop, &j->req, backup_work_cb, backup_after_cb) != 0) {
    j->id = NULL;
    free(j);
    reply(c, id, NULL, RPC_INTERNAL, "cannot queue the backup", false);
    return;
  }
  c->busy = true;
}

/* ---- requests ---- */

static void handle_request(ctl_conn_t *c, const cJSON *req) {
  const cJSON *method = cJSON_GetObjectItemCaseSensitive(req, "method");
  const cJSON *params = cJSON_GetObjectItemCaseSensitive(req, "params");
  cJSON *id = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(req, "id"), 1);
  if (!cJSON_IsString(method) || (params && !cJSON_IsObject(params))) {
    reply(c, id, NULL, RPC_INVALID_REQUEST, "want {jsonrpc, id, method, params: {}}", false);
  } else if (strcmp(method->valuestring, "backup") == 0) {
    start_backup(c, id, params);
  } else if (strcmp(method->valuestring, "log.level") == 0) {
    const cJSON *level = cJSON_GetObjectItemCaseSensitive(params, "level");
    if (!cJSON_IsString(level) || tr_log_set_level_name(level->valuestring) != 0) {
      reply(c, id, NULL, RPC_INVALID_PARAMS, "level must be error, warn, info or debug", false);
      return;
    }
    log_info("control", "log level set to %s", level->valuestring);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "level", level->valuestring);
    reply(c, id, r, 0, NULL, false);
  } else if (strcmp(method->valuestring, "shutdown") == 0) {
    log_info("control", "shutdown requested on the control socket");
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "stopping", true);
    reply(c, id, r, 0, NULL, true);
  } else {
    reply(c, id, NULL, RPC_METHOD_NOT_FOUND, "control methods: backup, log.level, shutdown", false);
  }
}

/* Handles complete lines until one goes asynchronous (a backup). */
static void conn_process(ctl_conn_t *c) {
  while (!c->busy && !c->closing) {
    char *nl = memchr(c->buf, '\n', c->len);
    if (nl == NULL) break;
    size_t line_len = (size_t)(nl - c->buf);
    cJSON *req = cJSON_ParseWithLength(c->buf, line_len);
    if (req == NULL) reply(c, NULL, NULL, RPC_PARSE_ERROR, "not JSON", false);
    else handle_request(c, req);
    cJSON_Delete(req);
    c->len -= line_len + 1;
    memmove(c->buf, nl + 1, c->len);
  }
  if (c->closing) return;
  if (c->len == sizeof c->buf) {
    reply(c, NULL, NULL, RPC_INVALID_REQUEST, "line too long", false);
    conn_close(c);
  } else if (c->busy && c->reading) {
    uv_read_stop((uv_stream_t *)&c->pipe);
    c->reading = false;
  } else if (!c->busy && !c->reading) {
    c->reading = uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) == 0;
    if (!c->reading) conn_close(c);
  }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ctl_conn_t *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ctl_conn_t *c = s->data;
  (void)buf;
  if (n < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)n;
  conn_process(c);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status != 0) { /* EMFILE: libuv closes the pending connection; the client sees it closed */
    log_warn("control", "cannot accept a control connection: %s", uv_strerror(status));
    return;
  }
  ctl_conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) return;
  if (uv_pipe_init(g.d->loop, &c->pipe, 0) != 0) {
    free(c);
    return;
  }
  c->pipe.data = c;
  c->next = g.conns, g.conns = c, g.n_conns++;
  c->reading = uv_accept(server, (uv_stream_t *)&c->pipe) == 0 && g.n_conns <= TR_CONTROL_CONNECTIONS_MAX &&
               uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) == 0;
  if (!c->reading) {
    if (g.n_conns > TR_CONTROL_CONNECTIONS_MAX) log_warn("control", "too many control connections; closing one");
    conn_close(c);
  }
}

/* ---- start / close ---- */

/* A socket file nobody answers on is stale; one that answers is a live node. */
static int remove_stale(const char *path, char *err, size_t errlen) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    snprintf(err, errlen, "control socket path %s is longer than %zu bytes", path, sizeof sa.sun_path - 1);
    return TR_ELIMIT;
  }
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int live = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  if (fd >= 0) close(fd);
  if (live) {
    snprintf(err, errlen, "another tranched answers on %s", path);
    return TR_EEXISTS;
  }
  if (unlink(path) != 0 && errno != ENOENT) {
    snprintf(err, errlen, "cannot remove stale %s: %s", path, strerror(errno));
    return TR_EIO;
  }
  return 0;
}

/* The data directory holds the node key and the socket: owner only. */
static void restrict_datadir(const char *dir) {
  struct stat st;
  if (stat(dir, &st) == 0 && (st.st_mode & 077)) {
    log_warn("control", "data directory %s had mode %03o; setting 0700", dir, (unsigned)(st.st_mode & 0777));
    chmod(dir, 0700);
  }
}

int tr_control_start(tr_daemon_t *d, char *err, size_t errlen) {
  char path[TR_PATH_MAX];
  g.d = d;
  int rc = tr_path_join(path, sizeof path, d->datadir, TR_CONTROL_SOCKET);
  if (rc == 0) rc = remove_stale(path, err, errlen);
  if (rc != 0) return rc;
  restrict_datadir(d->datadir);
  rc = uv_pipe_init(d->loop, &g.listener, 0);
  if (rc != 0) {
    snprintf(err, errlen, "control socket: %s", uv_strerror(rc));
    return rc;
  }
  g.listening = true;
  rc = uv_pipe_bind(&g.listener, path);
  if (rc == 0 && chmod(path, 0600) != 0) rc = UV_EPERM;
  if (rc == 0) rc = uv_listen((uv_stream_t *)&g.listener, TR_CONTROL_CONNECTIONS_MAX, on_connection);
  if (rc != 0) {
    snprintf(err, errlen, "control socket %s: %s", path, uv_strerror(rc));
    tr_control_close(d);
    return rc;
  }
  log_info("control", "control socket %s", path);
  return 0;
}

void tr_control_close(tr_daemon_t *d) {
  (void)d;
  if (g.listening && !uv_is_closing((uv_handle_t *)&g.listener)) uv_close((uv_handle_t *)&g.listener, NULL);
  g.listening = false;
  while (g.conns) conn_close(g.conns);
}
