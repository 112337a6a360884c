/* test_merkle.c — RFC 9162 Merkle tree: appends, roots, proofs, verification.
 *
 * Three kinds of evidence:
 *   1. published known answers: the 8-leaf reference tree of Certificate
 *      Transparency (google/certificate-transparency
 *      cpp/merkletree/merkle_tree_test.cc: kInputs, kSHA256Roots,
 *      kSHA256Paths, kSHA256Proofs; the same vectors are in
 *      transparency-dev/merkle proof/verify_test.go);
 *   2. exhaustive cross-checks for every tree size 1..64 against a naive
 *      recursive MTH / PATH / SUBPROOF written straight from RFC 9162
 *      §2.1.1, §2.1.3.1 and §2.1.4.1, plus CT's corruption probes, proofs
 *      replayed against neighbouring checkpoints, and single-bit flips of
 *      every proof hash (every bit up to size 16, a bit per byte above);
 *   3. bounds: lookup counts are O(log n), and trees of 2^63 leaves work.
 */
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_merkle.h"
#include "tr_test.h"

#define H TR_MERKLE_HASH_BYTES
#define MAX_N 64          /* exhaustive range */
#define STORE_LEAVES 4096 /* capacity of the in-memory store */
#define STORE_LEVELS 13   /* log2(STORE_LEAVES) + 1 */

/* ---- An in-memory node store, filled only through tr_merkle_append ---- */

static struct {
  uint8_t hash[STORE_LEVELS][STORE_LEAVES][H];
  bool have[STORE_LEVELS][STORE_LEAVES];
  uint64_t size;
  unsigned long gets;
} st;

static int store_get(void *ctx, unsigned level, uint64_t index, uint8_t out[H]) {
  (void)ctx;
  st.gets++;
  if (level >= STORE_LEVELS || index >= ((uint64_t)STORE_LEAVES >> level) || !st.have[level][index])
    return TR_ENOT_FOUND;
  /* Complete in the current tree: a proof must never look past st.size. */
  if (((index + 1) << level) > st.size) return TR_ECORRUPT;
  memcpy(out, st.hash[level][index], H);
  return 0;
}

static void store_reset(void) { memset(&st, 0, sizeof st); }

static int store_append(const uint8_t leaf[H]) {
  tr_merkle_node_t nodes[TR_MERKLE_PATH_MAX + 1];
  size_t n = 0;
  int rc = tr_merkle_append(store_get, NULL, st.size, leaf, nodes, &n);
  if (rc != 0) return rc;
  for (size_t i = 0; i < n; i++) {
    memcpy(st.hash[nodes[i].level][nodes[i].index], nodes[i].hash, H);
    st.have[nodes[i].level][nodes[i].index] = true;
  }
  st.size++;
  return 0;
}

/* ---- Naive RFC 9162 reference over an array of leaf hashes ---- */

