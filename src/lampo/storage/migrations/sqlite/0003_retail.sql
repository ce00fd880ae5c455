-- lampo on SQLite, schema version 3: the store registry and the retail records (issue 12).
-- documents: a versioned document replaced whole (the store registry, name 'stores').
-- bindings: a value kept once under (space, key), never changed (a till receipt's order,
-- a store key and its revocation, a partner order's answers).
CREATE TABLE IF NOT EXISTS documents (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL CHECK (version >= 1),
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bindings (
    space TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (space, key)
) WITHOUT ROWID;
