/* cluster.c — C-Raft behind the seam of cluster.h, on its own thread
 * (tr-raft) with its own libuv loop, so raft's timers and network never wait
 * for the JSON-RPC loop and a slow fsync of the journal never delays a
 * heartbeat.
 *
 * Settings, and why:
 *   - pre-vote on: an isolated node's term otherwise climbs, and on healing
 *     it deposes a healthy leader;
 *   - election timeout cluster_election_timeout (config, default
 *     TR_CLUSTER_ELECTION_TIMEOUT_MS), heartbeats ten times as often: a
 *     failover takes one to two election timeouts;
 *   - snapshots every cluster_snapshot_every committed entries (config,
 *     default TR_CLUSTER_SNAPSHOT_EVERY), keeping TR_CLUSTER_SNAPSHOT_TRAILING
 *     (at most half of that) behind it, so a node that was down briefly
 *     catches up from the log and one that was down long (or is new) from a
 *     snapshot.
 */
#include "cluster.h"

#include <errno.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "pool.h"
#include "tr_err.h"
#include "tr_limits.h"

#define TICK_MS 50u

typedef enum { OP_PROPOSE, OP_TRANSFER, OP_ADD, OP_REMOVE } op_kind_t;

typedef struct op {
  struct op *next;
  op_kind_t kind;
  uint64_t token, id;
  void *buf;
  size_t len;
  char address[128];
  tr_cluster_done_fn done;
  void *data;
  tr_cluster_t *c;
  union {
    struct raft_apply apply;
    struct raft_transfer transfer;
    struct raft_change change;
  } req;
  bool assign_next;                  /* OP_ADD: after the add, make it a voter */
  bool finished;                     /* OP_TRANSFER: answered, kept on c->retired (transfer_cb) */
  char why[160];                     /* an error text made here */
} op_t;

struct tr_cluster {
  uv_thread_t thread;
  uv_loop_t loop;
  uv_async_t wake;
  uv_timer_t tick;
  struct raft_uv_transport transport;
  struct raft_io io;
  struct raft_fsm fsm;
  struct raft raft;
  struct raft_barrier barrier;
  bool barrier_pending;
  op_t *retired;                     /* finished transfers raft may still touch: freed when the loop ends */
  char dir[TR_PATH_MAX];
  char address[128];
  uint64_t id;
  tr_config_t config;                /* the nodes and their rpc addresses */
  tr_cluster_post_fn post;
  void *ctx;

  uv_mutex_t mu;                     /* guards everything below */
  uv_cond_t cond;
  op_t *ops, *ops_tail;
  bool stopping;
  bool closed;                       /* the raft thread has ended */
  bool started, start_failed;
  char start_err[TR_PATH_MAX + 512];
  tr_cluster_status_t status;
  char added_rpc[TR_CLUSTER_NODES_MAX][128]; /* rpc addresses given to cluster.add */
  uint64_t added_id[TR_CLUSTER_NODES_MAX];

  atomic_bool leader;                /* raft says this node leads (the barrier may still be pending) */
  unsigned short last_state;         /* tr-raft only */
  uint64_t last_term, ready_term;    /* tr-raft only */
  bool opening;                      /* inside raft_start (tr-raft only) */
  bool reopen_wanted, reopening;         /* raft reopens (tr-raft only): after a leader's snapshot, or when stuck */
  struct raft_tracer tracer;         /* counts the leader's appends this node rejects (stuck_check) */
  unsigned long rejects, rejects_seen;
  uint64_t stored_seen;
  unsigned stuck_ticks;
  bool trace_stderr;                 /* LIBRAFT_TRACE: raft's trace goes on to stderr too */
  bool raft_broken;                  /* reopening failed: the node needs a restart */
};

static const char *const role_names[] = TR_CLUSTER_ROLE_NAMES;

static const char *role_name(unsigned short state) { return state < 4 ? role_names[state] : "unavailable"; }

/* ---- events to the sink ---- */

static tr_cluster_event_t *event_new(tr_cluster_t *c, tr_cluster_event_kind_t kind) {
  tr_cluster_event_t *ev;
  while ((ev = calloc(1, sizeof *ev)) == NULL) { /* an event is owed: never drop it */
    log_error("cluster", "out of memory for an event; retrying");
    uv_sleep(10);
  }
  ev->kind = kind;
  ev->from = c;
  return ev;
}

