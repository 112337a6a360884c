/* walcheck.c — periodic passive WAL checkpoints on the libuv thread pool. */
#include "walcheck.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

static void walcheck_work_cb(uv_work_t *req) {
  tr_walcheck_t *w = req->data;
  w->err[0] = '\0';
  if (w->conn == NULL && tr_store_open(w->db_path, 0, &w->conn, w->err, sizeof w->err) != 0) {
    w->rc = -1;
    return;
  }
  int frames = 0, done = 0;
  w->rc = tr_store_wal_checkpoint(w->conn, &frames, &done);
  if (w->rc != 0) snprintf(w->err, sizeof w->err, "%s", tr_store_errmsg(w->conn));
}

static void walcheck_after_cb(uv_work_t *req, int status) {
  tr_walcheck_t *w = req->data;
  w->running = false;
  if (status != 0 || w->rc != 0)
    log_warn("store", "WAL checkpoint did not run: %s; will retry",
             status != 0 ? uv_strerror(status) : w->err[0] ? w->err : "the checkpoint failed");
  if (w->stopping) {
    tr_store_close(w->conn); /* the work is over: no thread uses it now */
    w->conn = NULL;
  }
}

static void walcheck_timer_cb(uv_timer_t *t) {
  tr_walcheck_t *w = t->data;
  if (w->running || w->stopping) return;
  w->work.data = w;
  if (uv_queue_work(t->loop, &w->work, walcheck_work_cb, walcheck_after_cb) == 0) w->running = true;
}

int tr_walcheck_start(uv_loop_t *loop, tr_walcheck_t *w, const char *db_path) {
  memset(w, 0, sizeof *w);
  snprintf(w->db_path, sizeof w->db_path, "%s", db_path);
  int rc = uv_timer_init(loop, &w->timer);
  if (rc != 0) return rc;
  w->timer.data = w;
  return uv_timer_start(&w->timer, walcheck_timer_cb, TR_WALCHECK_INTERVAL_MS, TR_WALCHECK_INTERVAL_MS);
}

void tr_walcheck_stop(tr_walcheck_t *w) {
  w->stopping = true;
  uv_timer_stop(&w->timer);
  uv_close((uv_handle_t *)&w->timer, NULL);
  if (!w->running) {
    tr_store_close(w->conn);
    w->conn = NULL;
  }
}
