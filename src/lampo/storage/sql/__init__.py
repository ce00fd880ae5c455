"""The SQL backends' shared half: one ``_transitions.State`` over an open transaction
(``state.py``), the reads and the port's plumbing over it (``storage.py``), and what
differs between SQLite and PostgreSQL (``dialect.py``: placeholders, row locks, how times
and hold lines are stored, the per-customer counter's read). ``migrations.py`` lists the
numbered schema migrations of both and applies SQLite's through ``PRAGMA user_version``.

``storage/sqlite.py`` and ``storage/postgres.py`` keep only what is theirs: connections,
the writer's transaction (SQLite's file lock, group commit and row cache; PostgreSQL's
retries), and PostgreSQL's migration lock.
"""
