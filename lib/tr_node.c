/* tr_node.c — data directory, key files, config, init. */
#include "tr_node.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tr_err.h"
#include "tr_hex.h"
#include "tr_ledger.h"
#include "tr_store.h"

uint64_t tr_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int tr_path_join(char *out, size_t outlen, const char *dir, const char *name) {
  int n = snprintf(out, outlen, "%s/%s", dir, name);
  return (n < 0 || (size_t)n >= outlen) ? TR_ELIMIT : 0;
}

static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return TR_EIO;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int fsync_dir_of(const char *path) {
  char copy[TR_PATH_MAX];
  snprintf(copy, sizeof copy, "%s", path);
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return TR_EIO;
  int rc = fsync(fd) == 0 ? 0 : TR_EIO;
  close(fd);
  return rc;
}

int tr_key_file_write(const char *path, const uint8_t seed[32]) {
  char line[66];
  tr_hex_encode_secret(seed, 32, line);
  line[64] = '\n';
  line[65] = '\0';
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno == EEXIST ? TR_EEXISTS : TR_EIO;
  int rc = write_all(fd, line, 65);
  if (rc == 0 && fsync(fd) != 0) rc = TR_EIO;
  close(fd);
  sodium_memzero(line, sizeof line);
  if (rc == 0) rc = fsync_dir_of(path);
  return rc;
}

