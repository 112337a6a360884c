/* tr_merkle.c — RFC 9162 Merkle tree over caller-stored complete subtrees.
 *
 * Workload: one append per journal entry (hot, inside the group commit), a
 * root per checkpoint (every second), and proofs on demand.  Every operation
 * touches O(log n) stored nodes: a subtree whose size is not a power of two
 * is folded from its complete "peaks" (the binary decomposition of its size),
 * which is exactly MTH of RFC 9162 §2.1.1 because MTH splits at the largest
 * power of two below n.
 */
#include "tr_merkle.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "tr_err.h"

#define HASH_BYTES TR_MERKLE_HASH_BYTES

void tr_merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[HASH_BYTES]) {
  static const uint8_t prefix = 0x00;
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, &prefix, 1);
  if (len > 0) crypto_hash_sha256_update(&st, data, len);
  crypto_hash_sha256_final(&st, out);
}

void tr_merkle_node_hash(const uint8_t l[HASH_BYTES], const uint8_t r[HASH_BYTES], uint8_t out[HASH_BYTES]) {
  /* Copy first so out may alias l or r. */
  uint8_t buf[1 + 2 * HASH_BYTES];
  buf[0] = 0x01;
  memcpy(buf + 1, l, HASH_BYTES);
  memcpy(buf + 1 + HASH_BYTES, r, HASH_BYTES);
  crypto_hash_sha256(out, buf, sizeof buf);
}

/* floor(log2(x)) for x >= 1. */
static unsigned log2_floor(uint64_t x) {
  assert(x != 0);
  return 63u - (unsigned)__builtin_clzll(x);
}

/* RFC 9162's k: the largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n) {
  assert(n >= 2);
  return UINT64_C(1) << log2_floor(n - 1);
}

/* MTH of leaves [start, start + size), size >= 1.  Requires start to be a
 * multiple of the smallest power of two >= size — true of every subtree the
 * RFC recursion visits — so that each peak is a stored complete node.  The
 * peaks, largest first, are folded right to left as MTH prescribes. */
static int subtree_hash(tr_merkle_get_fn get, void *ctx, uint64_t start, uint64_t size,
                        uint8_t out[HASH_BYTES]) {
  uint8_t peaks[64][HASH_BYTES];
  unsigned n = 0;
  uint64_t offset = start;
  assert(size >= 1);
  for (int level = 63; level >= 0; level--) {
    uint64_t width = UINT64_C(1) << level;
    if (!(size & width)) continue;
    assert(offset % width == 0);
    int rc = get(ctx, (unsigned)level, offset >> level, peaks[n]);
    if (rc != 0) return rc;
    n++;
    offset += width;
  }
  memcpy(out, peaks[n - 1], HASH_BYTES);
  for (unsigned i = n - 1; i-- > 0;) tr_merkle_node_hash(peaks[i], out, out);
  return 0;
}

int tr_merkle_append(tr_merkle_get_fn get, void *ctx, uint64_t leaf_index, const uint8_t leaf[HASH_BYTES],
                     tr_merkle_node_t out[TR_MERKLE_PATH_MAX + 1], size_t *out_n) {
  if (get == NULL || leaf == NULL || out == NULL || out_n == NULL) return TR_EARG;
  if (leaf_index >= TR_MERKLE_SIZE_MAX) return TR_EARG;
  size_t n = 0;
  out[n].level = 0;
  out[n].index = leaf_index;
  memcpy(out[n].hash, leaf, HASH_BYTES);
  /* A right child (odd index) completes its parent; climb while that holds. */
  while (out[n].index & 1) {
    uint8_t left[HASH_BYTES];
    int rc = get(ctx, out[n].level, out[n].index - 1, left);
    if (rc != 0) return rc;
    assert(n < TR_MERKLE_PATH_MAX);
    tr_merkle_node_hash(left, out[n].hash, out[n + 1].hash);
    out[n + 1].level = out[n].level + 1;
    out[n + 1].index = out[n].index >> 1;
    n++;
  }
  *out_n = n + 1;
  return 0;
}

int tr_merkle_root(tr_merkle_get_fn get, void *ctx, uint64_t size, uint8_t out[HASH_BYTES]) {
  if (get == NULL || out == NULL || size > TR_MERKLE_SIZE_MAX) return TR_EARG;
  if (size == 0) {
    crypto_hash_sha256(out, (const uint8_t *)"", 0);
    return 0;
  }
  return subtree_hash(get, ctx, 0, size, out);
}

static void reverse_path(uint8_t path[][HASH_BYTES], size_t n) {
  uint8_t tmp[HASH_BYTES];
  for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
    memcpy(tmp, path[i], HASH_BYTES);
    memcpy(path[i], path[j - 1], HASH_BYTES);
    memcpy(path[j - 1], tmp, HASH_BYTES);
  }
}

/* PATH(m, D[n]) unrolled: descend from the root towards leaf m, recording the
 * sibling subtree at each step (root's child first), then reverse so the
 * leaf's sibling comes first as in RFC 9162.  Once the walk goes left the
 * remaining subtree is complete, so at most one sibling is a folded partial
 * subtree: O(log n) lookups in all. */
int tr_merkle_inclusion_proof(tr_merkle_get_fn get, void *ctx, uint64_t leaf_index, uint64_t size,
                              uint8_t path[][HASH_BYTES], size_t *path_n) {
  if (get == NULL || path == NULL || path_n == NULL) return TR_EARG;
  if (size > TR_MERKLE_SIZE_MAX || leaf_index >= size) return TR_EARG;
  uint64_t start = 0, m = leaf_index, n = size;
  size_t len = 0;
  while (n > 1) {
    uint64_t k = split_point(n);
    int rc;
    assert(len < TR_MERKLE_PATH_MAX);
    if (m < k) {
      rc = subtree_hash(get, ctx, start + k, n - k, path[len]);
      n = k;
    } else {
      rc = subtree_hash(get, ctx, start, k, path[len]);
      start += k, m -= k, n -= k;
    }
    if (rc != 0) return rc;
    len++;
  }
  reverse_path(path, len);
  *path_n = len;
  return 0;
}

