"""Records: an event's results set against earlier sales (earlier lampo events, imported
figures), and how each record reads.

A sale competes only if it certainly **ended before the event opened**: a result is never
set against a later sale, one running at the same time, or itself. Each ``PastResult``
therefore carries the bounds of when its sale ran; a sale known only by its day (as an
imported row may be) is taken to have run at any time of that day, anywhere on Earth
(``day_bounds``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from fractions import Fraction

from lampo.domain.bounds import moment
from lampo.domain.errors import InvalidRequest
from lampo.domain.money import MINOR_UNITS, Money
from lampo.domain.timetext import duration

#: The first and the last zones where a day begins and ends (Kiribati, Baker Island).
_FIRST_ZONE = timezone(timedelta(hours=14))
_LAST_ZONE = timezone(timedelta(hours=-12))

#: The unit of a record measured in time (the others are counts or a currency code).
SECONDS = "seconds"


def day_bounds(day: date, window: timedelta) -> tuple[datetime, datetime]:
    """(no earlier than, no later than) for a sale of length ``window`` that ran on ``day``
    at a local time nobody wrote down: from ``day``'s first instant anywhere on Earth to
    ``window`` past its last instant anywhere (UTC)."""
    started = datetime.combine(day, time(), _FIRST_ZONE).astimezone(UTC)
    ended = datetime.combine(day + timedelta(days=1), time(), _LAST_ZONE) + window
    return started, ended.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class PastResult:
    """One category's result in one sale: an earlier lampo event, or an imported figure.

    ``started`` and ``ended`` bound when the sale ran: it began no earlier than ``started``
    and was over by ``ended`` (a lampo event's opening and close; ``day_bounds`` for a sale
    known by its day). ``window`` is the sale's length; ``money`` its revenue (``None`` if
    unknown); ``first_hour_units`` the units sold in its first hour; ``sellout_seconds`` and
    ``sellout_units`` its fastest sell-out of one SKU (``None`` if unknown)."""

    name: str
    category: str
    started: datetime
    ended: datetime
    window: timedelta
    units: int
    money: Money | None = None
    first_hour_units: int | None = None
    sellout_seconds: Fraction | None = None
    sellout_units: int | None = None
    source: str = "lampo"

    def __post_init__(self) -> None:
        moment("started", self.started)
        moment("ended", self.ended)
        if self.ended <= self.started:
            raise InvalidRequest("ended", f"{self.name}: a sale ends after it starts")

    def over_before(self, when: datetime) -> bool:
        """Whether this sale had certainly ended by ``when``."""
        return self.ended <= when


@dataclass(frozen=True, slots=True)
class RecordResult:
    """``title`` compares ``value`` (this event) with the best earlier ``best`` (by
    ``best_name``). ``beaten`` is ``None`` when there is nothing to compare with.
    ``margin`` is value - best (for a sell-out time, best - value: seconds faster), so it
    is positive exactly when the record is beaten. ``category`` is the category a units
    record counts ("" for the money and sell-out records). ``unit`` is a category's unit name
    ("phones"), a currency code, or ``SECONDS``."""

    title: str
    unit: str
    value: int | Fraction
    best: int | Fraction | None = None
    best_name: str = ""
    beaten: bool | None = None
    margin: int | Fraction | None = None
    higher_is_better: bool = True
    category: str = ""  # the category a units record counts ("" for money, sell-outs)


def _hours(window: timedelta) -> str:
    hours = Fraction(int(window.total_seconds()), 3600)
    return f"{hours.numerator}" if hours.denominator == 1 else f"{float(hours):g}"


def _compare(
    title: str,
    unit: str,
    value: int | Fraction,
    past: Sequence[tuple[str, int | Fraction]],
    higher_is_better: bool = True,
    category: str = "",
) -> RecordResult:
    if not past:
        return RecordResult(
            title, unit, value, higher_is_better=higher_is_better, category=category
        )
    pick = max if higher_is_better else min
    best_name, best = pick(past, key=lambda p: p[1])
    if higher_is_better:
        return RecordResult(
            title, unit, value, best, best_name, value > best, value - best, category=category
        )
    return RecordResult(
        title, unit, value, best, best_name, value < best, best - value, False, category
    )


def compare_records(
    current: Sequence[PastResult], past: Sequence[PastResult], units: Mapping[str, str]
) -> list[RecordResult]:
    """This event's results (one ``PastResult`` per category) against every earlier one.

    Only sales over before this one opened compete, and only those at most as long as this
    one for a window's total ("in a 12-hour window"); money is compared only in the same
    currency. ``units`` names a category's unit ("phones")."""
    out: list[RecordResult] = []
    for cur in current:
        earlier = [p for p in past if p.category == cur.category and p.over_before(cur.started)]
        unit = units.get(cur.category, "units")
        out.append(
            _compare(
                f"most {unit} in a {_hours(cur.window)}-hour window",
                unit,
                cur.units,
                [(p.name, p.units) for p in earlier if p.window <= cur.window],
                category=cur.category,
            )
        )
        if cur.first_hour_units is not None:
            out.append(
                _compare(
                    f"most {unit} in the first hour",
                    unit,
                    cur.first_hour_units,
                    [(p.name, n) for p in earlier if (n := p.first_hour_units) is not None],
                    category=cur.category,
                )
            )
    money = [c for c in current if c.money is not None and c.money.amount]
    if money:  # every row carries the sale's whole revenue: take it once, never add rows
        cur0 = money[0]
        total = cur0.money.amount if cur0.money else 0
        currency = cur0.money.currency if cur0.money else ""
        rivals_money: dict[str, int] = {}
        for p in past:
            if (
                p.money is not None
                and p.money.currency == currency
                and p.window <= cur0.window
                and p.over_before(cur0.started)
            ):
                rivals_money[p.name] = max(rivals_money.get(p.name, 0), p.money.amount)
        out.append(
            _compare(
                f"most money in a {_hours(cur0.window)}-hour window",
                currency,
                total,
                sorted(rivals_money.items()),
            )
        )
    sellouts = [c for c in current if c.sellout_seconds is not None]
    if sellouts:
        fastest = min(sellouts, key=lambda c: c.sellout_seconds or 0)
        assert fastest.sellout_seconds is not None
        out.append(
            _compare(
                "fastest sell-out of a SKU",
                SECONDS,
                fastest.sellout_seconds,
                [
                    (p.name, p.sellout_seconds)
                    for p in past
                    if p.sellout_seconds is not None and p.over_before(fastest.started)
                ],
                higher_is_better=False,
            )
        )
    return out


# -- how a record reads ------------------------------------------------------------------------
def amount_text(value: int | Fraction, unit: str) -> str:
    """A record's figure: ``4 h 10 min``, ``1,300,000`` (phones) or ``1,500,000.00 CNY``."""
    if unit == SECONDS:
        return duration(value)
    if unit in MINOR_UNITS:
        return Money(int(value), unit).format()
    return f"{int(value):,}"


def margin_text(record: RecordResult) -> str:
    """How far this event is from the record, never as a negative number: ``faster by 2 s``
    or ``slower by 4 h 9 min`` for a time; ``ahead by 812,010`` or ``short by 1,289,440``
    for a count or money; ``equal``; ``-`` when there is nothing to compare with."""
    if record.margin is None:
        return "-"
    if record.margin == 0:
        return "equal"
    ahead = record.margin > 0
    by = amount_text(record.margin if ahead else -record.margin, record.unit)
    if record.unit == SECONDS:
        return f"{'faster' if ahead else 'slower'} by {by}"
    return f"{'ahead' if ahead else 'short'} by {by}"
