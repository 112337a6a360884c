/* tr_audit.c — the offline audit's replay (tr_ledger_replay): the journal's
 * rules re-run by tr_ledger.c against plain in-memory state, and every
 * derived row checked against the stored database.
 *
 * Workload: one pass over up to millions of entries, mostly transfers, each
 * a handful of hash lookups.  The stored database is only ever scanned in key
 * order: entries by seq as they are replayed; receipts, distributions and
 * payouts in step with the replay, since the rules produce them in key order;
 * accounts, assets, holdings, account history, Merkle nodes and meta once the
 * journal is replayed.  No second copy of the journal is kept: what stays in
 * memory is the live state plus, per entry, its (signer, id) digest, its
 * account-history rows and its Merkle nodes (~120 bytes an entry).
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_ledger.h"
#include "tr_merkle.h"
#include "tr_note.h"
#include "tr_query.h"
#include "tr_state.h"

#define NONE UINT32_MAX
#define REPLAY_PROGRESS_ENTRIES 1000 /* progress callback period */
#define META_MAX 8                   /* meta rows genesis writes (two), with room */

/* ------------------------------------------------------------------------ */
/* Growable arrays and an open-addressing index of record numbers            */

/* Array v (n used, *cap allocated) with room for one more element: v or its
 * new place, or NULL when memory runs out (then v is untouched).  Record
 * numbers are uint32_t: no array grows past NONE elements. */
static void *grown(void *v, size_t n, size_t *cap, size_t elem) {
  if (n < *cap) return v;
  size_t want = *cap ? *cap * 2 : 64;
  if (want > SIZE_MAX / elem || want > NONE) return NULL;
  void *p = realloc(v, want * elem);
  if (p != NULL) *cap = want;
  return p;
}

typedef struct {
  uint64_t hash;
  uint32_t rec;                 /* record number, NONE = empty slot */
} slot_t;

/* Maps a key's hash to record numbers; the caller confirms the key. Load ≤ 1/2. */
typedef struct {
  slot_t *slots;
  size_t mask, used;
} index_t;

static int index_grow(index_t *ix) {
  size_t cap = ix->slots ? (ix->mask + 1) * 2 : 1024;
  slot_t *s = malloc(cap * sizeof *s);
  if (s == NULL) return TR_ENOMEM;
  for (size_t i = 0; i < cap; i++) s[i].rec = NONE;
  for (size_t i = 0; ix->slots && i <= ix->mask; i++) {
    if (ix->slots[i].rec == NONE) continue;
    size_t j = ix->slots[i].hash & (cap - 1);
    while (s[j].rec != NONE) j = (j + 1) & (cap - 1);
    s[j] = ix->slots[i];
  }
  free(ix->slots);
  ix->slots = s;
  ix->mask = cap - 1;
  return 0;
}

static int index_add(index_t *ix, uint64_t hash, uint32_t rec) {
  if ((ix->slots == NULL || 2 * (ix->used + 1) > ix->mask + 1) && index_grow(ix) != 0) return TR_ENOMEM;
  size_t j = hash & ix->mask;
  while (ix->slots[j].rec != NONE) j = (j + 1) & ix->mask;
  ix->slots[j].hash = hash;
  ix->slots[j].rec = rec;
  ix->used++;
  return 0;
}

