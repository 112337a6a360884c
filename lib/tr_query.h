/* tr_query.h — the read side of JSON-RPC (PROTOCOL.md §5) as library calls.
 *
 * Each function runs on a reader connection inside one read snapshot, builds
 * the method's `result` object (cJSON, caller frees with cJSON_Delete) and
 * reports `size`, the journal size the snapshot reflects.  Pages are ordered
 * by key and use index range scans, so their cost does not grow with the
 * journal.  Cursors are opaque strings: the `next` of the previous page.
 *
 * Returns 0 with *out; TR_ENOT_FOUND for an unknown account, asset, txid or
 * entry (-32004); TR_EARG for a malformed cursor or out-of-range argument
 * (-32602, with a message in errbuf); other negative codes for storage errors.
 */
#ifndef TR_QUERY_H
#define TR_QUERY_H

#include <cJSON.h>
#include <stdint.h>

#include "tr_note.h"
#include "tr_store.h"

typedef struct {
  const char *cursor;   /* NULL for the first page */
  uint64_t limit;       /* 1..TR_RPC_PAGE_LIMIT_MAX, already checked by the caller */
} tr_page_t;

typedef struct { char message[160]; } tr_query_error_t;

/* account.get and risk.exposure list at most this many holdings (ordered by
 * asset) and then add "holdings_truncated": true; risk.exposure totals still
 * cover every holding.  Why: one result line stays far below the 8 MiB
 * per-connection output bound (a holding is < 130 bytes of JSON), matching
 * the page limit of the paged methods. */
#define TR_QUERY_ACCOUNT_HOLDINGS_MAX 1000

int tr_query_head(tr_store_t *s, cJSON **out, tr_query_error_t *err);
int tr_query_entry(tr_store_t *s, uint64_t seq, cJSON **out, tr_query_error_t *err);
int tr_query_entries(tr_store_t *s, uint64_t from, uint64_t limit, cJSON **out, tr_query_error_t *err);
int tr_query_tx_get(tr_store_t *s, const uint8_t txid[32], cJSON **out, tr_query_error_t *err);
int tr_query_tx_find(tr_store_t *s, const tr_key_t *signer, const char *id, cJSON **out, tr_query_error_t *err);
int tr_query_account(tr_store_t *s, const tr_key_t *account, cJSON **out, tr_query_error_t *err);
int tr_query_account_history(tr_store_t *s, const tr_key_t *account, const tr_page_t *page, cJSON **out, tr_query_error_t *err);
int tr_query_asset(tr_store_t *s, const char *asset, cJSON **out, tr_query_error_t *err);
int tr_query_asset_list(tr_store_t *s, const tr_page_t *page, cJSON **out, tr_query_error_t *err);
int tr_query_asset_holders(tr_store_t *s, const char *asset, const tr_page_t *page, cJSON **out, tr_query_error_t *err);
/* distribution 0 = all distributions of the asset */
int tr_query_asset_payouts(tr_store_t *s, const char *asset, uint64_t distribution, const tr_page_t *page, cJSON **out, tr_query_error_t *err);
int tr_query_risk_exposure(tr_store_t *s, const tr_key_t *account, cJSON **out, tr_query_error_t *err);
int tr_query_proof(tr_store_t *s, uint64_t seq, uint64_t size, cJSON **out, tr_query_error_t *err);
int tr_query_consistency(tr_store_t *s, uint64_t from, uint64_t to, cJSON **out, tr_query_error_t *err);
/* ledger.checkpoint: the latest stored checkpoint, served only after
 * tr_query_checkpoint_verify with vkey (the node's verifier key text);
 * TR_ECORRUPT with what is wrong in err when the stored row fails it. */
int tr_query_checkpoint(tr_store_t *s, const char *vkey, cJSON **out, tr_query_error_t *err);

/* Checks one stored checkpoint row (columns size, root, note) inside an open
 * read of s whose journal has `journal` entries: the note verifies with vk
 * (the node key, key name = chain id = origin), its size and root are the
 * row's, 1 <= size <= journal, and its root is the Merkle root of entries
 * 1..size.  Used before serving one and by the offline audit.  Returns 0;
 * TR_ECORRUPT with what is wrong in why (why may be NULL); another code when
 * the Merkle nodes cannot be read. */
int tr_query_checkpoint_verify(tr_store_t *s, const tr_note_vkey_t *vk, uint64_t journal, uint64_t size,
                               const uint8_t root[32], const char *note, char *why, size_t whylen);

/* The receipt object of tx.submit: {seq, txid, hash, time, duplicate, effects}. */
cJSON *tr_query_receipt_json(uint64_t seq, uint64_t time, const uint8_t txid[32], const uint8_t hash[32],
                             int duplicate, const char *effects_json);

/* Adds integer v to obj as name.  cJSON 1.7.15 prints numbers >= 10^15 as
 * "%1.15g" when that is within DBL_EPSILON (1e+15, 9.00719925474099e+15 for
 * 2^53-1: wrong), so such values are added as raw decimal digits (cJSON_Raw);
 * smaller ones as cJSON numbers.  Returns the item or NULL (out of memory). */
cJSON *tr_query_add_u64(cJSON *obj, const char *name, uint64_t v);

/* Reads an integer written by tr_query_add_u64 (a number or raw digits).
 * Returns 0 with *out, or TR_EINVALID. */
int tr_query_get_u64(const cJSON *item, uint64_t *out);

/* Decimal digits of a 128-bit unsigned value (exposure and rwa strings). */
#define TR_U128_DEC_BYTES 40   /* 2^128-1 has 39 digits, plus NUL */
char *tr_u128_to_dec(unsigned __int128 v, char out[TR_U128_DEC_BYTES]);

#endif
