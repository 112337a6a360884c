-- 005_journal_append_only.sql — the journal append touches one B-tree.
-- `entries` had two UNIQUE indexes over random keys (txid, and signer with
-- id): every append wrote a random page of each, 4 KiB or more of WAL a tx
-- once the journal outgrows the cache, and at a million entries that was most
-- of the sequencer's time.  Duplicates are refused before an entry exists
-- (the node's in-memory (signer, id) index; the audit's replay checks the
-- journal never repeats one), so the journal keeps only its seq order, and
-- the two lookups the queries need (tx.get by txid, tx.find by signer and
-- id) become state tables like the rest, written behind the journal with the
-- derived mark.  The rebuild copies the journal once.
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

-- Entry by txid (tx.get) and by (signer, id) (tx.find, duplicates in tools).
CREATE TABLE entry_txids (
  txid BLOB PRIMARY KEY CHECK (length(txid) = 32),
  seq  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE entry_ids (
  signer BLOB NOT NULL CHECK (length(signer) = 32),
  tx_id  TEXT NOT NULL,
  seq    INTEGER NOT NULL,
  PRIMARY KEY (signer, tx_id)
) WITHOUT ROWID;
INSERT INTO entry_txids (txid, seq) SELECT txid, seq FROM entries;
INSERT INTO entry_ids (signer, tx_id, seq) SELECT signer, tx_id, seq FROM entries;
