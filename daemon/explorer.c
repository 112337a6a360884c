/* explorer.c — finding an embedded explorer file by path (explorer.h). */
#include "explorer.h"

#include <string.h>

const tr_explorer_asset_t *tr_explorer_find(const char *path, size_t len) {
  for (size_t i = 0; i < tr_explorer_assets_count; i++)
    if (strlen(tr_explorer_assets[i].path) == len && memcmp(tr_explorer_assets[i].path, path, len) == 0)
      return &tr_explorer_assets[i];
  return NULL;
}
