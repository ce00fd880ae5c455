-- lampo on PostgreSQL, schema version 1: the sale's whole state, as the SQLite file has it.
-- Times are timestamptz (microseconds, UTC inside); money and units are bigint minor units.
CREATE TABLE events (
    id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    definition text NOT NULL  -- the codec's JSON, compared as written
);
CREATE TABLE stock (
    event text NOT NULL REFERENCES events (id),
    sku text NOT NULL,
    allocation bigint NOT NULL,
    available bigint NOT NULL,
    held bigint NOT NULL,
    sold bigint NOT NULL,
    PRIMARY KEY (event, sku),
    CHECK (available >= 0 AND held >= 0 AND sold >= 0
           AND available + held + sold = allocation)
);
CREATE TABLE counters (
    event text NOT NULL,
    customer text NOT NULL,
    sku text NOT NULL,  -- '' counts the customer's units across the whole event
    units bigint NOT NULL CHECK (units >= 0),
    PRIMARY KEY (event, customer, sku)
);
CREATE TABLE holds (
    id text PRIMARY KEY,
    event text NOT NULL REFERENCES events (id),
    customer text NOT NULL,
    market text NOT NULL,
    channel_kind text NOT NULL,
    channel_name text NOT NULL,
    referral text NOT NULL,
    currency text NOT NULL,
    lines jsonb NOT NULL,  -- [[sku, quantity, unit price], ...]
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    state text NOT NULL CHECK (state IN ('held', 'paid', 'released', 'expired', 'refunded')),
    payment_id text NOT NULL,
    paid_at timestamptz,
    ended_at timestamptz,
    refunded_at timestamptz
);
CREATE INDEX holds_due ON holds (event, expires_at) WHERE state = 'held';
CREATE INDEX holds_event ON holds (event);
CREATE TABLE idem (
    key text PRIMARY KEY,
    fingerprint text NOT NULL,
    hold_id text NOT NULL
);
CREATE TABLE line_totals (
    event text NOT NULL, sku text NOT NULL, market text NOT NULL, kind text NOT NULL,
    name text NOT NULL, referral text NOT NULL,
    units bigint NOT NULL, amount bigint NOT NULL,
    PRIMARY KEY (event, sku, market, kind, name, referral)
);
CREATE TABLE order_totals (
    event text NOT NULL, market text NOT NULL, kind text NOT NULL,
    name text NOT NULL, referral text NOT NULL,
    orders bigint NOT NULL, amount bigint NOT NULL,
    PRIMARY KEY (event, market, kind, name, referral)
);
