/* pool.c — worker threads for parsing, signature checks and queries. */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tr_limits.h"

uint64_t tr_clock_ns(void) { return uv_hrtime(); }

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