int tr_key_file_read(const char *path, int refuse_lax_mode, uint8_t sk[64], tr_key_t *pk, char *err,
                     size_t errlen) {
  /* O_NONBLOCK: a FIFO (or a device) named as a key file must not block the
   * open forever; anything but a regular file is refused below. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
    return TR_EIO;
  }
  struct stat st;
  char buf[80];
  ssize_t n = -1;
  if (fstat(fd, &st) != 0) {
    snprintf(err, errlen, "cannot stat key file %s: %s", path, strerror(errno));
    close(fd);
    return TR_EIO;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "key file %s is not a regular file", path);
    close(fd);
    return TR_EARG;
  }
  n = read(fd, buf, sizeof buf);
  close(fd);
  if (refuse_lax_mode && (st.st_mode & 077)) {
    snprintf(err, errlen, "key file %s is readable by others (mode %03o); chmod 600 it", path,
             (unsigned)(st.st_mode & 0777));
    return TR_EARG;
  }
  uint8_t seed[32];
  int rc = (n == 65 && buf[64] == '\n') ? tr_hex_decode_secret(buf, 64, seed, 32) : TR_EINVALID;
  sodium_memzero(buf, sizeof buf);
  if (rc != 0) {
    snprintf(err, errlen, "key file %s must hold 64 lowercase hex characters and a newline", path);
    return TR_EINVALID;
  }
  crypto_sign_seed_keypair(pk->b, sk, seed);
  sodium_memzero(seed, sizeof seed);
  return 0;
}

/* The commented defaults, split around the value of `listen`, which a
 * cluster node sets to its own rpc address. */
static const char DEFAULT_CONFIG_HEAD[] =
    "# tranche node configuration.  Every key can also be given to tranched as\n"
    "# a flag of the same name (--listen, --workers, --log-level); flags win.\n"
    "\n"
    "# Address of the JSON-RPC port.  Every client that reaches it can read every\n"
    "# account and holding: keep it on loopback or a private network.\n"
    "listen = ";
static const char DEFAULT_CONFIG_TAIL[] =
    "\n"
    "\n"
    "# Signature-verification threads; 0 = one per core.\n"
    "workers = 0\n"
    "\n"
    "# error, warn, info or debug.\n"
    "log_level = info\n"
    "\n"
    "# Seconds the system clock may run ahead of the time elapsed since the last\n"
    "# entry before a reading is refused (entry times never jump into the future).\n"
    "clock_skew_max = 60\n"
    "\n"
    "# Connections in all (at most 1024) and from one address.  When all are\n"
    "# taken, a newcomer evicts the idle connection that made least progress.\n"
    "connections_max = 1024\n"
    "connections_per_peer = 256\n"
    "\n"
    "# Seconds a request may take to arrive from its first byte (slow senders).\n"
    "request_deadline = 30\n";
static const char CLUSTER_CONFIG_HEAD[] =
    "\n"
    "# This node's place in its cluster (PROTOCOL.md section 8), written by\n"
    "# `tranchectl cluster init`.  Every node's file names the same nodes and\n"
    "# genesis; only cluster_id and listen (= its own rpc address) differ.\n";
static const char CLUSTER_CONFIG_JOIN[] =
    "\n"
    "# Made by `tranchectl cluster join`: this node joins a running cluster.\n"
    "# It never bootstraps raft; it waits for the leader's `cluster add`.\n"
    "cluster_join = true\n";
static const char CLUSTER_CONFIG_NODES[] =
    "\n"
    "# cluster_node = ID RAFT_HOST:PORT RPC_HOST:PORT, one line per node.\n";
static const char CLUSTER_CONFIG_GENESIS[] =
    "\n"
    "# The genesis entry's inputs (chain, admin public key, time in ms): a node\n"
    "# whose journal was lost re-creates the identical entry 1 from them.\n";

#define CONFIG_TEXT_BYTES_MAX 8192   /* the defaults (~1 KiB) and 7 cluster_node lines (< 300 B each) */

/* Appends printf text at *n; false when it does not fit. */
__attribute__((format(printf, 4, 5))) static bool text_add(char *out, size_t cap, size_t *n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(out + *n, cap - *n, fmt, ap);
  va_end(ap);
  if (k < 0 || (size_t)k >= cap - *n) return false;
  *n += (size_t)k;
  return true;
}

/* The config a new node starts with: the defaults with `listen`, and for a
 * cluster node (cluster != NULL) its id, every node and the genesis inputs. */
static int config_text(char *out, size_t cap, const char *listen, const tr_config_t *cluster, uint64_t id,
                       size_t *len) {
  size_t n = 0;
  char admin[65];
  bool ok = text_add(out, cap, &n, "%s%s%s", DEFAULT_CONFIG_HEAD, listen, DEFAULT_CONFIG_TAIL);
  if (ok && cluster != NULL) {
    ok = text_add(out, cap, &n, "%scluster_id = %llu\n%s", CLUSTER_CONFIG_HEAD, (unsigned long long)id,
                  cluster->cluster_join ? CLUSTER_CONFIG_JOIN : "");
    if (ok) ok = text_add(out, cap, &n, "%s", CLUSTER_CONFIG_NODES);
    for (size_t i = 0; ok && i < cluster->cluster_nodes_n; i++) {
      const tr_cluster_node_t *node = &cluster->cluster_nodes[i];
      ok = text_add(out, cap, &n, "cluster_node = %llu %s %s\n", (unsigned long long)node->id, node->raft, node->rpc);
    }
    if (ok)
      ok = text_add(out, cap, &n, "%scluster_genesis = %s %s %llu\n", CLUSTER_CONFIG_GENESIS, cluster->cluster_chain,
                    tr_hex_encode(cluster->cluster_admin.b, 32, admin), (unsigned long long)cluster->cluster_genesis_ms);
  }
  *len = n;
  return ok ? 0 : TR_ELIMIT;
}

/* Creates the database `path` holding only the genesis entry.  One chain,
 * node key, admin and time give the same entry bytes every time (Ed25519
 * signatures are deterministic): what makes every cluster node's entry 1
 * identical. */
static int genesis_write(const char *path, const char *chain, const uint8_t node_sk[64], const tr_key_t *admin,
                         uint64_t genesis_ms, char *err, size_t errlen) {
  tr_store_t *s = NULL;
  int rc = tr_store_open(path, TR_STORE_CREATE, &s, err, errlen);
  if (rc == 0) {
    rc = tr_ledger_genesis(s, chain, node_sk, admin, genesis_ms);
    if (rc != 0) snprintf(err, errlen, "cannot write genesis: %s", tr_strerror(rc));
  }
  tr_store_close(s); /* checkpoints and removes the WAL: the database file is self-contained */
  return rc;
}

/* Fills a fresh directory `dir`: node key from seed, config text, genesis. */
static int node_fill(const char *dir, const uint8_t seed[32], const char *config, size_t config_len, const char *chain,
                     const tr_key_t *admin, uint64_t genesis_ms, char *err, size_t errlen) {
  char path[TR_PATH_MAX];
  uint8_t sk[64];
  tr_key_t node;
  crypto_sign_seed_keypair(node.b, sk, seed);
  int rc = tr_path_join(path, sizeof path, dir, TR_NODE_KEY_FILE);
  if (rc == 0) rc = tr_key_file_write(path, seed);
  if (rc != 0) snprintf(err, errlen, "cannot write node key %s", path);
  if (rc == 0 && (rc = tr_path_join(path, sizeof path, dir, TR_CONFIG_FILE)) == 0 &&
      (rc = tr_file_replace(path, config, config_len)) != 0)
    snprintf(err, errlen, "cannot write config %s", path);
  if (rc == 0 && (rc = tr_path_join(path, sizeof path, dir, TR_DB_FILE)) == 0)
    rc = genesis_write(path, chain, sk, admin, genesis_ms, err, errlen);
  sodium_memzero(sk, sizeof sk);
  return rc;
}

/* Removes what node_fill may have left in a directory it built, then the directory. */
static void node_discard(const char *dir) {
  static const char *const names[] = {TR_NODE_KEY_FILE, TR_CONFIG_FILE, TR_CONFIG_FILE ".tmp", TR_DB_FILE,
                                      TR_DB_FILE "-wal", TR_DB_FILE "-shm", TR_DB_FILE "-journal"};
  char path[TR_PATH_MAX];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (tr_path_join(path, sizeof path, dir, names[i]) == 0) unlink(path);
  rmdir(dir);
}

/* A node is always reached by an absolute path (systemd, tranched's
 * --datadir), so the absolute path is the one that must fit sun_path.
 * Refusing here beats binding relative to the directory: tranchectl and
 * any other client connect by the full path too. */
int tr_node_socket_path_check(const char *datadir, char *err, size_t errlen) {
  char a[TR_PATH_MAX], b[TR_PATH_MAX], parent[PATH_MAX], full[PATH_MAX + TR_PATH_MAX + 32];
  struct sockaddr_un sa;
  snprintf(a, sizeof a, "%s", datadir);
  snprintf(b, sizeof b, "%s", datadir);
  if (realpath(dirname(a), parent) == NULL) {
    snprintf(err, errlen, "cannot resolve the directory of %s: %s", datadir, strerror(errno));
    return TR_EIO;
  }
  int n = snprintf(full, sizeof full, "%s/%s/%s", strcmp(parent, "/") == 0 ? "" : parent, basename(b),
                   TR_CONTROL_SOCKET);
  if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
    snprintf(err, errlen, "data directory path %s is too long: its control socket %s would be %d bytes, and a Unix "
             "socket path holds at most %zu; choose a shorter path", datadir, full, n, sizeof sa.sun_path - 1);
    return TR_ELIMIT;
  }
  return 0;
}

