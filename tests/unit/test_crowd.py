"""The crowd model: seeded and reproducible, with the spike, decay and behaviours asked for."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from itertools import islice

import pytest

from lampo.services.audit import audit
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.sim.crowd import Plan, Visit, expected_buyers, timeline
from lampo.sim.driver import run
from lampo.sim.scenario import Scenario, ScenarioError, load, loads
from lampo.storage.memory import MemoryStorage


def visits(name: str, scale: float, seed: int) -> list[Visit]:
    return list(timeline(load(name, scale), seed))


def test_the_same_seed_gives_the_identical_sequence() -> None:
    assert visits("mi-fan-fest-2015", 0.001, 7) == visits("mi-fan-fest-2015", 0.001, 7)


def test_another_seed_gives_another_sequence() -> None:
    assert visits("flash-drop", 0.01, 1) != visits("flash-drop", 0.01, 2)


def test_visits_come_in_time_order() -> None:
    times = [v.at_ms for v in visits("mi-fan-fest-2015", 0.001, 3)]
    assert times == sorted(times)


def test_arrivals_spike_at_each_opening_then_decay() -> None:
    scenario = load("mi-fan-fest-2015", 0.01)
    india = int((scenario.event.windows["IN"].opens - scenario.event.opens).total_seconds())
    first = Counter(v.at_ms // 60_000 for v in timeline(scenario, 1) if v.market == "IN")
    minute = india // 60
    assert first[minute] > first[minute + 10] > first[minute + 60]
    assert first[minute - 1] == 0  # nobody in India before India opens


def test_the_number_of_buyers_follows_the_arrival_rates() -> None:
    scenario = load("mi-fan-fest-2015", 0.01)
    buyers = sum(1 for v in timeline(scenario, 5) if v.key.endswith(":1") and v.plan != Plan.NONE)
    assert abs(buyers - expected_buyers(scenario)) < 0.03 * expected_buyers(scenario)


def test_the_crowd_shows_every_behaviour() -> None:
    seen = visits("mi-fan-fest-2015", 0.01, 11)
    plans = Counter(v.plan for v in seen)
    assert set(plans) == set(Plan) - {Plan.TILL}  # no stores: test_scenario_stores.py
    buyers = sum(n for p, n in plans.items() if p is not Plan.NONE)
    assert 0.08 < plans[Plan.ABANDON] / buyers < 0.16
    repeats = [v for v in seen if v.key.endswith(":2")]
    assert repeats, "some buyers come back for more"
    resent = [v for v in seen if v.plan is Plan.NONE]
    firsts = {v.key: v for v in seen if v.plan is not Plan.NONE}
    assert all(firsts[v.key].items == v.items for v in resent if v.key in firsts)


def test_buyers_respect_the_markets_catalog_and_channels() -> None:
    scenario = load("mi-fan-fest-2015", 0.005)
    for v in islice(timeline(scenario, 2), 5000):
        for sku, qty in v.items:
            assert v.market in scenario.event.offers[sku].prices
            assert qty >= 1
        if v.market == "CN":
            assert v.channel.kind == "online"
    kinds = Counter(v.channel.kind for v in timeline(scenario, 2) if v.market == "IN")
    assert kinds["online"]
    assert kinds["marketplace"]


# -- multi-day crowds: daily rhythm, waves, buyers who come back -------------------------
THREE_DAYS = """
[event]
id = "three-days"
name = "Three days"
hold_seconds = 600
opens = 2021-11-09T00:00:00
closes = 2021-11-12T00:00:00

[fx]
reporting = "CNY"
on = 2021-11-09
[fx.rates]
INR = "0.086"

[markets.CN]
name = "China"
currency = "CNY"
tz = "Asia/Shanghai"

[markets.IN]
name = "India"
currency = "INR"
tz = "Asia/Kolkata"

[categories.phones]
name = "Phones"

[[skus]]
id = "phone"
category = "phones"
allocation = 50
prices = {{ CN = "999.00", IN = "9999.00" }}

[crowd]
decay_seconds = 300
comeback = {comeback}
comeback_seconds = 60
# asleep from midnight to 8, busy in the evening
rhythm = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3]

[crowd.arrivals]
CN = {{ peak_per_second = 2, baseline_per_second = 0.05 }}
IN = {{ peak_per_second = 2, baseline_per_second = 0.05 }}

[crowd.demand]
phone = 1.0

