/* test_bench.c — the benchmarks' instruments (tools/bench, issue #13): the
 * /proc stat parser and per-thread split, the lean client's status reading
 * and its poll loop against a loopback server, the one-verify cost. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_lean.h"
#include "bench_threads.h"
#include "bench_verify.h"
#include "tr_test.h"

static void test_stat_parse(void) {
  char name[BENCH_THREAD_NAME_BYTES];
  uint64_t ticks = 0, sys = 0;
  const char *line = "4242 (tr-verify-0) S 1 4242 4242 0 -1 4194368 512 0 0 0 150 25 0 0 20 0 9 0 100 0 0\n";
  TR_CHECK(bench_stat_parse(line, name, &ticks, &sys) == 0, "a thread's stat line parses");
  TR_CHECK_EQ_STR(name, "tr-verify-0", "its name");
  TR_CHECK_EQ_INT(ticks, 175, "utime + stime (fields 14 and 15)");
  TR_CHECK_EQ_INT(sys, 25, "stime alone (field 15)");
  TR_CHECK(bench_stat_parse("7 (a) b) (c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0\n", name, &ticks, NULL) == 0 &&
               strcmp(name, "a) b) (c") == 0 && ticks == 7,
           "a name holding ')' and '(' ends at the last ')'");
  TR_CHECK(bench_stat_parse("7 (x) R 1 7 7 0 -1 0 0 0 0 0 3\n", name, &ticks, &sys) == -1, "a line cut before stime: -1");
  TR_CHECK(bench_stat_parse("7 (x) R 1 7 7 0 -1 0 0 0 0 0 -3 4 0\n", name, &ticks, &sys) == -1, "a negative count: -1");
  TR_CHECK(bench_stat_parse("7 (x) R 1 7 7 0 -1 0 0 0 0 0 3x 4 0\n", name, &ticks, &sys) == -1, "a non-number: -1");
  TR_CHECK(bench_stat_parse("no parentheses", name, &ticks, &sys) == -1, "no comm: -1");
}

static void set(bench_threads_t *s, size_t i, int tid, const char *name, uint64_t ticks) {
  s->t[i].tid = tid;
  snprintf(s->t[i].name, sizeof s->t[i].name, "%s", name);
  s->t[i].cpu_ticks = ticks;
  s->t[i].sys_ticks = ticks / 4; /* a quarter of it in the kernel */
  if (s->n < i + 1) s->n = i + 1;
}

static bool near(double a, double b) { return a > b - 1e-9 * (b > 0 ? b : 1) && a < b + 1e-9 * (b > 0 ? b : 1); }