/* Walks the records whose key has `hash`: call with *pos = hash & mask first. */
static uint32_t index_next(const index_t *ix, uint64_t hash, size_t *pos) {
  if (ix->slots == NULL) return NONE;
  for (;; *pos = (*pos + 1) & ix->mask) {
    const slot_t *s = &ix->slots[*pos];
    if (s->rec == NONE) return NONE;
    if (s->hash == hash) {
      *pos = (*pos + 1) & ix->mask;
      return s->rec;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* The in-memory state                                                       */

/* Every key the journal names: accounts, and keys only seen in history rows
 * (the node key signs genesis but is never an account). */
typedef struct {
  tr_account_t a;               /* a.id is the key */
  bool is_account;
  uint32_t holdings;            /* this key's first holding, NONE */
  uint32_t rank;                /* position in key order (account history sort) */
} key_rec_t;

typedef struct {
  tr_asset_t a;                 /* a.documents_json owned */
  uint32_t holdings;            /* this asset's first holding, NONE */
} asset_rec_t;

/* Holdings are never removed: one that drops to 0 stays, as units 0. */
typedef struct {
  uint32_t asset, key, next_of_asset, next_of_key;
  tr_holding_t h;
} holding_rec_t;

typedef struct {
  uint32_t key;                 /* a key record, later its rank */
  uint64_t seq;
} history_t;

/* (signer, id) → seq, by a 128-bit keyed digest; seq 0 = empty. */
typedef struct {
  uint8_t digest[16];
  uint64_t seq;
} sigid_slot_t;

/* A stored table read in key order in step with the replay. */
typedef struct {
  sqlite3_stmt *st;
  const char *table;
} cursor_t;

typedef struct {
  tr_store_t *src;              /* the audited database, read-only, in one read transaction */
  uint8_t hash_key[crypto_shorthash_KEYBYTES], digest_key[crypto_shorthash_siphashx24_KEYBYTES];

  uint64_t size, head_time;
  uint8_t head_hash[32];

  sigid_slot_t *sigids;
  size_t sigid_mask, sigids_used;

  key_rec_t *keys;
  size_t keys_n, keys_cap, accounts_n, admins_unfrozen;
  index_t key_ix;
  asset_rec_t *assets;
  size_t assets_n, assets_cap;
  index_t asset_ix;
  holding_rec_t *holdings;
  size_t holdings_n, holdings_cap, holdings_positive;
  index_t holding_ix;
  history_t *history;
  uint64_t history_through;     /* stored history_progress, once read */
  size_t history_n, history_cap;

  /* Merkle: level L >= 1 node idx is levels[L][idx] (produced in idx order). */
  uint8_t (*levels[TR_MERKLE_PATH_MAX + 1])[32];
  size_t level_n[TR_MERKLE_PATH_MAX + 1], level_cap[TR_MERKLE_PATH_MAX + 1];
  uint8_t frontier[TR_MERKLE_PATH_MAX + 1][32]; /* last complete node of each level, level 0 too */

  struct { char key[32], value[128]; } meta[META_MAX];
  size_t meta_n, meta_checked;

  cursor_t receipts, distributions, payouts;

  tr_note_vkey_t node_vkey;     /* genesis's node key under the chain id: checkpoints verify with it */
  bool node_vkey_set;

  /* The first difference found: the replay reports it. */
  uint64_t bad_seq;
  char message[256];
} audit_t;

static int differ(audit_t *au, uint64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int differ(audit_t *au, uint64_t seq, const char *fmt, ...) {
  if (au->message[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(au->message, sizeof au->message, fmt, ap);
    va_end(ap);
    au->bad_seq = seq;
  }
  return TR_ECORRUPT;
}

static uint64_t hash_bytes(const audit_t *au, const void *p, size_t n) {
  uint64_t h;
  crypto_shorthash((unsigned char *)&h, p, n, au->hash_key);
  return h;
}

/* Record numbers are dense and not chosen by anyone: a mix suffices. */
static uint64_t hash_pair(uint32_t a, uint32_t b) {
  uint64_t x = ((uint64_t)a << 32 | b) + 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

static uint32_t key_find(const audit_t *au, const tr_key_t *k) {
  uint64_t h = hash_bytes(au, k->b, 32);
  size_t pos = h & au->key_ix.mask;
  for (uint32_t r; (r = index_next(&au->key_ix, h, &pos)) != NONE;)
    if (memcmp(au->keys[r].a.id.b, k->b, 32) == 0) return r;
  return NONE;
}

/* The record of key k, made (not an account yet) when new. */
static int key_intern(audit_t *au, const tr_key_t *k, uint32_t *out) {
  if ((*out = key_find(au, k)) != NONE) return 0;
  key_rec_t *keys = grown(au->keys, au->keys_n, &au->keys_cap, sizeof *keys);
  if (keys == NULL) return TR_ENOMEM;
  au->keys = keys;
  uint32_t r = (uint32_t)au->keys_n;
  if (index_add(&au->key_ix, hash_bytes(au, k->b, 32), r) != 0) return TR_ENOMEM;
  memset(&au->keys[r], 0, sizeof au->keys[r]);
  au->keys[r].a.id = *k;
  au->keys[r].holdings = NONE;
  au->keys_n++;
  *out = r;
  return 0;
}

static uint32_t asset_find(const audit_t *au, const char *id) {
  uint64_t h = hash_bytes(au, id, strlen(id));
  size_t pos = h & au->asset_ix.mask;
  for (uint32_t r; (r = index_next(&au->asset_ix, h, &pos)) != NONE;)
    if (strcmp(au->assets[r].a.id, id) == 0) return r;
  return NONE;
}

static uint32_t holding_find(const audit_t *au, uint32_t asset, uint32_t key) {
  uint64_t h = hash_pair(asset, key);
  size_t pos = h & au->holding_ix.mask;
  for (uint32_t r; (r = index_next(&au->holding_ix, h, &pos)) != NONE;)
    if (au->holdings[r].asset == asset && au->holdings[r].key == key) return r;
  return NONE;
}

static bool unfrozen_admin(const key_rec_t *k) {
  return k->is_account && (k->a.roles & TR_ROLE_ADMIN) && !k->a.frozen;
}

/* ---- (signer, id) ---- */

static void sigid_digest(const audit_t *au, const tr_key_t *signer, const char *id, uint8_t out[16]) {
  uint8_t in[32 + TR_TX_ID_CHARS_MAX];
  size_t n = strlen(id);
  if (n > TR_TX_ID_CHARS_MAX) n = TR_TX_ID_CHARS_MAX; /* decoded ids are never longer */
  memcpy(in, signer->b, 32);
  memcpy(in + 32, id, n);
  crypto_shorthash_siphashx24(out, in, 32 + n, au->digest_key);
}

static sigid_slot_t *sigid_slot(audit_t *au, const uint8_t d[16]) {
  uint64_t h;
  memcpy(&h, d, sizeof h);
  for (size_t j = h & au->sigid_mask;; j = (j + 1) & au->sigid_mask)
    if (au->sigids[j].seq == 0 || memcmp(au->sigids[j].digest, d, 16) == 0) return &au->sigids[j];
}

static int sigid_add(audit_t *au, const uint8_t d[16], uint64_t seq) {
  if (au->sigids == NULL || 2 * (au->sigids_used + 1) > au->sigid_mask + 1) {
    size_t cap = au->sigids ? (au->sigid_mask + 1) * 2 : 4096;
    sigid_slot_t *old = au->sigids;
    size_t old_cap = old ? au->sigid_mask + 1 : 0;
    if ((au->sigids = calloc(cap, sizeof *au->sigids)) == NULL) {
      au->sigids = old;
      return TR_ENOMEM;
    }
    au->sigid_mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++)
      if (old[i].seq != 0) *sigid_slot(au, old[i].digest) = old[i];
    free(old);
  }
  sigid_slot_t *s = sigid_slot(au, d);
  memcpy(s->digest, d, 16);
  s->seq = seq;
  au->sigids_used++;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Cursors: stored per-entry rows, checked as the replay produces them       */

static int cursor_open(audit_t *au, cursor_t *c, const char *table, const char *sql) {
  c->table = table;
  if (sqlite3_prepare_v2(tr_store_db(au->src), sql, -1, &c->st, NULL) != SQLITE_OK)
    return differ(au, 0, "cannot read stored %s: %s", table, tr_store_errmsg(au->src));
  return 0;
}

/* The next stored row, which must exist since the replay produced one. */
static int cursor_step(audit_t *au, cursor_t *c, uint64_t seq) {
  int rc = sqlite3_step(c->st);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return differ(au, seq, "stored %s lacks the row of entry %llu", c->table, (unsigned long long)seq);
  return differ(au, seq, "cannot read stored %s: %s", c->table, tr_store_errmsg(au->src));
}

/* At the end: the stored table must hold nothing more. */
static int cursor_finish(audit_t *au, cursor_t *c) {
  int rc = sqlite3_step(c->st);
  if (rc == SQLITE_DONE) return 0;
  if (rc == SQLITE_ROW)
    return differ(au, (uint64_t)sqlite3_column_int64(c->st, 0), "stored %s has a row the replay does not (seq %lld)",
                  c->table, (long long)sqlite3_column_int64(c->st, 0));
  return differ(au, 0, "cannot read stored %s: %s", c->table, tr_store_errmsg(au->src));
}

/* Column col holds exactly these bytes, stored as a blob (keys, hashes). */
static bool column_blob_is(sqlite3_stmt *st, int col, const void *bytes, size_t n) {
  if (sqlite3_column_type(st, col) != SQLITE_BLOB) return false;
  const void *p = sqlite3_column_blob(st, col);
  return (size_t)sqlite3_column_bytes(st, col) == n && (n == 0 || memcmp(p, bytes, n) == 0);
}

/* Column col holds exactly the text s. */
static bool column_text_is(sqlite3_stmt *st, int col, const char *s) {
  if (sqlite3_column_type(st, col) != SQLITE_TEXT) return false;
  const unsigned char *p = sqlite3_column_text(st, col);
  size_t n = strlen(s);
  return p != NULL && (size_t)sqlite3_column_bytes(st, col) == n && memcmp(p, s, n) == 0;
}

static bool column_int_is(sqlite3_stmt *st, int col, uint64_t v) {
  return sqlite3_column_type(st, col) == SQLITE_INTEGER && (uint64_t)sqlite3_column_int64(st, col) == v;
}

/* ------------------------------------------------------------------------ */
/* tr_state_ops_t in memory                                                  */

static int mem_head(void *ctx, uint64_t *size, uint8_t hash[32], uint64_t *time) {
  audit_t *au = ctx;
  *size = au->size;
  if (hash) memcpy(hash, au->head_hash, 32);
  if (time) *time = au->head_time;
  return 0;
}

/* Level L >= 1 nodes completed by the leaf, kept for the final comparison. */
static int merkle_keep(audit_t *au, const tr_merkle_node_t *n) {
  unsigned l = n->level;
  if (l == 0 || l > TR_MERKLE_PATH_MAX || n->index != au->level_n[l]) return TR_ECORRUPT;
  uint8_t(*nodes)[32] = grown(au->levels[l], au->level_n[l], &au->level_cap[l], 32);
  if (nodes == NULL) return TR_ENOMEM;
  au->levels[l] = nodes;
  memcpy(au->levels[l][au->level_n[l]++], n->hash, 32);
  return 0;
}

static int frontier_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32]) {
  audit_t *au = ctx;
  (void)index; /* tr_merkle_append asks only for the left sibling: the last node of its level */
  if (level > TR_MERKLE_PATH_MAX) return TR_ECORRUPT;
  memcpy(out, au->frontier[level], 32);
  return 0;
}

static int mem_append(void *ctx, uint64_t time, const uint8_t txid[32], const uint8_t sig[64], const tr_key_t *signer,
                      const char *tx_id, const char *tx, size_t tx_len, tr_entry_t *out) {
  audit_t *au = ctx;
  (void)tx, (void)tx_len;
  if (time < au->head_time) return TR_EARG;
  memset(out, 0, sizeof *out);
  out->seq = au->size + 1;
  out->time = time;
  memcpy(out->prev, au->head_hash, 32);
  memcpy(out->txid, txid, 32);
  memcpy(out->sig, sig, 64);
  out->signer = *signer;
  tr_entry_hash(out->seq, time, out->prev, txid, sig, out->hash);
  tr_merkle_node_t nodes[TR_MERKLE_PATH_MAX + 1];
  size_t n = 0;
  int rc = tr_merkle_append(frontier_get, au, out->seq - 1, out->hash, nodes, &n);
  for (size_t i = 0; i < n && rc == 0; i++) {
    memcpy(au->frontier[nodes[i].level], nodes[i].hash, 32);
    if (nodes[i].level > 0) rc = merkle_keep(au, &nodes[i]);
  }
  uint8_t d[16];
  sigid_digest(au, signer, tx_id, d);
  if (rc == 0) rc = sigid_add(au, d, out->seq);
  if (rc != 0) return rc;
  au->size = out->seq;
  au->head_time = time;
  memcpy(au->head_hash, out->hash, 32);
  return 0;
}

/* Any earlier entry with this (signer, id) is a journal that repeats itself:
 * a node refuses or deduplicates such a tx, it never appends it.  Keys are
 * 128-bit keyed digests: two different (signer, id) pairs would have to
 * collide (~2^-128 a pair) for a sound journal to be reported unsound. */
static int mem_entry_by_signer_id(void *ctx, const tr_key_t *signer, const char *id, uint64_t *seq, uint8_t txid[32]) {
  audit_t *au = ctx;
  (void)txid;
  uint8_t d[16];
  if (au->sigids == NULL) return TR_ENOT_FOUND;
  sigid_digest(au, signer, id, d);
  sigid_slot_t *s = sigid_slot(au, d);
  if (s->seq == 0) return TR_ENOT_FOUND;
  *seq = s->seq;
  return differ(au, au->size + 1, "tx repeats the signer and id of entry %llu", (unsigned long long)s->seq);
}

static int mem_entry_get(void *ctx, uint64_t seq, tr_entry_t *e) {
  (void)ctx, (void)seq, (void)e;
  return TR_ECORRUPT; /* asked only for duplicates, which mem_entry_by_signer_id refuses */
}

static int mem_receipt_get(void *ctx, uint64_t seq, char **json) {
  (void)ctx, (void)seq, (void)json;
  return TR_ECORRUPT;
}

static int mem_receipt_put(void *ctx, uint64_t seq, const char *json) {
  audit_t *au = ctx;
  sqlite3_stmt *st = au->receipts.st;
  int rc = cursor_step(au, &au->receipts, seq);
  if (rc == 0 && !(column_int_is(st, 0, seq) && column_text_is(st, 1, json)))
    rc = differ(au, seq, "stored receipt of entry %llu differs from replay", (unsigned long long)seq);
  return rc;
}

static int mem_meta_put(void *ctx, const char *key, const char *value) {
  audit_t *au = ctx;
  if (au->meta_n == META_MAX || strlen(key) >= sizeof au->meta[0].key || strlen(value) >= sizeof au->meta[0].value)
    return TR_ELIMIT;
  snprintf(au->meta[au->meta_n].key, sizeof au->meta[0].key, "%s", key);
  snprintf(au->meta[au->meta_n].value, sizeof au->meta[0].value, "%s", value);
  au->meta_n++;
  return 0;
}

static int mem_account_get(void *ctx, const tr_key_t *id, tr_account_t *a) {
  audit_t *au = ctx;
  uint32_t r = key_find(au, id);
  if (r == NONE || !au->keys[r].is_account) return TR_ENOT_FOUND;
  *a = au->keys[r].a;
  return 0;
}

static int mem_account_put(void *ctx, const tr_account_t *a) {
  audit_t *au = ctx;
  uint32_t r;
  if (key_intern(au, &a->id, &r) != 0) return TR_ENOMEM;
  key_rec_t *k = &au->keys[r];
  au->admins_unfrozen -= unfrozen_admin(k);
  au->accounts_n += !k->is_account;
  k->is_account = true;
  k->a = *a;
  au->admins_unfrozen += unfrozen_admin(k);
  return 0;
}

static int mem_admins_unfrozen_except(void *ctx, const tr_key_t *except, uint64_t *count) {
  audit_t *au = ctx;
  uint32_t r = key_find(au, except);
  *count = au->admins_unfrozen - (r != NONE && unfrozen_admin(&au->keys[r]));
  return 0;
}

static int mem_account_entry_add(void *ctx, const tr_key_t *account, uint64_t seq) {
  audit_t *au = ctx;
  uint32_t r;
  history_t *history = grown(au->history, au->history_n, &au->history_cap, sizeof *history);
  if (history == NULL) return TR_ENOMEM;
  au->history = history;
  if (key_intern(au, account, &r) != 0) return TR_ENOMEM;
  au->history[au->history_n++] = (history_t){r, seq}; /* repeats are dropped when sorted */
  return 0;
}

static int asset_copy(tr_asset_t *to, const tr_asset_t *from) {
  char *docs = strdup(from->documents_json ? from->documents_json : "[]");
  if (docs == NULL) return TR_ENOMEM;
  *to = *from;
  to->documents_json = docs;
  return 0;
}

static int mem_asset_get(void *ctx, const char *id, tr_asset_t *a) {
  audit_t *au = ctx;
  uint32_t r = asset_find(au, id);
  if (r == NONE) return TR_ENOT_FOUND;
  return asset_copy(a, &au->assets[r].a);
}

static int mem_asset_put(void *ctx, const tr_asset_t *a) {
  audit_t *au = ctx;
  uint32_t r = asset_find(au, a->id);
  tr_asset_t copy;
  if (asset_copy(&copy, a) != 0) return TR_ENOMEM;
  if (r == NONE) {
    asset_rec_t *assets = grown(au->assets, au->assets_n, &au->assets_cap, sizeof *assets);
    if (assets != NULL) au->assets = assets;
    if (assets == NULL || index_add(&au->asset_ix, hash_bytes(au, a->id, strlen(a->id)), (uint32_t)au->assets_n) != 0) {
      tr_asset_clear(&copy);
      return TR_ENOMEM;
    }
    r = (uint32_t)au->assets_n++;
    au->assets[r].holdings = NONE;
  } else {
    tr_asset_clear(&au->assets[r].a);
  }
  au->assets[r].a = copy;
  return 0;
}

static int mem_assets_reissue(void *ctx, const tr_key_t *from, const tr_key_t *to) {
  audit_t *au = ctx; /* account.recover is rare: a scan of the assets is fine */
  for (size_t i = 0; i < au->assets_n; i++)
    if (memcmp(au->assets[i].a.issuer.b, from->b, 32) == 0) au->assets[i].a.issuer = *to;
  return 0;
}

static int mem_holding_get(void *ctx, const char *asset, const tr_key_t *account, tr_holding_t *h) {
  audit_t *au = ctx;
  uint32_t a = asset_find(au, asset), k = a == NONE ? NONE : key_find(au, account);
  uint32_t r = k == NONE ? NONE : holding_find(au, a, k);
  h->units = h->frozen = 0;
  if (r != NONE) *h = au->holdings[r].h;
  return 0;
}

static int mem_holding_put(void *ctx, const char *asset, const tr_key_t *account, const tr_holding_t *h) {
  audit_t *au = ctx;
  uint32_t a = asset_find(au, asset), k;
  if (a == NONE) return TR_ECORRUPT; /* the rules hold only units of existing assets */
  if (key_intern(au, account, &k) != 0) return TR_ENOMEM;
  uint32_t r = holding_find(au, a, k);
  if (r == NONE) {
    if (h->units == 0) return 0;
    holding_rec_t *holdings = grown(au->holdings, au->holdings_n, &au->holdings_cap, sizeof *holdings);
    if (holdings == NULL) return TR_ENOMEM;
    au->holdings = holdings;
    if (index_add(&au->holding_ix, hash_pair(a, k), (uint32_t)au->holdings_n) != 0) return TR_ENOMEM;
    r = (uint32_t)au->holdings_n++;
    au->holdings[r] = (holding_rec_t){.asset = a, .key = k, .next_of_asset = au->assets[a].holdings,
                                      .next_of_key = au->keys[k].holdings};
    au->assets[a].holdings = au->keys[k].holdings = r;
  }
  holding_rec_t *hr = &au->holdings[r];
  if (hr->h.units == 0 && h->units != 0) au->holdings_positive++;
  if (hr->h.units != 0 && h->units == 0) au->holdings_positive--;
  hr->h = h->units ? *h : (tr_holding_t){0, 0};
  return 0;
}

static int mem_account_holdings(void *ctx, const tr_key_t *account, tr_account_holding_t **out, size_t *out_n) {
  audit_t *au = ctx;
  uint32_t k = key_find(au, account);
  tr_account_holding_t *v = NULL;
  size_t n = 0, cap = 0;
  for (uint32_t r = k == NONE ? NONE : au->keys[k].holdings; r != NONE; r = au->holdings[r].next_of_key) {
    if (au->holdings[r].h.units == 0) continue;
    tr_account_holding_t *more = grown(v, n, &cap, sizeof *v);
    if (more == NULL) { free(v); return TR_ENOMEM; }
    v = more;
    snprintf(v[n].asset, sizeof v[n].asset, "%s", au->assets[au->holdings[r].asset].a.id);
    v[n++].h = au->holdings[r].h;
  }
  *out = v;
  *out_n = n;
  return 0;
}

static int cmp_holder(const void *a, const void *b) {
  return memcmp(((const tr_asset_holder_t *)a)->account.b, ((const tr_asset_holder_t *)b)->account.b, 32);
}

static int mem_asset_holders(void *ctx, const char *asset, tr_asset_holder_t **out, size_t *out_n) {
  audit_t *au = ctx;
  uint32_t a = asset_find(au, asset);
  tr_asset_holder_t *v = NULL;
  size_t n = 0, cap = 0;
  for (uint32_t r = a == NONE ? NONE : au->assets[a].holdings; r != NONE; r = au->holdings[r].next_of_asset) {
    if (au->holdings[r].h.units == 0) continue;
    tr_asset_holder_t *more = grown(v, n, &cap, sizeof *v);
    if (more == NULL) { free(v); return TR_ENOMEM; }
    v = more;
    v[n].account = au->keys[au->holdings[r].key].a.id;
    v[n++].units = au->holdings[r].h.units;
  }
  if (n > 1) qsort(v, n, sizeof *v, cmp_holder);
  *out = v;
  *out_n = n;
  return 0;
}

static int mem_distribution_put(void *ctx, uint64_t seq, const char *asset, uint64_t amount, tr_dist_kind_t kind,
                                uint64_t count) {
  audit_t *au = ctx;
  sqlite3_stmt *st = au->distributions.st;
  int rc = cursor_step(au, &au->distributions, seq);
  if (rc == 0 && !(column_int_is(st, 0, seq) && column_text_is(st, 1, asset) &&
                   column_int_is(st, 2, amount) && column_int_is(st, 3, (uint64_t)kind) && column_int_is(st, 4, count)))
    rc = differ(au, seq, "stored distributions row of entry %llu differs from replay", (unsigned long long)seq);
  return rc;
}

static int mem_payout_put(void *ctx, uint64_t seq, const tr_key_t *account, const char *asset, uint64_t amount) {
  audit_t *au = ctx;
  sqlite3_stmt *st = au->payouts.st;
  char k[17];
  int rc = cursor_step(au, &au->payouts, seq);
  if (rc == 0 && !(column_int_is(st, 0, seq) && column_blob_is(st, 1, account->b, 32) &&
                   column_text_is(st, 2, asset) && column_int_is(st, 3, amount)))
    rc = differ(au, seq, "stored payouts of distribution %llu differ from replay (account %s…)", (unsigned long long)seq,
                tr_hex_encode(account->b, 8, k));
  return rc;
}

static const tr_state_ops_t audit_state_ops = {
  .head = mem_head,
  .append = mem_append,
  .entry_by_signer_id = mem_entry_by_signer_id,
  .entry_get = mem_entry_get,
  .receipt_get = mem_receipt_get,
  .receipt_put = mem_receipt_put,
  .meta_put = mem_meta_put,
  .account_get = mem_account_get,
  .account_put = mem_account_put,
  .admins_unfrozen_except = mem_admins_unfrozen_except,
  .account_entry_add = mem_account_entry_add,
  .asset_get = mem_asset_get,
  .asset_put = mem_asset_put,
  .assets_reissue = mem_assets_reissue,
  .holding_get = mem_holding_get,
  .holding_put = mem_holding_put,
  .account_holdings = mem_account_holdings,
  .asset_holders = mem_asset_holders,
  .distribution_put = mem_distribution_put,
  .payout_put = mem_payout_put,
};

/* ------------------------------------------------------------------------ */
/* The final comparison: stored tables, each in key order                    */

/* Steps a full-table scan; 1 with a row, 0 at the end, <0 on error. */
static int scan_step(audit_t *au, sqlite3_stmt *st, const char *table) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) return 1;
  if (rc == SQLITE_DONE) return 0;
  return differ(au, 0, "cannot read stored %s: %s", table, tr_store_errmsg(au->src));
}

static sqlite3_stmt *scan_open(audit_t *au, const char *sql, const char *table) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tr_store_db(au->src), sql, -1, &st, NULL) != SQLITE_OK) {
    differ(au, 0, "cannot read stored %s: %s", table, tr_store_errmsg(au->src));
    sqlite3_finalize(st);
    return NULL;
  }
  return st;
}

