"""The in-process driver: batched runs give every request the result it would get alone,
at its millisecond; the same seed gives the same report, byte for byte."""

from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from lampo.cli.render import render_battle
from lampo.domain.holds import Hold
from lampo.services.audit import audit
from lampo.services.clock import ManualClock
from lampo.services.report import battle_report
from lampo.services.sales import Sales
from lampo.sim.driver import SimResult, run
from lampo.sim.scenario import Scenario, load, loads
from lampo.storage.memory import MemoryStorage

FLASH = Path(__file__).resolve().parents[2] / "src" / "lampo" / "scenarios" / "flash-drop.toml"


def scenario_of(name: str, scale: float) -> Scenario:
    """A shipped scenario, or ``flash-drop+comeback``: flash-drop whose buyers refused as
    sold out come back (so the run sends requests the crowd's stream does not hold)."""
    if name != "flash-drop+comeback":
        return load(name, scale)
    text = FLASH.read_text(encoding="utf-8").replace(
        "[crowd]\n", "[crowd]\ncomeback = 0.5\ncomeback_seconds = 20\n"
    )
    return loads(text, name, scale)


def simulate(
    name: str, scale: float, seed: int, **options: object
) -> tuple[MemoryStorage, Sales, SimResult]:
    scenario = scenario_of(name, scale)
    storage = MemoryStorage()
    clock = ManualClock(scenario.event.opens)
    sales = Sales(storage, clock)
    result = run(scenario, sales, clock, seed=seed, **options)  # type: ignore[arg-type]
    return storage, sales, result


def story(hold: Hold) -> tuple[object, ...]:
    """A hold as the run made it, without its random id (nor the payment id made of it)."""
    return (
        hold.customer,
        hold.market,
        hold.channel,
        hold.lines,
        hold.created_at,
        hold.expires_at,
        hold.state,
        hold.ended_at,
        hold.paid_at,
    )


def counts(result: SimResult) -> dict[str, object]:
    out = asdict(result)
    del out["batches"], out["wall_seconds"]
    return out


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from(
        [("flash-drop", 0.01), ("flash-drop+comeback", 0.01), ("mi-fan-fest-2015", 0.0004)]
    ),
    seed=st.integers(0, 2**16),
    sweep_every=st.sampled_from([0.001, 1.0, 7.5, 60.0]),
    chunk=st.sampled_from([1, 50, 10_000]),
)
def test_batched_runs_give_every_request_the_result_it_gets_alone(
    case: tuple[str, float], seed: int, sweep_every: float, chunk: int
) -> None:
    name, scale = case
    alone, _, one = simulate(name, scale, seed, sweep_every=sweep_every, one_by_one=True)
    batched, _, many = simulate(name, scale, seed, sweep_every=sweep_every, chunk=chunk)
    event = scenario_of(name, scale).event.id
    assert sorted(map(story, batched.holds(event)), key=repr) == sorted(
        map(story, alone.holds(event)), key=repr
    )
    assert counts(many) == counts(one)
    assert many.holds > 0
    if chunk > 1:  # and it took far fewer storage calls
        assert many.batches * 3 < one.batches


def test_holds_and_payments_are_stamped_to_the_millisecond() -> None:
    storage, sales, _ = simulate("flash-drop", 0.01, 5)
    holds = list(storage.holds("redmi-1s-flipkart-2014"))
    stamps = [h.created_at for h in holds] + [h.paid_at for h in holds if h.paid_at]
    assert len({t.microsecond % 1000 for t in stamps}) == 1  # whole milliseconds
    assert len({t.microsecond for t in stamps}) > 100  # and not whole seconds
    report = battle_report(storage, "redmi-1s-flipkart-2014", sales.clock())
    sold_out = report.skus[0].sold_out_at
    assert sold_out is not None
    # the instant the last unit was taken is the instant of a hold, to the millisecond
    assert sold_out in {h.created_at for h in holds}


def rendered(name: str, scale: float, seed: int) -> str:
    storage, sales, result = simulate(name, scale, seed)
    event = sales.event(load(name, scale).event.id)
    console = Console(file=io.StringIO(), width=120, color_system=None)
    report = battle_report(storage, event.id, sales.clock(), result.refusals)
    render_battle(console, report, event.markets[next(iter(event.markets))].tz)
    console.print(audit(storage, event).summary())
    console.print(counts(result))
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


@pytest.mark.parametrize(("name", "scale"), [("flash-drop", 0.02), ("mi-fan-fest-2015", 0.001)])
def test_the_same_seed_gives_the_same_report_byte_for_byte(name: str, scale: float) -> None:
    first = rendered(name, scale, 42)
    assert first == rendered(name, scale, 42)
    assert first != rendered(name, scale, 43)


def test_redmi_1s_sells_out_exactly_in_about_four_seconds() -> None:
    storage, sales, result = simulate("redmi-1s-flipkart-2014", 0.02, 7)
    report = battle_report(storage, "redmi-1s-flipkart-2014", sales.clock())
    (sku,) = report.skus
    assert (sku.sold, sku.allocation) == (800, 800)
    assert sku.sold_out_at is not None
    seconds = (sku.sold_out_at - load("redmi-1s-flipkart-2014").event.opens).total_seconds()
    assert 3.5 < seconds < 5.0
    assert result.refusals["sold-out"] > 50 * 800
