"""``lampo serve --workers 2`` on one SQLite file: the workers share the stock, and an event
loaded through one worker is on sale in the other at once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e._http import Server, live_event, running_server

pytestmark = pytest.mark.sqlite


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("workers"), workers=2) as srv:
        yield srv


def test_an_event_loaded_through_one_worker_is_on_sale_in_every_worker_at_once(
    two_workers: Server,
) -> None:
    two_workers.load(live_event("workers-fresh", {"phone-red": 100}))
    # each call is a new connection, so the calls spread over both workers
    statuses = [
        two_workers.reserve(f"fresh-{i}", "workers-fresh", {"phone-red": 1}).status
        for i in range(24)
    ]
    assert statuses == [201] * 24
    assert two_workers.stock("workers-fresh")["phone-red"]["held"] == 24


def test_two_workers_sell_the_stock_exactly_once(two_workers: Server) -> None:
    two_workers.load(live_event("workers-burst", {"phone-red": 30}))

    def buy(i: int) -> int:
        return two_workers.reserve(f"burst-{i}", "workers-burst", {"phone-red": 1}).status

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(buy, range(150)))
    assert statuses.count(201) == 30
    assert statuses.count(409) == 120
    level = two_workers.stock("workers-burst")["phone-red"]
    assert level == {"sku": "phone-red", "allocation": 30, "available": 0, "held": 30, "sold": 0}


def test_a_buyer_has_one_rate_limit_budget_across_workers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Three requests, then 429: before the workers shared their limits, a buyer whose
    calls spread over two workers got up to six."""
    env = {"LAMPO_BUYER_RATE": "0.01", "LAMPO_BUYER_BURST": "3"}
    with running_server(tmp_path_factory.mktemp("limits"), workers=2, **env) as srv:
        srv.load(live_event("workers-limits", {"phone-red": 100}))
        # each call is a new connection, so the calls spread over both workers
        statuses = [
            srv.reserve("greedy", "workers-limits", {"phone-red": 1}, key=f"g{i}").status
            for i in range(16)
        ]
        assert statuses.count(201) + statuses.count(409) == 3, statuses
        assert statuses.count(429) == 13
        assert srv.reserve("patient", "workers-limits", {"phone-red": 1}).status == 201
