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

/* Thread names, so `top -H`, `ps -L`, perf and tranche-bench's per-thread
 * split show who is busy: tr-loop (the libuv loop), tr-verify-N (the workers
 * of this pool, and only they), tr-seq (the sequencer), tr-uvpool (libuv's
 * own pool: WAL checkpoints, backups).  Linux allows 15 bytes. */
#define TR_THREAD_NAME_BYTES_MAX 15

/* Names the calling thread; a failure is logged, never fatal. */
void tr_thread_name(const char *name);

/* Names every thread of libuv's pool "tr-uvpool".  libuv starts all of its
 * pool threads at the first uv_queue_work and keeps them until exit, so this
 * queues one work item per pool thread and has each wait (bounded) until all
 * of them run: they then run on distinct threads, and each names its own.
 * Call once, before anything else queues work.  Returns 0 or a libuv error. */
int tr_uvpool_name_threads(uv_loop_t *loop);

#endif
