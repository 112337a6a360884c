/* daemon.h — the state of one running tranched, shared by its modules.
 *
 * Threads: the loop thread owns connections, tickets and the reorder
 * buffer; worker threads own their read connections; the sequencer thread
 * owns the writer.  Fields read across threads are atomics or fixed at start.
 */
#ifndef TR_DAEMON_H
#define TR_DAEMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "http.h"
#include "mailbox.h"
#include "metrics.h"
#include "pool.h"
#include "sequencer.h"
#include "walcheck.h"
#include "tr_node.h"
#include "tr_note.h"

/* Tickets between the next to forward and the next to give out; reading pauses
 * before the window is full (server.c), so a slot is never reused too early. */
#define TR_REORDER_SLOTS (TR_RPC_CONNECTIONS_MAX * TR_RPC_INFLIGHT_MAX * 2)

typedef struct {
  atomic_ullong connections_accepted, connections_refused, connections_open;
  atomic_ullong connections_refused_peer; /* refused: their address held its share (also in connections_refused) */
  atomic_ullong connections_evicted;     /* closed to make room for a newcomer */
  atomic_ullong deadline_closed;         /* a request did not arrive whole in time */
  atomic_ullong connections_stalled;     /* closed: over their output bound and reading none of it */
  atomic_ullong junk_closed;             /* first bytes neither HTTP nor JSON */
  atomic_ullong http_requests;
  atomic_ullong ws_upgrades;             /* GET /ws switched to WebSocket */
  tr_hist_t request_seconds;             /* taking a request to its answer being ready */
  atomic_ullong lines, requests, overloaded, line_too_long, parse_errors;
  atomic_ullong inflight_bytes;
  atomic_size_t out_unwritten;         /* response bytes made and not yet written, all connections */
  atomic_ullong output_parked;         /* jobs that waited for their client to read */
  atomic_ullong subscriptions_open;    /* ledger.subscribe feeds now */
  atomic_ullong subscriptions_slow;    /* ended with slow_consumer */
} tr_server_stats_t;

typedef struct tr_daemon {
  uv_loop_t *loop;
  char datadir[TR_PATH_MAX];
  tr_config_t config;
  unsigned workers;
  char chain[TR_CHAIN_ID_CHARS_MAX + 1];
  char node_key_hex[65];
  char vkey[TR_NOTE_VKEY_BUF_BYTES];
  uint64_t started_ms;

  tr_mailbox_t mailbox;
  tr_pool_t pool;
  tr_sequencer_t seq;
  struct tr_cluster *cluster;   /* cluster mode (§8); NULL on a single node */
  tr_walcheck_t walcheck;

  /* loop thread only */
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t shutdown_timer;
  bool stopping;
  uint64_t next_ticket, next_forward;
  tr_job_t **reorder;           /* TR_REORDER_SLOTS, indexed by ticket % slots */
  struct tr_conn *conns;        /* open connections */
  struct tr_conn *flush_list;   /* connections with new responses, written after the mailbox drains */
  size_t jobs_in_flight;
  bool budget_paused;           /* some connection waits for TR_INFLIGHT_BYTES_MAX room */
  tr_job_t *tables_wait, *tables_wait_tail; /* jobs whose queries wait for the state tables (by ->next) */
  char listen_host[128];        /* config.listen's host, for the HTTP Host allowlist */
  tr_http_policy_t http_policy;
  struct tr_sub *subs;          /* every subscription (subscribe.c) */
  size_t subs_n;
  uint64_t live_head;           /* the last seq seen committed here (subscribe.c) */
  uv_timer_t sub_timer;         /* backlogs waiting for a receipt to be written */
  uv_timer_t stall_timer;       /* the sweep for clients that stopped reading (server.c) */

  tr_server_stats_t stats;
} tr_daemon_t;

/* rpc.c: the work a worker does on a job (phase 0 or 1). */
void tr_rpc_work(tr_worker_t *w, tr_job_t *job);
/* rpc.c: the OpenRPC document of the method table. */
cJSON *tr_rpc_discover(void);

/* server.c */
int tr_server_start(tr_daemon_t *d, char *err, size_t errlen);
void tr_server_on_message(tr_mailbox_t *box, tr_msg_t *msg);
void tr_server_on_drained(tr_mailbox_t *box);
void tr_server_stop_accepting(tr_daemon_t *d);
bool tr_server_idle(tr_daemon_t *d);
void tr_server_close_all(tr_daemon_t *d);

#endif
