/* test_cluster_sim.c — tranche's replicated state machine on C-Raft's
 * deterministic in-memory cluster (raft/fixture.h), with partitions, message
 * loss, kills and disk faults from a seeded schedule.
 *
 * Each simulated node applies committed batches exactly as tranched does
 * (tr_batch.h for the bytes and the verdict, tr_ledger_apply over tr_mem, a
 * journal in its own SQLite file), and leads as tranched leads: a barrier
 * of its own term first, then one batch at a time naming the head it
 * extends.  A tx counts as acknowledged when its leader applied its own
 * batch and accepted the tx (tranched's receipt).  Invariants:
 *   1. no two nodes apply different batches at one raft index;
 *   2. never a fork: no node stops with "diverged" or "missing", and every
 *      node's journal is a prefix of the longest;
 *   3. after healing, a majority holds the whole journal, with every
 *      acknowledged tx in it.  (Not every node: C-Raft 0.15 leaves a node
 *      whose disk failed without new entries until it restarts; printed.)
 * It also runs tranched's stuck-follower watchdog (see watchdog()).
 * Leaders also propose, now and then, a batch naming an older head (as a
 * deposed leader's late proposal would): every node must skip it alike.
 * Seeds: TRANCHE_SIM_SEEDS (default 6) runs from TRANCHE_SIM_SEED (default 1);
 * a failure prints its seed; SIM_FAULT_MASK picks fault kinds (bits, in
 * fault()'s order) and SIM_NOFAULT=1 runs without any.  Prints TAP.
 */
#include <raft.h>
#include <raft/fixture.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tr_batch.h"
#include "tr_delta.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_ledger.h"
#include "tr_mem.h"
#include "tr_store.h"
#include "tr_test.h"
#include "tr_tx.h"

#define CHAIN "test.example/sim"
#define MAX_NODES 5
#define MAX_INDEX 16384  /* raft indexes a run may reach */
#define MAX_ACKED 32768
#define STEPS 6000       /* fixture steps per run under faults */

static uint64_t rng;
static uint64_t rnd(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1DULL;
}
static unsigned rr(unsigned n) { return n ? (unsigned)(rnd() % n) : 0; }

typedef struct node {
  unsigned idx;
  struct raft_fixture *f;
  tr_store_t *s;
  tr_mem_t m;
  tr_ledger_t l;
  tr_delta_sink_t sink;
  tr_delta_t *delta;
  tr_tx_t tx;
  bool stopped;                      /* it stopped rather than diverge (a failure of the test) */
  char stop_why[160];
  /* leading, as tranched leads */
  uint64_t ready_term;
  bool barrier_pending, inflight;
  uint64_t token, inflight_token;
  struct raft_barrier barrier;
} node_t;

static struct {
  unsigned n;
  node_t nodes[MAX_NODES];
  uint8_t applied[MAX_INDEX][32];    /* SHA-256 of the batch applied at each raft index */
  bool applied_set[MAX_INDEX];
  unsigned index_conflicts;
  uint8_t acked[MAX_ACKED][32];      /* txids acknowledged to a client */
  unsigned acked_n, proposed, next_tx, skipped, leader_kills;
  bool disk_faulted[MAX_NODES];      /* C-Raft 0.15 stops taking entries on such a node until it restarts */
  uint8_t admin_sk[64], node_sk[64];
  char admin_hex[65];
  char dir[64];
  uint64_t clock;
} W;

static int node_entry(void *ctx, uint64_t seq, tr_entry_t *e) { return tr_store_entry_get(((node_t *)ctx)->s, seq, e); }
static int node_receipt(void *ctx, uint64_t seq, char **json) {
  return tr_store_receipt_get(((node_t *)ctx)->s, seq, json);
}

static void node_stop(node_t *n, const char *why) {
  if (!n->stopped) snprintf(n->stop_why, sizeof n->stop_why, "%s", why);
  n->stopped = true;
}

