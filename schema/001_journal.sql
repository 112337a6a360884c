-- 001_journal.sql — the append-only journal (PROTOCOL.md §3) and what the
-- transparency log keeps beside it.  Rows here are never updated or deleted:
-- the triggers make that a property of the database, not only of our code.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE entries (
  seq    INTEGER PRIMARY KEY CHECK (seq >= 1),
  time   INTEGER NOT NULL CHECK (time >= 0),
  prev   BLOB NOT NULL CHECK (length(prev) = 32),
  hash   BLOB NOT NULL CHECK (length(hash) = 32),
  txid   BLOB NOT NULL UNIQUE CHECK (length(txid) = 32),
  sig    BLOB NOT NULL CHECK (length(sig) = 64),
  signer BLOB NOT NULL CHECK (length(signer) = 32),
  tx_id  TEXT NOT NULL,
  tx     BLOB NOT NULL,
  UNIQUE (signer, tx_id)
);

-- Hashes of complete Merkle subtrees above the leaves: node (level, idx)
-- covers leaves [idx * 2^level, (idx + 1) * 2^level).  Level 0 is not stored:
-- a leaf is its entry's `hash`.  Proofs read O(log n) of them.
CREATE TABLE merkle_nodes (
  level INTEGER NOT NULL,
  idx   INTEGER NOT NULL,
  hash  BLOB NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- Signed checkpoints (C2SP tlog-checkpoint notes), one per published size.
CREATE TABLE checkpoints (
  size INTEGER PRIMARY KEY,
  root BLOB NOT NULL CHECK (length(root) = 32),
  time INTEGER NOT NULL,
  note TEXT NOT NULL
);

CREATE TRIGGER meta_append_only_u BEFORE UPDATE ON meta
BEGIN SELECT RAISE(ABORT, 'meta is write-once'); END;
CREATE TRIGGER meta_append_only_d BEFORE DELETE ON meta
BEGIN SELECT RAISE(ABORT, 'meta is write-once'); END;
CREATE TRIGGER entries_append_only_u BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER entries_append_only_d BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER merkle_append_only_u BEFORE UPDATE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'merkle nodes are append-only'); END;
CREATE TRIGGER merkle_append_only_d BEFORE DELETE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'merkle nodes are append-only'); END;
CREATE TRIGGER checkpoints_append_only_u BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_append_only_d BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
