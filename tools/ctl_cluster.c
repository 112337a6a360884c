/* ctl_cluster.c — the operator's side of cluster mode (PROTOCOL.md §7, §8).
 *
 *   cluster init      makes every node's DIR at once (tr_node_cluster_init):
 *                     one node key, hence one checkpoint verifier key for the
 *                     whole cluster, and one genesis entry, byte for byte
 *   cluster status    node.status's `cluster` object over JSON-RPC
 *   cluster transfer, add, remove
 *                     leadership and membership over the node's control
 *                     socket (cluster.transfer, cluster.add, cluster.remove)
 *
 * cluster init refuses a bad command line before it writes anything: the
 * --admin-out key is made in memory, checked with the nodes, and written
 * only then; it is removed again when the DIRs cannot be made. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "tr_hex.h"
#include "tr_node.h"
#include "tr_note.h"

#define CLUSTER_CHANGE_TIMEOUT_S 60  /* the daemon waits up to 30 s for raft's answer: ours outlasts it */

#define NODE_OPT_FORM_INIT "ID=RAFT_HOST:PORT,RPC_HOST:PORT,DIR"
#define NODE_OPT_FORM_ADD "ID=RAFT_HOST:PORT,RPC_HOST:PORT"

typedef struct {
  tr_cluster_node_t node;
  const char *dir;   /* points into argv */
} node_opt_t;

/* HOST:PORT that fits tr_cluster_node_t, with a port a peer can reach. */
static bool addr_ok(const char *s, size_t len) {
  char addr[sizeof ((tr_cluster_node_t *)0)->raft], host[128];
  int port;
  if (len == 0 || len >= sizeof addr) return false;
  memcpy(addr, s, len);
  addr[len] = '\0';
  return tr_hostport_parse(addr, host, sizeof host, &port) == 0 && port > 0;
}

/* Parses a --node value: ID=RAFT,RPC and, when with_dir, ",DIR" (the rest
 * of the value, so a DIR may hold commas).  0, or a printed usage error. */
static int node_opt_parse(const ctl_cmd_t *cmd, const char *v, bool with_dir, node_opt_t *out) {
  const char *form = with_dir ? NODE_OPT_FORM_INIT : NODE_OPT_FORM_ADD;
  const char *eq = strchr(v, '='), *raft = eq ? eq + 1 : NULL;
  const char *c1 = raft ? strchr(raft, ',') : NULL, *rpc = c1 ? c1 + 1 : NULL;
  const char *c2 = rpc ? strchr(rpc, ',') : NULL, *rpc_end = c2 ? c2 : rpc ? rpc + strlen(rpc) : NULL;
  char id[24];
  if (eq == NULL || rpc == NULL || (with_dir ? c2 == NULL || c2[1] == '\0' : c2 != NULL))
    return ctl_usage_error(cmd, "--node %s: want %s", v, form);
  snprintf(id, sizeof id, "%.*s", (int)(eq - v < 23 ? eq - v : 23), v);
  if (ctl_parse_u64(id, &out->node.id) != 0 || out->node.id < 1)
    return ctl_usage_error(cmd, "--node %s: the id must be an integer from 1 to 9007199254740991", v);
  if (!addr_ok(raft, (size_t)(c1 - raft)) || !addr_ok(rpc, (size_t)(rpc_end - rpc)))
    return ctl_usage_error(cmd, "--node %s: the %s address must be HOST:PORT with a port from 1 to 65535", v,
                           addr_ok(raft, (size_t)(c1 - raft)) ? "rpc" : "raft");
  snprintf(out->node.raft, sizeof out->node.raft, "%.*s", (int)(c1 - raft), raft);
  snprintf(out->node.rpc, sizeof out->node.rpc, "%.*s", (int)(rpc_end - rpc), rpc);
  out->dir = with_dir ? c2 + 1 : NULL;
  return 0;
}

/* Every --node of cluster init, parsed and sorted by id (the config lists
 * nodes in id order); 0 or a printed usage error. */
