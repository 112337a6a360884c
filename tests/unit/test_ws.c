/* test_ws.c — WebSocket frames (daemon/ws.c, RFC 6455) byte by byte. */
#include <stdlib.h>
#include <string.h>

#include "tr_test.h"
#include "ws.h"

#define MAX 64 /* a small message limit keeps the oversized cases short */

/* A client frame: masked with a fixed key. */
static size_t client_frame(uint8_t *out, int b0, const char *payload, size_t n) {
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t h = 0;
  out[h++] = (uint8_t)b0;
  if (n < 126) {
    out[h++] = (uint8_t)(0x80 | n);
  } else {
    out[h++] = 0x80 | 126;
    out[h++] = (uint8_t)(n >> 8);
    out[h++] = (uint8_t)n;
  }
  memcpy(out + h, key, 4);
  h += 4;
  for (size_t i = 0; i < n; i++) out[h + i] = (uint8_t)payload[i] ^ key[i & 3];
  return h + n;
}

static tr_ws_event_t feed_all(tr_ws_t *ws, const uint8_t *b, size_t n, size_t *used) {
  return tr_ws_feed(ws, b, n, used);
}

static void test_rfc_examples(void) {
  /* RFC 6455 §5.7: a masked "Hello" */
  static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  tr_ws_t ws;
  tr_ws_init(&ws, MAX);
  size_t used = 0;
  for (size_t k = 0; k < sizeof hello; k++) {
    TR_CHECK(tr_ws_feed(&ws, hello, k, &used) == TR_WS_MORE && used == 0, "%zu of 11 bytes: wait for more", k);
  }
  TR_CHECK(feed_all(&ws, hello, sizeof hello, &used) == TR_WS_MESSAGE && used == sizeof hello &&
               ws.msg_len == 5 && memcmp(ws.msg, "Hello", 5) == 0,
           "RFC 6455 5.7 masked Hello -> one message \"Hello\"");
  tr_ws_message_done(&ws);
  /* the unmasked example is a server frame: refused from a client */
  static const uint8_t unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  TR_CHECK(feed_all(&ws, unmasked, sizeof unmasked, &used) == TR_WS_FAIL && ws.fail_code == 1002,
           "the unmasked Hello from a client -> 1002");
  tr_ws_free(&ws);

  char accept[29];
  const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
  TR_CHECK(tr_ws_accept(key, strlen(key), accept) == 0 && strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
           "RFC 6455 1.3: the sample key's accept value (%s)", accept);
  TR_CHECK(tr_ws_accept("dGhlIHNhbXBsZSBub25j", 20, accept) != 0, "a key of 15 bytes is refused");
  TR_CHECK(tr_ws_accept("!!!!!!!!!!!!!!!!!!!!!!==", 24, accept) != 0, "a key that is not base64 is refused");
}

static void test_fragments(void) {
  uint8_t buf[512];
  size_t n = 0, used = 0;
  n += client_frame(buf + n, 0x01, "{\"a\":", 5);      /* text, not fin */
  n += client_frame(buf + n, 0x89, "hi", 2);           /* ping between fragments */
  n += client_frame(buf + n, 0x00, "1", 1);            /* continuation */
  n += client_frame(buf + n, 0x80, "}", 1);            /* last continuation */
  tr_ws_t ws;
  tr_ws_init(&ws, MAX);
  size_t pos = 0;
  tr_ws_event_t ev = tr_ws_feed(&ws, buf, n, &used);
  pos += used;
  TR_CHECK(ev == TR_WS_PING && ws.ctl_len == 2 && memcmp(ws.ctl, "hi", 2) == 0 && tr_ws_partial(&ws),
           "a ping between fragments is delivered at once, the message still partial");
  ev = tr_ws_feed(&ws, buf + pos, n - pos, &used);
  pos += used;
  TR_CHECK(ev == TR_WS_MESSAGE && pos == n && ws.msg_len == 7 && memcmp(ws.msg, "{\"a\":1}", 7) == 0,
           "three fragments -> one message");
  tr_ws_message_done(&ws);
  TR_CHECK(!tr_ws_partial(&ws), "nothing partial after it");

  n = client_frame(buf, 0x80, "x", 1);
  TR_CHECK(tr_ws_feed(&ws, buf, n, &used) == TR_WS_FAIL && ws.fail_code == 1002, "a continuation alone -> 1002");
  tr_ws_free(&ws);
  tr_ws_init(&ws, MAX);
  n = client_frame(buf, 0x01, "[", 1);
  n += client_frame(buf + n, 0x81, "]", 1);
  ev = tr_ws_feed(&ws, buf, n, &used);
  TR_CHECK(ev == TR_WS_FAIL && ws.fail_code == 1002, "a new text frame inside a fragmented message -> 1002");
  tr_ws_free(&ws);
}

