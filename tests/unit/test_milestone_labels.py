"""A scaled scenario's milestones say what they measure: in its definition, on the live
page's JSON report and in the printed battle report."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from lampo.cli.render import render_battle
from lampo.domain.money import Money
from lampo.services.report import battle_report
from lampo.sim import scenario as scenarios
from lampo.storage.memory import MemoryStorage
from lampo.web import schemas

SHIPPED = ["mi-fan-fest-2015", "flash-drop"]


def _measured(loaded: scenarios.Scenario) -> list[str]:
    """What each milestone of ``loaded`` measures, written out from its threshold."""
    event = loaded.event
    out = []
    for m in event.milestones:
        if m.category:
            out.append(f"{m.threshold:,} {event.categories[m.category].unit}")
        else:
            out.append(Money(m.threshold, event.fx.reporting).format())
    return out


scales = st.floats(1e-6, 10.0).filter(lambda s: s != 1.0)


@settings(max_examples=60)
@given(name=st.sampled_from(SHIPPED), scale=scales)
def test_every_milestone_label_of_a_scaled_scenario_states_the_amount_measured(
    name: str, scale: float
) -> None:
    loaded = scenarios.load(name, scale)
    original = scenarios.load(name, 1.0).event.milestones
    for milestone, measured, unscaled in zip(
        loaded.event.milestones, _measured(loaded), original, strict=True
    ):
        assert measured in milestone.label
        assert unscaled.label in milestone.label  # the scenario's own words are kept


@settings(max_examples=15, deadline=None)
@given(scale=scales)
def test_the_live_report_and_the_printed_report_show_the_same_truthful_labels(
    scale: float,
) -> None:
    loaded = scenarios.load("mi-fan-fest-2015", scale)
    event = loaded.event
    store = MemoryStorage()
    store.setup(event)
    live = schemas.report_out(event, store.totals(event.id), store.stock(event.id), event.opens)
    measured = _measured(loaded)
    assert [m.label for m in live.milestones] == [m.label for m in event.milestones]
    for milestone, text in zip(live.milestones, measured, strict=True):
        assert text in milestone.label
    out = io.StringIO()
    render_battle(Console(file=out, width=300), battle_report(store, event.id, event.opens))
    for milestone in event.milestones:
        assert milestone.label in out.getvalue()


def test_an_unscaled_scenario_keeps_its_labels_as_written() -> None:
    labels = [m.label for m in scenarios.load("mi-fan-fest-2015").event.milestones]
    assert labels == ["¥1 billion", "¥2 billion", "1 M phones", "2 M phones"]


@pytest.mark.parametrize(
    ("scale", "label"),
    [
        (0.001, "1,000,000.00 CNY (x0.001 of ¥1 billion)"),
        (0.01, "20,000 phones (x0.01 of 2 M phones)"),
    ],
)
def test_a_scaled_label_reads_as_the_amount_and_the_share_of_the_original(
    scale: float, label: str
) -> None:
    labels = [m.label for m in scenarios.load("mi-fan-fest-2015", scale).event.milestones]
    assert label in labels
