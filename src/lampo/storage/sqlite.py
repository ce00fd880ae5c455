"""``sqlite:///path.db``: the embedded default. One file, WAL, group commit.

See docs/sqlite-group-commit.md for the protocol and its crash points.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from lampo.domain.codec import event_from_json, event_to_json
from lampo.domain.errors import InvalidRequest, Unavailable
from lampo.domain.event import SaleEvent
from lampo.domain.holds import (
    Hold,
    HoldLine,
    HoldState,
    StockLevel,
)
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.totals import LineKey, LineTotal, OrderKey, OrderTotal, Totals
from lampo.storage import _transitions as tx
from lampo.storage import urls
from lampo.storage._batched import BatchedTransitions
from lampo.storage._batcher import Batcher
from lampo.storage.port import KeyRef, check_same_definition

if sys.platform != "win32":
    import fcntl

SCHEMA_VERSION = 2

SCHEMA = """
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
"""

#: What takes a file from schema version ``v`` to ``v + 1`` (the tables ``SCHEMA`` adds
#: exist already: it runs, idempotent, on every opening), in one transaction with the new
#: version number.
UPGRADES = {
    # 2: a payment id settles at most one hold. Schema 1 let one pay several: the first
    # paid keeps it, and a later one is left as it is (answered as the same payment if its
    # own hold is paid with it again).
    1: (
        "INSERT OR IGNORE INTO payments (payment_id, hold_id) "
        "SELECT payment_id, id FROM holds WHERE state IN ('paid', 'refunded') "
        "AND payment_id <> '' ORDER BY paid_at, id"
    ),
}

#: Keys looked up by one statement of ``recorded`` (SQLite allows 32,766 parameters).
_KEYS_PER_READ = 500


def _us(when: datetime | None) -> int | None:
    """Microseconds since the epoch, UTC (exact: no float on the way)."""
    if when is None:
        return None
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(us: int | None) -> datetime | None:
    if us is None:
        return None
    from datetime import timedelta

    return _EPOCH + timedelta(microseconds=us)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_HOLD_COLUMNS = (
    "id, event, customer, market, channel_kind, channel_name, referral, currency, lines, "
    "created_at, expires_at, state, payment_id, paid_at, ended_at, refunded_at"
)


def _lines_json(lines: Sequence[HoldLine]) -> str:
    """``[["sku", qty, price], ...]``; by hand when no SKU needs escaping (the usual case)."""
    if any('"' in ln.sku or "\\" in ln.sku for ln in lines):
        return json.dumps([[ln.sku, ln.quantity, ln.unit_price] for ln in lines])
    return "[" + ",".join(f'["{ln.sku}",{ln.quantity},{ln.unit_price}]' for ln in lines) + "]"


def _hold_row(hold: Hold, ch: Channel) -> tuple[Any, ...]:
    return (
        hold.id,
        hold.event,
        hold.customer,
        hold.market,
        ch.kind.value,
        ch.name,
        ch.referral,
        hold.currency,
        _lines_json(hold.lines),
        _us(hold.created_at),
        _us(hold.expires_at),
        hold.state.value,
        hold.payment_id,
        _us(hold.paid_at),
        _us(hold.ended_at),
        _us(hold.refunded_at),
    )


def _hold_from_row(row: Sequence[Any]) -> Hold:
    created, expires, paid, ended, refunded = (
        _dt(row[9]),
        _dt(row[10]),
        _dt(row[13]),
        _dt(row[14]),
        _dt(row[15]),
    )
    assert created is not None
    assert expires is not None
    return Hold(
        id=row[0],
        event=row[1],
        customer=row[2],
        market=row[3],
        channel=Channel(ChannelKind(row[4]), row[5], row[6]),
        currency=row[7],
        lines=tuple(HoldLine(s, q, p) for s, q, p in json.loads(row[8])),
        created_at=created,
        expires_at=expires,
        state=HoldState(row[11]),
        payment_id=row[12],
        paid_at=paid,
        ended_at=ended,
        refunded_at=refunded,
    )


class _SqlState:
    """``_transitions.State`` over the writer's open transaction.

    Holds and stock rows read or written are cached, so paying a hold just placed costs no
    read. The caches are only as good as the file: ``begin()`` drops them when another
    connection (another process) has committed since, and ``forget()`` after a rollback.

    Stock moves change the cached row only; ``flush()`` writes each changed row once, just
    before the transaction commits (a batch of 64 reservations of 10 SKUs: 10 ``UPDATE``s,
    not 64). This process holds the write lock from ``BEGIN IMMEDIATE`` to ``COMMIT``, so
    the cached row is the row, and its checks are the table's ``CHECK``s, made before.
    """

    CACHE_LIMIT = 200_000

    def __init__(self, conn: sqlite3.Connection, known_events: set[str]) -> None:
        self._conn = conn
        self._x = conn.execute
        self._known = known_events
        self._holds: dict[str, Hold] = {}
        self._stock: dict[tuple[str, str], StockLevel] = {}
        self._moved: set[tuple[str, str]] = set()  # stock rows changed since the flush
        self._data_version = -1

    def begin(self) -> None:
        version = self._x("PRAGMA data_version").fetchone()[0]
        if version != self._data_version or len(self._holds) > self.CACHE_LIMIT:
            self.forget()
            self._data_version = version

    def forget(self) -> None:
        self._holds.clear()
        self._stock.clear()
        self._moved.clear()
        self._known.clear()
        self._data_version = -1

    def flush(self) -> None:
        """Write the stock rows moved since the last flush (before ``COMMIT``)."""
        if self._moved:
            stock = self._stock
            self._conn.executemany(
                "UPDATE stock SET available = ?, held = ?, sold = ? WHERE event = ? AND sku = ?",
                [
                    (s.available, s.held, s.sold, key[0], key[1])
                    for key in self._moved
                    for s in (stock[key],)
                ],
            )
            self._moved.clear()

    def stock_set(self, event: str, level: StockLevel) -> None:
        self._x(
            "INSERT INTO stock VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event, sku) DO UPDATE "
            "SET allocation = excluded.allocation, available = excluded.available, "
            "held = excluded.held, sold = excluded.sold",
            (event, level.sku, level.allocation, level.available, level.held, level.sold),
        )
        self._stock[(event, level.sku)] = level
        self._moved.discard((event, level.sku))  # written whole just now

    def definition_get(self, event: str) -> SaleEvent | None:
        row = self._x("SELECT definition FROM events WHERE id = ?", (event,)).fetchone()
        return None if row is None else event_from_json(row[0])

    def definition_set(self, event: SaleEvent) -> None:
        self._x("UPDATE events SET definition = ? WHERE id = ?", (event_to_json(event), event.id))

    def idem_get(self, key: str) -> tuple[str, str] | None:
        row = self._x("SELECT fingerprint, hold_id FROM idem WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], row[1])

    def idem_put(self, key: str, fingerprint: str, hold_id: str) -> None:
        self._x("INSERT INTO idem VALUES (?, ?, ?)", (key, fingerprint, hold_id))

    def payment_get(self, payment_id: str) -> str | None:
        row = self._x("SELECT hold_id FROM payments WHERE payment_id = ?", (payment_id,)).fetchone()
        return None if row is None else str(row[0])

    def payment_put(self, payment_id: str, hold_id: str) -> bool:
        # One writer holds the file's write lock: payment_get, just before, is the truth.
        self._x("INSERT INTO payments VALUES (?, ?)", (payment_id, hold_id))
        return True

    def has_event(self, event: str) -> bool:
        if event in self._known:
            return True
        if self._x("SELECT 1 FROM events WHERE id = ?", (event,)).fetchone():
            self._known.add(event)
            return True
        return False

    def stock_get(self, event: str, sku: str) -> StockLevel | None:
        cached = self._stock.get((event, sku))
        if cached is not None:
            return cached
        row = self._x(
            "SELECT allocation, available, held, sold FROM stock WHERE event = ? AND sku = ?",
            (event, sku),
        ).fetchone()
        if row is None:
            return None
        level = self._stock[(event, sku)] = StockLevel(sku, *row)
        return level

    def stock_move(self, event: str, sku: str, available: int, held: int, sold: int) -> bool:
        level = self.stock_get(event, sku)
        if level is None:
            return False
        a, h, s = level.available + available, level.held + held, level.sold + sold
        if a < 0 or h < 0 or s < 0:
            return False
        self._stock[(event, sku)] = StockLevel(sku, level.allocation, a, h, s)
        self._moved.add((event, sku))
        return True

    def counter_get(self, event: str, customer: str, sku: str) -> int:
        row = self._x(
            "SELECT units FROM counters WHERE event = ? AND customer = ? AND sku = ?",
            (event, customer, sku),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def counter_add(self, event: str, customer: str, sku: str, delta: int) -> None:
        if delta < 0:  # the row exists; an upsert would CHECK its negative insert values
            self._x(
                "UPDATE counters SET units = units + ? WHERE event = ? AND customer = ? "
                "AND sku = ?",
                (delta, event, customer, sku),
            )
            return
        self._x(
            "INSERT INTO counters VALUES (?, ?, ?, ?) ON CONFLICT (event, customer, sku) "
            "DO UPDATE SET units = units + excluded.units",
            (event, customer, sku, delta),
        )

    def hold_get(self, hold_id: str) -> Hold | None:
        cached = self._holds.get(hold_id)
        if cached is not None:
            return cached
        row = self._x(f"SELECT {_HOLD_COLUMNS} FROM holds WHERE id = ?", (hold_id,)).fetchone()
        if row is None:
            return None
        hold = self._holds[hold_id] = _hold_from_row(row)
        return hold

    def hold_id_taken(self, hold_id: str) -> bool:
        # The primary key refuses a duplicate inside the insert; the writer then rolls the
        # batch back and retries each request alone, so the duplicate fails by itself.
        return False

    def hold_insert(self, hold: Hold) -> None:
        ch = hold.channel
        try:
            self._x(
                f"INSERT INTO holds ({_HOLD_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _hold_row(hold, ch),
            )
        except sqlite3.IntegrityError:
            raise InvalidRequest("hold_id", f"{hold.id} exists already") from None
        self._holds[hold.id] = hold

    def hold_update(self, hold: Hold) -> None:
        self._holds[hold.id] = hold
        self._x(
            "UPDATE holds SET state = ?, payment_id = ?, paid_at = ?, ended_at = ?, "
            "refunded_at = ? WHERE id = ?",
            (
                hold.state.value,
                hold.payment_id,
                _us(hold.paid_at),
                _us(hold.ended_at),
                _us(hold.refunded_at),
                hold.id,
            ),
        )

    def totals_add(self, hold: Hold, sign: int) -> None:
        ch = hold.channel
        dims = (hold.market, ch.kind.value, ch.name, ch.referral)
        self._x(
            "INSERT INTO order_totals VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (event, market, kind, name, referral) DO UPDATE SET "
            "orders = orders + excluded.orders, amount = amount + excluded.amount",
            (hold.event, *dims, sign, sign * hold.amount.amount),
        )
        for line in hold.lines:
            self._x(
                "INSERT INTO line_totals VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (event, sku, market, kind, name, referral) DO UPDATE SET "
                "units = units + excluded.units, amount = amount + excluded.amount",
                (hold.event, line.sku, *dims, sign * line.quantity, sign * line.amount),
            )

    def due(self, event: str, now: datetime, limit: int) -> list[str]:
        rows = self._x(
            "SELECT id FROM holds WHERE event = ? AND state = 'held' AND expires_at <= ? "
            "ORDER BY expires_at, id LIMIT ?",
            (event, _us(now), limit),
        ).fetchall()
        return [r[0] for r in rows]


class SqliteStorage(BatchedTransitions):
    """All state in one SQLite file; writes coalesced by one writer thread (group commit).

    ``options`` (from a ``sqlite://`` URL, checked by ``storage.urls``; default: each
    option's default): ``synchronous``: FULL (survives a power cut) or NORMAL (survives
    kill -9); ``max_batch``: most requests in one transaction; ``busy_timeout``: ms to wait
    for the write lock a process that is not lampo holds.

    Processes of lampo that share the file (several ``lampo serve`` workers, a sweep from
    the command line) take turns through an exclusive ``flock`` on ``<file>-lock``, taken
    around each transaction: the kernel wakes the next one as soon as the lock is free.
    Left to SQLite's own busy handler they would sleep and poll instead (up to 100 ms a
    turn), which put the p99 of two workers above one second.
    """

    def __init__(self, path: str, options: Mapping[str, int | str | None] | None = None) -> None:
        chosen = {**urls.defaults("sqlite"), **(options or {})}  # checked by storage.urls
        self._max_batch = urls.option_int(chosen, "max_batch")
        self._busy = urls.option_int(chosen, "busy_timeout")
        sync = str(urls.option_str(chosen, "synchronous"))
        self.path = path
        self.synchronous = sync
        self._lock_fd = -1
        if sys.platform != "win32" and path != ":memory:":
            try:
                self._lock_fd = os.open(f"{path}-lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise InvalidRequest("storage", f"cannot open {path}-lock: {exc}") from None
        try:
            with self._file_turn():
                self._conn = self._connect()
                version = self._migrate()
        except sqlite3.Error as exc:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
            raise InvalidRequest("storage", f"cannot open SQLite file {path!r}: {exc}") from None
        if version != SCHEMA_VERSION:
            raise InvalidRequest("storage", f"{path!r} has schema {version}, not {SCHEMA_VERSION}")
        self._known: set[str] = set()
        self._state = _SqlState(self._conn, self._known)
        self._readers = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._batcher: Batcher[_SqlState] = Batcher(
            self._commit, self._max_batch, name="lampo-sqlite-writer", try_commit=self._try_commit
        )

    def _migrate(self) -> int:
        """Create what is missing and upgrade a file of an older schema (``UPGRADES``, each
        step atomic with its version number); the file's schema version after that. Runs
        in this process's turn on the file, so two openings never upgrade it at once."""
        conn = self._conn
        with conn:
            conn.executescript(SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )
        version = int(
            conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        )
        while version in UPGRADES and version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(UPGRADES[version])
                version += 1
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return version

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {self._busy}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: hot B-tree pages stay in memory
        return conn

    # -- the writer -------------------------------------------------------------
    def _commit(self, units: list[Callable[[_SqlState], Any]]) -> list[tuple[Any, Any]]:
        """Run ``units`` in one transaction; on failure, each alone, so one bad request
        cannot fail its neighbours. Called by the batcher only, one batch at a time (its
        writer thread, or an event loop's thread for coroutines' batches), and one
        process at a time (the file lock)."""
        with self._file_turn():
            return self._transaction(units)

    def _try_commit(self, units: list[Callable[[_SqlState], Any]]) -> list[tuple[Any, Any]] | None:
        """``_commit``, or None at once when another process holds the file lock."""
        with self._file_turn(wait=False) as mine:
            return self._transaction(units) if mine else None

    @contextlib.contextmanager
    def _file_turn(self, wait: bool = True) -> Iterator[bool]:
        """This process's turn to write the file (see the class's docstring); with
        ``wait=False``, False at once when another process has it."""
        if self._lock_fd < 0:
            yield True
            return
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _transaction(self, units: list[Callable[[_SqlState], Any]]) -> list[tuple[Any, Any]]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._state.begin()
            results = [unit(self._state) for unit in units]
            self._state.flush()
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            if len(units) > 1:
                return [self._transaction([unit])[0] for unit in units]
            return [(None, Unavailable(f"sqlite: {exc}"))]
        except BaseException as exc:  # a bug: let that caller see it, keep serving
            self._rollback()
            if len(units) > 1:
                return [self._transaction([unit])[0] for unit in units]
            return [(None, exc)]
        return [(r, None) for r in results]

    def _rollback(self) -> None:
        self._state.forget()
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # no transaction was open (BEGIN itself failed)

    # -- reads (their own connection per thread; WAL lets them run beside the writer) ----
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            if self._closed:
                raise Unavailable("storage is closed")
            conn = self._connect()
            self._readers.conn = conn
            with self._readers_lock:
                self._reader_conns.append(conn)
        return conn

    # -- the port ---------------------------------------------------------------
    def setup(self, event: SaleEvent) -> None:
        definition = event_to_json(event)

        def work(st: _SqlState) -> None:
            known = st.definition_get(event.id)
            if known is not None:
                check_same_definition(known, event)
                return
            x = self._conn.execute
            x(
                "INSERT INTO events VALUES (?, ?, ?)",
                (event.id, _us(datetime.now(UTC)), definition),
            )
            x_many = self._conn.executemany
            x_many(
                "INSERT INTO stock VALUES (?, ?, ?, ?, 0, 0)",
                [(event.id, sku, o.allocation, o.allocation) for sku, o in event.offers.items()],
            )
            st.has_event(event.id)

        self._batcher.submit(work)

    def update(self, event: SaleEvent) -> None:
        self._batcher.submit(lambda st: tx.redefine(st, event))

    def events(self) -> list[str]:
        return [r[0] for r in self._reader().execute("SELECT id FROM events ORDER BY id")]

    def load_events(self) -> list[SaleEvent]:
        rows = self._reader().execute("SELECT definition FROM events ORDER BY id")
        return [event_from_json(r[0]) for r in rows]

    def hold(self, hold_id: str) -> Hold | None:
        row = (
            self._reader()
            .execute(f"SELECT {_HOLD_COLUMNS} FROM holds WHERE id = ?", (hold_id,))
            .fetchone()
        )
        return None if row is None else _hold_from_row(row)

    def recorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        wanted = sorted({ref.key for ref in keys})
        found: set[str] = set()
        conn = self._reader()
        for start in range(0, len(wanted), _KEYS_PER_READ):
            part = wanted[start : start + _KEYS_PER_READ]
            marks = ",".join("?" * len(part))
            found.update(
                r[0] for r in conn.execute(f"SELECT key FROM idem WHERE key IN ({marks})", part)
            )
        return [ref.key in found for ref in keys]

    async def arecorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        # a read on a reader connection of a worker thread: the loop runs on meanwhile
        return await asyncio.to_thread(self.recorded, keys)

    def holds(self, event: str) -> Iterator[Hold]:
        rows = (
            self._reader()
            .execute(
                f"SELECT {_HOLD_COLUMNS} FROM holds WHERE event = ? ORDER BY created_at, id",
                (event,),
            )
            .fetchall()
        )
        return (_hold_from_row(r) for r in rows)

    def stock(self, event: str) -> dict[str, StockLevel]:
        rows = self._reader().execute(
            "SELECT sku, allocation, available, held, sold FROM stock WHERE event = ? ORDER BY sku",
            (event,),
        )
        return {r[0]: StockLevel(*r) for r in rows}

    def totals(self, event: str) -> Totals:
        conn = self._reader()
        conn.execute("BEGIN")  # one snapshot for both tables
        try:
            lines = {
                LineKey(sku, market, kind, name, referral): LineTotal(units, amount)
                for sku, market, kind, name, referral, units, amount in conn.execute(
                    "SELECT sku, market, kind, name, referral, units, amount FROM line_totals "
                    "WHERE event = ?",
                    (event,),
                )
            }
            orders = {
                OrderKey(market, kind, name, referral): OrderTotal(n, amount)
                for market, kind, name, referral, n, amount in conn.execute(
                    "SELECT market, kind, name, referral, orders, amount FROM order_totals "
                    "WHERE event = ?",
                    (event,),
                )
            }
        finally:
            conn.execute("COMMIT")
        return Totals(lines, orders)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._batcher.close()
        self._conn.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
        with self._readers_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    def __enter__(self) -> SqliteStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["SqliteStorage"]
