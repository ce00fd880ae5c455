"""The fairness tests run the front door's service on real storage: memory, SQLite and,
when its server answers, Redis (skipped loudly without it, failed under ``CI=true``), the
contract suite's backends (``tests/contract/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from lampo.domain.event import SaleEvent
from lampo.services.clock import ManualClock
from lampo.services.frontdoor import FrontDoorService
from lampo.services.sales import Sales
from lampo.storage import Storage
from lampo.storage.door import door_store
from tests.contract.conftest import MEMORY, REDIS, SQLITE, Backend
from tests.contract.conftest import _dispose_server_stores as _dispose_server_stores
from tests.factories import CN_OPENS

SECRET = b"the fairness tests' secret, 32 b"

DOOR_STORAGES = [
    pytest.param(MEMORY, id="memory"),
    pytest.param(SQLITE, id="sqlite", marks=pytest.mark.sqlite),
    pytest.param(REDIS, id="redis", marks=pytest.mark.redis),
]


@dataclass
class Door:
    """A front door over one fresh store: its service (no poll cache: every poll reads
    storage), the sale service, the clock both run on."""

    service: FrontDoorService
    sales: Sales
    clock: ManualClock
    storage: Storage

    def open(self, event: SaleEvent) -> SaleEvent:
        self.sales.open(event)
        return event


@pytest.fixture(params=DOOR_STORAGES)
def backend(request: pytest.FixtureRequest) -> Backend:
    spec: Backend = request.param
    return spec


@pytest.fixture
def door(backend: Backend, tmp_path: Path) -> Iterator[Door]:
    storage = backend.open(tmp_path)
    clock = ManualClock(CN_OPENS - timedelta(hours=1))
    sales = Sales(storage, clock=clock)
    try:
        service = FrontDoorService(sales, door_store(storage), SECRET, cache_seconds=0)
        yield Door(service, sales, clock, storage)
    finally:
        storage.close()
