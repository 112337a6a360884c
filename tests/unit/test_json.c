/* test_json.c — the strict byte-level JSON check (tr_json.h, PROTOCOL.md §2).
 *
 * Every case is copied into a heap block of exactly its length, so a read
 * past the end is caught under -fsanitize=address and no case relies on a
 * NUL terminator. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_json.h"
#include "tr_limits.h"
#include "tr_test.h"

#define ANY TR_JSON_ANY_VALUE
#define OBJ TR_JSON_TOP_OBJECT
#define INT TR_JSON_INTEGERS_ONLY
#define TX (TR_JSON_TOP_OBJECT | TR_JSON_INTEGERS_ONLY)

typedef struct {
  const char *text;
  size_t len;
  int flags;
  int ok;
  const char *what;
} jcase_t;

/* sizeof - 1 keeps embedded NULs in the case. */
#define OK(s, f, w) {s, sizeof(s) - 1, f, 1, w}
#define BAD(s, f, w) {s, sizeof(s) - 1, f, 0, w}

/* Checks `len` bytes at `text` from an exact-size heap copy. */
static int check(const char *text, size_t len, int flags, tr_json_error_t *err) {
  char *copy = malloc(len ? len : 1);
  if (len) memcpy(copy, text, len);
  int rc = tr_json_check(copy, len, flags, err);
  free(copy);
  return rc;
}

