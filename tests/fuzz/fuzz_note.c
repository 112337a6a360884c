/* fuzz_note.c — signed notes, checkpoints, tlog proofs and verifier keys.
 *
 * The whole input goes to each parser: tr_note_vkey_parse, tr_note_verify
 * and tr_checkpoint_open against a fixed key (the seeds in corpus/note are
 * signed by it, see make_seeds.py), tr_checkpoint_parse, tr_tlog_proof_parse
 * and then tr_tlog_proof_verify with leaf = SHA-256(0x00 || extra).
 *
 * Invariants: return codes are from the documented set; an accepted vkey
 * formats back to the same bytes; a verified note's body is a prefix of it
 * ending in "\n"; a parsed checkpoint's first three lines format back to the
 * same bytes; a parsed proof's checkpoint lies inside the input and the
 * proof formats back to the same bytes (the parser is canonical).
 */
#include <sodium.h>
#include <string.h>

#include "fuzz.h"
#include "tr_err.h"
#include "tr_note.h"

#define FUZZ_NOTE_NAME "fuzz.example/log"

static tr_note_vkey_t g_vkey;

static void setup(void) {
  static int ready;
  if (ready) return;
  ready = 1;
  FUZZ_CHECK(sodium_init() >= 0, "sodium_init");
  uint8_t seed[32], pk[32], sk[64];
  crypto_hash_sha256(seed, (const uint8_t *)"tranche-fuzz-node", 17);
  crypto_sign_seed_keypair(pk, sk, seed);
  char vk[TR_NOTE_VKEY_BUF_BYTES];
  FUZZ_CHECK(tr_note_vkey_format(FUZZ_NOTE_NAME, pk, vk, sizeof vk) == 0, "vkey format");
  FUZZ_CHECK(tr_note_vkey_parse(vk, strlen(vk), &g_vkey) == 0, "vkey parse of our own key");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  setup();
  return 0;
}

static void fuzz_vkey(const char *text, size_t size) {
  tr_note_vkey_t vk;
  int rc = tr_note_vkey_parse(text, size, &vk);
  FUZZ_CHECK(rc == 0 || rc == TR_EINVALID, "vkey_parse return code");
  if (rc != 0) return;
  char again[TR_NOTE_VKEY_BUF_BYTES];
  FUZZ_CHECK(tr_note_vkey_format(vk.name, vk.pubkey, again, sizeof again) == 0, "accepted vkey does not format");
  FUZZ_CHECK(strlen(again) == size && memcmp(again, text, size) == 0, "vkey does not round-trip");
  FUZZ_CHECK(vk.key_id == tr_note_key_id(vk.name, vk.pubkey), "key id mismatch");
}

static void fuzz_note_verify(const char *text, size_t size) {
  size_t body_len = (size_t)-1;
  int rc = tr_note_verify(text, size, &g_vkey, &body_len);
  if (getenv("FUZZ_SHOW")) fprintf(stderr, "note_verify %d\n", rc);
  FUZZ_CHECK(rc == 0 || rc == TR_EINVALID || rc == TR_EBAD_SIGNATURE || rc == TR_ELIMIT, "note_verify rc");
  if (rc == 0) {
    FUZZ_CHECK(body_len > 0 && body_len < size && text[body_len - 1] == '\n', "note body not a prefix ending in LF");
    FUZZ_CHECK(text[body_len] == '\n', "note body not followed by the blank line");
  }
  tr_checkpoint_t cp;
  rc = tr_checkpoint_open(text, size, &g_vkey, &cp);
  FUZZ_CHECK(rc == 0 || rc == TR_EINVALID || rc == TR_EBAD_SIGNATURE || rc == TR_ELIMIT, "checkpoint_open rc");
  if (rc == 0) FUZZ_CHECK(strcmp(cp.origin, g_vkey.name) == 0, "checkpoint origin != key name");
}

static void fuzz_checkpoint_parse(const char *text, size_t size) {
  tr_checkpoint_t cp;
  int rc = tr_checkpoint_parse(text, size, &cp);
  FUZZ_CHECK(rc == 0 || rc == TR_EINVALID || rc == TR_ELIMIT, "checkpoint_parse rc");
  if (rc != 0) return;
  char body[TR_CHECKPOINT_BODY_BUF_BYTES];
  size_t n = 0;
  FUZZ_CHECK(tr_checkpoint_format(cp.origin, cp.size, cp.root, body, sizeof body, &n) == 0,
             "parsed checkpoint does not format");
  FUZZ_CHECK(n <= size && memcmp(body, text, n) == 0, "checkpoint lines do not round-trip");
}

static void fuzz_proof(const char *text, size_t size) {
  static uint8_t extra[4096];
  tr_tlog_proof_t *p = malloc(sizeof *p);
  if (p == NULL) return;
  int rc = tr_tlog_proof_parse(text, size, extra, sizeof extra, p);
  FUZZ_CHECK(rc == 0 || rc == TR_EINVALID || rc == TR_ELIMIT, "tlog_proof_parse rc");
  if (rc == 0) {
    FUZZ_CHECK(p->checkpoint >= text && p->checkpoint_len > 0 &&
                   (size_t)(p->checkpoint - text) + p->checkpoint_len == size,
               "proof checkpoint not the tail of the input");
    FUZZ_CHECK(p->path_n <= TR_MERKLE_PATH_MAX && p->extra_len <= sizeof extra, "proof bounds");
    uint8_t leaf[32] = {0};
    if (p->has_extra) {
      crypto_hash_sha256_state st;
      crypto_hash_sha256_init(&st);
      crypto_hash_sha256_update(&st, (const uint8_t *)"\x00", 1);
      crypto_hash_sha256_update(&st, extra, p->extra_len);
      crypto_hash_sha256_final(&st, leaf);
    }
    tr_checkpoint_t cp;
    int vrc = tr_tlog_proof_verify(p, &g_vkey, leaf, &cp);
    if (getenv("FUZZ_SHOW")) fprintf(stderr, "proof_verify %d\n", vrc);
    FUZZ_CHECK(vrc == 0 || vrc == TR_EINVALID || vrc == TR_EBAD_SIGNATURE || vrc == TR_ELIMIT, "proof_verify rc");
    if (vrc == 0) FUZZ_CHECK(p->index < cp.size, "verified proof index outside the tree");
    if (!p->has_extra || p->extra_len > 0) {
      size_t cap = size + 1, n = 0;
      char *again = malloc(cap);
      if (again) {
        int frc = tr_tlog_proof_format(p->index, p->has_extra ? extra : NULL, p->extra_len,
                                       (const uint8_t(*)[TR_MERKLE_HASH_BYTES])p->path, p->path_n,
                                       p->checkpoint, p->checkpoint_len, again, cap, &n);
        FUZZ_CHECK(frc == 0 && n == size && memcmp(again, text, size) == 0, "tlog proof does not round-trip");
        free(again);
      }
    }
  }
  free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  const char *text = (const char *)data;
  fuzz_vkey(text, size);
  fuzz_note_verify(text, size);
  fuzz_checkpoint_parse(text, size);
  fuzz_proof(text, size);
  return 0;
}
