/* tr_note.c — C2SP signed-note, tlog-checkpoint and tlog-proof texts.
 *
 * Workload: the daemon signs one checkpoint per second and serves it as text;
 * verifiers (tranchectl verify, clients, the daemon at start) open a
 * checkpoint or a proof now and then.  Inputs are untrusted text, so every
 * parser here is strict, bounded and allocation-free; libsodium does all
 * hashing, base64 and Ed25519.
 */
#include "tr_note.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "tr_err.h"
#include "tr_hex.h"

#define B64 sodium_base64_VARIANT_ORIGINAL
#define ALG_ED25519 0x01
#define KEY_ID_BYTES 4
#define SIG_PREFIX "\xE2\x80\x94 " /* U+2014 EM DASH, then a space */
#define SIG_PREFIX_BYTES 4

/* ---- Text rules shared by all three formats ---- */

/* Decodes one UTF-8 scalar value at s[0..len).  Returns its byte length and
 * sets *cp, or 0 for an invalid, overlong, surrogate or truncated sequence. */
static size_t utf8_next(const uint8_t *s, size_t len, uint32_t *cp) {
  static const uint32_t min_by_len[5] = {0, 0, 0x80, 0x800, 0x10000};
  size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 0 || n > len) return 0;
  uint32_t c = n == 1 ? s[0] : (uint32_t)(s[0] & (0x7F >> n));
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min_by_len[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  return n;
}

/* signed-note: valid UTF-8 and no ASCII control character but newline. */
static bool text_valid(const char *s, size_t len, bool newline_ok) {
  const uint8_t *p = (const uint8_t *)s;
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t n = utf8_next(p + i, len - i, &c);
    if (n == 0 || (c < 0x20 && !(newline_ok && c == '\n'))) return false;
    i += n;
  }
  return true;
}

/* Unicode White_Space, as Go's unicode.IsSpace, which defines "Unicode
 * spaces" for golang.org/x/mod/sumdb/note key names. */
static bool is_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

/* signed-note key name rules, without our storage bound: names in lines
 * from unknown keys may be longer than any key we hold. */
static bool name_chars_valid(const char *name, size_t len) {
  if (len == 0) return false;
  const uint8_t *p = (const uint8_t *)name;
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t n = utf8_next(p + i, len - i, &c);
    if (n == 0 || c < 0x20 || c == '+' || is_space(c)) return false;
    i += n;
  }
  return true;
}

bool tr_note_name_valid(const char *name, size_t len) {
  return name != NULL && len <= TR_NOTE_NAME_BYTES_MAX && name_chars_valid(name, len);
}

