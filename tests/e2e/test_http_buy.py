"""The buy path over real HTTP against ``lampo serve`` on SQLite: reserve, pay, release,
refund, the payment webhook, idempotent replays, and a burst of concurrent buyers."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from tests.e2e._http import Reply, Server, live_event

pytestmark = pytest.mark.sqlite


@pytest.fixture(scope="module")
def event(server: Server) -> str:
    server.load(live_event("http-buy", {"phone-red": 50, "phone-black": 500, "tv-55": 5}))
    return "http-buy"


def test_a_buyer_reserves_pays_and_the_order_shows_in_stock_and_report(
    server: Server, event: str
) -> None:
    before = server.stock(event)["tv-55"]
    held = server.reserve("alice", event, {"tv-55": 1}, channel={"referral": "weibo"})
    assert held.status == 201, held.body
    hold = held.json
    assert hold["state"] == "held"
    assert hold["customer"] == "alice"
    assert hold["amount"] == {"amount": 279_900, "currency": "CNY"}
    assert held.headers["location"] == f"/v1/holds/{hold['id']}"
    assert server.stock(event)["tv-55"]["held"] == before["held"] + 1

    paid = server.pay("alice", hold["id"], body={"amount": {"amount": 279_900, "currency": "CNY"}})
    assert paid.status == 200, paid.body
    assert paid.json["state"] == "paid"
    after = server.stock(event)["tv-55"]
    assert after["sold"] == before["sold"] + 1
    assert after["available"] == before["available"] - 1

    read = server.request("GET", f"/v1/holds/{hold['id']}", headers=server.buyer("alice"))
    assert read.status == 200
    assert read.json["payment_id"] == paid.json["payment_id"]

    report = server.request("GET", f"/v1/events/{event}/report")
    assert report.status == 200
    assert report.json["orders"] >= 1
    assert report.json["amounts"]["CNY"] >= 279_900


def test_a_released_hold_returns_its_stock_at_once(server: Server, event: str) -> None:
    hold = server.reserve("bruno", event, {"phone-black": 2}).json
    before = server.stock(event)["phone-black"]
    headers = {**server.buyer("bruno"), "Idempotency-Key": "release-1"}
    released = server.request("POST", f"/v1/holds/{hold['id']}/release", headers=headers)
    assert released.status == 200
    assert released.json["state"] == "released"
    after = server.stock(event)["phone-black"]
    assert after["available"] == before["available"] + 2
    assert after["held"] == before["held"] - 2


def test_a_replayed_reserve_returns_the_first_response_and_holds_once(
    server: Server, event: str
) -> None:
    before = server.stock(event)["phone-black"]
    first = server.reserve("carla", event, {"phone-black": 1}, key="carla-1")
    again = server.reserve("carla", event, {"phone-black": 1}, key="carla-1")
    assert first.status == again.status == 201
    assert again.body == first.body
    assert again.headers.get("idempotent-replayed") == "true"
    assert server.stock(event)["phone-black"]["held"] == before["held"] + 1


def test_the_same_key_with_another_body_is_an_idempotency_conflict(
    server: Server, event: str
) -> None:
    assert server.reserve("dario", event, {"phone-black": 1}, key="dario-1").status == 201
    other = server.reserve("dario", event, {"phone-black": 2}, key="dario-1")
    assert other.status == 422
    assert other.type == "/problems/idempotency-conflict"


def test_one_buyers_key_is_not_another_buyers(server: Server, event: str) -> None:
    first = server.reserve("elena", event, {"phone-black": 1}, key="shared-key")
    second = server.reserve("fabio", event, {"phone-black": 1}, key="shared-key")
    assert first.status == second.status == 201
    assert first.json["id"] != second.json["id"]
    assert second.json["customer"] == "fabio"


def test_a_retried_refusal_is_evaluated_again_not_replayed(server: Server, event: str) -> None:
    first = server.reserve("gino", event, {"phone-black": 1}, key="gino-1", market="XX")
    again = server.reserve("gino", event, {"phone-black": 1}, key="gino-1", market="XX")
    assert first.status == 422
    assert again.body == first.body  # the same refusal, made again: it changed nothing
    assert "idempotent-replayed" not in again.headers


def test_a_replayed_payment_returns_the_first_order_and_sells_once(
    server: Server, event: str
) -> None:
    hold = server.reserve("hana", event, {"phone-black": 1}).json
    before = server.stock(event)["phone-black"]["sold"]
    first = server.pay("hana", hold["id"], key="pay-hana")
    again = server.pay("hana", hold["id"], key="pay-hana")
    assert first.status == again.status == 200
    assert again.body == first.body
    assert server.stock(event)["phone-black"]["sold"] == before + 1
    other = server.pay("hana", hold["id"], key="pay-hana-2")
    assert other.status == 409
    assert other.type == "/problems/already-paid"


def test_a_buyer_cannot_see_or_pay_another_buyers_hold(server: Server, event: str) -> None:
    hold = server.reserve("ivo", event, {"phone-black": 1}).json
    seen = server.request("GET", f"/v1/holds/{hold['id']}", headers=server.buyer("mallory"))
    assert seen.status == 404
    assert seen.type == "/problems/unknown-hold"
    paid = server.pay("mallory", hold["id"])
    assert paid.status == 404
    read = server.admin("GET", f"/v1/holds/{hold['id']}")
    assert read.json["state"] == "held", "the hold is untouched"


def test_a_signed_webhook_pays_the_hold_and_a_redelivery_changes_nothing(
    server: Server, event: str
) -> None:
    hold = server.reserve("jan", event, {"phone-red": 1}).json
    payload = {
        "type": "payment.succeeded",
        "hold_id": hold["id"],
        "payment_id": "psp-jan-1",
        "amount": hold["amount"],
    }
    before = server.stock(event)["phone-red"]["sold"]
    first = server.webhook(payload)
    again = server.webhook(payload)
    assert first.status == again.status == 200
    assert first.json["state"] == "paid"
    assert again.json["payment_id"] == "psp-jan-1"
    assert server.stock(event)["phone-red"]["sold"] == before + 1


def assert_refused_as_used(reply: Reply, payment_id: str, first_hold: str) -> None:
    """422 problem+json ``idempotency-conflict`` naming the payment id and nothing of the
    hold it paid (which may be another buyer's)."""
    assert reply.status == 422, reply.body
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.type == "/problems/idempotency-conflict"
    assert reply.json["key"] == payment_id
    assert first_hold not in reply.body.decode()


def test_a_payment_id_reused_on_another_hold_is_refused_and_changes_nothing(
    server: Server, event: str
) -> None:
    first = server.reserve("lena", event, {"phone-black": 1}).json
    other = server.reserve("mario", event, {"phone-black": 2}).json
    assert server.pay("lena", first["id"], key="psp-lena-1").status == 200
    before = server.stock(event)
    for _ in range(2):  # and again: still refused (the replay, or storage again)
        assert_refused_as_used(
            server.pay("mario", other["id"], key="psp-lena-1"), "psp-lena-1", first["id"]
        )
    assert server.stock(event) == before
    assert server.admin("GET", f"/v1/holds/{other['id']}").json["state"] == "held"
    assert server.pay("lena", first["id"], key="psp-lena-1").json["state"] == "paid"


def test_a_webhook_reusing_a_payment_id_on_another_hold_is_refused_and_changes_nothing(
    server: Server, event: str
) -> None:
    first = server.reserve("nora", event, {"phone-red": 1}).json
    other = server.reserve("oscar", event, {"phone-red": 1}).json

    def webhook(hold: dict[str, Any]) -> Reply:
        payload = {
            "type": "payment.succeeded",
            "hold_id": hold["id"],
            "payment_id": "psp-nora-1",
            "amount": hold["amount"],
        }
        return server.webhook(payload)

    assert webhook(first).status == 200
    before = server.stock(event)
    assert_refused_as_used(webhook(other), "psp-nora-1", first["id"])
    assert server.stock(event) == before
    assert server.admin("GET", f"/v1/holds/{other['id']}").json["state"] == "held"
    assert webhook(first).json["state"] == "paid"  # the redelivery of the first: as it was


def test_webhooks_with_a_bad_or_stale_signature_are_refused_and_pay_nothing(
    server: Server, event: str
) -> None:
    hold = server.reserve("kai", event, {"phone-red": 1}).json
    payload = {
        "type": "payment.succeeded",
        "hold_id": hold["id"],
        "payment_id": "psp-kai",
        "amount": hold["amount"],
    }
    raw = b'{"type": "payment.succeeded"}'
    missing = server.request(
        "POST", "/v1/webhooks/payments", raw=raw, headers={"Content-Type": "application/json"}
    )
    assert missing.status == 401
    assert missing.type == "/problems/invalid-signature"
    forged = server.request(
        "POST",
        "/v1/webhooks/payments",
        raw=raw,
        headers={
            "Content-Type": "application/json",
            "Lampo-Signature": f"t={int(time.time())},v1=00",
        },
    )
    assert forged.type == "/problems/invalid-signature"
    stale = server.webhook(payload, timestamp=int(time.time()) - 3600)
    assert stale.status == 401
    assert stale.type == "/problems/stale-signature"
    assert server.admin("GET", f"/v1/holds/{hold['id']}").json["state"] == "held"


def test_an_admin_refund_returns_the_units_to_the_pool(server: Server, event: str) -> None:
    hold = server.reserve("lia", event, {"phone-black": 1}).json
    assert server.pay("lia", hold["id"]).status == 200
    before = server.stock(event)["phone-black"]
    refunded = server.admin("POST", f"/v1/admin/holds/{hold['id']}/refund")
    assert refunded.status == 200
    assert refunded.json["state"] == "refunded"
    after = server.stock(event)["phone-black"]
    assert after["sold"] == before["sold"] - 1
    assert after["available"] == before["available"] + 1


def test_admin_lists_orders_a_page_at_a_time(server: Server, event: str) -> None:
    for _ in range(3):
        assert (
            server.reserve(f"list-{uuid.uuid4().hex[:6]}", event, {"phone-black": 1}).status == 201
        )
    first = server.admin("GET", f"/v1/admin/events/{event}/orders?state=held&limit=2")
    assert first.status == 200
    assert len(first.json["items"]) == 2
    assert all(h["state"] == "held" for h in first.json["items"])
    cursor = first.json["next"]
    assert cursor
    second = server.admin(
        "GET", f"/v1/admin/events/{event}/orders?state=held&limit=2&after={cursor}"
    )
    assert {h["id"] for h in second.json["items"]}.isdisjoint(h["id"] for h in first.json["items"])


def test_a_burst_of_concurrent_buyers_sells_the_stock_exactly_once(server: Server) -> None:
    server.load(live_event("http-burst", {"phone-red": 40}))
    buyers = [f"burst-{i}" for i in range(240)]

    def buy(buyer: str) -> int:
        return server.reserve(buyer, "http-burst", {"phone-red": 1}).status

    with ThreadPoolExecutor(max_workers=48) as pool:
        statuses = list(pool.map(buy, buyers))
    assert statuses.count(201) == 40
    assert statuses.count(409) == 200
    level = server.stock("http-burst")["phone-red"]
    assert level == {"sku": "phone-red", "allocation": 40, "available": 0, "held": 40, "sold": 0}


def test_an_expired_hold_cannot_be_paid_and_its_stock_returns(server: Server) -> None:
    server.load(live_event("http-expiry", {"phone-red": 3}, hold_seconds=60))
    hold = server.reserve("mara", "http-expiry", {"phone-red": 1}).json
    assert server.admin("POST", "/v1/admin/clock", {"advance_seconds": 61}).status == 200
    try:
        paid = server.pay("mara", hold["id"])
        assert paid.status == 410
        assert paid.type == "/problems/hold-expired"
        swept = server.admin("POST", "/v1/admin/expire")
        assert swept.status == 200
        assert server.stock("http-expiry")["phone-red"]["available"] == 3
    finally:
        server.admin("POST", "/v1/admin/clock", {"advance_seconds": -61})


def test_loading_the_same_event_again_is_a_no_op_and_a_changed_one_is_refused(
    server: Server,
) -> None:
    event = live_event("http-reload", {"phone-red": 3}, opens_in=timedelta(hours=-2))
    assert server.load(event).status == 201
    assert server.load(event).status == 200
    changed = live_event("http-reload", {"phone-red": 4}, opens_in=timedelta(hours=-2))
    from lampo.domain.codec import event_to_dict

    refused = server.admin("POST", "/v1/admin/events", event_to_dict(changed))
    assert refused.status == 409
    assert refused.type == "/problems/event-exists"
    assert server.stock("http-reload")["phone-red"]["allocation"] == 3