/* One committed batch, as tranched's sequencer applies it (replicated_apply). */
static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
  node_t *n = fsm->data;
  *result = NULL;
  struct raft *r = raft_fixture_get(n->f, n->idx);
  raft_index index = r->last_applied + 1;
  uint8_t digest[32];
  crypto_hash_sha256(digest, buf->base, buf->len);
  if (index < MAX_INDEX) {
    if (!W.applied_set[index]) {
      memcpy(W.applied[index], digest, 32);
      W.applied_set[index] = true;
    } else if (memcmp(W.applied[index], digest, 32) != 0) {
      W.index_conflicts++;
    }
  }
  if (n->stopped) return 0;
  tr_batch_header_t h;
  tr_batch_reader_t rd;
  if (tr_batch_open(buf->base, buf->len, &h, &rd) != 0) {
    node_stop(n, "not a batch");
    return 0;
  }
  bool ours = n->inflight && h.proposer == r->id && h.token == n->inflight_token;
  if (ours) n->inflight = false;
  uint8_t stored[32];
  bool older = h.base_size < n->m.size;
  if (older) {
    tr_entry_t e = {0};
    if (tr_store_entry_get(n->s, h.base_size, &e) != 0) node_stop(n, "cannot read the base entry");
    memcpy(stored, e.hash, 32);
    tr_entry_clear(&e);
  }
  switch (tr_batch_verdict(&h, n->m.size, n->m.head_hash, older ? stored : NULL)) {
  case TR_BATCH_APPLY: break;
  case TR_BATCH_SKIP: W.skipped++; return 0;
  case TR_BATCH_MISSING: node_stop(n, "missing entries"); return 0;
  case TR_BATCH_DIVERGED: node_stop(n, "diverged"); return 0;
  }
  tr_batch_tx_t t;
  int more, rc = 0;
  uint8_t accepted[TR_COMMIT_BATCH_MAX][32];
  unsigned n_accepted = 0;
  while (rc == 0 && (more = tr_batch_next(&rd, &t)) == 1) {
    tr_receipt_t receipt;
    tr_refusal_t refusal = {0};
    rc = tr_tx_decode(t.bytes, t.len, &n->tx, NULL);
    if (rc == 0) rc = tr_ledger_apply(&n->l, &n->tx, t.bytes, t.len, t.sig, h.clock_ms, &receipt, &refusal);
    if (rc == 0) {
      if (n_accepted < TR_COMMIT_BATCH_MAX) memcpy(accepted[n_accepted++], receipt.txid, 32);
      tr_receipt_clear(&receipt);
    } else if (tr_err_is_refusal(rc)) {
      rc = 0;
    }
  }
  if (rc == 0 && more < 0) rc = TR_ECORRUPT;
  if (rc == 0) rc = tr_delta_take_changes(n->delta, &n->m);
  if (rc == 0) rc = tr_store_begin(n->s);
  if (rc == 0) rc = tr_store_journal_append(n->s, n->delta);
  if (rc == 0) rc = tr_store_derived_write(n->s, n->delta);
  if (rc == 0) rc = tr_store_commit(n->s);
  tr_delta_free(n->delta);
  n->delta = tr_delta_new();
  n->sink.delta = n->delta;
  if (rc != 0) {
    char why[96];
    snprintf(why, sizeof why, "apply failed: %s", tr_strerror(rc));
    node_stop(n, why);
    return 0;
  }
  if (ours) /* the leader's receipts */
    for (unsigned i = 0; i < n_accepted && W.acked_n < MAX_ACKED; i++) memcpy(W.acked[W.acked_n++], accepted[i], 32);
  return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
  (void)fsm, (void)bufs, (void)n_bufs;
  return RAFT_NOMEM; /* snapshots are exercised by the real-process test */
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  (void)fsm, (void)buf;
  return RAFT_NOMEM;
}

/* A node's journal with the cluster's one genesis, loaded into memory as
 * tranched loads it. */
