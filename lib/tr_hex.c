/* tr_hex.c — strict lowercase hex.
 *
 * Public values (keys, hashes, signatures: every tx carries three or more)
 * go through one table pass that checks the alphabet and decodes at once.
 * libsodium's codecs run in constant time, which is for secrets: they cost
 * about six times as much, and sodium_hex2bin accepts uppercase and
 * separators, so it needed an alphabet pass of its own first.  Secrets (the
 * key files' seeds) keep libsodium's constant-time codecs.
 */
#include "tr_hex.h"

#include <string.h>

#include <sodium.h>

#include "tr_err.h"

/* One more than the value of each lowercase hex digit, 0 for every other
 * byte: minus one, a digit gives its nibble and any other byte 0xff. */
static const uint8_t DIGIT_PLUS_ONE[256] = {
  ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
  ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

static uint8_t nibble_of(char c) { return (uint8_t)(DIGIT_PLUS_ONE[(unsigned char)c] - 1); }

int tr_hex_decode(const char *hex, size_t hex_len, uint8_t *bin, size_t bin_len) {
  if (hex == NULL || hex_len != 2 * bin_len) return TR_EINVALID;
  uint8_t bad = 0;
  for (size_t i = 0; i < bin_len; i++) {
    uint8_t hi = nibble_of(hex[2 * i]), lo = nibble_of(hex[2 * i + 1]);
    bad |= hi | lo;
    bin[i] = (uint8_t)(hi << 4 | (lo & 0x0f));
  }
  if (bad > 0x0f) {
    memset(bin, 0, bin_len); /* nothing half-decoded is left behind */
    return TR_EINVALID;
  }
  return 0;
}

char *tr_hex_encode(const uint8_t *bin, size_t len, char *out) {
  static const char DIGITS[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = DIGITS[bin[i] >> 4];
    out[2 * i + 1] = DIGITS[bin[i] & 0x0f];
  }
  out[2 * len] = '\0';
  return out;
}

int tr_hex_decode_secret(const char *hex, size_t hex_len, uint8_t *bin, size_t bin_len) {
  if (hex == NULL || hex_len != 2 * bin_len) return TR_EINVALID;
  /* The alphabet check reads every byte, with no table indexed by the
   * secret and no early exit; sodium_hex2bin would also take uppercase. */
  unsigned bad = 0;
  for (size_t i = 0; i < hex_len; i++) {
    unsigned char c = (unsigned char)hex[i];
    unsigned digit = (unsigned)(c - '0') < 10u, lower = (unsigned)(c - 'a') < 6u;
    bad |= (digit | lower) ^ 1u;
  }
  size_t got = 0;
  int rc = sodium_hex2bin(bin, bin_len, hex, hex_len, NULL, &got, NULL);
  if (bad != 0 || rc != 0 || got != bin_len) {
    sodium_memzero(bin, bin_len);
    return TR_EINVALID;
  }
  return 0;
}

char *tr_hex_encode_secret(const uint8_t *bin, size_t len, char *out) {
  return sodium_bin2hex(out, 2 * len + 1, bin, len);
}