static int node_opts_collect(const ctl_cmd_t *cmd, const ctl_opts_t *o, node_opt_t nodes[TR_CLUSTER_NODES_MAX],
                             size_t *n) {
  size_t count = 0;
  for (size_t i = 0; i < o->n; i++)
    if (strcmp(o->o[i].name, "node") == 0) count++;
  if (count < TR_CLUSTER_NODES_MIN || count > TR_CLUSTER_NODES_MAX)
    return ctl_usage_error(cmd, "a cluster has %d to %d nodes: give --node that many times (got %zu)",
                           TR_CLUSTER_NODES_MIN, TR_CLUSTER_NODES_MAX, count);
  *n = 0;
  for (size_t i = 0; i < o->n; i++) {
    if (strcmp(o->o[i].name, "node") != 0) continue;
    node_opt_t cur;
    if (node_opt_parse(cmd, o->o[i].value, true, &cur) != 0) return CTL_USAGE;
    size_t at = *n;
    for (; at > 0 && nodes[at - 1].node.id > cur.node.id; at--) nodes[at] = nodes[at - 1];
    nodes[at] = cur;
    (*n)++;
  }
  return 0;
}

/* No two DIRs may be one directory (compared as absolute paths, through
 * symlinks of their parents).  0, CTL_USAGE or CTL_FAILED, printed. */
static int dirs_distinct(const ctl_cmd_t *cmd, const node_opt_t *nodes, size_t n) {
  char abs[TR_CLUSTER_NODES_MAX][TR_PATH_MAX];
  for (size_t i = 0; i < n; i++) {
    if (ctl_abs_path(nodes[i].dir, abs[i], sizeof abs[i]) != 0) {
      fprintf(stderr, "tranchectl %s: cannot resolve the directory of %s (its parent must exist)\n", cmd->name,
              nodes[i].dir);
      return CTL_FAILED;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(abs[i], abs[j]) == 0)
        return ctl_usage_error(cmd, "nodes %llu and %llu have one DIR %s", (unsigned long long)nodes[j].node.id,
                               (unsigned long long)nodes[i].node.id, abs[i]);
  }
  return 0;
}

static void print_init_result(const ctl_opts_t *o, const tr_config_t *c, const node_opt_t *nodes, const char *vkey,
                              const char *admin_out) {
  char admin[65];
  tr_hex_encode(c->cluster_admin.b, 32, admin);
  if (o->json) {
    cJSON *r = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(r, "nodes");
    cJSON_AddStringToObject(r, "chain", c->cluster_chain);
    cJSON_AddStringToObject(r, "admin", admin);
    cJSON_AddStringToObject(r, "vkey", vkey);
    cJSON_AddNumberToObject(r, "genesis_ms", (double)c->cluster_genesis_ms);
    for (size_t i = 0; i < c->cluster_nodes_n; i++) {
      cJSON *n = cJSON_CreateObject();
      cJSON_AddNumberToObject(n, "id", (double)nodes[i].node.id);
      cJSON_AddStringToObject(n, "raft", nodes[i].node.raft);
      cJSON_AddStringToObject(n, "rpc", nodes[i].node.rpc);
      cJSON_AddStringToObject(n, "datadir", nodes[i].dir);
      cJSON_AddItemToArray(arr, n);
    }
    ctl_print_json(r);
    cJSON_Delete(r);
  } else {
    printf("admin %s\nvkey %s\n", admin, vkey);
  }
  fprintf(stderr, "initialised %zu nodes of chain %s (one node key, one genesis entry):\n", c->cluster_nodes_n,
          c->cluster_chain);
  for (size_t i = 0; i < c->cluster_nodes_n; i++)
    fprintf(stderr, "  node %llu  %s  raft %s  rpc %s\n", (unsigned long long)nodes[i].node.id, nodes[i].dir,
            nodes[i].node.raft, nodes[i].node.rpc);
  if (admin_out) fprintf(stderr, "admin key in %s\n", admin_out);
}