/* SUBPROOF(m, D[n], true) unrolled the same way.  The last step (m == n) adds
 * MTH(D[m]) only when the walk went right at least once (b == false); that
 * hash is then the first of the proof. */
int tr_merkle_consistency_proof(tr_merkle_get_fn get, void *ctx, uint64_t old_size, uint64_t new_size,
                                uint8_t path[][HASH_BYTES], size_t *path_n) {
  if (get == NULL || path == NULL || path_n == NULL) return TR_EARG;
  if (new_size > TR_MERKLE_SIZE_MAX || old_size == 0 || old_size > new_size) return TR_EARG;
  uint64_t start = 0, m = old_size, n = new_size;
  int complete = 1; /* RFC's b: D[0:m] is still a complete subtree of the walk */
  size_t len = 0;
  while (m < n) {
    uint64_t k = split_point(n);
    int rc;
    assert(len < TR_MERKLE_PATH_MAX);
    if (m <= k) {
      rc = subtree_hash(get, ctx, start + k, n - k, path[len]);
      n = k;
    } else {
      rc = subtree_hash(get, ctx, start, k, path[len]);
      start += k, m -= k, n -= k;
      complete = 0;
    }
    if (rc != 0) return rc;
    len++;
  }
  if (!complete) {
    assert(len < TR_MERKLE_PATH_MAX);
    int rc = subtree_hash(get, ctx, start, n, path[len]);
    if (rc != 0) return rc;
    len++;
  }
  reverse_path(path, len);
  *path_n = len;
  return 0;
}

/* RFC 9162 §2.1.3.2, step by step. */
int tr_merkle_verify_inclusion(const uint8_t leaf[HASH_BYTES], uint64_t leaf_index, uint64_t size,
                               const uint8_t path[][HASH_BYTES], size_t path_n,
                               const uint8_t root[HASH_BYTES]) {
  if (leaf == NULL || root == NULL || (path == NULL && path_n > 0)) return TR_EARG;
  if (size > TR_MERKLE_SIZE_MAX || leaf_index >= size) return TR_EARG; /* step 1 */
  if (path_n > TR_MERKLE_PATH_MAX) return TR_EINVALID;
  uint64_t fn = leaf_index, sn = size - 1; /* step 2 */
  uint8_t r[HASH_BYTES];
  memcpy(r, leaf, HASH_BYTES); /* step 3 */
  for (size_t i = 0; i < path_n; i++) { /* step 4 */
    if (sn == 0) return TR_EINVALID;
    if ((fn & 1) || fn == sn) {
      tr_merkle_node_hash(path[i], r, r);
      while (!(fn & 1) && fn != 0) fn >>= 1, sn >>= 1;
    } else {
      tr_merkle_node_hash(r, path[i], r);
    }
    fn >>= 1, sn >>= 1;
  }
  /* step 5; the root is public, the constant-time compare is just habit */
  if (sn != 0 || sodium_memcmp(r, root, HASH_BYTES) != 0) return TR_EINVALID;
  return 0;
}

/* RFC 9162 §2.1.4.2, step by step.  Step 2's "prepend first_hash" is done by
 * choosing where the walk starts instead of copying the path. */
int tr_merkle_verify_consistency(uint64_t old_size, uint64_t new_size, const uint8_t old_root[HASH_BYTES],
                                 const uint8_t new_root[HASH_BYTES], const uint8_t path[][HASH_BYTES],
                                 size_t path_n) {
  if (old_root == NULL || new_root == NULL || (path == NULL && path_n > 0)) return TR_EARG;
  if (new_size > TR_MERKLE_SIZE_MAX || old_size == 0 || old_size > new_size) return TR_EARG;
  if (old_size == new_size)
    return (path_n == 0 && sodium_memcmp(old_root, new_root, HASH_BYTES) == 0) ? 0 : TR_EINVALID;
  if (path_n == 0 || path_n > TR_MERKLE_PATH_MAX) return TR_EINVALID; /* step 1 */
  int pow2 = (old_size & (old_size - 1)) == 0;                        /* step 2 */
  const uint8_t *seed = pow2 ? old_root : path[0];
  size_t next = pow2 ? 0 : 1;
  uint64_t fn = old_size - 1, sn = new_size - 1; /* step 3 */
  while (fn & 1) fn >>= 1, sn >>= 1;             /* step 4 */
  uint8_t fr[HASH_BYTES], sr[HASH_BYTES];
  memcpy(fr, seed, HASH_BYTES); /* step 5 */
  memcpy(sr, seed, HASH_BYTES);
  for (size_t i = next; i < path_n; i++) { /* step 6 */
    if (sn == 0) return TR_EINVALID;
    if ((fn & 1) || fn == sn) {
      tr_merkle_node_hash(path[i], fr, fr);
      tr_merkle_node_hash(path[i], sr, sr);
      while (!(fn & 1) && fn != 0) fn >>= 1, sn >>= 1;
    } else {
      tr_merkle_node_hash(sr, path[i], sr);
    }
    fn >>= 1, sn >>= 1;
  }
  /* step 7 */
  if (sn != 0 || sodium_memcmp(fr, old_root, HASH_BYTES) != 0 || sodium_memcmp(sr, new_root, HASH_BYTES) != 0)
    return TR_EINVALID;
  return 0;
}
