/* tr_ledger.h — the ledger state machine of PROTOCOL.md §2–§4.
 *
 * Steps 1–3 of §4 (envelope, chain, signature) need no state and run in the
 * daemon's worker threads; this module runs steps 4–8 against the derived
 * state and, for accepted txs, appends the journal entry and updates the
 * state.  It reads and writes only through a tr_state_ops_t (tr_state.h): on
 * a node that is the SQLite store, inside the caller's open write
 * transaction; in the offline audit it is plain memory (tr_audit.c).  Every
 * rule depends only on the state before the entry, the tx and the entry's
 * time, so replaying the journal reproduces the state exactly.
 */
#ifndef TR_LEDGER_H
#define TR_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "tr_state.h"
#include "tr_store.h"
#include "tr_tx.h"

#define TR_REFUSALS_MAX 16     /* step 8 of any type has fewer checks than this */
#define TR_DETAIL_MAX 200

typedef struct {
  int code;                    /* a refusal tr_err (tr_err_reason gives the wire word) */
  char detail[TR_DETAIL_MAX];  /* for humans, e.g. "available 40 units, transfer needs 50" */
} tr_refusal_t;

typedef struct {
  uint64_t seq, time;
  uint8_t txid[TR_HASH_BYTES], hash[TR_HASH_BYTES];
  bool duplicate;
  char *effects_json;          /* heap; free with tr_receipt_clear */
} tr_receipt_t;

void tr_receipt_clear(tr_receipt_t *r);

/* A ledger: where its state lives, and what genesis fixed (chain, node key). */
typedef struct {
  tr_store_t *store;           /* the SQLite store, or NULL for another state */
  const tr_state_ops_t *ops;
  void *ctx;                   /* ops' first argument */
  char chain[TR_CHAIN_ID_CHARS_MAX + 1];
  tr_key_t node_key;
} tr_ledger_t;

/* A ledger on the SQLite store s: reads chain and node key from its meta.
 * TR_ENOT_FOUND before init. */
int tr_ledger_load(tr_ledger_t *l, tr_store_t *s);

/* Steps 4–8 for a tx that passed steps 1–3, inside the caller's write
 * transaction.  The entry time is max(head time, clock_ms).
 * Returns 0 with *receipt filled (accepted, or duplicate with the stored
 * receipt); a refusal code with *refusal filled and nothing written (the
 * checks only read); or an internal error (storage), after which the caller
 * must roll back its whole transaction. */
int tr_ledger_apply(tr_ledger_t *l, const tr_tx_t *tx, const char *bytes, size_t len,
                    const uint8_t sig[TR_SIG_BYTES], uint64_t clock_ms,
                    tr_receipt_t *receipt, tr_refusal_t *refusal);

/* Dry run of steps 4–8 on a read snapshot; writes nothing.  The first failure
 * of steps 4–7 is the only reason; past step 7 every failing rule of step 8 is
 * listed once, in order.  *duplicate_seq is set when the txid is already in
 * the journal (then *n_reasons is 0).  Returns 0 or an internal error. */
int tr_ledger_check(tr_ledger_t *l, const tr_tx_t *tx, uint64_t clock_ms,
                    tr_refusal_t reasons[TR_REFUSALS_MAX], size_t *n_reasons,
                    uint64_t *duplicate_seq);

/* Writes entry 1 (genesis) into an empty store, in its own transaction. */
int tr_ledger_genesis(tr_store_t *s, const char *chain, const uint8_t node_sk[64],
                      const tr_key_t *admin, uint64_t time_ms);

/* Applies a decoded genesis tx as entry 1 through l's state (the caller
 * holds any transaction) and fixes l's chain and node key from it.
 * TR_EEXISTS when the journal is not empty, TR_EINVALID for a non-genesis tx
 * or an admin key equal to the node key. */
int tr_ledger_genesis_apply(tr_ledger_t *l, const tr_tx_t *tx, const char *bytes, size_t len,
                            const uint8_t sig[TR_SIG_BYTES], uint64_t time_ms);

/* Genesis bytes of §4 for chain, node key and admin key. Returns length or <0. */
int tr_genesis_bytes(const char *chain, const tr_key_t *node, const tr_key_t *admin,
                     char *out, size_t outlen);

/* ---- replay (tr_audit.c) ---- */

typedef struct {
  uint64_t bad_seq;            /* first bad entry, 0 if the problem is not one entry */
  char message[256];
  uint64_t entries_ms, compare_ms; /* time spent re-applying, and comparing the tables */
  uint64_t size, history_through;  /* journal size; entries whose account.history rows are written */
} tr_replay_report_t;

typedef void (*tr_replay_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* Rebuilds all derived state from the journal of the database at `db_path`
 * (read-only) in plain memory, checking every entry's links, hash, envelope
 * and rule outcome (signatures are the caller's job: they are checked in
 * parallel elsewhere), and checks every derived row against the stored
 * tables: per-entry rows (receipts, distributions, payouts) as they are
 * produced, the rest once the journal is replayed.  Returns 0 when
 * identical; TR_ECORRUPT with *report filled (bad_seq names the entry when
 * one entry is to blame, else 0); another tr_err when the database cannot be
 * read or memory runs out. */
int tr_ledger_replay(const char *db_path, tr_replay_progress_fn progress, void *ctx,
                     tr_replay_report_t *report);

#endif