/* Checks that DIR may become a node: it does not exist and its control
 * socket path fits. */
static int node_dir_free(const char *datadir, char *err, size_t errlen) {
  struct stat st;
  if (lstat(datadir, &st) == 0) {
    snprintf(err, errlen, "cannot create data directory %s: it already exists (init never overwrites a node)",
             datadir);
    return TR_EEXISTS;
  }
  return tr_node_socket_path_check(datadir, err, errlen);
}

/* A node is built in a private sibling directory DIR.init-XXXXXX (tmp) and
 * renamed into place at the end, so that DIR either does not exist or is a
 * complete node: an init killed half-way leaves only the sibling. */
static int node_build(const char *datadir, char tmp[TR_PATH_MAX], const uint8_t seed[32], const char *config,
                      size_t config_len, const char *chain, const tr_key_t *admin, uint64_t genesis_ms, char *err,
                      size_t errlen) {
  if (snprintf(tmp, TR_PATH_MAX, "%s.init-XXXXXX", datadir) >= TR_PATH_MAX) {
    snprintf(err, errlen, "data directory path %s is too long", datadir);
    return TR_ELIMIT;
  }
  if (mkdtemp(tmp) == NULL) { /* mode 0700 */
    snprintf(err, errlen, "cannot create a directory beside %s: %s", datadir, strerror(errno));
    tmp[0] = '\0';
    return TR_EIO;
  }
  int rc = node_fill(tmp, seed, config, config_len, chain, admin, genesis_ms, err, errlen);
  if (rc != 0) {
    node_discard(tmp);
    tmp[0] = '\0';
  }
  return rc;
}

/* Renames a built node into place. */
static int node_place(const char *tmp, const char *datadir, char *err, size_t errlen) {
  if (rename(tmp, datadir) != 0) {
    int e = errno;
    snprintf(err, errlen, "cannot move the new node into %s: %s", datadir, strerror(e));
    return e == EEXIST || e == ENOTEMPTY ? TR_EEXISTS : TR_EIO;
  }
  return 0;
}

int tr_node_init(const char *datadir, const char *chain, const tr_key_t *admin, char *err, size_t errlen) {
  char tmp[TR_PATH_MAX], config[CONFIG_TEXT_BYTES_MAX];
  uint8_t seed[32];
  size_t config_len = 0;
  int rc = node_dir_free(datadir, err, errlen);
  if (rc == 0 && (rc = config_text(config, sizeof config, TR_DEFAULT_LISTEN, NULL, 0, &config_len)) != 0)
    snprintf(err, errlen, "the config text does not fit %d bytes", CONFIG_TEXT_BYTES_MAX);
  if (rc != 0) return rc;
  randombytes_buf(seed, sizeof seed);
  rc = node_build(datadir, tmp, seed, config, config_len, chain, admin, tr_now_ms(), err, errlen);
  sodium_memzero(seed, sizeof seed);
  if (rc == 0 && (rc = node_place(tmp, datadir, err, errlen)) != 0) node_discard(tmp);
  return rc != 0 ? rc : fsync_dir_of(datadir);
}

/* Every node is built beside its DIR before any is renamed into place, so a
 * failure while building (disk full, a bad path) leaves no DIR at all; a
 * failed rename takes back the DIRs already placed. */
int tr_node_cluster_init(const tr_config_t *cluster, const char *const dirs[], const uint8_t node_seed[32],
                         char *err, size_t errlen) {
  char tmp[TR_CLUSTER_NODES_MAX][TR_PATH_MAX], config[CONFIG_TEXT_BYTES_MAX];
  size_t n = cluster->cluster_nodes_n, built = 0, placed = 0;
  int rc = tr_cluster_check(cluster, err, errlen);
  for (size_t i = 0; rc == 0 && i < n; i++) rc = node_dir_free(dirs[i], err, errlen);
  while (rc == 0 && built < n) {
    const tr_cluster_node_t *node = &cluster->cluster_nodes[built];
    size_t config_len = 0;
    rc = config_text(config, sizeof config, node->rpc, cluster, node->id, &config_len);
    if (rc != 0)
      snprintf(err, errlen, "the config text of node %llu does not fit %d bytes", (unsigned long long)node->id,
               CONFIG_TEXT_BYTES_MAX);
    else if ((rc = node_build(dirs[built], tmp[built], node_seed, config, config_len, cluster->cluster_chain,
                              &cluster->cluster_admin, cluster->cluster_genesis_ms, err, errlen)) == 0)
      built++; /* a failed node_build removed its own directory */
  }
  while (rc == 0 && placed < n)
    if ((rc = node_place(tmp[placed], dirs[placed], err, errlen)) == 0) placed++;
  for (size_t i = 0; rc == 0 && i < n; i++)
    if ((rc = fsync_dir_of(dirs[i])) != 0) snprintf(err, errlen, "cannot fsync the directory of %s", dirs[i]);
  if (rc != 0) {
    for (size_t i = 0; i < placed; i++) node_discard(dirs[i]);
    for (size_t i = placed; i < built; i++) node_discard(tmp[i]);
  }
  return rc;
}

