/* ctl_verify.c — `tranchectl verify`, the offline audit of a data directory
 * (PROTOCOL.md §7).
 *
 *   0. Safety on a live node: the checkpoint is read first, then a consistent
 *      copy of the database is taken with the SQLite online backup API
 *      (tr_store_backup) into a private temp directory ($TMPDIR or /tmp), and
 *      only the copy is audited; the copy is at least as long as the
 *      checkpoint, because the daemon publishes a checkpoint only after its
 *      entries are committed.  The copy is removed afterwards.
 *   1. Every entry's signature, in parallel: one thread per core, each with
 *      its own read-only connection, taking chunks of VERIFY_CHUNK_ENTRIES
 *      seqs from an atomic counter.
 *   2. At the same time, on this thread, tr_ledger_replay: links, hashes,
 *      genesis, every rule, derived state, and every stored checkpoint row
 *      (signed by the genesis node key, its root the tree's at its size).
 *   3. The Merkle root at the checkpoint's size against the checkpoint's
 *      signed root: the given FILE verified with the given VKEY, else
 *      DIR/checkpoint verified with the key the genesis entry names.
 * The first bad seq of steps 1-2 is reported ("FAILED at seq N: reason"). */
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "tr_err.h"
#include "tr_ledger.h"
#include "tr_node.h"
#include "tr_note.h"
#include "tr_store.h"

#define VERIFY_CHUNK_ENTRIES 1024   /* seqs a thread takes at once: amortises the atomic, balances load */
#define VERIFY_THREADS_MAX 256      /* more threads than this only add contention */
#define VERIFY_PROGRESS_MS 200      /* progress line refresh on a terminal */

typedef struct {
  char path[TR_PATH_MAX];          /* the audited copy */
  uint64_t size;                   /* its journal size */
  atomic_ullong next;              /* next chunk's first seq */
  atomic_ullong done;              /* entries checked */
  atomic_ullong bad_seq;           /* first bad seq found, ULLONG_MAX = none */
  atomic_uint running;
  char bad_why[TR_PATH_MAX];       /* reason for bad_seq (guarded by lock) */
  pthread_mutex_t lock;
} sigcheck_t;

typedef struct {
  bool have;                       /* a checkpoint was found */
  tr_checkpoint_t cp;
  char *note;                      /* DIR/checkpoint text when not verified yet */
  size_t note_len;
} cpsrc_t;

static void sig_fail(sigcheck_t *s, uint64_t seq, const char *why) {
  pthread_mutex_lock(&s->lock);
  if (seq < atomic_load(&s->bad_seq)) {
    atomic_store(&s->bad_seq, seq);
    snprintf(s->bad_why, sizeof s->bad_why, "%s", why);
  }
  pthread_mutex_unlock(&s->lock);
}

typedef struct {
  sigcheck_t *s;
  uint64_t next;                   /* the seq expected next */
} sigchunk_t;

static int sig_entry(void *ctx, const tr_entry_t *e) {
  sigchunk_t *c = ctx;
  if (e->seq != c->next || e->seq >= atomic_load(&c->s->bad_seq)) return TR_ECORRUPT;
  if (tr_tx_verify(e->tx, e->tx_len, &e->signer, e->sig) != 0) sig_fail(c->s, e->seq, "signature does not verify");
  c->next++;
  atomic_fetch_add(&c->s->done, 1);
  return 0;
}

static void sig_chunk(sigcheck_t *s, tr_store_t *st, uint64_t first) {
  uint64_t last = first + VERIFY_CHUNK_ENTRIES - 1 < s->size ? first + VERIFY_CHUNK_ENTRIES - 1 : s->size;
  sigchunk_t c = {s, first};
  int rc = tr_store_entries_scan(st, first, last, sig_entry, &c);
  if (c.next <= last && c.next < atomic_load(&s->bad_seq))
    sig_fail(s, c.next, rc == 0 || rc == TR_ECORRUPT ? "entry missing or malformed" : "cannot read entry");
}