[[crowd.waves]]                 # every evening at eight, in China only
at = 20:00:00
peak_factor = 0.5
markets = ["CN"]

[[crowd.waves]]                 # the last day's midnight rush, everywhere
at = 2021-11-11T00:00:00
peak_factor = 3
decay_seconds = 60
"""


def three_days(comeback: float = 0.0) -> Scenario:
    return loads(THREE_DAYS.format(comeback=comeback), "three-days")


def local_minutes(scenario: Scenario, market: str, seed: int = 1) -> Counter[datetime]:
    """First visits of ``market`` by local minute."""
    zone = scenario.event.markets[market].zone
    start = scenario.event.opens
    return Counter(
        (start + timedelta(milliseconds=v.at_ms)).astimezone(zone).replace(second=0, microsecond=0)
        for v in timeline(scenario, seed)
        if v.market == market and v.plan is not Plan.NONE and v.key.endswith(":1")
    )


def test_the_daily_rhythm_keeps_the_night_quiet_and_the_evening_busy() -> None:
    per_minute = local_minutes(three_days(), "IN")
    by_hour = Counter()
    for minute, n in per_minute.items():
        if minute.day == 10:  # a day with no wave in India
            by_hour[minute.hour] += n
    assert sum(by_hour[h] for h in range(8)) == 0  # nobody comes at night
    evening = sum(by_hour[h] for h in range(20, 24)) / 4
    day = sum(by_hour[h] for h in range(8, 20)) / 12
    assert evening > 2 * day > 0


def test_a_daily_wave_comes_every_evening_in_its_markets_only() -> None:
    scenario = three_days()
    china, india = local_minutes(scenario, "CN"), local_minutes(scenario, "IN")
    for day in (9, 10, 11):
        eight = datetime(2021, 11, day, 20, 0, tzinfo=scenario.event.markets["CN"].zone)
        before = sum(china[eight - timedelta(minutes=m)] for m in range(1, 6))
        after = sum(china[eight + timedelta(minutes=m)] for m in range(5))
        assert after > 5 * max(before, 1), day
        in_india = datetime(2021, 11, day, 20, 0, tzinfo=scenario.event.markets["IN"].zone)
        assert sum(india[in_india + timedelta(minutes=m)] for m in range(5)) * 2 < after
    # the one-off wave: the last day's midnight, in every market's own midnight
    for market, counted in (("CN", china), ("IN", india)):
        midnight = datetime(2021, 11, 11, tzinfo=scenario.event.markets[market].zone)
        assert counted[midnight] > 50, market
        assert counted[midnight - timedelta(days=1)] == 0


def test_the_expected_buyers_follow_waves_and_rhythm() -> None:
    scenario = three_days()
    buyers = sum(local_minutes(scenario, "CN").values()) + sum(
        local_minutes(scenario, "IN").values()
    )
    assert abs(buyers - expected_buyers(scenario)) < 0.05 * expected_buyers(scenario)


def test_buyers_refused_as_sold_out_come_back_under_a_new_key() -> None:
    scenario = three_days(comeback=0.5)
    storage = MemoryStorage()
    clock = ManualClock(scenario.event.opens)
    result = run(scenario, Sales(storage, clock), clock, seed=3)
    visits = list(timeline(scenario, 3))
    assert result.requests > len(visits)  # the crowd's, and those who came back
    again = [h for h in storage.holds("three-days") if h.created_at > scenario.event.opens]
    assert again
    assert 0.3 < sum(1 for v in visits if v.comeback_ms) / len(visits) < 0.6
    assert audit(storage, scenario.event).ok


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("rhythm = [0, 0, 0, 0, 0, 0, 0, 0, 1,", "rhythm = [0, 0, 0, 0, 0, 0, 0, 1,", "rhythm"),
        ("at = 20:00:00", 'at = "20:00"', "waves[0].at"),
        ('markets = ["CN"]', 'markets = ["XX"]', "waves[0].markets[0]"),
        ("peak_factor = 3", "peak_factor = 1e9", "waves[1].peak_factor"),
    ],
)
def test_a_bad_wave_or_rhythm_is_refused_naming_its_field(old: str, new: str, field: str) -> None:
    text = THREE_DAYS.format(comeback=0).replace(old, new)
    with pytest.raises(ScenarioError) as refused:
        loads(text, "three-days")
    assert refused.value.field == f"crowd.{field}"