static uint64_t k_of(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

static void ref_mth(const uint8_t (*leaves)[H], uint64_t n, uint8_t out[H]) {
  if (n == 0) {
    crypto_hash_sha256(out, (const uint8_t *)"", 0);
  } else if (n == 1) {
    memcpy(out, leaves[0], H);
  } else {
    uint8_t l[H], r[H];
    uint64_t k = k_of(n);
    ref_mth(leaves, k, l);
    ref_mth(leaves + k, n - k, r);
    tr_merkle_node_hash(l, r, out);
  }
}

static void ref_path(const uint8_t (*leaves)[H], uint64_t m, uint64_t n, uint8_t (*out)[H], size_t *len) {
  if (n <= 1) return;
  uint64_t k = k_of(n);
  if (m < k) {
    ref_path(leaves, m, k, out, len);
    ref_mth(leaves + k, n - k, out[(*len)++]);
  } else {
    ref_path(leaves + k, m - k, n - k, out, len);
    ref_mth(leaves, k, out[(*len)++]);
  }
}

static void ref_subproof(const uint8_t (*leaves)[H], uint64_t m, uint64_t n, bool b, uint8_t (*out)[H],
                         size_t *len) {
  if (m == n) {
    if (!b) ref_mth(leaves, m, out[(*len)++]);
    return;
  }
  uint64_t k = k_of(n);
  if (m <= k) {
    ref_subproof(leaves, m, k, b, out, len);
    ref_mth(leaves + k, n - k, out[(*len)++]);
  } else {
    ref_subproof(leaves + k, m - k, n - k, false, out, len);
    ref_mth(leaves, k, out[(*len)++]);
  }
}

/* ---- Helpers ---- */

static void unhex(const char *hex, uint8_t *out, size_t len) {
  if (tr_hex_decode(hex, strlen(hex), out, len) != 0) {
    fprintf(stderr, "bad test hex %s\n", hex);
    exit(2);
  }
}

static bool paths_equal(const uint8_t (*a)[H], size_t an, const uint8_t (*b)[H], size_t bn) {
  return an == bn && (an == 0 || memcmp(a, b, an * H) == 0);
}

static int verify_incl(const uint8_t leaf[H], uint64_t i, uint64_t n, const uint8_t (*path)[H], size_t pn,
                       const uint8_t root[H]) {
  return tr_merkle_verify_inclusion(leaf, i, n, path, pn, root);
}

static int verify_cons(uint64_t m, uint64_t n, const uint8_t r1[H], const uint8_t r2[H], const uint8_t (*path)[H],
                       size_t pn) {
  return tr_merkle_verify_consistency(m, n, r1, r2, path, pn);
}

/* ---- 1. Certificate Transparency known answers ---- */

/* google/certificate-transparency cpp/merkletree/merkle_tree_test.cc */
static const char *const ct_inputs[8] = {"",         "00",       "10",       "2021", "3031", "40414243",
                                         "5051525354555657", "606162636465666768696a6b6c6d6e6f"};
static const char *const ct_roots[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
static const char *const ct_empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

typedef struct {
  uint64_t a, b; /* kSHA256Paths: 1-based leaf, tree size; kSHA256Proofs: size1, size2 */
  size_t n;
  const char *hash[3];
} ct_vector_t;

static const ct_vector_t ct_paths[4] = {
    {1, 8, 3, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6, 8, 3, {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
               "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {3, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {2, 5, 3, {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const ct_vector_t ct_proofs[5] = {
    {1, 1, 0, {NULL}},
    {1, 8, 3, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6, 8, 3, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
               "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 5, 2, {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    /* {6, 7}: only in transparency-dev/merkle proof/verify_test.go */
    {6, 7, 3, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
               "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

static void test_ct_vectors(void) {
  uint8_t data[16], leaf[H], want[H], got[H], roots[8][H];
  store_reset();
  unhex(ct_empty, want, H);
  TR_CHECK(tr_merkle_root(store_get, NULL, 0, got) == 0 && memcmp(got, want, H) == 0, "CT: empty tree root");
  for (int i = 0; i < 8; i++) {
    size_t len = strlen(ct_inputs[i]) / 2;
    unhex(ct_inputs[i], data, len);
    tr_merkle_leaf_hash(data, len, leaf);
    TR_CHECK(store_append(leaf) == 0, "CT: append leaf %d", i);
    unhex(ct_roots[i], roots[i], H);
    TR_CHECK(tr_merkle_root(store_get, NULL, (uint64_t)i + 1, got) == 0 && memcmp(got, roots[i], H) == 0,
             "CT: root of size %d", i + 1);
  }
  for (int v = 0; v < 4; v++) {
    const ct_vector_t *t = &ct_paths[v];
    uint8_t path[TR_MERKLE_PATH_MAX][H], kat[3][H];
    size_t n = 0;
    for (size_t j = 0; j < t->n; j++) unhex(t->hash[j], kat[j], H);
    int rc = tr_merkle_inclusion_proof(store_get, NULL, t->a - 1, t->b, path, &n);
    TR_CHECK(rc == 0 && paths_equal(path, n, kat, t->n), "CT: inclusion path leaf %llu size %llu",
             (unsigned long long)t->a, (unsigned long long)t->b);
    size_t len = strlen(ct_inputs[t->a - 1]) / 2;
    unhex(ct_inputs[t->a - 1], data, len);
    tr_merkle_leaf_hash(data, len, leaf);
    TR_CHECK(verify_incl(leaf, t->a - 1, t->b, kat, t->n, roots[t->b - 1]) == 0,
             "CT: inclusion path leaf %llu size %llu verifies", (unsigned long long)t->a,
             (unsigned long long)t->b);
  }
  for (int v = 0; v < 5; v++) {
    const ct_vector_t *t = &ct_proofs[v];
    uint8_t path[TR_MERKLE_PATH_MAX][H], kat[3][H];
    size_t n = 0;
    for (size_t j = 0; j < t->n; j++) unhex(t->hash[j], kat[j], H);
    int rc = tr_merkle_consistency_proof(store_get, NULL, t->a, t->b, path, &n);
    TR_CHECK(rc == 0 && paths_equal(path, n, kat, t->n), "CT: consistency proof %llu -> %llu",
             (unsigned long long)t->a, (unsigned long long)t->b);
    TR_CHECK(verify_cons(t->a, t->b, roots[t->a - 1], roots[t->b - 1], kat, t->n) == 0,
             "CT: consistency proof %llu -> %llu verifies", (unsigned long long)t->a, (unsigned long long)t->b);
  }
}

/* ---- 2. Exhaustive sizes 1..MAX_N ---- */

static uint8_t leaves[2 * MAX_N + 2][H];
static uint8_t roots[2 * MAX_N + 2][H]; /* roots[n] = MTH of the first n leaves */

/* Count of probes that were wrongly accepted; a check reports it per size. */
static unsigned long wrong;

static void expect_fail(int rc) {
  if (rc == 0) wrong++;
}

/* Bit flips: every bit of every proof hash up to size FLIP_ALL_N; above it
 * one bit per byte (the bit moving with the byte and the hash's position),
 * which keeps the run in seconds — to the verifier any flip is just another
 * 32-byte value. */
#define FLIP_ALL_N 16
static int flip_step(uint64_t n) { return n <= FLIP_ALL_N ? 1 : 8; }
static void flip(uint8_t h[H], int bit, size_t j) {
  int b = bit / 8, k = (bit + b + (int)j) % 8;
  h[b] ^= (uint8_t)(1u << k);
}

/* CT's VerifierCheck probes, plus single-bit flips of every hash. */
static void corrupt_inclusion(uint64_t i, uint64_t n, uint8_t (*path)[H], size_t pn) {
  const uint8_t *leaf = leaves[i], *root = roots[n];
  uint8_t zero[H] = {0}, tmp[TR_MERKLE_PATH_MAX + 1][H];
  expect_fail(verify_incl(leaf, i - 1, n, path, pn, root));
  expect_fail(verify_incl(leaf, i + 1, n, path, pn, root));
  expect_fail(verify_incl(leaf, i ^ 2, n, path, pn, root));
  expect_fail(verify_incl(leaf, i, n * 2, path, pn, root));
  expect_fail(verify_incl(leaf, i, n / 2, path, pn, root));
  expect_fail(verify_incl(leaves[(i + 1) % (n + 1)], i, n, path, pn, root)); /* wrong leaf */
  expect_fail(verify_incl(leaf, i, n, path, pn, roots[0]));                  /* empty-tree root */
  memcpy(tmp, path, pn * H);
  memcpy(tmp[pn], zero, H);
  expect_fail(verify_incl(leaf, i, n, tmp, pn + 1, root)); /* trailing garbage */
  memcpy(tmp[pn], root, H);
  expect_fail(verify_incl(leaf, i, n, tmp, pn + 1, root)); /* trailing root */
  if (pn > 0) expect_fail(verify_incl(leaf, i, n, path, pn - 1, root)); /* truncated */
  memcpy(tmp[0], root, H);
  memcpy(tmp + 1, path, pn * H);
  expect_fail(verify_incl(leaf, i, n, tmp, pn + 1, root)); /* preceding root */
  for (size_t j = 0; j < pn; j++)
    for (int bit = 0; bit < 8 * H; bit += flip_step(n)) {
      flip(path[j], bit, j);
      expect_fail(verify_incl(leaf, i, n, path, pn, root));
      flip(path[j], bit, j);
    }
  /* The same proof against a neighbouring checkpoint (its own size and root). */
  for (uint64_t n2 = n - 1; n2 <= n + 1; n2 += 2)
    if (n2 > i && n2 >= 1) expect_fail(verify_incl(leaf, i, n2, path, pn, roots[n2]));
}

/* CT's VerifierConsistencyCheck probes plus single-bit flips. */
static void corrupt_consistency(uint64_t m, uint64_t n, uint8_t (*path)[H], size_t pn) {
  const uint8_t *r1 = roots[m], *r2 = roots[n];
  uint8_t zero[H] = {0}, tmp[TR_MERKLE_PATH_MAX + 1][H];
  if (pn == 0) return; /* m == n: covered by test_edges */
  expect_fail(verify_cons(m - 1, n, r1, r2, path, pn));
  expect_fail(verify_cons(m + 1, n, r1, r2, path, pn));
  expect_fail(verify_cons(m ^ 2, n, r1, r2, path, pn));
  expect_fail(verify_cons(m, n * 2, r1, r2, path, pn));
  expect_fail(verify_cons(m, n / 2, r1, r2, path, pn));
  expect_fail(verify_cons(m, n, r1, zero, path, pn));
  expect_fail(verify_cons(m, n, zero, r2, path, pn));
  expect_fail(verify_cons(m, n, r2, r1, path, pn));
  expect_fail(verify_cons(m, n, r1, r2, path, 0));
  memcpy(tmp, path, pn * H);
  memcpy(tmp[pn], zero, H);
  expect_fail(verify_cons(m, n, r1, r2, tmp, pn + 1));
  memcpy(tmp[pn], path[pn - 1], H);
  expect_fail(verify_cons(m, n, r1, r2, tmp, pn + 1));
  expect_fail(verify_cons(m, n, r1, r2, path, pn - 1));
  memcpy(tmp[0], zero, H);
  memcpy(tmp + 1, path, pn * H);
  expect_fail(verify_cons(m, n, r1, r2, tmp, pn + 1));
  memcpy(tmp[0], path[0], H);
  expect_fail(verify_cons(m, n, r1, r2, tmp, pn + 1));
  for (size_t j = 0; j < pn; j++)
    for (int bit = 0; bit < 8 * H; bit += flip_step(n)) {
      flip(path[j], bit, j);
      expect_fail(verify_cons(m, n, r1, r2, path, pn));
      flip(path[j], bit, j);
    }
  /* Neighbouring checkpoints with their own roots. */
  if (m + 1 < n) expect_fail(verify_cons(m + 1, n, roots[m + 1], r2, path, pn));
  if (m > 1) expect_fail(verify_cons(m - 1, n, roots[m - 1], r2, path, pn));
  expect_fail(verify_cons(m, n + 1, r1, roots[n + 1], path, pn));
  if (n - 1 > m) expect_fail(verify_cons(m, n - 1, r1, roots[n - 1], path, pn));
}

/* Every inclusion proof of the current tree (size st.size). */
static void check_inclusions(uint64_t n, unsigned long *bad) {
  for (uint64_t i = 0; i < n; i++) {
    uint8_t path[TR_MERKLE_PATH_MAX][H], ref[TR_MERKLE_PATH_MAX][H];
    size_t pn = 0, rn = 0;
    if (tr_merkle_inclusion_proof(store_get, NULL, i, n, path, &pn) != 0) {
      (*bad)++;
      continue;
    }
    ref_path((const uint8_t(*)[H])leaves, i, n, ref, &rn);
    if (!paths_equal(path, pn, ref, rn)) (*bad)++;
    if (verify_incl(leaves[i], i, n, path, pn, roots[n]) != 0) (*bad)++;
    corrupt_inclusion(i, n, path, pn);
  }
}

/* Every consistency proof m -> n, 1 <= m <= n, of the current tree. */
static void check_consistencies(uint64_t n, unsigned long *bad) {
  for (uint64_t m = 1; m <= n; m++) {
    uint8_t path[TR_MERKLE_PATH_MAX][H], ref[TR_MERKLE_PATH_MAX][H];
    size_t pn = 0, rn = 0;
    if (tr_merkle_consistency_proof(store_get, NULL, m, n, path, &pn) != 0) {
      (*bad)++;
      continue;
    }
    if (m < n) ref_subproof((const uint8_t(*)[H])leaves, m, n, true, ref, &rn);
    if (!paths_equal(path, pn, ref, rn)) (*bad)++;
    if (verify_cons(m, n, roots[m], roots[n], path, pn) != 0) (*bad)++;
    corrupt_consistency(m, n, path, pn);
  }
}

static void test_exhaustive(void) {
  /* CT's reference data: leaf i is the single byte i. */
  for (int i = 0; i < 2 * MAX_N + 2; i++) {
    uint8_t b = (uint8_t)i;
    tr_merkle_leaf_hash(&b, 1, leaves[i]);
  }
  for (int n = 0; n < 2 * MAX_N + 2; n++) ref_mth((const uint8_t(*)[H])leaves, (uint64_t)n, roots[n]);
  store_reset();
  for (uint64_t n = 1; n <= MAX_N; n++) {
    uint8_t root[H];
    unsigned long bad = 0;
    wrong = 0;
    int rc = store_append(leaves[n - 1]);
    rc = rc ? rc : tr_merkle_root(store_get, NULL, n, root);
    check_inclusions(n, &bad);
    check_consistencies(n, &bad);
    TR_CHECK(rc == 0 && memcmp(root, roots[n], H) == 0 && bad == 0 && wrong == 0,
             "size %llu: root = naive MTH; %llu inclusion and %llu consistency proofs equal the RFC "
             "recursion and verify; corrupted probes accepted: %lu",
             (unsigned long long)n, (unsigned long long)n, (unsigned long long)n, wrong);
  }
}

/* ---- 3. Edges, bounds, costs ---- */

static int failing_get(void *ctx, unsigned level, uint64_t index, uint8_t out[H]) {
  (void)ctx, (void)level, (void)index, (void)out;
  return TR_EIO;
}

static void test_edges(void) {
  uint8_t path[TR_MERKLE_PATH_MAX][H], r[H];
  size_t pn = 99;
  /* st holds MAX_N leaves from test_exhaustive */
  TR_CHECK(tr_merkle_inclusion_proof(store_get, NULL, 5, 5, path, &pn) == TR_EARG, "proof: index == size is EARG");
  TR_CHECK(tr_merkle_inclusion_proof(store_get, NULL, 0, 0, path, &pn) == TR_EARG, "proof: size 0 is EARG");
  TR_CHECK(tr_merkle_consistency_proof(store_get, NULL, 0, 5, path, &pn) == TR_EARG, "consistency: from 0 is EARG");
  TR_CHECK(tr_merkle_consistency_proof(store_get, NULL, 6, 5, path, &pn) == TR_EARG, "consistency: from > to is EARG");
  TR_CHECK(tr_merkle_consistency_proof(store_get, NULL, 7, 7, path, &pn) == 0 && pn == 0,
           "consistency: from == to gives the empty proof");
  TR_CHECK(verify_incl(leaves[0], 0, 0, path, 0, roots[0]) == TR_EARG, "verify inclusion: size 0 is EARG");
  TR_CHECK(verify_incl(leaves[3], 3, 3, path, 0, roots[3]) == TR_EARG, "verify inclusion: index == size is EARG");
  TR_CHECK(verify_incl(leaves[0], 0, 1, NULL, 0, roots[1]) == 0, "verify inclusion: size 1, empty path");
  TR_CHECK(verify_incl(leaves[0], 0, 1, NULL, 0, roots[0]) == TR_EINVALID, "verify inclusion: size 1, wrong root");
  TR_CHECK(verify_cons(0, 5, roots[0], roots[5], NULL, 0) == TR_EARG, "verify consistency: old 0 is EARG (RFC)");
  TR_CHECK(verify_cons(0, 0, roots[0], roots[0], NULL, 0) == TR_EARG, "verify consistency: 0 -> 0 is EARG");
  TR_CHECK(verify_cons(6, 5, roots[6], roots[5], path, 1) == TR_EARG, "verify consistency: old > new is EARG");
  TR_CHECK(verify_cons(5, 5, roots[5], roots[5], NULL, 0) == 0, "verify consistency: equal sizes, equal roots, empty");
  TR_CHECK(verify_cons(5, 5, roots[5], roots[4], NULL, 0) == TR_EINVALID,
           "verify consistency: equal sizes, other root");
  memcpy(path[0], roots[5], H);
  TR_CHECK(verify_cons(5, 5, roots[5], roots[5], path, 1) == TR_EINVALID,
           "verify consistency: equal sizes with a non-empty path");
  TR_CHECK(verify_cons(1, 2, roots[1], roots[2], NULL, 0) == TR_EINVALID, "verify consistency: empty path 1 -> 2");
  TR_CHECK(tr_merkle_root(failing_get, NULL, 3, r) == TR_EIO, "root: get errors pass through");
  TR_CHECK(tr_merkle_inclusion_proof(failing_get, NULL, 0, 3, path, &pn) == TR_EIO, "proof: get errors pass through");
  TR_CHECK(tr_merkle_consistency_proof(failing_get, NULL, 1, 3, path, &pn) == TR_EIO,
           "consistency: get errors pass through");
  tr_merkle_node_t nodes[TR_MERKLE_PATH_MAX + 1];
  TR_CHECK(tr_merkle_append(failing_get, NULL, 1, leaves[1], nodes, &pn) == TR_EIO,
           "append: get errors pass through");
  TR_CHECK(tr_merkle_append(failing_get, NULL, 2, leaves[2], nodes, &pn) == 0 && pn == 1,
           "append at an even index needs no lookup");
}

static unsigned popcount64(uint64_t x) { return (unsigned)__builtin_popcountll(x); }
static unsigned bitlen(uint64_t x) { return x ? 64u - (unsigned)__builtin_clzll(x) : 0; }

/* O(log n) lookups: count calls of get over a 4095-leaf tree. */
static void test_costs(void) {
  unsigned long worst_append = 0, worst_root = 0, worst_incl = 0, worst_cons = 0;
  bool exact = true;
  uint8_t path[TR_MERKLE_PATH_MAX][H], root[H], leaf[H];
  size_t pn;
  store_reset();
  for (uint64_t n = 1; n < STORE_LEAVES; n++) {
    uint8_t b[8];
    for (int j = 0; j < 8; j++) b[j] = (uint8_t)(n >> (8 * j));
    tr_merkle_leaf_hash(b, sizeof b, leaf);
    st.gets = 0;
    store_append(leaf);
    exact &= st.gets == (unsigned long)__builtin_ctzll(~(n - 1)); /* trailing ones of the index */
    worst_append = st.gets > worst_append ? st.gets : worst_append;
    st.gets = 0;
    tr_merkle_root(store_get, NULL, n, root);
    exact &= st.gets == popcount64(n);
    worst_root = st.gets > worst_root ? st.gets : worst_root;
    for (uint64_t i = 0; i < n; i += 1 + n / 7) {
      st.gets = 0;
      tr_merkle_inclusion_proof(store_get, NULL, i, n, path, &pn);
      exact &= st.gets <= 2 * bitlen(n);
      worst_incl = st.gets > worst_incl ? st.gets : worst_incl;
      st.gets = 0;
      tr_merkle_consistency_proof(store_get, NULL, i + 1, n, path, &pn);
      exact &= st.gets <= 2 * bitlen(n) + 1;
      worst_cons = st.gets > worst_cons ? st.gets : worst_cons;
    }
  }
  TR_CHECK(exact, "lookups: append = trailing ones of the index, root = popcount(n), proofs <= 2*log2(n)+1 "
                  "(worst over n < 4096: append %lu, root %lu, inclusion %lu, consistency %lu)",
           worst_append, worst_root, worst_incl, worst_cons);
}

/* A tree whose leaves all have hash L is consistent at every size: node
 * (l, i) = N_l with N_0 = L, N_{l+1} = H(N_l || N_l).  That lets us reach
 * TR_MERKLE_SIZE_MAX = 2^63 leaves without storing them. */
static uint8_t uniform[64][H];

static int uniform_get(void *ctx, unsigned level, uint64_t index, uint8_t out[H]) {
  (void)ctx, (void)index;
  if (level >= 64) return TR_ENOT_FOUND;
  memcpy(out, uniform[level], H);
  return 0;
}

static void test_huge(void) {
  const uint64_t max = TR_MERKLE_SIZE_MAX;
  uint8_t path[TR_MERKLE_PATH_MAX][H], r_max[H], r3[H], r_m1[H];
  size_t pn = 0;
  tr_merkle_leaf_hash((const uint8_t *)"x", 1, uniform[0]);
  for (int l = 1; l < 64; l++) tr_merkle_node_hash(uniform[l - 1], uniform[l - 1], uniform[l]);
  TR_CHECK(tr_merkle_root(uniform_get, NULL, max, r_max) == 0 && memcmp(r_max, uniform[63], H) == 0,
           "2^63 leaves: root is the level-63 node");
  TR_CHECK(tr_merkle_inclusion_proof(uniform_get, NULL, max - 1, max, path, &pn) == 0 && pn == 63 &&
               verify_incl(uniform[0], max - 1, max, path, pn, r_max) == 0,
           "2^63 leaves: inclusion of the last leaf, 63 hashes, verifies");
  tr_merkle_root(uniform_get, NULL, 3, r3);
  TR_CHECK(tr_merkle_consistency_proof(uniform_get, NULL, 3, max, path, &pn) == 0 && pn == TR_MERKLE_PATH_MAX &&
               verify_cons(3, max, r3, r_max, path, pn) == 0,
           "2^63 leaves: consistency 3 -> 2^63 has TR_MERKLE_PATH_MAX hashes and verifies");
  tr_merkle_root(uniform_get, NULL, max - 1, r_m1);
  TR_CHECK(tr_merkle_consistency_proof(uniform_get, NULL, max - 1, max, path, &pn) == 0 &&
               verify_cons(max - 1, max, r_m1, r_max, path, pn) == 0,
           "2^63 leaves: consistency 2^63-1 -> 2^63 verifies");
  tr_merkle_node_t nodes[TR_MERKLE_PATH_MAX + 1];
  TR_CHECK(tr_merkle_append(uniform_get, NULL, max - 1, uniform[0], nodes, &pn) == 0 && pn == 64 &&
               nodes[63].level == 63 && memcmp(nodes[63].hash, r_max, H) == 0,
           "append of leaf 2^63-1 completes 63 parents: 64 nodes fit the out array");
  TR_CHECK(tr_merkle_root(uniform_get, NULL, max + 1, r3) == TR_EARG, "size 2^63+1 is EARG");
  TR_CHECK(tr_merkle_append(uniform_get, NULL, max, uniform[0], nodes, &pn) == TR_EARG,
           "append past 2^63 leaves is EARG");
  TR_CHECK(verify_incl(uniform[0], 0, UINT64_MAX, path, 0, r_max) == TR_EARG, "verify size 2^64-1 is EARG");
  uint8_t long_path[TR_MERKLE_PATH_MAX + 1][H] = {{0}};
  TR_CHECK(verify_incl(uniform[0], 0, 2, long_path, TR_MERKLE_PATH_MAX + 1, r_max) == TR_EINVALID,
           "a path longer than TR_MERKLE_PATH_MAX is refused");
}

int main(void) {
  if (sodium_init() < 0) return 2;
  test_ct_vectors();
  test_exhaustive();
  test_edges();
  test_costs();
  test_huge();
  return tr_test_done();
}