static int node_open(node_t *n) {
  tr_key_t admin;
  memcpy(admin.b, W.admin_sk + 32, 32);
  char path[128], err[256] = "";
  snprintf(path, sizeof path, "%s/node%u.db", W.dir, n->idx);
  unlink(path);
  int rc = tr_store_open(path, TR_STORE_CREATE, &n->s, err, sizeof err);
  if (rc == 0) rc = tr_ledger_genesis(n->s, CHAIN, W.node_sk, &admin, 1700000000000ull);
  n->sink = (tr_delta_sink_t){.mem = &n->m, .lookup_entry = node_entry, .lookup_receipt = node_receipt, .lookup_ctx = n};
  if (rc == 0) rc = tr_mem_init(&n->m, &tr_delta_sink_ops, &n->sink);
  if (rc == 0) rc = (n->delta = tr_delta_new()) ? 0 : TR_ENOMEM;
  n->sink.delta = n->delta;
  uint64_t through = 0;
  if (rc == 0) rc = tr_store_derived_mark(n->s, &through);
  if (rc == 0) rc = tr_mem_load(&n->m, n->s, through, err, sizeof err);
  if (rc == 0) rc = tr_ledger_load(&n->l, n->s);
  n->l.ops = &tr_mem_state_ops;
  n->l.ctx = &n->m;
  tr_mem_track_changes(&n->m, true);
  if (rc == 0) rc = tr_mem_replay(&n->m, &n->l, n->s, 1, err, sizeof err);
  if (rc == 0) rc = tr_delta_take_changes(n->delta, &n->m);
  if (rc == 0 && n->delta->entries_n > 0) { /* genesis's state rows, behind the journal as in tranched */
    rc = tr_store_begin(n->s);
    if (rc == 0) rc = tr_store_derived_write(n->s, n->delta);
    if (rc == 0) rc = tr_store_commit(n->s);
    tr_delta_free(n->delta);
    n->delta = tr_delta_new();
    n->sink.delta = n->delta;
  }
  if (rc != 0) printf("# node %u: %s %s\n", n->idx, tr_strerror(rc), err);
  return rc;
}

static void node_close(node_t *n) {
  tr_delta_free(n->delta);
  n->delta = NULL;
  tr_mem_free(&n->m);
  tr_store_close(n->s);
  n->s = NULL;
}

/* ---- leading ---- */

static void barrier_cb(struct raft_barrier *req, int status) {
  node_t *n = req->data;
  n->barrier_pending = false;
  struct raft *r = raft_fixture_get(n->f, n->idx);
  if (status == 0 && raft_state(r) == RAFT_LEADER) n->ready_term = r->current_term;
}

/* Each proposal has its own request: raft holds it until this callback,
 * which comes after the batch was applied (and the next one proposed). */
typedef struct {
  struct raft_apply req;
  node_t *n;
  uint64_t token;
} proposal_t;

static void apply_cb(struct raft_apply *req, int status, void *result) {
  (void)result;
  proposal_t *p = req->data;
  if (status != 0 && p->n->inflight && p->n->inflight_token == p->token)
    p->n->inflight = false; /* outcome unknown: a client would resubmit (not counted as acked) */
  free(p);
}

/* The signed bytes of the next account.open; the signature is not checked
 * by apply (the leader's workers did), so a fixed one will do here. */
static size_t next_tx(char *out, size_t cap) {
  uint8_t seed[32] = {0}, pk[32], sk[64];
  unsigned k = W.next_tx++;
  memcpy(seed, &k, sizeof k);
  seed[31] = 0x5a;
  crypto_sign_seed_keypair(pk, sk, seed);
  char hex[65];
  tr_hex_encode(pk, 32, hex);
  return (size_t)snprintf(out, cap,
                          "{\"type\":\"account.open\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"sim-%u\","
                          "\"account\":\"%s\",\"roles\":[\"investor\"],\"jurisdiction\":\"US\",\"kyc\":true}",
                          CHAIN, W.admin_hex, k % 7 == 6 ? k - 1 : k, hex); /* every 7th reuses an id: id_conflict */
}

