/* tr_batch.c — encoding and decoding of replicated batches and snapshots
 * (tr_batch.h). */
#include "tr_batch.h"

#include <stdlib.h>
#include <string.h>

#include "tr_err.h"

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static uint32_t get_u32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* Room for `more` bytes at the end; a failed growth sticks. */
static uint8_t *reserve(tr_batch_writer_t *w, size_t more) {
  if (w->failed) return NULL;
  if (w->len + more > w->cap) {
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + more) cap *= 2;
    uint8_t *b = realloc(w->buf, cap);
    if (b == NULL) {
      w->failed = 1;
      return NULL;
    }
    w->buf = b;
    w->cap = cap;
  }
  uint8_t *p = w->buf + w->len;
  w->len += more;
  return p;
}

void tr_batch_begin(tr_batch_writer_t *w, const tr_batch_header_t *h) {
  *w = (tr_batch_writer_t){0};
  uint8_t *p = reserve(w, TR_BATCH_HEADER_BYTES);
  if (p == NULL) return;
  memcpy(p, "TRB1", 4);
  put_u64(p + 4, h->proposer);
  put_u64(p + 12, h->token);
  put_u64(p + 20, h->base_size);
  put_u64(p + 28, h->clock_ms);
  memcpy(p + 36, h->base_hash, 32);
  put_u32(p + 68, 0); /* the count, patched by finish */
  size_t rpc_len = strnlen(h->proposer_rpc, TR_BATCH_RPC_CHARS_MAX);
  uint8_t *q = reserve(w, 1 + rpc_len);
  if (q == NULL) return;
  q[0] = (uint8_t)rpc_len;
  memcpy(q + 1, h->proposer_rpc, rpc_len);
}

void tr_batch_add(tr_batch_writer_t *w, const char *bytes, uint32_t len, const uint8_t sig[64]) {
  uint8_t *p = reserve(w, 4 + 64 + (size_t)len);
  if (p == NULL) return;
  put_u32(p, len);
  memcpy(p + 4, sig, 64);
  memcpy(p + 68, bytes, len);
  w->n++;
}

/* Raft buffers are kept a multiple of 8 bytes long: C-Raft 0.15 pads entries
 * to 8 in its segments and, in some load paths, does not skip that padding
 * for the next entry of the same batch (dqlite pads its commands too). */
static int finish(tr_batch_writer_t *w, size_t count_at, void **out, size_t *len, int wide) {
  size_t pad = (8 - w->len % 8) % 8;
  uint8_t *p = pad ? reserve(w, pad) : NULL;
  if (p) memset(p, 0, pad);
  if (w->failed) {
    free(w->buf);
    *w = (tr_batch_writer_t){0};
    return TR_ENOMEM;
  }
  if (wide) put_u64(w->buf + count_at, w->n);
  else put_u32(w->buf + count_at, w->n);
  *out = w->buf;
  *len = w->len;
  *w = (tr_batch_writer_t){0};
  return 0;
}

int tr_batch_finish(tr_batch_writer_t *w, void **out, size_t *len) { return finish(w, 68, out, len, 0); }

int tr_batch_open(const void *buf, size_t len, tr_batch_header_t *h, tr_batch_reader_t *r) {
  const uint8_t *p = buf;
  if (len < TR_BATCH_HEADER_BYTES || len > TR_BATCH_BYTES_MAX || memcmp(p, "TRB1", 4) != 0) return TR_EINVALID;
  h->proposer = get_u64(p + 4);
  h->token = get_u64(p + 12);
  h->base_size = get_u64(p + 20);
  h->clock_ms = get_u64(p + 28);
  memcpy(h->base_hash, p + 36, 32);
  h->n = get_u32(p + 68);
  if (h->n > TR_COMMIT_BATCH_MAX || len < TR_BATCH_HEADER_BYTES + 1) return TR_EINVALID;
  size_t rpc_len = p[TR_BATCH_HEADER_BYTES];
  if (rpc_len > TR_BATCH_RPC_CHARS_MAX || len < TR_BATCH_HEADER_BYTES + 1 + rpc_len) return TR_EINVALID;
  memcpy(h->proposer_rpc, p + TR_BATCH_HEADER_BYTES + 1, rpc_len);
  h->proposer_rpc[rpc_len] = '\0';
  if (strlen(h->proposer_rpc) != rpc_len) return TR_EINVALID; /* no NUL inside */
  *r = (tr_batch_reader_t){.p = p + TR_BATCH_HEADER_BYTES + 1 + rpc_len, .end = p + len, .left = h->n};
  return 0;
}

