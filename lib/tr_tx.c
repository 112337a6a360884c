/* tr_tx.c — transactions: the envelope check (PROTOCOL.md §4 step 1), txid,
 * signatures and wire names.
 *
 * tr_tx_decode runs in the daemon's worker threads for every submitted tx and
 * again for every entry of an offline replay, so it touches no shared state.
 * The field sets are data: one table of rows per type, each row naming a
 * member, what it must hold and where it goes in tr_tx_t.  Checks run in a
 * fixed order so the same bytes always give the same detail:
 *
 *   size → strict bytes (tr_json_check) → `type` → every member in document
 *   order (unknown name, type, format, range) → missing required members in
 *   table order → "at least one of" → cross-field rules → genesis form.
 *
 * Decisions where the contract is silent (PROTOCOL.md "choose what a user of
 * a financial ledger would expect"):
 *   - `roles` may be an empty array: an account with no roles is what
 *     account.recover leaves behind, so admins can set it directly too.
 *   - `documents` may be an empty array (asset.update clearing the list);
 *     documents may repeat a name: two versions of one term sheet are real.
 *   - `rules` itself is required in asset.create (its members are optional;
 *     `{}` means no restrictions).
 *   - the admin pause is the status word "paused".
 *   - genesis with admin = signer is invalid: the node key must never become
 *     an account, and genesis skips the state checks that would refuse it.
 *   - text may contain any scalar value except U+0000 (refused by the byte
 *     check); control characters are not filtered.
 */
#include "tr_tx.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_json.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TX_DOMAIN "TRANCHE/TX/1\n"
#define TX_DOMAIN_BYTES (sizeof TX_DOMAIN - 1)
#define PATH_BYTES_MAX 96        /* paths are table names and indices: "documents[31].sha256" */
#define SHOWN_BYTES_MAX 40       /* how much of a client's string a detail repeats */
#define ROWS_MAX 32              /* rows of one object: `seen` is a uint32_t bitmask */

/* ---- errors ---- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(tr_tx_error_t *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(err->detail, sizeof err->detail, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof err->detail) {
    /* Truncated: never leave half a UTF-8 sequence at the end of the text. */
    size_t end = sizeof err->detail - 1, lead = end - 1;
    while (lead > 0 && ((uint8_t)err->detail[lead] & 0xC0) == 0x80) lead--;
    uint8_t c = (uint8_t)err->detail[lead];
    size_t need = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (lead + need > end) err->detail[lead] = '\0';
  }
  return TR_EINVALID;
}

/* Builds a field path ("rules.jurisdictions[3]") for details.  Paths are made
 * of table names and indices only, so they always fit; a wrapper keeps the
 * compiler's truncation analysis from guessing otherwise. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void path_fmt(char *out, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out, cap, fmt, ap);
  va_end(ap);
}

/* prefix + name into out (cap bytes), cut like path_fmt would be: the one
 * path every decoded member needs, so no printf on the success path. */
static void path_cat(char *out, size_t cap, const char *prefix, const char *name) {
  size_t a = strlen(prefix), b = strlen(name);
  if (a > cap - 1) a = cap - 1;
  if (b > cap - 1 - a) b = cap - 1 - a;
  memcpy(out, prefix, a);
  memcpy(out + a, name, b);
  out[a + b] = '\0';
}

/* ---- formats ---- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }

/* ^[a-z0-9][a-z0-9./-]{0,63}$ */
bool tr_chain_id_valid(const char *s, size_t n) {
  if (n < 1 || n > TR_CHAIN_ID_CHARS_MAX || !(is_lower(s[0]) || is_digit(s[0]))) return false;
  for (size_t i = 1; i < n; i++) {
    char c = s[i];
    if (!(is_lower(c) || is_digit(c) || c == '.' || c == '/' || c == '-')) return false;
  }
  return true;
}

/* ^[A-Za-z0-9_-]{1,64}$ */
bool tr_tx_id_valid(const char *s, size_t n) {
  if (n < 1 || n > TR_TX_ID_CHARS_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(is_upper(c) || is_lower(c) || is_digit(c) || c == '_' || c == '-')) return false;
  }
  return true;
}

