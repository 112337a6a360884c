/* tr_mem.c — the ledger's derived state in plain memory (tr_mem.h).
 *
 * Workload: mostly transfers, each a handful of hash lookups and two holding
 * writes; no allocation on that path once the tables have grown.  Keys are
 * hashed with a per-process random key (libsodium's SipHash), so nobody can
 * choose account keys or asset ids that collide in the tables.
 */
#include "tr_mem.h"

#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_limits.h"

/* ------------------------------------------------------------------------ */
/* Growable arrays and the index                                             */

/* Array v (n used, *cap allocated) with room for one more element: v or its
 * new place, or NULL when memory runs out (then v is untouched).  Record
 * numbers are uint32_t: no array grows past TR_MEM_NONE elements. */
static void *grown(void *v, size_t n, size_t *cap, size_t elem) {
  if (n < *cap) return v;
  size_t want = *cap ? *cap * 2 : 64;
  if (want > SIZE_MAX / elem || want > TR_MEM_NONE) return NULL;
  void *p = realloc(v, want * elem);
  if (p != NULL) *cap = want;
  return p;
}

static int index_grow(tr_mem_index_t *ix) {
  size_t cap = ix->slots ? (ix->mask + 1) * 2 : 1024;
  struct tr_mem_slot *s = malloc(cap * sizeof *s);
  if (s == NULL) return TR_ENOMEM;
  for (size_t i = 0; i < cap; i++) s[i].rec = TR_MEM_NONE;
  for (size_t i = 0; ix->slots && i <= ix->mask; i++) {
    if (ix->slots[i].rec == TR_MEM_NONE) continue;
    size_t j = ix->slots[i].hash & (cap - 1);
    while (s[j].rec != TR_MEM_NONE) j = (j + 1) & (cap - 1);
    s[j] = ix->slots[i];
  }
  free(ix->slots);
  ix->slots = s;
  ix->mask = cap - 1;
  return 0;
}

static int index_add(tr_mem_index_t *ix, uint64_t hash, uint32_t rec) {
  if ((ix->slots == NULL || 2 * (ix->used + 1) > ix->mask + 1) && index_grow(ix) != 0) return TR_ENOMEM;
  size_t j = hash & ix->mask;
  while (ix->slots[j].rec != TR_MEM_NONE) j = (j + 1) & ix->mask;
  ix->slots[j].hash = hash;
  ix->slots[j].rec = rec;
  ix->used++;
  return 0;
}

/* Walks the records whose key has `hash`: call with *pos = hash & mask first. */
static uint32_t index_next(const tr_mem_index_t *ix, uint64_t hash, size_t *pos) {
  if (ix->slots == NULL) return TR_MEM_NONE;
  for (;; *pos = (*pos + 1) & ix->mask) {
    const struct tr_mem_slot *s = &ix->slots[*pos];
    if (s->rec == TR_MEM_NONE) return TR_MEM_NONE;
    if (s->hash == hash) {
      *pos = (*pos + 1) & ix->mask;
      return s->rec;
    }
  }
}

static uint64_t hash_bytes(const tr_mem_t *m, const void *p, size_t n) {
  uint64_t h;
  crypto_shorthash((unsigned char *)&h, p, n, m->hash_key);
  return h;
}

