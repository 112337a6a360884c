/* ctl_import.c — `tranchectl import FILE|-`: bulk submission of signed txs.
 *
 * Each non-empty input line is one {"tx": …, "sig": …} object, as `sign` and
 * the tx commands' --print write them.  Requests are pipelined on one
 * connection, IMPORT_WINDOW at a time (the daemon answers in order and stops
 * reading a connection past 64 in flight), so a long file goes at the node's
 * speed.  An `overloaded` answer is retried after a pause; refusals are
 * reported with their line number and the import goes on.  Progress shows on
 * a terminal.  Exit 0 when every line was accepted (or was already in the
 * journal), 1 when any was refused or malformed, 3 when the daemon went away.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define IMPORT_WINDOW 64               /* the daemon's per-connection in-flight bound */
#define IMPORT_LINE_BYTES_MAX (64 * 1024) /* a {tx, sig} line: a 16 KiB tx escaped, plus the signature */
#define IMPORT_RETRY_PAUSE_MS 50       /* after `overloaded`, before sending that line again */

typedef struct {
  int fd;
  char buf[1 << 20];                   /* responses to pipelined receipts fit many to a read */
  size_t len;
} reader_t;

typedef struct {
  unsigned long line;                  /* input line number */
  char *request;                       /* the JSON-RPC line, for a retry */
} slot_t;

typedef struct {
  unsigned long accepted, duplicate, refused, malformed;
} tally_t;

/* One response line from the daemon, NUL-terminated in place; NULL on EOF or error. */
static char *reader_line(reader_t *r, size_t *consumed) {
  for (;;) {
    char *nl = memchr(r->buf, '\n', r->len);
    if (nl) {
      *nl = '\0';
      *consumed = (size_t)(nl - r->buf) + 1;
      return r->buf;
    }
    if (r->len == sizeof r->buf) return NULL;
    ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return NULL;
    r->len += (size_t)n;
  }
}

static void reader_drop(reader_t *r, size_t consumed) {
  memmove(r->buf, r->buf + consumed, r->len - consumed);
  r->len -= consumed;
}

static int send_line(int fd, const char *s) {
  for (size_t len = strlen(s); len > 0;) {
    ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    s += n, len -= (size_t)n;
  }
  return 0;
}

/* The tx.submit request for one input line; NULL when the line is not a {tx, sig} object. */
static char *request_of(const char *line, unsigned long lineno) {
  cJSON *in = cJSON_Parse(line);
  const cJSON *tx = cJSON_GetObjectItemCaseSensitive(in, "tx"), *sig = cJSON_GetObjectItemCaseSensitive(in, "sig");
  char *out = NULL;
  if (cJSON_IsString(tx) && cJSON_IsString(sig) && cJSON_GetArraySize(in) == 2) {
    cJSON *req = cJSON_CreateObject(), *params = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "jsonrpc", "2.0");
    cJSON_AddStringToObject(req, "method", "tx.submit");
    cJSON_AddStringToObject(params, "tx", tx->valuestring);
    cJSON_AddStringToObject(params, "sig", sig->valuestring);
    cJSON_AddItemToObject(req, "params", params);
    cJSON_AddNumberToObject(req, "id", (double)lineno);
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (text && (out = malloc(strlen(text) + 2)) != NULL) sprintf(out, "%s\n", text);
    free(text);
  }
  cJSON_Delete(in);
  return out;
}

/* Tallies one response; returns 1 when the request must be sent again. */
static int tally_response(const char *resp, const slot_t *s, tally_t *t) {
  cJSON *r = cJSON_Parse(resp);
  const cJSON *res = cJSON_GetObjectItemCaseSensitive(r, "result"), *err = cJSON_GetObjectItemCaseSensitive(r, "error");
  int retry = 0;
  if (res) {
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "duplicate"))) t->duplicate++;
    else t->accepted++;
  } else {
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code"), *data = cJSON_GetObjectItemCaseSensitive(err, "data");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(data, "reason"), *detail = cJSON_GetObjectItemCaseSensitive(data, "detail");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    if (cJSON_IsNumber(code) && code->valueint == RPC_ERR_OVERLOADED) {
      retry = 1;
    } else {
      t->refused++;
      fprintf(stderr, "line %lu: refused: %s: %s\n", s->line,
              cJSON_IsString(reason) ? reason->valuestring : (cJSON_IsString(msg) ? msg->valuestring : "error"),
              cJSON_IsString(detail) ? detail->valuestring : "");
    }
  }
  cJSON_Delete(r);
  return retry;
}

