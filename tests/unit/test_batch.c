/* test_batch.c — replicated batches and snapshots (tr_batch.h): what is
 * encoded decodes to the same header and txs, and every malformed input is
 * refused, never read past its end. */
#include <stdlib.h>
#include <string.h>

#include "tr_batch.h"
#include "tr_err.h"
#include "tr_test.h"

static void batch_round_trip(void) {
  tr_batch_header_t h = {.proposer = 3, .token = 77, .base_size = 1234, .clock_ms = 1700000000123ull, .n = 0,
                         .proposer_rpc = "127.0.0.1:7707"};
  const size_t rpc_at = TR_BATCH_HEADER_BYTES, txs_at = rpc_at + 1 + 14; /* the address, then the txs */
  memset(h.base_hash, 0xab, 32);
  uint8_t sig1[64], sig2[64];
  memset(sig1, 1, 64);
  memset(sig2, 2, 64);
  tr_batch_writer_t w;
  tr_batch_begin(&w, &h);
  tr_batch_add(&w, "{\"a\":1}", 7, sig1);
  tr_batch_add(&w, "{\"bb\":22}", 9, sig2);
  void *buf = NULL;
  size_t len = 0;
  TR_CHECK(tr_batch_finish(&w, &buf, &len) == 0, "a batch encodes");
  TR_CHECK(len == (txs_at + 2 * 68 + 16 + 7) / 8 * 8, "its length is the header, the address and two txs, padded to 8");
  tr_batch_header_t g;
  tr_batch_reader_t r;
  TR_CHECK(tr_batch_open(buf, len, &g, &r) == 0, "it opens");
  TR_CHECK(g.proposer == 3 && g.token == 77 && g.base_size == 1234 && g.clock_ms == 1700000000123ull && g.n == 2 &&
           memcmp(g.base_hash, h.base_hash, 32) == 0 && strcmp(g.proposer_rpc, "127.0.0.1:7707") == 0,
           "the header and the proposer's address come back");
  tr_batch_tx_t t;
  TR_CHECK(tr_batch_next(&r, &t) == 1 && t.len == 7 && memcmp(t.bytes, "{\"a\":1}", 7) == 0 &&
           memcmp(t.sig, sig1, 64) == 0, "the first tx and its signature");
  TR_CHECK(tr_batch_next(&r, &t) == 1 && t.len == 9 && memcmp(t.sig, sig2, 64) == 0, "the second tx");
  TR_CHECK(tr_batch_next(&r, &t) == 0, "then the end");

  /* Every cut into the data is refused somewhere: at open or while reading
   * (cutting only the padding to 8 bytes leaves a whole batch). */
  size_t data = txs_at + 2 * 68 + 16, refused = 0;
  for (size_t cut = 0; cut < data; cut++) {
    int rc = tr_batch_open(buf, cut, &g, &r), more = 0;
    if (rc == 0)
      while ((more = tr_batch_next(&r, &t)) == 1) {}
    if (rc != 0 || more < 0) refused++;
  }
  TR_CHECK(refused == data, "every batch cut short of its data is refused (%zu of %zu)", refused, data);
  uint8_t *longer = malloc(len + 1);
  memcpy(longer, buf, len);
  longer[len] = 1;
  TR_CHECK(tr_batch_open(longer, len + 1, &g, &r) == 0 && tr_batch_next(&r, &t) == 1 && tr_batch_next(&r, &t) == 1 &&
           tr_batch_next(&r, &t) == TR_EINVALID, "trailing bytes other than the padding are refused");
  longer[0] = 'X';
  TR_CHECK(tr_batch_open(longer, len, &g, &r) == TR_EINVALID, "a wrong magic is refused");
  memcpy(longer, buf, len);
  longer[68] = 0xff, longer[69] = 0xff; /* n = 65535: over TR_COMMIT_BATCH_MAX */
  TR_CHECK(tr_batch_open(longer, len, &g, &r) == TR_EINVALID, "a count over the batch limit is refused");
  memcpy(longer, buf, len);
  longer[txs_at + 3] = 0x7f; /* the first tx's length far past the end */
  TR_CHECK(tr_batch_open(longer, len, &g, &r) == 0 && tr_batch_next(&r, &t) == TR_EINVALID,
           "a tx length past the end is refused");
  memcpy(longer, buf, len);
  longer[rpc_at] = 200; /* an address longer than any may be */
  TR_CHECK(tr_batch_open(longer, len, &g, &r) == TR_EINVALID, "an address over its limit is refused");
  memcpy(longer, buf, len);
  longer[rpc_at + 3] = 0; /* a NUL inside the address */
  TR_CHECK(tr_batch_open(longer, len, &g, &r) == TR_EINVALID, "a NUL inside the address is refused");
  free(longer);
  free(buf);
}

static void snapshot_round_trip(void) {
  uint8_t head[32], sig[64];
  memset(head, 0x5c, 32);
  memset(sig, 9, 64);
  tr_batch_writer_t w;
  tr_snapshot_begin(&w, 3, head);
  tr_snapshot_add(&w, 1000, "{\"x\":2}", 7, sig);
  tr_snapshot_add(&w, 1001, "{\"x\":3}", 7, sig);
  void *buf = NULL;
  size_t len = 0;
  TR_CHECK(tr_snapshot_finish(&w, &buf, &len) == 0, "a snapshot encodes");
  uint64_t size = 0;
  uint8_t got[32];
  tr_batch_reader_t r;
  tr_batch_tx_t t;
  TR_CHECK(tr_snapshot_open(buf, len, &size, got, &r) == 0 && size == 3 && memcmp(got, head, 32) == 0,
           "it opens with its size and head");
  TR_CHECK(tr_batch_next(&r, &t) == 1 && t.time == 1000 && memcmp(t.bytes, "{\"x\":2}", 7) == 0,
           "entry 2 with its time");
  TR_CHECK(tr_batch_next(&r, &t) == 1 && t.time == 1001, "entry 3");
  TR_CHECK(tr_batch_next(&r, &t) == 0, "then the end");
  TR_CHECK(tr_batch_open(buf, len, &(tr_batch_header_t){0}, &r) == TR_EINVALID, "a snapshot is not a batch");
  size_t data = 52 + 2 * (76 + 7), refused = 0; /* then 6 bytes of padding to a multiple of 8 */
  TR_CHECK(len == data + 6, "a snapshot is padded to a multiple of 8 bytes");
  for (size_t cut = 0; cut < data; cut++) {
    int rc = tr_snapshot_open(buf, cut, &size, got, &r), more = 0;
    if (rc == 0)
      while ((more = tr_batch_next(&r, &t)) == 1) {}
    if (rc != 0 || more < 0) refused++;
  }
  TR_CHECK(refused == data, "every snapshot cut short of its data is refused");
  free(buf);
}

int main(void) {
  batch_round_trip();
  snapshot_round_trip();
  return tr_test_done();
}
