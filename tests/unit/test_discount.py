"""List prices and the discount given: list price minus flash price per unit, summed
exactly per currency; never negative, because a flash price above list is refused when the
event is built (from Python, JSON, an upload or a scenario file)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampo.domain.bounds import MAX_MINOR_UNITS
from lampo.domain.codec import event_from_dict, event_to_dict, event_to_json
from lampo.domain.discount import discounts
from lampo.domain.errors import InvalidRequest
from lampo.domain.event import Offer, SaleEvent
from lampo.domain.holds import Hold, HoldLine, HoldState
from lampo.domain.market import Channel
from lampo.domain.money import Money
from lampo.domain.totals import recount
from lampo.sim.definition import parse
from lampo.sim.scenario import ScenarioError, load
from tests.factories import NOW, sale_event

FLASH = Path(__file__).resolve().parents[2] / "src" / "lampo" / "scenarios" / "flash-drop.toml"
SKUS = ("phone-black", "phone-red", "tv-55")
BASE = sale_event("fest", dict.fromkeys(SKUS, 1_000))


def with_list_prices(event: SaleEvent, extra: dict[tuple[str, str], int | None]) -> SaleEvent:
    """``event`` with a list price ``flash + extra`` minor units per (SKU, market) given
    (``None`` or absent: no list price there)."""
    offers = {}
    for sku, offer in event.offers.items():
        listed = {
            m: Money(p.amount + add, p.currency)
            for m, p in offer.prices.items()
            if (add := extra.get((sku, m))) is not None
        }
        offers[sku] = replace(offer, list_prices=listed)
    return replace(event, offers=offers)


def paid(n: int, sku: str, market: str, qty: int, event: SaleEvent, refunded: bool) -> Hold:
    price = event.price(sku, market)
    return Hold(
        id=f"h{n:04d}",
        event=event.id,
        customer=f"c{n}",
        market=market,
        channel=Channel(),
        lines=(HoldLine(sku, qty, price.amount),),
        currency=price.currency,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=10),
        state=HoldState.REFUNDED if refunded else HoldState.PAID,
        payment_id=f"p{n}",
        paid_at=NOW,
        ended_at=NOW,
        refunded_at=NOW + timedelta(minutes=1) if refunded else None,
    )


extras = st.dictionaries(
    st.tuples(st.sampled_from(SKUS), st.sampled_from(("CN", "IN"))),
    st.none() | st.integers(0, 10**9),
)
sales = st.lists(
    st.tuples(
        st.sampled_from(SKUS), st.sampled_from(("CN", "IN")), st.integers(1, 50), st.booleans()
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(extras, sales)
def test_the_discount_is_list_minus_flash_per_unit_summed_exactly(
    extra: dict[tuple[str, str], int | None], orders: list[tuple[str, str, int, bool]]
) -> None:
    event = with_list_prices(BASE, extra)
    holds = [paid(i, s, m, q, event, r) for i, (s, m, q, r) in enumerate(orders)]
    report = discounts(event, recount(holds))

    expected: Counter[str] = Counter()
    revenue: Counter[str] = Counter()
    per_sku: dict[str, Counter[str]] = {}
    for h in holds:
        if h.state is not HoldState.PAID:
            continue  # a refunded order gave no discount
        line = h.lines[0]
        listed = event.offers[line.sku].list_prices.get(h.market)
        off = 0 if listed is None else (listed.amount - line.unit_price) * line.quantity
        expected[h.currency] += off
        revenue[h.currency] += line.amount
        per_sku.setdefault(line.sku, Counter())[h.currency] += off

    total = report.total
    assert dict(total.amounts) == {c: a for c, a in sorted(expected.items()) if a}
    assert all(a >= 0 for d in [total, *report.per_sku] for a in d.amounts.values())
    assert total.money == event.fx.total(dict(expected))
    assert total.money.amount >= 0
    # list value = revenue + discount, per currency
    listed_sum = {c: revenue[c] + expected[c] for c in revenue if revenue[c] + expected[c]}
    assert dict(total.list_amounts) == listed_sum
    assert total.list_money == event.fx.total(listed_sum)
    if total.list_money.amount:
        assert total.percent == Fraction(total.money.amount, total.list_money.amount)
    else:
        assert total.percent == 0
    assert 0 <= total.percent <= 1
    # the SKUs' rows add up to the event's, per currency, exactly
    summed: Counter[str] = Counter()
    for d in report.per_sku:
        summed.update(d.amounts)
        assert dict(d.amounts) == {c: a for c, a in sorted(per_sku[d.key].items()) if a}
    assert {c: a for c, a in summed.items() if a} == dict(total.amounts)
    assert total.units == sum(d.units for d in report.per_sku)


def test_no_list_price_means_no_discount() -> None:
    holds = [paid(i, s, "CN", 2, BASE, False) for i, s in enumerate(SKUS)]
    report = discounts(BASE, recount(holds))
    assert report.total.amounts == {}
    assert report.total.money == Money(0, "CNY")
    assert report.total.percent == 0
    revenue = recount(holds).amounts_by_currency({"CN": "CNY"})
    assert report.total.list_money == BASE.fx.total(revenue)


def test_the_rows_convert_each_currency_once_through_the_fx_table() -> None:
    # 100.00 CNY off a phone in China, 1,000.00 INR (100.00 CNY at 1/10) in India
    event = with_list_prices(BASE, {("phone-red", "CN"): 10_000, ("phone-red", "IN"): 100_000})
    holds = [
        paid(1, "phone-red", "CN", 3, event, False),
        paid(2, "phone-red", "IN", 2, event, False),
        paid(3, "phone-red", "IN", 5, event, True),
    ]
    total = discounts(event, recount(holds)).total
    assert dict(total.amounts) == {"CNY": 30_000, "INR": 200_000}
    assert total.money == Money(50_000, "CNY")
    assert total.units == 5


@given(st.sampled_from(SKUS), st.sampled_from(("CN", "IN")), st.integers(1, 10**6))
def test_a_flash_price_above_list_is_refused_with_its_reason(
    sku: str, market: str, below: int
) -> None:
    flash = BASE.price(sku, market)
    below = min(below, flash.amount - 1)  # a list price in bounds, below the flash price
    with pytest.raises(InvalidRequest) as caught:
        Offer(sku, 10, {market: flash}, None, {market: Money(flash.amount - below, flash.currency)})
    assert caught.value.field == "list_price"
    assert "above the list price" in str(caught.value)
    assert sku in str(caught.value)
    assert market in str(caught.value)


@pytest.mark.parametrize(
    ("listed", "problem"),
    [
        (Money(0, "CNY"), "from 1 to"),
        (Money(MAX_MINOR_UNITS + 1, "CNY"), "MAX_MINOR_UNITS"),
        (Money(100_000, "INR"), "list price in INR, price in CNY"),
    ],
)
def test_a_list_price_is_bounded_and_in_the_market_currency(listed: Money, problem: str) -> None:
    with pytest.raises(InvalidRequest, match=problem):
        Offer("phone-red", 10, {"CN": Money(50, "CNY")}, None, {"CN": listed})


def test_a_list_price_needs_a_price_in_its_market() -> None:
    with pytest.raises(InvalidRequest, match="where it has no price"):
        Offer("phone-red", 10, {"CN": Money(50, "CNY")}, None, {"IN": Money(500, "INR")})


def test_list_prices_survive_the_codec_and_old_definitions_read_the_same() -> None:
    event = with_list_prices(BASE, {("phone-red", "CN"): 10_000, ("tv-55", "IN"): 0})
    assert event_from_dict(json.loads(event_to_json(event))) == event
    # an event without list prices is written as before they existed
    assert all("list_prices" not in o for o in event_to_dict(BASE)["offers"].values())
    assert event_from_dict(event_to_dict(BASE)) == BASE


def test_an_uploaded_definition_with_a_flash_price_above_list_is_refused() -> None:
    data = event_to_dict(BASE)
    data["offers"]["phone-red"]["list_prices"] = {"CN": [100, "CNY"]}
    with pytest.raises(InvalidRequest, match="above the list price"):
        parse(json.dumps(data), "json", "upload")
    data["offers"]["phone-red"]["list_prices"] = {"CN": ["100", "CNY"]}
    with pytest.raises(InvalidRequest, match="whole number"):
        parse(json.dumps(data), "json", "upload")


def scenario_with(tmp_path: Path, list_prices: str) -> Path:
    text = FLASH.read_text(encoding="utf-8")
    old = 'prices = { IN = "5999.00" }\n'
    assert old in text
    path = tmp_path / "listed.toml"
    path.write_text(text.replace(old, old + list_prices + "\n"), encoding="utf-8")
    return path


def test_a_scenario_file_states_list_prices_per_market(tmp_path: Path) -> None:
    event = load(scenario_with(tmp_path, 'list_prices = { IN = "6999.00" }')).event
    assert event.offers["redmi-1s"].list_prices == {"IN": Money(699_900, "INR")}


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ('list_prices = { IN = "5000.00" }', "skus[0].list_prices", "above the list price"),
        ("list_prices = { IN = 6999.00 }", "skus[0].list_prices.IN", "float"),
        ('list_prices = { XX = "6999.00" }', "skus[0].list_prices.XX", "no price in that"),
        ('list_prices = { IN = "0.00" }', "skus[0].list_prices.IN", "positive"),
        ('list_prices = { IN = "200000000.01" }', "skus[0].list_prices.IN", "at most"),
    ],
)
def test_a_bad_list_price_in_a_scenario_is_refused_naming_the_field(
    tmp_path: Path, line: str, field: str, problem: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        load(scenario_with(tmp_path, line))
    assert caught.value.field == field
    assert problem in caught.value.problem


def test_the_shipped_fan_festival_states_china_list_prices_at_or_above_flash() -> None:
    event = load("mi-fan-fest-2015").event
    listed = {s: o.list_prices for s, o in event.offers.items() if o.list_prices}
    assert set(listed) == set(event.offers)
    for sku, prices in listed.items():
        assert set(prices) == {"CN"}
        assert prices["CN"].amount > event.price(sku, "CN").amount
