/* test_node.c — the data directory's config and the making of nodes
 * (lib/tr_node.h): the cluster keys of tranche.conf (a good file, and each
 * refusal with its message), `cluster init`'s directories (one node key,
 * configs that load back, byte-identical genesis entries, nothing left
 * behind by a refusal or a failure) and the re-creation of a wiped journal's
 * genesis entry.  Works in a private directory under $TMPDIR (or /tmp),
 * removed at the end. */
#include <dirent.h>
#include <ftw.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_node.h"
#include "tr_store.h"
#include "tr_test.h"

#define CHAIN "test.example/cluster"
#define GENESIS_MS 1700000000000ULL
#define ERR_BYTES 512

static char base[256];     /* the private directory */
static char admin_hex[65]; /* a valid admin public key */

static char *path_in(const char *name) {
  static char paths[8][TR_PATH_MAX];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, TR_PATH_MAX, "%s/%s", base, name);
  return p;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* Entries in `base` (the test's directory), for "nothing left behind". */
static int base_entries(void) {
  DIR *d = opendir(base);
  int n = 0;
  if (d == NULL) return -1;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs(text, f) < 0) {
    perror(path);
    exit(2);
  }
  fclose(f);
}

/* Loads `text` as a config file; rc, with the config and the message. */
static int load_text(const char *text, tr_config_t *c, char *err) {
  char *p = path_in("t.conf");
  write_text(p, text);
  tr_config_defaults(c);
  err[0] = '\0';
  int rc = tr_config_load(p, 0, c, err, ERR_BYTES);
  unlink(p);
  return rc;
}

#define NODES3 \
  "cluster_node = 1 127.0.0.1:7801 127.0.0.1:7701\n" \
  "cluster_node = 2 127.0.0.1:7802 127.0.0.1:7702\n" \
  "cluster_node = 3 127.0.0.1:7803 127.0.0.1:7703\n"

/* A cluster config with `extra` lines before the genesis line `genesis`. */
static const char *conf(const char *head, const char *genesis) {
  static char text[4096];
  char line[256] = "";
  if (genesis == NULL) snprintf(line, sizeof line, "cluster_genesis = %s %s %llu\n", CHAIN, admin_hex, GENESIS_MS);
  snprintf(text, sizeof text, "workers = 2\n%s%s", head, genesis ? genesis : line);
  return text;
}

