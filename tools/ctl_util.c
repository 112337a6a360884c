/* ctl_util.c — tranchectl's option parser, key and file reading, and the two
 * output forms: one-line JSON for scripts (integers always as digits) and an
 * aligned human rendering (key/value lines, arrays of objects as tables). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_node.h"

#define HUMAN_DEPTH_MAX 8      /* nested objects rendered before falling back to JSON */
#define TABLE_COLS_MAX 12      /* columns of a rendered table */
#define CELL_BYTES_MAX 160     /* one table cell, longer values are cut with "…" */

/* Finds `name` in spec; returns 0 (flag), 1 (value), 2 (repeatable value) or -1. */
static int spec_kind(const char *spec, const char *name, size_t name_len) {
  for (const char *p = spec; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    int kind = 0;
    size_t base = len;
    if (len > 0 && (p[len - 1] == '=' || p[len - 1] == '*')) kind = p[len - 1] == '=' ? 1 : 2, base = len - 1;
    if (base == name_len && strncmp(p, name, name_len) == 0) return kind;
    p = end ? end + 1 : NULL;
  }
  return -1;
}

static int opt_add(const ctl_cmd_t *cmd, ctl_opts_t *o, const char *name, const char *value, int kind) {
  if (kind == 1)
    for (size_t i = 0; i < o->n; i++)
      if (strcmp(o->o[i].name, name) == 0) return ctl_usage_error(cmd, "--%s given twice", name);
  if (o->n == CTL_OPTS_MAX) return ctl_usage_error(cmd, "too many options");
  o->o[o->n].name = name;
  o->o[o->n].value = value;
  o->n++;
  return 0;
}

int ctl_opts_parse(const ctl_cmd_t *cmd, int argc, char **argv, ctl_opts_t *o) {
  memset(o, 0, sizeof *o);
  for (int i = 0; i < argc; i++) {
    char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      o->help = true;
      continue;
    }
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
      if (o->npos == CTL_POS_MAX || o->npos == cmd->pos_max) return ctl_usage_error(cmd, "unexpected argument %s", a);
      o->pos[o->npos++] = a;
      continue;
    }
    char *name = a + 2, *eq = strchr(name, '=');
    size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
    int kind = spec_kind(cmd->spec, name, name_len);
    if (kind < 0) return ctl_usage_error(cmd, "unknown option --%.*s", (int)name_len, name);
    const char *value = NULL;
    if (kind > 0) {
      if (eq) value = eq + 1;
      else if (i + 1 < argc) value = argv[++i];
      else return ctl_usage_error(cmd, "--%s needs a value", name);
    } else if (eq) {
      return ctl_usage_error(cmd, "--%.*s takes no value", (int)name_len, name);
    }
    if (eq) *eq = '\0'; /* argv is ours to cut */
    if (opt_add(cmd, o, name, value, kind) != 0) return CTL_USAGE;
    if (strcmp(name, "json") == 0) o->json = true;
    if (strcmp(name, "quiet") == 0) ctl_quiet = true;
  }
  if (o->help) return 0;
  if (o->npos < cmd->pos_min) return ctl_usage_error(cmd, "missing argument");
  return 0;
}

const char *ctl_opt(const ctl_opts_t *o, const char *name) {
  const char *v = NULL;
  for (size_t i = 0; i < o->n; i++)
    if (strcmp(o->o[i].name, name) == 0) v = o->o[i].value;
  return v;
}

bool ctl_flag(const ctl_opts_t *o, const char *name) {
  for (size_t i = 0; i < o->n; i++)
    if (strcmp(o->o[i].name, name) == 0) return true;
  return false;
}

void ctl_print_cmd_help(const ctl_cmd_t *cmd, bool full) {
  FILE *f = full ? stdout : stderr;
  fprintf(f, "usage: tranchectl %s %s\n", cmd->name, cmd->usage);
  if (full) fprintf(f, "\n%s\n", cmd->help);
}

int ctl_usage_error(const ctl_cmd_t *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "tranchectl %s: ", cmd ? cmd->name : "");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  if (cmd) ctl_print_cmd_help(cmd, false);
  return CTL_USAGE;
}

