/* ctl_proof.c — the light client: signed checkpoints and RFC 9162 proofs,
 * always verified locally (the node only supplies data).
 *
 *   checkpoint verify FILE --vkey VKEY      offline
 *   proof inclusion --txid T [--checkpoint FILE] [--vkey VKEY]
 *   proof consistency --old FILE --vkey VKEY
 *   proof export TXID --out FILE [--vkey VKEY]
 *   proof verify FILE --vkey VKEY           offline
 *
 * An exported proof is a C2SP tlog-proof whose extra data is the entry's
 * 152 entry bytes (PROTOCOL.md §3), so a verifier recomputes the leaf hash
 * SHA-256(0x00 || entry_bytes) itself and learns seq, time and txid from
 * bytes the checkpoint commits to.  Without --vkey the node's own vkey is
 * used (and said so): that proves consistency with the node's claims only;
 * pin the vkey for real assurance. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"
#include "tr_err.h"
#include "tr_hex.h"
#include "tr_node.h"
#include "tr_note.h"
#include "tr_store.h"

#define EXPORT_WAIT_MS 10000      /* proof export waits this long for a checkpoint covering the entry */
#define EXPORT_POLL_MS 250
#define PROOF_BUF_BYTES (64 * 1024) /* a tlog-proof of ours: ~150 B extra, <= 64 hashes, one checkpoint */

typedef struct {
  uint8_t h[TR_MERKLE_PATH_MAX][32];
  size_t n;
} path_t;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the one-line verdict "FAILED: ..." and returns CTL_FAILED. */
static int fail(const char *fmt, ...) {
  va_list ap;
  printf("FAILED: ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  return CTL_FAILED;
}

static int parse_vkey(const char *text, tr_note_vkey_t *vk) {
  if (text && tr_note_vkey_parse(text, strlen(text), vk) == 0) return 0;
  fprintf(stderr, "tranchectl: --vkey is not a verifier key (NAME+KEYID+BASE64)\n");
  return CTL_USAGE;
}

static int open_note(const char *note, size_t len, const tr_note_vkey_t *vk, tr_checkpoint_t *cp, const char *what) {
  int rc = tr_checkpoint_open(note, len, vk, cp);
  if (rc != 0) return fail("%s does not verify: %s", what, tr_strerror(rc));
  return 0;
}

static int read_checkpoint_file(const char *path, const tr_note_vkey_t *vk, tr_checkpoint_t *cp) {
  char *text = NULL;
  size_t len = 0;
  if (ctl_read_file(path, &text, &len) != 0) return CTL_FAILED;
  int rc = open_note(text, len, vk, cp, path);
  free(text);
  return rc;
}

static const char *json_str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static uint64_t json_u64(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (uint64_t)v->valuedouble : 0;
}

static int hex32(const char *s, uint8_t out[32]) { return s && tr_hex_decode(s, strlen(s), out, 32) == 0 ? 0 : -1; }

static int path_from_json(const cJSON *arr, path_t *p) {
  p->n = 0;
  if (!cJSON_IsArray(arr)) return -1;
  for (const cJSON *e = arr->child; e; e = e->next) {
    if (p->n == TR_MERKLE_PATH_MAX || !cJSON_IsString(e) || hex32(e->valuestring, p->h[p->n]) != 0) return -1;
    p->n++;
  }
  return 0;
}

static cJSON *params1(const char *name, const char *s) {
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, name, s);
  return p;
}

static cJSON *params_u64(const char *a, uint64_t x) {
  cJSON *p = cJSON_CreateObject();
  cJSON_AddNumberToObject(p, a, (double)x);
  return p;
}

static cJSON *params2(const char *a, uint64_t x, const char *b, uint64_t y) {
  cJSON *p = cJSON_CreateObject();
  cJSON_AddNumberToObject(p, a, (double)x);
  cJSON_AddNumberToObject(p, b, (double)y);
  return p;
}

