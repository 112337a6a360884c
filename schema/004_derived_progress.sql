-- 004_derived_progress.sql — how far every derived row is written.
-- A node applies txs to its state in memory and commits only their journal
-- entries before it answers; a writer behind it writes accounts, assets,
-- holdings, receipts, account history, distributions, payouts and Merkle
-- nodes, and moves this mark in the same transaction.  Every derived row of
-- the entries up to derived_progress.seq is written; after a hard stop the
-- node replays the entries after it.  Databases before this version wrote
-- those rows with their entries, so they start complete (their account
-- history has its own mark, history_progress, which the writer now moves
-- together with this one).
CREATE TABLE derived_progress (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL CHECK (seq >= 0)
);
INSERT INTO derived_progress (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM entries;
CREATE TRIGGER derived_progress_d BEFORE DELETE ON derived_progress
BEGIN SELECT RAISE(ABORT, 'derived_progress has exactly one row'); END;
