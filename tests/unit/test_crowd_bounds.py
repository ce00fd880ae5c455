"""Every number of a crowd is bounded and a run's work is budgeted, so no scenario makes
``lampo simulate`` or ``lampo demo`` hang: generated crowds are refused up front or run to
the end within their budget (each test has its own timeout; no timing is asserted)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lampo.domain.errors import InvalidRequest, LampoError
from lampo.services.audit import audit
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.sim.crowd import (
    MAX_SIM_REQUESTS,
    check_work,
    expected_requests,
    market_seconds,
    timeline,
)
from lampo.sim.driver import run
from lampo.sim.scenario import (
    MAX_ARRIVALS_PER_SECOND,
    MAX_DECAY_SECONDS,
    MAX_PAY_DELAY_SECONDS,
    MAX_WEIGHT,
    Scenario,
    ScenarioError,
    load,
    loads,
)
from lampo.storage.memory import MemoryStorage

T = TypeVar("T")

pytestmark = pytest.mark.timeout(240)

#: A small budget, so that every accepted run is quick to run whole.
REQUESTS, SECONDS = 4_000, 200_000

TEMPLATE = """
[event]
id = "crowd"
name = "Crowd"
hold_seconds = {hold}
opens = 2015-04-08T10:00:00
closes = {closes}

[fx]
reporting = "INR"
on = 2015-04-08

[markets.IN]
name = "India"
currency = "INR"
tz = "Asia/Kolkata"

[markets.SG]
name = "Singapore"
currency = "INR"
tz = "Asia/Singapore"

[categories.phones]
name = "Phones"

[[skus]]
id = "phone"
category = "phones"
allocation = 500
limit = 2
prices = {{ IN = "5999.00", SG = "5999.00" }}

[[skus]]
id = "band"
category = "phones"
allocation = 300
prices = {{ IN = "999.00" }}

[crowd]
decay_seconds = {decay}
two_units = {share}
retry = {retry}
repeat = {repeat}
never_pay = {share}
pay_delay_seconds = {delay}

[crowd.arrivals]
IN = {{ peak_per_second = {peak}, baseline_per_second = {baseline} }}
SG = {{ peak_per_second = {baseline}, baseline_per_second = {baseline} }}

[crowd.demand]
phone = {weight}
band = 1.0

[crowd.channels]
IN = {{ online = {weight}, flipkart = 1.0 }}

[crowd.referrals]
direct = {weight}
"""


def toml_number(value: float | int) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return repr(value)


def around(bound: float) -> st.SearchStrategy[float]:
    return st.sampled_from([bound * 0.999, bound, bound * 1.001, bound + 1])


def mostly(ordinary: st.SearchStrategy[T], wild: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``ordinary`` values, and one time in ten a ``wild`` one: with ten parameters, most
    generated crowds are then valid and run, and each wild value is still tried often."""
    return st.integers(0, 9).flatmap(lambda i: wild if i == 0 else ordinary)


