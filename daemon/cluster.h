/* cluster.h — the seam between tranche and its consensus engine (C-Raft,
 * Debian's libraft 0.15): the only file that includes raft.h is cluster.c.
 *
 * What crosses the seam is a batch's bytes (batch.h) and a few events:
 *   - the sequencer proposes a batch (tr_cluster_propose, any thread);
 *   - cluster.c runs raft on a thread of its own (tr-raft, its own libuv
 *     loop) and hands every committed batch, in log order, to a sink: the
 *     sequencer, which applies it exactly as a single node applies its own;
 *   - leadership is an event too: a node that won an election first commits
 *     a barrier (an entry of its own term) and only then says "ready", so a
 *     leader never proposes on a state older than the committed log (0.15
 *     lacks the upstream fix for committing old-term entries by counting
 *     replicas, the Raft paper's Figure 8);
 *   - snapshots and restores are asked of the sink and waited for, because
 *     the state is the sequencer's (its events are processed in order, so a
 *     snapshot taken at an event reflects every batch committed before it).
 * A newer engine would replace cluster.c alone.
 */
#ifndef TR_CLUSTER_H
#define TR_CLUSTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tr_node.h"

typedef enum {
  TR_CLUSTER_COMMITTED = 1, /* buf/len: a committed batch, in log order */
  TR_CLUSTER_PROPOSE_FAILED, /* token: the proposal's outcome is unknown (status: the raft error) */
  TR_CLUSTER_LEADER_READY,  /* this node leads, and its barrier committed: it may propose */
  TR_CLUSTER_LEADER_LOST,   /* it no longer leads */
  TR_CLUSTER_SNAPSHOT,      /* fill out/out_len with the state (raft_malloc'd), then tr_cluster_event_done */
  TR_CLUSTER_RESTORE,       /* buf/len: a snapshot to install, then tr_cluster_event_done */
} tr_cluster_event_kind_t;

typedef struct tr_cluster_event {
  struct tr_cluster_event *next;
  struct tr_cluster *from;
  tr_cluster_event_kind_t kind;
  uint64_t token, term;
  int status;
  void *buf;                       /* COMMITTED: malloc'd, the sink frees it; RESTORE: raft's, do not free */
  size_t len;
  void *out;                       /* SNAPSHOT: the sink's answer */
  size_t out_len;
  int rc;                          /* SNAPSHOT / RESTORE: 0 or an error */
  bool done;
} tr_cluster_event_t;

/* Where events go: called on tr-raft; must not block for long. */
typedef void (*tr_cluster_post_fn)(void *ctx, tr_cluster_event_t *ev);

#define TR_CLUSTER_ROLE_NAMES {"unavailable", "follower", "candidate", "leader"}

typedef struct {
  uint64_t id;
  char raft[128], rpc[128];
  const char *role;                /* voter roles: "leader", "follower"…; "spare"/"standby" otherwise */
  bool known_progress;             /* on the leader: match index known */
  uint64_t match;                  /* last log index known replicated there */
} tr_cluster_peer_t;

typedef struct {
  uint64_t id, term, leader, commit, applied, last_index;
  const char *role;                /* leader, follower, candidate, unavailable */
  size_t n;
  tr_cluster_peer_t nodes[TR_CLUSTER_NODES_MAX + 4];
  uint64_t role_changes;
} tr_cluster_status_t;

typedef struct tr_cluster tr_cluster_t;

/* Starts raft for config->cluster_id with its data in DIR/raft, bootstrapping
 * the membership of the config on a first start.  Events go to post(ctx, …)
 * from the moment raft starts (a restore may come before this returns). */
int tr_cluster_start(tr_cluster_t **out, const char *datadir, const tr_config_t *config, tr_cluster_post_fn post,
                     void *ctx, char *err, size_t errlen);
/* Closes raft and joins its thread; proposals fail from then on (events
 * still go to the sink, which must run until this returns). */
void tr_cluster_stop(tr_cluster_t *c);
/* After the sink has stopped too. */
void tr_cluster_free(tr_cluster_t *c);

/* Any thread: proposes `buf` (malloc'd; taken in every case).  The outcome
 * comes as a COMMITTED event (the batch names its token) or PROPOSE_FAILED. */
void tr_cluster_propose(tr_cluster_t *c, void *buf, size_t len, uint64_t token);
/* The sink, after a SNAPSHOT or RESTORE event. */
void tr_cluster_event_done(tr_cluster_t *c, tr_cluster_event_t *ev, int rc);

/* Any thread. */
void tr_cluster_status(tr_cluster_t *c, tr_cluster_status_t *st);
bool tr_cluster_is_leader(tr_cluster_t *c);
/* The leader's JSON-RPC address into out; false while no leader is known,
 * or when raft still names this node (for -32005, which means "not here"). */
bool tr_cluster_leader_rpc(tr_cluster_t *c, char *out, size_t cap);

/* Membership and leadership changes (tranchectl cluster …, over the control
 * socket).  `done` is called on tr-raft with 0 or a raft error text. */
typedef void (*tr_cluster_done_fn)(void *data, const char *error);
int tr_cluster_transfer(tr_cluster_t *c, uint64_t to, tr_cluster_done_fn done, void *data);
int tr_cluster_add(tr_cluster_t *c, uint64_t id, const char *raft_address, tr_cluster_done_fn done, void *data);
int tr_cluster_remove(tr_cluster_t *c, uint64_t id, tr_cluster_done_fn done, void *data);
/* The JSON-RPC address of a node not in the config (cluster.add, or the
 * proposer named in a committed batch), so that not_leader can name it. */
void tr_cluster_note_rpc(tr_cluster_t *c, uint64_t id, const char *rpc);

#endif
