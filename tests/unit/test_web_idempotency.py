"""The HTTP edge's memory of idempotent calls (``web/idempotency.py``): successes only,
replayed to the same body only, and identical calls in flight sharing one answer."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampo.web.idempotency import REPLAYED, Answer, Calls, ReplayCache

STATUSES = (200, 201, 400, 409, 422, 503)


@dataclass(frozen=True)
class Call:
    key: str
    body: bytes  # stands for the body's fingerprint
    status: int  # what running it answers


calls = st.builds(
    Call,
    st.sampled_from(["k1", "k2", "k3"]),
    st.sampled_from([b"A", b"B"]),
    st.sampled_from(STATUSES),
)


def answer_of(call: Call, run: int) -> Answer:
    """What the ``run``-th evaluation of ``call`` answers (each evaluation's own body)."""
    return call.status, f"{call.key}:{call.body.decode()}:{run}".encode(), ()


def key_of(call: Call) -> tuple[str, ...]:
    return ("buyer", "POST", "/v1/holds", call.key)


@settings(max_examples=200)
@given(st.lists(calls, max_size=30))
def test_one_after_another_a_success_is_replayed_to_its_body_and_nothing_else(
    sequence: list[Call],
) -> None:
    """Model: per key, the last success and its body. A call is evaluated unless that is
    its body; a success is remembered (another body's success takes the key over, as
    storage's answer to it did); a refusal never is."""
    memory = Calls(entries=100, seconds=3600)
    remembered: dict[str, tuple[bytes, Answer]] = {}

    async def main() -> None:
        runs = 0
        for call in sequence:
            evaluated: list[Answer] = []

            async def run(
                call: Call = call, evaluated: list[Answer] = evaluated, runs: int = runs
            ) -> Answer:
                evaluated.append(answer_of(call, runs))
                return evaluated[-1]

            got = await memory.once(key_of(call), call.body, run)
            known = remembered.get(call.key)
            if known is not None and known[0] == call.body:
                assert not evaluated, "a remembered success was evaluated again"
                status, body, headers = known[1]
                assert got == (status, body, (*headers, REPLAYED))
            else:
                assert evaluated == [got], "not evaluated, or not given its own answer"
                runs += 1
                if 200 <= call.status < 300:
                    remembered[call.key] = (call.body, got)

    asyncio.run(main())


@settings(max_examples=200)
@given(st.lists(calls, min_size=1, max_size=30))
def test_calls_at_once_share_one_evaluation_per_key_and_body(sequence: list[Call]) -> None:
    """Every call starts before any evaluation ends: each (key, body) is evaluated once,
    every call gets its (key, body)'s answer (refusals included; the others marked
    replayed), and a key's evaluations never overlap."""
    memory = Calls(entries=100, seconds=3600)
    gate = asyncio.Event()
    runs: Counter[tuple[str, bytes]] = Counter()
    answers: dict[tuple[str, bytes], Answer] = {}
    busy: set[str] = set()

    async def call(one: Call) -> Answer:
        async def run() -> Answer:
            assert one.key not in busy, "two evaluations under one key at once"
            busy.add(one.key)
            try:
                await gate.wait()
                await asyncio.sleep(0)  # storage's round trip: the loop serves others
                runs[(one.key, one.body)] += 1
                answers[(one.key, one.body)] = answer_of(one, 0)
                return answers[(one.key, one.body)]
            finally:
                busy.discard(one.key)

        return await memory.once(key_of(one), one.body, run)

    async def main() -> list[Answer]:
        started = [asyncio.ensure_future(call(one)) for one in sequence]
        await asyncio.sleep(0)  # every call reaches the memory before any ends
        gate.set()
        return await asyncio.gather(*started)

    got = asyncio.run(main())
    assert set(runs.values()) == {1}
    assert set(runs) == {(one.key, one.body) for one in sequence}
    for one, answer in zip(sequence, got, strict=True):
        status, body, headers = answers[(one.key, one.body)]
        assert answer in ((status, body, headers), (status, body, (*headers, REPLAYED)))
    for key in {one.key for one in sequence}:
        shared = [a for one, a in zip(sequence, got, strict=True) if one.key == key]
        assert sum(REPLAYED not in a[2] for a in shared) == len(
            {one.body for one in sequence if one.key == key}
        ), "one call per body was the one evaluated"


def test_a_call_that_fails_unexpectedly_leaves_its_twin_to_be_evaluated() -> None:
    memory = Calls(entries=10, seconds=60)
    key = ("buyer", "POST", "/v1/holds", "k")
    gate = asyncio.Event()

    async def crash() -> Answer:
        await gate.wait()
        raise RuntimeError("a bug")

    async def fine() -> Answer:
        return 201, b"hold", ()

    async def main() -> tuple[BaseException | Answer, ...]:
        first = asyncio.ensure_future(memory.once(key, b"A", crash))
        await asyncio.sleep(0)
        twin = asyncio.ensure_future(memory.once(key, b"A", fine))
        await asyncio.sleep(0)
        gate.set()
        return tuple(await asyncio.gather(first, twin, return_exceptions=True))

    first, twin = asyncio.run(main())
    assert isinstance(first, RuntimeError)
    assert twin == (201, b"hold", ())


def test_a_waiter_that_goes_away_does_not_cancel_the_call_it_waits_for() -> None:
    memory = Calls(entries=10, seconds=60)
    key = ("buyer", "POST", "/v1/holds", "k")
    gate = asyncio.Event()

    async def slow() -> Answer:
        await gate.wait()
        return 201, b"hold", ()

    async def main() -> Answer:
        first = asyncio.ensure_future(memory.once(key, b"A", slow))
        await asyncio.sleep(0)
        twin = asyncio.ensure_future(memory.once(key, b"A", slow))
        await asyncio.sleep(0)
        twin.cancel()
        gate.set()
        return await first

    assert asyncio.run(main()) == (201, b"hold", ())


def test_a_cancelled_call_leaves_its_twin_to_be_evaluated() -> None:
    memory = Calls(entries=10, seconds=60)
    key = ("buyer", "POST", "/v1/holds", "k")

    async def never() -> Answer:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def fine() -> Answer:
        return 201, b"hold", ()

    async def main() -> Answer:
        first = asyncio.ensure_future(memory.once(key, b"A", never))
        await asyncio.sleep(0)
        twin = asyncio.ensure_future(memory.once(key, b"A", fine))
        await asyncio.sleep(0)
        first.cancel()
        return await twin

    assert asyncio.run(main()) == (201, b"hold", ())


@pytest.mark.parametrize("status", [400, 409, 422, 429, 500, 503])
def test_a_refusal_is_never_remembered_as_a_key_s_reply(status: int) -> None:
    cache = ReplayCache(entries=10, seconds=60)
    with pytest.raises(ValueError, match="not remembered"):
        cache.put(("buyer", "POST", "/v1/holds", "k"), b"A", (status, b"{}", ()))