static const jcase_t CASES[] = {
  /* values and structure */
  OK("{}", ANY, "empty object"),
  OK("[]", ANY, "empty array"),
  OK("0", ANY, "bare zero"),
  OK("\"a\"", ANY, "bare string"),
  OK("true", ANY, "true"),
  OK("false", ANY, "false"),
  OK("null", ANY, "null"),
  OK(" \t\r\n{ \"a\" : [ 1 , 2 , { \"b\" : null } ] }\r\n\t ", ANY, "all four whitespace bytes"),
  OK("{\"a\":{\"b\":{\"c\":[true,false,null,\"x\",-1.5e+3]}}}", ANY, "nested mix"),
  BAD("", ANY, "empty input"),
  BAD("   ", ANY, "whitespace only"),
  BAD("{", ANY, "unclosed object"),
  BAD("[", ANY, "unclosed array"),
  BAD("}", ANY, "stray close"),
  BAD("{\"a\"}", ANY, "member without value"),
  BAD("{\"a\":}", ANY, "member with empty value"),
  BAD("{\"a\" 1}", ANY, "member without colon"),
  BAD("{\"a\":1,}", ANY, "trailing comma in object"),
  BAD("[1,]", ANY, "trailing comma in array"),
  BAD("[,1]", ANY, "leading comma in array"),
  BAD("{,}", ANY, "lone comma in object"),
  BAD("[1 2]", ANY, "missing comma"),
  BAD("{\"a\":1 \"b\":2}", ANY, "missing comma between members"),
  BAD("{a:1}", ANY, "bare member name"),
  BAD("{1:1}", ANY, "number as member name"),
  BAD("'a'", ANY, "single quotes"),
  BAD("tru", ANY, "truncated literal"),
  BAD("nul", ANY, "truncated null"),
  BAD("True", ANY, "capitalised literal"),
  BAD("nulll", ANY, "literal with extra letter"),
  BAD("undefined", ANY, "undefined"),
  BAD("{}x", ANY, "trailing garbage"),
  BAD("{} {}", ANY, "two values"),
  BAD("{}\0", ANY, "trailing NUL byte"),
  BAD("{}\f", ANY, "form feed is not whitespace"),
  BAD("{\v}", ANY, "vertical tab is not whitespace"),
  BAD("\xC2\xA0{}", ANY, "NBSP is not whitespace"),
  BAD("\xEF\xBB\xBF{}", ANY, "byte-order mark"),
  BAD("\xEF\xBB\xBF", ANY, "byte-order mark alone"),
  BAD("/*c*/{}", ANY, "comment"),
  BAD("{}\xFF", ANY, "junk byte after value"),
  /* top-level object */
  OK(" {}", OBJ, "object with leading space"),
  BAD("[]", OBJ, "array where an object is required"),
  BAD("\"x\"", OBJ, "string where an object is required"),
  BAD("1", OBJ, "number where an object is required"),
  BAD("", OBJ, "empty where an object is required"),
  /* numbers, RFC 8259 grammar */
  OK("-0", ANY, "-0 in any mode"),
  OK("0.0", ANY, "0.0"),
  OK("1.5e-3", ANY, "fraction and exponent"),
  OK("1E+2", ANY, "capital exponent"),
  OK("-12.34e5", ANY, "negative with exponent"),
  OK("123456789012345678901234567890", ANY, "long integer in any mode"),
  BAD("01", ANY, "leading zero"),
  BAD("-01", ANY, "negative leading zero"),
  BAD("00", ANY, "double zero"),
  BAD("-", ANY, "lone minus"),
  BAD("+1", ANY, "plus sign"),
  BAD("1.", ANY, "no digits after point"),
  BAD(".5", ANY, "no digits before point"),
  BAD("1.e3", ANY, "point then exponent"),
  BAD("1e", ANY, "empty exponent"),
  BAD("1e+", ANY, "signed empty exponent"),
  BAD("0x1F", ANY, "hex number"),
  BAD("Infinity", ANY, "Infinity"),
  BAD("NaN", ANY, "NaN"),
  BAD("[-]", ANY, "minus in array"),
  /* integers only */
  OK("{\"a\":0}", TX, "zero"),
  OK("{\"a\":1234567890123456}", TX, "16 digits"),
  OK("{\"a\":[1,2,{\"b\":9999999999999999}]}", TX, "nested integers"),
  BAD("{\"a\":12345678901234567}", TX, "17 digits"),
  BAD("{\"a\":1.0}", TX, "1.0"),
  BAD("{\"a\":1e3}", TX, "1e3"),
  BAD("{\"a\":1E3}", TX, "1E3"),
  BAD("{\"a\":-0}", TX, "-0"),
  BAD("{\"a\":-1}", TX, "-1"),
  BAD("{\"a\":01}", TX, "01"),
  BAD("{\"a\":0.5}", TX, "0.5"),
  BAD("{\"a\":[1,{\"b\":2.5}]}", TX, "nested fraction"),
  OK("1.5", ANY, "fractions are fine without the flag"),
  BAD("1.5", INT, "integers-only applies to a top-level number"),
  /* strings */
  OK("\"\"", ANY, "empty string"),
  OK("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", ANY, "every short escape"),
  OK("\"\\u0001\\u001f\\u00e9\\u00E9\\uFFFF\"", ANY, "\\u escapes of either case"),
  OK("\"\\uD83D\\uDE00\"", ANY, "surrogate pair escape"),
  OK("\"\\uDBFF\\uDFFF\"", ANY, "last surrogate pair"),
  OK("\"\x7F\"", ANY, "raw DEL is allowed"),
  BAD("\"\\u0000\"", ANY, "escaped U+0000"),
  BAD("\"a\0b\"", ANY, "raw U+0000"),
  BAD("\"\x01\"", ANY, "raw control character"),
  BAD("\"\x1F\"", ANY, "raw 0x1F"),
  BAD("\"\t\"", ANY, "raw tab in string"),
  BAD("\"a\nb\"", ANY, "raw newline in string"),
  BAD("\"\\uD800\"", ANY, "lone high surrogate"),
  BAD("\"\\uDBFF\"", ANY, "lone high surrogate at end of range"),
  BAD("\"\\uDC00\"", ANY, "lone low surrogate"),
  BAD("\"\\uDFFF\\uD800\"", ANY, "reversed pair"),
  BAD("\"\\uD800\\u0041\"", ANY, "high surrogate then non-surrogate"),
  BAD("\"\\uD800\\uD800\"", ANY, "two high surrogates"),
  BAD("\"\\uD800\\n\"", ANY, "high surrogate then short escape"),
  BAD("\"\\uD800x\"", ANY, "high surrogate then raw char"),
  BAD("\"\\uD800\\u", ANY, "high surrogate then truncated escape"),
  BAD("\"\\x41\"", ANY, "\\x escape"),
  BAD("\"\\'\"", ANY, "\\' escape"),
  BAD("\"\\U0041\"", ANY, "\\U escape"),
  BAD("\"\\u12G4\"", ANY, "bad hex digit"),
  BAD("\"\\u12\"", ANY, "short \\u"),
  BAD("\"\\u12", ANY, "truncated \\u at end of input"),
  BAD("\"\\", ANY, "backslash at end of input"),
  BAD("\"abc", ANY, "unterminated string"),
  BAD("\"", ANY, "lone quote"),
  /* UTF-8 */
  OK("\"\xC3\xA9\"", ANY, "2-byte e-acute"),
  OK("\"\xE2\x82\xAC\"", ANY, "3-byte euro"),
  OK("\"\xF0\x9F\x98\x80\"", ANY, "4-byte emoji"),
  OK("\"\xC2\x80\xDF\xBF\"", ANY, "2-byte bounds"),
  OK("\"\xE0\xA0\x80\xEF\xBF\xBF\"", ANY, "3-byte bounds"),
  OK("\"\xED\x9F\xBF\xEE\x80\x80\"", ANY, "around the surrogate gap"),
  OK("\"\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\"", ANY, "4-byte bounds, U+10FFFF"),
  OK("\"\xEF\xBB\xBF\"", ANY, "U+FEFF inside a string is a character"),
  OK("{\"\xC3\xA9\":1}", ANY, "UTF-8 member name"),
  BAD("\"\xC0\xAF\"", ANY, "overlong C0 AF"),
  BAD("\"\xC1\xBF\"", ANY, "overlong C1 BF"),
  BAD("\"\xE0\x80\xAF\"", ANY, "overlong E0 80 AF"),
  BAD("\"\xE0\x9F\xBF\"", ANY, "overlong E0 9F BF"),
  BAD("\"\xF0\x80\x80\xAF\"", ANY, "overlong F0 80 80 AF"),
  BAD("\"\xF0\x8F\xBF\xBF\"", ANY, "overlong F0 8F BF BF"),
  BAD("\"\xED\xA0\x80\"", ANY, "surrogate ED A0 80"),
  BAD("\"\xED\xBF\xBF\"", ANY, "surrogate ED BF BF"),
  BAD("\"\xED\xA0\xBD\xED\xB8\x80\"", ANY, "CESU-8 pair"),
  BAD("\"\xF4\x90\x80\x80\"", ANY, "above U+10FFFF"),
  BAD("\"\xF5\x80\x80\x80\"", ANY, "F5 lead"),
  BAD("\"\xF8\x88\x80\x80\x80\"", ANY, "5-byte form"),
  BAD("\"\xFE\"", ANY, "FE"),
  BAD("\"\xFF\"", ANY, "FF"),
  BAD("\"\x80\"", ANY, "lone continuation"),
  BAD("\"\xBF\"", ANY, "lone continuation BF"),
  BAD("\"\xC3\"", ANY, "2-byte sequence cut by the quote"),
  BAD("\"\xE2\x82\"", ANY, "3-byte sequence cut by the quote"),
  BAD("\"\xE2\x82", ANY, "3-byte sequence cut by the end of input"),
  BAD("\"\xF0\x9F\x98", ANY, "4-byte sequence cut by the end of input"),
  BAD("\"\xC3\xC3\xA9\"", ANY, "lead followed by lead"),
  BAD("\"\xE2\x28\xA1\"", ANY, "bad second byte"),
  BAD("\"\xF0\x9F\x98\x28\"", ANY, "bad fourth byte"),
  BAD("[\xC3\xA9]", ANY, "UTF-8 outside a string"),
  /* duplicate member names, at any depth */
  BAD("{\"a\":1,\"a\":2}", ANY, "duplicate at top"),
  BAD("{\"a\":1,\"a\":1}", ANY, "duplicate with the same value"),
  BAD("{\"a\":1,\"b\":{\"c\":1,\"c\":2}}", ANY, "duplicate nested in an object"),
  BAD("[{\"a\":1,\"a\":1}]", ANY, "duplicate in an object in an array"),
  BAD("{\"x\":[[{\"y\":{\"z\":0,\"q\":1,\"z\":0}}]]}", ANY, "duplicate 5 deep"),
  BAD("{\"a\":1,\"\\u0061\":2}", ANY, "duplicate after unescaping \\u0061"),
  BAD("{\"\\u00e9\":1,\"\xC3\xA9\":2}", ANY, "escaped vs raw e-acute"),
  BAD("{\"\\u00e9\":1,\"\\u00E9\":2}", ANY, "hex case differs, same name"),
  BAD("{\"\\uD83D\\uDE00\":1,\"\xF0\x9F\x98\x80\":2}", ANY, "surrogate pair vs raw emoji"),
  BAD("{\"\\n\":1,\"\\u000a\":2}", ANY, "\\n vs \\u000a"),
  BAD("{\"\\/\":1,\"/\":2}", ANY, "\\/ vs /"),
  BAD("{\"\\\"\":1,\"\\u0022\":2}", ANY, "\\\" vs \\u0022"),
  BAD("{\"\":1,\"\":2}", ANY, "duplicate empty name"),
  BAD("{\"b\":1,\"a\":1,\"c\":1,\"a\":2}", ANY, "duplicate not adjacent"),
  OK("[{\"a\":1},{\"a\":2}]", ANY, "same name in sibling objects"),
  OK("{\"a\":{\"a\":{\"a\":1}}}", ANY, "same name at different depths"),
  OK("{\"a\":{\"b\":1},\"b\":{\"a\":1}}", ANY, "names reused across scopes"),
  OK("{\"a\":1,\"A\":2}", ANY, "names differ in case"),
  OK("{\"a\":1,\"a \":2}", ANY, "names differ by a trailing space"),
  OK("{\"ab\":1,\"a\":2,\"\":3}", ANY, "prefix names"),
  OK("{\"\\u00e9\":1,\"\\u00ea\":2}", ANY, "escaped names that differ"),
  OK("{\"\xC3\xA9\":1,\"e\\u0301\":2}", ANY, "no Unicode normalisation: byte for byte"),
};

