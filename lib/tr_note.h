/* tr_note.h — C2SP signed notes, tlog checkpoints and tlog proofs (Ed25519).
 *
 * Implements, for signature type 0x01 (Ed25519) only:
 *   - https://c2sp.org/signed-note: verifier keys "<name>+<key id hex>+<base64
 *     (0x01 || pubkey)>", key id = SHA-256(name || 0x0A || 0x01 || pubkey)[:4],
 *     notes "<text>\n" + "\n" + lines "— <name> <base64(key id || sig)>\n";
 *   - https://c2sp.org/tlog-checkpoint: note text "<origin>\n<size>\n<base64
 *     root>\n" plus optional extension lines (PROTOCOL.md §3 "Checkpoints");
 *   - https://c2sp.org/tlog-proof: "c2sp.org/tlog-proof@v1\n", optional
 *     "extra <base64>\n", "index <N>\n", inclusion hashes one per line in
 *     base64, an empty line, then the signed checkpoint verbatim.
 *
 * Byte-compatible with golang.org/x/mod/sumdb/note; two deliberate
 * differences, both stricter: base64 must be canonical (libsodium refuses
 * non-zero padding bits), and every signature line from the verifying key is
 * checked (Go checks only the first one per key).
 *
 * Nothing here allocates; outputs go to caller buffers and are
 * NUL-terminated.  Return values: 0; TR_EINVALID for malformed input text;
 * TR_EBAD_SIGNATURE when a note is well formed but not validly signed by the
 * given key; TR_EARG for bad arguments from the caller (e.g. an invalid key
 * name to sign with); TR_ELIMIT when an output buffer is too small or an
 * input exceeds a bound below.
 */
#ifndef TR_NOTE_H
#define TR_NOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_merkle.h"

/* ---- Bounds (each with why) ---- */
#define TR_NOTE_BYTES_MAX        (1024 * 1024) /* a whole note; keeps parsing cheap, far above any checkpoint */
#define TR_NOTE_SIGS_MAX         100           /* signature lines; spec demands >= 16, Go refuses > 100 */
#define TR_NOTE_SIG_BYTES_MAX    8192          /* one decoded signature of any (unknown) type: post-quantum
                                                  ones reach ~5 kB per signed-note; ours are 68 */
#define TR_NOTE_NAME_BYTES_MAX   255           /* key names we hold (chain ids are <= 64) */
#define TR_NOTE_ED25519_SIG_BYTES 64
#define TR_NOTE_ED25519_KEY_BYTES 32
/* "<name>+xxxxxxxx+" and base64 of 33 bytes (44 chars), plus NUL. */
#define TR_NOTE_VKEY_BUF_BYTES   (TR_NOTE_NAME_BYTES_MAX + 1 + 8 + 1 + 44 + 1)
/* "— " (4 bytes) + name + " " + base64 of 4 + 64 bytes (92 chars) + "\n". */
#define TR_NOTE_SIG_LINE_BYTES_MAX (4 + TR_NOTE_NAME_BYTES_MAX + 1 + 92 + 1)

#define TR_CHECKPOINT_ORIGIN_BYTES_MAX 255     /* origins we hold (ours is the chain id, <= 64) */
/* origin + "\n" + up to 20 digits + "\n" + 44 base64 chars + "\n", plus NUL. */
#define TR_CHECKPOINT_BODY_BUF_BYTES (TR_CHECKPOINT_ORIGIN_BYTES_MAX + 1 + 20 + 1 + 44 + 1 + 1)
/* A checkpoint note signed by one key, plus NUL. */
#define TR_CHECKPOINT_NOTE_BUF_BYTES (TR_CHECKPOINT_BODY_BUF_BYTES + 1 + TR_NOTE_SIG_LINE_BYTES_MAX)

#define TR_TLOG_PROOF_HEADER "c2sp.org/tlog-proof@v1"
#define TR_TLOG_PROOF_BYTES_MAX (2 * 1024 * 1024) /* a checkpoint note (<= 1 MiB) plus room for extra data */

