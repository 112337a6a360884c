/* tr_hex.h — strict lowercase hex for keys, hashes and signatures (§1). */
#ifndef TR_HEX_H
#define TR_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Decode exactly `bin_len` bytes from `hex` of `hex_len` chars.
 * Only lowercase [0-9a-f], and hex_len must equal 2*bin_len.
 * Returns 0 or TR_EINVALID (bin then zeroed).  Public values only: its
 * time depends on the input. */
int tr_hex_decode(const char *hex, size_t hex_len, uint8_t *bin, size_t bin_len);

/* Lowercase hex of `len` bytes into out (needs 2*len+1 bytes). Returns out. */
char *tr_hex_encode(const uint8_t *bin, size_t len, char *out);

/* The same for secrets (key seeds): in constant time, libsodium's codecs;
 * a failed decode leaves bin zeroed. */
int tr_hex_decode_secret(const char *hex, size_t hex_len, uint8_t *bin, size_t bin_len);
char *tr_hex_encode_secret(const uint8_t *bin, size_t len, char *out);

#endif