static void test_refusals(void) {
  uint8_t buf[512];
  size_t n, used;
  tr_ws_t ws;
  struct {
    int b0;
    const char *payload;
    size_t len;
    uint16_t code;
    const char *what;
  } cases[] = {
      {0x82, "\x01", 1, 1003, "binary"},
      {0x81, "\xc0\xaf", 2, 1007, "overlong UTF-8"},
      {0x81, "\xed\xa0\x80", 3, 1007, "a UTF-16 surrogate in UTF-8"},
      {0x81, "\xf4\x90\x80\x80", 4, 1007, "past U+10FFFF"},
      {0x91, "x", 1, 1002, "RSV1 set"},
      {0x83, "", 0, 1002, "opcode 3"},
      {0x09, "p", 1, 1002, "a fragmented ping"},
      {0x88, "\x03", 1, 1002, "a close of one byte"},
      {0x88, "\x03\xed", 2, 1002, "close code 1005 sent on the wire"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tr_ws_init(&ws, MAX);
    n = client_frame(buf, cases[i].b0, cases[i].payload, cases[i].len);
    TR_CHECK(tr_ws_feed(&ws, buf, n, &used) == TR_WS_FAIL && ws.fail_code == cases[i].code, "%s -> %u (got %u)",
             cases[i].what, cases[i].code, ws.fail_code);
    tr_ws_free(&ws);
  }
  char big[200];
  memset(big, 'p', sizeof big);
  tr_ws_init(&ws, MAX);
  n = client_frame(buf, 0x89, big, 126);
  TR_CHECK(tr_ws_feed(&ws, buf, n, &used) == TR_WS_FAIL && ws.fail_code == 1002, "a ping of 126 bytes -> 1002");
  tr_ws_free(&ws);
  /* over the message limit: refused on the header alone */
  tr_ws_init(&ws, MAX);
  n = client_frame(buf, 0x81, big, MAX + 1);
  TR_CHECK(tr_ws_feed(&ws, buf, 8, &used) == TR_WS_FAIL && ws.fail_code == 1009,
           "a frame over the limit -> 1009 from its header, before the payload");
  tr_ws_free(&ws);
  tr_ws_init(&ws, MAX);
  n = client_frame(buf, 0x01, big, MAX / 2 + 1);
  n += client_frame(buf + n, 0x80, big, MAX / 2);
  TR_CHECK(tr_ws_feed(&ws, buf, n, &used) == TR_WS_FAIL && ws.fail_code == 1009,
           "fragments adding up to limit + 1 -> 1009");
  tr_ws_free(&ws);
  tr_ws_init(&ws, MAX);
  n = client_frame(buf, 0x81, big, MAX);
  TR_CHECK(tr_ws_feed(&ws, buf, n, &used) == TR_WS_MESSAGE && ws.msg_len == MAX, "exactly the limit is taken");
  tr_ws_free(&ws);
  static const uint8_t top_bit[] = {0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
  tr_ws_init(&ws, MAX);
  TR_CHECK(tr_ws_feed(&ws, top_bit, sizeof top_bit, &used) == TR_WS_FAIL && ws.fail_code == 1002,
           "a 64-bit length with its top bit set -> 1002");
  tr_ws_free(&ws);
  tr_ws_init(&ws, MAX);
  n = client_frame(buf, 0x88, "\x03\xe8ok", 4);
  TR_CHECK(tr_ws_feed(&ws, buf, n, &used) == TR_WS_CLOSE && ws.close_code == 1000, "close 1000 \"ok\" -> CLOSE 1000");
  n = client_frame(buf, 0x88, "", 0);
  TR_CHECK(tr_ws_feed(&ws, buf, n, &used) == TR_WS_CLOSE && ws.close_code == 1000, "an empty close -> CLOSE, echo 1000");
  tr_ws_free(&ws);
}

static void test_server_frames(void) {
  size_t len = 0;
  char *f = tr_ws_frame_lines(TR_WS_OP_TEXT, "ab\ncde\n", 7, &len);
  TR_CHECK(f && len == 9 && memcmp(f, "\x81\x02" "ab" "\x81\x03" "cde", 9) == 0,
           "two lines -> two unmasked text frames without their newlines");
  free(f);
  char *big = malloc(70000);
  memset(big, 'x', 70000);
  f = tr_ws_frame(TR_WS_OP_TEXT, big, 300, &len);
  TR_CHECK(f && len == 304 && (uint8_t)f[1] == 126 && (uint8_t)f[2] == 1 && (uint8_t)f[3] == 44,
           "300 bytes: a 16-bit length");
  free(f);
  f = tr_ws_frame(TR_WS_OP_TEXT, big, 70000, &len);
  TR_CHECK(f && len == 70010 && (uint8_t)f[1] == 127 && (uint8_t)f[7] == 1 && (uint8_t)f[8] == 0x11 &&
               (uint8_t)f[9] == 0x70,
           "70000 bytes: a 64-bit length");
  free(f);
  free(big);
  f = tr_ws_close_frame(1009, "too big", &len);
  TR_CHECK(f && len == 11 && (uint8_t)f[0] == 0x88 && (uint8_t)f[2] == 0x03 && (uint8_t)f[3] == 0xf1,
           "close 1009 with its reason");
  free(f);
}

int main(void) {
  test_rfc_examples();
  test_fragments();
  test_refusals();
  test_server_frames();
  return tr_test_done();
}
