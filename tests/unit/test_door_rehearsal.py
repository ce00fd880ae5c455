"""The rehearsal through a front door (``sim.door``) on the memory backend: the lottery
admits only its winners, the proof of work is solved and checked on every join, every hold
comes from an admission, and a door without registration lets anyone queue."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.sim import door
from lampo.sim.crowd import bot_plan
from lampo.sim.scenario import Scenario, loads
from lampo.storage.memory import MemoryStorage

BASE = """
[event]
id = "drop"
name = "Drop"
hold_seconds = 120
limit_per_customer = 1
opens = 2014-09-02T14:00:00
closes = 2014-09-02T14:10:00

[fx]
reporting = "INR"
on = 2014-09-02

[markets.IN]
name = "India"
currency = "INR"
tz = "Asia/Kolkata"

[categories.phones]
name = "Phones"

[[skus]]
id = "redmi"
category = "phones"
allocation = 50
limit = 1
prices = { IN = "5999.00" }

[front_door]
admit_per_second = 20
admission_seconds = 60
pow_bits = 3
%s

[crowd]
decay_seconds = 10
retry = 0.2
repeat = 0.1

[crowd.arrivals]
IN = { peak_per_second = 60, baseline_per_second = 0.2 }

[crowd.demand]
redmi = 1.0

[crowd.bots]
share_of_accounts = 0.02
share_of_requests = 0.5

[crowd.door]
early = 0.3
early_seconds = 60
poll_seconds = 1
"""

LOTTERY = """registration_opens = 2014-08-26T12:00:00
registration_closes = 2014-09-01T12:00:00
require_registration = true
unique = ["device"]
lottery_factor = 2"""


def rehearse(scenario: Scenario, seed: int = 1) -> tuple[door.DoorResult, Sales]:
    clock = ManualClock(scenario.event.opens)
    sales = Sales(MemoryStorage(), clock)
    return door.run(scenario, sales, clock, seed=seed), sales


def test_with_a_lottery_only_the_winners_queue_and_buy() -> None:
    result, sales = rehearse(loads(BASE % LOTTERY, "drop.toml"))
    assert result.registered == result.visitors
    assert result.drawn == 2 * 50  # lottery_factor x units
    assert result.refusals["not-drawn"] > 0
    holds = list(sales.storage.holds("drop"))
    assert holds
    assert len({h.customer for h in holds}) <= result.drawn
    assert result.sim.holds <= result.admitted <= result.drawn
    assert sum(lv.sold for lv in sales.storage.stock("drop").values()) == result.units <= 50


def test_every_join_solves_the_proof_of_work_and_every_hold_has_an_admission() -> None:
    scenario = loads(BASE % "", "drop.toml")
    result, sales = rehearse(scenario)
    plan = bot_plan(scenario, "IN")
    assert result.registered == 0  # no registration asked for
    assert result.refusals["proof-of-work"] == 0
    assert result.joins >= result.visitors
    holds = list(sales.storage.holds("drop"))
    assert len(holds) == result.sim.holds <= result.admitted
    # every bot's buys without an admission, and its try of another bot's, are refused
    assert result.refusals["not-admitted"] >= plan.accounts * (plan.each // 2)
    assert result.bot_unit_share <= result.bot_account_share
    assert result.units == 50  # sold out


def test_the_bots_requests_join_again_and_get_the_same_place() -> None:
    scenario = loads(BASE % "", "drop.toml")
    result, sales = rehearse(scenario)
    assert result.bot_accounts > 0
    assert result.bot_requests > result.bot_accounts
    state = door.FrontDoorService(sales, door.door_store(sales.storage), door.SECRET).state(
        "drop", "IN"
    )
    assert state.joined == result.visitors - result.refusals["not-drawn"]  # a place each


def test_an_event_without_a_front_door_is_not_rehearsed_through_one() -> None:
    door_table = "[front_door]\nadmit_per_second = 20\nadmission_seconds = 60\npow_bits = 3\n"
    text = (BASE % "").replace(door_table, "")
    scenario = loads(text, "drop.toml")
    assert scenario.event.front_door is None
    clock = ManualClock(scenario.event.opens)
    with pytest.raises(ValueError, match="has no front door"):
        door.run(scenario, Sales(MemoryStorage(), clock), clock)


class Recording(ManualClock):
    """A clock that keeps every instant it was set to."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.instants: list[datetime] = []

    def set(self, when: datetime) -> None:
        self.instants.append(when)
        super().set(when)


def test_the_door_requests_are_made_in_time_order_early_ones_before_the_opening() -> None:
    """Visitors moved before the opening and everyone after them: the door's clock never
    goes back (no registration here: every instant is a door request's)."""
    scenario = loads(BASE % "", "drop.toml")
    clock = ManualClock(scenario.event.opens)
    recording = Recording(scenario.event.opens)
    result = door.run(scenario, Sales(MemoryStorage(), clock), clock, door_clock=recording)
    instants = recording.instants
    assert len(instants) >= result.requests
    assert instants == sorted(instants)
    early = [t for t in instants if t < scenario.event.opens]
    assert early  # the pre-queue
    assert min(early) >= scenario.event.opens - timedelta(seconds=60)


@pytest.mark.parametrize("extra", ["", LOTTERY], ids=["queue", "lottery"])
def test_the_same_seed_rehearses_the_same_sale_through_the_door(extra: str) -> None:
    """The pre-queue's order, the draw and every id come from the rehearsal's seed: two
    runs with one seed admit and sell to the same people in the same order (a third with
    another seed does not)."""

    def outcome(seed: int) -> tuple[object, ...]:
        result, sales = rehearse(loads(BASE % extra, "drop.toml"), seed)
        holds = sorted(sales.storage.holds("drop"), key=lambda h: (h.created_at, h.customer))
        sold = [(h.customer, h.state, h.units_by_sku()) for h in holds]
        store = door.door_store(sales.storage)
        buyers = sorted({h.customer for h in holds})
        places = [(b, getattr(store.entry("drop", "IN", b), "seq", None)) for b in buyers]
        counts = (result.admitted, result.units, result.bot_units, dict(result.refusals))
        return counts, sold, places

    assert outcome(7) == outcome(7)
    assert outcome(7) != outcome(8)
