"""The service's sold-out memory (``soldout_ttl``) never answers before a key's record.

A command for a SKU the memory knows sold out reaches ``reserve`` only if its key has an
idempotency record (``Storage.recorded``, a read): then ``reserve`` answers it from the
record, so a replay still gets its hold and another request under the key its conflict.
A key with no record is refused sold out, and that refusal arms nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampo.domain.errors import IdempotencyConflict, LampoError, SoldOut
from lampo.domain.holds import Hold, HoldState, ReserveRequest
from lampo.services.clock import ManualClock
from lampo.services.sales import ReserveCommand, Sales
from lampo.storage.memory import MemoryStorage
from lampo.storage.port import KeyRef, Result
from tests.factories import NOW, sale_event


class CountingStorage(MemoryStorage):
    """A real memory backend that counts the requests ``reserve`` and ``recorded`` get."""

    def __init__(self) -> None:
        super().__init__()
        self.reserved = 0
        self.looked_up = 0

    def reserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        self.reserved += len(requests)
        return super().reserve(requests)

    def recorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        self.looked_up += len(keys)
        return super().recorded(keys)


def make(ttl: float) -> tuple[Sales, CountingStorage]:
    storage = CountingStorage()
    sales = Sales(storage, clock=ManualClock(NOW), soldout_ttl=ttl)
    sales.open(sale_event(stock={"tv-55": 2, "phone-red": 3}))
    return sales, storage


def buy(customer: str, key: str, **items: int) -> ReserveCommand:
    return ReserveCommand(
        "fest", customer, "CN", {k.replace("_", "-"): v for k, v in items.items()}, key=key
    )


@pytest.mark.parametrize("run", ["sync", "async"])
def test_a_replay_of_the_last_unit_gets_its_hold_from_a_sold_out_memory(run: str) -> None:
    sales, storage = make(ttl=60)

    def reserve(*commands: ReserveCommand) -> list[Result]:
        if run == "sync":
            return sales.reserve_many(commands)
        return asyncio.run(sales.areserve_many(commands))

    [first] = reserve(buy("c1", "k", tv_55=2))
    assert isinstance(first, Hold)
    [late] = reserve(buy("c2", "k2", tv_55=1))
    assert isinstance(late, SoldOut)
    assert late.available == 0  # from storage: the memory knows the SKU sold out now
    reserved = storage.reserved
    replay, conflict, fresh = reserve(
        buy("c1", "k", tv_55=2), buy("c1", "k", tv_55=1), buy("c3", "k3", tv_55=1)
    )
    assert replay == first
    assert conflict == IdempotencyConflict("fest:c1:k")
    assert fresh == SoldOut("tv-55", 1, 0)
    assert storage.looked_up == 3
    assert storage.reserved == reserved + 2, "only the keys with a record reach reserve"
    # beside them, a command for a SKU not known sold out goes to reserve as usual
    other, again = reserve(buy("c4", "k4", phone_red=1), buy("c1", "k", tv_55=2))
    assert isinstance(other, Hold)
    assert again == first
    assert storage.reserved == reserved + 4
    assert sales.refusals[("fest", "sold-out")] == 2
    assert sales.refusals[("fest", "idempotency-conflict")] == 1


@dataclass(frozen=True)
class Step:
    """A batch of reservations, then maybe a release of the n-th hold placed so far."""

    commands: tuple[tuple[str, str, str, int], ...]  # (customer, key, sku, quantity)
    release: int | None


steps = st.builds(
    Step,
    st.lists(
        st.tuples(
            st.sampled_from(["c1", "c2"]),
            st.sampled_from(["k1", "k2", "k3"]),
            st.sampled_from(["tv-55", "phone-red"]),
            st.integers(1, 2),
        ),
        min_size=1,
        max_size=3,
    ).map(tuple),
    st.none() | st.integers(0, 5),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(steps, max_size=10), st.booleans())
def test_the_memory_gives_every_answer_storage_would(sequence: list[Step], run_async: bool) -> None:
    """The same commands through a service with the memory and one without (each over a
    store of its own, changed only by it): the same answer every time, holds matched by
    the key that first made them."""
    runs = [make(ttl=60), make(ttl=0)]
    placed: list[list[str]] = [[], []]  # ids of the holds each run made, in order
    firsts: list[dict[str, str]] = [{}, {}]  # "customer:key" -> id of the hold it made
    for step in sequence:
        commands = [buy(c, k, **{sku.replace("-", "_"): q}) for c, k, sku, q in step.commands]
        answers = []
        for n, (sales, _) in enumerate(runs):
            if run_async:
                results = asyncio.run(sales.areserve_many(commands))
            else:
                results = sales.reserve_many(commands)
            told: list[object] = []
            for cmd, result in zip(commands, results, strict=True):
                if isinstance(result, LampoError):
                    told.append(result)
                    continue
                name = f"{cmd.customer}:{cmd.key}"
                assert firsts[n].setdefault(name, result.id) == result.id, "a second hold"
                if result.id not in placed[n]:
                    placed[n].append(result.id)
                told.append(("hold of", name, result.lines, result.state))
            answers.append(told)
            if step.release is not None and step.release < len(placed[n]):
                hold = sales.hold(placed[n][step.release])
                if hold.state is HoldState.HELD:
                    sales.release(hold.id)
        assert answers[0] == answers[1], step
    with_memory, without = runs
    assert with_memory[0].stock("fest") == without[0].stock("fest")