static void test_cases(void) {
  for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
    const jcase_t *c = &CASES[i];
    tr_json_error_t err = {0, ""};
    int rc = check(c->text, c->len, c->flags, &err);
    if (c->ok)
      TR_CHECK(rc == 0, "valid: %s%s%s", c->what, rc ? " -> " : "", rc ? err.message : "");
    else
      TR_CHECK(rc == TR_EINVALID && err.message[0] != '\0' && err.offset <= c->len,
               "invalid: %s -> \"%s\" at %zu", c->what, err.message, err.offset);
  }
}

/* Messages and offsets name the first problem. */
static void test_error_details(void) {
  tr_json_error_t err;
  check("\xEF\xBB\xBF{}", 5, ANY, &err);
  TR_CHECK(err.offset == 0 && strstr(err.message, "byte-order") != NULL, "BOM at 0: %s", err.message);
  check("{\"a\":1,\"a\":2}", 13, ANY, &err);
  TR_CHECK(err.offset == 7 && strstr(err.message, "duplicate") != NULL, "duplicate at 7: %s @%zu", err.message, err.offset);
  check("{\"a\":1,\"b\":2,\"a\":3,\"b\":4}", 25, ANY, &err);
  TR_CHECK(err.offset == 13, "earliest second occurrence reported (got %zu)", err.offset);
  check("{} x", 4, ANY, &err);
  TR_CHECK(err.offset == 3 && strstr(err.message, "after") != NULL, "trailing at 3: %s", err.message);
  check("[\"\xC0\xAF\"]", 5, ANY, &err);
  TR_CHECK(err.offset == 2 && strstr(err.message, "overlong") != NULL, "overlong at 2: %s", err.message);
  check("[\"\xED\xA0\x80\"]", 6, ANY, &err);
  TR_CHECK(strstr(err.message, "surrogate") != NULL, "surrogate named: %s", err.message);
  check("{\"a\":1e3}", 9, TX, &err);
  TR_CHECK(err.offset == 5 && strstr(err.message, "integer") != NULL, "1e3 at 5: %s", err.message);
  check("{\"a\":01}", 8, TX, &err);
  TR_CHECK(strstr(err.message, "leading zero") != NULL, "01 named: %s", err.message);
  check("\"\\u0000\"", 8, ANY, &err);
  TR_CHECK(err.offset == 1 && strstr(err.message, "U+0000") != NULL, "\\u0000 at 1: %s", err.message);
  TR_CHECK(tr_json_check("{}x", 3, ANY, NULL) == TR_EINVALID, "err may be NULL");
  TR_CHECK(tr_json_check(NULL, 0, ANY, NULL) == TR_EINVALID, "NULL, 0 is empty input");
  TR_CHECK(tr_json_check(NULL, 5, ANY, NULL) == TR_EINVALID, "NULL with a length");
}

