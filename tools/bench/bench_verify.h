/* bench_verify.h — the machine's limit: raw libsodium Ed25519 verification,
 * measured by every benchmark in the same run as what it compares with it
 * (the machine is shared: figures from different minutes do not compare). */
#ifndef BENCH_VERIFY_H
#define BENCH_VERIFY_H

#include <stddef.h>

#define BENCH_VERIFY_THREADS_MAX 64    /* tranched's own worker bound */
#define BENCH_VERIFY_MSG_BYTES_MAX 4096 /* a transfer's signed bytes are ~300 */

/* Verifies one msg_len-byte message on `threads` threads for `seconds`;
 * returns verifies per second of wall-clock time, or -1 on bad arguments.
 * cpu_us (may be NULL) gets the µs of CPU one verify took while all those
 * threads ran: on cores that share a physical core, or a host's time, that
 * is more than one verify alone, and it is what a node's verify workers pay
 * when they all verify at once. */
double bench_verify_rate(long threads, double seconds, size_t msg_len, double *cpu_us);

/* µs of the calling thread's CPU (CLOCK_THREAD_CPUTIME_ID) per
 * crypto_sign_verify_detached on a msg_len-byte message, over `seconds` of
 * CPU: what one verify costs, whatever else the machine runs.  -1 on bad
 * arguments. */
double bench_verify_cpu_us(double seconds, size_t msg_len);

#endif