static void test_split(void) {
  static bench_threads_t before, after;
  static bench_split_t s;
  before.process_ticks = 300, after.process_ticks = 1600;
  set(&before, 0, 10, "tr-loop", 100);
  set(&before, 1, 11, "tr-seq", 100);
  set(&before, 2, 12, "tr-verify-0", 100);
  set(&before, 3, 14, "tr-uvpool", 0);
  set(&after, 0, 15, "tr-uvpool", 20);  /* started in the window */
  set(&after, 1, 13, "tr-verify-1", 600); /* started in the window */
  set(&after, 2, 12, "tr-verify-0", 600);
  set(&after, 3, 11, "tr-seq", 400);
  set(&after, 4, 10, "tr-loop", 150);
  set(&after, 5, 14, "tr-uvpool", 10);
  double tick = bench_us_per_tick(), accepted = 1000;
  TR_CHECK(bench_split(&before, &after, 0, 50, &s) == -1, "nothing accepted: no split");
  TR_CHECK(bench_split(&before, &after, 1000, 50, &s) == 0, "a split of 1000 txs");
  TR_CHECK_EQ_INT(s.n, 6, "every thread alive at the end");
  TR_CHECK(strcmp(s.t[0].name, "tr-loop") == 0 && strcmp(s.t[1].name, "tr-seq") == 0 &&
               s.t[2].tid == 14 && s.t[3].tid == 15 && strcmp(s.t[5].name, "tr-verify-1") == 0,
           "sorted by name, then tid");
  TR_CHECK(near(s.t[1].us_per_tx, 300 * tick / accepted), "tr-seq: its ticks in the window, per tx");
  TR_CHECK(near(s.t[1].sys_us_per_tx, (100 - 25) * tick / accepted), "tr-seq: of them in the kernel, per tx");
  TR_CHECK(s.t[5].new_in_window && near(s.t[5].us_per_tx, 600 * tick / accepted) && !s.t[4].new_in_window,
           "a thread started in the window counts from zero and is marked");
  TR_CHECK(s.verify_threads == 2 && near(s.verify_us_per_tx, 1100 * tick / accepted), "tr-verify-* as a group");
  TR_CHECK(near(s.process_us_per_tx, 1300 * tick / accepted), "the daemon total is the process's own counter");
  TR_CHECK(strcmp(s.busiest_serial, "tr-seq") == 0, "the busiest thread that is not a verify worker");
  TR_CHECK(near(s.headroom, 50 / (300 * tick / accepted)), "serial headroom = one verify / that thread's CPU a tx");
  TR_CHECK(near(s.efficiency, 50 / (1300 * tick / accepted)), "efficiency = one verify / the daemon's CPU a tx");
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  bench_split_print(f, &s);
  fclose(f);
  TR_CHECK(text && strstr(text, "tr-uvpool       2 threads") && strstr(text, "tr-verify-*     2 threads") &&
               strstr(text, "serial headroom") && strstr(text, "efficiency"),
           "printed: shared names and tr-verify-* as groups, both ratios");
  TR_CHECK(text && strstr(text, "(kernel "), "printed: each thread's kernel share");
  free(text);
}

/* A named thread that burns CPU shows up in a sample of this process. */
static void *spin_named(void *arg) {
  (void)arg;
  if (pthread_setname_np(pthread_self(), "tr-verify-7") != 0) return NULL; /* the sample then misses it: a check fails */
  struct timespec t0, t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  volatile uint64_t x = 0;
  do {
    for (int i = 0; i < 100000; i++) x += (uint64_t)i;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 150000000L);
  (void)x; /* only the time it takes matters */
  return NULL;
}

static void test_sample_self(void) {
  static bench_threads_t before, after;
  static bench_split_t s;
  pthread_t th;
  TR_CHECK(bench_threads_sample(getpid(), &before) == 0 && before.n >= 1, "sample of this process");
  TR_CHECK(pthread_create(&th, NULL, spin_named, NULL) == 0, "a spinning thread");
  usleep(100000);
  TR_CHECK(bench_threads_sample(getpid(), &after) == 0 && after.n == before.n + 1, "it is seen while it runs");
  pthread_join(th, NULL);
  bench_split(&before, &after, 1, 1, &s);
  double spun = 0;
  for (size_t i = 0; i < s.n; i++)
    if (strcmp(s.t[i].name, "tr-verify-7") == 0) spun = s.t[i].us_per_tx;
  TR_CHECK(spun >= 20000, "its CPU is counted under its name (%.0f us by the second sample)", spun);
  TR_CHECK(bench_threads_sample(-5, &after) == -1, "no such process: -1");
}

static void test_reply_status(void) {
  const char *ok = "{\"jsonrpc\":\"2.0\",\"result\":{\"seq\":5,\"note\":\"\\\"error\\\"\"},\"id\":1}";
  const char *err = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32602,\"message\":\"no \\\"result\\\"\"},\"id\":1}";
  TR_CHECK(bench_reply_status(ok, strlen(ok)) == BENCH_REPLY_RESULT, "a result, even with \"error\" inside it");
  TR_CHECK(bench_reply_status(err, strlen(err)) == BENCH_REPLY_ERROR, "an error, even with \"result\" in its text");
  TR_CHECK(bench_reply_status("{}", 2) == BENCH_REPLY_OTHER, "neither");
  TR_CHECK(bench_reply_status(ok, 10) == BENCH_REPLY_OTHER, "only the given bytes are read");
}

