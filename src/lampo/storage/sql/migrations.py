"""The numbered schema migrations of the SQL backends, and SQLite's runner.

Each backend has a folder of SQL files, ``migrations/<backend>/NNNN_name.sql``, applied in
order. PostgreSQL records them in a table (``storage/postgres.py``, under an advisory
lock); SQLite in ``PRAGMA user_version``, each file in one transaction with its number.

A SQLite file written before migrations (user_version 0, tables present) carries its
schema in ``meta.schema_version`` (1 or 2, the numbers these files continue): it is
stamped with that and goes on from there. ``meta.schema_version`` is kept equal to
user_version, so a lampo of before refuses a file of a newer schema rather than use it.
"""

from __future__ import annotations

import sqlite3
from importlib import resources

from lampo.domain.errors import InvalidRequest


def migrations(backend: str) -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration shipped for ``backend``, in order."""
    folder = resources.files("lampo.storage") / "migrations" / backend
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def sqlite_version(conn: sqlite3.Connection) -> int:
    """The file's schema version: ``PRAGMA user_version``, or for a file written before
    migrations, its ``meta.schema_version`` (0 for a new file)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version == 0:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:  # no meta table: a new file
            row = None
        if row is not None:
            version = int(row[0])
    return version


def migrate_sqlite(conn: sqlite3.Connection, path: str) -> int:
    """Bring the file at ``conn`` (autocommit) up to date; return its schema version.
    Refuses a file of a newer schema, changing nothing. The caller makes sure no other
    lampo process migrates the same file at once (its file lock); each step runs under
    SQLite's write lock anyway, and reads the version again inside it."""
    known = migrations("sqlite")
    newest = max((v for v, _, _ in known), default=0)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = sqlite_version(conn)
            if current > newest:
                raise InvalidRequest(
                    "storage", f"{path!r} has schema {current}; this lampo knows {newest}"
                )
            pending = [(v, text) for v, _, text in known if v > current]
            if not pending:
                if conn.execute("PRAGMA user_version").fetchone()[0] != current:
                    conn.execute(f"PRAGMA user_version = {current}")  # a file of before
                conn.execute("COMMIT")
                return current
            version, text = pending[0]
            for statement in _statements(text):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version),)
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """The statements of ``script``, one at a time (``executescript`` would commit the
    open transaction first)."""
    out: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer)
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise ValueError(f"an incomplete statement at the end of a migration: {buffer!r}")
    return out
