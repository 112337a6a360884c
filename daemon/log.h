/* log.h — leveled logging to stderr with a UTC timestamp and a subsystem.
 * Safe from any thread (one fprintf per line; stderr is unbuffered). */
#ifndef TR_LOG_H
#define TR_LOG_H

typedef enum { TR_LOG_ERROR = 0, TR_LOG_WARN, TR_LOG_INFO, TR_LOG_DEBUG } tr_log_level_t;

/* Returns 0, or -1 for an unknown level name. */
int tr_log_set_level_name(const char *name);
void tr_log_set_level(tr_log_level_t level);
tr_log_level_t tr_log_level(void);
const char *tr_log_level_name(tr_log_level_t level);

void tr_log(tr_log_level_t level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(sub, ...) tr_log(TR_LOG_ERROR, sub, __VA_ARGS__)
#define log_warn(sub, ...) tr_log(TR_LOG_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...) tr_log(TR_LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) tr_log(TR_LOG_DEBUG, sub, __VA_ARGS__)

#endif
