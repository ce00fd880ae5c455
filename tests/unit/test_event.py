from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from lampo.domain.catalog import Category, Sku
from lampo.domain.errors import (
    Closed,
    InvalidRequest,
    NotOpen,
    UnknownMarket,
    UnknownSku,
    UpdateRefused,
)
from lampo.domain.event import Offer, SaleEvent, Window, plan_update
from lampo.domain.market import Channel, ChannelKind, Market
from lampo.domain.money import Money
from tests.factories import CN_OPENS, IN_OPENS, NOW, price_cn, sale_event

ONE_SECOND = timedelta(seconds=1)


def test_the_factory_event_is_valid_and_adds_up() -> None:
    event = sale_event(stock={"phone-red": 50, "tv-55": 5})
    assert event.total_allocation == 55
    assert event.opens == CN_OPENS
    assert event.closes == IN_OPENS + timedelta(hours=12)
    assert event.category_of("tv-55") == "tv"
    assert event.price("phone-red", "CN") == price_cn(0)


def test_a_window_must_close_after_it_opens() -> None:
    with pytest.raises(InvalidRequest) as caught:
        Window(CN_OPENS, CN_OPENS)
    assert caught.value.field == "window"
    with pytest.raises(InvalidRequest):
        Window(CN_OPENS, CN_OPENS - ONE_SECOND)


def test_a_window_needs_aware_datetimes() -> None:
    naive = datetime(2015, 4, 8, 10, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(InvalidRequest) as caught:
        Window(naive, CN_OPENS)
    assert caught.value.field == "opens"
    with pytest.raises(InvalidRequest) as caught:
        Window(CN_OPENS - timedelta(days=1), naive)
    assert caught.value.field == "closes"


def test_a_market_is_open_from_its_opening_second_until_just_before_it_closes() -> None:
    event = sale_event(hours=12)
    event.check_open("CN", CN_OPENS)
    event.check_open("CN", CN_OPENS + timedelta(hours=12) - ONE_SECOND)


def test_before_the_window_the_sale_is_not_open_and_says_when_it_opens() -> None:
    event = sale_event()
    with pytest.raises(NotOpen) as caught:
        event.check_open("IN", CN_OPENS)  # open in China, not yet in India
    assert caught.value.detail() == {"market": "IN", "opens_at": IN_OPENS.isoformat()}
    assert caught.value.reason == "not-open"


def test_at_the_closing_instant_the_sale_is_closed_and_says_since_when() -> None:
    event = sale_event(hours=12)
    closes = CN_OPENS + timedelta(hours=12)
    with pytest.raises(Closed) as caught:
        event.check_open("CN", closes)
    assert caught.value.detail() == {"market": "CN", "closed_at": closes.isoformat()}
    assert caught.value.reason == "closed"


def test_a_market_without_a_window_is_unknown() -> None:
    with pytest.raises(UnknownMarket) as caught:
        sale_event().check_open("MY", NOW)
    assert caught.value.detail() == {"event": "fest", "market": "MY"}


def test_an_unknown_sku_is_refused_with_its_name() -> None:
    with pytest.raises(UnknownSku) as caught:
        sale_event().price("phone-gold", "CN")
    assert caught.value.sku == "phone-gold"


def test_prices_must_be_in_the_markets_currency() -> None:
    event = sale_event(stock={"phone-red": 1})
    wrong = Offer("phone-red", 1, {"CN": Money(79_900, "INR")})
    with pytest.raises(InvalidRequest) as caught:
        replace(event, offers={"phone-red": wrong})
    assert caught.value.field == "prices"
    assert "CNY" in caught.value.problem


def test_a_price_needs_an_fx_rate_to_the_reporting_currency() -> None:
    event = sale_event(stock={"phone-red": 1})
    us = Market("US", "United States", "USD", "America/New_York")
    offer = Offer("phone-red", 1, {"US": Money(9_900, "USD")})
    with pytest.raises(InvalidRequest) as caught:
        replace(event, markets={**event.markets, "US": us}, offers={"phone-red": offer})
    assert caught.value.field == "fx"


def test_a_window_for_an_undeclared_market_is_refused() -> None:
    event = sale_event()
    with pytest.raises(InvalidRequest) as caught:
        replace(event, windows={**event.windows, "MY": Window(CN_OPENS, NOW)})
    assert caught.value.field == "windows"


def test_an_offer_must_name_a_sku_of_the_catalog() -> None:
    event = sale_event(stock={"phone-red": 1})
    stray = Offer("phone-gold", 1, {"CN": price_cn(0)})
    with pytest.raises(InvalidRequest) as caught:
        replace(event, offers={**event.offers, "phone-gold": stray})
    assert caught.value.field == "offers"


def test_a_sku_must_be_in_a_declared_category() -> None:
    event = sale_event(stock={"phone-red": 1})
    with pytest.raises(InvalidRequest) as caught:
        replace(event, skus={"phone-red": Sku("phone-red", "p", "Red", "watch")})
    assert caught.value.field == "skus"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"allocation": -1}, "allocation"),
        ({"limit_per_customer": 0}, "limit_per_customer"),
        ({"prices": {"CN": Money(0, "CNY")}}, "price"),
        ({"sku": "phone red"}, "sku"),
    ],
)
def test_an_offer_refuses_bad_numbers(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"sku": "phone-red", "allocation": 1, "prices": {"CN": price_cn(0)}}
    with pytest.raises(InvalidRequest) as caught:
        Offer(**{**args, **kwargs})  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hold_seconds": 0}, "hold_seconds"),
        ({"limit_per_customer": 0}, "limit_per_customer"),
        ({"id": ""}, "event"),
    ],
)
def test_an_event_refuses_bad_settings(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        replace(sale_event(), **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_a_market_refuses_an_unknown_time_zone_or_currency() -> None:
    with pytest.raises(InvalidRequest) as caught:
        Market("CN", "China", "CNY", "Asia/Peking-ish")
    assert caught.value.field == "tz"
    with pytest.raises(InvalidRequest) as caught:
        Market("CN", "China", "RMB", "Asia/Shanghai")
    assert caught.value.field == "currency"


def test_a_market_shows_times_on_its_own_wall_clock() -> None:
    local = sale_event().markets["IN"].local(IN_OPENS)
    assert (local.hour, local.minute) == (10, 0)


def test_a_channel_reads_its_kind_from_text_and_refuses_an_unknown_one() -> None:
    assert Channel("marketplace", "flipkart").kind is ChannelKind.MARKETPLACE  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest) as caught:
        Channel("telepathy")  # type: ignore[arg-type]
    assert caught.value.field == "channel"


def test_a_store_channel_needs_a_store_id() -> None:
    with pytest.raises(InvalidRequest):
        Channel(ChannelKind.STORE)


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "tab\there", 7])
def test_identifiers_must_be_short_printable_words(bad: object) -> None:
    with pytest.raises(InvalidRequest):
        Category(bad, "name")  # type: ignore[arg-type]


