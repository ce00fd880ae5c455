"""``_transitions.State`` over an open SQL transaction, written once for SQLite and
PostgreSQL (``dialect.py`` holds the differences).

This class is the row-locking form: every row a transition reads to decide is read with
the dialect's lock, and stock moves are conditional ``UPDATE``s, so any number of writers
may share the database (PostgreSQL). SQLite's writer, alone on its file, runs a subclass
that caches rows instead (``storage/sqlite.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from lampo.domain.channels import stock_key
from lampo.domain.codec import event_from_json, event_to_json
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold, HoldLine, HoldState, StockLevel, pool_level
from lampo.domain.market import Channel, ChannelKind
from lampo.storage.sql.dialect import Dialect

HOLD_COLUMNS = (
    "id, event, customer, market, channel_kind, channel_name, referral, currency, lines, "
    "created_at, expires_at, state, payment_id, paid_at, ended_at, refunded_at"
)


class Statements:
    """Every statement of the state and the reads, in one dialect's placeholders."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.idem_get = q("SELECT fingerprint, hold_id FROM idem WHERE key = ?")
        self.idem_put = q("INSERT INTO idem VALUES (?, ?, ?)")
        self.payment_get = q("SELECT hold_id FROM payments WHERE payment_id = ?")
        # Another transaction binding the same id at once (PostgreSQL): the insert waits
        # for it, and does nothing if it committed (then a new read sees its row).
        self.payment_put = q(
            "INSERT INTO payments VALUES (?, ?) ON CONFLICT (payment_id) DO NOTHING"
        )
        self.has_event = q("SELECT 1 FROM events WHERE id = ?")
        self.event_insert = q("INSERT INTO events (id, created_at, definition) VALUES (?, ?, ?)")
        self.stock_insert = q("INSERT INTO stock VALUES (?, ?, ?, ?, 0, 0)")
        self.stock_get = q(
            "SELECT allocation, available, held, sold FROM stock WHERE event = ? AND sku = ?"
            + d.lock
        )
        self.stock_move = q(
            "UPDATE stock SET available = available + ?, held = held + ?, sold = sold + ? "
            "WHERE event = ? AND sku = ? "
            "AND available + ? >= 0 AND held + ? >= 0 AND sold + ? >= 0"
        )
        self.stock_write = q(
            "UPDATE stock SET available = ?, held = ?, sold = ? WHERE event = ? AND sku = ?"
        )
        self.stock_set = q(
            "INSERT INTO stock VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event, sku) "
            "DO UPDATE SET allocation = excluded.allocation, available = excluded.available, "
            "held = excluded.held, sold = excluded.sold"
        )
        self.definition_get = q("SELECT definition FROM events WHERE id = ?" + d.lock)
        self.definition_set = q("UPDATE events SET definition = ? WHERE id = ?")
        self.counter_get = q(d.counter_read)
        self.counter_give_back = q(
            "UPDATE counters SET units = units + ? WHERE event = ? AND customer = ? AND sku = ?"
        )
        self.counter_add = q(
            "INSERT INTO counters VALUES (?, ?, ?, ?) ON CONFLICT (event, customer, sku) "
            "DO UPDATE SET units = counters.units + excluded.units"
        )
        self.hold_get = q(f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = ?" + d.lock)
        self.hold_read = q(f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = ?")
        self.hold_id_taken = q("SELECT 1 FROM holds WHERE id = ?")
        self.hold_insert = q(
            f"INSERT INTO holds ({HOLD_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self.hold_update = q(
            "UPDATE holds SET state = ?, payment_id = ?, paid_at = ?, ended_at = ?, "
            "refunded_at = ? WHERE id = ?"
        )
        self.order_totals_add = q(
            "INSERT INTO order_totals VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (event, market, kind, name, referral) DO UPDATE SET "
            "orders = order_totals.orders + excluded.orders, "
            "amount = order_totals.amount + excluded.amount"
        )
        self.line_totals_add = q(
            "INSERT INTO line_totals VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (event, sku, market, kind, name, referral) DO UPDATE SET "
            "units = line_totals.units + excluded.units, "
            "amount = line_totals.amount + excluded.amount"
        )
        self.due = q(
            "SELECT id FROM holds WHERE event = ? AND state = 'held' AND expires_at <= ? "
            "ORDER BY expires_at, id LIMIT ?" + d.lock_due
        )
        # -- reads outside the writer -----------------------------------------------------
        self.events = "SELECT id FROM events ORDER BY id"
        self.definitions = "SELECT definition FROM events ORDER BY id"
        self.holds = q(f"SELECT {HOLD_COLUMNS} FROM holds WHERE event = ? ORDER BY created_at, id")
        self.stock = q(
            "SELECT sku, allocation, available, held, sold FROM stock WHERE event = ? ORDER BY sku"
        )
        # one statement: one snapshot of both tables
        self.totals = q(
            "SELECT 'l', sku, market, kind, name, referral, units, amount FROM line_totals "
            "WHERE event = ? UNION ALL "
            "SELECT 'o', '', market, kind, name, referral, orders, amount FROM order_totals "
            "WHERE event = ?"
        )


@functools.cache
def statements(d: Dialect) -> Statements:
    return Statements(d)


def hold_row(d: Dialect, hold: Hold) -> tuple[Any, ...]:
    """``hold`` as the values of ``HOLD_COLUMNS``."""
    ch = hold.channel
    t = d.time_in
    return (
        hold.id,
        hold.event,
        hold.customer,
        hold.market,
        ch.kind.value,
        ch.name,
        ch.referral,
        hold.currency,
        d.lines_in(hold.lines),
        t(hold.created_at),
        t(hold.expires_at),
        hold.state.value,
        hold.payment_id,
        t(hold.paid_at),
        t(hold.ended_at),
        t(hold.refunded_at),
    )


def hold_from_row(d: Dialect, row: Sequence[Any]) -> Hold:
    """The hold of a row of ``HOLD_COLUMNS``."""
    (hid, event, customer, market, kind, name, referral, currency, lines) = row[:9]
    t = d.time_out
    created, expires = t(row[9]), t(row[10])
    assert created is not None
    assert expires is not None
    return Hold(
        id=hid,
        event=event,
        customer=customer,
        market=market,
        channel=Channel(ChannelKind(kind), name, referral),
        currency=currency,
        lines=tuple(HoldLine(*line) for line in d.lines_out(lines)),
        created_at=created,
        expires_at=expires,
        state=HoldState(row[11]),
        payment_id=row[12],
        paid_at=t(row[13]),
        ended_at=t(row[14]),
        refunded_at=t(row[15]),
    )


class SqlState:
    """``_transitions.State`` inside the writer's open transaction; reads lock their rows
    (with the dialect's lock), stock moves are conditional."""

    def __init__(self, execute: Callable[..., Any], d: Dialect, known_events: set[str]) -> None:
        self._x = execute
        self._d = d
        self._q = statements(d)
        self._known = known_events

    def idem_get(self, key: str) -> tuple[str, str] | None:
        row = self._x(self._q.idem_get, (key,)).fetchone()
        return None if row is None else (row[0], row[1])

    def idem_put(self, key: str, fingerprint: str, hold_id: str) -> None:
        self._x(self._q.idem_put, (key, fingerprint, hold_id))

    def payment_get(self, payment_id: str) -> str | None:
        row = self._x(self._q.payment_get, (payment_id,)).fetchone()
        return None if row is None else str(row[0])

    def payment_put(self, payment_id: str, hold_id: str) -> bool:
        cur = self._x(self._q.payment_put, (payment_id, hold_id))
        return cur.rowcount == 1 or self.payment_get(payment_id) == hold_id

    def has_event(self, event: str) -> bool:
        if event in self._known:
            return True
        if self._x(self._q.has_event, (event,)).fetchone():
            self._known.add(event)
            return True
        return False

    def create_event(self, event: SaleEvent, definition: str, now: datetime) -> None:
        """Insert a new event's definition and its stock rows, one per stock key
        (``SaleEvent.stock_rows``: ``Storage.setup``)."""
        self._x(self._q.event_insert, (event.id, self._d.time_in(now), definition))
        for key, allocation in sorted(event.stock_rows().items()):
            self._x(self._q.stock_insert, (event.id, key, allocation, allocation))
        self._known.add(event.id)

    def stock_get(self, event: str, key: str) -> StockLevel | None:
        row = self._x(self._q.stock_get, (event, key)).fetchone()
        return None if row is None else pool_level(key, *row)

    def stock_move(self, event: str, key: str, available: int, held: int, sold: int) -> bool:
        cur = self._x(
            self._q.stock_move, (available, held, sold, event, key, available, held, sold)
        )
        return bool(cur.rowcount == 1)

    def stock_set(self, event: str, level: StockLevel) -> None:
        key = stock_key(level.sku, level.pool)
        self._x(
            self._q.stock_set,
            (event, key, level.allocation, level.available, level.held, level.sold),
        )

    def definition_get(self, event: str) -> SaleEvent | None:
        row = self._x(self._q.definition_get, (event,)).fetchone()
        return None if row is None else event_from_json(row[0])

    def definition_set(self, event: SaleEvent) -> None:
        self._x(self._q.definition_set, (event_to_json(event), event.id))

    def counter_get(self, event: str, customer: str, sku: str) -> int:
        row = self._x(self._q.counter_get, (event, customer, sku)).fetchone()
        return 0 if row is None else int(row[0])

    def counter_add(self, event: str, customer: str, sku: str, delta: int) -> None:
        if delta < 0:  # a counter never kept stays absent; an upsert would CHECK the insert
            self._x(self._q.counter_give_back, (delta, event, customer, sku))
            return
        self._x(self._q.counter_add, (event, customer, sku, delta))

    def hold_get(self, hold_id: str) -> Hold | None:
        row = self._x(self._q.hold_get, (hold_id,)).fetchone()
        return None if row is None else hold_from_row(self._d, row)

    def hold_id_taken(self, hold_id: str) -> bool:
        # Asked rather than left to the primary key, so a duplicate id is a clean refusal
        # (on PostgreSQL a key violation aborts the whole batch's transaction).
        return self._x(self._q.hold_id_taken, (hold_id,)).fetchone() is not None

    def hold_insert(self, hold: Hold) -> None:
        self._x(self._q.hold_insert, hold_row(self._d, hold))

    def hold_update(self, hold: Hold) -> None:
        t = self._d.time_in
        self._x(
            self._q.hold_update,
            (
                hold.state.value,
                hold.payment_id,
                t(hold.paid_at),
                t(hold.ended_at),
                t(hold.refunded_at),
                hold.id,
            ),
        )

    def totals_add(self, hold: Hold, sign: int) -> None:
        ch = hold.channel
        dims = (hold.market, ch.kind.value, ch.name, ch.referral)
        x, q = self._x, self._q
        x(q.order_totals_add, (hold.event, *dims, sign, sign * hold.amount.amount))
        lines = hold.lines
        if len(lines) > 1:  # rows taken in one order (PostgreSQL's row locks)
            lines = tuple(sorted(lines, key=lambda ln: ln.sku))
        for line in lines:
            x(
                q.line_totals_add,
                (hold.event, line.sku, *dims, sign * line.quantity, sign * line.amount),
            )

    def due(self, event: str, now: datetime, limit: int) -> list[str]:
        # PostgreSQL skips the rows it finds locked: a hold another process is paying
        # right now is not due for us.
        rows = self._x(self._q.due, (event, self._d.time_in(now), limit)).fetchall()
        return [r[0] for r in rows]
