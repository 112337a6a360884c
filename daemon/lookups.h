/* lookups.h — the writers of the tables that index the journal, each on a
 * thread and a connection of its own: the lookup tables, late (tr-lookups),
 * and account history, soon, or at once for a query that waits for it
 * (tr-history).
 *
 * tx.get and tx.find read entry_txids and entry_ids (8-byte key prefixes,
 * schema 005) up to lookup_progress, then scan the journal after that mark
 * (tr_query.c).  Their rows are written late and sorted, TR_LOOKUP_WRITE_EVERY
 * entries a time, in transactions of TR_LOOKUP_CHUNK_ROWS, so a page is
 * written about once a run.  The keys are random, so once a table outgrows
 * the run that is a page a row; past lookup_two_levels_from rows (config,
 * TR_LOOKUP_TWO_LEVELS_FROM) runs go into a small level of each table
 * (schema 007), copied into the large one, a key range a transaction, once
 * it holds an eighth as many rows, then emptied at once: a page of the
 * large level is then written about once a merge, not once a run.  That
 * work was a quarter of the derived writer's CPU; on this thread
 * (tr-lookups), with its own connection, it is a stage of the pipeline of
 * its own and no longer adds to the busiest.
 *
 * The derived writer feeds it the entries of each delta it has written
 * (tr_lookups_feed), so every row names an entry already in the journal.
 * Rows are held in memory while they run on without a gap; otherwise (a
 * start behind, a snapshot installed, memory short, a failed write) the
 * missing rows are read back from the journal, TR_LOOKUP_WRITE_MAX entries
 * a time.  Nothing here needs fsync: the rows and their mark are rebuilt
 * from the journal after a crash.  Writes share the database's write lock
 * with the journal (sequencer.h write_mu) and give it way after each
 * transaction.
 *
 * Account history (account_entries, history_progress) is fed the same way
 * and written by tr-history, sorted by (account, seq) after gathering for up to
 * TR_HISTORY_LINGER_MS, or at once when a query waits for it
 * (tr_lookups_hurry): account.history must see every answered tx, so
 * queries wait for the lower of the derived mark and the history mark
 * (tr_derived_readable).  Those rows were ~5 of the derived writer's ~9 us
 * a tx.  Held rows that do not follow the history mark (a failed write,
 * memory short) are given up and the rows read back from the journal
 * (tr_store_history_catch_up), as at a start behind.
 */
#ifndef TR_LOOKUPS_H
#define TR_LOOKUPS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "mailbox.h"
#include "tr_delta.h"
#include "tr_store.h"

struct tr_sequencer;

typedef struct {
  atomic_ullong through;  /* the lookup tables reach this seq (lookup_progress) */
  atomic_ullong write_ns; /* time spent writing them */
  atomic_ullong errors;   /* failed transactions (retried from the journal; node.status derived.errors) */
  atomic_ullong merges;   /* merges of the small level into the large one, completed */
  atomic_ullong history_through;  /* account history reaches this seq (history_progress) */
  atomic_ullong history_write_ns; /* time spent writing it */
  atomic_bool history_failing;    /* its last write failed: queries waiting for it are told */
} tr_lookups_stats_t;

typedef struct tr_lookups {
  uv_mutex_t mu;
  uv_cond_t cond;             /* rows fed, a settle asked for, or the stop */
  uv_thread_t thread;         /* tr-lookups */
  bool started, stopping, settle;
  tr_lookup_row_t *held;      /* fed rows not yet taken: one run of consecutive seqs */
  size_t held_n, held_cap;
  uint64_t fed_through;       /* the derived mark as last fed: how far the tables are to reach */
  tr_delta_history_t *hist;   /* fed history rows not yet taken, entries hist_from..hist_fed */
  size_t hist_n, hist_cap;
  uint64_t hist_from, hist_fed;
  uint64_t hist_oldest_ns;    /* when the first held row was fed */
  atomic_ullong hist_wanted;  /* a query waits for history through this seq: write at once */
  bool hist_gap;              /* rows not held since the mark: read back from the journal */
  char hist_why[400];         /* the last failed history write (under mu) */
  tr_mailbox_t *done;         /* the loop, told when history moves (TR_MSG_DERIVED) */

  tr_store_t *conn;           /* this thread's own connection */
  bool durable;               /* its commits fsync: set off at the first write */
  uint64_t recent_rows;       /* rows in the tables' small level, as counted (this thread's) */
  tr_lookup_row_t *work;      /* the run being written (this thread's) */
  size_t work_cap;
  tr_delta_history_t *hist_work; /* the history rows being written (tr-history's) */
  size_t hist_work_cap;
  uv_thread_t hist_thread;    /* tr-history */
  uv_cond_t hist_cond;        /* history rows fed, a hurry, or the stop */
  tr_store_t *hist_conn;      /* tr-history's own connection */
  bool hist_durable;          /* its commits fsync: set off at the first write */
  struct tr_sequencer *seq;   /* write_mu; halted when the database is found damaged */
  tr_lookups_stats_t stats;
} tr_lookups_t;

/* Opens its connection to db_path, reads the marks, starts the thread. */
int tr_lookups_start(tr_lookups_t *l, const char *db_path, struct tr_sequencer *seq, tr_mailbox_t *done,
                     char *err, size_t errlen);
/* Derived writer thread: deltas first..last are written and the derived
 * mark is now `through`; their entries' rows and history rows are taken in. */
void tr_lookups_feed(tr_lookups_t *l, const tr_delta_t *first, const tr_delta_t *last, uint64_t through);
/* Derived writer thread, when idle or stopping (the derived mark is
 * `through`): write whatever lags, however little. */
void tr_lookups_settle(tr_lookups_t *l, uint64_t through);
/* Loop thread: a query waits for account history through `need`; the held
 * rows are written as soon as they are fed, without gathering more. */
void tr_lookups_hurry(tr_lookups_t *l, uint64_t need);
/* Any thread: why account history is failing to be written ("" if not). */
void tr_lookups_history_failure(tr_lookups_t *l, char *out, size_t outlen);
/* Writes what lags after the derived writer's last feed (one pass: the
 * held history, the held run and at most TR_LOOKUP_WRITE_MAX entries read
 * back before it), joins, closes. */
void tr_lookups_stop(tr_lookups_t *l);

#endif
