"""The port's methods that SQLite and PostgreSQL run alike: setting an event up, updating
it, and the reads, over a backend's ``_rows`` (a query on one of its read connections)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Self

from lampo.domain.codec import event_from_json, event_to_json
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold, StockLevel, by_sku, pool_level
from lampo.domain.stores import Store
from lampo.domain.totals import LineKey, LineTotal, OrderKey, OrderTotal, Totals
from lampo.storage import _transitions as tx
from lampo.storage._batched import BatchedTransitions
from lampo.storage.port import (
    STORES_DOCUMENT,
    KeyRef,
    check_binding,
    check_replaces,
    check_same_definition,
    stores_document,
    stores_from_document,
)
from lampo.storage.sql.dialect import Dialect
from lampo.storage.sql.state import SqlState, hold_from_row, statements


class _RetailStatements:
    """The statements of the store registry and the retail records (schema 3), kept apart
    from the sale's (``state.py``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.document = q("SELECT version, body FROM documents WHERE name = ?")
        self.document_locked = q("SELECT version FROM documents WHERE name = ?" + d.lock)
        # A first write of two at once: the primary key refuses the second insert (on
        # PostgreSQL a unique violation, retried: the row is then there to be checked).
        self.document_insert = q("INSERT INTO documents VALUES (?, ?, ?)")
        self.document_update = q(
            "UPDATE documents SET version = ?, body = ? WHERE name = ? AND version = ?"
        )
        self.bind = q("INSERT INTO bindings VALUES (?, ?, ?) ON CONFLICT (space, key) DO NOTHING")
        self.bound = q("SELECT value FROM bindings WHERE space = ? AND key = ?")
        self.bindings = q("SELECT key, value FROM bindings WHERE space = ? ORDER BY key")


@functools.cache
def _retail(d: Dialect) -> _RetailStatements:
    return _RetailStatements(d)


class SqlStorage(BatchedTransitions):
    """The shared half of a SQL backend: its writer's units of work get a ``SqlState``."""

    dialect: Dialect
    _closed: bool

    def _open_readers(self) -> None:
        """Start keeping the read connections this storage opens, to close them with it."""
        self._closed = False
        self._reader_conns: list[Any] = []
        self._readers_lock = threading.Lock()

    def _keep_reader(self, conn: Any) -> None:
        with self._readers_lock:
            self._reader_conns.append(conn)

    def _close_writer(self) -> None:
        """Close the writer's connection (and whatever else the backend holds)."""
        raise NotImplementedError

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._batcher.close()
        self._close_writer()
        with self._readers_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of ``query`` on a read connection (not the writer's transaction)."""
        raise NotImplementedError

    def recorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        raise NotImplementedError

    # -- writes ----------------------------------------------------------------------------
    def setup(self, event: SaleEvent) -> None:
        definition = event_to_json(event)

        def work(st: SqlState) -> None:
            known = st.definition_get(event.id)
            if known is not None:
                check_same_definition(known, event)
                return
            st.create_event(event, definition, datetime.now(UTC))

        self._batcher.submit(work)

    def update(self, event: SaleEvent) -> None:
        self._batcher.submit(lambda st: tx.redefine(st, event))

    # -- reads -----------------------------------------------------------------------------
    def events(self) -> list[str]:
        return [r[0] for r in self._rows(statements(self.dialect).events)]

    def load_events(self) -> list[SaleEvent]:
        return [event_from_json(r[0]) for r in self._rows(statements(self.dialect).definitions)]

    def hold(self, hold_id: str) -> Hold | None:
        rows = self._rows(statements(self.dialect).hold_read, (hold_id,))
        return hold_from_row(self.dialect, rows[0]) if rows else None

    def holds(self, event: str) -> Iterator[Hold]:
        rows = self._rows(statements(self.dialect).holds, (event,))
        return (hold_from_row(self.dialect, r) for r in rows)

    def stock(self, event: str) -> dict[str, StockLevel]:
        return by_sku(self.pools(event).values())

    def pools(self, event: str) -> dict[str, StockLevel]:
        rows = self._rows(statements(self.dialect).stock, (event,))
        return {r[0]: pool_level(*r) for r in rows}

    def totals(self, event: str) -> Totals:
        totals = Totals()
        for table, sku, market, kind, name, referral, n, amount in self._rows(
            statements(self.dialect).totals, (event, event)
        ):
            if table == "l":
                totals.lines[LineKey(sku, market, kind, name, referral)] = LineTotal(n, amount)
            else:
                totals.orders[OrderKey(market, kind, name, referral)] = OrderTotal(n, amount)
        return totals

    # -- the store registry and the retail records ------------------------------------
    def stores(self) -> tuple[int, tuple[Store, ...]]:
        rows = self._rows(_retail(self.dialect).document, (STORES_DOCUMENT,))
        return stores_from_document((int(rows[0][0]), rows[0][1]) if rows else None)

    def put_stores(self, stores: Sequence[Store], replaces: int) -> int:
        text = stores_document(stores, replaces)
        q = _retail(self.dialect)

        def work(st: SqlState) -> int:
            found = st._x(q.document_locked, (STORES_DOCUMENT,)).fetchall()
            version = int(found[0][0]) if found else 0
            new = check_replaces(version, replaces)
            if found:
                st._x(q.document_update, (new, text, STORES_DOCUMENT, version))
            else:
                st._x(q.document_insert, (STORES_DOCUMENT, new, text))
            return new

        out: int = self._batcher.submit(work)
        return out

    def bind(self, space: str, key: str, value: str) -> str:
        check_binding(space, key, value)
        q = _retail(self.dialect)

        def work(st: SqlState) -> str:
            st._x(q.bind, (space, key, value))
            kept: str = st._x(q.bound, (space, key)).fetchone()[0]
            return kept

        out: str = self._batcher.submit(work)
        return out

    def bound(self, space: str, key: str) -> str | None:
        rows = self._rows(_retail(self.dialect).bound, (space, key))
        return str(rows[0][0]) if rows else None

    def bindings(self, space: str) -> dict[str, str]:
        return {k: v for k, v in self._rows(_retail(self.dialect).bindings, (space,))}

    async def arecorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        # a read on a read connection of a worker thread: the loop runs on meanwhile
        return await asyncio.to_thread(self.recorded, keys)
