/* tr_ledger.c — steps 4–8 of PROTOCOL.md §4 and the state changes of every
 * tx type, plus genesis.
 *
 * Shape: a tx is first *checked* (reads only, so tx.check can run it on a
 * read-only snapshot and collect every failing step-8 rule), then *applied*
 * (writes) only once every check passed, so a refusal leaves no trace; a
 * storage error mid-apply makes the caller roll back its transaction.
 */
#include "tr_ledger.h"

#include <cJSON.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_json.h"

void tr_receipt_clear(tr_receipt_t *r) {
  free(r->effects_json);
  r->effects_json = NULL;
}

int tr_ledger_load(tr_ledger_t *l, tr_store_t *s) {
  char node_hex[65];
  memset(l, 0, sizeof *l);
  l->store = s;
  l->ops = &tr_store_state_ops;
  l->ctx = s;
  int rc = tr_store_meta_get(s, "chain", l->chain, sizeof l->chain);
  if (rc == 0) rc = tr_store_meta_get(s, "node_key", node_hex, sizeof node_hex);
  if (rc == 0 && tr_hex_decode(node_hex, strlen(node_hex), l->node_key.b, 32) != 0) rc = TR_ECORRUPT;
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Rule context                                                              */

typedef struct {
  tr_ledger_t *l;
  const tr_state_ops_t *ops;
  void *ctx;
  const tr_tx_t *tx;
  uint64_t time;
  bool all;                     /* collect every step-8 failure (tx.check) */
  tr_refusal_t *reasons;
  size_t n;
  int ioerr;                    /* first storage error: aborts everything */
  tr_account_t signer;
  bool have_asset;
  tr_asset_t asset;
} rules_t;

static int refuse(rules_t *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(rules_t *r, int code, const char *fmt, ...) {
  if (r->n < TR_REFUSALS_MAX) {
    tr_refusal_t *f = &r->reasons[r->n++];
    f->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->detail, sizeof f->detail, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* In step 8: record and go on when collecting every reason, else stop. */
#define FAIL8(r, code, ...)                 \
  do {                                      \
    refuse((r), (code), __VA_ARGS__);       \
    if (!(r)->all) return (code);           \
  } while (0)

static char *short_key(const tr_key_t *k, char out[17]) {
  tr_hex_encode(k->b, 8, out);
  return out;
}

/* Loads an account; 0, TR_ENOT_FOUND, or records a storage error. */
static int load_account(rules_t *r, const tr_key_t *id, tr_account_t *a) {
  int rc = r->ops->account_get(r->ctx, id, a);
  if (rc != 0 && rc != TR_ENOT_FOUND && r->ioerr == 0) r->ioerr = rc;
  return rc;
}

static int load_holding(rules_t *r, const tr_key_t *id, tr_holding_t *h) {
  int rc = r->ops->holding_get(r->ctx, r->asset.id, id, h);
  if (rc != 0 && r->ioerr == 0) r->ioerr = rc;
  return rc;
}

static bool status_in(tr_status_t s, unsigned mask) { return (mask >> s) & 1u; }
#define ST(x) (1u << TR_STATUS_##x)

static int require_status(rules_t *r, unsigned allowed) {
  if (!status_in(r->asset.status, allowed))
    FAIL8(r, TR_EASSET_NOT_ACTIVE, "asset %s is %s; %s is not allowed then", r->asset.id,
          tr_status_name(r->asset.status), tr_tx_type_name(r->tx->type));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Steps 6 and 7                                                             */

typedef enum { NEEDS_NONE, NEEDS_ADMIN, NEEDS_ADMIN_OR_AGENT, NEEDS_ISSUER, NEEDS_ISSUER_OF_ASSET } need_t;

static need_t type_needs(tr_tx_type_t t) {
  switch (t) {
  case TR_TX_ACCOUNT_OPEN: case TR_TX_ACCOUNT_UPDATE: return NEEDS_ADMIN;
  case TR_TX_ACCOUNT_RECOVER: case TR_TX_TRANSFER_FORCE: case TR_TX_HOLDING_FREEZE:
    return NEEDS_ADMIN_OR_AGENT;
  case TR_TX_ASSET_CREATE: return NEEDS_ISSUER;
  case TR_TX_ASSET_UPDATE: case TR_TX_ASSET_ISSUE: case TR_TX_ASSET_REDEEM:
  case TR_TX_ASSET_DISTRIBUTE: return NEEDS_ISSUER_OF_ASSET;
  default: return NEEDS_NONE;
  }
}

static bool type_names_asset(tr_tx_type_t t) {
  return t != TR_TX_GENESIS && t != TR_TX_ACCOUNT_OPEN && t != TR_TX_ACCOUNT_UPDATE &&
         t != TR_TX_ACCOUNT_RECOVER && t != TR_TX_ASSET_CREATE;
}

static int check_signer(rules_t *r) {
  char k[17];
  int rc = load_account(r, &r->tx->signer, &r->signer);
  if (rc == TR_ENOT_FOUND)
    return refuse(r, TR_ENOT_FOUND, "signer %s… is not an account", short_key(&r->tx->signer, k));
  if (rc != 0) return rc;
  if (r->signer.frozen) return refuse(r, TR_EFROZEN, "signer account is frozen");
  return 0;
}

static int check_role(rules_t *r, need_t need) {
  unsigned roles = r->signer.roles;
  const char *type = tr_tx_type_name(r->tx->type);
  if (need == NEEDS_ADMIN && !(roles & TR_ROLE_ADMIN))
    return refuse(r, TR_EUNAUTHORIZED, "%s needs role admin", type);
  if (need == NEEDS_ADMIN_OR_AGENT && !(roles & (TR_ROLE_ADMIN | TR_ROLE_AGENT)))
    return refuse(r, TR_EUNAUTHORIZED, "%s needs role admin or agent", type);
  if ((need == NEEDS_ISSUER || need == NEEDS_ISSUER_OF_ASSET) && !(roles & TR_ROLE_ISSUER))
    return refuse(r, TR_EUNAUTHORIZED, "%s needs role issuer", type);
  if (need == NEEDS_ISSUER && !r->signer.kyc)
    return refuse(r, TR_ENOT_VERIFIED, "issuer has not passed kyc");
  return 0;
}

static int check_asset_named(rules_t *r, need_t need) {
  int rc = r->ops->asset_get(r->ctx, r->tx->asset, &r->asset);
  if (rc == TR_ENOT_FOUND) return refuse(r, TR_ENOT_FOUND, "no asset %s", r->tx->asset);
  if (rc != 0) return r->ioerr = rc;
  r->have_asset = true;
  if (need == NEEDS_ISSUER_OF_ASSET) {
    if (sodium_memcmp(r->asset.issuer.b, r->tx->signer.b, 32) != 0)
      return refuse(r, TR_EUNAUTHORIZED, "signer is not the issuer of %s", r->asset.id);
    if (!r->signer.kyc) return refuse(r, TR_ENOT_VERIFIED, "issuer has not passed kyc");
  }
  if (r->tx->type == TR_TX_ASSET_STATUS) {
    bool issuer = sodium_memcmp(r->asset.issuer.b, r->tx->signer.b, 32) == 0;
    if (!issuer && !(r->signer.roles & TR_ROLE_ADMIN))
      return refuse(r, TR_EUNAUTHORIZED, "only the issuer of %s or an admin may change its status",
                    r->asset.id);
  }
  return 0;
}

/* The account a type names as `account` or `from` must exist (step 7). */
static int check_named_account(rules_t *r) {
  const tr_tx_t *tx = r->tx;
  const tr_key_t *who = NULL;
  const char *field = NULL;
  switch (tx->type) {
  case TR_TX_ACCOUNT_UPDATE: case TR_TX_ACCOUNT_RECOVER: case TR_TX_HOLDING_FREEZE:
    who = &tx->account; field = "account"; break;
  case TR_TX_TRANSFER_FORCE: case TR_TX_ASSET_REDEEM:
    who = &tx->from; field = "from"; break;
  default: return 0;
  }
  tr_account_t a;
  char k[17];
  int rc = load_account(r, who, &a);
  if (rc == TR_ENOT_FOUND) return refuse(r, TR_ENOT_FOUND, "%s %s… is not an account", field, short_key(who, k));
  return rc;
}

static int check_steps_6_7(rules_t *r) {
  need_t need = type_needs(r->tx->type);
  int rc = check_signer(r);
  if (rc == 0) rc = check_role(r, need);
  if (rc == 0 && type_names_asset(r->tx->type)) rc = check_asset_named(r, need);
  if (rc == 0) rc = check_named_account(r);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Step 8                                                                    */

static uint64_t holder_limit(const tr_asset_t *a) {
  return a->rules.max_holders == 0 ? TR_HOLDERS_MAX : a->rules.max_holders;
}

static bool jurisdiction_allowed(const tr_asset_t *a, const char *j) {
  if (a->rules.jurisdictions_n == 0) return true;
  for (size_t i = 0; i < a->rules.jurisdictions_n; i++)
    if (strcmp(a->rules.jurisdictions[i], j) == 0) return true;
  return false;
}

/* Receiver checks of §4 for a move of `units` to tx->to.  sender_ends_at_zero
 * is whether the sender's holding drops to 0 (never for issue). */
static int check_receiver(rules_t *r, uint64_t units, bool sender_ends_at_zero, bool is_force) {
  const tr_asset_t *a = &r->asset;
  tr_account_t to;
  char k[17];
  int rc = load_account(r, &r->tx->to, &to);
  if (rc == TR_ENOT_FOUND) {
    FAIL8(r, TR_ENOT_FOUND, "receiver %s… is not an account", short_key(&r->tx->to, k));
    return TR_ENOT_FOUND; /* the other receiver checks need the account */
  }
  if (rc != 0) return rc;
  if (!to.kyc) FAIL8(r, TR_ENOT_VERIFIED, "receiver %s… has not passed kyc", short_key(&to.id, k));
  if (to.frozen && !is_force) FAIL8(r, TR_EFROZEN, "receiver %s… is frozen", short_key(&to.id, k));
  if (!jurisdiction_allowed(a, to.jurisdiction))
    FAIL8(r, TR_EJURISDICTION, "asset %s does not admit holders in %s", a->id, to.jurisdiction);
  tr_holding_t h;
  if (load_holding(r, &to.id, &h) != 0) return r->ioerr;
  uint64_t after = h.units + units; /* both ≤ 2^53-1: no overflow */
  if (a->rules.min_units != 0 && after < a->rules.min_units)
    FAIL8(r, TR_EMIN_UNITS, "receiver would hold %llu units, minimum is %llu",
          (unsigned long long)after, (unsigned long long)a->rules.min_units);
  if (h.units == 0) {
    uint64_t count = a->holders + 1 - (sender_ends_at_zero ? 1 : 0);
    if (count > holder_limit(a))
      FAIL8(r, TR_EMAX_HOLDERS, "asset %s would have %llu holders, limit is %llu", a->id,
            (unsigned long long)count, (unsigned long long)holder_limit(a));
  }
  return 0;
}

static int check_account_open(rules_t *r) {
  tr_account_t a;
  char k[17];
  if (sodium_memcmp(r->tx->account.b, r->l->node_key.b, 32) == 0)
    FAIL8(r, TR_EEXISTS, "the node key can never be an account");
  int rc = load_account(r, &r->tx->account, &a);
  if (rc == 0) FAIL8(r, TR_EEXISTS, "account %s… already exists", short_key(&a.id, k));
  return rc == TR_ENOT_FOUND ? 0 : rc;
}

/* Would the ledger still have an unfrozen admin after this update? */
static int check_account_update(rules_t *r) {
  const tr_tx_t *tx = r->tx;
  tr_account_t a;
  if (load_account(r, &tx->account, &a) != 0) return r->ioerr ? r->ioerr : TR_ENOT_FOUND;
  unsigned roles = tx->has_roles ? tx->roles : a.roles;
  bool frozen = tx->has_frozen ? tx->frozen : a.frozen;
  if ((roles & TR_ROLE_ADMIN) && !frozen) return 0;
  uint64_t others = 0;
  int rc = r->ops->admins_unfrozen_except(r->ctx, &tx->account, &others);
  if (rc != 0) return r->ioerr = rc;
  if (others == 0) FAIL8(r, TR_EINVALID, "the update would leave no unfrozen admin account");
  return 0;
}

static int check_account_recover(rules_t *r) {
  tr_account_t a;
  char k[17];
  if (sodium_memcmp(r->tx->to.b, r->l->node_key.b, 32) == 0)
    FAIL8(r, TR_EEXISTS, "the node key can never be an account");
  int rc = load_account(r, &r->tx->to, &a);
  if (rc == 0) FAIL8(r, TR_EEXISTS, "new key %s… is already an account", short_key(&a.id, k));
  return rc == TR_ENOT_FOUND ? 0 : rc;
}

static int check_asset_create(rules_t *r) {
  tr_asset_t a;
  int rc = r->ops->asset_get(r->ctx, r->tx->asset, &a);
  if (rc == 0) {
    tr_asset_clear(&a);
    FAIL8(r, TR_EEXISTS, "asset %s already exists", r->tx->asset);
    return 0;
  }
  if (rc != TR_ENOT_FOUND) return r->ioerr = rc;
  return 0;
}

static int check_asset_issue(rules_t *r) {
  const tr_asset_t *a = &r->asset;
  if (require_status(r, ST(ACTIVE)) != 0) return TR_EASSET_NOT_ACTIVE;
  if (r->tx->units > a->units - a->issued)
    FAIL8(r, TR_EEXCEEDS_AUTHORISED, "issued %llu + %llu would exceed %llu authorised",
          (unsigned long long)a->issued, (unsigned long long)r->tx->units, (unsigned long long)a->units);
  return check_receiver(r, r->tx->units, false, false);
}

static int check_transfer(rules_t *r) {
  const tr_asset_t *a = &r->asset;
  const tr_tx_t *tx = r->tx;
  if (require_status(r, ST(ACTIVE)) != 0) return TR_EASSET_NOT_ACTIVE;
  if (a->rules.lockup_until != 0 && r->time < a->rules.lockup_until)
    FAIL8(r, TR_ELOCKUP, "asset %s is locked up until %llu (entry time %llu)", a->id,
          (unsigned long long)a->rules.lockup_until, (unsigned long long)r->time);
  tr_holding_t h;
  if (load_holding(r, &tx->signer, &h) != 0) return r->ioerr;
  uint64_t available = h.units - h.frozen;
  bool enough = available >= tx->units;
  if (!enough)
    FAIL8(r, TR_EINSUFFICIENT_UNITS, "available %llu units, transfer needs %llu",
          (unsigned long long)available, (unsigned long long)tx->units);
  /* §4: "[sender ends at 0]" and "the sender's remainder (held − units)" are
   * about held units, not available ones, so tx.check still lists a failing
   * remainder when frozen units make the transfer insufficient too. */
  bool ends_at_zero = h.units == tx->units;
  int rc = check_receiver(r, tx->units, ends_at_zero, false);
  if (rc != 0 && !r->all) return rc;
  if (r->ioerr) return r->ioerr;
  if (h.units >= tx->units) {
    uint64_t rest = h.units - tx->units;
    if (rest != 0 && a->rules.min_units != 0 && rest < a->rules.min_units)
      FAIL8(r, TR_EMIN_UNITS, "sender would keep %llu units, minimum is %llu", (unsigned long long)rest,
            (unsigned long long)a->rules.min_units);
  }
  return rc;
}

static int check_transfer_force(rules_t *r) {
  const tr_tx_t *tx = r->tx;
  if (require_status(r, ~ST(CLOSED)) != 0) return TR_EASSET_NOT_ACTIVE;
  tr_holding_t h;
  if (load_holding(r, &tx->from, &h) != 0) return r->ioerr;
  bool enough = h.units >= tx->units;
  if (!enough)
    FAIL8(r, TR_EINSUFFICIENT_UNITS, "from holds %llu units, force transfer needs %llu",
          (unsigned long long)h.units, (unsigned long long)tx->units);
  return check_receiver(r, tx->units, enough && h.units == tx->units, true);
}

static int check_holding_freeze(rules_t *r) {
  if (require_status(r, ~ST(CLOSED)) != 0) return TR_EASSET_NOT_ACTIVE;
  tr_holding_t h;
  if (load_holding(r, &r->tx->account, &h) != 0) return r->ioerr;
  if (r->tx->units > h.units)
    FAIL8(r, TR_EINSUFFICIENT_UNITS, "account holds %llu units, cannot freeze %llu",
          (unsigned long long)h.units, (unsigned long long)r->tx->units);
  return 0;
}

static int check_asset_redeem(rules_t *r) {
  if (require_status(r, ST(ACTIVE) | ST(MATURED) | ST(DEFAULTED)) != 0) return TR_EASSET_NOT_ACTIVE;
  tr_holding_t h;
  if (load_holding(r, &r->tx->from, &h) != 0) return r->ioerr;
  if (r->tx->units > h.units)
    FAIL8(r, TR_EINSUFFICIENT_UNITS, "from holds %llu units, redemption needs %llu",
          (unsigned long long)h.units, (unsigned long long)r->tx->units);
  return 0;
}

static int check_asset_distribute(rules_t *r) {
  if (require_status(r, ST(ACTIVE) | ST(MATURED) | ST(DEFAULTED)) != 0) return TR_EASSET_NOT_ACTIVE;
  if (r->asset.issued == 0) FAIL8(r, TR_EINSUFFICIENT_UNITS, "asset %s has no units issued", r->asset.id);
  return 0;
}

/* Status moves (§4 asset.status): who may make which move from where. */
static bool issuer_may(const tr_asset_t *a, tr_status_t to) {
  unsigned live = ST(ACTIVE) | ST(MATURED) | ST(DEFAULTED);
  if (!status_in(a->status, live) || to == a->status) return false;
  if (to == TR_STATUS_CLOSED) return a->issued == 0;
  return status_in(to, live);
}

static bool admin_may(const tr_asset_t *a, tr_status_t to) {
  if (to == TR_STATUS_PAUSED) return a->status != TR_STATUS_CLOSED && a->status != TR_STATUS_PAUSED;
  return a->status == TR_STATUS_PAUSED && to == a->paused_from;
}

static int check_asset_status(rules_t *r) {
  const tr_asset_t *a = &r->asset;
  tr_status_t to = r->tx->status;
  bool is_issuer = sodium_memcmp(a->issuer.b, r->tx->signer.b, 32) == 0;
  bool is_admin = (r->signer.roles & TR_ROLE_ADMIN) != 0;
  bool by_issuer = issuer_may(a, to), by_admin = admin_may(a, to);
  if ((is_issuer && by_issuer) || (is_admin && by_admin)) return 0;
  if (by_issuer || by_admin)
    FAIL8(r, TR_EUNAUTHORIZED, "moving %s from %s to %s is for %s", a->id, tr_status_name(a->status),
          tr_status_name(to), by_issuer ? "the issuer" : "an admin");
  else if (to == TR_STATUS_CLOSED && a->issued > 0)
    FAIL8(r, TR_EINVALID, "asset %s cannot close with %llu units issued", a->id,
          (unsigned long long)a->issued);
  else
    FAIL8(r, TR_EINVALID, "asset %s cannot move from %s to %s", a->id, tr_status_name(a->status),
          tr_status_name(to));
  return 0;
}

static int check_step_8(rules_t *r) {
  switch (r->tx->type) {
  case TR_TX_ACCOUNT_OPEN: return check_account_open(r);
  case TR_TX_ACCOUNT_UPDATE: return check_account_update(r);
  case TR_TX_ACCOUNT_RECOVER: return check_account_recover(r);
  case TR_TX_ASSET_CREATE: return check_asset_create(r);
  case TR_TX_ASSET_UPDATE: return require_status(r, ~ST(CLOSED));
  case TR_TX_ASSET_ISSUE: return check_asset_issue(r);
  case TR_TX_TRANSFER: return check_transfer(r);
  case TR_TX_TRANSFER_FORCE: return check_transfer_force(r);
  case TR_TX_HOLDING_FREEZE: return check_holding_freeze(r);
  case TR_TX_ASSET_REDEEM: return check_asset_redeem(r);
  case TR_TX_ASSET_DISTRIBUTE: return check_asset_distribute(r);
  case TR_TX_ASSET_STATUS: return check_asset_status(r);
  default: return refuse(r, TR_EINVALID, "genesis is only entry 1");
  }
}

/* Steps 5–8.  Returns 0 when the tx may be applied; a refusal code (the first
 * one) otherwise; r->ioerr set on storage errors. */
static int check_rules(rules_t *r) {
  const tr_tx_t *tx = r->tx;
  if (tx->has_expires && r->time > tx->expires)
    return refuse(r, TR_EEXPIRED, "expired at %llu, entry time %llu", (unsigned long long)tx->expires,
                  (unsigned long long)r->time);
  int rc = check_steps_6_7(r);
  if (rc != 0 || r->ioerr) return r->ioerr ? r->ioerr : rc;
  size_t before = r->n;
  rc = check_step_8(r);
  if (r->ioerr) return r->ioerr;
  if (r->n > before) return r->reasons[before].code;
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Effects: what a receipt reports                                           */

typedef struct {
  char asset[TR_ASSET_ID_CHARS_MAX + 1];
  tr_key_t account;
  tr_holding_t h;
} holding_change_t;

typedef struct {
  holding_change_t *v;
  size_t n, cap;
  bool issued_changed, status_changed, distributed;
  uint64_t issued;
  tr_status_t status;
  uint64_t dist_count, dist_amount;
} effects_t;

static void effects_free(effects_t *e) { free(e->v); }

/* Writes a holding and remembers its new value for the receipt. */
static int set_holding(rules_t *r, effects_t *e, const char *asset, const tr_key_t *account,
                       const tr_holding_t *h) {
  int rc = r->ops->holding_put(r->ctx, asset, account, h);
  if (rc != 0) return rc;
  for (size_t i = 0; i < e->n; i++) {
    if (strcmp(e->v[i].asset, asset) == 0 && memcmp(e->v[i].account.b, account->b, 32) == 0) {
      e->v[i].h = *h;
      return 0;
    }
  }
  if (e->n == e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 4;
    holding_change_t *v = realloc(e->v, cap * sizeof *v);
    if (v == NULL) return TR_ENOMEM;
    e->v = v;
    e->cap = cap;
  }
  holding_change_t *c = &e->v[e->n++];
  snprintf(c->asset, sizeof c->asset, "%s", asset);
  c->account = *account;
  c->h = *h;
  return 0;
}

static int cmp_change(const void *a, const void *b) {
  const holding_change_t *x = a, *y = b;
  int c = strcmp(x->asset, y->asset);
  return c ? c : memcmp(x->account.b, y->account.b, 32);
}

/* Text written at p; returns the end.  The caller sized the buffer. */
static char *put_str(char *p, const char *s) {
  size_t n = strlen(s);
  memcpy(p, s, n);
  return p + n;
}

/* Bytes of one holding in a receipt, and of the rest, at most (digits of
 * 2^64 and the longest asset id and status word included). */
#define EFFECTS_HOLDING_BYTES_MAX (sizeof "{\"asset\":\"\",\"account\":\"\",\"units\":,\"frozen\":}," + \
                                   TR_ASSET_ID_CHARS_MAX + 64 + 2 * 20)
#define EFFECTS_REST_BYTES_MAX 256

/* The receipt's `effects` as JSON text, written directly without printf (it
 * is on the one thread every tx passes through, and in the audit's replay).
 * Asset ids, hex and status words need no escaping; integers are plain
 * digits. */
static char *effects_render(effects_t *e, uint64_t seq) {
  if (e->n > 1) qsort(e->v, e->n, sizeof *e->v, cmp_change); /* e->v is NULL when n = 0 */
  char *b = malloc(EFFECTS_REST_BYTES_MAX + e->n * EFFECTS_HOLDING_BYTES_MAX), *p = b, hex[65];
  if (b == NULL) return NULL;
  p = put_str(p, "{\"holdings\":[");
  for (size_t i = 0; i < e->n; i++) {
    p = put_str(p, i ? ",{\"asset\":\"" : "{\"asset\":\"");
    p = put_str(p, e->v[i].asset);
    p = put_str(p, "\",\"account\":\"");
    p = put_str(p, tr_hex_encode(e->v[i].account.b, 32, hex));
    p = put_str(p, "\",\"units\":");
    p = tr_json_put_u64(p, e->v[i].h.units);
    p = put_str(p, ",\"frozen\":");
    p = tr_json_put_u64(p, e->v[i].h.frozen);
    p = put_str(p, "}");
  }
  p = put_str(p, "]");
  if (e->issued_changed) p = tr_json_put_u64(put_str(p, ",\"issued\":"), e->issued);
  if (e->status_changed) {
    const char *status = tr_status_name(e->status);
    p = put_str(put_str(put_str(p, ",\"status\":\""), status ? status : "?"), "\"");
  }
  if (e->distributed) {
    p = tr_json_put_u64(put_str(p, ",\"distribution\":{\"seq\":"), seq);
    p = tr_json_put_u64(put_str(p, ",\"count\":"), e->dist_count);
    p = tr_json_put_u64(put_str(p, ",\"amount\":"), e->dist_amount);
    p = put_str(p, "}");
  }
  p = put_str(p, "}");
  *p = '\0';
  return b;
}

/* ------------------------------------------------------------------------ */
/* Apply: the state change of each type (checks have passed)                 */

static int apply_account_open(rules_t *r) {
  tr_account_t a = {.id = r->tx->account, .roles = r->tx->roles, .kyc = r->tx->kyc};
  memcpy(a.jurisdiction, r->tx->jurisdiction, 3);
  return r->ops->account_put(r->ctx, &a);
}

static int apply_account_update(rules_t *r) {
  const tr_tx_t *tx = r->tx;
  tr_account_t a;
  int rc = r->ops->account_get(r->ctx, &tx->account, &a);
  if (rc != 0) return rc;
  if (tx->has_roles) a.roles = tx->roles;
  if (tx->has_jurisdiction) memcpy(a.jurisdiction, tx->jurisdiction, 3);
  if (tx->has_kyc) a.kyc = tx->kyc;
  if (tx->has_frozen) a.frozen = tx->frozen;
  return r->ops->account_put(r->ctx, &a);
}

/* Moves every holding of the lost key to the new one, and issuer roles of its assets. */
static int apply_account_recover(rules_t *r, effects_t *e) {
  const tr_tx_t *tx = r->tx;
  tr_account_t old;
  int rc = r->ops->account_get(r->ctx, &tx->account, &old);
  if (rc != 0) return rc;
  tr_account_t fresh = old;
  fresh.id = tx->to;
  fresh.frozen = false;
  old.frozen = true;
  old.roles = 0;
  if ((rc = r->ops->account_put(r->ctx, &fresh)) != 0 || (rc = r->ops->account_put(r->ctx, &old)) != 0)
    return rc;
  tr_account_holding_t *moved = NULL;
  size_t n = 0;
  if ((rc = r->ops->account_holdings(r->ctx, &tx->account, &moved, &n)) != 0) return rc;
  /* Moved from a list read first: writing while reading the same rows is undefined in SQLite. */
  tr_holding_t zero = {0, 0};
  for (size_t i = 0; i < n && rc == 0; i++) {
    rc = set_holding(r, e, moved[i].asset, &tx->account, &zero);
    if (rc == 0) rc = set_holding(r, e, moved[i].asset, &tx->to, &moved[i].h);
  }
  free(moved);
  if (rc == 0) rc = r->ops->assets_reissue(r->ctx, &tx->account, &tx->to);
  return rc;
}

static char *documents_render(const tr_tx_t *tx) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < tx->documents_n; i++) {
    char hex[65];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", tx->documents[i].name);
    cJSON_AddStringToObject(o, "sha256", tr_hex_encode(tx->documents[i].sha256, 32, hex));
    cJSON_AddItemToArray(arr, o);
  }
  char *out = cJSON_PrintUnformatted(arr);
  cJSON_Delete(arr);
  return out;
}

static int apply_asset_create(rules_t *r, uint64_t seq) {
  const tr_tx_t *tx = r->tx;
  tr_asset_t a;
  memset(&a, 0, sizeof a);
  snprintf(a.id, sizeof a.id, "%s", tx->asset);
  a.issuer = tx->signer;
  snprintf(a.name, sizeof a.name, "%s", tx->name);
  a.kind = tx->kind;
  memcpy(a.currency, tx->currency, 4);
  a.principal = tx->principal;
  a.units = tx->authorised_units;
  a.coupon_bps = tx->coupon_bps;
  memcpy(a.maturity, tx->maturity, sizeof a.maturity);
  snprintf(a.rating, sizeof a.rating, "%s", tx->rating);
  a.risk_weight_pct = tx->risk_weight_pct;
  a.rules = tx->rules;
  a.documents_json = documents_render(tx);
  if (a.documents_json == NULL) return TR_ENOMEM;
  a.status = a.paused_from = TR_STATUS_ACTIVE;
  a.created_seq = seq;
  int rc = r->ops->asset_put(r->ctx, &a);
  tr_asset_clear(&a);
  return rc;
}

static int apply_asset_update(rules_t *r) {
  const tr_tx_t *tx = r->tx;
  tr_asset_t *a = &r->asset;
  if (tx->has_rating) snprintf(a->rating, sizeof a->rating, "%s", tx->rating);
  if (tx->has_risk_weight_pct) a->risk_weight_pct = tx->risk_weight_pct;
  if (tx->has_rules) a->rules = tx->rules;
  if (tx->has_maturity) memcpy(a->maturity, tx->maturity, sizeof a->maturity);
  if (tx->has_documents) {
    char *docs = documents_render(tx);
    if (docs == NULL) return TR_ENOMEM;
    free(a->documents_json);
    a->documents_json = docs;
  }
  return r->ops->asset_put(r->ctx, a);
}

/* Moves units between holdings and keeps the asset's holder count. from may be
 * NULL (issue), to may be NULL (redeem). */
static int move_units(rules_t *r, effects_t *e, const tr_key_t *from, const tr_key_t *to, uint64_t units) {
  tr_asset_t *a = &r->asset;
  int rc;
  if (from) {
    tr_holding_t h;
    if ((rc = r->ops->holding_get(r->ctx, a->id, from, &h)) != 0) return rc;
    if (h.units < units) return TR_ECORRUPT; /* checked before; never happens */
    h.units -= units;
    if (h.frozen > h.units) h.frozen = h.units; /* force and redeem ignore freezes */
    if (h.units == 0) a->holders--;
    if ((rc = set_holding(r, e, a->id, from, &h)) != 0) return rc;
  }
  if (to) {
    tr_holding_t h;
    if ((rc = r->ops->holding_get(r->ctx, a->id, to, &h)) != 0) return rc;
    if (h.units == 0) a->holders++;
    h.units += units;
    if ((rc = set_holding(r, e, a->id, to, &h)) != 0) return rc;
  }
  return 0; /* the caller stores the asset row if holders or issued changed */
}

typedef struct {
  tr_key_t account;
  uint64_t units, amount;
  unsigned __int128 remainder;
} share_t;

static int cmp_share_remainder(const void *a, const void *b) {
  const share_t *x = a, *y = b;
  if (x->remainder != y->remainder) return x->remainder > y->remainder ? -1 : 1;
  return memcmp(x->account.b, y->account.b, 32); /* ties to the smaller account id */
}

static int cmp_share_account(const void *a, const void *b) {
  return memcmp(((const share_t *)a)->account.b, ((const share_t *)b)->account.b, 32);
}

/* Largest-remainder pro rata allocation (§4 asset.distribute), 128-bit. */
static int allocate(share_t *v, size_t n, uint64_t amount, uint64_t issued) {
  uint64_t given = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned __int128 p = (unsigned __int128)amount * v[i].units;
    v[i].amount = (uint64_t)(p / issued);
    v[i].remainder = p % issued;
    given += v[i].amount;
  }
  if (given > amount || amount - given > n) return TR_ECORRUPT; /* holdings must sum to issued */
  qsort(v, n, sizeof *v, cmp_share_remainder);
  for (size_t i = 0; i < amount - given; i++) v[i].amount++;
  qsort(v, n, sizeof *v, cmp_share_account);
  return 0;
}

/* The asset's holders, checked against its issued units and holder count. */
static int load_shares(rules_t *r, share_t **out, size_t *n_out) {
  tr_asset_holder_t *h = NULL;
  size_t n = 0;
  int rc = r->ops->asset_holders(r->ctx, r->asset.id, &h, &n);
  if (rc != 0) return rc;
  share_t *v = calloc(n ? n : 1, sizeof *v);
  uint64_t sum = 0;
  bool over = false;             /* more units than issued: stop adding before a sum could wrap */
  for (size_t i = 0; v != NULL && i < n; i++) {
    v[i].account = h[i].account;
    v[i].units = h[i].units;
    over = over || h[i].units > r->asset.issued - sum;
    if (!over) sum += h[i].units;
  }
  free(h);
  if (v == NULL) return TR_ENOMEM;
  if (over || sum != r->asset.issued || n != r->asset.holders) {
    free(v);
    return TR_ECORRUPT;
  }
  *out = v;
  *n_out = n;
  return 0;
}

static int apply_asset_distribute(rules_t *r, effects_t *e, uint64_t seq) {
  share_t *v = NULL;
  size_t n = 0;
  int rc = load_shares(r, &v, &n);
  if (rc == 0) rc = allocate(v, n, r->tx->amount, r->asset.issued);
  for (size_t i = 0; i < n && rc == 0; i++) {
    rc = r->ops->payout_put(r->ctx, seq, &v[i].account, r->asset.id, v[i].amount);
    if (rc == 0) rc = r->ops->account_entry_add(r->ctx, &v[i].account, seq);
  }
  free(v);
  if (rc == 0) rc = r->ops->distribution_put(r->ctx, seq, r->asset.id, r->tx->amount, r->tx->dist_kind, n);
  if (rc != 0) return rc;
  e->distributed = true;
  e->dist_count = n;
  e->dist_amount = r->tx->amount;
  return rc;
}

static int apply_asset_status(rules_t *r, effects_t *e) {
  tr_asset_t *a = &r->asset;
  if (r->tx->status == TR_STATUS_PAUSED) a->paused_from = a->status;
  a->status = r->tx->status;
  e->status_changed = true;
  e->status = a->status;
  return r->ops->asset_put(r->ctx, a);
}

static int apply_holding_freeze(rules_t *r, effects_t *e) {
  tr_holding_t h;
  int rc = r->ops->holding_get(r->ctx, r->asset.id, &r->tx->account, &h);
  if (rc != 0) return rc;
  h.frozen = r->tx->units;
  return set_holding(r, e, r->asset.id, &r->tx->account, &h);
}

static int apply_type(rules_t *r, effects_t *e, uint64_t seq) {
  const tr_tx_t *tx = r->tx;
  uint64_t issued_before = r->asset.issued, holders_before = r->asset.holders;
  int rc;
  switch (tx->type) {
  case TR_TX_ACCOUNT_OPEN: return apply_account_open(r);
  case TR_TX_ACCOUNT_UPDATE: return apply_account_update(r);
  case TR_TX_ACCOUNT_RECOVER: return apply_account_recover(r, e);
  case TR_TX_ASSET_CREATE: return apply_asset_create(r, seq);
  case TR_TX_ASSET_UPDATE: return apply_asset_update(r);
  case TR_TX_ASSET_ISSUE:
    r->asset.issued += tx->units;
    rc = move_units(r, e, NULL, &tx->to, tx->units);
    break;
  case TR_TX_TRANSFER: rc = move_units(r, e, &tx->signer, &tx->to, tx->units); break;
  case TR_TX_TRANSFER_FORCE: rc = move_units(r, e, &tx->from, &tx->to, tx->units); break;
  case TR_TX_HOLDING_FREEZE: return apply_holding_freeze(r, e);
  case TR_TX_ASSET_REDEEM:
    r->asset.issued -= tx->units;
    rc = move_units(r, e, &tx->from, NULL, tx->units);
    break;
  case TR_TX_ASSET_DISTRIBUTE: return apply_asset_distribute(r, e, seq);
  case TR_TX_ASSET_STATUS: return apply_asset_status(r, e);
  default: return TR_EARG;
  }
  if (rc == 0 && r->asset.issued != issued_before) {
    e->issued_changed = true;
    e->issued = r->asset.issued;
  }
  if (rc == 0 && (r->asset.issued != issued_before || r->asset.holders != holders_before))
    rc = r->ops->asset_put(r->ctx, &r->asset);
  return rc;
}

/* account.history: the signer and every account the tx names (a
 * distribution's payees were added with their payouts). */
static int record_history(const tr_state_ops_t *ops, void *ctx, const tr_tx_t *tx, uint64_t seq) {
  const tr_key_t *named[TR_TX_NAMED_MAX];
  size_t n = tr_tx_named_accounts(tx, named);
  for (size_t i = 0; i < n; i++) {
    int rc = ops->account_entry_add(ctx, named[i], seq);
    if (rc != 0) return rc;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Public entry points                                                       */

static uint64_t entry_time(const rules_t *r, uint64_t clock_ms, int *rc) {
  uint64_t size, head_time = 0;
  *rc = r->ops->head(r->ctx, &size, NULL, &head_time);
  return clock_ms > head_time ? clock_ms : head_time;
}

static int stored_receipt(const rules_t *r, uint64_t seq, tr_receipt_t *out) {
  tr_entry_t e;
  int rc = r->ops->entry_get(r->ctx, seq, &e);
  if (rc != 0) return rc;
  memset(out, 0, sizeof *out);
  out->seq = e.seq;
  out->time = e.time;
  memcpy(out->txid, e.txid, 32);
  memcpy(out->hash, e.hash, 32);
  out->duplicate = true;
  tr_entry_clear(&e);
  return r->ops->receipt_get(r->ctx, seq, &out->effects_json);
}

/* Step 4: a duplicate returns its stored receipt; a reused (signer, id) is
 * refused.  One lookup serves both: the tx bytes hold signer and id, so an
 * entry with the same txid is always the entry of the same (signer, id). */
static int check_duplicate(rules_t *r, uint64_t *dup_seq) {
  uint8_t txid[32];
  uint64_t seq = 0;
  *dup_seq = 0;
  int rc = r->ops->entry_by_signer_id(r->ctx, &r->tx->signer, r->tx->id, &seq, txid);
  if (rc == TR_ENOT_FOUND) return 0;
  if (rc != 0) return r->ioerr = rc;
  if (sodium_memcmp(txid, r->tx->txid, 32) == 0) {
    *dup_seq = seq;
    return 0;
  }
  return refuse(r, TR_EID_CONFLICT, "signer already used id \"%s\" in entry %llu", r->tx->id,
                (unsigned long long)seq);
}

static int append_and_apply(rules_t *r, const char *bytes, size_t len, const uint8_t sig[64],
                            tr_receipt_t *receipt) {
  effects_t e = {0};
  tr_entry_t entry;
  int rc = r->ops->append(r->ctx, r->time, r->tx->txid, sig, &r->tx->signer, r->tx->id, bytes, len, &entry);
  if (rc == 0) rc = apply_type(r, &e, entry.seq);
  if (rc == 0) rc = record_history(r->ops, r->ctx, r->tx, entry.seq);
  char *effects = rc == 0 ? effects_render(&e, entry.seq) : NULL;
  if (rc == 0 && effects == NULL) rc = TR_ENOMEM;
  if (rc == 0) rc = r->ops->receipt_put(r->ctx, entry.seq, effects);
  effects_free(&e);
  if (rc != 0) {
    free(effects);
    return rc;
  }
  memset(receipt, 0, sizeof *receipt);
  receipt->seq = entry.seq;
  receipt->time = entry.time;
  memcpy(receipt->txid, entry.txid, 32);
  memcpy(receipt->hash, entry.hash, 32);
  receipt->effects_json = effects;
  return 0;
}

int tr_ledger_apply(tr_ledger_t *l, const tr_tx_t *tx, const char *bytes, size_t len,
                    const uint8_t sig[TR_SIG_BYTES], uint64_t clock_ms,
                    tr_receipt_t *receipt, tr_refusal_t *refusal) {
  tr_refusal_t reasons[TR_REFUSALS_MAX];
  rules_t r = {.l = l, .ops = l->ops, .ctx = l->ctx, .tx = tx, .reasons = reasons};
  if (tx->type == TR_TX_GENESIS) {
    snprintf(refusal->detail, sizeof refusal->detail, "genesis is written only by tranchectl init");
    return refusal->code = TR_EINVALID;
  }
  /* No savepoint: checks only read, so a refusal has written nothing; an
   * internal error mid-apply makes the caller roll back the whole batch. */
  int rc = 0;
  r.time = entry_time(&r, clock_ms, &rc);
  uint64_t dup = 0;
  if (rc == 0) rc = check_duplicate(&r, &dup);
  if (rc == 0 && r.ioerr == 0 && dup != 0) rc = stored_receipt(&r, dup, receipt);
  else if (rc == 0 && r.ioerr == 0) rc = check_rules(&r);
  if (rc == 0 && r.ioerr == 0 && dup == 0) rc = append_and_apply(&r, bytes, len, sig, receipt);
  if (r.ioerr) rc = r.ioerr;
  tr_asset_clear(&r.asset);
  if (rc != 0 && tr_err_is_refusal(rc) && r.n > 0) {
    *refusal = reasons[0];
    refusal->code = rc;
  }
  return rc;
}

int tr_ledger_check(tr_ledger_t *l, const tr_tx_t *tx, uint64_t clock_ms,
                    tr_refusal_t reasons[TR_REFUSALS_MAX], size_t *n_reasons, uint64_t *duplicate_seq) {
  rules_t r = {.l = l, .ops = l->ops, .ctx = l->ctx, .tx = tx, .all = true, .reasons = reasons};
  *n_reasons = 0;
  *duplicate_seq = 0;
  if (tx->type == TR_TX_GENESIS) {
    refuse(&r, TR_EINVALID, "genesis is written only by tranchectl init");
    *n_reasons = r.n;
    return 0;
  }
  int rc = 0;
  r.time = entry_time(&r, clock_ms, &rc);
  if (rc == 0) rc = check_duplicate(&r, duplicate_seq);
  if (rc == 0 && r.ioerr == 0 && *duplicate_seq == 0) rc = check_rules(&r);
  tr_asset_clear(&r.asset);
  if (r.ioerr) return r.ioerr;
  *n_reasons = r.n;
  return (rc != 0 && !tr_err_is_refusal(rc)) ? rc : 0;
}

/* ------------------------------------------------------------------------ */
/* Genesis                                                                   */

int tr_genesis_bytes(const char *chain, const tr_key_t *node, const tr_key_t *admin, char *out, size_t outlen) {
  char n[65], a[65];
  int len = snprintf(out, outlen,
                     "{\"type\":\"genesis\",\"chain\":\"%s\",\"signer\":\"%s\",\"id\":\"genesis\",\"admin\":\"%s\"}",
                     chain, tr_hex_encode(node->b, 32, n), tr_hex_encode(admin->b, 32, a));
  return (len < 0 || (size_t)len >= outlen) ? TR_ELIMIT : len;
}

int tr_ledger_genesis_apply(tr_ledger_t *l, const tr_tx_t *tx, const char *bytes, size_t len,
                            const uint8_t sig[TR_SIG_BYTES], uint64_t time_ms) {
  const tr_state_ops_t *ops = l->ops;
  void *ctx = l->ctx;
  char node_hex[65];
  uint64_t size = 0;
  int rc = ops->head(ctx, &size, NULL, NULL);
  if (rc == 0 && size != 0) rc = TR_EEXISTS;
  if (rc == 0 && (tx->type != TR_TX_GENESIS || sodium_memcmp(tx->admin.b, tx->signer.b, 32) == 0)) rc = TR_EINVALID;
  if (rc == 0) rc = ops->meta_put(ctx, "chain", tx->chain);
  if (rc == 0) rc = ops->meta_put(ctx, "node_key", tr_hex_encode(tx->signer.b, 32, node_hex));
  tr_entry_t e;
  if (rc == 0) rc = ops->append(ctx, time_ms, tx->txid, sig, &tx->signer, tx->id, bytes, len, &e);
  tr_account_t admin = {.id = tx->admin, .roles = TR_ROLE_ADMIN, .jurisdiction = "ZZ", .kyc = true};
  if (rc == 0) rc = ops->account_put(ctx, &admin);
  if (rc == 0) rc = record_history(ops, ctx, tx, 1);
  if (rc == 0) rc = ops->receipt_put(ctx, 1, "{\"holdings\":[]}");
  if (rc == 0) {
    snprintf(l->chain, sizeof l->chain, "%s", tx->chain);
    l->node_key = tx->signer;
  }
  return rc;
}

int tr_ledger_genesis(tr_store_t *s, const char *chain, const uint8_t node_sk[64], const tr_key_t *admin,
                      uint64_t time_ms) {
  tr_key_t node;
  memcpy(node.b, node_sk + 32, 32);
  char bytes[512];
  int len = tr_genesis_bytes(chain, &node, admin, bytes, sizeof bytes);
  if (len < 0) return len;
  tr_tx_t *tx = calloc(1, sizeof *tx);
  if (tx == NULL) return TR_ENOMEM;
  tr_tx_error_t err;
  uint8_t sig[64];
  int rc = tr_tx_decode(bytes, (size_t)len, tx, &err);
  if (rc == 0) rc = tr_tx_sign(bytes, (size_t)len, node_sk, sig);
  tr_ledger_t l = {.store = s, .ops = &tr_store_state_ops, .ctx = s};
  if (rc == 0) rc = tr_store_begin(s);
  if (rc == 0) {
    rc = tr_ledger_genesis_apply(&l, tx, bytes, (size_t)len, sig, time_ms);
    if (rc == 0) rc = tr_store_commit(s);
    else tr_store_rollback(s);
  }
  free(tx);
  return rc;
}
