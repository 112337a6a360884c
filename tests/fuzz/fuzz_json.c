/* fuzz_json.c — tr_json_check under every flag combination.
 *
 * Invariants: the verdict is 0 / TR_EINVALID / TR_ENOMEM; a stricter flag
 * set never accepts what a laxer one refuses; an error offset lies inside
 * the input; whatever the strict checker accepts, cJSON parses (the daemon
 * relies on it), as an object when TOP_OBJECT was asked, and it has no
 * number that is not a plain integer when INTEGERS_ONLY was asked; on
 * accepted text the cursor (tr_json_next_member / _next_element /
 * tr_json_string) reads the same members, values and strings as cJSON, and
 * on any text it stays inside the input.
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

static bool same_type(tr_json_type_t t, const cJSON *item) {
  switch (t) {
  case TR_JSON_STRING: return cJSON_IsString(item);
  case TR_JSON_NUMBER: return cJSON_IsNumber(item);
  case TR_JSON_BOOL: return cJSON_IsBool(item);
  case TR_JSON_NULL: return cJSON_IsNull(item);
  case TR_JSON_OBJECT: return cJSON_IsObject(item);
  case TR_JSON_ARRAY: return cJSON_IsArray(item);
  }
  return false;
}

static bool same_string(const tr_json_value_t *v, const char *s) {
  static char buf[1 << 16];
  size_t n = tr_json_string(v, buf, sizeof buf);
  return n <= sizeof buf && n == strlen(s) && memcmp(buf, s, n) == 0;
}

/* The cursor's reading of the container v against cJSON's tree of it. */
static void cursor_agrees(const tr_json_value_t *v, const cJSON *item, size_t depth) {
  FUZZ_CHECK(same_type(v->type, item), "the cursor and cJSON disagree on a value's type");
  if (v->type == TR_JSON_STRING) FUZZ_CHECK(same_string(v, item->valuestring), "the cursor decoded a string otherwise");
  if ((v->type != TR_JSON_OBJECT && v->type != TR_JSON_ARRAY) || depth > 20) return;
  size_t pos = 0;
  tr_json_value_t name, value;
  const cJSON *child = item->child;
  while (v->type == TR_JSON_OBJECT ? tr_json_next_member(v->raw, v->len, &pos, &name, &value)
                                   : tr_json_next_element(v->raw, v->len, &pos, &value)) {
    FUZZ_CHECK(child != NULL, "the cursor read more members than cJSON");
    if (child == NULL) return;
    if (v->type == TR_JSON_OBJECT) FUZZ_CHECK(same_string(&name, child->string), "the cursor read another name");
    cursor_agrees(&value, child, depth + 1);
    child = child->next;
  }
  FUZZ_CHECK(child == NULL, "the cursor read fewer members than cJSON");
}

/* Any text: the cursor must stay in bounds (ASan), whatever it reads. */
static void cursor_anywhere(const char *text, size_t size) {
  size_t pos = 0, n = 0;
  tr_json_value_t name, value;
  char buf[64];
  while (n++ < 1000 && tr_json_next_member(text, size, &pos, &name, &value)) {
    tr_json_string(&name, buf, sizeof buf);
    if (value.type == TR_JSON_STRING) tr_json_string(&value, buf, sizeof buf);
  }
  pos = n = 0;
  while (n++ < 1000 && tr_json_next_element(text, size, &pos, &value)) {
    if (value.type == TR_JSON_STRING) tr_json_string(&value, buf, sizeof buf);
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
  cursor_anywhere(text, size);
  if (rc[0] == 0) {
    cJSON *root = cJSON_ParseWithLength(text, size);
    FUZZ_CHECK(root != NULL, "strict JSON that cJSON cannot parse");
    tr_json_value_t top = {cJSON_IsObject(root) ? TR_JSON_OBJECT : TR_JSON_ARRAY, text, size, false};
    if (cJSON_IsObject(root) || cJSON_IsArray(root)) cursor_agrees(&top, root, 0); /* whitespace around is skipped */
    if (rc[1] == 0) FUZZ_CHECK(cJSON_IsObject(root), "TOP_OBJECT accepted a non-object");
    if (rc[1] != 0 && rc[0] == 0) FUZZ_CHECK(!cJSON_IsObject(root), "TOP_OBJECT refused an object");
    if (rc[2] == 0) check_integers(root);
    cJSON_Delete(root);
  }
  return 0;
}