/* Record numbers are dense and not chosen by anyone: a mix suffices. */
static uint64_t hash_pair(uint32_t a, uint32_t b) {
  uint64_t x = ((uint64_t)a << 32 | b) + 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

/* ------------------------------------------------------------------------ */
/* Records                                                                   */

uint32_t tr_mem_key_find(const tr_mem_t *m, const tr_key_t *k) {
  uint64_t h = hash_bytes(m, k->b, 32);
  size_t pos = h & m->key_ix.mask;
  for (uint32_t r; (r = index_next(&m->key_ix, h, &pos)) != TR_MEM_NONE;)
    if (memcmp(m->keys[r].a.id.b, k->b, 32) == 0) return r;
  return TR_MEM_NONE;
}

/* The record of key k, made (not an account yet) when new. */
static int key_intern(tr_mem_t *m, const tr_key_t *k, uint32_t *out) {
  if ((*out = tr_mem_key_find(m, k)) != TR_MEM_NONE) return 0;
  if (m->keys_n >= TR_MEM_KEYS_MAX) return TR_ELIMIT;
  tr_mem_key_t *keys = grown(m->keys, m->keys_n, &m->keys_cap, sizeof *keys);
  if (keys == NULL) return TR_ENOMEM;
  m->keys = keys;
  uint32_t r = (uint32_t)m->keys_n;
  if (index_add(&m->key_ix, hash_bytes(m, k->b, 32), r) != 0) return TR_ENOMEM;
  memset(&m->keys[r], 0, sizeof m->keys[r]);
  m->keys[r].a.id = *k;
  m->keys[r].holdings = TR_MEM_NONE;
  m->keys_n++;
  *out = r;
  return 0;
}

uint32_t tr_mem_asset_find(const tr_mem_t *m, const char *id) {
  uint64_t h = hash_bytes(m, id, strlen(id));
  size_t pos = h & m->asset_ix.mask;
  for (uint32_t r; (r = index_next(&m->asset_ix, h, &pos)) != TR_MEM_NONE;)
    if (strcmp(m->assets[r].a.id, id) == 0) return r;
  return TR_MEM_NONE;
}

uint32_t tr_mem_holding_find(const tr_mem_t *m, uint32_t asset, uint32_t key) {
  uint64_t h = hash_pair(asset, key);
  size_t pos = h & m->holding_ix.mask;
  for (uint32_t r; (r = index_next(&m->holding_ix, h, &pos)) != TR_MEM_NONE;)
    if (m->holdings[r].asset == asset && m->holdings[r].key == key) return r;
  return TR_MEM_NONE;
}

static bool unfrozen_admin(const tr_mem_key_t *k) {
  return k->is_account && (k->a.roles & TR_ROLE_ADMIN) && !k->a.frozen;
}

/* Notes record r of a table as changed, once until the changes are cleared. */
static int note_changed(tr_mem_t *m, bool *flag, uint32_t **list, size_t *n, size_t *cap, uint32_t r) {
  if (!m->track || *flag) return 0;
  uint32_t *more = grown(*list, *n, cap, sizeof **list);
  if (more == NULL) return TR_ENOMEM;
  *list = more;
  (*list)[(*n)++] = r;
  *flag = true;
  return 0;
}

/* ---- (signer, id) ---- */

static void sigid_digest(const tr_mem_t *m, const tr_key_t *signer, const char *id, uint8_t out[16]) {
  uint8_t in[32 + TR_TX_ID_CHARS_MAX];
  size_t n = strlen(id);
  if (n > TR_TX_ID_CHARS_MAX) n = TR_TX_ID_CHARS_MAX; /* decoded ids are never longer */
  memcpy(in, signer->b, 32);
  memcpy(in + 32, id, n);
  crypto_shorthash_siphashx24(out, in, 32 + n, m->digest_key);
}

static struct tr_mem_sigid *sigid_slot(const tr_mem_t *m, const uint8_t d[16]) {
  uint64_t h;
  memcpy(&h, d, sizeof h);
  for (size_t j = h & m->sigid_mask;; j = (j + 1) & m->sigid_mask)
    if (m->sigids[j].seq == 0 || memcmp(m->sigids[j].digest, d, 16) == 0) return &m->sigids[j];
}

static int sigid_add(tr_mem_t *m, const uint8_t d[16], uint64_t seq) {
  if (m->sigids_used >= TR_MEM_ENTRIES_MAX) return TR_ELIMIT;
  if (m->sigids == NULL || 2 * (m->sigids_used + 1) > m->sigid_mask + 1) {
    size_t cap = m->sigids ? (m->sigid_mask + 1) * 2 : 4096;
    struct tr_mem_sigid *old = m->sigids;
    size_t old_cap = old ? m->sigid_mask + 1 : 0;
    if ((m->sigids = calloc(cap, sizeof *m->sigids)) == NULL) {
      m->sigids = old;
      return TR_ENOMEM;
    }
    m->sigid_mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++)
      if (old[i].seq != 0) *sigid_slot(m, old[i].digest) = old[i];
    free(old);
  }
  struct tr_mem_sigid *s = sigid_slot(m, d);
  if (s->seq == 0) m->sigids_used++;
  memcpy(s->digest, d, 16);
  s->seq = seq;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The journal: head, frontier, (signer, id)                                 */

static int mem_head(void *ctx, uint64_t *size, uint8_t hash[32], uint64_t *time) {
  tr_mem_t *m = ctx;
  *size = m->size;
  if (hash) memcpy(hash, m->head_hash, 32);
  if (time) *time = m->head_time;
  return 0;
}

static int frontier_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32]) {
  tr_mem_t *m = ctx;
  (void)index; /* tr_merkle_append asks only for the left sibling: the last node of its level */
  if (level > TR_MERKLE_PATH_MAX) return TR_ECORRUPT;
  memcpy(out, m->frontier[level], 32);
  return 0;
}

