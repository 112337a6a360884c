/* tr_json.c — strict RFC 8259 checking of raw bytes (contract in tr_json.h).
 *
 * Workload: every tx (≤ TR_TX_BYTES_MAX) and every RPC line (≤
 * TR_RPC_LINE_BYTES_MAX) passes here once, before cJSON builds a tree.  It is
 * a recursive-descent recogniser that builds nothing: recursion is bounded by
 * TR_JSON_DEPTH_MAX and every read is checked against `len`, so any byte
 * string is safe input (the file is a fuzzing target) and no NUL terminator
 * is needed.
 *
 * Duplicate member names: each name's raw span is pushed on one stack shared
 * by all open objects.  When an object closes, its own spans are the top of
 * the stack; they are sorted and neighbours compared (O(n log n) per object),
 * then popped.  Names are compared after unescaping, decoded on the fly, so
 * nothing is copied.  The first TR_JSON_NAMES_INLINE spans live on the C
 * stack, so checking a tx never touches the heap.
 */
#include "tr_json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_limits.h"

#define TR_JSON_NAMES_INLINE 128 /* name spans before the stack spills to the heap */
#define TR_JSON_INT_DIGITS_MAX 16 /* integers-only: 0|[1-9][0-9]{0,15} */

typedef struct {
  const uint8_t *raw; /* string contents between the quotes, still escaped */
  size_t len;
  bool escaped;       /* holds a backslash: compare the decoded bytes */
} name_span_t;

typedef struct {
  const uint8_t *s;
  size_t len, pos;
  int flags;
  int rc;                      /* 0, TR_EINVALID or TR_ENOMEM */
  tr_json_error_t *err;
  name_span_t *names;          /* names_inline, or heap once it spilled */
  size_t names_n, names_cap;
  name_span_t names_inline[TR_JSON_NAMES_INLINE];
} parser_t;

static int parse_value(parser_t *p, size_t depth);

/* Records the first problem; returns -1 so callers can `return fail(...)`. */
static int fail(parser_t *p, size_t at, const char *msg) {
  if (p->rc == 0) {
    p->rc = TR_EINVALID;
    if (p->err) {
      p->err->offset = at;
      snprintf(p->err->message, sizeof p->err->message, "%s", msg);
    }
  }
  return -1;
}

static int fail_nomem(parser_t *p) {
  fail(p, p->pos, "out of memory");
  p->rc = TR_ENOMEM;
  return -1;
}

