/* ctl_rpc.c — tranchectl's blocking JSON-RPC 2.0 client: one request line
 * out, one response line back (PROTOCOL.md §5 framing), over TCP to the
 * node's RPC port or over the node's Unix control socket; or, with
 * --rpc http://HOST:PORT, one HTTP/1.1 POST per request on a kept-alive
 * connection (§5.1), for a node behind an HTTP proxy.
 *
 * Where to connect: --rpc HOST:PORT, else the `rpc` (or `listen`) key of
 * DIR/tranche.conf for --datadir DIR, else 127.0.0.1:7707.  Every socket
 * operation times out after CTL_TIMEOUT_MS; a response line may be up to
 * CTL_RESPONSE_BYTES_MAX bytes. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "tr_node.h"


static void set_timeouts(int fd) {
  struct timeval tv = {.tv_sec = CTL_TIMEOUT_MS / 1000, .tv_usec = (CTL_TIMEOUT_MS % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

long ctl_wait_ms = 0;

#define CTL_WAIT_RETRY_MS 100       /* between connection attempts under --wait */

static long elapsed_ms(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void retry_pause(void) {
  struct timespec ts = {.tv_sec = 0, .tv_nsec = CTL_WAIT_RETRY_MS * 1000000L};
  nanosleep(&ts, NULL);
}

/* Nobody listens yet (a daemon still starting): worth another try under --wait. */
static bool not_up_yet(int err) { return err == ECONNREFUSED || err == ENOENT || err == EAGAIN; }

/* --rpc, else $TRANCHE_RPC, else the datadir's config, else the default. */
int ctl_rpc_address(const ctl_opts_t *o, char *out, size_t outlen) {
  const char *rpc = ctl_opt(o, "rpc"), *dir = ctl_opt(o, "datadir"), *env = getenv("TRANCHE_RPC");
  char host[128];
  int port;
  if (rpc) {
    snprintf(out, outlen, "%s", rpc);
    return 0;
  }
  if (env && *env) {
    if (tr_hostport_parse(env, host, sizeof host, &port) != 0) {
      fprintf(stderr, "tranchectl: bad TRANCHE_RPC=%s (want HOST:PORT)\n", env);
      return -1;
    }
    snprintf(out, outlen, "%s", env);
    return 0;
  }
  snprintf(out, outlen, "%s", TR_DEFAULT_LISTEN);
  if (dir == NULL) return 0;
  char path[TR_PATH_MAX], err[512];
  tr_config_t c;
  tr_config_defaults(&c);
  if (tr_path_join(path, sizeof path, dir, TR_CONFIG_FILE) != 0 || tr_config_load(path, 0, &c, err, sizeof err) != 0) {
    fprintf(stderr, "tranchectl: %s\n", err);
    return -1;
  }
  snprintf(out, outlen, "%s", c.rpc[0] ? c.rpc : c.listen);
  return 0;
}

/* One round of connection attempts to every address of addr. */
static int connect_addr_once(const char *addr, char *err, size_t errlen, int *last_errno) {
  char host[128], port_s[16];
  int port;
  *last_errno = 0;
  if (tr_hostport_parse(addr, host, sizeof host, &port) != 0) {
    snprintf(err, errlen, "bad address %s (want HOST:PORT)", addr);
    return -1;
  }
  snprintf(port_s, sizeof port_s, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int rc = getaddrinfo(host, port_s, &hints, &res);
  if (rc != 0) {
    snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
    return -1;
  }
  int fd = -1, e = 0;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      e = errno;
      continue;
    }
    set_timeouts(fd);
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      e = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    snprintf(err, errlen, "cannot connect to %s: %s", addr, strerror(e));
    *last_errno = e;
  }
  return fd;
}

int ctl_connect_addr(const char *addr, char *err, size_t errlen) {
  int e;
  return connect_addr_once(addr, err, errlen, &e);
}

/* Set by ctl_connect_rpc for an http:// address: ctl_call then speaks HTTP. */
static bool rpc_http;
static char rpc_http_host[256];

bool ctl_rpc_is_http(void) { return rpc_http; }