int tr_node_cluster_join(const char *from, const tr_cluster_node_t *node, const char *datadir, char *err,
                         size_t errlen) {
  char path[TR_PATH_MAX], tmp[TR_PATH_MAX], config[CONFIG_TEXT_BYTES_MAX];
  uint8_t sk[64];
  tr_key_t pk;
  tr_config_t c;
  size_t config_len = 0;
  tr_config_defaults(&c);
  int rc = tr_path_join(path, sizeof path, from, TR_CONFIG_FILE);
  if (rc == 0) rc = tr_config_load(path, 0, &c, err, errlen);
  if (rc == 0 && c.cluster_id == 0) {
    snprintf(err, errlen, "%s is not a cluster node (its config has no cluster_id)", from);
    rc = TR_EARG;
  }
  if (rc == 0 && c.cluster_nodes_n == TR_CLUSTER_NODES_MAX) {
    snprintf(err, errlen, "the cluster of %s has %d nodes already, the most there may be", from, TR_CLUSTER_NODES_MAX);
    rc = TR_ELIMIT;
  }
  if (rc != 0) return rc;
  c.cluster_nodes[c.cluster_nodes_n++] = *node; /* tr_cluster_check refuses an id or address in use */
  c.cluster_join = true;
  c.cluster_id = node->id;
  rc = tr_cluster_check(&c, err, errlen);
  if (rc == 0) rc = node_dir_free(datadir, err, errlen);
  if (rc == 0 && (rc = config_text(config, sizeof config, node->rpc, &c, node->id, &config_len)) != 0)
    snprintf(err, errlen, "the config text does not fit %d bytes", CONFIG_TEXT_BYTES_MAX);
  if (rc == 0 && (rc = tr_path_join(path, sizeof path, from, TR_NODE_KEY_FILE)) == 0)
    rc = tr_key_file_read(path, 1, sk, &pk, err, errlen);
  if (rc != 0) return rc;
  rc = node_build(datadir, tmp, sk /* the seed: libsodium's sk starts with it */, config, config_len, c.cluster_chain,
                  &c.cluster_admin, c.cluster_genesis_ms, err, errlen);
  sodium_memzero(sk, sizeof sk);
  if (rc == 0 && (rc = node_place(tmp, datadir, err, errlen)) != 0) node_discard(tmp);
  return rc != 0 ? rc : fsync_dir_of(datadir);
}

int tr_node_genesis_recreate(const char *datadir, const tr_config_t *c, const uint8_t node_sk[64], char *err,
                             size_t errlen) {
  static const char *const taken[] = {TR_DB_FILE, TR_DB_FILE "-wal", TR_DB_FILE "-shm", TR_DB_FILE "-journal"};
  static const char *const tmp_names[] = {TR_DB_FILE ".genesis", TR_DB_FILE ".genesis-wal",
                                          TR_DB_FILE ".genesis-shm", TR_DB_FILE ".genesis-journal"};
  char path[TR_PATH_MAX], tmp[TR_PATH_MAX], db[TR_PATH_MAX];
  struct stat st;
  if (c->cluster_id == 0 || c->cluster_genesis_ms == 0) {
    snprintf(err, errlen, "%s is not a cluster node: its config has no cluster_id and cluster_genesis", datadir);
    return TR_EARG;
  }
  for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
    if (tr_path_join(path, sizeof path, datadir, taken[i]) != 0) {
      snprintf(err, errlen, "data directory path %s is too long", datadir);
      return TR_ELIMIT;
    }
    if (lstat(path, &st) == 0) {
      snprintf(err, errlen, "cannot re-create the genesis entry: %s exists (only a wiped journal is re-created)", path);
      return TR_EEXISTS;
    }
  }
  /* Leftovers of a re-creation that was killed are ours to remove. */
  for (size_t i = 0; i < sizeof tmp_names / sizeof tmp_names[0]; i++)
    if (tr_path_join(path, sizeof path, datadir, tmp_names[i]) == 0) unlink(path);
  if (tr_path_join(tmp, sizeof tmp, datadir, tmp_names[0]) != 0 || tr_path_join(db, sizeof db, datadir, TR_DB_FILE) != 0) {
    snprintf(err, errlen, "data directory path %s is too long", datadir);
    return TR_ELIMIT;
  }
  int rc = genesis_write(tmp, c->cluster_chain, node_sk, &c->cluster_admin, c->cluster_genesis_ms, err, errlen);
  if (rc == 0 && rename(tmp, db) != 0) {
    snprintf(err, errlen, "cannot move %s to %s: %s", tmp, db, strerror(errno));
    rc = TR_EIO;
  }
  if (rc == 0 && fsync_dir_of(db) != 0) {
    snprintf(err, errlen, "cannot fsync %s: %s", datadir, strerror(errno));
    rc = TR_EIO;
  }
  if (rc != 0)
    for (size_t i = 0; i < sizeof tmp_names / sizeof tmp_names[0]; i++)
      if (tr_path_join(path, sizeof path, datadir, tmp_names[i]) == 0) unlink(path);
  return rc;
}

