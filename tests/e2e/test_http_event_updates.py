"""``PUT /v1/admin/events/{id}`` over HTTP: a live event takes more stock, new SKUs and new
prices; what cannot change is refused with ``update-refused`` and changes nothing; with two
workers, the one that did not take the update follows it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from lampo.domain.catalog import Category, Sku
from lampo.domain.codec import event_to_dict
from lampo.domain.event import Offer, SaleEvent
from lampo.domain.money import Money
from tests.e2e._http import Server, live_event, running_server

pytestmark = pytest.mark.sqlite


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"LAMPO_EVENT_REFRESH": "0.2"}
    with running_server(tmp_path_factory.mktemp("updates"), workers=2, **env) as srv:
        yield srv


def put(server: Server, event: SaleEvent | dict[str, Any], event_id: str = "") -> Any:
    body = event if isinstance(event, dict) else event_to_dict(event)
    return server.admin("PUT", f"/v1/admin/events/{event_id or body['id']}", body)


def grown(event: SaleEvent, sku: str, allocation: int) -> SaleEvent:
    offers = {**event.offers, sku: replace(event.offers[sku], allocation=allocation)}
    return replace(event, offers=offers)


def with_tv(event: SaleEvent, allocation: int) -> SaleEvent:
    prices = {"CN": Money(299_900, "CNY"), "IN": Money(2_999_900, "INR")}
    return replace(
        event,
        categories={**event.categories, "tv": Category("tv", "TV")},
        skus={**event.skus, "tv-65": Sku("tv-65", "tv-product", "TV 65", "tv")},
        offers={**event.offers, "tv-65": Offer("tv-65", allocation, prices)},
    )


def test_more_stock_and_a_new_sku_are_on_sale_in_every_worker(two_workers: Server) -> None:
    event = live_event("upd-stock", {"phone-red": 10})
    two_workers.load(event)
    for i in range(10):
        assert two_workers.reserve(f"s-{i}", event.id, {"phone-red": 1}).status == 201
    assert two_workers.reserve("s-late", event.id, {"phone-red": 1}).status == 409

    reply = put(two_workers, with_tv(grown(event, "phone-red", 30), 12))

    assert reply.status == 200, reply.body
    assert reply.json["id"] == event.id
    # A new SKU is found at once: a worker that does not know it reads the definitions
    # before refusing. Each call is a new connection, so the calls spread over both workers.
    tv = [two_workers.reserve(f"t-{i}", event.id, {"tv-65": 1}).status for i in range(12)]
    assert tv == [201] * 12
    assert two_workers.reserve("t-late", event.id, {"tv-65": 1}).status == 409
    # A worker that refused phone-red as sold out keeps refusing it from memory until it
    # reads the new definition (0.2 s here) or its sold-out memory lapses (1 s): poll.
    deadline = time.monotonic() + 10
    for i in range(20):
        while (status := two_workers.reserve(f"r-{i}", event.id, {"phone-red": 1}).status) != 201:
            assert status == 409
            assert time.monotonic() < deadline, "a worker kept phone-red sold out"
    assert two_workers.reserve("r-late", event.id, {"phone-red": 1}).status == 409
    stock = two_workers.stock(event.id)
    assert stock["phone-red"] == {
        "sku": "phone-red",
        "allocation": 30,
        "available": 0,
        "held": 30,
        "sold": 0,
    }
    assert stock["tv-65"]["held"] == 12


def test_a_new_price_reaches_every_worker_within_the_refresh_interval(
    two_workers: Server,
) -> None:
    event = live_event("upd-price", {"phone-red": 500})
    two_workers.load(event)
    offer = event.offers["phone-red"]
    cheaper = {**offer.prices, "CN": Money(49_900, "CNY")}
    updated = replace(event, offers={"phone-red": replace(offer, prices=cheaper)})

    assert put(two_workers, updated).status == 200

    # Poll (new connections reach both workers) until 30 holds in a row carry the new
    # price; the workers re-read definitions every 0.2 s, so 10 s is far more than needed.
    deadline = time.monotonic() + 10
    streak, i = 0, 0
    while streak < 30:
        assert time.monotonic() < deadline, "a worker kept the old price"
        reply = two_workers.reserve(f"p-{i}", event.id, {"phone-red": 1})
        assert reply.status == 201, reply.body
        price = reply.json["lines"][0]["unit_price"]
        assert price in (49_900, offer.prices["CN"].amount)
        streak = streak + 1 if price == 49_900 else 0
        i += 1


def test_an_allocation_below_the_units_held_is_refused_and_changes_nothing(
    two_workers: Server,
) -> None:
    event = live_event("upd-below", {"phone-red": 10})
    two_workers.load(event)
    for i in range(4):
        assert two_workers.reserve(f"b-{i}", event.id, {"phone-red": 1}).status == 201
    before = two_workers.stock(event.id)

    reply = put(two_workers, grown(event, "phone-red", 3))

    assert reply.status == 409
    assert reply.json["reason"] == "update-refused"
    assert reply.json["field"] == "allocation"
    assert two_workers.stock(event.id) == before
    assert put(two_workers, grown(event, "phone-red", 4)).status == 200
    assert two_workers.stock(event.id)["phone-red"]["available"] == 0


def test_dropping_a_sku_is_refused(two_workers: Server) -> None:
    event = live_event("upd-drop", {"phone-red": 5, "tv-55": 5})
    two_workers.load(event)
    body = event_to_dict(replace(event, offers={"phone-red": event.offers["phone-red"]}))

    reply = put(two_workers, body)

    assert reply.status == 409
    assert reply.json["reason"] == "update-refused"
    assert reply.json["field"] == "offers"
    assert set(two_workers.stock(event.id)) == {"phone-red", "tv-55"}


def test_the_body_must_define_the_event_the_path_names(two_workers: Server) -> None:
    event = live_event("upd-path", {"phone-red": 5})
    two_workers.load(event)
    reply = put(two_workers, grown(event, "phone-red", 6), event_id="upd-other")
    assert reply.status == 400
    assert reply.json["field"] == "id"
    assert two_workers.stock(event.id)["phone-red"]["allocation"] == 5


def test_an_unknown_event_cannot_be_updated(two_workers: Server) -> None:
    reply = put(two_workers, live_event("upd-never", {"phone-red": 5}))
    assert reply.status == 404
    assert reply.json["reason"] == "unknown-event"


def test_an_update_needs_the_admin_key(two_workers: Server) -> None:
    event = live_event("upd-auth", {"phone-red": 5})
    two_workers.load(event)
    body = event_to_dict(grown(event, "phone-red", 50))
    headers = {"Idempotency-Key": "k-auth"}
    reply = two_workers.request("PUT", f"/v1/admin/events/{event.id}", body, headers)
    assert reply.status == 401
    assert two_workers.stock(event.id)["phone-red"]["allocation"] == 5


def test_a_replayed_update_answers_as_the_first_and_applies_once(two_workers: Server) -> None:
    event = live_event("upd-replay", {"phone-red": 5})
    two_workers.load(event)
    body = event_to_dict(grown(event, "phone-red", 9))
    first = two_workers.admin("PUT", f"/v1/admin/events/{event.id}", body, Idempotency_Key="u1")
    again = two_workers.admin("PUT", f"/v1/admin/events/{event.id}", body, Idempotency_Key="u1")
    assert (first.status, again.status) == (200, 200)
    assert first.json == again.json
    assert two_workers.stock(event.id)["phone-red"]["available"] == 9


def test_loading_a_changed_definition_points_at_the_update(two_workers: Server) -> None:
    event = live_event("upd-post", {"phone-red": 5})
    two_workers.load(event)
    reply = two_workers.admin(
        "POST", "/v1/admin/events", event_to_dict(grown(event, "phone-red", 8))
    )
    assert reply.status == 409
    assert reply.json["reason"] == "event-exists"
    assert "PUT /v1/admin/events/upd-post" in reply.json["detail"]