/* `n` nested arrays around 0. */
static char *nest(size_t n, const char *open, const char *close, size_t *len) {
  size_t lo = strlen(open), lc = strlen(close);
  char *s = malloc(n * (lo + lc) + 2), *p = s;
  for (size_t i = 0; i < n; i++) memcpy(p, open, lo), p += lo;
  *p++ = '0';
  for (size_t i = 0; i < n; i++) memcpy(p, close, lc), p += lc;
  *len = (size_t)(p - s);
  return s;
}

static void test_depth(void) {
  size_t len;
  char *s;
  s = nest(TR_JSON_DEPTH_MAX, "[", "]", &len);
  TR_CHECK(check(s, len, ANY, NULL) == 0, "%d nested arrays ok", TR_JSON_DEPTH_MAX);
  free(s);
  s = nest(TR_JSON_DEPTH_MAX + 1, "[", "]", &len);
  TR_CHECK(check(s, len, ANY, NULL) == TR_EINVALID, "%d nested arrays refused", TR_JSON_DEPTH_MAX + 1);
  free(s);
  s = nest(TR_JSON_DEPTH_MAX, "{\"a\":", "}", &len);
  TR_CHECK(check(s, len, OBJ, NULL) == 0, "%d nested objects ok", TR_JSON_DEPTH_MAX);
  free(s);
  s = nest(TR_JSON_DEPTH_MAX + 1, "{\"a\":", "}", &len);
  tr_json_error_t err;
  TR_CHECK(check(s, len, OBJ, &err) == TR_EINVALID && strstr(err.message, "nesting"), "%d nested objects refused: %s",
           TR_JSON_DEPTH_MAX + 1, err.message);
  free(s);
  s = nest(1000000, "[", "]", &len);
  TR_CHECK(check(s, len, ANY, NULL) == TR_EINVALID, "a million nested arrays refused without deep recursion");
  free(s);
}