static void lead(node_t *n, bool propose) {
  struct raft *r = raft_fixture_get(n->f, n->idx);
  if (raft_state(r) != RAFT_LEADER || n->stopped) {
    n->ready_term = 0;
    return;
  }
  if (n->ready_term != r->current_term) {
    if (!n->barrier_pending) {
      n->barrier.data = n;
      if (raft_barrier(r, &n->barrier, barrier_cb) == 0) n->barrier_pending = true;
    }
    return;
  }
  if (n->inflight || !propose) return;
  tr_batch_header_t h = {.proposer = r->id, .token = ++n->token, .base_size = n->m.size, .clock_ms = ++W.clock};
  memcpy(h.base_hash, n->m.head_hash, 32);
  bool stale = n->m.size > 2 && rr(50) == 0; /* as a deposed leader's late proposal: every node must skip it */
  if (stale) {
    tr_entry_t e = {0};
    h.base_size = n->m.size - 1 - rr((unsigned)(n->m.size - 2));
    if (tr_store_entry_get(n->s, h.base_size, &e) != 0) return;
    memcpy(h.base_hash, e.hash, 32);
    tr_entry_clear(&e);
  }
  tr_batch_writer_t w;
  tr_batch_begin(&w, &h);
  unsigned txs = 1 + rr(4);
  uint8_t sig[64] = {0};
  for (unsigned i = 0; i < txs; i++) {
    char bytes[512];
    size_t len = next_tx(bytes, sizeof bytes);
    tr_batch_add(&w, bytes, (uint32_t)len, sig);
  }
  void *buf;
  size_t len;
  if (tr_batch_finish(&w, &buf, &len) != 0) return;
  struct raft_buffer b = {.base = raft_malloc(len), .len = len};
  memcpy(b.base, buf, len);
  free(buf);
  proposal_t *p = malloc(sizeof *p);
  if (p == NULL) {
    raft_free(b.base);
    return;
  }
  *p = (proposal_t){.n = n, .token = h.token};
  p->req.data = p;
  if (raft_apply(r, &p->req, &b, 1, apply_cb) == 0) {
    n->inflight = !stale; /* a stale one is never answered with receipts */
    n->inflight_token = h.token;
    W.proposed++;
  } else {
    raft_free(b.base);
    free(p);
  }
}

/* ---- faults ---- */

static unsigned fault_mask = ~0u;

/* Nodes out of the quorum: killed, or lost to a disk fault. */
static unsigned dead(struct raft_fixture *f) {
  unsigned n = 0;
  for (unsigned i = 0; i < W.n; i++) n += !raft_fixture_alive(f, i) || W.disk_faulted[i];
  return n;
}

/* The live node that leads in the highest term, or W.n: the fixture's own
 * raft_fixture_leader_index reports none while a node is unavailable. */
static unsigned leader_of(struct raft_fixture *f) {
  unsigned best = W.n;
  for (unsigned i = 0; i < W.n; i++) {
    struct raft *r = raft_fixture_get(f, i);
    if (raft_fixture_alive(f, i) && raft_state(r) == RAFT_LEADER &&
        (best == W.n || r->current_term > raft_fixture_get(f, best)->current_term))
      best = i;
  }
  return best;
}

/* The fixture's links have preconditions (0.15 asserts them in a debug
 * build, and misbehaves without): a link is saturated or desaturated, and a
 * server killed (all its links saturated) or revived, only while connected.
 * So the test keeps each directed link's state and reconnects first. */
static bool linked[MAX_NODES][MAX_NODES];

static void link_up(struct raft_fixture *f, unsigned a, unsigned b) {
  if (!linked[a][b]) raft_fixture_reconnect(f, a, b);
  linked[a][b] = true;
}

static void links_up(struct raft_fixture *f, unsigned a) {
  for (unsigned b = 0; b < W.n; b++)
    if (b != a) link_up(f, a, b), link_up(f, b, a);
}

static void kill_node(struct raft_fixture *f, unsigned a) {
  links_up(f, a);
  raft_fixture_kill(f, a);
}

static void fault(struct raft_fixture *f) {
  unsigned a = rr(W.n), b = rr(W.n), roll = rr(1000);
  unsigned kind = roll < 6 ? 0 : roll < 20 ? 1 : roll < 23 ? 2 : roll < 33 ? 3 : roll < 35 ? 4 : roll < 45 ? 5 : 6;
  bool minority_left = dead(f) + 1 < (W.n + 1) / 2 + (W.n % 2 == 0); /* the fixture cannot step with none alive */
  unsigned leader = leader_of(f);
  if (!(fault_mask >> kind & 1)) return;
  if (kind == 0 && a != b && linked[a][b]) raft_fixture_disconnect(f, a, b), linked[a][b] = false;
  else if (kind == 1 && a != b) link_up(f, a, b);
  else if (kind == 2 && a != b && linked[a][b] && raft_fixture_alive(f, a) && raft_fixture_alive(f, b))
    raft_fixture_saturate(f, a, b);
  else if (kind == 3 && a != b && linked[a][b] && raft_fixture_alive(f, a) && raft_fixture_alive(f, b))
    raft_fixture_desaturate(f, a, b);
  else if (kind == 4 && raft_fixture_alive(f, a) && minority_left) kill_node(f, a);
  else if (kind == 5 && !raft_fixture_alive(f, a)) links_up(f, a), raft_fixture_revive(f, a);
  else if (kind == 6 && leader < W.n && minority_left) kill_node(f, leader), W.leader_kills++;
}