void tr_config_defaults(tr_config_t *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->listen, sizeof c->listen, "%s", TR_DEFAULT_LISTEN);
  snprintf(c->log_level, sizeof c->log_level, "info");
  c->clock_skew_max_s = TR_CLOCK_SKEW_MAX_S_DEFAULT;
  c->connections_max = TR_RPC_CONNECTIONS_MAX;
  c->connections_per_peer = TR_RPC_CONNECTIONS_PER_PEER_DEFAULT;
  c->request_deadline_s = TR_RPC_REQUEST_DEADLINE_S_DEFAULT;
  c->cluster_snapshot_every = TR_CLUSTER_SNAPSHOT_EVERY;
  c->lookup_two_levels_from = TR_LOOKUP_TWO_LEVELS_FROM;
  c->cluster_election_timeout_ms = TR_CLUSTER_ELECTION_TIMEOUT_MS;
}

/* A decimal in [lo, hi], digits only. */
static int parse_u64_in(const char *value, uint64_t lo, uint64_t hi, uint64_t *out) {
  char *end;
  if (*value < '0' || *value > '9') return TR_EINVALID;
  errno = 0;
  unsigned long long v = strtoull(value, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return TR_EINVALID;
  *out = v;
  return 0;
}

static int parse_uint_in(const char *value, unsigned long lo, unsigned long hi, unsigned *out) {
  uint64_t v;
  int rc = parse_u64_in(value, lo, hi, &v);
  if (rc == 0) *out = (unsigned)v;
  return rc;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = '\0';
  return s;
}

static int config_set(tr_config_t *c, const char *key, const char *value) {
  if (strcmp(key, "listen") == 0 || strcmp(key, "rpc") == 0) {
    char host[128];
    int port;
    if (tr_hostport_parse(value, host, sizeof host, &port) != 0) return TR_EINVALID;
    snprintf(strcmp(key, "listen") == 0 ? c->listen : c->rpc, sizeof c->listen, "%s", value);
    return 0;
  }
  if (strcmp(key, "workers") == 0) {
    char *end;
    unsigned long w = strtoul(value, &end, 10);
    if (*value == '\0' || *end != '\0' || w > TR_WORKERS_MAX) return TR_EINVALID;
    c->workers = (unsigned)w;
    return 0;
  }
  if (strcmp(key, "cluster_election_timeout") == 0)
    return parse_uint_in(value, 100, 60000, &c->cluster_election_timeout_ms);
  if (strcmp(key, "lookup_two_levels_from") == 0) {
    unsigned rows = 0;
    int rc = parse_uint_in(value, 0, 1u << 31, &rows);
    if (rc == 0) c->lookup_two_levels_from = rows;
    return rc;
  }
  if (strcmp(key, "cluster_snapshot_every") == 0)
    return parse_uint_in(value, 2, 1u << 30, &c->cluster_snapshot_every);
  if (strcmp(key, "clock_skew_max") == 0) {
    char *end;
    unsigned long v = strtoul(value, &end, 10);
    if (*value < '0' || *value > '9' || *end != '\0' || v < 1 || v > TR_CLOCK_SKEW_MAX_S_LIMIT) return TR_EINVALID;
    c->clock_skew_max_s = (unsigned)v;
    return 0;
  }
  if (strcmp(key, "connections_max") == 0) return parse_uint_in(value, 1, TR_RPC_CONNECTIONS_MAX, &c->connections_max);
  if (strcmp(key, "connections_per_peer") == 0)
    return parse_uint_in(value, 1, TR_RPC_CONNECTIONS_MAX, &c->connections_per_peer);
  if (strcmp(key, "request_deadline") == 0)
    return parse_uint_in(value, 1, TR_RPC_REQUEST_DEADLINE_S_LIMIT, &c->request_deadline_s);
  if (strcmp(key, "http_hosts") == 0) {
    /* names, IPv6 literals in brackets, commas: nothing that could end a header */
    if (strlen(value) >= sizeof c->http_hosts || strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                               "0123456789.-_:[]*, ") != strlen(value))
      return TR_EINVALID;
    snprintf(c->http_hosts, sizeof c->http_hosts, "%s", value);
    return 0;
  }
  if (strcmp(key, "http_cors") == 0) {
    /* echoed in Access-Control-Allow-Origin: one origin, no spaces or controls */
    size_t n = strlen(value);
    bool ok = n < sizeof c->http_cors && (strcmp(value, "*") == 0 || strncmp(value, "http://", 7) == 0 ||
                                          strncmp(value, "https://", 8) == 0);
    for (size_t i = 0; ok && i < n; i++) ok = value[i] > ' ' && value[i] < 0x7f;
    if (!ok) return TR_EINVALID;
    snprintf(c->http_cors, sizeof c->http_cors, "%s", value);
    return 0;
  }
  if (strcmp(key, "log_level") == 0) {
    static const char *levels[] = {"error", "warn", "info", "debug"};
    for (size_t i = 0; i < 4; i++)
      if (strcmp(value, levels[i]) == 0) {
        snprintf(c->log_level, sizeof c->log_level, "%s", value);
        return 0;
      }
    return TR_EINVALID;
  }
  return TR_ENOT_FOUND;
}