/* An object with `n` distinct members ("k0".."k<n-1>"), optionally one
 * repeated at the end; exercises the heap path of the name stack. */
static char *many_members(size_t n, bool dup, size_t *len) {
  char *s = malloc(n * 24 + 64), *p = s;
  *p++ = '{';
  for (size_t i = 0; i < n; i++) p += sprintf(p, "%s\"k%zu\":%zu", i ? "," : "", i, i);
  if (dup) p += sprintf(p, ",\"k%zu\":0", n / 2);
  *p++ = '}';
  *len = (size_t)(p - s);
  return s;
}

static void test_many_members(void) {
  size_t len;
  char *s = many_members(100000, false, &len);
  TR_CHECK(check(s, len, TX, NULL) == 0, "100000 distinct members ok");
  free(s);
  s = many_members(100000, true, &len);
  tr_json_error_t err;
  TR_CHECK(check(s, len, TX, &err) == TR_EINVALID && strstr(err.message, "duplicate"), "one duplicate among 100001: %s",
           err.message);
  free(s);
  /* Nested objects interleave on the shared name stack. */
  const char *t = "{\"a\":{\"x\":1,\"y\":2},\"b\":{\"x\":1,\"y\":2},\"c\":[{\"a\":1},{\"a\":1}],\"x\":0}";
  TR_CHECK(check(t, strlen(t), ANY, NULL) == 0, "inner names do not leak into outer scopes");
  t = "{\"a\":{\"x\":1},\"b\":{\"x\":1},\"a\":0}";
  TR_CHECK(check(t, strlen(t), ANY, NULL) == TR_EINVALID, "outer duplicate found past inner objects");
}

/* Every proper prefix of an object is invalid; the whole is valid. */
static void test_prefixes(void) {
  const char *doc = "{\"a\":[1,{\"b\":\"\\uD83D\\uDE00\xC3\xA9\\n\"}],\"c\":true,\"d\":null,\"e\":-1.5e2}";
  size_t n = strlen(doc), bad = 0;
  for (size_t i = 0; i < n; i++) {
    if (check(doc, i, ANY, NULL) != TR_EINVALID) bad++;
  }
  TR_CHECK(bad == 0, "all %zu proper prefixes refused (%zu accepted)", n, bad);
  TR_CHECK(check(doc, n, ANY, NULL) == 0, "whole document accepted");
}

