/* tranche_bench.c — load generator and machine-limit comparison for tranched.
 *
 * Measures, in one run and with the same thread count:
 *   1. the raw libsodium Ed25519 verify rate of this machine (the limit:
 *      verification is ~85% of a transfer's CPU cost), and
 *   2. end-to-end signed transfers/s through a real tranched: pre-signed
 *      transfers (signing is not measured) sent over C connections with
 *      pipelining depth P, every one acknowledged only after its group
 *      commit is fsynced; latency p50/p95/p99/max.
 * and prints end-to-end ÷ raw verify.  --scaling repeats for workers
 * 1..cores and prints the curve.  --rate paces the load (open loop) to
 * measure latency below saturation.
 *
 * By default it spawns its own daemon on a fresh data directory in /tmp
 * (tranchectl init + tranched); --rpc points it at a running one instead
 * (then --admin-key must be that chain's admin key file, and --pid its
 * process id for the per-thread split).
 *
 * After every run (issue #13) it prints where the daemon's CPU went: µs of
 * CPU per accepted tx of every daemon thread (/proc/PID/task/TID/stat over the
 * load), against one verify's CPU measured in the same run, with the serial
 * headroom, efficiency and end-to-end ratios (bench_threads.h), and its own
 * CPU during the load.  --lean drives the load from one poll loop that
 * reads only each response's status (bench_lean.h): ≤ 0.1 cores at full
 * load, so the daemon's cost is not hidden by the client's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_lean.h"
#include "bench_threads.h"
#include "bench_verify.h"

#define SENDERS_MAX 256
#define LINE_MAX_BYTES (64 * 1024)

typedef struct {
  const char *rpc;          /* HOST:PORT of a running daemon, or NULL to spawn */
  const char *admin_key;
  const char *tranched, *tranchectl;
  long txs, conns, depth, workers, rate, senders, pid;
  bool scaling, keep, lean;
  double verify_seconds;
} opts_t;

typedef struct {
  char host[64];
  int port;
} addr_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "tranche-bench: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(1);
}

static void hex(const uint8_t *b, size_t n, char *out) { sodium_bin2hex(out, 2 * n + 1, b, n); }

/* ---- a tiny blocking JSON-RPC client ---- */

typedef struct {
  int fd;
  char buf[LINE_MAX_BYTES];
  size_t len;
} client_t;

static int client_open(client_t *c, const addr_t *a) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->port)};
  if (inet_pton(AF_INET, a->host, &sa.sin_addr) != 1) return -1;
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->len = 0;
  return connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
}

