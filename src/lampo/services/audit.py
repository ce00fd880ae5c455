"""The audit: the guarantees checked from the holds themselves, independently of the counters.

``audit(storage, event)`` reads every hold and order of the event and recomputes what the
stock table and the live totals should say:

- **oversold**: units held + sold above a SKU's allocation (by the stock table or by the
  holds, whichever is worse);
- **limit violations**: customers whose active units (held + paid) pass a per-SKU limit or
  the per-event limit;
- **leaked**: units by which a SKU breaks conservation (allocation = available + held +
  sold), or by which the stock table's held / sold disagree with the holds;
- **totals**: rows of the live totals that differ from ``recount(holds)``.

An event whose offers reserve stock pools (docs/new-retail.md) is checked per pool as well:
each pool's row (``Reads.pools``) against its allocation (``SaleEvent.stock_rows``) and the
units its holds' lines took from it, reported as ``"<sku> (<pool>)"`` (``shared`` for the
shared pool). A reader that does not know the pools (``pools()`` empty: a server's
snapshot) is checked per SKU only.

It is meant for quiet points (no request in flight); ``Audit.ok`` is true when all are zero.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lampo.domain.channels import pool_label, split_stock_key
from lampo.domain.event import SaleEvent
from lampo.domain.holds import HoldState, StockLevel
from lampo.domain.totals import LineKey, LineTotal, OrderKey, OrderTotal, recount
from lampo.storage.port import Reads


@dataclass(frozen=True, slots=True)
class LimitViolation:
    customer: str
    limit: int
    units: int
    sku: str | None = None  # None: the per-event limit


@dataclass(frozen=True, slots=True)
class TotalsDifference:
    """A row where the live totals and the recount differ (a missing row reads as zeros)."""

    key: LineKey | OrderKey
    live: LineTotal | OrderTotal
    recount: LineTotal | OrderTotal


@dataclass(frozen=True, slots=True)
class Audit:
    event: str
    holds: int
    oversold: dict[str, int] = field(default_factory=dict)  # sku -> units over allocation
    limit_violations: list[LimitViolation] = field(default_factory=list)
    leaked: dict[str, int] = field(default_factory=dict)  # sku -> units out of balance
    totals: list[TotalsDifference] = field(default_factory=list)

    @property
    def oversold_units(self) -> int:
        return sum(self.oversold.values())

    @property
    def leaked_units(self) -> int:
        return sum(self.leaked.values())

    @property
    def ok(self) -> bool:
        return not (self.oversold or self.limit_violations or self.leaked or self.totals)

    def summary(self) -> str:
        """One line: ``oversold 0 · limit violations 0 · leaked 0 · totals vs recount: equal``."""
        totals = "equal" if not self.totals else f"{len(self.totals)} rows differ"
        return (
            f"oversold {self.oversold_units} · limit violations {len(self.limit_violations)}"
            f" · leaked {self.leaked_units} · totals vs recount: {totals}"
        )


def audit(storage: Reads, event: SaleEvent) -> Audit:
    """Check ``event`` in ``storage`` against its holds (see the module docstring)."""
    holds = list(storage.holds(event.id))
    held: Counter[str] = Counter()
    sold: Counter[str] = Counter()
    per_sku: Counter[tuple[str, str]] = Counter()
    per_event: Counter[str] = Counter()
    pool_held: Counter[str] = Counter()  # by stock key
    pool_sold: Counter[str] = Counter()
    for hold in holds:
        if hold.state not in (HoldState.HELD, HoldState.PAID):
            continue
        into = held if hold.state is HoldState.HELD else sold
        by_pool = pool_held if hold.state is HoldState.HELD else pool_sold
        for line in hold.lines:
            into[line.sku] += line.quantity
            by_pool[line.stock] += line.quantity
            per_sku[(hold.customer, line.sku)] += line.quantity
        per_event[hold.customer] += hold.units

    stock = storage.stock(event.id)
    oversold: dict[str, int] = {}
    leaked: dict[str, int] = {}
    for sku in sorted(set(event.offers) | set(stock) | set(held) | set(sold)):
        offer = event.offers.get(sku)
        allocation = offer.allocation if offer else 0
        level = stock.get(sku)
        over, leak = _balance(allocation, level, held[sku], sold[sku])
        if over:
            oversold[sku] = over
        if leak:
            leaked[sku] = leak

    pools = storage.pools(event.id) if any(o.pools for o in event.offers.values()) else {}
    if pools:
        rows = event.stock_rows()
        for row in sorted(rows.keys() | pools.keys() | pool_held.keys() | pool_sold.keys()):
            sku, pool = split_stock_key(row)
            label = f"{sku} ({pool_label(pool)})"
            over, leak = _balance(rows.get(row, 0), pools.get(row), pool_held[row], pool_sold[row])
            if over:
                oversold[label] = over
            if leak:
                leaked[label] = leak

    violations = []
    for (customer, sku), units in sorted(per_sku.items()):
        limit = event.offers[sku].limit_per_customer if sku in event.offers else None
        if limit is not None and units > limit:
            violations.append(LimitViolation(customer, limit, units, sku))
    if event.limit_per_customer is not None:
        for customer, units in sorted(per_event.items()):
            if units > event.limit_per_customer:
                violations.append(LimitViolation(customer, event.limit_per_customer, units))

    live = storage.totals(event.id).normalized()
    recounted = recount(holds).normalized()
    differences: list[TotalsDifference] = []
    for key in sorted(set(live.lines) | set(recounted.lines)):
        _differ(differences, key, live.lines.get(key), recounted.lines.get(key))
    for okey in sorted(set(live.orders) | set(recounted.orders)):
        _differ(differences, okey, live.orders.get(okey), recounted.orders.get(okey))

    return Audit(event.id, len(holds), oversold, violations, leaked, differences)


def _balance(allocation: int, level: StockLevel | None, held: int, sold: int) -> tuple[int, int]:
    """(units oversold, units leaked) of one stock row (a SKU, or one pool of it) against
    its ``allocation`` and the units its holds say are ``held`` and ``sold``."""
    s_avail, s_held, s_sold = (level.available, level.held, level.sold) if level else (0, 0, 0)
    s_alloc = level.allocation if level else 0
    over = max(s_held + s_sold - allocation, held + sold - allocation, 0)
    leak = (
        abs(allocation - s_alloc)
        + abs(s_alloc - (s_avail + s_held + s_sold))
        + abs(s_held - held)
        + abs(s_sold - sold)
        + (-min(s_avail, s_held, s_sold, 0))
    )
    return over, leak


def _differ(
    out: list[TotalsDifference],
    key: LineKey | OrderKey,
    live: LineTotal | OrderTotal | None,
    recounted: LineTotal | OrderTotal | None,
) -> None:
    zero = LineTotal(0, 0) if isinstance(key, LineKey) else OrderTotal(0, 0)
    a, b = live or zero, recounted or zero
    if a != b:
        out.append(TotalsDifference(key, a, b))
