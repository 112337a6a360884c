/* main.c — tranched: start-up in a fixed order, shutdown in reverse.
 *
 *   tranched --datadir DIR [--config FILE] [--listen HOST:PORT] [--workers N]
 *            [--log-level LEVEL] [--check]
 *
 * Runs in the foreground until SIGTERM or SIGINT, then stops accepting,
 * finishes what is in flight, writes a last checkpoint, closes the database
 * and exits 0.  SIGHUP reopens the log file (--log-file) and re-reads the
 * log level from the config file.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "control.h"
#include "notify.h"
#include "daemon.h"
#include "log.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_limits.h"

#define SHUTDOWN_GRACE_MS 30000 /* in-flight work gets this long before we exit anyway */

static int exit_status = 0;

static void usage(FILE *f) {
  fprintf(f,
          "usage: tranched --datadir DIR [--config FILE] [--listen HOST:PORT] [--workers N]\n"
          "                [--log-level error|warn|info|debug] [--log-file FILE] [--check] [--version]\n"
          "\n"
          "Runs the tranche ledger daemon in the foreground (JSON-RPC 2.0, one request per line).\n"
          "  --datadir DIR     data directory made by `tranchectl init`\n"
          "  --config FILE     config file (default DIR/" TR_CONFIG_FILE ")\n"
          "  --listen H:P      JSON-RPC address (default " TR_DEFAULT_LISTEN "); keep it private\n"
          "  --workers N       verification threads, 1-%d (default: one per core)\n"
          "  --log-file FILE   append the log to FILE instead of stderr; SIGHUP reopens it (logrotate)\n"
          "  --check           check the configuration and data directory, print \"configuration OK\", exit\n"
          "  --version         print the version and exit\n"
          "Under systemd (stderr is the journal: $JOURNAL_STREAM) log lines carry <N> priorities, no timestamp.\n",
          TR_WORKERS_MAX);
}

typedef struct {
  const char *datadir, *config, *listen, *log_level, *log_file;
  long workers;
  bool check;
} args_t;

