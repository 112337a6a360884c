/* frame.h — newline framing of JSON-RPC request lines (PROTOCOL.md §5).
 *
 * Pure: no I/O, so it is unit-tested byte by byte.  A line is the bytes
 * before a "\n" (the "\n" itself is not part of it); a line longer than the
 * limit is an error whether or not its "\n" has arrived yet, so a peer cannot
 * make the daemon buffer an endless line.
 */
#ifndef TR_FRAME_H
#define TR_FRAME_H

#include <stddef.h>

typedef enum {
  TR_FRAME_LINE = 0,   /* a complete line starts at the old *pos */
  TR_FRAME_PARTIAL,    /* no "\n" yet, and what there is fits the limit */
  TR_FRAME_TOO_LONG,   /* the line at *pos exceeds max bytes */
} tr_frame_t;

/* Examines buf[*pos, len).  On TR_FRAME_LINE sets *line_len and moves *pos
 * past the "\n"; otherwise leaves *pos alone. */
tr_frame_t tr_frame_next(const char *buf, size_t len, size_t *pos, size_t max, size_t *line_len);

/* The first bytes of a connection choose its framing (PROTOCOL.md §5.1). */
typedef enum {
  TR_SNIFF_MORE = 0,   /* too few bytes to tell */
  TR_SNIFF_LINES,      /* '{', '[' or JSON whitespace: newline-delimited JSON-RPC */
  TR_SNIFF_HTTP,       /* an HTTP method and a space */
  TR_SNIFF_JUNK,       /* anything else: closed, nothing executed */
} tr_sniff_t;

tr_sniff_t tr_frame_sniff(const char *buf, size_t len);

#endif