/* Deterministic mutations of valid documents: no crash, no read past the
 * end (run under ASan), and the verdict never depends on bytes past len. */
static void test_mutations(void) {
  static const char *seeds[] = {
    "{\"type\":\"transfer\",\"units\":5,\"memo\":\"caf\xC3\xA9 \\u00e9\\uD83D\\uDE00\",\"a\":[true,null,{}]}",
    "[{\"a\":{\"b\":[0,1.5e3,-2]}},\"\\\"\",\"\xF4\x8F\xBF\xBF\"]",
  };
  uint32_t rng = 12345;
  size_t runs = 0, stable = 0;
  for (size_t s = 0; s < 2; s++) {
    size_t n = strlen(seeds[s]);
    char buf[128], pad[129];
    for (int iter = 0; iter < 20000; iter++) {
      memcpy(buf, seeds[s], n);
      int edits = 1 + (int)((rng = rng * 1103515245u + 12345u) >> 16) % 4;
      for (int e = 0; e < edits; e++) {
        rng = rng * 1103515245u + 12345u;
        buf[(rng >> 8) % n] = (char)(rng >> 24);
      }
      size_t len = n - ((rng >> 4) % 3 == 0 ? (rng >> 12) % n : 0);
      int a = check(buf, len, iter & 1 ? TX : ANY, NULL);
      memcpy(pad, buf, len);
      pad[len] = '}'; /* a byte past the end must not change the verdict */
      int b = tr_json_check(pad, len, iter & 1 ? TX : ANY, NULL);
      runs++;
      stable += (a == b && (a == 0 || a == TR_EINVALID));
    }
  }
  TR_CHECK(stable == runs, "%zu mutated inputs: verdicts stable and well formed (%zu)", runs, stable);
}

