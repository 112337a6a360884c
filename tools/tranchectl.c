/* tranchectl.c — the administrator's command line (PROTOCOL.md §7). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_ledger.h"
#include "tr_node.h"

static int cmd_init(int argc, char **argv) {
  const char *datadir = NULL, *chain = NULL, *admin_hex = NULL, *admin_out = NULL;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v && strcmp(a, "--datadir") == 0) datadir = v, i++;
    else if (v && strcmp(a, "--chain") == 0) chain = v, i++;
    else if (v && strcmp(a, "--admin") == 0) admin_hex = v, i++;
    else if (v && strcmp(a, "--admin-out") == 0) admin_out = v, i++;
    else {
      fprintf(stderr, "tranchectl init: unexpected argument %s\n", a);
      return 2;
    }
  }
  if (!datadir || !chain || (!admin_hex == !admin_out)) {
    fprintf(stderr, "usage: tranchectl init --datadir DIR --chain ID (--admin PUBKEY | --admin-out FILE)\n");
    return 2;
  }
  (void)admin_out;
  tr_key_t admin;
  if (admin_hex && tr_hex_decode(admin_hex, strlen(admin_hex), admin.b, 32) != 0) {
    fprintf(stderr, "tranchectl init: --admin must be 64 lowercase hex\n");
    return 2;
  }
  char err[512] = "";
  int rc = tr_node_init(datadir, chain, &admin, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "tranchectl init: %s\n", err);
    return 1;
  }
  char hex[65];
  printf("%s\n", tr_hex_encode(admin.b, 32, hex));
  return 0;
}

int main(int argc, char **argv) {
  if (sodium_init() < 0) return 1;
  if (argc >= 2 && strcmp(argv[1], "init") == 0) return cmd_init(argc - 2, argv + 2);
  fprintf(stderr, "usage: tranchectl init ...\n");
  return 2;
}
