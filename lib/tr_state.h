/* tr_state.h — where the ledger's rules read and write: the journal head,
 * the (signer, id) index, derived state and the per-entry rows.
 *
 * tr_ledger.c runs every rule of PROTOCOL.md §4 through this table of
 * operations, so one implementation of the rules serves two stores:
 *   - tr_store_state_ops (tr_store.c): the SQLite database of a node, the
 *     CLI and the tests; ctx is a tr_store_t inside its write transaction;
 *   - tr_audit_state_ops (tr_audit.c): the offline audit's plain in-memory
 *     state, which re-derives everything and checks each row it would write
 *     against the stored database instead of keeping a second copy.
 *
 * Every operation returns 0 or a negative tr_err; lookups return
 * TR_ENOT_FOUND when the row is absent (holding_get reads a missing holding as
 * zero instead).  Lists are heap arrays the caller frees.
 */
#ifndef TR_STATE_H
#define TR_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "tr_store.h"
#include "tr_tx.h"

/* One holding of an account (account.recover moves them all). */
typedef struct {
  char asset[TR_ASSET_ID_CHARS_MAX + 1];
  tr_holding_t h;
} tr_account_holding_t;

/* One holder of an asset (asset.distribute pays them all). */
typedef struct {
  tr_key_t account;
  uint64_t units;
} tr_asset_holder_t;

typedef struct tr_state_ops {
  /* ---- journal ---- */
  int (*head)(void *ctx, uint64_t *size, uint8_t hash[32], uint64_t *time);
  /* Appends entry head+1 (see tr_store_append); out gets seq, time, prev, hash. */
  int (*append)(void *ctx, uint64_t time, const uint8_t txid[32], const uint8_t sig[64], const tr_key_t *signer,
                const char *tx_id, const char *tx, size_t tx_len, tr_entry_t *out);
  int (*entry_by_signer_id)(void *ctx, const tr_key_t *signer, const char *id, uint64_t *seq, uint8_t txid[32]);
  int (*entry_get)(void *ctx, uint64_t seq, tr_entry_t *e);
  int (*receipt_get)(void *ctx, uint64_t seq, char **effects_json);
  int (*receipt_put)(void *ctx, uint64_t seq, const char *effects_json);
  int (*meta_put)(void *ctx, const char *key, const char *value);

  /* ---- accounts ---- */
  int (*account_get)(void *ctx, const tr_key_t *id, tr_account_t *a);
  int (*account_put)(void *ctx, const tr_account_t *a);
  /* Unfrozen accounts with role admin other than `except`. */
  int (*admins_unfrozen_except)(void *ctx, const tr_key_t *except, uint64_t *count);
  /* account.history rows; adding one twice is a no-op. */
  int (*account_entry_add)(void *ctx, const tr_key_t *account, uint64_t seq);

  /* ---- assets ---- */
  int (*asset_get)(void *ctx, const char *id, tr_asset_t *a); /* free with tr_asset_clear */
  int (*asset_put)(void *ctx, const tr_asset_t *a);
  /* Every asset issued by `from` names `to` as issuer (account.recover). */
  int (*assets_reissue)(void *ctx, const tr_key_t *from, const tr_key_t *to);

  /* ---- holdings (units 0 = no holding) ---- */
  int (*holding_get)(void *ctx, const char *asset, const tr_key_t *account, tr_holding_t *h);
  int (*holding_put)(void *ctx, const char *asset, const tr_key_t *account, const tr_holding_t *h);
  /* Holdings with units > 0 of one account, in any order. */
  int (*account_holdings)(void *ctx, const tr_key_t *account, tr_account_holding_t **v, size_t *n);
  /* Holders (units > 0) of one asset, ordered by account id. */
  int (*asset_holders)(void *ctx, const char *asset, tr_asset_holder_t **v, size_t *n);

  /* ---- distributions ---- */
  int (*distribution_put)(void *ctx, uint64_t seq, const char *asset, uint64_t amount, tr_dist_kind_t kind,
                          uint64_t count);
  /* Called in account order within a distribution. */
  int (*payout_put)(void *ctx, uint64_t seq, const tr_key_t *account, const char *asset, uint64_t amount);
} tr_state_ops_t;

/* The SQLite implementation; ctx is a tr_store_t. */
extern const tr_state_ops_t tr_store_state_ops;

#endif
