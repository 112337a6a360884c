/* test_tx.c — the tx envelope (PROTOCOL.md §1, §2, §4 step 1), txid and
 * signatures.
 *
 * Templates use ' for " and $S $A $B $N $Z for the hex of the signer, two
 * other accounts, the node key and an all-zero (small order) key, so the
 * cases stay readable.  Keys come from fixed seeds: every run is the same.
 * Besides hand-written cases, every valid example is mutated mechanically at
 * every member and array element (removed, null, wrong JSON type, an unknown
 * sibling), and each mutation must be refused with a detail naming the path. */
#include <cJSON.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_test.h"
#include "tr_tx.h"

#define TEXT_BYTES 40000

static uint8_t SK[5][64];
static tr_key_t PK[5];
static char HEX[5][65]; /* signer, A, B, node, zero */
enum { KS, KA, KB, KN, KZ };

static void keys_init(void) {
  for (int i = 0; i < 4; i++) {
    uint8_t seed[32];
    memset(seed, i + 1, sizeof seed);
    crypto_sign_seed_keypair(PK[i].b, SK[i], seed);
  }
  memset(PK[KZ].b, 0, sizeof PK[KZ].b);
  for (int i = 0; i < 5; i++) tr_hex_encode(PK[i].b, 32, HEX[i]);
}

/* printf-formats `fmt`, then turns ' into " and $X into key hex. */
static const char *tx(const char *fmt, ...) {
  static char raw[TEXT_BYTES], out[TEXT_BYTES];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  size_t o = 0;
  for (const char *p = raw; *p && o + 70 < sizeof out; p++) {
    const char *k = NULL;
    if (*p == '$') {
      switch (p[1]) {
      case 'S': k = HEX[KS]; break;
      case 'A': k = HEX[KA]; break;
      case 'B': k = HEX[KB]; break;
      case 'N': k = HEX[KN]; break;
      case 'Z': k = HEX[KZ]; break;
      default: break;
      }
    }
    if (k) memcpy(out + o, k, 64), o += 64, p++;
    else out[o++] = *p == '\'' ? '"' : *p;
  }
  out[o] = '\0';
  return out;
}

/* `unit` repeated n times (rotating buffers, so two may be used at once). */
static const char *rep(const char *unit, int n) {
  static char bufs[4][TEXT_BYTES];
  static int which = 0;
  char *b = bufs[which++ % 4];
  size_t u = strlen(unit), o = 0;
  for (int i = 0; i < n && o + u < TEXT_BYTES; i++) memcpy(b + o, unit, u), o += u;
  b[o] = '\0';
  return b;
}

static tr_tx_t TX;
static tr_tx_error_t ERR;

static int dec(const char *bytes) { return tr_tx_decode(bytes, strlen(bytes), &TX, &ERR); }

#define ACCEPT(bytes, what)                                                     \
  do {                                                                          \
    int rc_ = dec(bytes);                                                       \
    TR_CHECK(rc_ == 0, "accept %s%s%s", what, rc_ ? ": " : "", rc_ ? ERR.detail : ""); \
  } while (0)

#define REFUSE(bytes, sub, what)                                                \
  do {                                                                          \
    int rc_ = dec(bytes);                                                       \
    TR_CHECK(rc_ == TR_EINVALID && strstr(ERR.detail, sub) != NULL,             \
             "refuse %s: %s", what, rc_ ? ERR.detail : "(accepted)");          \
  } while (0)

#define CHAIN "bank.example/tranche/test"
#define HDR(t) "{'type':'" t "','chain':'" CHAIN "','signer':'$S','id':'tx-1'"
#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define GENESIS "{'type':'genesis','chain':'" CHAIN "','signer':'$N','id':'genesis','admin':'$A'}"

/* ---- one valid example of every type ---- */

typedef struct {
  tr_tx_type_t type;
  const char *tmpl;
  const char *optional; /* paths that may be removed, space separated */
} example_t;

static const example_t EXAMPLES[] = {
  {TR_TX_GENESIS, GENESIS, ""},
  {TR_TX_ACCOUNT_OPEN,
   HDR("account.open") ",'account':'$A','roles':['issuer','admin'],'jurisdiction':'US','kyc':true,"
                       "'expires':1700000000000}",
   "expires"},
  {TR_TX_ACCOUNT_UPDATE,
   HDR("account.update") ",'account':'$A','roles':['agent'],'jurisdiction':'GB','kyc':false,'frozen':true,"
                         "'expires':5}",
   "expires roles jurisdiction kyc frozen"},
  {TR_TX_ACCOUNT_RECOVER, HDR("account.recover") ",'account':'$A','to':'$B','reason':'lost device','expires':0}",
   "expires"},
  {TR_TX_ASSET_CREATE,
   HDR("asset.create") ",'asset':'LOAN-2024.1_A','name':'Term loan A','kind':'term_loan','currency':'USD',"
                       "'principal':100000000,'units':1000000,'coupon_bps':550,'maturity':'2030-06-30',"
                       "'rating':'BBB+','risk_weight_pct':100,"
                       "'rules':{'jurisdictions':['US','GB'],'max_holders':50,'min_units':10,'lockup_until':1700000000000},"
                       "'documents':[{'name':'Term sheet','sha256':'" SHA "'}],'expires':1800000000000}",
   "expires documents rules.jurisdictions rules.max_holders rules.min_units rules.lockup_until"},
  {TR_TX_ASSET_UPDATE,
   HDR("asset.update") ",'asset':'LOAN-1','rating':'A-','risk_weight_pct':50,'rules':{'min_units':1},"
                       "'documents':[{'name':'v2','sha256':'" SHA "'}],'maturity':'2031-01-31','expires':9}",
   "expires rating risk_weight_pct rules documents maturity rules.min_units"},
  {TR_TX_ASSET_ISSUE, HDR("asset.issue") ",'asset':'LOAN-1','to':'$A','units':1000,'expires':9}", "expires"},
  {TR_TX_TRANSFER, HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':5,'memo':'settlement 42','expires':9}",
   "expires memo"},
  {TR_TX_TRANSFER_FORCE,
   HDR("transfer.force") ",'asset':'LOAN-1','from':'$A','to':'$B','units':7,'reason':'court order 17','expires':9}",
   "expires"},
  {TR_TX_HOLDING_FREEZE, HDR("holding.freeze") ",'asset':'LOAN-1','account':'$A','units':0,'expires':9}", "expires"},
  {TR_TX_ASSET_REDEEM, HDR("asset.redeem") ",'asset':'LOAN-1','from':'$A','units':3,'amount':0,'expires':9}",
   "expires"},
  {TR_TX_ASSET_DISTRIBUTE,
   HDR("asset.distribute") ",'asset':'LOAN-1','amount':12345,'kind':'interest','memo':'Q1','expires':9}",
   "expires memo"},
  {TR_TX_ASSET_STATUS, HDR("asset.status") ",'asset':'LOAN-1','status':'paused','expires':9}", "expires"},
};
#define EXAMPLES_N (sizeof EXAMPLES / sizeof EXAMPLES[0])

static bool key_is(const tr_key_t *k, int which) { return memcmp(k->b, PK[which].b, 32) == 0; }

static void check_common(const char *bytes, tr_tx_type_t type, const char *what) {
  uint8_t h[32];
  crypto_hash_sha256(h, (const uint8_t *)bytes, strlen(bytes));
  TR_CHECK(TX.type == type && strcmp(TX.chain, CHAIN) == 0 && memcmp(TX.txid, h, 32) == 0,
           "%s: type, chain and txid = SHA-256(bytes)", what);
}

