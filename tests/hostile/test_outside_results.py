"""Results from outside (``services/imports.py``) given hostile files: whatever the text,
the reader returns rows or refuses the file whole with ``ImportRowsRefused``, and a refusal
names every bad row's line, no more and no fewer; stores in scenario files likewise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.services.imports import (
    ACTUAL_COLUMNS,
    MAX_OUTSIDE_UNITS,
    MAX_RANK,
    RANKING_COLUMNS,
    ActualResult,
    ImportRowsRefused,
    actual_results,
    marketplace_rankings,
)
from lampo.sim.scenario import ScenarioError, loads
from tests.hostile._cli import assert_one_line_or_success
from tests.hostile._cli import run as run_cli
from tests.hostile.strategies_cli import hostile_files

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

GOOD_ACTUAL = '2017Q2,CN,jd,phones,1000,1999.00,CNY,"a report"'
GOOD_RANK = "2021Q4,jd,purchase list,phones,1,Xiaomi,seed"
BAD_ACTUALS = [
    "2017Q5,CN,jd,phones,1000,,,x",  # no such quarter
    "2017Q2,cn,jd,phones,1000,,,x",  # a market code is upper case
    "2017Q2,CN,JD!,phones,1000,,,x",  # not an id
    "2017Q2,CN,jd,phones,,,,x",  # neither units nor revenue
    f"2017Q2,CN,jd,phones,{MAX_OUTSIDE_UNITS + 1},,,x",  # past the bound
    "2017Q2,CN,jd,phones,-5,,,x",
    "2017Q2,CN,jd,phones,1e9,,,x",
    "2017Q2,CN,jd,phones,,1.001,CNY,x",  # more decimals than CNY has
    "2017Q2,CN,jd,phones,,100.00,XXX,x",  # no such currency
    "2017Q2,CN,jd,phones,,100.00,,x",  # revenue without a currency
    "2017Q2,CN,jd,phones,5,,CNY,x",  # a currency without revenue
    "2017Q2,CN,jd,phones,5,,,",  # no source
    "2017Q2,CN,jd,phones,5",  # too few fields
]
BAD_RANKS = [
    "2021Q4,jd,list,phones,0,Xiaomi,x",
    f"2021Q4,jd,list,phones,{MAX_RANK + 1},Xiaomi,x",
    "2021Q4,jd,list,phones,one,Xiaomi,x",
    "2021Q4,jd,,phones,1,Xiaomi,x",
    "2021,jd,list,phones,1,,x",
]


def read(file: str) -> tuple[list[ActualResult] | None, ImportRowsRefused | None]:
    """The rows of an actual-results file, or its refusal."""
    try:
        return actual_results(file), None
    except ImportRowsRefused as refused:
        return None, refused


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "outside.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("reader", "header", "good", "bad"),
    [
        (actual_results, ACTUAL_COLUMNS, GOOD_ACTUAL, BAD_ACTUALS),
        (marketplace_rankings, RANKING_COLUMNS, GOOD_RANK, BAD_RANKS),
    ],
)
@SETTINGS
@given(data=st.data())
def test_a_refusal_names_every_bad_row_and_only_those(
    tmp_path: Path,
    reader: object,
    header: tuple[str, ...],
    good: str,
    bad: list[str],
    data: st.DataObject,
) -> None:
    rows = data.draw(st.lists(st.one_of(st.just(good), st.sampled_from(bad)), min_size=1))
    text = "# a comment\n" + ",".join(header) + "\n" + "\n".join(rows) + "\n"
    file = write(tmp_path, text)
    bad_lines = [i + 3 for i, row in enumerate(rows) if row != good]
    assert callable(reader)
    if not bad_lines:
        assert len(reader(file)) == len(rows)
        return
    with pytest.raises(ImportRowsRefused) as refused:
        reader(file)
    assert [line for line, _ in refused.value.problems] == bad_lines
    assert refused.value.reason == "invalid-import"
    assert file in refused.value.message()


@SETTINGS
@given(body=st.text(max_size=400))
def test_any_text_is_read_or_refused_whole(tmp_path: Path, body: str) -> None:
    rows, refused = read(write(tmp_path, ",".join(ACTUAL_COLUMNS) + "\n" + body))
    if refused is not None:
        assert refused.problems
        assert all(isinstance(line, int) for line, _ in refused.problems)
    else:
        assert rows
        assert all(r.units is not None or r.revenue is not None for r in rows)


@SETTINGS
@given(
    cells=st.lists(
        st.one_of(
            st.text(max_size=30),
            st.integers(-(10**30), 10**30).map(str),
            st.sampled_from(["all", "CN", "2017Q2", "1e400", "NaN", "9" * 600]),
        ),
        min_size=8,
        max_size=8,
    )
)
def test_hostile_cells_are_refused_with_their_line_or_read_within_bounds(
    tmp_path: Path, cells: list[str]
) -> None:
    quoted = ",".join('"' + c.replace('"', '""') + '"' for c in cells)
    rows, refused = read(write(tmp_path, ",".join(ACTUAL_COLUMNS) + "\n" + quoted + "\n"))
    if refused is not None:
        assert refused.problems[0][0] in (0, 2)
    else:
        assert rows is not None
        (row,) = rows
        assert row.units is None or 0 <= row.units <= MAX_OUTSIDE_UNITS
        assert row.revenue is None or 0 <= row.revenue.amount


STORE_SCENARIO = """
[event]
id = "s"
name = "S"
opens = 2021-11-10T10:00:00
closes = 2021-11-10T22:00:00
[fx]
reporting = "CNY"
on = 2021-11-10
[markets.CN]
name = "China"
currency = "CNY"
tz = "Asia/Shanghai"
[categories.phones]
name = "Phones"
[[skus]]
id = "k40"
category = "phones"
allocation = 10
prices = { CN = "1.00" }
[crowd]
decay_seconds = 10
[crowd.arrivals]
CN = { peak_per_second = 1 }
[crowd.demand]
k40 = 1.0
[crowd.stores]
walk_ins_per_hour = 1
"""

store_values = st.one_of(
    st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["1e400", "nan", "true", "[]", "{}", "2017-02-30", "1979-01-01", "10:00:00"]),
)


@SETTINGS
@given(
    field=st.sampled_from(["id", "name", "kind", "market", "city", "opened", "closed", "lat"]),
    value=store_values,
)
def test_a_hostile_inline_store_is_refused_naming_its_field(field: str, value: str) -> None:
    store = {
        "id": '"sz-1"',
        "name": '"Mi Home"',
        "kind": '"own"',
        "market": '"CN"',
        "city": '"Shenzhen"',
        "opened": "2018-01-01",
    }
    store[field] = value
    text = STORE_SCENARIO + "[[stores]]\n" + "\n".join(f"{k} = {v}" for k, v in store.items())
    try:
        loaded, refused = loads(text, "hostile"), None
    except ScenarioError as err:
        loaded, refused = None, err
    if refused is not None:
        assert refused.field.startswith(("stores", "crowd.stores")) or "TOML" in refused.problem
    else:
        assert loaded is not None
        (kept,) = loaded.stores
        assert kept.market == "CN" or field == "market"


@SETTINGS
@given(
    option=st.sampled_from(["--actuals", "--rankings"]),
    content=st.one_of(
        hostile_files(),
        st.lists(st.sampled_from([GOOD_ACTUAL, GOOD_RANK, *BAD_ACTUALS, *BAD_RANKS])).map(
            lambda rows: ",".join(ACTUAL_COLUMNS) + "\n" + "\n".join(rows)
        ),
    ),
)
def test_report_period_answers_a_hostile_outside_file_in_one_line(
    capsys: pytest.CaptureFixture[str],
    sandbox: Path,
    sale_database: str,
    option: str,
    content: str,
) -> None:
    (sandbox / "outside.csv").write_text(content, encoding="utf-8", errors="surrogatepass")
    argv = ["report", "period", "2014Q3", "--storage", sale_database, option, "outside.csv"]
    done = run_cli(capsys, argv)
    assert_one_line_or_success(done)
    if done.code == 2:
        assert "outside.csv" in done.err
