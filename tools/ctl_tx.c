/* ctl_tx.c — the tx-building commands (PROTOCOL.md §4 field names), offline
 * signing and submitting.
 *
 * Each command is a row of TX_KINDS: the tx type and its fields, each with
 * the flag that fills it and how the flag's text becomes JSON.  Values the
 * ledger checks (keys, ids, regexes) go through as strings so the node's
 * refusal (`refused: invalid: ...`) names the problem; only what JSON itself
 * needs (integers, booleans) is checked here, as a usage error.  The tx is
 * printed compactly with integers as plain digits, signed over
 * "TRANCHE/TX/1\n" || bytes, and sent as a string with tx.submit. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "tr_hex.h"

#define TX_FIELDS_MAX 16

typedef enum {
  F_STR,        /* JSON string as given */
  F_INT,        /* §1 integer */
  F_BOOL,       /* true / false */
  F_LIST,       /* "a,b" -> ["a","b"] */
  F_RULE_LIST,  /* into the rules object, as F_LIST */
  F_RULE_INT,   /* into the rules object, as F_INT */
  F_DOCS,       /* repeatable NAME=SHA256HEX -> documents [{name, sha256}] */
} ftype_t;

typedef struct {
  const char *flag, *json;
  ftype_t t;
  bool required;
} field_t;

typedef struct {
  const char *cmd, *type;
  bool rules_always;   /* asset.create always carries a rules object */
  field_t f[TX_FIELDS_MAX];
} txkind_t;

#define RULE_FIELDS                                                                       \
  {"jurisdictions", "jurisdictions", F_RULE_LIST, false}, {"max-holders", "max_holders", F_RULE_INT, false}, \
  {"min-units", "min_units", F_RULE_INT, false}, {"lockup-until", "lockup_until", F_RULE_INT, false}

static const txkind_t TX_KINDS[] = {
  {"account open", "account.open", false,
   {{"account", "account", F_STR, true}, {"roles", "roles", F_LIST, true},
    {"jurisdiction", "jurisdiction", F_STR, true}, {"kyc", "kyc", F_BOOL, true}}},
  {"account update", "account.update", false,
   {{"account", "account", F_STR, true}, {"roles", "roles", F_LIST, false},
    {"jurisdiction", "jurisdiction", F_STR, false}, {"kyc", "kyc", F_BOOL, false},
    {"frozen", "frozen", F_BOOL, false}}},
  {"account recover", "account.recover", false,
   {{"account", "account", F_STR, true}, {"to", "to", F_STR, true}, {"reason", "reason", F_STR, true}}},
  {"asset create", "asset.create", true,
   {{"asset", "asset", F_STR, true}, {"name", "name", F_STR, true}, {"kind", "kind", F_STR, true},
    {"currency", "currency", F_STR, true}, {"principal", "principal", F_INT, true},
    {"units", "units", F_INT, true}, {"coupon-bps", "coupon_bps", F_INT, true},
    {"maturity", "maturity", F_STR, true}, {"rating", "rating", F_STR, true},
    {"risk-weight-pct", "risk_weight_pct", F_INT, true}, RULE_FIELDS,
    {"document", "documents", F_DOCS, false}}},
  {"asset update", "asset.update", false,
   {{"asset", "asset", F_STR, true}, {"rating", "rating", F_STR, false},
    {"risk-weight-pct", "risk_weight_pct", F_INT, false}, {"maturity", "maturity", F_STR, false},
    RULE_FIELDS, {"document", "documents", F_DOCS, false}}},
  {"asset issue", "asset.issue", false,
   {{"asset", "asset", F_STR, true}, {"to", "to", F_STR, true}, {"units", "units", F_INT, true}}},
  {"asset redeem", "asset.redeem", false,
   {{"asset", "asset", F_STR, true}, {"from", "from", F_STR, true}, {"units", "units", F_INT, true},
    {"amount", "amount", F_INT, true}}},
  {"asset distribute", "asset.distribute", false,
   {{"asset", "asset", F_STR, true}, {"amount", "amount", F_INT, true}, {"kind", "kind", F_STR, true},
    {"memo", "memo", F_STR, false}}},
  {"asset status", "asset.status", false, {{"asset", "asset", F_STR, true}, {"status", "status", F_STR, true}}},
  {"transfer", "transfer", false,
   {{"asset", "asset", F_STR, true}, {"to", "to", F_STR, true}, {"units", "units", F_INT, true},
    {"memo", "memo", F_STR, false}}},
  {"force-transfer", "transfer.force", false,
   {{"asset", "asset", F_STR, true}, {"from", "from", F_STR, true}, {"to", "to", F_STR, true},
    {"units", "units", F_INT, true}, {"reason", "reason", F_STR, true}}},
  {"freeze", "holding.freeze", false,
   {{"asset", "asset", F_STR, true}, {"account", "account", F_STR, true}, {"units", "units", F_INT, true}}},
};