static void test_examples_decode(void) {
  for (size_t i = 0; i < EXAMPLES_N; i++) {
    const char *b = tx("%s", EXAMPLES[i].tmpl);
    const char *name = tr_tx_type_name(EXAMPLES[i].type);
    ACCEPT(b, name);
    check_common(b, EXAMPLES[i].type, name);
  }
}

/* Field values, type by type. */
static void test_example_fields(void) {
  dec(tx("%s", EXAMPLES[0].tmpl));
  TR_CHECK(key_is(&TX.signer, KN) && key_is(&TX.admin, KA) && strcmp(TX.id, "genesis") == 0 && !TX.has_expires,
           "genesis: signer, admin, id");
  dec(tx("%s", EXAMPLES[1].tmpl));
  TR_CHECK(key_is(&TX.signer, KS) && key_is(&TX.account, KA) && TX.has_roles &&
               TX.roles == (TR_ROLE_ADMIN | TR_ROLE_ISSUER) && strcmp(TX.jurisdiction, "US") == 0 && TX.kyc &&
               TX.has_expires && TX.expires == 1700000000000ULL && strcmp(TX.id, "tx-1") == 0,
           "account.open: account, roles, jurisdiction, kyc, expires");
  dec(tx("%s", EXAMPLES[2].tmpl));
  TR_CHECK(TX.has_roles && TX.roles == TR_ROLE_AGENT && TX.has_jurisdiction && strcmp(TX.jurisdiction, "GB") == 0 &&
               TX.has_kyc && !TX.kyc && TX.has_frozen && TX.frozen && TX.expires == 5,
           "account.update: every optional field and its has_ flag");
  dec(tx(HDR("account.update") ",'account':'$A','frozen':false}"));
  TR_CHECK(!TX.has_roles && !TX.has_jurisdiction && !TX.has_kyc && TX.has_frozen && !TX.frozen && !TX.has_expires,
           "account.update: only frozen present");
  dec(tx("%s", EXAMPLES[3].tmpl));
  TR_CHECK(key_is(&TX.account, KA) && key_is(&TX.to, KB) && strcmp(TX.reason, "lost device") == 0 && TX.has_expires &&
               TX.expires == 0,
           "account.recover: account, to, reason, expires 0");
  dec(tx("%s", EXAMPLES[4].tmpl));
  uint8_t sha[32];
  tr_hex_decode(SHA, 64, sha, 32);
  TR_CHECK(strcmp(TX.asset, "LOAN-2024.1_A") == 0 && strcmp(TX.name, "Term loan A") == 0 &&
               TX.kind == TR_KIND_TERM_LOAN && strcmp(TX.currency, "USD") == 0 && TX.principal == 100000000 &&
               TX.authorised_units == 1000000 && TX.units == 0 && TX.coupon_bps == 550 &&
               strcmp(TX.maturity, "2030-06-30") == 0 && strcmp(TX.rating, "BBB+") == 0 && TX.risk_weight_pct == 100,
           "asset.create: terms");
  TR_CHECK(TX.has_rules && TX.rules.jurisdictions_n == 2 && strcmp(TX.rules.jurisdictions[0], "US") == 0 &&
               strcmp(TX.rules.jurisdictions[1], "GB") == 0 && TX.rules.max_holders == 50 &&
               TX.rules.min_units == 10 && TX.rules.lockup_until == 1700000000000ULL,
           "asset.create: rules");
  TR_CHECK(TX.has_documents && TX.documents_n == 1 && strcmp(TX.documents[0].name, "Term sheet") == 0 &&
               memcmp(TX.documents[0].sha256, sha, 32) == 0,
           "asset.create: documents");
  dec(tx("%s", EXAMPLES[5].tmpl));
  TR_CHECK(TX.has_rating && strcmp(TX.rating, "A-") == 0 && TX.has_risk_weight_pct && TX.risk_weight_pct == 50 &&
               TX.has_rules && TX.rules.min_units == 1 && TX.rules.jurisdictions_n == 0 && TX.has_documents &&
               TX.documents_n == 1 && TX.has_maturity && strcmp(TX.maturity, "2031-01-31") == 0,
           "asset.update: every optional field");
  dec(tx(HDR("asset.update") ",'asset':'LOAN-1','documents':[]}"));
  TR_CHECK(TX.has_documents && TX.documents_n == 0 && !TX.has_rules && !TX.has_rating, "asset.update: empty documents");
  dec(tx("%s", EXAMPLES[6].tmpl));
  TR_CHECK(strcmp(TX.asset, "LOAN-1") == 0 && key_is(&TX.to, KA) && TX.units == 1000, "asset.issue: asset, to, units");
  dec(tx("%s", EXAMPLES[7].tmpl));
  TR_CHECK(key_is(&TX.to, KA) && TX.units == 5 && TX.has_memo && strcmp(TX.memo, "settlement 42") == 0,
           "transfer: to, units, memo");
  dec(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':5}"));
  TR_CHECK(!TX.has_memo && TX.memo[0] == '\0' && !TX.has_expires, "transfer: no memo");
  dec(tx("%s", EXAMPLES[8].tmpl));
  TR_CHECK(key_is(&TX.from, KA) && key_is(&TX.to, KB) && TX.units == 7 && strcmp(TX.reason, "court order 17") == 0,
           "transfer.force: from, to, units, reason");
  dec(tx("%s", EXAMPLES[9].tmpl));
  TR_CHECK(key_is(&TX.account, KA) && TX.units == 0, "holding.freeze: account, units 0");
  dec(tx("%s", EXAMPLES[10].tmpl));
  TR_CHECK(key_is(&TX.from, KA) && TX.units == 3 && TX.amount == 0, "asset.redeem: from, units, amount 0");
  dec(tx("%s", EXAMPLES[11].tmpl));
  TR_CHECK(TX.amount == 12345 && TX.dist_kind == TR_DIST_INTEREST && TX.has_memo && strcmp(TX.memo, "Q1") == 0,
           "asset.distribute: amount, kind, memo");
  dec(tx("%s", EXAMPLES[12].tmpl));
  TR_CHECK(TX.status == TR_STATUS_PAUSED, "asset.status: paused");
}

/* ---- mechanical mutations ---- */

/* A compact printer that writes numbers as plain integers (cJSON would
 * print 1700000000000 as 1.7e+12, which strict tx bytes refuse). */
static void emit(const cJSON *v, char **o) {
  if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
    bool obj = cJSON_IsObject(v);
    *(*o)++ = obj ? '{' : '[';
    for (const cJSON *c = v->child; c; c = c->next) {
      if (c != v->child) *(*o)++ = ',';
      if (obj) *o += sprintf(*o, "\"%s\":", c->string);
      emit(c, o);
    }
    *(*o)++ = obj ? '}' : ']';
  } else if (cJSON_IsString(v)) {
    *o += sprintf(*o, "\"%s\"", v->valuestring); /* examples hold no quotes or backslashes */
  } else if (cJSON_IsNumber(v)) {
    *o += sprintf(*o, "%.0f", v->valuedouble);
  } else {
    *o += sprintf(*o, "%s", cJSON_IsNull(v) ? "null" : cJSON_IsTrue(v) ? "true" : "false");
  }
  **o = '\0';
}

static bool path_listed(const char *list, const char *path) {
  size_t n = strlen(path);
  for (const char *p = list; (p = strstr(p, path)) != NULL; p += n) {
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return true;
  }
  return false;
}

typedef enum { MUT_REMOVE, MUT_NULL, MUT_WRONG_TYPE, MUT_UNKNOWN, MUT_COUNT } mutation_t;

