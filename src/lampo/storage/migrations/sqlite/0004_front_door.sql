-- lampo on SQLite, schema version 4: the front door (docs/front-door.md). Times are
-- integer microseconds since the epoch, UTC. (3 is another change's number.)
CREATE TABLE IF NOT EXISTS door_registrations (
    event TEXT NOT NULL, account TEXT NOT NULL, at INTEGER NOT NULL,
    phone_hash TEXT, device_hash TEXT,
    PRIMARY KEY (event, account)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS door_registrations_at ON door_registrations (event, at, account);
-- the identities an event registers one account per (kind: phone, device)
CREATE TABLE IF NOT EXISTS door_identities (
    event TEXT NOT NULL, kind TEXT NOT NULL, hash TEXT NOT NULL, account TEXT NOT NULL,
    PRIMARY KEY (event, kind, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS door_draws (
    event TEXT PRIMARY KEY, seed TEXT NOT NULL, at INTEGER NOT NULL,
    registrations INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS door_winners (
    event TEXT NOT NULL, account TEXT NOT NULL, place INTEGER NOT NULL,
    PRIMARY KEY (event, account)
) WITHOUT ROWID;
-- a queue per (event, market): its seed, pre-queue size, frozen or not, last sequence
-- number, admission line (since, base, rate; NULL until a rate is set)
CREATE TABLE IF NOT EXISTS door_queues (
    event TEXT NOT NULL, market TEXT NOT NULL, seed TEXT NOT NULL,
    prequeue INTEGER NOT NULL DEFAULT 0, frozen INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    since INTEGER, base INTEGER, rate INTEGER,
    PRIMARY KEY (event, market)
) WITHOUT ROWID;
-- one entry per buyer per queue; seq 0 while in a pre-queue not frozen
CREATE TABLE IF NOT EXISTS door_entries (
    event TEXT NOT NULL, market TEXT NOT NULL, buyer TEXT NOT NULL, ticket TEXT NOT NULL,
    rank INTEGER, seq INTEGER NOT NULL, joined INTEGER NOT NULL,
    PRIMARY KEY (event, market, buyer)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS door_entries_rank ON door_entries (event, market, rank, buyer)
WHERE seq = 0;