static void test_config_good(void) {
  tr_config_t c;
  char err[ERR_BYTES];
  int rc = load_text(conf("cluster_id = 2\n" NODES3, NULL), &c, err);
  TR_CHECK(rc == 0, "a cluster config loads (%s)", err);
  TR_CHECK_EQ_INT(c.cluster_id, 2, "cluster_id");
  TR_CHECK_EQ_INT(c.cluster_nodes_n, 3, "three cluster_node lines");
  TR_CHECK(c.cluster_nodes[2].id == 3 && strcmp(c.cluster_nodes[2].raft, "127.0.0.1:7803") == 0 &&
               strcmp(c.cluster_nodes[2].rpc, "127.0.0.1:7703") == 0, "a cluster_node line's id and addresses");
  TR_CHECK_EQ_STR(c.listen, "127.0.0.1:7702", "listen is this node's rpc address when the file has none");
  TR_CHECK_EQ_STR(c.cluster_chain, CHAIN, "cluster_genesis chain");
  char hex[65];
  TR_CHECK_EQ_STR(tr_hex_encode(c.cluster_admin.b, 32, hex), admin_hex, "cluster_genesis admin key");
  TR_CHECK_EQ_INT(c.cluster_genesis_ms, GENESIS_MS, "cluster_genesis time");
  TR_CHECK_EQ_INT(c.workers, 2, "the other keys still load");

  rc = load_text(conf("listen = 127.0.0.1:7701\ncluster_id = 1\n" NODES3, NULL), &c, err);
  TR_CHECK(rc == 0 && strcmp(c.listen, "127.0.0.1:7701") == 0, "an explicit listen equal to the rpc address (%s)", err);
  rc = load_text(conf("cluster_id = 1\n"
                      "cluster_node = 1 [::1]:7801 [::1]:7701\n"
                      "cluster_node = 7 node7.example:7801 node7.example:7701\n"
                      "cluster_node =\t3   10.0.0.3:7801  10.0.0.3:7701  \n"
                      "cluster_node = 4 10.0.0.4:7801 10.0.0.4:7701\n"
                      "cluster_node = 5 10.0.0.5:7801 10.0.0.5:7701\n"
                      "cluster_node = 6 10.0.0.6:7801 10.0.0.6:7701\n"
                      "cluster_node = 2 10.0.0.2:7801 10.0.0.2:7701\n", NULL), &c, err);
  TR_CHECK(rc == 0 && c.cluster_nodes_n == 7 && strcmp(c.listen, "[::1]:7701") == 0,
           "seven nodes, IPv6 and names, tabs and extra spaces (%s)", err);

  rc = load_text("listen = 127.0.0.1:7000\n", &c, err);
  TR_CHECK(rc == 0 && c.cluster_id == 0 && c.cluster_nodes_n == 0, "a file without cluster keys is a single node");
  TR_CHECK(c.lookup_two_levels_from == TR_LOOKUP_TWO_LEVELS_FROM, "lookup_two_levels_from defaults to %u",
           TR_LOOKUP_TWO_LEVELS_FROM);
  rc = load_text("lookup_two_levels_from = 0\n", &c, err);
  TR_CHECK(rc == 0 && c.lookup_two_levels_from == 0, "lookup_two_levels_from = 0: two levels from the start (%s)", err);
  TR_CHECK(load_text("lookup_two_levels_from = -1\n", &c, err) == TR_EINVALID &&
               load_text("lookup_two_levels_from = 4294967296\n", &c, err) == TR_EINVALID,
           "lookup_two_levels_from refuses a negative count and one past 2^31");
}

/* Loading `text` fails with TR_EINVALID and err names the problem. */
static void refuse(const char *what, const char *text, const char *message) {
  tr_config_t c;
  char err[ERR_BYTES];
  int rc = load_text(text, &c, err);
  TR_CHECK(rc == TR_EINVALID && strstr(err, message) != NULL, "refused: %s (rc %d, \"%s\")", what, rc, err);
}

