"""The store network, the till and marketplace intake over real HTTP (``lampo serve``),
on SQLite and Redis: the registry written whole at its version, store keys, till sales
and returns (idempotent, refused cleanly), and partner orders answered line by line."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lampo.web.auth import sign_webhook
from tests.contract._servers import drop_redis_prefix, redis_url
from tests.e2e._http import ADMIN_KEY, Reply, Server, live_event, running_server
from tests.e2e.test_http_idempotency import Storage, fresh_store

JD_SECRET = "jd-secret-0123456789abcdef"
PARTNERS = f"jd:{JD_SECRET},tmall:tmall-secret-0123456789abcdef"
EVENT = "retail"
REGISTRY = """id,name,kind,market,city,opened,closed,lat,lon
bj-001,Mi Home Beijing Xidan,own,CN,Beijing,2017-04-01,,39.9,116.4
sh-002,Mi Home Shanghai,own,CN,Shanghai,2017-05-01,2018-01-01,,
gz-003,Authorised Guangzhou,authorised,CN,Guangzhou,2017-06-30,,,
"""


def _sqlite(tmp: Path) -> str:
    return f"sqlite:///{(tmp / 'lampo.db').resolve().as_posix()}"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(Storage("sqlite", _sqlite), id="sqlite", marks=pytest.mark.sqlite),
        pytest.param(
            Storage("redis", redis_url, drop_redis_prefix), id="redis", marks=pytest.mark.redis
        ),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    spec: Storage = request.param
    tmp = tmp_path_factory.mktemp(spec.name)
    url = fresh_store(spec, tmp)
    try:
        with running_server(tmp, storage=url, LAMPO_PARTNER_SECRETS=PARTNERS) as srv:
            srv.load(live_event(EVENT, {"phone-red": 50, "phone-black": 500, "tv-55": 3}))
            written = put_registry(srv, REGISTRY, replaces=0)
            assert written.status == 200, written.body
            yield srv
    finally:
        if spec.dispose is not None:
            spec.dispose(url)


def put_registry(server: Server, text: str, replaces: int | None = None, **headers: str) -> Reply:
    query = "" if replaces is None else f"?replaces={replaces}"
    sent = {"X-API-Key": ADMIN_KEY, "Content-Type": "text/csv", **headers}
    return server.request("PUT", f"/v1/admin/stores{query}", raw=text.encode(), headers=sent)


def registry(server: Server) -> tuple[int, list[dict[str, Any]]]:
    reply = server.admin("GET", "/v1/admin/stores")
    assert reply.status == 200, reply.body
    assert reply.headers["etag"] == f'"{reply.json["version"]}"'
    return reply.json["version"], reply.json["items"]


def issue_key(server: Server, store: str) -> str:
    reply = server.admin("POST", f"/v1/admin/stores/{store}/keys")
    assert reply.status == 201, reply.body
    key: str = reply.json["key"]
    return key


def sell(server: Server, store: str, key: str | None, receipt: str, items: dict[str, int]) -> Reply:
    headers = {} if key is None else {"Lampo-Store-Key": key}
    body = {"event": EVENT, "receipt_id": receipt, "items": items}
    return server.request("POST", f"/v1/stores/{store}/sales", body, headers)


def give_back(server: Server, store: str, key: str, receipt: str, return_id: str) -> Reply:
    body = {"receipt_id": receipt, "return_id": return_id}
    return server.request("POST", f"/v1/stores/{store}/returns", body, {"Lampo-Store-Key": key})


def partner_order(
    server: Server, partner: str, order: dict[str, Any], secret: str = JD_SECRET
) -> Reply:
    raw = json.dumps(order).encode()
    headers = {
        "Content-Type": "application/json",
        "Lampo-Signature": sign_webhook(secret.encode(), raw),
    }
    return server.request("POST", f"/v1/partners/{partner}/orders", raw=raw, headers=headers)


def receipt() -> str:
    return f"r-{uuid.uuid4().hex[:12]}"


# -- the registry ------------------------------------------------------------------------------
def test_the_registry_reads_back_as_json_csv_and_one_store(server: Server) -> None:
    version, items = registry(server)
    assert version >= 1
    assert {s["id"] for s in items} >= {"bj-001", "sh-002", "gz-003"}
    csv = server.request(
        "GET", "/v1/admin/stores", headers={"X-API-Key": ADMIN_KEY, "Accept": "text/csv"}
    )
    assert csv.status == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.body.decode().splitlines()[0] == "id,name,kind,market,city,opened,closed,lat,lon"
    one = server.admin("GET", "/v1/admin/stores/bj-001")
    assert one.status == 200
    assert one.json["city"] == "Beijing"
    assert one.json["lat"] == 39.9
    open_on = server.admin("GET", "/v1/admin/stores?market=CN&on=2017-05-15")
    assert {s["id"] for s in open_on.json["items"]} == {"bj-001", "sh-002"}
    missing = server.admin("GET", "/v1/admin/stores/nowhere")
    assert missing.status == 404
    assert missing.json["reason"] == "unknown-store"


def test_a_file_with_bad_rows_is_refused_whole_with_every_problem(server: Server) -> None:
    before = registry(server)
    bad = REGISTRY + "xx-1,Bad,shop,CN,X,2017-02-30,,,\nbj-001,Again,own,CN,Beijing,2017-01-01,,,\n"
    reply = put_registry(server, bad, replaces=before[0])
    assert reply.status == 422
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json["reason"] == "stores-refused"
    assert {(p["line"], p["column"]) for p in reply.json["problems"]} == {
        (5, "kind"),
        (5, "opened"),
        (6, "id"),
    }
    assert registry(server) == before


def test_a_write_needs_the_version_it_replaces_and_of_two_one_wins(server: Server) -> None:
    version, items = registry(server)
    assert put_registry(server, REGISTRY).status == 400  # no version given
    first = put_registry(server, REGISTRY, **{"If-Match": f'"{version}"'})
    assert first.status == 200, first.body
    assert first.json == {"version": version + 1, "stores": 3}
    assert first.headers["etag"] == f'"{version + 1}"'
    late = put_registry(server, REGISTRY.replace("Xidan", "Late"), replaces=version)
    assert late.status == 409
    assert late.json["reason"] == "registry-changed"
    assert (late.json["version"], late.json["replaces"]) == (version + 1, version)
    assert registry(server) == (version + 1, items)


# -- the till ----------------------------------------------------------------------------------
def test_a_till_sale_is_a_paid_store_order_and_a_replay_returns_it(server: Server) -> None:
    key = issue_key(server, "bj-001")
    before = server.stock(EVENT)["phone-black"]
    r = receipt()
    sold = sell(server, "bj-001", key, r, {"phone-black": 2})
    assert sold.status == 201, sold.body
    order = sold.json
    assert order["state"] == "paid"
    assert order["customer"] == f"store:bj-001:{r}"  # the receipt's walk-in
    assert order["channel"]["kind"] == "store"
    assert order["channel"]["name"] == "bj-001"
    assert order["market"] == "CN"
    after = server.stock(EVENT)["phone-black"]
    assert after["sold"] == before["sold"] + 2
    assert after["held"] == before["held"]
    again = sell(server, "bj-001", key, r, {"phone-black": 2})
    assert again.status == 201
    assert again.json["id"] == order["id"]
    assert server.stock(EVENT)["phone-black"] == after
    other = sell(server, "bj-001", key, r, {"phone-black": 3})
    assert other.status == 422
    assert other.json["reason"] == "idempotency-conflict"
    assert server.stock(EVENT)["phone-black"] == after


def test_a_revoked_unknown_or_other_stores_key_is_refused_and_changes_nothing(
    server: Server,
) -> None:
    key = issue_key(server, "bj-001")
    other_store = issue_key(server, "gz-003")
    before = server.stock(EVENT)
    assert sell(server, "bj-001", None, receipt(), {"phone-black": 1}).status == 401
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for bad in (forged, "lsk_nonsense", other_store, "x" * 5000):
        reply = sell(server, "bj-001", bad, receipt(), {"phone-black": 1})
        assert reply.status == 401, (bad, reply.body)
        assert reply.headers["content-type"] == "application/problem+json"
    key_id = key.split("_")[1]
    revoked = server.admin("DELETE", f"/v1/admin/stores/bj-001/keys/{key_id}")
    assert revoked.status == 200
    assert revoked.json["revoked_at"] is not None
    assert "key" not in revoked.json or revoked.json["key"] is None
    reply = sell(server, "bj-001", key, receipt(), {"phone-black": 1})
    assert reply.status == 401
    assert reply.json["reason"] == "unauthorized"
    assert server.stock(EVENT) == before
    keys = server.admin("GET", "/v1/admin/stores/bj-001/keys").json["items"]
    assert {k["key_id"]: k["revoked_at"] is not None for k in keys}[key_id] is True
    assert all(k.get("key") is None for k in keys)


def test_a_closed_store_and_a_store_gone_from_the_registry_are_refused(server: Server) -> None:
    closed_key = issue_key(server, "sh-002")
    before = server.stock(EVENT)
    closed = sell(server, "sh-002", closed_key, receipt(), {"phone-black": 1})
    assert closed.status == 409
    assert closed.json["reason"] == "store-not-open"
    assert closed.json["closed"] == "2018-01-01"
    gz_key = issue_key(server, "gz-003")
    version, _ = registry(server)
    without_gz = "\n".join(ln for ln in REGISTRY.splitlines() if not ln.startswith("gz-003"))
    assert put_registry(server, without_gz + "\n", replaces=version).status == 200
    try:
        gone = sell(server, "gz-003", gz_key, receipt(), {"phone-black": 1})
        assert gone.status == 404
        assert gone.json["reason"] == "unknown-store"
    finally:
        assert put_registry(server, REGISTRY, replaces=version + 1).status == 200
    assert server.stock(EVENT) == before


def test_a_till_sale_of_more_than_is_left_is_sold_out_and_changes_nothing(server: Server) -> None:
    key = issue_key(server, "bj-001")
    left = server.stock(EVENT)["tv-55"]["available"]
    reply = sell(server, "bj-001", key, receipt(), {"tv-55": left + 1})
    assert reply.status == 409
    assert reply.json["reason"] == "sold-out"
    assert server.stock(EVENT)["tv-55"]["available"] == left


def test_a_return_refunds_the_whole_receipt_once(server: Server) -> None:
    key = issue_key(server, "bj-001")
    r = receipt()
    order = sell(server, "bj-001", key, r, {"phone-red": 2}).json
    sold = server.stock(EVENT)["phone-red"]
    back = give_back(server, "bj-001", key, r, "ret-" + r)
    assert back.status == 200, back.body
    assert back.json["id"] == order["id"]
    assert back.json["state"] == "refunded"
    after = server.stock(EVENT)["phone-red"]
    assert (after["sold"], after["available"]) == (sold["sold"] - 2, sold["available"] + 2)
    again = give_back(server, "bj-001", key, r, "ret-" + r)
    assert again.status == 200
    assert again.json["state"] == "refunded"
    twice = give_back(server, "bj-001", key, r, "another-" + r)
    assert twice.status == 409
    assert twice.json["reason"] == "illegal-transition"
    unknown = give_back(server, "bj-001", key, "never-sold", "ret-x")
    assert unknown.status == 404
    assert unknown.json["reason"] == "unknown-receipt"
    assert server.stock(EVENT)["phone-red"] == after


# -- marketplace intake ------------------------------------------------------------------------
def test_a_partner_order_is_answered_line_by_line_and_replayed_alike(server: Server) -> None:
    left = server.stock(EVENT)["tv-55"]["available"]
    order = {
        "event": EVENT,
        "order_id": f"jd-{uuid.uuid4().hex[:10]}",
        "market": "CN",
        "buyer": "u-123",
        "lines": [{"sku": "phone-black", "quantity": 1}, {"sku": "tv-55", "quantity": left + 1}],
    }
    first = partner_order(server, "jd", order)
    assert first.status == 200, first.body
    answers = first.json
    assert (answers["accepted"], answers["refused"]) == (1, 1)
    ok, refused = answers["lines"]
    assert ok["accepted"] is True
    assert ok["amount"]["currency"] == "CNY"
    sold = server.request("GET", f"/v1/holds/{ok['order_id']}", headers={"X-API-Key": ADMIN_KEY})
    assert sold.json["channel"] == {"kind": "marketplace", "name": "jd", "referral": ""}
    assert sold.json["customer"] == "jd:u-123"
    assert sold.json["state"] == "paid"
    assert refused["accepted"] is False
    assert refused["problem"]["reason"] == "sold-out"
    assert refused["problem"]["status"] == 409
    stock = server.stock(EVENT)
    again = partner_order(server, "jd", order)
    assert again.status == 200
    assert again.json == answers
    assert again.headers.get("idempotent-replayed") == "true"
    assert server.stock(EVENT) == stock
    changed = partner_order(server, "jd", {**order, "lines": [{"sku": "phone-red", "quantity": 1}]})
    assert changed.status == 422
    assert changed.json["reason"] == "idempotency-conflict"
    assert server.stock(EVENT) == stock


def test_a_partner_order_with_a_forged_or_foreign_signature_changes_nothing(
    server: Server,
) -> None:
    order = {
        "event": EVENT,
        "order_id": f"jd-{uuid.uuid4().hex[:10]}",
        "market": "CN",
        "lines": [{"sku": "phone-black", "quantity": 1}],
    }
    before = server.stock(EVENT)
    for partner, secret in (
        ("jd", "not-the-secret-0123456789"),
        ("jd", "tmall-secret-0123456789abcdef"),  # another partner's
        ("amazon", JD_SECRET),  # no such partner
    ):
        reply = partner_order(server, partner, order, secret)
        assert reply.status == 401, reply.body
        assert reply.json["reason"] == "invalid-signature"
    assert server.stock(EVENT) == before
    accepted = partner_order(server, "jd", order)  # the real one still goes through
    assert accepted.json["accepted"] == 1


def test_a_line_of_a_sku_not_on_sale_is_refused_alone_an_unknown_market_whole(
    server: Server,
) -> None:
    order = {
        "event": EVENT,
        "order_id": f"jd-{uuid.uuid4().hex[:10]}",
        "market": "CN",
        "lines": [{"sku": "no-such-sku", "quantity": 1}, {"sku": "phone-black", "quantity": 1}],
    }
    taken = partner_order(server, "jd", order)
    assert taken.status == 200, taken.body
    first, second = taken.json["lines"]
    assert first["problem"]["reason"] == "unknown-sku"
    assert first["problem"]["status"] == 422
    assert second["accepted"] is True
    before = server.stock(EVENT)
    elsewhere = partner_order(server, "jd", {**order, "order_id": "jd-x1", "market": "XX"})
    assert elsewhere.status == 422
    assert elsewhere.json["reason"] == "unknown-market"
    assert server.stock(EVENT) == before
