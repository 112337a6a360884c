/* test_hex.c — strict lowercase hex (PROTOCOL.md §1). */
#include <stdint.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_test.h"

int main(void) {
  uint8_t b[2];
  char out[5];
  TR_CHECK(tr_hex_decode("0aff", 4, b, 2) == 0 && b[0] == 0x0a && b[1] == 0xff, "lowercase decodes");
  TR_CHECK(tr_hex_decode("0AFF", 4, b, 2) == TR_EINVALID, "uppercase refused");
  TR_CHECK(tr_hex_decode("0af", 3, b, 2) == TR_EINVALID, "odd length refused");
  TR_CHECK(tr_hex_decode("0afff0", 6, b, 2) == TR_EINVALID, "too long refused");
  TR_CHECK(tr_hex_decode("0a:f", 4, b, 2) == TR_EINVALID, "separator refused");
  TR_CHECK_EQ_STR(tr_hex_encode((const uint8_t *)"\x0a\xff", 2, out), "0aff", "encode lowercase");
  return tr_test_done();
}
