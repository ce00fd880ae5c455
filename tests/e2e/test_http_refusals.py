"""Every refusal over real HTTP: the RFC 9457 problem ``type``, the status, Retry-After
where it applies, and no change to the stock."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from lampo.web.auth import issue_token
from tests.e2e._http import Server, live_event

pytestmark = pytest.mark.sqlite


@pytest.fixture(scope="module")
def event(server: Server) -> str:
    server.load(live_event("http-ref", {"phone-red": 1, "phone-black": 50}, sku_limit=2))
    server.load(live_event("http-soon", {"phone-red": 5}, opens_in=timedelta(hours=1)))
    server.load(live_event("http-past", {"phone-red": 5}, opens_in=timedelta(hours=-20)))
    return "http-ref"


def assert_problem(reply: object, status: int, kind: str) -> None:
    from tests.e2e._http import Reply

    assert isinstance(reply, Reply)
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    body = reply.json
    assert body["type"] == f"/problems/{kind}"
    assert body["reason"] == kind
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]


def test_a_sold_out_sku_is_refused_with_409_and_its_numbers(server: Server, event: str) -> None:
    assert server.reserve("sold-1", event, {"phone-red": 1}).status == 201
    reply = server.reserve("sold-2", event, {"phone-red": 1})
    assert_problem(reply, 409, "sold-out")
    assert reply.json["sku"] == "phone-red"
    assert reply.json["available"] == 0
    assert server.stock(event)["phone-red"]["held"] == 1


def test_the_per_customer_limit_is_refused_with_409(server: Server, event: str) -> None:
    assert server.reserve("limited", event, {"phone-black": 2}).status == 201
    reply = server.reserve("limited", event, {"phone-black": 1})
    assert_problem(reply, 409, "limit-exceeded")
    assert reply.json["limit"] == 2
    assert server.stock(event)["phone-black"]["held"] == 2


def test_a_sale_not_open_yet_says_when_to_come_back(server: Server, event: str) -> None:
    reply = server.reserve("early", "http-soon", {"phone-red": 1})
    assert_problem(reply, 409, "not-open")
    wait = int(reply.headers["retry-after"])
    assert 3000 < wait <= 3600
    assert server.stock("http-soon")["phone-red"]["available"] == 5


def test_a_closed_sale_is_refused(server: Server, event: str) -> None:
    reply = server.reserve("late", "http-past", {"phone-red": 1})
    assert_problem(reply, 409, "closed")
    assert "retry-after" not in reply.headers


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"event": "http-ref", "market": "CN", "items": {"nope": 1}}, 422, "unknown-sku"),
        ({"event": "http-ref", "market": "US", "items": {"phone-black": 1}}, 422, "unknown-market"),
        ({"event": "no-such", "market": "CN", "items": {"phone-black": 1}}, 404, "unknown-event"),
        ({"event": "http-ref", "market": "CN", "items": {}}, 400, "invalid-request"),
        (
            {"event": "http-ref", "market": "CN", "items": {"phone-black": 0}},
            400,
            "invalid-request",
        ),
        (
            {"event": "http-ref", "market": "CN", "items": {"phone-black": "1"}},
            400,
            "invalid-request",
        ),
        (
            {"event": "http-ref", "market": "CN", "items": {"phone-black": 1.5}},
            400,
            "invalid-request",
        ),
        ({"event": "http-ref", "market": "CN"}, 400, "invalid-request"),
        (
            {"event": "http-ref", "market": "CN", "items": {"phone-black": 1}, "customer": "x"},
            400,
            "invalid-request",
        ),
        ([1, 2, 3], 400, "invalid-request"),
    ],
    ids=[
        "unknown-sku",
        "unknown-market",
        "unknown-event",
        "no-items",
        "zero",
        "string-quantity",
        "float-quantity",
        "missing-items",
        "unknown-field-customer",
        "not-an-object",
    ],
)
def test_a_bad_reserve_body_is_a_clear_4xx_and_changes_nothing(
    server: Server, event: str, body: object, status: int, kind: str
) -> None:
    before = server.stock(event)
    headers = {**server.buyer("typo"), "Idempotency-Key": uuid.uuid4().hex}
    reply = server.request("POST", "/v1/holds", body, headers)
    assert_problem(reply, status, kind)
    assert server.stock(event) == before


def test_malformed_json_is_a_400(server: Server, event: str) -> None:
    headers = {
        **server.buyer("typo"),
        "Idempotency-Key": "malformed",
        "Content-Type": "application/json",
    }
    reply = server.request("POST", "/v1/holds", raw=b'{"event": "http-ref",', headers=headers)
    assert_problem(reply, 400, "invalid-request")


def test_a_huge_body_is_a_413(server: Server, event: str) -> None:
    headers = {**server.buyer("big"), "Idempotency-Key": "huge", "Content-Type": "application/json"}
    reply = server.request("POST", "/v1/holds", raw=b" " * 2_000_000, headers=headers)
    assert_problem(reply, 413, "payload-too-large")


def test_a_body_that_is_not_json_is_a_415(server: Server, event: str) -> None:
    headers = {**server.buyer("form"), "Idempotency-Key": "form", "Content-Type": "text/plain"}
    reply = server.request("POST", "/v1/holds", raw=b"event=http-ref", headers=headers)
    assert_problem(reply, 415, "unsupported-media-type")


def test_a_mutating_call_without_an_idempotency_key_is_refused(server: Server, event: str) -> None:
    body = {"event": event, "market": "CN", "items": {"phone-black": 1}}
    reply = server.request("POST", "/v1/holds", body, server.buyer("forgetful"))
    assert_problem(reply, 400, "invalid-request")
    assert reply.json["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-token",
        "Bearer " + issue_token(b"another-secret-0123456789abcdef-0123", "alice"),
        "Bearer "
        + issue_token(b"test-buyer-secret-0123456789abcdef", "alice", 1, now=time.time() - 60),
    ],
    ids=["missing", "basic", "garbage", "wrong-secret", "expired"],
)
def test_a_buyer_without_a_valid_token_gets_401(
    server: Server, event: str, authorization: str | None
) -> None:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    if authorization:
        headers["Authorization"] = authorization
    body = {"event": event, "market": "CN", "items": {"phone-black": 1}}
    reply = server.request("POST", "/v1/holds", body, headers)
    assert_problem(reply, 401, "unauthorized")
    assert reply.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("key", [None, "wrong-key-0123456789abcdef"])
def test_admin_calls_need_the_admin_key(server: Server, event: str, key: str | None) -> None:
    headers = {"X-API-Key": key} if key else {}
    reply = server.request("GET", "/v1/admin/events", headers=headers)
    assert_problem(reply, 401, "unauthorized")
    token = server.buyer("alice")
    as_buyer = server.request("GET", "/v1/admin/events", headers=token)
    assert_problem(as_buyer, 401, "unauthorized")


def test_an_unknown_path_is_a_404_and_a_wrong_method_a_405(server: Server) -> None:
    assert_problem(server.request("GET", "/v2/holds"), 404, "not-found")
    wrong = server.request("DELETE", "/v1/holds")
    assert_problem(wrong, 405, "method-not-allowed")
    assert wrong.headers["allow"] == "POST"


def test_a_problem_type_is_a_page_that_explains_it(server: Server) -> None:
    page = server.request("GET", "/problems/sold-out")
    assert page.status == 200
    assert b"409" in page.body
