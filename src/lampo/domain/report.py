"""Battle-report rules: roll-ups, milestones, sell-out times, the sales curve and rankings
(records are in ``records.py``). Pure functions over an event's definition, its live
``Totals`` and its orders.

Money in the reporting currency is always computed the same way as the live totals: sum
the exact minor units per currency first, then convert each currency's sum once through
the event's FX table (``FxTable.total``). A figure is therefore exact and reproducible; the
rows of a roll-up may differ from the grand total by at most one minor unit per currency
and row, because each row is converted on its own (never through a float).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from fractions import Fraction

from lampo.domain.channel_report import ChannelMix
from lampo.domain.discount import Discounts
from lampo.domain.errors import InvalidRequest
from lampo.domain.event import Milestone, SaleEvent
from lampo.domain.holds import Hold, HoldState
from lampo.domain.market import ChannelKind
from lampo.domain.money import Money
from lampo.domain.records import SECONDS, RecordResult
from lampo.domain.totals import LineKey, OrderKey, Totals

#: The battle report's roll-up dimensions and how each is read off a ``LineKey``.
DIMENSIONS: dict[str, Callable[[SaleEvent, LineKey], str]] = {
    "sku": lambda ev, k: k.sku,
    "category": lambda ev, k: ev.category_of(k.sku),
    "market": lambda ev, k: k.market,
    "channel": lambda ev, k: k.channel_kind,
    "outlet": lambda ev, k: _outlet(k),
    "referral": lambda ev, k: _referral(k),
}
_ORDER_DIMENSIONS: dict[str, Callable[[OrderKey], str]] = {
    "market": lambda k: k.market,
    "channel": lambda k: k.channel_kind,
    "outlet": lambda k: _outlet(k),
    "referral": lambda k: _referral(k),
}


def _referral(key: LineKey | OrderKey) -> str:
    """The referral of an online sale ("-" for none); a marketplace's or a store's sale,
    which no referral brought, counts under its channel kind instead."""
    if key.channel_kind != ChannelKind.ONLINE.value:
        return key.channel_kind
    return key.referral or "-"


def _outlet(key: LineKey | OrderKey) -> str:
    """``kind:name`` of a marketplace or store, the kind alone for the own online store."""
    return f"{key.channel_kind}:{key.channel_name}" if key.channel_name else key.channel_kind


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a roll-up: units, orders (``None`` where an order spans rows, as per SKU),
    exact amounts per currency and their value in the reporting currency."""

    key: str
    units: int
    orders: int | None
    amounts: Mapping[str, int]
    money: Money


def rollup(event: SaleEvent, totals: Totals, dimension: str) -> list[Row]:
    """``totals`` grouped by ``dimension`` (one of ``DIMENSIONS``), most money first."""
    key_of = DIMENSIONS[dimension]
    units: Counter[str] = Counter()
    amounts: dict[str, Counter[str]] = {}
    for key, row in totals.lines.items():
        group = key_of(event, key)
        units[group] += row.units
        cur = event.markets[key.market].currency
        amounts.setdefault(group, Counter())[cur] += row.amount
    orders: Counter[str] | None = None
    if dimension in _ORDER_DIMENSIONS:
        orders = Counter()
        for okey, orow in totals.orders.items():
            orders[_ORDER_DIMENSIONS[dimension](okey)] += orow.orders
    rows = [
        Row(
            group,
            units[group],
            None if orders is None else orders[group],
            {c: a for c, a in sorted(amounts[group].items()) if a},
            event.fx.total(dict(amounts[group])),
        )
        for group in amounts
        if units[group] or any(amounts[group].values())
    ]
    return sorted(rows, key=lambda r: (-r.money.amount, -r.units, r.key))


def grand_total(event: SaleEvent, totals: Totals) -> tuple[int, int, dict[str, int], Money]:
    """(units, orders, amount per currency, money in the reporting currency)."""
    currency_of = {code: m.currency for code, m in event.markets.items()}
    by_currency = totals.amounts_by_currency(currency_of)
    by_currency = {c: a for c, a in sorted(by_currency.items()) if a}
    return totals.units, totals.order_count, by_currency, event.fx.total(by_currency)


