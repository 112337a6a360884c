/* log.c — stderr logging; the level is an atomic so SIGHUP / control can change it. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_int current_level = TR_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

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

void tr_log(tr_log_level_t level, const char *subsystem, const char *fmt, ...) {
  if ((int)level > atomic_load(&current_level)) return;
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char line[1024];
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %-6s ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                   level_names[level], subsystem);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s\n", line);
}