/* Makes the DIRs with a fresh node key and prints the result; CTL_OK or CTL_FAILED. */
static int cluster_create(const ctl_cmd_t *cmd, const ctl_opts_t *o, const tr_config_t *c, const node_opt_t *nodes,
                          const char *admin_out) {
  const char *dirs[TR_CLUSTER_NODES_MAX];
  uint8_t seed[32], sk[64];
  tr_key_t node_pk;
  char err[1024] = "", vkey[TR_NOTE_VKEY_BUF_BYTES];
  for (size_t i = 0; i < c->cluster_nodes_n; i++) dirs[i] = nodes[i].dir;
  randombytes_buf(seed, sizeof seed);
  crypto_sign_seed_keypair(node_pk.b, sk, seed);
  sodium_memzero(sk, sizeof sk);
  int rc = tr_note_vkey_format(c->cluster_chain, node_pk.b, vkey, sizeof vkey);
  if (rc != 0) snprintf(err, sizeof err, "cannot format the verifier key of chain %s", c->cluster_chain);
  if (rc == 0) rc = tr_node_cluster_init(c, dirs, seed, err, sizeof err);
  sodium_memzero(seed, sizeof seed);
  if (rc != 0) {
    fprintf(stderr, "tranchectl %s: %s\n", cmd->name, err);
    return CTL_FAILED;
  }
  print_init_result(o, c, nodes, vkey, admin_out);
  return CTL_OK;
}

int ctl_cmd_cluster_init(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *chain = ctl_opt(o, "chain"), *admin_hex = ctl_opt(o, "admin"), *admin_out = ctl_opt(o, "admin-out");
  node_opt_t nodes[TR_CLUSTER_NODES_MAX];
  const char *dirs[TR_CLUSTER_NODES_MAX];
  size_t n = 0;
  tr_config_t c;
  char why[512];
  if (!chain) return ctl_usage_error(cmd, "--chain is required");
  if (!admin_hex == !admin_out) return ctl_usage_error(cmd, "give exactly one of --admin and --admin-out");
  if (!tr_chain_id_valid(chain, strlen(chain))) return ctl_usage_error(cmd, "--chain must match ^[a-z0-9][a-z0-9./-]{0,63}$");
  tr_config_defaults(&c);
  if (admin_hex && (ctl_parse_key(admin_hex, &c.cluster_admin) != 0 || !crypto_core_ed25519_is_valid_point(c.cluster_admin.b)))
    return ctl_usage_error(cmd, "--admin must be an Ed25519 public key: 64 lowercase hex");
  int rc = node_opts_collect(cmd, o, nodes, &n);
  if (rc == 0) rc = dirs_distinct(cmd, nodes, n);
  if (rc != 0) return rc;
  c.cluster_nodes_n = n;
  for (size_t i = 0; i < n; i++) c.cluster_nodes[i] = nodes[i].node, dirs[i] = nodes[i].dir;
  snprintf(c.cluster_chain, sizeof c.cluster_chain, "%s", chain);
  c.cluster_genesis_ms = tr_now_ms(); /* one time for every node: identical genesis entries */
  uint8_t admin_seed[32], admin_sk[64];
  if (admin_out) { /* made in memory now, written once everything else is known good */
    randombytes_buf(admin_seed, sizeof admin_seed);
    crypto_sign_seed_keypair(c.cluster_admin.b, admin_sk, admin_seed);
    sodium_memzero(admin_sk, sizeof admin_sk);
  }
  if (tr_cluster_check(&c, why, sizeof why) != 0) rc = ctl_usage_error(cmd, "%s", why);
  else if (admin_out && ctl_admin_out_allowed(cmd->name, admin_out, dirs, n) != 0) rc = CTL_FAILED;
  else if (admin_out && ctl_key_file_write(admin_out, admin_seed) != 0) rc = CTL_FAILED;
  sodium_memzero(admin_seed, sizeof admin_seed);
  if (rc != 0) return rc;
  rc = cluster_create(cmd, o, &c, nodes, admin_out);
  if (rc != 0 && admin_out) unlink(admin_out); /* a failed init leaves nothing behind */
  return rc;
}

int ctl_cmd_cluster_join(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *from = ctl_opt(o, "from"), *node_v = ctl_opt(o, "node");
  node_opt_t node;
  char err[TR_PATH_MAX + 512];
  if (!from || !node_v) return ctl_usage_error(cmd, "--from and --node are required");
  int rc = node_opt_parse(cmd, node_v, true, &node);
  if (rc != 0) return rc;
  if (tr_node_cluster_join(from, &node.node, node.dir, err, sizeof err) != 0) {
    fprintf(stderr, "tranchectl %s: %s\n", cmd->name, err);
    return CTL_FAILED;
  }
  if (o->json) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "id", (double)node.node.id);
    cJSON_AddStringToObject(r, "raft", node.node.raft);
    cJSON_AddStringToObject(r, "rpc", node.node.rpc);
    cJSON_AddStringToObject(r, "datadir", node.dir);
    ctl_print_json(r);
    cJSON_Delete(r);
  } else {
    printf("node %llu made in %s; now: tranchectl cluster add --datadir <a running node's DIR> --node %llu=%s,%s\n",
           (unsigned long long)node.node.id, node.dir, (unsigned long long)node.node.id, node.node.raft, node.node.rpc);
  }
  return CTL_OK;
}