/* Posts a SNAPSHOT or RESTORE event and waits for the sink's answer. */
static int event_wait(tr_cluster_t *c, tr_cluster_event_t *ev) {
  c->post(c->ctx, ev);
  uv_mutex_lock(&c->mu);
  while (!ev->done) uv_cond_wait(&c->cond, &c->mu);
  uv_mutex_unlock(&c->mu);
  int rc = ev->rc;
  return rc;
}

void tr_cluster_event_done(tr_cluster_t *c, tr_cluster_event_t *ev, int rc) {
  uv_mutex_lock(&c->mu);
  ev->rc = rc;
  ev->done = true;
  uv_cond_broadcast(&c->cond);
  uv_mutex_unlock(&c->mu);
}

/* ---- the state machine: everything goes to the sink ---- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
  tr_cluster_t *c = fsm->data;
  tr_cluster_event_t *ev = event_new(c, TR_CLUSTER_COMMITTED);
  while ((ev->buf = malloc(buf->len ? buf->len : 1)) == NULL) {
    log_error("cluster", "out of memory copying a committed batch; retrying");
    uv_sleep(10);
  }
  memcpy(ev->buf, buf->base, buf->len);
  ev->len = buf->len;
  c->post(c->ctx, ev);
  *result = NULL;
  return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
  tr_cluster_t *c = fsm->data;
  tr_cluster_event_t *ev = event_new(c, TR_CLUSTER_SNAPSHOT);
  int rc = event_wait(c, ev);
  if (rc == 0) { /* raft frees what it is given with raft_free */
    *bufs = raft_malloc(sizeof **bufs);
    void *base = raft_malloc(ev->out_len ? ev->out_len : 1);
    if (*bufs == NULL || base == NULL) {
      raft_free(*bufs);
      raft_free(base);
      rc = RAFT_NOMEM;
    } else {
      memcpy(base, ev->out, ev->out_len);
      (*bufs)[0].base = base;
      (*bufs)[0].len = ev->out_len;
      *n_bufs = 1;
      log_info("cluster", "snapshot taken: %zu bytes", ev->out_len);
    }
    free(ev->out);
  } else {
    log_warn("cluster", "no snapshot taken: %s", tr_strerror(rc));
    rc = RAFT_IOERR;
  }
  free(ev);
  return rc;
}

/* Raft hands over the buffer's memory on success (snapshotRestore). */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  tr_cluster_t *c = fsm->data;
  tr_cluster_event_t *ev = event_new(c, TR_CLUSTER_RESTORE);
  ev->buf = buf->base;
  ev->len = buf->len;
  int rc = event_wait(c, ev);
  free(ev);
  if (rc != 0) {
    log_error("cluster", "cannot install a snapshot of %zu bytes: %s", buf->len, tr_strerror(rc));
    return RAFT_IOERR;
  }
  raft_free(buf->base);
  if (!c->opening) c->reopen_wanted = true; /* sent by the leader: reopen raft (reopen_closed) */
  return 0;
}

/* ---- status and leadership, on every tick ---- */

/* Under c->mu (cluster.add may note an address from another thread). */
static const char *peer_rpc(tr_cluster_t *c, uint64_t id) {
  for (size_t i = 0; i < c->config.cluster_nodes_n; i++)
    if (c->config.cluster_nodes[i].id == id) return c->config.cluster_nodes[i].rpc;
  for (size_t i = 0; i < TR_CLUSTER_NODES_MAX; i++)
    if (c->added_id[i] == id) return c->added_rpc[i];
  return NULL;
}

static void barrier_cb(struct raft_barrier *req, int status) {
  tr_cluster_t *c = req->data;
  c->barrier_pending = false;
  if (status != 0) {
    log_warn("cluster", "the leader's barrier failed (%s); trying again", raft_strerror(status));
    return; /* the next tick retries while it still leads */
  }
  if (raft_state(&c->raft) != RAFT_LEADER || c->raft.current_term != c->last_term) return;
  c->ready_term = c->last_term;
  tr_cluster_event_t *ev = event_new(c, TR_CLUSTER_LEADER_READY);
  ev->term = c->ready_term;
  c->post(c->ctx, ev);
  log_info("cluster", "leader of term %llu: every earlier entry is applied; taking writes",
           (unsigned long long)c->ready_term);
}