def numbers(low: float, high: float, bound: float) -> st.SearchStrategy[float | int]:
    """From ordinary values to the bounds and far beyond, in every type TOML has for numbers."""
    return mostly(
        st.floats(low, high),
        around(bound)
        | st.sampled_from([0, -1, 0.0, 1e300, -1e300, math.inf, math.nan, 10**30, 2**63]),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    peak=numbers(0, 50, MAX_ARRIVALS_PER_SECOND),
    baseline=numbers(0, 0.02, MAX_ARRIVALS_PER_SECOND),
    decay=numbers(1, 600, MAX_DECAY_SECONDS),
    delay=numbers(1, 600, MAX_PAY_DELAY_SECONDS),
    weight=numbers(0.01, 10, MAX_WEIGHT),
    share=numbers(0, 1, 1.0),
    retry=st.floats(0, 1),
    repeat=st.floats(0, 1),
    hold=mostly(st.sampled_from([2, 60, 900, 86_400]), st.sampled_from([0, 86_401, 10**12])),
    hours=mostly(st.sampled_from([0.25, 1, 12, 48]), st.sampled_from([24 * 31, 24 * 400])),
    scale=mostly(st.sampled_from([0.001, 0.01, 0.1, 1.0]), st.just(10.0)),
)
def test_a_crowd_is_refused_up_front_or_runs_to_its_end_within_its_budget(
    peak: float,
    baseline: float,
    decay: float,
    delay: float,
    weight: float,
    share: float,
    retry: float,
    repeat: float,
    hold: int,
    hours: float,
    scale: float,
) -> None:
    closes = datetime(2015, 4, 8, 10) + timedelta(hours=hours)  # noqa: DTZ001 - local time
    text = TEMPLATE.format(
        hold=hold,
        closes=closes.isoformat(),
        decay=toml_number(decay),
        share=toml_number(share),
        retry=toml_number(retry),
        repeat=toml_number(repeat),
        delay=toml_number(delay),
        peak=toml_number(peak),
        baseline=toml_number(baseline),
        weight=toml_number(weight),
    )
    try:
        scenario = loads(text, "crowd", scale)
        check_work(scenario, REQUESTS, SECONDS)
    except (ScenarioError, InvalidRequest) as refusal:
        refused: LampoError = refusal
        assert "\n" not in str(refused)
        event(f"refused: {getattr(refused, 'field', '')}")
        return
    event("ran")
    storage = MemoryStorage()
    clock = ManualClock(scenario.event.opens)
    result = run(scenario, Sales(storage, clock), clock, seed=1)
    # the estimate the budget rests on holds: the run sent about what was expected
    assert result.requests <= 1.5 * REQUESTS + 100
    assert audit(storage, scenario.event).ok


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("peak_per_second", "1e300"),
        ("peak_per_second", "inf"),
        ("peak_per_second", "nan"),
        ("peak_per_second", str(10**30)),
        ("baseline_per_second", "-1"),
        ("decay_seconds", "1e300"),
        ("pay_delay_seconds", "1e300"),
        ("retry", "1.5"),
    ],
)
def test_a_crowd_number_beyond_its_bound_is_refused_naming_it(field: str, value: str) -> None:
    text = TEMPLATE.format(
        hold=900,
        closes="2015-04-08T12:00:00",
        decay=value if field == "decay_seconds" else 60,
        share=0.1,
        retry=value if field == "retry" else 0.1,
        repeat=0.1,
        delay=value if field == "pay_delay_seconds" else 60,
        peak=value if field == "peak_per_second" else 10,
        baseline=value if field == "baseline_per_second" else 0.1,
        weight=1.0,
    )
    with pytest.raises(ScenarioError) as refused:
        loads(text, "crowd")
    assert refused.value.field.endswith(field)
    assert "between" in refused.value.problem


def shipped(name: str, scale: float) -> Scenario:
    return load(name, scale)


@pytest.mark.parametrize("name", ["mi-2017q1", "mi-2017q2", "mi-fan-fest-2015"])
def test_a_run_beyond_the_budget_is_refused_with_a_scale_that_fits(name: str) -> None:
    scale = 1.0 if name.startswith("mi-2017") else 10.0
    with pytest.raises(ScenarioError) as refused:
        check_work(shipped(name, scale))
    assert refused.value.field == "scale"
    assert f"{MAX_SIM_REQUESTS:,}" in refused.value.problem
    fits = float(refused.value.problem.rsplit("scale of ", 1)[1].split()[0])
    smaller = shipped(name, fits)
    check_work(smaller)  # the scale it names fits
    assert expected_requests(smaller) <= MAX_SIM_REQUESTS


def test_mi_fan_fest_at_full_scale_fits_the_budget() -> None:
    check_work(shipped("mi-fan-fest-2015", 1.0))


def test_a_refused_run_writes_nothing() -> None:
    scenario = shipped("mi-2017q2", 1.0)
    storage = MemoryStorage()
    clock = ManualClock(scenario.event.opens)
    with pytest.raises(ScenarioError):
        run(scenario, Sales(storage, clock), clock)
    assert storage.events() == []


def test_the_budget_counts_every_market_second_the_crowd_steps_through() -> None:
    scenario = shipped("mi-fan-fest-2015", 0.01)
    assert market_seconds(scenario) == 7 * 12 * 3600
    with pytest.raises(ScenarioError) as refused:
        check_work(scenario, max_seconds=market_seconds(scenario) - 1)
    assert refused.value.field == "markets"
    visits = sum(1 for _ in timeline(scenario))
    assert abs(visits - expected_requests(scenario)) < 0.05 * visits
