/* tr_mem_load.c — a node's in-memory state from its store: the derived
 * tables as of the derived mark, then the journal's tail replayed through
 * the rules (tr_mem.h).
 *
 * Every read is a scan in key order on the caller's connection, inside one
 * read transaction, so the tables and the journal are seen at one instant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"
#include "tr_ledger.h"
#include "tr_mem.h"

/* Steps a scan; 1 with a row, 0 at the end, TR_EIO on error. */
static int scan_step(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) return 1;
  tr_store_note_failure(sqlite3_db_handle(st), rc);
  return rc == SQLITE_DONE ? 0 : TR_EIO;
}

static bool column_is_key(sqlite3_stmt *st, int col) {
  return sqlite3_column_type(st, col) == SQLITE_BLOB && sqlite3_column_bytes(st, col) == 32;
}

static int load_accounts(tr_mem_t *m, tr_store_t *s) {
  sqlite3_stmt *st = tr_store_stmt(s, "SELECT id, roles, jurisdiction, kyc, frozen FROM accounts ORDER BY id");
  if (st == NULL) return TR_EIO;
  int rc;
  while ((rc = scan_step(st)) == 1) {
    tr_account_t a = {0};
    const unsigned char *j = sqlite3_column_text(st, 2);
    if (!column_is_key(st, 0) || j == NULL || strlen((const char *)j) != 2) {
      rc = TR_ECORRUPT;
      break;
    }
    memcpy(a.id.b, sqlite3_column_blob(st, 0), 32);
    a.roles = (unsigned)sqlite3_column_int(st, 1);
    memcpy(a.jurisdiction, j, 3);
    a.kyc = sqlite3_column_int(st, 3) != 0;
    a.frozen = sqlite3_column_int(st, 4) != 0;
    if ((rc = tr_mem_load_account(m, &a)) != 0) break;
  }
  sqlite3_reset(st);
  return rc;
}

static int load_assets(tr_mem_t *m, tr_store_t *s) {
  /* Assets are few and wide: each is read with the store's own decoder. */
  sqlite3_stmt *st = tr_store_stmt(s, "SELECT id FROM assets ORDER BY id");
  if (st == NULL) return TR_EIO;
  char (*ids)[TR_ASSET_ID_CHARS_MAX + 1] = NULL;
  size_t n = 0, cap = 0;
  int rc;
  while ((rc = scan_step(st)) == 1) {
    const unsigned char *id = sqlite3_column_text(st, 0);
    if (id == NULL || strlen((const char *)id) > TR_ASSET_ID_CHARS_MAX) {
      rc = TR_ECORRUPT;
      break;
    }
    if (n == cap) {
      size_t want = cap ? cap * 2 : 16;
      void *more = realloc(ids, want * sizeof *ids);
      if (more == NULL) {
        rc = TR_ENOMEM;
        break;
      }
      ids = more;
      cap = want;
    }
    snprintf(ids[n++], sizeof ids[0], "%s", (const char *)id);
  }
  sqlite3_reset(st);
  for (size_t i = 0; i < n && rc == 0; i++) {
    tr_asset_t a;
    if ((rc = tr_store_asset_get(s, ids[i], &a)) != 0) break;
    rc = tr_mem_load_asset(m, &a);
    tr_asset_clear(&a);
  }
  free(ids);
  return rc;
}

static int load_holdings(tr_mem_t *m, tr_store_t *s) {
  sqlite3_stmt *st = tr_store_stmt(s, "SELECT asset, account, units, frozen FROM holdings ORDER BY asset, account");
  if (st == NULL) return TR_EIO;
  int rc;
  while ((rc = scan_step(st)) == 1) {
    const unsigned char *asset = sqlite3_column_text(st, 0);
    if (asset == NULL || !column_is_key(st, 1) || sqlite3_column_int64(st, 2) <= 0 || sqlite3_column_int64(st, 3) < 0) {
      rc = TR_ECORRUPT;
      break;
    }
    tr_key_t account;
    memcpy(account.b, sqlite3_column_blob(st, 1), 32);
    tr_holding_t h = {(uint64_t)sqlite3_column_int64(st, 2), (uint64_t)sqlite3_column_int64(st, 3)};
    if ((rc = tr_mem_load_holding(m, (const char *)asset, &account, &h)) != 0) break;
  }
  sqlite3_reset(st);
  return rc;
}

