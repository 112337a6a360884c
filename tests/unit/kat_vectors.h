/* kat_vectors.h - known-answer vectors for tranche (PROTOCOL.md sections 2, 3).
 *
 * GENERATED FILE - do not edit.  Regenerate with:
 *     /usr/bin/python3 tests/vectors/make_kat.py > tests/unit/kat_vectors.h
 *
 * Computed independently of the C code by tests/vectors/make_kat.py using
 * Python hashlib (SHA-256) and the `cryptography` package (Ed25519, RFC 8032,
 * deterministic signatures):
 *   - seeds: node = bytes 0x01..0x20, admin = 0x21..0x40, investor = 0x41..0x60;
 *     public keys are the RFC 8032 keys of those 32-byte seeds;
 *   - chain id "test.example/kat";
 *   - TX1 = the genesis bytes of section 4, signed by the node key;
 *     TX2 = an account.open of the investor (roles [investor], US, kyc true),
 *     id "open-1", signed by the admin key;
 *   - txid = SHA-256(tx); sig = Ed25519(seed, "TRANCHE/TX/1\n" || tx);
 *   - entry_bytes = "TRANCHE/ENTRY/1\n" || u64be(seq) || u64be(time) || prev(32)
 *                   || txid(32) || sig(64)   (160 bytes);
 *     hash = SHA-256(0x00 || entry_bytes); seq 1 at time 1700000000000 with prev = 32 zero
 *     bytes, seq 2 at time 1700000000001 with prev = hash of seq 1;
 *   - ROOT2 = SHA-256(0x01 || H1 || H2), the RFC 9162 root of the size-2 tree;
 *   - the checkpoint is the C2SP signed note of that tree, signed by the node
 *     key, key name = chain id, key id = SHA-256(name || 0x0A || 0x01 || pk)[:4].
 * All byte strings are lowercase hex unless the name ends in _TEXT. */
#ifndef KAT_VECTORS_H
#define KAT_VECTORS_H

#define KAT_CHAIN "test.example/kat"
#define KAT_NODE_SEED "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
#define KAT_NODE_PK "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664"
#define KAT_ADMIN_SEED "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40"
#define KAT_ADMIN_PK "e7f162a10bec559afea195e4dce84b69568d5d2cb0963eb446c0685e2b17f2f0"
#define KAT_INVESTOR_SEED "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60"
#define KAT_INVESTOR_PK "adc14011f82d1c56d956aa4f9d73d8858361a606048525e0d08c638dc75dd8c7"

/* entry 1: genesis */
#define KAT_TX1_TEXT "{\"type\":\"genesis\",\"chain\":\"test.example/kat\",\"signer\":\"79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664\",\"id\":\"genesis\",\"admin\":\"e7f162a10bec559afea195e4dce84b69568d5d2cb0963eb446c0685e2b17f2f0\"}"
#define KAT_TX1_LEN 211
#define KAT_TX1_TXID "f28be509652b75448329baec88464994fc626c4297e3760b5ae1c199d8b9dba9"
#define KAT_TX1_SIG \
  "d05d54f7a38cbcdcff5f69c0d2e4c2e8525b32bff6d3cf8a10bbf82669d73f27" \
  "e79d57e045bca708b8da3b93edeeaeb1d18bfa917de4f06b360523ce5a1c5908"
#define KAT_TIME1 1700000000000ULL
#define KAT_ENTRY1_BYTES \
  "5452414e4348452f454e5452592f310a00000000000000010000018bcfe56800" \
  "0000000000000000000000000000000000000000000000000000000000000000" \
  "f28be509652b75448329baec88464994fc626c4297e3760b5ae1c199d8b9dba9" \
  "d05d54f7a38cbcdcff5f69c0d2e4c2e8525b32bff6d3cf8a10bbf82669d73f27" \
  "e79d57e045bca708b8da3b93edeeaeb1d18bfa917de4f06b360523ce5a1c5908"
#define KAT_ENTRY1_HASH "67a35c0b5c74dfc7adb60d1edd2b90c9d8827291a8aaf1a74dd04867d3aec016"

/* entry 2: account.open */
#define KAT_TX2_TEXT "{\"type\":\"account.open\",\"chain\":\"test.example/kat\",\"signer\":\"e7f162a10bec559afea195e4dce84b69568d5d2cb0963eb446c0685e2b17f2f0\",\"id\":\"open-1\",\"account\":\"adc14011f82d1c56d956aa4f9d73d8858361a606048525e0d08c638dc75dd8c7\",\"roles\":[\"investor\"],\"jurisdiction\":\"US\",\"kyc\":true}"
#define KAT_TX2_LEN 269
#define KAT_TX2_TXID "2ee387b1484992fd7a5bbc76e8c0407f6037558858c700a9cd4d9ddc4f743337"
#define KAT_TX2_SIG \
  "b84763b099a13042a80c7ef7db66afecd403f0d3a0d1423409fc7b31ab8e8f5f" \
  "6b62d01d6b5cde3087d2765d7a72d34ed97313f60d82300de614eff7eacb5209"
#define KAT_TIME2 1700000000001ULL
#define KAT_ENTRY2_BYTES \
  "5452414e4348452f454e5452592f310a00000000000000020000018bcfe56801" \
  "67a35c0b5c74dfc7adb60d1edd2b90c9d8827291a8aaf1a74dd04867d3aec016" \
  "2ee387b1484992fd7a5bbc76e8c0407f6037558858c700a9cd4d9ddc4f743337" \
  "b84763b099a13042a80c7ef7db66afecd403f0d3a0d1423409fc7b31ab8e8f5f" \
  "6b62d01d6b5cde3087d2765d7a72d34ed97313f60d82300de614eff7eacb5209"
#define KAT_ENTRY2_HASH "b5b4155737abf9a40d2f027aae06836a1a2bf5b8f9914be34392374d9ddfe248"

/* Merkle root of the tree of size 2 */
#define KAT_ROOT2 "fc265dfc2e460f3bc6cd236f1bf5a43582c95ade1b390cc2e3c9ae48dfbec31f"

/* checkpoint of the tree of size 2 (UTF-8; the dash is U+2014) */
#define KAT_NOTE_KEY_ID "cc596dd9"
#define KAT_VKEY_TEXT "test.example/kat+cc596dd9+AXm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk"
#define KAT_NOTE_BODY_SIG \
  "b58270f593fbf37a75695534ef6c3df7e725ad982e9a569039560d32c3956316" \
  "b7b95dce450853a162a03f983818e44f69cef9d4295275f2e8f3cbc2e000e50c"
#define KAT_CHECKPOINT2_TEXT "test.example/kat\n2\n/CZd/C5GDzvGzSNvG/WkNYLJWt4bOQzC48muSN++wx8=\n\n\342\200\224 test.example/kat zFlt2bWCcPWT+/N6dWlVNO9sPffnJa2YLppWkDlWDTLDlWMWt7ldzkUIU6FioD+YOBjkT2nO+dQpUnXy6PPLwuAA5Qw=\n"

#endif
