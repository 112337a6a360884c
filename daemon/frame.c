/* frame.c — newline framing. */
#include "frame.h"

#include <string.h>

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
