/* ws.h — WebSocket (RFC 6455) framing for GET /ws on the shared port
 * (PROTOCOL.md §5.1): one JSON-RPC request or batch per text message.
 *
 * Pure: no I/O and no libuv, so the parser is unit-tested byte by byte
 * (tests/unit/test_ws.c).  server.c feeds received bytes and gets one event
 * at a time.  Client frames must be masked (§5.1); a message (all its
 * fragments) over max_message bytes is refused with 1009 before its payload
 * is buffered; control frames are at most 125 bytes and never fragmented;
 * text must be UTF-8 (1007); binary messages are not JSON-RPC (1003).  The
 * handshake's SHA-1 and base64 are Nettle's.
 */
#ifndef TR_WS_H
#define TR_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  TR_WS_MORE = 0,   /* every whole frame is used; the rest waits for more bytes */
  TR_WS_MESSAGE,    /* a whole text message in msg[0, msg_len) (tr_ws_message_done after) */
  TR_WS_PING,       /* ctl[0, ctl_len): answer a pong with it */
  TR_WS_PONG,
  TR_WS_CLOSE,      /* the peer's close frame: answer close_code, then close */
  TR_WS_FAIL,       /* a protocol error: send close fail_code, then close */
} tr_ws_event_t;

enum {
  TR_WS_OP_CONT = 0x0, TR_WS_OP_TEXT = 0x1, TR_WS_OP_BINARY = 0x2,
  TR_WS_OP_CLOSE = 0x8, TR_WS_OP_PING = 0x9, TR_WS_OP_PONG = 0xA,
};

typedef struct {
  size_t max_message;
  bool in_message;       /* fragments of a message arrived, not its last */
  char *msg;
  size_t msg_len, msg_cap;
  uint8_t ctl[125];
  size_t ctl_len;
  uint16_t close_code;   /* TR_WS_CLOSE: the code to echo (1000 when none was given) */
  uint16_t fail_code;    /* TR_WS_FAIL: 1002, 1003, 1007 or 1009 */
  const char *fail_reason;
} tr_ws_t;

void tr_ws_init(tr_ws_t *ws, size_t max_message);
void tr_ws_free(tr_ws_t *ws);
/* Parses whole frames of buf[0, len) until an event; *consumed is how much
 * was used (a partial frame is left for the next call). */
tr_ws_event_t tr_ws_feed(tr_ws_t *ws, const uint8_t *buf, size_t len, size_t *consumed);
/* Forgets the message TR_WS_MESSAGE delivered. */
void tr_ws_message_done(tr_ws_t *ws);
/* True when bytes of a message have arrived but not all of it. */
bool tr_ws_partial(const tr_ws_t *ws);

/* Server frames (never masked).  Every "\n"-terminated line of text becomes
 * one frame of `opcode` (a response line or a notification: one message
 * each); heap, NULL on OOM. */
char *tr_ws_frame_lines(int opcode, const char *text, size_t len, size_t *out_len);
/* One frame with payload p[0, n). */
char *tr_ws_frame(int opcode, const void *p, size_t n, size_t *out_len);
/* A close frame: code, then a short reason. */
char *tr_ws_close_frame(uint16_t code, const char *reason, size_t *out_len);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: 0, or -1 when the key is not
 * the base64 of 16 bytes (RFC 6455 §4.2.1). */
int tr_ws_accept(const char *key, size_t key_len, char out[29]);

#endif