static void status_refresh(tr_cluster_t *c) {
  struct raft *r = &c->raft;
  tr_cluster_status_t st = {.id = c->id, .term = r->current_term, .commit = r->commit_index,
                            .applied = r->last_applied, .role = role_name(r->state)};
  raft_id leader_id = 0;
  const char *leader_address = NULL;
  raft_leader(r, &leader_id, &leader_address);
  st.leader = leader_id;
  st.last_index = r->last_stored;
  uv_mutex_lock(&c->mu);
  for (unsigned i = 0; i < r->configuration.n && st.n < sizeof st.nodes / sizeof st.nodes[0]; i++) {
    const struct raft_server *s = &r->configuration.servers[i];
    tr_cluster_peer_t *p = &st.nodes[st.n++];
    p->id = s->id;
    snprintf(p->raft, sizeof p->raft, "%s", s->address);
    const char *rpc = peer_rpc(c, s->id);
    snprintf(p->rpc, sizeof p->rpc, "%s", rpc ? rpc : "");
    if (s->role == RAFT_SPARE) p->role = "spare";
    else if (s->role == RAFT_STANDBY) p->role = "standby";
    else if (s->id == leader_id) p->role = "leader";
    else if (s->id == c->id) p->role = role_name(r->state);
    else p->role = "follower";
    if (r->state == RAFT_LEADER && r->leader_state.progress != NULL) {
      p->known_progress = true;
      p->match = s->id == c->id ? r->last_stored : r->leader_state.progress[i].match_index;
    }
  }
  st.role_changes = c->status.role_changes;
  c->status = st;
  uv_mutex_unlock(&c->mu);
}

static void leadership_check(tr_cluster_t *c) {
  struct raft *r = &c->raft;
  unsigned short state = r->state;
  uint64_t term = r->current_term;
  if (state != c->last_state || (state == RAFT_LEADER && term != c->last_term)) {
    raft_id leader_id = 0;
    const char *leader_address = NULL;
    raft_leader(r, &leader_id, &leader_address);
    if (leader_id) log_info("cluster", "node %llu is now %s in term %llu (leader: node %llu)", (unsigned long long)c->id,
                            role_name(state), (unsigned long long)term, (unsigned long long)leader_id);
    else log_info("cluster", "node %llu is now %s in term %llu (no leader known)", (unsigned long long)c->id,
                  role_name(state), (unsigned long long)term);
    if (c->last_state == RAFT_LEADER) {
      atomic_store(&c->leader, false);
      c->ready_term = 0;
      c->post(c->ctx, event_new(c, TR_CLUSTER_LEADER_LOST));
    }
    uv_mutex_lock(&c->mu);
    c->status.role_changes++;
    uv_mutex_unlock(&c->mu);
    c->last_state = state;
    c->last_term = term;
    if (state == RAFT_LEADER) atomic_store(&c->leader, true);
  }
  if (state == RAFT_LEADER && c->ready_term != term && !c->barrier_pending) {
    c->barrier.data = c;
    int rv = raft_barrier(r, &c->barrier, barrier_cb);
    if (rv == 0) c->barrier_pending = true;
    else log_warn("cluster", "cannot start the leader's barrier: %s", raft_strerror(rv));
  }
}

static void reopen_if_wanted(tr_cluster_t *c);

/* C-Raft 0.15's leader can believe a follower matched entries the follower
 * does not hold (seen in the simulation, tests/unit/test_cluster_sim.c, and
 * after snapshot installs); it then ignores that follower's rejections for
 * good and the follower takes no entry again.  A follower whose log the
 * leader's appends keep rejecting for STUCK_TICKS ticks without storing
 * anything reopens raft, as after a snapshot install: its connections drop,
 * the leader's sends fail and it probes this node afresh. */
#define STUCK_TICKS 40 /* 2 s at TICK_MS */

