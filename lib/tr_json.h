/* tr_json.h — strict RFC 8259 checking of raw bytes, before cJSON or the cursor below reads them.
 *
 * cJSON is lenient (duplicate names, `1e3`, trailing bytes in some modes), so
 * every JSON text tranche accepts from outside is first checked here: one
 * value, valid UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF), no byte-order mark, whitespace only SP/HT/LF/CR, no U+0000 raw or
 * escaped (\u0000), escapes well formed with \u surrogate pairs matched, no
 * duplicate member names at any depth (compared after unescaping, byte for
 * byte), nesting at most TR_JSON_DEPTH_MAX, nothing after the value.
 */
#ifndef TR_JSON_H
#define TR_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  TR_JSON_ANY_VALUE = 0,      /* any JSON value at top level */
  TR_JSON_TOP_OBJECT = 1,     /* top-level value must be an object */
  TR_JSON_INTEGERS_ONLY = 2,  /* every number must match 0|[1-9][0-9]{0,15} (tx bytes) */
} tr_json_flags_t;

typedef struct {
  size_t offset;        /* byte offset of the first problem */
  char message[96];     /* what was wrong, for humans */
} tr_json_error_t;

/* Check `len` bytes at `text` (need not be NUL-terminated).
 * Returns 0 when the text is strict JSON under `flags` (an OR of
 * tr_json_flags_t), else TR_EINVALID with *err filled when err != NULL.
 * Returns TR_ENOMEM (not a verdict on the text) only when an object has so
 * many members that the duplicate check's name list could not grow; up to
 * 128 member names in open objects need no heap at all. Thread-safe. */
int tr_json_check(const char *text, size_t len, int flags, tr_json_error_t *err);

/* Spans in text that tr_json_check accepted (behaviour on other text is
 * bounded but meaningless).  They let a caller look at the exact bytes of a
 * part of a document, which cJSON's tree no longer has (`1.0` and `1` parse
 * alike).
 *
 * tr_json_span_next: walks the elements of a top-level array (or returns the
 * whole value once when it is not an array): start *pos at 0; each call gives
 * an element's offset in *start and returns its length, 0 when done.
 * tr_json_member_span: the value of member `name` of the object `obj`, names
 * compared after decoding their escapes (as cJSON reads them, so `"\u0069d"`
 * is `id`); 0, or TR_ENOT_FOUND. */
size_t tr_json_span_next(const char *text, size_t len, size_t *pos, size_t *start);
int tr_json_member_span(const char *obj, size_t len, const char *name, size_t *start, size_t *vlen);

/* Reading text that tr_json_check accepted, member by member, with no tree
 * and no allocation: the hot paths (a tx's fields, a tx.submit line) read
 * their few members straight from the bytes, where cJSON would build and free
 * a node and a copy for each.  Behaviour on other text is bounded but
 * meaningless. */
typedef enum {
  TR_JSON_STRING, TR_JSON_NUMBER, TR_JSON_BOOL, TR_JSON_NULL, TR_JSON_OBJECT, TR_JSON_ARRAY
} tr_json_type_t;

typedef struct {
  tr_json_type_t type;
  const char *raw;  /* a string's bytes between its quotes, still escaped; any other value's own text */
  size_t len;
  bool escaped;     /* a string holding an escape: read its bytes with tr_json_string */
} tr_json_value_t;

/* Start *pos at 0.  Each call reads the next member of the object at
 * obj[0..len) into *name (a string) and *value and returns true; false after
 * the last member (or when obj is not an object).  Names are in document
 * order; the check has refused duplicates. */
bool tr_json_next_member(const char *obj, size_t len, size_t *pos, tr_json_value_t *name, tr_json_value_t *value);

/* The same for the elements of the array at arr[0..len). */
bool tr_json_next_element(const char *arr, size_t len, size_t *pos, tr_json_value_t *value);

/* A string's decoded bytes (escapes resolved, as cJSON reads them) into out,
 * at most cap of them, no NUL.  Returns the whole decoded length, which is
 * more than cap when the string did not fit (out then holds its first cap
 * bytes, possibly ending inside a UTF-8 sequence). */
size_t tr_json_string(const tr_json_value_t *s, char *out, size_t cap);

/* Writes v as plain decimal digits (never an exponent form) at out, which
 * must have room for 20 bytes; no NUL.  Returns the end.  For JSON rendered
 * by hand on the hot paths (receipts, their effects). */
char *tr_json_put_u64(char *out, uint64_t v);

/* Number of Unicode scalar values in valid UTF-8 `s` of `len` bytes. */
size_t tr_utf8_chars(const char *s, size_t len);

#endif
