-- 007_lookups_two_levels.sql — the lookup rows in two levels.
-- entry_txids and entry_ids (schema 005) are keyed by random 8-byte
-- prefixes: a sorted run of 8,192 rows dirtied about one page of each a row
-- once the tables outgrew the run, so their cost grew with the journal
-- (tr-lookups 1.5 us a tx at 60k entries, 3.3 at 300k, 5.5-6.3 at 10^6).
-- The runs now go into two small tables of the same shape, and the lookup
-- writer moves their rows into the large ones, a key range a transaction,
-- once they hold a sixteenth as many (at least TR_LOOKUP_MERGE_MIN rows):
-- each page of a large table is then rewritten about once a merge, not
-- once a run.  A lookup probes both levels.
--
-- Every entry up to lookup_progress has its row in exactly one level; the
-- large tables hold only entries up to the mark (only a merge writes them),
-- and the small ones may also hold rows after it (a run cut short by a
-- crash, written again).
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
-- A run cut short under schema 006 left rows after the mark in the large
-- tables: they belong to the small level now.
INSERT INTO entry_txids_recent (txid8, seq)
  SELECT txid8, seq FROM entry_txids WHERE seq > (SELECT seq FROM lookup_progress WHERE id = 1);
DELETE FROM entry_txids WHERE seq > (SELECT seq FROM lookup_progress WHERE id = 1);
INSERT INTO entry_ids_recent (signer8, tx_id, seq)
  SELECT signer8, tx_id, seq FROM entry_ids WHERE seq > (SELECT seq FROM lookup_progress WHERE id = 1);
DELETE FROM entry_ids WHERE seq > (SELECT seq FROM lookup_progress WHERE id = 1);
