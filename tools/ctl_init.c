/* ctl_init.c — `tranchectl init` (PROTOCOL.md §7) and `tranchectl keygen`,
 * and the admin key file checks `cluster init` shares.
 *
 * init --admin-out writes the admin's seed file before the data directory is
 * created and refuses a file that would lie inside it: whoever holds the
 * node's disk must not hold the admin key.  If init then fails, the new key
 * file is removed again, so a failed init leaves nothing behind. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_node.h"

/* Resolves a path whose last component may not exist yet. */
static int resolve_maybe_missing(const char *path, char *out) {
  if (realpath(path, out) != NULL) return 0;
  char a[TR_PATH_MAX], b[TR_PATH_MAX], dir[PATH_MAX];
  snprintf(a, sizeof a, "%s", path);
  snprintf(b, sizeof b, "%s", path);
  if (realpath(dirname(a), dir) == NULL) return -1;
  int n = snprintf(out, PATH_MAX, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, basename(b));
  return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* Also `cluster init`'s check, for every one of its DIRs. */
int ctl_admin_out_allowed(const char *cmd_name, const char *file, const char *const dirs[], size_t n_dirs) {
  struct stat st;
  if (lstat(file, &st) == 0) {
    fprintf(stderr, "tranchectl %s: %s already exists; init never overwrites a key\n", cmd_name, file);
    return -1;
  }
  char copy[TR_PATH_MAX], parent[PATH_MAX], dir[PATH_MAX];
  snprintf(copy, sizeof copy, "%s", file);
  if (resolve_maybe_missing(dirname(copy), parent) != 0) { /* a DIR yet to be made, too */
    fprintf(stderr, "tranchectl %s: cannot resolve the directory of %s: %s\n", cmd_name, file, strerror(errno));
    return -1;
  }
  for (size_t i = 0; i < n_dirs; i++) {
    if (resolve_maybe_missing(dirs[i], dir) != 0) {
      fprintf(stderr, "tranchectl %s: cannot resolve %s: %s\n", cmd_name, dirs[i], strerror(errno));
      return -1;
    }
    size_t n = strlen(dir);
    if (strncmp(parent, dir, n) == 0 && (parent[n] == '\0' || parent[n] == '/' || strcmp(dir, "/") == 0)) {
      fprintf(stderr, "tranchectl %s: --admin-out %s lies inside the data directory %s; keep the admin key "
              "off the node's disk\n", cmd_name, file, dirs[i]);
      return -1;
    }
  }
  return 0;
}

int ctl_key_file_write(const char *path, const uint8_t seed[32]) {
  int rc = tr_key_file_write(path, seed);
  if (rc != 0)
    fprintf(stderr, "tranchectl: cannot write key file %s: %s\n", path,
            rc == TR_EEXISTS ? "it already exists" : strerror(errno));
  return rc;
}

int ctl_key_file_new(const char *path, tr_key_t *pk) {
  uint8_t seed[32], sk[64];
  randombytes_buf(seed, sizeof seed);
  crypto_sign_seed_keypair(pk->b, sk, seed);
  int rc = ctl_key_file_write(path, seed);
  sodium_memzero(seed, sizeof seed);
  sodium_memzero(sk, sizeof sk);
  return rc;
}

int ctl_cmd_init(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *datadir = ctl_opt(o, "datadir"), *chain = ctl_opt(o, "chain");
  const char *admin_hex = ctl_opt(o, "admin"), *admin_out = ctl_opt(o, "admin-out");
  if (!datadir || !chain) return ctl_usage_error(cmd, "--datadir and --chain are required");
  if (!admin_hex == !admin_out) return ctl_usage_error(cmd, "give exactly one of --admin and --admin-out");
  if (!tr_chain_id_valid(chain, strlen(chain))) return ctl_usage_error(cmd, "--chain must match ^[a-z0-9][a-z0-9./-]{0,63}$");
  tr_key_t admin;
  if (admin_hex && (ctl_parse_key(admin_hex, &admin) != 0 || !crypto_core_ed25519_is_valid_point(admin.b)))
    return ctl_usage_error(cmd, "--admin must be an Ed25519 public key: 64 lowercase hex");
  if (admin_out) {
    if (ctl_admin_out_allowed(cmd->name, admin_out, &datadir, 1) != 0) return CTL_FAILED;
    if (ctl_key_file_new(admin_out, &admin) != 0) return CTL_FAILED;
  }
  char err[512] = "";
  int rc = tr_node_init(datadir, chain, &admin, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "tranchectl init: %s\n", err[0] ? err : tr_strerror(rc));
    if (admin_out) unlink(admin_out);
    return CTL_FAILED;
  }
  char hex[65];
  printf("%s\n", tr_hex_encode(admin.b, 32, hex));
  fprintf(stderr, "initialised %s for chain %s%s%s\n", datadir, chain, admin_out ? "; admin key in " : "",
          admin_out ? admin_out : "");
  return CTL_OK;
}

int ctl_cmd_keygen(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *out = ctl_opt(o, "out");
  if (!out) return ctl_usage_error(cmd, "--out is required");
  tr_key_t pk;
  if (ctl_key_file_new(out, &pk) != 0) return CTL_FAILED;
  char hex[65];
  printf("%s\n", tr_hex_encode(pk.b, 32, hex));
  return CTL_OK;
}