static void skip_ws(parser_t *p) {
  while (p->pos < p->len) {
    uint8_t c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

/* Next byte, or -1 at the end of input. */
static int peek(const parser_t *p) { return p->pos < p->len ? p->s[p->pos] : -1; }

static int hex_digit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10; /* RFC 8259 allows either case in \u */
  return -1;
}

/* Reads the 4 hex digits at s[0..3]; returns the code unit or -1. */
static long hex4(const uint8_t *s) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(s[i]);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* ---- strings ---- */

/* One multi-byte UTF-8 sequence at p->pos (RFC 3629 table 3-7): rejects
 * overlong forms, UTF-16 surrogates and anything above U+10FFFF. */
static int utf8_step(parser_t *p) {
  size_t at = p->pos;
  uint8_t c = p->s[at], lo = 0x80, hi = 0xBF;
  size_t more;
  if (c >= 0xC2 && c <= 0xDF) {
    more = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    more = 2;
    if (c == 0xE0) lo = 0xA0; /* below: overlong */
    if (c == 0xED) hi = 0x9F; /* above: surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    more = 3;
    if (c == 0xF0) lo = 0x90; /* below: overlong */
    if (c == 0xF4) hi = 0x8F; /* above: past U+10FFFF */
  } else if (c == 0xC0 || c == 0xC1) {
    return fail(p, at, "overlong UTF-8 sequence");
  } else if (c >= 0xF5) {
    return fail(p, at, "UTF-8 above U+10FFFF or invalid byte");
  } else {
    return fail(p, at, "UTF-8 continuation byte without a lead byte");
  }
  if (p->len - at <= more) return fail(p, at, "truncated UTF-8 sequence");
  uint8_t c1 = p->s[at + 1];
  if (c1 < lo || c1 > hi) {
    if (c == 0xED && c1 >= 0xA0 && c1 <= 0xBF) return fail(p, at, "UTF-8 encoded surrogate");
    if ((c == 0xE0 || c == 0xF0) && c1 >= 0x80 && c1 < lo) return fail(p, at, "overlong UTF-8 sequence");
    if (c == 0xF4 && c1 > hi && c1 <= 0xBF) return fail(p, at, "UTF-8 above U+10FFFF");
    return fail(p, at, "invalid UTF-8 sequence");
  }
  for (size_t i = 2; i <= more; i++) {
    uint8_t ci = p->s[at + i];
    if (ci < 0x80 || ci > 0xBF) return fail(p, at, "invalid UTF-8 sequence");
  }
  p->pos = at + more + 1;
  return 0;
}

/* \uXXXX at p->pos (the backslash), with a following low surrogate when the
 * first unit is a high one. */
static int parse_u_escape(parser_t *p) {
  size_t at = p->pos;
  if (p->len - at < 6) return fail(p, at, "truncated \\u escape");
  long u = hex4(p->s + at + 2);
  if (u < 0) return fail(p, at, "\\u needs 4 hex digits");
  if (u == 0) return fail(p, at, "escaped U+0000 is not allowed");
  if (u >= 0xDC00 && u <= 0xDFFF) return fail(p, at, "unpaired low surrogate escape");
  p->pos = at + 6;
  if (u < 0xD800 || u > 0xDBFF) return 0;
  size_t lo_at = p->pos;
  if (p->len - lo_at < 6 || p->s[lo_at] != '\\' || p->s[lo_at + 1] != 'u')
    return fail(p, at, "unpaired high surrogate escape");
  long lo = hex4(p->s + lo_at + 2);
  if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, at, "unpaired high surrogate escape");
  p->pos = lo_at + 6;
  return 0;
}

static int parse_escape(parser_t *p) {
  size_t at = p->pos;
  if (p->len - at < 2) return fail(p, at, "truncated escape");
  switch (p->s[at + 1]) {
  case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
    p->pos = at + 2;
    return 0;
  case 'u':
    return parse_u_escape(p);
  default:
    return fail(p, at, "invalid escape");
  }
}

/* A string at p->pos (the opening quote).  When span != NULL it receives the
 * contents for duplicate detection. */
static int parse_string(parser_t *p, name_span_t *span) {
  size_t open = p->pos++;
  bool escaped = false;
  for (;;) {
    if (p->pos >= p->len) return fail(p, open, "unterminated string");
    uint8_t c = p->s[p->pos];
    if (c == '"') break;
    if (c == '\\') {
      escaped = true;
      if (parse_escape(p) != 0) return -1;
    } else if (c == 0) {
      return fail(p, p->pos, "raw U+0000 in string");
    } else if (c < 0x20) {
      return fail(p, p->pos, "raw control character in string");
    } else if (c < 0x80) {
      p->pos++;
    } else if (utf8_step(p) != 0) {
      return -1;
    }
  }
  if (span) {
    span->raw = p->s + open + 1;
    span->len = p->pos - open - 1;
    span->escaped = escaped;
  }
  p->pos++; /* closing quote */
  return 0;
}

/* ---- numbers and literals ---- */

/* Skips [0-9]* and returns how many. */
static size_t skip_digits(parser_t *p) {
  size_t start = p->pos;
  while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
  return p->pos - start;
}

/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and under
 * TR_JSON_INTEGERS_ONLY exactly 0|[1-9][0-9]{0,15}. */