static int parse_args(int argc, char **argv, args_t *a) {
  static const struct option opts[] = {
      {"datadir", required_argument, 0, 'd'}, {"config", required_argument, 0, 'c'},
      {"listen", required_argument, 0, 'l'},  {"workers", required_argument, 0, 'w'},
      {"log-level", required_argument, 0, 'v'}, {"check", no_argument, 0, 'n'},
      {"log-file", required_argument, 0, 'f'}, {"version", no_argument, 0, 'V'},
      {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  memset(a, 0, sizeof *a);
  a->workers = -1;
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 'd': a->datadir = optarg; break;
    case 'c': a->config = optarg; break;
    case 'l': a->listen = optarg; break;
    case 'v': a->log_level = optarg; break;
    case 'n': a->check = true; break;
    case 'w': {
      char *end;
      a->workers = strtol(optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0' || a->workers < 1 || a->workers > TR_WORKERS_MAX) {
        fprintf(stderr, "tranched: --workers must be 1-%d\n", TR_WORKERS_MAX);
        return 2;
      }
      break;
    }
    case 'f': a->log_file = optarg; break;
    case 'V': printf("tranched %s\n", TR_VERSION); exit(0);
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || a->datadir == NULL) {
    usage(stderr);
    return 2;
  }
  return 0;
}

/* Config file first, then flags (flags win).  The data directory and the
 * config must be ours alone: refused otherwise (tr_node_check_private). */
static int load_config(tr_daemon_t *d, const args_t *a) {
  char path[TR_PATH_MAX], err[512] = "";
  tr_config_defaults(&d->config);
  int rc = a->config ? 0 : tr_path_join(path, sizeof path, d->datadir, TR_CONFIG_FILE);
  if (rc == 0) rc = tr_node_check_private(d->datadir, err, sizeof err);
  if (rc == 0) rc = tr_node_check_private(a->config ? a->config : path, err, sizeof err);
  if (rc != 0) {
    log_error("main", "%s", err);
    return rc;
  }
  if (rc == 0) rc = tr_config_load(a->config ? a->config : path, a->config == NULL, &d->config, err, sizeof err);
  if (rc != 0) {
    log_error("main", "%s", err);
    return rc;
  }
  if (a->listen) {
    char host[128];
    int port;
    if (tr_hostport_parse(a->listen, host, sizeof host, &port) != 0) {
      log_error("main", "bad --listen %s (want HOST:PORT)", a->listen);
      return TR_EINVALID;
    }
    if (d->config.cluster_id != 0 && strcmp(a->listen, d->config.listen) != 0) {
      /* the other nodes send clients here by the address in their configs */
      log_error("main", "--listen %s: this cluster node's JSON-RPC address is %s (its cluster_node line); change "
                "it on every node's config instead", a->listen, d->config.listen);
      return TR_EINVALID;
    }
    snprintf(d->config.listen, sizeof d->config.listen, "%s", a->listen);
  }
  if (a->workers > 0) d->config.workers = (unsigned)a->workers;
  if (a->log_level) snprintf(d->config.log_level, sizeof d->config.log_level, "%s", a->log_level);
  if (tr_log_set_level_name(d->config.log_level) != 0) {
    log_error("main", "unknown log level %s", d->config.log_level);
    return TR_EINVALID;
  }
  d->workers = d->config.workers ? d->config.workers : (unsigned)uv_available_parallelism();
  if (d->workers < 1) d->workers = 1;
  if (d->workers > TR_WORKERS_MAX) d->workers = TR_WORKERS_MAX;
  return 0;
}

static void shutdown_timeout_cb(uv_timer_t *t) {
  tr_daemon_t *d = t->data;
  log_error("main", "shutdown grace of %d ms over with %zu requests in flight; exiting", SHUTDOWN_GRACE_MS,
            d->jobs_in_flight);
  exit_status = 1;
  uv_stop(d->loop);
}

void tr_daemon_finish_shutdown(tr_daemon_t *d);

static void on_signal(uv_signal_t *s, int signum) {
  tr_daemon_t *d = s->data;
  if (signum == SIGHUP) {
    char path[TR_PATH_MAX], err[512];
    if (tr_log_reopen() != 0) log_error("main", "SIGHUP: cannot reopen the log file: %s", strerror(errno));
    else if (tr_log_file() != NULL) log_info("main", "SIGHUP: log file %s reopened", tr_log_file());
    tr_config_t c;
    tr_config_defaults(&c);
    if (tr_path_join(path, sizeof path, d->datadir, TR_CONFIG_FILE) == 0 &&
        tr_config_load(path, 1, &c, err, sizeof err) == 0 && tr_log_set_level_name(c.log_level) == 0)
      log_info("main", "SIGHUP: log level %s", c.log_level);
    else
      log_warn("main", "SIGHUP: config not reloaded");
    return;
  }
  if (d->stopping) return;
  log_info("main", "%s: draining %zu requests, then stopping", signum == SIGINT ? "SIGINT" : "SIGTERM",
           d->jobs_in_flight);
  tr_daemon_request_stop(d);
}

/* What SIGTERM does; also the control socket's `shutdown` (control.h). */
void tr_daemon_request_stop(tr_daemon_t *d) {
  if (d->stopping) return;
  d->stopping = true;
  tr_notify("STOPPING=1");
  tr_server_stop_accepting(d);
  uv_timer_start(&d->shutdown_timer, shutdown_timeout_cb, SHUTDOWN_GRACE_MS, 0);
  if (tr_server_idle(d)) tr_daemon_finish_shutdown(d);
}

static void closed_cb(uv_handle_t *h) { (void)h; }

void tr_daemon_finish_shutdown(tr_daemon_t *d) {
  static bool done = false;
  if (done) return;
  done = true;
  tr_server_close_all(d);
  tr_control_close(d);
  tr_pool_stop(&d->pool);
  tr_walcheck_stop(&d->walcheck);
  /* Raft first: the sequencer takes its last events while it closes. */
  if (d->cluster) tr_sequencer_cluster_closing(&d->seq);
  tr_cluster_stop(d->cluster);
  /* Commits the queue (empty now), a last checkpoint and the history rows. */
  bool final_written = tr_sequencer_stop(&d->seq) == 0;
  tr_cluster_free(d->cluster);
  d->cluster = NULL;
  uv_timer_stop(&d->shutdown_timer);
  uv_close((uv_handle_t *)&d->shutdown_timer, closed_cb);
  uv_close((uv_handle_t *)&d->sigint, closed_cb);
  uv_close((uv_handle_t *)&d->sigterm, closed_cb);
  uv_close((uv_handle_t *)&d->sighup, closed_cb);
  tr_mailbox_close(&d->mailbox, closed_cb);
  if (final_written && !atomic_load(&d->seq.stats.halted)) {
    log_info("main", "stopped cleanly");
  } else {
    log_error("main", "stopped; the last checkpoint or history rows could not be written (every acknowledged tx "
              "is durable: they are rebuilt at the next start)");
    exit_status = 1;
  }
}

static int start_signals(tr_daemon_t *d) {
  uv_signal_t *sigs[] = {&d->sigint, &d->sigterm, &d->sighup};
  int nums[] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; i++) {
    if (uv_signal_init(d->loop, sigs[i]) != 0) return -1;
    sigs[i]->data = d;
    if (uv_signal_start(sigs[i], on_signal, nums[i]) != 0) return -1;
  }
  return 0;
}

