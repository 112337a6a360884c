/* test_note.c — signed notes, checkpoints and tlog proofs.
 *
 * Where each vector comes from:
 *   [GO]   golang/mod sumdb/note/note_test.go and note.go (package doc):
 *          PeterNeumann / EnochRoot keys, the signer key, the signed "If you
 *          think cryptography..." note, TestNewVerifier's manglings,
 *          TestOpen's malformed messages and 101-signature limit.
 *   [C2SP] C2SP/C2SP signed-note.md, worked example of the version at commit
 *          d4c16da5 (quoted verbatim by several independent test suites): key
 *          example.com/foo+530d903a, "This is an example message.".
 *          C2SP/C2SP tlog-checkpoint.md example (behind-the-sofa) and
 *          tlog-proof.md example (fancylog; signatures elided "[...]" there).
 *   [SUMDB] the production key of sum.golang.org (golang/go
 *          src/cmd/go/internal/modfetch/key.go) and one of its real signed
 *          tree heads, quoted in transparency-dev/trillian-tessera
 *          internal/parse/parse_test.go (BenchmarkCheckpointUnsafe).
 *   [TD]   transparency-dev/merkle proof/tlog_proof_test.go: the malformed
 *          tlog-proof inputs of TestVerifyTLogProofErrors.
 * A signature that verifies under a published key authenticates itself, so
 * the vectors above that verify cannot have been mistyped.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_merkle.h"
#include "tr_note.h"
#include "tr_test.h"

#define EM "\xE2\x80\x94" /* U+2014 EM DASH */

/* [GO] */
static const char *const peter_vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char *const enoch_vkey = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
static const char *const peter_skey_b64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"; /* of PRIVATE+KEY+PeterNeumann+c74f20a3+... */
static const char *const go_text =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
static const char *const peter_sig =
    EM " PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
static const char *const enoch_sig =
    EM " EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

/* [C2SP] */
static const char *const foo_vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
static const char *const foo_note =
    "This is an example message.\n\n" EM
    " example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

/* [SUMDB] */
static const char *const sumdb_vkey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
static const char *const sumdb_note =
    "go.sum database tree\n31700353\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n" EM
    " sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn/C3YI8oW9/C8DJ87F61QqspBYwM=\n";

static char buf[64 * 1024];

static int verify(const char *note, const tr_note_vkey_t *k) {
  size_t body_len;
  return tr_note_verify(note, strlen(note), k, &body_len);
}

static tr_note_vkey_t must_vkey(const char *text) {
  tr_note_vkey_t k;
  if (tr_note_vkey_parse(text, strlen(text), &k) != 0) {
    fprintf(stderr, "bad test vkey %s\n", text);
    exit(2);
  }
  return k;
}

/* Deterministic key pair i. */
static void keypair(int i, uint8_t pk[32], uint8_t sk[64]) {
  uint8_t seed[32];
  for (int j = 0; j < 32; j++) seed[j] = (uint8_t)(i * 31 + j);
  crypto_sign_seed_keypair(pk, sk, seed);
}

static const char *cat(const char *a, const char *b, const char *c) {
  snprintf(buf, sizeof buf, "%s%s%s", a, b, c);
  return buf;
}

/* ---- Verifier keys ---- */

static void test_vkeys(void) {
  tr_note_vkey_t k;
  char out[TR_NOTE_VKEY_BUF_BYTES];
  TR_CHECK(tr_note_vkey_parse(peter_vkey, strlen(peter_vkey), &k) == 0 && k.key_id == 0xc74f20a3 &&
               strcmp(k.name, "PeterNeumann") == 0,
           "[GO] PeterNeumann vkey parses, key id c74f20a3");
  TR_CHECK(tr_note_key_id("PeterNeumann", k.pubkey) == 0xc74f20a3, "[GO] key id recomputed");
  TR_CHECK(tr_note_vkey_format("PeterNeumann", k.pubkey, out, sizeof out) == 0 && strcmp(out, peter_vkey) == 0,
           "[GO] vkey formats back byte for byte");
  TR_CHECK(tr_note_vkey_parse(foo_vkey, strlen(foo_vkey), &k) == 0 && k.key_id == 0x530d903a,
           "[C2SP] example.com/foo vkey parses, key id 530d903a");
  TR_CHECK(tr_note_vkey_format("example.com/foo", k.pubkey, out, sizeof out) == 0 && strcmp(out, foo_vkey) == 0,
           "[C2SP] vkey formats back byte for byte");
  TR_CHECK(tr_note_vkey_parse(sumdb_vkey, strlen(sumdb_vkey), &k) == 0 && k.key_id == 0x033de0ae,
           "[SUMDB] sum.golang.org vkey parses, key id 033de0ae");

  /* The key id by hand: SHA-256(name || 0x0A || 0x01 || pubkey)[:4]. */
  uint8_t pk[32], sk[64], h[32], in[64];
  keypair(1, pk, sk);
  memcpy(in, "tranche.example/x\n\x01", 19);
  memcpy(in + 19, pk, 32);
  crypto_hash_sha256(h, in, 19 + 32);
  uint32_t want = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
  TR_CHECK(tr_note_key_id("tranche.example/x", pk) == want, "key id = SHA-256(name 0A 01 pk)[:4] big-endian");
  TR_CHECK(tr_note_vkey_format("tranche.example/x", pk, out, sizeof out) == 0 &&
               tr_note_vkey_parse(out, strlen(out), &k) == 0 && k.key_id == want && memcmp(k.pubkey, pk, 32) == 0,
           "vkey format -> parse roundtrip");
  char hex[9];
  snprintf(hex, sizeof hex, "%08lx", (unsigned long)want);
  TR_CHECK(strncmp(out + strlen("tranche.example/x+"), hex, 8) == 0, "vkey key id is 8 lowercase hex");
}