int ctl_connect_rpc(const ctl_opts_t *o) {
  char addr[256], err[512];
  int e;
  if (ctl_rpc_address(o, addr, sizeof addr) != 0) return -1;
  rpc_http = strncmp(addr, "http://", 7) == 0;
  if (rpc_http) { /* http://HOST:PORT[/]: the rest is the address and the Host header */
    memmove(addr, addr + 7, strlen(addr + 7) + 1);
    size_t n = strlen(addr);
    if (n > 0 && addr[n - 1] == '/') addr[n - 1] = '\0';
    snprintf(rpc_http_host, sizeof rpc_http_host, "%s", addr);
  }
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int fd;
  while ((fd = connect_addr_once(addr, err, sizeof err, &e)) < 0 && not_up_yet(e) && elapsed_ms(&t0) < ctl_wait_ms)
    retry_pause();
  if (fd < 0) fprintf(stderr, "tranchectl: %s\n", err);
  return fd;
}

int ctl_connect_control(const char *datadir) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", datadir, TR_CONTROL_SOCKET);
  if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
    fprintf(stderr, "tranchectl: control socket path too long: %s/%s\n", datadir, TR_CONTROL_SOCKET);
    return -1;
  }
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fprintf(stderr, "tranchectl: cannot make a socket: %s\n", strerror(errno));
      return -1;
    }
    set_timeouts(fd);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    int e = errno;
    close(fd);
    if (!not_up_yet(e) || elapsed_ms(&t0) >= ctl_wait_ms) {
      fprintf(stderr, "tranchectl: cannot connect to %s: %s (is tranched running?)\n", sa.sun_path, strerror(e));
      return -1;
    }
    retry_pause();
  }
}

static int send_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n, len -= (size_t)n;
  }
  return 0;
}

/* Reads one line (without "\n") into a heap buffer. */
static char *recv_line(int fd) {
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (n == cap) {
      if (cap >= CTL_RESPONSE_BYTES_MAX) break;
      char *nb = realloc(buf, cap * 2);
      if (nb == NULL) break;
      buf = nb, cap *= 2;
    }
    ssize_t got = recv(fd, buf + n, cap - n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      fprintf(stderr, "tranchectl: %s\n", got == 0 || errno == ECONNRESET ? "the daemon closed the connection (its log says why)" :
              (errno == EAGAIN || errno == EWOULDBLOCK) ? "timed out waiting for the daemon" : strerror(errno));
      free(buf);
      return NULL;
    }
    char *nl = memchr(buf + n, '\n', (size_t)got);
    n += (size_t)got;
    if (nl) {
      *nl = '\0';
      return buf;
    }
  }
  fprintf(stderr, "tranchectl: response line over %u bytes\n", CTL_RESPONSE_BYTES_MAX);
  free(buf);
  return NULL;
}

/* One HTTP/1.1 response's body (JSON-RPC's status is 200 even for an
 * error); NULL with a message for anything else. */
static char *recv_http_body(int fd) {
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap), *body = NULL;
  long status = 0, length = -1;
  while (buf) {
    char *end = n >= 4 ? memmem(buf, n, "\r\n\r\n", 4) : NULL;
    if (end != NULL && body == NULL) { /* the head is in: status and Content-Length */
      *end = '\0';
      if (sscanf(buf, "HTTP/1.%*d %ld", &status) != 1) break;
      for (char *h = strstr(buf, "\r\n"); h != NULL; h = strstr(h + 2, "\r\n"))
        if (strncasecmp(h + 2, "content-length:", 15) == 0) length = strtol(h + 17, NULL, 10);
      body = end + 4;
      if (status != 200 || length < 0 || length > CTL_RESPONSE_BYTES_MAX) break;
    }
    if (body != NULL && (size_t)(buf + n - body) >= (size_t)length) {
      memmove(buf, body, (size_t)length);
      buf[length] = '\0';
      return buf;
    }
    if (n + 1 >= cap) {
      size_t body_at = body ? (size_t)(body - buf) : 0;
      char *nb = cap >= 2 * CTL_RESPONSE_BYTES_MAX ? NULL : realloc(buf, cap * 2);
      if (nb == NULL) break;
      if (body) body = nb + body_at;
      buf = nb, cap *= 2;
    }
    ssize_t got = recv(fd, buf + n, cap - n - 1, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      fprintf(stderr, "tranchectl: %s\n", got == 0 ? "the node closed the HTTP connection" : strerror(errno));
      free(buf);
      return NULL;
    }
    n += (size_t)got;
  }
  if (buf && status != 0 && status != 200) fprintf(stderr, "tranchectl: the node answered HTTP %ld\n", status);
  else fprintf(stderr, "tranchectl: malformed HTTP response from the node\n");
  free(buf);
  return NULL;
}