static void test_utf8_chars(void) {
  TR_CHECK_EQ_INT(tr_utf8_chars("", 0), 0, "empty string has 0 chars");
  TR_CHECK_EQ_INT(tr_utf8_chars("abc", 3), 3, "ASCII counts bytes");
  TR_CHECK_EQ_INT(tr_utf8_chars("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9), 3, "2-, 3- and 4-byte chars count once");
  TR_CHECK_EQ_INT(tr_utf8_chars("a\xC3\xA9z", 2), 2, "len bounds the count");
}

/* tr_json_span_next / tr_json_member_span on accepted text. */
static void test_spans(void) {
  const char *batch = " [ {\"a\":[1,{\"b\":\"],}\\\"\"}]} , 2,\"x\" ,[[]] ] ";
  size_t pos = 0, start = 0, len, n = 0;
  const char *want[] = {"{\"a\":[1,{\"b\":\"],}\\\"\"}]}", "2", "\"x\"", "[[]]"};
  TR_CHECK(tr_json_check(batch, strlen(batch), TR_JSON_ANY_VALUE, NULL) == 0, "span fixture is strict JSON");
  while ((len = tr_json_span_next(batch, strlen(batch), &pos, &start)) != 0 && n < 4) {
    TR_CHECK(len == strlen(want[n]) && memcmp(batch + start, want[n], len) == 0, "array element %zu span", n);
    n++;
  }
  TR_CHECK(n == 4, "four array elements walked (got %zu)", n);
  const char *obj = "{\"jsonrpc\":\"2.0\",\"id\":1,\"params\" : {\"seq\":1.0} }";
  pos = 0;
  len = tr_json_span_next(obj, strlen(obj), &pos, &start);
  TR_CHECK(start == 0 && len == strlen(obj) - 0, "a non-array top level is one span");
  size_t vs = 0, vl = 0;
  TR_CHECK(tr_json_member_span(obj, strlen(obj), "params", &vs, &vl) == 0 && vl == 11 &&
               memcmp(obj + vs, "{\"seq\":1.0}", 11) == 0, "member span of params");
  TR_CHECK(tr_json_member_span(obj, strlen(obj), "method", &vs, &vl) == TR_ENOT_FOUND, "absent member");
  TR_CHECK(tr_json_member_span("[1]", 3, "params", &vs, &vl) == TR_ENOT_FOUND, "member span of a non-object");
  /* names compare decoded, as cJSON reads them */
  const char *esc = "{\"\\u0069\\u0064x\":2, \"\\u0069d\" : 1e400 ,\"p\\u0061rams\":{\"a\":1.0},\"\\ud83d\\ude00\":3}";
  TR_CHECK(tr_json_check(esc, strlen(esc), TR_JSON_ANY_VALUE, NULL) == 0, "escaped-name fixture is strict JSON");
  TR_CHECK(tr_json_member_span(esc, strlen(esc), "id", &vs, &vl) == 0 && vl == 5 && memcmp(esc + vs, "1e400", 5) == 0,
           "member \\u0069d is id (not idx)");
  TR_CHECK(tr_json_member_span(esc, strlen(esc), "params", &vs, &vl) == 0 && vl == 9, "member p\\u0061rams is params");
  TR_CHECK(tr_json_member_span(esc, strlen(esc), "\xF0\x9F\x98\x80", &vs, &vl) == 0 && vl == 1 && esc[vs] == '3',
           "a surrogate-pair name decodes to its UTF-8");
  TR_CHECK(tr_json_member_span(esc, strlen(esc), "i", &vs, &vl) == TR_ENOT_FOUND, "a decoded prefix is not a match");
  /* strings whose escapes end in a backslash or an escaped quote (a tx carried as a string) */
  const char *strs = "[\"x\\\\\",\"\\\"\\\\\\\"\",{\"tx\":\"{\\\"a\\\":\\\"\\\\\\\\\\\"}\",\"id\":7}]";
  const char *strs_want[] = {"\"x\\\\\"", "\"\\\"\\\\\\\"\"", "{\"tx\":\"{\\\"a\\\":\\\"\\\\\\\\\\\"}\",\"id\":7}"};
  TR_CHECK(tr_json_check(strs, strlen(strs), TR_JSON_ANY_VALUE, NULL) == 0, "escaped-string fixture is strict JSON");
  pos = 0;
  for (n = 0; (len = tr_json_span_next(strs, strlen(strs), &pos, &start)) != 0 && n < 3; n++)
    TR_CHECK(len == strlen(strs_want[n]) && memcmp(strs + start, strs_want[n], len) == 0, "escaped string span %zu", n);
  TR_CHECK(n == 3, "three escaped-string elements walked (got %zu)", n);
  TR_CHECK(tr_json_member_span(strs_want[2], strlen(strs_want[2]), "id", &vs, &vl) == 0 && vl == 1 &&
               strs_want[2][vs] == '7', "the member after a tx carried as a string");
  /* bounded on text the checker refused: an unterminated escape in a name */
  TR_CHECK(tr_json_member_span("{\"\\u00", 6, "id", &vs, &vl) == TR_ENOT_FOUND, "a cut escape is no match");
  TR_CHECK(tr_json_member_span("{\"\\u00\":1}", 10, "id", &vs, &vl) == TR_ENOT_FOUND, "a short \\u escape is no match");
}

/* tr_json_next_member / _next_element / tr_json_string on accepted text,
 * each from an exact-size heap copy so that no read past the end hides. */
static void test_cursor(void) {
  static const char obj_text[] = " { \"a\" : \"x\\\"y\" ,\"b\":[1, {\"c\":null}],\"d\\u0061\":true,\"e\":-1.5e3,\"f\":{} } ";
  size_t len = sizeof obj_text - 1;
  char *obj = malloc(len);
  TR_CHECK(obj != NULL, "malloc");
  if (obj == NULL) return;
  memcpy(obj, obj_text, len);
  TR_CHECK(tr_json_check(obj, len, ANY, NULL) == 0, "cursor fixture is strict JSON");
  static const struct { const char *name; tr_json_type_t type; const char *raw; bool escaped; } want[] = {
    {"a", TR_JSON_STRING, "x\\\"y", true}, {"b", TR_JSON_ARRAY, "[1, {\"c\":null}]", false},
    {"da", TR_JSON_BOOL, "true", false}, {"e", TR_JSON_NUMBER, "-1.5e3", false}, {"f", TR_JSON_OBJECT, "{}", false},
  };
  size_t pos = 0, n = 0;
  tr_json_value_t name, value;
  char buf[16];
  while (tr_json_next_member(obj, len, &pos, &name, &value)) {
    if (n == sizeof want / sizeof want[0]) break;
    size_t nl = tr_json_string(&name, buf, sizeof buf);
    TR_CHECK(nl == strlen(want[n].name) && memcmp(buf, want[n].name, nl) == 0, "member %zu is named %s", n, want[n].name);
    TR_CHECK(value.type == want[n].type && value.len == strlen(want[n].raw) &&
                 memcmp(value.raw, want[n].raw, value.len) == 0 && value.escaped == want[n].escaped,
             "member %zu's value is %s", n, want[n].raw);
    n++;
  }
  TR_CHECK(n == 5 && !tr_json_next_member(obj, len, &pos, &name, &value), "five members, then none");
  free(obj);

  /* The string "x\"y\u00e9" decodes to 6 bytes; a 3-byte buffer gets the
   * first 3 and the whole length is still told. */
  tr_json_value_t s = {TR_JSON_STRING, "x\\\"y\\u00e9", 10, true};
  TR_CHECK(tr_json_string(&s, buf, sizeof buf) == 5 && memcmp(buf, "x\"y\xC3\xA9", 5) == 0, "escapes decoded");
  memset(buf, '#', sizeof buf);
  TR_CHECK(tr_json_string(&s, buf, 3) == 5 && memcmp(buf, "x\"y#", 4) == 0, "a short buffer gets a prefix, the length whole");
  tr_json_value_t pair = {TR_JSON_STRING, "\\ud83d\\ude00", 12, true};
  TR_CHECK(tr_json_string(&pair, buf, sizeof buf) == 4 && memcmp(buf, "\xF0\x9F\x98\x80", 4) == 0, "a surrogate pair");
  tr_json_value_t cut = {TR_JSON_STRING, "a\\u00", 5, true}; /* not checked text: bounded, meaningless */
  TR_CHECK(tr_json_string(&cut, buf, sizeof buf) <= 5, "a cut escape stays in bounds");

  static const char arr_text[] = "[ \"p\" , 2,[3],{\"q\":[]} ]";
  len = sizeof arr_text - 1;
  char *arr = malloc(len);
  TR_CHECK(arr != NULL, "malloc");
  if (arr == NULL) return;
  memcpy(arr, arr_text, len);
  static const char *const elems[] = {"p", "2", "[3]", "{\"q\":[]}"};
  pos = 0;
  for (n = 0; tr_json_next_element(arr, len, &pos, &value) && n < 4; n++)
    TR_CHECK(value.len == strlen(elems[n]) && memcmp(value.raw, elems[n], value.len) == 0, "element %zu", n);
  TR_CHECK(n == 4, "four elements");
  pos = 0;
  TR_CHECK(!tr_json_next_element("[ ]", 3, &pos, &value), "an empty array has no elements");
  pos = 0;
  TR_CHECK(!tr_json_next_member("{}", 2, &pos, &name, &value), "an empty object has no members");
  pos = 0;
  TR_CHECK(!tr_json_next_member("[1]", 3, &pos, &name, &value), "an array has no members");
  free(arr);
}

static void test_put_u64(void) {
  static const struct { uint64_t v; const char *text; } cases[] = {
    {0, "0"}, {9, "9"}, {10, "10"}, {1000000000000000ull, "1000000000000000"},
    {9007199254740991ull, "9007199254740991"}, {UINT64_MAX, "18446744073709551615"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[32];
    memset(buf, 'x', sizeof buf);
    char *end = tr_json_put_u64(buf, cases[i].v);
    size_t n = (size_t)(end - buf);
    TR_CHECK(n == strlen(cases[i].text) && memcmp(buf, cases[i].text, n) == 0 && buf[n] == 'x',
             "tr_json_put_u64 writes %s as plain digits, nothing after", cases[i].text);
  }
}

int main(void) {
  test_put_u64();
  test_spans();
  test_cursor();
  test_cases();
  test_error_details();
  test_depth();
  test_many_members();
  test_prefixes();
  test_mutations();
  test_utf8_chars();
  return tr_test_done();
}