/* Adds leaf `hash` at index seq-1: the frontier moves and the complete
 * subtrees it closes go to the sink. */
static int frontier_push(tr_mem_t *m, uint64_t seq, const uint8_t hash[32]) {
  tr_merkle_node_t nodes[TR_MERKLE_PATH_MAX + 1];
  size_t n = 0;
  int rc = tr_merkle_append(frontier_get, m, seq - 1, hash, nodes, &n);
  for (size_t i = 0; i < n && rc == 0; i++) {
    memcpy(m->frontier[nodes[i].level], nodes[i].hash, 32);
    if (tr_merkle_level_kept(nodes[i].level) && m->sink->merkle_node) rc = m->sink->merkle_node(m->sink_ctx, &nodes[i]);
  }
  return rc;
}

static int mem_append(void *ctx, uint64_t time, const uint8_t txid[32], const uint8_t sig[64], const tr_key_t *signer,
                      const char *tx_id, const char *tx, size_t tx_len, tr_entry_t *out) {
  tr_mem_t *m = ctx;
  if (time < m->head_time) return TR_EARG; /* time never decreases (§3) */
  memset(out, 0, sizeof *out);
  out->seq = m->size + 1;
  out->time = time;
  memcpy(out->prev, m->head_hash, 32);
  memcpy(out->txid, txid, 32);
  memcpy(out->sig, sig, 64);
  out->signer = *signer;
  snprintf(out->tx_id, sizeof out->tx_id, "%s", tx_id);
  tr_entry_hash(out->seq, time, out->prev, txid, sig, out->hash);
  uint8_t d[16];
  sigid_digest(m, signer, tx_id, d);
  int rc = frontier_push(m, out->seq, out->hash);
  if (rc == 0) rc = sigid_add(m, d, out->seq);
  if (rc == 0 && m->sink->entry) rc = m->sink->entry(m->sink_ctx, out, tx, tx_len);
  if (rc != 0) return rc;
  m->size = out->seq;
  m->head_time = time;
  memcpy(m->head_hash, out->hash, 32);
  return 0;
}

/* The digest is 128 bits with a secret key: two different (signer, id)
 * pairs collide with probability ~2^-128, and the sink's entry_get confirms
 * the txid the rules compare. */
static int mem_entry_by_signer_id(void *ctx, const tr_key_t *signer, const char *id, uint64_t *seq, uint8_t txid[32]) {
  tr_mem_t *m = ctx;
  uint8_t d[16];
  if (m->sigids == NULL) return TR_ENOT_FOUND;
  sigid_digest(m, signer, id, d);
  const struct tr_mem_sigid *s = sigid_slot(m, d);
  if (s->seq == 0) return TR_ENOT_FOUND;
  *seq = s->seq;
  tr_entry_t e;
  int rc = m->sink->entry_get(m->sink_ctx, s->seq, &e);
  if (rc != 0) return rc;
  if (txid) memcpy(txid, e.txid, 32);
  tr_entry_clear(&e);
  return 0;
}

static int mem_entry_get(void *ctx, uint64_t seq, tr_entry_t *e) {
  tr_mem_t *m = ctx;
  return m->sink->entry_get(m->sink_ctx, seq, e);
}

static int mem_receipt_get(void *ctx, uint64_t seq, char **json) {
  tr_mem_t *m = ctx;
  return m->sink->receipt_get(m->sink_ctx, seq, json);
}

static int mem_receipt_put(void *ctx, uint64_t seq, const char *json) {
  tr_mem_t *m = ctx;
  return m->sink->receipt_put(m->sink_ctx, seq, json);
}

