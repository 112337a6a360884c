-- 003_history_progress.sql — how far account_entries is written.
-- The writer keeps a group commit's history rows in memory and writes them
-- later, sorted and many entries at a time (a batch of transfers otherwise
-- dirties one page per active account).  Rows exist for every entry with
-- seq <= history_progress.seq; after a crash the writer rebuilds the rest
-- from the journal before it accepts a tx.  Existing databases wrote their
-- rows with their entries, so they start complete.
CREATE TABLE history_progress (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL CHECK (seq >= 0)
);
INSERT INTO history_progress (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM entries;
CREATE TRIGGER history_progress_d BEFORE DELETE ON history_progress
BEGIN SELECT RAISE(ABORT, 'history_progress has exactly one row'); END;