static void heal(struct raft_fixture *f) {
  for (unsigned a = 0; a < W.n; a++) links_up(f, a);
  for (unsigned a = 0; a < W.n; a++)
    if (!raft_fixture_alive(f, a)) raft_fixture_revive(f, a);
  for (unsigned a = 0; a < W.n; a++)
    for (unsigned b = 0; b < W.n; b++)
      if (a != b) raft_fixture_desaturate(f, a, b);
}

static bool all_applied(struct raft_fixture *f, void *arg) {
  (void)arg;
  unsigned li = leader_of(f);
  if (li >= W.n) return false;
  raft_index want = raft_fixture_get(f, li)->commit_index;
  for (unsigned i = 0; i < W.n; i++) {
    struct raft *r = raft_fixture_get(f, i);
    if (raft_state(r) == RAFT_UNAVAILABLE) continue;
    if (r->last_applied < want) return false;
  }
  return W.nodes[li].ready_term != 0 && !W.nodes[li].inflight;
}

/* The stuck-follower watchdog, as tranched's (daemon/cluster.c): C-Raft
 * 0.15's leader can believe a follower matched entries the follower does
 * not hold, and then ignores its rejections for good.  A follower whose
 * log the leader's heartbeats keep rejecting without it taking any entry
 * is "reopened": here its link from the leader drops for a moment, so the
 * leader's send fails and it probes the follower afresh. */
#define STUCK_CHECK_MS 50
#define STUCK_CHECKS 40                  /* 2 s of rejections without progress */

typedef struct {
  struct raft_tracer tracer;
  unsigned long rejects, rejects_seen;
  raft_index stored_seen;
  unsigned stuck;
  bool kicked;                           /* its link from kicked_by is down */
  unsigned kicked_by;
  raft_time kicked_at, checked_at;
} watch_t;
static watch_t watch[MAX_NODES];
static unsigned watchdog_kicks;

static void watch_emit(struct raft_tracer *t, const char *file, int line, const char *message) {
  (void)file, (void)line;
  unsigned i = (unsigned)(uintptr_t)t->impl;
  if (strstr(message, "-> reject") != NULL &&
      (strncmp(message, "no entry at index", 17) == 0 || strncmp(message, "previous term mismatch", 22) == 0))
    watch[i].rejects++;
}

static void watchdog(struct raft_fixture *f) {
  raft_time now = raft_fixture_time(f);
  for (unsigned i = 0; i < W.n; i++) {
    struct raft *r = raft_fixture_get(f, i);
    if (watch[i].kicked && now >= watch[i].kicked_at + 200) { /* the link comes back */
      link_up(f, watch[i].kicked_by, i);
      watch[i].kicked = false;
    }
    if (now < watch[i].checked_at + STUCK_CHECK_MS) continue;
    watch[i].checked_at = now;
    bool rejected = watch[i].rejects > watch[i].rejects_seen;
    watch[i].rejects_seen = watch[i].rejects;
    if (raft_state(r) != RAFT_FOLLOWER || !rejected || r->last_stored != watch[i].stored_seen) {
      watch[i].stuck = 0;
      watch[i].stored_seen = r->last_stored;
      continue;
    }
    unsigned leader = leader_of(f);
    if (++watch[i].stuck < STUCK_CHECKS || leader >= W.n || leader == i || watch[i].kicked) continue;
    if (linked[leader][i]) raft_fixture_disconnect(f, leader, i), linked[leader][i] = false;
    watch[i] = (watch_t){.tracer = watch[i].tracer, .rejects = watch[i].rejects,
                                  .rejects_seen = watch[i].rejects, .stored_seen = r->last_stored, .kicked = true,
                                  .kicked_by = leader, .kicked_at = now, .checked_at = now};
    watchdog_kicks++;
  }
}

static unsigned long total_acked; /* over every seed: the schedules let clients through (some seeds never do) */

