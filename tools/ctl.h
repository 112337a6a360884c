/* ctl.h — what the tranchectl modules share: the command table row, option
 * parsing, exit codes, the line-framed JSON-RPC client (TCP and the node's
 * Unix control socket) and output helpers.
 *
 * Modules: tranchectl.c (usage, dispatch), ctl_util.c (options, keys,
 * files, output), ctl_rpc.c (client), ctl_init.c (init, keygen), ctl_tx.c
 * (tx building, sign, submit), ctl_query.c (queries, rpc), ctl_verify.c
 * (offline audit), ctl_proof.c (checkpoints and proofs), ctl_node.c (control
 * socket: backup, log-level, stop), ctl_restore.c (restore), ctl_progress.c
 * (progress line), ctl_extra.c (ping, completion), ctl_cluster.c (cluster
 * init, status, transfer, add, remove).
 */
#ifndef TR_CTL_H
#define TR_CTL_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_tx.h"

/* Exit codes (documented in the top-level usage). */
enum {
  CTL_OK = 0,       /* done; for verify and proofs: verified */
  CTL_FAILED = 1,   /* refused by the ledger, not found, or a check failed */
  CTL_USAGE = 2,    /* bad command line */
  CTL_DAEMON = 3,   /* cannot connect, timeout, or the daemon answered an error */
};

#define CTL_OPTS_MAX 64                     /* options on one command line */
#define CTL_POS_MAX 4                       /* positional arguments of any command */
#define CTL_RESPONSE_BYTES_MAX (16u << 20)  /* one response line from the daemon */
#define CTL_TIMEOUT_MS 30000                /* connect, send and each receive */
#define CTL_FILE_BYTES_MAX (4u << 20)       /* files we read: {tx,sig}, proofs, checkpoints */

/* A parsed command line: `--name value` / `--name=value` / `--flag`, plus
 * positionals.  `spec` lists the allowed options, comma separated; a name
 * ending in '=' takes a value, one ending in '*' takes a value and may repeat. */
typedef struct {
  size_t n;
  struct { const char *name; const char *value; } o[CTL_OPTS_MAX];
  size_t npos;
  const char *pos[CTL_POS_MAX];
  bool json, help;
} ctl_opts_t;

typedef struct ctl_cmd ctl_cmd_t;
typedef int (*ctl_cmd_fn)(const ctl_cmd_t *cmd, ctl_opts_t *o);

struct ctl_cmd {
  const char *name;        /* "asset create" */
  ctl_cmd_fn fn;
  const char *spec;        /* allowed options, see ctl_opts_t */
  size_t pos_min, pos_max; /* positional arguments */
  const char *usage;       /* arguments after the name */
  const char *help;        /* what it does, then an example */
};

/* Options common to commands that talk to the daemon. */
#define CTL_CONN_SPEC "rpc=,datadir=,json"

/* The command table (tranchectl.c), for completion. */
extern const ctl_cmd_t ctl_commands[];
extern const size_t ctl_commands_n;