/* Checks the scan's current row against the replay: true when it matches,
 * else false with what differs (the key and column) in why. */
typedef bool (*row_check_fn)(audit_t *au, sqlite3_stmt *st, char *why, size_t whylen);

/* A stored table, scanned in key order, must hold exactly the replay's rows. */
static int compare_table(audit_t *au, const char *table, const char *sql, row_check_fn check, size_t replay_rows) {
  sqlite3_stmt *st = scan_open(au, sql, table);
  if (st == NULL) return TR_ECORRUPT;
  size_t rows = 0;
  int rc;
  char why[160];
  while ((rc = scan_step(au, st, table)) == 1) {
    rows++;
    if (!check(au, st, why, sizeof why)) {
      rc = differ(au, 0, "stored %s differs from replay at %s", table, why);
      break;
    }
  }
  if (rc == 0 && rows != replay_rows) rc = differ(au, 0, "stored %s has %zu rows, replay %zu", table, rows, replay_rows);
  sqlite3_finalize(st);
  return rc < 0 ? rc : 0;
}

static bool meta_row(audit_t *au, sqlite3_stmt *st, char *why, size_t whylen) {
  size_t i = au->meta_checked++;
  const char *k = (const char *)sqlite3_column_text(st, 0);
  snprintf(why, whylen, "key %s", k ? k : "(null)");
  return i < au->meta_n && column_text_is(st, 0, au->meta[i].key) && column_text_is(st, 1, au->meta[i].value);
}

