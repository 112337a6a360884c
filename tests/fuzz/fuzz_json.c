/* fuzz_json.c — tr_json_check under every flag combination.
 *
 * Invariants: the verdict is 0 / TR_EINVALID / TR_ENOMEM; a stricter flag
 * set never accepts what a laxer one refuses; an error offset lies inside
 * the input; whatever the strict checker accepts, cJSON parses (the daemon
 * relies on it), as an object when TOP_OBJECT was asked, and it has no
 * number that is not a plain integer when INTEGERS_ONLY was asked.
 */
#include <cJSON.h>
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "tr_err.h"
#include "tr_json.h"

static void check_integers(const cJSON *item) {
  for (; item; item = item->next) {
    if (cJSON_IsNumber(item)) {
      double v = item->valuedouble;
      FUZZ_CHECK(v >= 0 && v <= 9999999999999999.0 && floor(v) == v, "INTEGERS_ONLY let a non-integer through");
    }
    check_integers(item->child);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  int rc[4];
  for (int f = 0; f < 4; f++) {
    tr_json_error_t err;
    memset(&err, 0xa5, sizeof err);
    rc[f] = tr_json_check(text, size, f, &err);
    FUZZ_CHECK(rc[f] == 0 || rc[f] == TR_EINVALID || rc[f] == TR_ENOMEM, "unexpected return code");
    if (rc[f] == TR_EINVALID) {
      FUZZ_CHECK(err.offset <= size, "error offset past the input");
      FUZZ_CHECK(memchr(err.message, '\0', sizeof err.message) != NULL, "error message not NUL-terminated");
    }
  }
  tr_json_check(text, size, 3, NULL); /* err may be NULL */
  if (rc[0] == TR_ENOMEM || rc[1] == TR_ENOMEM || rc[2] == TR_ENOMEM || rc[3] == TR_ENOMEM) return 0;
  FUZZ_CHECK(!(rc[3] == 0 && (rc[1] != 0 || rc[2] != 0)), "TOP_OBJECT|INTEGERS_ONLY accepts what one flag refuses");
  FUZZ_CHECK(!(rc[1] == 0 && rc[0] != 0), "TOP_OBJECT accepts what ANY_VALUE refuses");
  FUZZ_CHECK(!(rc[2] == 0 && rc[0] != 0), "INTEGERS_ONLY accepts what ANY_VALUE refuses");
  if (rc[0] == 0) {
    cJSON *root = cJSON_ParseWithLength(text, size);
    FUZZ_CHECK(root != NULL, "strict JSON that cJSON cannot parse");
    if (rc[1] == 0) FUZZ_CHECK(cJSON_IsObject(root), "TOP_OBJECT accepted a non-object");
    if (rc[1] != 0 && rc[0] == 0) FUZZ_CHECK(!cJSON_IsObject(root), "TOP_OBJECT refused an object");
    if (rc[2] == 0) check_integers(root);
    cJSON_Delete(root);
  }
  return 0;
}
