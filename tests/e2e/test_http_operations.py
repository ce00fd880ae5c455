"""Rate limits, health, readiness, metrics, the OpenAPI document and docs, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._http import Server, live_event, running_server

pytestmark = pytest.mark.sqlite


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose limits allow 3 requests per buyer and 25 per address, refilling
    slowly enough that the test cannot earn a new token."""
    env = {
        "LAMPO_BUYER_RATE": "0.01",
        "LAMPO_BUYER_BURST": "3",
        "LAMPO_IP_RATE": "0.01",
        "LAMPO_IP_BURST": "25",
    }
    with running_server(tmp_path_factory.mktemp("limited"), **env) as srv:
        srv.load(live_event("http-rate", {"phone-red": 100}))
        yield srv


def test_a_buyer_past_the_rate_limit_gets_429_with_retry_after(limited: Server) -> None:
    statuses = [limited.reserve("eager", "http-rate", {"phone-red": 1}).status for _ in range(3)]
    assert statuses == [201, 201, 201]
    refused = limited.reserve("eager", "http-rate", {"phone-red": 1})
    assert refused.status == 429
    assert refused.json["type"] == "/problems/rate-limited"
    assert refused.json["scope"] == "buyer"
    assert int(refused.headers["retry-after"]) >= 1
    assert limited.reserve("patient", "http-rate", {"phone-red": 1}).status == 201
    assert limited.stock("http-rate")["phone-red"]["held"] == 4


def test_one_address_past_its_rate_limit_gets_429(limited: Server) -> None:
    replies = [limited.reserve(f"crowd-{i}", "http-rate", {"phone-red": 1}) for i in range(30)]
    refused = [r for r in replies if r.status == 429]
    assert refused
    assert refused[0].json["scope"] == "client address"
    assert limited.request("GET", "/health").status == 200, "health is never rate limited"


def test_health_and_readiness_answer(server: Server) -> None:
    assert server.request("GET", "/health").json == {"status": "ok"}
    assert server.request("GET", "/ready").json == {"status": "ready"}


def test_metrics_count_requests_refusals_and_stock(server: Server) -> None:
    server.load(live_event("http-metrics", {"phone-red": 7}))
    assert server.reserve("metric", "http-metrics", {"phone-red": 1}).status == 201
    assert server.reserve("metric", "http-metrics", {"nope": 1}).status == 422
    reply = server.request("GET", "/metrics")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain")
    text = reply.body.decode()
    # prometheus-client writes the labels of a sample in the order of their names
    assert 'lampo_http_requests_total{method="POST",route="/v1/holds",status="201"}' in text
    assert 'lampo_refusals_total{reason="unknown-sku"}' in text
    assert 'lampo_stock_held{event="http-metrics",sku="phone-red"} 1' in text
    assert 'lampo_stock_available{event="http-metrics",sku="phone-red"} 6' in text
    batched = [ln for ln in text.splitlines() if ln.startswith("lampo_reserve_batched_requests")]
    assert len(batched) == 1
    assert float(batched[0].split()[1]) >= 2  # both reservations went to storage in a batch


def test_the_openapi_document_and_the_docs_page_are_served(server: Server) -> None:
    spec = server.request("GET", "/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    assert "/v1/holds" in spec["paths"]
    assert "ReserveIn" in spec["components"]["schemas"]
    docs = server.request("GET", "/docs")
    assert docs.status == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert b"POST /v1/holds" in docs.body


def test_no_secret_reaches_the_server_log(server: Server, tmp_path: Path) -> None:
    from tests.e2e._http import ADMIN_KEY, SECRET, WEBHOOK_SECRET

    server.request("GET", "/v1/admin/events", headers={"X-API-Key": "wrong-key-0123456789"})
    log = (server.db.parent / "server.log").read_text()
    assert "lampo serving" in log
    for secret in (SECRET, ADMIN_KEY, WEBHOOK_SECRET):
        assert secret not in log
