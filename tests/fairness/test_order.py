"""The waiting room's order, measured through the service on real storage: after the
opening, admission order is arrival order (ties only within the clock's resolution); the
pre-queue's order is uniform (a chi-square test that can fail)."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.domain.frontdoor import PlaceState
from lampo.services import frontdoor as frontdoor_service
from tests.factories import CN_OPENS, door_event
from tests.fairness.conftest import Door

_events = itertools.count()


# each example opens an event of its own on the one store: sharing it is intended
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    arrivals=st.lists(st.integers(0, 999), min_size=2, max_size=20),
)
def test_after_the_opening_admission_order_is_arrival_order(
    door: Door, arrivals: list[int]
) -> None:
    """Visitors arrive in the opening second at millisecond instants (many share one: a
    tie, in which any order is fair); the line admits one a second from the first
    arrival (it starts when the queue has someone to admit), so nobody is admitted
    before everyone arrived. Each second, the admitted are a prefix of the arrival
    order: nobody who arrived later is admitted before one who came earlier."""
    event_id = f"fair{next(_events)}"
    door.open(door_event(event_id, {"phone-red": 10_000}, admit_per_second=1))
    order = sorted(range(len(arrivals)), key=lambda i: arrivals[i])
    tickets: dict[int, str] = {}
    for i in order:
        door.clock.set(CN_OPENS + timedelta(milliseconds=arrivals[i]))
        tickets[i] = door.service.join(event_id, "CN", f"v{i}").token
    first = CN_OPENS + timedelta(milliseconds=min(arrivals))  # the line starts there
    for second in range(1, len(arrivals) + 1):
        door.clock.set(first + timedelta(seconds=second))
        admitted = {
            i
            for i, t in tickets.items()
            if door.service.poll(t, f"v{i}").state is PlaceState.ADMITTED
        }
        assert len(admitted) == second
        waiting = set(tickets) - admitted
        if waiting:
            assert max(arrivals[i] for i in admitted) <= min(arrivals[i] for i in waiting)


def test_joins_at_one_instant_from_many_threads_get_distinct_places(door: Door) -> None:
    """32 threads join at the same instant (a tie): every one gets a place of its own,
    the places 1..32, none lost or given twice."""
    event_id = f"fair{next(_events)}"
    door.open(door_event(event_id, {"phone-red": 100}))
    door.clock.set(CN_OPENS + timedelta(seconds=1))
    seqs: dict[str, int] = {}
    barrier = threading.Barrier(32)

    def join(n: int) -> None:
        barrier.wait()
        seqs[f"v{n}"] = door.service.join(event_id, "CN", f"v{n}").seq

    threads = [threading.Thread(target=join, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs.values()) == list(range(1, 33))
    assert door.service.state(event_id, "CN").joined == 32


# -- the pre-queue ---------------------------------------------------------------------------
#: Visitors in each pre-queue, and pre-queues drawn (each under its own fixed seed).
VISITORS, RUNS = 5, 300
#: The chi-square statistic's bound for VISITORS - 1 = 4 degrees of freedom at a
#: significance of 0.001: a uniform order exceeds it with probability 0.1 %, so a correct
#: pre-queue fails this test for about one choice of seeds in a thousand. The seeds are
#: fixed (``random.Random(run)``): the same result on every run, in CI too.
CHI2_4_AT_0_001 = 18.467


def chi_square(positions: list[int], k: int) -> float:
    """Pearson's statistic of ``positions`` (1..k) against the uniform law."""
    counts = Counter(positions)
    expected = len(positions) / k
    return sum((counts.get(p, 0) - expected) ** 2 / expected for p in range(1, k + 1))


def test_the_statistic_catches_an_order_that_is_not_uniform() -> None:
    """The test below can fail: the first to join always first (a FIFO pre-queue), or
    first twice as often as by chance, is far past the bound."""
    assert chi_square([1] * RUNS, VISITORS) > 50 * CHI2_4_AT_0_001
    rng = random.Random(0)
    tilted = [1 if rng.random() < 0.4 else rng.randint(2, VISITORS) for _ in range(RUNS)]
    assert chi_square(tilted, VISITORS) > CHI2_4_AT_0_001


def test_the_pre_queue_order_is_uniform(door: Door, monkeypatch: pytest.MonkeyPatch) -> None:
    """``RUNS`` pre-queues of ``VISITORS`` each, everyone joining before the opening, the
    same visitor always first, one second ahead of the others: its place after the
    freeze is uniform over 1..VISITORS. The queue's seed and the ticket ids, the two
    random inputs of the order, are drawn from ``random.Random(run)`` (the seed through
    the store's own ``seed``, first stands; the ids by replacing the service's id source
    for this test) so the outcome is the same on every run."""
    positions = []
    for run in range(RUNS):
        rng = random.Random(run)
        monkeypatch.setattr(frontdoor_service, "new_id", lambda r=rng: f"{r.getrandbits(128):032x}")
        event_id = f"pre{run}"
        door.open(door_event(event_id, {"phone-red": 10}))
        door.service.store.seed(event_id, "CN", rng.randbytes(32))
        tickets = {}
        for n in range(VISITORS):
            door.clock.set(CN_OPENS - timedelta(minutes=10) + timedelta(seconds=n))
            tickets[n] = door.service.join(event_id, "CN", f"v{n}").token
        door.clock.set(CN_OPENS + timedelta(milliseconds=1))
        seqs = {n: door.service.poll(t, f"v{n}").seq for n, t in tickets.items()}
        assert sorted(seqs.values()) == list(range(1, VISITORS + 1))
        positions.append(seqs[0])
    statistic = chi_square(positions, VISITORS)
    assert statistic < CHI2_4_AT_0_001, (statistic, Counter(positions))
