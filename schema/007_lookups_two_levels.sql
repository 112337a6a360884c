-- 007_lookups_two_levels.sql — the lookup rows in two levels.
-- entry_txids and entry_ids (schema 005) are keyed by random 8-byte
-- prefixes: a sorted run of 8,192 rows dirtied about one page of each a row
-- once the tables outgrew the run, so their cost grew with the journal
-- (tr-lookups 1.5 us a tx at 60k entries, 3.3 at 300k, 5.5-6.3 at 10^6).
-- Past TR_LOOKUP_TWO_LEVELS_FROM rows (config lookup_two_levels_from) the
-- runs go into two small tables of the same shape instead, and the lookup
-- writer merges their rows into the large ones once they hold an eighth as
-- many: it copies them a key range a transaction, so each page of a large
-- table is rewritten about once a merge, not once a run, then empties the
-- small ones at once.  A lookup probes both levels.
--
-- Every entry up to lookup_progress has its row in a level (in both while
-- a merge runs, or after one cut short), and every row names its entry;
-- either level may hold rows after the mark (a run cut short by a crash,
-- written again).
CREATE TABLE entry_txids_recent (
  txid8 BLOB NOT NULL CHECK (length(txid8) = 8),
  seq   INTEGER NOT NULL,
  PRIMARY KEY (txid8, seq)
) WITHOUT ROWID;
CREATE TABLE entry_ids_recent (
  signer8 BLOB NOT NULL CHECK (length(signer8) = 8),
  tx_id   TEXT NOT NULL,
  seq     INTEGER NOT NULL,
  PRIMARY KEY (signer8, tx_id, seq)
) WITHOUT ROWID;
