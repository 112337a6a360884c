/* test_hex.c — strict lowercase hex (PROTOCOL.md §1), the public codec
 * against libsodium's over every byte value, and the secret codec. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_test.h"

typedef int (*decode_fn)(const char *, size_t, uint8_t *, size_t);

static void strictness(decode_fn decode, const char *name) {
  uint8_t b[2];
  TR_CHECK(decode("0aff", 4, b, 2) == 0 && b[0] == 0x0a && b[1] == 0xff, "%s: lowercase decodes", name);
  TR_CHECK(decode("0AFF", 4, b, 2) == TR_EINVALID && b[0] == 0 && b[1] == 0,
           "%s: uppercase refused, nothing left behind", name);
  TR_CHECK(decode("0af", 3, b, 2) == TR_EINVALID, "%s: odd length refused", name);
  TR_CHECK(decode("0afff0", 6, b, 2) == TR_EINVALID, "%s: too long refused", name);
  TR_CHECK(decode("0a:f", 4, b, 2) == TR_EINVALID, "%s: separator refused", name);
  TR_CHECK(decode("0afg", 4, b, 2) == TR_EINVALID, "%s: a bad last digit refused", name);
  TR_CHECK(decode("0a\0f", 4, b, 2) == TR_EINVALID, "%s: NUL refused", name);
}

/* Every pair of bytes: the one-pass decoder takes exactly the pairs of
 * lowercase digits, and decodes them as libsodium does. */
static void every_pair(void) {
  size_t wrong = 0, taken = 0;
  for (int hi = 0; hi < 256; hi++)
    for (int lo = 0; lo < 256; lo++) {
      char hex[2] = {(char)hi, (char)lo};
      uint8_t mine = 0xaa, theirs = 0;
      size_t got = 0;
      bool lower = strchr("0123456789abcdef", hi) && strchr("0123456789abcdef", lo) && hi && lo;
      int rc = tr_hex_decode(hex, 2, &mine, 1);
      bool sodium_ok = sodium_hex2bin(&theirs, 1, hex, 2, NULL, &got, NULL) == 0 && got == 1;
      if ((rc == 0) != lower || (rc == 0 && (!sodium_ok || mine != theirs)) || (rc != 0 && mine != 0)) wrong++;
      taken += rc == 0;
    }
  TR_CHECK(wrong == 0 && taken == 256, "every byte pair: the 256 lowercase ones decode as libsodium's, no other");
}

static void encode_matches_sodium(void) {
  uint8_t all[256];
  for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
  char mine[513], theirs[513], secret[513];
  tr_hex_encode(all, sizeof all, mine);
  sodium_bin2hex(theirs, sizeof theirs, all, sizeof all);
  tr_hex_encode_secret(all, sizeof all, secret);
  TR_CHECK(strcmp(mine, theirs) == 0 && strcmp(secret, theirs) == 0, "every byte encodes as libsodium's");
  char out[5];
  TR_CHECK_EQ_STR(tr_hex_encode((const uint8_t *)"\x0a\xff", 2, out), "0aff", "encode lowercase");
  TR_CHECK_EQ_STR(tr_hex_encode(all, 0, out), "", "nothing encodes as the empty string");
}

int main(void) {
  TR_CHECK(sodium_init() >= 0, "libsodium initialises");
  strictness(tr_hex_decode, "public");
  strictness(tr_hex_decode_secret, "secret");
  every_pair();
  encode_matches_sodium();
  return tr_test_done();
}
