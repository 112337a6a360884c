/* bench_threads.c — per-thread CPU from /proc (see bench_threads.h). */
#include "bench_threads.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STAT_LINE_BYTES 1024 /* a stat line is ~300 bytes; the comm is at most 15 */
#define STAT_FIELD_UTIME 14  /* proc(5), counting from 1: pid (1), comm (2), state (3) ... */

double bench_us_per_tick(void) {
  long hz = sysconf(_SC_CLK_TCK);
  return hz > 0 ? 1e6 / (double)hz : 1e4;
}

int bench_stat_parse(const char *line, char name[BENCH_THREAD_NAME_BYTES], uint64_t *cpu_ticks, uint64_t *sys_ticks) {
  const char *open = strchr(line, '('), *close = strrchr(line, ')');
  if (open == NULL || close == NULL || close < open) return -1;
  size_t len = (size_t)(close - open - 1);
  if (len >= BENCH_THREAD_NAME_BYTES) len = BENCH_THREAD_NAME_BYTES - 1;
  memcpy(name, open + 1, len);
  name[len] = '\0';
  /* after ") " come fields 3, 4, ...; utime and stime are 14 and 15 */
  const char *p = close + 1;
  uint64_t fields[2] = {0, 0};
  for (int field = 3; field <= STAT_FIELD_UTIME + 1; field++) {
    while (*p == ' ') p++;
    if (*p == '\0' || *p == '\n') return -1;
    const char *start = p;
    while (*p != ' ' && *p != '\0' && *p != '\n') p++;
    if (field >= STAT_FIELD_UTIME) {
      char *end;
      errno = 0;
      unsigned long long v = strtoull(start, &end, 10);
      if (errno != 0 || end != p || *start == '-') return -1;
      fields[field - STAT_FIELD_UTIME] = v;
    }
  }
  if (fields[0] > UINT64_MAX - fields[1]) return -1;
  *cpu_ticks = fields[0] + fields[1];
  if (sys_ticks) *sys_ticks = fields[1];
  return 0;
}

static int read_stat(const char *path, char name[BENCH_THREAD_NAME_BYTES], uint64_t *cpu_ticks, uint64_t *sys_ticks) {
  char line[STAT_LINE_BYTES];
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  char *got = fgets(line, sizeof line, f);
  fclose(f);
  if (got == NULL) return -1;
  return bench_stat_parse(line, name, cpu_ticks, sys_ticks);
}

int bench_threads_sample(int pid, bench_threads_t *out) {
  char path[64], name[BENCH_THREAD_NAME_BYTES];
  out->n = 0;
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  if (read_stat(path, name, &out->process_ticks, NULL) != 0) return -1;
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (d == NULL) return -1;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (out->n == BENCH_THREADS_MAX) {
      errno = E2BIG;
      rc = -1;
      break;
    }
    bench_thread_t *t = &out->t[out->n];
    t->tid = atoi(e->d_name);
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, t->tid);
    if (read_stat(path, t->name, &t->cpu_ticks, &t->sys_ticks) != 0) continue; /* ended since readdir */
    out->n++;
  }
  closedir(d);
  return rc;
}

static const bench_thread_t *find_tid(const bench_threads_t *s, int tid) {
  for (size_t i = 0; i < s->n; i++)
    if (s->t[i].tid == tid) return &s->t[i];
  return NULL;
}

static int cost_cmp(const void *a, const void *b) {
  const bench_thread_cost_t *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c != 0 ? c : (x->tid > y->tid) - (x->tid < y->tid);
}

static bool is_verify_worker(const char *name) { return strncmp(name, "tr-verify-", 10) == 0; }

/* Ticks between two samples of one counter; a counter never goes back, so a
 * smaller second value (a reused tid) counts from zero. */
static uint64_t ticks_between(uint64_t before, uint64_t after) { return after >= before ? after - before : after; }

int bench_split(const bench_threads_t *before, const bench_threads_t *after, long accepted, double one_verify_us,
                bench_split_t *out) {
  if (accepted < 1) return -1;
  memset(out, 0, sizeof *out);
  double scale = bench_us_per_tick() / (double)accepted;
  out->accepted = accepted;
  out->one_verify_us = one_verify_us;
  out->process_us_per_tx = (double)ticks_between(before->process_ticks, after->process_ticks) * scale;
  for (size_t i = 0; i < after->n; i++) {
    const bench_thread_t *a = &after->t[i], *b = find_tid(before, a->tid);
    bench_thread_cost_t *c = &out->t[out->n++];
    c->tid = a->tid;
    memcpy(c->name, a->name, sizeof c->name);
    c->new_in_window = b == NULL;
    c->us_per_tx = (double)ticks_between(b ? b->cpu_ticks : 0, a->cpu_ticks) * scale;
    c->sys_us_per_tx = (double)ticks_between(b ? b->sys_ticks : 0, a->sys_ticks) * scale;
    out->threads_us_per_tx += c->us_per_tx;
    if (is_verify_worker(c->name)) {
      out->verify_threads++;
      out->verify_us_per_tx += c->us_per_tx;
    } else if (out->busiest_serial[0] == '\0' || c->us_per_tx > out->busiest_serial_us_per_tx) {
      memcpy(out->busiest_serial, c->name, sizeof out->busiest_serial);
      out->busiest_serial_us_per_tx = c->us_per_tx;
    }
  }
  qsort(out->t, out->n, sizeof out->t[0], cost_cmp);
  if (out->busiest_serial_us_per_tx > 0) out->headroom = one_verify_us / out->busiest_serial_us_per_tx;
  if (out->process_us_per_tx > 0) out->efficiency = one_verify_us / out->process_us_per_tx;
  return 0;
}

void bench_split_print(FILE *f, const bench_split_t *s) {
  fprintf(f, "daemon CPU per accepted tx (/proc/PID/task/*/stat over the load, %ld txs, %.0f us a tick):\n", s->accepted,
          bench_us_per_tick());
  for (size_t i = 0; i < s->n; i++)
    fprintf(f, "  %-15s tid %-7d %8.1f us  (kernel %.1f)%s\n", s->t[i].name, s->t[i].tid, s->t[i].us_per_tx,
            s->t[i].sys_us_per_tx, s->t[i].new_in_window ? "  (started during the load)" : "");
  /* names several threads share (tr-uvpool), as a group; tr-verify-* as one */
  for (size_t i = 0; i < s->n;) {
    size_t j = i;
    double sum = 0;
    while (j < s->n && strcmp(s->t[j].name, s->t[i].name) == 0) sum += s->t[j++].us_per_tx;
    if (j - i > 1) fprintf(f, "  %-15s %zu threads %6.1f us\n", s->t[i].name, j - i, sum);
    i = j;
  }
  fprintf(f, "  %-15s %zu threads %6.1f us\n", "tr-verify-*", s->verify_threads, s->verify_us_per_tx);
  fprintf(f, "  %-15s %16.1f us  (threads alive at the end: %.1f us)\n", "daemon total", s->process_us_per_tx,
          s->threads_us_per_tx);
  fprintf(f, "one verify: %.1f us CPU (libsodium, 1 thread, same run)\n", s->one_verify_us);
  fprintf(f, "serial headroom %.2f  (one verify / %s, the busiest thread that is not tr-verify-*: %.1f us a tx)\n",
          s->headroom, s->busiest_serial[0] ? s->busiest_serial : "(none)", s->busiest_serial_us_per_tx);
  fprintf(f, "efficiency %.2f  (one verify / the daemon's %.1f us a tx)\n", s->efficiency, s->process_us_per_tx);
}