static int load_node_key(tr_daemon_t *d, uint8_t sk[64]) {
  char path[TR_PATH_MAX], err[512];
  tr_key_t pk;
  int rc = tr_path_join(path, sizeof path, d->datadir, TR_NODE_KEY_FILE);
  if (rc == 0) rc = tr_key_file_read(path, 1, sk, &pk, err, sizeof err);
  if (rc != 0) {
    log_error("main", "%s", err);
    return rc;
  }
  tr_hex_encode(pk.b, 32, d->node_key_hex);
  return 0;
}

/* A cluster node whose journal was wiped (a lost disk, or the operator's
 * way to rejoin it) gets its identical genesis entry back; raft then brings
 * the rest from the other nodes, by log or snapshot. */
static int genesis_if_wiped(tr_daemon_t *d, const uint8_t node_sk[64]) {
  char path[TR_PATH_MAX], err[TR_PATH_MAX + 512] = "";
  struct stat st;
  if (tr_path_join(path, sizeof path, d->datadir, TR_DB_FILE) != 0 || lstat(path, &st) == 0 || errno != ENOENT)
    return 0; /* there is a journal (or something the sequencer will complain about) */
  int rc = tr_node_genesis_recreate(d->datadir, &d->config, node_sk, err, sizeof err);
  if (rc != 0) log_error("main", "cannot re-create the genesis entry in %s: %s", d->datadir, err[0] ? err : tr_strerror(rc));
  else log_warn("main", "%s had no journal: re-created the cluster's genesis entry; the other nodes send the rest",
                d->datadir);
  return rc;
}