/* [GO] TestNewVerifier: every proper substring and every byte+1 fails. */
static void test_vkey_manglings(void) {
  char b[128];
  tr_note_vkey_t k;
  size_t len = strlen(peter_vkey), accepted = 0, tried = 0;
  for (size_t i = 0; i <= len; i++)
    for (size_t j = i + 1; j <= len; j++) {
      if (i == 0 && j == len) continue;
      memcpy(b, peter_vkey + i, j - i);
      tried++, accepted += tr_note_vkey_parse(b, j - i, &k) == 0;
    }
  memcpy(b, peter_vkey, len);
  for (size_t i = 0; i < len; i++) {
    b[i]++;
    tried++, accepted += tr_note_vkey_parse(b, len, &k) == 0;
    b[i]--;
  }
  TR_CHECK(accepted == 0, "[GO] %zu mangled vkeys (substrings, byte+1) all refused", tried);
  const char *bad[] = {
      "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", /* [GO] wrong length */
      "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",         /* [GO] unknown alg */
      "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",         /* uppercase hex */
      "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",         /* key id mismatch */
      "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",                     /* empty name */
      "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",        /* space in name */
      "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",          /* 7 hex digits */
      "PeterNeumann+c74f20a3ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",          /* no second '+' */
      "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",          /* truncated base64 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    TR_CHECK(tr_note_vkey_parse(bad[i], strlen(bad[i]), &k) == TR_EINVALID, "vkey refused: %s", bad[i]);
  uint8_t pk[32] = {0};
  char out[TR_NOTE_VKEY_BUF_BYTES];
  const char *bad_names[] = {"", "a+b", "a b", "a\tb", "a\xC2\xA0" "b", "a\xE3\x80\x80" "b", "a\xFF"};
  for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
    TR_CHECK(tr_note_vkey_format(bad_names[i], pk, out, sizeof out) == TR_EARG, "invalid key name %zu refused", i);
  TR_CHECK(tr_note_vkey_format("x", pk, out, 10) == TR_ELIMIT, "vkey_format: short buffer is TR_ELIMIT");
}

/* ---- Notes ---- */

static void test_go_notes(void) {
  tr_note_vkey_t peter = must_vkey(peter_vkey), enoch = must_vkey(enoch_vkey);
  uint8_t skey[33], pk[32], sk[64];
  size_t n, body_len;
  sodium_base642bin(skey, sizeof skey, peter_skey_b64, strlen(peter_skey_b64), NULL, &n, NULL,
                    sodium_base64_VARIANT_ORIGINAL);
  crypto_sign_seed_keypair(pk, sk, skey + 1);
  TR_CHECK(n == 33 && memcmp(pk, peter.pubkey, 32) == 0, "[GO] signer key matches the PeterNeumann vkey");
  char want[1024], out[1024];
  snprintf(want, sizeof want, "%s\n%s", go_text, peter_sig);
  TR_CHECK(tr_note_sign(go_text, strlen(go_text), "PeterNeumann", sk, out, sizeof out, &n) == 0 &&
               strcmp(out, want) == 0 && n == strlen(want),
           "[GO] TestSign: signing reproduces the published note byte for byte");
  TR_CHECK(tr_note_verify(want, strlen(want), &peter, &body_len) == 0 && body_len == strlen(go_text) &&
               memcmp(want, go_text, body_len) == 0,
           "[GO] the note verifies; the body is the text with its final newline");
  snprintf(buf, sizeof buf, "%s\n%s%s", go_text, peter_sig, enoch_sig);
  TR_CHECK(verify(buf, &peter) == 0, "[GO] TestOpen: Peter verifies, Enoch's line ignored");
  TR_CHECK(verify(buf, &enoch) == 0, "[GO] TestOpen: Enoch verifies, Peter's line ignored");
  snprintf(buf, sizeof buf, "%s\n%s", go_text, enoch_sig);
  TR_CHECK(verify(buf, &peter) == TR_EBAD_SIGNATURE, "[GO] only unknown keys: no verifiable signature");
  /* [GO] "Invalid signature": ABCD inserted at byte 60 of the line. */
  snprintf(buf, sizeof buf, "%s\n%.60sABCD%s", go_text, peter_sig, peter_sig + 60);
  TR_CHECK(verify(buf, &peter) == TR_EBAD_SIGNATURE, "[GO] corrupted known signature refused");
  /* [GO] "Duplicated verified and unverified signatures". */
  snprintf(buf, sizeof buf, "%s\n%s%s%s%s%.60sABCD%s", go_text, peter_sig, peter_sig, enoch_sig, enoch_sig,
           enoch_sig, enoch_sig + 60);
  TR_CHECK(verify(buf, &peter) == 0, "[GO] duplicated and corrupted unknown lines are ignored");
  /* Stricter than Go: a second, bad line from the known key fails the note. */
  snprintf(buf, sizeof buf, "%s\n%s%.60sABCD%s", go_text, peter_sig, peter_sig, peter_sig + 60);
  TR_CHECK(verify(buf, &peter) == TR_EBAD_SIGNATURE, "a bad line from the key fails the note even after a good one");
}

/* [GO] TestOpen badMsgs and the signature-count limit. */
static void test_go_malformed(void) {
  tr_note_vkey_t peter = must_vkey(peter_vkey);
  char sig_no_nl[256];
  snprintf(sig_no_nl, sizeof sig_no_nl, "%.*s", (int)strlen(peter_sig) - 1, peter_sig);
  const char *bad[7];
  static char store[7][1024];
  snprintf(store[0], 1024, "%s", go_text);
  snprintf(store[1], 1024, "%s\n", go_text);
  snprintf(store[2], 1024, "%s\n%s", go_text, sig_no_nl);
  snprintf(store[3], 1024, "\x01%s\n%s", go_text, peter_sig);
  snprintf(store[4], 1024, "\xff%s\n%s", go_text, peter_sig);
  snprintf(store[5], 1024, "%s\n" EM " Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
           go_text);
  snprintf(store[6], 1024, "%s\n%sUnexpected line.\n", go_text, peter_sig);
  for (int i = 0; i < 7; i++) {
    bad[i] = store[i];
    TR_CHECK(verify(bad[i], &peter) == TR_EINVALID, "[GO] malformed note %d refused", i);
  }
  size_t len = (size_t)snprintf(buf, sizeof buf, "%s\n", go_text);
  for (int i = 0; i < TR_NOTE_SIGS_MAX; i++) len += (size_t)snprintf(buf + len, sizeof buf - len, "%s", peter_sig);
  TR_CHECK(verify(buf, &peter) == 0, "%d signature lines accepted", TR_NOTE_SIGS_MAX);
  snprintf(buf + len, sizeof buf - len, "%s", peter_sig);
  TR_CHECK(verify(buf, &peter) == TR_EINVALID, "[GO] %d signature lines refused", TR_NOTE_SIGS_MAX + 1);
}

static void test_spec_notes(void) {
  tr_note_vkey_t foo = must_vkey(foo_vkey), sumdb = must_vkey(sumdb_vkey);
  size_t body_len;
  TR_CHECK(tr_note_verify(foo_note, strlen(foo_note), &foo, &body_len) == 0 &&
               body_len == strlen("This is an example message.\n"),
           "[C2SP] signed-note example verifies under example.com/foo+530d903a");
  /* The brief for this module quoted a note "— example.com/foo aGWCAVaL..."
   * over the Go text as a published vector.  It is not one: its key id bytes
   * are 68 65 82 01, not 53 0d 90 3a, so the spec makes us ignore the line
   * and the note has no signature from the key. */
  static const char *const not_a_vector =
      "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n" EM
      " example.com/foo aGWCAVaLtpJEIsqdNWtEjYk1vj9XL/Q0vcj0xRV6hdjEckwJ5OaoxUcGEQDTlq+Ra8WYzzVYmHQKbJfJmgi/IuJ+DgI=\n";
  TR_CHECK(verify(not_a_vector, &foo) == TR_EBAD_SIGNATURE,
           "unpublished example.com/foo note (key id 68658201) is not accepted");
  tr_checkpoint_t cp;
  TR_CHECK(tr_note_verify(sumdb_note, strlen(sumdb_note), &sumdb, &body_len) == 0 &&
               tr_checkpoint_parse(sumdb_note, body_len, &cp) == 0 && cp.size == 31700353 &&
               strcmp(cp.origin, "go.sum database tree") == 0,
           "[SUMDB] a real sum.golang.org tree head verifies and parses (size 31700353)");
  TR_CHECK(tr_checkpoint_open(sumdb_note, strlen(sumdb_note), &sumdb, &cp) == TR_EINVALID,
           "[SUMDB] tr_checkpoint_open refuses it: origin differs from the key name");
  memcpy(buf, sumdb_note, strlen(sumdb_note) + 1);
  buf[25] ^= 1; /* a digit of the size */
  TR_CHECK(verify(buf, &sumdb) == TR_EBAD_SIGNATURE, "[SUMDB] changed tree size fails");
}

static void test_sign_verify(void) {
  uint8_t pk_a[32], sk_a[64], pk_b[32], sk_b[64], pk_c[32], sk_c[64];
  char vk[TR_NOTE_VKEY_BUF_BYTES], note_a[1024], note_b[1024];
  tr_note_vkey_t a, b, c;
  size_t na, nb, body_len;
  keypair(1, pk_a, sk_a), keypair(2, pk_b, sk_b), keypair(3, pk_c, sk_c);
  tr_note_vkey_format("a.example/log", pk_a, vk, sizeof vk), a = must_vkey(vk);
  tr_note_vkey_format("b.example/witness", pk_b, vk, sizeof vk), b = must_vkey(vk);
  tr_note_vkey_format("a.example/log", pk_c, vk, sizeof vk), c = must_vkey(vk); /* same name, other key */
  const char *body = "line one\n\nline three after an empty line\n";
  TR_CHECK(tr_note_sign(body, strlen(body), "a.example/log", sk_a, note_a, sizeof note_a, &na) == 0,
           "sign a body with an empty line");
  TR_CHECK(tr_note_verify(note_a, na, &a, &body_len) == 0 && body_len == strlen(body), "sign -> verify roundtrip");
  TR_CHECK(tr_note_verify(note_a, na, &b, &body_len) == TR_EBAD_SIGNATURE, "other key: no signature from it");
  TR_CHECK(tr_note_verify(note_a, na, &c, &body_len) == TR_EBAD_SIGNATURE,
           "same name, other key id: the line is ignored, not verified");
  /* A cosignature from b appended (a witness). */
  tr_note_sign(body, strlen(body), "b.example/witness", sk_b, note_b, sizeof note_b, &nb);
  snprintf(buf, sizeof buf, "%s%s", note_a, note_b + strlen(body) + 1);
  TR_CHECK(verify(buf, &a) == 0 && verify(buf, &b) == 0 && verify(buf, &c) == TR_EBAD_SIGNATURE,
           "cosigned note: each key finds its own line, unknown lines ignored");
  /* b's signature line relabelled with a's name: a's name but b's key id. */
  snprintf(buf, sizeof buf, "%s\n" EM " a.example/log %s", body, strrchr(note_b, ' ') + 1);
  TR_CHECK(verify(buf, &a) == TR_EBAD_SIGNATURE, "a's name with another key id is an unknown key");
  memcpy(buf, note_a, na + 1);
  buf[3] ^= 1;
  TR_CHECK(verify(buf, &a) == TR_EBAD_SIGNATURE, "tampered body fails");
  memcpy(buf, note_a, na + 1);
  char *sig = strrchr(buf, ' ') + 1;
  sig[20] = sig[20] == 'A' ? 'B' : 'A';
  TR_CHECK(verify(buf, &a) == TR_EBAD_SIGNATURE, "tampered signature fails");
  memcpy(buf, note_a, na + 1);
  sig = strrchr(buf, ' ') + 1;
  sig[1] = sig[1] == 'A' ? 'B' : 'A';
  TR_CHECK(verify(buf, &a) == TR_EBAD_SIGNATURE, "tampered key id makes the line unknown");
  /* Every short output buffer is refused without writing past it. */
  int short_ok = 1;
  for (size_t cap = 0; cap <= na; cap++) {
    char *p = malloc(cap ? cap : 1);
    short_ok &= tr_note_sign(body, strlen(body), "a.example/log", sk_a, cap ? p : NULL, cap, &nb) == TR_ELIMIT;
    free(p);
  }
  TR_CHECK(short_ok, "tr_note_sign: every buffer shorter than note + NUL is TR_ELIMIT");
  TR_CHECK(tr_note_sign("no newline", 10, "a.example/log", sk_a, note_b, sizeof note_b, &nb) == TR_EARG,
           "sign refuses a body without a final newline");
  TR_CHECK(tr_note_sign("", 0, "a.example/log", sk_a, note_b, sizeof note_b, &nb) == TR_EARG,
           "sign refuses an empty body");
  TR_CHECK(tr_note_sign("tab\there\n", 9, "a.example/log", sk_a, note_b, sizeof note_b, &nb) == TR_EARG,
           "sign refuses control characters");
  TR_CHECK(tr_note_sign("ok\n", 3, "bad name", sk_a, note_b, sizeof note_b, &nb) == TR_EARG,
           "sign refuses an invalid key name");
}

/* Malformed notes built around a valid one. */
static void test_malformed(void) {
  uint8_t pk[32], sk[64];
  char vk[TR_NOTE_VKEY_BUF_BYTES], note[1024];
  size_t n;
  keypair(4, pk, sk);
  tr_note_vkey_format("m.example", pk, vk, sizeof vk);
  tr_note_vkey_t k = must_vkey(vk);
  tr_note_sign("body\n", 5, "m.example", sk, note, sizeof note, &n);
  const char *sig = strrchr(note, ' ') + 1; /* base64 and "\n" */
  struct { const char *what, *text; } cases[] = {
      {"no blank line", cat("body\n", EM " m.example ", sig)},
      {"hyphen instead of em dash", NULL}, {"en dash", NULL}, {"no space after dash", NULL},
      {"empty key name", NULL}, {"'+' in key name", NULL}, {"no signature", NULL},
      {"space inside base64", NULL}, {"non-canonical base64 padding bits", NULL}, {"4-byte signature", NULL},
      {"CRLF line ending", NULL}, {"tab in body", NULL}, {"overlong UTF-8 in body", NULL},
      {"UTF-16 surrogate in body", NULL}, {"blank line after signatures", NULL}, {"NUL in body", NULL},
  };
  static char t[16][2048];
  int i = 1;
  snprintf(t[i++], 2048, "body\n\n- m.example %s", sig);
  snprintf(t[i++], 2048, "body\n\n\xE2\x80\x93 m.example %s", sig);
  snprintf(t[i++], 2048, "body\n\n" EM "m.example %s", sig);
  snprintf(t[i++], 2048, "body\n\n" EM "  %s", sig);
  snprintf(t[i++], 2048, "body\n\n" EM " m+example %s", sig);
  snprintf(t[i++], 2048, "body\n\n" EM " m.example \n");
  snprintf(t[i++], 2048, "body\n\n" EM " m.example %.10s %s", sig, sig + 10);
  snprintf(t[i++], 2048, "body\n\n" EM " m.example AAAAAAB=\n"); /* 5 bytes, but 'B' sets a pad bit */
  snprintf(t[i++], 2048, "body\n\n" EM " m.example AAAAAA==\n");
  snprintf(t[i++], 2048, "body\r\n\r\n" EM " m.example %s", sig);
  snprintf(t[i++], 2048, "bo\tdy\n\n" EM " m.example %s", sig);
  snprintf(t[i++], 2048, "bo\xC0\xAF" "dy\n\n" EM " m.example %s", sig);
  snprintf(t[i++], 2048, "bo\xED\xA0\x80" "dy\n\n" EM " m.example %s", sig);
  snprintf(t[i++], 2048, "%s\n", note);
  for (i = 1; i < 16; i++) cases[i].text = t[i];
  /* NUL in body needs an explicit length. */
  memcpy(t[15], note, n);
  t[15][2] = '\0';
  for (i = 0; i < 16; i++) {
    size_t len = i == 15 ? n : strlen(cases[i].text);
    size_t body_len;
    TR_CHECK(tr_note_verify(cases[i].text, len, &k, &body_len) == TR_EINVALID, "malformed: %s", cases[i].what);
  }
  snprintf(t[0], 2048, "%s" EM " z.example AAAAAAA=\n", note);
  TR_CHECK(verify(t[0], &k) == 0, "the same line with canonical base64 is well formed (an unknown key)");
  /* Bounded size: one byte over TR_NOTE_BYTES_MAX is refused before parsing. */
  size_t big_len = TR_NOTE_BYTES_MAX + 1, body_len;
  char *big = malloc(big_len);
  memset(big, 'a', big_len);
  memcpy(big, note, n);
  TR_CHECK(big != NULL && tr_note_verify(big, big_len, &k, &body_len) == TR_EINVALID, "a note over 1 MiB refused");
  free(big);
}

/* ---- Checkpoints ---- */

static void test_checkpoints(void) {
  uint8_t root[32], pk[32], sk[64];
  char body[TR_CHECKPOINT_BODY_BUF_BYTES], note[TR_CHECKPOINT_NOTE_BUF_BYTES], vk[TR_NOTE_VKEY_BUF_BYTES],
      want[512], b64[64];
  size_t n;
  tr_checkpoint_t cp;
  for (int i = 0; i < 32; i++) root[i] = (uint8_t)(0xA0 + i);
  sodium_bin2base64(b64, sizeof b64, root, 32, sodium_base64_VARIANT_ORIGINAL);
  const char *chain = "bank.example/tranche/prod";
  snprintf(want, sizeof want, "%s\n42\n%s\n", chain, b64);
  TR_CHECK(tr_checkpoint_format(chain, 42, root, body, sizeof body, &n) == 0 && strcmp(body, want) == 0,
           "checkpoint body: origin, decimal size, base64 root, each ending in a newline");
  TR_CHECK(tr_checkpoint_parse(body, n, &cp) == 0 && strcmp(cp.origin, chain) == 0 && cp.size == 42 &&
               memcmp(cp.root, root, 32) == 0,
           "checkpoint format -> parse roundtrip");
  keypair(5, pk, sk);
  tr_note_vkey_format(chain, pk, vk, sizeof vk);
  tr_note_vkey_t k = must_vkey(vk);
  TR_CHECK(tr_checkpoint_sign(chain, 42, root, sk, note, sizeof note, &n) == 0 && strncmp(note, want, strlen(want)) == 0 &&
               strncmp(note + strlen(want), "\n" EM " bank.example/tranche/prod ", 4 + 26) == 0 &&
               note[n - 1] == '\n' && n == strlen(want) + 1 + 4 + strlen(chain) + 1 + 92 + 1,
           "signed checkpoint has the PROTOCOL.md §3 layout");
  TR_CHECK(tr_checkpoint_open(note, n, &k, &cp) == 0 && cp.size == 42 && memcmp(cp.root, root, 32) == 0,
           "checkpoint sign -> open roundtrip");
  tr_note_vkey_t other = must_vkey(peter_vkey);
  TR_CHECK(tr_checkpoint_open(note, n, &other, &cp) == TR_EBAD_SIGNATURE, "open with another key fails");
  /* Same key, another origin: the origin must be the key name. */
  tr_checkpoint_format("other.example/log", 1, root, body, sizeof body, &n);
  tr_note_sign(body, n, chain, sk, note, sizeof note, &n);
  TR_CHECK(tr_checkpoint_open(note, n, &k, &cp) == TR_EINVALID, "open refuses an origin other than the key name");
  TR_CHECK(tr_checkpoint_format(chain, 0, root, body, sizeof body, &n) == 0 && strncmp(body + strlen(chain), "\n0\n", 3) == 0,
           "size 0 is written \"0\"");
  TR_CHECK(tr_checkpoint_format(chain, UINT64_MAX, root, body, sizeof body, &n) == 0 &&
               tr_checkpoint_parse(body, n, &cp) == 0 && cp.size == UINT64_MAX,
           "size 2^64-1 roundtrips");
  TR_CHECK(tr_checkpoint_format("", 1, root, body, sizeof body, &n) == TR_EARG, "empty origin refused");
  TR_CHECK(tr_checkpoint_format("a\nb", 1, root, body, sizeof body, &n) == TR_EARG, "newline in origin refused");
  TR_CHECK(tr_checkpoint_format(chain, 1, root, body, 20, &n) == TR_ELIMIT, "short buffer is TR_ELIMIT");

  /* [C2SP] tlog-checkpoint example, body and signature line. */
  static const char *const sofa =
      "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
  TR_CHECK(tr_checkpoint_parse(sofa, strlen(sofa), &cp) == 0 && cp.size == 20852163 &&
               strcmp(cp.origin, "example.com/behind-the-sofa") == 0 && cp.root[0] == 0x0A && cp.root[31] == 0x62,
           "[C2SP] tlog-checkpoint example parses");
  snprintf(buf, sizeof buf, "%s\n" EM " example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n",
           sofa);
  TR_CHECK(verify(buf, &k) == TR_EBAD_SIGNATURE, "[C2SP] example note is well formed (no key of ours signed it)");

  const char *ok_ext = "o\n1\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\next one\next two\n";
  TR_CHECK(tr_checkpoint_parse(ok_ext, strlen(ok_ext), &cp) == 0 && cp.size == 1, "extension lines accepted and ignored");
  const char *bad[] = {
      "\n42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n",     /* empty origin (tessera's parser allows) */
      "o\n042\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n",   /* leading zero */
      "o\n-42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n",   /* negative */
      "o\n+42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n",
      "o\n 42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n",
      "o\n18446744073709551616\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n", /* 2^64 */
      "o\n\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n",
      "o\n42\nthisisnotright\n",
      "o\n42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs\n",    /* unpadded */
      "o\n42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVct=\n",   /* non-zero pad bits */
      "o\n42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVl\n",       /* 30 bytes */
      "o\n42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=",     /* no final newline */
      "o\n42\n",                                                 /* no root */
      "o\n42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n", /* empty extension line */
      "42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n",      /* no origin */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    TR_CHECK(tr_checkpoint_parse(bad[i], strlen(bad[i]), &cp) == TR_EINVALID, "checkpoint body %zu refused", i);
}

/* ---- tlog proofs ---- */

static uint8_t tree[16][32]; /* leaf hashes of a 10-leaf log */
static tr_merkle_node_t nodes[64];
static size_t nodes_n;

static int tree_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32]) {
  (void)ctx;
  for (size_t i = 0; i < nodes_n; i++)
    if (nodes[i].level == level && nodes[i].index == index) {
      memcpy(out, nodes[i].hash, 32);
      return 0;
    }
  return TR_ENOT_FOUND;
}

static void test_tlog_proofs(void) {
  uint8_t pk[32], sk[64], root[32], path[TR_MERKLE_PATH_MAX][32], extra[256];
  char vk[TR_NOTE_VKEY_BUF_BYTES], note[TR_CHECKPOINT_NOTE_BUF_BYTES], proof[8192];
  size_t n, note_len, pn, plen;
  const char *chain = "bank.example/tranche/prod";
  keypair(6, pk, sk);
  tr_note_vkey_format(chain, pk, vk, sizeof vk);
  tr_note_vkey_t k = must_vkey(vk), other = must_vkey(peter_vkey);
  for (uint64_t i = 0; i < 10; i++) {
    tr_merkle_node_t out[TR_MERKLE_PATH_MAX + 1];
    uint8_t data[2] = {'e', (uint8_t)i};
    tr_merkle_leaf_hash(data, 2, tree[i]);
    tr_merkle_append(tree_get, NULL, i, tree[i], out, &n);
    memcpy(nodes + nodes_n, out, n * sizeof out[0]);
    nodes_n += n;
  }
  tr_merkle_root(tree_get, NULL, 10, root);
  tr_checkpoint_sign(chain, 10, root, sk, note, sizeof note, &note_len);
  int ok = 1;
  for (uint64_t i = 0; i < 10; i++) {
    uint8_t meta[40];
    tr_tlog_proof_t p;
    tr_checkpoint_t cp;
    memset(meta, (int)i, sizeof meta);
    tr_merkle_inclusion_proof(tree_get, NULL, i, 10, path, &pn);
    ok &= tr_tlog_proof_format(i, meta, sizeof meta, path, pn, note, note_len, proof, sizeof proof, &plen) == 0;
    ok &= tr_tlog_proof_parse(proof, plen, extra, sizeof extra, &p) == 0 && p.index == i && p.has_extra &&
          p.extra_len == sizeof meta && memcmp(extra, meta, sizeof meta) == 0 && p.path_n == pn &&
          memcmp(p.path, path, pn * 32) == 0 && p.checkpoint_len == note_len &&
          memcmp(p.checkpoint, note, note_len) == 0;
    ok &= tr_tlog_proof_verify(&p, &k, tree[i], &cp) == 0 && cp.size == 10;
    ok &= tr_tlog_proof_verify(&p, &k, tree[(i + 1) % 10], &cp) == TR_EINVALID;
    ok &= tr_tlog_proof_verify(&p, &other, tree[i], &cp) == TR_EBAD_SIGNATURE;
    p.index = (i + 1) % 10;
    ok &= tr_tlog_proof_verify(&p, &k, tree[i], &cp) == TR_EINVALID;
    p.index = 10;
    ok &= tr_tlog_proof_verify(&p, &k, tree[i], &cp) == TR_EINVALID;
  }
  TR_CHECK(ok, "tlog-proof for every leaf of a 10-leaf log: format -> parse -> verify; wrong leaf, index, "
               "key refused");

  /* Exact layout without extra data. */
  tr_merkle_inclusion_proof(tree_get, NULL, 3, 10, path, &pn);
  tr_tlog_proof_format(3, NULL, 0, path, pn, note, note_len, proof, sizeof proof, &plen);
  char b64[64], want[8192];
  size_t w = (size_t)snprintf(want, sizeof want, "c2sp.org/tlog-proof@v1\nindex 3\n");
  for (size_t j = 0; j < pn; j++) {
    sodium_bin2base64(b64, sizeof b64, path[j], 32, sodium_base64_VARIANT_ORIGINAL);
    w += (size_t)snprintf(want + w, sizeof want - w, "%s\n", b64);
  }
  snprintf(want + w, sizeof want - w, "\n%s", note);
  tr_tlog_proof_t p;
  TR_CHECK(strcmp(proof, want) == 0 && plen == strlen(want), "tlog-proof layout: header, index, hashes, blank, note");
  TR_CHECK(tr_tlog_proof_parse(proof, plen, NULL, 0, &p) == 0 && !p.has_extra && p.index == 3 &&
               tr_tlog_proof_verify(&p, &k, tree[3], NULL) == 0,
           "tlog-proof without extra parses and verifies");
  uint8_t big_extra[100];
  memset(big_extra, 7, sizeof big_extra);
  tr_tlog_proof_format(3, big_extra, sizeof big_extra, path, pn, note, note_len, proof, sizeof proof, &plen);
  TR_CHECK(tr_tlog_proof_parse(proof, plen, extra, 99, &p) == TR_ELIMIT, "extra larger than the buffer is TR_ELIMIT");
  TR_CHECK(tr_tlog_proof_format(3, NULL, 0, path, pn, note, note_len, proof, 100, &plen) == TR_ELIMIT,
           "format into a short buffer is TR_ELIMIT");

  /* [C2SP] the tlog-proof.md example (its signature lines are elided, so
   * only the proof layer is parsed). */
  static const char *const fancy =
      "c2sp.org/tlog-proof@v1\n"
      "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
      "index 73894\n"
      "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
      "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
      "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n"
      "RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
      "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n"
      "\n"
      "example.com/fancylog\n"
      "109482\n"
      "sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
      "\n" EM " example.com/fancylog hI2DJw[...]1roloI=\n";
  TR_CHECK(tr_tlog_proof_parse(fancy, strlen(fancy), extra, sizeof extra, &p) == 0 && p.index == 73894 &&
               p.has_extra && p.extra_len == 39 && memcmp(extra, "age-v1.2.1-darwin-arm64.tar.gz", 30) == 0 &&
               p.path_n == 5 && p.path[0][0] == 0x81 && strncmp(p.checkpoint, "example.com/fancylog\n109482\n", 28) == 0,
           "[C2SP] tlog-proof example parses: extra, index 73894, 5 hashes, checkpoint");

  const char *bad[] = {
      "wrong-header\nindex 0\n\ncheckpoint\n",                          /* [TD] */
      "c2sp.org/tlog-proof@v1\nextra !!notbase64!!\nindex 0\n\ncheckpoint\n", /* [TD] */
      "c2sp.org/tlog-proof@v1\n\n\ncheckpoint\n",                       /* [TD] missing index */
      "c2sp.org/tlog-proof@v1\nindex notanumber\n\ncheckpoint\n",      /* [TD] */
      "c2sp.org/tlog-proof@v1\nindex -5\n\ncheckpoint\n",              /* [TD] */
      "c2sp.org/tlog-proof@v1\nindex 0\n!!notbase64!!\n\ncheckpoint\n", /* [TD] */
      "c2sp.org/tlog-proof@v1\nindex 0\n"
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n\ncheckpoint\n", /* [TD] 64 bytes */
      "c2sp.org/tlog-proof@v1\nindex 01\n\ncheckpoint\n",               /* leading zero */
      "c2sp.org/tlog-proof@v1\nindex 0\n\n",                            /* no checkpoint */
      "c2sp.org/tlog-proof@v1\nindex 0\n\ncheckpoint",                  /* checkpoint without newline */
      "c2sp.org/tlog-proof@v1\nindex 0\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n", /* no blank line */
      "c2sp.org/tlog-proof@v1\nindex 0\nextra AAAA\n\ncheckpoint\n",    /* extra after index */
      "c2sp.org/tlog-proof@v2\nindex 0\n\ncheckpoint\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    TR_CHECK(tr_tlog_proof_parse(bad[i], strlen(bad[i]), extra, sizeof extra, &p) == TR_EINVALID,
             "tlog-proof %zu refused", i);
  /* 65 hash lines is one more than any proof can have. */
  size_t len = (size_t)snprintf(buf, sizeof buf, "c2sp.org/tlog-proof@v1\nindex 0\n");
  for (int i = 0; i <= TR_MERKLE_PATH_MAX; i++)
    len += (size_t)snprintf(buf + len, sizeof buf - len, "qINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n");
  snprintf(buf + len, sizeof buf - len, "\ncheckpoint\n");
  TR_CHECK(tr_tlog_proof_parse(buf, strlen(buf), extra, sizeof extra, &p) == TR_EINVALID,
           "tlog-proof with %d hashes refused", TR_MERKLE_PATH_MAX + 1);
  const char *empty_extra = "c2sp.org/tlog-proof@v1\nextra \nindex 0\n\ncheckpoint\n";
  TR_CHECK(tr_tlog_proof_parse(empty_extra, strlen(empty_extra), NULL, 0, &p) == 0 && p.has_extra && p.extra_len == 0,
           "an empty extra (as Go writes for empty non-nil data) parses");
}

int main(void) {
  if (sodium_init() < 0) return 2;
  test_vkeys();
  test_vkey_manglings();
  test_go_notes();
  test_go_malformed();
  test_spec_notes();
  test_sign_verify();
  test_malformed();
  test_checkpoints();
  test_tlog_proofs();
  return tr_test_done();
}