/* ---- Verifier keys and key ids ---- */

/* A parsed Ed25519 verifier key. */
typedef struct {
  char name[TR_NOTE_NAME_BYTES_MAX + 1];
  uint32_t key_id;                             /* first 4 hash bytes, big-endian */
  uint8_t pubkey[TR_NOTE_ED25519_KEY_BYTES];
} tr_note_vkey_t;

/* Key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || pubkey)[:4]
 * read big-endian.  `name` is NUL-terminated and is not checked here. */
uint32_t tr_note_key_id(const char *name, const uint8_t pubkey[TR_NOTE_ED25519_KEY_BYTES]);

/* True when name is a valid key name: non-empty, at most
 * TR_NOTE_NAME_BYTES_MAX bytes, valid UTF-8, no control characters, no
 * Unicode spaces, no '+'. */
bool tr_note_name_valid(const char *name, size_t len);

/* Writes "<name>+<key id, 8 lowercase hex>+<base64(0x01 || pubkey)>" and a
 * NUL into out.  Returns 0, TR_EARG (invalid name) or TR_ELIMIT (out_cap). */
int tr_note_vkey_format(const char *name, const uint8_t pubkey[TR_NOTE_ED25519_KEY_BYTES], char *out,
                        size_t out_cap);

/* Parses a verifier key text of `len` bytes: valid name, exactly 8 lowercase
 * hex digits equal to the recomputed key id, base64 of exactly 33 bytes
 * starting with 0x01.  Returns 0 or TR_EINVALID. */
int tr_note_vkey_parse(const char *text, size_t len, tr_note_vkey_t *out);

/* ---- Signed notes ---- */

/* Signs `body` (non-empty, ends in "\n", UTF-8 without control characters
 * other than newline) as key `name` with a 64-byte libsodium secret key
 * (seed || pk).  Writes body + "\n" + one signature line + NUL into out and
 * the length without the NUL into *out_len.  Returns 0, TR_EARG (bad name or
 * body) or TR_ELIMIT (out_cap too small, or note over TR_NOTE_BYTES_MAX). */
int tr_note_sign(const char *body, size_t body_len, const char *name, const uint8_t sk[64], char *out,
                 size_t out_cap, size_t *out_len);

/* Verifies a note of `len` bytes against one key.  The note must be valid
 * UTF-8 without control characters other than newline, at most
 * TR_NOTE_BYTES_MAX bytes; its text ends at the last blank line; then 1 to
 * TR_NOTE_SIGS_MAX signature lines "— <name> <base64>\n", each well formed
 * (valid name, canonical base64 of 5 to TR_NOTE_SIG_BYTES_MAX bytes), else
 * TR_EINVALID.  Lines whose (name, key id) is not the key's are ignored, as
 * the spec requires (witness cosignatures).  Returns 0 and the text length
 * (note[0..*body_len), final "\n" included) when at least one line is from
 * the key and every such line verifies; TR_EBAD_SIGNATURE otherwise. */
int tr_note_verify(const char *note, size_t len, const tr_note_vkey_t *vkey, size_t *body_len);

/* ---- Checkpoints (tlog-checkpoint) ---- */

typedef struct {
  char origin[TR_CHECKPOINT_ORIGIN_BYTES_MAX + 1];
  uint64_t size;
  uint8_t root[TR_MERKLE_HASH_BYTES];
} tr_checkpoint_t;

/* Writes "<origin>\n<size>\n<base64 root>\n" and a NUL into out.  The origin
 * must be non-empty, at most TR_CHECKPOINT_ORIGIN_BYTES_MAX bytes, UTF-8
 * without control characters.  Returns 0, TR_EARG or TR_ELIMIT. */
int tr_checkpoint_format(const char *origin, uint64_t size, const uint8_t root[TR_MERKLE_HASH_BYTES], char *out,
                         size_t out_cap, size_t *out_len);