static int run(uint64_t seed, unsigned n_nodes) {
  rng = seed * 0x9E3779B97F4A7C15ull + 1;
  memset(&W.applied_set, 0, sizeof W.applied_set);
  W.index_conflicts = W.acked_n = W.proposed = W.next_tx = W.skipped = W.leader_kills = watchdog_kicks = 0;
  memset(W.disk_faulted, 0, sizeof W.disk_faulted);
  W.clock = 1700000000000ull;
  W.n = n_nodes;
  for (unsigned a = 0; a < MAX_NODES; a++)
    for (unsigned b = 0; b < MAX_NODES; b++) linked[a][b] = true;
  struct raft_fixture f;
  struct raft_fsm fsms[MAX_NODES];
  for (unsigned i = 0; i < n_nodes; i++) {
    memset(&W.nodes[i], 0, sizeof W.nodes[i]);
    W.nodes[i].f = &f;
    W.nodes[i].idx = i;
    fsms[i] = (struct raft_fsm){.version = 1, .data = &W.nodes[i], .apply = fsm_apply, .snapshot = fsm_snapshot,
                                .restore = fsm_restore};
  }
  memset(&f, 0, sizeof f); /* 0.15's raft_fixture_initialize leaves the server count as it finds it */
  int rc = raft_fixture_initialize(&f);
  for (unsigned i = 0; rc == 0 && i < n_nodes; i++) rc = raft_fixture_grow(&f, &fsms[i]);
  for (unsigned i = 0; rc == 0 && i < n_nodes; i++) {
    rc = node_open(&W.nodes[i]);
    raft_set_pre_vote(raft_fixture_get(&f, i), true);
    watch[i] = (watch_t){.tracer = {.impl = (void *)(uintptr_t)i, .enabled = true, .emit = watch_emit}};
    raft_fixture_get(&f, i)->tracer = &watch[i].tracer;
    raft_set_snapshot_threshold(raft_fixture_get(&f, i), 1u << 30); /* the log stays whole here */
  }
  struct raft_configuration conf;
  if (rc == 0) rc = raft_fixture_configuration(&f, n_nodes, &conf);
  if (rc == 0) rc = raft_fixture_bootstrap(&f, &conf);
  if (rc == 0) raft_configuration_close(&conf);
  if (rc == 0) rc = raft_fixture_start(&f);
  if (rc != 0) {
    printf("# seed %llu: cannot set up (%d)\n", (unsigned long long)seed, rc);
    return rc;
  }
  unsigned disk_faults = 0;
  for (unsigned step = 0; step < STEPS; step++) {
    raft_fixture_step(&f);
    watchdog(&f);
    for (unsigned i = 0; i < n_nodes; i++) lead(&W.nodes[i], true);
    if (getenv("SIM_NOFAULT") == NULL) fault(&f);
    if (getenv("SIM_NOFAULT") == NULL && rr(4000) == 0 && disk_faults == 0 &&
        dead(&f) + 1 < (n_nodes + 1) / 2 + (n_nodes % 2 == 0)) { /* one a run at most, a quorum kept */
      unsigned victim = rr(n_nodes);
      raft_fixture_io_fault(&f, victim, 1, 1);
      W.disk_faulted[victim] = true;
      disk_faults++;
    }
  }
  heal(&f);
  for (unsigned k = 0; k < 40000 && !all_applied(&f, NULL); k++) { /* no new proposals: let everyone catch up */
    raft_fixture_step(&f);
    watchdog(&f);
    for (unsigned i = 0; i < n_nodes; i++) lead(&W.nodes[i], false);
  }
  /* the invariants */
  if (leader_of(&f) >= n_nodes)
    for (unsigned i = 0; i < n_nodes; i++) {
      struct raft *r = raft_fixture_get(&f, i);
      printf("# seed %llu: no leader at the end: node %u state %d term %llu voted_for %llu last %llu alive %d\n",
             (unsigned long long)seed, i, raft_state(r), (unsigned long long)r->current_term,
             (unsigned long long)r->voted_for, (unsigned long long)r->last_stored, raft_fixture_alive(&f, i));
    }
  /* Safety is checked on every node: its journal is a prefix of the
   * longest.  Liveness on a majority: C-Raft 0.15 leaves a node whose disk
   * failed without new entries until it restarts (a follower stuck behind a
   * leader that ignores its rejections is freed by the watchdog above). */
  unsigned full = 0, stopped = 0, forked = 0, behind = 0, missing = 0;
  node_t *ref = NULL;
  for (unsigned i = 0; i < n_nodes; i++)
    if (!W.nodes[i].stopped && (ref == NULL || W.nodes[i].m.size > ref->m.size)) ref = &W.nodes[i];
  for (unsigned i = 0; ref && i < n_nodes; i++) {
    node_t *n = &W.nodes[i];
    if (n->stopped) {
      stopped++;
      printf("# seed %llu: node %u stopped: %s\n", (unsigned long long)seed, i, n->stop_why);
      continue;
    }
    tr_entry_t e = {0};
    if (tr_store_entry_get(ref->s, n->m.size, &e) != 0 || memcmp(e.hash, n->m.head_hash, 32) != 0) forked++;
    tr_entry_clear(&e);
    if (n->m.size < ref->m.size) {
      behind++;
      struct raft *r = raft_fixture_get(&f, i);
      printf("# seed %llu: node %u stopped at %llu entries of %llu (%s; raft applied %llu, commit %llu, "
             "last %llu; the leader's commit %llu)\n", (unsigned long long)seed, i,
             (unsigned long long)n->m.size, (unsigned long long)ref->m.size,
             W.disk_faulted[i] ? "its disk failed" : "raft took no more entries", (unsigned long long)r->last_applied,
             (unsigned long long)r->commit_index, (unsigned long long)r->last_stored,
             leader_of(&f) < W.n
                 ? (unsigned long long)raft_fixture_get(&f, leader_of(&f))->commit_index : 0ull);
      continue;
    }
    full++;
    for (unsigned a = 0; a < W.acked_n; a++) {
      uint64_t seq;
      if (tr_store_entry_by_txid(n->s, W.acked[a], &seq) != 0) missing++;
    }
  }
  printf("# seed %llu, %u nodes: %u batches proposed, %u txs acknowledged, journal %llu entries, %u nodes behind, "
         "%u leader kills, %u disk fault(s), %u stale batches skipped, %u watchdog kicks\n", (unsigned long long)seed,
         n_nodes, W.proposed, W.acked_n, ref ? (unsigned long long)ref->m.size : 0ull, behind, W.leader_kills,
         disk_faults, W.skipped, watchdog_kicks);
  TR_CHECK(W.index_conflicts == 0, "seed %llu: no two nodes applied different batches at one index",
           (unsigned long long)seed);
  TR_CHECK(stopped == 0, "seed %llu: no node found its journal diverged or missing entries", (unsigned long long)seed);
  TR_CHECK(ref != NULL && forked == 0, "seed %llu: every node's journal is a prefix of the longest",
           (unsigned long long)seed);
  TR_CHECK(full >= n_nodes / 2 + 1, "seed %llu: a majority (%u of %u) holds the whole journal", (unsigned long long)seed,
           full, n_nodes);
  TR_CHECK(missing == 0, "seed %llu: every acknowledged tx (%u) is on each of them (%u missing)",
           (unsigned long long)seed, W.acked_n, missing);
  total_acked += W.acked_n;
  raft_fixture_close(&f);
  for (unsigned i = 0; i < n_nodes; i++) node_close(&W.nodes[i]);
  return 0;
}

