/* subscribe.h — ledger.subscribe (PROTOCOL.md §5.2): one ledger.entry
 * notification per journal entry, in seq order, backlog first, then live.
 *
 * Loop thread, except tr_sub_read_page (a worker).  A subscription's next seq
 * decides where its entries come from: at or below the last seq the loop has
 * seen committed (live_head) they are read from the store by a worker, one
 * bounded page at a time and only while the connection has room for it;
 * above it they come from the batches the sequencer hands the loop, rendered
 * from the receipts it made already.  The loop sees every batch in seq order,
 * so a subscription turns live exactly when its next seq is past live_head:
 * no gap and no duplicate at the seam.  The sequencer thread is never asked
 * for anything and never waits: a live subscriber whose connection holds
 * TR_SUB_OUT_BYTES_MAX unwritten gets ledger.subscription_end instead.
 */
#ifndef TR_SUBSCRIBE_H
#define TR_SUBSCRIBE_H

#include <stdbool.h>
#include <stddef.h>

#include "job.h"
#include "pool.h"
#include "sequencer.h"

struct tr_daemon;
struct tr_conn;
typedef struct tr_sub tr_sub_t;

int tr_sub_start(struct tr_daemon *d);
void tr_sub_stop(struct tr_daemon *d);
/* A job is finished: its subscribe / unsubscribe elements get their answers. */
void tr_sub_on_job(struct tr_daemon *d, tr_job_t *job);
/* The sequencer's hook: a committed batch, before its jobs move on. */
void tr_sub_on_committed(struct tr_daemon *d, const tr_seq_batch_t *b);
/* A backlog page came back from a worker (job->feed). */
void tr_sub_on_page(struct tr_daemon *d, tr_job_t *job);
/* Worker: reads the page job->feed asked for. */
void tr_sub_read_page(tr_worker_t *w, tr_job_t *job);
/* The connection wrote output: backlogs waiting for room go on. */
void tr_sub_on_written(struct tr_daemon *d, struct tr_conn *c);
/* The connection is closing: its subscriptions end. */
void tr_sub_conn_closed(struct tr_daemon *d, struct tr_conn *c);

/* server.c, for this module. */
/* Queues notification lines (each ending "\n"; text is taken) on c after
 * what is queued already. */
void tr_server_notify(struct tr_conn *c, char *text, size_t len);
/* Output bytes made for c and not yet written. */
size_t tr_server_unwritten(struct tr_conn *c);
/* The head of c's subscription list. */
tr_sub_t **tr_server_conn_subs(struct tr_conn *c);

#endif
