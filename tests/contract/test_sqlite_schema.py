"""The SQLite schema: numbered migrations through ``PRAGMA user_version``; a file written
before them (the inline schema, user_version 0) opens, keeps its data and is stamped; a
second opening migrates nothing; a file of a newer schema is refused, unchanged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lampo.domain.errors import InvalidRequest
from lampo.services.audit import audit
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import Storage, from_url
from lampo.storage.sql.migrations import migrations
from tests.factories import NOW, sale_event

pytestmark = pytest.mark.sqlite

#: The schema lampo created inline on every opening before migrations (schema 2).
INLINE_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY, hold_id TEXT NOT NULL
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
INSERT OR IGNORE INTO meta VALUES ('schema_version', '2');
"""

TABLES = (
    "events",
    "stock",
    "counters",
    "holds",
    "idem",
    "payments",
    "line_totals",
    "order_totals",
)
NEWEST = max(v for v, _, _ in migrations("sqlite"))


def sell(store: Storage) -> None:
    """An event with orders in every state a file keeps: paid, refunded, released, held."""
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(sale_event(sku_limit=3, event_limit=5))
    for n, state in enumerate(("paid", "refunded", "released", "held", "paid")):
        hold = sales.reserve("fest", f"c{n}", "CN", {"phone-red": 1, "tv-55": 1}, key=f"k{n}")
        if state in ("paid", "refunded"):
            sales.pay(hold.id, f"psp-{n}")
        if state == "refunded":
            sales.refund(hold.id)
        if state == "released":
            sales.release(hold.id)


def file_of_inline_schema(tmp_path: Path) -> Path:
    """A file as lampo wrote it before migrations: the inline schema (user_version 0),
    holding the rows of a sale (made by today's lampo in another file, then copied)."""
    source, old = tmp_path / "source.db", tmp_path / "old.db"
    with from_url(f"sqlite:///{source}") as store:
        sell(store)
    conn = sqlite3.connect(old, isolation_level=None)
    try:
        conn.executescript(INLINE_SCHEMA)
        conn.execute("ATTACH DATABASE ? AS source", (str(source),))
        for table in TABLES:
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM source.{table}")
        conn.execute("DETACH DATABASE source")
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)
    finally:
        conn.close()
    return old


def rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, the schema's text and the version marks of the file."""
    conn = sqlite3.connect(path)
    try:
        out = {t: sorted(conn.execute(f"SELECT * FROM {t}")) for t in TABLES}
        out["sqlite_master"] = sorted(conn.execute("SELECT type, name, sql FROM sqlite_master"))
        out["meta"] = sorted(conn.execute("SELECT * FROM meta"))
        out["user_version"] = [conn.execute("PRAGMA user_version").fetchone()]
        return out
    finally:
        conn.close()


def test_a_file_of_the_inline_schema_opens_keeps_its_data_and_is_stamped(tmp_path: Path) -> None:
    old = file_of_inline_schema(tmp_path)
    before = rows(old)
    with from_url(f"sqlite:///{old}") as store:
        event = store.load_events()[0]
        assert audit(store, event).ok
        assert {h.state.value for h in store.holds("fest")} == {
            "paid",
            "refunded",
            "released",
            "held",
        }
    after = rows(old)
    assert after["user_version"] == [(NEWEST,)]
    assert after["meta"] == [("schema_version", str(NEWEST))]
    for table in TABLES:  # stamped, not rebuilt: every row as it was
        assert after[table] == before[table], table
    # and the schema as it was, plus the tables of the migrations after schema 2
    added = [row for row in after["sqlite_master"] if row not in before["sqlite_master"]]
    assert [row for row in after["sqlite_master"] if row not in added] == before["sqlite_master"]
    assert all(str(name).startswith("door_") for _, name, _ in added), added
    with from_url(f"sqlite:///{old}") as store:  # and it sells on
        sales = Sales(store, clock=ManualClock(NOW))
        sales.open(event)  # the same definition: nothing written
        sales.pay(sales.reserve("fest", "c9", "CN", {"phone-black": 1}).id, "psp-9")
        assert store.stock("fest")["phone-black"].sold == 1
        assert audit(store, event).ok


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with from_url(f"sqlite:///{path}") as store:
        sell(store)
    first = rows(path)
    assert first["user_version"] == [(NEWEST,)]
    with from_url(f"sqlite:///{path}") as again:
        assert again.events() == ["fest"]
    assert rows(path) == first


def test_a_fresh_file_and_a_stamped_one_have_the_same_schema(tmp_path: Path) -> None:
    """The migrations build what the inline schema built, index for index."""
    old, new = file_of_inline_schema(tmp_path), tmp_path / "fresh.db"
    from_url(f"sqlite:///{old}").close()
    from_url(f"sqlite:///{new}").close()

    def shape(path: Path) -> list[tuple[object, ...]]:
        return [
            (kind, name, " ".join(str(sql).split()).replace("IF NOT EXISTS ", ""))
            for kind, name, sql in rows(path)["sqlite_master"]
        ]

    assert shape(old) == shape(new)


@pytest.mark.parametrize("stamp", ["user_version", "meta"])
def test_a_file_of_a_newer_schema_is_refused_unchanged(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "newer.db"
    with from_url(f"sqlite:///{path}") as store:
        sell(store)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if stamp == "user_version":
            conn.execute(f"PRAGMA user_version = {NEWEST + 7}")
        else:  # a file of before whose meta names a schema this lampo does not know
            conn.execute("PRAGMA user_version = 0")
            conn.execute("UPDATE meta SET value = ?", (str(NEWEST + 7),))
    finally:
        conn.close()
    before = rows(path)
    with pytest.raises(InvalidRequest, match=f"schema {NEWEST + 7}; this lampo knows {NEWEST}"):
        from_url(f"sqlite:///{path}")
    assert rows(path) == before
