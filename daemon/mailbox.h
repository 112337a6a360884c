/* mailbox.h — how threads hand results back to the event loop.
 *
 * As libuv's own thread pool does (uv__work_done): producers push onto a
 * mutex-guarded list and call uv_async_send; sends coalesce, so the loop's
 * callback drains the whole list each time.  Never polled.
 */
#ifndef TR_MAILBOX_H
#define TR_MAILBOX_H

#include <stddef.h>
#include <uv.h>

typedef enum {
  TR_MSG_JOB_DONE = 1,   /* a worker finished jobs (payload: tr_job_t * chained by ->next) */
  TR_MSG_SEQ_DONE,       /* the sequencer finished a batch (payload: tr_seq_batch_t *) */
  TR_MSG_DERIVED,        /* the derived writer moved its mark, or failed (no payload) */
} tr_msg_kind_t;

typedef struct tr_msg {
  struct tr_msg *next;
  tr_msg_kind_t kind;
  void *payload;
} tr_msg_t;

typedef struct tr_mailbox tr_mailbox_t;
typedef void (*tr_mailbox_cb)(tr_mailbox_t *box, tr_msg_t *msg); /* owns msg */

struct tr_mailbox {
  uv_async_t async;
  uv_mutex_t mu;
  tr_msg_t *head, *tail;
  tr_mailbox_cb cb;
  void (*drained)(tr_mailbox_t *box); /* optional: after each drain, so work can be done once per wake-up */
  void *data;
};

int tr_mailbox_init(uv_loop_t *loop, tr_mailbox_t *box, tr_mailbox_cb cb);
/* Thread-safe. Returns 0 or UV_ENOMEM (then the payload was not posted). */
int tr_mailbox_post(tr_mailbox_t *box, tr_msg_kind_t kind, void *payload);
void tr_mailbox_close(tr_mailbox_t *box, uv_close_cb cb);

#endif