# -- milestones ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Crossing:
    """A milestone and the committed payment that first took the live figure to it.
    ``at`` is that payment's time (UTC); ``order`` its id; ``value`` the figure right after
    it (minor units of the reporting currency, or units of the category); ``channel`` the
    channel the payment came through (``online``, ``marketplace:jd``, ``store:s1``): the
    figure counts every channel, so any of them may be the one that crosses."""

    milestone: Milestone
    at: datetime | None = None
    order: str = ""
    value: int = 0
    channel: str = ""

    @property
    def reached(self) -> bool:
        return self.at is not None


def _steps(orders: Iterable[Hold]) -> list[tuple[datetime, int, str, int, Hold]]:
    """Payments (+1) and refunds (-1) in commit order. At one instant a refund goes first,
    so a milestone is never announced early; the hold id is the stable tie-break."""
    steps = []
    for h in orders:
        if h.paid_at is None or h.state not in (HoldState.PAID, HoldState.REFUNDED):
            continue
        steps.append((h.paid_at, 1, h.id, 1, h))
        if h.state is HoldState.REFUNDED and h.refunded_at is not None:
            steps.append((h.refunded_at, 0, h.id, -1, h))
    steps.sort(key=lambda s: (s[0], s[1], s[2]))
    return steps


def milestone_crossings(event: SaleEvent, orders: Iterable[Hold]) -> list[Crossing]:
    """When each of ``event``'s milestones was first crossed, replaying the committed
    payments and refunds in order. Money is kept per currency in exact minor units and
    converted once per currency, as the live totals are, so the figure a crossing is
    judged on is the figure the battle report showed at that instant, over every channel
    (online, marketplaces and stores alike). A milestone fires at most once: a later refund
    that dips below it does not un-cross it."""
    if not event.milestones:
        return []
    sums: Counter[str] = Counter()
    converted: dict[str, int] = {}
    units: Counter[str] = Counter()
    found: dict[int, Crossing] = {}
    for at, _, hold_id, sign, hold in _steps(orders):
        sums[hold.currency] += sign * hold.amount.amount
        total = event.fx.convert(Money(sums[hold.currency], hold.currency))
        converted[hold.currency] = total.amount
        for line in hold.lines:
            units[event.category_of(line.sku)] += sign * line.quantity
        if sign < 0:
            continue
        money = sum(converted.values())
        for i, m in enumerate(event.milestones):
            if i in found:
                continue
            value = units[m.category] if m.category else money
            if value >= m.threshold:
                channel = hold.channel
                kind = channel.kind.value
                where = f"{kind}:{channel.name}" if channel.name else kind
                found[i] = Crossing(m, at, hold_id, value, where)
    return [found.get(i, Crossing(m)) for i, m in enumerate(event.milestones)]


def record_falls(
    event: SaleEvent, records: Sequence[RecordResult], orders: Iterable[Hold]
) -> list[datetime | None]:
    """When each of ``records`` (``compare_records``' results for ``event``) fell: for a
    units or money record, the payment that first took the figure past the best, found by
    the milestones' own replay (``milestone_crossings``, a threshold of best + 1); for the
    fastest sell-out, the instant the SKU sold out. ``None`` for a record not beaten (or a
    first-hour record whose figure passed the best only after the first hour)."""
    out: list[datetime | None] = [None] * len(records)
    probes: list[Milestone] = []
    probed: list[int] = []
    for i, r in enumerate(records):
        if not r.beaten or r.best is None:
            continue
        if r.unit == SECONDS:
            out[i] = event.opens + timedelta(microseconds=int(r.value * 10**6))
            continue
        if not r.category and r.unit != event.fx.reporting:
            continue
        try:
            probes.append(Milestone("record", int(r.best) + 1, r.category))
        except InvalidRequest:  # a best at the bound: no figure can pass it
            continue
        probed.append(i)
    if probes:
        crossings = milestone_crossings(replace(event, milestones=tuple(probes)), orders)
        first_hour_ends = event.opens + timedelta(hours=1)
        for i, crossing in zip(probed, crossings, strict=True):
            at = crossing.at
            if at is not None and "first hour" in records[i].title and at >= first_hour_ends:
                at = None
            out[i] = at
    return out


