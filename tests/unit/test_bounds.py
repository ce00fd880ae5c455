"""Every number of an event has a bound, checked once in the domain (lampo.domain.bounds).

The properties run through ``event_from_dict``, the form every upload and every stored
definition takes: a definition is accepted exactly when each of its numbers lies within
its bound, a refusal is an ``InvalidRequest`` naming the field, and no JSON value makes
anything else escape.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampo.domain.bounds import (
    EARLIEST,
    INT64_MAX,
    LATEST,
    MAX_AMOUNT,
    MAX_EVENT_SPAN,
    MAX_FX_TERM,
    MAX_HOLD_SECONDS,
    MAX_MINOR_UNITS,
    MAX_UNITS,
    show,
)
from lampo.domain.codec import event_from_dict, event_to_dict
from lampo.domain.errors import InvalidRequest, LampoError
from lampo.domain.event import Milestone, SaleEvent
from lampo.domain.holds import HoldLine
from lampo.domain.money import Money
from lampo.sim.scenario import loads
from tests.factories import sale_event

#: Two SKUs (so allocations add up), a money and a units milestone.
BASE = event_to_dict(
    replace(
        sale_event(stock={"phone-red": 10, "tv-55": 5}),
        milestones=(Milestone("a million", 100_000_000), Milestone("ten TVs", 10, "tv")),
    )
)


def test_the_bounds_leave_the_totals_room_below_int64() -> None:
    # Units sold never pass MAX_UNITS and no unit costs more than MAX_MINOR_UNITS, so no
    # amount a total can reach passes MAX_AMOUNT: nine times that still fits in 64 bits.
    assert MAX_UNITS * MAX_MINOR_UNITS == MAX_AMOUNT
    assert 9 * MAX_AMOUNT <= INT64_MAX
    # ... and they are generous for real sales: a 2-million-unit allocation, the IDR price
    # of a TV (25,000,000.00 IDR), a ¥10 billion milestone, a week-long event.
    assert 2_000_000 <= MAX_UNITS
    assert 2_500_000_000 <= MAX_MINOR_UNITS
    assert 10_000_000_000 * 100 <= MAX_AMOUNT
    assert timedelta(days=7) <= MAX_EVENT_SPAN


# -- one number at a time, against its bound ------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A number in the definition: where it is, its field name in a refusal, its bound."""

    path: tuple[str | int, ...]
    field: str
    low: int
    high: int
    # the other numbers it adds up with against ``high`` (an allocation: the others')
    others: int = 0


NUMBERS = [
    Number(("hold_seconds",), "hold_seconds", 1, MAX_HOLD_SECONDS),
    Number(("limit_per_customer",), "limit_per_customer", 1, MAX_UNITS),
    Number(("offers", "phone-red", "allocation"), "allocation", 0, MAX_UNITS, others=5),
    Number(("offers", "tv-55", "limit_per_customer"), "limit_per_customer", 1, MAX_UNITS),
    Number(("offers", "tv-55", "prices", "IN", 0), "price", 1, MAX_MINOR_UNITS),
    Number(("milestones", 0, "threshold"), "threshold", 1, MAX_AMOUNT),
    Number(("milestones", 1, "threshold"), "threshold", 1, MAX_UNITS),
]


def near(bound: int) -> st.SearchStrategy[int]:
    return st.sampled_from([bound - 1, bound, bound + 1]) | st.integers(bound - 3, bound + 3)


