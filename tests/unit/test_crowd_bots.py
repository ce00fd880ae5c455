"""Bots in the crowd (``[crowd.bots]``): few accounts, many requests, all on the opening
millisecond; bounded, counted by the run's budget, and, with no front door, fast enough to
take far more than their share of the stock."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.sim.crowd import bot_plan, check_work, expected_requests, is_bot, timeline
from lampo.sim.crowd_spec import MAX_BOT_ACCOUNTS, MAX_BOT_REQUESTS, Bots, DoorVisitors
from lampo.sim.driver import run
from lampo.sim.scenario import Scenario, ScenarioError, loads
from lampo.storage.memory import MemoryStorage

BASE = """
[event]
id = "drop"
name = "Drop"
hold_seconds = 300
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
allocation = 400
limit = 1
prices = { IN = "5999.00" }

[crowd]
decay_seconds = 20
retry = 0.1

[crowd.arrivals]
IN = { peak_per_second = 200, baseline_per_second = 1 }

[crowd.demand]
redmi = 1.0
"""

BOTS = """
[crowd.bots]
share_of_accounts = 0.01
share_of_requests = 0.5
"""


def scenario(extra: str = BOTS) -> Scenario:
    return loads(BASE + extra, "drop.toml")


def test_bots_send_their_share_of_requests_from_their_share_of_accounts() -> None:
    s = scenario()
    plan = bot_plan(s, "IN")
    visits = list(timeline(s, 3))
    bots = [v for v in visits if v.bot]
    humans = [v for v in visits if not v.bot]
    accounts = {v.customer for v in bots}
    people = {v.customer for v in humans}
    assert len(accounts) == plan.accounts
    assert len(bots) == plan.requests
    assert all(is_bot(c) for c in accounts)
    assert not any(is_bot(c) for c in people)
    # against the expected crowd: 1 % of accounts, half the requests (the crowd is random)
    assert accounts
    assert len(accounts) / (len(accounts) + len(people)) == pytest.approx(0.01, rel=0.2)
    assert len(bots) / len(visits) == pytest.approx(0.5, rel=0.1)


def test_bots_all_come_on_the_opening_millisecond_before_anyone() -> None:
    visits = list(timeline(scenario(), 3))
    bots = [v for v in visits if v.bot]
    assert {v.at_ms for v in bots} == {0}
    first_human = next(i for i, v in enumerate(visits) if not v.bot)
    assert first_human == len(bots)
    per_account = Counter(v.customer for v in bots)
    assert set(per_account.values()) == {bot_plan(scenario(), "IN").each}
    assert len({v.key for v in bots}) == len(bots)  # a new idempotency key each time


def test_adding_bots_leaves_the_human_crowd_unchanged() -> None:
    without = list(timeline(scenario(""), 11))
    with_bots = [v for v in timeline(scenario(), 11) if not v.bot]
    assert with_bots == without


def test_the_run_budget_counts_the_bots_requests() -> None:
    plain, botted = scenario(""), scenario()
    plan = bot_plan(botted, "IN")
    assert expected_requests(botted) == pytest.approx(expected_requests(plain) + plan.requests)
    check_work(plain, max_requests=math.ceil(expected_requests(plain)))
    with pytest.raises(ScenarioError, match="MAX_SIM_REQUESTS"):
        check_work(botted, max_requests=math.ceil(expected_requests(plain)))


def test_a_crowd_without_bots_or_door_table_reads_the_defaults() -> None:
    crowd = scenario("").crowd
    assert crowd.bots is None
    assert crowd.door == DoorVisitors()
    assert bot_plan(scenario(""), "IN").requests == 0
    assert scenario().crowd.bots == Bots(0.01, 0.5)


def test_without_a_front_door_the_opening_millisecond_bots_take_far_more_than_their_share() -> None:
    """The problem the front door solves: every bot account gets its phone first."""
    s = scenario()
    clock = ManualClock(s.event.opens)
    sales = Sales(MemoryStorage(), clock)
    run(s, sales, clock, seed=3)
    holds = list(sales.storage.holds(s.event.id))
    sold_to_bots = sum(
        line.quantity
        for h in holds
        if is_bot(h.customer) and h.state.value == "paid"
        for line in h.lines
    )
    accounts = bot_plan(s, "IN").accounts
    assert sold_to_bots == accounts  # one each (the limit), before any human
    sold = sales.storage.stock(s.event.id)["redmi"].sold
    assert sold_to_bots / sold > 2 * 0.01  # several times their 1 % of the accounts


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("share_of_accounts = 0\nshare_of_requests = 0.5", "share_of_accounts"),
        (
            f"share_of_accounts = {MAX_BOT_ACCOUNTS + 0.01}\nshare_of_requests = 0.5",
            "share_of_accounts",
        ),
        (
            f"share_of_accounts = 0.01\nshare_of_requests = {MAX_BOT_REQUESTS + 0.001}",
            "share_of_requests",
        ),
        ("share_of_accounts = 0.01", "share_of_requests"),
        ("share_of_accounts = 0.01\nshare_of_requests = 0.5\nspeed = 3", "speed"),
        ('share_of_accounts = "1 %"\nshare_of_requests = 0.5', "share_of_accounts"),
    ],
)
def test_a_bad_bots_table_is_refused_naming_its_field(table: str, field: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario(f"\n[crowd.bots]\n{table}\n")
    assert field in str(caught.value)


@settings(max_examples=60, deadline=None)
@given(
    accounts=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70)
    ),
    requests=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70)
    ),
    early=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5)),
    poll=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6)),
)
def test_any_bots_or_door_numbers_are_read_within_their_bounds_or_refused(
    accounts: float, requests: float, early: float, poll: float
) -> None:
    def toml(x: float) -> str:
        if isinstance(x, float) and math.isnan(x):
            return "nan"
        if isinstance(x, float) and math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return repr(x)

    text = (
        f"\n[crowd.bots]\nshare_of_accounts = {toml(accounts)}\n"
        f"share_of_requests = {toml(requests)}\n"
        f"\n[crowd.door]\nearly = {toml(early)}\npoll_seconds = {toml(poll)}\n"
    )
    try:
        s = scenario(text)
    except ScenarioError:
        return
    bots = s.crowd.bots
    assert bots is not None
    assert 0 < bots.share_of_accounts <= MAX_BOT_ACCOUNTS
    assert 0 <= bots.share_of_requests <= MAX_BOT_REQUESTS
    assert 0 <= s.crowd.door.early <= 1
    assert 0.1 <= s.crowd.door.poll_seconds <= 600
