/* explorer.h — the explorer page (GET /), compiled into tranched.
 *
 * Static files from daemon/explorer/, embedded at build time by
 * explorer/embed_assets.py; the page talks to the node over GET /ws like any
 * client and verifies checkpoints and proofs itself (WebCrypto).
 */
#ifndef TR_EXPLORER_H
#define TR_EXPLORER_H

#include <stddef.h>

typedef struct {
  const char *path;          /* "/", "/explorer.js", ... */
  const char *content_type;
  const char *data;
  size_t len;
} tr_explorer_asset_t;

extern const tr_explorer_asset_t tr_explorer_assets[];
extern const size_t tr_explorer_assets_count;

/* The asset served at path[0, len) (no query), or NULL. */
const tr_explorer_asset_t *tr_explorer_find(const char *path, size_t len);

/* Headers every explorer response carries: a policy that lets the page load
 * only its own scripts and styles and talk only to this origin. */
#define TR_EXPLORER_HEADERS                                                                          \
  "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' " \
  "data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n"        \
  "Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n"

#endif