/* Strict decimal: "0" or [1-9][0-9]* that fits in uint64. */
static bool parse_u64(const char *s, size_t len, uint64_t *out) {
  if (len == 0 || len > 20 || (len > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

/* Canonical standard base64 (padded; libsodium also refuses non-zero pad
 * bits) of at most cap bytes.  An empty string decodes to 0 bytes. */
static bool b64_decode(const char *b64, size_t b64_len, uint8_t *bin, size_t cap, size_t *bin_len) {
  if (b64_len == 0) {
    *bin_len = 0;
    return true;
  }
  if (b64_len % 4 != 0 || b64_len / 4 * 3 > cap + 2) return false;
  for (size_t i = 0; i < b64_len; i++) { /* libsodium 1.0.18 decodes every byte >= 0x80 as '/' */
    char c = b64[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
          c == '=')) return false;
  }
  return sodium_base642bin(bin, cap, b64, b64_len, NULL, bin_len, NULL, B64) == 0;
}

/* Decoded size of well-formed padded base64 (used to check a cap first). */
static size_t b64_decoded_len(const char *b64, size_t b64_len) {
  size_t n = b64_len / 4 * 3;
  if (b64_len >= 1 && b64[b64_len - 1] == '=') n--;
  if (b64_len >= 2 && b64[b64_len - 2] == '=') n--;
  return n;
}

/* Finds the line starting at *pos (ended by '\n', which is not included).
 * Returns false when no newline remains. */
static bool next_line(const char *s, size_t len, size_t *pos, const char **line, size_t *line_len) {
  if (*pos >= len) return false;
  const char *nl = memchr(s + *pos, '\n', len - *pos);
  if (nl == NULL) return false;
  *line = s + *pos;
  *line_len = (size_t)(nl - *line);
  *pos += *line_len + 1;
  return true;
}

/* ---- A bounded output buffer ---- */

typedef struct {
  char *p;
  size_t cap, len;
  bool full; /* something did not fit: the result is TR_ELIMIT */
} outbuf_t;

static outbuf_t out_init(char *p, size_t cap) {
  outbuf_t o = {p, cap, 0, p == NULL || cap == 0};
  return o;
}

/* memmove: tr_note_sign allows out == body. One byte stays for the NUL. */
static void out_put(outbuf_t *o, const void *s, size_t n) {
  if (o->full || n >= o->cap - o->len) {
    o->full = true;
    return;
  }
  memmove(o->p + o->len, s, n);
  o->len += n;
}

static void out_str(outbuf_t *o, const char *s) { out_put(o, s, strlen(s)); }

/* sodium_bin2base64 aborts on a short buffer, so the room is checked here. */
static void out_b64(outbuf_t *o, const uint8_t *bin, size_t n) {
  size_t need = sodium_base64_ENCODED_LEN(n, B64); /* includes the NUL */
  if (o->full || need > o->cap - o->len) {
    o->full = true;
    return;
  }
  sodium_bin2base64(o->p + o->len, o->cap - o->len, bin, n, B64);
  o->len += need - 1;
}

static void out_u64(outbuf_t *o, uint64_t v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
  assert(n > 0 && (size_t)n < sizeof tmp);
  out_put(o, tmp, (size_t)n);
}

static int out_finish(outbuf_t *o, size_t *out_len) {
  if (o->full) return TR_ELIMIT;
  o->p[o->len] = '\0';
  if (out_len != NULL) *out_len = o->len;
  return 0;
}

/* ---- Verifier keys ---- */

uint32_t tr_note_key_id(const char *name, const uint8_t pubkey[TR_NOTE_ED25519_KEY_BYTES]) {
  static const uint8_t sep[2] = {'\n', ALG_ED25519};
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
  crypto_hash_sha256_update(&st, sep, sizeof sep);
  crypto_hash_sha256_update(&st, pubkey, TR_NOTE_ED25519_KEY_BYTES);
  crypto_hash_sha256_final(&st, h);
  return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

static void key_id_bytes(uint32_t id, uint8_t out[KEY_ID_BYTES]) {
  out[0] = (uint8_t)(id >> 24), out[1] = (uint8_t)(id >> 16), out[2] = (uint8_t)(id >> 8), out[3] = (uint8_t)id;
}

int tr_note_vkey_format(const char *name, const uint8_t pubkey[TR_NOTE_ED25519_KEY_BYTES], char *out,
                        size_t out_cap) {
  if (name == NULL || pubkey == NULL || !tr_note_name_valid(name, strlen(name))) return TR_EARG;
  uint8_t key[1 + TR_NOTE_ED25519_KEY_BYTES] = {ALG_ED25519};
  memcpy(key + 1, pubkey, TR_NOTE_ED25519_KEY_BYTES);
  char hex[9];
  snprintf(hex, sizeof hex, "%08lx", (unsigned long)tr_note_key_id(name, pubkey));
  outbuf_t o = out_init(out, out_cap);
  out_str(&o, name);
  out_str(&o, "+");
  out_str(&o, hex);
  out_str(&o, "+");
  out_b64(&o, key, sizeof key);
  return out_finish(&o, NULL);
}

int tr_note_vkey_parse(const char *text, size_t len, tr_note_vkey_t *out) {
  if (text == NULL || out == NULL || len >= TR_NOTE_VKEY_BUF_BYTES) return TR_EINVALID;
  const char *plus = memchr(text, '+', len);
  if (plus == NULL) return TR_EINVALID;
  size_t name_len = (size_t)(plus - text);
  size_t rest = len - name_len - 1; /* after the first '+' */
  if (!tr_note_name_valid(text, name_len) || rest < 9 || plus[9] != '+') return TR_EINVALID;
  uint8_t id[KEY_ID_BYTES], key[1 + TR_NOTE_ED25519_KEY_BYTES];
  size_t key_len;
  if (tr_hex_decode(plus + 1, 8, id, sizeof id) != 0) return TR_EINVALID;
  if (!b64_decode(plus + 10, rest - 9, key, sizeof key, &key_len) || key_len != sizeof key ||
      key[0] != ALG_ED25519)
    return TR_EINVALID;
  memcpy(out->name, text, name_len);
  out->name[name_len] = '\0';
  memcpy(out->pubkey, key + 1, TR_NOTE_ED25519_KEY_BYTES);
  out->key_id = tr_note_key_id(out->name, out->pubkey);
  uint8_t want[KEY_ID_BYTES];
  key_id_bytes(out->key_id, want);
  return memcmp(id, want, KEY_ID_BYTES) == 0 ? 0 : TR_EINVALID;
}

/* ---- Notes ---- */

int tr_note_sign(const char *body, size_t body_len, const char *name, const uint8_t sk[64], char *out,
                 size_t out_cap, size_t *out_len) {
  if (body == NULL || name == NULL || sk == NULL || !tr_note_name_valid(name, strlen(name))) return TR_EARG;
  if (body_len == 0 || body[body_len - 1] != '\n' || !text_valid(body, body_len, true)) return TR_EARG;
  if (body_len + 1 + TR_NOTE_SIG_LINE_BYTES_MAX > TR_NOTE_BYTES_MAX) return TR_ELIMIT;
  uint8_t pk[TR_NOTE_ED25519_KEY_BYTES], sig[KEY_ID_BYTES + TR_NOTE_ED25519_SIG_BYTES];
  crypto_sign_ed25519_sk_to_pk(pk, sk);
  key_id_bytes(tr_note_key_id(name, pk), sig);
  /* Sign before writing anything, so out may overlap body. */
  if (crypto_sign_detached(sig + KEY_ID_BYTES, NULL, (const uint8_t *)body, body_len, sk) != 0) return TR_EARG;
  outbuf_t o = out_init(out, out_cap);
  out_put(&o, body, body_len);
  out_str(&o, "\n" SIG_PREFIX);
  out_str(&o, name);
  out_str(&o, " ");
  out_b64(&o, sig, sizeof sig);
  out_str(&o, "\n");
  return out_finish(&o, out_len);
}

/* One signature line (without its '\n'): "— <name> <base64>".  Fills the
 * name span and the decoded bytes (key id first).  Returns false when
 * malformed. */
static bool parse_sig_line(const char *line, size_t len, const char **name, size_t *name_len, uint8_t *sig,
                           size_t *sig_len) {
  if (len < SIG_PREFIX_BYTES || memcmp(line, SIG_PREFIX, SIG_PREFIX_BYTES) != 0) return false;
  line += SIG_PREFIX_BYTES, len -= SIG_PREFIX_BYTES;
  const char *sp = memchr(line, ' ', len);
  if (sp == NULL) return false;
  *name = line;
  *name_len = (size_t)(sp - line);
  const char *b64 = sp + 1;
  size_t b64_len = len - *name_len - 1;
  if (!name_chars_valid(*name, *name_len) || b64_len == 0) return false;
  return b64_decode(b64, b64_len, sig, TR_NOTE_SIG_BYTES_MAX, sig_len) && *sig_len > KEY_ID_BYTES;
}

/* The text ends at the last blank line: returns the text length (final '\n'
 * included), or 0 when the note has no blank line followed by a
 * newline-terminated signature block. */
static size_t note_split(const char *note, size_t len) {
  if (len < 3 || note[len - 1] != '\n') return 0;
  for (size_t i = len - 2; i-- > 0;)
    if (note[i] == '\n' && note[i + 1] == '\n') return i + 1;
  return 0;
}

/* Checks one line against the key: -1 malformed, 0 other key, 1 verified,
 * 2 from the key but not verifying. */
static int check_sig_line(const char *line, size_t line_len, const char *body, size_t body_len,
                          const tr_note_vkey_t *vkey) {
  const char *name;
  size_t name_len, sig_len;
  uint8_t sig[TR_NOTE_SIG_BYTES_MAX];
  if (!parse_sig_line(line, line_len, &name, &name_len, sig, &sig_len)) return -1;
  uint8_t want[KEY_ID_BYTES];
  key_id_bytes(vkey->key_id, want);
  if (name_len != strlen(vkey->name) || memcmp(name, vkey->name, name_len) != 0 ||
      memcmp(sig, want, KEY_ID_BYTES) != 0)
    return 0; /* unknown key: ignored, as the spec requires */
  if (sig_len != KEY_ID_BYTES + TR_NOTE_ED25519_SIG_BYTES) return 2;
  return crypto_sign_verify_detached(sig + KEY_ID_BYTES, (const uint8_t *)body, body_len, vkey->pubkey) == 0 ? 1
                                                                                                           : 2;
}

int tr_note_verify(const char *note, size_t len, const tr_note_vkey_t *vkey, size_t *body_len) {
  if (note == NULL || vkey == NULL) return TR_EARG;
  if (len > TR_NOTE_BYTES_MAX || !text_valid(note, len, true)) return TR_EINVALID;
  size_t text_len = note_split(note, len);
  if (text_len == 0) return TR_EINVALID;
  size_t pos = text_len + 1, lines = 0, good = 0, bad = 0;
  const char *line;
  size_t line_len;
  while (next_line(note, len, &pos, &line, &line_len)) {
    if (++lines > TR_NOTE_SIGS_MAX) return TR_EINVALID;
    int r = check_sig_line(line, line_len, note, text_len, vkey);
    if (r < 0) return TR_EINVALID;
    good += r == 1, bad += r == 2;
  }
  assert(pos == len); /* note_split guaranteed a final '\n' */
  /* Syntax is checked in full first, so TR_EINVALID always means malformed. */
  if (good == 0 || bad > 0) return TR_EBAD_SIGNATURE;
  if (body_len != NULL) *body_len = text_len;
  return 0;
}

/* ---- Checkpoints ---- */

static bool origin_valid(const char *origin, size_t len) {
  return len > 0 && len <= TR_CHECKPOINT_ORIGIN_BYTES_MAX && text_valid(origin, len, false);
}

int tr_checkpoint_format(const char *origin, uint64_t size, const uint8_t root[TR_MERKLE_HASH_BYTES], char *out,
                         size_t out_cap, size_t *out_len) {
  if (origin == NULL || root == NULL || !origin_valid(origin, strlen(origin))) return TR_EARG;
  outbuf_t o = out_init(out, out_cap);
  out_str(&o, origin);
  out_str(&o, "\n");
  out_u64(&o, size);
  out_str(&o, "\n");
  out_b64(&o, root, TR_MERKLE_HASH_BYTES);
  out_str(&o, "\n");
  return out_finish(&o, out_len);
}

int tr_checkpoint_parse(const char *body, size_t len, tr_checkpoint_t *out) {
  if (body == NULL || out == NULL) return TR_EARG;
  if (len > TR_NOTE_BYTES_MAX || !text_valid(body, len, true)) return TR_EINVALID;
  size_t pos = 0, n, root_len;
  const char *line;
  if (!next_line(body, len, &pos, &line, &n) || n == 0) return TR_EINVALID;
  if (n > TR_CHECKPOINT_ORIGIN_BYTES_MAX) return TR_ELIMIT;
  memcpy(out->origin, line, n);
  out->origin[n] = '\0';
  if (!next_line(body, len, &pos, &line, &n) || !parse_u64(line, n, &out->size)) return TR_EINVALID;
  if (!next_line(body, len, &pos, &line, &n) ||
      !b64_decode(line, n, out->root, TR_MERKLE_HASH_BYTES, &root_len) || root_len != TR_MERKLE_HASH_BYTES)
    return TR_EINVALID;
  /* Extension lines: opaque, optional, non-empty; the text must end in '\n'. */
  while (next_line(body, len, &pos, &line, &n))
    if (n == 0) return TR_EINVALID;
  return pos == len ? 0 : TR_EINVALID;
}

int tr_checkpoint_sign(const char *origin, uint64_t size, const uint8_t root[TR_MERKLE_HASH_BYTES],
                       const uint8_t sk[64], char *out, size_t out_cap, size_t *out_len) {
  char body[TR_CHECKPOINT_BODY_BUF_BYTES];
  size_t body_len;
  int rc = tr_checkpoint_format(origin, size, root, body, sizeof body, &body_len);
  if (rc != 0) return rc;
  return tr_note_sign(body, body_len, origin, sk, out, out_cap, out_len);
}

int tr_checkpoint_open(const char *note, size_t len, const tr_note_vkey_t *vkey, tr_checkpoint_t *out) {
  if (out == NULL) return TR_EARG;
  size_t body_len;
  int rc = tr_note_verify(note, len, vkey, &body_len);
  if (rc != 0) return rc;
  rc = tr_checkpoint_parse(note, body_len, out);
  if (rc != 0) return rc;
  /* PROTOCOL.md §3: key name = chain id = origin; a checkpoint of another
   * log signed by the same key must not pass for ours. */
  return strcmp(out->origin, vkey->name) == 0 ? 0 : TR_EINVALID;
}

/* ---- Proofs ---- */

int tr_tlog_proof_format(uint64_t index, const uint8_t *extra, size_t extra_len,
                         const uint8_t path[][TR_MERKLE_HASH_BYTES], size_t path_n, const char *checkpoint,
                         size_t checkpoint_len, char *out, size_t out_cap, size_t *out_len) {
  if (path_n > TR_MERKLE_PATH_MAX || (path == NULL && path_n > 0) || checkpoint == NULL) return TR_EARG;
  if (checkpoint_len == 0 || checkpoint[checkpoint_len - 1] != '\n') return TR_EARG;
  outbuf_t o = out_init(out, out_cap);
  out_str(&o, TR_TLOG_PROOF_HEADER "\n");
  if (extra != NULL && extra_len > 0) {
    out_str(&o, "extra ");
    out_b64(&o, extra, extra_len);
    out_str(&o, "\n");
  }
  out_str(&o, "index ");
  out_u64(&o, index);
  out_str(&o, "\n");
  for (size_t i = 0; i < path_n; i++) {
    out_b64(&o, path[i], TR_MERKLE_HASH_BYTES);
    out_str(&o, "\n");
  }
  out_str(&o, "\n");
  out_put(&o, checkpoint, checkpoint_len);
  return out_finish(&o, out_len);
}

/* The "extra <base64>" line, decoded into the caller's buffer. */
static int parse_extra(const char *b64, size_t n, uint8_t *buf, size_t cap, tr_tlog_proof_t *out) {
  if (n % 4 != 0) return TR_EINVALID;
  if (b64_decoded_len(b64, n) > cap) return TR_ELIMIT;
  if (!b64_decode(b64, n, buf, cap, &out->extra_len)) return TR_EINVALID;
  out->has_extra = true;
  return 0;
}

/* Hash lines up to the empty line; returns the position after it or 0. */
static size_t parse_hashes(const char *text, size_t len, size_t pos, tr_tlog_proof_t *out) {
  const char *line;
  size_t n, got;
  while (next_line(text, len, &pos, &line, &n)) {
    if (n == 0) return pos;
    if (out->path_n == TR_MERKLE_PATH_MAX) return 0;
    if (!b64_decode(line, n, out->path[out->path_n], TR_MERKLE_HASH_BYTES, &got) || got != TR_MERKLE_HASH_BYTES)
      return 0;
    out->path_n++;
  }
  return 0;
}

int tr_tlog_proof_parse(const char *text, size_t len, uint8_t *extra_buf, size_t extra_cap,
                        tr_tlog_proof_t *out) {
  if (text == NULL || out == NULL) return TR_EARG;
  if (len > TR_TLOG_PROOF_BYTES_MAX) return TR_ELIMIT;
  memset(out, 0, sizeof *out);
  size_t pos = 0, n;
  const char *line;
  if (!next_line(text, len, &pos, &line, &n) || n != strlen(TR_TLOG_PROOF_HEADER) ||
      memcmp(line, TR_TLOG_PROOF_HEADER, n) != 0)
    return TR_EINVALID;
  if (!next_line(text, len, &pos, &line, &n)) return TR_EINVALID;
  if (n >= 6 && memcmp(line, "extra ", 6) == 0) {
    int rc = parse_extra(line + 6, n - 6, extra_buf, extra_buf == NULL ? 0 : extra_cap, out);
    if (rc != 0) return rc;
    if (!next_line(text, len, &pos, &line, &n)) return TR_EINVALID;
  }
  if (n < 6 || memcmp(line, "index ", 6) != 0 || !parse_u64(line + 6, n - 6, &out->index)) return TR_EINVALID;
  pos = parse_hashes(text, len, pos, out);
  if (pos == 0 || pos >= len || text[len - 1] != '\n') return TR_EINVALID;
  out->checkpoint = text + pos;
  out->checkpoint_len = len - pos;
  return 0;
}

int tr_tlog_proof_verify(const tr_tlog_proof_t *proof, const tr_note_vkey_t *vkey,
                         const uint8_t leaf[TR_MERKLE_HASH_BYTES], tr_checkpoint_t *cp) {
  if (proof == NULL || vkey == NULL || leaf == NULL) return TR_EARG;
  tr_checkpoint_t c;
  int rc = tr_checkpoint_open(proof->checkpoint, proof->checkpoint_len, vkey, &c);
  if (rc != 0) return rc;
  if (proof->index >= c.size) return TR_EINVALID;
  rc = tr_merkle_verify_inclusion(leaf, proof->index, c.size, proof->path, proof->path_n, c.root);
  if (rc != 0) return TR_EINVALID;
  if (cp != NULL) *cp = c;
  return 0;
}
