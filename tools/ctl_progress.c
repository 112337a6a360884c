/* ctl_progress.c — one updating progress line on stderr for long work
 * (verify, backup, restore, import): phase, done/total, rate, ETA.  Drawn
 * only when stderr is a terminal and --quiet was not given; a script's
 * stderr stays free of it.  A watcher thread can draw the size of a file
 * being written by someone else (the daemon's backup copy). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define PROGRESS_REDRAW_MS 200     /* a terminal line need not change faster */
#define MIB (1024.0 * 1024.0)

bool ctl_quiet = false;

bool ctl_progress_wanted(void) { return !ctl_quiet && isatty(STDERR_FILENO) != 0; }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void ctl_progress_begin(ctl_progress_t *p, const char *phase, bool bytes, uint64_t total) {
  memset(p, 0, sizeof *p);
  p->on = ctl_progress_wanted();
  p->phase = phase;
  p->bytes = bytes;
  p->total = total;
  p->t0 = now_s();
  p->drawn = 0;
}

static void draw(ctl_progress_t *p, uint64_t done, double t) {
  double el = t - p->t0, rate = el > 0 ? (double)done / el : 0;
  char amount[96], speed[48], eta[32] = "";
  if (p->total && done > p->total) done = p->total;
  if (p->bytes) {
    if (p->total) snprintf(amount, sizeof amount, "%.1f/%.1f MiB", (double)done / MIB, (double)p->total / MIB);
    else snprintf(amount, sizeof amount, "%.1f MiB", (double)done / MIB);
    snprintf(speed, sizeof speed, "%.1f MiB/s", rate / MIB);
  } else {
    if (p->total) snprintf(amount, sizeof amount, "%llu/%llu", (unsigned long long)done, (unsigned long long)p->total);
    else snprintf(amount, sizeof amount, "%llu", (unsigned long long)done);
    snprintf(speed, sizeof speed, "%.0f/s", rate);
  }
  if (p->total && rate > 0 && done < p->total) {
    unsigned long left = (unsigned long)((double)(p->total - done) / rate + 0.5);
    snprintf(eta, sizeof eta, ", ETA %lu:%02lu", left / 60, left % 60);
  }
  unsigned pct = p->total ? (unsigned)(done * 100 / p->total) : 0;
  if (p->total) fprintf(stderr, "\r\033[K%s %s (%u%%), %s%s", p->phase, amount, pct, speed, eta);
  else fprintf(stderr, "\r\033[K%s %s, %s", p->phase, amount, speed);
  p->drawn = t;
}

void ctl_progress_update(ctl_progress_t *p, uint64_t done) {
  if (!p->on) return;
  double t = now_s();
  if (p->drawn > 0 && (t - p->drawn) * 1000 < PROGRESS_REDRAW_MS) return;
  draw(p, done, t);
}

void ctl_progress_end(ctl_progress_t *p, uint64_t done) {
  if (!p->on) return;
  draw(p, done, now_s());
  fputc('\n', stderr);
}

/* ---- watching a file that grows ---- */

static void *watch_thread(void *arg) {
  ctl_progress_watch_t *w = arg;
  struct timespec ts = {.tv_sec = 0, .tv_nsec = PROGRESS_REDRAW_MS * 1000000L};
  struct stat st;
  while (!atomic_load(&w->stop)) {
    if (stat(w->path, &st) == 0) ctl_progress_update(&w->p, (uint64_t)st.st_size);
    nanosleep(&ts, NULL);
  }
  return NULL;
}

void ctl_progress_watch_start(ctl_progress_watch_t *w, const char *phase, const char *path, uint64_t total) {
  snprintf(w->path, sizeof w->path, "%s", path);
  ctl_progress_begin(&w->p, phase, true, total);
  atomic_store(&w->stop, false);
  w->running = w->p.on && pthread_create(&w->tid, NULL, watch_thread, w) == 0;
}

void ctl_progress_watch_stop(ctl_progress_watch_t *w, bool finished) {
  if (!w->running) return;
  atomic_store(&w->stop, true);
  pthread_join(w->tid, NULL);
  w->running = false;
  if (finished) ctl_progress_end(&w->p, w->p.total);
  else fputc('\n', stderr);
}
