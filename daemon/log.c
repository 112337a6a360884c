/* log.c — logging to stderr; the level is an atomic so SIGHUP / control can
 * change it.  stderr may be the journal (systemd: <N> priority prefixes, no
 * timestamp of our own, journald stamps each line) or a file given with
 * --log-file, which SIGHUP reopens for logrotate (dup2 onto fd 2, so a line
 * written by any thread goes wholly to the old file or wholly to the new). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_FILE_PATH_MAX 4096

static atomic_int current_level = TR_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int syslog_priority[] = {3, 4, 6, 7}; /* err, warning, info, debug (sd-daemon(3)) */
static atomic_bool to_journal = false;
static char log_path[LOG_FILE_PATH_MAX]; /* set once at start, before any thread */

int tr_log_set_level_name(const char *name) {
  for (int i = 0; i <= TR_LOG_DEBUG; i++) {
    if (strcmp(name, level_names[i]) == 0) {
      atomic_store(&current_level, i);
      return 0;
    }
  }
  return -1;
}

void tr_log_set_level(tr_log_level_t level) { atomic_store(&current_level, (int)level); }
tr_log_level_t tr_log_level(void) { return (tr_log_level_t)atomic_load(&current_level); }
const char *tr_log_level_name(tr_log_level_t level) { return level_names[level]; }

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected; it
 * is ours only when fd 2 is still that stream (systemd.exec(5)). */
void tr_log_init(void) {
  const char *js = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  char tail;
  bool journal = js && sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                 (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
  atomic_store(&to_journal, journal);
}

static int open_onto_stderr(const char *path) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0) return -1;
  int rc = dup2(fd, STDERR_FILENO) < 0 ? -1 : 0;
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

int tr_log_open_file(const char *path) {
  if (strlen(path) >= sizeof log_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  if (open_onto_stderr(path) != 0) return -1;
  snprintf(log_path, sizeof log_path, "%s", path);
  atomic_store(&to_journal, false);
  return 0;
}

int tr_log_reopen(void) { return log_path[0] ? open_onto_stderr(log_path) : 0; }
const char *tr_log_file(void) { return log_path[0] ? log_path : NULL; }

void tr_log(tr_log_level_t level, const char *subsystem, const char *fmt, ...) {
  if ((int)level > atomic_load(&current_level)) return;
  char line[1024];
  int n;
  if (atomic_load(&to_journal)) {
    n = snprintf(line, sizeof line, "<%d>%-5s %-6s ", syslog_priority[level], level_names[level], subsystem);
  } else {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %-6s ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 level_names[level], subsystem);
  }
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s\n", line);
}
