-- lampo on PostgreSQL, schema version 3: the store registry and the retail records
-- (issue 12). documents: a versioned document replaced whole (the store registry, name
-- 'stores'). bindings: a value kept once under (space, key), never changed (a till
-- receipt's order, a store key and its revocation, a partner order's answers).
CREATE TABLE documents (
    name text PRIMARY KEY,
    version bigint NOT NULL CHECK (version >= 1),
    body text NOT NULL
);
CREATE TABLE bindings (
    space text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (space, key)
);
