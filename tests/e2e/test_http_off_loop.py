"""No handler calls storage on the event loop: the buyer's and the admin's flows, in
process, over a storage that refuses any blocking call made from a thread that runs an
event loop.

A blocking storage call on the loop stalls every request of the worker for its time (on
Redis or PostgreSQL, a network round trip). The handlers reach storage through the
service's awaitable calls (the coalescer, storage's own batcher), the app's coalesced
hold reads, or the thread pool; ``LoopGuard`` makes a regression fail here, whatever
the timing: the call is refused, recorded, and the test lists it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from lampo.bootstrap import Config
from lampo.domain.codec import event_to_dict
from lampo.services.sales import Sales
from lampo.storage import Storage
from lampo.web.app import App
from lampo.web.auth import issue_token, sign_webhook
from lampo.web.config import WebConfig
from tests.contract.conftest import MEMORY, REDIS, SQLITE, Backend
from tests.e2e._http import live_event
from tests.hostile._asgi import Answer, answer
from tests.hostile._requests import Call
from tests.hostile._stores import fresh_store

SECRET = b"test-buyer-secret-0123456789abcdef"
ADMIN_KEY = b"test-admin-key-0123456789abcdef"
WEBHOOK_SECRET = b"test-webhook-secret-0123456789abcdef"


class LoopGuard:
    """``storage`` whose blocking calls fail when made from a thread running an event
    loop (each such call is also recorded in ``on_loop``); its awaitable calls pass."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.on_loop: list[str] = []
        self.off_loop: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._storage, name)
        if not callable(value) or inspect.iscoroutinefunction(value):
            return value

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # no loop in this thread: a worker thread, or setup
                self.off_loop.append(name)
                return value(*args, **kwargs)
            self.on_loop.append(name)
            raise AssertionError(f"storage.{name} called on the event loop")

        return guarded


@pytest.fixture(
    params=[
        pytest.param(MEMORY, id="memory"),
        pytest.param(SQLITE, marks=pytest.mark.sqlite, id="sqlite"),
        pytest.param(REDIS, marks=pytest.mark.redis, id="redis"),
    ]
)
def guarded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[App, LoopGuard]]:
    backend: Backend = request.param
    with fresh_store(backend, tmp_path) as (storage, _):
        guard = LoopGuard(storage)
        config = WebConfig(
            engine=Config("memory://"),  # unused: the app is given its sales service
            secret=SECRET,
            admin_key=ADMIN_KEY,
            webhook_secret=WEBHOOK_SECRET,
            buyer_rate=1e6,
            ip_rate=1e6,
            buyer_burst=1e6,
            ip_burst=1e6,
            report_ttl=0,
        )
        sales = Sales(cast(Storage, guard))
        sales.open(live_event("fest", {"phone-red": 100, "tv-55": 100}))
        yield App(config, sales), guard


def _buyer(name: str) -> tuple[bytes, bytes]:
    return (b"authorization", b"Bearer " + issue_token(SECRET, name).encode())


_ADMIN = (b"x-api-key", ADMIN_KEY)
_JSON = (b"content-type", b"application/json")


def _key(value: str) -> tuple[bytes, bytes]:
    return (b"idempotency-key", value.encode())


Ask = Callable[..., Answer]


def _asker(app: App, guard: LoopGuard, loop: asyncio.AbstractEventLoop) -> Ask:
    def ask(method: str, target: str, *headers: tuple[bytes, bytes], body: Any = None) -> Answer:
        raw = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        call = Call(method, target, tuple(headers), raw, f"{method} {target}")
        got = loop.run_until_complete(answer(app, call))
        assert guard.on_loop == [], f"{method} {target} called {guard.on_loop} on the loop"
        return got

    return ask


def _concurrently(
    app: App, guard: LoopGuard, loop: asyncio.AbstractEventLoop, calls: list[Call]
) -> list[Answer]:
    async def every() -> list[Answer]:
        return list(await asyncio.gather(*(answer(app, call) for call in calls)))

    got = loop.run_until_complete(every())
    assert guard.on_loop == [], f"{calls[0].route} called {guard.on_loop} on the loop"
    return got