/* A value of another JSON type than v. */
/* Replaces child i of node, keeping the member name of an object member. */
static void replace(cJSON *node, int i, const cJSON *child, cJSON *with) {
  if (cJSON_IsObject(node)) cJSON_ReplaceItemInObjectCaseSensitive(node, child->string, with);
  else cJSON_ReplaceItemInArray(node, i, with);
}

static cJSON *wrong_type(const cJSON *v) {
  if (cJSON_IsString(v)) return cJSON_CreateNumber(1);
  if (cJSON_IsNumber(v)) return cJSON_CreateString("1");
  if (cJSON_IsBool(v)) return cJSON_CreateString("true");
  if (cJSON_IsObject(v)) return cJSON_CreateArray();
  return cJSON_CreateObject();
}

typedef struct {
  const example_t *ex;
  size_t runs, passed;
  char first_failure[640];
} mut_stats_t;

/* Applies mutation m to child `i` of the node reached by `idx` in a copy of
 * root, decodes the result and checks it is refused naming `path`. */
static void mutate_one(const cJSON *root, const int *idx, int depth, int i, const char *path, mutation_t m,
                       mut_stats_t *st) {
  cJSON *copy = cJSON_Duplicate(root, true);
  cJSON *node = copy;
  for (int d = 0; d < depth; d++) node = cJSON_GetArrayItem(node, idx[d]);
  cJSON *child = cJSON_GetArrayItem(node, i);
  char want[200];
  bool expect_ok = false;
  switch (m) {
  case MUT_REMOVE:
    cJSON_DeleteItemFromArray(node, i);
    expect_ok = path_listed(st->ex->optional, path);
    snprintf(want, sizeof want, "missing field `%s`", path);
    break;
  case MUT_NULL:
    replace(node, i, child, cJSON_CreateNull());
    snprintf(want, sizeof want, "`%s`", path);
    break;
  case MUT_WRONG_TYPE:
    replace(node, i, child, wrong_type(child));
    snprintf(want, sizeof want, "`%s`", path);
    break;
  default:
    cJSON_AddNumberToObject(child, "bogus", 1);
    snprintf(want, sizeof want, "unknown field `%s.bogus`", path);
    break;
  }
  char *out = malloc(TEXT_BYTES), *o = out;
  emit(copy, &o);
  int rc = tr_tx_decode(out, strlen(out), &TX, &ERR);
  bool pass = expect_ok ? rc == 0 : (rc == TR_EINVALID && strstr(ERR.detail, want) != NULL);
  st->runs++;
  if (pass) st->passed++;
  else if (!st->first_failure[0])
    snprintf(st->first_failure, sizeof st->first_failure, "mutation %d at %s: rc %d \"%s\" want \"%s\"", m, path, rc,
             ERR.detail, expect_ok ? "accept" : want);
  free(out);
  cJSON_Delete(copy);
}

/* Every member and element below `node` (reached by idx[0..depth)). */
static void mutate_tree(const cJSON *root, const cJSON *node, int *idx, int depth, const char *prefix,
                        mut_stats_t *st) {
  int i = 0;
  bool in_array = cJSON_IsArray(node);
  for (const cJSON *c = node->child; c; c = c->next, i++) {
    char path[128];
    if (in_array) snprintf(path, sizeof path, "%s[%d]", prefix, i);
    else snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", c->string);
    for (mutation_t m = 0; m < MUT_COUNT; m++) {
      if (m == MUT_REMOVE && in_array) continue; /* fewer elements stay valid */
      if (m == MUT_UNKNOWN && !cJSON_IsObject(c)) continue;
      mutate_one(root, idx, depth, i, path, m, st);
    }
    idx[depth] = i;
    if (cJSON_IsObject(c) || cJSON_IsArray(c)) mutate_tree(root, c, idx, depth + 1, path, st);
  }
}

static void test_mutations(void) {
  for (size_t e = 0; e < EXAMPLES_N; e++) {
    mut_stats_t st = {&EXAMPLES[e], 0, 0, ""};
    const char *b = tx("%s", EXAMPLES[e].tmpl);
    cJSON *root = cJSON_Parse(b);
    char *out = malloc(TEXT_BYTES), *o = out;
    emit(root, &o);
    TR_CHECK(strcmp(out, b) == 0, "%s: the test printer reproduces the example", tr_tx_type_name(EXAMPLES[e].type));
    free(out);
    int idx[8];
    mutate_tree(root, root, idx, 0, "", &st);
    /* An unknown member at the top level, first and last. */
    cJSON *copy = cJSON_Duplicate(root, true);
    cJSON_AddNumberToObject(copy, "bogus", 1);
    out = malloc(TEXT_BYTES), o = out;
    emit(copy, &o);
    REFUSE(out, "unknown field `bogus`", "unknown field last");
    free(out);
    cJSON_Delete(copy);
    TR_CHECK(st.runs > 10 && st.passed == st.runs, "%s: %zu of %zu mutations refused/accepted as expected %s",
             tr_tx_type_name(EXAMPLES[e].type), st.passed, st.runs, st.first_failure);
    cJSON_Delete(root);
  }
  REFUSE(tx("{'zzz':1,'type':'transfer','chain':'c','signer':'$S','id':'x','asset':'A','to':'$A','units':1}"),
         "unknown field `zzz`", "unknown field first");
}

/* ---- hand-written cases ---- */