static int cmp_meta(const void *a, const void *b) { return strcmp(a, b); } /* key is the first member */

static bool account_row(audit_t *au, sqlite3_stmt *st, char *why, size_t whylen) {
  tr_key_t id = {{0}};
  bool key_ok = sqlite3_column_type(st, 0) == SQLITE_BLOB && sqlite3_column_bytes(st, 0) == 32;
  if (key_ok) memcpy(id.b, sqlite3_column_blob(st, 0), 32);
  uint32_t r = key_ok ? key_find(au, &id) : NONE;
  const tr_account_t *a = r != NONE && au->keys[r].is_account ? &au->keys[r].a : NULL;
  const char *col = a == NULL ? "id" : !column_int_is(st, 1, a->roles) ? "roles"
                  : !column_text_is(st, 2, a->jurisdiction) ? "jurisdiction"
                  : !column_int_is(st, 3, a->kyc) ? "kyc" : !column_int_is(st, 4, a->frozen) ? "frozen" : NULL;
  char k[17];
  snprintf(why, whylen, "account %s…, column %s", tr_hex_encode(id.b, 8, k), col ? col : "");
  return col == NULL;
}

/* The first member in which two assets differ, or NULL. */
static const char *asset_difference(const tr_asset_t *x, const tr_asset_t *y) {
  if (memcmp(x->issuer.b, y->issuer.b, 32) != 0) return "issuer";
  if (strcmp(x->name, y->name) != 0) return "name";
  if (x->kind != y->kind) return "kind";
  if (strcmp(x->currency, y->currency) != 0) return "currency";
  if (x->principal != y->principal) return "principal";
  if (x->units != y->units) return "units";
  if (x->coupon_bps != y->coupon_bps) return "coupon_bps";
  if (strcmp(x->maturity, y->maturity) != 0) return "maturity";
  if (strcmp(x->rating, y->rating) != 0) return "rating";
  if (x->risk_weight_pct != y->risk_weight_pct) return "risk_weight_pct";
  if (x->rules.jurisdictions_n != y->rules.jurisdictions_n) return "jurisdictions";
  for (size_t i = 0; i < x->rules.jurisdictions_n; i++)
    if (strcmp(x->rules.jurisdictions[i], y->rules.jurisdictions[i]) != 0) return "jurisdictions";
  if (x->rules.max_holders != y->rules.max_holders) return "max_holders";
  if (x->rules.min_units != y->rules.min_units) return "min_units";
  if (x->rules.lockup_until != y->rules.lockup_until) return "lockup_until";
  if (strcmp(x->documents_json ? x->documents_json : "", y->documents_json ? y->documents_json : "") != 0)
    return "documents";
  if (x->status != y->status) return "status";
  if (x->paused_from != y->paused_from) return "paused_from";
  if (x->issued != y->issued) return "issued";
  if (x->holders != y->holders) return "holders";
  if (x->created_seq != y->created_seq) return "created_seq";
  return NULL;
}