/* ---- the lean client against a loopback server ---- */

typedef struct {
  int listen_fd, conns;
  long close_after; /* lines read before the server closes without answering; 0 = answer all */
} server_t;

typedef struct {
  int fd;
  long close_after;
} server_conn_t;

/* Answers each line: "ok" → a result, "busy" → -32002, else another error. */
static void *serve_conn(void *arg) {
  server_conn_t *c = arg;
  static __thread char buf[1 << 16];
  size_t len = 0;
  long lines = 0;
  for (;;) {
    ssize_t r = read(c->fd, buf + len, sizeof buf - len);
    if (r <= 0) break;
    len += (size_t)r;
    char *p = buf, *nl;
    while ((nl = memchr(p, '\n', (size_t)(buf + len - p))) != NULL) {
      if (c->close_after && ++lines >= c->close_after) goto out;
      const char *a = memmem(p, (size_t)(nl - p), "busy", 4)
                          ? "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32002,\"message\":\"overloaded\"},\"id\":1}\n"
                      : memmem(p, (size_t)(nl - p), "ok", 2) ? "{\"jsonrpc\":\"2.0\",\"result\":{\"seq\":1},\"id\":1}\n"
                                                             : "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1},\"id\":1}\n";
      if (write(c->fd, a, strlen(a)) != (ssize_t)strlen(a)) goto out;
      p = nl + 1;
    }
    len = (size_t)(buf + len - p);
    memmove(buf, p, len);
  }
out:
  close(c->fd);
  free(c);
  return NULL;
}

static void *serve(void *arg) {
  server_t *s = arg;
  for (int i = 0; i < s->conns; i++) {
    server_conn_t *c = malloc(sizeof *c);
    pthread_t th;
    c->fd = accept(s->listen_fd, NULL, NULL);
    c->close_after = s->close_after;
    if (c->fd < 0 || pthread_create(&th, NULL, serve_conn, c) != 0) break;
    pthread_detach(th);
  }
  return NULL;
}

static int listen_loopback(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    return -1;
  *port = ntohs(sa.sin_port);
  return fd;
}

/* The lean client (depth 64, `rate` as bench_lean_run takes it) against a
 * loopback server of `conns` connections; *port gets the server's port. */
static int lean_against_server(char *const *lines, long n, long conns, long close_after, double rate,
                               bench_lean_result_t *r, int *port) {
  server_t s = {.conns = (int)conns, .close_after = close_after};
  pthread_t th;
  s.listen_fd = listen_loopback(port);
  bool up = s.listen_fd >= 0 && pthread_create(&th, NULL, serve, &s) == 0;
  TR_CHECK(up, "a loopback server");
  if (!up) return -1;
  int rc = bench_lean_run("127.0.0.1", *port, lines, n, conns, 64, rate, r);
  pthread_join(th, NULL);
  close(s.listen_fd);
  return rc;
}

