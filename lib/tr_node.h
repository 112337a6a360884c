/* tr_node.h — a node's data directory: layout, key files, config, init.
 *
 * DIR/tranche.db     the SQLite journal and state (WAL mode)
 * DIR/node.key       the node's Ed25519 seed, 64 lowercase hex + "\n", mode 0600
 * DIR/tranche.conf   commented defaults, same keys as tranched's flags
 * DIR/checkpoint     the latest signed checkpoint, outside the database, so a
 *                    restored old database cannot silently fork the log
 * DIR/control.sock   node control (backup, log level, shutdown), mode 0600
 * DIR/lock           flock()ed by the one process that may write DIR; holds its pid
 *
 * A cluster node (PROTOCOL.md §8) is the same directory; its tranche.conf
 * also names its id, every node's addresses and the genesis inputs, and its
 * node.key is the cluster's one key (every node's checkpoints verify with
 * one verifier key).
 */
#ifndef TR_NODE_H
#define TR_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "tr_tx.h"

#define TR_DB_FILE "tranche.db"
#define TR_NODE_KEY_FILE "node.key"
#define TR_CONFIG_FILE "tranche.conf"
#define TR_CHECKPOINT_FILE "checkpoint"
#define TR_CONTROL_SOCKET "control.sock"
#define TR_LOCK_FILE "lock"
#define TR_PATH_MAX 4096
#define TR_DEFAULT_LISTEN "127.0.0.1:7707"

/* Writes a new key file (fails if it exists), mode 0600, fsynced. */
int tr_key_file_write(const char *path, const uint8_t seed[32]);
/* Reads a key file: 64 lowercase hex + "\n". Fills the libsodium secret key
 * (seed || pk) and the public key. Refuses group- or world-readable files
 * when refuse_lax_mode is set. */
int tr_key_file_read(const char *path, int refuse_lax_mode, uint8_t sk[64], tr_key_t *pk,
                     char *err, size_t errlen);

/* Joins dir and name into out. Returns 0 or TR_ELIMIT. */
int tr_path_join(char *out, size_t outlen, const char *dir, const char *name);

/* `tranchectl init`: creates DIR (0700; refuses an existing one), the
 * database, node key, config and genesis entry with `admin` as the admin. */
int tr_node_init(const char *datadir, const char *chain, const tr_key_t *admin, char *err, size_t errlen);

/* 0 when DIR's absolute control socket path fits a Unix socket address;
 * else TR_ELIMIT and a message saying so (init refuses such a DIR). */
int tr_node_socket_path_check(const char *datadir, char *err, size_t errlen);

#define TR_CLUSTER_NODES_MIN 3   /* PROTOCOL.md §8: fewer cannot survive a failure */
#define TR_CLUSTER_NODES_MAX 7   /* PROTOCOL.md §8: more only slows every commit */

typedef struct {
  uint64_t id;          /* >= 1 */
  char raft[128];       /* HOST:PORT the raft transport listens on */
  char rpc[128];        /* HOST:PORT its JSON-RPC port */
} tr_cluster_node_t;

typedef struct {
  char listen[128];       /* HOST:PORT */
  unsigned workers;       /* 0 = number of cores */
  char log_level[16];     /* error, warn, info, debug */
  char rpc[128];          /* where tranchectl connects (defaults to listen) */
  unsigned clock_skew_max_s; /* a clock reading further ahead is refused */
  unsigned connections_max;  /* 1..TR_RPC_CONNECTIONS_MAX */
  unsigned connections_per_peer; /* 1..connections_max: slots one address may hold */
  unsigned request_deadline_s; /* a request must arrive whole this long after its first byte */
  uint64_t lookup_two_levels_from; /* lookup rows go into a small level merged late past this many (tr_limits.h) */
  char http_hosts[512];   /* Host names HTTP requests may name besides loopback and listen; "*" = any */
  char http_cors[256];    /* the one Origin allowed cross-origin ("*" = any), "" = CORS off */
  uint64_t cluster_id;                 /* this node's id; 0 = a single node (no cluster) */
  size_t cluster_nodes_n;
  tr_cluster_node_t cluster_nodes[TR_CLUSTER_NODES_MAX];
  char cluster_chain[72];              /* the genesis inputs, so a node whose journal was wiped can */
  tr_key_t cluster_admin;              /*   re-create the identical genesis entry */
  uint64_t cluster_genesis_ms;
  bool cluster_join;                   /* joins a running cluster: never bootstraps raft (cluster join) */
  unsigned cluster_snapshot_every;     /* raft snapshots every this many committed entries (batches) */
  unsigned cluster_election_timeout_ms; /* a follower that hears no leader this long (1-2x) starts an election */
} tr_config_t;

