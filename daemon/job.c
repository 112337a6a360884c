/* job.c — job lifetime and JSON-RPC response rendering. */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_limits.h"

tr_job_t *tr_job_new(struct tr_conn *conn, const char *line, size_t len, uint64_t ticket) {
  tr_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return NULL;
  job->line = malloc(len + 1);
  if (job->line == NULL) {
    free(job);
    return NULL;
  }
  memcpy(job->line, line, len);
  job->line[len] = '\0';
  job->len = len;
  job->conn = conn;
  job->ticket = ticket;
  return job;
}

static void elem_clear(tr_elem_t *e) {
  cJSON_Delete(e->id);
  cJSON_Delete(e->params);
  free(e->tx);
  free(e->tx_bytes);
  free(e->response);
}

void tr_job_free(tr_job_t *job) {
  if (job == NULL) return;
  for (size_t i = 0; i < job->n_elems; i++) elem_clear(&job->elems[i]);
  free(job->elems);
  free(job->line);
  free(job->response);
  free(job);
}

bool tr_job_has_deferred(const tr_job_t *job) {
  for (size_t i = 0; i < job->n_elems; i++)
    if (job->elems[i].state == TR_ELEM_DEFERRED) return true;
  return false;
}

bool tr_job_output_parked(const tr_job_t *job) {
  if (job->out == NULL) return false;
  /* Answers handed to the socket drain only as the peer reads: past the
   * bound even the oldest job waits (its own bytes are not among them, so
   * the wait ends when the peer reads, or the connection is closed). */
  if (atomic_load(&job->out->in_writes) >= TR_RPC_OUT_BYTES_MAX) return true;
  if (atomic_load(&job->out->oldest) == job->ticket) return false;
  size_t all = atomic_load(&job->out->unwritten);
  return all > job->out_counted && all - job->out_counted >= TR_RPC_OUT_BYTES_MAX;
}

static void count_bytes(tr_job_t *job, size_t n) {
  job->out_counted += n;
  if (job->out == NULL) return;
  atomic_fetch_add(&job->out->unwritten, n);
  atomic_fetch_add(job->out->total, n);
}

void tr_job_count_output(tr_job_t *job, tr_elem_t *e) {
  if (e->response == NULL) return;
  size_t n = strlen(e->response);
  if (job->out_counted + n > TR_RPC_RESPONSE_BYTES_MAX) {
    free(e->response);
    e->response = tr_rpc_error_text(e->id, TR_RPC_INVALID_REQUEST,
                                    "invalid request: the responses to this line passed the 16 MiB limit; "
                                    "ask for fewer or smaller pages per request", NULL);
    n = e->response ? strlen(e->response) : 0;
  }
  count_bytes(job, n);
}

void tr_job_uncount_output(tr_job_t *job) {
  if (job->out && job->out_counted > 0) {
    atomic_fetch_sub(&job->out->unwritten, job->out_counted);
    atomic_fetch_sub(job->out->total, job->out_counted);
  }
  job->out_counted = 0;
}

/* Batch: "[r1,r2,…]\n" of the non-notification answers, nothing if none.
 * Single: "r\n" or nothing for a notification. */
int tr_job_render(tr_job_t *job) {
  size_t total = 3, count = 0;
  bool missing = job->n_elems == 0; /* a request line has one element at least, unless out of memory */
  for (size_t i = 0; i < job->n_elems; i++) {
    if (job->elems[i].notification) continue; /* a notification is never answered */
    if (job->elems[i].response == NULL) {
      missing = true;
      continue;
    }
    total += strlen(job->elems[i].response) + 1;
    count++;
  }
  job->complete = true;
  if (missing) return TR_ENOMEM;
  if (count == 0) return 0;
  char *out = malloc(total);
  if (out == NULL) return TR_ENOMEM;
  size_t o = 0;
  if (job->batch) out[o++] = '[';
  for (size_t i = 0, k = 0; i < job->n_elems; i++) {
    const char *r = job->elems[i].response;
    if (r == NULL || job->elems[i].notification) continue;
    if (k++) out[o++] = ',';
    size_t n = strlen(r);
    memcpy(out + o, r, n);
    o += n;
  }
  if (job->batch) out[o++] = ']';
  out[o++] = '\n';
  job->response = out;
  job->response_len = o;
  /* The line holds every answer now: the copies go, and the connection is
   * charged for the line (receipts were made by the sequencer, uncounted). */
  for (size_t i = 0; i < job->n_elems; i++) {
    free(job->elems[i].response);
    job->elems[i].response = NULL;
  }
  if (o >= job->out_counted) count_bytes(job, o - job->out_counted);
  else {
    if (job->out) {
      atomic_fetch_sub(&job->out->unwritten, job->out_counted - o);
      atomic_fetch_sub(job->out->total, job->out_counted - o);
    }
    job->out_counted = o;
  }
  return 0;
}

