/* ctl_restore.c — `tranchectl restore --datadir DIR --from FILE [--force]`.
 *
 * Putting a backup in place by hand (cp FILE DIR/tranche.db) corrupts it
 * whenever the old tranche.db-wal is still there: SQLite replays that WAL
 * onto the copied file at the next open.  restore does it safely:
 *
 *   1. DIR's lock (tr_node_lock): no tranched may hold DIR; if one does,
 *      nothing is written.
 *   2. A consistent copy of FILE into DIR/tranche.db.restore-PID (the SQLite
 *      backup API: FILE may even be a live WAL database), self-contained.
 *   3. The copy is audited like `verify` (every signature, replay, derived
 *      rows), its genesis must name this directory's node.key, and it must
 *      extend DIR/checkpoint (the log anyone may hold); --force accepts one
 *      behind or beside it and moves that checkpoint aside.
 *   4. Install: the old database is kept as tranche.db.before-restore-TIME-PID
 *      (a hard link), its -wal, -shm and -journal are moved beside it (so the
 *      kept copy stays whole and no stale WAL is left next to the new file),
 *      then the copy is renamed over tranche.db and DIR is fsynced.  At every
 *      instant DIR/tranche.db is one whole database; a crash in between
 *      leaves the old one without its WAL, which tranched refuses against
 *      the checkpoint and a second restore completes.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_ledger.h"
#include "tr_node.h"
#include "tr_note.h"
#include "tr_store.h"

static const char *const DB_SIDE_FILES[] = {"-wal", "-shm", "-journal"};

typedef struct {
  const char *dir, *from;
  bool force;
  char db[TR_PATH_MAX], copy[TR_PATH_MAX];
  tr_key_t node_pk;
  uint64_t size;                     /* the copy's journal size */
  bool checkpoint_aside;             /* --force: DIR/checkpoint does not fit the copy */
} restore_t;

static int fail(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "tranchectl restore: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  return CTL_FAILED;
}

