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

int main(void) {
  test_lines();
  test_limit();
  return tr_test_done();
}