int ctl_parse_u64(const char *s, uint64_t *out) {
  size_t n = strlen(s);
  if (n == 0 || n > 16 || (n > 1 && s[0] == '0')) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > TR_INT_MAX) return -1;
  *out = v;
  return 0;
}

int ctl_parse_key(const char *hex, tr_key_t *k) {
  return tr_hex_decode(hex, strlen(hex), k->b, sizeof k->b) == 0 ? 0 : -1;
}

int ctl_read_key(const char *path, uint8_t sk[64], tr_key_t *pk) {
  char err[512];
  if (tr_key_file_read(path, 1, sk, pk, err, sizeof err) != 0) {
    fprintf(stderr, "tranchectl: %s\n", err);
    return CTL_FAILED;
  }
  return 0;
}

static int read_stream(FILE *f, char **out, size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (n + 1 >= cap) {
      if (cap >= CTL_FILE_BYTES_MAX) break;
      char *nb = realloc(buf, cap * 2);
      if (nb == NULL) break;
      buf = nb, cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) {
      buf[n] = '\0';
      *out = buf, *len = n;
      return ferror(f) ? -1 : 0;
    }
  }
  free(buf);
  return -1;
}

int ctl_read_file(const char *path, char **out, size_t *len) {
  if (strcmp(path, "-") == 0) {
    if (read_stream(stdin, out, len) == 0) return 0;
    fprintf(stderr, "tranchectl: cannot read stdin (at most %u bytes)\n", CTL_FILE_BYTES_MAX);
    return CTL_FAILED;
  }
  if (tr_file_read(path, CTL_FILE_BYTES_MAX, out, len) != 0) {
    fprintf(stderr, "tranchectl: cannot read %s: %s\n", path, errno ? strerror(errno) : "too large");
    return CTL_FAILED;
  }
  return 0;
}

int ctl_abs_path(const char *path, char *out, size_t outlen) {
  char a[TR_PATH_MAX], b[TR_PATH_MAX], dir[PATH_MAX];
  snprintf(a, sizeof a, "%s", path);
  snprintf(b, sizeof b, "%s", path);
  if (realpath(dirname(a), dir) == NULL) return -1;
  int n = snprintf(out, outlen, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, basename(b));
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}


/* ---- JSON output ---- */

/* Rewrites integral numbers as raw digit text: cJSON would print 1e15 as
 * "1e+15", and §5 wants plain digits. */
void ctl_json_digits(cJSON *v) {
  for (cJSON *c = v; c; c = c->next) {
    if (cJSON_IsNumber(c) && c->valuedouble == floor(c->valuedouble) && fabs(c->valuedouble) < 1e17) {
      char *s = malloc(24);
      if (s == NULL) continue;
      snprintf(s, 24, "%.0f", c->valuedouble);
      c->type = cJSON_Raw;
      c->valuestring = s;
    }
    if (c->child) ctl_json_digits(c->child);
  }
}

void ctl_print_json(const cJSON *v) {
  cJSON *copy = cJSON_Duplicate(v, 1);
  if (copy == NULL) return;
  ctl_json_digits(copy);
  char *s = cJSON_PrintUnformatted(copy);
  if (s) printf("%s\n", s);
  free(s);
  cJSON_Delete(copy);
}

/* ---- human output ---- */

static bool is_money(const char *key) {
  static const char *const names[] = {"principal", "amount", "exposure", "rwa"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (key && strcmp(key, names[i]) == 0) return true;
  return false;
}

/* A scalar (or compact JSON of a composite) as text into out. */
static void scalar_text(const cJSON *v, const char *key, const char *currency, char *out, size_t outlen) {
  if (cJSON_IsString(v)) snprintf(out, outlen, "%s", v->valuestring);
  else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble)) snprintf(out, outlen, "%.0f", v->valuedouble);
  else if (cJSON_IsNumber(v)) snprintf(out, outlen, "%g", v->valuedouble);
  else if (cJSON_IsBool(v)) snprintf(out, outlen, "%s", cJSON_IsTrue(v) ? "yes" : "no");
  else if (cJSON_IsNull(v)) snprintf(out, outlen, "-");
  else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0) snprintf(out, outlen, "(none)");
  else {
    cJSON *copy = cJSON_Duplicate(v, 1);
    if (copy) ctl_json_digits(copy);
    char *s = copy ? cJSON_PrintUnformatted(copy) : NULL;
    snprintf(out, outlen, "%s", s ? s : "?");
    free(s);
    cJSON_Delete(copy);
  }
  if (currency && is_money(key) && (cJSON_IsNumber(v) || cJSON_IsString(v))) {
    size_t n = strlen(out);
    snprintf(out + n, outlen - n, " %s", currency);
  }
}

