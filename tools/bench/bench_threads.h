/* bench_threads.h — where a process's CPU goes, thread by thread (issue #13).
 *
 * Samples /proc/PID/stat and /proc/PID/task/TID/stat (utime + stime, clock
 * ticks) before and after a measured window, and turns the difference into
 * µs of CPU per accepted tx for every thread (by the names tranched gives
 * them: tr-loop, tr-seq, tr-verify-N, tr-uvpool), the tr-verify-* group and
 * the whole process, against one verify's CPU measured in the same run:
 *
 *   serial headroom = one verify ÷ µs/tx of the busiest thread that is not a
 *                     tr-verify-* worker (how many verify cores the serial
 *                     part could feed)
 *   efficiency      = one verify ÷ the process's µs/tx
 *
 * Resolution is one clock tick (10 ms at USER_HZ 100) per thread per
 * sample: runs of a few seconds give figures good to ~1 µs/tx.
 */
#ifndef BENCH_THREADS_H
#define BENCH_THREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_THREADS_MAX 256    /* tranched runs ≤ 64 workers + a handful; more is someone else's process */
#define BENCH_THREAD_NAME_BYTES 16 /* Linux comm: 15 bytes and the NUL */

typedef struct {
  int tid;
  char name[BENCH_THREAD_NAME_BYTES];
  uint64_t cpu_ticks;            /* utime + stime */
  uint64_t sys_ticks;            /* of it stime: in the kernel (syscalls, fsync, faults) */
} bench_thread_t;

typedef struct {
  uint64_t process_ticks;        /* the whole process, exited threads included */
  size_t n;
  bench_thread_t t[BENCH_THREADS_MAX];
} bench_threads_t;

typedef struct {
  int tid;
  char name[BENCH_THREAD_NAME_BYTES];
  double us_per_tx;
  double sys_us_per_tx;          /* of it in the kernel */
  bool new_in_window;            /* not there at the first sample */
} bench_thread_cost_t;

typedef struct {
  size_t n;
  bench_thread_cost_t t[BENCH_THREADS_MAX]; /* sorted by name, then tid */
  size_t verify_threads;
  double verify_us_per_tx;       /* the tr-verify-* group */
  double process_us_per_tx;
  double threads_us_per_tx;      /* sum of the threads seen at the second sample */
  char busiest_serial[BENCH_THREAD_NAME_BYTES]; /* "" when there is none */
  double busiest_serial_us_per_tx;
  double one_verify_us;
  double headroom, efficiency;   /* 0 when a denominator is 0 */
  long accepted;
} bench_split_t;

/* Parses one /proc/…/stat line: the comm (between the first '(' and the
 * last ')', it may hold both), utime + stime and (sys_ticks may be NULL)
 * stime alone.  Returns 0 or -1. */
int bench_stat_parse(const char *line, char name[BENCH_THREAD_NAME_BYTES], uint64_t *cpu_ticks, uint64_t *sys_ticks);

/* Samples every thread of pid.  Returns 0, or -1 (errno set) when the
 * process is gone or has more than BENCH_THREADS_MAX threads. */
int bench_threads_sample(int pid, bench_threads_t *out);

/* The split of the window before..after over `accepted` txs, with the given
 * cost of one verify in µs of CPU.  Returns 0, or -1 when accepted < 1. */
int bench_split(const bench_threads_t *before, const bench_threads_t *after, long accepted, double one_verify_us,
                bench_split_t *out);

/* Prints the split, one line per thread (with its kernel share), the groups
 * and the two ratios. */
void bench_split_print(FILE *f, const bench_split_t *s);

/* µs of CPU per tick (sysconf(_SC_CLK_TCK)). */
double bench_us_per_tick(void);

#endif
