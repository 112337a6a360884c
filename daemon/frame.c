/* frame.c — newline framing. */
#include "frame.h"

#include <stdbool.h>
#include <string.h>

tr_sniff_t tr_frame_sniff(const char *buf, size_t len) {
  if (len == 0) return TR_SNIFF_MORE;
  char c = buf[0];
  if (c == '{' || c == '[' || c == ' ' || c == '\t' || c == '\r' || c == '\n') return TR_SNIFF_LINES;
  static const char *methods[] = {"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ",
                                  "TRACE "};
  bool maybe = false;
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    size_t n = strlen(methods[i]);
    if (memcmp(buf, methods[i], len < n ? len : n) != 0) continue;
    if (len >= n) return TR_SNIFF_HTTP;
    maybe = true;
  }
  return maybe ? TR_SNIFF_MORE : TR_SNIFF_JUNK;
}

tr_frame_t tr_frame_next(const char *buf, size_t len, size_t *pos, size_t max, size_t *line_len) {
  size_t start = *pos;
  if (start >= len) return TR_FRAME_PARTIAL;
  size_t avail = len - start;
  /* Never look further than max + 1 bytes: a longer line is refused anyway. */
  const char *nl = memchr(buf + start, '\n', avail < max + 1 ? avail : max + 1);
  if (nl == NULL) return avail > max ? TR_FRAME_TOO_LONG : TR_FRAME_PARTIAL;
  *line_len = (size_t)(nl - (buf + start));
  *pos = start + *line_len + 1;
  return TR_FRAME_LINE;
}