def measured(milestone: Milestone, currency: str, units: Mapping[str, str]) -> str:
    """What ``milestone``'s threshold measures, as the reports print it: money in the
    reporting ``currency`` (``1,000,000.00 CNY``) or units of its category, named by
    ``units`` (category -> unit name: ``2,000 phones``)."""
    if milestone.category:
        return f"{milestone.threshold:,} {units.get(milestone.category, 'units')}"
    return Money(milestone.threshold, currency).format()


def scaled_milestone(
    milestone: Milestone, scale: float, currency: str, units: Mapping[str, str]
) -> Milestone:
    """``milestone``, whose threshold a scaled run has already multiplied by ``scale``,
    labelled with the amount it now measures and the label it was written with:
    ``1,000,000.00 CNY (x0.001 of ¥1 billion)``. At scale 1 it is returned unchanged."""
    if scale == 1:
        return milestone
    label = f"{measured(milestone, currency, units)} (x{scale:g} of {milestone.label})"
    return Milestone(label, milestone.threshold, milestone.category)


def units_by_category(event: SaleEvent, totals: Totals) -> dict[str, int]:
    """Units sold (net of refunds) per category of ``event``, every category present.

    A SKU that ``event`` does not list is left out: a worker may read totals that a newer
    definition (an update made through another worker, not yet taken here) sold into."""
    units = dict.fromkeys(event.categories, 0)
    for key, row in totals.lines.items():
        item = event.skus.get(key.sku)
        if item is not None:
            units[item.category] = units.get(item.category, 0) + row.units
    return units


@dataclass(frozen=True, slots=True)
class MilestoneLevel:
    """A milestone against the live figure now: ``value`` is minor units of the reporting
    currency (the grand total) or units of the milestone's category, net of refunds.

    Unlike ``Crossing`` it needs no order, only the live totals, so a dashboard can ask
    every second; a refund that takes the figure back below the threshold makes it
    unreached again (``milestone_crossings`` keeps the first crossing)."""

    milestone: Milestone
    value: int

    @property
    def reached(self) -> bool:
        return self.value >= self.milestone.threshold


def milestone_levels(event: SaleEvent, totals: Totals) -> list[MilestoneLevel]:
    """Each of ``event``'s milestones with its live figure, in the event's order."""
    if not event.milestones:
        return []
    money = grand_total(event, totals)[3].amount
    units = units_by_category(event, totals)
    return [
        MilestoneLevel(m, units.get(m.category, 0) if m.category else money)
        for m in event.milestones
    ]


# -- stock, sell-out and the curve -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SkuResult:
    sku: str
    name: str
    category: str
    allocation: int
    sold: int
    sold_out_at: datetime | None  # the first instant no unit was left to hold (UTC)

    @property
    def share(self) -> Fraction:
        return Fraction(self.sold, self.allocation) if self.allocation else Fraction(0)


def sold_out_times(event: SaleEvent, holds: Iterable[Hold]) -> dict[str, datetime]:
    """The first instant each SKU had no unit left to hold, replayed from the holds: a hold
    takes its units when created; a release, an expiry or a refund gives them back. At one
    instant returns go before takes (the order in which storage sees a sweep and a batch)."""
    moves: list[tuple[datetime, int, str, str, int]] = []
    for h in holds:
        for line in h.lines:
            moves.append((h.created_at, 1, h.id, line.sku, -line.quantity))
            if h.state in (HoldState.RELEASED, HoldState.EXPIRED) and h.ended_at is not None:
                moves.append((h.ended_at, 0, h.id, line.sku, line.quantity))
            elif h.state is HoldState.REFUNDED and h.refunded_at is not None:
                moves.append((h.refunded_at, 0, h.id, line.sku, line.quantity))
    moves.sort(key=lambda m: (m[0], m[1], m[2], m[3]))
    left = {sku: o.allocation for sku, o in event.offers.items()}
    out: dict[str, datetime] = {}
    for at, _, _, sku, delta in moves:
        left[sku] += delta
        if left[sku] == 0 and sku not in out:
            out[sku] = at
    return out