void tr_config_defaults(tr_config_t *c);
/* Reads `key = value` lines; '#' starts a comment. Unknown keys are errors.
 * A missing file is not an error when optional is set.
 *
 * Cluster keys (all or none; cluster_node repeats, one line per node):
 *   cluster_id = N
 *   cluster_node = ID RAFT_HOST:PORT RPC_HOST:PORT
 *   cluster_genesis = CHAIN ADMIN_PUBKEY_HEX TIME_MS
 * With cluster_id the file must describe a whole cluster (tr_cluster_check)
 * with this node among it, and `listen` is this node's rpc address: set from
 * it when the file has no listen line, refused when it says another. */
int tr_config_load(const char *path, int optional, tr_config_t *c, char *err, size_t errlen);

/* 0 when c's cluster_nodes and cluster_genesis describe a cluster we can
 * build: TR_CLUSTER_NODES_MIN..MAX nodes, ids >= 1 and unique, every raft
 * and rpc address HOST:PORT and no two the same, a valid chain id, the admin
 * key a valid point, genesis time > 0.  Ignores cluster_id.  Else TR_EINVALID
 * and what is wrong in err. */
int tr_cluster_check(const tr_config_t *c, char *err, size_t errlen);

/* `tranchectl cluster init`: creates dirs[i] for node cluster->cluster_nodes[i]
 * (i < cluster_nodes_n), each as tr_node_init does, all with the node key of
 * node_seed, a config naming the cluster (tr_config_load's cluster keys and
 * `listen` = the node's rpc address) and the same genesis entry, byte for byte
 * (one chain, admin, node key and time: cluster_chain, cluster_admin,
 * cluster_genesis_ms).  cluster->cluster_id is ignored.  Refuses when any DIR
 * exists; on failure removes every DIR it made.  An init killed during its
 * final renames can leave some DIRs complete and others absent. */
int tr_node_cluster_init(const tr_config_t *cluster, const char *const dirs[], const uint8_t node_seed[32],
                         char *err, size_t errlen);

/* `tranchectl cluster join`: makes DIR for a node that joins the running
 * cluster of the node in `from`: the same node key, genesis and cluster
 * lines, plus its own line and cluster_join = true (it must not bootstrap
 * raft: the leader's `cluster add` brings it in).  Refuses an id or address
 * the cluster uses, an eighth node, an existing DIR. */
int tr_node_cluster_join(const char *from, const tr_cluster_node_t *node, const char *datadir, char *err,
                         size_t errlen);

/* For a cluster node whose journal was wiped (DIR/tranche.db, -wal and -shm
 * gone; config and node key kept): creates DIR/tranche.db holding only the
 * genesis entry of c's cluster_genesis, signed with node_sk, identical to
 * every other node's.  Refuses (TR_EEXISTS) when tranche.db or its -wal,
 * -shm or -journal exists, TR_EARG when c is not a cluster node's config.
 * Built under a temporary name and renamed: DIR never holds half a database. */
int tr_node_genesis_recreate(const char *datadir, const tr_config_t *c, const uint8_t node_sk[64], char *err,
                             size_t errlen);

/* Writes `text` to path atomically (temp file, fsync, rename, fsync dir).
 * On failure errno says why (EMFILE, ENOSPC, ...). */
int tr_file_replace(const char *path, const char *text, size_t len);
/* Reads a whole small file (≤ max bytes) into a NUL-terminated heap buffer. */
int tr_file_read(const char *path, size_t max, char **out, size_t *len);

/* Splits "HOST:PORT" ("[::1]:7707" too). */
int tr_hostport_parse(const char *s, char *host, size_t hostlen, int *port);

/* Like ssh's StrictModes, for the data directory and the config file: 0
 * when path is missing or owned by this euid or root and not writable by
 * group or others; else TR_EARG and why.  Whoever can write either could
 * point `listen` at a public address or replace the database. */
int tr_node_check_private(const char *path, char *err, size_t errlen);

/* Takes the data directory's exclusive lock (flock on DIR/lock, which then
 * holds our pid) so that at most one process ever writes DIR.  Must be taken
 * before the database is opened for writing; it is held until *fd_out is
 * closed (or the process exits, even by kill -9).  When another process holds
 * it: TR_ELIMIT and "DIR is in use by pid N". */
int tr_node_lock(const char *datadir, int *fd_out, char *err, size_t errlen);

/* Milliseconds since the Unix epoch, UTC. */
uint64_t tr_now_ms(void);

#endif
