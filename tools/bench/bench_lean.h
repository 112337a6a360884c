/* bench_lean.h — tranche-bench's lean client (issue #13): costs the daemon's
 * machine as little CPU as a load generator can, so the daemon's own cost
 * shows.  Requests are pre-built lines; one thread runs one poll loop over
 * every connection, keeps up to `depth` requests in flight on each (one
 * sendmsg for all the window allows), paced or not, and reads of each
 * response only its status: whether "result" or "error" comes first, never
 * parsing JSON.
 * It measures its own CPU (getrusage) so a report can show it. */
#ifndef BENCH_LEAN_H
#define BENCH_LEAN_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_LEAN_CONNS_MAX 1024         /* tranched serves 1024 connections */
#define BENCH_LEAN_DEPTH_MAX 1024         /* one sendmsg of the whole window: IOV_MAX */
#define BENCH_LEAN_LINE_BYTES_MAX (1u << 20) /* tranched's line limit (PROTOCOL §5) */
#define BENCH_LEAN_IDLE_MS 30000          /* no progress on any connection this long: give up, never hang */

typedef enum { BENCH_REPLY_RESULT, BENCH_REPLY_ERROR, BENCH_REPLY_OTHER } bench_reply_t;

/* The status of one response line (without its newline): RESULT when a
 * "result" member name comes before any "error", ERROR when "error" comes
 * first, OTHER when neither appears. */
bench_reply_t bench_reply_status(const char *line, size_t n);

typedef struct {
  long accepted, overloaded, refused, failed;
  double wall_s;
  double client_cpu_s;       /* user + system CPU of this process during the load */
  uint64_t *lat_ns;          /* per request, from its write to its response; caller-owned, n long */
} bench_lean_result_t;

/* Sends lines[0..n) (each ending "\n") over `conns` connections to
 * host:port, request i on connection i / (n / conns) (the last takes the
 * rest), `depth` in flight on each.  rate 0: as fast as the windows allow,
 * a latency counted from the request's write.  rate > 0 (requests a second
 * over all connections): open loop, request k of a connection due at the
 * start + k * conns / rate, and its latency counted from that due time, so
 * one held back by a full window or a late client counts its wait too (no
 * coordinated omission).  Returns 0, or -1 on bad arguments or when no
 * connection could be opened; a connection that fails later counts its
 * unanswered requests as failed. */
int bench_lean_run(const char *host, int port, char *const *lines, long n, long conns, long depth, double rate,
                   bench_lean_result_t *r);

#endif
