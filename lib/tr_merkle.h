/* tr_merkle.h — the RFC 9162 (RFC 6962) Merkle tree of the journal.
 *
 * Leaf hash = SHA-256(0x00 || data), interior node = SHA-256(0x01 || l || r)
 * (PROTOCOL.md §3).  The tree of size n covers leaves 0..n-1 (entry seq =
 * leaf index + 1).
 *
 * Storage belongs to the caller.  The functions here read the hash of any
 * COMPLETE subtree through `get`, addressed by (level, index): level 0 holds
 * the leaves and node (l, i) covers leaves [i * 2^l, (i + 1) * 2^l).  Such a
 * node never changes once complete, so the ledger's rows are write-once like
 * the journal itself; it keeps one level in TR_MERKLE_STRATUM and folds the
 * rest on demand (below).  The
 * root of a tree whose size is not a power of two is not stored: it is folded
 * from at most 64 complete subtrees on demand.
 *
 * Cost: tr_merkle_append, tr_merkle_root and both proof generators make
 * O(log n) calls of `get` (at most ~2 * 64), never a walk of the whole tree.
 * Verification needs no storage at all.
 *
 * Return values: 0 on success; TR_EARG when sizes or indexes are impossible
 * (index >= size, old_size == 0, old_size > new_size, size above
 * TR_MERKLE_SIZE_MAX); TR_EINVALID when a proof does not verify; any negative
 * code the `get` callback returned, unchanged.
 */
#ifndef TR_MERKLE_H
#define TR_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TR_MERKLE_HASH_BYTES 32

/* Largest tree size the generators and verifiers accept: 2^63 leaves.
 * Why: a tree of at most 2^63 leaves is at most 63 levels deep, so an
 * inclusion proof has at most 63 hashes and a consistency proof at most 64
 * (one seed node plus an inclusion path); with the full uint64 range a
 * consistency proof could reach 65.  The contract's integers stop at 2^53-1
 * (PROTOCOL.md §1), so the bound is never reached by a real journal. */
#define TR_MERKLE_SIZE_MAX (UINT64_C(1) << 63)

/* Most hashes in any proof path, and most new nodes one append can complete
 * beyond the leaf itself (see TR_MERKLE_SIZE_MAX for why 64 suffices). */
#define TR_MERKLE_PATH_MAX 64

/* Which complete subtrees a store keeps: those at levels that are a
 * multiple of TR_MERKLE_STRATUM, above the leaves (a leaf is its entry's
 * hash).  A node in between is folded from the 2^k kept nodes (or leaves)
 * beneath it, k < TR_MERKLE_STRATUM, when a root or a proof asks for it.
 * Why 2: the writer behind adds one row per 3 entries instead of one per
 * entry (a B-tree insert each), and a proof pays one more range read of two
 * rows and one more hash (SHA-256: ~7.7k instructions here) per two levels.
 * At 4 the writer saved another quarter of a row per entry, but a proof at
 * 10^5 entries cost 3.2 times as many instructions as with every level kept
 * (callgrind, ledger-bench): 11 hashes per four levels. */
#define TR_MERKLE_STRATUM 2

static inline bool tr_merkle_level_kept(unsigned level) { return level > 0 && level % TR_MERKLE_STRATUM == 0; }

/* Looks up the stored hash of the complete subtree (level, index).  Returns 0
 * and fills out, or a negative tr_err (e.g. TR_ENOT_FOUND, TR_EIO), which the
 * caller of the tr_merkle_* function receives unchanged.  The functions below
 * only ask for nodes that are complete in the tree size they were given. */
typedef int (*tr_merkle_get_fn)(void *ctx, unsigned level, uint64_t index,
                                uint8_t out[TR_MERKLE_HASH_BYTES]);

/* One complete subtree to store: node (level, index) and its hash. */
typedef struct {
  unsigned level;
  uint64_t index;
  uint8_t hash[TR_MERKLE_HASH_BYTES];
} tr_merkle_node_t;

