"""The contract suite runs against every storage backend.

To add a backend, add one line to ``ALL_STORAGES``: a ``Backend`` (its name and how to
make the URL of a fresh, empty store under a temporary directory) with its marker. A
backend that needs a server skips loudly when the server is absent, and fails instead
when ``CI=true``, so CI cannot go green without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lampo.domain.errors import Unavailable
from lampo.domain.event import SaleEvent
from lampo.domain.holds import HELD_STATES, SOLD_STATES, Hold
from lampo.domain.totals import recount
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import Storage, from_url
from tests.contract._cluster import redis_cluster_url
from tests.contract._servers import (
    drop_postgres_schema,
    drop_redis_postgres,
    drop_redis_prefix,
    postgres_url,
    redis_postgres_url,
    redis_url,
)
from tests.factories import NOW


@dataclass(frozen=True)
class Backend:
    """``url(tmp)`` names a fresh store; ``server`` backends may be absent (then skip)."""

    name: str
    url: Callable[[Path], str]
    server: bool = False
    dispose: Callable[[str], None] | None = None  # removes what url() made (at session end)

    def open(self, tmp: Path) -> Storage:
        return self.connect(self.fresh_url(tmp))

    def open_shared(self, tmp: Path, count: int) -> list[Storage]:
        """``count`` stores over one fresh state, as ``count`` processes would open it
        (each its own connections and writer). ``memory://`` keeps its state in the
        store object, so there it is one store ``count`` times."""
        url = self.fresh_url(tmp)
        first = self.connect(url)
        if url == "memory://":
            return [first] * count
        return [first] + [self.connect(url) for _ in range(count - 1)]

    def fresh_url(self, tmp: Path) -> str:
        """The URL of a fresh store (removed at the session's end), to open with ``connect``."""
        url = self.url(tmp)
        if self.dispose is not None:
            _TO_DISPOSE.append((self.dispose, url))
        return url

    def connect(self, url: str) -> Storage:
        """A store on ``url``; skips (fails under CI) when the backend's server is absent."""
        try:
            return from_url(url)
        except (Unavailable, ImportError, OSError, ConnectionError) as exc:
            if not self.server:
                raise
            reason = f"{type(exc).__name__}: {exc}"
            message = f"{self.name} backend unavailable ({reason}): its contract tests did NOT run"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message + " and CI=true requires every backend")
            pytest.skip(message)


def _sqlite_url(tmp: Path) -> str:
    # An absolute path makes "sqlite:///" + "/tmp/..." = four slashes, as from_url expects.
    return f"sqlite:///{(tmp / 'lampo.db').resolve().as_posix()}"


MEMORY = Backend("memory", lambda tmp: "memory://")
SQLITE = Backend("sqlite", _sqlite_url)
POSTGRES = Backend("postgres", postgres_url, server=True, dispose=drop_postgres_schema)
REDIS = Backend("redis", redis_url, server=True, dispose=drop_redis_prefix)
REDIS_CLUSTER = Backend("redis-cluster", redis_cluster_url, server=True)  # a private cluster
REDIS_BUCKETS = Backend(  # every event split over 4 stock buckets on one server
    "redis-buckets",
    lambda tmp: redis_url(tmp) + "&buckets=4",
    server=True,
    dispose=drop_redis_prefix,
)
REDIS_CLUSTER_BUCKETS = Backend(  # 3 stock buckets, in 3 slots of the private cluster
    "redis-cluster-buckets", lambda tmp: redis_cluster_url(tmp) + "&buckets=3", server=True
)
REDIS_POSTGRES = Backend(
    "redis_postgres", redis_postgres_url, server=True, dispose=drop_redis_postgres
)

ALL_STORAGES = [
    pytest.param(MEMORY, id="memory"),
    pytest.param(SQLITE, id="sqlite", marks=pytest.mark.sqlite),
    pytest.param(POSTGRES, id="postgres", marks=pytest.mark.postgres),
    pytest.param(REDIS, id="redis", marks=pytest.mark.redis),
    pytest.param(REDIS_CLUSTER, id="redis-cluster", marks=pytest.mark.redis_cluster),
    pytest.param(REDIS_BUCKETS, id="redis-buckets", marks=pytest.mark.redis),
    pytest.param(
        REDIS_CLUSTER_BUCKETS, id="redis-cluster-buckets", marks=pytest.mark.redis_cluster
    ),
    pytest.param(REDIS_POSTGRES, id="redis+postgres", marks=pytest.mark.redis_postgres),
]


_TO_DISPOSE: list[tuple[Callable[[str], None], str]] = []


@pytest.fixture(scope="session", autouse=True)
def _dispose_server_stores() -> Iterator[None]:
    """Server-backed stores (a schema, a key prefix) are removed once the session ends."""
    yield
    while _TO_DISPOSE:
        dispose, url = _TO_DISPOSE.pop()
        try:
            dispose(url)
        except Exception:  # the server went away: nothing left to remove
            pass


@pytest.fixture(params=ALL_STORAGES)
def backend(request: pytest.FixtureRequest) -> Backend:
    spec: Backend = request.param
    return spec


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Iterator[Storage]:
    """A fresh, empty storage of each backend, closed after the test."""
    storage = backend.open(tmp_path)
    try:
        yield storage
    finally:
        storage.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def sales(store: Storage, clock: ManualClock) -> Sales:
    return Sales(store, clock=clock)


# -- checks shared by the contract tests -------------------------------------------------------


def snapshot(store: Storage, event: str) -> tuple[object, ...]:
    """Everything a refusal must leave unchanged."""
    holds = sorted(store.holds(event), key=lambda h: h.id)
    return (store.stock(event), store.totals(event).normalized(), holds)


def assert_consistent(store: Storage, event: SaleEvent) -> None:
    """Conservation, stock equal to the recount from holds, live totals equal to the recount."""
    holds = list(store.holds(event.id))
    stock = store.stock(event.id)
    assert set(stock) == set(event.offers)
    for sku, level in stock.items():
        assert level.allocation == event.offers[sku].allocation, sku
        assert level.conserved, level
        held = sum(h.quantity_of(sku) for h in holds if h.state in HELD_STATES)
        sold = sum(h.quantity_of(sku) for h in holds if h.state in SOLD_STATES)
        assert (level.held, level.sold) == (held, sold), (sku, level)
    assert store.totals(event.id) == recount(holds)


def units_by_customer(holds: list[Hold]) -> dict[tuple[str, str], int]:
    """Units each customer holds or bought, per SKU and (under "") per event."""
    out: dict[tuple[str, str], int] = {}
    for hold in holds:
        if hold.state in HELD_STATES or hold.state in SOLD_STATES:
            for line in hold.lines:
                key = (hold.customer, line.sku)
                out[key] = out.get(key, 0) + line.quantity
            out[(hold.customer, "")] = out.get((hold.customer, ""), 0) + hold.units
    return out
