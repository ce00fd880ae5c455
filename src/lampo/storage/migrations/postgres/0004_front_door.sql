-- lampo on PostgreSQL, schema version 4: the front door (docs/front-door.md), as the
-- SQLite file has it. (3 is another change's number.)
CREATE TABLE door_registrations (
    event text NOT NULL,
    account text NOT NULL,
    at timestamptz NOT NULL,
    phone_hash text,
    device_hash text,
    PRIMARY KEY (event, account)
);
CREATE INDEX door_registrations_at ON door_registrations (event, at, account);
-- the identities an event registers one account per (kind: phone, device)
CREATE TABLE door_identities (
    event text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('phone', 'device')),
    hash text NOT NULL,
    account text NOT NULL,
    PRIMARY KEY (event, kind, hash)
);
CREATE TABLE door_draws (
    event text PRIMARY KEY,
    seed text NOT NULL,
    at timestamptz NOT NULL,
    registrations bigint NOT NULL
);
CREATE TABLE door_winners (
    event text NOT NULL,
    account text NOT NULL,
    place bigint NOT NULL,
    PRIMARY KEY (event, account)
);
-- a queue per (event, market): its seed, pre-queue size, frozen or not, last sequence
-- number, admission line (since, base, rate; NULL until a rate is set)
CREATE TABLE door_queues (
    event text NOT NULL,
    market text NOT NULL,
    seed text NOT NULL,
    prequeue bigint NOT NULL DEFAULT 0,
    frozen boolean NOT NULL DEFAULT false,
    last_seq bigint NOT NULL DEFAULT 0,
    since timestamptz,
    base bigint,
    rate bigint,
    PRIMARY KEY (event, market)
);
-- one entry per buyer per queue; seq 0 while in a pre-queue not frozen
CREATE TABLE door_entries (
    event text NOT NULL,
    market text NOT NULL,
    buyer text NOT NULL,
    ticket text NOT NULL,
    rank bigint,
    seq bigint NOT NULL,
    joined timestamptz NOT NULL,
    PRIMARY KEY (event, market, buyer)
);
CREATE INDEX door_entries_rank ON door_entries (event, market, rank, buyer) WHERE seq = 0;
