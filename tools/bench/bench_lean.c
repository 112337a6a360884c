/* bench_lean.c — one poll loop over every connection (bench_lean.h). */
#include "bench_lean.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK_BYTES (256 * 1024) /* one recv takes this much: hundreds of responses */

typedef struct {
  int fd;
  long first, count;  /* its requests: lines[first .. first + count) */
  long sent, done;    /* requests completely written; responses read */
  size_t off;         /* bytes of request `sent` already written */
  bool want_out;      /* the socket was full: wait for POLLOUT */
  uint64_t *sent_ns;  /* per request, when its last byte was written */
  size_t rlen;        /* bytes of an unfinished response kept in rbuf */
  char *rbuf;
} lean_conn_t;

/* Below saturation, answers come back a few at a time, and waking for each
 * would cost the client more than the 0.1 cores it may use.  Paced, it
 * looks at its sockets at most this often: a latency is then read up to
 * this much late, which overstates it, never understates it. */
#define PACED_TICK_NS 1000000u

/* Pacing (bench_lean_run's rate): request k of every connection is due at
 * t0 + k * ns_per_request (the same instant on every connection: one wake
 * sends them all); ns_per_request 0 means unpaced. */
typedef struct {
  uint64_t t0;
  double ns_per_request;
  uint64_t last_poll; /* when the sockets were last looked at */
} pace_t;

static uint64_t due_ns(const pace_t *p, long k) { return p->t0 + (uint64_t)((double)k * p->ns_per_request); }

/* How many of a connection's requests are due at `now`. */
static long due_count(const pace_t *p, uint64_t now) {
  return now < p->t0 ? 0 : (long)((double)(now - p->t0) / p->ns_per_request) + 1;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void) {
  struct rusage u;
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

bench_reply_t bench_reply_status(const char *line, size_t n) {
  const char *result = memmem(line, n, "\"result\"", 8);
  size_t before = result ? (size_t)(result - line) : n;
  if (memmem(line, before, "\"error\"", 7) != NULL) return BENCH_REPLY_ERROR;
  return result ? BENCH_REPLY_RESULT : BENCH_REPLY_OTHER;
}

static int conn_open(lean_conn_t *c, const char *host, int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int one = 1;
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) return -1;
  if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
      connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 || fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  return 0;
}

static void conn_fail(lean_conn_t *c, bench_lean_result_t *r) {
  r->failed += c->count - c->done;
  c->done = c->count;
  close(c->fd);
  c->fd = -1;
}

/* Writes as much of the window (and, paced, of what is due) as the socket
 * takes, in one sendmsg. */
static int conn_send(lean_conn_t *c, char *const *lines, const size_t *lens, long depth, const pace_t *pace) {
  struct iovec iov[BENCH_LEAN_DEPTH_MAX];
  long end = c->done + depth < c->count ? c->done + depth : c->count;
  if (pace->ns_per_request > 0) {
    long due = due_count(pace, now_ns());
    if (due < end) end = due;
  }
  int niov = 0;
  for (long i = c->sent; i < end; i++, niov++) {
    size_t skip = i == c->sent ? c->off : 0;
    iov[niov].iov_base = lines[c->first + i] + skip;
    iov[niov].iov_len = lens[c->first + i] - skip;
  }
  if (niov == 0) return 0;
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
  ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL); /* a closed peer is an error return, not SIGPIPE */
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    c->want_out = true; /* poll says when to try again */
    return 0;
  }
  uint64_t t = now_ns();
  size_t left = (size_t)w;
  for (int k = 0; k < niov && left >= iov[k].iov_len; k++) {
    left -= iov[k].iov_len;
    c->sent_ns[c->sent] = pace->ns_per_request > 0 ? due_ns(pace, c->sent) : t;
    c->sent++;
    c->off = 0;
  }
  c->off += left;
  c->want_out = c->sent < end; /* the socket took less than offered */
  return 0;
}

/* Reads what has arrived and takes the status of every complete response. */
static int conn_recv(lean_conn_t *c, bench_lean_result_t *r) {
  size_t room = BENCH_LEAN_LINE_BYTES_MAX + READ_CHUNK_BYTES - c->rlen;
  ssize_t got = recv(c->fd, c->rbuf + c->rlen, room < READ_CHUNK_BYTES ? room : READ_CHUNK_BYTES, 0);
  if (got < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
  if (got == 0) return -1; /* the daemon closed it with requests unanswered */
  c->rlen += (size_t)got;
  uint64_t t = now_ns();
  char *p = c->rbuf, *end = c->rbuf + c->rlen, *nl;
  while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    if (c->done == c->sent) return -1; /* an answer to nothing we sent */
    size_t n = (size_t)(nl - p);
    bench_reply_t s = bench_reply_status(p, n);
    if (s == BENCH_REPLY_RESULT) r->accepted++;
    else if (s == BENCH_REPLY_ERROR && memmem(p, n, "-32002", 6) != NULL) r->overloaded++;
    else r->refused++;
    r->lat_ns[c->first + c->done] = t - c->sent_ns[c->done];
    c->done++;
    p = nl + 1;
  }
  c->rlen = (size_t)(end - p);
  if (c->rlen >= BENCH_LEAN_LINE_BYTES_MAX) return -1; /* a response longer than any tranched writes */
  memmove(c->rbuf, p, c->rlen);
  return 0;
}