static bool asset_row(audit_t *au, sqlite3_stmt *st, char *why, size_t whylen) {
  char id[TR_ASSET_ID_CHARS_MAX + 1];
  const unsigned char *t = sqlite3_column_text(st, 0);
  snprintf(id, sizeof id, "%s", t ? (const char *)t : "");
  uint32_t r = asset_find(au, id);
  const char *col = "id";
  if (r != NONE && column_text_is(st, 0, id)) {
    tr_asset_t stored;
    int rc = tr_store_asset_get(au->src, id, &stored);
    col = rc != 0 ? "(unreadable)" : asset_difference(&au->assets[r].a, &stored);
    if (rc == 0) tr_asset_clear(&stored);
  }
  snprintf(why, whylen, "asset %s, column %s", id, col ? col : "");
  return col == NULL;
}

static bool holding_row(audit_t *au, sqlite3_stmt *st, char *why, size_t whylen) {
  const unsigned char *asset = sqlite3_column_text(st, 0);
  tr_key_t id = {{0}};
  bool key_ok = sqlite3_column_type(st, 1) == SQLITE_BLOB && sqlite3_column_bytes(st, 1) == 32;
  if (key_ok) memcpy(id.b, sqlite3_column_blob(st, 1), 32);
  uint32_t a = asset ? asset_find(au, (const char *)asset) : NONE, kr = key_ok ? key_find(au, &id) : NONE;
  uint32_t r = a != NONE && kr != NONE ? holding_find(au, a, kr) : NONE;
  const tr_holding_t *h = r != NONE && au->holdings[r].h.units != 0 ? &au->holdings[r].h : NULL;
  const char *col = h == NULL ? "(no such holding)" : !column_int_is(st, 2, h->units) ? "units"
                  : !column_int_is(st, 3, h->frozen) ? "frozen" : NULL;
  char k[17];
  snprintf(why, whylen, "asset %s, account %s…, column %s", asset ? (const char *)asset : "(null)",
           tr_hex_encode(id.b, 8, k), col ? col : "");
  return col == NULL;
}

typedef struct {
  tr_key_t id;
  uint32_t rec;
} key_order_t;

static int cmp_key_order(const void *a, const void *b) {
  return memcmp(((const key_order_t *)a)->id.b, ((const key_order_t *)b)->id.b, 32);
}

