"""Period results: quarters and years, figures from the order history, growth and targets.

A period is a calendar quarter (``2017Q2``) or year (``2017``) in a **reporting zone**
(UTC unless told otherwise): ``2017Q2`` in ``Asia/Shanghai`` runs from 1 April 2017 00:00
Beijing time (31 March 16:00 UTC) to 1 July 00:00 Beijing time, start included, end not.

An order counts in the period in which it was paid; a refund takes it out of the period in
which it was refunded (so a closed period's figures never change afterwards). Revenue in
the period's currency is computed per event: the exact minor units per currency, each
currency's sum converted once through that event's FX table.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lampo.domain import bounds
from lampo.domain.errors import InvalidRequest
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold, HoldState
from lampo.domain.money import MINOR_UNITS, FxTable, Money

_PERIOD = re.compile(r"([0-9]{4})(?:-?Q([1-4]))?", re.ASCII)


@dataclass(frozen=True, slots=True)
class Period:
    """A quarter (``quarter`` 1..4) or a whole year (``quarter`` 0) in the zone ``tz``."""

    year: int
    quarter: int = 0
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if not 1970 <= self.year <= 9998 or not 0 <= self.quarter <= 4:
            raise InvalidRequest("period", f"no such period: {self.year} Q{self.quarter}")
        zone(self.tz)

    @classmethod
    def parse(cls, text: str, tz: str = "UTC") -> Period:
        """``2017Q2``, ``2017-Q2``, ``2017q2`` or ``2017``."""
        found = _PERIOD.fullmatch(text.strip().upper()) if isinstance(text, str) else None
        if not found:
            raise InvalidRequest(
                "period", f"{text!r} is not a quarter or year such as 2017Q2 or 2017"
            )
        return cls(int(found.group(1)), int(found.group(2) or 0), tz)

    @classmethod
    def of(cls, when: datetime, tz: str = "UTC", whole_year: bool = False) -> Period:
        """The quarter (or with ``whole_year`` the year) in zone ``tz`` that holds ``when``."""
        local = when.astimezone(zone(tz))
        return cls(local.year, 0 if whole_year else (local.month - 1) // 3 + 1, tz)

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.quarter}" if self.quarter else str(self.year)

    @property
    def start(self) -> datetime:
        month = 1 if not self.quarter else 3 * self.quarter - 2
        return datetime(self.year, month, 1, tzinfo=zone(self.tz)).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return self.next().start

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end

    def next(self) -> Period:
        if not self.quarter:
            return Period(self.year + 1, 0, self.tz)
        if self.quarter == 4:
            return Period(self.year + 1, 1, self.tz)
        return Period(self.year, self.quarter + 1, self.tz)

    def previous(self) -> Period:
        """The period before: the previous quarter (QoQ) or year."""
        if not self.quarter:
            return Period(self.year - 1, 0, self.tz)
        if self.quarter == 1:
            return Period(self.year - 1, 4, self.tz)
        return Period(self.year, self.quarter - 1, self.tz)

    def year_ago(self) -> Period:
        """The same period a year earlier (YoY)."""
        return Period(self.year - 1, self.quarter, self.tz)

    def within(self, other: Period) -> bool:
        return other.start <= self.start and self.end <= other.end

    def against(self, base: Period) -> str:
        """How a growth of this period over ``base`` is named: ``QoQ`` over the previous
        quarter, ``YoY`` over the same period a year earlier (a year over the year before
        is both), otherwise ``vs 2016Q4``."""
        same = (base.year, base.quarter)
        if same == (self.year - 1, self.quarter):
            return "YoY"
        if self.quarter and same == (self.previous().year, self.previous().quarter):
            return "QoQ"
        return f"vs {base.label}"


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest("tz", f"unknown time zone {tz!r}") from None


def cross_rate(fx: FxTable, currency: str, target: str) -> Fraction:
    """Major units of ``target`` for one major unit of ``currency``, from one FX table."""
    if target == fx.reporting:
        return fx.rate(currency)
    if target in fx.rates:
        return fx.rate(currency) / fx.rates[target]
    raise InvalidRequest("fx", f"FX table of {fx.on} has no rate between {currency} and {target}")


def convert_sums(fx: FxTable, sums: Mapping[str, int], target: str) -> int:
    """Minor units of ``target`` for exact per-currency sums, each converted once (half even)."""
    out = 0
    for cur, amount in sorted(sums.items()):
        exact = (
            Fraction(amount, 10 ** MINOR_UNITS[cur])
            * cross_rate(fx, cur, target)
            * 10 ** MINOR_UNITS[target]
        )
        out += round(exact)
    return out


@dataclass(frozen=True, slots=True)
class Share:
    key: str
    units: int
    money: int  # minor units of the period's currency

    def of(self, total: int) -> Fraction:
        return Fraction(self.money, total) if total else Fraction(0)


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """One period's results. ``local`` is each market's revenue in its own currency."""

    period: Period
    currency: str
    orders: int
    units: int
    revenue: int  # minor units of ``currency``
    units_by_category: dict[str, int]
    by_market: list[Share]
    local: dict[str, Money]
    by_channel: list[Share]
    by_category: list[Share]
    best_sellers: dict[str, tuple[str, int]]  # market -> (SKU name, units)
    events: list[str]

    @property
    def empty(self) -> bool:
        return not self.orders and not self.units and not self.revenue


def period_figures(
    period: Period,
    currency: str,
    events: Mapping[str, SaleEvent],
    holds: Iterable[Hold],
    fx: FxTable | None = None,
) -> PeriodFigures:
    """The figures of ``period`` from every order in ``holds`` (of the ``events``).

    Revenue is converted into ``currency`` through each event's FX table, or through
    ``fx`` when given (a planning rate table, as a target file declares)."""
    sign_units: Counter[tuple[str, str, str, str]] = Counter()  # (event, sku, market, channel)
    sums: dict[tuple[str, str, str], Counter[str]] = {}  # (event, market, channel) -> cur
    by_cat_sums: dict[tuple[str, str], Counter[str]] = {}
    orders = 0
    seen_events: set[str] = set()
    for h in holds:
        if h.paid_at is None or not h.is_order:
            continue
        moves = [(h.paid_at, 1)]
        if h.state is HoldState.REFUNDED and h.refunded_at is not None:
            moves.append((h.refunded_at, -1))
        for at, sign in moves:
            if not period.contains(at):
                continue
            seen_events.add(h.event)
            orders += sign
            ev = events[h.event]
            kind = h.channel.kind.value
            sums.setdefault((h.event, h.market, kind), Counter())[h.currency] += (
                sign * h.amount.amount
            )
            for line in h.lines:
                sign_units[(h.event, line.sku, h.market, kind)] += sign * line.quantity
                cat = ev.category_of(line.sku)
                by_cat_sums.setdefault((h.event, cat), Counter())[h.currency] += sign * line.amount

    def conv(event_id: str, amounts: Mapping[str, int]) -> int:
        return convert_sums(fx or events[event_id].fx, amounts, currency)

    market_money: Counter[str] = Counter()
    channel_money: Counter[str] = Counter()
    local: dict[str, Counter[str]] = {}
    for (ev_id, market, kind), amounts in sums.items():
        value = conv(ev_id, amounts)
        market_money[market] += value
        channel_money[kind] += value
        local.setdefault(market, Counter()).update(amounts)
    cat_money: Counter[str] = Counter()
    for (ev_id, cat), amounts in by_cat_sums.items():
        cat_money[cat] += conv(ev_id, amounts)
    market_units: Counter[str] = Counter()
    channel_units: Counter[str] = Counter()
    cat_units: Counter[str] = Counter()
    sku_units: dict[str, Counter[tuple[str, str]]] = {}
    for (ev_id, sku, market, kind), n in sign_units.items():
        ev = events[ev_id]
        market_units[market] += n
        channel_units[kind] += n
        cat_units[ev.category_of(sku)] += n
        name = ev.skus[sku].name
        sku_units.setdefault(market, Counter())[(name, sku)] += n
    best = {}
    for market, counts in sorted(sku_units.items()):
        (name, _), n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if n > 0:
            best[market] = (name, n)

    def shares(units: Counter[str], money: Counter[str]) -> list[Share]:
        keys = set(units) | set(money)
        rows = [Share(k, units[k], money[k]) for k in keys]
        return sorted(rows, key=lambda s: (-s.money, -s.units, s.key))

    local_money = {}
    for market, amounts in sorted(local.items()):
        nonzero = {c: a for c, a in amounts.items() if a}
        if len(nonzero) == 1:
            (cur, amount), *_ = nonzero.items()
            local_money[market] = Money(amount, cur)
    return PeriodFigures(
        period=period,
        currency=currency,
        orders=orders,
        units=sum(sign_units.values()),
        revenue=sum(market_money.values()),
        units_by_category=dict(sorted(cat_units.items())),
        by_market=shares(market_units, market_money),
        local=local_money,
        by_channel=shares(channel_units, channel_money),
        by_category=shares(cat_units, cat_money),
        best_sellers=best,
        events=sorted(seen_events),
    )


def growth(current: int, base: int) -> Fraction | None:
    """``current / base - 1`` exactly (``Fraction(7, 10)`` is +70 %); ``None`` without a base."""
    if base <= 0:
        return None
    return Fraction(current, base) - 1


def percent(value: Fraction | None, digits: int = 1) -> str:
    """``+70.0 %``, ``-3.2 %`` or ``n/a``, rounded half even on the last digit shown."""
    if value is None:
        return "n/a"
    scaled = round(value * 100 * 10**digits)
    sign = "+" if scaled >= 0 else "-"
    whole, frac = divmod(abs(scaled), 10**digits)
    return f"{sign}{whole}" + (f".{frac:0{digits}d}" if digits else "") + " %"


@dataclass(frozen=True, slots=True)
class Growth:
    """Growth of the headline figures against a base period."""

    base: Period
    units: Fraction | None
    revenue: Fraction | None
    by_market_revenue: dict[str, Fraction | None]  # in each market's own currency
    by_market_units: dict[str, Fraction | None]
    by_category_units: dict[str, Fraction | None]


def compare(current: PeriodFigures, base: PeriodFigures) -> Growth:
    markets = sorted({s.key for s in current.by_market} | {s.key for s in base.by_market})
    cur_units = {s.key: s.units for s in current.by_market}
    base_units = {s.key: s.units for s in base.by_market}

    def local_growth(m: str) -> Fraction | None:
        a, b = current.local.get(m), base.local.get(m)
        if a is None or b is None or a.currency != b.currency:
            return None
        return growth(a.amount, b.amount)

    cats = sorted(set(current.units_by_category) | set(base.units_by_category))
    return Growth(
        base=base.period,
        units=growth(current.units, base.units),
        revenue=growth(current.revenue, base.revenue),
        by_market_revenue={m: local_growth(m) for m in markets},
        by_market_units={m: growth(cur_units.get(m, 0), base_units.get(m, 0)) for m in markets},
        by_category_units={
            c: growth(current.units_by_category.get(c, 0), base.units_by_category.get(c, 0))
            for c in cats
        },
    )


# -- targets -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    """A goal or forecast for a period: revenue (``money``) or units (of ``category``, or of
    everything when it is empty)."""

    label: str
    period: Period
    money: Money | None = None
    units: int | None = None
    category: str = ""

    def __post_init__(self) -> None:
        if (self.money is None) == (self.units is None):
            raise InvalidRequest("target", f"{self.label}: needs exactly one of money or units")


@dataclass(frozen=True, slots=True)
class Progress:
    """A target's progress at ``as_of``: the figure to date, its share of the target and the
    figure projected for the whole period at the pace so far (``None`` before it starts)."""

    target: Target
    as_of: datetime
    actual: int
    share: Fraction
    projection: int | None
    elapsed: Fraction  # share of the target's period gone by at ``as_of``

    @property
    def on_track(self) -> bool | None:
        if self.projection is None:
            return None
        goal = self.target.money.amount if self.target.money else self.target.units or 0
        return self.projection >= goal


def progress(target: Target, actual: int, as_of: datetime) -> Progress:
    """``actual`` (minor units or units, from the period's start to ``as_of``) against the
    target, with a straight-line projection over the period."""
    start, end = target.period.start, target.period.end
    goal = target.money.amount if target.money else target.units or 0
    span = Fraction(int((end - start).total_seconds()))
    gone = Fraction(int((min(max(as_of, start), end) - start).total_seconds()))
    elapsed = gone / span
    projection = round(Fraction(actual) / elapsed) if gone else None
    return Progress(
        target, as_of, actual, Fraction(actual, goal) if goal else Fraction(0), projection, elapsed
    )


#: The largest store-network target: the store registry's own bound (``stores.MAX_STORES``,
#: 100,000, over three times the 30,000 outlets of the seed's target), so a target is one
#: a registry can reach.
MAX_NETWORK_TARGET = 100_000


@dataclass(frozen=True, slots=True)
class NetworkTarget:
    """A goal for the store network: ``stores`` open (in ``market``, or in every market when
    it is empty) by the close of the day ``by`` ("10,000 stores today, 30,000 within three
    years"), set on the day ``since`` (reports of periods that end before it do not show
    it). ``stores`` is from 1 to ``MAX_NETWORK_TARGET``; ``by`` and ``since`` are days
    within the domain's bounds, ``since`` not after ``by``."""

    label: str
    stores: int
    by: date
    market: str = ""
    since: date | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise InvalidRequest("label", "a network target needs a label")
        bounds.whole("stores", self.stores, 1, MAX_NETWORK_TARGET, "MAX_NETWORK_TARGET")
        bounds.day("by", self.by)
        if self.since is not None and bounds.day("from", self.since) > self.by:
            raise InvalidRequest("from", f"{self.since.isoformat()} is after {self.by.isoformat()}")
        if not isinstance(self.market, str):
            raise InvalidRequest("market", f"must be a market code, got {bounds.show(self.market)}")


@dataclass(frozen=True, slots=True)
class Targets:
    """Targets, store-network targets and the planning FX table that turns revenue into
    the targets' currency."""

    targets: list[Target] = field(default_factory=list)
    fx: FxTable | None = None
    network: list[NetworkTarget] = field(default_factory=list)