static void trace_emit(struct raft_tracer *t, const char *file, int line, const char *message) {
  tr_cluster_t *c = t->impl;
  if (strstr(message, "-> reject") != NULL &&
      (strncmp(message, "no entry at index", 17) == 0 || strncmp(message, "previous term mismatch", 22) == 0))
    c->rejects++;
  if (c->trace_stderr) fprintf(stderr, "LIBRAFT %s:%d %s\n", file, line, message);
}

static void stuck_check(tr_cluster_t *c) {
  struct raft *r = &c->raft;
  bool rejected = c->rejects > c->rejects_seen;
  c->rejects_seen = c->rejects;
  if (r->state != RAFT_FOLLOWER || !rejected || r->last_stored != c->stored_seen) {
    c->stuck_ticks = 0;
    c->stored_seen = r->last_stored;
    return;
  }
  if (++c->stuck_ticks < STUCK_TICKS) return;
  log_warn("cluster", "the leader's appends have been rejected here for %u ms without this node storing an entry "
           "(index %llu): C-Raft 0.15 leaves such a follower stuck; reopening raft so the leader probes it again",
           STUCK_TICKS * TICK_MS, (unsigned long long)r->last_stored);
  c->stuck_ticks = 0;
  c->reopen_wanted = true; /* the same reopen as after a snapshot install */
}

static void tick_cb(uv_timer_t *t) {
  tr_cluster_t *c = t->data;
  if (c->reopening || c->raft_broken) return;
  stuck_check(c);
  reopen_if_wanted(c);
  if (c->reopening) return;
  status_refresh(c); /* first: the sequencer, told of a lost leadership, asks who leads now */
  leadership_check(c);
}

/* ---- operations from other threads ---- */

static void op_finish(op_t *op, const char *error) {
  if (op->done) op->done(op->data, error);
  free(op->buf);
  free(op);
}

/* The proposal's outcome is unknown: the sequencer answers its clients. */
static void proposal_failed(tr_cluster_t *c, uint64_t token, int status) {
  tr_cluster_event_t *ev = event_new(c, TR_CLUSTER_PROPOSE_FAILED);
  ev->token = token;
  ev->status = status;
  c->post(c->ctx, ev);
}

static void apply_cb(struct raft_apply *req, int status, void *result) {
  (void)result;
  op_t *op = req->data;
  if (status != 0) proposal_failed(op->c, op->token, status);
  free(op);
}

/* libraft 0.15 embeds the TimeoutNow message's send request in struct
 * raft_transfer, and when that send waits behind a busy connection it can
 * complete, or be cancelled, after the transfer's callback has run: its
 * callback pointer is then read from our freed op (canonical/raft#396, fixed
 * upstream by #398, after Debian 12's 0.15.0; seen here as a general
 * protection fault in tr-raft right after a transfer).  So a transfer's op
 * is answered here but kept until raft's loop has ended, when no request
 * of raft's is pending; and a second call (the same bug) is ignored.
 * Transfers are operator commands: the list stays short. */
static void transfer_cb(struct raft_transfer *req) {
  op_t *op = req->data;
  if (op->finished) return;
  tr_cluster_t *c = op->c;
  raft_id leader = 0;
  const char *address = NULL;
  raft_leader(&c->raft, &leader, &address);
  if (op->done) op->done(op->data, leader != 0 && leader != c->id ? NULL : "the transfer did not complete");
  free(op->buf);
  op->buf = NULL;
  op->finished = true;
  op->next = c->retired;
  c->retired = op;
}

static void change_cb(struct raft_change *req, int status) {
  op_t *op = req->data;
  tr_cluster_t *c = op->c;
  if (status == 0 && op->assign_next) { /* added as a spare that now catches up: make it a voter */
    op->assign_next = false;
    op->req.change.data = op;
    int rv = raft_assign(&c->raft, &op->req.change, op->id, RAFT_VOTER, change_cb);
    if (rv == 0) return;
    status = rv;
  }
  op_finish(op, status == 0 ? NULL : raft_strerror(status));
}