static int parse_number(parser_t *p) {
  size_t at = p->pos;
  bool minus = false, frac = false, exp = false;
  if (peek(p) == '-') {
    minus = true;
    p->pos++;
  }
  int first = peek(p);
  if (first < '0' || first > '9') return fail(p, at, "invalid number");
  size_t int_digits = skip_digits(p);
  if (first == '0' && int_digits > 1) return fail(p, at, "leading zero in number");
  if (peek(p) == '.') {
    frac = true;
    p->pos++;
    if (skip_digits(p) == 0) return fail(p, at, "number needs digits after '.'");
  }
  if (peek(p) == 'e' || peek(p) == 'E') {
    exp = true;
    p->pos++;
    if (peek(p) == '+' || peek(p) == '-') p->pos++;
    if (skip_digits(p) == 0) return fail(p, at, "number needs digits in the exponent");
  }
  if (p->flags & TR_JSON_INTEGERS_ONLY) {
    if (minus || frac || exp) return fail(p, at, "only unsigned integers are allowed (no sign, fraction or exponent)");
    if (int_digits > TR_JSON_INT_DIGITS_MAX) return fail(p, at, "integer longer than 16 digits");
  }
  return 0;
}

static int parse_literal(parser_t *p, const char *word) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
    return fail(p, p->pos, "invalid literal");
  p->pos += n;
  return 0;
}

/* ---- duplicate member names ---- */

/* Yields the decoded bytes of an already validated string body. */
typedef struct {
  const uint8_t *s, *end;
  uint8_t buf[4];
  size_t buf_n, buf_i;
} unescape_t;

/* UTF-8 of a scalar value into out; returns its length. */
static size_t utf8_encode(uint32_t cp, uint8_t out[4]) {
  size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  static const uint8_t lead[5] = {0, 0x00, 0xC0, 0xE0, 0xF0};
  for (size_t i = n - 1; i > 0; i--) {
    out[i] = (uint8_t)(0x80 | (cp & 0x3F));
    cp >>= 6;
  }
  out[0] = (uint8_t)(lead[n] | cp);
  return n;
}

static int unescape_u(unescape_t *u) {
  uint32_t cp = (uint32_t)hex4(u->s + 2);
  u->s += 6;
  if (cp >= 0xD800 && cp <= 0xDBFF && u->end - u->s >= 6) { /* validated: a low surrogate follows */
    uint32_t lo = (uint32_t)hex4(u->s + 2);
    u->s += 6;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  u->buf_n = utf8_encode(cp, u->buf);
  u->buf_i = 1;
  return u->buf[0];
}

/* Next decoded byte, or -1 at the end.  The escapes were checked; the
 * lengths are checked again so that text that was not stays in bounds. */
static int unescape_next(unescape_t *u) {
  if (u->buf_i < u->buf_n) return u->buf[u->buf_i++];
  if (u->s >= u->end) return -1;
  if (*u->s != '\\' || u->end - u->s < 2) return *u->s++;
  uint8_t e = u->s[1];
  if (e == 'u' && u->end - u->s >= 6) return unescape_u(u);
  u->s += 2;
  switch (e) {
  case 'b': return '\b';
  case 'f': return '\f';
  case 'n': return '\n';
  case 'r': return '\r';
  case 't': return '\t';
  default: return e; /* '"', '\\', '/' stand for themselves */
  }
}

/* Byte-wise order of the decoded names. */
static int name_cmp_text(const name_span_t *a, const name_span_t *b) {
  if (!a->escaped && !b->escaped) {
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->raw, b->raw, n);
    if (c != 0) return c;
    return a->len < b->len ? -1 : a->len > b->len;
  }
  unescape_t ua = {a->raw, a->raw + a->len, {0}, 0, 0};
  unescape_t ub = {b->raw, b->raw + b->len, {0}, 0, 0};
  for (;;) {
    int ca = unescape_next(&ua), cb = unescape_next(&ub);
    if (ca != cb) return ca < cb ? -1 : 1;
    if (ca < 0) return 0;
  }
}

/* Sort order: decoded name, then position, so equal names end up adjacent
 * in document order and the reported duplicate is deterministic. */
static int name_cmp(const void *x, const void *y) {
  const name_span_t *a = x, *b = y;
  int c = name_cmp_text(a, b);
  if (c != 0) return c;
  return a->raw < b->raw ? -1 : a->raw > b->raw;
}

