/* log.h — leveled logging to stderr with a UTC timestamp and a subsystem
 * (under journald: a <N> priority prefix instead of the timestamp).  Safe
 * from any thread (one fprintf per line; stderr is unbuffered). */
#ifndef TR_LOG_H
#define TR_LOG_H

typedef enum { TR_LOG_ERROR = 0, TR_LOG_WARN, TR_LOG_INFO, TR_LOG_DEBUG } tr_log_level_t;

/* Returns 0, or -1 for an unknown level name. */
int tr_log_set_level_name(const char *name);
void tr_log_set_level(tr_log_level_t level);
tr_log_level_t tr_log_level(void);
const char *tr_log_level_name(tr_log_level_t level);

/* Detects journald on stderr ($JOURNAL_STREAM naming fd 2). Call once at start. */
void tr_log_init(void);
/* Sends the log (fd 2) to path, appending; 0 or -1 with errno. */
int tr_log_open_file(const char *path);
/* SIGHUP: opens the log file's path again (after logrotate moved it); 0 when no file. */
int tr_log_reopen(void);
const char *tr_log_file(void);   /* NULL when logging to stderr as given */

void tr_log(tr_log_level_t level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(sub, ...) tr_log(TR_LOG_ERROR, sub, __VA_ARGS__)
#define log_warn(sub, ...) tr_log(TR_LOG_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...) tr_log(TR_LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) tr_log(TR_LOG_DEBUG, sub, __VA_ARGS__)

#endif