int main(void) {
  if (sodium_init() < 0) return 1;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (getenv("SIM_FAULT_MASK")) fault_mask = (unsigned)strtoul(getenv("SIM_FAULT_MASK"), NULL, 0);
  snprintf(W.dir, sizeof W.dir, "/tmp/tranche-sim-XXXXXX");
  if (mkdtemp(W.dir) == NULL) return 1;
  uint8_t seed[32];
  memset(seed, 1, 32);
  tr_key_t pk;
  crypto_sign_seed_keypair(pk.b, W.node_sk, seed);
  memset(seed, 2, 32);
  crypto_sign_seed_keypair(pk.b, W.admin_sk, seed);
  tr_hex_encode(pk.b, 32, W.admin_hex);
  const char *e = getenv("TRANCHE_SIM_SEED"), *n = getenv("TRANCHE_SIM_SEEDS");
  uint64_t first = e ? strtoull(e, NULL, 10) : 1;
  unsigned seeds = n ? (unsigned)strtoul(n, NULL, 10) : 6;
  for (uint64_t s = first; s < first + seeds; s++) run(s, s % 3 == 0 ? 5 : 3);
  TR_CHECK(total_acked > 0, "the seeds acknowledged %lu txs in all", total_acked);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", W.dir);
  if (system(cmd) != 0) printf("# could not remove %s\n", W.dir);
  return tr_test_done();
}
