"""Tills, a partner's orders and online buyers on one hot SKU at once, on every backend:
exactly the stock is sold, no more, and the live totals split exactly by channel.

Threads start together on a ``Barrier``; nothing waits by sleeping.
"""

from __future__ import annotations

from collections import Counter

from lampo.domain.holds import Hold
from lampo.services.partners import Intake, OrderLine, PartnerOrder
from lampo.services.sales import Sales
from lampo.services.stores import StoreNetwork, Till, TillSale
from lampo.storage import Storage
from tests.contract.conftest import assert_consistent
from tests.contract.test_concurrency import together
from tests.factories import sale_event

STOCK = 60
CALLERS = 150  # a third each: till sales, partner orders, online buyers (reserve, pay)
REGISTRY = "id,name,kind,market,city,opened,closed,lat,lon\n" + "".join(
    f"s{n},Mi Home {n},own,CN,Beijing,2014-01-01,,,\n" for n in range(3)
)


def test_tills_a_partner_and_online_buyers_sell_exactly_the_stock(
    store: Storage, sales: Sales
) -> None:
    event = sale_event(stock={"phone-red": STOCK, "tv-55": 5})
    sales.open(event)
    network = StoreNetwork(store, sales.clock)
    network.import_csv(REGISTRY, 0)
    till, intake = Till(sales, network), Intake(sales)

    def one(i: int) -> object:
        if i % 3 == 0:
            return till.sell(f"s{i % 9 // 3}", TillSale(event.id, f"r{i}", {"phone-red": 1}))
        if i % 3 == 1:
            order = PartnerOrder(event.id, f"jd-{i}", "CN", (OrderLine("phone-red", 1),), f"u{i}")
            [line] = intake.take("jd", order).lines
            return line["accepted"] or line["refusal"]["reason"]
        hold = sales.reserve(event.id, f"buyer{i}", "CN", {"phone-red": 1}, key=f"k{i}")
        return sales.pay(hold.id, f"psp-{i}")

    results = together(CALLERS, one)
    won = Counter(
        ("store", "marketplace", "online")[i % 3]
        for i, r in enumerate(results)
        if isinstance(r, Hold) or r is True
    )
    refused = Counter(
        getattr(r, "reason", r) for r in results if not (isinstance(r, Hold) or r is True)
    )
    assert sum(won.values()) == STOCK, (won, refused)
    assert refused == {"sold-out": CALLERS - STOCK}
    level = store.stock(event.id)["phone-red"]
    assert (level.available, level.held, level.sold) == (0, 0, STOCK)
    totals = store.totals(event.id)
    by_kind: Counter[str] = Counter()
    for key, line in totals.lines.items():
        by_kind[key.channel_kind] += line.units
    assert by_kind == won
    assert_consistent(store, event)
