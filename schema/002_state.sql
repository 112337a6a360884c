-- 002_state.sql — state derived from the journal.  Every row here can be
-- rebuilt by replaying entries from seq 1 (tr_ledger_replay), and is written
-- in the same SQLite transaction as the entry that changed it.

CREATE TABLE accounts (
  id           BLOB PRIMARY KEY CHECK (length(id) = 32),
  roles        INTEGER NOT NULL,          -- TR_ROLE_* bits
  jurisdiction TEXT NOT NULL,
  kyc          INTEGER NOT NULL CHECK (kyc IN (0, 1)),
  frozen       INTEGER NOT NULL CHECK (frozen IN (0, 1))
) WITHOUT ROWID;

CREATE TABLE assets (
  id              TEXT PRIMARY KEY,
  issuer          BLOB NOT NULL,
  name            TEXT NOT NULL,
  kind            INTEGER NOT NULL,
  currency        TEXT NOT NULL,
  principal       INTEGER NOT NULL,
  units           INTEGER NOT NULL,         -- authorised
  coupon_bps      INTEGER NOT NULL,
  maturity        TEXT NOT NULL,
  rating          TEXT NOT NULL,
  risk_weight_pct INTEGER NOT NULL,
  jurisdictions   TEXT NOT NULL,            -- "US,GB" in tx order; empty = any
  max_holders     INTEGER NOT NULL,
  min_units       INTEGER NOT NULL,
  lockup_until    INTEGER NOT NULL,
  documents       TEXT NOT NULL,            -- JSON array as rendered by tranche
  status          INTEGER NOT NULL,         -- tr_status_t
  paused_from     INTEGER NOT NULL,         -- status before an admin pause
  issued          INTEGER NOT NULL CHECK (issued >= 0 AND issued <= units),
  holders         INTEGER NOT NULL CHECK (holders >= 0),
  created_seq     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX assets_by_issuer ON assets (issuer);

-- Only holdings with units > 0 are stored; frozen never exceeds units.
CREATE TABLE holdings (
  asset   TEXT NOT NULL,
  account BLOB NOT NULL,
  units   INTEGER NOT NULL CHECK (units > 0),
  frozen  INTEGER NOT NULL CHECK (frozen >= 0 AND frozen <= units),
  PRIMARY KEY (asset, account)
) WITHOUT ROWID;
CREATE INDEX holdings_by_account ON holdings (account, asset);

CREATE TABLE distributions (
  seq    INTEGER PRIMARY KEY,
  asset  TEXT NOT NULL,
  amount INTEGER NOT NULL,
  kind   INTEGER NOT NULL,
  count  INTEGER NOT NULL
);

CREATE TABLE payouts (
  distribution INTEGER NOT NULL,
  account      BLOB NOT NULL,
  asset        TEXT NOT NULL,
  amount       INTEGER NOT NULL CHECK (amount >= 0),
  PRIMARY KEY (distribution, account)
) WITHOUT ROWID;
CREATE INDEX payouts_by_asset ON payouts (asset, distribution, account);

-- Entries an account signed or whose units it moved (account.history).
CREATE TABLE account_entries (
  account BLOB NOT NULL,
  seq     INTEGER NOT NULL,
  PRIMARY KEY (account, seq)
) WITHOUT ROWID;

-- The effects part of each accepted tx's receipt, so a duplicate submission
-- gets the stored receipt whatever the state is now.
CREATE TABLE receipts (
  seq     INTEGER PRIMARY KEY,
  effects TEXT NOT NULL
);
