-- 006_merkle_strata.sql — Merkle nodes kept at every fourth level only.
-- A node at level 4, 8, 12, … covers 16, 256, 4096, … entries; a complete
-- subtree in between is folded from the at most 8 kept nodes (or entry
-- hashes) beneath it when a root or a proof needs it (lib/tr_merkle.h,
-- TR_MERKLE_STRATUM).  The writer behind then adds one row per 16 entries
-- instead of about one per entry.  Rows of the levels in between are
-- dropped here; the append-only trigger is set aside for that one delete.
DROP TRIGGER merkle_append_only_d;
DELETE FROM merkle_nodes WHERE level % 4 != 0;
CREATE TRIGGER merkle_append_only_d BEFORE DELETE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'merkle nodes are append-only'); END;
