"""What differs between SQLite and PostgreSQL for the shared SQL state (``state.py``).

The statements are written once, with ``?`` placeholders; ``Dialect.sql`` turns them into
the driver's. A dialect also says how a read that decides is locked (PostgreSQL's
``FOR UPDATE``; SQLite's writer holds the whole file's write lock, so nothing), how times
are stored (SQLite: integer microseconds since the epoch, UTC; PostgreSQL: timestamptz)
and how a hold's lines are (JSON text; PostgreSQL reads its jsonb back as lists), and how
the per-customer counter is read (PostgreSQL creates-or-locks the row, since a missing row
cannot be locked).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lampo.domain.holds import HoldLine

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us(when: datetime | None) -> int | None:
    """Microseconds since the epoch, UTC (exact: no float on the way)."""
    if when is None:
        return None
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def _same(when: datetime | None) -> datetime | None:
    return when


def _utc(when: datetime | None) -> datetime | None:
    return None if when is None else when.astimezone(UTC)


def lines_json(lines: Sequence[HoldLine]) -> str:
    """``[["sku", qty, price], ...]``, a line of a reserved pool with its pool as a fourth
    item (``["sku", qty, price, "pool"]``: a line of before reads as the shared pool's); by
    hand when no SKU or pool needs escaping (the usual case)."""
    if any(ln.pool or '"' in ln.sku or "\\" in ln.sku for ln in lines):
        return json.dumps(
            [
                [ln.sku, ln.quantity, ln.unit_price, ln.pool]
                if ln.pool
                else [ln.sku, ln.quantity, ln.unit_price]
                for ln in lines
            ]
        )
    return "[" + ",".join(f'["{ln.sku}",{ln.quantity},{ln.unit_price}]' for ln in lines) + "]"


def _parsed(value: Any) -> Any:
    return value  # jsonb comes back parsed


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    #: The driver's placeholder for ``?``.
    param: str
    #: Appended to a read whose rows the transaction then decides on.
    lock: str
    #: Appended to the read of due holds: rows another transaction has locked are skipped.
    lock_due: str
    #: A time as stored, and back (tz-aware UTC).
    time_in: Callable[[datetime | None], Any]
    time_out: Callable[[Any], datetime | None]
    #: A hold's lines as stored; back as ``[[sku, quantity, unit price(, pool)], ...]``.
    lines_in: Callable[[Sequence[HoldLine]], Any]
    lines_out: Callable[[Any], Any]
    #: The units of counter (event, customer, sku), or no row for none.
    counter_read: str

    def sql(self, text: str) -> str:
        return text if self.param == "?" else text.replace("?", self.param)


SQLITE = Dialect(
    name="sqlite",
    param="?",
    lock="",
    lock_due="",
    time_in=us,
    time_out=from_us,
    lines_in=lines_json,
    lines_out=json.loads,
    counter_read="SELECT units FROM counters WHERE event = ? AND customer = ? AND sku = ?",
)

POSTGRES = Dialect(
    name="postgresql",
    param="%s",
    lock=" FOR UPDATE",
    lock_due=" FOR UPDATE SKIP LOCKED",
    time_in=_same,
    time_out=_utc,
    lines_in=lines_json,  # text, cast to jsonb by the column
    lines_out=_parsed,
    # Create-or-lock: another process's first hold for this customer must wait for ours
    # rather than read 0 beside it.
    counter_read=(
        "INSERT INTO counters VALUES (?, ?, ?, 0) ON CONFLICT (event, customer, sku) "
        "DO UPDATE SET units = counters.units RETURNING units"
    ),
)