static void test_lean(long close_after) {
  enum { N = 3000, CONNS = 3, LINE = 3000 };
  static char *lines[N];
  static uint64_t lat[N];
  long want_ok = 0, want_busy = 0;
  for (long i = 0; i < N; i++) {
    lines[i] = malloc(LINE + 1);
    memset(lines[i], 'x', LINE); /* long lines: the window (64 x 3 KB) outgrows a socket buffer, writes go part-way */
    memcpy(lines[i], i % 3 == 0 ? "ok" : i % 3 == 1 ? "busy" : "no", i % 3 == 1 ? 4 : 2);
    lines[i][LINE - 1] = '\n';
    lines[i][LINE] = '\0';
    want_ok += i % 3 == 0, want_busy += i % 3 == 1;
  }
  bench_lean_result_t r = {.lat_ns = lat};
  int port = 0;
  int rc = lean_against_server(lines, N, CONNS, close_after, 0, &r, &port);
  if (close_after == 0) {
    TR_CHECK(rc == 0, "the lean client ran");
    TR_CHECK(r.accepted == want_ok && r.overloaded == want_busy && r.refused == N - want_ok - want_busy &&
                 r.failed == 0,
             "every response's status counted (%ld ok, %ld overloaded, %ld refused, %ld failed)", r.accepted,
             r.overloaded, r.refused, r.failed);
    long zero = 0;
    for (long i = 0; i < N; i++) zero += lat[i] == 0;
    TR_CHECK(zero == 0, "every request has a latency");
    TR_CHECK(r.wall_s > 0 && r.client_cpu_s >= 0, "its wall time and CPU are measured");
  } else {
    /* answers sent just before the close may be lost with it (the server's
     * unread requests turn the close into a reset): at most these arrive */
    long answered = CONNS * (close_after - 1);
    TR_CHECK(rc == 0 && r.failed >= N - answered && r.accepted + r.overloaded + r.refused + r.failed == N, "connections closed after a few answers: every request counted once, the rest failed, no hang (rc %d, %ld failed, %ld accepted, %ld refused)", rc, r.failed, r.accepted, r.refused);
  }
  for (long i = 0; i < N; i++) free(lines[i]);
  bench_lean_result_t bad = {.lat_ns = lat};
  TR_CHECK(bench_lean_run("127.0.0.1", port, lines, N, 0, 64, 0, &bad) == -1 &&
               bench_lean_run("127.0.0.1", port, lines, N, 1, BENCH_LEAN_DEPTH_MAX + 1, 0, &bad) == -1 &&
               bench_lean_run("127.0.0.1", port, lines, N, 1, 64, -1, &bad) == -1,
           "no connections or a depth over its bound: -1");
}

/* Paced: 600 requests at 2,000 a second over 3 connections take ~0.3 s
 * whatever the server's speed, and every one is answered and timed. */
static void test_lean_paced(void) {
  enum { N = 600, CONNS = 3 };
  static char *lines[N];
  static uint64_t lat[N];
  for (long i = 0; i < N; i++) lines[i] = strdup("ok\n");
  bench_lean_result_t r = {.lat_ns = lat};
  int port = 0;
  int rc = lean_against_server(lines, N, CONNS, 0, 2000, &r, &port);
  long zero = 0;
  for (long i = 0; i < N; i++) zero += lat[i] == 0;
  TR_CHECK(rc == 0 && r.accepted == N && r.failed == 0 && zero == 0, "paced: every request answered and timed");
  TR_CHECK(r.wall_s >= 0.29 && r.wall_s < 5, "paced at 2,000 a second: 600 requests take ~0.3 s (%.3f s)", r.wall_s);
  for (long i = 0; i < N; i++) free(lines[i]);
}

static void test_verify(void) {
  double us = bench_verify_cpu_us(0.05, 258);
  TR_CHECK(us > 1 && us < 100000, "one verify costs some CPU (%.1f us)", us);
  double busy_us = 0;
  TR_CHECK(bench_verify_rate(2, 0.05, 258, &busy_us) > 0 && busy_us > 0 && busy_us < 100000,
           "a 2-thread rate, and one verify's CPU meanwhile (%.1f us)", busy_us);
  TR_CHECK(bench_verify_rate(0, 0.05, 258, NULL) == -1 &&
               bench_verify_rate(1, 0.05, BENCH_VERIFY_MSG_BYTES_MAX + 1, NULL) == -1,
           "bad arguments: -1");
}

int main(void) {
  if (sodium_init() < 0) return 1;
  test_stat_parse();
  test_split();
  test_sample_self();
  test_reply_status();
  test_lean(0);
  test_lean(5);
  test_lean_paced();
  test_verify();
  return tr_test_done();
}
