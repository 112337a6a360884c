/* tr_err.h — the one table of error codes.
 *
 * TR_ERR_MAP yields the enum, tr_strerror() and the refusal reason words of
 * PROTOCOL.md §6, so each wire word exists in exactly one place.  Codes are
 * negative ints (0 is success) as in libuv.
 */
#ifndef TR_ERR_H
#define TR_ERR_H

/* XX(NAME, wire reason or NULL for internal errors, human text) */
#define TR_ERR_MAP(XX)                                                              \
  XX(INVALID,            "invalid",            "malformed or not allowed by the rules")   \
  XX(WRONG_CHAIN,        "wrong_chain",        "tx names another chain")                  \
  XX(BAD_SIGNATURE,      "bad_signature",      "signature does not verify")               \
  XX(EXPIRED,            "expired",            "tx expired")                              \
  XX(ID_CONFLICT,        "id_conflict",        "signer already used this id")             \
  XX(NOT_FOUND,          "not_found",          "no such account, asset or entry")         \
  XX(EXISTS,             "exists",             "already exists")                          \
  XX(UNAUTHORIZED,       "unauthorized",       "signer may not do this")                  \
  XX(FROZEN,             "frozen",             "account is frozen")                       \
  XX(NOT_VERIFIED,       "not_verified",       "account has not passed kyc")              \
  XX(JURISDICTION,       "jurisdiction",       "jurisdiction not allowed for asset")      \
  XX(LOCKUP,             "lockup",             "asset is locked up")                      \
  XX(MIN_UNITS,          "min_units",          "holding would be under the minimum")      \
  XX(MAX_HOLDERS,        "max_holders",        "asset would exceed its holder limit")     \
  XX(INSUFFICIENT_UNITS, "insufficient_units", "not enough units")                        \
  XX(EXCEEDS_AUTHORISED, "exceeds_authorised", "issue would exceed authorised units")     \
  XX(ASSET_NOT_ACTIVE,   "asset_not_active",   "asset status does not allow this")        \
  XX(NOMEM,              NULL,                 "out of memory")                           \
  XX(IO,                 NULL,                 "storage error")                           \
  XX(CORRUPT,            NULL,                 "stored data failed a check")              \
  XX(ARG,                NULL,                 "bad argument")                            \
  XX(LIMIT,              NULL,                 "a limit was reached")

typedef enum {
  TR_OK = 0,
#define XX(name, reason, text) TR_E##name,
  TR_ERR_FIRST_ = -1000,
  TR_ERR_MAP(XX)
#undef XX
} tr_err_t;

/* Human text for any code (TR_OK included). Never NULL. */
const char *tr_strerror(int err);

/* The §6 wire word for a refusal code, or NULL for internal errors. */
const char *tr_err_reason(int err);

/* True for codes that are refusals of a tx (have a wire reason). */
int tr_err_is_refusal(int err);

#endif