# -- updating a live event ---------------------------------------------------------------


def _without_india(event: SaleEvent) -> SaleEvent:
    offers = {k: replace(o, prices={"CN": o.prices["CN"]}) for k, o in event.offers.items()}
    markets = {"CN": event.markets["CN"]}
    return replace(event, markets=markets, windows={"CN": event.windows["CN"]}, offers=offers)


def _offers(event: SaleEvent, **changes: object) -> dict[str, Offer]:
    return {k: replace(o, **changes) if k == "tv-55" else o for k, o in event.offers.items()}


def test_an_update_says_what_it_does_to_stock() -> None:
    old = sale_event(stock={"phone-red": 10, "tv-55": 5})
    new = sale_event(stock={"phone-red": 7, "tv-55": 5, "tv-65": 3})
    new = replace(new, offers={**new.offers, "tv-55": old.offers["tv-55"]})
    change = plan_update(old, new)
    assert change.deltas == {"phone-red": -3}
    assert change.added == {"tv-65": 3}


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("markets", lambda e: _without_india(e)),
        ("windows", lambda e: replace(e, windows={"CN": e.windows["CN"]})),
        (
            "skus",
            lambda e: replace(
                e, skus={**e.skus, "tv-55": replace(e.skus["tv-55"], category="phone")}
            ),
        ),
        ("fx", lambda e: replace(e, fx=replace(e.fx, reporting="INR", rates={"CNY": 10}))),
        ("limit_per_customer", lambda e: replace(e, limit_per_customer=2)),
        ("limit_per_customer", lambda e: replace(e, offers=_offers(e, limit_per_customer=1))),
        ("offers", lambda e: replace(e, offers={"phone-red": e.offers["phone-red"]})),
    ],
)
def test_an_update_may_not_change_what_holds_and_counters_rest_on(
    field: str, change: object
) -> None:
    old = sale_event(stock={"phone-red": 10, "tv-55": 5})
    with pytest.raises(UpdateRefused) as refused:
        plan_update(old, change(old))  # type: ignore[operator]
    assert refused.value.field == field


def test_an_update_may_change_or_drop_an_existing_limit_and_move_windows() -> None:
    old = sale_event(stock={"phone-red": 10, "tv-55": 5}, sku_limit=2, event_limit=3)
    later = {c: Window(w.opens, w.closes + timedelta(hours=1)) for c, w in old.windows.items()}
    new = replace(old, limit_per_customer=None, offers=_offers(old, limit_per_customer=5))
    change = plan_update(old, replace(new, windows=later, hold_seconds=60, name="Extended"))
    assert (change.added, change.deltas) == ({}, {})