static void op_run(tr_cluster_t *c, op_t *op) {
  int rv = 0;
  switch (op->kind) {
  case OP_PROPOSE: { /* raft frees what it is given with raft_free */
    struct raft_buffer b = {.base = raft_malloc(op->len), .len = op->len};
    rv = b.base == NULL ? RAFT_NOMEM : 0;
    if (rv == 0) {
      memcpy(b.base, op->buf, op->len);
      op->req.apply.data = op;
      rv = raft_apply(&c->raft, &op->req.apply, &b, 1, apply_cb);
      if (rv != 0) raft_free(b.base);
    }
    free(op->buf);
    op->buf = NULL;
    if (rv != 0) {
      proposal_failed(c, op->token, rv);
      free(op);
    }
    return; /* else apply_cb frees op */
  }
  case OP_TRANSFER:
    op->req.transfer.data = op;
    rv = raft_transfer(&c->raft, &op->req.transfer, op->id, transfer_cb);
    break;
  case OP_ADD:
    op->req.change.data = op;
    op->assign_next = true;
    rv = raft_add(&c->raft, &op->req.change, op->id, op->address, change_cb);
    break;
  case OP_REMOVE:
    op->req.change.data = op;
    rv = raft_remove(&c->raft, &op->req.change, op->id, change_cb);
    break;
  }
  if (rv == RAFT_NOTLEADER) { /* say where to go instead */
    raft_id leader = 0;
    const char *address = NULL;
    raft_leader(&c->raft, &leader, &address);
    if (leader != 0)
      snprintf(op->why, sizeof op->why, "this node is not the leader: run it on the data directory of node %llu, "
               "the leader", (unsigned long long)leader);
    else
      snprintf(op->why, sizeof op->why, "this node is not the leader and none is known (an election): try again");
    op_finish(op, op->why);
    return;
  }
  if (rv != 0) op_finish(op, raft_strerror(rv));
}

static void raft_closed(struct raft *r) {
  tr_cluster_t *c = r->data;
  raft_uv_close(&c->io);
  raft_uv_tcp_close(&c->transport);
  uv_close((uv_handle_t *)&c->tick, NULL);
  uv_close((uv_handle_t *)&c->wake, NULL);
}

static void wake_cb(uv_async_t *a) {
  tr_cluster_t *c = a->data;
  uv_mutex_lock(&c->mu);
  op_t *ops = c->ops;
  c->ops = c->ops_tail = NULL;
  bool stopping = c->stopping;
  uv_mutex_unlock(&c->mu);
  for (op_t *op = ops, *next; op; op = next) {
    next = op->next;
    if (stopping) op_finish(op, "the node is stopping");
    else op_run(c, op);
  }
  if (!stopping || uv_is_closing((uv_handle_t *)&c->tick)) return;
  uv_timer_stop(&c->tick);
  if (c->reopening) return; /* reopen_closed sees the stop and closes instead of reopening */
  if (c->raft_broken) { /* raft is closed already, and what the failed reopen made may hold the loop */
    uv_close((uv_handle_t *)&c->tick, NULL);
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_stop(&c->loop);
    return;
  }
  raft_close(&c->raft, raft_closed); /* here, never inside an apply callback */
}

/* After tr_cluster_stop an operation fails at once (a proposal as an event). */
static void ops_push(tr_cluster_t *c, op_t *op) {
  op->c = c;
  uv_mutex_lock(&c->mu);
  bool closed = c->closed;
  if (!closed) {
    if (c->ops_tail) c->ops_tail->next = op;
    else c->ops = op;
    c->ops_tail = op;
    uv_async_send(&c->wake);
  }
  uv_mutex_unlock(&c->mu);
  if (!closed) return;
  if (op->kind == OP_PROPOSE) {
    proposal_failed(c, op->token, RAFT_SHUTDOWN);
    op->done = NULL;
  }
  op_finish(op, "the node is stopping");
}

void tr_cluster_propose(tr_cluster_t *c, void *buf, size_t len, uint64_t token) {
  op_t *op;
  while ((op = calloc(1, sizeof *op)) == NULL) {
    log_error("cluster", "out of memory for a proposal; retrying");
    uv_sleep(10);
  }
  op->kind = OP_PROPOSE;
  op->buf = buf;
  op->len = len;
  op->token = token;
  ops_push(c, op);
}