static int names_push(parser_t *p, const name_span_t *span) {
  if (p->names_n == p->names_cap) {
    size_t cap = p->names_cap * 2;
    name_span_t *grown;
    if (p->names == p->names_inline) {
      grown = malloc(cap * sizeof *grown);
      if (grown) memcpy(grown, p->names, p->names_n * sizeof *grown);
    } else {
      grown = realloc(p->names, cap * sizeof *grown);
    }
    if (grown == NULL) return fail_nomem(p);
    p->names = grown;
    p->names_cap = cap;
  }
  p->names[p->names_n++] = *span;
  return 0;
}

/* Checks the names pushed since `base` (one object's members) and pops them. */
static int names_check(parser_t *p, size_t base) {
  name_span_t *v = p->names + base;
  size_t n = p->names_n - base;
  p->names_n = base;
  if (n < 2) return 0;
  qsort(v, n, sizeof *v, name_cmp);
  const uint8_t *dup = NULL; /* the earliest second occurrence */
  for (size_t i = 1; i < n; i++) {
    if (name_cmp_text(&v[i - 1], &v[i]) == 0 && (dup == NULL || v[i].raw < dup)) dup = v[i].raw;
  }
  if (dup) return fail(p, (size_t)(dup - p->s) - 1, "duplicate member name");
  return 0;
}

/* ---- containers ---- */

static int parse_member(parser_t *p, size_t depth) {
  skip_ws(p);
  if (peek(p) != '"') return fail(p, p->pos, "expected a member name");
  name_span_t span;
  if (parse_string(p, &span) != 0 || names_push(p, &span) != 0) return -1;
  skip_ws(p);
  if (peek(p) != ':') return fail(p, p->pos, "expected ':' after a member name");
  p->pos++;
  return parse_value(p, depth);
}

/* An object at p->pos (the '{'); `depth` counts it. */
static int parse_object(parser_t *p, size_t depth) {
  if (depth > TR_JSON_DEPTH_MAX) return fail(p, p->pos, "nesting deeper than 16");
  size_t base = p->names_n;
  p->pos++;
  skip_ws(p);
  if (peek(p) == '}') {
    p->pos++;
    return 0;
  }
  for (;;) {
    if (parse_member(p, depth) != 0) return -1;
    skip_ws(p);
    int c = peek(p);
    if (c != ',' && c != '}') return fail(p, p->pos, "expected ',' or '}'");
    p->pos++;
    if (c == '}') break;
  }
  return names_check(p, base);
}

static int parse_array(parser_t *p, size_t depth) {
  if (depth > TR_JSON_DEPTH_MAX) return fail(p, p->pos, "nesting deeper than 16");
  p->pos++;
  skip_ws(p);
  if (peek(p) == ']') {
    p->pos++;
    return 0;
  }
  for (;;) {
    if (parse_value(p, depth) != 0) return -1;
    skip_ws(p);
    int c = peek(p);
    if (c != ',' && c != ']') return fail(p, p->pos, "expected ',' or ']'");
    p->pos++;
    if (c == ']') return 0;
  }
}

/* Any value, after optional whitespace; `depth` is that of the enclosing container. */
static int parse_value(parser_t *p, size_t depth) {
  skip_ws(p);
  int c = peek(p);
  switch (c) {
  case -1: return fail(p, p->pos, "unexpected end of input");
  case '{': return parse_object(p, depth + 1);
  case '[': return parse_array(p, depth + 1);
  case '"': return parse_string(p, NULL);
  case 't': return parse_literal(p, "true");
  case 'f': return parse_literal(p, "false");
  case 'n': return parse_literal(p, "null");
  default:
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
    return fail(p, p->pos, "unexpected byte where a value should start");
  }
}

int tr_json_check(const char *text, size_t len, int flags, tr_json_error_t *err) {
  if (text == NULL && len != 0) return TR_EINVALID;
  parser_t p = {.s = (const uint8_t *)text, .len = len, .flags = flags, .err = err};
  p.names = p.names_inline;
  p.names_cap = TR_JSON_NAMES_INLINE;
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
    fail(&p, 0, "byte-order mark is not allowed");
  } else {
    skip_ws(&p);
    if ((flags & TR_JSON_TOP_OBJECT) && peek(&p) != '{') {
      fail(&p, p.pos, "top-level value must be an object");
    } else if (parse_value(&p, 0) == 0) {
      skip_ws(&p);
      if (p.pos != len) fail(&p, p.pos, "unexpected bytes after the value");
    }
  }
  if (p.names != p.names_inline) free(p.names);
  return p.rc;
}

