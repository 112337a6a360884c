/* ws.c — WebSocket frames (ws.h). */
#include "ws.h"

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <stdlib.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */

void tr_ws_init(tr_ws_t *ws, size_t max_message) {
  memset(ws, 0, sizeof *ws);
  ws->max_message = max_message;
}

void tr_ws_free(tr_ws_t *ws) {
  free(ws->msg);
  ws->msg = NULL;
  ws->msg_len = ws->msg_cap = 0;
}

void tr_ws_message_done(tr_ws_t *ws) {
  ws->msg_len = 0;
  ws->in_message = false;
  if (ws->msg_cap > 64 * 1024) tr_ws_free(ws); /* a big message's buffer goes; small ones are reused */
}

bool tr_ws_partial(const tr_ws_t *ws) { return ws->in_message; }

static tr_ws_event_t fail(tr_ws_t *ws, uint16_t code, const char *why) {
  ws->fail_code = code;
  ws->fail_reason = why;
  return TR_WS_FAIL;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t k;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 1;
    else if (c == 0xE0) k = 2, lo = 0xA0;
    else if (c == 0xED) k = 2, hi = 0x9F;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) k = 2;
    else if (c == 0xF0) k = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) k = 3;
    else if (c == 0xF4) k = 3, hi = 0x8F;
    else return false;
    if (n - i - 1 < k) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t j = 2; j <= k; j++)
      if ((s[i + j] & 0xC0) != 0x80) return false;
    i += k + 1;
  }
  return true;
}

static bool close_code_valid(uint16_t code) {
  if (code >= 3000 && code <= 4999) return true; /* registered and private use */
  return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

/* One frame at a time: its header, then (only when all of it is here) its
 * payload unmasked into the message or the control buffer. */
tr_ws_event_t tr_ws_feed(tr_ws_t *ws, const uint8_t *buf, size_t len, size_t *consumed) {
  *consumed = 0;
  size_t pos = 0;
  for (;;) {
    const uint8_t *b = buf + pos;
    size_t avail = len - pos;
    if (avail < 2) return TR_WS_MORE;
    bool fin = b[0] & 0x80, masked = b[1] & 0x80;
    int op = b[0] & 0x0F;
    if (b[0] & 0x70) return fail(ws, 1002, "reserved bits set (no extension was agreed)");
    if (!masked) return fail(ws, 1002, "client frames must be masked");
    uint64_t n = b[1] & 0x7F;
    size_t head = 2;
    if (n == 126) {
      if (avail < 4) return TR_WS_MORE;
      n = (uint64_t)b[2] << 8 | b[3];
      head = 4;
    } else if (n == 127) {
      if (avail < 10) return TR_WS_MORE;
      n = 0;
      for (int i = 0; i < 8; i++) n = n << 8 | b[2 + i];
      if (n >> 63) return fail(ws, 1002, "a 64-bit length with its top bit set");
      head = 10;
    }
    bool control = op & 0x8;
    if (control) {
      if (!fin) return fail(ws, 1002, "a fragmented control frame");
      if (n > 125) return fail(ws, 1002, "a control frame over 125 bytes");
      if (op != TR_WS_OP_CLOSE && op != TR_WS_OP_PING && op != TR_WS_OP_PONG) return fail(ws, 1002, "unknown opcode");
    } else {
      if (op != TR_WS_OP_CONT && op != TR_WS_OP_TEXT && op != TR_WS_OP_BINARY) return fail(ws, 1002, "unknown opcode");
      if (op == TR_WS_OP_CONT && !ws->in_message) return fail(ws, 1002, "a continuation outside a message");
      if (op != TR_WS_OP_CONT && ws->in_message) return fail(ws, 1002, "a new message inside a fragmented one");
      if (op == TR_WS_OP_BINARY) return fail(ws, 1003, "binary messages are not JSON-RPC: send text");
      /* Refused on its header, before a byte of the payload is kept. */
      if (n > ws->max_message - ws->msg_len) return fail(ws, 1009, "message over the 1 MiB limit");
    }
    head += 4; /* the mask */
    if (avail < head || avail - head < n) return TR_WS_MORE;
    const uint8_t *mask = b + head - 4, *p = b + head;
    uint8_t *dst;
    if (control) {
      dst = ws->ctl;
      ws->ctl_len = (size_t)n;
    } else {
      if (ws->msg_len + n + 1 > ws->msg_cap) {
        size_t cap = ws->msg_cap ? ws->msg_cap : 4096;
        while (cap < ws->msg_len + n + 1) cap *= 2;
        char *m = realloc(ws->msg, cap);
        if (m == NULL) return fail(ws, 1011, "out of memory");
        ws->msg = m;
        ws->msg_cap = cap;
      }
      dst = (uint8_t *)ws->msg + ws->msg_len;
      ws->msg_len += (size_t)n;
      ws->in_message = true;
    }
    for (size_t i = 0; i < n; i++) dst[i] = p[i] ^ mask[i & 3];
    pos += head + (size_t)n;
    *consumed = pos;
    switch (op) {
    case TR_WS_OP_PING: return TR_WS_PING;
    case TR_WS_OP_PONG: return TR_WS_PONG;
    case TR_WS_OP_CLOSE:
      if (n == 1) return fail(ws, 1002, "a close frame of one byte");
      ws->close_code = n >= 2 ? (uint16_t)(ws->ctl[0] << 8 | ws->ctl[1]) : 1000;
      if (!close_code_valid(ws->close_code)) return fail(ws, 1002, "an invalid close code");
      if (n > 2 && !utf8_valid(ws->ctl + 2, (size_t)n - 2)) return fail(ws, 1007, "a close reason not UTF-8");
      return TR_WS_CLOSE;
    default:
      if (!fin) continue; /* the next fragment */
      if (!utf8_valid((const uint8_t *)ws->msg, ws->msg_len)) return fail(ws, 1007, "text not UTF-8");
      ws->msg[ws->msg_len] = '\0';
      return TR_WS_MESSAGE;
    }
  }
}

static size_t header(uint8_t *out, int opcode, size_t n) {
  out[0] = (uint8_t)(0x80 | opcode);
  if (n < 126) {
    out[1] = (uint8_t)n;
    return 2;
  }
  if (n <= 0xFFFF) {
    out[1] = 126;
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
  return 10;
}

char *tr_ws_frame(int opcode, const void *p, size_t n, size_t *out_len) {
  char *out = malloc(n + 10);
  if (out == NULL) return NULL;
  size_t h = header((uint8_t *)out, opcode, n);
  if (n) memcpy(out + h, p, n);
  *out_len = h + n;
  return out;
}

char *tr_ws_frame_lines(int opcode, const char *text, size_t len, size_t *out_len) {
  size_t lines = 0;
  for (const char *s = text, *end = text + len; s < end;) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    lines++;
    s = nl ? nl + 1 : end;
  }
  char *out = malloc(len + 10 * lines + 1), *o = out;
  if (out == NULL) return NULL;
  for (const char *s = text, *end = text + len; s < end;) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    size_t n = (size_t)((nl ? nl : end) - s);
    o += header((uint8_t *)o, opcode, n);
    memcpy(o, s, n);
    o += n;
    s = nl ? nl + 1 : end;
  }
  *out_len = (size_t)(o - out);
  return out;
}