static int op_request(tr_cluster_t *c, op_kind_t kind, uint64_t id, const char *address, tr_cluster_done_fn done,
                      void *data) {
  op_t *op = calloc(1, sizeof *op);
  if (op == NULL) return TR_ENOMEM;
  op->kind = kind;
  op->id = id;
  op->done = done;
  op->data = data;
  if (address) snprintf(op->address, sizeof op->address, "%s", address);
  ops_push(c, op);
  return 0;
}

int tr_cluster_transfer(tr_cluster_t *c, uint64_t to, tr_cluster_done_fn done, void *data) {
  return op_request(c, OP_TRANSFER, to, NULL, done, data);
}

int tr_cluster_add(tr_cluster_t *c, uint64_t id, const char *raft_address, tr_cluster_done_fn done, void *data) {
  return op_request(c, OP_ADD, id, raft_address, done, data);
}

int tr_cluster_remove(tr_cluster_t *c, uint64_t id, tr_cluster_done_fn done, void *data) {
  return op_request(c, OP_REMOVE, id, NULL, done, data);
}

void tr_cluster_note_rpc(tr_cluster_t *c, uint64_t id, const char *rpc) {
  uv_mutex_lock(&c->mu);
  const char *known = peer_rpc(c, id);
  if (known && strcmp(known, rpc) == 0) { /* every batch names its proposer: usually known already */
    uv_mutex_unlock(&c->mu);
    return;
  }
  size_t slot = TR_CLUSTER_NODES_MAX;
  for (size_t i = 0; i < TR_CLUSTER_NODES_MAX; i++) {
    if (c->added_id[i] == id) {
      slot = i;
      break;
    }
    if (c->added_id[i] == 0 && slot == TR_CLUSTER_NODES_MAX) slot = i;
  }
  if (slot < TR_CLUSTER_NODES_MAX) {
    c->added_id[slot] = id;
    snprintf(c->added_rpc[slot], sizeof c->added_rpc[slot], "%s", rpc);
  }
  uv_mutex_unlock(&c->mu);
}

void tr_cluster_status(tr_cluster_t *c, tr_cluster_status_t *st) {
  uv_mutex_lock(&c->mu);
  *st = c->status;
  uv_mutex_unlock(&c->mu);
}

bool tr_cluster_is_leader(tr_cluster_t *c) { return atomic_load(&c->leader); }

bool tr_cluster_leader_rpc(tr_cluster_t *c, char *out, size_t cap) {
  uv_mutex_lock(&c->mu);
  uint64_t leader = c->status.leader;
  if (leader == c->id) leader = 0; /* -32005 always means "not here": a node deposed a moment ago may not know it yet */
  const char *rpc = leader ? peer_rpc(c, leader) : NULL;
  bool known = rpc != NULL && rpc[0] != '\0';
  if (known) snprintf(out, cap, "%s", rpc);
  uv_mutex_unlock(&c->mu);
  return known;
}

/* ---- start and stop ---- */

/* The transport, the log and the raft instance, configured and started
 * (bootstrapped first when `bootstrap`: a first start is found out by
 * raft_bootstrap itself, which refuses a directory that has state). */