char *tr_json_put_u64(char *out, uint64_t v) {
  char digits[20];
  size_t n = 0;
  do digits[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (n) *out++ = digits[--n];
  return out;
}

size_t tr_utf8_chars(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (((uint8_t)s[i] & 0xC0) != 0x80) n++; /* count every byte that starts a scalar */
  }
  return n;
}

/* ---- spans in text that tr_json_check accepted ----
 * No validation here: the text is known to be strict JSON, so a value can be
 * skipped by tracking only strings and bracket depth. */

static size_t span_ws(const char *t, size_t len, size_t i) {
  while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) i++;
  return i;
}

/* memchr rather than a loop over bytes: a tx.submit line carries its tx as
 * a string with an escaped quote every few bytes (4x faster on such a
 * string).  *escaped (may be NULL) tells whether the string holds a
 * backslash. */
static size_t span_string_end_esc(const char *t, size_t len, size_t i, bool *escaped) { /* t[i] == '"' */
  bool any = false;
  for (i++; i < len;) {
    const char *quote = memchr(t + i, '"', len - i);
    size_t stop = quote ? (size_t)(quote - t) : len;
    const char *esc = memchr(t + i, '\\', stop - i);
    if (esc == NULL) {
      i = stop;
      break;
    }
    any = true;
    i = (size_t)(esc - t) + 2; /* past the escaped character, whatever it is */
  }
  if (escaped) *escaped = any;
  return i + 1;
}

static size_t span_string_end(const char *t, size_t len, size_t i) {
  return span_string_end_esc(t, len, i, NULL);
}

static size_t span_value_end(const char *t, size_t len, size_t i) {
  if (i >= len) return len;
  if (t[i] == '"') return span_string_end(t, len, i);
  if (t[i] != '{' && t[i] != '[') {
    while (i < len && t[i] != ',' && t[i] != '}' && t[i] != ']' && t[i] != ' ' && t[i] != '\t' && t[i] != '\n' &&
           t[i] != '\r')
      i++;
    return i;
  }
  size_t depth = 0;
  for (; i < len; i++) {
    if (t[i] == '"') i = span_string_end(t, len, i) - 1;
    else if (t[i] == '{' || t[i] == '[') depth++;
    else if ((t[i] == '}' || t[i] == ']') && --depth == 0) return i + 1;
  }
  return len;
}

size_t tr_json_span_next(const char *text, size_t len, size_t *pos, size_t *start) {
  size_t i = span_ws(text, len, *pos);
  if (i < len && (text[i] == '[' || text[i] == ',')) i = span_ws(text, len, i + 1);
  if (i >= len || text[i] == ']') return 0;
  *start = i;
  size_t end = span_value_end(text, len, i);
  *pos = end;
  return end - i;
}

/* The member name between the quotes of key[0..len) (still escaped)
 * equals name once decoded: cJSON decodes names, so `"\u0069d"` is the member
 * `id` to every other part of the daemon and must be here too. */
static bool span_name_is(const char *key, size_t len, const char *name) {
  size_t name_len = strlen(name);
  if (memchr(key, '\\', len) == NULL) return len == name_len && memcmp(key, name, name_len) == 0;
  /* rare: an escaped name; decoding trusts its escapes, so they are checked
   * first (the span functions stay bounded on any text) */
  if (tr_json_check(key - 1, len + 2, TR_JSON_ANY_VALUE, NULL) != 0) return false;
  unescape_t u = {(const uint8_t *)key, (const uint8_t *)key + len, {0}, 0, 0};
  for (size_t i = 0;; i++) {
    int c = unescape_next(&u);
    if (c < 0) return i == name_len;
    if (i >= name_len || (uint8_t)name[i] != c) return false;
  }
}

