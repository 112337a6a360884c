/* notify.h — systemd readiness (sd_notify protocol) without libsystemd.
 *
 * The protocol is one datagram of "KEY=VALUE" lines to the Unix socket named
 * by $NOTIFY_SOCKET (a leading '@' means the abstract namespace).  Speaking
 * it directly keeps tranched free of a libsystemd dependency and does
 * nothing at all when not started by systemd.
 */
#ifndef TR_NOTIFY_H
#define TR_NOTIFY_H

/* Sends state (e.g. "READY=1", "STOPPING=1") if $NOTIFY_SOCKET is set.
 * Returns 0, or -1 if the socket is set but the message could not be sent. */
int tr_notify(const char *state);

#endif