/* ---- cluster keys ---- */

#define CLUSTER_FIELDS_MAX 3   /* the most space-separated fields a cluster key's value has */
#define CLUSTER_ADDR_BYTES sizeof ((tr_cluster_node_t *)0)->raft /* HOST:PORT and its NUL */

/* Splits value (a copy in buf) at spaces and tabs into exactly want fields. */
static int fields_split(const char *value, char *buf, size_t buflen, char *field[CLUSTER_FIELDS_MAX], size_t want) {
  size_t n = 0;
  char *save = NULL;
  if (strlen(value) >= buflen) return TR_EINVALID;
  snprintf(buf, buflen, "%s", value);
  for (char *t = strtok_r(buf, " \t", &save); t != NULL; t = strtok_r(NULL, " \t", &save)) {
    if (n == want) return TR_EINVALID;
    field[n++] = t;
  }
  return n == want ? 0 : TR_EINVALID;
}

/* HOST:PORT with a port a peer can connect to (not 0). */
static bool cluster_addr_valid(const char *addr) {
  char host[128];
  int port;
  return strlen(addr) < CLUSTER_ADDR_BYTES && tr_hostport_parse(addr, host, sizeof host, &port) == 0 &&
         port > 0;
}

/* True when a and b (both valid) name the same host and port (host names
 * compare without case, as DNS does). */
static bool same_endpoint(const char *a, const char *b) {
  char ha[128], hb[128];
  int pa, pb;
  return tr_hostport_parse(a, ha, sizeof ha, &pa) == 0 && tr_hostport_parse(b, hb, sizeof hb, &pb) == 0 && pa == pb &&
         strcasecmp(ha, hb) == 0;
}

static int cluster_node_parse(const char *value, tr_cluster_node_t *node, char *why, size_t whylen) {
  char buf[512], *f[CLUSTER_FIELDS_MAX];
  if (fields_split(value, buf, sizeof buf, f, 3) != 0) {
    snprintf(why, whylen, "want ID RAFT_HOST:PORT RPC_HOST:PORT");
    return TR_EINVALID;
  }
  if (parse_u64_in(f[0], 1, TR_INT_MAX, &node->id) != 0) {
    snprintf(why, whylen, "the id must be an integer from 1 to %llu", (unsigned long long)TR_INT_MAX);
    return TR_EINVALID;
  }
  for (int k = 1; k <= 2; k++)
    if (!cluster_addr_valid(f[k])) {
      snprintf(why, whylen, "the %s address must be HOST:PORT with a port from 1 to 65535", k == 1 ? "raft" : "rpc");
      return TR_EINVALID;
    }
  snprintf(node->raft, sizeof node->raft, "%s", f[1]);
  snprintf(node->rpc, sizeof node->rpc, "%s", f[2]);
  return 0;
}

static int cluster_genesis_parse(const char *value, tr_config_t *c, char *why, size_t whylen) {
  char buf[512], *f[CLUSTER_FIELDS_MAX];
  tr_key_t admin;
  uint64_t ms;
  if (fields_split(value, buf, sizeof buf, f, 3) != 0) {
    snprintf(why, whylen, "want CHAIN ADMIN_PUBKEY_HEX TIME_MS");
    return TR_EINVALID;
  }
  if (!tr_chain_id_valid(f[0], strlen(f[0]))) {
    snprintf(why, whylen, "the chain id must match ^[a-z0-9][a-z0-9./-]{0,63}$");
    return TR_EINVALID;
  }
  if (tr_hex_decode(f[1], strlen(f[1]), admin.b, sizeof admin.b) != 0 || !crypto_core_ed25519_is_valid_point(admin.b)) {
    snprintf(why, whylen, "the admin key must be an Ed25519 public key: 64 lowercase hex");
    return TR_EINVALID;
  }
  if (parse_u64_in(f[2], 1, TR_INT_MAX, &ms) != 0) {
    snprintf(why, whylen, "the time must be milliseconds since the epoch, from 1 to %llu", (unsigned long long)TR_INT_MAX);
    return TR_EINVALID;
  }
  snprintf(c->cluster_chain, sizeof c->cluster_chain, "%s", f[0]);
  c->cluster_admin = admin;
  c->cluster_genesis_ms = ms;
  return 0;
}

/* The cluster keys; TR_ENOT_FOUND for any other key.  A repeated cluster_id
 * or cluster_genesis is refused: which of two node ids or genesis times was
 * meant is not a guess to make. */
