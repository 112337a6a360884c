/* fuzz_tx.c — the tx envelope decoder tr_tx_decode and tr_tx_verify.
 *
 * Invariants: the verdict is 0 / TR_EINVALID / TR_ENOMEM, with a
 * NUL-terminated detail; an accepted tx is at most TR_TX_BYTES_MAX bytes of
 * strict JSON (top-level object, integers only), its txid is SHA-256 of the
 * bytes, decoding again gives the same tx, and its type has a wire name.
 * tr_tx_verify must not crash on any signer and a signature derived from
 * the input (it must not accept it either, barring a SHA-512 preimage).
 */
#include <sodium.h>
#include <string.h>

#include "fuzz.h"
#include "tr_err.h"
#include "tr_json.h"
#include "tr_tx.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  return sodium_init() < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    if (sodium_init() < 0) abort();
    ready = 1;
  }
  const char *bytes = (const char *)data;
  tr_tx_t *a = calloc(2, sizeof *a);
  if (a == NULL) return 0;
  tr_tx_t *b = a + 1;
  tr_tx_error_t err;
  memset(&err, 0xa5, sizeof err);
  int rc = tr_tx_decode(bytes, size, a, &err);
  if (getenv("FUZZ_SHOW")) fprintf(stderr, "decode %d %s\n", rc, rc ? err.detail : "");
  FUZZ_CHECK(rc == 0 || rc == TR_EINVALID || rc == TR_ENOMEM, "unexpected return code");
  if (rc == TR_EINVALID) FUZZ_CHECK(memchr(err.detail, '\0', sizeof err.detail) != NULL, "detail not NUL-terminated");
  (void)tr_tx_decode(bytes, size, b, NULL); /* err may be NULL */

  uint8_t sig[64];
  crypto_hash_sha512(sig, data, size);
  tr_key_t signer;
  memcpy(signer.b, sig + 32, 32); /* some 32 bytes: rarely a valid point */
  FUZZ_CHECK(tr_tx_verify(bytes, size, &signer, sig) != 0, "random signature verified");

  if (rc == 0) {
    FUZZ_CHECK(size <= TR_TX_BYTES_MAX, "accepted a tx over 16 KiB");
    FUZZ_CHECK(tr_json_check(bytes, size, TR_JSON_TOP_OBJECT | TR_JSON_INTEGERS_ONLY, NULL) == 0,
               "accepted a tx that is not strict JSON");
    uint8_t h[32];
    crypto_hash_sha256(h, data, size);
    FUZZ_CHECK(memcmp(h, a->txid, 32) == 0, "txid != SHA-256(bytes)");
    memset(b, 0, sizeof *b);
    FUZZ_CHECK(tr_tx_decode(bytes, size, b, NULL) == 0, "second decode refused");
    FUZZ_CHECK(memcmp(a->txid, b->txid, 32) == 0 && a->type == b->type, "second decode differs");
    FUZZ_CHECK(memcmp(&a->signer, &b->signer, sizeof a->signer) == 0 && strcmp(a->id, b->id) == 0 &&
                   strcmp(a->chain, b->chain) == 0 && a->units == b->units && a->amount == b->amount,
               "second decode differs");
    FUZZ_CHECK(tr_tx_type_name(a->type) != NULL, "decoded type has no wire name");
    FUZZ_CHECK(strlen(a->id) >= 1 && strlen(a->chain) >= 1, "empty id or chain accepted");
    FUZZ_CHECK(tr_tx_verify(bytes, size, &a->signer, sig) != 0, "random signature verified for the signer");
  }
  free(a);
  return 0;
}
