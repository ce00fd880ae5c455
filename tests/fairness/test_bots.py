"""Bots at 1 % of the accounts sending half the requests end with no more than their fair
share of the stock (their share of the accounts).

Two ways: the rehearsal of ``redmi-1s-2014-door`` (bots on the opening millisecond behind a
pre-queue of people who came early: they get nothing; without the door they take a unit
per account before anyone, ``tests/unit/test_crowd_bots.py``), and bots at their best
through the service: in the pre-queue with everyone, joining again and again. There the
pre-queue's random order gives them their share of the places on average, and no request
more buys them more."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from lampo.domain.errors import NotAdmitted
from lampo.domain.frontdoor import PlaceState
from lampo.services import frontdoor as frontdoor_service
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.sim import door as rehearsal
from lampo.sim.scenario import load
from tests.contract.conftest import MEMORY, SQLITE, Backend
from tests.factories import CN_OPENS, door_event
from tests.fairness.conftest import Door

#: The door scenario at a small scale: about 3,700 visitors, 200 phones.
SCALE = 0.005


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", [pytest.param(MEMORY, id="memory"), pytest.param(SQLITE, id="sqlite")]
)
def test_in_the_rehearsal_bots_get_no_more_than_their_share(
    backend: Backend, tmp_path: Path
) -> None:
    """The rehearsal on memory and SQLite (Redis runs the service test below)."""
    scenario = load("redmi-1s-2014-door", SCALE)
    storage = backend.open(tmp_path)
    try:
        clock = ManualClock(scenario.event.opens)
        sales = Sales(storage, clock)
        result = rehearsal.run(scenario, sales, clock, seed=5)
    finally:
        storage.close()
    assert result.bot_accounts > 0
    assert result.bot_account_share == pytest.approx(0.01, rel=0.1)
    assert result.units == scenario.event.total_allocation  # sold out
    assert result.bot_unit_share <= result.bot_account_share
    # the bots tried: joins again (the same place) and buys without an admission refused
    assert result.refusals["not-admitted"] > result.bot_accounts
    assert result.registered == result.visitors
    # every unit sold went through an admission: no more holds than admitted buyers
    assert result.sim.holds <= result.admitted


#: Visitors per pre-queue, of which bots; units on sale; pre-queues drawn (fixed seeds).
PEOPLE, BOTS, UNITS, RUNS = 200, 2, 20, 40
#: Each bot joins this many times (the same place back each time): with PEOPLE - BOTS
#: people joining once, the bots send half the requests.
BOT_JOINS = (PEOPLE - BOTS) // BOTS


@pytest.mark.slow
def test_bots_in_the_pre_queue_get_their_share_of_places_on_average(
    door: Door, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``RUNS`` sales of ``UNITS`` units, each to a pre-queue of ``PEOPLE`` accounts of
    which ``BOTS`` bots (1 %), the bots joining ``BOT_JOINS`` times each and first (half
    the requests) and trying to buy without an admission: the first ``UNITS`` places are
    admitted and buy. The bots' share of the units sold, over the runs, is their share of
    the accounts within three standard errors of the mean of ``RUNS`` hypergeometric
    draws (1 % + 1.0 % here; a fair order exceeds the bound with probability 0.13 %, and
    the seeds are fixed: 0.875 % with these). A bot's extra requests change nothing: the
    same place comes back."""
    share = BOTS / PEOPLE
    bot_units = 0
    for run in range(RUNS):
        rng = random.Random(run)
        monkeypatch.setattr(frontdoor_service, "new_id", lambda r=rng: f"{r.getrandbits(128):032x}")
        event_id = f"bots{run}"
        door.open(door_event(event_id, {"phone-red": UNITS}, admit_per_second=UNITS))
        door.service.store.seed(event_id, "CN", rng.randbytes(32))
        door.clock.set(CN_OPENS - timedelta(minutes=5))
        tickets = {}
        for b in range(BOTS):
            first = door.service.join(event_id, "CN", f"bot{b}")
            for _ in range(BOT_JOINS - 1):
                assert door.service.join(event_id, "CN", f"bot{b}").token
            tickets[f"bot{b}"] = first.token
            with pytest.raises(NotAdmitted):
                door.service.check_admission("", f"bot{b}", event_id, "CN")
        for n in range(PEOPLE - BOTS):
            tickets[f"p{n}"] = door.service.join(event_id, "CN", f"p{n}").token
        assert door.service.state(event_id, "CN").joined == PEOPLE  # one place per account
        door.clock.set(CN_OPENS + timedelta(seconds=1))  # the first UNITS places admitted
        for buyer, ticket in tickets.items():
            poll = door.service.poll(ticket, buyer)
            if poll.state is PlaceState.ADMITTED and poll.admission:
                adm = door.service.check_admission(poll.admission, buyer, event_id, "CN")
                door.sales.reserve(event_id, buyer, "CN", {"phone-red": 1}, key=f"adm:{adm}")
        held = list(door.storage.holds(event_id))
        assert len(held) == UNITS
        bot_units += sum(h.units for h in held if h.customer.startswith("bot"))
    got = bot_units / (RUNS * UNITS)
    n, total, k = UNITS, PEOPLE, BOTS
    var = n * (k / total) * (1 - k / total) * (total - n) / (total - 1)  # hypergeometric
    bound = share + 3 * (var / RUNS) ** 0.5 / n
    assert got <= bound, (got, bound)
