/* ctl_node.c — commands for the running node over its Unix control socket
 * DIR/control.sock (daemon/control.h): backup, log-level, stop.  These are
 * never on the TCP port; only the data directory's owner can reach them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "tr_node.h"

#define BACKUP_TIMEOUT_S 3600   /* a large journal copies at disk speed; wait for it */
#define STOP_WAIT_MS 60000      /* the daemon's own grace is 30 s, plus the last checkpoint */
#define STOP_POLL_MS 100

int ctl_control_call(const char *datadir, const char *method, cJSON *params, cJSON **result, int timeout_s) {
  int fd = ctl_connect_control(datadir);
  if (fd < 0) {
    cJSON_Delete(params);
    return CTL_DAEMON;
  }
  if (timeout_s > 0) {
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  int rc = ctl_call(fd, method, params, result, NULL);
  close(fd);
  return rc;
}

/* The pid in DIR/lock (the daemon that will write FILE.partial-PID) and the
 * database's size, for the progress line; 0 when unknown. */
static long daemon_pid(const char *dir, uint64_t *db_bytes) {
  char path[TR_PATH_MAX], *text = NULL;
  struct stat st;
  long pid = 0;
  if (tr_path_join(path, sizeof path, dir, TR_DB_FILE) == 0 && stat(path, &st) == 0) *db_bytes = (uint64_t)st.st_size;
  if (tr_path_join(path, sizeof path, dir, TR_LOCK_FILE) == 0 && tr_file_read(path, 32, &text, NULL) == 0)
    pid = strtol(text, NULL, 10);
  free(text);
  return pid > 0 ? pid : 0;
}

int ctl_cmd_backup(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *dir = ctl_opt(o, "datadir"), *to = ctl_opt(o, "to");
  char abs[TR_PATH_MAX];
  struct stat st;
  if (!dir || !to) return ctl_usage_error(cmd, "--datadir and --to are required");
  if (ctl_abs_path(to, abs, sizeof abs) != 0) {
    fprintf(stderr, "tranchectl backup: cannot resolve the directory of %s: %s\n", to, strerror(errno));
    return CTL_FAILED;
  }
  if (lstat(abs, &st) == 0) {
    fprintf(stderr, "tranchectl backup: %s already exists; a backup never overwrites a file\n", abs);
    return CTL_FAILED;
  }
  cJSON *params = cJSON_CreateObject(), *r = NULL;
  cJSON_AddStringToObject(params, "to", abs);
  ctl_progress_watch_t w;
  char partial[TR_PATH_MAX + 32];
  uint64_t total = 0;
  long pid = daemon_pid(dir, &total);
  snprintf(partial, sizeof partial, "%s.partial-%ld", abs, pid);
  if (pid > 0) ctl_progress_watch_start(&w, "backup", partial, total);
  int rc = ctl_control_call(dir, "backup", params, &r, BACKUP_TIMEOUT_S);
  if (pid > 0) ctl_progress_watch_stop(&w, rc == 0);
  if (rc == 0 && o->json) ctl_print_json(r);
  else if (rc == 0) {
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(r, "size"), *bytes = cJSON_GetObjectItemCaseSensitive(r, "bytes");
    printf("backup of %.0f entries (%.0f bytes) written to %s\n", cJSON_IsNumber(size) ? size->valuedouble : 0.0,
           cJSON_IsNumber(bytes) ? bytes->valuedouble : 0.0, abs);
  }
  cJSON_Delete(r);
  return rc;
}

int ctl_cmd_log_level(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *dir = ctl_opt(o, "datadir");
  if (!dir) return ctl_usage_error(cmd, "--datadir is required");
  cJSON *params = cJSON_CreateObject(), *r = NULL;
  cJSON_AddStringToObject(params, "level", o->pos[0]);
  int rc = ctl_control_call(dir, "log.level", params, &r, 0);
  if (rc == 0) printf("log level %s\n", o->pos[0]);
  cJSON_Delete(r);
  return rc;
}

/* True while something still answers on the control socket. */
static bool node_alive(const char *datadir) {
  char path[TR_PATH_MAX];
  struct stat st;
  return tr_path_join(path, sizeof path, datadir, TR_CONTROL_SOCKET) == 0 && stat(path, &st) == 0;
}

int ctl_cmd_stop(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *dir = ctl_opt(o, "datadir");
  if (!dir) return ctl_usage_error(cmd, "--datadir is required");
  cJSON *r = NULL;
  int rc = ctl_control_call(dir, "shutdown", NULL, &r, 0);
  cJSON_Delete(r);
  if (rc != 0) return rc;
  struct timespec ts = {.tv_sec = 0, .tv_nsec = STOP_POLL_MS * 1000000L};
  for (int waited = 0; node_alive(dir); waited += STOP_POLL_MS) {
    if (waited >= STOP_WAIT_MS) {
      fprintf(stderr, "tranchectl stop: the node is still stopping after %d s\n", STOP_WAIT_MS / 1000);
      return CTL_DAEMON;
    }
    nanosleep(&ts, NULL);
  }
  printf("stopped\n");
  return CTL_OK;
}
