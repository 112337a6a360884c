/* tr_hex.c — strict lowercase hex. sodium_hex2bin accepts uppercase and
 * separators, so we check the alphabet first and then let libsodium decode. */
#include "tr_hex.h"

#include <sodium.h>

#include "tr_err.h"

int tr_hex_decode(const char *hex, size_t hex_len, uint8_t *bin, size_t bin_len) {
  if (hex == NULL || hex_len != 2 * bin_len) return TR_EINVALID;
  for (size_t i = 0; i < hex_len; i++) {
    char c = hex[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return TR_EINVALID;
  }
  size_t got = 0;
  if (sodium_hex2bin(bin, bin_len, hex, hex_len, NULL, &got, NULL) != 0 || got != bin_len)
    return TR_EINVALID;
  return 0;
}

char *tr_hex_encode(const uint8_t *bin, size_t len, char *out) {
  return sodium_bin2hex(out, 2 * len + 1, bin, len);
}
