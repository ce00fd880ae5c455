"""``lampo report`` end to end: real scenarios simulated into a real SQLite file, then read."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.e2e._cli import run

pytestmark = pytest.mark.usefixtures("cli_sandbox")


@pytest.fixture
def history(quarter_history: str) -> str:
    """Q2 2016 India, Q1 and Q2 2017 in one SQLite file (``conftest.quarter_history``)."""
    return quarter_history


def test_q2_2017_shows_seventy_percent_more_phones_than_q1_from_the_orders(
    capsys: pytest.CaptureFixture[str], history: str
) -> None:
    capsys.readouterr()
    code, out, _ = run(
        capsys, "report", "period", "2017Q2", "--storage", history, "--format", "json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["figures"]["units"] == 2316
    assert data["base"]["units"] == 1362
    assert data["base"]["period"]["label"] == "2017Q1"
    assert data["against"] == "QoQ"
    growth = data["growth"]["units"]
    num, den = (int(x) for x in growth.split("/"))
    assert round(1000 * num / den) == 700  # +70.0 %
    assert data["figures"]["best_sellers"]["IN"][0] == "Redmi Note 4"


def test_india_revenue_grows_328_percent_year_on_year_from_the_orders(
    capsys: pytest.CaptureFixture[str], history: str
) -> None:
    capsys.readouterr()
    code, out, _ = run(capsys, "report", "period", "2017Q2", "--storage", history)
    assert code == 0
    text = " ".join(out.split())
    assert "+70.0 %" in text
    assert "+328.0 %" in text
    assert "revenue $14.7 B in 2017" in text


def test_vs_compares_with_any_period_and_csv_carries_the_same_figures(
    capsys: pytest.CaptureFixture[str], history: str
) -> None:
    capsys.readouterr()
    args = ("report", "period", "2017Q2", "--vs", "2016Q2", "--storage", history)
    code, out, _ = run(capsys, *args, "--format", "csv")
    assert code == 0
    rows = dict(csv.reader(io.StringIO(out)))
    assert rows["base.period.label"] == "2016Q2"
    assert rows["figures.units"] == "2316"
    assert rows["base.units"] == "62"


def test_the_event_report_matches_the_live_totals_in_json(
    capsys: pytest.CaptureFixture[str], history: str
) -> None:
    capsys.readouterr()
    code, out, _ = run(
        capsys, "report", "event", "mi-2017q2", "--storage", history, "--format", "json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["truth"] is True
    assert data["units"] == 2316
    assert sum(row["units"] for row in data["by"]["market"]) == 2316
    assert {r["title"] for r in data["records"]} >= {"fastest sell-out of a SKU"}
    code, table, _ = run(capsys, "report", "event", "mi-2017q2", "--storage", history)
    assert code == 0
    assert "Battle report: Xiaomi Q2 2017 (618)" in table
    assert "live totals vs recount from orders: equal" in " ".join(table.split())


def _growth_rows(out: str) -> list[str]:
    """The figure column of the printed "Growth" table: ``units (QoQ)``, ..."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Growth"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("└"))
    return [line.split("│")[1].strip() for line in lines[start + 4 : end]]


@pytest.mark.parametrize(
    ("argv", "labels"),
    [
        (("2017Q2",), ["QoQ", "YoY"]),
        (("2017Q2", "--vs", "2017Q1"), ["QoQ", "YoY"]),
        (("2017Q2", "--vs", "2016Q2"), ["YoY"]),
        (("2017Q2", "--vs", "2016Q4"), ["vs 2016Q4", "YoY"]),
        (("2017",), ["YoY"]),
        (("2017", "--vs", "2016"), ["YoY"]),
    ],
)
def test_each_growth_row_names_what_it_compares_with(
    capsys: pytest.CaptureFixture[str], history: str, argv: tuple[str, ...], labels: list[str]
) -> None:
    capsys.readouterr()
    code, out, err = run(capsys, "report", "period", *argv, "--storage", history)
    assert code == 0, err
    expected = [f"{figure} ({label})" for label in labels for figure in ("units", "revenue")]
    assert _growth_rows(out) == expected
    header = next(line for line in out.splitlines() if "┃ market" in line)
    assert [h.strip() for h in header.split("┃")[6 : 6 + len(labels)]] == labels


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("report", "event", "no-such-event"), "no sale event named 'no-such-event'"),
        (("report", "period", "2017Q7"), "is not a quarter or year"),
        (("report", "period", "2030Q1"), "has no order"),
        (("report", "period", "2017Q2", "--vs", "last"), "is not a quarter or year"),
        (("report", "period", "2017Q2", "--tz", "Mars/Base"), "unknown time zone"),
        (("report", "period", "2017Q2", "--targets", "bad.toml"), "bad.toml"),
    ],
)
def test_bad_input_gets_a_one_line_error_and_exit_two(
    capsys: pytest.CaptureFixture[str], history: str, argv: tuple[str, ...], message: str
) -> None:
    Path("bad.toml").write_text("[[targets]]\nlabel = 1\n")
    capsys.readouterr()
    code, out, err = run(capsys, *argv, "--storage", history)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err + out


def test_a_missing_database_is_an_error_not_an_empty_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "report", "event", "x", "--storage", "sqlite:///absent.db")
    assert code == 2
    assert "no database" in err
    assert not Path("absent.db").exists()


def test_simulate_ends_with_the_battle_report_and_its_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys, "simulate", "mi-fan-fest-2015", "--scale", "0.0005", "--storage", "memory://"
    )
    assert code == 0
    text = " ".join(out.split())
    assert "Battle report: Mi Fan Fest 2015" in text
    assert "live totals vs recount from orders: equal" in text
    assert "most phones in a 12-hour window" in text
    assert "Mi Fan Fest 2014" in text