def test_the_buyer_flow_calls_no_storage_on_the_loop(guarded: tuple[App, LoopGuard]) -> None:
    app, guard = guarded
    loop = asyncio.new_event_loop()
    try:
        ask = _asker(app, guard, loop)
        alice = _buyer("alice")
        order = {"event": "fest", "market": "CN", "items": {"phone-red": 1}}
        # reservations and payments of many buyers at once: the coalesced paths
        reserve = [
            Call(
                "POST",
                "/v1/holds",
                (_buyer(f"b{i}"), _key(f"r{i}"), _JSON),
                json.dumps(order).encode(),
                "POST /v1/holds",
            )
            for i in range(20)
        ]
        held = _concurrently(app, guard, loop, reserve)
        assert [a.status for a in held] == [201] * 20
        pay = [
            Call(
                "POST",
                f"/v1/holds/{json.loads(a.body)['id']}/pay",
                (_buyer(f"b{i}"), _key(f"p{i}")),
                route="POST /v1/holds/{hold_id}/pay",
            )
            for i, a in enumerate(held)
        ]
        assert [a.status for a in _concurrently(app, guard, loop, pay)] == [200] * 20

        first = ask("POST", "/v1/holds", alice, _key("a1"), _JSON, body=order)
        assert first.status == 201, first.body
        hold_id = json.loads(first.body)["id"]
        assert ask("GET", f"/v1/holds/{hold_id}", alice).status == 200
        assert ask("GET", f"/v1/holds/{hold_id}", _buyer("bob")).status == 404
        assert ask("POST", f"/v1/holds/{hold_id}/release", alice, _key("a2")).status == 200
        second = ask("POST", "/v1/holds", alice, _key("a3"), _JSON, body=order)
        second_id = json.loads(second.body)["id"]
        amount = json.loads(second.body)["amount"]
        notice = json.dumps(
            {
                "type": "payment.succeeded",
                "hold_id": second_id,
                "payment_id": "pay-1",
                "amount": amount,
            }
        ).encode()
        signature = (b"lampo-signature", sign_webhook(WEBHOOK_SECRET, notice).encode())
        paid = ask("POST", "/v1/webhooks/payments", signature, _JSON, body=notice)
        assert paid.status == 200, paid.body
        # an event nobody loaded: the service looks for it in storage
        unknown = {**order, "event": "nowhere"}
        assert ask("POST", "/v1/holds", alice, _key("a4"), _JSON, body=unknown).status == 404
        for path in ("/v1/events/fest", "/v1/events/fest/stock", "/v1/events/fest/report"):
            assert ask("GET", path).status == 200, path
        assert ask("GET", "/v1/events/nowhere").status == 404
        assert ask("GET", "/live/fest").status == 200
        assert ask("GET", "/live/nowhere").status == 404
    finally:
        loop.close()
    assert guard.on_loop == []
    assert {"hold", "stock", "totals", "events"} <= set(guard.off_loop)