static void test_config_refusals(void) {
  char line[256];
  snprintf(line, sizeof line, "cluster_genesis = %s %s %llu\n", CHAIN, admin_hex, GENESIS_MS);
  refuse("cluster_node without cluster_id", conf(NODES3, ""), "cluster_node and cluster_genesis need cluster_id");
  refuse("cluster_genesis without cluster_id", line, "cluster_node and cluster_genesis need cluster_id");
  refuse("two nodes", conf("cluster_id = 1\n"
                           "cluster_node = 1 127.0.0.1:7801 127.0.0.1:7701\n"
                           "cluster_node = 2 127.0.0.1:7802 127.0.0.1:7702\n", NULL), "a cluster has 3 to 7 nodes, not 2");
  refuse("eight nodes", conf("cluster_id = 1\n" NODES3
                             "cluster_node = 4 127.0.0.1:7804 127.0.0.1:7704\n"
                             "cluster_node = 5 127.0.0.1:7805 127.0.0.1:7705\n"
                             "cluster_node = 6 127.0.0.1:7806 127.0.0.1:7706\n"
                             "cluster_node = 7 127.0.0.1:7807 127.0.0.1:7707\n"
                             "cluster_node = 8 127.0.0.1:7808 127.0.0.1:7708\n", NULL),
         ":10: bad value for `cluster_node`: 8 127.0.0.1:7808 127.0.0.1:7708 (a cluster has at most 7 nodes)");
  refuse("a duplicate id", conf("cluster_id = 1\n" NODES3 "cluster_node = 2 127.0.0.1:7809 127.0.0.1:7709\n", NULL),
         "node id 2 is given twice");
  refuse("node id 0", conf("cluster_id = 1\n" NODES3 "cluster_node = 0 127.0.0.1:7809 127.0.0.1:7709\n", NULL),
         "(the id must be an integer from 1 to 9007199254740991)");
  refuse("cluster_id 0", conf("cluster_id = 0\n" NODES3, NULL), "bad value for `cluster_id`: 0");
  refuse("cluster_id not a number", conf("cluster_id = two\n" NODES3, NULL), "bad value for `cluster_id`: two");
  refuse("cluster_id twice", conf("cluster_id = 1\ncluster_id = 2\n" NODES3, NULL), "(cluster_id given twice)");
  refuse("cluster_id not among the nodes", conf("cluster_id = 4\n" NODES3, NULL),
         "cluster_id 4 is not the id of any cluster_node line");
  refuse("a raft address without a port",
         conf("cluster_id = 1\n" NODES3 "cluster_node = 4 127.0.0.1 127.0.0.1:7704\n", NULL),
         "(the raft address must be HOST:PORT with a port from 1 to 65535)");
  refuse("an rpc address with port 0", conf("cluster_id = 1\n" NODES3 "cluster_node = 4 127.0.0.1:7804 127.0.0.1:0\n", NULL),
         "(the rpc address must be HOST:PORT");
  refuse("a cluster_node with two fields", conf("cluster_id = 1\n" NODES3 "cluster_node = 4 127.0.0.1:7804\n", NULL),
         "(want ID RAFT_HOST:PORT RPC_HOST:PORT)");
  refuse("a cluster_node with four fields",
         conf("cluster_id = 1\n" NODES3 "cluster_node = 4 127.0.0.1:7804 127.0.0.1:7704 x\n", NULL),
         "(want ID RAFT_HOST:PORT RPC_HOST:PORT)");
  refuse("two nodes on one raft address",
         conf("cluster_id = 1\n" NODES3 "cluster_node = 4 127.0.0.1:7802 127.0.0.1:7704\n", NULL),
         "address 127.0.0.1:7802 is given twice (node 2 raft and node 4 raft)");
  refuse("a raft address that is another node's rpc address",
         conf("cluster_id = 1\n" NODES3 "cluster_node = 4 127.0.0.1:7703 127.0.0.1:7704\n", NULL),
         "address 127.0.0.1:7703 is given twice (node 3 rpc and node 4 raft)");
  refuse("one address spelt in two cases",
         conf("cluster_id = 1\n" NODES3 "cluster_node = 4 n4.example:7804 n4.example:7704\n"
              "cluster_node = 5 N4.EXAMPLE:7804 n5.example:7705\n", NULL),
         "address N4.EXAMPLE:7804 is given twice (node 4 raft and node 5 raft)");
  refuse("one node's raft and rpc on one address",
         conf("cluster_id = 1\n" NODES3 "cluster_node = 4 127.0.0.1:7804 127.0.0.1:7804\n", NULL),
         "node 4: its raft and rpc addresses are both 127.0.0.1:7804");
  refuse("no cluster_genesis", conf("cluster_id = 1\n" NODES3, ""), "no cluster_genesis");
  char twice[512];
  snprintf(twice, sizeof twice, "%s%s", line, line);
  refuse("cluster_genesis twice", conf("cluster_id = 1\n" NODES3, twice), "(cluster_genesis given twice)");
  snprintf(line, sizeof line, "cluster_genesis = Bad/Chain %s %llu\n", admin_hex, GENESIS_MS);
  refuse("a bad chain id", conf("cluster_id = 1\n" NODES3, line), "(the chain id must match");
  /* 01 00..00 encodes the neutral element: small order, not a valid key. */
  snprintf(line, sizeof line, "cluster_genesis = %s 01%062d %llu\n", CHAIN, 0, GENESIS_MS);
  refuse("an admin key that is not a valid point", conf("cluster_id = 1\n" NODES3, line),
         "(the admin key must be an Ed25519 public key: 64 lowercase hex)");
  snprintf(line, sizeof line, "cluster_genesis = %s %s %llu\n", CHAIN, admin_hex, GENESIS_MS);
  for (char *p = line + strlen("cluster_genesis = " CHAIN " "); *p != ' '; p++)
    if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
  refuse("an admin key in upper case", conf("cluster_id = 1\n" NODES3, line), "(the admin key must be");
  snprintf(line, sizeof line, "cluster_genesis = %s %s 0\n", CHAIN, admin_hex);
  refuse("genesis time 0", conf("cluster_id = 1\n" NODES3, line), "(the time must be milliseconds since the epoch");
  snprintf(line, sizeof line, "cluster_genesis = %s %s\n", CHAIN, admin_hex);
  refuse("cluster_genesis with two fields", conf("cluster_id = 1\n" NODES3, line), "(want CHAIN ADMIN_PUBKEY_HEX TIME_MS)");
  refuse("listen elsewhere than the rpc address", conf("listen = 127.0.0.1:7707\ncluster_id = 1\n" NODES3, NULL),
         "listen = 127.0.0.1:7707, but this node's rpc address (cluster_node 1) is 127.0.0.1:7701; they must be the same");
}

