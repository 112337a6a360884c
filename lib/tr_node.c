/* tr_node.c — data directory, key files, config, init. */
#include "tr_node.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
  tr_hex_encode(seed, 32, line);
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
  int rc = (n == 65 && buf[64] == '\n') ? tr_hex_decode(buf, 64, seed, 32) : TR_EINVALID;
  sodium_memzero(buf, sizeof buf);
  if (rc != 0) {
    snprintf(err, errlen, "key file %s must hold 64 lowercase hex characters and a newline", path);
    return TR_EINVALID;
  }
  crypto_sign_seed_keypair(pk->b, sk, seed);
  sodium_memzero(seed, sizeof seed);
  return 0;
}

static const char DEFAULT_CONFIG[] =
    "# tranche node configuration.  Every key can also be given to tranched as\n"
    "# a flag of the same name (--listen, --workers, --log-level); flags win.\n"
    "\n"
    "# Address of the JSON-RPC port.  Every client that reaches it can read every\n"
    "# account and holding: keep it on loopback or a private network.\n"
    "listen = " TR_DEFAULT_LISTEN "\n"
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

/* Fills a fresh directory `dir` with node key, config and genesis. */
static int node_fill(const char *dir, const char *chain, const tr_key_t *admin, char *err, size_t errlen) {
  char path[TR_PATH_MAX];
  uint8_t seed[32], sk[64];
  tr_key_t node;
  randombytes_buf(seed, sizeof seed);
  crypto_sign_seed_keypair(node.b, sk, seed);
  int rc = tr_path_join(path, sizeof path, dir, TR_NODE_KEY_FILE);
  if (rc == 0) rc = tr_key_file_write(path, seed);
  sodium_memzero(seed, sizeof seed);
  if (rc != 0) snprintf(err, errlen, "cannot write node key %s", path);
  if (rc == 0 && (rc = tr_path_join(path, sizeof path, dir, TR_CONFIG_FILE)) == 0 &&
      (rc = tr_file_replace(path, DEFAULT_CONFIG, sizeof DEFAULT_CONFIG - 1)) != 0)
    snprintf(err, errlen, "cannot write config %s", path);
  tr_store_t *s = NULL;
  if (rc == 0 && (rc = tr_path_join(path, sizeof path, dir, TR_DB_FILE)) == 0)
    rc = tr_store_open(path, TR_STORE_CREATE, &s, err, errlen);
  if (rc == 0) {
    rc = tr_ledger_genesis(s, chain, sk, admin, tr_now_ms());
    if (rc != 0) snprintf(err, errlen, "cannot write genesis: %s", tr_strerror(rc));
  }
  tr_store_close(s); /* checkpoints and removes the WAL: the directory is self-contained */
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

/* Built in a private sibling directory and renamed into place at the end, so
 * that DIR either does not exist or is a complete node: an init killed
 * half-way leaves only a DIR.init-XXXXXX directory, never a half-made DIR. */
int tr_node_init(const char *datadir, const char *chain, const tr_key_t *admin, char *err, size_t errlen) {
  struct stat st;
  char tmp[TR_PATH_MAX];
  if (lstat(datadir, &st) == 0) {
    snprintf(err, errlen, "cannot create data directory %s: it already exists (init never overwrites a node)",
             datadir);
    return TR_EEXISTS;
  }
  int rc = tr_node_socket_path_check(datadir, err, errlen);
  if (rc != 0) return rc;
  if (snprintf(tmp, sizeof tmp, "%s.init-XXXXXX", datadir) >= (int)sizeof tmp) return TR_ELIMIT;
  if (mkdtemp(tmp) == NULL) { /* mode 0700 */
    snprintf(err, errlen, "cannot create a directory beside %s: %s", datadir, strerror(errno));
    return TR_EIO;
  }
  rc = node_fill(tmp, chain, admin, err, errlen);
  if (rc == 0 && rename(tmp, datadir) != 0) {
    snprintf(err, errlen, "cannot move the new node into %s: %s", datadir, strerror(errno));
    rc = errno == EEXIST || errno == ENOTEMPTY ? TR_EEXISTS : TR_EIO;
  }
  if (rc != 0) {
    node_discard(tmp);
    return rc;
  }
  return fsync_dir_of(datadir);
}

void tr_config_defaults(tr_config_t *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->listen, sizeof c->listen, "%s", TR_DEFAULT_LISTEN);
  snprintf(c->log_level, sizeof c->log_level, "info");
  c->clock_skew_max_s = TR_CLOCK_SKEW_MAX_S_DEFAULT;
  c->connections_max = TR_RPC_CONNECTIONS_MAX;
  c->connections_per_peer = TR_RPC_CONNECTIONS_PER_PEER_DEFAULT;
  c->request_deadline_s = TR_RPC_REQUEST_DEADLINE_S_DEFAULT;
}

/* A decimal in [lo, hi], digits only. */
static int parse_uint_in(const char *value, unsigned long lo, unsigned long hi, unsigned *out) {
  char *end;
  if (*value < '0' || *value > '9') return TR_EINVALID;
  errno = 0;
  unsigned long v = strtoul(value, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return TR_EINVALID;
  *out = (unsigned)v;
  return 0;
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

int tr_config_load(const char *path, int optional, tr_config_t *c, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    if (optional && errno == ENOENT) return 0;
    snprintf(err, errlen, "cannot read config %s: %s", path, strerror(errno));
    return TR_EIO;
  }
  char line[512];
  int lineno = 0, rc = 0;
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
    rc = config_set(c, key, value);
    if (rc == TR_ENOT_FOUND) snprintf(err, errlen, "%s:%d: unknown key `%s`", path, lineno, key);
    else if (rc != 0) snprintf(err, errlen, "%s:%d: bad value for `%s`: %s", path, lineno, key, value);
  }
  fclose(f);
  return rc;
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
