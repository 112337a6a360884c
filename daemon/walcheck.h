/* walcheck.h — most of the WAL checkpoint work off the writer's path.
 *
 * A timer hands a PASSIVE checkpoint to libuv's thread pool ten times a
 * second; it copies committed WAL frames into the database file beside the
 * writer and readers without blocking either.  The writer's own automatic
 * checkpoint still runs (only it can let the WAL restart from the beginning,
 * keeping the file bounded), but finds most frames already copied.
 *
 * It blocks no lock, but its page writes and the database's fsync share the
 * disk with the journal's fdatasync, and a group commit that lands behind a
 * large one waits: commits over 10 ms came ~once a second at 12,000 tx/s,
 * and they set the p99.  Small checkpoints make short waits (half load,
 * three runs each: p99 19.3-22.2 ms every 500 ms, 13.3-14.6 every 100 ms,
 * 12.7-13.8 every 50 ms; 28-31 every 3 s), for ~0.5-1 us a tx more on
 * libuv's pool at full load, where the p99 fell too (42-44 -> 36-37 ms).
 */
#ifndef TR_WALCHECK_H
#define TR_WALCHECK_H

#include <stdbool.h>
#include <uv.h>

#include "sequencer.h"
#include "tr_store.h"

#define TR_WALCHECK_INTERVAL_MS 100 /* each checkpoint copies what 100 ms of commits wrote */

typedef struct {
  uv_timer_t timer;
  uv_work_t work;
  bool running, stopping;
  int rc;
  bool damaged;                /* the failure means a damaged file (tr_store_failure_is_fatal) */
  char why[400];               /* the failure in words, from the work callback */
  tr_sequencer_t *seq;         /* halted when a checkpoint finds the database damaged */
  tr_store_t *conn;            /* used only inside the work callback */
  char db_path[4096];
} tr_walcheck_t;

int tr_walcheck_start(uv_loop_t *loop, tr_walcheck_t *w, const char *db_path, tr_sequencer_t *seq);
/* Stops the timer; a checkpoint in progress finishes, then the connection closes. */
void tr_walcheck_stop(tr_walcheck_t *w);

#endif
