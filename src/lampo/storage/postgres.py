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

The state, reads and statements are shared with SQLite (``storage/sql``); what is
PostgreSQL's own is here: connections, the writer's retries, the migration lock.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from lampo.domain.errors import InvalidRequest, Unavailable
from lampo.domain.holds import Hold
from lampo.storage import _transitions as tx
from lampo.storage import urls
from lampo.storage._batcher import Batcher
from lampo.storage.port import KeyRef, Result
from lampo.storage.sql.dialect import POSTGRES
from lampo.storage.sql.migrations import migrations
from lampo.storage.sql.state import SqlState
from lampo.storage.sql.storage import SqlStorage
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


def migrate(conn: psycopg.Connection[Any], schema: str | None) -> int:
    """Bring the schema up to date; return its version. Safe to run from many processes
    at once (advisory lock); refuses a database migrated by a newer lampo."""
    known = migrations("postgres")
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


class PostgresStorage(SqlStorage):
    """All state in PostgreSQL; writes coalesced into one transaction per batch."""

    dialect = POSTGRES

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
        self._open_readers()
        self._batcher: Batcher[SqlState] = Batcher(
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
                self._keep_reader(conn)
            try:
                yield conn
            except psycopg.OperationalError as exc:
                conn.close()
                raise Unavailable(f"postgresql: {exc}") from None
            finally:
                if not conn.closed and not conn.broken:
                    self._idle.put(conn)

    # -- the writer ----------------------------------------------------------------------
    def _commit(self, units: list[Callable[[SqlState], Any]]) -> list[tuple[Any, Any]]:
        try:
            return [(r, None) for r in self._attempt(units)]
        except BaseException as first:
            if len(units) > 1:  # alone, so one bad request cannot fail its neighbours
                return [self._commit_alone(unit) for unit in units]
            return [self._commit_alone(units[0], first)]

    def _commit_alone(
        self, unit: Callable[[SqlState], Any], error: BaseException | None = None
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

    def _attempt(self, units: list[Callable[[SqlState], Any]]) -> list[Any]:
        conn = self._writer_conn()
        try:
            conn.execute("BEGIN")
            state = SqlState(conn.execute, POSTGRES, self._known)
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

    # -- the port (the rest is SqlStorage's) --------------------------------------------
    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._reader() as conn:
            return conn.execute(query, params).fetchall()

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

    def recorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        wanted = sorted({ref.key for ref in keys})
        with self._reader() as conn:
            rows = conn.execute("SELECT key FROM idem WHERE key = ANY(%s)", (wanted,)).fetchall()
        found = {r[0] for r in rows}
        return [ref.key in found for ref in keys]

    def _close_writer(self) -> None:
        if self._conn is not None:
            self._conn.close()


__all__ = ["PostgresStorage", "migrate", "migrations"]
