/* pool.c — worker threads for parsing, signature checks and queries. */
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tr_limits.h"

uint64_t tr_clock_ns(void) { return uv_hrtime(); }

void tr_thread_name(const char *name) {
  int rc = pthread_setname_np(pthread_self(), name);
  if (rc != 0) log_warn("main", "cannot name a thread %s: %s", name, strerror(rc));
}

/* libuv's pool size, by libuv's own rule (src/threadpool.c, init_threads):
 * UV_THREADPOOL_SIZE if set, 0 read as 1, at most 1024; 4 otherwise. */
#define UVPOOL_THREADS_DEFAULT 4
#define UVPOOL_THREADS_MAX 1024
/* How long a naming item waits for the others.  They all start within
 * microseconds; the bound only matters if libuv's rule above ever changes
 * (then a few threads may stay unnamed, and start-up loses this long). */
#define UVPOOL_RENDEZVOUS_NS (1000u * 1000u * 1000u)

typedef struct {
  uv_mutex_t mu;
  uv_cond_t cond;
  unsigned target, arrived, finished;
  uint64_t deadline_ns;
  uv_work_t reqs[];
} uvpool_naming_t;

static unsigned uvpool_threads(void) {
  const char *v = getenv("UV_THREADPOOL_SIZE");
  if (v == NULL) return UVPOOL_THREADS_DEFAULT;
  unsigned n = (unsigned)atoi(v); /* as libuv reads it: a negative value wraps to the maximum */
  if (n == 0) n = 1;
  return n > UVPOOL_THREADS_MAX ? UVPOOL_THREADS_MAX : n;
}

static void uvpool_name_work_cb(uv_work_t *req) {
  uvpool_naming_t *r = req->data;
  tr_thread_name("tr-uvpool");
  uv_mutex_lock(&r->mu);
  r->arrived++;
  uv_cond_broadcast(&r->cond);
  /* held here until every item runs: no two items share a thread */
  while (r->arrived < r->target) {
    uint64_t now = uv_hrtime();
    if (now >= r->deadline_ns || uv_cond_timedwait(&r->cond, &r->mu, r->deadline_ns - now) == UV_ETIMEDOUT) break;
  }
  uv_mutex_unlock(&r->mu);
}

static void uvpool_name_after_cb(uv_work_t *req, int status) {
  uvpool_naming_t *r = req->data;
  (void)status; /* cancelled only at shutdown: nothing to name then */
  if (++r->finished < r->target) return;
  uv_cond_destroy(&r->cond);
  uv_mutex_destroy(&r->mu);
  free(r);
}

int tr_uvpool_name_threads(uv_loop_t *loop) {
  unsigned n = uvpool_threads();
  uvpool_naming_t *r = calloc(1, sizeof *r + n * sizeof r->reqs[0]);
  if (r == NULL) return UV_ENOMEM;
  int rc = uv_mutex_init(&r->mu);
  if (rc != 0) {
    free(r);
    return rc;
  }
  if ((rc = uv_cond_init(&r->cond)) != 0) {
    uv_mutex_destroy(&r->mu);
    free(r);
    return rc;
  }
  r->target = n;
  r->deadline_ns = uv_hrtime() + UVPOOL_RENDEZVOUS_NS;
  unsigned queued = 0;
  for (; queued < n; queued++) {
    r->reqs[queued].data = r;
    if ((rc = uv_queue_work(loop, &r->reqs[queued], uvpool_name_work_cb, uvpool_name_after_cb)) != 0) break;
  }
  if (queued == n) return 0;
  uv_mutex_lock(&r->mu); /* the queued ones must not wait for items that never run */
  r->target = queued;
  uv_cond_broadcast(&r->cond);
  uv_mutex_unlock(&r->mu);
  if (queued == 0) {
    uv_cond_destroy(&r->cond);
    uv_mutex_destroy(&r->mu);
    free(r);
  }
  return rc;
}

/* Takes a fair share of the queue: enough to amortise the lock, not so much
 * that other workers idle while one holds a long list. */
static tr_job_t *take_share(tr_pool_t *pool) {
  size_t depth = atomic_load(&pool->depth);
  size_t share = depth / pool->n;
  if (share < 1) share = 1;
  if (share > TR_WORKER_GRAB_MAX) share = TR_WORKER_GRAB_MAX;
  tr_job_t *first = pool->head, *last = first;
  for (size_t i = 1; i < share && last->next; i++) last = last->next;
  pool->head = last->next;
  if (pool->head == NULL) pool->tail = NULL;
  last->next = NULL;
  size_t taken = 0;
  for (tr_job_t *j = first; j; j = j->next) taken++;
  atomic_fetch_sub(&pool->depth, taken);
  return first;
}