/* Entries 1..through: their (signer, id), and head and frontier at through. */
static int load_journal(tr_mem_t *m, tr_store_t *s, uint64_t through) {
  sqlite3_stmt *st = tr_store_stmt(s, "SELECT seq, time, hash, signer, tx_id FROM entries WHERE seq <= ?1 ORDER BY seq");
  if (st == NULL) return TR_EIO;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)through);
  int rc;
  while ((rc = scan_step(st)) == 1) {
    const unsigned char *id = sqlite3_column_text(st, 4);
    if (!column_is_key(st, 2) || !column_is_key(st, 3) || id == NULL || sqlite3_column_int64(st, 1) < 0) {
      rc = TR_ECORRUPT;
      break;
    }
    tr_key_t signer;
    memcpy(signer.b, sqlite3_column_blob(st, 3), 32);
    rc = tr_mem_load_entry(m, (uint64_t)sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
                           sqlite3_column_blob(st, 2), &signer, (const char *)id);
    if (rc != 0) break;
  }
  sqlite3_reset(st);
  if (rc == 0 && m->size != through) rc = TR_ECORRUPT; /* a gap in the journal */
  return rc;
}

int tr_mem_load(tr_mem_t *m, tr_store_t *s, uint64_t through, char *err, size_t errlen) {
  const char *what = "the journal";
  int rc = tr_store_read_begin(s);
  if (rc == 0) rc = load_journal(m, s, through);
  if (rc == 0) rc = load_accounts(m, s), what = "accounts";
  if (rc == 0) rc = load_assets(m, s), what = "assets";
  if (rc == 0) rc = load_holdings(m, s), what = "holdings";
  tr_store_read_end(s);
  if (rc != 0)
    snprintf(err, errlen, "cannot load %s into memory: %s", what,
             rc == TR_ECORRUPT ? "a stored row is malformed or the journal has a gap" : tr_store_error_text(s, rc));
  return rc;
}

/* ------------------------------------------------------------------------ */
/* The tail: entries after the derived mark, through the rules again         */

typedef struct {
  tr_mem_t *m;
  tr_ledger_t *l;
  tr_tx_t *tx;
  char *err;
  size_t errlen;
} replay_t;

static int replay_fail(replay_t *rp, uint64_t seq, const char *why) {
  snprintf(rp->err, rp->errlen, "entry %llu does not replay: %s", (unsigned long long)seq, why);
  return TR_ECORRUPT;
}

static int replay_entry(void *ctx, const tr_entry_t *e) {
  replay_t *rp = ctx;
  tr_tx_error_t txerr;
  if (e->seq != rp->m->size + 1) return replay_fail(rp, rp->m->size + 1, "missing");
  int rc = tr_tx_decode(e->tx, e->tx_len, rp->tx, &txerr);
  if (rc == TR_ENOMEM) return rc;
  if (rc != 0) return replay_fail(rp, e->seq, txerr.detail);
  if (e->seq == 1) {
    rc = tr_ledger_genesis_apply(rp->l, rp->tx, e->tx, e->tx_len, e->sig, e->time);
  } else {
    tr_receipt_t receipt = {0};
    tr_refusal_t refusal = {0};
    rc = tr_ledger_apply(rp->l, rp->tx, e->tx, e->tx_len, e->sig, e->time, &receipt, &refusal);
    if (tr_err_is_refusal(rc)) return replay_fail(rp, e->seq, refusal.detail);
    if (rc == 0 && receipt.duplicate) rc = TR_ECORRUPT; /* the journal repeats a (signer, id) */
    tr_receipt_clear(&receipt);
  }
  if (rc == TR_ECORRUPT || (rc == 0 && (rp->m->size != e->seq || rp->m->head_time != e->time ||
                                        memcmp(rp->m->head_hash, e->hash, 32) != 0)))
    return replay_fail(rp, e->seq, "the rules give another entry than the stored one");
  if (rc != 0) snprintf(rp->err, rp->errlen, "entry %llu: %s", (unsigned long long)e->seq, tr_strerror(rc));
  return rc;
}

int tr_mem_replay(tr_mem_t *m, tr_ledger_t *l, tr_store_t *s, uint64_t last, char *err, size_t errlen) {
  if (last <= m->size) return 0;
  replay_t rp = {.m = m, .l = l, .tx = malloc(sizeof(tr_tx_t)), .err = err, .errlen = errlen};
  if (rp.tx == NULL) return TR_ENOMEM;
  err[0] = '\0';
  int rc = tr_store_entries_scan(s, m->size + 1, last, replay_entry, &rp);
  if (rc == 0 && m->size != last) rc = replay_fail(&rp, m->size + 1, "missing");
  if (rc != 0 && err[0] == '\0') snprintf(err, errlen, "cannot replay the journal: %s", tr_store_error_text(s, rc));
  free(rp.tx);
  return rc;
}
