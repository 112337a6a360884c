-- 005_lookups_behind.sql — the journal append touches one B-tree.
-- `entries` had two UNIQUE indexes over random keys (txid, and signer with
-- id): each append dirtied a random page of each, 4 KiB of WAL a tx or more
-- once the journal outgrew the cache, and at a million entries that was most
-- of the sequencer's time (46 us a tx against 24 at 30k entries; sqlite-floor:
-- 14.4 us a row with the indexes, 4.7 without, at 60k rows).
--
-- The live path never needed them: duplicates are refused before an entry
-- exists (the node's in-memory (signer, id) index, loaded from the journal at
-- start), and the audit's replay refuses a journal that repeats one.  What
-- needs them is lookups: tx.get (txid) and tx.find (signer, id), and the
-- SQLite state path of offline tools.  Those read two lookup tables written
-- late, in large sorted runs, so a run of thousands of entries dirties each
-- page of them about once: entry_txids and entry_ids hold the first 8 bytes
-- of the txid and of the signer (every lookup confirms the whole key on the
-- entry itself), and lookup_progress says how far they are complete.  A
-- lookup reads them, then scans the few entries after the mark.
CREATE TABLE entries_v5 (
  seq    INTEGER PRIMARY KEY CHECK (seq >= 1),
  time   INTEGER NOT NULL CHECK (time >= 0),
  prev   BLOB NOT NULL CHECK (length(prev) = 32),
  hash   BLOB NOT NULL CHECK (length(hash) = 32),
  txid   BLOB NOT NULL CHECK (length(txid) = 32),
  sig    BLOB NOT NULL CHECK (length(sig) = 64),
  signer BLOB NOT NULL CHECK (length(signer) = 32),
  tx_id  TEXT NOT NULL,
  tx     BLOB NOT NULL
);
INSERT INTO entries_v5 (seq, time, prev, hash, txid, sig, signer, tx_id, tx)
  SELECT seq, time, prev, hash, txid, sig, signer, tx_id, tx FROM entries ORDER BY seq;
DROP TABLE entries;
ALTER TABLE entries_v5 RENAME TO entries;
CREATE TRIGGER entries_append_only_u BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER entries_append_only_d BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;

CREATE TABLE entry_txids (
  txid8 BLOB NOT NULL CHECK (length(txid8) = 8),
  seq   INTEGER NOT NULL,
  PRIMARY KEY (txid8, seq)
) WITHOUT ROWID;
CREATE TABLE entry_ids (
  signer8 BLOB NOT NULL CHECK (length(signer8) = 8),
  tx_id   TEXT NOT NULL,
  seq     INTEGER NOT NULL,
  PRIMARY KEY (signer8, tx_id, seq)
) WITHOUT ROWID;
CREATE TABLE lookup_progress (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL CHECK (seq >= 0)
);
CREATE TRIGGER lookup_progress_d BEFORE DELETE ON lookup_progress
BEGIN SELECT RAISE(ABORT, 'lookup_progress has exactly one row'); END;
INSERT INTO entry_txids (txid8, seq) SELECT substr(txid, 1, 8), seq FROM entries ORDER BY 1, 2;
INSERT INTO entry_ids (signer8, tx_id, seq) SELECT substr(signer, 1, 8), tx_id, seq FROM entries ORDER BY 1, 2, 3;
INSERT INTO lookup_progress (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM entries;