def test_the_admin_flow_calls_no_storage_on_the_loop(guarded: tuple[App, LoopGuard]) -> None:
    app, guard = guarded
    loop = asyncio.new_event_loop()
    try:
        ask = _asker(app, guard, loop)
        order = {"event": "fest", "market": "CN", "items": {"tv-55": 1}}
        made = ask("POST", "/v1/holds", _buyer("carol"), _key("c1"), _JSON, body=order)
        hold_id = json.loads(made.body)["id"]
        assert ask("POST", f"/v1/holds/{hold_id}/pay", _buyer("carol"), _key("c2")).status == 200

        assert ask("GET", "/v1/admin/events", _ADMIN).status == 200
        event = live_event("later", {"phone-red": 10})
        loaded = ask(
            "POST", "/v1/admin/events", _ADMIN, _key("e1"), _JSON, body=event_to_dict(event)
        )
        assert loaded.status == 201, loaded.body
        more = replace(event, name="Later, with more")
        updated = ask(
            "PUT", "/v1/admin/events/later", _ADMIN, _key("e2"), _JSON, body=event_to_dict(more)
        )
        assert updated.status == 200, updated.body
        # an event another worker added: known to storage, not yet to this one
        app.service.storage.setup(live_event("elsewhere", {"phone-red": 5}))
        assert ask("GET", "/v1/events/elsewhere").status == 200
        assert ask("GET", "/v1/admin/events/fest/orders?state=paid", _ADMIN).status == 200
        assert ask("GET", f"/v1/holds/{hold_id}", _ADMIN).status == 200
        assert ask("POST", f"/v1/admin/holds/{hold_id}/refund", _ADMIN, _key("f1")).status == 200
        assert ask("POST", "/v1/admin/expire", _ADMIN, _key("x1")).status == 200
        for path in ("/ready", "/metrics", "/live", "/health", "/openapi.json"):
            assert ask("GET", path).status in (200, 302), path
    finally:
        loop.close()
    assert guard.on_loop == []
    assert {"hold", "holds", "load_events", "refund", "expire_due"} <= set(guard.off_loop)


def test_the_retail_flow_calls_no_storage_on_the_loop(guarded: tuple[App, LoopGuard]) -> None:
    """The registry, store keys, till sales and returns, and a partner's signed order."""
    app, guard = guarded
    partner_secret = b"test-jd-secret-0123456789abcdef"
    app.config = replace(app.config, partner_secrets={"jd": partner_secret})
    loop = asyncio.new_event_loop()
    try:
        ask = _asker(app, guard, loop)
        registry = (
            "id,name,kind,market,city,opened,closed,lat,lon\n"
            "bj-001,Mi Home Beijing,own,CN,Beijing,2017-04-01,,,\n"
        )
        csv = (b"content-type", b"text/csv")
        written = ask("PUT", "/v1/admin/stores?replaces=0", _ADMIN, csv, body=registry.encode())
        assert written.status == 200, written.body
        assert ask("GET", "/v1/admin/stores", _ADMIN).status == 200
        assert ask("GET", "/v1/admin/stores/bj-001", _ADMIN).status == 200
        issued = ask("POST", "/v1/admin/stores/bj-001/keys", _ADMIN, _key("k1"))
        assert issued.status == 201, issued.body
        key = (b"lampo-store-key", json.loads(issued.body)["key"].encode())
        assert ask("GET", "/v1/admin/stores/bj-001/keys", _ADMIN).status == 200
        sale = {"event": "fest", "receipt_id": "r-1", "items": {"phone-red": 1}}
        sold = ask("POST", "/v1/stores/bj-001/sales", key, _JSON, body=sale)
        assert sold.status == 201, sold.body
        back = {"receipt_id": "r-1", "return_id": "ret-1"}
        assert ask("POST", "/v1/stores/bj-001/returns", key, _JSON, body=back).status == 200
        order = json.dumps(
            {
                "event": "fest",
                "order_id": "jd-1",
                "market": "CN",
                "lines": [{"sku": "tv-55", "quantity": 1}],
            }
        ).encode()
        signed = (b"lampo-signature", sign_webhook(partner_secret, order).encode())
        taken = ask("POST", "/v1/partners/jd/orders", signed, _JSON, body=order)
        assert taken.status == 200, taken.body
        assert json.loads(taken.body)["accepted"] == 1
        key_id = json.loads(issued.body)["key_id"]
        revoked = ask("DELETE", f"/v1/admin/stores/bj-001/keys/{key_id}", _ADMIN)
        assert revoked.status == 200
    finally:
        loop.close()
    assert guard.on_loop == []
    assert {"stores", "put_stores", "bind", "bound", "bindings"} <= set(guard.off_loop)
