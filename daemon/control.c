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

#include "cluster.h"
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

/* ---- cluster membership and leadership (thread pool: raft answers on its
 * own thread, and a change may take a few election timeouts) ---- */

#define CLUSTER_OP_TIMEOUT_MS 30000

typedef struct {
  uv_work_t req;
  ctl_conn_t *conn;
  cJSON *id;
  char method[32];
  uint64_t node;
  char raft[128], rpc[128];
  uv_mutex_t mu;
  uv_cond_t cond;
  bool answered;
  char error[256];
} cluster_job_t;

static void cluster_done(void *data, const char *error) {
  cluster_job_t *j = data;
  uv_mutex_lock(&j->mu);
  snprintf(j->error, sizeof j->error, "%s", error ? error : "");
  j->answered = true;
  uv_cond_signal(&j->cond);
  uv_mutex_unlock(&j->mu);
}

static void cluster_work_cb(uv_work_t *req) {
  cluster_job_t *j = req->data;
  tr_cluster_t *cl = g.d->cluster;
  int rc = strcmp(j->method, "cluster.transfer") == 0 ? tr_cluster_transfer(cl, j->node, cluster_done, j)
         : strcmp(j->method, "cluster.add") == 0      ? tr_cluster_add(cl, j->node, j->raft, cluster_done, j)
                                                      : tr_cluster_remove(cl, j->node, cluster_done, j);
  uv_mutex_lock(&j->mu);
  if (rc != 0) snprintf(j->error, sizeof j->error, "%s", tr_strerror(rc)), j->answered = true;
  uint64_t deadline = uv_hrtime() + (uint64_t)CLUSTER_OP_TIMEOUT_MS * 1000000u;
  while (!j->answered && uv_hrtime() < deadline) uv_cond_timedwait(&j->cond, &j->mu, 100000000u);
  if (!j->answered) snprintf(j->error, sizeof j->error, "no answer from raft within %d ms", CLUSTER_OP_TIMEOUT_MS);
  uv_mutex_unlock(&j->mu);
}

static void cluster_after_cb(uv_work_t *req, int status) {
  cluster_job_t *j = req->data;
  ctl_conn_t *c = j->conn;
  c->busy = false;
  bool answered;
  uv_mutex_lock(&j->mu);
  answered = j->answered; /* a late answer from raft would write into freed memory: keep j then */
  uv_mutex_unlock(&j->mu);
  if (c->closed) {
    free(c);
  } else if (status != 0 || j->error[0]) {
    log_warn("control", "%s failed: %s", j->method, status ? uv_strerror(status) : j->error);
    reply(c, j->id, NULL, RPC_INTERNAL, status ? uv_strerror(status) : j->error, false);
    j->id = NULL;
    conn_process(c);
  } else {
    cJSON *r = cJSON_CreateObject();
    tr_cluster_status_t st;
    tr_cluster_status(g.d->cluster, &st);
    cJSON_AddStringToObject(r, "done", j->method);
    add_u64(r, "node", j->node);
    if (st.leader) add_u64(r, "leader", st.leader);
    else cJSON_AddNullToObject(r, "leader");
    log_info("control", "%s of node %llu done", j->method, (unsigned long long)j->node);
    reply(c, j->id, r, 0, NULL, false);
    j->id = NULL;
    conn_process(c);
  }
  cJSON_Delete(j->id);
  if (!answered) return; /* leaked on purpose: raft still holds it */
  uv_mutex_destroy(&j->mu);
  uv_cond_destroy(&j->cond);
  free(j);
}

static bool param_u64(const cJSON *params, const char *name, uint64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740991.0 ||
      v->valuedouble != (double)(uint64_t)v->valuedouble)
    return false;
  *out = (uint64_t)v->valuedouble;
  return true;
}

static void start_cluster_op(ctl_conn_t *c, cJSON *id, const char *method, const cJSON *params) {
  if (g.d->cluster == NULL) {
    reply(c, id, NULL, RPC_INVALID_REQUEST, "this node is not in a cluster", false);
    return;
  }
  cluster_job_t *j = calloc(1, sizeof *j);
  if (j == NULL || uv_mutex_init(&j->mu) != 0 || uv_cond_init(&j->cond) != 0) {
    free(j);
    reply(c, id, NULL, RPC_INTERNAL, "out of memory", false);
    return;
  }
  snprintf(j->method, sizeof j->method, "%s", method);
  const cJSON *raft = cJSON_GetObjectItemCaseSensitive(params, "raft");
  const cJSON *rpc = cJSON_GetObjectItemCaseSensitive(params, "rpc");
  char host[128];
  int port;
  bool ok = strcmp(method, "cluster.transfer") == 0
              ? (cJSON_GetObjectItemCaseSensitive(params, "id") == NULL || param_u64(params, "id", &j->node))
              : param_u64(params, "id", &j->node) && j->node >= 1;
  if (ok && strcmp(method, "cluster.add") == 0) {
    ok = cJSON_IsString(raft) && cJSON_IsString(rpc) && tr_hostport_parse(raft->valuestring, host, sizeof host, &port) == 0 &&
         tr_hostport_parse(rpc->valuestring, host, sizeof host, &port) == 0 && strlen(raft->valuestring) < sizeof j->raft &&
         strlen(rpc->valuestring) < sizeof j->rpc;
    if (ok) {
      snprintf(j->raft, sizeof j->raft, "%s", raft->valuestring);
      snprintf(j->rpc, sizeof j->rpc, "%s", rpc->valuestring);
    }
  }
  if (!ok) {
    uv_mutex_destroy(&j->mu);
    uv_cond_destroy(&j->cond);
    free(j);
    reply(c, id, NULL, RPC_INVALID_PARAMS,
          "cluster.transfer {id?}, cluster.add {id, raft: HOST:PORT, rpc: HOST:PORT}, cluster.remove {id}", false);
    return;
  }
  tr_cluster_status_t st;
  tr_cluster_status(g.d->cluster, &st);
  if (strcmp(method, "cluster.add") == 0 && st.n >= TR_CLUSTER_NODES_MAX) {
    uv_mutex_destroy(&j->mu);
    uv_cond_destroy(&j->cond);
    free(j);
    reply(c, id, NULL, RPC_INVALID_PARAMS, "a cluster has at most 7 nodes (PROTOCOL.md section 8)", false);
    return;
  }
  if (strcmp(method, "cluster.add") == 0) tr_cluster_note_rpc(g.d->cluster, j->node, j->rpc);
  j->conn = c, j->id = id, j->req.data = j;
  if (uv_queue_work(g.d->loop, &j->req, cluster_work_cb, cluster_after_cb) != 0) {
    j->id = NULL;
    uv_mutex_destroy(&j->mu);
    uv_cond_destroy(&j->cond);
    free(j);
    reply(c, id, NULL, RPC_INTERNAL, "cannot queue the cluster change", false);
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
  } else if (strncmp(method->valuestring, "cluster.", 8) == 0 &&
             (strcmp(method->valuestring, "cluster.transfer") == 0 || strcmp(method->valuestring, "cluster.add") == 0 ||
              strcmp(method->valuestring, "cluster.remove") == 0)) {
    start_cluster_op(c, id, method->valuestring, params);
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
    reply(c, id, NULL, RPC_METHOD_NOT_FOUND, "control methods: backup, log.level, shutdown, cluster.transfer, cluster.add, cluster.remove", false);
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