/* SHA-256(0x00 || data): the leaf hash of RFC 9162 §2.1.1. */
void tr_merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[TR_MERKLE_HASH_BYTES]);

/* SHA-256(0x01 || l || r): an interior node.  out may alias l or r. */
void tr_merkle_node_hash(const uint8_t l[TR_MERKLE_HASH_BYTES], const uint8_t r[TR_MERKLE_HASH_BYTES],
                         uint8_t out[TR_MERKLE_HASH_BYTES]);

/* Appends leaf hash `leaf` at leaf_index (= current tree size) and writes the
 * subtrees it completes into out[0..*out_n): out[0] is the leaf itself at
 * level 0, then each parent it completes, in increasing level.  The caller
 * must have stored every node returned by the appends of leaves
 * 0..leaf_index-1 (it reads the left siblings through `get`), and must store
 * all of out[] before the next append.  Returns 0, TR_EARG, or a get error. */
int tr_merkle_append(tr_merkle_get_fn get, void *ctx, uint64_t leaf_index,
                     const uint8_t leaf[TR_MERKLE_HASH_BYTES],
                     tr_merkle_node_t out[TR_MERKLE_PATH_MAX + 1], size_t *out_n);

/* MTH of the first `size` leaves.  Size 0 gives SHA-256 of the empty string
 * (RFC 9162 §2.1.1).  Returns 0, TR_EARG, or a get error. */
int tr_merkle_root(tr_merkle_get_fn get, void *ctx, uint64_t size, uint8_t out[TR_MERKLE_HASH_BYTES]);

/* RFC 9162 §2.1.3.1 PATH(leaf_index, D[size]), leaf's sibling first.  path
 * must hold TR_MERKLE_PATH_MAX hashes.  Requires leaf_index < size. */
int tr_merkle_inclusion_proof(tr_merkle_get_fn get, void *ctx, uint64_t leaf_index, uint64_t size,
                              uint8_t path[][TR_MERKLE_HASH_BYTES], size_t *path_n);

/* RFC 9162 §2.1.4.1 PROOF(old_size, D[new_size]).  Requires
 * 1 <= old_size <= new_size; old_size == new_size gives the empty proof
 * (PROTOCOL.md §5 ledger.consistency).  path must hold TR_MERKLE_PATH_MAX. */
int tr_merkle_consistency_proof(tr_merkle_get_fn get, void *ctx, uint64_t old_size, uint64_t new_size,
                                uint8_t path[][TR_MERKLE_HASH_BYTES], size_t *path_n);

/* RFC 9162 §2.1.3.2.  Returns 0 when `path` proves leaf hash `leaf` at
 * leaf_index in the tree of `size` leaves with root `root`; TR_EARG when
 * leaf_index >= size; TR_EINVALID otherwise.  Constant-time root compare. */
int tr_merkle_verify_inclusion(const uint8_t leaf[TR_MERKLE_HASH_BYTES], uint64_t leaf_index, uint64_t size,
                               const uint8_t path[][TR_MERKLE_HASH_BYTES], size_t path_n,
                               const uint8_t root[TR_MERKLE_HASH_BYTES]);

/* RFC 9162 §2.1.4.2.  Returns 0 when `path` proves the tree (old_size,
 * old_root) is a prefix of (new_size, new_root).  old_size == new_size
 * verifies only an empty path with equal roots (the RFC defines proofs only
 * for old_size < new_size; this is what ledger.consistency returns then).
 * TR_EARG when old_size == 0 or old_size > new_size; TR_EINVALID otherwise. */
int tr_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
                                 const uint8_t old_root[TR_MERKLE_HASH_BYTES],
                                 const uint8_t new_root[TR_MERKLE_HASH_BYTES],
                                 const uint8_t path[][TR_MERKLE_HASH_BYTES], size_t path_n);

#endif
