"""The bounds of every number in a sale event, named once and checked once, in the domain.

An event is refused (``InvalidRequest`` naming the field and the bound) when it is built,
so the bounds hold for every entry point (HTTP, the CLI, scenario files, updates) before
anything is stored. They are chosen so that no live total can overflow a signed 64-bit
integer on any backend (SQLite INTEGER, PostgreSQL bigint, Redis HINCRBY):

- at every instant a SKU's units sold are at most its allocation (conservation), and an
  event's allocations add up to at most ``MAX_UNITS``, so any count of units or orders in
  the live totals, summed over SKUs, markets and channels, is at most ``MAX_UNITS``;
  refunds take units out and a re-sale puts them back, so the net never passes that;
- every unit was sold at a price of at most ``MAX_MINOR_UNITS``, whatever the price is
  now (an update changes prices for new holds only), so any amount in the live totals is
  at most ``MAX_UNITS * MAX_MINOR_UNITS`` = ``MAX_AMOUNT`` = 10**18 minor units, about
  a ninth of 2**63 - 1.

docs/architecture.md ("Bounds") gives the whole argument and why each bound is where it is.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from lampo.domain.errors import InvalidRequest

#: The units of one event: its allocations added up (so any one allocation, quantity or
#: per-customer limit too). 100 million: 35 times Mi Fan Fest 2015's 2.9 million.
MAX_UNITS = 100_000_000
#: One unit's price, in minor units: 10 billion, i.e. 100,000,000.00 IDR (a TV costs
#: 5 to 50 million IDR), 10,000,000,000 VND, 100,000,000.00 CNY.
MAX_MINOR_UNITS = 10_000_000_000
#: Any amount an event's live totals or milestones can reach, in minor units.
MAX_AMOUNT = MAX_UNITS * MAX_MINOR_UNITS
#: The largest value of a signed 64-bit integer: SQLite INTEGER, PostgreSQL bigint, and
#: Redis counters (HINCRBY) all stop there.
INT64_MAX = 2**63 - 1
#: How long a hold keeps its stock: one day.
MAX_HOLD_SECONDS = 86_400
#: Sale windows (and FX rate dates) lie in [EARLIEST, LATEST). Before 2200, microseconds
#: since 1970 stay below 2**53, so a hold's deadline is exact as a Redis sorted-set score
#: (a double).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: From an event's first opening to its last close: the battle report keeps a curve per
#: minute over it, and the simulator steps through it second by second.
MAX_EVENT_SPAN = timedelta(days=31)
#: Numerator and denominator of an FX rate (an exact fraction): 12 digits each.
MAX_FX_TERM = 10**12

assert MAX_AMOUNT * 9 <= INT64_MAX, "the totals' headroom: see the module docstring"


def show(value: object) -> str:
    """``value`` for a message: a whole number with separators, however large (``str`` of
    an int of more than 4,300 digits raises), anything else as ``repr``, cut short."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 200:
            return f"a number of about {int(value.bit_length() * 0.30103):,} digits"
        return f"{value:,}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def whole(field: str, value: object, low: int, high: int, bound: str = "", what: str = "") -> int:
    """``value`` if it is a whole number (not a bool) in ``low..high``; otherwise
    ``InvalidRequest`` naming ``field`` and the bound (``bound``: the bound's name, such as
    ``MAX_UNITS``). ``what`` names the thing the field belongs to (a SKU) in the message."""
    prefix = f"{what}: " if what else ""
    limit = f"{high:,}" + (f" ({bound})" if bound else "")
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(field, f"{prefix}must be a whole number, got {show(value)}")
    if not low <= value <= high:
        raise InvalidRequest(field, f"{prefix}must be from {low:,} to {limit}, got {show(value)}")
    return value


def moment(field: str, value: object) -> datetime:
    """``value`` if it is a timezone-aware datetime in [``EARLIEST``, ``LATEST``)."""
    if not isinstance(value, datetime):
        raise InvalidRequest(field, f"must be a datetime, got {show(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest(field, "must be a timezone-aware datetime")
    if not EARLIEST <= value < LATEST:
        raise InvalidRequest(
            field,
            f"must lie from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC), "
            f"got {value.isoformat()}",
        )
    return value


def day(field: str, value: object) -> date:
    """``value`` if it is a date (not a datetime) in [``EARLIEST``, ``LATEST``)."""
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidRequest(field, f"must be a date, got {show(value)}")
    if not EARLIEST.date() <= value < LATEST.date():
        raise InvalidRequest(
            field,
            f"must lie from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}, "
            f"got {value.isoformat()}",
        )
    return value
