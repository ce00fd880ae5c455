"""The HTTP layer's coalescer: concurrent reservations reach storage as one batch, and a
failing or cancelled request does not take its neighbours down with it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from lampo.domain.holds import Hold, ReserveRequest
from lampo.services.clock import ManualClock
from lampo.services.sales import ReserveCommand, Sales
from lampo.storage.memory import MemoryStorage
from lampo.storage.port import Result
from lampo.web.coalesce import Coalescer
from tests.factories import NOW, sale_event


class CountingStorage(MemoryStorage):
    """A real memory backend that records the size of each reserve batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def areserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        self.batches.append(len(requests))
        return await super().areserve(requests)


def make() -> tuple[Sales, CountingStorage, Coalescer]:
    storage = CountingStorage()
    sales = Sales(storage, clock=ManualClock(NOW))
    sales.open(sale_event(stock={"phone-red": 50}))
    return sales, storage, Coalescer(sales.areserve_many)


def command(customer: str, items: Any = None) -> ReserveCommand:
    return ReserveCommand("fest", customer, "CN", items or {"phone-red": 1}, key=customer)


def test_reservations_submitted_together_reach_storage_as_one_batch() -> None:
    sales, storage, coalescer = make()

    async def main() -> list[Result]:
        return await asyncio.gather(*(coalescer.submit(command(f"c{i}")) for i in range(10)))

    results = asyncio.run(main())
    assert storage.batches == [10]
    assert (coalescer.batches, coalescer.requests) == (1, 10)
    assert [r.customer for r in results if isinstance(r, Hold)] == [f"c{i}" for i in range(10)]
    assert sales.stock("fest")["phone-red"].held == 10


def test_a_batch_that_fails_is_retried_one_request_at_a_time() -> None:
    sales, storage, coalescer = make()

    async def main() -> list[Result | BaseException]:
        subs = [coalescer.submit(command("good-1")), coalescer.submit(command("bad", items=5))]
        subs.append(coalescer.submit(command("good-2")))
        return await asyncio.gather(*subs, return_exceptions=True)

    first, bad, last = asyncio.run(main())
    assert isinstance(first, Hold)
    assert first.customer == "good-1"
    assert isinstance(bad, TypeError)  # items=5 is a bug in the caller, not a refusal
    assert isinstance(last, Hold)
    assert last.customer == "good-2"
    assert storage.batches == [1, 1]  # the whole batch failed before storage; then one by one
    assert sales.stock("fest")["phone-red"].held == 2


def test_a_refusal_is_the_result_of_its_own_request_only() -> None:
    sales, _, coalescer = make()

    async def main() -> list[Result]:
        subs = [coalescer.submit(command("ok")), coalescer.submit(command("x", {"nope": 1}))]
        return await asyncio.gather(*subs)

    ok, refused = asyncio.run(main())
    assert isinstance(ok, Hold)
    assert getattr(refused, "reason", None) == "unknown-sku"
    assert sales.stock("fest")["phone-red"].held == 1


def test_a_request_cancelled_while_waiting_leaves_its_neighbours_their_results() -> None:
    _, storage, coalescer = make()

    async def main() -> list[Result | BaseException]:
        tasks = [asyncio.ensure_future(coalescer.submit(command(f"c{i}"))) for i in range(3)]
        await asyncio.sleep(0)  # every task has queued its command; the batch is not sent
        tasks[0].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    gone, *rest = asyncio.run(main())
    assert isinstance(gone, asyncio.CancelledError)
    assert [r.customer for r in rest if isinstance(r, Hold)] == ["c1", "c2"]
    assert storage.batches == [3]  # the departed client's request was already on its way


@pytest.mark.parametrize("inflight", [1, 2])
def test_requests_beyond_the_batch_size_go_in_later_batches(inflight: int) -> None:
    sales, storage, _ = make()
    coalescer = Coalescer(sales.areserve_many, max_batch=4, max_inflight=inflight)

    async def main() -> list[Result]:
        return await asyncio.gather(*(coalescer.submit(command(f"c{i}")) for i in range(10)))

    results = asyncio.run(main())
    assert sorted(storage.batches, reverse=True) == [4, 4, 2]
    assert all(isinstance(r, Hold) for r in results)