/* ---- cluster init and genesis re-creation ---- */

/* A three-node cluster description on loopback. */
static void cluster3(tr_config_t *c) {
  tr_config_defaults(c);
  c->cluster_nodes_n = 3;
  for (size_t i = 0; i < 3; i++) {
    c->cluster_nodes[i].id = i + 1;
    snprintf(c->cluster_nodes[i].raft, sizeof c->cluster_nodes[i].raft, "127.0.0.1:%zu", 7801 + i);
    snprintf(c->cluster_nodes[i].rpc, sizeof c->cluster_nodes[i].rpc, "127.0.0.1:%zu", 7701 + i);
  }
  snprintf(c->cluster_chain, sizeof c->cluster_chain, "%s", CHAIN);
  if (tr_hex_decode(admin_hex, 64, c->cluster_admin.b, 32) != 0) exit(2);
  c->cluster_genesis_ms = GENESIS_MS;
}

/* DIR's journal head: size, hash of the last entry and its time; 0 or an error. */
static int head_of(const char *dir, uint64_t *size, uint8_t hash[32], uint64_t *time) {
  char path[TR_PATH_MAX], err[ERR_BYTES];
  tr_store_t *s = NULL;
  snprintf(path, sizeof path, "%s/%s", dir, TR_DB_FILE);
  int rc = tr_store_open(path, TR_STORE_READONLY, &s, err, sizeof err);
  if (rc == 0) rc = tr_store_head(s, size, hash, time);
  tr_store_close(s);
  return rc;
}

/* What an operator removes to make a node fetch its journal again. */
static void wipe_journal(const char *dir) {
  static const char *const names[] = {TR_DB_FILE, TR_DB_FILE "-wal", TR_DB_FILE "-shm"};
  char path[TR_PATH_MAX];
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
}

static bool same_file(const char *a, const char *b) {
  char *ta = NULL, *tb = NULL;
  size_t la = 0, lb = 0;
  bool same = tr_file_read(a, 4096, &ta, &la) == 0 && tr_file_read(b, 4096, &tb, &lb) == 0 && la == lb &&
              memcmp(ta, tb, la) == 0;
  free(ta);
  free(tb);
  return same;
}