int ctl_cmd_cluster_status(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  cJSON *r = NULL;
  int rc = ctl_rpc(o, "node.status", NULL, &r);
  if (rc != 0) return rc;
  const cJSON *cluster = cJSON_GetObjectItemCaseSensitive(r, "cluster");
  if (cluster == NULL || cJSON_IsNull(cluster)) {
    fprintf(stderr, "tranchectl %s: the node is not in a cluster (a single node: node.status has no `cluster`)\n",
            cmd->name);
    rc = CTL_FAILED;
  } else if (!cJSON_IsObject(cluster)) {
    fprintf(stderr, "tranchectl %s: malformed node.status from the node: `cluster` is not an object\n", cmd->name);
    rc = CTL_DAEMON;
  } else if (o->json) {
    ctl_print_json(cluster);
  } else {
    ctl_print_human(cluster, NULL); /* its fields, then the nodes as a table */
  }
  cJSON_Delete(r);
  return rc;
}

/* An --id / --to value: a node id, >= 1. */
static int id_opt(const ctl_cmd_t *cmd, const char *name, const char *v, uint64_t *id) {
  if (ctl_parse_u64(v, id) == 0 && *id >= 1) return 0;
  return ctl_usage_error(cmd, "--%s must be a node id: an integer from 1 to 9007199254740991", name);
}

/* transfer, add and remove: one control-socket call each. */
int ctl_cmd_cluster_control(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *dir = ctl_opt(o, "datadir"), *method = NULL;
  char done[160];
  uint64_t id = 0;
  node_opt_t node;
  if (!dir) return ctl_usage_error(cmd, "--datadir is required");
  cJSON *params = cJSON_CreateObject(), *r = NULL;
  int rc = 0;
  if (strcmp(cmd->name, "cluster transfer") == 0) {
    method = "cluster.transfer";
    snprintf(done, sizeof done, "leadership transfer requested");
    if (ctl_opt(o, "to") && (rc = id_opt(cmd, "to", ctl_opt(o, "to"), &id)) == 0) {
      cJSON_AddNumberToObject(params, "id", (double)id); /* absent: raft picks the node */
      snprintf(done, sizeof done, "leadership transfer to node %llu requested", (unsigned long long)id);
    }
  } else if (strcmp(cmd->name, "cluster add") == 0) {
    method = "cluster.add";
    if (!ctl_opt(o, "node")) rc = ctl_usage_error(cmd, "--node is required");
    else if ((rc = node_opt_parse(cmd, ctl_opt(o, "node"), false, &node)) == 0) {
      cJSON_AddNumberToObject(params, "id", (double)node.node.id);
      cJSON_AddStringToObject(params, "raft", node.node.raft);
      cJSON_AddStringToObject(params, "rpc", node.node.rpc);
      snprintf(done, sizeof done, "node %llu added", (unsigned long long)node.node.id);
    }
  } else {
    method = "cluster.remove";
    if (!ctl_opt(o, "id")) rc = ctl_usage_error(cmd, "--id is required");
    else if ((rc = id_opt(cmd, "id", ctl_opt(o, "id"), &id)) == 0) {
      cJSON_AddNumberToObject(params, "id", (double)id);
      snprintf(done, sizeof done, "node %llu removed", (unsigned long long)id);
    }
  }
  if (rc != 0) {
    cJSON_Delete(params);
    return rc;
  }
  rc = ctl_control_call(dir, method, params, &r, CLUSTER_CHANGE_TIMEOUT_S);
  if (rc == 0 && o->json) ctl_print_json(r);
  else if (rc == 0 && cJSON_IsObject(r) && r->child) ctl_print_human(r, NULL);
  else if (rc == 0) printf("%s\n", done);
  cJSON_Delete(r);
  return rc;
}