/* The node's current checkpoint, verified with --vkey or (said so) its own vkey. */
static int node_checkpoint(int fd, const char *vkey_opt, tr_note_vkey_t *vk, tr_checkpoint_t *cp, char **note) {
  cJSON *r = NULL;
  int rc = ctl_call(fd, "ledger.checkpoint", NULL, &r, NULL);
  if (rc != 0) return rc;
  const char *text = json_str(r, "checkpoint"), *node_vkey = json_str(r, "vkey");
  if (!vkey_opt) fprintf(stderr, "tranchectl: no --vkey: trusting the node's own vkey %s\n", node_vkey ? node_vkey : "?");
  rc = parse_vkey(vkey_opt ? vkey_opt : node_vkey, vk);
  if (rc == 0 && !text) rc = CTL_DAEMON;
  if (rc == 0) rc = open_note(text, strlen(text), vk, cp, "the node's checkpoint");
  if (rc == 0 && note) *note = strdup(text);
  cJSON_Delete(r);
  return rc;
}

/* The entry of txid, with its entry bytes recomputed and checked. */
static int fetch_entry(int fd, const char *txid_hex, uint64_t *seq, uint8_t bytes[TR_ENTRY_BYTES_LEN]) {
  cJSON *t = NULL, *e = NULL;
  uint8_t txid[32], prev[32], sig[64], want[32], calc[32];
  if (hex32(txid_hex, want) != 0) return fail("%s is not a txid (64 lowercase hex)", txid_hex);
  int rc = ctl_call(fd, "tx.get", params1("txid", txid_hex), &t, NULL);
  if (rc == 0) {
    *seq = json_u64(t, "seq");
    rc = ctl_call(fd, "ledger.entry", params_u64("seq", *seq), &e, NULL);
  }
  if (rc == 0) {
    const char *tx = json_str(e, "tx"), *sig_hex = json_str(e, "sig");
    crypto_hash_sha256(calc, (const uint8_t *)(tx ? tx : ""), tx ? strlen(tx) : 0);
    if (hex32(json_str(e, "txid"), txid) != 0 || hex32(json_str(e, "prev"), prev) != 0 || !sig_hex ||
        tr_hex_decode(sig_hex, strlen(sig_hex), sig, 64) != 0 || memcmp(txid, want, 32) != 0 ||
        memcmp(calc, want, 32) != 0)
      rc = fail("the node's entry does not match txid %s", txid_hex);
    else
      tr_entry_bytes(*seq, json_u64(e, "time"), prev, txid, sig, bytes);
  }
  cJSON_Delete(t);
  cJSON_Delete(e);
  return rc;
}

/* Fetches and checks the inclusion path of seq in the tree of cp->size. */
static int fetch_inclusion(int fd, uint64_t seq, const uint8_t leaf[32], const tr_checkpoint_t *cp, path_t *p) {
  cJSON *r = NULL;
  char s[24];
  snprintf(s, sizeof s, "%llu", (unsigned long long)cp->size);
  if (seq > cp->size) return fail("entry %llu is not yet under the checkpoint of size %s", (unsigned long long)seq, s);
  int rc = ctl_call(fd, "ledger.proof", params2("seq", seq, "size", cp->size), &r, NULL);
  if (rc == 0 && path_from_json(cJSON_GetObjectItemCaseSensitive(r, "path"), p) != 0) rc = CTL_DAEMON;
  cJSON_Delete(r);
  if (rc == 0 && tr_merkle_verify_inclusion(leaf, seq - 1, cp->size, (const uint8_t(*)[32])p->h, p->n, cp->root) != 0)
    rc = fail("the inclusion proof does not match the checkpoint root at size %s", s);
  return rc;
}

int ctl_cmd_checkpoint_verify(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  tr_note_vkey_t vk;
  tr_checkpoint_t cp;
  char hex[65];
  if (!ctl_opt(o, "vkey")) return ctl_usage_error(cmd, "--vkey is required");
  if (parse_vkey(ctl_opt(o, "vkey"), &vk) != 0) return CTL_USAGE;
  int rc = read_checkpoint_file(o->pos[0], &vk, &cp);
  if (rc == 0)
    printf("OK: checkpoint of %s at size %llu, root %s\n", cp.origin, (unsigned long long)cp.size,
           tr_hex_encode(cp.root, 32, hex));
  return rc;
}

