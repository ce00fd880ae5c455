"""Periods, period figures, growth and targets: pure rules on hand-made orders."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lampo.domain.errors import InvalidRequest
from lampo.domain.holds import HoldState
from lampo.domain.money import Money
from lampo.domain.period import Period, Target, compare, growth, percent, period_figures, progress
from lampo.services import imports
from lampo.services.imports import ImportFileError
from tests.unit.test_report import EVENT, order

EVENTS = {EVENT.id: EVENT}


@pytest.mark.parametrize(
    ("text", "label"), [("2017Q2", "2017Q2"), ("2017-q2", "2017Q2"), (" 2017 ", "2017")]
)
def test_a_period_parses_from_a_quarter_or_a_year(text: str, label: str) -> None:
    assert Period.parse(text).label == label


@pytest.mark.parametrize("text", ["2017Q5", "Q2 2017", "17Q1", "", "2017Q"])
def test_a_malformed_period_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        Period.parse(text)
    assert err.value.reason == "invalid-request"
    assert err.value.field == "period"


@given(st.text(max_size=12))
def test_only_ascii_years_and_quarters_parse_and_they_read_back_as_their_label(
    text: str,
) -> None:
    try:
        period = Period.parse(text)
    except InvalidRequest:
        return
    written = text.strip().upper().replace("-", "")
    assert written.isascii()
    assert written == period.label


@given(st.sampled_from("\u00b2\u0663\u06f1\u0967\uff11\U0001d7d9"), st.integers(0, 3))
def test_a_year_in_another_script_s_digits_is_refused(digit: str, where: int) -> None:
    text = "2017"[:where] + digit + "2017"[where + 1 :]
    with pytest.raises(InvalidRequest):
        Period.parse(text + "Q2")


def test_quarters_follow_each_other_and_a_year_ago_is_the_same_quarter() -> None:
    q1 = Period.parse("2017Q1")
    assert q1.previous().label == "2016Q4"
    assert q1.next().label == "2017Q2"
    assert q1.year_ago().label == "2016Q1"
    assert Period.parse("2017").previous().label == "2016"
    assert q1.end == Period.parse("2017Q2").start
    assert q1.within(Period.parse("2017"))


periods = st.builds(Period, st.integers(1971, 9997), st.integers(0, 4))


@given(period=periods, base=periods)
def test_a_growth_is_named_by_what_it_compares_with(period: Period, base: Period) -> None:
    name = period.against(base)
    if base == period.year_ago():
        assert name == "YoY"  # a year against the year before included
    elif period.quarter and base == period.previous():
        assert name == "QoQ"
    else:
        assert name == f"vs {base.label}"
    assert period.against(period.year_ago()) == "YoY"
    if period.quarter:
        assert period.against(period.previous()) == "QoQ"


def test_the_reporting_zone_decides_which_quarter_a_payment_falls_in() -> None:
    last_q1_utc = datetime(2017, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    first_q2_utc = datetime(2017, 4, 1, tzinfo=UTC)
    q1, q2 = Period.parse("2017Q1"), Period.parse("2017Q2")
    assert q1.contains(last_q1_utc)
    assert not q1.contains(first_q2_utc)
    assert q2.contains(first_q2_utc)
    # 16:00 UTC on 31 March is midnight on 1 April in Beijing: Q2 there.
    evening = datetime(2017, 3, 31, 16, tzinfo=UTC)
    assert Period.parse("2017Q2", "Asia/Shanghai").contains(evening)
    assert Period.parse("2017Q1").contains(evening)
    orders = [order(1, evening), order(2, evening - timedelta(microseconds=1))]
    shanghai = period_figures(Period.parse("2017Q2", "Asia/Shanghai"), "CNY", EVENTS, orders)
    utc = period_figures(Period.parse("2017Q2"), "CNY", EVENTS, orders)
    assert (shanghai.units, utc.units) == (1, 0)


def test_an_unknown_reporting_zone_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        Period.parse("2017Q1", "Mars/Olympus")


def test_period_figures_count_payments_in_and_refunds_out_by_their_own_dates() -> None:
    march = datetime(2017, 3, 10, tzinfo=UTC)
    april = datetime(2017, 4, 10, tzinfo=UTC)
    orders = [
        order(1, march, qty=2),
        order(2, march, market="IN"),
        order(3, march, refunded=april),  # sold in Q1, refunded in Q2
        order(4, april, sku="tv-55"),
        replace(order(5, april), state=HoldState.EXPIRED, paid_at=None),
    ]
    q1 = period_figures(Period.parse("2017Q1"), "CNY", EVENTS, orders)
    assert (q1.orders, q1.units) == (3, 4)
    assert q1.revenue == 3 * 79_900 + 69_990
    assert q1.local == {"CN": Money(3 * 79_900, "CNY"), "IN": Money(699_900, "INR")}
    assert q1.best_sellers["CN"] == ("phone-red", 3)
    q2 = period_figures(Period.parse("2017Q2"), "CNY", EVENTS, orders)
    assert (q2.orders, q2.units, q2.revenue) == (0, 0, 179_900 - 79_900)


def test_growth_is_exact_and_shown_to_a_tenth_of_a_percent() -> None:
    assert growth(2316, 1362) == Fraction(2316, 1362) - 1
    assert percent(growth(2316, 1362)) == "+70.0 %"
    assert percent(growth(428, 100)) == "+328.0 %"
    assert percent(growth(90, 100)) == "-10.0 %"
    assert growth(5, 0) is None
    assert percent(None) == "n/a"


def test_growth_per_market_compares_local_currency_revenue() -> None:
    base_time = datetime(2016, 5, 1, tzinfo=UTC)
    now_time = datetime(2017, 5, 1, tzinfo=UTC)
    orders = [order(1, base_time, market="IN")] + [
        order(i, now_time, market="IN") for i in range(2, 6)
    ]
    cur = period_figures(Period.parse("2017Q2"), "CNY", EVENTS, orders)
    base = period_figures(Period.parse("2016Q2"), "CNY", EVENTS, orders)
    assert compare(cur, base).by_market_revenue["IN"] == Fraction(3)


def test_a_target_projects_the_pace_so_far_over_its_period() -> None:
    year = Period.parse("2017")
    target = Target("100 phones in 2017", year, units=100)
    mid = year.start + (year.end - year.start) / 2
    p = progress(target, 40, mid)
    assert (p.actual, p.share, p.projection, p.on_track) == (40, Fraction(2, 5), 80, False)
    assert progress(target, 10, year.start).projection is None
    money = Target("revenue", year, money=Money(1_000, "USD"))
    assert progress(money, 1_000, year.end).on_track is True
    with pytest.raises(InvalidRequest):
        Target("both", year, money=Money(1, "USD"), units=1)


def test_the_shipped_import_files_read_cleanly() -> None:
    past = imports.past_results()
    assert any(p.name == "Mi Fan Fest 2014" and p.units == 1_300_000 for p in past)
    shares = imports.market_shares()
    assert [s.brand for s in shares if s.period == "2021Q3"][:4] == [
        "Vivo",
        "OPPO",
        "Honor",
        "Xiaomi",
    ]
    goals = imports.targets()
    assert goals.fx is not None
    assert goals.targets[0].money == Money(1_470_000_000_000, "USD")
    assert goals.targets[1].units == 100_000_000


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("h.csv", "", "is empty"),
        ("h.csv", "name,date\nx,2014-01-01\n", "missing column"),
        (
            "h.csv",
            ",".join(imports.PAST_COLUMNS) + "\nfest,2014-04-08,12,phones,lots,,,,,,\n",
            "line 2: units must be a whole number",
        ),
        (
            "h.csv",
            ",".join(imports.PAST_COLUMNS) + "\nfest,2014-04-08,12,phones,1,9.999,CNY,,,,\n",
            "more decimals",
        ),
        (
            "h.csv",
            ",".join(imports.PAST_COLUMNS) + "\nfest,2014-04-08T10:00,12,phones,1,,,,,,\n",
            "needs a UTC offset",
        ),
        (
            "h.csv",
            ",".join(imports.PAST_COLUMNS) + "\nfest,9999-12-31,12,phones,1,,,,,,\n",
            "years 1970 to 9998",
        ),
        (
            "h.csv",
            ",".join(imports.PAST_COLUMNS) + "\nfest,2014-04-08,1e9,phones,1,,,,,,\n",
            "window_hours must be a decimal",
        ),
        (
            "h.csv",
            ",".join(imports.PAST_COLUMNS) + "\nfest,2014-04-08,9000,phones,1,,,,,,\n",
            "window_hours must be from 1 second to 8784 hours",
        ),
        (
            "h.csv",
            ",".join(imports.PAST_COLUMNS) + "\nfest,2014-04-08,0.0001,phones,1,,,,,,\n",
            "window_hours must be from 1 second",
        ),
        ("s.csv", "period,market,brand,share_percent,units,source\n2021Q9,CN,X,1,,\n", "2021Q9"),
        ("t.toml", "targets = 3\n", "[[targets]]"),
        ("t.toml", '[[targets]]\nlabel = "x"\nperiod = "2017"\nmoney = 1.5\n', "float"),
        ("t.toml", "[[targets\n", "not valid TOML"),
    ],
)
def test_a_malformed_import_file_gets_an_error_naming_the_file_and_the_problem(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    read = {
        "h.csv": imports.past_results,
        "s.csv": imports.market_shares,
        "t.toml": imports.targets,
    }[name]
    with pytest.raises(ImportFileError) as err:
        read(path)
    assert err.value.reason == "invalid-import"
    assert str(path) in str(err.value)
    assert problem in str(err.value)


def test_a_missing_import_file_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no such file"):
        imports.targets(tmp_path / "nope.toml")


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
        max_value=datetime(2199, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.sampled_from(["UTC", "Asia/Shanghai", "Asia/Kolkata", "America/Sao_Paulo"]),
    st.booleans(),
)
def test_the_period_of_a_moment_holds_it(when: datetime, tz: str, whole_year: bool) -> None:
    period = Period.of(when, tz, whole_year)
    assert period.contains(when)
    assert (period.quarter == 0) == whole_year
    assert Period.parse(period.label, tz) == period