static void test_size_and_json(void) {
  const char *base = tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':5}");
  size_t n = strlen(base);
  /* Pad with spaces after '{' up to exactly `total` bytes. */
  char *big = malloc(TR_TX_BYTES_MAX + 1);
  for (size_t total = TR_TX_BYTES_MAX; total <= TR_TX_BYTES_MAX + 1; total++) {
    big[0] = '{';
    memset(big + 1, ' ', total - n);
    memcpy(big + 1 + total - n, base + 1, n - 1);
    int rc = tr_tx_decode(big, total, &TX, &ERR);
    if (total == TR_TX_BYTES_MAX)
      TR_CHECK(rc == 0 && TX.units == 5, "exactly 16384 bytes accepted %s", ERR.detail);
    else
      TR_CHECK(rc == TR_EINVALID && strstr(ERR.detail, "16384") != NULL, "16385 bytes refused: %s", ERR.detail);
  }
  free(big);
  TR_CHECK(tr_tx_decode(base, n - 1, &TX, &ERR) == TR_EINVALID && strstr(ERR.detail, "strict JSON"),
           "truncated tx refused: %s", ERR.detail);
  /* Not NUL-terminated: the decoder must stop at len. */
  char *exact = malloc(n);
  memcpy(exact, base, n);
  TR_CHECK(tr_tx_decode(exact, n, &TX, &ERR) == 0 && TX.units == 5, "tx without a NUL terminator decodes");
  free(exact);
  REFUSE("", "strict JSON", "empty bytes");
  REFUSE(tx("[%s]", base), "object", "array around a tx");
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':5,'units':5}"), "duplicate", "duplicate member");
  REFUSE(tx(HDR("asset.create") ",'asset':'A','name':'n','kind':'bond','currency':'USD','principal':1,'units':1,"
                                "'coupon_bps':0,'maturity':'2030-01-01','rating':'A','risk_weight_pct':0,"
                                "'rules':{'min_units':1,'min_units':2}}"),
         "duplicate", "duplicate member inside rules");
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':1e3}"), "integers", "units 1e3");
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':1.0}"), "integers", "units 1.0");
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':-0}"), "integers", "units -0");
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':-5}"), "integers", "units -5");
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':05}"), "leading zero", "units 05");
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':'5'}"), "field `units`: must be an integer",
         "units as a string");
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':5,'memo':'\\u0000'}"), "U+0000", "escaped NUL");
  REFUSE(tx("\xEF\xBB\xBF" HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':5}"), "byte-order", "BOM");
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':5,'memo':'\xC0\xAF'}"), "overlong", "overlong memo");
  ACCEPT(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','\\u0075nits':5}"), "escaped member name equals `units`");
  ACCEPT(tx("{ 'type' : 'transfer' ,\n\t'chain':'" CHAIN "',\r\n'signer':'$S','id':'x','asset':'LOAN-1',"
            "'to':'$A','units':5 }\n"),
         "whitespace around tokens and after the object");
}

static void test_type(void) {
  REFUSE(tx("{'chain':'" CHAIN "','signer':'$S','id':'x'}"), "missing field `type`", "no type");
  REFUSE(tx(HDR("payment") "}"), "field `type`: unknown type \"payment\"", "unknown type");
  REFUSE(tx(HDR("Transfer") ",'asset':'LOAN-1','to':'$A','units':5}"), "unknown type", "type in wrong case");
  REFUSE(tx(HDR("transfer ") ",'asset':'LOAN-1','to':'$A','units':5}"), "unknown type", "type with a space");
  REFUSE(tx("{'type':1}"), "field `type`: must be a string", "type as a number");
  REFUSE(tx("{'type':null}"), "not null", "type null");
  REFUSE(tx(HDR("%s") "}", rep("x", 500)), "unknown type \"xxxxxxxxxx", "long unknown type is shortened");
  TR_CHECK(strlen(ERR.detail) < 120, "a long client string is cut in the detail (%zu bytes)", strlen(ERR.detail));
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':5,'a`b\\nc':1}"), "unknown field `a?b?c`",
         "unknown name shown without backquotes or newlines");
}

static void test_integers(void) {
#define T(units) tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':" units "}")
  ACCEPT(T("1"), "units 1");
  ACCEPT(T("9007199254740991"), "units 2^53-1");
  TR_CHECK(TX.units == 9007199254740991ULL, "units 2^53-1 exact");
  REFUSE(T("9007199254740992"), "field `units`: must be an integer ≤ 9007199254740991", "units 2^53");
  REFUSE(T("9007199254740993"), "≤ 9007199254740991", "units 2^53+1");
  REFUSE(T("9999999999999999"), "≤ 9007199254740991", "units 16 nines");
  REFUSE(T("10000000000000000"), "16 digits", "units 17 digits");
  dec(T("0"));
  TR_CHECK_EQ_STR(ERR.detail, "field `units`: must be an integer ≥ 1", "exact detail for transfer units 0");
#undef T
  ACCEPT(tx(HDR("holding.freeze") ",'asset':'LOAN-1','account':'$A','units':0}"), "freeze units 0");
  ACCEPT(tx(HDR("asset.redeem") ",'asset':'LOAN-1','from':'$A','units':1,'amount':0}"), "redeem amount 0");
  REFUSE(tx(HDR("asset.redeem") ",'asset':'LOAN-1','from':'$A','units':0,'amount':0}"), "`units`: must be an integer ≥ 1",
         "redeem units 0");
  REFUSE(tx(HDR("asset.distribute") ",'asset':'LOAN-1','amount':0,'kind':'other'}"), "`amount`: must be an integer ≥ 1",
         "distribute amount 0");
  REFUSE(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'$A','units':0}"), "`units`: must be an integer ≥ 1",
         "issue units 0");
  REFUSE(tx(HDR("transfer.force") ",'asset':'LOAN-1','from':'$A','to':'$B','units':0,'reason':'r'}"),
         "`units`: must be an integer ≥ 1", "force units 0");
  ACCEPT(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'$A','units':1,'expires':0}"), "expires 0");
  REFUSE(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'$A','units':1,'expires':9007199254740992}"),
         "field `expires`: must be an integer ≤", "expires 2^53");
  REFUSE(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'$A','units':1,'expires':true}"), "field `expires`: must be an integer",
         "expires true");
}

/* asset.create with one member replaced: `%s` is the tail after `asset`. */
#define CREATE(...) tx(HDR("asset.create") ",'asset':'LOAN-1','name':'Loan','kind':'bond','currency':'EUR'," __VA_ARGS__)
#define CREATE_TAIL "'principal':500,'units':100,'coupon_bps':0,'maturity':'2030-01-01','rating':'A',"

static void test_ranges(void) {
  ACCEPT(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{}}"), "risk_weight_pct 0, rules {}");
  TR_CHECK(TX.has_rules && TX.rules.jurisdictions_n == 0 && TX.rules.max_holders == 0 && !TX.has_documents &&
               TX.documents_n == 0,
           "empty rules decode to zeros; no documents");
  ACCEPT(CREATE(CREATE_TAIL "'risk_weight_pct':1250,'rules':{}}"), "risk_weight_pct 1250");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':1251,'rules':{}}"), "field `risk_weight_pct`: must be an integer from 0 to 1250",
         "risk_weight_pct 1251");
  ACCEPT(CREATE("'principal':1,'units':1,'coupon_bps':100000,'maturity':'2030-01-01','rating':'A','risk_weight_pct':0,'rules':{}}"),
         "coupon_bps 100000, principal 1, units 1");
  REFUSE(CREATE("'principal':1,'units':1,'coupon_bps':100001,'maturity':'2030-01-01','rating':'A','risk_weight_pct':0,'rules':{}}"),
         "field `coupon_bps`: must be an integer from 0 to 100000", "coupon_bps 100001");
  REFUSE(CREATE("'principal':0,'units':1,'coupon_bps':1,'maturity':'2030-01-01','rating':'A','risk_weight_pct':0,'rules':{}}"),
         "field `principal`: must be an integer ≥ 1", "principal 0");
  REFUSE(CREATE("'principal':1,'units':0,'coupon_bps':1,'maturity':'2030-01-01','rating':'A','risk_weight_pct':0,'rules':{}}"),
         "field `units`: must be an integer ≥ 1", "authorised units 0");
  ACCEPT(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'max_holders':10000,'min_units':0,'lockup_until':0}}"),
         "max_holders 10000, min_units 0, lockup_until 0");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'max_holders':10001}}"),
         "field `rules.max_holders`: must be an integer from 0 to 10000", "max_holders 10001");
  ACCEPT(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'min_units':9007199254740991,'lockup_until':9007199254740991}}"),
         "min_units and lockup_until 2^53-1");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'lockup_until':-1}}"), "integers", "lockup_until -1");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0}"), "missing field `rules`", "rules is required in asset.create");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':null}"), "field `rules`: must be an object, not null", "rules null");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'foo':1}}"), "unknown field `rules.foo`", "unknown in rules");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'max_holders':null}}"), "field `rules.max_holders`", "null in rules");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'jurisdictions':'US'}}"),
         "field `rules.jurisdictions`: must be an array", "jurisdictions as a string");
}

static void test_jurisdictions_and_documents(void) {
  ACCEPT(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'jurisdictions':[]}}"), "empty jurisdictions");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'jurisdictions':['US','GB','US']}}"),
         "field `rules.jurisdictions`: duplicate \"US\"", "duplicate jurisdiction");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'jurisdictions':['us']}}"),
         "field `rules.jurisdictions[0]`: must match ^[A-Z]{2}$", "lowercase jurisdiction");
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'jurisdictions':['USA']}}"), "jurisdictions[0]", "3-letter jurisdiction");
  /* 300 distinct codes are allowed, 301 are not. */
  char list[301 * 5 + 1], *p = list;
  for (int i = 0; i < 301; i++) p += sprintf(p, "%s'%c%c'", i ? "," : "", 'A' + i / 26, 'A' + i % 26);
  list[300 * 5 - 1] = '\0';
  ACCEPT(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'jurisdictions':[%s]}}", list), "300 jurisdictions");
  TR_CHECK(TX.rules.jurisdictions_n == 300 && strcmp(TX.rules.jurisdictions[299], "LN") == 0, "300 jurisdictions stored");
  list[300 * 5 - 1] = ',';
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{'jurisdictions':[%s]}}", list), "at most 300", "301 jurisdictions");

  char docs[33 * 120 + 1];
  p = docs;
  for (int i = 0; i < 33; i++) p += sprintf(p, "%s{'name':'doc %d','sha256':'" SHA "'}", i ? "," : "", i);
  char *cut = strstr(docs, ",{'name':'doc 32'");
  *cut = '\0';
  ACCEPT(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{},'documents':[%s]}", docs), "32 documents");
  TR_CHECK(TX.documents_n == 32 && strcmp(TX.documents[31].name, "doc 31") == 0, "32 documents stored");
  *cut = ',';
  REFUSE(CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{},'documents':[%s]}", docs), "field `documents`: at most 32",
         "33 documents");
#define DOCS(d) CREATE(CREATE_TAIL "'risk_weight_pct':0,'rules':{},'documents':[" d "]}")
  REFUSE(DOCS("{'name':'a','sha256':'" SHA "','foo':1}"), "unknown field `documents[0].foo`", "unknown in a document");
  REFUSE(DOCS("{'name':'a','sha256':'" SHA "'},{'name':'b'}"), "missing field `documents[1].sha256`", "document without sha256");
  REFUSE(DOCS("{'sha256':'" SHA "'}"), "missing field `documents[0].name`", "document without name");
  REFUSE(DOCS("{'name':'','sha256':'" SHA "'}"), "field `documents[0].name`: must be 1 to 200", "empty document name");
  REFUSE(DOCS("{'name':'a','sha256':'9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08'}"),
         "field `documents[0].sha256`: must be 64 lowercase hex", "uppercase sha256");
  REFUSE(DOCS("{'name':'a','sha256':'9f86'}"), "documents[0].sha256", "short sha256");
  REFUSE(DOCS("'a'"), "field `documents[0]`: must be an object", "document as a string");
  ACCEPT(DOCS("{'name':'a','sha256':'" SHA "'},{'name':'a','sha256':'" SHA "'}"), "repeated document names");
#undef DOCS
}

static void test_keys(void) {
#define ISSUE(to) tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'" to "','units':1}")
  char upper[65];
  for (int i = 0; i < 64; i++) upper[i] = (char)(HEX[KA][i] >= 'a' ? HEX[KA][i] - 32 : HEX[KA][i]);
  upper[64] = '\0';
  bool has_letter = strpbrk(HEX[KA], "abcdef") != NULL;
  REFUSE(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'%s','units':1}", upper), "field `to`: must be 64 lowercase hex",
         "uppercase key");
  TR_CHECK(has_letter, "the uppercase case really differs");
  REFUSE(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'%.63s','units':1}", HEX[KA]), "64 lowercase hex", "63-char key");
  REFUSE(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'%s0','units':1}", HEX[KA]), "64 lowercase hex", "65-char key");
  REFUSE(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'g%.63s','units':1}", HEX[KA]), "64 lowercase hex", "non-hex key");
  REFUSE(ISSUE("$Z"), "field `to`: not a valid Ed25519 public key", "all-zero key (small order)");
  REFUSE(ISSUE("0100000000000000000000000000000000000000000000000000000000000000"), "not a valid Ed25519",
         "identity point");
  REFUSE(ISSUE("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"), "not a valid Ed25519",
         "non-canonical encoding");
  /* A key with a torsion component: on the curve, not in the prime-order subgroup. */
  static const char order8[] = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a";
  uint8_t t[32], mixed[32];
  char mixed_hex[65];
  tr_hex_decode(order8, 64, t, 32);
  bool built = crypto_core_ed25519_add(mixed, PK[KA].b, t) == 0 && !crypto_core_ed25519_is_valid_point(mixed);
  tr_hex_encode(mixed, 32, mixed_hex);
  TR_CHECK(built, "built a mixed-order point");
  REFUSE(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'%s','units':1}", mixed_hex), "not a valid Ed25519",
         "mixed-order point");
#undef ISSUE
  REFUSE(tx("{'type':'transfer','chain':'" CHAIN "','signer':'$Z','id':'x','asset':'A','to':'$A','units':1}"),
         "field `signer`: not a valid Ed25519", "small-order signer");
  REFUSE(tx(HDR("account.open") ",'account':'$Z','roles':[],'jurisdiction':'US','kyc':true}"), "field `account`",
         "small-order account");
  REFUSE(tx(HDR("asset.redeem") ",'asset':'A','from':'$Z','units':1,'amount':1}"), "field `from`", "small-order from");
  REFUSE(tx("{'type':'genesis','chain':'" CHAIN "','signer':'$N','id':'genesis','admin':'$Z'}"), "field `admin`",
         "small-order admin");
}

/* The key-validity cache (a few ways a set) must answer exactly as the check:
 * keys that share a set, used over and over, are all accepted, and a point
 * that is not valid but falls in that set is still refused. */
static void test_key_cache_set(void) {
  enum { SAME_SET = 7 };          /* more keys than a set has ways */
  uint8_t pk[SAME_SET][32], sk[64];
  char hex[SAME_SET][65];
  uint32_t want = 0;
  int n = 0;
  for (long tries = 0; n < SAME_SET && tries < 10000000; tries++) {
    crypto_sign_keypair(pk[n], sk);
    uint32_t set;
    memcpy(&set, pk[n] + 8, sizeof set); /* the cache's own index: bytes 8-11, modulo its set count */
    set %= 1024;
    if (n == 0) want = set;
    if (set == want) tr_hex_encode(pk[n], 32, hex[n]), n++;
  }
  TR_CHECK(n == SAME_SET, "found %d keys in one cache set", n);
  unsigned refused = 0;
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < n; i++)
      if (dec(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'%s','units':1}", hex[i])) != 0) refused++;
  TR_CHECK(refused == 0, "%d valid keys sharing a cache set, three rounds: none refused (%u)", n, refused);
  uint8_t bad[32];
  memcpy(bad, pk[0], 32);
  for (int b = 0; crypto_core_ed25519_is_valid_point(bad) && b < 256; b++) bad[0] ^= (uint8_t)(b + 1);
  char bad_hex[65];
  tr_hex_encode(bad, 32, bad_hex);
  REFUSE(tx(HDR("asset.issue") ",'asset':'LOAN-1','to':'%s','units':1}", bad_hex), "not a valid Ed25519",
         "an invalid point in a set full of cached valid keys");
}

static void test_formats(void) {
#define STATUS(a) tx(HDR("asset.status") ",'asset':'" a "','status':'active'}")
  ACCEPT(STATUS("A"), "1-char asset id");
  ACCEPT(STATUS("0A._-"), "asset id with . _ -");
  ACCEPT(STATUS("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"), "32-char asset id");
  REFUSE(STATUS("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"), "field `asset`: must match ^[A-Z0-9][A-Z0-9._-]{0,31}$",
         "33-char asset id");
  REFUSE(STATUS(""), "field `asset`", "empty asset id");
  REFUSE(STATUS("loan"), "field `asset`", "lowercase asset id");
  REFUSE(STATUS(".A"), "field `asset`", "asset id starting with .");
  REFUSE(STATUS("-A"), "field `asset`", "asset id starting with -");
  REFUSE(STATUS("A B"), "field `asset`", "asset id with a space");
  REFUSE(STATUS("A/B"), "field `asset`", "asset id with a slash");
  REFUSE(STATUS("\xC3\x89"), "field `asset`", "non-ASCII asset id");
#undef STATUS
#define ID(i) tx("{'type':'asset.status','chain':'" CHAIN "','signer':'$S','id':'" i "','asset':'A','status':'closed'}")
  ACCEPT(ID("a"), "1-char id");
  ACCEPT(ID("Az09_-"), "id with every class");
  ACCEPT(tx("{'type':'asset.status','chain':'c','signer':'$S','id':'%s','asset':'A','status':'closed'}", rep("x", 64)),
         "64-char id");
  REFUSE(tx("{'type':'asset.status','chain':'c','signer':'$S','id':'%s','asset':'A','status':'closed'}", rep("x", 65)),
         "field `id`: must match ^[A-Za-z0-9_-]{1,64}$", "65-char id");
  REFUSE(ID(""), "field `id`", "empty id");
  REFUSE(ID("a.b"), "field `id`", "id with a dot");
  REFUSE(ID("a b"), "field `id`", "id with a space");
#undef ID
#define CH(c) tx("{'type':'asset.status','chain':'%s','signer':'$S','id':'x','asset':'A','status':'matured'}", c)
  ACCEPT(CH("a"), "1-char chain");
  ACCEPT(CH("0bank.example/x-y/prod.1"), "chain with . / -");
  ACCEPT(CH(rep("a", 64)), "64-char chain");
  REFUSE(CH(rep("a", 65)), "field `chain`: must match ^[a-z0-9][a-z0-9./-]{0,63}$", "65-char chain");
  REFUSE(CH(""), "field `chain`", "empty chain");
  REFUSE(CH("Bank.example"), "field `chain`", "uppercase chain");
  REFUSE(CH("/bank"), "field `chain`", "chain starting with /");
  REFUSE(CH("bank_example"), "field `chain`", "chain with _");
  REFUSE(CH("https://bank"), "field `chain`", "chain with a scheme");
#undef CH
#define JUR(j) tx(HDR("account.open") ",'account':'$A','roles':['investor'],'jurisdiction':'" j "','kyc':false}")
  ACCEPT(JUR("ZZ"), "jurisdiction ZZ");
  REFUSE(JUR("us"), "field `jurisdiction`: must match ^[A-Z]{2}$", "lowercase jurisdiction");
  REFUSE(JUR("USA"), "field `jurisdiction`", "3 letters");
  REFUSE(JUR("U"), "field `jurisdiction`", "1 letter");
  REFUSE(JUR("U1"), "field `jurisdiction`", "letter and digit");
#undef JUR
#define CUR(c) tx(HDR("asset.create") ",'asset':'A','name':'n','kind':'other','currency':'" c "'," CREATE_TAIL \
                  "'risk_weight_pct':0,'rules':{}}")
  ACCEPT(CUR("JPY"), "currency JPY");
  TR_CHECK(TX.kind == TR_KIND_OTHER && strcmp(TX.currency, "JPY") == 0, "currency and kind stored");
  REFUSE(CUR("usd"), "field `currency`: must match ^[A-Z]{3}$", "lowercase currency");
  REFUSE(CUR("US"), "field `currency`", "2-letter currency");
  REFUSE(CUR("USDX"), "field `currency`", "4-letter currency");
  REFUSE(CUR("US1"), "field `currency`", "currency with a digit");
#undef CUR
}

static void test_dates(void) {
#define MAT(d) tx(HDR("asset.update") ",'asset':'A','maturity':'" d "'}")
  static const char *good[] = {"2024-02-29", "2000-02-29", "0001-01-01", "9999-12-31", "2023-12-31", "2024-04-30",
                               "2023-01-31"};
  static const char *bad[] = {"2023-02-29", "2100-02-29", "1900-02-29", "0000-01-01", "2024-13-01", "2024-00-10",
                              "2024-01-00", "2024-04-31", "2024-01-32", "2024-4-01", "2024-04-1", "2024/01/01",
                              "2024-01-01T00:00", " 2024-01-01", "+024-01-01", "20240101", "", "2024-0a-01",
                              "10000-01-01"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    int rc = dec(tx(HDR("asset.update") ",'asset':'A','maturity':'%s'}", good[i]));
    TR_CHECK(rc == 0 && strcmp(TX.maturity, good[i]) == 0, "date %s accepted %s", good[i], ERR.detail);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = dec(tx(HDR("asset.update") ",'asset':'A','maturity':'%s'}", bad[i]));
    TR_CHECK(rc == TR_EINVALID && strstr(ERR.detail, "field `maturity`: must be a real calendar date"),
             "date \"%s\" refused: %s", bad[i], ERR.detail);
  }
  REFUSE(MAT("2024-02-29\\u0000"), "U+0000", "date with escaped NUL");
#undef MAT
}

static void test_text(void) {
#define NAME(s) tx(HDR("asset.create") ",'asset':'A','name':'%s','kind':'bond','currency':'EUR'," CREATE_TAIL \
                   "'risk_weight_pct':0,'rules':{}}", s)
  ACCEPT(NAME(rep("a", 200)), "name of 200 ASCII chars");
  REFUSE(NAME(rep("a", 201)), "field `name`: must be 1 to 200 characters", "name of 201 ASCII chars");
  ACCEPT(NAME(rep("\xC3\xA9", 200)), "name of 200 two-byte chars");
  TR_CHECK(strlen(TX.name) == 400, "name stored as 400 bytes of UTF-8");
  REFUSE(NAME(rep("\xC3\xA9", 201)), "1 to 200 characters", "name of 201 two-byte chars");
  ACCEPT(NAME(rep("\xF0\x9F\x98\x80", 200)), "name of 200 four-byte chars (800 bytes)");
  TR_CHECK(strlen(TX.name) == 800, "800-byte name stored whole");
  REFUSE(NAME(rep("\xF0\x9F\x98\x80", 201)), "1 to 200 characters", "name of 201 four-byte chars");
  ACCEPT(NAME(rep("\\u00e9", 200)), "200 escaped chars count after unescaping");
  REFUSE(NAME(rep("\\u00e9", 201)), "1 to 200 characters", "201 escaped chars");
  ACCEPT(NAME(rep("\\uD83D\\uDE00", 200)), "200 escaped surrogate pairs count once each");
  REFUSE(NAME(rep("\\uD83D\\uDE00", 201)), "1 to 200 characters", "201 escaped surrogate pairs");
  REFUSE(NAME(""), "field `name`: must be 1 to 200 characters", "empty name");
#undef NAME
#define MEMO(s) tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':1,'memo':'%s'}", s)
  ACCEPT(MEMO(""), "empty memo");
  TR_CHECK(TX.has_memo && TX.memo[0] == '\0', "empty memo present");
  ACCEPT(MEMO(rep("\xE2\x82\xAC", 200)), "memo of 200 three-byte chars");
  REFUSE(MEMO(rep("\xE2\x82\xAC", 201)), "field `memo`: must be at most 200 characters", "memo of 201 chars");
  REFUSE(tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':1,'memo':null}"), "field `memo`: must be a string, not null",
         "null memo");
#undef MEMO
#define REASON(s) tx(HDR("account.recover") ",'account':'$A','to':'$B','reason':'%s'}", s)
  ACCEPT(REASON("x"), "1-char reason");
  ACCEPT(REASON(rep("\xC3\xA9", 200)), "200-char reason");
  REFUSE(REASON(""), "field `reason`: must be 1 to 200 characters", "empty reason");
  REFUSE(REASON(rep("\xC3\xA9", 201)), "field `reason`", "201-char reason");
  REFUSE(tx(HDR("transfer.force") ",'asset':'A','from':'$A','to':'$B','units':1,'reason':''}"), "field `reason`",
         "empty force reason");
#undef REASON
#define RATING(s) tx(HDR("asset.update") ",'asset':'A','rating':'%s'}", s)
  ACCEPT(RATING("AAAAAAAA"), "8-char rating");
  ACCEPT(RATING(rep("\xF0\x9F\x98\x80", 8)), "8 four-byte chars rating");
  TR_CHECK(strlen(TX.rating) == 32, "32-byte rating stored whole");
  REFUSE(RATING("AAAAAAAAA"), "field `rating`: must be 1 to 8 characters", "9-char rating");
  REFUSE(RATING(""), "field `rating`", "empty rating");
#undef RATING
}

static void test_roles_and_enums(void) {
#define ROLES(r) tx(HDR("account.open") ",'account':'$A','roles':[" r "],'jurisdiction':'US','kyc':true}")
  ACCEPT(ROLES(""), "empty roles");
  TR_CHECK(TX.has_roles && TX.roles == 0, "empty roles decode to 0");
  ACCEPT(ROLES("'investor','issuer','agent','admin'"), "all roles in any order");
  TR_CHECK(TX.roles == (TR_ROLE_ADMIN | TR_ROLE_AGENT | TR_ROLE_ISSUER | TR_ROLE_INVESTOR), "all role bits");
  REFUSE(ROLES("'admin','issuer','admin'"), "field `roles`: duplicate role \"admin\"", "duplicate role");
  REFUSE(ROLES("'root'"), "field `roles[0]`: unknown role \"root\"", "unknown role");
  REFUSE(ROLES("'admin','Admin'"), "field `roles[1]`: unknown role", "role in wrong case");
  REFUSE(ROLES("'admin',1"), "field `roles[1]`: must be a string", "role as a number");
  REFUSE(tx(HDR("account.open") ",'account':'$A','roles':'admin','jurisdiction':'US','kyc':true}"),
         "field `roles`: must be an array", "roles as a string");
#undef ROLES
  REFUSE(tx(HDR("account.open") ",'account':'$A','roles':[],'jurisdiction':'US','kyc':'true'}"),
         "field `kyc`: must be true or false", "kyc as a string");
  REFUSE(tx(HDR("account.open") ",'account':'$A','roles':[],'jurisdiction':'US','kyc':1}"), "field `kyc`", "kyc as 1");
  static const char *kinds[] = {"term_loan", "revolving", "receivable", "mortgage", "bond", "other"};
  for (int k = 0; k < TR_KIND_COUNT; k++) {
    dec(tx(HDR("asset.create") ",'asset':'A','name':'n','kind':'%s','currency':'EUR'," CREATE_TAIL
                               "'risk_weight_pct':0,'rules':{}}", kinds[k]));
    TR_CHECK(TX.kind == (tr_asset_kind_t)k && strcmp(tr_asset_kind_name(TX.kind), kinds[k]) == 0, "asset kind %s", kinds[k]);
  }
  REFUSE(tx(HDR("asset.create") ",'asset':'A','name':'n','kind':'interest','currency':'EUR'," CREATE_TAIL
                                "'risk_weight_pct':0,'rules':{}}"),
         "field `kind`: must be one of term_loan", "distribution kind in asset.create");
  static const char *dkinds[] = {"interest", "principal", "other"};
  for (int k = 0; k < TR_DIST_KIND_COUNT; k++) {
    dec(tx(HDR("asset.distribute") ",'asset':'A','amount':1,'kind':'%s'}", dkinds[k]));
    TR_CHECK(TX.dist_kind == (tr_dist_kind_t)k && strcmp(tr_dist_kind_name(TX.dist_kind), dkinds[k]) == 0,
             "distribution kind %s", dkinds[k]);
  }
  REFUSE(tx(HDR("asset.distribute") ",'asset':'A','amount':1,'kind':'bond'}"), "field `kind`: must be one of interest",
         "asset kind in asset.distribute");
  static const char *statuses[] = {"active", "matured", "defaulted", "paused", "closed"};
  for (int s = 0; s < TR_STATUS_COUNT; s++) {
    dec(tx(HDR("asset.status") ",'asset':'A','status':'%s'}", statuses[s]));
    TR_CHECK(strcmp(tr_status_name(TX.status), statuses[s]) == 0, "status %s", statuses[s]);
  }
  REFUSE(tx(HDR("asset.status") ",'asset':'A','status':'Active'}"), "field `status`: must be one of", "status in wrong case");
  REFUSE(tx(HDR("asset.status") ",'asset':'A','status':'frozen'}"), "field `status`", "unknown status");
}

static void test_cross_field(void) {
  REFUSE(tx(HDR("account.update") ",'account':'$A'}"),
         "account.update needs at least one of `roles`, `jurisdiction`, `kyc`, `frozen`", "account.update with nothing");
  REFUSE(tx(HDR("account.update") ",'account':'$A','expires':5}"), "at least one of", "account.update with only expires");
  REFUSE(tx(HDR("asset.update") ",'asset':'A'}"),
         "asset.update needs at least one of `rating`, `risk_weight_pct`, `rules`, `documents`, `maturity`",
         "asset.update with nothing");
  REFUSE(tx(HDR("transfer") ",'asset':'A','to':'$S','units':1}"), "field `to`: must differ from `signer`",
         "transfer to the signer");
  ACCEPT(tx(HDR("asset.issue") ",'asset':'A','to':'$S','units':1}"), "issue to the signer is an envelope-valid tx");
  REFUSE(tx(HDR("transfer.force") ",'asset':'A','from':'$A','to':'$A','units':1,'reason':'r'}"),
         "field `to`: must differ from `from`", "force from = to");
  ACCEPT(tx(HDR("transfer.force") ",'asset':'A','from':'$A','to':'$S','units':1,'reason':'r'}"), "force to the signer");
  REFUSE(tx(HDR("account.recover") ",'account':'$A','to':'$A','reason':'r'}"), "field `to`: must differ from `account`",
         "recover to the same key");
  /* The first problem in document order wins, every time. */
  const char *two = tx(HDR("transfer") ",'asset':'a','to':'$Z','units':0}");
  char first[sizeof ERR.detail];
  dec(two);
  snprintf(first, sizeof first, "%s", ERR.detail);
  dec(two);
  TR_CHECK(strstr(first, "field `asset`") && strcmp(first, ERR.detail) == 0, "same bytes, same first detail: %s", first);
  dec(tx(HDR("transfer") ",'units':0,'to':'$Z','asset':'a'}"));
  TR_CHECK(strstr(ERR.detail, "field `units`") != NULL, "reordered members: units named first: %s", ERR.detail);
  dec(tx(HDR("transfer") ",'units':5}"));
  TR_CHECK(strstr(ERR.detail, "missing field `asset`") != NULL, "missing fields in table order: %s", ERR.detail);
}

static void test_genesis(void) {
  ACCEPT(tx(GENESIS), "canonical genesis");
  REFUSE(tx("{'type':'genesis', 'chain':'" CHAIN "','signer':'$N','id':'genesis','admin':'$A'}"), "genesis: bytes must be exactly",
         "genesis with a space");
  REFUSE(tx(GENESIS "\n"), "genesis: bytes must be exactly", "genesis with a trailing newline");
  REFUSE(tx("{'chain':'" CHAIN "','type':'genesis','signer':'$N','id':'genesis','admin':'$A'}"), "genesis: bytes must be exactly",
         "genesis in another member order");
  REFUSE(tx("{'type':'genesis','chain':'" CHAIN "','signer':'$N','id':'genesis2','admin':'$A'}"), "genesis: bytes must be exactly",
         "genesis with another id");
  REFUSE(tx("{'type':'genesis','chain':'bank.example\\/tranche\\/test','signer':'$N','id':'genesis','admin':'$A'}"),
         "genesis: bytes must be exactly", "genesis with an escaped slash");
  REFUSE(tx("{'type':'genesis','chain':'" CHAIN "','signer':'$N','id':'genesis','admin':'$A','expires':5}"),
         "genesis: bytes must be exactly", "genesis with expires");
  REFUSE(tx("{'type':'genesis','chain':'" CHAIN "','signer':'$N','id':'genesis','admin':'$N'}"),
         "field `admin`: must differ from `signer`", "genesis admin = node key");
  REFUSE(tx("{'type':'genesis','chain':'" CHAIN "','signer':'$N','id':'genesis','admin':'$A','memo':'x'}"),
         "unknown field `memo`", "genesis with an extra field");
}

/* ---- signatures and names ---- */

static void test_signatures(void) {
  const char *b = tx(HDR("transfer") ",'asset':'LOAN-1','to':'$A','units':5}");
  size_t n = strlen(b);
  char bytes[1024];
  memcpy(bytes, b, n + 1);
  uint8_t sig[64], sig2[64];
  TR_CHECK(tr_tx_sign(bytes, n, SK[KS], sig) == 0, "sign");
  TR_CHECK(tr_tx_verify(bytes, n, &PK[KS], sig) == 0, "verify the signer's signature");
  tr_tx_sign(bytes, n, SK[KS], sig2);
  TR_CHECK(memcmp(sig, sig2, 64) == 0, "Ed25519 signatures are deterministic");
  /* Independent construction of the message: "TRANCHE/TX/1\n" || bytes. */
  char msg[1100];
  memcpy(msg, "TRANCHE/TX/1\n", 13);
  memcpy(msg + 13, bytes, n);
  TR_CHECK(crypto_sign_verify_detached(sig, (uint8_t *)msg, 13 + n, PK[KS].b) == 0, "signature covers the domain prefix");
  crypto_sign_detached(sig2, NULL, (uint8_t *)bytes, n, SK[KS]);
  TR_CHECK(tr_tx_verify(bytes, n, &PK[KS], sig2) == TR_EBAD_SIGNATURE, "a signature without the prefix fails");
  size_t tampered_ok = 0;
  for (size_t i = 0; i < n; i++) {
    bytes[i] ^= 0x01;
    tampered_ok += tr_tx_verify(bytes, n, &PK[KS], sig) == 0;
    bytes[i] ^= 0x01;
  }
  TR_CHECK(tampered_ok == 0, "every tampered byte fails (%zu passed)", tampered_ok);
  TR_CHECK(tr_tx_verify(bytes, n - 1, &PK[KS], sig) == TR_EBAD_SIGNATURE, "a dropped byte fails");
  sig[10] ^= 0x40;
  TR_CHECK(tr_tx_verify(bytes, n, &PK[KS], sig) == TR_EBAD_SIGNATURE, "a tampered signature fails");
  sig[10] ^= 0x40;
  TR_CHECK(tr_tx_verify(bytes, n, &PK[KA], sig) == TR_EBAD_SIGNATURE, "another key fails");
  TR_CHECK(tr_tx_verify(bytes, n, &PK[KZ], sig) == TR_EBAD_SIGNATURE, "a small-order key fails");
  TR_CHECK(tr_tx_verify(bytes, TR_TX_BYTES_MAX + 1, &PK[KS], sig) == TR_EBAD_SIGNATURE, "over 16 KiB fails");
  TR_CHECK(tr_tx_verify(NULL, 5, &PK[KS], sig) == TR_EBAD_SIGNATURE, "NULL bytes fail");
  TR_CHECK(tr_tx_sign(bytes, TR_TX_BYTES_MAX + 1, SK[KS], sig2) == TR_EARG, "signing over 16 KiB is refused");
  char *big = malloc(TR_TX_BYTES_MAX);
  memset(big, 'x', TR_TX_BYTES_MAX);
  TR_CHECK(tr_tx_sign(big, TR_TX_BYTES_MAX, SK[KN], sig) == 0 && tr_tx_verify(big, TR_TX_BYTES_MAX, &PK[KN], sig) == 0,
           "16 KiB sign/verify roundtrip");
  free(big);
}

static void test_names(void) {
  int named = 0;
  for (int t = 0; t < TR_TX_TYPE_COUNT; t++) {
    const char *name = tr_tx_type_name((tr_tx_type_t)t);
    if (name == NULL) continue;
    if (t == TR_TX_GENESIS) {
      named += dec(tx(GENESIS)) == 0 && TX.type == TR_TX_GENESIS;
      continue;
    }
    /* Decoding a bare header names the type in the detail's first missing field. */
    dec(tx("{'type':'%s','chain':'c','signer':'$S','id':'x'}", name));
    named += strstr(ERR.detail, "missing field") != NULL || strstr(ERR.detail, "at least one") != NULL;
  }
  TR_CHECK(named == TR_TX_TYPE_COUNT, "every type has a wire name that decodes (%d)", named);
  TR_CHECK(tr_tx_type_name(TR_TX_TYPE_COUNT) == NULL && tr_status_name(TR_STATUS_COUNT) == NULL &&
               tr_asset_kind_name(TR_KIND_COUNT) == NULL && tr_dist_kind_name(TR_DIST_KIND_COUNT) == NULL,
           "out-of-range names are NULL");
  TR_CHECK_EQ_STR(tr_tx_type_name(TR_TX_HOLDING_FREEZE), "holding.freeze", "type name");
  char out[TR_ROLES_JSON_BYTES_MAX];
  tr_roles_json(0, out, sizeof out);
  TR_CHECK_EQ_STR(out, "[]", "no roles");
  tr_roles_json(TR_ROLE_INVESTOR | TR_ROLE_ADMIN | TR_ROLE_ISSUER, out, sizeof out);
  TR_CHECK_EQ_STR(out, "[\"admin\",\"issuer\",\"investor\"]", "roles in contract order");
  tr_roles_json(0xFu | 0x100u, out, sizeof out);
  TR_CHECK_EQ_STR(out, "[\"admin\",\"agent\",\"issuer\",\"investor\"]", "all roles fit TR_ROLES_JSON_BYTES_MAX");
  char small[8] = "junk";
  tr_roles_json(TR_ROLE_ADMIN | TR_ROLE_AGENT, small, sizeof small);
  TR_CHECK_EQ_STR(small, "", "too small a buffer gets an empty string, never half an array");
  tr_roles_json(TR_ROLE_AGENT, small, 0);
  TR_CHECK(small[0] == '\0', "out_len 0 writes nothing");
  TR_CHECK(tr_tx_decode(tx(GENESIS), strlen(tx(GENESIS)), &TX, NULL) == 0, "err may be NULL");
}

int main(void) {
  if (sodium_init() < 0) return 1;
  keys_init();
  test_examples_decode();
  test_example_fields();
  test_mutations();
  test_size_and_json();
  test_type();
  test_integers();
  test_ranges();
  test_jurisdictions_and_documents();
  test_keys();
  test_key_cache_set();
  test_formats();
  test_dates();
  test_text();
  test_roles_and_enums();
  test_cross_field();
  test_genesis();
  test_signatures();
  test_names();
  return tr_test_done();
}