static bool array_of_objects(const cJSON *v) {
  return cJSON_IsArray(v) && v->child && cJSON_IsObject(v->child);
}

static bool scalar_array(const cJSON *v) {
  if (!cJSON_IsArray(v)) return false;
  for (const cJSON *c = v->child; c; c = c->next)
    if (cJSON_IsObject(c) || cJSON_IsArray(c)) return false;
  return true;
}

static void print_table(const cJSON *arr, int indent, const char *currency) {
  const char *cols[TABLE_COLS_MAX];
  size_t ncols = 0, width[TABLE_COLS_MAX];
  char cell[CELL_BYTES_MAX];
  for (const cJSON *c = arr->child->child; c && ncols < TABLE_COLS_MAX; c = c->next) cols[ncols++] = c->string;
  for (size_t k = 0; k < ncols; k++) width[k] = strlen(cols[k]);
  for (const cJSON *row = arr->child; row; row = row->next)
    for (size_t k = 0; k < ncols; k++) {
      const cJSON *cur = cJSON_GetObjectItemCaseSensitive(row, "currency");
      scalar_text(cJSON_GetObjectItemCaseSensitive(row, cols[k]), cols[k],
                  cJSON_IsString(cur) ? cur->valuestring : currency, cell, sizeof cell);
      if (strlen(cell) > width[k]) width[k] = strlen(cell);
    }
  printf("%*s", indent, "");
  for (size_t k = 0; k < ncols; k++)
    if (k + 1 < ncols) printf("%-*s  ", (int)width[k], cols[k]);
    else printf("%s\n", cols[k]);
  for (const cJSON *row = arr->child; row; row = row->next) {
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(row, "currency");
    printf("%*s", indent, "");
    for (size_t k = 0; k < ncols; k++) {
      scalar_text(cJSON_GetObjectItemCaseSensitive(row, cols[k]), cols[k],
                  cJSON_IsString(cur) ? cur->valuestring : currency, cell, sizeof cell);
      if (k + 1 < ncols) printf("%-*s  ", (int)width[k], cell);
      else printf("%s\n", cell);
    }
  }
}

static void print_object(const cJSON *obj, int indent, int depth, const char *currency) {
  size_t w = 0;
  char text[4096];
  for (const cJSON *c = obj->child; c; c = c->next)
    if (strlen(c->string) > w) w = strlen(c->string);
  for (const cJSON *c = obj->child; c; c = c->next) {
    bool nested = depth < HUMAN_DEPTH_MAX && ((cJSON_IsObject(c) && c->child) || array_of_objects(c));
    if (!nested) {
      if (scalar_array(c) && cJSON_GetArraySize(c) > 0) {
        text[0] = '\0';
        for (const cJSON *e = c->child; e; e = e->next) {
          size_t n = strlen(text);
          scalar_text(e, NULL, NULL, text + n, sizeof text - n);
          n = strlen(text);
          if (e->next) snprintf(text + n, sizeof text - n, ", ");
        }
      } else {
        scalar_text(c, c->string, currency, text, sizeof text);
      }
      printf("%*s%-*s  %s\n", indent, "", (int)w, c->string, text);
    } else {
      printf("%*s%s:\n", indent, "", c->string);
      if (cJSON_IsObject(c)) print_object(c, indent + 2, depth + 1, currency);
      else print_table(c, indent + 2, currency);
    }
  }
}

void ctl_print_human(const cJSON *v, const char *currency) {
  if (cJSON_IsObject(v)) print_object(v, 0, 0, currency);
  else if (array_of_objects(v)) print_table(v, 0, currency);
  else {
    char text[4096];
    scalar_text(v, NULL, NULL, text, sizeof text);
    printf("%s\n", text);
  }
}