static int mem_meta_put(void *ctx, const char *key, const char *value) {
  tr_mem_t *m = ctx;
  return m->sink->meta_put(m->sink_ctx, key, value);
}

/* ------------------------------------------------------------------------ */
/* Accounts                                                                  */

static int mem_account_get(void *ctx, const tr_key_t *id, tr_account_t *a) {
  tr_mem_t *m = ctx;
  uint32_t r = tr_mem_key_find(m, id);
  if (r == TR_MEM_NONE || !m->keys[r].is_account) return TR_ENOT_FOUND;
  *a = m->keys[r].a;
  return 0;
}

static int mem_account_put(void *ctx, const tr_account_t *a) {
  tr_mem_t *m = ctx;
  uint32_t r;
  int rc = key_intern(m, &a->id, &r);
  if (rc != 0) return rc;
  tr_mem_key_t *k = &m->keys[r];
  if (note_changed(m, &k->changed, &m->changed_keys, &m->changed_keys_n, &m->changed_keys_cap, r) != 0)
    return TR_ENOMEM;
  m->admins_unfrozen -= unfrozen_admin(k);
  m->accounts_n += !k->is_account;
  k->is_account = true;
  k->a = *a;
  m->admins_unfrozen += unfrozen_admin(k);
  return 0;
}

static int mem_admins_unfrozen_except(void *ctx, const tr_key_t *except, uint64_t *count) {
  tr_mem_t *m = ctx;
  uint32_t r = tr_mem_key_find(m, except);
  *count = m->admins_unfrozen - (r != TR_MEM_NONE && unfrozen_admin(&m->keys[r]));
  return 0;
}

static int mem_account_entry_add(void *ctx, const tr_key_t *account, uint64_t seq) {
  tr_mem_t *m = ctx;
  uint32_t r;
  int rc = key_intern(m, account, &r);
  if (rc != 0) return rc;
  return m->sink->history_add(m->sink_ctx, r, seq);
}

/* ------------------------------------------------------------------------ */
/* Assets                                                                    */

static int asset_copy(tr_asset_t *to, const tr_asset_t *from) {
  char *docs = strdup(from->documents_json ? from->documents_json : "[]");
  if (docs == NULL) return TR_ENOMEM;
  *to = *from;
  to->documents_json = docs;
  return 0;
}

static int mem_asset_get(void *ctx, const char *id, tr_asset_t *a) {
  tr_mem_t *m = ctx;
  uint32_t r = tr_mem_asset_find(m, id);
  if (r == TR_MEM_NONE) return TR_ENOT_FOUND;
  return asset_copy(a, &m->assets[r].a);
}

static int mem_asset_put(void *ctx, const tr_asset_t *a) {
  tr_mem_t *m = ctx;
  uint32_t r = tr_mem_asset_find(m, a->id);
  tr_asset_t copy;
  if (asset_copy(&copy, a) != 0) return TR_ENOMEM;
  if (r == TR_MEM_NONE) {
    tr_mem_asset_t *assets = grown(m->assets, m->assets_n, &m->assets_cap, sizeof *assets);
    if (assets != NULL) m->assets = assets;
    if (assets == NULL || index_add(&m->asset_ix, hash_bytes(m, a->id, strlen(a->id)), (uint32_t)m->assets_n) != 0) {
      tr_asset_clear(&copy);
      return TR_ENOMEM;
    }
    r = (uint32_t)m->assets_n++;
    m->assets[r] = (tr_mem_asset_t){.holdings = TR_MEM_NONE};
  } else {
    tr_asset_clear(&m->assets[r].a);
  }
  m->assets[r].a = copy;
  return note_changed(m, &m->assets[r].changed, &m->changed_assets, &m->changed_assets_n, &m->changed_assets_cap, r);
}