static const txkind_t *txkind_find(const char *cmd) {
  for (size_t i = 0; i < sizeof TX_KINDS / sizeof TX_KINDS[0]; i++)
    if (strcmp(TX_KINDS[i].cmd, cmd) == 0) return &TX_KINDS[i];
  return NULL;
}

static cJSON *int_item(const ctl_cmd_t *cmd, const char *flag, const char *v) {
  uint64_t n;
  if (ctl_parse_u64(v, &n) != 0) {
    ctl_usage_error(cmd, "--%s must be an integer 0..2^53-1 written in digits", flag);
    return NULL;
  }
  return cJSON_CreateRaw(v);
}

static cJSON *list_item(const char *v) {
  cJSON *a = cJSON_CreateArray();
  const char *p = v;
  while (*v && a) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char *s = strndup(p, n);
    if (s) cJSON_AddItemToArray(a, cJSON_CreateString(s));
    free(s);
    if (!end) break;
    p = end + 1;
  }
  return a;
}

/* Every --document NAME=SHA256HEX, in order; an empty list with --no-documents. */
static int add_documents(const ctl_cmd_t *cmd, const ctl_opts_t *o, cJSON *tx) {
  bool any = ctl_flag(o, "document"), none = ctl_flag(o, "no-documents");
  if (!any && !none) return 0;
  if (any && none) return ctl_usage_error(cmd, "--document and --no-documents exclude each other");
  cJSON *docs = cJSON_AddArrayToObject(tx, "documents");
  for (size_t i = 0; i < o->n; i++) {
    if (strcmp(o->o[i].name, "document") != 0) continue;
    const char *v = o->o[i].value, *eq = strrchr(v, '=');
    if (eq == NULL || eq == v) return ctl_usage_error(cmd, "--document wants NAME=SHA256HEX, got %s", v);
    cJSON *d = cJSON_CreateObject();
    char *name = strndup(v, (size_t)(eq - v));
    cJSON_AddStringToObject(d, "name", name ? name : "");
    cJSON_AddStringToObject(d, "sha256", eq + 1);
    free(name);
    cJSON_AddItemToArray(docs, d);
  }
  return 0;
}

static cJSON *field_item(const ctl_cmd_t *cmd, const field_t *f, const char *v) {
  switch (f->t) {
  case F_INT: case F_RULE_INT: return int_item(cmd, f->flag, v);
  case F_LIST: case F_RULE_LIST: return list_item(v);
  case F_BOOL:
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) return cJSON_CreateBool(v[0] == 't');
    ctl_usage_error(cmd, "--%s must be true or false", f->flag);
    return NULL;
  default: return cJSON_CreateString(v);
  }
}

/* Adds the kind's fields from the options to tx. */
static int add_fields(const ctl_cmd_t *cmd, const txkind_t *k, const ctl_opts_t *o, cJSON *tx) {
  cJSON *rules = NULL;
  for (size_t i = 0; i < TX_FIELDS_MAX && k->f[i].flag; i++) {
    const field_t *f = &k->f[i];
    bool is_rule = f->t == F_RULE_INT || f->t == F_RULE_LIST;
    if (is_rule && rules == NULL && (k->rules_always || ctl_opt(o, f->flag)))
      rules = cJSON_AddObjectToObject(tx, "rules");
    if (f->t == F_DOCS) {
      if (add_documents(cmd, o, tx) != 0) return CTL_USAGE;
      continue;
    }
    const char *v = ctl_opt(o, f->flag);
    if (v == NULL) {
      if (f->required) return ctl_usage_error(cmd, "--%s is required", f->flag);
      continue;
    }
    cJSON *item = field_item(cmd, f, v);
    if (item == NULL) return CTL_USAGE;
    cJSON_AddItemToObject(is_rule ? rules : tx, f->json, item);
  }
  return 0;
}

