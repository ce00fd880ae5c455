"""``postgresql://user@host:port/db``: lampo's whole state in PostgreSQL (psycopg 3).

What most shops run: the stock is a row per SKU and a hold takes it with a conditional
``UPDATE stock SET available = available - q, held = held + q ... WHERE available >= q``
(here through ``_transitions``, the same transition code every backend runs).

Atomicity and concurrency. Requests from one storage object are coalesced by one writer
thread into one transaction per batch (group commit: one WAL flush for the batch). Any
number of storage objects, in any number of processes, may share the database: every row
a transition reads to decide is read with a row lock (``SELECT ... FOR UPDATE`` for stock
and holds; a per-customer counter row is created-or-locked by an upsert, since a missing
row cannot be locked), so the check and the write cannot interleave with another
transaction's, in READ COMMITTED. Within one request, rows are locked in a fixed order
(counters, then stock by sorted SKU); two batches from two processes may still deadlock,
in which case PostgreSQL aborts one, and the batch is run again one request per
transaction. A refusal is decided before anything is written, so it changes nothing.

Query options (declared, bounded and checked in ``storage/urls.py``; removed before
connecting): ``schema`` (created if missing, then used as the search path),
``max_batch`` (most requests in one transaction, default 256), ``readers`` (size of the
read connection pool, default 4). Any other is a libpq connection parameter, passed on.

Schema migrations: the numbered SQL files in ``migrations/postgres``, applied in order
under an advisory lock and recorded in ``lampo_migrations`` (see ``migrate``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.types.json import Jsonb

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
from lampo.storage.port import KeyRef, Result, check_same_definition
from lampo.storage.urls import StorageUrl

#: Any lampo process migrating any schema takes this advisory lock first.
MIGRATION_LOCK = 0x1A4B0_0001
#: Errors after which running the same work again may succeed.
RETRYABLE = (
    pgerrors.DeadlockDetected,
    pgerrors.SerializationFailure,
    pgerrors.UniqueViolation,
)
RETRIES = 5


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration shipped in the package, in order."""
    folder = resources.files("lampo.storage") / "migrations" / "postgres"
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def migrate(conn: psycopg.Connection[Any], schema: str | None) -> int:
    """Bring the schema up to date; return its version. Safe to run from many processes
    at once (advisory lock); refuses a database migrated by a newer lampo."""
    known = migrations()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        if schema:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS lampo_migrations (version int PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM lampo_migrations")}
        newest = max((v for v, _, _ in known), default=0)
        if done and max(done) > newest:
            raise InvalidRequest(
                "storage", f"the database has schema {max(done)}; this lampo knows {newest}"
            )
        for version, name, text in known:
            if version not in done:
                conn.execute(text.encode())
                conn.execute(
                    "INSERT INTO lampo_migrations (version, name) VALUES (%s, %s)",
                    (version, name),
                )
    return newest


_HOLD_COLUMNS = (
    "id, event, customer, market, channel_kind, channel_name, referral, currency, lines, "
    "created_at, expires_at, state, payment_id, paid_at, ended_at, refunded_at"
)


def _utc(when: datetime | None) -> datetime | None:
    return None if when is None else when.astimezone(UTC)


def _hold_from_row(row: Sequence[Any]) -> Hold:
    return Hold(
        id=row[0],
        event=row[1],
        customer=row[2],
        market=row[3],
        channel=Channel(ChannelKind(row[4]), row[5], row[6]),
        currency=row[7],
        lines=tuple(HoldLine(s, q, p) for s, q, p in row[8]),
        created_at=row[9].astimezone(UTC),
        expires_at=row[10].astimezone(UTC),
        state=HoldState(row[11]),
        payment_id=row[12],
        paid_at=_utc(row[13]),
        ended_at=_utc(row[14]),
        refunded_at=_utc(row[15]),
    )


def _hold_values(hold: Hold) -> tuple[Any, ...]:
    ch = hold.channel
    return (
        hold.id,
        hold.event,
        hold.customer,
        hold.market,
        ch.kind.value,
        ch.name,
        ch.referral,
        hold.currency,
        Jsonb([[ln.sku, ln.quantity, ln.unit_price] for ln in hold.lines]),
        hold.created_at,
        hold.expires_at,
        hold.state.value,
        hold.payment_id,
        hold.paid_at,
        hold.ended_at,
        hold.refunded_at,
    )


class _PgState:
    """``_transitions.State`` inside the writer's open transaction; reads lock their rows."""

    def __init__(self, conn: psycopg.Connection[Any], known_events: set[str]) -> None:
        self._x = conn.execute
        self._known = known_events

    def idem_get(self, key: str) -> tuple[str, str] | None:
        row = self._x("SELECT fingerprint, hold_id FROM idem WHERE key = %s", (key,)).fetchone()
        return None if row is None else (row[0], row[1])

    def idem_put(self, key: str, fingerprint: str, hold_id: str) -> None:
        self._x("INSERT INTO idem VALUES (%s, %s, %s)", (key, fingerprint, hold_id))

    def payment_get(self, payment_id: str) -> str | None:
        row = self._x(
            "SELECT hold_id FROM payments WHERE payment_id = %s", (payment_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def payment_put(self, payment_id: str, hold_id: str) -> bool:
        # Another transaction binding the same id at once: the insert waits for it, and
        # does nothing if it committed (then the read, a new snapshot, sees its row).
        cur = self._x(
            "INSERT INTO payments VALUES (%s, %s) ON CONFLICT (payment_id) DO NOTHING",
            (payment_id, hold_id),
        )
        return cur.rowcount == 1 or self.payment_get(payment_id) == hold_id

    def has_event(self, event: str) -> bool:
        if event in self._known:
            return True
        if self._x("SELECT 1 FROM events WHERE id = %s", (event,)).fetchone():
            self._known.add(event)
            return True
        return False

    def stock_get(self, event: str, sku: str) -> StockLevel | None:
        row = self._x(
            "SELECT allocation, available, held, sold FROM stock "
            "WHERE event = %s AND sku = %s FOR UPDATE",
            (event, sku),
        ).fetchone()
        return None if row is None else StockLevel(sku, *row)

    def stock_move(self, event: str, sku: str, available: int, held: int, sold: int) -> bool:
        cur = self._x(
            "UPDATE stock SET available = available + %(a)s, held = held + %(h)s, "
            "sold = sold + %(s)s WHERE event = %(e)s AND sku = %(k)s "
            "AND available + %(a)s >= 0 AND held + %(h)s >= 0 AND sold + %(s)s >= 0",
            {"a": available, "h": held, "s": sold, "e": event, "k": sku},
        )
        return cur.rowcount == 1

    def definition_get(self, event: str) -> SaleEvent | None:
        row = self._x("SELECT definition FROM events WHERE id = %s FOR UPDATE", (event,)).fetchone()
        return None if row is None else event_from_json(row[0])

    def definition_set(self, event: SaleEvent) -> None:
        self._x("UPDATE events SET definition = %s WHERE id = %s", (event_to_json(event), event.id))

    def stock_set(self, event: str, level: StockLevel) -> None:
        self._x(
            "INSERT INTO stock VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event, sku) "
            "DO UPDATE SET allocation = excluded.allocation, available = excluded.available, "
            "held = excluded.held, sold = excluded.sold",
            (event, level.sku, level.allocation, level.available, level.held, level.sold),
        )

    def counter_get(self, event: str, customer: str, sku: str) -> int:
        # Create-or-lock: a missing row cannot be locked, and another process's first
        # hold for this customer must wait for ours rather than read 0 beside it.
        row = self._x(
            "INSERT INTO counters VALUES (%s, %s, %s, 0) ON CONFLICT (event, customer, sku) "
            "DO UPDATE SET units = counters.units RETURNING units",
            (event, customer, sku),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def counter_add(self, event: str, customer: str, sku: str, delta: int) -> None:
        if delta < 0:  # a counter never kept stays absent; an upsert would CHECK the insert
            self._x(
                "UPDATE counters SET units = units + %s "
                "WHERE event = %s AND customer = %s AND sku = %s",
                (delta, event, customer, sku),
            )
            return
        self._x(
            "INSERT INTO counters VALUES (%s, %s, %s, %s) ON CONFLICT (event, customer, sku) "
            "DO UPDATE SET units = counters.units + excluded.units",
            (event, customer, sku, delta),
        )

    def hold_get(self, hold_id: str) -> Hold | None:
        row = self._x(
            f"SELECT {_HOLD_COLUMNS} FROM holds WHERE id = %s FOR UPDATE", (hold_id,)
        ).fetchone()
        return None if row is None else _hold_from_row(row)

    def hold_id_taken(self, hold_id: str) -> bool:
        # Asked rather than left to the primary key, so a duplicate id is a clean refusal
        # (a key violation aborts the whole batch's transaction).
        return self._x("SELECT 1 FROM holds WHERE id = %s", (hold_id,)).fetchone() is not None

    def hold_insert(self, hold: Hold) -> None:
        self._x(
            f"INSERT INTO holds ({_HOLD_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            _hold_values(hold),
        )

    def hold_update(self, hold: Hold) -> None:
        self._x(
            "UPDATE holds SET state = %s, payment_id = %s, paid_at = %s, ended_at = %s, "
            "refunded_at = %s WHERE id = %s",
            (
                hold.state.value,
                hold.payment_id,
                hold.paid_at,
                hold.ended_at,
                hold.refunded_at,
                hold.id,
            ),
        )

    def totals_add(self, hold: Hold, sign: int) -> None:
        ch = hold.channel
        dims = (hold.market, ch.kind.value, ch.name, ch.referral)
        self._x(
            "INSERT INTO order_totals VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (event, market, kind, name, referral) DO UPDATE SET "
            "orders = order_totals.orders + excluded.orders, "
            "amount = order_totals.amount + excluded.amount",
            (hold.event, *dims, sign, sign * hold.amount.amount),
        )
        for line in sorted(hold.lines, key=lambda ln: ln.sku):
            self._x(
                "INSERT INTO line_totals VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (event, sku, market, kind, name, referral) DO UPDATE SET "
                "units = line_totals.units + excluded.units, "
                "amount = line_totals.amount + excluded.amount",
                (hold.event, line.sku, *dims, sign * line.quantity, sign * line.amount),
            )

    def due(self, event: str, now: datetime, limit: int) -> list[str]:
        # SKIP LOCKED: a hold another process is paying right now is not due for us.
        rows = self._x(
            "SELECT id FROM holds WHERE event = %s AND state = 'held' AND expires_at <= %s "
            "ORDER BY expires_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
            (event, now, limit),
        ).fetchall()
        return [r[0] for r in rows]


class PostgresStorage(BatchedTransitions):
    """All state in PostgreSQL; writes coalesced into one transaction per batch."""

    def __init__(self, url: str | StorageUrl) -> None:
        checked = urls.checked(url, "postgresql")
        self._conninfo = checked.target
        self.schema = checked.text("schema")
        max_batch = checked.number("max_batch")
        readers = checked.number("readers")
        self._closed = False
        conn = self._connect()
        try:
            migrate(conn, self.schema)
        except psycopg.Error as exc:
            conn.close()
            raise Unavailable(f"postgresql: cannot migrate: {exc}") from None
        except BaseException:  # a refusal (a newer schema): no connection left behind
            conn.close()
            raise
        self._conn: psycopg.Connection[Any] | None = conn
        self._known: set[str] = set()
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._readers = threading.BoundedSemaphore(readers)
        self._all_readers: list[psycopg.Connection[Any]] = []
        self._readers_lock = threading.Lock()
        self._batcher: Batcher[_PgState] = Batcher(
            self._commit, max_batch, name="lampo-postgres-writer"
        )

    # -- connections ---------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            raise Unavailable(f"postgresql: {exc}".strip()) from None
        conn.execute("SET TIME ZONE 'UTC'")
        if self.schema:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return conn

    def _writer_conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._known.clear()
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def _reader(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise Unavailable("storage is closed")
        with self._readers:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
                with self._readers_lock:
                    self._all_readers.append(conn)
            try:
                yield conn
            except psycopg.OperationalError as exc:
                conn.close()
                raise Unavailable(f"postgresql: {exc}") from None
            finally:
                if not conn.closed and not conn.broken:
                    self._idle.put(conn)

    # -- the writer ----------------------------------------------------------------------
    def _commit(self, units: list[Callable[[_PgState], Any]]) -> list[tuple[Any, Any]]:
        try:
            return [(r, None) for r in self._attempt(units)]
        except BaseException as first:
            if len(units) > 1:  # alone, so one bad request cannot fail its neighbours
                return [self._commit_alone(unit) for unit in units]
            return [self._commit_alone(units[0], first)]

    def _commit_alone(
        self, unit: Callable[[_PgState], Any], error: BaseException | None = None
    ) -> tuple[Any, BaseException | None]:
        for _ in range(RETRIES):
            if error is None:
                try:
                    return self._attempt([unit])[0], None
                except BaseException as exc:
                    error = exc
            if isinstance(error, RETRYABLE):
                error = None
                continue
            break
        if error is None:
            return None, Unavailable("postgresql: the transaction kept conflicting; retry")
        if isinstance(error, psycopg.DataError):
            # a value PostgreSQL cannot hold (a bigint overflow): a bug the domain's bounds
            # should have stopped, not an outage, so never a retryable ``Unavailable``
            return None, error
        if isinstance(error, psycopg.Error):
            return None, Unavailable(f"postgresql: {type(error).__name__}: {error}")
        return None, error

    def _attempt(self, units: list[Callable[[_PgState], Any]]) -> list[Any]:
        conn = self._writer_conn()
        try:
            conn.execute("BEGIN")
            state = _PgState(conn, self._known)
            results = [unit(state) for unit in units]
            conn.execute("COMMIT")
        except BaseException:
            self._known.clear()  # an event set up in the rolled-back transaction
            if not conn.closed and not conn.broken:
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    conn.close()
            raise
        return results

    # -- the port ------------------------------------------------------------------------
    def setup(self, event: SaleEvent) -> None:
        definition = event_to_json(event)

        def work(st: _PgState) -> None:
            known = st.definition_get(event.id)
            if known is not None:
                check_same_definition(known, event)
                return
            x = st._x
            x("INSERT INTO events (id, definition) VALUES (%s, %s)", (event.id, definition))
            for sku, offer in sorted(event.offers.items()):
                x(
                    "INSERT INTO stock VALUES (%s, %s, %s, %s, 0, 0)",
                    (event.id, sku, offer.allocation, offer.allocation),
                )

        self._batcher.submit(work)

    def update(self, event: SaleEvent) -> None:
        self._batcher.submit(lambda st: tx.redefine(st, event))

    def events(self) -> list[str]:
        with self._reader() as conn:
            return [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id")]

    def load_events(self) -> list[SaleEvent]:
        with self._reader() as conn:
            rows = conn.execute("SELECT definition FROM events ORDER BY id").fetchall()
        return [event_from_json(r[0]) for r in rows]

    # -- the system of record of a combined backend (storage/combined.py) ----------------
    def record(self, orders: Sequence[Hold]) -> list[Result]:
        """Write orders decided by a live store, one transaction per batch; see
        ``_transitions.record``. Only stock, holds, totals and the orders' payment ids
        are written: no hold of state ``held``, no idempotency records, no per-customer
        counters. A payment id on record for another order is refused
        (``IdempotencyConflict``), by the check and, between two transactions at once,
        by the primary key of ``payments``."""
        return self._batch(tx.record, orders)

    async def arecord(self, orders: Sequence[Hold]) -> list[Result]:
        return await self._abatch(tx.record, orders)

    def hold(self, hold_id: str) -> Hold | None:
        with self._reader() as conn:
            row = conn.execute(
                f"SELECT {_HOLD_COLUMNS} FROM holds WHERE id = %s", (hold_id,)
            ).fetchone()
        return None if row is None else _hold_from_row(row)

    def recorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        wanted = sorted({ref.key for ref in keys})
        with self._reader() as conn:
            rows = conn.execute("SELECT key FROM idem WHERE key = ANY(%s)", (wanted,)).fetchall()
        found = {r[0] for r in rows}
        return [ref.key in found for ref in keys]

    async def arecorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        return await asyncio.to_thread(self.recorded, keys)

    def holds(self, event: str) -> Iterator[Hold]:
        with self._reader() as conn:
            rows = conn.execute(
                f"SELECT {_HOLD_COLUMNS} FROM holds WHERE event = %s ORDER BY created_at, id",
                (event,),
            ).fetchall()
        return (_hold_from_row(r) for r in rows)

    def stock(self, event: str) -> dict[str, StockLevel]:
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT sku, allocation, available, held, sold FROM stock WHERE event = %s "
                "ORDER BY sku",
                (event,),
            ).fetchall()
        return {r[0]: StockLevel(*r) for r in rows}

    def totals(self, event: str) -> Totals:
        with self._reader() as conn:  # one statement: one snapshot of both tables
            rows = conn.execute(
                "SELECT 'l', sku, market, kind, name, referral, units, amount FROM line_totals "
                "WHERE event = %(e)s UNION ALL "
                "SELECT 'o', '', market, kind, name, referral, orders, amount FROM order_totals "
                "WHERE event = %(e)s",
                {"e": event},
            ).fetchall()
        totals = Totals()
        for table, sku, market, kind, name, referral, n, amount in rows:
            if table == "l":
                totals.lines[LineKey(sku, market, kind, name, referral)] = LineTotal(n, amount)
            else:
                totals.orders[OrderKey(market, kind, name, referral)] = OrderTotal(n, amount)
        return totals

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._batcher.close()
        if self._conn is not None:
            self._conn.close()
        with self._readers_lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()

    def __enter__(self) -> PostgresStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["PostgresStorage", "migrate", "migrations"]
