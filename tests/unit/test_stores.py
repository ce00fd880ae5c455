"""The store network: registry rows, CSV round trips and refusals, counts per period."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampo.domain.errors import InvalidRequest
from lampo.domain.period import Period
from lampo.domain.stores import (
    COLUMNS,
    MAX_CSV_BYTES,
    MAX_STORES,
    Store,
    StoreKind,
    StoresRefused,
    days_of,
    first_store,
    network,
    open_at,
    parse_csv,
    progress_to,
    to_csv,
)

HEADER = ",".join(COLUMNS)

#: The Unicode categories ``str.isprintable`` refuses (it takes the ASCII space alone of Zs).
UNPRINTABLE = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")
ids = st.text(st.characters(exclude_categories=UNPRINTABLE), min_size=1, max_size=64)
names = st.text(
    st.characters(exclude_categories=UNPRINTABLE, include_characters=" "), min_size=1, max_size=200
)
markets = st.sampled_from(["CN", "IN", "ID", "VN"])
days = st.dates(date(2010, 1, 1), date(2030, 12, 31))
lats = st.none() | st.floats(-90, 90, allow_nan=False)
lons = st.none() | st.floats(-180, 180, allow_nan=False)


@st.composite
def stores(draw: st.DrawFn, store_id: str | None = None) -> Store:
    opened = draw(days)
    closed = draw(st.none() | st.integers(0, 3000).map(lambda n: opened + timedelta(n)))
    return Store(
        id=store_id if store_id is not None else draw(ids),
        name=draw(names),
        kind=draw(st.sampled_from(StoreKind)),
        market=draw(markets),
        city=draw(names),
        opened=opened,
        closed=closed,
        lat=draw(lats),
        lon=draw(lons),
    )


@st.composite
def registries(draw: st.DrawFn, min_size: int = 0) -> list[Store]:
    keys = draw(st.lists(ids, min_size=min_size, max_size=30, unique=True))
    return [draw(stores(k)) for k in keys]


periods = st.builds(Period, st.integers(2010, 2030), st.integers(0, 4))


def a_store(i: int, opened: date, closed: date | None = None, market: str = "CN") -> Store:
    return Store(f"mi-home-{i}", f"Mi Home {i}", StoreKind.OWN, market, "Beijing", opened, closed)


# -- rows ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "has space"}, "id"),
        ({"id": ""}, "id"),
        ({"name": "x" * 201}, "name"),
        ({"city": "tab\there"}, "city"),
        ({"kind": "franchise"}, "kind"),
        ({"market": "TOOLONGMARKET"}, "market"),
        ({"opened": date(1969, 12, 31)}, "opened"),
        ({"closed": date(2017, 3, 31)}, "closed"),
        ({"closed": date(2200, 1, 1)}, "closed"),
        ({"lat": 90.5}, "lat"),
        ({"lon": -180.01}, "lon"),
        ({"lat": float("nan")}, "lat"),
        ({"lon": True}, "lon"),
    ],
)
def test_a_bad_field_is_refused_by_name(change: dict[str, object], field: str) -> None:
    good = {
        "id": "s1",
        "name": "Mi Home Wudaokou",
        "kind": "own",
        "market": "CN",
        "city": "Beijing",
        "opened": date(2017, 4, 1),
        "closed": None,
        "lat": 39.99,
        "lon": 116.33,
    }
    Store(**good)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest) as caught:
        Store(**(good | change))  # type: ignore[arg-type]
    assert caught.value.field == field


def test_a_store_is_open_from_its_opening_to_the_day_before_it_closes() -> None:
    s = a_store(1, date(2017, 4, 10), date(2017, 5, 1))
    assert not s.open_on(date(2017, 4, 9))
    assert s.open_on(date(2017, 4, 10))
    assert s.open_on(date(2017, 4, 30))
    assert not s.open_on(date(2017, 5, 1))
    assert not a_store(2, date(2017, 4, 10), date(2017, 4, 10)).open_on(date(2017, 4, 10))


# -- CSV -----------------------------------------------------------------------------------
@settings(max_examples=150)
@given(registries())
def test_csv_round_trips(registry: list[Store]) -> None:
    assert parse_csv(to_csv(registry)) == registry


BAD_CELLS = {
    "id": ["", "a b"],
    "name": [""],
    "kind": ["franchise", "OWN"],
    "market": ["", "ABCDEFGHI"],
    "city": [""],
    "opened": ["", "2017-02-30", "17-04-01", "1969-12-31", "20170401"],
    "closed": ["2017-13-01", "1900-01-01", "tomorrow"],
    "lat": ["91", "north", "nan", "inf"],
    "lon": ["-181", "1e400", "east"],
}


@st.composite
def bad_rows(draw: st.DrawFn, good: Store) -> tuple[str, str]:
    """A bad line built from ``good``'s CSV row, and the column its problem names."""
    row = to_csv([good]).splitlines()[1]
    how = draw(st.sampled_from(["cell", "width", "duplicate"]))
    if how == "width":
        return row + ",extra", "row"
    if how == "duplicate":
        return "", "id"
    column = draw(st.sampled_from(sorted(BAD_CELLS)))
    cells = next(iter(csv.reader([row])))
    cells[COLUMNS.index(column)] = draw(st.sampled_from(BAD_CELLS[column]))
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue(), column


