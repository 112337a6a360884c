/* ctl_query.c — read-only commands: one row per command maps it to a
 * JSON-RPC method and the param its positional argument fills; `rpc` calls
 * any method raw.  Human output annotates money fields with the asset's
 * currency where the result (or one extra asset.get) tells it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

typedef enum { ARG_NONE, ARG_STR, ARG_INT } argkind_t;

typedef struct {
  const char *cmd, *method, *param;
  argkind_t arg;
  bool paged;
  const char *extra_int;   /* an optional integer option passed as the param of the same name */
} query_t;

static const query_t QUERIES[] = {
  {"account show", "account.get", "account", ARG_STR, false, NULL},
  {"account history", "account.history", "account", ARG_STR, true, NULL},
  {"asset show", "asset.get", "asset", ARG_STR, false, NULL},
  {"asset list", "asset.list", NULL, ARG_NONE, true, NULL},
  {"asset holders", "asset.holders", "asset", ARG_STR, true, NULL},
  {"asset payouts", "asset.payouts", "asset", ARG_STR, true, "distribution"},
  {"exposure", "risk.exposure", "account", ARG_STR, false, NULL},
  {"ledger head", "ledger.head", NULL, ARG_NONE, false, NULL},
  {"ledger entry", "ledger.entry", "seq", ARG_INT, false, NULL},
  {"ledger checkpoint", "ledger.checkpoint", NULL, ARG_NONE, false, NULL},
  {"status", "node.status", NULL, ARG_NONE, false, NULL},
};

static const query_t *query_find(const char *cmd) {
  for (size_t i = 0; i < sizeof QUERIES / sizeof QUERIES[0]; i++)
    if (strcmp(QUERIES[i].cmd, cmd) == 0) return &QUERIES[i];
  return NULL;
}

static int add_int(const ctl_cmd_t *cmd, cJSON *params, const char *name, const char *v) {
  uint64_t n;
  if (ctl_parse_u64(v, &n) != 0) return ctl_usage_error(cmd, "%s must be a positive integer", name);
  cJSON_AddItemToObject(params, name, cJSON_CreateRaw(v));
  return 0;
}

static int build_params(const ctl_cmd_t *cmd, const query_t *q, const ctl_opts_t *o, cJSON *params) {
  int rc = 0;
  if (q->arg == ARG_STR) cJSON_AddStringToObject(params, q->param, o->pos[0]);
  if (q->arg == ARG_INT) rc = add_int(cmd, params, q->param, o->pos[0]);
  if (rc == 0 && q->extra_int && ctl_opt(o, q->extra_int)) rc = add_int(cmd, params, q->extra_int, ctl_opt(o, q->extra_int));
  if (rc == 0 && q->paged && ctl_opt(o, "limit")) rc = add_int(cmd, params, "limit", ctl_opt(o, "limit"));
  if (rc == 0 && q->paged && ctl_opt(o, "cursor")) cJSON_AddStringToObject(params, "cursor", ctl_opt(o, "cursor"));
  return rc;
}

/* The currency of an asset, for human output; "" when unknown. */
static void asset_currency(const ctl_opts_t *o, const char *asset, char out[8]) {
  cJSON *params = cJSON_CreateObject(), *r = NULL;
  out[0] = '\0';
  cJSON_AddStringToObject(params, "asset", asset);
  int fd = ctl_connect_rpc(o);
  if (fd < 0) {
    cJSON_Delete(params);
    return;
  }
  if (ctl_call(fd, "asset.get", params, &r, NULL) == 0) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "currency");
    if (cJSON_IsString(c)) snprintf(out, 8, "%s", c->valuestring);
  }
  cJSON_Delete(r);
  close(fd);
}

static void print_query(const query_t *q, const ctl_opts_t *o, const cJSON *r) {
  const cJSON *note = cJSON_GetObjectItemCaseSensitive(r, "checkpoint");
  if (strcmp(q->method, "ledger.checkpoint") == 0 && cJSON_IsString(note)) {
    fputs(note->valuestring, stdout); /* the note itself, ready to save and verify later */
    return;
  }
  const cJSON *cur = cJSON_GetObjectItemCaseSensitive(r, "currency");
  char currency[8] = "";
  if (cJSON_IsString(cur)) snprintf(currency, sizeof currency, "%s", cur->valuestring);
  else if (strcmp(q->method, "asset.payouts") == 0) asset_currency(o, o->pos[0], currency);
  ctl_print_human(r, currency[0] ? currency : NULL);
  const cJSON *next = cJSON_GetObjectItemCaseSensitive(r, "next");
  if (q->paged && cJSON_IsString(next)) printf("(more: --cursor %s)\n", next->valuestring);
}

int ctl_cmd_query(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const query_t *q = query_find(cmd->name);
  if (q == NULL) return CTL_USAGE;
  cJSON *params = cJSON_CreateObject(), *r = NULL;
  int rc = build_params(cmd, q, o, params);
  if (rc != 0) {
    cJSON_Delete(params);
    return rc;
  }
  rc = ctl_rpc(o, q->method, params, &r);
  if (rc == 0 && o->json) ctl_print_json(r);
  else if (rc == 0) print_query(q, o, r);
  cJSON_Delete(r);
  return rc;
}

int ctl_cmd_rpc(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  cJSON *params = NULL, *r = NULL;
  if (o->npos == 2) {
    params = cJSON_Parse(o->pos[1]);
    if (params == NULL) return ctl_usage_error(cmd, "PARAMS must be JSON, e.g. '{\"seq\":1}'");
  }
  int rc = ctl_rpc(o, o->pos[0], params, &r);
  if (rc == 0) ctl_print_json(r);
  cJSON_Delete(r);
  return rc;
}
