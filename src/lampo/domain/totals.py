"""Live totals of an event and the recount that proves them (guarantee 6: report truth).

Totals are kept at the finest grain the reports need, so every roll-up (by SKU, category,
market, channel, referral) is a sum over them. ``lines`` is per SKU and sale dimension;
``orders`` counts orders (a multi-line order once) per sale dimension. Amounts are minor
units of the market's currency. Refunded orders are taken out, so totals are net.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lampo.domain.holds import Hold, HoldState

#: (market, channel kind, channel name, referral)
OrderKey = tuple[str, str, str, str]
#: (sku, market, channel kind, channel name, referral)
LineKey = tuple[str, str, str, str, str]


def order_key(hold: Hold) -> OrderKey:
    ch = hold.channel
    return (hold.market, ch.kind.value, ch.name, ch.referral)


@dataclass(slots=True)
class Totals:
    """``lines[k] = [units, amount]``; ``orders[k] = [orders, amount]`` (net of refunds)."""

    lines: dict[LineKey, list[int]] = field(default_factory=dict)
    orders: dict[OrderKey, list[int]] = field(default_factory=dict)

    def add(self, hold: Hold, sign: int) -> None:
        """Count ``hold`` in (``sign=1``, when paid) or out (``sign=-1``, when refunded)."""
        ok = order_key(hold)
        row = self.orders.setdefault(ok, [0, 0])
        row[0] += sign
        row[1] += sign * hold.amount.amount
        for line in hold.lines:
            lrow = self.lines.setdefault((line.sku, *ok), [0, 0])
            lrow[0] += sign * line.quantity
            lrow[1] += sign * line.amount

    def normalized(self) -> Totals:
        """Without all-zero rows, for comparison."""
        return Totals(
            {k: list(v) for k, v in self.lines.items() if any(v)},
            {k: list(v) for k, v in self.orders.items() if any(v)},
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Totals):
            return NotImplemented
        a, b = self.normalized(), other.normalized()
        return a.lines == b.lines and a.orders == b.orders

    @property
    def units(self) -> int:
        return sum(v[0] for v in self.lines.values())

    @property
    def order_count(self) -> int:
        return sum(v[0] for v in self.orders.values())

    def amounts_by_currency(self, currency_of_market: dict[str, str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for (market, *_), (_, amount) in self.orders.items():
            cur = currency_of_market[market]
            out[cur] = out.get(cur, 0) + amount
        return out


def recount(holds: Iterable[Hold]) -> Totals:
    """The totals, recomputed from the orders themselves."""
    totals = Totals()
    for hold in holds:
        if hold.state is HoldState.PAID:
            totals.add(hold, 1)
    return totals
