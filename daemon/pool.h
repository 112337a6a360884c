/* pool.h — the verification worker pool.
 *
 * N threads take jobs from one bounded queue, a share at a time (dynamic
 * hand-out: no static partitioning, and batches keep the locking cost small
 * next to a 47 µs signature check), run them, and post them back through the
 * mailbox.  Each worker owns a read-only SQLite connection for queries.
 */
#ifndef TR_POOL_H
#define TR_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "job.h"
#include "mailbox.h"
#include "tr_ledger.h"
#include "tr_store.h"

typedef struct tr_pool tr_pool_t;

typedef struct {
  tr_pool_t *pool;
  unsigned index;
  uv_thread_t thread;
  tr_store_t *reader;        /* read-only connection, this thread only */
  tr_ledger_t ledger;        /* over `reader`, for tx.check */
  bool started;
} tr_worker_t;

typedef void (*tr_pool_work_fn)(tr_worker_t *w, tr_job_t *job);

struct tr_pool {
  uv_mutex_t mu;
  uv_cond_t cond;
  tr_job_t *head, *tail;
  atomic_size_t depth;
  bool stopping;
  unsigned n;
  tr_worker_t *workers;
  tr_pool_work_fn work;
  tr_mailbox_t *done;
  void *ctx;                 /* the daemon, for work functions */
  char db_path[4096];
  atomic_ullong jobs_done;
  atomic_ullong busy_ns;     /* time spent in work functions */
};

/* Opens a reader per worker and starts the threads. */
int tr_pool_start(tr_pool_t *pool, unsigned n, const char *db_path, tr_pool_work_fn work,
                  tr_mailbox_t *done, void *ctx, char *err, size_t errlen);
void tr_pool_push(tr_pool_t *pool, tr_job_t *job);
/* Appends head..tail (n jobs linked by ->next) in order, under one lock. */
void tr_pool_push_list(tr_pool_t *pool, tr_job_t *head, tr_job_t *tail, size_t n);
size_t tr_pool_depth(tr_pool_t *pool);
/* Finishes queued jobs, then joins the threads and closes the readers. */
void tr_pool_stop(tr_pool_t *pool);

uint64_t tr_clock_ns(void);

#endif