static int client_send(client_t *c, const char *line, size_t len) {
  while (len > 0) {
    ssize_t n = send(c->fd, line, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    line += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Sends iov[0..n) completely (sendmsg may stop part-way). */
static int client_sendv(client_t *c, struct iovec *iov, int n) {
  while (n > 0) {
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    size_t left = (size_t)w;
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

/* Reads one response line into out (NUL-terminated). */
static int client_recv(client_t *c, char *out, size_t outlen) {
  for (;;) {
    char *nl = memchr(c->buf, '\n', c->len);
    if (nl) {
      size_t n = (size_t)(nl - c->buf);
      size_t copy = n < outlen - 1 ? n : outlen - 1;
      memcpy(out, c->buf, copy);
      out[copy] = '\0';
      memmove(c->buf, nl + 1, c->len - n - 1);
      c->len -= n + 1;
      return 0;
    }
    if (c->len == sizeof c->buf) return -1;
    ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    c->len += (size_t)r;
  }
}

/* ---- keys and txs ---- */

typedef struct {
  uint8_t pk[32], sk[64];
  char pk_hex[65];
} key_t_;

static void key_new(key_t_ *k) {
  crypto_sign_keypair(k->pk, k->sk);
  hex(k->pk, 32, k->pk_hex);
}

static int key_load(key_t_ *k, const char *path) {
  FILE *f = fopen(path, "r");
  char line[80];
  uint8_t seed[32];
  size_t got = 0;
  if (f == NULL || fgets(line, sizeof line, f) == NULL) return -1;
  fclose(f);
  if (sodium_hex2bin(seed, 32, line, 64, NULL, &got, NULL) != 0 || got != 32) return -1;
  crypto_sign_seed_keypair(k->pk, k->sk, seed);
  hex(k->pk, 32, k->pk_hex);
  return 0;
}

/* Signs tx and renders the tx.submit request line (with "\n"). */
static char *submit_line(const char *tx, const key_t_ *k, long id) {
  size_t len = strlen(tx);
  uint8_t *msg = malloc(13 + len), sig[64];
  char sig_hex[129];
  memcpy(msg, "TRANCHE/TX/1\n", 13);
  memcpy(msg + 13, tx, len);
  crypto_sign_detached(sig, NULL, msg, 13 + len, k->sk);
  free(msg);
  hex(sig, 64, sig_hex);
  /* tx bytes contain quotes: escape them for the JSON string */
  char *esc = malloc(2 * len + 1), *o = esc;
  for (const char *p = tx; *p; p++) {
    if (*p == '"' || *p == '\\') *o++ = '\\';
    *o++ = *p;
  }
  *o = '\0';
  size_t cap = strlen(esc) + 256;
  char *line = malloc(cap);
  snprintf(line, cap, "{\"jsonrpc\":\"2.0\",\"method\":\"tx.submit\",\"params\":{\"tx\":\"%s\",\"sig\":\"%s\"},\"id\":%ld}\n",
           esc, sig_hex, id);
  free(esc);
  return line;
}

static int call_ok(client_t *c, const char *line) {
  static char resp[LINE_MAX_BYTES];
  if (client_send(c, line, strlen(line)) != 0 || client_recv(c, resp, sizeof resp) != 0) return -1;
  if (strstr(resp, "\"error\"")) {
    fprintf(stderr, "tranche-bench: setup tx refused: %s\n", resp);
    return -1;
  }
  return 0;
}

static int chain_of(client_t *c, char *chain, size_t n) {
  static char resp[LINE_MAX_BYTES];
  const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"node.status\",\"id\":0}\n";
  if (client_send(c, req, strlen(req)) != 0 || client_recv(c, resp, sizeof resp) != 0) return -1;
  char *p = strstr(resp, "\"chain\":\"");
  if (p == NULL) return -1;
  p += 9;
  char *q = strchr(p, '"');
  if (q == NULL || (size_t)(q - p) >= n) return -1;
  memcpy(chain, p, (size_t)(q - p));
  chain[q - p] = '\0';
  return 0;
}

/* ---- the world: an issuer, S senders holding units, one asset ---- */

typedef struct {
  char chain[80];
  char asset[40];
  key_t_ admin, issuer, senders[SENDERS_MAX];
  long n_senders;
} world_t;

static int world_setup(world_t *w, const addr_t *a, long run) {
  client_t *c = malloc(sizeof *c);
  char tx[1024];
  int rc = client_open(c, a) == 0 && chain_of(c, w->chain, sizeof w->chain) == 0 ? 0 : -1;
  snprintf(w->asset, sizeof w->asset, "BENCH-%ld-%ld", (long)getpid(), run);
  key_new(&w->issuer);
  snprintf(tx, sizeof tx, "{\"type\":\"account.open\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"%s-i\",\"account\":\"%s\","
           "\"roles\":[\"issuer\"],\"jurisdiction\":\"US\",\"kyc\":true}", w->chain, w->admin.pk_hex, w->asset, w->issuer.pk_hex);
  char *line = submit_line(tx, &w->admin, 1);
  if (rc == 0) rc = call_ok(c, line);
  free(line);
  snprintf(tx, sizeof tx, "{\"type\":\"asset.create\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"create\",\"asset\":\"%s\","
           "\"name\":\"Benchmark note\",\"kind\":\"bond\",\"currency\":\"USD\",\"principal\":1000000000,\"units\":9000000000000,"
           "\"coupon_bps\":500,\"maturity\":\"2030-12-31\",\"rating\":\"A\",\"risk_weight_pct\":100,\"rules\":{}}",
           w->chain, w->issuer.pk_hex, w->asset);
  line = submit_line(tx, &w->issuer, 2);
  if (rc == 0) rc = call_ok(c, line);
  free(line);
  for (long i = 0; i < w->n_senders && rc == 0; i++) {
    key_t_ *s = &w->senders[i];
    key_new(s);
    snprintf(tx, sizeof tx, "{\"type\":\"account.open\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"%s-s%ld\",\"account\":\"%s\","
             "\"roles\":[\"investor\"],\"jurisdiction\":\"GB\",\"kyc\":true}", w->chain, w->admin.pk_hex, w->asset, i, s->pk_hex);
    line = submit_line(tx, &w->admin, 3);
    rc = call_ok(c, line);
    free(line);
    snprintf(tx, sizeof tx, "{\"type\":\"asset.issue\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"issue-%ld\",\"asset\":\"%s\","
             "\"to\":\"%s\",\"units\":1000000000}", w->chain, w->issuer.pk_hex, i, w->asset, s->pk_hex);
    line = submit_line(tx, &w->issuer, 4);
    if (rc == 0) rc = call_ok(c, line);
    free(line);
  }
  close(c->fd);
  free(c);
  return rc;
}

/* Pre-signs n transfers of 1 unit, sender i % S to sender (i+1) % S;
 * *msg_len is the signed length (domain + tx bytes) of the middle one. */
static char **presign(const world_t *w, long n, size_t *msg_len) {
  char **lines = malloc((size_t)n * sizeof *lines), tx[1024];
  if (lines == NULL) die("%s", "out of memory");
  for (long i = 0; i < n; i++) {
    const key_t_ *from = &w->senders[i % w->n_senders], *to = &w->senders[(i + 1) % w->n_senders];
    snprintf(tx, sizeof tx, "{\"type\":\"transfer\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"t%ld\",\"asset\":\"%s\","
             "\"to\":\"%s\",\"units\":1}", w->chain, from->pk_hex, i, w->asset, to->pk_hex);
    lines[i] = submit_line(tx, from, i);
    if (i == n / 2) *msg_len = 13 + strlen(tx);
  }
  return lines;
}

/* ---- load ---- */

typedef struct {
  const addr_t *addr;
  char **lines;
  long first, count, depth;
  double rate_per_conn;     /* 0 = as fast as possible */
  uint64_t *lat_ns;         /* per request */
  long accepted, overloaded, refused, failed;
} conn_job_t;

/* The response to request `id`: classified from its bytes without copying.
 * An acceptance must be exactly a receipt result carrying our id. */
static void classify(conn_job_t *j, const char *line, size_t n, long id) {
  static const char prefix[] = "{\"jsonrpc\":\"2.0\",\"result\":{\"seq\":";
  char suffix[40];
  int sn = snprintf(suffix, sizeof suffix, ",\"id\":%ld}", id);
  if (n > sizeof prefix - 1 + (size_t)sn && memcmp(line, prefix, sizeof prefix - 1) == 0 &&
      memcmp(line + n - (size_t)sn, suffix, (size_t)sn) == 0)
    j->accepted++;
  else if (memmem(line, n, "-32002", 6)) j->overloaded++;
  else j->refused++;
}

/* Reads once and checks every complete response received so far.  Returns
 * 0, or -1 when the connection failed. */
static int read_responses(client_t *c, conn_job_t *j, size_t *rpos, long *done, long next, const uint64_t *sent) {
  if (*rpos > 0) { /* compact only when a partial line remains */
    memmove(c->buf, c->buf + *rpos, c->len - *rpos);
    c->len -= *rpos;
    *rpos = 0;
  }
  if (c->len == sizeof c->buf) return -1;
  ssize_t r;
  do r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
  while (r < 0 && errno == EINTR);
  if (r <= 0) return -1;
  c->len += (size_t)r;
  uint64_t t = now_ns();
  char *nl;
  while (*done < next && (nl = memchr(c->buf + *rpos, '\n', c->len - *rpos)) != NULL) {
    size_t n = (size_t)(nl - (c->buf + *rpos));
    j->lat_ns[j->first + *done] = t - sent[*done];
    classify(j, c->buf + *rpos, n, j->first + *done);
    *rpos += n + 1;
    (*done)++;
  }
  if (*rpos == c->len) *rpos = c->len = 0;
  return 0;
}

/* Keeps up to `depth` requests in flight; every request the window allows is
 * sent in one sendmsg, and every complete response already received is
 * checked before the next recv, so the client's own CPU per tx stays small
 * (it shares the cores with the daemon).  Paced (open loop), request i is
 * due at t0 + i / rate: the loop waits in poll for a response or the next
 * due time, whichever comes first, and a latency is counted from the due
 * time, so a request held back by a full window or a late client counts
 * its wait too (no coordinated omission). */
static void *conn_main(void *arg) {
  conn_job_t *j = arg;
  client_t *c = malloc(sizeof *c);
  uint64_t *sent = calloc((size_t)j->count, sizeof *sent);
  size_t *lens = calloc((size_t)j->count, sizeof *lens);
  struct iovec *iov = calloc((size_t)j->depth, sizeof *iov);
  if (c == NULL || sent == NULL || lens == NULL || iov == NULL || client_open(c, j->addr) != 0) {
    j->failed = j->count;
    free(c);
    free(sent);
    free(lens);
    free(iov);
    return NULL;
  }
  for (long i = 0; i < j->count; i++) lens[i] = strlen(j->lines[j->first + i]);
  long next = 0, done = 0;
  size_t rpos = 0; /* start of the first unread response in c->buf */
  uint64_t t0 = now_ns();
  bool paced = j->rate_per_conn > 0;
  while (done < j->count) {
    int niov = 0;
    uint64_t now = now_ns(), due = 0;
    while (next < j->count && next - done < j->depth) {
      due = paced ? t0 + (uint64_t)((double)next * 1e9 / j->rate_per_conn) : now;
      if (due > now) break;
      iov[niov].iov_base = j->lines[j->first + next];
      iov[niov].iov_len = lens[next];
      niov++;
      sent[next] = due;
      next++;
    }
    if (niov > 0 && client_sendv(c, iov, niov) != 0) goto fail;
    bool more_due = paced && next < j->count && next - done < j->depth;
    int timeout_ms = -1;
    if (more_due) {
      uint64_t wait_ns = due > now_ns() ? due - now_ns() : 0;
      timeout_ms = (int)((wait_ns + 999999) / 1000000);
    }
    if (done == next) { /* nothing in flight: sleep until the next one is due */
      if (more_due && timeout_ms > 0) {
        struct timespec ts = {0, (long)(due > now_ns() ? due - now_ns() : 0)};
        nanosleep(&ts, NULL);
      }
      continue;
    }
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr < 0 && errno != EINTR) goto fail;
    if (pr > 0 && read_responses(c, j, &rpos, &done, next, sent) != 0) goto fail;
  }
  goto out;
fail:
  j->failed += j->count - done;
out:
  close(c->fd);
  free(c);
  free(sent);
  free(lens);
  free(iov);
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  double tps, p50_ms, p95_ms, p99_ms, max_ms;
  double wall_s, client_cpu_s; /* the load's wall-clock time and this process's CPU during it */
  long accepted, overloaded, refused, failed;
} load_result_t;

static double process_cpu_s(void) {
  struct rusage u;
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* Rate and latency percentiles; sorts lat (n per-request latencies). */
static void load_finish(load_result_t *r, uint64_t *lat, long n) {
  qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
  r->tps = r->wall_s > 0 ? (double)r->accepted / r->wall_s : 0;
  r->p50_ms = (double)lat[n / 2] / 1e6;
  r->p95_ms = (double)lat[(long)((double)n * 0.95)] / 1e6;
  r->p99_ms = (double)lat[(long)((double)n * 0.99)] / 1e6;
  r->max_ms = (double)lat[n - 1] / 1e6;
}

/* One thread per connection (the default client; --rate paces it). */
static load_result_t run_load(const addr_t *a, char **lines, long n, long conns, long depth, long rate) {
  pthread_t *th = calloc((size_t)conns, sizeof *th);
  conn_job_t *jobs = calloc((size_t)conns, sizeof *jobs);
  uint64_t *lat = calloc((size_t)n, sizeof *lat);
  if (th == NULL || jobs == NULL || lat == NULL) die("%s", "out of memory");
  long per = n / conns;
  double cpu0 = process_cpu_s();
  uint64_t t0 = now_ns();
  for (long i = 0; i < conns; i++) {
    jobs[i] = (conn_job_t){a, lines, i * per, i == conns - 1 ? n - i * per : per, depth,
                           rate > 0 ? (double)rate / (double)conns : 0, lat, 0, 0, 0, 0};
    if (pthread_create(&th[i], NULL, conn_main, &jobs[i]) != 0) die("%s", "cannot start a connection thread");
  }
  load_result_t r = {0};
  for (long i = 0; i < conns; i++) {
    pthread_join(th[i], NULL);
    r.accepted += jobs[i].accepted;
    r.overloaded += jobs[i].overloaded;
    r.refused += jobs[i].refused;
    r.failed += jobs[i].failed;
  }
  r.wall_s = (double)(now_ns() - t0) / 1e9;
  r.client_cpu_s = process_cpu_s() - cpu0;
  load_finish(&r, lat, n);
  free(th);
  free(jobs);
  free(lat);
  return r;
}

/* One poll loop for every connection, status only (--lean). */
static load_result_t run_load_lean(const addr_t *a, char **lines, long n, long conns, long depth, long rate) {
  bench_lean_result_t lr = {.lat_ns = calloc((size_t)n, sizeof(uint64_t))};
  if (lr.lat_ns == NULL) die("%s", "out of memory");
  if (bench_lean_run(a->host, a->port, lines, n, conns, depth, (double)rate, &lr) != 0)
    die("%s", "the lean client could not connect");
  load_result_t r = {.wall_s = lr.wall_s, .client_cpu_s = lr.client_cpu_s, .accepted = lr.accepted,
                     .overloaded = lr.overloaded, .refused = lr.refused, .failed = lr.failed};
  load_finish(&r, lr.lat_ns, n);
  free(lr.lat_ns);
  return r;
}

/* ---- a daemon of our own ---- */

typedef struct {
  pid_t pid;
  char dir[256];
  addr_t addr;
} spawned_t;

static int run_cmd(char *const argv[]) {
  pid_t p = fork();
  if (p == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);
    execv(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  waitpid(p, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  bind(fd, (struct sockaddr *)&sa, sizeof sa);
  getsockname(fd, (struct sockaddr *)&sa, &len);
  close(fd);
  return ntohs(sa.sin_port);
}

static int spawn_daemon(const opts_t *o, long workers, spawned_t *s, key_t_ *admin) {
  char data[300], keyf[300], listen[64], wbuf[16];
  snprintf(s->dir, sizeof s->dir, "/tmp/tranche-bench-XXXXXX");
  if (mkdtemp(s->dir) == NULL) return -1;
  snprintf(data, sizeof data, "%s/data", s->dir);
  snprintf(keyf, sizeof keyf, "%s/admin.key", s->dir);
  char *init[] = {(char *)o->tranchectl, "init", "--datadir", data, "--chain", "bench.example/tranche",
                  "--admin-out", keyf, NULL};
  if (run_cmd(init) != 0 || key_load(admin, keyf) != 0) return -1;
  snprintf(s->addr.host, sizeof s->addr.host, "127.0.0.1");
  s->addr.port = free_port();
  snprintf(listen, sizeof listen, "127.0.0.1:%d", s->addr.port);
  snprintf(wbuf, sizeof wbuf, "%ld", workers);
  s->pid = fork();
  if (s->pid == 0) {
    char *argv[] = {(char *)o->tranched, "--datadir", data, "--listen", listen, "--workers", wbuf,
                    "--log-level", "warn", NULL};
    execv(argv[0], argv);
    _exit(127);
  }
  for (int i = 0; i < 100; i++) { /* wait until it answers */
    client_t *c = malloc(sizeof *c);
    char chain[80];
    int ok = client_open(c, &s->addr) == 0 && chain_of(c, chain, sizeof chain) == 0;
    if (c->fd >= 0) close(c->fd);
    free(c);
    if (ok) return 0;
    usleep(50000);
  }
  return -1;
}

static void stop_daemon(spawned_t *s, bool keep) {
  int st = 0;
  kill(s->pid, SIGTERM);
  waitpid(s->pid, &st, 0);
  if (!keep) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0) fprintf(stderr, "tranche-bench: could not remove %s\n", s->dir);
  } else {
    printf("kept data directory %s\n", s->dir);
  }
}

/* ---- one measurement ---- */

typedef struct {
  double verify_rate;       /* measured just before the load: the ratio's denominator */
  double verify_after;      /* and again just after it, to show how much the machine drifted */
  double one_verify_us;     /* CPU of one verify on one thread, after the load */
  double busy_verify_us;    /* CPU of one verify while W threads verify at once (the rate before the load) */
  size_t msg_len;           /* signed bytes of a transfer: what the verifies above check */
  load_result_t load;
  bool have_split;          /* the daemon's pid is known and /proc was readable */
  bench_split_t split;
} measure_t;

static double verify_rate_or_die(long threads, double seconds, size_t msg_len, double *cpu_us) {
  double r = bench_verify_rate(threads, seconds, msg_len, cpu_us);
  if (r <= 0) die("%s", "cannot measure the raw verify rate");
  return r;
}

static int measure(const opts_t *o, long workers, long run, measure_t *m) {
  world_t *w = calloc(1, sizeof *w);
  spawned_t s = {0};
  addr_t addr;
  w->n_senders = o->senders;
  if (o->rpc) {
    char *colon = strrchr(o->rpc, ':');
    if (colon == NULL || key_load(&w->admin, o->admin_key) != 0) die("need --rpc HOST:PORT and --admin-key FILE (%s)", o->rpc);
    snprintf(addr.host, sizeof addr.host, "%.*s", (int)(colon - o->rpc), o->rpc);
    addr.port = atoi(colon + 1);
  } else {
    if (spawn_daemon(o, workers, &s, &w->admin) != 0) die("cannot start %s", o->tranched);
    addr = s.addr;
  }
  if (world_setup(w, &addr, run) != 0) die("setup failed against %s", o->rpc ? o->rpc : "the spawned daemon");
  char **lines = presign(w, o->txs, &m->msg_len);
  long pid = o->rpc ? o->pid : (long)s.pid;
  static bench_threads_t before, after; /* 256 threads each: too big for the stack */
  m->verify_rate = verify_rate_or_die(workers, o->verify_seconds, m->msg_len, &m->busy_verify_us);
  bool sampled = pid > 0 && bench_threads_sample((int)pid, &before) == 0;
  m->load = o->lean ? run_load_lean(&addr, lines, o->txs, o->conns, o->depth, o->rate)
                    : run_load(&addr, lines, o->txs, o->conns, o->depth, o->rate);
  sampled = sampled && bench_threads_sample((int)pid, &after) == 0;
  if (pid > 0 && !sampled) fprintf(stderr, "tranche-bench: cannot read /proc/%ld: no per-thread split\n", pid);
  m->verify_after = verify_rate_or_die(workers, o->verify_seconds, m->msg_len, NULL);
  m->one_verify_us = bench_verify_cpu_us(o->verify_seconds, m->msg_len);
  m->have_split = sampled && bench_split(&before, &after, m->load.accepted, m->one_verify_us, &m->split) == 0;
  for (long i = 0; i < o->txs; i++) free(lines[i]);
  free(lines);
  if (!o->rpc) stop_daemon(&s, o->keep);
  free(w);
  return 0;
}

static void print_measure(long workers, const measure_t *m, const opts_t *o) {
  /* On a shared machine the verify rate drifts; the ratio against the
   * faster of the two measurements is the conservative figure. */
  double fast = m->verify_after > m->verify_rate ? m->verify_after : m->verify_rate;
  printf("workers=%ld  raw verify %.0f/s (after the load %.0f/s)  end-to-end %.0f tx/s  ratio %.2f (%.2f against the "
         "faster)  p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  "
         "max %.2f ms  (accepted %ld, overloaded %ld, refused %ld, failed %ld; %ld conns x depth %ld%s)\n",
         workers, m->verify_rate, m->verify_after, m->load.tps, m->load.tps / m->verify_rate, m->load.tps / fast,
         m->load.p50_ms, m->load.p95_ms,
         m->load.p99_ms, m->load.max_ms, m->load.accepted, m->load.overloaded, m->load.refused, m->load.failed,
         o->conns, o->depth, o->rate ? ", paced" : "");
  printf("client (%s): %.3f s CPU over %.2f s = %.3f cores\n", o->lean ? "lean, one poll loop" : "a thread per connection",
         m->load.client_cpu_s, m->load.wall_s, m->load.wall_s > 0 ? m->load.client_cpu_s / m->load.wall_s : 0);
  if (m->have_split) {
    bench_split_print(stdout, &m->split);
    /* What the efficiency's 1-thread verify leaves out: verifying on every
     * core at once costs each verify more CPU (shared cores, a time-shared
     * host), and the workers pay that too. */
    printf("one verify while %ld threads verify at once: %.1f us CPU (x%.2f one alone); tr-verify-* beyond that: "
           "%.1f us a tx; efficiency against it %.2f\n", workers, m->busy_verify_us,
           m->busy_verify_us / m->one_verify_us, m->split.verify_us_per_tx - m->busy_verify_us,
           m->busy_verify_us / m->split.process_us_per_tx);
  } else {
    printf("no per-thread split (%s)\n", m->load.accepted < 1 ? "nothing accepted" : "give --pid with --rpc");
    printf("one verify: %.1f us CPU (libsodium, 1 thread, same run)\n", m->one_verify_us);
  }
  printf("end to end %.2f  (%.0f tx/s / raw verify on %ld threads, same run; %.2f against the faster)  "
         "signed message %zu bytes\n", m->load.tps / m->verify_rate, m->load.tps, workers, m->load.tps / fast,
         m->msg_len);
  fflush(stdout);
}

static void usage(void) {
  fprintf(stderr,
          "usage: tranche-bench [--txs N] [--conns C] [--depth P] [--workers W] [--senders S]\n"
          "                     [--rate TX_PER_S] [--lean] [--scaling] [--verify-seconds S] [--keep]\n"
          "                     [--rpc HOST:PORT --admin-key FILE [--pid PID]] [--tranched PATH --tranchectl PATH]\n"
          "Defaults: 20000 txs, 8 conns, depth 64, workers = cores, 64 senders; spawns its own daemon.\n"
          "  --lean            one thread, one poll loop over every connection, pre-built lines, only\n"
          "                    each response's status read (\"result\" or \"error\" first): <= 0.1 cores\n"
          "                    at full load (printed as `client ... cores`); with --rate, paced the same\n"
          "                    way as the default client (open loop, latency from each request's due time)\n"
          "  --depth P         requests in flight per connection (at most %d with --lean)\n"
          "  --verify-seconds S  length of each raw verify measurement (2 threads before and after the\n"
          "                    load, 1 thread for one verify's CPU); default 2\n"
          "  --pid PID         with --rpc: the daemon's process id, for the per-thread split\n"
          "After every run: raw verify rate, end-to-end tx/s and latency, this client's CPU, and the\n"
          "daemon's CPU per accepted tx of each thread (/proc/PID/task/*/stat over the load; tr-verify-*\n"
          "also as a group; daemon total) against one verify's CPU in the same run, with\n"
          "  serial headroom = one verify / the busiest thread that is not tr-verify-*\n"
          "  efficiency      = one verify / the daemon's total\n"
          "  end to end      = tx/s / the raw verify rate on W threads before the load\n",
          BENCH_LEAN_DEPTH_MAX);
  exit(2);
}

static void default_paths(opts_t *o) {
  static char d[4096], c[4096];
  char self[4000];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash) *slash = '\0'; /* …/build/tools/bench */
  snprintf(d, sizeof d, "%s/../../daemon/tranched", self);
  snprintf(c, sizeof c, "%s/../tranchectl", self);
  o->tranched = d;
  o->tranchectl = c;
}

int main(int argc, char **argv) {
  opts_t o = {.txs = 20000, .conns = 8, .depth = 64, .workers = sysconf(_SC_NPROCESSORS_ONLN), .senders = 64,
              .verify_seconds = 2.0};
  default_paths(&o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--version") == 0) {
      printf("tranche-bench %s\n", TR_VERSION);
      return 0;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) usage();
    if (strcmp(a, "--scaling") == 0) o.scaling = true;
    else if (strcmp(a, "--lean") == 0) o.lean = true;
    else if (strcmp(a, "--keep") == 0) o.keep = true;
    else if (v == NULL) usage();
    else if (strcmp(a, "--txs") == 0) o.txs = atol(v), i++;
    else if (strcmp(a, "--conns") == 0) o.conns = atol(v), i++;
    else if (strcmp(a, "--depth") == 0) o.depth = atol(v), i++;
    else if (strcmp(a, "--workers") == 0) o.workers = atol(v), i++;
    else if (strcmp(a, "--senders") == 0) o.senders = atol(v), i++;
    else if (strcmp(a, "--rate") == 0) o.rate = atol(v), i++;
    else if (strcmp(a, "--pid") == 0) o.pid = atol(v), i++;
    else if (strcmp(a, "--verify-seconds") == 0) o.verify_seconds = atof(v), i++;
    else if (strcmp(a, "--rpc") == 0) o.rpc = v, i++;
    else if (strcmp(a, "--admin-key") == 0) o.admin_key = v, i++;
    else if (strcmp(a, "--tranched") == 0) o.tranched = v, i++;
    else if (strcmp(a, "--tranchectl") == 0) o.tranchectl = v, i++;
    else usage();
  }
  if (sodium_init() < 0 || o.txs < 1 || o.conns < 1 || o.depth < 1 || o.workers < 1 || o.workers > 64 ||
      o.senders < 2 || o.senders > SENDERS_MAX || o.conns > o.txs || o.verify_seconds <= 0 ||
      (o.lean && (o.depth > BENCH_LEAN_DEPTH_MAX || o.conns > BENCH_LEAN_CONNS_MAX)))
    usage();
  signal(SIGPIPE, SIG_IGN);
  printf("tranche-bench: %ld signed transfers, %ld connections, depth %ld, durable acknowledgements%s\n", o.txs,
         o.conns, o.depth, o.lean ? ", lean client" : "");
  if (!o.scaling) {
    measure_t m;
    measure(&o, o.workers, 0, &m);
    print_measure(o.workers, &m, &o);
    return 0;
  }
  measure_t first = {0};
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  for (long w = 1; w <= cores; w++) {
    measure_t m;
    measure(&o, w, w, &m);
    print_measure(w, &m, &o);
    if (w == 1) first = m;
    else
      printf("scaling 1->%ld: end-to-end x%.2f, raw verify x%.2f, tracking %.2f\n", w, m.load.tps / first.load.tps,
             m.verify_rate / first.verify_rate, (m.load.tps / first.load.tps) / (m.verify_rate / first.verify_rate));
  }
  return 0;
}