/* Step 2. */
static int take_copy(restore_t *r) {
  char err[512];
  struct stat st;
  if (stat(r->from, &st) != 0) return fail("cannot read %s: %s", r->from, strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail("%s is not a regular file%s", r->from, "");
  char copy_name[64];
  snprintf(copy_name, sizeof copy_name, TR_DB_FILE ".restore-%ld", (long)getpid());
  if (tr_path_join(r->copy, sizeof r->copy, r->dir, copy_name) != 0) return fail("%s: path too long%s", r->dir, "");
  unlink(r->copy); /* ours from an earlier run with this pid: we hold the lock */
  char partial[TR_PATH_MAX + 32];
  snprintf(partial, sizeof partial, "%s.partial-%ld", r->copy, (long)getpid());
  ctl_progress_watch_t w;
  ctl_progress_watch_start(&w, "copy", partial, (uint64_t)st.st_size);
  int rc = tr_store_backup(r->from, r->copy, err, sizeof err);
  ctl_progress_watch_stop(&w, rc == 0);
  if (rc != 0) {
    r->copy[0] = '\0';
    return fail("%s is not a usable database: %s", r->from, err);
  }
  return 0;
}

/* Step 3: the copy belongs to this node, verifies, and extends DIR/checkpoint. */
static int check_copy(restore_t *r) {
  char err[512], path[TR_PATH_MAX], hex[2][65];
  tr_store_t *st = NULL;
  tr_ledger_t l;
  int rc = tr_store_open(r->copy, TR_STORE_READONLY, &st, err, sizeof err);
  if (rc != 0) return fail("cannot open the copy of %s: %s", r->from, err);
  if (tr_ledger_load(&l, st) != 0) {
    tr_store_close(st);
    return fail("%s has no genesis entry%s", r->from, "");
  }
  if (memcmp(l.node_key.b, r->node_pk.b, 32) != 0) {
    tr_store_close(st);
    fprintf(stderr, "tranchectl restore: %s is a backup of another node (its genesis names node key %s, %s/node.key "
            "is %s)\n", r->from, tr_hex_encode(l.node_key.b, 32, hex[0]), r->dir, tr_hex_encode(r->node_pk.b, 32, hex[1]));
    return CTL_FAILED;
  }
  tr_store_close(st);
  rc = ctl_audit_journal(r->copy, ctl_threads_default(), &r->size);
  if (rc != 0) return fail("%s does not verify (above); nothing was changed%s", r->from, "");

  char *note = NULL, vkey_text[TR_NOTE_VKEY_BUF_BYTES];
  size_t len = 0;
  if (tr_path_join(path, sizeof path, r->dir, TR_CHECKPOINT_FILE) != 0) return CTL_USAGE;
  rc = tr_file_read(path, TR_NOTE_BYTES_MAX, &note, &len);
  if (rc == TR_ENOT_FOUND) return 0; /* a node that never published one */
  if (rc != 0) return fail("cannot read %s: %s", path, strerror(errno));
  tr_note_vkey_t vkey;
  tr_checkpoint_t cp;
  uint8_t root[32];
  const char *why = NULL;
  char whybuf[256];
  rc = tr_note_vkey_format(l.chain, r->node_pk.b, vkey_text, sizeof vkey_text);
  if (rc == 0) rc = tr_note_vkey_parse(vkey_text, strlen(vkey_text), &vkey);
  if (rc == 0) rc = tr_checkpoint_open(note, len, &vkey, &cp);
  free(note);
  if (rc != 0) {
    why = "is not a checkpoint signed by this node's key";
  } else if (cp.size > r->size) {
    snprintf(whybuf, sizeof whybuf, "covers %llu entries but the backup has only %llu: restoring it would fork the "
             "log that checkpoint already published", (unsigned long long)cp.size, (unsigned long long)r->size);
    why = whybuf;
  } else if (cp.size > 0) {
    if (tr_store_open(r->copy, TR_STORE_READONLY, &st, err, sizeof err) != 0)
      return fail("cannot open the copy of %s: %s", r->from, err);
    rc = tr_store_merkle_root(st, cp.size, root);
    tr_store_close(st);
    if (rc != 0 || memcmp(root, cp.root, 32) != 0) why = "is not extended by the backup (the roots differ): a fork";
  }
  if (why == NULL) return 0;
  if (!r->force) {
    fprintf(stderr, "tranchectl restore: %s %s; nothing was changed (--force restores it anyway and moves the "
            "checkpoint aside)\n", path, why);
    return CTL_FAILED;
  }
  fprintf(stderr, "tranchectl restore: --force: %s %s; moving it aside\n", path, why);
  r->checkpoint_aside = true;
  return 0;
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* Step 4. */
static int install(restore_t *r, char *aside, size_t asidelen) {
  char from[TR_PATH_MAX + 16], to[TR_PATH_MAX + 64], name[96];
  snprintf(name, sizeof name, TR_DB_FILE ".before-restore-%lld-%ld", (long long)time(NULL), (long)getpid());
  if (tr_path_join(aside, asidelen, r->dir, name) != 0) return fail("%s: path too long%s", r->dir, "");
  struct stat st;
  bool had_db = lstat(r->db, &st) == 0;
  if (had_db && link(r->db, aside) != 0) return fail("cannot keep the old database as %s: %s", aside, strerror(errno));
  for (size_t i = 0; i < sizeof DB_SIDE_FILES / sizeof DB_SIDE_FILES[0]; i++) {
    snprintf(from, sizeof from, "%s%s", r->db, DB_SIDE_FILES[i]);
    snprintf(to, sizeof to, "%s%s", aside, DB_SIDE_FILES[i]);
    if (rename(from, to) != 0 && errno != ENOENT) return fail("cannot move %s aside: %s", from, strerror(errno));
  }
  if (r->checkpoint_aside) {
    char cp[TR_PATH_MAX];
    snprintf(name, sizeof name, TR_CHECKPOINT_FILE ".before-restore-%lld-%ld", (long long)time(NULL), (long)getpid());
    if (tr_path_join(cp, sizeof cp, r->dir, TR_CHECKPOINT_FILE) != 0 || tr_path_join(to, sizeof to, r->dir, name) != 0)
      return fail("%s: path too long%s", r->dir, "");
    if (rename(cp, to) != 0 && errno != ENOENT) return fail("cannot move %s aside: %s", cp, strerror(errno));
  }
  if (rename(r->copy, r->db) != 0) return fail("cannot rename the verified copy to %s: %s", r->db, strerror(errno));
  r->copy[0] = '\0';
  if (fsync_dir(r->dir) != 0) return fail("cannot fsync %s: %s", r->dir, strerror(errno));
  if (!had_db) aside[0] = '\0';
  return 0;
}

int ctl_cmd_restore(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  restore_t r = {.dir = ctl_opt(o, "datadir"), .from = ctl_opt(o, "from"), .force = ctl_flag(o, "force")};
  if (!r.dir || !r.from) return ctl_usage_error(cmd, "--datadir and --from are required");
  char err[512], path[TR_PATH_MAX], aside[TR_PATH_MAX] = "";
  uint8_t sk[64];
  struct stat st;
  if (stat(r.dir, &st) != 0 || !S_ISDIR(st.st_mode)) return fail("%s is not a data directory%s", r.dir, "");
  if (tr_path_join(r.db, sizeof r.db, r.dir, TR_DB_FILE) != 0) return fail("%s: path too long%s", r.dir, "");
  /* Step 1: before anything is written; held until we exit. */
  int lock_fd = -1;
  if (tr_node_lock(r.dir, &lock_fd, err, sizeof err) != 0) {
    fprintf(stderr, "tranchectl restore: %s; stop tranched first (nothing was changed)\n", err);
    return CTL_FAILED;
  }
  int rc = tr_path_join(path, sizeof path, r.dir, TR_NODE_KEY_FILE);
  if (rc == 0 && tr_key_file_read(path, 1, sk, &r.node_pk, err, sizeof err) != 0) {
    fprintf(stderr, "tranchectl restore: %s\n", err);
    rc = CTL_FAILED;
  }
  sodium_memzero(sk, sizeof sk);
  if (rc == 0) rc = take_copy(&r);
  if (rc == 0) rc = check_copy(&r);
  if (rc == 0) rc = install(&r, aside, sizeof aside);
  if (r.copy[0]) unlink(r.copy);
  close(lock_fd);
  if (rc != 0) return rc;
  printf("restored %llu entries from %s into %s\n", (unsigned long long)r.size, r.from, r.db);
  if (aside[0]) printf("the replaced database is kept as %s (with its WAL); remove it when satisfied\n", aside);
  return CTL_OK;
}