/* Returns the number of connections still running. */
static long pump(lean_conn_t *cs, long conns, char *const *lines, const size_t *lens, long depth, pace_t *pace,
                 struct pollfd *pfd, long *idx, bench_lean_result_t *r) {
  long np = 0;
  uint64_t wake = UINT64_MAX; /* paced: when the next request falls due on a connection with room */
  for (long i = 0; i < conns; i++) {
    lean_conn_t *c = &cs[i];
    if (c->fd < 0) continue;
    if (!c->want_out && conn_send(c, lines, lens, depth, pace) != 0) {
      conn_fail(c, r);
      continue;
    }
    if (pace->ns_per_request > 0 && !c->want_out && c->sent < c->count && c->sent - c->done < depth &&
        due_ns(pace, c->sent) < wake)
      wake = due_ns(pace, c->sent);
    short ev = (short)((c->done < c->sent ? POLLIN : 0) | (c->want_out ? POLLOUT : 0));
    pfd[np] = (struct pollfd){.fd = c->fd, .events = ev};
    idx[np++] = i;
  }
  if (np == 0) return 0;
  uint64_t now = now_ns();
  if (pace->ns_per_request > 0 && now < pace->last_poll + PACED_TICK_NS) {
    uint64_t nap = pace->last_poll + PACED_TICK_NS - now;
    struct timespec ts = {0, (long)nap};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    now = now_ns();
  }
  pace->last_poll = now;
  uint64_t wait = wake == UINT64_MAX ? (uint64_t)BENCH_LEAN_IDLE_MS * 1000000u : wake > now ? wake - now : 0;
  struct timespec timeout = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
  int pr = ppoll(pfd, (nfds_t)np, &timeout, NULL);
  if (pr < 0 && errno != EINTR) pr = 0;
  if (pr <= 0 && wake != UINT64_MAX) return np; /* a request falls due: send it */
  for (long k = 0; k < np; k++) {
    lean_conn_t *c = &cs[idx[k]];
    if (pr == 0) { /* nothing moved for BENCH_LEAN_IDLE_MS (or poll failed): stop rather than hang */
      conn_fail(c, r);
      continue;
    }
    if (pfd[k].revents & POLLOUT) c->want_out = false;
    if ((pfd[k].revents & (POLLIN | POLLERR | POLLHUP)) && conn_recv(c, r) != 0) {
      conn_fail(c, r);
      continue;
    }
    if (c->done == c->count) {
      close(c->fd);
      c->fd = -1;
    }
  }
  long running = 0;
  for (long i = 0; i < conns; i++) running += cs[i].fd >= 0;
  return running;
}

int bench_lean_run(const char *host, int port, char *const *lines, long n, long conns, long depth, double rate,
                   bench_lean_result_t *r) {
  if (n < 1 || conns < 1 || conns > BENCH_LEAN_CONNS_MAX || conns > n || depth < 1 || depth > BENCH_LEAN_DEPTH_MAX ||
      !(rate >= 0))
    return -1;
  r->accepted = r->overloaded = r->refused = r->failed = 0;
  lean_conn_t *cs = calloc((size_t)conns, sizeof *cs);
  size_t *lens = calloc((size_t)n, sizeof *lens);
  uint64_t *sent_ns = calloc((size_t)n, sizeof *sent_ns);
  struct pollfd *pfd = calloc((size_t)conns, sizeof *pfd);
  long *idx = calloc((size_t)conns, sizeof *idx), per = n / conns, opened = 0;
  int rc = cs && lens && sent_ns && pfd && idx ? 0 : -1;
  for (long i = 0; rc == 0 && i < n; i++) lens[i] = strlen(lines[i]);
  for (long i = 0; rc == 0 && i < conns; i++) {
    lean_conn_t *c = &cs[i];
    c->first = i * per;
    c->count = i == conns - 1 ? n - i * per : per;
    c->sent_ns = sent_ns + c->first;
    c->rbuf = malloc(BENCH_LEAN_LINE_BYTES_MAX + READ_CHUNK_BYTES);
    if (c->rbuf == NULL || conn_open(c, host, port) != 0) {
      c->fd = -1;
      r->failed += c->count;
    } else {
      opened++;
    }
  }
  if (rc == 0 && opened == 0) rc = -1;
  double cpu0 = cpu_s();
  uint64_t t0 = now_ns();
  pace_t pace = {t0, rate > 0 ? 1e9 * (double)conns / rate : 0, 0};
  while (rc == 0 && pump(cs, conns, lines, lens, depth, &pace, pfd, idx, r) > 0) {
  }
  r->wall_s = (double)(now_ns() - t0) / 1e9;
  r->client_cpu_s = cpu_s() - cpu0;
  for (long i = 0; cs && i < conns; i++) {
    if (cs[i].fd >= 0) close(cs[i].fd);
    free(cs[i].rbuf);
  }
  free(cs);
  free(lens);
  free(sent_ns);
  free(pfd);
  free(idx);
  return rc;
}