int ctl_cmd_proof_inclusion(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *txid = ctl_opt(o, "txid"), *file = ctl_opt(o, "checkpoint"), *vkey = ctl_opt(o, "vkey");
  if (!txid) return ctl_usage_error(cmd, "--txid is required");
  if (file && !vkey) return ctl_usage_error(cmd, "--checkpoint needs --vkey");
  tr_note_vkey_t vk;
  tr_checkpoint_t cp;
  uint8_t bytes[TR_ENTRY_BYTES_LEN], leaf[32];
  uint64_t seq = 0;
  path_t p;
  int fd = ctl_connect_rpc(o);
  if (fd < 0) return CTL_DAEMON;
  int rc = fetch_entry(fd, txid, &seq, bytes);
  if (rc == 0 && file) rc = parse_vkey(vkey, &vk);
  if (rc == 0) rc = file ? read_checkpoint_file(file, &vk, &cp) : node_checkpoint(fd, vkey, &vk, &cp, NULL);
  tr_merkle_leaf_hash(bytes, sizeof bytes, leaf);
  if (rc == 0) rc = fetch_inclusion(fd, seq, leaf, &cp, &p);
  if (rc == 0)
    printf("OK: tx %s is entry %llu of %s, included in checkpoint size %llu\n", txid, (unsigned long long)seq,
           cp.origin, (unsigned long long)cp.size);
  close(fd);
  return rc;
}

int ctl_cmd_proof_consistency(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *old = ctl_opt(o, "old"), *vkey = ctl_opt(o, "vkey");
  if (!old || !vkey) return ctl_usage_error(cmd, "--old and --vkey are required");
  tr_note_vkey_t vk;
  tr_checkpoint_t a, b;
  path_t p;
  if (parse_vkey(vkey, &vk) != 0) return CTL_USAGE;
  int rc = read_checkpoint_file(old, &vk, &a);
  if (rc != 0) return rc;
  int fd = ctl_connect_rpc(o);
  if (fd < 0) return CTL_DAEMON;
  rc = node_checkpoint(fd, vkey, &vk, &b, NULL);
  cJSON *r = NULL;
  if (rc == 0 && a.size > b.size) rc = fail("the node's checkpoint is older than the saved one");
  if (rc == 0 && a.size == 0) rc = fail("the saved checkpoint is empty");
  if (rc == 0) rc = ctl_call(fd, "ledger.consistency", params2("from", a.size, "to", b.size), &r, NULL);
  if (rc == 0 && path_from_json(cJSON_GetObjectItemCaseSensitive(r, "path"), &p) != 0) rc = CTL_DAEMON;
  if (rc == 0 && tr_merkle_verify_consistency(a.size, b.size, a.root, b.root, (const uint8_t(*)[32])p.h, p.n) != 0)
    rc = fail("the node's log does not extend the saved checkpoint (fork or rewrite)");
  if (rc == 0)
    printf("OK: checkpoint %llu of %s extends the saved checkpoint %llu\n", (unsigned long long)b.size, b.origin,
           (unsigned long long)a.size);
  cJSON_Delete(r);
  close(fd);
  return rc;
}

static void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The node's checkpoint, waiting (bounded) until it covers seq. */
static int checkpoint_covering(int fd, const char *vkey, uint64_t seq, tr_note_vkey_t *vk, tr_checkpoint_t *cp,
                               char **note) {
  for (int waited = 0;; waited += EXPORT_POLL_MS) {
    int rc = node_checkpoint(fd, vkey, vk, cp, note);
    if (rc != 0 || cp->size >= seq || waited >= EXPORT_WAIT_MS) return rc;
    free(*note);
    *note = NULL;
    sleep_ms(EXPORT_POLL_MS);
  }
}

