/* tr_mem.h — the ledger's derived state in plain memory: accounts, assets,
 * holdings, the (signer, id) index, the journal head and the Merkle
 * frontier, behind tr_state.h.
 *
 * One implementation serves two users:
 *   - the live node's sequencer: the rules run on it with no SQL on that
 *     thread; what a batch changed is taken as a tr_delta_t (tr_delta.h) and
 *     written to SQLite behind, on a thread of its own;
 *   - the offline audit (tr_audit.c): the journal is replayed onto it and
 *     what it produces is compared with the stored rows.
 *
 * The per-entry rows the rules make (entries, receipts, account history,
 * distributions, payouts, Merkle nodes, meta) and the lookups of earlier
 * entries go to a sink (tr_mem_sink_t) its user supplies; the state itself
 * (accounts, assets, holdings) stays here, and a user that writes it behind
 * asks for the records changed since it last asked (tr_mem_track_changes).
 *
 * Memory (64-bit, see tr_limits.h TR_MEM_*): about 120 bytes per key
 * (account), 70 per holding, 900 per asset plus its documents, 32 per
 * journal entry (its (signer, id) digest in a half-full table).
 */
#ifndef TR_MEM_H
#define TR_MEM_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_ledger.h"
#include "tr_merkle.h"
#include "tr_state.h"
#include "tr_store.h"

#define TR_MEM_NONE UINT32_MAX  /* no record */

/* Maps a key's 64-bit hash to record numbers (the caller confirms the key);
 * open addressing, load <= 1/2. */
typedef struct {
  struct tr_mem_slot { uint64_t hash; uint32_t rec; } *slots;
  size_t mask, used;
} tr_mem_index_t;

/* Every key the journal names: accounts, and keys seen only in history rows
 * (the node key signs genesis but is never an account). */
typedef struct {
  tr_account_t a;               /* a.id is the key */
  bool is_account, changed;
  uint32_t holdings;            /* this key's first holding, TR_MEM_NONE */
  uint32_t rank;                /* free for the user (the audit's key order) */
} tr_mem_key_t;

typedef struct {
  tr_asset_t a;                 /* a.documents_json owned */
  bool changed;
  uint32_t holdings;            /* this asset's first holding, TR_MEM_NONE */
} tr_mem_asset_t;

/* Holdings are never removed: one that drops to 0 stays, as units 0. */
typedef struct {
  uint32_t asset, key, next_of_asset, next_of_key;
  tr_holding_t h;
  bool changed;
} tr_mem_holding_t;

/* Where the per-entry rows go, and where earlier entries are looked up. */
typedef struct {
  /* An entry was appended (tx bytes valid during the call only). */
  int (*entry)(void *ctx, const tr_entry_t *e, const char *tx, size_t tx_len);
  /* Entry seq (an earlier one, found by its (signer, id)); its tx may be NULL. */
  int (*entry_get)(void *ctx, uint64_t seq, tr_entry_t *e);
  int (*receipt_put)(void *ctx, uint64_t seq, const char *effects_json);
  int (*receipt_get)(void *ctx, uint64_t seq, char **effects_json);
  int (*meta_put)(void *ctx, const char *key, const char *value);
  /* account.history row of key record `key` (tr_mem_t.keys). */
  int (*history_add)(void *ctx, uint32_t key, uint64_t seq);
  int (*distribution_put)(void *ctx, uint64_t seq, const char *asset, uint64_t amount, tr_dist_kind_t kind,
                          uint64_t count);
  int (*payout_put)(void *ctx, uint64_t seq, const tr_key_t *account, const char *asset, uint64_t amount);
  /* A complete Merkle subtree above the leaves (level >= 1). */
  int (*merkle_node)(void *ctx, const tr_merkle_node_t *n);
} tr_mem_sink_t;

typedef struct tr_mem {
  uint8_t hash_key[crypto_shorthash_KEYBYTES], digest_key[crypto_shorthash_siphashx24_KEYBYTES];
  const tr_mem_sink_t *sink;
  void *sink_ctx;

  uint64_t size, head_time;
  uint8_t head_hash[32];
  uint8_t frontier[TR_MERKLE_PATH_MAX + 1][32]; /* last complete node of each level, leaves too */

  struct tr_mem_sigid { uint8_t digest[16]; uint64_t seq; } *sigids; /* seq 0: empty */
  size_t sigid_mask, sigids_used;

  tr_mem_key_t *keys;
  size_t keys_n, keys_cap, accounts_n, admins_unfrozen;
  tr_mem_index_t key_ix;
  tr_mem_asset_t *assets;
  size_t assets_n, assets_cap;
  tr_mem_index_t asset_ix;
  tr_mem_holding_t *holdings;
  size_t holdings_n, holdings_cap, holdings_positive;
  tr_mem_index_t holding_ix;

  /* Records changed since tr_mem_changes_clear (when tracking). */
  bool track;
  uint32_t *changed_keys, *changed_assets, *changed_holdings;
  size_t changed_keys_n, changed_keys_cap, changed_assets_n, changed_assets_cap;
  size_t changed_holdings_n, changed_holdings_cap;
} tr_mem_t;

extern const tr_state_ops_t tr_mem_state_ops; /* ctx is a tr_mem_t */

/* An empty state whose per-entry rows go to sink (with sink_ctx). */
int tr_mem_init(tr_mem_t *m, const tr_mem_sink_t *sink, void *sink_ctx);
void tr_mem_free(tr_mem_t *m);
/* Record the accounts, assets and holdings each put changes (for a writer behind). */
void tr_mem_track_changes(tr_mem_t *m, bool on);
void tr_mem_changes_clear(tr_mem_t *m);

/* Lookups by key; TR_MEM_NONE when absent. */
uint32_t tr_mem_key_find(const tr_mem_t *m, const tr_key_t *k);
uint32_t tr_mem_asset_find(const tr_mem_t *m, const char *id);
uint32_t tr_mem_holding_find(const tr_mem_t *m, uint32_t asset, uint32_t key);

/* Loading a node's state from its store (tr_mem_load.c), as of derived
 * mark `through` (every derived row reflects entries 1..through): accounts,
 * assets and holdings from their tables, the (signer, id) index, head and
 * frontier from the journal's first `through` entries.  Then
 * tr_mem_replay applies entries through+1..last from the journal through the
 * rules (sink rows as for live txs) and checks each comes out as stored. */
int tr_mem_load(tr_mem_t *m, tr_store_t *s, uint64_t through, char *err, size_t errlen);
int tr_mem_replay(tr_mem_t *m, tr_ledger_t *l, tr_store_t *s, uint64_t last, char *err, size_t errlen);

/* For tr_mem_load.c: stored rows into the state, and the journal's entries
 * one by one (seq must be size+1; their Merkle nodes are stored already). */
int tr_mem_load_account(tr_mem_t *m, const tr_account_t *a);
int tr_mem_load_asset(tr_mem_t *m, const tr_asset_t *a);
int tr_mem_load_holding(tr_mem_t *m, const char *asset, const tr_key_t *account, const tr_holding_t *h);
int tr_mem_load_entry(tr_mem_t *m, uint64_t seq, uint64_t time, const uint8_t hash[32], const tr_key_t *signer,
                      const char *tx_id);

#endif
