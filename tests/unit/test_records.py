"""Records over generated histories and event dates: an event is set only against sales
that were over before it opened, never against itself; how a record's margin reads."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from lampo.domain.money import Money
from lampo.domain.records import (
    SECONDS,
    PastResult,
    RecordResult,
    compare_records,
    day_bounds,
    margin_text,
)
from tests.unit.test_timetext import parse_duration

UNITS = {"phone": "phones", "tv": "TVs"}
BASE = datetime(2015, 4, 8, 2, 0, tzinfo=UTC)

windows = st.sampled_from([timedelta(minutes=30), timedelta(hours=1), timedelta(hours=12)])


@st.composite
def sales(draw: st.DrawFn, name: str) -> list[PastResult]:
    """One sale's rows (one per category), at a generated time and length."""
    started = BASE + timedelta(minutes=draw(st.integers(-60 * 24 * 30, 60 * 24 * 30)))
    window = draw(windows)
    ended = started + window
    money = Money(draw(st.integers(1, 10**12)), draw(st.sampled_from(["CNY", "INR"])))
    return [
        PastResult(
            name,
            category,
            started,
            ended,
            window,
            draw(st.integers(0, 10**7)),
            money,
            draw(st.none() | st.integers(0, 10**6)),
            draw(st.none() | st.fractions(0, 10**5)),
        )
        for category in draw(st.sets(st.sampled_from(sorted(UNITS)), min_size=1))
    ]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[PastResult], list[PastResult]]:
    """(this event's rows, every other sale's rows, this event's own rows among them or not)."""
    current = draw(sales("this sale"))
    past = [row for i in range(draw(st.integers(0, 8))) for row in draw(sales(f"sale {i}"))]
    if draw(st.booleans()):  # the event itself, imported or stored, is in the history too
        past.extend(current)
    return current, draw(st.permutations(past))


@given(histories())
def test_an_event_is_only_set_against_sales_over_before_it_opened(
    generated: tuple[list[PastResult], list[PastResult]],
) -> None:
    current, past = generated
    opened = current[0].started
    by_name = {p.name: p for p in past}
    for record in compare_records(current, past, UNITS):
        if record.best is None:
            assert record.best_name == ""
            continue
        rival = by_name[record.best_name]
        assert record.best_name != "this sale"
        assert rival.ended <= opened, (record, rival)


@given(histories(), st.data())
def test_sales_not_over_when_the_event_opened_change_no_record(
    generated: tuple[list[PastResult], list[PastResult]], data: st.DataObject
) -> None:
    current, past = generated
    opened = current[0].started
    earlier = [p for p in past if p.ended <= opened]
    assert compare_records(current, past, UNITS) == compare_records(current, earlier, UNITS)
    # and a later sale moved back to end right at the opening competes
    later = sorted({p.name for p in past if p.ended > opened} - {"this sale"})
    if not later:
        return
    name = data.draw(st.sampled_from(later))
    rows = [p for p in past if p.name == name]
    shift = rows[0].ended - opened
    moved = [replace(p, started=p.started - shift, ended=p.ended - shift) for p in rows]
    records = {r.title: r for r in compare_records(current, moved, UNITS)}
    for cur in current:
        if any(p.category == cur.category and p.window <= cur.window for p in moved):
            title = next(t for t in records if t.startswith(f"most {UNITS[cur.category]} in a "))
            assert records[title].best_name == name, records[title]


def test_a_sale_dated_by_its_day_ran_within_its_bounds_wherever_it_was() -> None:
    window = timedelta(minutes=30)
    day = date(2014, 9, 2)
    started, ended = day_bounds(day, window)
    for quarter_hours in range(-12 * 4, 14 * 4 + 1):
        zone = timezone(timedelta(minutes=15 * quarter_hours))
        for start in (time(0, 0), time(12, 0), time(23, 59, 59)):
            local = datetime.combine(day, start, zone)
            assert started <= local
            assert local + window <= ended


def test_the_real_sale_of_the_day_is_not_a_record_before_its_own_simulation() -> None:
    # Redmi 1S on Flipkart, 2 September 2014, as the press reported it, and the same sale
    # simulated (14:00 to 14:30 in New Delhi): the report must not set one against the other.
    window = timedelta(minutes=30)
    opens = datetime(2014, 9, 2, 8, 30, tzinfo=UTC)
    started, ended = day_bounds(date(2014, 9, 2), window)
    reported = PastResult("Redmi 1S on Flipkart", "phone", started, ended, window, 40_000)
    july = replace(reported, name="Mi 3 on Flipkart", units=15_000)
    july = replace(
        july, started=july.started - timedelta(days=42), ended=july.ended - timedelta(days=42)
    )
    simulated = PastResult("Redmi 1S on Flipkart", "phone", opens, opens + window, window, 400)
    [most] = compare_records([simulated], [reported, july], UNITS)
    assert (most.best_name, most.best) == ("Mi 3 on Flipkart", 15_000)


# -- how a margin reads ----------------------------------------------------------------------
_NEGATIVE = re.compile(r"-\s?[0-9]")


@given(value=st.fractions(0, 10**6), best=st.fractions(0, 10**6))
def test_a_time_margin_reads_faster_or_slower_and_parses_back(
    value: Fraction, best: Fraction
) -> None:
    record = RecordResult("fastest", SECONDS, value, best, "x", value < best, best - value, False)
    text = margin_text(record)
    assert not _NEGATIVE.search(text)
    if text == "equal":
        assert value == best
        return
    found = re.fullmatch(r"(faster|slower) by (.+)", text)
    assert found, text
    assert (found.group(1) == "faster") is (value < best)
    back, precision = parse_duration(found.group(2))
    assert abs(abs(best - value) - back) <= precision / 2


@given(
    value=st.integers(0, 10**15),
    best=st.integers(0, 10**15),
    unit=st.sampled_from(["phones", "CNY", "JPY", "INR"]),
)
def test_a_count_or_money_margin_reads_ahead_or_short_by_a_positive_amount(
    value: int, best: int, unit: str
) -> None:
    record = RecordResult("most", unit, value, best, "x", value > best, value - best)
    text = margin_text(record)
    assert not _NEGATIVE.search(text)
    if value == best:
        assert text == "equal"
        return
    found = re.fullmatch(r"(ahead|short) by ([0-9,.]+)(?: ([A-Z]{3}))?", text)
    assert found, text
    assert (found.group(1) == "ahead") is (value > best)
    digits = found.group(2).replace(",", "").replace(".", "")
    assert int(digits) == abs(value - best)
    assert (found.group(3) or "phones") == unit
