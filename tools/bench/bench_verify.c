/* bench_verify.c — raw Ed25519 verify rate and CPU cost (bench_verify.h). */
#include "bench_verify.h"

#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
  const uint8_t *msg, *sig, *pk;
  size_t msg_len;
  clockid_t clock;
  double seconds;
  long count;
  double used_s;
  double cpu_s; /* the thread's own CPU over the run */
} verify_job_t;

typedef struct {
  uint8_t pk[32], sig[64], msg[BENCH_VERIFY_MSG_BYTES_MAX];
} signed_msg_t;

static double clock_s(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void signed_msg_make(signed_msg_t *m, size_t msg_len) {
  uint8_t sk[64];
  crypto_sign_keypair(m->pk, sk);
  randombytes_buf(m->msg, msg_len);
  crypto_sign_detached(m->sig, NULL, m->msg, msg_len, sk);
  sodium_memzero(sk, sizeof sk);
}

/* Verifies until `seconds` have passed on v->clock, checking the clock
 * every 64 verifies (a clock read is cheap next to a verify, but not free). */
static void *verify_main(void *arg) {
  verify_job_t *v = arg;
  double cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
  double t0 = clock_s(v->clock), end = t0 + v->seconds, t = t0;
  long n = 0;
  while ((n & 63) != 0 || (t = clock_s(v->clock)) < end) {
    if (crypto_sign_verify_detached(v->sig, v->msg, v->msg_len, v->pk) != 0) abort();
    n++;
  }
  v->count = n;
  v->used_s = t - t0;
  v->cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  return NULL;
}

double bench_verify_rate(long threads, double seconds, size_t msg_len, double *cpu_us) {
  if (threads < 1 || threads > BENCH_VERIFY_THREADS_MAX || msg_len > BENCH_VERIFY_MSG_BYTES_MAX || seconds <= 0)
    return -1;
  static signed_msg_t m;
  signed_msg_make(&m, msg_len);
  pthread_t th[BENCH_VERIFY_THREADS_MAX];
  verify_job_t v[BENCH_VERIFY_THREADS_MAX];
  double t0 = clock_s(CLOCK_MONOTONIC);
  long started = 0, total = 0;
  double cpu_s = 0;
  for (; started < threads; started++) {
    v[started] = (verify_job_t){m.msg, m.sig, m.pk, msg_len, CLOCK_MONOTONIC, seconds, 0, 0, 0};
    if (pthread_create(&th[started], NULL, verify_main, &v[started]) != 0) break;
  }
  for (long i = 0; i < started; i++) {
    pthread_join(th[i], NULL);
    total += v[i].count;
    cpu_s += v[i].cpu_s;
  }
  if (started < threads || total == 0) return -1;
  if (cpu_us) *cpu_us = cpu_s * 1e6 / (double)total;
  return (double)total / (clock_s(CLOCK_MONOTONIC) - t0);
}

double bench_verify_cpu_us(double seconds, size_t msg_len) {
  if (msg_len > BENCH_VERIFY_MSG_BYTES_MAX || seconds <= 0) return -1;
  static signed_msg_t m;
  signed_msg_make(&m, msg_len);
  verify_job_t v = {m.msg, m.sig, m.pk, msg_len, CLOCK_THREAD_CPUTIME_ID, seconds, 0, 0, 0};
  verify_main(&v);
  return v.count > 0 ? v.used_s * 1e6 / (double)v.count : -1;
}
