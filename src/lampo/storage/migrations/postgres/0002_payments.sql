-- lampo on PostgreSQL, schema version 2: a payment id settles at most one order, forever.
-- Its primary key is the last word when two transactions bind one payment id at once
-- (payments in one database, or orders recorded from a live store). Schema 1 let one
-- payment id pay several holds: the first paid keeps it; a later one is left as it is.
CREATE TABLE payments (
    payment_id text PRIMARY KEY,
    hold_id text NOT NULL
);
INSERT INTO payments (payment_id, hold_id)
SELECT DISTINCT ON (payment_id) payment_id, id FROM holds
WHERE state IN ('paid', 'refunded') AND payment_id <> ''
ORDER BY payment_id, paid_at, id;
