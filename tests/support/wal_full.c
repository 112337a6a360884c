/* wal_full.c — an LD_PRELOAD shim for test_faults.py: one failed group
 * commit, on cue, with batches certainly queued behind it.
 *
 * When the file named by TR_TEST_WAL_FULL exists, the next write to a SQLite
 * WAL file (a path ending in "-wal") made by the thread named
 * TR_TEST_WAL_FULL_THREAD (default tr-journal) removes that file, waits
 * TR_TEST_WAL_FULL_MS milliseconds (default 300) and fails with ENOSPC, as a
 * full disk would.  One commit fails per cue.  The wait is the point: tr-seq
 * goes on applying batches and queues them behind the commit that is about
 * to fail, so they must fail with it ("an earlier batch's commit failed")
 * even though the commit after it would succeed, where filling a real disk
 * only sometimes catches a batch in that window.
 *
 * SQLite writes its WAL with pwrite64 (the symbol libsqlite3 imports); that
 * is the one call replaced.  Only tests load this; nothing in tranched knows
 * of it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);

static bool is_wal(int fd) {
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  return n >= 4 && memcmp(path + n - 4, "-wal", 4) == 0;
}

static bool on_the_thread(void) {
  const char *want = getenv("TR_TEST_WAL_FULL_THREAD");
  char name[16] = "";
  if (prctl(PR_GET_NAME, name, 0, 0, 0) != 0) return false;
  return strcmp(name, want ? want : "tr-journal") == 0;
}

/* Takes the cue: true for exactly one caller per cue file. */
static bool cue_taken(void) {
  const char *cue = getenv("TR_TEST_WAL_FULL");
  return cue != NULL && access(cue, F_OK) == 0 && unlink(cue) == 0;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
  static pwrite64_fn real;
  if (real == NULL) real = (pwrite64_fn)dlsym(RTLD_NEXT, "pwrite64");
  if (is_wal(fd) && on_the_thread() && cue_taken()) {
    const char *ms_text = getenv("TR_TEST_WAL_FULL_MS");
    long ms = ms_text ? strtol(ms_text, NULL, 10) : 300;
    struct timespec wait = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&wait, &wait) != 0 && errno == EINTR) {}
    errno = ENOSPC;
    return -1;
  }
  if (real == NULL) {
    errno = ENOSYS;
    return -1;
  }
  return real(fd, buf, count, offset);
}
