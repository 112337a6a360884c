/* control.h — the node's Unix control socket DIR/control.sock (mode 0600):
 * newline-delimited JSON-RPC 2.0 for the methods that control the node
 * itself and are never on the TCP port (PROTOCOL.md §5):
 *
 *   backup    {to}     consistent online copy of the database to the absolute
 *                      path `to` (must not exist) -> {path, size, bytes}
 *   log.level {level}  error|warn|info|debug -> {level}
 *   shutdown  {}       as SIGTERM: drain, checkpoint, exit 0 -> {stopping}
 *
 * Loop thread only; the backup runs on the libuv thread pool. */
#ifndef TR_CONTROL_H
#define TR_CONTROL_H

#include <stddef.h>

struct tr_daemon;

#define TR_CONTROL_LINE_BYTES_MAX (64 * 1024) /* one request; a path and a few names need far less */
#define TR_CONTROL_CONNECTIONS_MAX 8          /* an operator's tools, not clients: more are closed at accept */

/* Removes a stale socket (refuses if a live node answers on it), makes sure
 * the data directory is 0700, binds, chmods the socket 0600 and listens.
 * Returns 0, or a negative libuv/tr_err code with err filled. */
int tr_control_start(struct tr_daemon *d, char *err, size_t errlen);

/* Stops listening (libuv unlinks the socket file) and closes every control
 * connection; a backup still running finishes and is then discarded. */
void tr_control_close(struct tr_daemon *d);

/* main.c: what SIGTERM does — stop accepting, drain, then shut down. */
void tr_daemon_request_stop(struct tr_daemon *d);

#endif
