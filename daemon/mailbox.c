/* mailbox.c — results from worker and sequencer threads to the loop. */
#include "mailbox.h"

#include <stdlib.h>

static void mailbox_async_cb(uv_async_t *async) {
  tr_mailbox_t *box = async->data;
  uv_mutex_lock(&box->mu);
  tr_msg_t *msg = box->head;
  box->head = box->tail = NULL;
  uv_mutex_unlock(&box->mu);
  while (msg) {
    tr_msg_t *next = msg->next;
    box->cb(box, msg);
    msg = next;
  }
  if (box->drained) box->drained(box);
}

int tr_mailbox_init(uv_loop_t *loop, tr_mailbox_t *box, tr_mailbox_cb cb) {
  box->head = box->tail = NULL;
  box->cb = cb;
  box->drained = NULL;
  int rc = uv_mutex_init(&box->mu);
  if (rc != 0) return rc;
  rc = uv_async_init(loop, &box->async, mailbox_async_cb);
  if (rc != 0) {
    uv_mutex_destroy(&box->mu);
    return rc;
  }
  box->async.data = box;
  return 0;
}

int tr_mailbox_post(tr_mailbox_t *box, tr_msg_kind_t kind, void *payload) {
  tr_msg_t *msg = malloc(sizeof *msg);
  if (msg == NULL) return UV_ENOMEM;
  msg->next = NULL;
  msg->kind = kind;
  msg->payload = payload;
  uv_mutex_lock(&box->mu);
  if (box->tail) box->tail->next = msg;
  else box->head = msg;
  box->tail = msg;
  uv_mutex_unlock(&box->mu);
  return uv_async_send(&box->async);
}

void tr_mailbox_close(tr_mailbox_t *box, uv_close_cb cb) {
  uv_close((uv_handle_t *)&box->async, cb);
}