/* Sends one request text: a line, or an HTTP POST of it. */
static int send_request(int fd, const char *json, size_t len) {
  if (!rpc_http) return send_all(fd, json, len);
  char head[512];
  int h = snprintf(head, sizeof head,
                   "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                   rpc_http_host, len - 1); /* the body is the JSON text, not its newline */
  if (h < 0 || (size_t)h >= sizeof head) return -1;
  return send_all(fd, head, (size_t)h) == 0 && send_all(fd, json, len - 1) == 0 ? 0 : -1;
}

/* Prints an error response; returns the exit code it maps to. */
/* The exit code of an error object, printed when `print`. */
static int error_code(const cJSON *err, bool print) {
  const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(err, "data");
  const cJSON *reason = cJSON_GetObjectItemCaseSensitive(data, "reason");
  const cJSON *detail = cJSON_GetObjectItemCaseSensitive(data, "detail");
  int c = cJSON_IsNumber(code) ? code->valueint : 0;
  const char *m = cJSON_IsString(msg) ? msg->valuestring : "error";
  if (c == RPC_ERR_REFUSED && cJSON_IsString(reason)) {
    if (print) fprintf(stderr, "refused: %s: %s\n", reason->valuestring, cJSON_IsString(detail) ? detail->valuestring : "");
    return CTL_FAILED;
  }
  if (print && cJSON_IsString(detail)) fprintf(stderr, "error %d: %s: %s\n", c, m, detail->valuestring);
  else if (print) fprintf(stderr, "error %d: %s\n", c, m);
  if (c == RPC_ERR_NOT_FOUND) return CTL_FAILED;
  if (c == RPC_ERR_PARAMS) return CTL_USAGE;
  return CTL_DAEMON;
}

int ctl_call(int fd, const char *method, cJSON *params, cJSON **result, cJSON **error) {
  cJSON *req = cJSON_CreateObject();
  cJSON_AddStringToObject(req, "jsonrpc", "2.0");
  cJSON_AddNumberToObject(req, "id", 1);
  cJSON_AddStringToObject(req, "method", method);
  if (params) cJSON_AddItemToObject(req, "params", params);
  ctl_json_digits(req);
  char *line = cJSON_PrintUnformatted(req);
  cJSON_Delete(req);
  if (line == NULL) return CTL_DAEMON;
  size_t len = strlen(line);
  line[len] = '\n'; /* the NUL becomes the frame's newline; we send len + 1 bytes */
  int rc = send_request(fd, line, len + 1);
  free(line);
  if (rc != 0) {
    int e = errno;
    fprintf(stderr, "tranchectl: cannot send to the daemon: %s%s\n", strerror(e),
            e == EPIPE || e == ECONNRESET ? " (it closed the connection without a word: its log says why, e.g. too "
                                            "many open files)" : "");
    return CTL_DAEMON;
  }
  char *resp = rpc_http ? recv_http_body(fd) : recv_line(fd);
  if (resp == NULL) return CTL_DAEMON;
  cJSON *r = cJSON_Parse(resp);
  free(resp);
  cJSON *res = cJSON_DetachItemFromObjectCaseSensitive(r, "result");
  cJSON *err = cJSON_DetachItemFromObjectCaseSensitive(r, "error");
  cJSON_Delete(r);
  if (res && !err) {
    *result = res;
    return CTL_OK;
  }
  rc = err ? error_code(err, error == NULL) : CTL_DAEMON;
  if (!err) fprintf(stderr, "tranchectl: malformed response from the daemon\n");
  cJSON_Delete(res);
  if (error) *error = err;
  else cJSON_Delete(err);
  return rc;
}

int ctl_report_error(const cJSON *err) { return error_code(err, true); }

int ctl_connect_leader(const char *addr) {
  char err[512];
  rpc_http = false; /* the same port speaks both; lines need no Host header */
  int fd = ctl_connect_addr(addr, err, sizeof err);
  if (fd < 0) fprintf(stderr, "tranchectl: %s\n", err);
  return fd;
}

int ctl_rpc(const ctl_opts_t *o, const char *method, cJSON *params, cJSON **result) {
  int fd = ctl_connect_rpc(o);
  if (fd < 0) {
    cJSON_Delete(params);
    return CTL_DAEMON;
  }
  int rc = ctl_call(fd, method, params, result, NULL);
  close(fd);
  return rc;
}