static int cluster_set(tr_config_t *c, const char *key, const char *value, char *why, size_t whylen) {
  if (strcmp(key, "cluster_id") == 0) {
    if (c->cluster_id != 0) {
      snprintf(why, whylen, "cluster_id given twice");
      return TR_EINVALID;
    }
    if (parse_u64_in(value, 1, TR_INT_MAX, &c->cluster_id) == 0) return 0;
    snprintf(why, whylen, "the id must be an integer from 1 to %llu", (unsigned long long)TR_INT_MAX);
    return TR_EINVALID;
  }
  if (strcmp(key, "cluster_node") == 0) {
    if (c->cluster_nodes_n == TR_CLUSTER_NODES_MAX) {
      snprintf(why, whylen, "a cluster has at most %d nodes", TR_CLUSTER_NODES_MAX);
      return TR_EINVALID;
    }
    int rc = cluster_node_parse(value, &c->cluster_nodes[c->cluster_nodes_n], why, whylen);
    if (rc == 0) c->cluster_nodes_n++;
    return rc;
  }
  if (strcmp(key, "cluster_join") == 0) {
    if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
      c->cluster_join = strcmp(value, "true") == 0;
      return 0;
    }
    snprintf(why, whylen, "cluster_join is true or false");
    return TR_EINVALID;
  }
  if (strcmp(key, "cluster_genesis") == 0) {
    if (c->cluster_genesis_ms != 0) {
      snprintf(why, whylen, "cluster_genesis given twice");
      return TR_EINVALID;
    }
    return cluster_genesis_parse(value, c, why, whylen);
  }
  return TR_ENOT_FOUND;
}

int tr_cluster_check(const tr_config_t *c, char *err, size_t errlen) {
  size_t n = c->cluster_nodes_n;
  if (n < TR_CLUSTER_NODES_MIN || n > TR_CLUSTER_NODES_MAX) {
    snprintf(err, errlen, "a cluster has %d to %d nodes, not %zu", TR_CLUSTER_NODES_MIN, TR_CLUSTER_NODES_MAX, n);
    return TR_EINVALID;
  }
  for (size_t i = 0; i < n; i++) {
    const tr_cluster_node_t *a = &c->cluster_nodes[i];
    if (a->id < 1 || a->id > TR_INT_MAX) {
      snprintf(err, errlen, "node id %llu: ids are integers from 1 to %llu", (unsigned long long)a->id,
               (unsigned long long)TR_INT_MAX);
      return TR_EINVALID;
    }
    if (!cluster_addr_valid(a->raft) || !cluster_addr_valid(a->rpc)) {
      snprintf(err, errlen, "node %llu: bad %s address %s (want HOST:PORT, port 1-65535)", (unsigned long long)a->id,
               cluster_addr_valid(a->raft) ? "rpc" : "raft", cluster_addr_valid(a->raft) ? a->rpc : a->raft);
      return TR_EINVALID;
    }
    if (same_endpoint(a->raft, a->rpc)) {
      snprintf(err, errlen, "node %llu: its raft and rpc addresses are both %s", (unsigned long long)a->id, a->rpc);
      return TR_EINVALID;
    }
    for (size_t j = 0; j < i; j++) {
      const tr_cluster_node_t *b = &c->cluster_nodes[j];
      const char *const mine[2] = {a->raft, a->rpc}, *const theirs[2] = {b->raft, b->rpc};
      if (a->id == b->id) {
        snprintf(err, errlen, "node id %llu is given twice", (unsigned long long)a->id);
        return TR_EINVALID;
      }
      for (int k = 0; k < 4; k++) /* no listener may share a HOST:PORT with another */
        if (same_endpoint(mine[k / 2], theirs[k % 2])) {
          snprintf(err, errlen, "address %s is given twice (node %llu %s and node %llu %s)", mine[k / 2],
                   (unsigned long long)b->id, k % 2 ? "rpc" : "raft", (unsigned long long)a->id, k / 2 ? "rpc" : "raft");
          return TR_EINVALID;
        }
    }
  }
  if (c->cluster_genesis_ms == 0) {
    snprintf(err, errlen, "no cluster_genesis: every node needs the genesis inputs (CHAIN ADMIN_PUBKEY_HEX TIME_MS)");
    return TR_EINVALID;
  }
  if (!tr_chain_id_valid(c->cluster_chain, strnlen(c->cluster_chain, sizeof c->cluster_chain)) ||
      !crypto_core_ed25519_is_valid_point(c->cluster_admin.b) || c->cluster_genesis_ms > TR_INT_MAX) {
    snprintf(err, errlen, "cluster_genesis: bad chain id, admin key or time");
    return TR_EINVALID;
  }
  return 0;
}

/* After the last line: a cluster node's file must describe its whole
 * cluster, name this node among it, and listen where the others will
 * send clients (its rpc address). */