#: Whole numbers around every bound, beyond 64 bits, negative, and anything at all.
WHOLE = st.one_of(
    *(near(b) for b in (0, 1, MAX_HOLD_SECONDS, MAX_UNITS, MAX_MINOR_UNITS, MAX_AMOUNT)),
    st.sampled_from([2**63 - 1, 2**63, 2**64, 10**30, -(2**63), -(10**30), 10**4000]),
    st.integers(),
)
#: What a JSON document can hold instead of a whole number.
NOT_WHOLE = st.one_of(
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["10", "1e30", "NaN", "+5", "0x10"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def put(data: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def outcome(data: object) -> SaleEvent | InvalidRequest:
    try:
        return event_from_dict(data)
    except InvalidRequest as refusal:
        return refusal


@given(st.sampled_from(NUMBERS), WHOLE)
def test_a_whole_number_is_accepted_exactly_within_its_bound(number: Number, value: int) -> None:
    result = outcome(put(BASE, number.path, value))
    within = number.low <= value <= number.high - number.others
    if within:
        assert isinstance(result, SaleEvent), result
    else:
        assert isinstance(result, InvalidRequest)
        assert result.field == number.field
        # the message names the bound, and stays short however large the number
        assert f"{number.high:,}" in result.problem or f"{number.low:,}" in result.problem
        assert len(str(result)) < 300


@given(st.sampled_from(NUMBERS), NOT_WHOLE)
def test_anything_but_a_whole_number_is_refused_naming_its_field(
    number: Number, value: object
) -> None:
    optional = number.field == "limit_per_customer" and value is None
    result = outcome(put(BASE, number.path, value))
    if optional:
        assert isinstance(result, SaleEvent)  # null: no limit
    else:
        assert isinstance(result, InvalidRequest)
        # the domain's name of the field, or its place in the document
        assert result.field in (number.field, dotted(number.path))


def dotted(path: tuple[str | int, ...]) -> str:
    """``("milestones", 0, "threshold")`` as the codec names it: ``milestones[0].threshold``;
    a price's amount (``prices.IN[0]``) by its price."""
    out = ""
    for step in path[:-1] if path[-1] == 0 else path:
        out += f"[{step}]" if isinstance(step, int) else ("." if out else "") + step
    return out


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
    | st.sampled_from([EARLIEST, LATEST, LATEST - timedelta(seconds=1)]),
    st.integers(1, 60 * 86_400),
)
def test_a_window_lies_between_the_earliest_and_latest_dates_and_spans_a_month_at_most(
    opens: datetime, seconds: int
) -> None:
    closes = opens + timedelta(seconds=seconds)
    data = copy.deepcopy(BASE)
    data["windows"] = {"CN": {"opens": opens.isoformat(), "closes": closes.isoformat()}}
    result = outcome(data)
    if EARLIEST <= opens and closes < LATEST and closes - opens <= MAX_EVENT_SPAN:
        assert isinstance(result, SaleEvent), result
    else:
        assert isinstance(result, InvalidRequest)
        assert result.field in ("opens", "closes", "windows")


@given(st.integers(0, 2 * MAX_FX_TERM), st.integers(0, 2 * MAX_FX_TERM))
def test_an_fx_rate_is_a_positive_fraction_of_twelve_digit_terms(top: int, bottom: int) -> None:
    result = outcome(put(BASE, ("fx", "rates", "INR"), f"{top}/{bottom}"))
    fine = bottom > 0 and top > 0
    if fine:
        rate = Fraction(top, bottom)
        fine = rate.numerator <= MAX_FX_TERM and rate.denominator <= MAX_FX_TERM
    assert isinstance(result, SaleEvent) == fine
    if not fine:
        assert isinstance(result, InvalidRequest)
        assert result.field.startswith("fx")


@pytest.mark.parametrize(
    "rate", ["1e999999999", "1/0", "0.5e-9", "1" * 25, "-1/2", " 1/2", 0.5, 1, None]
)
def test_an_fx_rate_that_is_not_an_exact_short_fraction_is_refused(rate: object) -> None:
    result = outcome(put(BASE, ("fx", "rates", "INR"), rate))
    assert isinstance(result, InvalidRequest)
    assert result.field.startswith("fx")


def test_the_allocations_of_an_event_add_up_to_max_units_at_most() -> None:
    half = MAX_UNITS // 2
    fits = put(
        put(BASE, ("offers", "phone-red", "allocation"), half),
        ("offers", "tv-55", "allocation"),
        MAX_UNITS - half,
    )
    assert isinstance(outcome(fits), SaleEvent)
    over = put(fits, ("offers", "tv-55", "allocation"), MAX_UNITS - half + 1)
    refusal = outcome(over)
    assert isinstance(refusal, InvalidRequest)
    assert refusal.field == "allocation"
    assert "MAX_UNITS" in refusal.problem


def test_a_hold_line_keeps_to_the_same_bounds() -> None:
    assert HoldLine("tv", MAX_UNITS, MAX_MINOR_UNITS).amount == MAX_AMOUNT
    for quantity, price in ((MAX_UNITS + 1, 1), (1, MAX_MINOR_UNITS + 1), (1, -1)):
        with pytest.raises(InvalidRequest):
            HoldLine("tv", quantity, price)


@pytest.mark.parametrize(
    "text",
    ["1e999999999 CNY", "9" * 5000 + " CNY", "1_e5 CNY", "0x10 CNY"],
    ids=["exponent", "5000 digits", "underscore exponent", "hex"],
)
def test_money_text_with_an_exponent_or_thousands_of_digits_is_refused_at_once(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        Money.parse(text)
    assert caught.value.field == "money"


@pytest.mark.parametrize(
    "value",
    [10**4000, -(10**5000), 2**70, True, 1.5, "x" * 10_000],
    ids=["4001 digits", "-5001 digits", "2**70", "bool", "float", "long text"],
)
def test_a_message_shows_any_value_in_a_few_characters(value: object) -> None:
    assert len(show(value)) < 70


# -- any JSON value at all -------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def paths(data: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``data`` (objects' keys, arrays' indexes)."""
    out: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths(value, (*prefix, i))
    return out


ALL_PATHS = paths(BASE)


@given(JSON)
def test_any_json_value_is_an_event_or_an_invalid_request(data: object) -> None:
    assert isinstance(outcome(data), SaleEvent | InvalidRequest)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), JSON | WHOLE | NOT_WHOLE), max_size=3))