@dataclass(frozen=True, slots=True)
class Bucket:
    """Payments committed in ``[start, start + width)``: orders, units, reporting money."""

    start: datetime
    orders: int
    units: int
    money: int


@dataclass(frozen=True, slots=True)
class Curve:
    """Payments per minute over the event, and per second over its first minutes (gross:
    a later refund does not move a bucket)."""

    per_minute: list[Bucket]
    per_second: list[Bucket]


def sales_curve(event: SaleEvent, orders: Iterable[Hold], first_seconds: int = 300) -> Curve:
    opens = event.opens
    minutes = max(1, -(-int((event.closes - opens).total_seconds()) // 60))
    per_min: list[tuple[int, int, Counter[str]]] = [(0, 0, Counter()) for _ in range(minutes)]
    per_sec: list[tuple[int, int, Counter[str]]] = [(0, 0, Counter()) for _ in range(first_seconds)]
    for h in orders:
        if h.paid_at is None:
            continue
        offset = int((h.paid_at - opens).total_seconds())
        for series, index in ((per_min, offset // 60), (per_sec, offset)):
            if 0 <= index < len(series):
                n, u, money = series[index]
                money[h.currency] += h.amount.amount
                series[index] = (n + 1, u + h.units, money)

    def buckets(series: list[tuple[int, int, Counter[str]]], width: int) -> list[Bucket]:
        return [
            Bucket(opens + timedelta(seconds=i * width), n, u, event.fx.total(dict(m)).amount)
            for i, (n, u, m) in enumerate(series)
        ]

    return Curve(buckets(per_min, 60), buckets(per_sec, 1))


def first_hour_units(event: SaleEvent, orders: Iterable[Hold]) -> Counter[str]:
    """Units per category paid in the first hour after the event's first opening."""
    out: Counter[str] = Counter()
    end = event.opens + timedelta(hours=1)
    for h in orders:
        if h.paid_at is not None and h.paid_at < end and h.is_order:
            for line in h.lines:
                out[event.category_of(line.sku)] += line.quantity
    return out


# -- rankings -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ranked:
    rank: int
    key: str
    units: int
    money: Money


def best_sellers(
    event: SaleEvent, totals: Totals, where: Callable[[LineKey], bool] | None = None, top: int = 5
) -> list[Ranked]:
    """SKUs by units sold (then money, then id), optionally only the lines ``where`` keeps."""
    units: Counter[str] = Counter()
    amounts: dict[str, Counter[str]] = {}
    for key, row in totals.lines.items():
        if where is not None and not where(key):
            continue
        units[key.sku] += row.units
        currency = event.markets[key.market].currency
        amounts.setdefault(key.sku, Counter())[currency] += row.amount
    money = {sku: event.fx.total(dict(a)) for sku, a in amounts.items()}
    order = sorted(
        (s for s in units if units[s] > 0), key=lambda s: (-units[s], -money[s].amount, s)
    )
    return [Ranked(i + 1, s, units[s], money[s]) for i, s in enumerate(order[:top])]


@dataclass(frozen=True, slots=True)
class Rankings:
    overall: list[Ranked]
    per_market: dict[str, list[Ranked]]
    per_category: dict[str, list[Ranked]]
    champions: dict[str, Ranked]  # the best seller of each category


def rankings(event: SaleEvent, totals: Totals, top: int = 5) -> Rankings:
    per_market = {
        m: best_sellers(event, totals, lambda k, m=m: k.market == m, top)  # type: ignore[misc]
        for m in event.markets
    }
    per_category = {
        c: best_sellers(event, totals, lambda k, c=c: event.category_of(k.sku) == c, top)  # type: ignore[misc]
        for c in event.categories
    }
    return Rankings(
        best_sellers(event, totals, None, top),
        {m: r for m, r in per_market.items() if r},
        {c: r for c, r in per_category.items() if r},
        {c: r[0] for c, r in per_category.items() if r},
    )


@dataclass(frozen=True, slots=True)
class MarketShare:
    """A brand's shipments (or share) in one market and period, from imported market data."""

    period: str
    market: str
    brand: str
    share: Fraction
    units: int | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class BrandRank:
    rank: int
    brand: str
    share: Fraction
    units: int | None


def brand_ranks(shares: Iterable[MarketShare], period: str, market: str) -> list[BrandRank]:
    """The brands of one market and period, largest share first (ties share a rank)."""
    rows = sorted(
        (s for s in shares if s.period == period and s.market == market),
        key=lambda s: (-s.share, s.brand),
    )
    out: list[BrandRank] = []
    for i, s in enumerate(rows):
        rank = out[-1].rank if out and out[-1].share == s.share else i + 1
        out.append(BrandRank(rank, s.brand, s.share, s.units))
    return out


# -- the front door (issue 13, docs/front-door.md) ----------------------------------------------
#: The refusals the front door makes, in the order the report lists them: the bot defence
#: (tokens, proof of work, velocity) first, then the registration's.
FRONT_DOOR_REFUSALS = (
    "proof-of-work",
    "bad-token",
    "not-admitted",
    "rate-limited:device",
    "rate-limited:network",
    "not-registered",
    "not-drawn",
    "already-registered",
    "registration-closed",
)


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One market's waiting room: ``joined`` in all (``prequeue`` of them before opening),
    ``admitted``, still ``waiting``, the admission ``rate`` per second; ``peak``: the
    most waiting at once, when whoever ran the sale watched it (None: not known)."""

    market: str
    joined: int
    prequeue: int
    admitted: int
    waiting: int
    rate: int
    peak: int | None = None


@dataclass(frozen=True, slots=True)
class FrontDoorReport:
    """The battle report's front-door section: ``registrations`` (``drawn`` of them when a
    lottery was drawn), each market's queue, the front door's refusals by reason (as the
    process that served them counted), and what a rehearsal measured of its fairness
    (label -> figure, as the simulator words it)."""

    registrations: int
    drawn: int | None
    queues: list[QueueFigures]
    refusals: dict[str, int]
    fairness: dict[str, str] = field(default_factory=dict)


def front_door_refusals(refusals: Mapping[str, int]) -> dict[str, int]:
    """The front door's refusals of ``refusals`` (by reason), in the report's order."""
    known = [r for r in FRONT_DOOR_REFUSALS if refusals.get(r)]
    return {r: refusals[r] for r in known}


# -- the whole battle report ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BattleReport:
    """Everything the battle report shows, computed from storage at ``as_of``.

    The figures (``units``, ``orders``, ``money``, the roll-ups) come from the live totals;
    ``truth`` says whether they equal the recount from the orders (guarantee 6)."""

    event: str
    name: str
    as_of: datetime
    opens: datetime
    closes: datetime
    reporting: str
    fx_on: str
    units: int
    orders: int
    buyers: int
    amounts: dict[str, int]
    money: Money
    by: dict[str, list[Row]]
    skus: list[SkuResult]
    milestones: list[Crossing]
    curve: Curve
    refusals: dict[str, int]
    records: list[RecordResult]
    rankings: Rankings
    markets: dict[str, str]  # market code -> IANA zone, for local times
    truth: bool
    expected: dict[str, int] = field(default_factory=dict)  # seed figures, if known
    category_units: dict[str, str] = field(default_factory=dict)  # "phones" for phones
    discounts: Discounts | None = None  # list price minus flash price of what was sold
    channels: ChannelMix | None = None  # the channel mix, offline share and outlet rankings
    front_door: FrontDoorReport | None = None  # an event with a front door (issue 13)


def buyers(holds: Iterable[Hold]) -> int:
    """Distinct customers with an order that stands (paid, not refunded)."""
    return len({h.customer for h in holds if h.state is HoldState.PAID})