/* Parses a checkpoint note text (the body tr_note_verify returns): three
 * mandatory lines — non-empty origin, size in decimal without leading zeros
 * (fits uint64), root as base64 of exactly 32 bytes — then any number of
 * non-empty extension lines, which are accepted and ignored.  Returns 0,
 * TR_EINVALID, or TR_ELIMIT for an origin longer than we hold. */
int tr_checkpoint_parse(const char *body, size_t len, tr_checkpoint_t *out);

/* Formats the checkpoint body and signs it with key name = origin (PROTOCOL.md
 * §3: key name = chain id = origin).  Errors as tr_checkpoint_format and
 * tr_note_sign; TR_CHECKPOINT_NOTE_BUF_BYTES always suffices. */
int tr_checkpoint_sign(const char *origin, uint64_t size, const uint8_t root[TR_MERKLE_HASH_BYTES],
                       const uint8_t sk[64], char *out, size_t out_cap, size_t *out_len);

/* Verifies a checkpoint note against vkey, parses its body, and requires the
 * origin to equal the key name.  Returns 0, TR_EINVALID, TR_EBAD_SIGNATURE
 * or TR_ELIMIT. */
int tr_checkpoint_open(const char *note, size_t len, const tr_note_vkey_t *vkey, tr_checkpoint_t *out);

/* ---- Proofs (tlog-proof) ---- */

typedef struct {
  uint64_t index;                              /* zero-based leaf index (= seq - 1) */
  bool has_extra;                              /* an "extra" line was present */
  size_t extra_len;                            /* bytes decoded into the caller's buffer */
  size_t path_n;
  uint8_t path[TR_MERKLE_PATH_MAX][TR_MERKLE_HASH_BYTES]; /* leaf's sibling first */
  const char *checkpoint;                      /* points into the parsed text, not NUL-terminated */
  size_t checkpoint_len;
} tr_tlog_proof_t;

/* Writes a tlog-proof and a NUL into out.  extra == NULL or extra_len == 0
 * omits the "extra" line (the spec's "no extra data").  The checkpoint note
 * is copied verbatim and must end in "\n".  Returns 0, TR_EARG or
 * TR_ELIMIT. */
int tr_tlog_proof_format(uint64_t index, const uint8_t *extra, size_t extra_len,
                         const uint8_t path[][TR_MERKLE_HASH_BYTES], size_t path_n, const char *checkpoint,
                         size_t checkpoint_len, char *out, size_t out_cap, size_t *out_len);

/* Parses a tlog-proof of `len` bytes.  The extra data (unauthenticated: the
 * caller must check it against the leaf hash) is decoded into
 * extra_buf[0..extra_cap).  The index has no leading zeros; at most
 * TR_MERKLE_PATH_MAX hashes of exactly 32 bytes; the checkpoint (the rest of
 * the text after the empty line) must be non-empty and end in "\n" — it is
 * not verified here.  Returns 0, TR_EINVALID, or TR_ELIMIT (extra larger than
 * extra_cap, or text over TR_TLOG_PROOF_BYTES_MAX). */
int tr_tlog_proof_parse(const char *text, size_t len, uint8_t *extra_buf, size_t extra_cap,
                        tr_tlog_proof_t *out);

/* Verifies a parsed proof: its checkpoint note with tr_checkpoint_open, then
 * RFC 9162 inclusion of leaf hash `leaf` at proof->index under the
 * checkpoint's root.  Fills *cp (may be NULL).  Returns 0,
 * TR_EINVALID (also for an index outside the checkpoint's tree, or a bad
 * path), TR_EBAD_SIGNATURE or TR_ELIMIT. */
int tr_tlog_proof_verify(const tr_tlog_proof_t *proof, const tr_note_vkey_t *vkey,
                         const uint8_t leaf[TR_MERKLE_HASH_BYTES], tr_checkpoint_t *cp);

#endif
