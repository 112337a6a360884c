/* metrics.h — Prometheus text exposition (format 0.0.4) of the daemon's
 * counters, and the fixed-bucket histograms behind it.
 *
 * A histogram is a handful of atomic counters, so any thread records into it
 * without a lock; buckets are counted one by one and summed when exported.
 */
#ifndef TR_METRICS_H
#define TR_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TR_HIST_BUCKETS_MAX 16

typedef struct {
  size_t n;
  uint64_t le[TR_HIST_BUCKETS_MAX];   /* upper bounds, ascending; +Inf is implied */
  int unit_ns;                        /* 1: values are nanoseconds, exported as seconds */
} tr_hist_bounds_t;

extern const tr_hist_bounds_t TR_HIST_DURATION; /* 100 µs .. 10 s */
extern const tr_hist_bounds_t TR_HIST_BATCH;    /* 1 .. 1024 txs */

typedef struct {
  atomic_ullong bucket[TR_HIST_BUCKETS_MAX + 1]; /* the last one is over every bound */
  atomic_ullong count, sum;
} tr_hist_t;

void tr_hist_observe(tr_hist_t *h, const tr_hist_bounds_t *b, uint64_t value);

struct tr_daemon;
/* The whole /metrics page; heap, NUL-terminated; NULL on OOM. */
char *tr_metrics_text(struct tr_daemon *d, size_t *len);

#endif
