-- lampo on SQLite, schema version 1: the sale's whole state in one file.
-- Times are integer microseconds since the epoch, UTC; money and units integer minor units.
-- IF NOT EXISTS throughout: a file whose first opening was cut short opens again.
-- meta.schema_version repeats PRAGMA user_version for lampo releases before
-- migrations, which read it and refuse a file of another schema.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, definition TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stock (
    event TEXT NOT NULL, sku TEXT NOT NULL,
    allocation INTEGER NOT NULL, available INTEGER NOT NULL,
    held INTEGER NOT NULL, sold INTEGER NOT NULL,
    PRIMARY KEY (event, sku),
    CHECK (available >= 0 AND held >= 0 AND sold >= 0
           AND available + held + sold = allocation)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    event TEXT NOT NULL, customer TEXT NOT NULL, sku TEXT NOT NULL,
    units INTEGER NOT NULL CHECK (units >= 0),
    PRIMARY KEY (event, customer, sku)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds (
    id TEXT PRIMARY KEY, event TEXT NOT NULL, customer TEXT NOT NULL, market TEXT NOT NULL,
    channel_kind TEXT NOT NULL, channel_name TEXT NOT NULL, referral TEXT NOT NULL,
    currency TEXT NOT NULL, lines TEXT NOT NULL,
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, state TEXT NOT NULL,
    payment_id TEXT NOT NULL, paid_at INTEGER, ended_at INTEGER, refunded_at INTEGER
);
CREATE INDEX IF NOT EXISTS holds_due ON holds (event, expires_at) WHERE state = 'held';
CREATE INDEX IF NOT EXISTS holds_event ON holds (event);
CREATE TABLE IF NOT EXISTS idem (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, hold_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS line_totals (
    event TEXT NOT NULL, sku TEXT NOT NULL, market TEXT NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, referral TEXT NOT NULL,
    units INTEGER NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (event, sku, market, kind, name, referral)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS order_totals (
    event TEXT NOT NULL, market TEXT NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, referral TEXT NOT NULL,
    orders INTEGER NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (event, market, kind, name, referral)
) WITHOUT ROWID;