static int mem_assets_reissue(void *ctx, const tr_key_t *from, const tr_key_t *to) {
  tr_mem_t *m = ctx; /* account.recover is rare: a scan of the assets is fine */
  for (size_t i = 0; i < m->assets_n; i++) {
    if (memcmp(m->assets[i].a.issuer.b, from->b, 32) != 0) continue;
    m->assets[i].a.issuer = *to;
    if (note_changed(m, &m->assets[i].changed, &m->changed_assets, &m->changed_assets_n, &m->changed_assets_cap,
                     (uint32_t)i) != 0)
      return TR_ENOMEM;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Holdings                                                                  */

static int mem_holding_get(void *ctx, const char *asset, const tr_key_t *account, tr_holding_t *h) {
  tr_mem_t *m = ctx;
  uint32_t a = tr_mem_asset_find(m, asset), k = a == TR_MEM_NONE ? TR_MEM_NONE : tr_mem_key_find(m, account);
  uint32_t r = k == TR_MEM_NONE ? TR_MEM_NONE : tr_mem_holding_find(m, a, k);
  h->units = h->frozen = 0;
  if (r != TR_MEM_NONE) *h = m->holdings[r].h;
  return 0;
}

/* Holding (asset a, key k), made with units 0 when new. */
static int holding_intern(tr_mem_t *m, uint32_t a, uint32_t k, uint32_t *out) {
  if ((*out = tr_mem_holding_find(m, a, k)) != TR_MEM_NONE) return 0;
  if (m->holdings_n >= TR_MEM_HOLDINGS_MAX) return TR_ELIMIT;
  tr_mem_holding_t *holdings = grown(m->holdings, m->holdings_n, &m->holdings_cap, sizeof *holdings);
  if (holdings == NULL) return TR_ENOMEM;
  m->holdings = holdings;
  if (index_add(&m->holding_ix, hash_pair(a, k), (uint32_t)m->holdings_n) != 0) return TR_ENOMEM;
  uint32_t r = (uint32_t)m->holdings_n++;
  m->holdings[r] = (tr_mem_holding_t){.asset = a, .key = k, .next_of_asset = m->assets[a].holdings,
                                      .next_of_key = m->keys[k].holdings};
  m->assets[a].holdings = m->keys[k].holdings = r;
  *out = r;
  return 0;
}

static int mem_holding_put(void *ctx, const char *asset, const tr_key_t *account, const tr_holding_t *h) {
  tr_mem_t *m = ctx;
  uint32_t a = tr_mem_asset_find(m, asset), k, r;
  if (a == TR_MEM_NONE) return TR_ECORRUPT; /* the rules hold only units of existing assets */
  int rc = key_intern(m, account, &k);
  if (rc != 0) return rc;
  if (h->units == 0 && tr_mem_holding_find(m, a, k) == TR_MEM_NONE) return 0;
  if ((rc = holding_intern(m, a, k, &r)) != 0) return rc;
  tr_mem_holding_t *hr = &m->holdings[r];
  if (note_changed(m, &hr->changed, &m->changed_holdings, &m->changed_holdings_n, &m->changed_holdings_cap, r) != 0)
    return TR_ENOMEM;
  if (hr->h.units == 0 && h->units != 0) m->holdings_positive++;
  if (hr->h.units != 0 && h->units == 0) m->holdings_positive--;
  hr->h = h->units ? *h : (tr_holding_t){0, 0};
  return 0;
}

static int mem_account_holdings(void *ctx, const tr_key_t *account, tr_account_holding_t **out, size_t *out_n) {
  tr_mem_t *m = ctx;
  uint32_t k = tr_mem_key_find(m, account);
  tr_account_holding_t *v = NULL;
  size_t n = 0, cap = 0;
  for (uint32_t r = k == TR_MEM_NONE ? TR_MEM_NONE : m->keys[k].holdings; r != TR_MEM_NONE;
       r = m->holdings[r].next_of_key) {
    if (m->holdings[r].h.units == 0) continue;
    tr_account_holding_t *more = grown(v, n, &cap, sizeof *v);
    if (more == NULL) {
      free(v);
      return TR_ENOMEM;
    }
    v = more;
    snprintf(v[n].asset, sizeof v[n].asset, "%s", m->assets[m->holdings[r].asset].a.id);
    v[n++].h = m->holdings[r].h;
  }
  *out = v;
  *out_n = n;
  return 0;
}

static int cmp_holder(const void *a, const void *b) {
  return memcmp(((const tr_asset_holder_t *)a)->account.b, ((const tr_asset_holder_t *)b)->account.b, 32);
}

static int mem_asset_holders(void *ctx, const char *asset, tr_asset_holder_t **out, size_t *out_n) {
  tr_mem_t *m = ctx;
  uint32_t a = tr_mem_asset_find(m, asset);
  tr_asset_holder_t *v = NULL;
  size_t n = 0, cap = 0;
  for (uint32_t r = a == TR_MEM_NONE ? TR_MEM_NONE : m->assets[a].holdings; r != TR_MEM_NONE;
       r = m->holdings[r].next_of_asset) {
    if (m->holdings[r].h.units == 0) continue;
    tr_asset_holder_t *more = grown(v, n, &cap, sizeof *v);
    if (more == NULL) {
      free(v);
      return TR_ENOMEM;
    }
    v = more;
    v[n].account = m->keys[m->holdings[r].key].a.id;
    v[n++].units = m->holdings[r].h.units;
  }
  if (n > 1) qsort(v, n, sizeof *v, cmp_holder);
  *out = v;
  *out_n = n;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Distributions: rows for the sink                                          */

static int mem_distribution_put(void *ctx, uint64_t seq, const char *asset, uint64_t amount, tr_dist_kind_t kind,
                                uint64_t count) {
  tr_mem_t *m = ctx;
  return m->sink->distribution_put(m->sink_ctx, seq, asset, amount, kind, count);
}

static int mem_payout_put(void *ctx, uint64_t seq, const tr_key_t *account, const char *asset, uint64_t amount) {
  tr_mem_t *m = ctx;
  return m->sink->payout_put(m->sink_ctx, seq, account, asset, amount);
}

const tr_state_ops_t tr_mem_state_ops = {
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
/* Lifetime                                                                  */

int tr_mem_init(tr_mem_t *m, const tr_mem_sink_t *sink, void *sink_ctx) {
  memset(m, 0, sizeof *m);
  m->sink = sink;
  m->sink_ctx = sink_ctx;
  randombytes_buf(m->hash_key, sizeof m->hash_key);
  randombytes_buf(m->digest_key, sizeof m->digest_key);
  return 0;
}

void tr_mem_free(tr_mem_t *m) {
  for (size_t i = 0; i < m->assets_n; i++) tr_asset_clear(&m->assets[i].a);
  free(m->assets);
  free(m->keys);
  free(m->holdings);
  free(m->sigids);
  free(m->key_ix.slots);
  free(m->asset_ix.slots);
  free(m->holding_ix.slots);
  free(m->changed_keys);
  free(m->changed_assets);
  free(m->changed_holdings);
  memset(m, 0, sizeof *m);
}

void tr_mem_track_changes(tr_mem_t *m, bool on) { m->track = on; }

void tr_mem_changes_clear(tr_mem_t *m) {
  for (size_t i = 0; i < m->changed_keys_n; i++) m->keys[m->changed_keys[i]].changed = false;
  for (size_t i = 0; i < m->changed_assets_n; i++) m->assets[m->changed_assets[i]].changed = false;
  for (size_t i = 0; i < m->changed_holdings_n; i++) m->holdings[m->changed_holdings[i]].changed = false;
  m->changed_keys_n = m->changed_assets_n = m->changed_holdings_n = 0;
}

/* ------------------------------------------------------------------------ */
/* Loading (used by tr_mem_load.c)                                           */

int tr_mem_load_account(tr_mem_t *m, const tr_account_t *a) { return mem_account_put(m, a); }
int tr_mem_load_asset(tr_mem_t *m, const tr_asset_t *a) { return mem_asset_put(m, a); }
int tr_mem_load_holding(tr_mem_t *m, const char *asset, const tr_key_t *account, const tr_holding_t *h) {
  return mem_holding_put(m, asset, account, h);
}

int tr_mem_load_entry(tr_mem_t *m, uint64_t seq, uint64_t time, const uint8_t hash[32], const tr_key_t *signer,
                      const char *tx_id) {
  if (seq != m->size + 1) return TR_ECORRUPT;
  uint8_t d[16];
  sigid_digest(m, signer, tx_id, d);
  const tr_mem_sink_t *sink = m->sink;
  static const tr_mem_sink_t quiet = {0}; /* stored nodes are not written again */
  m->sink = &quiet;
  int rc = frontier_push(m, seq, hash);
  m->sink = sink;
  if (rc == 0) rc = sigid_add(m, d, seq);
  if (rc != 0) return rc;
  m->size = seq;
  m->head_time = time;
  memcpy(m->head_hash, hash, 32);
  return 0;
}