/* The common fields: type, chain, signer, id, expires. */
static int add_common(const ctl_cmd_t *cmd, const ctl_opts_t *o, const char *type, const char *chain,
                      const tr_key_t *signer, cJSON *tx) {
  char hex[65], id[17];
  uint8_t rnd[8];
  randombytes_buf(rnd, sizeof rnd);
  cJSON_AddStringToObject(tx, "type", type);
  cJSON_AddStringToObject(tx, "chain", chain);
  cJSON_AddStringToObject(tx, "signer", tr_hex_encode(signer->b, 32, hex));
  cJSON_AddStringToObject(tx, "id", ctl_opt(o, "id") ? ctl_opt(o, "id") : tr_hex_encode(rnd, sizeof rnd, id));
  const char *exp = ctl_opt(o, "expires");
  if (exp) {
    cJSON *e = int_item(cmd, "expires", exp);
    if (e == NULL) return CTL_USAGE;
    cJSON_AddItemToObject(tx, "expires", e);
  }
  return 0;
}

/* {"tx": bytes, "sig": hex} for bytes signed with sk; NULL on failure. */
static cJSON *signed_pair(const char *bytes, const uint8_t sk[64]) {
  uint8_t sig[64];
  char sig_hex[129];
  if (tr_tx_sign(bytes, strlen(bytes), sk, sig) != 0) {
    fprintf(stderr, "tranchectl: the tx is over %d bytes\n", TR_TX_BYTES_MAX);
    return NULL;
  }
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "tx", bytes);
  cJSON_AddStringToObject(p, "sig", tr_hex_encode(sig, sizeof sig, sig_hex));
  return p;
}

static void print_receipt(const cJSON *r, bool json) {
  if (json) {
    ctl_print_json(r);
    return;
  }
  const cJSON *dup = cJSON_GetObjectItemCaseSensitive(r, "duplicate");
  const cJSON *seq = cJSON_GetObjectItemCaseSensitive(r, "seq");
  printf("%s at seq %.0f\n", cJSON_IsTrue(dup) ? "already accepted (duplicate)" : "accepted",
         cJSON_IsNumber(seq) ? seq->valuedouble : 0.0);
  ctl_print_human(r, NULL);
}

/* Asks the node for its chain id. */
static int node_chain(int fd, char *out, size_t outlen) {
  cJSON *st = NULL;
  int rc = ctl_call(fd, "node.status", NULL, &st, NULL);
  if (rc != 0) return rc;
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(st, "chain");
  if (cJSON_IsString(c)) snprintf(out, outlen, "%s", c->valuestring);
  else rc = CTL_DAEMON;
  cJSON_Delete(st);
  return rc;
}

/* Builds the tx and signs it; *pair is {"tx","sig"}. */
static int build_signed(const ctl_cmd_t *cmd, const ctl_opts_t *o, const char *chain, cJSON **pair) {
  const txkind_t *k = txkind_find(cmd->name);
  uint8_t sk[64];
  tr_key_t pk;
  if (k == NULL) return CTL_USAGE;
  if (ctl_read_key(ctl_opt(o, "key"), sk, &pk) != 0) return CTL_FAILED;
  cJSON *tx = cJSON_CreateObject();
  int rc = add_common(cmd, o, k->type, chain, &pk, tx);
  if (rc == 0) rc = add_fields(cmd, k, o, tx);
  char *bytes = rc == 0 ? cJSON_PrintUnformatted(tx) : NULL;
  cJSON_Delete(tx);
  if (rc == 0 && bytes == NULL) rc = CTL_FAILED;
  if (rc == 0 && (*pair = signed_pair(bytes, sk)) == NULL) rc = CTL_FAILED;
  sodium_memzero(sk, sizeof sk);
  free(bytes);
  return rc;
}

#define LEADER_HOPS_MAX 3            /* not_leader answers followed for one tx */
#define LEADER_WAIT_MS_MIN 5000      /* an election usually ends well within this */

/* The leader's address of a -32005 not_leader answer: 1 and addr, 0 while no
 * leader is known (an election), -1 for any other error. */
static int not_leader(const cJSON *err, char *addr, size_t cap) {
  const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
  if (!cJSON_IsNumber(code) || code->valueint != RPC_ERR_NOT_LEADER) return -1;
  const cJSON *leader = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(err, "data"), "leader");
  if (!cJSON_IsString(leader) || strlen(leader->valuestring) >= cap) return 0;
  snprintf(addr, cap, "%s", leader->valuestring);
  return 1;
}

/* Sends {"tx","sig"} with tx.submit on fd and prints the receipt.  A
 * cluster's follower answers -32005 not_leader naming the leader (PROTOCOL.md
 * §5, §8): the same bytes go there, which is always safe (a tx recorded
 * already comes back as a duplicate with its receipt); while no leader is
 * known it tries again for --wait, and at least LEADER_WAIT_MS_MIN. */
