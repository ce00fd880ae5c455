"""Stores and store traffic in scenario files: the registry inline or from a CSV file next
to the scenario, walk-ins bounded and within opening hours in each market's local time,
till sales batched exactly as ``Sales.sell_in_store`` makes them one by one."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.domain.errors import InvalidRequest
from lampo.domain.holds import Hold
from lampo.domain.market import ChannelKind
from lampo.domain.period import Period
from lampo.domain.stores import network
from lampo.services.audit import audit
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.sim import definition
from lampo.sim.crowd import (
    MAX_SIM_REQUESTS,
    Plan,
    check_work,
    expected_walk_ins,
    selling_stores,
    store_visits,
    timeline,
)
from lampo.sim.driver import SimResult, run
from lampo.sim.remote import check_no_tills
from lampo.sim.scenario import MAX_WALK_INS_PER_HOUR, Scenario, ScenarioError, load, loads
from lampo.storage.memory import MemoryStorage

EVENT = """
[event]
id = "tills"
name = "Tills"
home_market = "CN"
hold_seconds = 300
opens = 2021-11-10T{opens}
closes = 2021-11-12T00:00:00

[fx]
reporting = "CNY"
on = 2021-11-10

[markets.CN]
name = "China"
currency = "CNY"
tz = "{tz}"

[categories.phones]
name = "Phones"
unit = "phones"

[[channels]]
id = "online"
kind = "online"

[[channels]]
id = "jd"
kind = "marketplace"
pool = "jd"

[[channels]]
id = "mi-home"
kind = "store"
pool = "stores"

[[skus]]
id = "k40"
category = "phones"
allocation = {allocation}
limit = 2
prices = {{ CN = "1799.00" }}
pools = {{ jd = {jd}, stores = {pool} }}
fallback = {fallback}

[[skus]]
id = "band"
category = "phones"
allocation = 5000
prices = {{ CN = "229.00" }}

[crowd]
decay_seconds = 600
never_pay = 0.1
release = 0.05
pay_delay_seconds = 60

[crowd.arrivals]
CN = {{ peak_per_second = {peak}, baseline_per_second = 0.02 }}

[crowd.demand]
k40 = 1.0
band = 0.2

[crowd.channels]
CN = {{ online = 0.5, jd = 0.5 }}

[crowd.stores]
walk_ins_per_hour = {walk_ins}
opens = "{store_opens}"
closes = "{store_closes}"
two_units = 0.2
"""

STORES = """
[[stores]]
id = "beijing-1"
name = "Mi Home Beijing 1"
kind = "own"
market = "CN"
city = "Beijing"
opened = 2017-01-10

[[stores]]
id = "shanghai-1"
name = "Mi Home Shanghai 1"
kind = "authorised"
market = "CN"
city = "Shanghai"
opened = 2021-11-11
lat = 31.2
lon = 121.5

