-- 006_merkle_strata.sql — Merkle nodes kept at every second level only.
-- A node at level 2, 4, 6, … covers 4, 16, 64, … entries; a complete subtree
-- at an odd level is folded from the two kept nodes (or entry hashes)
-- beneath it when a root or a proof needs it (lib/tr_merkle.h,
-- TR_MERKLE_STRATUM).  The writer behind then adds one row per 3 entries
-- instead of about one per entry.  Rows of the odd levels are dropped here;
-- the append-only trigger is set aside for that one delete.
DROP TRIGGER merkle_append_only_d;
DELETE FROM merkle_nodes WHERE level % 2 != 0;
CREATE TRIGGER merkle_append_only_d BEFORE DELETE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'merkle nodes are append-only'); END;