/* ---- ctl_util.c ---- */
int ctl_opts_parse(const ctl_cmd_t *cmd, int argc, char **argv, ctl_opts_t *o);
const char *ctl_opt(const ctl_opts_t *o, const char *name);   /* last value or NULL */
bool ctl_flag(const ctl_opts_t *o, const char *name);
int ctl_usage_error(const ctl_cmd_t *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_print_cmd_help(const ctl_cmd_t *cmd, bool full);
int ctl_parse_u64(const char *s, uint64_t *out);               /* §1 integer; 0 or -1 */
int ctl_parse_key(const char *hex, tr_key_t *k);                /* 64 lowercase hex; 0 or -1 */
int ctl_read_key(const char *path, uint8_t sk[64], tr_key_t *pk); /* prints the error; 0 or CTL_FAILED */
int ctl_read_file(const char *path, char **out, size_t *len);    /* path "-" is stdin; prints errors */
int ctl_abs_path(const char *path, char *out, size_t outlen);   /* realpath of the dir + base name */
/* Rewrites integral numbers in the tree as raw digits, so cJSON never prints 1e+15. */
void ctl_json_digits(cJSON *v);
void ctl_print_json(const cJSON *v);                             /* unformatted, one line */
void ctl_print_human(const cJSON *v, const char *currency);      /* aligned keys, tables */

/* ---- ctl_progress.c ---- */
extern bool ctl_quiet;                                          /* --quiet: no progress line */
bool ctl_progress_wanted(void);                                  /* stderr is a terminal, not --quiet */
typedef struct {
  bool on, bytes;                  /* drawing at all; amounts are bytes (MiB, MiB/s) */
  const char *phase;
  uint64_t total;                  /* 0: unknown (no percentage, no ETA) */
  double t0, drawn;                /* monotonic seconds: start, last draw */
} ctl_progress_t;
void ctl_progress_begin(ctl_progress_t *p, const char *phase, bool bytes, uint64_t total);
void ctl_progress_update(ctl_progress_t *p, uint64_t done);     /* redraws at most every 200 ms */
void ctl_progress_end(ctl_progress_t *p, uint64_t done);        /* last draw and a newline */
/* A thread drawing the size of `path` (written by another process or thread) against total. */
typedef struct {
  ctl_progress_t p;
  char path[4096];
  pthread_t tid;
  atomic_bool stop;
  bool running;
} ctl_progress_watch_t;
void ctl_progress_watch_start(ctl_progress_watch_t *w, const char *phase, const char *path, uint64_t total);
void ctl_progress_watch_stop(ctl_progress_watch_t *w, bool finished);

/* ---- ctl_rpc.c ---- */
/* JSON-RPC error codes of PROTOCOL.md §5 that change what a command does. */
#define RPC_ERR_REFUSED -32001
#define RPC_ERR_OVERLOADED -32002
#define RPC_ERR_NOT_FOUND -32004
#define RPC_ERR_NOT_LEADER -32005  /* a cluster follower; data.leader names the leader (PROTOCOL.md §5) */
#define RPC_ERR_PARAMS -32602

/* Opens the TCP connection chosen by --rpc / --datadir / the default, or the
 * control socket of --datadir.  Both print their errors. Return fd or -1. */
int ctl_connect_rpc(const ctl_opts_t *o);
/* The last ctl_connect_rpc was to an http://HOST:PORT address (ctl_call speaks HTTP there). */
bool ctl_rpc_is_http(void);
/* Where ctl_connect_rpc connects: --rpc, else $TRANCHE_RPC, else the `rpc` or
 * `listen` key of DIR/tranche.conf, else 127.0.0.1:7707.  Prints errors; 0 or -1. */
int ctl_rpc_address(const ctl_opts_t *o, char *out, size_t outlen);
/* One TCP connection to HOST:PORT, no retries, nothing printed: fd, or -1 and err. */
int ctl_connect_addr(const char *addr, char *err, size_t errlen);
/* Global --wait SECS: connections refused (nobody listening yet) are retried this long. */
extern long ctl_wait_ms;
#define CTL_WAIT_S_MAX 3600
int ctl_connect_control(const char *datadir);
/* One JSON-RPC call (params is consumed; NULL = none).  On success *result
 * is the result (caller deletes) and CTL_OK is returned.  On an error
 * response returns CTL_FAILED for refusals and not_found, CTL_USAGE for bad
 * params, CTL_DAEMON otherwise; with error == NULL it prints the error
 * ("refused: reason: detail" for refusals), else *error gets the error
 * object unprinted (caller prints with ctl_report_error and deletes). */
int ctl_call(int fd, const char *method, cJSON *params, cJSON **result, cJSON **error);
/* Prints an error object as ctl_call does; returns its exit code. */
int ctl_report_error(const cJSON *err);
/* Connects to a node's JSON-RPC address in line framing (a cluster's
 * leader, named by a -32005 not_leader answer); -1 after printing why. */
int ctl_connect_leader(const char *addr);
/* Connects with ctl_connect_rpc, calls, closes. */
int ctl_rpc(const ctl_opts_t *o, const char *method, cJSON *params, cJSON **result);

/* ---- ctl_init.c ---- */
/* 0 when FILE may receive a new admin key: it does not exist, and its
 * directory (resolved through symlinks, even when it is a DIR yet to be
 * made) is none of dirs[] nor below one: whoever holds a node's disk must
 * not hold the admin key.  Else prints why ("tranchectl CMD_NAME: ...") and
 * returns -1. */
int ctl_admin_out_allowed(const char *cmd_name, const char *file, const char *const dirs[], size_t n_dirs);
/* Writes a new key file (mode 0600, never over an existing file) from seed;
 * prints the error.  0 or a tr_err. */
int ctl_key_file_write(const char *path, const uint8_t seed[32]);
/* Generates a key into a new key file and fills its public key; as above. */
int ctl_key_file_new(const char *path, tr_key_t *pk);

/* ---- ctl_node.c ---- */
/* One call over DIR's control socket (DIR/control.sock); timeout_s > 0
 * replaces the receive timeout.  params is consumed.  Returns as ctl_call
 * (CTL_OK with *result, which the caller deletes); CTL_DAEMON when it
 * cannot connect.  Errors are printed. */
int ctl_control_call(const char *datadir, const char *method, cJSON *params, cJSON **result, int timeout_s);

/* ---- ctl_verify.c ---- */
/* Steps 1-2 of the audit (every signature, replay with every derived row)
 * on the database file db; prints `FAILED ...` when it fails.  0 or CTL_FAILED. */
int ctl_audit_journal(const char *db, unsigned threads, uint64_t *size);
unsigned ctl_threads_default(void);                             /* one per core */

/* ---- commands ---- */
int ctl_cmd_init(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_keygen(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_tx(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_sign(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_submit(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_import(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_query(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_rpc(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_verify(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_checkpoint_verify(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_proof_inclusion(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_proof_consistency(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_proof_export(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_proof_verify(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_backup(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_log_level(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_stop(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_restore(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_ping(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_completion(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_cluster_init(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_cluster_join(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_cluster_status(const ctl_cmd_t *c, ctl_opts_t *o);
int ctl_cmd_cluster_control(const ctl_cmd_t *c, ctl_opts_t *o);  /* transfer, add, remove */

#endif