static void test_cluster_init(void) {
  tr_config_t c, loaded;
  char err[ERR_BYTES] = "", path[TR_PATH_MAX], key0[TR_PATH_MAX];
  uint8_t seed[32], hash0[32] = {0}, hash[32];
  const char *dirs[3] = {path_in("n1"), path_in("n2"), path_in("n3")};
  randombytes_buf(seed, sizeof seed);
  cluster3(&c);
  int rc = tr_node_cluster_init(&c, dirs, seed, err, sizeof err);
  TR_CHECK(rc == 0, "cluster init of three nodes (%s)", err);
  snprintf(key0, sizeof key0, "%s/%s", dirs[0], TR_NODE_KEY_FILE);
  for (size_t i = 0; i < 3; i++) {
    struct stat st;
    uint64_t size = 0, time = 0;
    TR_CHECK(stat(dirs[i], &st) == 0 && (st.st_mode & 0777) == 0700, "node %zu: its DIR is mode 0700", i + 1);
    snprintf(path, sizeof path, "%s/%s", dirs[i], TR_NODE_KEY_FILE);
    TR_CHECK(same_file(path, key0), "node %zu: the cluster's one node key", i + 1);
    snprintf(path, sizeof path, "%s/%s", dirs[i], TR_CONFIG_FILE);
    tr_config_defaults(&loaded);
    rc = tr_config_load(path, 0, &loaded, err, sizeof err);
    TR_CHECK(rc == 0 && loaded.cluster_id == i + 1 && loaded.cluster_nodes_n == 3 &&
                 strcmp(loaded.listen, c.cluster_nodes[i].rpc) == 0 &&
                 memcmp(loaded.cluster_nodes, c.cluster_nodes, sizeof c.cluster_nodes) == 0 &&
                 strcmp(loaded.cluster_chain, CHAIN) == 0 && loaded.cluster_genesis_ms == GENESIS_MS &&
                 memcmp(loaded.cluster_admin.b, c.cluster_admin.b, 32) == 0,
             "node %zu: its config loads back: its id, listen = its rpc address, the nodes and genesis (%s)", i + 1,
             err);
    rc = head_of(dirs[i], &size, hash, &time);
    TR_CHECK(rc == 0 && size == 1 && time == GENESIS_MS, "node %zu: the journal is the genesis entry at the genesis time",
             i + 1);
    if (i == 0) memcpy(hash0, hash, 32);
    else TR_CHECK(memcmp(hash, hash0, 32) == 0, "node %zu: its genesis entry hash is node 1's", i + 1);
  }
  TR_CHECK_EQ_INT(base_entries(), 3, "nothing but the three DIRs beside them");

  /* Re-creating a wiped journal gives the same entry again. */
  tr_config_t n2;
  uint8_t sk[64];
  tr_key_t pk;
  tr_config_defaults(&n2);
  snprintf(path, sizeof path, "%s/%s", dirs[1], TR_CONFIG_FILE);
  rc = tr_config_load(path, 0, &n2, err, sizeof err);
  snprintf(path, sizeof path, "%s/%s", dirs[1], TR_NODE_KEY_FILE);
  if (rc == 0) rc = tr_key_file_read(path, 1, sk, &pk, err, sizeof err);
  TR_CHECK(rc == 0, "node 2's config and key load (%s)", err);
  rc = tr_node_genesis_recreate(dirs[1], &n2, sk, err, sizeof err);
  TR_CHECK(rc == TR_EEXISTS && strstr(err, "tranche.db exists") != NULL, "recreate refuses while tranche.db exists (%s)",
           err);
  wipe_journal(dirs[1]);
  snprintf(path, sizeof path, "%s/%s-wal", dirs[1], TR_DB_FILE);
  write_text(path, "stale");
  rc = tr_node_genesis_recreate(dirs[1], &n2, sk, err, sizeof err);
  TR_CHECK(rc == TR_EEXISTS && strstr(err, "tranche.db-wal exists") != NULL, "recreate refuses beside a stale WAL (%s)",
           err);
  unlink(path);
  snprintf(path, sizeof path, "%s/%s.genesis", dirs[1], TR_DB_FILE);
  write_text(path, "left by a killed re-creation");
  err[0] = '\0';
  rc = tr_node_genesis_recreate(dirs[1], &n2, sk, err, sizeof err);
  uint64_t size = 0, time = 0;
  TR_CHECK(rc == 0, "recreate on a wiped journal (%s)", err);
  TR_CHECK(head_of(dirs[1], &size, hash, &time) == 0 && size == 1 && time == GENESIS_MS && memcmp(hash, hash0, 32) == 0,
           "the re-created genesis entry is the cluster's, byte for byte");
  TR_CHECK(access(path, F_OK) != 0, "no temporary database is left beside it");
  tr_config_t single;
  tr_config_defaults(&single);
  wipe_journal(dirs[1]);
  snprintf(path, sizeof path, "%s/%s", dirs[1], TR_DB_FILE);
  rc = tr_node_genesis_recreate(dirs[1], &single, sk, err, sizeof err);
  TR_CHECK(rc == TR_EARG && access(path, F_OK) != 0, "recreate refuses a config without the cluster keys (%s)", err);
  sodium_memzero(sk, sizeof sk);
  for (size_t i = 0; i < 3; i++) rm_tree(dirs[i]);
}