/* ^[A-Z0-9][A-Z0-9._-]{0,31}$ */
bool tr_asset_id_valid(const char *s, size_t n) {
  if (n < 1 || n > TR_ASSET_ID_CHARS_MAX || !(is_upper(s[0]) || is_digit(s[0]))) return false;
  for (size_t i = 1; i < n; i++) {
    char c = s[i];
    if (!(is_upper(c) || is_digit(c) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

/* ^[A-Z]{n}$ */
static bool match_upper(const char *s, size_t len, size_t n) {
  if (len != n) return false;
  for (size_t i = 0; i < n; i++) {
    if (!is_upper(s[i])) return false;
  }
  return true;
}

static unsigned digits(const char *s, size_t n) {
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) v = v * 10 + (unsigned)(s[i] - '0');
  return v;
}

/* "YYYY-MM-DD", a real proleptic Gregorian date in years 0001–9999. */
static bool match_date(const char *s, size_t n) {
  static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (n != 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i = 0; i < n; i++) {
    if (i != 4 && i != 7 && !is_digit(s[i])) return false;
  }
  unsigned y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= days[m - 1] + (m == 2 && leap);
}

/* ---- names ---- */

static const char *const TYPE_NAMES[TR_TX_TYPE_COUNT] = {
  [TR_TX_GENESIS] = "genesis",
  [TR_TX_ACCOUNT_OPEN] = "account.open",
  [TR_TX_ACCOUNT_UPDATE] = "account.update",
  [TR_TX_ACCOUNT_RECOVER] = "account.recover",
  [TR_TX_ASSET_CREATE] = "asset.create",
  [TR_TX_ASSET_UPDATE] = "asset.update",
  [TR_TX_ASSET_ISSUE] = "asset.issue",
  [TR_TX_TRANSFER] = "transfer",
  [TR_TX_TRANSFER_FORCE] = "transfer.force",
  [TR_TX_HOLDING_FREEZE] = "holding.freeze",
  [TR_TX_ASSET_REDEEM] = "asset.redeem",
  [TR_TX_ASSET_DISTRIBUTE] = "asset.distribute",
  [TR_TX_ASSET_STATUS] = "asset.status",
};

/* "paused" is the wire word for an admin's pause (§4 asset.status). */
static const char *const STATUS_NAMES[TR_STATUS_COUNT] = {
  [TR_STATUS_ACTIVE] = "active", [TR_STATUS_MATURED] = "matured",
  [TR_STATUS_DEFAULTED] = "defaulted", [TR_STATUS_PAUSED] = "paused",
  [TR_STATUS_CLOSED] = "closed",
};

static const char *const KIND_NAMES[TR_KIND_COUNT] = {
  [TR_KIND_TERM_LOAN] = "term_loan", [TR_KIND_REVOLVING] = "revolving",
  [TR_KIND_RECEIVABLE] = "receivable", [TR_KIND_MORTGAGE] = "mortgage",
  [TR_KIND_BOND] = "bond", [TR_KIND_OTHER] = "other",
};

static const char *const DIST_KIND_NAMES[TR_DIST_KIND_COUNT] = {
  [TR_DIST_INTEREST] = "interest", [TR_DIST_PRINCIPAL] = "principal", [TR_DIST_OTHER] = "other",
};

/* Bit i is role ROLE_NAMES[i]: the contract's result order. */
static const char *const ROLE_NAMES[] = {"admin", "agent", "issuer", "investor"};

const char *tr_tx_type_name(tr_tx_type_t t) {
  return (unsigned)t < TR_TX_TYPE_COUNT ? TYPE_NAMES[t] : NULL;
}

const char *tr_status_name(tr_status_t s) {
  return (unsigned)s < TR_STATUS_COUNT ? STATUS_NAMES[s] : NULL;
}

const char *tr_asset_kind_name(tr_asset_kind_t k) {
  return (unsigned)k < TR_KIND_COUNT ? KIND_NAMES[k] : NULL;
}

const char *tr_dist_kind_name(tr_dist_kind_t k) {
  return (unsigned)k < TR_DIST_KIND_COUNT ? DIST_KIND_NAMES[k] : NULL;
}

void tr_roles_json(unsigned roles, char *out, size_t out_len) {
  char buf[64] = "[";
  size_t n = 1;
  for (size_t i = 0; i < ARRAY_LEN(ROLE_NAMES); i++) {
    if (!(roles & (1u << i))) continue;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"%s\"", n > 1 ? "," : "", ROLE_NAMES[i]);
  }
  buf[n++] = ']';
  buf[n] = '\0';
  if (out == NULL || out_len == 0) return;
  if (n < out_len) memcpy(out, buf, n + 1);
  else out[0] = '\0'; /* never a truncated, unbalanced array */
}

/* ---- the field tables ---- */

typedef enum {
  K_TYPE,          /* dispatched on before the walk; nothing to store */
  K_CHAIN, K_TXID, K_ASSET, K_JURISDICTION, K_CURRENCY, K_DATE, /* char[] by format */
  K_KEY,           /* tr_key_t: 64 lowercase hex, a prime-order-subgroup point */
  K_HASH,          /* uint8_t[32]: 64 lowercase hex */
  K_INT,           /* uint64_t in [lo, hi] */
  K_BOOL,          /* bool */
  K_TEXT,          /* char[]: lo..hi Unicode scalar values */
  K_ROLES,         /* unsigned TR_ROLE_* bits */
  K_JURISDICTIONS, /* tr_rules_t.jurisdictions */
  K_RULES,         /* tr_rules_t */
  K_DOCUMENTS,     /* tr_tx_t.documents */
  K_ASSET_KIND, K_DIST_KIND, K_STATUS, /* enums by wire word */
} kind_t;

typedef enum {
  OPT,    /* may be absent (never null) */
  REQ,    /* must be present */
  ONE_OF, /* optional, but the type needs at least one of its ONE_OF rows */
} need_t;

#define NO_HAS ((size_t)-1)

typedef struct {
  const char *name;
  kind_t kind;
  need_t need;
  size_t off;     /* destination within the decoded struct */
  size_t size;    /* its size, for strings */
  size_t has_off; /* a bool set when present, or NO_HAS */
  uint64_t lo, hi;
} row_t;

#define SIZE_OF(T, f) sizeof(((T *)0)->f)
#define ROW_IN(T, nm, k, nd, f, h, lo, hi) {nm, k, nd, offsetof(T, f), SIZE_OF(T, f), h, lo, hi}
#define ROW(nm, k, nd, f) ROW_IN(tr_tx_t, nm, k, nd, f, NO_HAS, 0, 0)
#define ROW_H(nm, k, nd, f, h) ROW_IN(tr_tx_t, nm, k, nd, f, offsetof(tr_tx_t, h), 0, 0)
#define ROW_INT(nm, nd, f, lo, hi) ROW_IN(tr_tx_t, nm, K_INT, nd, f, NO_HAS, lo, hi)
#define ROW_INT_H(nm, nd, f, h, lo, hi) ROW_IN(tr_tx_t, nm, K_INT, nd, f, offsetof(tr_tx_t, h), lo, hi)
#define ROW_TEXT(nm, nd, f, lo, hi) ROW_IN(tr_tx_t, nm, K_TEXT, nd, f, NO_HAS, lo, hi)
#define ROW_TEXT_H(nm, nd, f, h, lo, hi) ROW_IN(tr_tx_t, nm, K_TEXT, nd, f, offsetof(tr_tx_t, h), lo, hi)

static const row_t COMMON_ROWS[] = {
  ROW("type", K_TYPE, REQ, type),
  ROW("chain", K_CHAIN, REQ, chain),
  ROW("signer", K_KEY, REQ, signer),
  ROW("id", K_TXID, REQ, id),
  ROW_INT_H("expires", OPT, expires, has_expires, 0, TR_INT_MAX),
};

static const row_t RULES_ROWS[] = {
  ROW_IN(tr_rules_t, "jurisdictions", K_JURISDICTIONS, OPT, jurisdictions, NO_HAS, 0, 0),
  ROW_IN(tr_rules_t, "max_holders", K_INT, OPT, max_holders, NO_HAS, 0, TR_HOLDERS_MAX),
  ROW_IN(tr_rules_t, "min_units", K_INT, OPT, min_units, NO_HAS, 0, TR_INT_MAX),
  ROW_IN(tr_rules_t, "lockup_until", K_INT, OPT, lockup_until, NO_HAS, 0, TR_INT_MAX),
};

static const row_t DOCUMENT_ROWS[] = {
  ROW_IN(tr_document_t, "name", K_TEXT, REQ, name, NO_HAS, 1, TR_TEXT_CHARS_MAX),
  ROW_IN(tr_document_t, "sha256", K_HASH, REQ, sha256, NO_HAS, 0, 0),
};

static const row_t GENESIS_ROWS[] = {
  ROW("admin", K_KEY, REQ, admin),
};

static const row_t ACCOUNT_OPEN_ROWS[] = {
  ROW("account", K_KEY, REQ, account),
  ROW_H("roles", K_ROLES, REQ, roles, has_roles),
  ROW_H("jurisdiction", K_JURISDICTION, REQ, jurisdiction, has_jurisdiction),
  ROW_H("kyc", K_BOOL, REQ, kyc, has_kyc),
};

static const row_t ACCOUNT_UPDATE_ROWS[] = {
  ROW("account", K_KEY, REQ, account),
  ROW_H("roles", K_ROLES, ONE_OF, roles, has_roles),
  ROW_H("jurisdiction", K_JURISDICTION, ONE_OF, jurisdiction, has_jurisdiction),
  ROW_H("kyc", K_BOOL, ONE_OF, kyc, has_kyc),
  ROW_H("frozen", K_BOOL, ONE_OF, frozen, has_frozen),
};

static const row_t ACCOUNT_RECOVER_ROWS[] = {
  ROW("account", K_KEY, REQ, account),
  ROW("to", K_KEY, REQ, to),
  ROW_TEXT("reason", REQ, reason, 1, TR_TEXT_CHARS_MAX),
};

static const row_t ASSET_CREATE_ROWS[] = {
  ROW("asset", K_ASSET, REQ, asset),
  ROW_TEXT("name", REQ, name, 1, TR_TEXT_CHARS_MAX),
  ROW("kind", K_ASSET_KIND, REQ, kind),
  ROW("currency", K_CURRENCY, REQ, currency),
  ROW_INT("principal", REQ, principal, 1, TR_INT_MAX),
  ROW_INT("units", REQ, authorised_units, 1, TR_INT_MAX),
  ROW_INT("coupon_bps", REQ, coupon_bps, 0, TR_COUPON_BPS_MAX),
  ROW_H("maturity", K_DATE, REQ, maturity, has_maturity),
  ROW_TEXT_H("rating", REQ, rating, has_rating, 1, TR_RATING_CHARS_MAX),
  ROW_INT_H("risk_weight_pct", REQ, risk_weight_pct, has_risk_weight_pct, 0, TR_RISK_WEIGHT_PCT_MAX),
  ROW_H("rules", K_RULES, REQ, rules, has_rules),
  ROW_H("documents", K_DOCUMENTS, OPT, documents, has_documents),
};

static const row_t ASSET_UPDATE_ROWS[] = {
  ROW("asset", K_ASSET, REQ, asset),
  ROW_TEXT_H("rating", ONE_OF, rating, has_rating, 1, TR_RATING_CHARS_MAX),
  ROW_INT_H("risk_weight_pct", ONE_OF, risk_weight_pct, has_risk_weight_pct, 0, TR_RISK_WEIGHT_PCT_MAX),
  ROW_H("rules", K_RULES, ONE_OF, rules, has_rules),
  ROW_H("documents", K_DOCUMENTS, ONE_OF, documents, has_documents),
  ROW_H("maturity", K_DATE, ONE_OF, maturity, has_maturity),
};

static const row_t ASSET_ISSUE_ROWS[] = {
  ROW("asset", K_ASSET, REQ, asset),
  ROW("to", K_KEY, REQ, to),
  ROW_INT("units", REQ, units, 1, TR_INT_MAX),
};

static const row_t TRANSFER_ROWS[] = {
  ROW("asset", K_ASSET, REQ, asset),
  ROW("to", K_KEY, REQ, to),
  ROW_INT("units", REQ, units, 1, TR_INT_MAX),
  ROW_TEXT_H("memo", OPT, memo, has_memo, 0, TR_TEXT_CHARS_MAX),
};

static const row_t TRANSFER_FORCE_ROWS[] = {
  ROW("asset", K_ASSET, REQ, asset),
  ROW("from", K_KEY, REQ, from),
  ROW("to", K_KEY, REQ, to),
  ROW_INT("units", REQ, units, 1, TR_INT_MAX),
  ROW_TEXT("reason", REQ, reason, 1, TR_TEXT_CHARS_MAX),
};

static const row_t HOLDING_FREEZE_ROWS[] = {
  ROW("asset", K_ASSET, REQ, asset),
  ROW("account", K_KEY, REQ, account),
  ROW_INT("units", REQ, units, 0, TR_INT_MAX), /* 0 unfreezes */
};

static const row_t ASSET_REDEEM_ROWS[] = {
  ROW("asset", K_ASSET, REQ, asset),
  ROW("from", K_KEY, REQ, from),
  ROW_INT("units", REQ, units, 1, TR_INT_MAX),
  ROW_INT("amount", REQ, amount, 0, TR_INT_MAX), /* a redemption may pay nothing */
};

static const row_t ASSET_DISTRIBUTE_ROWS[] = {
  ROW("asset", K_ASSET, REQ, asset),
  ROW_INT("amount", REQ, amount, 1, TR_INT_MAX),
  ROW("kind", K_DIST_KIND, REQ, dist_kind),
  ROW_TEXT_H("memo", OPT, memo, has_memo, 0, TR_TEXT_CHARS_MAX),
};

static const row_t ASSET_STATUS_ROWS[] = {
  ROW("asset", K_ASSET, REQ, asset),
  ROW("status", K_STATUS, REQ, status),
};

typedef struct {
  const row_t *rows;
  size_t n;
} row_set_t;

#define ROWS(a) {a, ARRAY_LEN(a)}
static const row_set_t TYPE_ROWS[TR_TX_TYPE_COUNT] = {
  [TR_TX_GENESIS] = ROWS(GENESIS_ROWS),
  [TR_TX_ACCOUNT_OPEN] = ROWS(ACCOUNT_OPEN_ROWS),
  [TR_TX_ACCOUNT_UPDATE] = ROWS(ACCOUNT_UPDATE_ROWS),
  [TR_TX_ACCOUNT_RECOVER] = ROWS(ACCOUNT_RECOVER_ROWS),
  [TR_TX_ASSET_CREATE] = ROWS(ASSET_CREATE_ROWS),
  [TR_TX_ASSET_UPDATE] = ROWS(ASSET_UPDATE_ROWS),
  [TR_TX_ASSET_ISSUE] = ROWS(ASSET_ISSUE_ROWS),
  [TR_TX_TRANSFER] = ROWS(TRANSFER_ROWS),
  [TR_TX_TRANSFER_FORCE] = ROWS(TRANSFER_FORCE_ROWS),
  [TR_TX_HOLDING_FREEZE] = ROWS(HOLDING_FREEZE_ROWS),
  [TR_TX_ASSET_REDEEM] = ROWS(ASSET_REDEEM_ROWS),
  [TR_TX_ASSET_DISTRIBUTE] = ROWS(ASSET_DISTRIBUTE_ROWS),
  [TR_TX_ASSET_STATUS] = ROWS(ASSET_STATUS_ROWS),
};

/* ---- values ----
 * Members are read straight from the checked bytes (tr_json_next_member):
 * no tree, no copies but the ones that land in tr_tx_t. */

typedef tr_json_value_t value_t;

static int want(const value_t *v, tr_json_type_t t, const char *path, tr_tx_error_t *err) {
  static const char *const what[] = {
    [TR_JSON_STRING] = "a string", [TR_JSON_NUMBER] = "an integer", [TR_JSON_BOOL] = "true or false",
    [TR_JSON_OBJECT] = "an object", [TR_JSON_ARRAY] = "an array",
  };
  if (v->type == t) return 0;
  if (v->type == TR_JSON_NULL) return fail(err, "field `%s`: must be %s, not null", path, what[t]);
  return fail(err, "field `%s`: must be %s", path, what[t]);
}

/* A string's decoded bytes: its own text when it holds no escape, else
 * decoded into buf[cap].  *n is the decoded length; when it is above cap the
 * string did not fit, and only its first cap bytes may be read. */
static const char *str_of(const value_t *v, char *buf, size_t cap, size_t *n) {
  if (!v->escaped) {
    *n = v->len;
    return v->raw;
  }
  *n = tr_json_string(v, buf, cap);
  return buf;
}

#define STR_CAP 72 /* longer than every fixed format, key, word and shown prefix */

/* Copies a client-supplied string of n bytes for a detail message: at most
 * SHOWN_BYTES_MAX bytes (s holds at least that many when n is larger), cut on
 * a character boundary, control characters and backquotes shown as '?', so a
 * detail is always one clean line. */
static const char *shown(const char *s, size_t n, char out[SHOWN_BYTES_MAX + 4]) {
  size_t i = 0, cut = n <= SHOWN_BYTES_MAX ? n : SHOWN_BYTES_MAX;
  while (cut < n && cut > 0 && ((uint8_t)s[cut] & 0xC0) == 0x80) cut--;
  for (; i < cut; i++) out[i] = ((uint8_t)s[i] < 0x20 || s[i] == '`' || s[i] == 0x7F) ? '?' : s[i];
  if (cut < n) {
    memcpy(out + i, "...", 3);
    i += 3;
  }
  out[i] = '\0';
  return out;
}

static bool bytes_are(const char *s, size_t n, const char *word) {
  size_t w = strlen(word);
  return n == w && memcmp(s, word, w) == 0;
}

/* Index of s[0..n) in names[0..count), or -1. */
static int name_index(const char *const *names, size_t count, const char *s, size_t n) {
  for (size_t i = 0; i < count; i++) {
    if (bytes_are(s, n, names[i])) return (int)i;
  }
  return -1;
}

/* The byte check held the text to 0|[1-9][0-9]{0,15}, so the value fits a
 * uint64_t exactly and is compared as an integer. */
static int dec_int(const value_t *v, const row_t *r, const char *path, uint64_t *out, tr_tx_error_t *err) {
  if (want(v, TR_JSON_NUMBER, path, err) != 0) return TR_EINVALID;
  uint64_t n = 0;
  for (size_t i = 0; i < v->len && i < 16; i++) n = n * 10 + (uint64_t)(v->raw[i] - '0');
  bool in_range = n <= TR_INT_MAX;
  if (in_range && n >= r->lo && n <= r->hi) {
    *out = n;
    return 0;
  }
  if (r->hi == TR_INT_MAX && in_range)
    return fail(err, "field `%s`: must be an integer ≥ %llu", path, (unsigned long long)r->lo);
  if (r->hi == TR_INT_MAX)
    return fail(err, "field `%s`: must be an integer ≤ 9007199254740991 (2^53−1)", path);
  return fail(err, "field `%s`: must be an integer from %llu to %llu", path,
              (unsigned long long)r->lo, (unsigned long long)r->hi);
}

/* crypto_core_ed25519_is_valid_point costs ~41 µs (a subgroup check is a
 * scalar multiplication), as much as a signature check, and the same account
 * keys come back tx after tx.  Each thread remembers keys it has found valid
 * in a small set-associative table; only positive answers of a pure function
 * are cached, so a hit is exactly as good as the check.  Four ways a set:
 * in a direct-mapped table two of a few dozen busy keys share a slot more
 * often than not (the birthday bound), and then both pay the full check on
 * every use. */
#define KEY_CACHE_SETS 1024 /* x 4 ways x 33 bytes: 132 KiB per thread */
#define KEY_CACHE_WAYS 4
static _Thread_local struct {
  unsigned char next;   /* the way the next miss replaces (round robin) */
  bool used[KEY_CACHE_WAYS]; /* an empty way's zero bytes must never match the (invalid) zero key */
  uint8_t key[KEY_CACHE_WAYS][TR_KEY_BYTES];
} key_cache[KEY_CACHE_SETS];

static bool key_is_valid_point(const uint8_t k[TR_KEY_BYTES]) {
  uint32_t set;
  memcpy(&set, k + 8, sizeof set); /* key bytes are uniform: any 4 of them index well */
  set %= KEY_CACHE_SETS;
  for (int w = 0; w < KEY_CACHE_WAYS; w++)
    if (key_cache[set].used[w] && memcmp(key_cache[set].key[w], k, TR_KEY_BYTES) == 0) return true;
  if (!crypto_core_ed25519_is_valid_point(k)) return false;
  unsigned w = key_cache[set].next;
  key_cache[set].next = (unsigned char)((w + 1) % KEY_CACHE_WAYS);
  key_cache[set].used[w] = true;
  memcpy(key_cache[set].key[w], k, TR_KEY_BYTES);
  return true;
}

/* 64 lowercase hex chars into out (bytes long); false otherwise. */
static bool hex_of(const value_t *v, uint8_t *out, size_t bytes) {
  char buf[STR_CAP];
  size_t n;
  const char *s = str_of(v, buf, sizeof buf, &n);
  return n <= sizeof buf && tr_hex_decode(s, n, out, bytes) == 0;
}

static int dec_key(const value_t *v, const char *path, tr_key_t *out, tr_tx_error_t *err) {
  if (want(v, TR_JSON_STRING, path, err) != 0) return TR_EINVALID;
  if (!hex_of(v, out->b, sizeof out->b)) return fail(err, "field `%s`: must be 64 lowercase hex chars", path);
  if (!key_is_valid_point(out->b))
    return fail(err, "field `%s`: not a valid Ed25519 public key (small order or not canonical)", path);
  return 0;
}

static int dec_hash(const value_t *v, const char *path, uint8_t out[TR_HASH_BYTES], tr_tx_error_t *err) {
  if (want(v, TR_JSON_STRING, path, err) != 0) return TR_EINVALID;
  if (!hex_of(v, out, TR_HASH_BYTES)) return fail(err, "field `%s`: must be 64 lowercase hex chars", path);
  return 0;
}

/* Copies a checked string into a char[size] field. */
static void store_str(void *dst, size_t size, const char *s, size_t n) {
  if (n >= size) n = size - 1; /* unreachable: formats and lengths bound n */
  memcpy(dst, s, n);
  ((char *)dst)[n] = '\0';
}

/* What a string of each fixed format must be, for details. */
static const char *format_rule(kind_t kind) {
  switch (kind) {
  case K_CHAIN: return "match ^[a-z0-9][a-z0-9./-]{0,63}$";
  case K_TXID: return "match ^[A-Za-z0-9_-]{1,64}$";
  case K_ASSET: return "match ^[A-Z0-9][A-Z0-9._-]{0,31}$";
  case K_JURISDICTION: return "match ^[A-Z]{2}$";
  case K_CURRENCY: return "match ^[A-Z]{3}$";
  default: return "be a real calendar date YYYY-MM-DD";
  }
}

/* Strings whose format is a fixed pattern (chain, id, asset, codes, date). */
static int dec_format(const value_t *v, const row_t *r, const char *path, void *dst, tr_tx_error_t *err) {
  if (want(v, TR_JSON_STRING, path, err) != 0) return TR_EINVALID;
  char buf[STR_CAP];
  size_t n;
  const char *s = str_of(v, buf, sizeof buf, &n);
  bool ok = false;
  if (n <= sizeof buf) {
    switch (r->kind) {
    case K_CHAIN: ok = tr_chain_id_valid(s, n); break;
    case K_TXID: ok = tr_tx_id_valid(s, n); break;
    case K_ASSET: ok = tr_asset_id_valid(s, n); break;
    case K_JURISDICTION: ok = match_upper(s, n, 2); break;
    case K_CURRENCY: ok = match_upper(s, n, 3); break;
    case K_DATE: ok = match_date(s, n); break;
    default: break;
    }
  }
  if (!ok) return fail(err, "field `%s`: must %s", path, format_rule(r->kind));
  store_str(dst, r->size, s, n);
  return 0;
}

/* Free text, decoded straight into its field. */
static int dec_text(const value_t *v, const row_t *r, const char *path, void *dst, tr_tx_error_t *err) {
  if (want(v, TR_JSON_STRING, path, err) != 0) return TR_EINVALID;
  size_t n = tr_json_string(v, dst, r->size - 1);
  size_t chars = n < r->size ? tr_utf8_chars(dst, n) : 0;
  if (n >= r->size || chars < r->lo || chars > r->hi) {
    ((char *)dst)[0] = '\0';
    if (r->lo == 0) return fail(err, "field `%s`: must be at most %llu characters", path, (unsigned long long)r->hi);
    return fail(err, "field `%s`: must be %llu to %llu characters", path,
                (unsigned long long)r->lo, (unsigned long long)r->hi);
  }
  ((char *)dst)[n] = '\0';
  return 0;
}

/* Enum members named by wire words. */
static int dec_enum(const value_t *v, const row_t *r, const char *path, void *dst, tr_tx_error_t *err) {
  if (want(v, TR_JSON_STRING, path, err) != 0) return TR_EINVALID;
  char buf[STR_CAP];
  size_t n;
  const char *s = str_of(v, buf, sizeof buf, &n);
  int i = -1;
  switch (r->kind) {
  case K_ASSET_KIND:
    if ((i = name_index(KIND_NAMES, TR_KIND_COUNT, s, n)) >= 0) *(tr_asset_kind_t *)dst = (tr_asset_kind_t)i;
    else return fail(err, "field `%s`: must be one of term_loan, revolving, receivable, mortgage, bond, other", path);
    return 0;
  case K_DIST_KIND:
    if ((i = name_index(DIST_KIND_NAMES, TR_DIST_KIND_COUNT, s, n)) >= 0) *(tr_dist_kind_t *)dst = (tr_dist_kind_t)i;
    else return fail(err, "field `%s`: must be one of interest, principal, other", path);
    return 0;
  default:
    if ((i = name_index(STATUS_NAMES, TR_STATUS_COUNT, s, n)) >= 0) *(tr_status_t *)dst = (tr_status_t)i;
    else return fail(err, "field `%s`: must be one of active, matured, defaulted, paused, closed", path);
    return 0;
  }
}

/* A set of roles; an empty array is allowed (see the file comment). */
static int dec_roles(const value_t *v, const char *path, unsigned *out, tr_tx_error_t *err) {
  if (want(v, TR_JSON_ARRAY, path, err) != 0) return TR_EINVALID;
  unsigned roles = 0;
  char elem[PATH_BYTES_MAX], show[SHOWN_BYTES_MAX + 4], buf[STR_CAP];
  size_t pos = 0;
  value_t e;
  for (size_t i = 0; tr_json_next_element(v->raw, v->len, &pos, &e); i++) {
    path_fmt(elem, sizeof elem, "%s[%zu]", path, i);
    if (want(&e, TR_JSON_STRING, elem, err) != 0) return TR_EINVALID;
    size_t n;
    const char *s = str_of(&e, buf, sizeof buf, &n);
    int r = name_index(ROLE_NAMES, ARRAY_LEN(ROLE_NAMES), s, n);
    if (r < 0)
      return fail(err, "field `%s`: unknown role \"%s\" (admin, agent, issuer or investor)", elem, shown(s, n, show));
    if (roles & (1u << r)) return fail(err, "field `%s`: duplicate role \"%s\"", path, ROLE_NAMES[r]);
    roles |= 1u << r;
  }
  *out = roles;
  return 0;
}

/* Distinct jurisdiction codes, at most TR_JURISDICTIONS_MAX; a 26×26 bitmap
 * finds repeats in one pass. */
static int dec_jurisdictions(const value_t *v, const char *path, tr_rules_t *rules, tr_tx_error_t *err) {
  if (want(v, TR_JSON_ARRAY, path, err) != 0) return TR_EINVALID;
  uint8_t seen[26 * 26 / 8 + 1] = {0};
  size_t n = 0, pos = 0;
  char elem[PATH_BYTES_MAX], buf[STR_CAP];
  value_t e;
  for (; tr_json_next_element(v->raw, v->len, &pos, &e); n++) {
    if (n == TR_JURISDICTIONS_MAX) return fail(err, "field `%s`: at most %d entries", path, TR_JURISDICTIONS_MAX);
    path_fmt(elem, sizeof elem, "%s[%zu]", path, n);
    if (want(&e, TR_JSON_STRING, elem, err) != 0) return TR_EINVALID;
    size_t len;
    const char *s = str_of(&e, buf, sizeof buf, &len);
    if (len > sizeof buf || !match_upper(s, len, 2)) return fail(err, "field `%s`: must match ^[A-Z]{2}$", elem);
    unsigned bit = (unsigned)(s[0] - 'A') * 26 + (unsigned)(s[1] - 'A');
    if (seen[bit / 8] & (1u << (bit % 8))) return fail(err, "field `%s`: duplicate \"%.2s\"", path, s);
    seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
    memcpy(rules->jurisdictions[n], s, 2);
    rules->jurisdictions[n][2] = '\0';
  }
  rules->jurisdictions_n = n;
  return 0;
}

static int walk(const value_t *obj, const row_t *rows, size_t n, void *base, const char *prefix,
                uint32_t *seen_out, tr_tx_error_t *err);

static int dec_rules(const value_t *v, const char *path, tr_rules_t *rules, tr_tx_error_t *err) {
  if (want(v, TR_JSON_OBJECT, path, err) != 0) return TR_EINVALID;
  char prefix[PATH_BYTES_MAX];
  path_fmt(prefix, sizeof prefix, "%s.", path);
  uint32_t seen = 0;
  return walk(v, RULES_ROWS, ARRAY_LEN(RULES_ROWS), rules, prefix, &seen, err);
}

static int dec_documents(const value_t *v, const char *path, tr_tx_t *tx, tr_tx_error_t *err) {
  if (want(v, TR_JSON_ARRAY, path, err) != 0) return TR_EINVALID;
  size_t n = 0, pos = 0;
  char elem[PATH_BYTES_MAX], prefix[PATH_BYTES_MAX];
  value_t e;
  for (; tr_json_next_element(v->raw, v->len, &pos, &e); n++) {
    if (n == TR_DOCUMENTS_MAX) return fail(err, "field `%s`: at most %d documents", path, TR_DOCUMENTS_MAX);
    path_fmt(elem, sizeof elem, "%s[%zu]", path, n);
    if (want(&e, TR_JSON_OBJECT, elem, err) != 0) return TR_EINVALID;
    path_fmt(prefix, sizeof prefix, "%s.", elem);
    uint32_t seen = 0;
    if (walk(&e, DOCUMENT_ROWS, ARRAY_LEN(DOCUMENT_ROWS), &tx->documents[n], prefix, &seen, err) != 0)
      return TR_EINVALID;
  }
  tx->documents_n = n;
  return 0;
}

/* One member's value into base + r->off; `path` names it in details. */
static int dec_value(const value_t *v, const row_t *r, void *base, const char *path, tr_tx_error_t *err) {
  void *dst = (char *)base + r->off;
  switch (r->kind) {
  case K_TYPE: return 0;
  case K_CHAIN: case K_TXID: case K_ASSET: case K_JURISDICTION: case K_CURRENCY: case K_DATE:
    return dec_format(v, r, path, dst, err);
  case K_KEY: return dec_key(v, path, dst, err);
  case K_HASH: return dec_hash(v, path, dst, err);
  case K_INT: return dec_int(v, r, path, dst, err);
  case K_BOOL:
    if (want(v, TR_JSON_BOOL, path, err) != 0) return TR_EINVALID;
    *(bool *)dst = v->raw[0] == 't';
    return 0;
  case K_TEXT: return dec_text(v, r, path, dst, err);
  case K_ROLES: return dec_roles(v, path, dst, err);
  case K_JURISDICTIONS: return dec_jurisdictions(v, path, base, err);
  case K_RULES: return dec_rules(v, path, dst, err);
  case K_DOCUMENTS: return dec_documents(v, path, base, err);
  case K_ASSET_KIND: case K_DIST_KIND: case K_STATUS: return dec_enum(v, r, path, dst, err);
  }
  return fail(err, "field `%s`: internal error: no decoder", path);
}

/* Decodes every member of `obj` by `rows` in document order, then reports the
 * first missing REQ row.  Bit i of *seen_out is set when rows[i] was present. */
static int walk(const value_t *obj, const row_t *rows, size_t n, void *base, const char *prefix,
                uint32_t *seen_out, tr_tx_error_t *err) {
  uint32_t seen = 0;
  char path[PATH_BYTES_MAX], show[SHOWN_BYTES_MAX + 4], buf[STR_CAP];
  size_t pos = 0;
  value_t name, value;
  while (tr_json_next_member(obj->raw, obj->len, &pos, &name, &value)) {
    size_t len, i = 0;
    const char *s = str_of(&name, buf, sizeof buf, &len);
    while (i < n && !bytes_are(s, len, rows[i].name)) i++;
    if (i == n) return fail(err, "unknown field `%s%s`", prefix, shown(s, len, show));
    path_cat(path, sizeof path, prefix, rows[i].name);
    if (dec_value(&value, &rows[i], base, path, err) != 0) return TR_EINVALID;
    if (rows[i].has_off != NO_HAS) *(bool *)((char *)base + rows[i].has_off) = true;
    seen |= 1u << i;
  }
  for (size_t i = 0; i < n; i++) {
    if (rows[i].need == REQ && !(seen & (1u << i))) return fail(err, "missing field `%s%s`", prefix, rows[i].name);
  }
  *seen_out = seen;
  return 0;
}

/* ---- the envelope ---- */

static int decode_type(const value_t *root, tr_tx_type_t *type, tr_tx_error_t *err) {
  char show[SHOWN_BYTES_MAX + 4], buf[STR_CAP];
  size_t pos = 0, len;
  value_t name, t;
  for (;;) {
    if (!tr_json_next_member(root->raw, root->len, &pos, &name, &t)) return fail(err, "missing field `type`");
    const char *s = str_of(&name, buf, sizeof buf, &len);
    if (bytes_are(s, len, "type")) break;
  }
  if (want(&t, TR_JSON_STRING, "type", err) != 0) return TR_EINVALID;
  const char *s = str_of(&t, buf, sizeof buf, &len);
  int i = name_index(TYPE_NAMES, TR_TX_TYPE_COUNT, s, len);
  if (i < 0) return fail(err, "field `type`: unknown type \"%s\"", shown(s, len, show));
  *type = (tr_tx_type_t)i;
  return 0;
}

static int check_one_of(tr_tx_type_t type, const row_t *rows, size_t n, uint32_t seen, tr_tx_error_t *err) {
  char names[PATH_BYTES_MAX] = "";
  size_t used = 0;
  bool any_rows = false;
  for (size_t i = 0; i < n; i++) {
    if (rows[i].need != ONE_OF) continue;
    if (seen & (1u << i)) return 0;
    used += (size_t)snprintf(names + used, sizeof names - used, "%s`%s`", any_rows ? ", " : "", rows[i].name);
    if (used >= sizeof names) used = sizeof names - 1;
    any_rows = true;
  }
  if (!any_rows) return 0;
  return fail(err, "%s needs at least one of %s", TYPE_NAMES[type], names);
}

static bool key_eq(const tr_key_t *a, const tr_key_t *b) { return memcmp(a->b, b->b, sizeof a->b) == 0; }

/* §4 envelope rules that relate two fields. */
static int check_cross(const tr_tx_t *tx, tr_tx_error_t *err) {
  switch (tx->type) {
  case TR_TX_TRANSFER:
    if (key_eq(&tx->to, &tx->signer)) return fail(err, "field `to`: must differ from `signer`");
    return 0;
  case TR_TX_TRANSFER_FORCE:
    if (key_eq(&tx->to, &tx->from)) return fail(err, "field `to`: must differ from `from`");
    return 0;
  case TR_TX_ACCOUNT_RECOVER:
    if (key_eq(&tx->to, &tx->account)) return fail(err, "field `to`: must differ from `account`");
    return 0;
  case TR_TX_GENESIS:
    if (key_eq(&tx->admin, &tx->signer)) return fail(err, "field `admin`: must differ from `signer` (the node key)");
    return 0;
  default:
    return 0;
  }
}

/* Genesis bytes must be exactly the one rendering tranchectl init writes. */
static int check_genesis_form(const tr_tx_t *tx, const char *bytes, size_t len, tr_tx_error_t *err) {
  char signer[2 * TR_KEY_BYTES + 1], admin[2 * TR_KEY_BYTES + 1];
  char want_bytes[96 + TR_CHAIN_ID_CHARS_MAX + 4 * TR_KEY_BYTES];
  tr_hex_encode(tx->signer.b, TR_KEY_BYTES, signer);
  tr_hex_encode(tx->admin.b, TR_KEY_BYTES, admin);
  int n = snprintf(want_bytes, sizeof want_bytes,
                   "{\"type\":\"genesis\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"genesis\",\"admin\":\"%s\"}",
                   tx->chain, signer, admin);
  if (n < 0 || (size_t)n != len || memcmp(want_bytes, bytes, len) != 0)
    return fail(err, "genesis: bytes must be exactly {\"type\":\"genesis\",\"chain\":…,\"signer\":…,"
                     "\"id\":\"genesis\",\"admin\":…} with no whitespace");
  return 0;
}

static int decode_root(const value_t *root, const char *bytes, size_t len, tr_tx_t *tx, tr_tx_error_t *err) {
  if (decode_type(root, &tx->type, err) != 0) return TR_EINVALID;
  row_t rows[ROWS_MAX];
  const row_set_t *set = &TYPE_ROWS[tx->type];
  size_t n = ARRAY_LEN(COMMON_ROWS) + set->n;
  if (n > ROWS_MAX) return fail(err, "internal error: field table too large");
  memcpy(rows, COMMON_ROWS, sizeof COMMON_ROWS);
  memcpy(rows + ARRAY_LEN(COMMON_ROWS), set->rows, set->n * sizeof *rows);
  uint32_t seen = 0;
  if (walk(root, rows, n, tx, "", &seen, err) != 0) return TR_EINVALID;
  if (check_one_of(tx->type, rows, n, seen, err) != 0) return TR_EINVALID;
  if (check_cross(tx, err) != 0) return TR_EINVALID;
  if (tx->type == TR_TX_GENESIS) return check_genesis_form(tx, bytes, len, err);
  return 0;
}

int tr_tx_decode(const char *bytes, size_t len, tr_tx_t *tx, tr_tx_error_t *err) {
  tr_tx_error_t scratch;
  if (err == NULL) err = &scratch;
  err->detail[0] = '\0';
  /* Everything but the documents array (26 KiB of the 30): only its first
   * documents_n entries are ever read, and each is written whole by the walk
   * (both members are required).  Zeroing it cost more than the rest of the
   * decode and evicted the worker's cache. */
  size_t docs = offsetof(tr_tx_t, documents), docs_end = docs + sizeof tx->documents;
  memset(tx, 0, docs);
  memset((char *)tx + docs_end, 0, sizeof *tx - docs_end);
  if (bytes == NULL && len != 0) return fail(err, "no tx bytes");
  if (len > TR_TX_BYTES_MAX)
    return fail(err, "tx is %zu bytes; the limit is %d (16 KiB)", len, TR_TX_BYTES_MAX);
  tr_json_error_t jerr;
  int rc = tr_json_check(bytes, len, TR_JSON_TOP_OBJECT | TR_JSON_INTEGERS_ONLY, &jerr);
  if (rc == TR_ENOMEM) return TR_ENOMEM;
  if (rc != 0) return fail(err, "tx is not strict JSON: %s at byte %zu", jerr.message, jerr.offset);
  const value_t root = {TR_JSON_OBJECT, bytes, len, false};
  if (decode_root(&root, bytes, len, tx, err) != 0) return TR_EINVALID;
  crypto_hash_sha256(tx->txid, (const unsigned char *)bytes, len);
  return 0;
}

size_t tr_tx_named_accounts(const tr_tx_t *tx, const tr_key_t *out[TR_TX_NAMED_MAX]) {
  static const tr_key_t zero;
  const tr_key_t *named[] = {&tx->account, &tx->to, &tx->from, &tx->admin};
  size_t n = 0;
  out[n++] = &tx->signer;
  for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
    if (memcmp(named[i]->b, zero.b, 32) != 0) out[n++] = named[i];
  return n;
}

/* ---- signatures ---- */

/* "TRANCHE/TX/1\n" || bytes into msg (TX_DOMAIN_BYTES + len bytes). */
static size_t tx_message(const char *bytes, size_t len, uint8_t *msg) {
  memcpy(msg, TX_DOMAIN, TX_DOMAIN_BYTES);
  if (len) memcpy(msg + TX_DOMAIN_BYTES, bytes, len);
  return TX_DOMAIN_BYTES + len;
}

int tr_tx_verify(const char *bytes, size_t len, const tr_key_t *signer, const uint8_t sig[TR_SIG_BYTES]) {
  /* On the stack: this runs in worker threads, and 16 KiB is cheap there. */
  uint8_t msg[TX_DOMAIN_BYTES + TR_TX_BYTES_MAX];
  if ((bytes == NULL && len != 0) || signer == NULL || sig == NULL || len > TR_TX_BYTES_MAX)
    return TR_EBAD_SIGNATURE;
  size_t n = tx_message(bytes, len, msg);
  return crypto_sign_verify_detached(sig, msg, n, signer->b) == 0 ? 0 : TR_EBAD_SIGNATURE;
}

int tr_tx_sign(const char *bytes, size_t len, const uint8_t sk[64], uint8_t sig_out[TR_SIG_BYTES]) {
  uint8_t msg[TX_DOMAIN_BYTES + TR_TX_BYTES_MAX];
  if ((bytes == NULL && len != 0) || sk == NULL || sig_out == NULL || len > TR_TX_BYTES_MAX) return TR_EARG;
  size_t n = tx_message(bytes, len, msg);
  return crypto_sign_detached(sig_out, NULL, msg, n, sk) == 0 ? 0 : TR_EARG;
}
