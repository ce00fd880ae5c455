"""The live view of a rehearsal: drawn on a terminal with what the run counted so far,
and nothing at all without a terminal or with ``--json``."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from lampo.cli.live_view import Figures, LiveView
from lampo.sim import scenario as scenarios

FIGURES = Figures(
    done=5.0,
    total=1800.0,
    sold={"phones": 123},
    refusals={"sold-out": 4567, "closed": 3},
    requests=8901,
    in_flight=12,
    latency_ms={"p50": 3.5, "p99": 250.0, "max": 400.0},
)


def _drawn(terminal: bool, wanted: bool) -> str:
    loaded = scenarios.load("redmi-1s-flipkart-2014", 0.01)
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=120, color_system=None)
    with LiveView(console, loaded.event, loaded.home_market, "rehearsal", wanted) as view:
        view.show(FIGURES)
    return out.getvalue()


def test_on_a_terminal_the_panel_shows_the_clock_sales_refusals_and_latency() -> None:
    text = _drawn(terminal=True, wanted=True)
    for shown in ("rehearsal", "2014-09-02 14:00:05", "Smartphones", "123", "400"):
        assert shown in text
    for shown in ("sold-out", "4,567", "8,901 requests answered", "12 in flight", "p99 250.0 ms"):
        assert shown in text


@pytest.mark.parametrize(("terminal", "wanted"), [(False, True), (True, False)])
def test_without_a_terminal_or_with_json_nothing_is_drawn(terminal: bool, wanted: bool) -> None:
    assert _drawn(terminal, wanted) == ""
