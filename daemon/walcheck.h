/* walcheck.h — most of the WAL checkpoint work off the writer's path.
 *
 * A timer hands a PASSIVE checkpoint to libuv's thread pool twice a second;
 * it copies committed WAL frames into the database file beside the writer and
 * readers without blocking either.  The writer's own automatic checkpoint
 * still runs (only it can let the WAL restart from the beginning, keeping the
 * file bounded), but finds most frames already copied.
 */
#ifndef TR_WALCHECK_H
#define TR_WALCHECK_H

#include <stdbool.h>
#include <uv.h>

#include "tr_store.h"

#define TR_WALCHECK_INTERVAL_MS 500 /* the WAL grows ~1-2 MB/s per 10k tx/s: keep it to a few MB */

typedef struct {
  uv_timer_t timer;
  uv_work_t work;
  bool running, stopping;
  int rc;
  tr_store_t *conn;            /* used only inside the work callback */
  char err[512];               /* why the connection could not be opened */
  char db_path[4096];
} tr_walcheck_t;

int tr_walcheck_start(uv_loop_t *loop, tr_walcheck_t *w, const char *db_path);
/* Stops the timer; a checkpoint in progress finishes, then the connection closes. */
void tr_walcheck_stop(tr_walcheck_t *w);

#endif
