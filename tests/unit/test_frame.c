/* test_frame.c — newline framing of request lines (daemon/frame.c, §5). */
#include <string.h>

#include "frame.h"
#include "tr_test.h"

static void test_lines(void) {
  const char *buf = "a\n\nbcd\nef";
  size_t pos = 0, len = 99;
  TR_CHECK(tr_frame_next(buf, strlen(buf), &pos, 10, &len) == TR_FRAME_LINE && len == 1 && pos == 2, "first line");
  TR_CHECK(tr_frame_next(buf, strlen(buf), &pos, 10, &len) == TR_FRAME_LINE && len == 0 && pos == 3,
           "an empty line is a line (answered -32700 by the dispatcher)");
  TR_CHECK(tr_frame_next(buf, strlen(buf), &pos, 10, &len) == TR_FRAME_LINE && len == 3 && pos == 7, "third line");
  TR_CHECK(tr_frame_next(buf, strlen(buf), &pos, 10, &len) == TR_FRAME_PARTIAL && pos == 7,
           "an unterminated tail waits for more bytes");
  pos = strlen(buf);
  TR_CHECK(tr_frame_next(buf, strlen(buf), &pos, 10, &len) == TR_FRAME_PARTIAL, "nothing left");
}

static void test_limit(void) {
  char buf[32];
  size_t pos = 0, len = 0;
  memset(buf, 'x', sizeof buf);
  buf[10] = '\n';
  TR_CHECK(tr_frame_next(buf, 11, &pos, 10, &len) == TR_FRAME_LINE && len == 10,
           "a line of exactly the limit (plus its newline) is served");
  pos = 0;
  buf[10] = 'x';
  buf[11] = '\n';
  TR_CHECK(tr_frame_next(buf, 12, &pos, 10, &len) == TR_FRAME_TOO_LONG && pos == 0, "limit + 1 bytes is too long");
  pos = 0;
  TR_CHECK(tr_frame_next(buf, 10, &pos, 10, &len) == TR_FRAME_PARTIAL, "limit bytes without newline: still partial");
  TR_CHECK(tr_frame_next(buf, 11, &pos, 10, &len) == TR_FRAME_TOO_LONG,
           "limit + 1 bytes without newline: too long before the newline arrives");
  pos = 0;
  TR_CHECK(tr_frame_next(buf, sizeof buf, &pos, 10, &len) == TR_FRAME_TOO_LONG,
           "a newline past the limit is never searched for");
}

/* PROTOCOL.md §5.1: the first bytes choose the framing. */
static void test_sniff(void) {
  TR_CHECK(tr_frame_sniff("", 0) == TR_SNIFF_MORE, "no bytes: wait");
  TR_CHECK(tr_frame_sniff("{", 1) == TR_SNIFF_LINES && tr_frame_sniff("[", 1) == TR_SNIFF_LINES,
           "'{' or '[' first: lines");
  TR_CHECK(tr_frame_sniff(" ", 1) == TR_SNIFF_LINES && tr_frame_sniff("\t", 1) == TR_SNIFF_LINES &&
               tr_frame_sniff("\r", 1) == TR_SNIFF_LINES && tr_frame_sniff("\n", 1) == TR_SNIFF_LINES,
           "JSON whitespace first: lines");
  TR_CHECK(tr_frame_sniff("POST / HTTP/1.1", 15) == TR_SNIFF_HTTP && tr_frame_sniff("GET ", 4) == TR_SNIFF_HTTP &&
               tr_frame_sniff("OPTIONS *", 9) == TR_SNIFF_HTTP,
           "an HTTP method and a space: HTTP");
  TR_CHECK(tr_frame_sniff("PO", 2) == TR_SNIFF_MORE && tr_frame_sniff("POST", 4) == TR_SNIFF_MORE &&
               tr_frame_sniff("P", 1) == TR_SNIFF_MORE,
           "a method's prefix: wait for more");
  TR_CHECK(tr_frame_sniff("POSTX", 5) == TR_SNIFF_JUNK && tr_frame_sniff("get ", 4) == TR_SNIFF_JUNK &&
               tr_frame_sniff("\x16\x03\x01", 3) == TR_SNIFF_JUNK && tr_frame_sniff("x", 1) == TR_SNIFF_JUNK &&
               tr_frame_sniff("\0", 1) == TR_SNIFF_JUNK && tr_frame_sniff("\"a\"", 3) == TR_SNIFF_JUNK,
           "anything else (unknown or lower-case method, TLS, a JSON string, NUL): junk");
}

int main(void) {
  test_lines();
  test_limit();
  test_sniff();
  return tr_test_done();
}
