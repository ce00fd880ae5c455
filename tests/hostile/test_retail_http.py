"""The till, marketplace intake and the store registry under hostile input, in process,
on real storage (hypothesis).

The properties: a partner order is taken only under its partner's own signature over the
exact bytes sent (any other header, secret or body: 401, nothing changed); a till sale
only with a key of that store that is not revoked; any body, signed or keyed right, is
answered with a success or a clean RFC 9457 problem of a known type, and a refusal
changes nothing (events, stock, totals, holds, the registry and every retail record).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lampo.bootstrap import Config
from lampo.services.partners import ORDERS
from lampo.services.sales import Sales
from lampo.services.stores import KEYS, RECEIPTS, RETURN_IDS, RETURNED, REVOKED
from lampo.storage import Storage
from lampo.web.app import App
from lampo.web.auth import sign_webhook
from lampo.web.config import WebConfig
from tests.contract.conftest import REDIS, SQLITE, Backend
from tests.e2e._http import live_event
from tests.hostile import strategies as hs
from tests.hostile._asgi import answer, problems_in, state
from tests.hostile._requests import Call
from tests.hostile._stores import fresh_store

JD = b"hostile-jd-secret-0123456789abcdef"
TMALL = b"hostile-tmall-secret-0123456789ab"
ADMIN_KEY = b"hostile-admin-key-0123456789abc"
REGISTRY = """id,name,kind,market,city,opened,closed,lat,lon
bj-001,Mi Home Beijing,own,CN,Beijing,2017-04-01,,,
sh-002,Mi Home Shanghai,own,CN,Shanghai,2017-05-01,2018-01-01,,
"""
EVENT = "hostile-retail"
SQLITE_FAST = Backend("sqlite", lambda tmp: SQLITE.url(tmp) + "?synchronous=NORMAL")
BACKENDS = [
    pytest.param(SQLITE_FAST, id="sqlite", marks=pytest.mark.sqlite),
    pytest.param(REDIS, id="redis", marks=pytest.mark.redis),
]
SPACES = (KEYS, REVOKED, RECEIPTS, RETURN_IDS, RETURNED, ORDERS)


@dataclass
class Shop:
    app: App
    storage: Storage
    loop: asyncio.AbstractEventLoop
    key: str  # a key of bj-001
    revoked: str  # a revoked key of bj-001

    def send(self, call: Call) -> tuple[int, bytes, bytes]:
        got = self.loop.run_until_complete(answer(self.app, call))
        return got.status, got.content_type, got.body

    def everything(self) -> dict[str, Any]:
        return {
            "sale": state(self.storage),
            "registry": self.storage.stores(),
            "records": {space: self.storage.bindings(space) for space in SPACES},
        }


@pytest.fixture(scope="module", params=BACKENDS)
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    backend: Backend = request.param
    loop = asyncio.new_event_loop()
    try:
        with fresh_store(backend, tmp_path_factory.mktemp("retail")) as (storage, _):
            config = WebConfig(
                engine=Config("memory://"),
                secret=b"hostile-buyer-secret-0123456789abcdef",
                admin_key=ADMIN_KEY,
                webhook_secret=b"hostile-webhook-secret-01234567",
                partner_secrets={"jd": JD, "tmall": TMALL},
                buyer_rate=1e6,
                ip_rate=1e6,
                buyer_burst=1e6,
                ip_burst=1e6,
                report_ttl=0,
            )
            app = App(config)
            app.sales = Sales(storage, clock=app.clock)
            app.sales.open(live_event(EVENT, {"phone-red": 100_000, "tv-55": 2}))
            app.network.import_csv(REGISTRY, 0)
            key = app.network.issue_key("bj-001").key
            revoked = app.network.issue_key("bj-001")
            app.network.revoke(revoked.info.key_id)
            yield Shop(app, storage, loop, key, revoked.key)
    finally:
        loop.close()


def _check(shop: Shop, call: Call, *, refused: int | None = None) -> tuple[int, Any]:
    """Send ``call``: a success or a clean problem (``refused``: exactly that status), and
    a refusal changes nothing."""
    before = shop.everything()
    status, content_type, body = shop.send(call)
    event(f"{call.route}: {status}")
    wrong = problems_in(call, status, content_type, body)
    assert not wrong, (call, wrong)
    if refused is not None:
        assert status == refused, (call, status, body)
    if status >= 400:
        assert shop.everything() == before, f"{call.route} refused ({status}) but wrote"
    return status, json.loads(body) if body else None


def _order(order_id: str) -> dict[str, Any]:
    return {
        "event": EVENT,
        "order_id": order_id,
        "market": "CN",
        "buyer": "u1",
        "lines": [{"sku": "phone-red", "quantity": 1}],
    }


def _partner_call(partner: str, body: bytes, signature: bytes) -> Call:
    headers = ((b"content-type", b"application/json"), (b"lampo-signature", signature))
    return Call("POST", f"/v1/partners/{partner}/orders", headers, body, "POST partner order")


bodies = st.one_of(
    st.builds(lambda n: json.dumps(_order(f"o-{n}")).encode(), st.integers(0, 10**6)),
    st.binary(max_size=300),
    hs.json_values().map(lambda v: json.dumps(v).encode()),
)


@given(
    body=bodies,
    other=bodies,
    partner=st.sampled_from(("jd", "tmall", "amazon")),
    how=st.sampled_from(("wrong-secret", "other-body", "other-partner", "hostile")),
    data=st.data(),
)
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_partner_order_not_signed_by_its_partner_over_these_bytes_is_refused(
    shop: Shop, body: bytes, other: bytes, partner: str, how: str, data: st.DataObject
) -> None:
    now = int(time.time())
    own = {"jd": JD, "tmall": TMALL}.get(partner, JD)
    if how == "wrong-secret":
        signature = data.draw(hs.signature_values(b"not-" + own, body, now))
    elif how == "other-body":
        signature = sign_webhook(own, other + b" ").encode()
    elif how == "other-partner":
        signature = sign_webhook(TMALL if partner == "jd" else JD, body).encode()
    else:
        signature = data.draw(hs.header_values())
    _check(shop, _partner_call(partner, body, signature), refused=401)


@given(
    body=st.one_of(
        hs.json_values(),
        st.builds(_order, st.one_of(st.integers(0, 10**9).map(str), hs.hostile_text(max_size=80))),
    ),
    field=st.sampled_from(("event", "order_id", "market", "buyer", "lines", None, None, None)),
    value=st.one_of(
        hs.json_values(max_leaves=5),
        st.lists(
            st.fixed_dictionaries(
                {
                    "sku": st.sampled_from(("phone-red", "tv-55", "nope")),
                    "quantity": st.integers(-1, 1001),
                }
            ),
            max_size=4,
        ),
    ),
)
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_signed_partner_body_is_answered_cleanly(
    shop: Shop, body: Any, field: str | None, value: Any
) -> None:
    if isinstance(body, dict) and field is not None:
        body = {**body, field: value}
    raw = json.dumps(body).encode()
    status, doc = _check(shop, _partner_call("jd", raw, sign_webhook(JD, raw).encode()))
    if status == 200:
        assert doc["accepted"] + doc["refused"] == len(doc["lines"]) >= 1
        for line in doc["lines"]:
            assert line["accepted"] or line["problem"]["status"] in (400, 404, 409, 422)


def _till_call(key: bytes | None, body: bytes, store: str = "bj-001") -> Call:
    headers = [(b"content-type", b"application/json")]
    if key is not None:
        headers.append((b"lampo-store-key", key))
    return Call("POST", f"/v1/stores/{store}/sales", tuple(headers), body, "POST till sale")


@given(
    key=st.one_of(
        hs.header_values(),
        st.integers(0, 80).map(lambda i: None if i == 80 else i),
        st.just(b"revoked"),
    ),
    receipt=st.integers(0, 10**9),
)
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_till_sale_without_a_live_key_of_its_store_is_refused(
    shop: Shop, key: bytes | int | None, receipt: int
) -> None:
    if key == b"revoked":
        key = shop.revoked.encode()
    elif isinstance(key, int):  # the real key with one character changed
        real = bytearray(shop.key.encode())
        i = key % len(real)
        real[i] = ord("A") if real[i] != ord("A") else ord("B")
        key = bytes(real)
    body = json.dumps({"event": EVENT, "receipt_id": f"r{receipt}", "items": {"phone-red": 1}})
    _check(shop, _till_call(key, body.encode()), refused=401)


@given(
    body=st.one_of(
        hs.json_values(),
        st.builds(
            lambda r, items: {"event": EVENT, "receipt_id": r, "items": items},
            st.one_of(st.integers(0, 10**9).map(lambda n: f"r-{n}"), hs.hostile_text(max_size=140)),
            st.one_of(
                st.dictionaries(
                    st.sampled_from(("phone-red", "tv-55")), st.integers(1, 3), min_size=1
                ),
                st.dictionaries(
                    st.sampled_from(("phone-red", "tv-55", "nope")),
                    hs.hostile_integers(),
                    max_size=3,
                ),
            ),
        ),
    ),
    store=st.sampled_from(("bj-001", "bj-001", "bj-001", "sh-002", "nowhere")),
)
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_till_body_under_a_good_key_is_answered_cleanly(
    shop: Shop, body: Any, store: str
) -> None:
    status, doc = _check(shop, _till_call(shop.key.encode(), json.dumps(body).encode(), store))
    if status < 400:
        assert doc["state"] == "paid"
        assert doc["channel"] == {"kind": "store", "name": "bj-001", "referral": ""}
    elif store != "bj-001":
        assert status == 401  # bj-001's key is no other store's


@given(
    text=st.one_of(
        hs.hostile_text(max_size=400),
        st.builds(lambda row: REGISTRY + row, hs.hostile_text(max_size=120)),
    )
)
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_registry_file_is_taken_whole_or_refused_changing_nothing(
    shop: Shop, text: str
) -> None:
    version, _ = shop.storage.stores()
    headers = ((b"x-api-key", ADMIN_KEY), (b"content-type", b"text/csv"))
    call = Call("PUT", f"/v1/admin/stores?replaces={version}", headers, text.encode(), "PUT stores")
    status, doc = _check(shop, call)
    assert status in (200, 400, 422), doc
    if status == 200:
        assert shop.storage.stores()[0] == version + 1
        # put the registry the other tests rely on back
        shop.app.network.import_csv(REGISTRY, version + 1)