static int raft_open(tr_cluster_t *c, bool bootstrap, char *err, size_t errlen) {
  int rv;
  if ((rv = raft_uv_tcp_init(&c->transport, &c->loop)) != 0 ||
      (rv = raft_uv_init(&c->io, &c->loop, c->dir, &c->transport)) != 0) {
    snprintf(err, errlen, "cannot open the raft log in %s (error %d)", c->dir, rv);
    return TR_EIO;
  }
  c->fsm = (struct raft_fsm){.version = 1, .data = c, .apply = fsm_apply, .snapshot = fsm_snapshot,
                             .restore = fsm_restore};
  if ((rv = raft_init(&c->raft, &c->io, &c->fsm, c->id, c->address)) != 0) {
    snprintf(err, errlen, "cannot start raft: %s", raft_errmsg(&c->raft));
    return TR_EIO;
  }
  c->raft.data = c;
  c->tracer = (struct raft_tracer){.impl = c, .enabled = true, .emit = trace_emit};
  c->trace_stderr = getenv("LIBRAFT_TRACE") != NULL;
  c->raft.tracer = &c->tracer;
  c->rejects = c->rejects_seen = 0;
  raft_set_pre_vote(&c->raft, true);
  raft_set_election_timeout(&c->raft, c->config.cluster_election_timeout_ms);
  raft_set_heartbeat_timeout(&c->raft, c->config.cluster_election_timeout_ms / 10);
  raft_set_snapshot_threshold(&c->raft, c->config.cluster_snapshot_every);
  raft_set_snapshot_trailing(&c->raft, c->config.cluster_snapshot_every < TR_CLUSTER_SNAPSHOT_TRAILING * 2
                                           ? c->config.cluster_snapshot_every / 2
                                           : TR_CLUSTER_SNAPSHOT_TRAILING);
  raft_uv_set_connect_retry_delay(&c->io, 200);
  if (bootstrap) {
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (size_t i = 0; i < c->config.cluster_nodes_n && rv == 0; i++)
      rv = raft_configuration_add(&conf, c->config.cluster_nodes[i].id, c->config.cluster_nodes[i].raft, RAFT_VOTER);
    if (rv == 0) rv = raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == 0) log_info("cluster", "first start: raft bootstrapped with %zu nodes", c->config.cluster_nodes_n);
    else if (rv != RAFT_CANTBOOTSTRAP) {
      snprintf(err, errlen, "cannot bootstrap raft in %s: %s", c->dir, raft_strerror(rv));
      return TR_EIO;
    }
  }
  c->opening = true; /* a snapshot restored now is raft loading its own */
  rv = raft_start(&c->raft);
  c->opening = false;
  if (rv != 0) {
    /* C-Raft 0.15 can leave a log it cannot load after a write failed
     * (seen once in ~30 runs of the disk-full test: "closed segment ... is
     * past last snapshot"): the journal is intact, and the node can rejoin. */
    snprintf(err, errlen, "cannot start raft from %s: %s; if the raft log is damaged (after a full disk, say) and "
             "the other nodes have a leader, remove everything in this data directory but tranche.conf and "
             "node.key and start the node again: it rejoins from the leader's snapshot", c->dir,
             raft_errmsg(&c->raft));
    return TR_EIO;
  }
  return 0;
}

/* C-Raft 0.15 lets a follower take appends while it writes a snapshot sent
 * by the leader, then drops them when the install completes, although it
 * acknowledged them: the leader's match index is then ahead of the follower
 * and it ignores the follower's rejections for good (seen here: a node
 * rejoining from an empty directory stopped at the snapshot's index).  A
 * fresh raft instance on the same directory recovers: its connections drop,
 * the leader probes again and sends what is missing.  So after installing a
 * snapshot this node closes raft and opens it again. */
static void reopen_closed(struct raft *r) {
  tr_cluster_t *c = r->data;
  char err[TR_PATH_MAX + 512] = "";
  uv_mutex_lock(&c->mu);
  bool stopping = c->stopping;
  uv_mutex_unlock(&c->mu);
  if (stopping) { /* tr_cluster_stop came meanwhile: finish closing instead */
    raft_closed(r);
    return;
  }
  raft_uv_close(&c->io);
  raft_uv_tcp_close(&c->transport);
  c->last_state = RAFT_UNAVAILABLE;
  if (raft_open(c, false, err, sizeof err) != 0) {
    log_error("cluster", "reopening raft failed: %s; restart the node", err);
    c->raft_broken = true;
    return;
  }
  c->reopening = false;
  log_info("cluster", "raft reopened");
}

static void reopen_if_wanted(tr_cluster_t *c) {
  if (!c->reopen_wanted || c->reopening || c->raft_broken) return;
  c->reopen_wanted = false;
  c->reopening = true;
  raft_close(&c->raft, reopen_closed); /* from the tick, never inside raft's own callbacks */
}