/* The request id echoed back.  rpc.c keeps a number id as its source text
 * (a raw item, copied as is); a number item (made by hand, not from a
 * request) is written as digits when integral, since cJSON prints 10^15 and
 * up in exponent form. */
static cJSON *id_copy(const cJSON *id) {
  if (id == NULL) return cJSON_CreateNull();
  if (cJSON_IsNumber(id)) {
    double v = id->valuedouble;
    if (v > -9.2e18 && v < 9.2e18 && v == (double)(long long)v) { /* range first: the cast is UB outside */
      char digits[24];
      snprintf(digits, sizeof digits, "%lld", (long long)v);
      return cJSON_CreateRaw(digits);
    }
  }
  return cJSON_Duplicate(id, 1);
}

static char *render(const cJSON *id, const char *member, cJSON *value) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) {
    cJSON_Delete(value);
    return NULL;
  }
  cJSON_AddStringToObject(o, "jsonrpc", "2.0");
  cJSON_AddItemToObject(o, member, value);
  cJSON_AddItemToObject(o, "id", id_copy(id));
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return text;
}

char *tr_rpc_result_text(const cJSON *id, cJSON *result) { return render(id, "result", result); }

char *tr_rpc_result_raw(const cJSON *id, const char *result_json) {
  cJSON *idc = id_copy(id);
  char *id_text = idc ? cJSON_PrintUnformatted(idc) : NULL;
  cJSON_Delete(idc);
  if (id_text == NULL) return NULL;
  size_t cap = strlen(result_json) + strlen(id_text) + 40;
  char *out = malloc(cap);
  if (out) snprintf(out, cap, "{\"jsonrpc\":\"2.0\",\"result\":%s,\"id\":%s}", result_json, id_text);
  free(id_text);
  return out;
}

char *tr_rpc_error_text(const cJSON *id, int code, const char *message, cJSON *data) {
  cJSON *err = cJSON_CreateObject();
  cJSON_AddNumberToObject(err, "code", code);
  cJSON_AddStringToObject(err, "message", message);
  if (data) cJSON_AddItemToObject(err, "data", data);
  return render(id, "error", err);
}

char *tr_rpc_refusal_text(const cJSON *id, int reason_code, const char *detail) {
  cJSON *data = cJSON_CreateObject();
  const char *reason = tr_err_reason(reason_code);
  cJSON_AddStringToObject(data, "reason", reason ? reason : "invalid");
  cJSON_AddStringToObject(data, "detail", detail);
  return tr_rpc_error_text(id, TR_RPC_REFUSED, "refused", data);
}

char *tr_rpc_not_leader_text(const cJSON *id, const char *leader, const char *message) {
  cJSON *data = cJSON_CreateObject();
  if (leader) cJSON_AddStringToObject(data, "leader", leader);
  else cJSON_AddNullToObject(data, "leader");
  return tr_rpc_error_text(id, TR_RPC_NOT_LEADER, message, data);
}

size_t tr_rpc_id_text(const cJSON *id, char *out, size_t cap) {
  if (cap < 8) return 0;
  if (id == NULL) {
    memcpy(out, "null", 5);
    return 4;
  }
  if (cJSON_IsRaw(id) && id->valuestring) { /* a request's number id: its own bytes */
    size_t n = strlen(id->valuestring);
    if (n >= cap) return 0;
    memcpy(out, id->valuestring, n + 1);
    return n;
  }
  if (cJSON_IsNumber(id)) { /* a hand-made number id, without building a copy: as id_copy prints it */
    double v = id->valuedouble;
    if (v > -9.2e18 && v < 9.2e18 && v == (double)(long long)v) {
      int n = snprintf(out, cap, "%lld", (long long)v);
      return n > 0 && (size_t)n < cap ? (size_t)n : 0;
    }
  }
  cJSON *idc = id_copy(id);
  /* cJSON_PrintPreallocated wants 5 bytes of slack beyond the text */
  bool ok = idc != NULL && cap > 5 && cJSON_PrintPreallocated(idc, out, (int)(cap - 5), 0);
  cJSON_Delete(idc);
  return ok ? strlen(out) : 0;
}
