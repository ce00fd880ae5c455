"""The battle report's figures through the ``lampo`` command: which sales a record is set
against, and that every command that prints an event's records prints the same ones."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.services.imports import PAST_COLUMNS
from tests.e2e._cli import run

pytestmark = pytest.mark.usefixtures("cli_sandbox")

#: The shipped flash-drop scenario: Redmi 1S on Flipkart, 2 September 2014, 14:00 to 14:30
#: in New Delhi (08:30 to 09:00 UTC). The shipped history holds the real sale of that day.
FLASH = "redmi-1s-flipkart-2014"
FLASH_OPENS = datetime(2014, 9, 2, 8, 30, tzinfo=UTC)

#: Where an imported row dated only by its day may have run: anywhere on Earth that day.
EARLIEST_ZONE = timezone(timedelta(hours=14))
LATEST_ZONE = timezone(timedelta(hours=-12))


@pytest.fixture(scope="module")
def flash_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The flash drop simulated once into a SQLite file, at 1 % (400 phones)."""
    from lampo.cli import main

    db = tmp_path_factory.mktemp("flash") / "flash.db"
    url = f"sqlite:///{db.resolve().as_posix()}"
    assert main(["simulate", "flash-drop", "--scale", "0.01", "--storage", url]) == 0
    return url


# -- which sales a record is set against (issue 10, item 12) -----------------------------------
@dataclass(frozen=True)
class Row:
    """One generated sale of the history file: dated by its day, or by its start time."""

    name: str
    day: date
    start: datetime | None  # aware, or None for a row dated by its day only
    hours: Fraction
    units: int
    money: int  # whole rupees

    @property
    def latest_end(self) -> datetime:
        if self.start is not None:
            return self.start + timedelta(seconds=int(self.hours * 3600))
        midnight = datetime.combine(self.day + timedelta(days=1), time(), LATEST_ZONE)
        return midnight + timedelta(seconds=int(self.hours * 3600))

    def cells(self) -> list[str]:
        when = self.start.isoformat() if self.start else self.day.isoformat()
        hours = f"{float(self.hours):g}"
        return [self.name, when, hours, "phones", str(self.units), f"{self.money}.00", "INR"]


@st.composite
def rows(draw: st.DrawFn) -> list[Row]:
    """Sales around the flash drop's opening: days before, the day itself, days after, some
    dated by their start time (in any zone), one of them the flash drop's own real row."""
    out = []
    for i in range(draw(st.integers(1, 6))):
        offset = draw(st.integers(-3 * 24 * 60, 2 * 24 * 60))  # minutes from the opening
        start = FLASH_OPENS + timedelta(minutes=offset)
        timed = draw(st.booleans())
        zone = timezone(timedelta(minutes=15 * draw(st.integers(-11 * 4, 14 * 4))))
        hours = draw(st.sampled_from([Fraction(1, 4), Fraction(1, 2), Fraction(1), Fraction(12)]))
        out.append(
            Row(
                f"sale {i}",
                start.astimezone(zone).date(),
                start.astimezone(zone) if timed else None,
                hours,
                draw(st.integers(1, 1_000)),
                draw(st.integers(1, 10_000_000)),
            )
        )
    if draw(st.booleans()):  # the same sale as the one simulated, as the press reported it
        out.append(
            Row("Redmi 1S on Flipkart", date(2014, 9, 2), None, Fraction(1, 2), 40_000, 239_960_000)
        )
    return out