@settings(max_examples=150)
@given(st.data(), registries(min_size=1))
def test_one_bad_row_anywhere_refuses_the_whole_file_naming_its_line(
    data: st.DataObject, registry: list[Store]
) -> None:
    at = data.draw(st.integers(0, len(registry) - 1))
    lines = to_csv(registry).splitlines()
    bad, column = data.draw(bad_rows(registry[at]))
    if not bad:  # a duplicate of an earlier store's id
        if at == 0:
            return
        bad = to_csv([replace(registry[at], id=registry[0].id)]).splitlines()[1]
    lines[at + 1] = bad
    with pytest.raises(StoresRefused) as caught:
        parse_csv("\n".join(lines) + "\n")
    problems = caught.value.problems
    assert {"line": at + 2, "column": column} in [
        {"line": p["line"], "column": p["column"]} for p in problems
    ]
    assert all(p["line"] == at + 2 for p in problems)


def test_every_bad_row_is_named_at_once() -> None:
    text = "\n".join(
        [
            HEADER,
            "a,A,own,CN,Beijing,2017-04-01,,,",
            "b,B,franchise,CN,Beijing,2017-04-01,,95,",
            "c,C,own,CN,Beijing,2017-04-01,2017-03-01,,",
            "a,A again,own,CN,Beijing,2017-04-01,,,",
            "d,D,own,CN",
        ]
    )
    with pytest.raises(StoresRefused) as caught:
        parse_csv(text)
    found = [(p["line"], p["column"]) for p in caught.value.problems]
    assert found == [(3, "kind"), (3, "lat"), (4, "closed"), (5, "id"), (6, "row")]
    assert caught.value.detail()["problems"] == caught.value.problems
    assert "line 3, kind" in str(caught.value)


def test_a_problem_names_the_first_line_of_a_record_over_several() -> None:
    rows = [
        '"a",A,own,CN,C,2017-04-01,,,',
        'b,"B\nB",own,CN,C,2017-04-01,,,',
        "c,C,x,CN,C,2017-04-01,,,",
    ]
    text = "\n".join([HEADER, *rows]) + "\n"
    with pytest.raises(StoresRefused) as caught:
        parse_csv(text)
    assert [(p["line"], p["column"]) for p in caught.value.problems] == [(3, "name"), (5, "kind")]


