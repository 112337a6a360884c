/* tr_tx.h — transactions: decoding the signed bytes, txid, signatures.
 *
 * tr_tx_decode performs step 1 of PROTOCOL.md §4 ("envelope"): every check
 * that needs only the tx bytes.  It never consults ledger state.  The decoded
 * tr_tx_t is a flat, fixed-size value (no pointers into the input, no heap
 * ownership) so it can be copied between threads freely.
 */
#ifndef TR_TX_H
#define TR_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_limits.h"

#define TR_KEY_BYTES   32
#define TR_SIG_BYTES   64
#define TR_HASH_BYTES  32

typedef enum {
  TR_TX_GENESIS = 0,
  TR_TX_ACCOUNT_OPEN,
  TR_TX_ACCOUNT_UPDATE,
  TR_TX_ACCOUNT_RECOVER,
  TR_TX_ASSET_CREATE,
  TR_TX_ASSET_UPDATE,
  TR_TX_ASSET_ISSUE,
  TR_TX_TRANSFER,
  TR_TX_TRANSFER_FORCE,
  TR_TX_HOLDING_FREEZE,
  TR_TX_ASSET_REDEEM,
  TR_TX_ASSET_DISTRIBUTE,
  TR_TX_ASSET_STATUS,
  TR_TX_TYPE_COUNT
} tr_tx_type_t;

/* Roles are a set; bits in the contract's result order admin, agent, issuer, investor. */
enum {
  TR_ROLE_ADMIN = 1u << 0,
  TR_ROLE_AGENT = 1u << 1,
  TR_ROLE_ISSUER = 1u << 2,
  TR_ROLE_INVESTOR = 1u << 3,
};

typedef enum {
  TR_STATUS_ACTIVE = 0, TR_STATUS_MATURED, TR_STATUS_DEFAULTED, TR_STATUS_PAUSED, TR_STATUS_CLOSED,
  TR_STATUS_COUNT
} tr_status_t;

typedef enum {
  TR_KIND_TERM_LOAN = 0, TR_KIND_REVOLVING, TR_KIND_RECEIVABLE, TR_KIND_MORTGAGE, TR_KIND_BOND, TR_KIND_OTHER,
  TR_KIND_COUNT
} tr_asset_kind_t;

typedef enum {
  TR_DIST_INTEREST = 0, TR_DIST_PRINCIPAL, TR_DIST_OTHER, TR_DIST_KIND_COUNT
} tr_dist_kind_t;

typedef struct { uint8_t b[TR_KEY_BYTES]; } tr_key_t;

typedef struct {
  size_t jurisdictions_n;                      /* 0 = any */
  char jurisdictions[TR_JURISDICTIONS_MAX][3]; /* "US\0", distinct, in tx order */
  uint64_t max_holders;                        /* 0 = TR_HOLDERS_MAX */
  uint64_t min_units;                          /* 0 = none */
  uint64_t lockup_until;                       /* ms, 0 = none */
} tr_rules_t;

typedef struct {
  char name[TR_TEXT_BYTES_MAX + 1];            /* 1–200 chars, UTF-8 */
  uint8_t sha256[TR_HASH_BYTES];
} tr_document_t;

/* One decoded tx.  Fields a type does not use are zero.  `has_*` flags mark
 * optional fields that were present. */
