/* tr_batch.h — the bytes a cluster replicates (PROTOCOL.md §8).
 *
 * A batch is the leader's group of verified txs, in arrival order, with
 * everything that makes applying it deterministic on every node: the clock
 * reading that fixes the entries' times, and the journal head it extends
 * (size and hash).  A node applies a batch only on exactly that head; a
 * batch naming an older head was proposed by a leader that was deposed
 * before it learned of later entries, and every node skips it alike; a
 * batch naming the node's size with another hash means the journals
 * diverged, and the node stops rather than serve a fork.
 *
 *   "TRB1" | proposer u64 | token u64 | base_size u64 | clock_ms u64 |
 *   base_hash [32] | n u32 | rpc_len u8 | proposer's JSON-RPC address
 *   [rpc_len] | n × (len u32 | sig [64] | tx bytes [len])
 *
 * The proposer's address tells every node where the leader takes writes,
 * members added at run time included (not_leader names it).
 *
 * A snapshot is the journal itself, so that a node installing one re-applies
 * every entry through the rules and checks the resulting head:
 *
 *   "TRS1" | size u64 | head_hash [32] | (size-1) × (time u64 | sig [64] |
 *   len u32 | tx bytes [len])            entries 2..size; genesis each has
 *
 * Integers are little-endian.  Both end in zero padding to a multiple of
 * 8 bytes (raft's entries must be).  Decoding checks every length.
 */
#ifndef TR_BATCH_H
#define TR_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "tr_limits.h"

typedef struct {
  uint64_t proposer, token;        /* who proposed it, and its number there: the leader's receipts */
  uint64_t base_size, clock_ms;
  uint8_t base_hash[32];
  uint32_t n;
  char proposer_rpc[TR_BATCH_RPC_CHARS_MAX + 1]; /* HOST:PORT, "" when not given */
} tr_batch_header_t;

typedef struct {
  const char *bytes;
  uint32_t len;
  const uint8_t *sig;              /* 64 bytes */
  uint64_t time;                   /* snapshots only */
} tr_batch_tx_t;

/* Reading a batch's or snapshot's txs in order. */
typedef struct {
  const uint8_t *p, *end;
  uint64_t left;
  int snapshot;
} tr_batch_reader_t;

/* An encoder: tr_batch_begin, tr_batch_add for each tx, tr_batch_finish. */
typedef struct {
  uint8_t *buf;
  size_t len, cap;
  uint32_t n;
  int failed;
} tr_batch_writer_t;

void tr_batch_begin(tr_batch_writer_t *w, const tr_batch_header_t *h);
void tr_batch_add(tr_batch_writer_t *w, const char *bytes, uint32_t len, const uint8_t sig[64]);
/* Returns 0 and the malloc'd bytes (the count patched in), or TR_ENOMEM. */
int tr_batch_finish(tr_batch_writer_t *w, void **out, size_t *len);

/* TR_EINVALID for anything malformed (not a batch, lengths that overrun). */
int tr_batch_open(const void *buf, size_t len, tr_batch_header_t *h, tr_batch_reader_t *r);
/* 1 and the next tx, 0 at the end, TR_EINVALID when the bytes run out early
 * or trail after the last tx. */
int tr_batch_next(tr_batch_reader_t *r, tr_batch_tx_t *tx);

/* What a node does with a committed batch, given its journal's size and
 * head hash, and (when the batch names an older entry) that entry's hash. */
typedef enum {
  TR_BATCH_APPLY = 0,    /* it extends this head */
  TR_BATCH_SKIP,         /* it names an older head that matches: applied already, or a deposed leader's */
  TR_BATCH_MISSING,      /* it extends an entry this journal does not have */
  TR_BATCH_DIVERGED,     /* this journal's entry at its base has another hash */
} tr_batch_verdict_t;

tr_batch_verdict_t tr_batch_verdict(const tr_batch_header_t *h, uint64_t size, const uint8_t head_hash[32],
                                    const uint8_t hash_at_base[32] /* when h->base_size < size */);

void tr_snapshot_begin(tr_batch_writer_t *w, uint64_t size, const uint8_t head_hash[32]);
void tr_snapshot_add(tr_batch_writer_t *w, uint64_t time, const char *bytes, uint32_t len, const uint8_t sig[64]);
int tr_snapshot_finish(tr_batch_writer_t *w, void **out, size_t *len);
int tr_snapshot_open(const void *buf, size_t len, uint64_t *size, uint8_t head_hash[32], tr_batch_reader_t *r);

#endif