def test_a_definition_with_any_part_replaced_is_an_event_or_an_invalid_request(
    changes: list[tuple[tuple[Any, ...], object]],
) -> None:
    data: Any = copy.deepcopy(BASE)
    for path, value in changes:
        try:
            data = put(data, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the path
    result = outcome(data)
    assert isinstance(result, SaleEvent | InvalidRequest)
    if isinstance(result, SaleEvent):  # whatever got in keeps to every bound
        check_bounds(result)


def check_bounds(event: SaleEvent) -> None:
    assert 1 <= event.hold_seconds <= MAX_HOLD_SECONDS
    assert event.total_allocation <= MAX_UNITS
    for offer in event.offers.values():
        assert all(1 <= p.amount <= MAX_MINOR_UNITS for p in offer.prices.values())
    for w in event.windows.values():
        assert EARLIEST <= w.opens < w.closes < LATEST
    assert all(1 <= m.threshold <= MAX_AMOUNT for m in event.milestones)


# -- the same bounds through a scenario file -------------------------------------------------

FLASH = (
    Path(__file__).resolve().parents[2] / "src" / "lampo" / "scenarios" / "flash-drop.toml"
).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Written:
    """A number as a scenario file writes it: the text it replaces, how the value is
    spelled, and its bound (in the file's own unit: units, seconds, minor units)."""

    old: str
    new: str  # with {} for the value
    low: int
    high: int
    minor: bool = False  # written as a decimal of INR: value / 100


WRITTEN = [
    Written("allocation = 40_000", "allocation = {}", 0, MAX_UNITS),
    Written("hold_seconds = 600", "hold_seconds = {}", 1, MAX_HOLD_SECONDS),
    Written("limit = 1", "limit = {}", 1, MAX_UNITS),
    Written('prices = { IN = "5999.00" }', 'prices = {{ IN = "{}" }}', 1, MAX_MINOR_UNITS, True),
    Written("units = 20_000", "units = {}", 1, MAX_UNITS),
]


def inr(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"


@given(st.sampled_from(WRITTEN), WHOLE.filter(lambda n: abs(n) < 10**40))
def test_a_scenario_number_is_accepted_exactly_within_its_bound(
    written: Written, value: int
) -> None:
    text = FLASH.replace(written.old, written.new.format(inr(value) if written.minor else value))
    within = written.low <= value <= written.high
    try:
        scenario = loads(text, "bounds")
    except LampoError as refusal:
        refused: LampoError = refusal
    else:
        assert within
        check_bounds(scenario.event)
        return
    assert not within, refused
    assert len(str(refused)) < 300