/* The end: nothing left but the zero padding to a multiple of 8. */
static int at_end(const tr_batch_reader_t *r) {
  size_t rest = (size_t)(r->end - r->p);
  if (rest >= 8) return TR_EINVALID;
  for (size_t i = 0; i < rest; i++)
    if (r->p[i] != 0) return TR_EINVALID;
  return 0;
}

int tr_batch_next(tr_batch_reader_t *r, tr_batch_tx_t *tx) {
  if (r->left == 0) return at_end(r);
  size_t avail = (size_t)(r->end - r->p);
  size_t fixed = r->snapshot ? 8 + 64 + 4 : 4 + 64;
  if (avail < fixed) return TR_EINVALID;
  if (r->snapshot) {
    tx->time = get_u64(r->p);
    tx->sig = r->p + 8;
    tx->len = get_u32(r->p + 72);
  } else {
    tx->time = 0;
    tx->len = get_u32(r->p);
    tx->sig = r->p + 4;
  }
  if (tx->len == 0 || tx->len > TR_TX_BYTES_MAX || avail - fixed < tx->len) return TR_EINVALID;
  tx->bytes = (const char *)r->p + fixed;
  r->p += fixed + tx->len;
  r->left--;
  return 1;
}

tr_batch_verdict_t tr_batch_verdict(const tr_batch_header_t *h, uint64_t size, const uint8_t head_hash[32],
                                    const uint8_t hash_at_base[32]) {
  if (h->base_size > size) return TR_BATCH_MISSING;
  const uint8_t *mine = h->base_size == size ? head_hash : hash_at_base;
  if (mine == NULL || memcmp(mine, h->base_hash, 32) != 0) return TR_BATCH_DIVERGED;
  return h->base_size == size ? TR_BATCH_APPLY : TR_BATCH_SKIP;
}

#define SNAPSHOT_HEADER_BYTES (4 + 8 + 32 + 8)

void tr_snapshot_begin(tr_batch_writer_t *w, uint64_t size, const uint8_t head_hash[32]) {
  *w = (tr_batch_writer_t){0};
  uint8_t *p = reserve(w, SNAPSHOT_HEADER_BYTES);
  if (p == NULL) return;
  memcpy(p, "TRS1", 4);
  put_u64(p + 4, size);
  memcpy(p + 12, head_hash, 32);
  put_u64(p + 44, 0); /* the entry count, patched by finish */
}

void tr_snapshot_add(tr_batch_writer_t *w, uint64_t time, const char *bytes, uint32_t len, const uint8_t sig[64]) {
  uint8_t *p = reserve(w, 8 + 64 + 4 + (size_t)len);
  if (p == NULL) return;
  put_u64(p, time);
  memcpy(p + 8, sig, 64);
  put_u32(p + 72, len);
  memcpy(p + 76, bytes, len);
  w->n++;
}

int tr_snapshot_finish(tr_batch_writer_t *w, void **out, size_t *len) {
  return finish(w, 44, out, len, 1);
}

int tr_snapshot_open(const void *buf, size_t len, uint64_t *size, uint8_t head_hash[32], tr_batch_reader_t *r) {
  const uint8_t *p = buf;
  if (len < SNAPSHOT_HEADER_BYTES || memcmp(p, "TRS1", 4) != 0) return TR_EINVALID;
  *size = get_u64(p + 4);
  memcpy(head_hash, p + 12, 32);
  uint64_t n = get_u64(p + 44);
  if (*size == 0 || n != *size - 1) return TR_EINVALID;
  *r = (tr_batch_reader_t){.p = p + SNAPSHOT_HEADER_BYTES, .end = p + len, .left = n, .snapshot = 1};
  return 0;
}