int tr_json_member_span(const char *obj, size_t len, const char *name, size_t *start, size_t *vlen) {
  size_t i = span_ws(obj, len, 0);
  if (i >= len || obj[i] != '{') return TR_ENOT_FOUND;
  for (i = span_ws(obj, len, i + 1); i < len && obj[i] == '"';) {
    size_t key_end = span_string_end(obj, len, i);
    if (key_end > len || key_end < i + 2) return TR_ENOT_FOUND; /* text tr_json_check did not accept */
    bool match = span_name_is(obj + i + 1, key_end - i - 2, name);
    size_t v = span_ws(obj, len, span_ws(obj, len, key_end) + 1); /* past the ':' */
    size_t v_end = span_value_end(obj, len, v);
    if (match) {
      *start = v;
      *vlen = v_end - v;
      return 0;
    }
    i = span_ws(obj, len, v_end);
    if (i < len && obj[i] == ',') i = span_ws(obj, len, i + 1);
  }
  return TR_ENOT_FOUND;
}

/* ---- reading members and elements ---- */

/* The value starting at t[i] (after whitespace) into *v; returns its end. */
static size_t read_value(const char *t, size_t len, size_t i, tr_json_value_t *v) {
  size_t end;
  *v = (tr_json_value_t){.raw = t + i};
  if (i >= len) {
    v->type = TR_JSON_NULL;
    return len;
  }
  switch (t[i]) {
  case '"':
    end = span_string_end_esc(t, len, i, &v->escaped);
    v->type = TR_JSON_STRING;
    v->raw = t + i + 1;
    v->len = end > len ? len - i - 1 : end - i - 2;
    return end > len ? len : end;
  case '{': v->type = TR_JSON_OBJECT; break;
  case '[': v->type = TR_JSON_ARRAY; break;
  case 't': case 'f': v->type = TR_JSON_BOOL; break;
  case 'n': v->type = TR_JSON_NULL; break;
  default: v->type = TR_JSON_NUMBER; break;
  }
  end = span_value_end(t, len, i);
  v->len = end - i;
  return end;
}

/* Past the opening bracket on the first call (*pos 0), else past the ','
 * that separates items; returns where the next item starts, or len when the
 * container has no more. */
static size_t next_item(const char *t, size_t len, size_t *pos, char open) {
  size_t i = span_ws(t, len, *pos);
  if (i >= len || t[i] != (*pos == 0 ? open : ',')) return len;
  return span_ws(t, len, i + 1);
}

bool tr_json_next_member(const char *obj, size_t len, size_t *pos, tr_json_value_t *name, tr_json_value_t *value) {
  size_t i = next_item(obj, len, pos, '{');
  if (i >= len || obj[i] != '"') return false;
  i = span_ws(obj, len, read_value(obj, len, i, name));
  if (i >= len || obj[i] != ':') return false;
  *pos = read_value(obj, len, span_ws(obj, len, i + 1), value);
  return true;
}

bool tr_json_next_element(const char *arr, size_t len, size_t *pos, tr_json_value_t *value) {
  size_t i = next_item(arr, len, pos, '[');
  if (i >= len || arr[i] == ']') return false;
  *pos = read_value(arr, len, i, value);
  return true;
}

size_t tr_json_string(const tr_json_value_t *s, char *out, size_t cap) {
  if (!s->escaped) {
    memcpy(out, s->raw, s->len < cap ? s->len : cap);
    return s->len;
  }
  const uint8_t *p = (const uint8_t *)s->raw, *end = p + s->len;
  size_t n = 0;
  while (p < end) {
    if (*p != '\\') { /* most bytes: no call per byte */
      if (n < cap) out[n] = (char)*p;
      n++, p++;
      continue;
    }
    unescape_t u = {p, end, {0}, 0, 0}; /* one escape, up to 4 bytes of UTF-8 */
    for (int c = unescape_next(&u); c >= 0; c = u.buf_i < u.buf_n ? u.buf[u.buf_i++] : -1, n++) {
      if (n < cap) out[n] = (char)c;
    }
    p = u.s;
  }
  return n;
}