static void summary(const tally_t *t) {
  unsigned long n = t->accepted + t->duplicate + t->refused + t->malformed;
  printf("imported %lu lines: %lu accepted, %lu duplicate, %lu refused, %lu malformed\n", n, t->accepted,
         t->duplicate, t->refused, t->malformed);
}

/* Lines in a regular file (the progress line's total); 0 for a pipe or on error. */
static uint64_t count_lines(FILE *in) {
  struct stat st;
  if (in == stdin || fstat(fileno(in), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  char buf[65536];
  uint64_t n = 0;
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, in)) > 0)
    for (char *p = buf; (p = memchr(p, '\n', (size_t)(buf + got - p))) != NULL; p++) n++;
  rewind(in);
  return n;
}

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int ctl_cmd_import(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  FILE *in = strcmp(o->pos[0], "-") == 0 ? stdin : fopen(o->pos[0], "r");
  if (in == NULL) return ctl_usage_error(cmd, "cannot read %s: %s", o->pos[0], strerror(errno));
  int fd = ctl_connect_rpc(o);
  if (fd < 0) {
    if (in != stdin) fclose(in);
    return CTL_DAEMON;
  }
  if (ctl_rpc_is_http()) { /* it pipelines lines: HTTP would answer one request at a time */
    close(fd);
    if (in != stdin) fclose(in);
    return ctl_usage_error(cmd, "import streams lines: give --rpc HOST:PORT, not an http:// address");
  }
  static reader_t rd;
  slot_t slots[IMPORT_WINDOW];
  size_t head = 0, inflight = 0;
  tally_t t = {0};
  char *line = NULL;
  size_t cap = 0;
  unsigned long lineno = 0;
  bool eof = false, broken = false;
  rd.fd = fd;
  ctl_progress_t prog;
  ctl_progress_begin(&prog, "import", false, ctl_progress_wanted() ? count_lines(in) : 0);
  while (!broken && (!eof || inflight > 0)) {
    while (!eof && inflight < IMPORT_WINDOW) { /* fill the window */
      ssize_t n = getline(&line, &cap, in);
      if (n < 0) { eof = true; break; }
      lineno++;
      if (n <= 1 || (size_t)n > IMPORT_LINE_BYTES_MAX) {
        if (n > 1) { t.malformed++; fprintf(stderr, "line %lu: over %d bytes\n", lineno, IMPORT_LINE_BYTES_MAX); }
        continue;
      }
      char *req = request_of(line, lineno);
      if (req == NULL) {
        t.malformed++;
        fprintf(stderr, "line %lu: not a {\"tx\": string, \"sig\": string} object\n", lineno);
        continue;
      }
      slot_t *s = &slots[(head + inflight) % IMPORT_WINDOW];
      *s = (slot_t){lineno, req};
      inflight++;
      if (send_line(fd, req) != 0) { broken = true; break; }
    }
    if (broken || inflight == 0) continue;
    size_t used = 0;
    char *resp = reader_line(&rd, &used);
    if (resp == NULL) { broken = true; break; }
    slot_t *s = &slots[head];
    int retry = tally_response(resp, s, &t);
    reader_drop(&rd, used);
    head = (head + 1) % IMPORT_WINDOW;
    inflight--;
    if (retry) { /* back of the window: answers stay in send order */
      pause_ms(IMPORT_RETRY_PAUSE_MS);
      slots[(head + inflight) % IMPORT_WINDOW] = *s;
      inflight++;
      if (send_line(fd, s->request) != 0) broken = true;
    } else {
      free(s->request);
      ctl_progress_update(&prog, s->line);
    }
  }
  for (; inflight > 0; inflight--, head = (head + 1) % IMPORT_WINDOW) free(slots[head].request);
  free(line);
  close(fd);
  if (in != stdin) fclose(in);
  ctl_progress_end(&prog, lineno);
  summary(&t);
  if (broken) {
    fprintf(stderr, "tranchectl import: the daemon went away after line %lu; rerun: accepted lines come back as "
            "duplicates\n", lineno);
    return CTL_DAEMON;
  }
  return t.refused || t.malformed ? CTL_FAILED : CTL_OK;
}
