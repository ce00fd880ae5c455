-- lampo on SQLite, schema version 2: a payment id settles at most one hold, forever.
-- Schema 1 let one payment id pay several holds: the first paid keeps it; a later one is
-- left as it is (answered as the same payment if its own hold is paid with it again).
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY, hold_id TEXT NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO payments (payment_id, hold_id)
SELECT payment_id, id FROM holds WHERE state IN ('paid', 'refunded') AND payment_id <> ''
ORDER BY paid_at, id;