static int cmp_history(const void *a, const void *b) {
  const history_t *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* How far the node had written account_entries (history_progress): a node
 * that stopped hard keeps the newest entries' rows in memory only and
 * rebuilds them when it starts, so rows are due up to the mark, not beyond. */
static int history_mark(audit_t *au, uint64_t *through) {
  sqlite3_stmt *st = scan_open(au, "SELECT id, seq FROM history_progress", "history_progress");
  int rc = st ? scan_step(au, st, "history_progress") : TR_ECORRUPT;
  if (rc == 0) rc = differ(au, 0, "stored history_progress has no row");
  if (rc == 1 && (!column_int_is(st, 0, 1) || sqlite3_column_int64(st, 1) < 0 ||
                  (uint64_t)sqlite3_column_int64(st, 1) > au->size))
    rc = differ(au, 0, "stored history_progress is not one seq within the journal");
  if (rc == 1) {
    *through = (uint64_t)sqlite3_column_int64(st, 1);
    rc = scan_step(au, st, "history_progress");
    if (rc == 1) rc = differ(au, 0, "stored history_progress has more than one row");
  }
  sqlite3_finalize(st);
  return rc;
}

/* account_entries in (account, seq) order: the rows are made in seq order,
 * so they are sorted by each key's rank in key order, made unique (the
 * store ignores a repeated row), then merged with the stored table. */
static int compare_history(audit_t *au) {
  uint64_t through = 0;
  int mark = history_mark(au, &through);
  if (mark != 0) return mark;
  au->history_through = through;
  size_t due = 0; /* rows of entries up to the mark; they were made in seq order */
  while (due < au->history_n && au->history[due].seq <= through) due++;
  au->history_n = due;
  key_order_t *order = malloc((au->keys_n ? au->keys_n : 1) * sizeof *order);
  if (order == NULL) return TR_ENOMEM;
  for (size_t i = 0; i < au->keys_n; i++) order[i] = (key_order_t){au->keys[i].a.id, (uint32_t)i};
  qsort(order, au->keys_n, sizeof *order, cmp_key_order);
  for (size_t i = 0; i < au->keys_n; i++) au->keys[order[i].rec].rank = (uint32_t)i;
  for (size_t i = 0; i < au->history_n; i++) au->history[i].key = au->keys[au->history[i].key].rank;
  qsort(au->history, au->history_n, sizeof *au->history, cmp_history);
  size_t n = 0;
  for (size_t i = 0; i < au->history_n; i++)
    if (n == 0 || cmp_history(&au->history[i], &au->history[n - 1]) != 0) au->history[n++] = au->history[i];

  sqlite3_stmt *st = scan_open(au, "SELECT account, seq FROM account_entries ORDER BY account, seq", "account_entries");
  int rc = TR_ECORRUPT;
  size_t i = 0;
  char k[17] = "";
  while (st != NULL && (rc = scan_step(au, st, "account_entries")) == 1) {
    const history_t *want = i < n ? &au->history[i] : NULL;
    const tr_key_t *key = want ? &order[want->key].id : NULL;
    if (want == NULL || !column_blob_is(st, 0, key->b, 32) || !column_int_is(st, 1, want->seq)) {
      /* Name the entry of whichever row comes first in key order: a stored
       * row the replay does not make, or a replay row the table lacks. */
      uint64_t seq = (uint64_t)sqlite3_column_int64(st, 1);
      int order = -1;
      if (want && sqlite3_column_bytes(st, 0) == 32) {
        order = memcmp(sqlite3_column_blob(st, 0), key->b, 32);
        if (order == 0) order = seq < want->seq ? -1 : 1;
      }
      if (order > 0) seq = want->seq;
      if (key) tr_hex_encode(key->b, 8, k);
      rc = differ(au, seq, "stored account_entries differs from replay near entry %llu (replay's row: account %s…)",
                  (unsigned long long)seq, want ? k : "none");
      break;
    }
    i++;
  }
  if (rc == 0 && i < n)
    rc = differ(au, au->history[i].seq, "stored account_entries lacks the row of entry %llu",
                (unsigned long long)au->history[i].seq);
  sqlite3_finalize(st);
  free(order);
  return rc < 0 ? rc : 0;
}

static int compare_merkle(audit_t *au) {
  sqlite3_stmt *st = scan_open(au, "SELECT level, idx, hash FROM merkle_nodes ORDER BY level, idx", "merkle_nodes");
  if (st == NULL) return TR_ECORRUPT;
  unsigned level = 1;
  size_t idx = 0;
  int rc;
  while ((rc = scan_step(au, st, "merkle_nodes")) == 1) {
    while (level <= TR_MERKLE_PATH_MAX && idx == au->level_n[level]) level++, idx = 0;
    if (level > TR_MERKLE_PATH_MAX || !column_int_is(st, 0, level) || !column_int_is(st, 1, idx) ||
        !column_blob_is(st, 2, au->levels[level][idx], 32)) {
      rc = differ(au, 0, "stored merkle_nodes differs from replay at level %lld, index %lld",
                  (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1));
      break;
    }
    idx++;
  }
  while (rc == 0 && level <= TR_MERKLE_PATH_MAX && idx == au->level_n[level]) level++, idx = 0;
  if (rc == 0 && level <= TR_MERKLE_PATH_MAX)
    rc = differ(au, 0, "stored merkle_nodes lacks level %u, index %zu", level, idx);
  sqlite3_finalize(st);
  return rc < 0 ? rc : 0;
}

/* The stored schema must be exactly the one tranche creates: a missing
 * append-only trigger or unique index is someone's edit of the file, even
 * when every row still checks out. */
static int compare_schema(audit_t *au) {
  static const char sql[] = "SELECT type, name, tbl_name, ifnull(sql, '') FROM sqlite_master ORDER BY type, name";
  tr_store_t *fresh = NULL;
  char err[256];
  if (tr_store_open(NULL, TR_STORE_MEMORY, &fresh, err, sizeof err) != 0)
    return differ(au, 0, "cannot build the expected schema: %s", err);
  sqlite3_stmt *want = NULL, *have = scan_open(au, sql, "schema");
  int rc = have && sqlite3_prepare_v2(tr_store_db(fresh), sql, -1, &want, NULL) == SQLITE_OK ? 0 : TR_ECORRUPT;
  if (rc != 0 && have) rc = differ(au, 0, "cannot build the expected schema: %s", tr_store_errmsg(fresh));
  while (rc == 0) {
    int w = sqlite3_step(want), h = scan_step(au, have, "schema");
    if (h < 0) { rc = h; break; }
    if (w != SQLITE_ROW && w != SQLITE_DONE) { rc = differ(au, 0, "cannot read the expected schema"); break; }
    if (w == SQLITE_DONE && h == 0) break;
    bool same = w == SQLITE_ROW && h == 1;
    for (int c = 0; same && c < 4; c++) same = column_text_is(have, c, (const char *)sqlite3_column_text(want, c));
    if (same) continue;
    /* Which object: the one of the two that sorts first by (type, name). */
    int order = w != SQLITE_ROW ? 1 : h != 1 ? -1 : 0;
    for (int c = 0; order == 0 && c < 2; c++) {
      const char *x = (const char *)sqlite3_column_text(want, c), *y = (const char *)sqlite3_column_text(have, c);
      order = strcmp(x ? x : "", y ? y : "");
    }
    sqlite3_stmt *at = order <= 0 ? want : have;
    const char *type = (const char *)sqlite3_column_text(at, 0), *name = (const char *)sqlite3_column_text(at, 1);
    rc = differ(au, 0, "the stored schema differs from tranche's at %s %s (%s)", type ? type : "?", name ? name : "?",
                order < 0 ? "missing" : order > 0 ? "not tranche's" : "changed");
  }
  sqlite3_finalize(want);
  sqlite3_finalize(have);
  tr_store_close(fresh);
  return rc < 0 ? rc : 0;
}

/* Every stored checkpoint must be one the node signed for this journal
 * (PROTOCOL.md §3): the schema stops UPDATE and DELETE of rows, not INSERT,
 * so a row added with sqlite3 would otherwise pass.  Each row's note must
 * verify with the genesis node key, carry the row's size and root, and
 * that root must be the Merkle root at its size (the stored Merkle nodes
 * were compared with the replay's just before).  Sizes only grow: size is
 * the table's rowid, so row order is size order, and what a later insert
 * could change is only the time column, which the note does not carry (a
 * C2SP checkpoint is origin, size and root) and so is checked only to be a
 * time at all. */
static int compare_checkpoints(audit_t *au) {
  if (!au->node_vkey_set) return differ(au, 1, "no node key: genesis was not replayed");
  sqlite3_stmt *st = scan_open(au, "SELECT size, root, time, note FROM checkpoints ORDER BY size", "checkpoints");
  if (st == NULL) return TR_ECORRUPT;
  uint64_t prev = 0;
  int rc;
  char why[200];
  while ((rc = scan_step(au, st, "checkpoints")) == 1) {
    sqlite3_int64 size = sqlite3_column_int64(st, 0);
    bool typed = sqlite3_column_type(st, 0) == SQLITE_INTEGER && sqlite3_column_type(st, 1) == SQLITE_BLOB &&
                 sqlite3_column_bytes(st, 1) == 32 && sqlite3_column_type(st, 2) == SQLITE_INTEGER &&
                 sqlite3_column_int64(st, 2) >= 0 && sqlite3_column_type(st, 3) == SQLITE_TEXT;
    if (!typed) {
      rc = differ(au, 0, "stored checkpoint %lld has malformed columns (size, root, time or note)", (long long)size);
      break;
    }
    if ((uint64_t)size <= prev) {
      rc = differ(au, 0, "stored checkpoints do not grow: %lld after %llu", (long long)size, (unsigned long long)prev);
      break;
    }
    int v = tr_query_checkpoint_verify(au->src, &au->node_vkey, au->size, (uint64_t)size, sqlite3_column_blob(st, 1),
                                       (const char *)sqlite3_column_text(st, 3), why, sizeof why);
    if (v != 0) {
      rc = v == TR_ECORRUPT ? differ(au, 0, "%s", why)
                            : differ(au, 0, "cannot check stored checkpoint %lld: %s", (long long)size, tr_strerror(v));
      break;
    }
    prev = (uint64_t)size;
  }
  sqlite3_finalize(st);
  return rc < 0 ? rc : 0;
}

static int compare_all(audit_t *au) {
  int rc = cursor_finish(au, &au->receipts);
  if (rc == 0) rc = cursor_finish(au, &au->distributions);
  if (rc == 0) rc = cursor_finish(au, &au->payouts);
  qsort(au->meta, au->meta_n, sizeof au->meta[0], cmp_meta);
  if (rc == 0) rc = compare_table(au, "meta", "SELECT key, value FROM meta ORDER BY key", meta_row, au->meta_n);
  if (rc == 0)
    rc = compare_table(au, "accounts", "SELECT id, roles, jurisdiction, kyc, frozen FROM accounts ORDER BY id",
                       account_row, au->accounts_n);
  if (rc == 0) rc = compare_table(au, "assets", "SELECT id FROM assets ORDER BY id", asset_row, au->assets_n);
  if (rc == 0)
    rc = compare_table(au, "holdings", "SELECT asset, account, units, frozen FROM holdings ORDER BY asset, account",
                       holding_row, au->holdings_positive);
  if (rc == 0) rc = compare_history(au);
  if (rc == 0) rc = compare_merkle(au);
  if (rc == 0) rc = compare_checkpoints(au);
  if (rc == 0) rc = compare_schema(au);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* The audit's lifetime                                                      */

static int audit_open(audit_t *au, tr_store_t *src) {
  memset(au, 0, sizeof *au);
  au->src = src;
  randombytes_buf(au->hash_key, sizeof au->hash_key);
  randombytes_buf(au->digest_key, sizeof au->digest_key);
  int rc = cursor_open(au, &au->receipts, "receipts", "SELECT seq, effects FROM receipts ORDER BY seq");
  if (rc == 0)
    rc = cursor_open(au, &au->distributions, "distributions",
                     "SELECT seq, asset, amount, kind, count FROM distributions ORDER BY seq");
  if (rc == 0)
    rc = cursor_open(au, &au->payouts, "payouts",
                     "SELECT distribution, account, asset, amount FROM payouts ORDER BY distribution, account");
  return rc;
}

static void audit_close(audit_t *au) {
  sqlite3_finalize(au->receipts.st);
  sqlite3_finalize(au->distributions.st);
  sqlite3_finalize(au->payouts.st);
  for (size_t i = 0; i < au->assets_n; i++) tr_asset_clear(&au->assets[i].a);
  for (size_t l = 0; l <= TR_MERKLE_PATH_MAX; l++) free(au->levels[l]);
  free(au->assets);
  free(au->keys);
  free(au->holdings);
  free(au->history);
  free(au->sigids);
  free(au->key_ix.slots);
  free(au->asset_ix.slots);
  free(au->holding_ix.slots);
}

/* ------------------------------------------------------------------------ */
/* Replay                                                                    */

static int replay_fail(tr_replay_report_t *rep, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int replay_fail(tr_replay_report_t *rep, uint64_t seq, const char *fmt, ...) {
  va_list ap;
  rep->bad_seq = seq;
  va_start(ap, fmt);
  vsnprintf(rep->message, sizeof rep->message, fmt, ap);
  va_end(ap);
  return TR_ECORRUPT;
}

/* Entry e's own bytes: link, txid, envelope, genesis position, columns.
 * Its hash is checked once replayed: the append recomputes it from the same
 * bytes (replay_apply). */
static int replay_check_entry(const tr_entry_t *e, const uint8_t prev[32], tr_tx_t *tx, tr_replay_report_t *rep) {
  tr_tx_error_t err;
  if (memcmp(e->prev, prev, 32) != 0)
    return replay_fail(rep, e->seq, "prev does not link to entry %llu", (unsigned long long)e->seq - 1);
  int rc = tr_tx_decode(e->tx, e->tx_len, tx, &err); /* computes tx->txid = SHA-256(bytes) */
  if (rc == TR_ENOMEM) return rc;
  if (rc != 0) crypto_hash_sha256(tx->txid, (const uint8_t *)e->tx, e->tx_len);
  if (memcmp(tx->txid, e->txid, 32) != 0) return replay_fail(rep, e->seq, "txid does not match tx bytes");
  if (rc != 0) return replay_fail(rep, e->seq, "tx does not decode: %s", err.detail);
  if ((e->seq == 1) != (tx->type == TR_TX_GENESIS))
    return replay_fail(rep, e->seq, "genesis must be entry 1 and only entry 1");
  if (memcmp(tx->signer.b, e->signer.b, 32) != 0 || strcmp(tx->id, e->tx_id) != 0)
    return replay_fail(rep, e->seq, "stored signer or id does not match the tx");
  return 0;
}

/* The replayed entry against the stored one.  Seq, prev, txid and sig went
 * into the append from the stored row (prev through the replayed head), so a
 * different hash means different stored hash bytes or time. */
static int replay_same(const audit_t *au, const tr_entry_t *e, tr_replay_report_t *rep) {
  if (au->size != e->seq) return replay_fail(rep, e->seq, "replay gives a different entry");
  if (au->head_time != e->time) return replay_fail(rep, e->seq, "stored time is not the entry time the rules give");
  if (memcmp(au->head_hash, e->hash, 32) != 0) return replay_fail(rep, e->seq, "stored hash does not match entry bytes");
  return 0;
}

/* Re-applies entry e to the audit's ledger; it must be accepted identically. */
static int replay_apply(tr_ledger_t *mem, audit_t *au, const tr_entry_t *e, const tr_tx_t *tx,
                        tr_replay_report_t *rep) {
  int rc;
  if (e->seq == 1) {
    rc = tr_ledger_genesis_apply(mem, tx, e->tx, e->tx_len, e->sig, e->time);
    if (rc == TR_ENOMEM) return rc;
    if (rc != 0) return replay_fail(rep, 1, "genesis does not apply: %s", au->message[0] ? au->message : tr_strerror(rc));
    char vkey[TR_NOTE_VKEY_BUF_BYTES];
    if (tr_note_vkey_format(tx->chain, tx->signer.b, vkey, sizeof vkey) != 0 ||
        tr_note_vkey_parse(vkey, strlen(vkey), &au->node_vkey) != 0)
      return replay_fail(rep, 1, "genesis names no usable node key for checkpoints");
    au->node_vkey_set = true;
    return replay_same(au, e, rep);
  }
  if (strcmp(tx->chain, mem->chain) != 0) return replay_fail(rep, e->seq, "tx names another chain");
  tr_receipt_t rcpt;
  tr_refusal_t ref = {0};
  rc = tr_ledger_apply(mem, tx, e->tx, e->tx_len, e->sig, e->time, &rcpt, &ref);
  if (tr_err_is_refusal(rc)) return replay_fail(rep, e->seq, "replay refuses it: %s: %s", tr_err_reason(rc), ref.detail);
  if (rc == TR_ENOMEM) return rc;
  if (rc != 0 && au->message[0]) return replay_fail(rep, au->bad_seq, "%s", au->message);
  if (rc != 0) return replay_fail(rep, e->seq, "replay failed: %s", tr_strerror(rc));
  bool duplicate = rcpt.duplicate;
  tr_receipt_clear(&rcpt);
  if (duplicate) return replay_fail(rep, e->seq, "replay gives a different entry");
  return replay_same(au, e, rep);
}

typedef struct {
  audit_t *au;
  tr_ledger_t mem;
  tr_tx_t *tx;
  uint64_t next, size;          /* the seq expected next, the journal size */
  uint8_t prev[32];
  tr_replay_progress_fn progress;
  void *progress_ctx;
  tr_replay_report_t *rep;
} replay_t;

static int replay_entry(void *ctx, const tr_entry_t *e) {
  replay_t *rp = ctx;
  if (e->seq != rp->next)
    return replay_fail(rp->rep, rp->next, "entry missing (the next stored seq is %llu)", (unsigned long long)e->seq);
  int rc = replay_check_entry(e, rp->prev, rp->tx, rp->rep);
  if (rc == 0) rc = replay_apply(&rp->mem, rp->au, e, rp->tx, rp->rep);
  memcpy(rp->prev, e->hash, 32);
  rp->next++;
  if (rc == 0 && rp->progress && (e->seq % REPLAY_PROGRESS_ENTRIES == 0 || e->seq == rp->size))
    rp->progress(rp->progress_ctx, e->seq, rp->size);
  return rc;
}

static int replay_entries(audit_t *au, uint64_t size, tr_replay_progress_fn progress, void *ctx,
                          tr_replay_report_t *rep) {
  replay_t rp = {.au = au, .mem = {.ops = &audit_state_ops, .ctx = au}, .tx = malloc(sizeof(tr_tx_t)), .next = 1,
                 .size = size, .progress = progress, .progress_ctx = ctx, .rep = rep};
  if (rp.tx == NULL) return TR_ENOMEM;
  int rc = tr_store_entries_scan(au->src, 1, size, replay_entry, &rp);
  if (rc == TR_ECORRUPT && rep->message[0] == '\0') rc = replay_fail(rep, rp.next, "stored entry has malformed columns");
  else if (rc != 0 && rc != TR_ECORRUPT && rc != TR_ENOMEM) rc = replay_fail(rep, rp.next, "cannot read entry: %s", tr_store_errmsg(au->src));
  else if (rc == 0 && rp.next != size + 1) rc = replay_fail(rep, rp.next, "entry missing");
  free(rp.tx);
  return rc;
}

static uint64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int tr_ledger_replay(const char *db_path, tr_replay_progress_fn progress, void *ctx, tr_replay_report_t *rep) {
  tr_store_t *src = NULL;
  memset(rep, 0, sizeof *rep);
  audit_t *au = calloc(1, sizeof *au);
  if (au == NULL) return TR_ENOMEM;
  int rc = tr_store_open(db_path, TR_STORE_READONLY | TR_STORE_SCAN, &src, rep->message, sizeof rep->message);
  uint64_t size = 0;
  if (rc == 0) rc = tr_store_read_begin(src);
  if (rc == 0) rc = tr_store_head(src, &size, NULL, NULL);
  if (rc == 0 && size == 0) rc = replay_fail(rep, 1, "the journal is empty: no genesis");
  if (rc == 0 && audit_open(au, src) != 0) rc = replay_fail(rep, 0, "%s", au->message);
  uint64_t t0 = monotonic_ms();
  if (rc == 0) rc = replay_entries(au, size, progress, ctx, rep);
  uint64_t t1 = monotonic_ms();
  if (rc == 0 && (rc = compare_all(au)) == TR_ECORRUPT) replay_fail(rep, au->bad_seq, "%s", au->message);
  if (rc != 0 && rep->message[0] == '\0') /* out of memory, or a read that failed without a word */
    snprintf(rep->message, sizeof rep->message, "the audit stopped: %s", tr_strerror(rc));
  rep->entries_ms = t1 - t0;
  rep->compare_ms = monotonic_ms() - t1;
  rep->size = size;
  rep->history_through = au->history_through;
  audit_close(au);
  if (src) tr_store_read_end(src);
  free(au);
  tr_store_close(src);
  return rc;
}
