"""The crowd model: seeded and reproducible, with the spike, decay and behaviours asked for."""

from __future__ import annotations

from collections import Counter
from itertools import islice

from lampo.sim.crowd import Plan, Visit, expected_buyers, timeline
from lampo.sim.scenario import load


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
    assert set(plans) == set(Plan)
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