typedef struct {
  tr_tx_type_t type;
  uint8_t txid[TR_HASH_BYTES];                 /* SHA-256(tx_bytes) */

  /* fields every tx has */
  char chain[TR_CHAIN_ID_CHARS_MAX + 1];
  tr_key_t signer;
  char id[TR_TX_ID_CHARS_MAX + 1];
  bool has_expires;
  uint64_t expires;

  /* keys named by the type */
  tr_key_t admin;                              /* genesis */
  tr_key_t account;                            /* account.*, holding.freeze */
  tr_key_t to;                                 /* issue, transfer, force, recover */
  tr_key_t from;                               /* force, redeem */

  char asset[TR_ASSET_ID_CHARS_MAX + 1];

  /* account.open / account.update */
  bool has_roles, has_jurisdiction, has_kyc, has_frozen;
  unsigned roles;                              /* TR_ROLE_* bits */
  char jurisdiction[3];
  bool kyc, frozen;

  /* text */
  char name[TR_TEXT_BYTES_MAX + 1];            /* asset.create */
  bool has_memo;
  char memo[TR_TEXT_BYTES_MAX + 1];            /* transfer, distribute (0–200 chars) */
  char reason[TR_TEXT_BYTES_MAX + 1];          /* recover, force */

  /* asset.create / asset.update */
  tr_asset_kind_t kind;
  char currency[4];
  uint64_t principal;
  uint64_t authorised_units;                   /* asset.create `units` */
  bool has_rating, has_risk_weight_pct, has_rules, has_documents, has_maturity;
  uint64_t coupon_bps;
  char maturity[11];                           /* "YYYY-MM-DD" */
  char rating[TR_RATING_CHARS_MAX * 4 + 1];
  uint64_t risk_weight_pct;
  tr_rules_t rules;
  size_t documents_n;
  tr_document_t documents[TR_DOCUMENTS_MAX];

  /* movements */
  uint64_t units;                              /* issue, transfer, force, freeze (0 ok), redeem */
  uint64_t amount;                             /* redeem (0 ok), distribute */
  tr_dist_kind_t dist_kind;                    /* distribute `kind` */
  tr_status_t status;                          /* asset.status */
} tr_tx_t;

typedef struct {
  char detail[160];                            /* human text: which field and why */
} tr_tx_error_t;

/* Decode and check the envelope of `len` bytes (PROTOCOL.md §4 step 1).
 * Returns 0 and fills *tx, or TR_EINVALID with err->detail set (err may be
 * NULL), or TR_ENOMEM when memory ran out (not a verdict on the tx).
 * Genesis txs decode only when their bytes are exactly the canonical form;
 * refusing a genesis in tx.submit is the caller's job. Thread-safe. */
int tr_tx_decode(const char *bytes, size_t len, tr_tx_t *tx, tr_tx_error_t *err);

/* The accounts a tx names, for account.history (§5: entries the account
 * signed or whose units it moved): the signer first, then every nonzero
 * account, to, from and (genesis) admin key, in that order; a key may repeat.
 * Returns how many pointers (into tx) were written to out. */
#define TR_TX_NAMED_MAX 5
size_t tr_tx_named_accounts(const tr_tx_t *tx, const tr_key_t *out[TR_TX_NAMED_MAX]);

/* Ed25519 verification of `sig` over "TRANCHE/TX/1\n" || bytes by `signer`.
 * Returns 0 if valid, TR_EBAD_SIGNATURE otherwise. Thread-safe. */
int tr_tx_verify(const char *bytes, size_t len, const tr_key_t *signer,
                 const uint8_t sig[TR_SIG_BYTES]);

/* Sign bytes with a 64-byte libsodium secret key (seed || pk).
 * Returns 0, or TR_EARG for NULL arguments or len > TR_TX_BYTES_MAX. */
int tr_tx_sign(const char *bytes, size_t len, const uint8_t sk[64], uint8_t sig_out[TR_SIG_BYTES]);

/* The contract's identifier forms (§1), for every module that takes them. */
bool tr_asset_id_valid(const char *s, size_t len); /* ^[A-Z0-9][A-Z0-9._-]{0,31}$ */
bool tr_tx_id_valid(const char *s, size_t len);    /* ^[A-Za-z0-9_-]{1,64}$ */
bool tr_chain_id_valid(const char *s, size_t len); /* ^[a-z0-9][a-z0-9./-]{0,63}$ */

/* Wire names; NULL for a value out of range. */
const char *tr_tx_type_name(tr_tx_type_t t);
const char *tr_status_name(tr_status_t s);
const char *tr_asset_kind_name(tr_asset_kind_t k);
const char *tr_dist_kind_name(tr_dist_kind_t k);
/* Writes roles in the contract's order as a JSON array text into out, e.g. ["admin","issuer"].
 * Unknown bits are ignored. If out_len < TR_ROLES_JSON_BYTES_MAX and the text
 * does not fit, out is set to "" (never a truncated array). */
#define TR_ROLES_JSON_BYTES_MAX 38 /* ["admin","agent","issuer","investor"] and NUL */
void tr_roles_json(unsigned roles, char *out, size_t out_len);

#endif