[[stores]]
id = "chengdu-1"
name = "Mi Home Chengdu 1"
kind = "own"
market = "CN"
city = "Chengdu"
opened = 2016-05-01
closed = 2021-11-11
"""

DEFAULTS = {
    "opens": "00:00:00",
    "tz": "Asia/Shanghai",
    "allocation": 600,
    "jd": 100,
    "pool": 50,
    "fallback": "true",
    "peak": 2,
    "walk_ins": 30,
    "store_opens": "10:00",
    "store_closes": "22:00",
}


def text(stores: str = STORES, **changes: object) -> str:
    return EVENT.format(**{**DEFAULTS, **changes}) + stores


def scenario(scale: float = 1.0, stores: str = STORES, **changes: object) -> Scenario:
    return loads(text(stores, **changes), "tills", scale)


# -- parsing -------------------------------------------------------------------------------
def test_inline_stores_are_read_with_every_field_of_the_registry() -> None:
    stores = scenario().stores
    assert [s.id for s in stores] == ["beijing-1", "shanghai-1", "chengdu-1"]
    assert stores[1].lat == 31.2
    assert stores[2].closed == date(2021, 11, 11)


def test_a_stores_file_next_to_the_scenario_is_read_with_the_registry_parser(
    tmp_path: Path,
) -> None:
    (tmp_path / "net.csv").write_text(
        "id,name,kind,market,city,opened,closed,lat,lon\n"
        "sz-1,Mi Home Shenzhen,own,CN,Shenzhen,2018-03-01,,22.5,114.1\n",
        encoding="utf-8",
    )
    path = tmp_path / "tills.toml"
    path.write_text('stores = "net.csv"\n' + text(stores=""), encoding="utf-8")
    loaded = load(path)
    assert [s.id for s in loaded.stores] == ["sz-1"]


def test_a_bad_row_of_the_stores_file_is_refused_naming_the_file_line_and_column(
    tmp_path: Path,
) -> None:
    (tmp_path / "net.csv").write_text(
        "id,name,kind,market,city,opened,closed,lat,lon\n"
        "sz-1,Mi Home Shenzhen,own,CN,Shenzhen,2018-03-01,,22.5,114.1\n"
        "sz-2,Mi Home Shenzhen 2,own,CN,Shenzhen,2018-02-30,,,\n",
        encoding="utf-8",
    )
    path = tmp_path / "tills.toml"
    path.write_text('stores = "net.csv"\n' + text(stores=""), encoding="utf-8")
    with pytest.raises(ScenarioError) as refused:
        load(path)
    assert refused.value.file.endswith("net.csv")
    assert refused.value.line == 3
    assert "opened" in refused.value.field
    assert "2018-02-30" in refused.value.problem


@pytest.mark.parametrize(
    "name", ["../net.csv", "/etc/passwd.csv", "net.txt", "a" * 200 + ".csv", ".csv"]
)
def test_a_stores_file_must_be_a_plain_csv_name_next_to_the_scenario(name: str) -> None:
    with pytest.raises(ScenarioError) as refused:
        loads(f"stores = {name!r}\n" + text(stores=""), "up")
    assert refused.value.field == "stores"


def test_an_uploaded_scenario_must_declare_its_stores_inline() -> None:
    with pytest.raises(ScenarioError) as refused:
        loads('stores = "net.csv"\n' + text(stores=""), "up")
    assert "inline" in refused.value.problem


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"walk_ins": MAX_WALK_INS_PER_HOUR + 1}, "crowd.stores.walk_ins_per_hour", "between"),
        ({"walk_ins": -1}, "crowd.stores.walk_ins_per_hour", "between"),
        ({"walk_ins": '"many"'}, "crowd.stores.walk_ins_per_hour", "number"),
        ({"store_opens": "22:00", "store_closes": "10:00"}, "crowd.stores.closes", "after"),
        ({"store_opens": "25:00"}, "crowd.stores.opens", "time of day"),
    ],
)
def test_store_traffic_beyond_its_bounds_is_refused_naming_the_field_and_line(
    changes: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(ScenarioError) as refused:
        scenario(**changes)
    assert refused.value.field == field
    assert words in refused.value.problem
    assert refused.value.line is not None


def test_a_store_with_a_bad_field_is_refused_naming_it() -> None:
    bad = STORES.replace('kind = "authorised"', 'kind = "franchise"')
    with pytest.raises(ScenarioError) as refused:
        scenario(stores=bad)
    assert refused.value.field.startswith("stores[1]")
    assert "franchise" in refused.value.problem


def test_walk_ins_without_stores_are_refused() -> None:
    with pytest.raises(ScenarioError) as refused:
        scenario(stores="")
    assert refused.value.field == "crowd.stores"


def test_a_marketplace_the_event_does_not_declare_is_refused_in_the_crowd() -> None:
    bad = text().replace("online = 0.5, jd = 0.5", "online = 0.5, tmall = 0.5")
    with pytest.raises(ScenarioError) as refused:
        loads(bad, "tills")
    assert refused.value.field == "crowd.channels.CN.tmall"
    assert "declares its channels" in refused.value.problem


def test_walk_ins_need_a_declared_store_channel() -> None:
    bad = text().replace('kind = "store"\npool = "stores"', 'kind = "marketplace"\npool = "stores"')
    with pytest.raises(ScenarioError) as refused:
        loads(bad, "tills")
    assert refused.value.field == "crowd.stores"


# -- the crowd at the stores ---------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tz=st.sampled_from(["Asia/Shanghai", "Asia/Kolkata", "America/New_York", "Europe/Rome"]),
    opens=st.integers(0, 22),
    length=st.integers(1, 12),
    start=st.sampled_from(["00:00:00", "09:30:00", "15:00:00"]),
    seed=st.integers(0, 2**16),
)
def test_every_walk_in_is_within_its_stores_opening_hours_in_local_time(
    tz: str, opens: int, length: int, start: str, seed: int
) -> None:
    closes = min(opens + length, 23)
    loaded = scenario(
        tz=tz,
        opens=start,
        walk_ins=120,
        store_opens=f"{opens:02d}:00",
        store_closes=f"{closes:02d}:59",
    )
    zone = ZoneInfo(tz)
    window = loaded.event.windows["CN"]
    stores = {s.id: s for s in loaded.stores}
    visits = list(store_visits(loaded, "CN", seed))
    for visit in visits:
        at = loaded.event.opens + timedelta(milliseconds=visit.at_ms)
        local = at.astimezone(zone)
        assert time(opens) <= local.time() < time(closes, 59)
        assert window.opens <= at < window.closes
        store = stores[visit.channel.name]
        assert store.open_on(local.date())
        assert visit.channel.kind is ChannelKind.STORE
        assert visit.plan is Plan.TILL
    assert [v.at_ms for v in visits] == sorted(v.at_ms for v in visits)
    assert len({v.key for v in visits}) == len(visits)


def test_a_scaled_run_keeps_a_scaled_share_of_the_stores_and_of_their_traffic() -> None:
    shipped = load("double-11-2021", 1.0)
    small = load("double-11-2021", 0.01)
    assert len(shipped.stores) == len(small.stores) == 400  # the registry is whole
    assert len(selling_stores(shipped)) == 400
    picked = selling_stores(small)
    assert len(picked) == 4
    assert len({s.city for s in picked}) == 4  # spread over the registry, not one city
    assert expected_walk_ins(small) == pytest.approx(expected_walk_ins(shipped) * 0.01)


def test_the_budget_counts_walk_ins() -> None:
    loaded = scenario(walk_ins=MAX_WALK_INS_PER_HOUR)
    with pytest.raises(ScenarioError) as refused:
        check_work(loaded, max_requests=int(expected_walk_ins(loaded)) - 1)
    assert refused.value.field == "scale"
    check_work(loaded, max_requests=MAX_SIM_REQUESTS)


def test_a_rehearsal_over_http_refuses_a_crowd_that_buys_at_tills() -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_no_tills(scenario())
    assert "/v1/stores/{store}/sales" in refused.value.problem


# -- till sales in the driver --------------------------------------------------------------
def simulate(loaded: Scenario, seed: int, **options: object) -> tuple[MemoryStorage, SimResult]:
    storage = MemoryStorage()
    clock = ManualClock(loaded.event.opens)
    result = run(loaded, Sales(storage, clock), clock, seed=seed, **options)  # type: ignore[arg-type]
    return storage, result


def story(hold: Hold) -> tuple[object, ...]:
    return (
        hold.customer,
        hold.channel,
        hold.lines,
        hold.created_at,
        hold.state,
        hold.ended_at,
        hold.paid_at,
    )


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    fallback=st.sampled_from(["true", "false"]),
    chunk=st.sampled_from([1, 40, 10_000]),
)
def test_batched_till_sales_give_every_request_the_result_sell_in_store_gives_alone(
    seed: int, fallback: str, chunk: int
) -> None:
    loaded = scenario(allocation=300, jd=60, pool=40, fallback=fallback, walk_ins=40)
    alone, one = simulate(loaded, seed, one_by_one=True)
    batched, many = simulate(loaded, seed, chunk=chunk)
    assert sorted(map(story, batched.holds("tills")), key=repr) == sorted(
        map(story, alone.holds("tills")), key=repr
    )
    first, second = asdict(one), asdict(many)
    for key in ("batches", "wall_seconds"):
        del first[key], second[key]
    assert first == second
    assert many.till_sales > 0
    found = audit(batched, loaded.event)
    assert found.ok


def test_till_sales_are_paid_at_their_instant_and_never_expire() -> None:
    loaded = scenario(walk_ins=60)
    storage, result = simulate(loaded, 3)
    tills = [h for h in storage.holds("tills") if h.channel.kind is ChannelKind.STORE]
    assert len(tills) == result.till_sales > 0
    assert all(h.is_order and h.paid_at == h.created_at for h in tills)
    assert {h.channel.name for h in tills} <= {"beijing-1", "shanghai-1", "chengdu-1"}
    # the Shanghai store opens on the 11th, the Chengdu one closes that day
    for hold in tills:
        local = hold.created_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
        if hold.channel.name == "shanghai-1":
            assert local == date(2021, 11, 11)
        if hold.channel.name == "chengdu-1":
            assert local == date(2021, 11, 10)


# -- the shipped scenarios -----------------------------------------------------------------
def test_mi_2017q2_declares_the_seeds_channels_and_its_registry_says_123_stores_plus_14() -> None:
    loaded = load("mi-2017q2", 0.001)
    channels = loaded.event.channels
    assert {c for c, spec in channels.items() if spec.kind is ChannelKind.MARKETPLACE} == {
        "jd",
        "tmall",
        "suning",
        "flipkart",
        "amazon",
    }
    assert channels["mi-home"].kind is ChannelKind.STORE
    figures = network(loaded.stores, Period.parse("2017Q2", "Asia/Shanghai"))
    china = figures.by_market["CN"]
    assert (china.open, china.opened, china.open_before) == (123, 14, 109)
    india = figures.by_market["IN"]
    assert (india.open, india.opened) == (1, 1)  # the first Mi Home in India
    after = network(loaded.stores, Period.parse("2017Q3", "Asia/Shanghai")).by_market["CN"]
    assert after.open == 137  # the 14 the seed says open "in these days" of July


def test_double_11_2021_runs_from_1_to_11_november_through_its_declared_channels() -> None:
    loaded = load("double-11-2021", 0.01)
    event = loaded.event
    zone = ZoneInfo("Asia/Shanghai")
    assert event.opens.astimezone(zone) == datetime(2021, 11, 1, tzinfo=zone)
    assert event.closes.astimezone(zone) == datetime(2021, 11, 12, tzinfo=zone)
    kinds = {spec.id: spec.kind.value for spec in event.channels.values()}
    assert kinds == {
        "online": "online",
        "jd": "marketplace",
        "tmall": "marketplace",
        "mi-home": "store",
    }
    assert event.milestones[0].threshold == 100_000_000 * 100  # ¥10 B x 0.01, in fen
    assert event.opens == datetime(2021, 10, 31, 16, tzinfo=UTC)
    visits = timeline(loaded, 1)
    first_till = next(v for v in visits if v.plan is Plan.TILL)
    local = (event.opens + timedelta(milliseconds=first_till.at_ms)).astimezone(zone)
    assert local.date() == date(2021, 11, 1)
    assert time(10) <= local.time() < time(22)


def test_an_event_file_reads_its_stores_file_next_to_it_and_an_upload_may_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "net.csv").write_text(
        "id,name,kind,market,city,opened,closed,lat,lon\n"
        "sz-1,Mi Home Shenzhen,own,CN,Shenzhen,2018-03-01,,,\n",
        encoding="utf-8",
    )
    path = tmp_path / "tills.toml"
    path.write_text('stores = "net.csv"\n' + text(stores=""), encoding="utf-8")
    assert definition.read(path).id == "tills"
    with pytest.raises(ScenarioError) as refused:
        definition.parse(path.read_bytes(), "toml", "upload")
    assert refused.value.field == "stores"
