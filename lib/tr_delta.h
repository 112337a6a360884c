/* tr_delta.h — what a batch of txs changed, on its way from the in-memory
 * state (tr_mem.h) to SQLite.
 *
 * The sequencer applies a batch to memory with a delta as the state's sink:
 * the entries it appends and the per-entry rows the rules make (receipts,
 * account history, distributions, payouts, Merkle nodes) collect here;
 * tr_delta_take_changes then copies the accounts, assets and holdings the
 * batch changed, as they are now.  The delta is self-contained and its
 * writes are idempotent, so it can be written later, on another thread,
 * and written again after a crash:
 *   1. tr_store_journal_append: the entries rows — before any receipt goes
 *      out, in the group commit that is fsynced;
 *   2. tr_store_derived_write: everything else, then the derived mark
 *      (derived_progress) moves to the delta's last seq.
 * A node that stops between 1 and 2 rebuilds 2 from the journal at start
 * (tr_mem_replay).
 */
#ifndef TR_DELTA_H
#define TR_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "tr_mem.h"
#include "tr_store.h"

typedef struct {
  uint64_t seq;
  char *effects;                    /* receipt effects JSON, owned */
} tr_delta_receipt_t;

typedef struct {
  tr_key_t account;
  uint64_t seq;
} tr_delta_history_t;

typedef struct {
  uint64_t seq, amount, count;
  char asset[TR_ASSET_ID_CHARS_MAX + 1];
  tr_dist_kind_t kind;
} tr_delta_distribution_t;

typedef struct {
  uint64_t seq, amount;
  tr_key_t account;
  char asset[TR_ASSET_ID_CHARS_MAX + 1];
} tr_delta_payout_t;

typedef struct {
  char asset[TR_ASSET_ID_CHARS_MAX + 1];
  tr_key_t account;
  tr_holding_t h;                   /* units 0: the row goes */
} tr_delta_holding_t;

typedef struct {
  char key[32], value[128];
} tr_delta_meta_t;

typedef struct tr_delta {
  struct tr_delta *next;            /* the writer's queue */
  uint64_t first, last;             /* entries first..last; last = the journal size after it */
  size_t bytes;                     /* memory held, for the queue's bound */
#define TR_DELTA_ARRAY(type, name) type *name; size_t name##_n, name##_cap
  TR_DELTA_ARRAY(tr_entry_t, entries);            /* tx bytes owned */
  TR_DELTA_ARRAY(tr_delta_receipt_t, receipts);
  TR_DELTA_ARRAY(tr_delta_history_t, history);
  TR_DELTA_ARRAY(tr_delta_distribution_t, distributions);
  TR_DELTA_ARRAY(tr_delta_payout_t, payouts);
  TR_DELTA_ARRAY(tr_merkle_node_t, nodes);
  TR_DELTA_ARRAY(tr_delta_meta_t, meta);
  TR_DELTA_ARRAY(tr_account_t, accounts);
  TR_DELTA_ARRAY(tr_asset_t, assets);            /* documents_json owned */
  TR_DELTA_ARRAY(tr_delta_holding_t, holdings);
#undef TR_DELTA_ARRAY
} tr_delta_t;

tr_delta_t *tr_delta_new(void);
void tr_delta_free(tr_delta_t *d);

/* The sink that collects a batch's rows into `delta`.  Earlier entries and
 * receipts (a duplicate's) are looked up in `delta` first, then through
 * lookup_entry / lookup_receipt (older deltas, then the store). */
typedef struct {
  tr_delta_t *delta;
  tr_mem_t *mem;                    /* key records named by history rows */
  int (*lookup_entry)(void *ctx, uint64_t seq, tr_entry_t *e);
  int (*lookup_receipt)(void *ctx, uint64_t seq, char **effects_json);
  void *lookup_ctx;
} tr_delta_sink_t;

extern const tr_mem_sink_t tr_delta_sink_ops; /* sink_ctx is a tr_delta_sink_t */

/* The accounts, assets and holdings m changed since its changes were last
 * cleared, copied as they are now; then clears them. */
int tr_delta_take_changes(tr_delta_t *d, tr_mem_t *m);

/* Entry seq or its receipt effects (a heap copy) from d; TR_ENOT_FOUND. */
int tr_delta_entry_get(const tr_delta_t *d, uint64_t seq, tr_entry_t *e);
int tr_delta_receipt_get(const tr_delta_t *d, uint64_t seq, char **effects_json);

/* Inside the caller's write transaction: d's entries rows. */
int tr_store_journal_append(tr_store_t *s, const tr_delta_t *d);
/* Inside the caller's write transaction: d's derived rows (idempotent:
 * rows of entries written before are left as they are), then the derived
 * mark moves to d->last. */
int tr_store_derived_write(tr_store_t *s, tr_delta_t *d);
/* The same but for the account history rows and their mark: the live node
 * writes those on their own stage (daemon/lookups.c). */
int tr_store_derived_write_but_history(tr_store_t *s, tr_delta_t *d);
/* Account history rows in key order (account, seq). */
void tr_delta_history_sort(tr_delta_history_t *rows, size_t n);
/* Inside the caller's write transaction: account history rows, sorted (the
 * same row twice is written once), then, when `through` is not 0,
 * history_progress moves to it (never back): every row of the entries
 * after the mark through `through` must be written by then. */
int tr_store_history_rows_put(tr_store_t *s, const tr_delta_history_t *rows, size_t n, uint64_t through);
/* How far every derived row is written (derived_progress). */
int tr_store_derived_mark(tr_store_t *s, uint64_t *seq);

#endif