static int raft_setup(tr_cluster_t *c, char *err, size_t errlen) {
  int rv = uv_loop_init(&c->loop);
  if (rv != 0) {
    snprintf(err, errlen, "cannot make raft's event loop: %s", uv_strerror(rv));
    return TR_EIO;
  }
  rv = raft_open(c, !c->config.cluster_join, err, errlen); /* a joining node learns the membership from the leader */
  if (rv != 0) return rv;
  if ((rv = uv_async_init(&c->loop, &c->wake, wake_cb)) != 0 || (rv = uv_timer_init(&c->loop, &c->tick)) != 0) {
    snprintf(err, errlen, "cannot set up raft's loop: %s", uv_strerror(rv));
    return TR_EIO;
  }
  c->wake.data = c->tick.data = c;
  uv_timer_start(&c->tick, tick_cb, 0, TICK_MS);
  return 0;
}

static void cluster_main(void *arg) {
  tr_thread_name("tr-raft");
  tr_cluster_t *c = arg;
  char err[TR_PATH_MAX + 512] = "";
  int rc = raft_setup(c, err, sizeof err);
  uv_mutex_lock(&c->mu);
  c->started = rc == 0;
  c->start_failed = rc != 0;
  snprintf(c->start_err, sizeof c->start_err, "%s", err);
  uv_cond_broadcast(&c->cond);
  uv_mutex_unlock(&c->mu);
  if (rc != 0) return; /* a half-made loop is left to the process's exit */
  uv_run(&c->loop, UV_RUN_DEFAULT);
  int rv = uv_loop_close(&c->loop);
  if (rv != 0) log_warn("cluster", "raft's loop closed with handles open: %s", uv_strerror(rv));
  for (op_t *op = c->retired, *next; op; op = next) { /* raft is closed: nothing of it points here now */
    next = op->next;
    free(op);
  }
  c->retired = NULL;
}

int tr_cluster_start(tr_cluster_t **out, const char *datadir, const tr_config_t *config, tr_cluster_post_fn post,
                     void *ctx, char *err, size_t errlen) {
  tr_cluster_t *c = calloc(1, sizeof *c);
  if (c == NULL) return TR_ENOMEM;
  c->config = *config;
  c->id = config->cluster_id;
  c->post = post;
  c->ctx = ctx;
  for (size_t i = 0; i < config->cluster_nodes_n; i++)
    if (config->cluster_nodes[i].id == c->id) snprintf(c->address, sizeof c->address, "%s", config->cluster_nodes[i].raft);
  int rc = tr_path_join(c->dir, sizeof c->dir, datadir, "raft");
  if (rc != 0) {
    snprintf(err, errlen, "%s: path too long", datadir);
    free(c);
    return rc;
  }
  if (mkdir(c->dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: %s", c->dir, strerror(errno));
    free(c);
    return TR_EIO;
  }
  if (uv_mutex_init(&c->mu) != 0 || uv_cond_init(&c->cond) != 0) {
    free(c);
    return TR_ENOMEM;
  }
  if (uv_thread_create(&c->thread, cluster_main, c) != 0) {
    snprintf(err, errlen, "cannot start the raft thread");
    free(c);
    return TR_EIO;
  }
  uv_mutex_lock(&c->mu);
  while (!c->started && !c->start_failed) uv_cond_wait(&c->cond, &c->mu);
  uv_mutex_unlock(&c->mu);
  if (c->start_failed) {
    snprintf(err, errlen, "%s", c->start_err);
    uv_thread_join(&c->thread);
    return TR_EIO; /* c is not freed: raft's structures may still point into it */
  }
  *out = c;
  return 0;
}

void tr_cluster_stop(tr_cluster_t *c) {
  if (c == NULL) return;
  uv_mutex_lock(&c->mu);
  c->stopping = true;
  uv_mutex_unlock(&c->mu);
  uv_async_send(&c->wake);
  uv_thread_join(&c->thread);
  uv_mutex_lock(&c->mu);
  c->closed = true;
  op_t *ops = c->ops;
  c->ops = c->ops_tail = NULL;
  uv_mutex_unlock(&c->mu);
  for (op_t *op = ops, *next; op; op = next) {
    next = op->next;
    op->next = NULL;
    ops_push(c, op); /* fails it */
  }
}

void tr_cluster_free(tr_cluster_t *c) {
  if (c == NULL) return;
  uv_mutex_destroy(&c->mu);
  uv_cond_destroy(&c->cond);
  free(c);
}