@pytest.mark.parametrize(
    "text", ["", "id,name\n", HEADER.upper() + "\n", HEADER.replace("lat,lon", "lon,lat")]
)
def test_a_wrong_header_is_refused(text: str) -> None:
    with pytest.raises(StoresRefused) as caught:
        parse_csv(text)
    assert caught.value.problems[0]["column"] == "header"


def test_sizes_are_bounded() -> None:
    too_big = HEADER + "\n" + "x" * MAX_CSV_BYTES
    with pytest.raises(StoresRefused) as caught:
        parse_csv(too_big)
    assert caught.value.problems[0]["column"] == "file"
    rows = "".join(f"s{i},S,own,CN,C,2017-04-01,,,\n" for i in range(MAX_STORES + 1))
    with pytest.raises(StoresRefused) as caught:
        parse_csv(HEADER + "\n" + rows)
    assert caught.value.problems == [
        {"line": MAX_STORES + 2, "column": "file", "reason": f"more than {MAX_STORES:,} stores"}
    ]
    assert len(parse_csv(HEADER + "\n" + rows.rpartition("s100000,")[0])) == MAX_STORES


def test_blank_lines_and_a_byte_order_mark_are_taken() -> None:
    text = "\ufeff" + HEADER + "\r\n\r\na,A,own,CN,Beijing,2017-04-01,,39.9,116.4\r\n\r\n"
    assert parse_csv(text) == [
        Store("a", "A", StoreKind.OWN, "CN", "Beijing", date(2017, 4, 1), None, 39.9, 116.4)
    ]


# -- figures -------------------------------------------------------------------------------
@settings(max_examples=200)
@given(registries(), periods)
def test_opened_less_closed_is_the_change_of_open_stores(
    registry: list[Store], period: Period
) -> None:
    first, last = days_of(period)
    fig = network(registry, period)
    assert fig.total.opened - fig.total.closed == (
        open_at(registry, last) - open_at(registry, first - timedelta(1))
    )
    assert fig.total.change == fig.total.opened - fig.total.closed
    assert fig.total.open_before == network(registry, period.previous()).total.open
    for market, figures in fig.by_market.items():
        assert figures.open == open_at(registry, last, market)
        assert figures.change == figures.opened - figures.closed
    assert sum(f.open for f in fig.by_market.values()) == fig.total.open


def test_the_seed_123_stores_open_at_the_end_of_2017q2_with_14_more() -> None:
    before = [a_store(i, date(2016, 1, 1) + timedelta(3 * i)) for i in range(109)]
    before[5] = a_store(5, date(2016, 1, 16), date(2017, 5, 20))  # closes in the quarter
    before[6] = a_store(6, date(2016, 1, 19), date(2017, 7, 1))  # closes the day after
    quarter = [a_store(200 + i, date(2017, 4, 1) + timedelta(6 * i)) for i in range(15)]
    later = [a_store(300, date(2017, 7, 1))]
    india = [a_store(400, date(2017, 5, 20), market="IN")]
    registry = parse_csv(to_csv(before + quarter + later + india))
    fig = network(registry, Period.parse("2017Q2", "Asia/Shanghai"))
    cn = fig.by_market["CN"]
    assert (cn.open, cn.opened, cn.closed, cn.change) == (123, 15, 1, 14)
    assert cn.growth == Fraction(123, 109) - 1
    assert fig.by_market["IN"].change == 1
    assert fig.by_market["IN"].growth is None
    assert fig.total.open == 124
    assert first_store(registry, "IN") == date(2017, 5, 20)
    assert first_store(registry, "VN") is None


def test_progress_to_a_target_is_exact() -> None:
    assert progress_to(30_000, 10_000) == Fraction(1, 3)
    assert progress_to(3, 4) == Fraction(4, 3)
    for target, current in [(0, 1), (MAX_STORES + 1, 1), (10, -1), (True, 1), (10, 1.5)]:
        with pytest.raises(InvalidRequest):
            progress_to(target, current)  # type: ignore[arg-type]