static int cluster_config_check(const char *path, tr_config_t *c, bool listen_given, char *err, size_t errlen) {
  char why[400];
  if (c->cluster_id == 0) {
    if (c->cluster_nodes_n == 0 && c->cluster_genesis_ms == 0) return 0;
    snprintf(err, errlen, "%s: cluster_node and cluster_genesis need cluster_id (this node's id)", path);
    return TR_EINVALID;
  }
  if (tr_cluster_check(c, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: %s", path, why);
    return TR_EINVALID;
  }
  const tr_cluster_node_t *self = NULL;
  for (size_t i = 0; i < c->cluster_nodes_n; i++)
    if (c->cluster_nodes[i].id == c->cluster_id) self = &c->cluster_nodes[i];
  if (self == NULL) {
    snprintf(err, errlen, "%s: cluster_id %llu is not the id of any cluster_node line", path,
             (unsigned long long)c->cluster_id);
    return TR_EINVALID;
  }
  if (!listen_given) {
    snprintf(c->listen, sizeof c->listen, "%s", self->rpc);
  } else if (!same_endpoint(c->listen, self->rpc)) {
    snprintf(err, errlen, "%s: listen = %s, but this node's rpc address (cluster_node %llu) is %s; they must be the same",
             path, c->listen, (unsigned long long)self->id, self->rpc);
    return TR_EINVALID;
  }
  return 0;
}

int tr_config_load(const char *path, int optional, tr_config_t *c, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    if (optional && errno == ENOENT) return 0;
    snprintf(err, errlen, "cannot read config %s: %s", path, strerror(errno));
    return TR_EIO;
  }
  char line[512], why[200];
  int lineno = 0, rc = 0;
  bool listen_given = false;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    lineno++;
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *l = trim(line);
    if (*l == '\0') continue;
    char *eq = strchr(l, '=');
    if (eq == NULL) {
      snprintf(err, errlen, "%s:%d: expected key = value", path, lineno);
      rc = TR_EINVALID;
      break;
    }
    *eq = '\0';
    char *key = trim(l), *value = trim(eq + 1);
    why[0] = '\0';
    rc = config_set(c, key, value);
    if (rc == TR_ENOT_FOUND) rc = cluster_set(c, key, value, why, sizeof why);
    if (rc == 0 && strcmp(key, "listen") == 0) listen_given = true;
    if (rc == TR_ENOT_FOUND) snprintf(err, errlen, "%s:%d: unknown key `%s`", path, lineno, key);
    else if (rc != 0 && why[0]) snprintf(err, errlen, "%s:%d: bad value for `%s`: %s (%s)", path, lineno, key, value, why);
    else if (rc != 0) snprintf(err, errlen, "%s:%d: bad value for `%s`: %s", path, lineno, key, value);
  }
  if (rc == 0 && ferror(f)) {
    snprintf(err, errlen, "cannot read config %s: %s", path, strerror(errno));
    rc = TR_EIO;
  }
  fclose(f);
  return rc != 0 ? rc : cluster_config_check(path, c, listen_given, err, errlen);
}

int tr_file_replace(const char *path, const char *text, size_t len) {
  char tmp[TR_PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return TR_ELIMIT;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return TR_EIO;
  int rc = write_all(fd, text, len);
  if (rc == 0 && fsync(fd) != 0) rc = TR_EIO;
  if (close(fd) != 0 && rc == 0) rc = TR_EIO;
  if (rc == 0 && rename(tmp, path) != 0) rc = TR_EIO;
  if (rc == 0) rc = fsync_dir_of(path);
  if (rc != 0) {
    int e = errno; /* the caller reports why: unlink must not overwrite it */
    unlink(tmp);
    errno = e;
  }
  return rc;
}

int tr_file_read(const char *path, size_t max, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return errno == ENOENT ? TR_ENOT_FOUND : TR_EIO;
  char *buf = malloc(max + 1);
  if (buf == NULL) {
    fclose(f);
    return TR_ENOMEM;
  }
  size_t n = fread(buf, 1, max + 1, f);
  int rc = ferror(f) ? TR_EIO : (n > max ? TR_ELIMIT : 0);
  fclose(f);
  if (rc != 0) {
    free(buf);
    return rc;
  }
  buf[n] = '\0';
  *out = buf;
  if (len) *len = n;
  return 0;
}

int tr_hostport_parse(const char *s, char *host, size_t hostlen, int *port) {
  const char *colon;
  size_t hl;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':') return TR_EINVALID;
    hl = (size_t)(close - s - 1);
    colon = close + 1;
    s++;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL) return TR_EINVALID;
    hl = (size_t)(colon - s);
  }
  if (hl == 0 || hl >= hostlen) return TR_EINVALID;
  memcpy(host, s, hl);
  host[hl] = '\0';
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535) return TR_EINVALID;
  *port = (int)p;
  return 0;
}

int tr_node_check_private(const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT) return 0;
    snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
    return TR_EIO;
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    snprintf(err, errlen, "%s is owned by uid %u, not by uid %u (this process) or root: whoever owns it could change "
             "the node's settings; chown it", path, (unsigned)st.st_uid, (unsigned)geteuid());
    return TR_EARG;
  }
  if (st.st_mode & 022) {
    snprintf(err, errlen, "%s is writable by %s (mode %03o): an outsider could change the node's settings; "
             "chmod go-w it", path, (st.st_mode & 020) && (st.st_mode & 002) ? "group and others" :
             (st.st_mode & 020) ? "its group" : "others", (unsigned)(st.st_mode & 0777));
    return TR_EARG;
  }
  return 0;
}

int tr_node_lock(const char *datadir, int *fd_out, char *err, size_t errlen) {
  char path[TR_PATH_MAX];
  *fd_out = -1;
  if (tr_path_join(path, sizeof path, datadir, TR_LOCK_FILE) != 0) {
    snprintf(err, errlen, "%s: path too long", datadir);
    return TR_ELIMIT;
  }
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return TR_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s is not a regular file", path);
    close(fd);
    return TR_EIO;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
    if (n > 0) pid[strcspn(pid, "\n")] = 0;
    if (e == EWOULDBLOCK)
      snprintf(err, errlen, "%s is in use by pid %s", datadir, n > 0 && pid[0] ? pid : "(unknown)");
    else
      snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
    close(fd);
    return e == EWOULDBLOCK ? TR_ELIMIT : TR_EIO;
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    close(fd);
    return TR_EIO;
  }
  *fd_out = fd;
  return 0;
}