static int submit_pair(int fd, cJSON *pair, bool json) {
  int rc = CTL_DAEMON, own = -1;
  long waited = 0, wait_max = ctl_wait_ms > LEADER_WAIT_MS_MIN ? ctl_wait_ms : LEADER_WAIT_MS_MIN;
  for (unsigned hops = 0;;) {
    cJSON *r = NULL, *err = NULL;
    char leader[256];
    rc = ctl_call(fd, "tx.submit", cJSON_Duplicate(pair, 1), &r, &err);
    if (rc == CTL_OK) print_receipt(r, json);
    cJSON_Delete(r);
    int nl = rc == CTL_OK || err == NULL ? -1 : not_leader(err, leader, sizeof leader);
    if (nl < 0 || (nl == 1 && hops == LEADER_HOPS_MAX) || (nl == 0 && waited >= wait_max)) {
      if (err) rc = ctl_report_error(err);
      cJSON_Delete(err);
      break;
    }
    cJSON_Delete(err);
    if (nl == 0) { /* an election: ask again */
      usleep(200 * 1000);
      waited += 200;
      continue;
    }
    hops++;
    fprintf(stderr, "tranchectl: not the cluster's leader; sending the tx to the leader at %s\n", leader);
    if (own >= 0) close(own);
    own = fd = ctl_connect_leader(leader);
    if (fd < 0) {
      rc = CTL_DAEMON;
      break;
    }
  }
  if (own >= 0) close(own);
  cJSON_Delete(pair);
  return rc;
}

int ctl_cmd_tx(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  if (!ctl_opt(o, "key")) return ctl_usage_error(cmd, "--key is required");
  const char *chain_opt = ctl_opt(o, "chain");
  bool print = ctl_flag(o, "print");
  char chain[TR_CHAIN_ID_CHARS_MAX + 1];
  int fd = -1, rc = 0;
  if (!print || !chain_opt) {
    if ((fd = ctl_connect_rpc(o)) < 0) return CTL_DAEMON;
  }
  if (chain_opt) snprintf(chain, sizeof chain, "%s", chain_opt);
  else rc = node_chain(fd, chain, sizeof chain);
  cJSON *pair = NULL;
  if (rc == 0) rc = build_signed(cmd, o, chain, &pair);
  if (rc == 0 && print) {
    ctl_print_json(pair);
    cJSON_Delete(pair);
  } else if (rc == 0) {
    rc = submit_pair(fd, pair, o->json);
  }
  if (fd >= 0) close(fd);
  return rc;
}

int ctl_cmd_sign(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *key = ctl_opt(o, "key"), *tx = ctl_opt(o, "tx");
  if (!key || !tx) return ctl_usage_error(cmd, "--key and --tx are required");
  uint8_t sk[64];
  tr_key_t pk;
  if (ctl_read_key(key, sk, &pk) != 0) return CTL_FAILED;
  cJSON *pair = signed_pair(tx, sk);
  sodium_memzero(sk, sizeof sk);
  if (pair == NULL) return CTL_FAILED;
  ctl_print_json(pair);
  cJSON_Delete(pair);
  return CTL_OK;
}

int ctl_cmd_submit(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  char *text = NULL;
  size_t len = 0;
  if (ctl_read_file(o->pos[0], &text, &len) != 0) return CTL_FAILED;
  cJSON *in = cJSON_ParseWithLength(text, len);
  free(text);
  const cJSON *tx = cJSON_GetObjectItemCaseSensitive(in, "tx"), *sig = cJSON_GetObjectItemCaseSensitive(in, "sig");
  if (!cJSON_IsString(tx) || !cJSON_IsString(sig)) {
    cJSON_Delete(in);
    return ctl_usage_error(cmd, "%s must hold a JSON object {\"tx\": string, \"sig\": string}", o->pos[0]);
  }
  cJSON *pair = cJSON_CreateObject();
  cJSON_AddStringToObject(pair, "tx", tx->valuestring);
  cJSON_AddStringToObject(pair, "sig", sig->valuestring);
  cJSON_Delete(in);
  int fd = ctl_connect_rpc(o);
  if (fd < 0) {
    cJSON_Delete(pair);
    return CTL_DAEMON;
  }
  int rc = submit_pair(fd, pair, o->json);
  close(fd);
  return rc;
}