static void *sig_thread(void *arg) {
  sigcheck_t *s = arg;
  tr_store_t *st = NULL;
  char err[256];
  if (tr_store_open(s->path, TR_STORE_READONLY | TR_STORE_SCAN, &st, err, sizeof err) != 0) {
    sig_fail(s, 1, err);
  } else {
    tr_store_read_begin(st);
    for (;;) {
      uint64_t first = atomic_fetch_add(&s->next, VERIFY_CHUNK_ENTRIES);
      if (first > s->size || first >= atomic_load(&s->bad_seq)) break;
      sig_chunk(s, st, first);
    }
    tr_store_read_end(st);
    tr_store_close(st);
  }
  atomic_fetch_sub(&s->running, 1);
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Step 1 starts: signature threads run while step 2 replays on this thread,
 * so the audit takes about as long as the slower of the two, not their sum. */
static unsigned sigs_start(sigcheck_t *s, unsigned threads, pthread_t tids[]) {
  unsigned started = 0;
  atomic_store(&s->next, 1);
  atomic_store(&s->bad_seq, ULLONG_MAX);
  atomic_store(&s->running, threads);
  pthread_mutex_init(&s->lock, NULL);
  for (; started < threads; started++)
    if (pthread_create(&tids[started], NULL, sig_thread, s) != 0) break;
  atomic_fetch_sub(&s->running, threads - started);
  return started;
}

/* Step 1 ends.  Returns the first seq with a bad signature, or 0. */
static uint64_t sigs_finish(sigcheck_t *s, pthread_t tids[], unsigned started, char *why, size_t whylen) {
  if (started == 0) { /* no threads to be had: check on this one */
    atomic_store(&s->running, 1);
    sig_thread(s);
  }
  ctl_progress_t p;
  ctl_progress_begin(&p, "signatures", false, s->size);
  while (p.on && atomic_load(&s->running) > 0) {
    ctl_progress_update(&p, atomic_load(&s->done));
    sleep_ms(VERIFY_PROGRESS_MS);
  }
  for (unsigned i = 0; i < started; i++) pthread_join(tids[i], NULL);
  ctl_progress_end(&p, atomic_load(&s->done));
  pthread_mutex_destroy(&s->lock);
  uint64_t bad = atomic_load(&s->bad_seq);
  snprintf(why, whylen, "%s", s->bad_why);
  return bad == ULLONG_MAX ? 0 : bad;
}

static void replay_progress(void *ctx, uint64_t done, uint64_t total) {
  ctl_progress_t *p = ctx;
  if (done < total) ctl_progress_update(p, done);
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int load_checkpoint(const ctl_opts_t *o, const char *datadir, cpsrc_t *c) {
  const char *file = ctl_opt(o, "checkpoint"), *vkey = ctl_opt(o, "vkey");
  char path[TR_PATH_MAX];
  if (file) {
    tr_note_vkey_t vk;
    if (tr_note_vkey_parse(vkey, strlen(vkey), &vk) != 0) {
      fprintf(stderr, "FAILED: --vkey is not a verifier key\n");
      return CTL_FAILED;
    }
    if (ctl_read_file(file, &c->note, &c->note_len) != 0) return CTL_FAILED;
    int rc = tr_checkpoint_open(c->note, c->note_len, &vk, &c->cp);
    if (rc != 0) {
      fprintf(stderr, "FAILED: checkpoint %s does not verify with the given key: %s\n", file, tr_strerror(rc));
      return CTL_FAILED;
    }
    free(c->note);
    c->note = NULL;
    c->have = true;
    return 0;
  }
  if (tr_path_join(path, sizeof path, datadir, TR_CHECKPOINT_FILE) != 0) return CTL_USAGE;
  struct stat st;
  if (stat(path, &st) != 0) return 0; /* a node that never ran has no checkpoint yet */
  if (ctl_read_file(path, &c->note, &c->note_len) != 0) return CTL_FAILED;
  c->have = true;
  return 0;
}

/* Verifies DIR/checkpoint with the vkey of the genesis entry's node key and chain. */
static int open_own_checkpoint(tr_store_t *st, cpsrc_t *c) {
  tr_entry_t e;
  tr_tx_t *tx = malloc(sizeof *tx);
  char vkey[TR_NOTE_VKEY_BUF_BYTES];
  tr_note_vkey_t vk;
  int rc = tx ? tr_store_entry_get(st, 1, &e) : TR_ENOMEM;
  if (rc == 0) {
    rc = tr_tx_decode(e.tx, e.tx_len, tx, NULL);
    tr_entry_clear(&e);
  }
  if (rc == 0) rc = tr_note_vkey_format(tx->chain, tx->signer.b, vkey, sizeof vkey);
  if (rc == 0) rc = tr_note_vkey_parse(vkey, strlen(vkey), &vk);
  if (rc == 0) rc = tr_checkpoint_open(c->note, c->note_len, &vk, &c->cp);
  free(tx);
  return rc;
}

/* Step 3 on the copy (after replay proved the stored Merkle nodes). */
static int check_root(tr_store_t *st, uint64_t size, const tr_checkpoint_t *cp) {
  uint8_t root[32];
  if (cp->size > size) {
    printf("FAILED at seq %llu: the journal has %llu entries but the checkpoint covers %llu\n",
           (unsigned long long)size + 1, (unsigned long long)size, (unsigned long long)cp->size);
    return CTL_FAILED;
  }
  if (cp->size == 0) return 0;
  int rc = tr_store_merkle_root(st, cp->size, root);
  if (rc != 0 || memcmp(root, cp->root, 32) != 0) {
    printf("FAILED at seq %llu: the Merkle root of entries 1..%llu is not the checkpoint's root\n",
           (unsigned long long)cp->size, (unsigned long long)cp->size);
    return CTL_FAILED;
  }
  return 0;
}

/* Takes the consistent copy into a new private temp directory. */
static int take_copy(const char *datadir, char *tmpdir, size_t tmplen, char *copy, size_t copylen) {
  const char *base = getenv("TMPDIR");
  char db[TR_PATH_MAX], err[512];
  snprintf(tmpdir, tmplen, "%s/tranche-verify-XXXXXX", base && *base ? base : "/tmp");
  if (mkdtemp(tmpdir) == NULL) {
    fprintf(stderr, "tranchectl verify: cannot create a temp directory in %s\n", base && *base ? base : "/tmp");
    return CTL_FAILED;
  }
  if (tr_path_join(db, sizeof db, datadir, TR_DB_FILE) != 0 || tr_path_join(copy, copylen, tmpdir, TR_DB_FILE) != 0)
    return CTL_USAGE;
  if (access(db, R_OK) != 0) {
    printf("FAILED: cannot read %s\n", db);
    return CTL_FAILED;
  }
  if (tr_store_backup(db, copy, err, sizeof err) != 0) {
    printf("FAILED: cannot take a consistent copy: %s\n", err);
    return CTL_FAILED;
  }
  return 0;
}

static void remove_copy(const char *tmpdir, const char *copy) {
  if (copy[0]) unlink(copy);
  if (tmpdir[0]) rmdir(tmpdir);
}

/* ---- --timing: the machine's own limit, measured in the same run ---- */

#define RAW_VERIFY_SECONDS 1.0      /* long enough to average out a time-shared core */
#define SIGNED_PREFIX_BYTES 13       /* "TRANCHE/TX/1\n" before the tx bytes (PROTOCOL.md §2) */

typedef struct {
  uint8_t pk[32], sig[64], msg[SIGNED_PREFIX_BYTES + TR_TX_BYTES_MAX];
  size_t msg_len;                    /* the audited entries' mean signed message */
  atomic_bool stop;
  atomic_ullong count, cpu_ns;
} rawverify_t;

typedef struct {
  double per_s;                      /* verifies a wall-clock second, all threads */
  double cpu_us;                     /* CPU time of one verify */
} rawrate_t;

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *raw_verify_thread(void *arg) {
  rawverify_t *rv = arg;
  unsigned long long n = 0;
  uint64_t cpu0 = thread_cpu_ns();
  while (!atomic_load(&rv->stop)) {
    if (crypto_sign_verify_detached(rv->sig, rv->msg, rv->msg_len, rv->pk) != 0) break;
    n++;
  }
  atomic_fetch_add(&rv->cpu_ns, thread_cpu_ns() - cpu0);
  atomic_fetch_add(&rv->count, n);
  return NULL;
}

/* crypto_sign_verify_detached of msg_len-byte messages on `threads` threads
 * for RAW_VERIFY_SECONDS: what an audit of signed entries cannot beat on
 * this machine. */
static rawrate_t raw_verify_rate(unsigned threads, size_t msg_len) {
  static rawverify_t rv;
  uint8_t sk[64];
  pthread_t tids[VERIFY_THREADS_MAX];
  rawrate_t r = {0, 0};
  crypto_sign_keypair(rv.pk, sk);
  rv.msg_len = msg_len < sizeof rv.msg ? msg_len : sizeof rv.msg;
  randombytes_buf(rv.msg, rv.msg_len);
  crypto_sign_detached(rv.sig, NULL, rv.msg, rv.msg_len, sk);
  atomic_store(&rv.stop, false);
  atomic_store(&rv.count, 0);
  atomic_store(&rv.cpu_ns, 0);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  unsigned started = 0;
  while (started < threads && pthread_create(&tids[started], NULL, raw_verify_thread, &rv) == 0) started++;
  sleep_ms((long)(RAW_VERIFY_SECONDS * 1000));
  atomic_store(&rv.stop, true);
  for (unsigned i = 0; i < started; i++) pthread_join(tids[i], NULL);
  double s = seconds_since(&t0);
  unsigned long long n = atomic_load(&rv.count);
  if (started == threads && s > 0 && n > 0) {
    r.per_s = (double)n / s;
    r.cpu_us = (double)atomic_load(&rv.cpu_ns) / 1000.0 / (double)n;
  }
  return r;
}

static int add_tx_len(void *ctx, const tr_entry_t *e) {
  *(uint64_t *)ctx += e->tx_len;
  return 0;
}

/* Signed message length (domain prefix + tx bytes) of the first entries after
 * genesis, so the raw rate is measured on messages like the audited ones. */
static size_t sample_message_len(tr_store_t *st, uint64_t size) {
  uint64_t total = 0, last = size < 1025 ? size : 1025;
  if (last < 2 || tr_store_entries_scan(st, 2, last, add_tx_len, &total) != 0) return SIGNED_PREFIX_BYTES + 256;
  return SIGNED_PREFIX_BYTES + (size_t)(total / (last - 1));
}

static double process_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --timing's figures.  The machine may be time-shared, so the raw rate is
 * measured right before and right after the audit, and CPU time per entry is
 * given in verifies: the ratio an idle machine would show. */
static void timing_print(uint64_t size, unsigned threads, size_t msg_len, double replay_s, double total_s, double cpu_s,
                         const tr_replay_report_t *rep, rawrate_t before, rawrate_t after) {
  double rate = total_s > 0 ? (double)size / total_s : 0.0, raw = (before.per_s + after.per_s) / 2;
  double verify_us = (before.cpu_us + after.cpu_us) / 2, entry_us = size ? cpu_s * 1e6 / (double)size : 0.0;
  fprintf(stderr, "timing: %llu entries; signatures and replay in parallel: replay done at %.2f s (re-apply %.2f s, "
          "table comparison %.2f s), all done at %.2f s (%.0f entries/s) with %u signature threads\n",
          (unsigned long long)size, replay_s, (double)rep->entries_ms / 1000, (double)rep->compare_ms / 1000, total_s,
          rate, threads);
  if (raw <= 0 || entry_us <= 0) return;
  fprintf(stderr, "timing: raw libsodium verify of %zu-byte messages on %u threads %.0f/s before, %.0f/s after "
          "(%.1f us CPU each); audit / raw = %.2f\n", msg_len, threads, before.per_s, after.per_s, verify_us, rate / raw);
  /* With a signature thread per core the audit is bound by its total CPU;
   * with fewer, by the signature threads alone. */
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores > 0 && threads >= (unsigned long)cores)
    fprintf(stderr, "timing: audit CPU %.1f us an entry = %.2f verifies: on %u idle cores audit / raw = %.2f\n",
            entry_us, entry_us / verify_us, threads, verify_us / entry_us);
}

/* Step 2, with a progress line on a terminal. */
static int replay_with_progress(const char *copy, uint64_t size, tr_replay_report_t *rep) {
  ctl_progress_t p;
  ctl_progress_begin(&p, "replay", false, size);
  memset(rep, 0, sizeof *rep);
  int rc = tr_ledger_replay(copy, p.on ? replay_progress : NULL, &p, rep);
  ctl_progress_end(&p, rep->size);
  return rc;
}

/* The first bad seq of steps 1-2 as the verdict line; 0 when both passed. */
static int journal_verdict(int rc, uint64_t bad_sig, const char *why, const tr_replay_report_t *rep) {
  if (bad_sig && (rc == 0 || rep->bad_seq == 0 || bad_sig <= rep->bad_seq)) {
    printf("FAILED at seq %llu: %s\n", (unsigned long long)bad_sig, why);
    return CTL_FAILED;
  }
  if (rc != 0) {
    if (rep->bad_seq) printf("FAILED at seq %llu: %s\n", (unsigned long long)rep->bad_seq, rep->message);
    else printf("FAILED: %s\n", rep->message);
    return CTL_FAILED;
  }
  return 0;
}

int ctl_audit_journal(const char *db, unsigned threads, uint64_t *size_out) {
  char err[512], why[TR_PATH_MAX];
  tr_store_t *st = NULL;
  uint64_t size = 0, t;
  uint8_t h[32];
  if (tr_store_open(db, TR_STORE_READONLY, &st, err, sizeof err) != 0 || tr_store_head(st, &size, h, &t) != 0) {
    printf("FAILED: cannot read the journal: %s\n", err);
    tr_store_close(st);
    return CTL_FAILED;
  }
  tr_store_close(st);
  static sigcheck_t sc;
  pthread_t tids[VERIFY_THREADS_MAX];
  memset(&sc, 0, sizeof sc);
  snprintf(sc.path, sizeof sc.path, "%s", db);
  sc.size = size;
  unsigned started = size ? sigs_start(&sc, threads, tids) : 0;
  tr_replay_report_t rep;
  int rc = replay_with_progress(db, size, &rep);
  uint64_t bad_sig = size ? sigs_finish(&sc, tids, started, why, sizeof why) : 0;
  *size_out = size;
  return journal_verdict(rc, bad_sig, why, &rep);
}

/* Steps 1-3 on the copy; prints the verdict. */
static int audit(const char *copy, unsigned threads, bool timing, cpsrc_t *c) {
  char err[512], why[TR_PATH_MAX];
  tr_store_t *st = NULL;
  uint64_t size = 0, t;
  uint8_t h[32];
  if (tr_store_open(copy, TR_STORE_READONLY, &st, err, sizeof err) != 0 || tr_store_head(st, &size, h, &t) != 0) {
    printf("FAILED: cannot read the journal: %s\n", err);
    tr_store_close(st);
    return CTL_FAILED;
  }
  size_t msg_len = timing ? sample_message_len(st, size) : 0;
  rawrate_t raw_before = timing ? raw_verify_rate(threads, msg_len) : (rawrate_t){0, 0}, raw_after = {0, 0};
  double cpu0 = process_cpu_s();
  static sigcheck_t sc;
  pthread_t tids[VERIFY_THREADS_MAX];
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  snprintf(sc.path, sizeof sc.path, "%s", copy);
  sc.size = size;
  unsigned started = size ? sigs_start(&sc, threads, tids) : 0;
  tr_replay_report_t rep;
  int rc = replay_with_progress(copy, size, &rep);
  double replay_s = seconds_since(&t0);
  uint64_t bad_sig = size ? sigs_finish(&sc, tids, started, why, sizeof why) : 0;
  double total_s = seconds_since(&t0), cpu_s = process_cpu_s() - cpu0;
  if (timing) {
    raw_after = raw_verify_rate(threads, msg_len);
    timing_print(size, threads, msg_len, replay_s, total_s, cpu_s, &rep, raw_before, raw_after);
  }
  rc = journal_verdict(rc, bad_sig, why, &rep);
  if (rc == 0 && c->have && c->note && open_own_checkpoint(st, c) != 0) {
    printf("FAILED: the data directory's checkpoint is not signed by the genesis node key\n");
    rc = CTL_FAILED;
  } else if (rc == 0 && c->have) {
    rc = check_root(st, size, &c->cp);
  }
  if (rc == 0 && c->have)
    printf("OK: %llu entries, signatures, replay and checkpoint %llu verified\n", (unsigned long long)size,
           (unsigned long long)c->cp.size);
  else if (rc == 0)
    printf("OK: %llu entries, signatures and replay verified (no checkpoint yet)\n", (unsigned long long)size);
  if (rc == 0 && rep.history_through < rep.size) /* a node stopped hard, or a backup of a running one */
    printf("note: account history is written through entry %llu; tranched writes the other %llu entries' rows "
           "from the journal when it starts\n", (unsigned long long)rep.history_through,
           (unsigned long long)(rep.size - rep.history_through));
  tr_store_close(st);
  return rc;
}

static unsigned threads_wanted(const ctl_opts_t *o) {
  uint64_t n = 0;
  const char *v = ctl_opt(o, "threads");
  if (v && (ctl_parse_u64(v, &n) != 0 || n < 1 || n > VERIFY_THREADS_MAX)) return 0;
  return v ? (unsigned)n : ctl_threads_default();
}

unsigned ctl_threads_default(void) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores < 1 ? 1 : cores > VERIFY_THREADS_MAX ? VERIFY_THREADS_MAX : (unsigned)cores;
}

int ctl_cmd_verify(const ctl_cmd_t *cmd, ctl_opts_t *o) {
  const char *datadir = ctl_opt(o, "datadir");
  if (!datadir) return ctl_usage_error(cmd, "--datadir is required");
  if (!ctl_opt(o, "checkpoint") != !ctl_opt(o, "vkey"))
    return ctl_usage_error(cmd, "--checkpoint and --vkey go together");
  unsigned threads = threads_wanted(o);
  if (threads == 0) return ctl_usage_error(cmd, "--threads must be 1-%d", VERIFY_THREADS_MAX);
  cpsrc_t c = {0};
  char tmpdir[TR_PATH_MAX] = "", copy[TR_PATH_MAX] = "";
  int rc = load_checkpoint(o, datadir, &c);
  if (rc == 0) rc = take_copy(datadir, tmpdir, sizeof tmpdir, copy, sizeof copy);
  if (rc == 0) rc = audit(copy, threads, ctl_flag(o, "timing"), &c);
  remove_copy(tmpdir, copy);
  free(c.note);
  return rc;
}