static void test_cluster_init_refusals(void) {
  tr_config_t c;
  char err[ERR_BYTES] = "";
  uint8_t seed[32];
  const char *dirs[4] = {path_in("m1"), path_in("m2"), path_in("m3"), path_in("m4")};
  randombytes_buf(seed, sizeof seed);

  cluster3(&c);
  c.cluster_nodes_n = 2;
  int rc = tr_node_cluster_init(&c, dirs, seed, err, sizeof err);
  TR_CHECK(rc == TR_EINVALID && strstr(err, "3 to 7 nodes") && base_entries() == 0,
           "two nodes: refused, nothing made (%s)", err);
  cluster3(&c);
  c.cluster_nodes[2].id = 1;
  rc = tr_node_cluster_init(&c, dirs, seed, err, sizeof err);
  TR_CHECK(rc == TR_EINVALID && strstr(err, "node id 1 is given twice") && base_entries() == 0,
           "a duplicate id: refused, nothing made (%s)", err);
  cluster3(&c);
  c.cluster_genesis_ms = 0;
  rc = tr_node_cluster_init(&c, dirs, seed, err, sizeof err);
  TR_CHECK(rc == TR_EINVALID && base_entries() == 0, "no genesis time: refused, nothing made (%s)", err);

  cluster3(&c);
  if (mkdir(dirs[2], 0700) != 0) exit(2);
  rc = tr_node_cluster_init(&c, dirs, seed, err, sizeof err);
  TR_CHECK(rc == TR_EEXISTS && strstr(err, "already exists") && base_entries() == 1,
           "an existing DIR: refused, nothing made beside it (%s)", err);
  rmdir(dirs[2]);

  /* Two nodes into one DIR pass the checks and fail at the second rename:
   * the DIR already placed and every temporary one are removed. */
  const char *same[3] = {dirs[0], dirs[1], dirs[0]};
  rc = tr_node_cluster_init(&c, same, seed, err, sizeof err);
  TR_CHECK(rc == TR_EEXISTS && base_entries() == 0, "a failure after the first DIR was placed leaves nothing (%s)", err);

  const char *deep[3] = {dirs[0], dirs[1], path_in("no-such-parent/m3")};
  rc = tr_node_cluster_init(&c, deep, seed, err, sizeof err);
  TR_CHECK(rc != 0 && base_entries() == 0, "a DIR whose parent is missing: refused, nothing made (%s)", err);
}

static void test_single_init(void) {
  tr_config_t c;
  tr_key_t admin;
  char err[ERR_BYTES] = "", path[TR_PATH_MAX];
  const char *dir = path_in("single");
  if (tr_hex_decode(admin_hex, 64, admin.b, 32) != 0) exit(2);
  int rc = tr_node_init(dir, CHAIN, &admin, err, sizeof err);
  snprintf(path, sizeof path, "%s/%s", dir, TR_CONFIG_FILE);
  tr_config_defaults(&c);
  if (rc == 0) rc = tr_config_load(path, 0, &c, err, sizeof err);
  TR_CHECK(rc == 0 && c.cluster_id == 0 && strcmp(c.listen, TR_DEFAULT_LISTEN) == 0,
           "init's config loads as a single node on the default address (%s)", err);
  rm_tree(dir);
}

int main(void) {
  if (sodium_init() < 0) return 2;
  const char *tmpdir = getenv("TMPDIR");
  snprintf(base, sizeof base, "%s/tr-node-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (mkdtemp(base) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  uint8_t sk[64];
  tr_key_t admin;
  crypto_sign_keypair(admin.b, sk);
  tr_hex_encode(admin.b, 32, admin_hex);
  test_config_good();
  test_config_refusals();
  test_cluster_init();
  test_cluster_init_refusals();
  test_single_init();
  rm_tree(base);
  return tr_test_done();
}