int ctl_cmd_proof_export(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *out = ctl_opt(o, "out");
  if (!out) return ctl_usage_error(cmd, "--out is required");
  tr_note_vkey_t vk;
  tr_checkpoint_t cp;
  uint8_t bytes[TR_ENTRY_BYTES_LEN], leaf[32];
  uint64_t seq = 0;
  path_t p;
  char *note = NULL, *text = malloc(PROOF_BUF_BYTES);
  size_t len = 0;
  int fd = text ? ctl_connect_rpc(o) : -1;
  if (fd < 0) {
    free(text);
    return CTL_DAEMON;
  }
  int rc = fetch_entry(fd, o->pos[0], &seq, bytes);
  if (rc == 0) rc = checkpoint_covering(fd, ctl_opt(o, "vkey"), seq, &vk, &cp, &note);
  tr_merkle_leaf_hash(bytes, sizeof bytes, leaf);
  if (rc == 0) rc = fetch_inclusion(fd, seq, leaf, &cp, &p);
  if (rc == 0 && tr_tlog_proof_format(seq - 1, bytes, sizeof bytes, (const uint8_t(*)[32])p.h, p.n, note,
                                      strlen(note), text, PROOF_BUF_BYTES, &len) != 0)
    rc = fail("cannot format the proof");
  if (rc == 0 && tr_file_replace(out, text, len) != 0) {
    fprintf(stderr, "tranchectl: cannot write %s\n", out);
    rc = CTL_FAILED;
  }
  if (rc == 0) printf("wrote %s: entry %llu under checkpoint %llu\n", out, (unsigned long long)seq,
                      (unsigned long long)cp.size);
  free(note);
  free(text);
  close(fd);
  return rc;
}

static uint64_t get_u64be(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

/* Prints what a verified proof proves. */
static void print_proven(const uint8_t bytes[TR_ENTRY_BYTES_LEN], const tr_checkpoint_t *cp, bool json) {
  char txid[65], root[65];
  uint64_t seq = get_u64be(bytes + 16), time = get_u64be(bytes + 24);
  tr_hex_encode(bytes + 16 + 8 + 8 + 32, 32, txid);
  tr_hex_encode(cp->root, 32, root);
  if (!json) {
    printf("OK: entry %llu (txid %s, time %llu) is in %s at checkpoint size %llu\n", (unsigned long long)seq, txid,
           (unsigned long long)time, cp->origin, (unsigned long long)cp->size);
    return;
  }
  printf("{\"ok\":true,\"seq\":%llu,\"time\":%llu,\"txid\":\"%s\",\"origin\":\"%s\",\"size\":%llu,\"root\":\"%s\"}\n",
         (unsigned long long)seq, (unsigned long long)time, txid, cp->origin, (unsigned long long)cp->size, root);
}

int ctl_cmd_proof_verify(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  tr_note_vkey_t vk;
  tr_checkpoint_t cp;
  uint8_t extra[TR_ENTRY_BYTES_LEN], leaf[32];
  static tr_tlog_proof_t pr;
  char *text = NULL;
  size_t len = 0;
  if (!ctl_opt(o, "vkey")) return ctl_usage_error(cmd, "--vkey is required");
  if (parse_vkey(ctl_opt(o, "vkey"), &vk) != 0) return CTL_USAGE;
  if (ctl_read_file(o->pos[0], &text, &len) != 0) return CTL_FAILED;
  int rc = tr_tlog_proof_parse(text, len, extra, sizeof extra, &pr);
  if (rc != 0 || !pr.has_extra || pr.extra_len != sizeof extra || memcmp(extra, "TRANCHE/ENTRY/1\n", 16) != 0)
    rc = fail("%s is not a tranche tlog-proof (extra data must be the 152 entry bytes)", o->pos[0]);
  else if (get_u64be(extra + 16) != pr.index + 1)
    rc = fail("the entry's seq does not match the proof's index");
  if (rc == 0) {
    tr_merkle_leaf_hash(extra, sizeof extra, leaf);
    int vr = tr_tlog_proof_verify(&pr, &vk, leaf, &cp);
    if (vr != 0) rc = fail("the proof does not verify: %s", tr_strerror(vr));
  }
  if (rc == 0) print_proven(extra, &cp, o->json);
  free(text);
  return rc;
}