int main(int argc, char **argv) {
  static tr_daemon_t daemon_state;
  tr_daemon_t *d = &daemon_state;
  args_t args;
  char err[512] = "";
  uint8_t node_sk[64];
  int rc = parse_args(argc, argv, &args);
  if (rc != 0) return rc;
  tr_log_init();
  if (args.log_file && tr_log_open_file(args.log_file) != 0) {
    fprintf(stderr, "tranched: cannot open log file %s: %s\n", args.log_file, strerror(errno));
    return 1;
  }
  if (sodium_init() < 0) {
    log_error("main", "libsodium failed to initialise");
    return 1;
  }
  /* No global allocation statistics: they take a process-wide mutex on every
   * SQLite malloc and free, from the writer and every reader thread alike.
   * Must come before SQLite initialises; nothing here depends on it. */
  if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
    log_warn("main", "cannot turn off SQLite memory statistics; continuing");
  /* Receipts, responses and tx structs are allocated on one thread and freed
   * on another; with glibc's default 128 KiB trim threshold the sequencer's
   * arena was given back to the kernel and grown again (sysmalloc) batch
   * after batch.  Keeping up to 32 MiB of free top per arena is bounded. */
  if (mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024) != 1) log_warn("main", "mallopt(M_TRIM_THRESHOLD) failed; continuing");
  /* A batch's delta arrays (a few hundred KiB) are made and freed each group
   * commit: from the arena, not mmap/munmap with its page faults and TLB
   * shootdowns on every batch.  Bigger blocks (whole response lines of big
   * queries) stay mmapped, so their memory goes back to the system once sent. */
  if (mallopt(M_MMAP_THRESHOLD, 1024 * 1024) != 1) log_warn("main", "mallopt(M_MMAP_THRESHOLD) failed; continuing");
  signal(SIGPIPE, SIG_IGN); /* a peer that vanished is an error return, not a death */
  umask(077);               /* database, WAL, checkpoint: the node's files are its own */
  snprintf(d->datadir, sizeof d->datadir, "%s", args.datadir);
  d->started_ms = tr_now_ms();
  d->loop = uv_default_loop();
  d->reorder = calloc(TR_REORDER_SLOTS, sizeof *d->reorder);
  if (d->reorder == NULL || load_config(d, &args) != 0 || load_node_key(d, node_sk) != 0) return 1;

  /* One writer per data directory, decided before the database is opened
   * for writing: a second tranched (or a --check) must not touch the files
   * of a live one.  The lock goes with the process, kill -9 included. */
  int lock_fd = -1;
  rc = tr_node_lock(d->datadir, &lock_fd, err, sizeof err);
  if (args.check) {
    /* Read-only checks: safe beside a live node, and it writes nothing. */
    uint64_t size = 0;
    char busy[600] = "";
    if (rc != 0) snprintf(busy, sizeof busy, " (%s)", err);
    rc = tr_sequencer_check(&d->seq, d->datadir, node_sk, &size, err, sizeof err);
    sodium_memzero(node_sk, sizeof node_sk);
    if (rc != 0) {
      log_error("main", "%s", err[0] ? err : tr_strerror(rc));
      return 1;
    }
    printf("configuration OK: journal size %llu%s\n", (unsigned long long)size, busy);
    return 0;
  }
  if (rc != 0) {
    log_error("main", "%s", err);
    return 1;
  }
  if (d->config.cluster_id != 0 && (rc = genesis_if_wiped(d, node_sk)) != 0) return 1;
  rc = tr_mailbox_init(d->loop, &d->mailbox, tr_server_on_message);
  d->mailbox.data = d;
  d->mailbox.drained = tr_server_on_drained;
  if (rc == 0) rc = tr_sequencer_start(&d->seq, d->datadir, node_sk, &d->mailbox, &d->config, err, sizeof err);
  if (rc == 0 && d->config.cluster_id != 0) { /* after the sequencer: raft's start may restore a snapshot into it */
    rc = tr_cluster_start(&d->cluster, d->datadir, &d->config, tr_sequencer_cluster_post, &d->seq, err, sizeof err);
    if (rc == 0) tr_sequencer_cluster_attach(&d->seq, d->cluster, d->config.listen);
    else tr_sequencer_stop(&d->seq);
  }
  sodium_memzero(node_sk, sizeof node_sk);
  if (rc != 0) {
    log_error("main", "%s", err[0] ? err : tr_strerror(rc));
    return 1;
  }
  memcpy(d->chain, d->seq.ledger.chain, sizeof d->chain);
  tr_note_vkey_format(d->chain, d->seq.ledger.node_key.b, d->vkey, sizeof d->vkey);
  char db[TR_PATH_MAX];
  tr_path_join(db, sizeof db, d->datadir, TR_DB_FILE);
  rc = tr_pool_start(&d->pool, d->workers, db, tr_rpc_work, &d->mailbox, d, err, sizeof err);
  if (rc == 0) rc = tr_uvpool_name_threads(d->loop); /* before the first checkpoint or backup queues work */
  if (rc == 0) rc = tr_walcheck_start(d->loop, &d->walcheck, db, &d->seq);
  if (rc == 0) rc = tr_server_start(d, err, sizeof err);
  if (rc == 0) rc = tr_control_start(d, err, sizeof err);
  if (rc == 0) rc = start_signals(d);
  if (rc == 0) rc = uv_timer_init(d->loop, &d->shutdown_timer);
  if (rc != 0) {
    log_error("main", "%s", err[0] ? err : "cannot start");
    tr_pool_stop(&d->pool);
    if (d->cluster) tr_sequencer_cluster_closing(&d->seq);
    tr_cluster_stop(d->cluster);
    tr_sequencer_stop(&d->seq);
    tr_cluster_free(d->cluster);
    return 1;
  }
  d->shutdown_timer.data = d;
  log_info("main", "tranched %s serving chain %s on %s with %u workers; size %llu", TR_VERSION, d->chain,
           d->config.listen, d->workers, (unsigned long long)atomic_load(&d->seq.stats.size));
  log_info("main", "checkpoint verifier key: %s", d->vkey);
  if (tr_notify("READY=1") != 0) log_warn("main", "could not tell systemd we are ready ($NOTIFY_SOCKET)");

  /* Last: the main thread's name is also the process's (ps, pgrep without
   * -f); every other thread named itself already. */
  tr_thread_name("tr-loop");
  uv_run(d->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(d->loop) != 0) log_debug("main", "loop closed with handles open");
  free(d->reorder);
  return exit_status;
}