static void worker_main(void *arg) {
  tr_worker_t *w = arg;
  tr_pool_t *pool = w->pool;
  char name[TR_THREAD_NAME_BYTES_MAX + 1];
  snprintf(name, sizeof name, "tr-verify-%u", w->index);
  tr_thread_name(name);
  for (;;) {
    uv_mutex_lock(&pool->mu);
    while (pool->head == NULL && !pool->stopping) uv_cond_wait(&pool->cond, &pool->mu);
    if (pool->head == NULL) {
      uv_mutex_unlock(&pool->mu);
      return;
    }
    tr_job_t *jobs = take_share(pool);
    uv_mutex_unlock(&pool->mu);
    uint64_t t0 = tr_clock_ns();
    size_t n = 0;
    for (tr_job_t *j = jobs; j; j = j->next, n++) pool->work(w, j);
    atomic_fetch_add(&pool->busy_ns, tr_clock_ns() - t0);
    atomic_fetch_add(&pool->jobs_done, n);
    /* the whole share goes back as one message: one lock, one wake-up */
    while (tr_mailbox_post(pool->done, TR_MSG_JOB_DONE, jobs) != 0) {
      log_error("pool", "out of memory posting finished jobs; retrying");
      uv_sleep(10);
    }
  }
}

int tr_pool_start(tr_pool_t *pool, unsigned n, const char *db_path, tr_pool_work_fn work,
                  tr_mailbox_t *done, void *ctx, char *err, size_t errlen) {
  memset(pool, 0, sizeof *pool);
  pool->n = n;
  pool->work = work;
  pool->done = done;
  pool->ctx = ctx;
  snprintf(pool->db_path, sizeof pool->db_path, "%s", db_path);
  if (uv_mutex_init(&pool->mu) != 0 || uv_cond_init(&pool->cond) != 0) return -1;
  pool->workers = calloc(n, sizeof *pool->workers);
  if (pool->workers == NULL) return -1;
  for (unsigned i = 0; i < n; i++) {
    tr_worker_t *w = &pool->workers[i];
    w->pool = pool;
    w->index = i;
    int rc = tr_store_open(db_path, TR_STORE_READONLY, &w->reader, err, errlen);
    if (rc == 0) rc = tr_ledger_load(&w->ledger, w->reader);
    if (rc != 0) {
      tr_pool_stop(pool);
      return rc;
    }
    if (uv_thread_create(&w->thread, worker_main, w) != 0) {
      snprintf(err, errlen, "cannot start worker thread %u", i);
      tr_pool_stop(pool);
      return -1;
    }
    w->started = true;
  }
  return 0;
}

void tr_pool_push(tr_pool_t *pool, tr_job_t *job) {
  job->next = NULL;
  uv_mutex_lock(&pool->mu);
  if (pool->tail) pool->tail->next = job;
  else pool->head = job;
  pool->tail = job;
  atomic_fetch_add(&pool->depth, 1);
  uv_cond_signal(&pool->cond);
  uv_mutex_unlock(&pool->mu);
}

void tr_pool_push_list(tr_pool_t *pool, tr_job_t *head, tr_job_t *tail, size_t n) {
  tail->next = NULL;
  uv_mutex_lock(&pool->mu);
  if (pool->tail) pool->tail->next = head;
  else pool->head = head;
  pool->tail = tail;
  atomic_fetch_add(&pool->depth, n);
  if (n > 1) uv_cond_broadcast(&pool->cond); /* idle workers share the new jobs */
  else uv_cond_signal(&pool->cond);
  uv_mutex_unlock(&pool->mu);
}

size_t tr_pool_depth(tr_pool_t *pool) { return atomic_load(&pool->depth); }

void tr_pool_stop(tr_pool_t *pool) {
  if (pool->workers == NULL) return;
  uv_mutex_lock(&pool->mu);
  pool->stopping = true;
  uv_cond_broadcast(&pool->cond);
  uv_mutex_unlock(&pool->mu);
  for (unsigned i = 0; i < pool->n; i++) {
    if (pool->workers[i].started) uv_thread_join(&pool->workers[i].thread);
    tr_store_close(pool->workers[i].reader);
  }
  free(pool->workers);
  pool->workers = NULL;
  uv_cond_destroy(&pool->cond);
  uv_mutex_destroy(&pool->mu);
}
