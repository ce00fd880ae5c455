"""Durations and local times as reports print them, over generated input: the text reads
back to the same duration or instant at the precision printed."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lampo.cli import simulate as simulate_cli
from lampo.domain.errors import InvalidRequest
from lampo.domain.timetext import LocalClock, duration

_PART = re.compile(r"([0-9][0-9,]*(?:\.[0-9])?) (d|h|min|s)")
_SECONDS = {"d": 86_400, "h": 3_600, "min": 60, "s": 1}


def parse_duration(text: str) -> tuple[Fraction, Fraction]:
    """(seconds, precision) of a duration as ``duration`` prints it; a reader's reading,
    kept apart from the formatter so the two check each other."""
    parts = _PART.findall(text)
    assert parts, text
    assert " ".join(f"{n} {u}" for n, u in parts) == text, text
    units = [u for _, u in parts]
    assert units == sorted(units, key=lambda u: -_SECONDS[u]), text  # largest first, once each
    assert len(set(units)) == len(units), text
    seconds = sum(Fraction(n.replace(",", "")) * _SECONDS[u] for n, u in parts)
    if seconds < 60:
        precision = Fraction(1, 10)
    elif seconds < 3_600:
        precision = Fraction(1)
    else:
        precision = Fraction(60)
    return seconds, precision


durations = st.fractions(0, 400 * 86_400, max_denominator=10**6) | st.integers(0, 10**9).map(
    Fraction
)


@given(durations)
def test_a_duration_reads_back_at_the_precision_printed(seconds: Fraction) -> None:
    text = duration(seconds)
    back, precision = parse_duration(text)
    assert abs(back - seconds) <= precision / 2, (seconds, text)
    assert "-" not in text


@given(durations, durations)
def test_a_longer_duration_never_reads_shorter(a: Fraction, b: Fraction) -> None:
    short, long = sorted((a, b))
    assert parse_duration(duration(short))[0] <= parse_duration(duration(long))[0]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (Fraction(15_001), "4 h 10 min"),
        (Fraction(2), "2 s"),
        (Fraction(21, 5), "4.2 s"),
        (Fraction(5999, 100), "1 min"),
        (Fraction(3_599_6, 10), "1 h"),
        (Fraction(90_061), "1 d 1 h 1 min"),
        (Fraction(0), "0 s"),
    ],
)
def test_durations_read_as_people_say_them(seconds: Fraction, text: str) -> None:
    assert duration(seconds) == text


def test_a_negative_duration_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="duration"):
        duration(Fraction(-1, 10))


# -- local times ---------------------------------------------------------------------------
ZONES = ["UTC", "Asia/Shanghai", "Asia/Kolkata", "Pacific/Kiritimati", "Pacific/Pago_Pago"]
_TIME = re.compile(r"(?:(\d{4}-\d\d-\d\d) )?(\d\d:\d\d:\d\d)")
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
instants = st.integers(0, 30 * 365 * 86_400 * 10**6).map(
    lambda us: EPOCH + timedelta(microseconds=us)
)


@given(
    zone=st.sampled_from(ZONES),
    opens=instants,
    length=st.timedeltas(timedelta(minutes=1), timedelta(days=3)),
    offset=st.timedeltas(-timedelta(days=2), timedelta(days=5)),
)
def test_a_local_time_reads_back_to_its_second_with_the_day_the_table_states(
    zone: str, opens: datetime, length: timedelta, offset: timedelta
) -> None:
    tz = ZoneInfo(zone)
    closes = opens + length
    clock = LocalClock.over(tz, opens, closes)
    when = opens + offset
    text = clock.text(when)
    found = _TIME.fullmatch(text)
    assert found, text
    day = date.fromisoformat(found.group(1)) if found.group(1) else clock.day
    assert day is not None  # an undated time only where the table states its day
    local = datetime.combine(day, time.fromisoformat(found.group(2)))
    assert local == when.astimezone(tz).replace(tzinfo=None, microsecond=0)
    if clock.day is None:  # over two local dates: every time is dated
        assert found.group(1)
    assert clock.on == (f" on {clock.day}" if clock.day else "")


@given(
    zone=st.sampled_from(ZONES),
    opens=instants,
    length=st.timedeltas(timedelta(minutes=1), timedelta(days=3)),
)
def test_a_span_gets_a_day_exactly_when_it_opens_and_closes_on_one_local_date(
    zone: str, opens: datetime, length: timedelta
) -> None:
    tz = ZoneInfo(zone)
    closes = opens + length
    last = (closes - timedelta(microseconds=1)).astimezone(tz).date()
    one_day = opens.astimezone(tz).date() == last
    assert (LocalClock.over(tz, opens, closes).day is not None) is one_day


@pytest.mark.parametrize(
    ("ms", "text"),
    [(4_149, "4.149 s"), (59_999, "59.999 s"), (60_000, "1 min"), (11_295_967, "3 h 8 min")],
)
def test_a_sell_out_after_the_opening_reads_to_the_millisecond_only_under_a_minute(
    ms: int, text: str
) -> None:
    assert simulate_cli._after(ms) == text