def _history(path: Path, history: list[Row]) -> None:
    lines = [",".join(PAST_COLUMNS)]
    for row in history:
        lines.append(",".join([*row.cells(), "", "", "", "generated"]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=rows())
def test_a_record_is_set_only_against_sales_that_ended_before_the_event_opened(
    capsys: pytest.CaptureFixture[str], flash_db: str, tmp_path: Path, history: list[Row]
) -> None:
    path = tmp_path / "history.csv"
    _history(path, history)
    capsys.readouterr()
    code, out, err = run(
        capsys, "report", "event", FLASH, "--storage", flash_db, "--history", str(path),
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    records = {r["title"]: r for r in json.loads(out)["records"]}
    earlier = [r for r in history if r.latest_end <= FLASH_OPENS]
    by_name = {r.name: r for r in history}
    for record in records.values():
        if record["best_name"]:
            assert by_name[record["best_name"]].latest_end <= FLASH_OPENS, record
    most = records["most phones in a 0.5-hour window"]
    rivals = [r.units for r in earlier if r.hours <= Fraction(1, 2)]
    assert most["best"] == (max(rivals) if rivals else None)
    money = records["most money in a 0.5-hour window"]
    rivals = [100 * r.money for r in earlier if r.hours <= Fraction(1, 2)]
    assert money["best"] == (max(rivals) if rivals else None)


# -- one code path for every command that prints the records (item 13) ---------------------------
def _records_table(out: str) -> list[str]:
    """The lines of the "Records" table of a printed battle report."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Records"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("└"))
    return [line.rstrip() for line in lines[start : end + 1]]


@pytest.mark.slow
@settings(max_examples=3, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scale=st.floats(0.0001, 0.0004))
def test_the_demo_and_the_report_print_the_same_records_for_the_same_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scale: float
) -> None:
    db = tmp_path / f"demo-{scale}.db"
    code, demo, err = run(capsys, "demo", "--scale", repr(scale), "--db", str(db))
    assert code == 0, err
    url = f"sqlite:///{db.resolve().as_posix()}"
    code, report, err = run(capsys, "report", "event", "mi-fan-fest-2015", "--storage", url)
    assert code == 0, err
    assert _records_table(demo) == _records_table(report)
    code, out, err = run(
        capsys, "report", "event", "mi-fan-fest-2015", "--storage", url, "--format", "json"
    )
    assert code == 0, err
    verdicts = {r["title"]: r["beaten"] for r in json.loads(out)["records"]}
    table = "\n".join(_records_table(report))
    for title, beaten in verdicts.items():
        row = next(line for line in table.splitlines() if title in line)
        assert (" yes " in row) is (beaten is True), row


# -- durations and times read as such (item 15) ------------------------------------------------
_NEGATIVE = re.compile(r"(?<![\w.])-\s?[0-9]")


def test_a_sell_out_reads_as_a_duration_and_no_margin_is_negative(
    capsys: pytest.CaptureFixture[str], flash_db: str
) -> None:
    code, out, err = run(capsys, "report", "event", FLASH, "--storage", flash_db)
    assert code == 0, err
    table = "\n".join(_records_table(out))
    fastest = next(line for line in table.splitlines() if "fastest sell-out" in line)
    assert re.search(r"(faster|slower) by [0-9]", fastest) or "equal" in fastest, fastest
    assert not _NEGATIVE.search(table), table
    assert ".0 s" not in fastest  # whole seconds print without a decimal


def test_a_report_over_two_local_days_dates_every_local_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Mi Fan Fest runs 10:00 to 22:00 in every market: in Beijing time, from 10:00 on
    # 8 April to 00:30 on 9 April (22:00 in New Delhi).
    url = f"sqlite:///{(tmp_path / 'fest.db').resolve().as_posix()}"
    code, _, err = run(
        capsys, "simulate", "mi-fan-fest-2015", "--scale", "0.0002", "--storage", url
    )
    assert code == 0, err
    code, out, err = run(capsys, "report", "event", "mi-fan-fest-2015", "--storage", url)
    assert code == 0, err
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Stock sold per SKU"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("└"))
    sold_out = [line.rstrip(" │").rsplit("│", 1)[-1].strip() for line in lines[start + 4 : end]]
    assert any(t != "-" for t in sold_out)
    for text in sold_out:
        assert text == "-" or re.fullmatch(r"2015-04-0[89] \d\d:\d\d:\d\d\.\d\d\d", text), text
    curve = next(line for line in lines if line.startswith("Units paid per minute"))
    assert "2015-04-08 10:00:00 to 2015-04-09 00:30:00" in curve