char *tr_ws_close_frame(uint16_t code, const char *reason, size_t *out_len) {
  uint8_t p[125];
  size_t n = reason ? strlen(reason) : 0;
  if (n > sizeof p - 2) n = sizeof p - 2; /* our reasons are ASCII: never cut inside a character */
  p[0] = (uint8_t)(code >> 8);
  p[1] = (uint8_t)code;
  if (n) memcpy(p + 2, reason, n);
  return tr_ws_frame(TR_WS_OP_CLOSE, p, n + 2, out_len);
}

int tr_ws_accept(const char *key, size_t key_len, char out[29]) {
  /* The key is the base64 of 16 random bytes: 24 characters. */
  uint8_t raw[BASE64_DECODE_LENGTH(24)];
  size_t raw_len = 0;
  struct base64_decode_ctx dc;
  base64_decode_init(&dc);
  if (key_len != 24 || !base64_decode_update(&dc, &raw_len, raw, key_len, key) || !base64_decode_final(&dc) ||
      raw_len != 16)
    return -1;
  struct sha1_ctx sc;
  uint8_t digest[SHA1_DIGEST_SIZE];
  sha1_init(&sc);
  sha1_update(&sc, key_len, (const uint8_t *)key);
  sha1_update(&sc, sizeof WS_GUID - 1, (const uint8_t *)WS_GUID);
  sha1_digest(&sc, sizeof digest, digest);
  base64_encode_raw(out, sizeof digest, digest); /* 28 characters */
  out[28] = '\0';
  return 0;
}
