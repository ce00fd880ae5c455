"""Build the battle report of an event and the results of a period from storage.

These are the functions the CLI, the HTTP API and the dashboard serve. They only read:
``storage.load_events()`` (definitions, FX tables, milestones), ``storage.totals()`` (the
live totals, kept in the same atomic step as each transition), ``storage.stock()`` and
``storage.holds()`` (every hold and order). The battle report's figures come from the live
totals; ``BattleReport.truth`` says whether they equal the recount from the orders.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from lampo.domain.channel_report import ChannelMix, channel_mix, mix, period_sales
from lampo.domain.discount import discounts
from lampo.domain.errors import InvalidRequest, UnknownEvent
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold
from lampo.domain.money import Money
from lampo.domain.network_report import (
    FirstStore,
    NetworkProgress,
    first_stores,
    network_progress,
)
from lampo.domain.period import (
    Growth,
    Period,
    PeriodFigures,
    Progress,
    Targets,
    compare,
    period_figures,
    progress,
)
from lampo.domain.records import PastResult, RecordResult, compare_records
from lampo.domain.report import (
    DIMENSIONS,
    BattleReport,
    BrandRank,
    FrontDoorReport,
    MarketShare,
    QueueFigures,
    SkuResult,
    brand_ranks,
    buyers,
    first_hour_units,
    front_door_refusals,
    grand_total,
    milestone_crossings,
    rankings,
    rollup,
    sales_curve,
    sold_out_times,
)
from lampo.domain.stores import Network, Store, network
from lampo.domain.totals import Totals, recount
from lampo.services import imports
from lampo.services.imports import DEFAULT_HISTORY
from lampo.storage.port import Reads, Storage

if TYPE_CHECKING:
    from lampo.services.frontdoor import FrontDoorService

_MICRO = timedelta(microseconds=1)


def event_of(storage: Reads, event_id: str) -> SaleEvent:
    for event in storage.load_events():
        if event.id == event_id:
            return event
    raise UnknownEvent(event_id)


def past_result(event: SaleEvent, totals: Totals, holds: Sequence[Hold]) -> list[PastResult]:
    """``event``'s results as records compare them: one row per category."""
    sold_out = sold_out_times(event, holds)
    first_hour = first_hour_units(event, holds)
    units: Counter[str] = Counter()
    for key, row in totals.lines.items():
        units[event.category_of(key.sku)] += row.units
    # A sale's money is its whole revenue (as imported rows give it), converted once per
    # currency exactly as the battle report's total is, so the two never differ by a fen.
    _, _, _, revenue = grand_total(event, totals)
    out = []
    for cat in event.categories:
        skus = [s for s in sold_out if event.category_of(s) == cat]
        fastest = min(skus, key=lambda s: (sold_out[s], s)) if skus else None
        seconds = Fraction((sold_out[fastest] - event.opens) // _MICRO, 10**6) if fastest else None
        out.append(
            PastResult(
                name=event.name,
                category=cat,
                started=event.opens,
                ended=event.closes,
                window=max(w.length for w in event.windows.values()),
                units=units[cat],
                money=revenue,
                first_hour_units=first_hour[cat],
                sellout_seconds=seconds,
                sellout_units=event.offers[fastest].allocation if fastest else None,
                source="lampo",
            )
        )
    return out


def event_records(
    storage: Reads,
    event: SaleEvent,
    totals: Totals,
    holds: Sequence[Hold],
    history: str | Path = DEFAULT_HISTORY,
) -> list[RecordResult]:
    """``event``'s records: its results (from ``totals`` and its ``holds``) against every
    other event in ``storage`` and every sale of the ``history`` file (a shipped name or a
    path) that was over before ``event`` opened.

    The one place records are made: every report of an event (``lampo demo``, ``simulate``,
    ``report event`` in every format) gets them from here, from what storage holds, so two
    of them never disagree about one database."""
    past = earlier_results(storage, event, history)
    units = {c: cat.unit for c, cat in event.categories.items()}
    return compare_records(past_result(event, totals, holds), past, units)


def earlier_results(
    storage: Reads, event: SaleEvent, history: str | Path = DEFAULT_HISTORY
) -> list[PastResult]:
    """What ``event``'s records compete with: every sale of the ``history`` file and every
    other event in ``storage`` that closed before ``event`` opened. These are over, so a
    caller that watches ``event`` (the live wall) may keep them."""
    past = imports.past_results(history)
    for other in storage.load_events():
        if other.id != event.id and other.closes <= event.opens:
            past.extend(past_result(other, storage.totals(other.id), list(storage.holds(other.id))))
    return past


def battle_report(
    storage: Reads,
    event_id: str,
    now: datetime,
    refusals: Mapping[str, int] | None = None,
    history: str | Path = DEFAULT_HISTORY,
    expected: Mapping[str, int] | None = None,
    stores: Sequence[Store] = (),
    front_door: FrontDoorReport | None = None,
) -> BattleReport:
    """The battle report of ``event_id`` as of ``now``.

    ``refusals``: refused requests by reason, as the process that served them counted
    (storage keeps no refusal). ``history``: the file of imported earlier results the
    records compare with (``event_records``), besides every earlier event in ``storage``.
    ``stores``: the store registry, which names the stores and places them in cities in the
    channel mix's rankings (without it a store ranks by its id, under "unknown city").
    ``front_door``: the section of an event with a front door (``front_door_report``)."""
    event = event_of(storage, event_id)
    holds = list(storage.holds(event_id))
    totals = storage.totals(event_id)
    stock = storage.stock(event_id)
    units, orders, amounts, money = grand_total(event, totals)
    sold_out = sold_out_times(event, holds)
    skus = [
        SkuResult(
            sku,
            event.skus[sku].name,
            event.category_of(sku),
            level.allocation,
            level.sold,
            sold_out.get(sku),
        )
        for sku, level in sorted(stock.items())
    ]
    return BattleReport(
        event=event.id,
        name=event.name,
        as_of=now,
        opens=event.opens,
        closes=event.closes,
        reporting=event.fx.reporting,
        fx_on=event.fx.on.isoformat(),
        units=units,
        orders=orders,
        buyers=buyers(holds),
        amounts=amounts,
        money=money,
        by={dim: rollup(event, totals, dim) for dim in DIMENSIONS},
        skus=skus,
        milestones=milestone_crossings(event, holds),
        curve=sales_curve(event, holds),
        refusals=dict(Counter(refusals or {}).most_common()),
        records=event_records(storage, event, totals, holds, history),
        rankings=rankings(event, totals),
        markets={code: m.tz for code, m in event.markets.items()},
        truth=totals == recount(holds),
        expected=dict(expected or {}),
        category_units={c: cat.unit for c, cat in event.categories.items()},
        discounts=discounts(event, totals),
        channels=channel_mix(event, totals, stores),
        front_door=front_door,
    )


# -- the front door's section (issue 13) ------------------------------------------------------
def front_door_report(
    door: FrontDoorService,
    event: SaleEvent,
    refusals: Mapping[str, int] | None = None,
    fairness: Mapping[str, str] | None = None,
    peaks: Mapping[str, int] | None = None,
    drawn: int | None = None,
) -> FrontDoorReport | None:
    """The battle report's front-door section of ``event`` (None without a front door):
    registrations and each market's queue from storage; ``refusals`` by reason (the
    service's own, ``door.refusals``, when not given), ``fairness``, ``peaks`` (the most
    waiting at once per market) as whoever ran the sale measured them; ``drawn``: the
    winners of the lottery, read from storage when not given."""
    if event.front_door is None:
        return None
    if drawn is None:
        kept = door.store.drawn(event.id)
        drawn = None if kept is None else len(kept.winners)
    if refusals is None:
        refusals = {r: n for (e, r), n in door.refusals.items() if e == event.id}
    queues = []
    if event.front_door.waiting_room:
        for market in sorted(event.windows):
            state = door.state(event.id, market)
            queues.append(
                QueueFigures(
                    market,
                    state.joined,
                    state.prequeue,
                    state.admitted,
                    state.waiting,
                    state.rate,
                    (peaks or {}).get(market),
                )
            )
    return FrontDoorReport(
        door.registrations(event.id),
        drawn,
        queues,
        front_door_refusals(refusals),
        dict(fairness or {}),
    )


# -- period results ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TargetLine:
    progress: Progress
    unit: str  # a currency code, or "units" / a category


@dataclass(frozen=True, slots=True)
class PeriodReport:
    """A period's results with their growth against ``base`` (``--vs``, else the previous
    period), named by ``against`` (``QoQ``, ``YoY`` or ``vs 2016Q4``: ``Period.against``),
    and against the same period a year earlier (``yoy``)."""

    figures: PeriodFigures
    base: PeriodFigures | None
    against: str
    growth: Growth | None  # against ``base``
    year_ago: PeriodFigures | None
    yoy: Growth | None
    targets: list[TargetLine]
    ranks: dict[str, list[BrandRank]]  # market -> brand ranks of the period (imported)
    channels: ChannelMix | None = None  # the period's channel mix, in its currency
    network: Network | None = None  # the store network (when a registry is given)
    network_targets: list[NetworkProgress] = field(default_factory=list)
    first_stores: list[FirstStore] = field(default_factory=list)  # first in a market


def _all_orders(storage: Storage, events: Mapping[str, SaleEvent]) -> list[Hold]:
    out: list[Hold] = []
    for event_id in events:
        out.extend(h for h in storage.holds(event_id) if h.is_order)
    return out


def period_report(
    storage: Storage,
    period: Period,
    vs: Period | None = None,
    currency: str | None = None,
    targets: Targets | None = None,
    shares: Iterable[MarketShare] = (),
    target_scale: Fraction = Fraction(1),
    stores: Sequence[Store] = (),
) -> PeriodReport:
    """The results of ``period`` from every order in ``storage``, with growth against ``vs``
    (default: the previous period) and against the same period a year earlier, and the
    progress of the ``targets`` that cover it (scaled by ``target_scale``, to read a scaled
    simulation against real targets), the period's channel mix (its stores named and placed
    in cities by the ``stores`` registry), and, when a registry is given, the store
    network's size and growth, its targets' progress and the markets whose first store
    opened in the period.

    ``currency`` defaults to the reporting currency most events use. An empty period (no
    order at all) is an ``InvalidRequest``: a report of nothing is almost always a mistake
    in the period or the storage URL."""
    events = {e.id: e for e in storage.load_events()}
    if not events:
        raise InvalidRequest("storage", "holds no sale event, so no order for any period")
    if currency is None:
        currency = Counter(e.fx.reporting for e in events.values()).most_common(1)[0][0]
    orders = _all_orders(storage, events)
    figures = period_figures(period, currency, events, orders)
    if figures.empty:
        first = min((h.paid_at for h in orders if h.paid_at), default=None)
        last = max((h.paid_at for h in orders if h.paid_at), default=None)
        span = f"orders run from {first:%Y-%m-%d} to {last:%Y-%m-%d}" if first and last else ""
        raise InvalidRequest(
            "period",
            f"{period.label} ({period.tz}) has no order in this storage"
            + (f"; {span}" if span else ""),
        )
    base_period = vs or period.previous()
    if base_period.tz != period.tz:
        base_period = Period(base_period.year, base_period.quarter, period.tz)
    base = period_figures(base_period, currency, events, orders)
    ago = period_figures(period.year_ago(), currency, events, orders)
    lines: list[TargetLine] = []
    for target in targets.targets if targets else []:
        if not (period.within(target.period) or target.period.within(period)):
            continue
        as_of = min(period.end, target.period.end)
        span_period = target.period
        if target.money is not None:
            cur = target.money.currency
            ytd = _to_date(span_period, as_of, cur, events, orders, targets)
            actual = ytd.revenue
            unit = cur
            goal = Money(round(target.money.amount * target_scale), cur)
            scaled = type(target)(target.label, target.period, money=goal)
        else:
            ytd = _to_date(span_period, as_of, currency, events, orders, None)
            actual = ytd.units_by_category.get(target.category, 0) if target.category else ytd.units
            unit = target.category or "units"
            scaled = type(target)(
                target.label,
                target.period,
                units=max(1, round((target.units or 0) * target_scale)),
                category=target.category,
            )
        lines.append(TargetLine(progress(scaled, actual, as_of), unit))
    known = list(shares)
    ranks = {
        market: brand_ranks(known, period.label, market)
        for market in sorted({s.market for s in known if s.period == period.label})
    }
    return PeriodReport(
        figures=figures,
        base=base,
        against=period.against(base_period),
        growth=compare(figures, base),
        year_ago=ago,
        yoy=compare(figures, ago),
        targets=lines,
        ranks=ranks,
        channels=mix(period_sales(period, currency, events, orders), currency, stores),
        network=network(stores, period) if stores else None,
        network_targets=(
            network_progress(stores, period, targets.network) if stores and targets else []
        ),
        first_stores=first_stores(stores, period),
    )


def comparisons(report: PeriodReport) -> list[tuple[str, PeriodFigures, Growth]]:
    """(name, base, growth) of each comparison a period report shows: against its base
    (``QoQ``, ``YoY`` or ``vs 2016Q4``), then year on year unless the base is that year."""
    out = []
    if report.base is not None and report.growth is not None:
        out.append((report.against, report.base, report.growth))
    if report.year_ago is not None and report.yoy is not None and report.against != "YoY":
        out.append(("YoY", report.year_ago, report.yoy))
    return out


def periods_with_orders(storage: Storage, tz: str = "UTC") -> list[Period]:
    """Every year and quarter (in zone ``tz``) in which an order of ``storage`` was paid,
    the latest first, each year before its quarters."""
    found: set[Period] = set()
    for event in storage.load_events():
        for hold in storage.holds(event.id):
            if hold.is_order and hold.paid_at is not None:
                found.add(Period.of(hold.paid_at, tz))
                found.add(Period.of(hold.paid_at, tz, whole_year=True))
    return sorted(found, key=lambda p: (-p.year, p.quarter))


def _to_date(
    span: Period,
    as_of: datetime,
    currency: str,
    events: Mapping[str, SaleEvent],
    orders: Sequence[Hold],
    targets: Targets | None,
) -> PeriodFigures:
    """Figures from ``span``'s start up to ``as_of`` (a period cut short)."""
    cut = [
        h
        for h in orders
        if h.paid_at is not None and span.start <= h.paid_at < as_of and h.is_order
    ]
    fx = targets.fx if targets else None
    return period_figures(span, currency, events, cut, fx)


# -- plain data for JSON and CSV ------------------------------------------------------------
def to_data(value: object) -> object:
    """``value`` (a report or any part of it) as JSON-ready data: money as
    ``{"amount": minor units, "currency": ...}``, exact fractions as ``"n/d"`` strings,
    times and days as ISO 8601, periods by label. No float is made on the way."""
    if isinstance(value, Money):
        return {"amount": value.amount, "currency": value.currency, "text": value.format()}
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, Period):
        return {"label": value.label, "tz": value.tz}
    if is_dataclass(value) and not isinstance(value, type):
        data = {f.name: to_data(getattr(value, f.name)) for f in fields(value)}
        for extra in ("share", "reached", "change", "growth"):
            if hasattr(type(value), extra) and isinstance(getattr(type(value), extra), property):
                data[extra] = to_data(getattr(value, extra))
        return data
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    return value


def flatten(data: object, prefix: str = "") -> list[tuple[str, str]]:
    """``to_data`` output as (path, value) rows for CSV: ``by.market.0.units,123``."""
    if isinstance(data, dict):
        out: list[tuple[str, str]] = []
        for k, v in data.items():
            out.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(data, list):
        out = []
        for i, v in enumerate(data):
            out.extend(flatten(v, f"{prefix}.{i}"))
        return out
    text = "" if data is None else str(data).lower() if isinstance(data, bool) else str(data)
    return [(prefix, text)]
