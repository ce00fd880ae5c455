"""The channel mix end to end: an event sold online, through two marketplaces and through
stores into a real SQLite file, then read by ``lampo report event`` and ``lampo report
period`` with a store registry (``--stores``) and a targets file with a network target."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from lampo.bootstrap import open_storage
from lampo.domain.event import Milestone
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.money import Money
from lampo.domain.stores import Store, StoreKind, to_csv
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from tests.e2e._cli import run
from tests.factories import CN_OPENS, sale_event

pytestmark = [pytest.mark.sqlite, pytest.mark.usefixtures("cli_sandbox")]

#: 5,000.00 CNY: two phones online (1,598.00) and three on JD (2,397.00) stay below it; the
#: store's two phones (1,598.00) take it to 5,593.00.
EVENT = replace(
    sale_event("omni", {"phone-red": 100, "tv-55": 10}),
    milestones=(Milestone("CNY 5,000", 500_000),),
)
S1 = Channel(ChannelKind.STORE, "s1")
S2 = Channel(ChannelKind.STORE, "s2")
S9 = Channel(ChannelKind.STORE, "s9")  # not in the registry
JD = Channel(ChannelKind.MARKETPLACE, "jd")
TMALL = Channel(ChannelKind.MARKETPLACE, "tmall")


def registry(tmp_path: Path) -> Path:
    """Three stores before 2015 Q2, two more in it (one the first in India)."""
    old = date(2014, 12, 1)
    stores = [
        Store("s1", "Mi Home Wangfujing", StoreKind.OWN, "CN", "Beijing", old),
        Store("s2", "Mi Home Sanlitun", StoreKind.OWN, "CN", "Beijing", old),
        Store("s3", "Mi Home Xujiahui", StoreKind.OWN, "CN", "Shanghai", old),
        Store("s4", "Mi Home Nanjing Rd", StoreKind.OWN, "CN", "Shanghai", date(2015, 4, 2)),
        Store("in1", "Mi Home Bangalore", StoreKind.OWN, "IN", "Bangalore", date(2015, 5, 11)),
    ]
    path = tmp_path / "stores.csv"
    path.write_text(to_csv(stores), encoding="utf-8")
    return path


@pytest.fixture
def sold(tmp_path: Path) -> str:
    """The URL of a SQLite file with orders through every kind of channel."""
    url = f"sqlite:///{(tmp_path / 'omni.db').as_posix()}"
    storage = open_storage(url)
    clock = ManualClock(CN_OPENS + timedelta(minutes=1))
    sales = Sales(storage, clock=clock)
    try:
        sales.open(EVENT)
        plan = [
            (Channel(), "CN", {"phone-red": 2}),
            (JD, "CN", {"phone-red": 3}),
            (S1, "CN", {"phone-red": 2}),  # crosses 5,000.00 CNY
            (TMALL, "CN", {"tv-55": 1}),
            (S2, "CN", {"phone-red": 1}),
            (S9, "CN", {"phone-red": 1}),
        ]
        for n, (channel, market, items) in enumerate(plan):
            clock.advance(7)
            hold = sales.reserve(EVENT.id, f"c{n}", market, items, channel, key=f"k{n}")
            sales.pay(hold.id, f"p{n}")
    finally:
        storage.close()
    return url


def test_the_battle_report_splits_by_kind_and_outlet_exactly_and_ranks_stores_by_city(
    capsys: pytest.CaptureFixture[str], sold: str, tmp_path: Path
) -> None:
    stores = str(registry(tmp_path))
    args = ("report", "event", "omni", "--storage", sold, "--stores", stores)
    code, out, err = run(capsys, *args, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    mix = data["channels"]
    assert data["truth"] is True
    # 10 units: 2 online, 3 + 1 marketplaces, 2 + 1 + 1 stores; 799.00 a phone, 1,799.00 a TV
    kinds = {p["key"]: p for p in mix["by_kind"]}
    assert [p["key"] for p in mix["by_kind"]] == ["online", "marketplace", "store"]
    assert (kinds["online"]["units"], kinds["marketplace"]["units"], kinds["store"]["units"]) == (
        2,
        4,
        4,
    )
    assert kinds["store"]["money"]["amount"] == 4 * 79_900
    assert data["money"]["amount"] == 6 * 79_900 + 3 * 79_900 + 179_900
    assert sum(p["money"]["amount"] for p in mix["by_kind"]) == data["money"]["amount"]
    assert sum(p["money"]["amount"] for p in mix["by_outlet"]) == data["money"]["amount"]
    assert sum(Fraction(p["money_share"]) for p in mix["by_kind"]) == 1
    assert mix["offline"]["units_share"] == "2/5"
    assert Fraction(mix["offline"]["money_share"]) == Fraction(4 * 79_900, data["money"]["amount"])
    assert [(r["key"], r["city"], r["units"]) for r in mix["stores"]] == [
        ("s1", "Beijing", 2),
        ("s2", "Beijing", 1),
        ("s9", "unknown city", 1),
    ]
    assert [(r["key"], r["units"]) for r in mix["cities"]] == [
        ("Beijing", 3),
        ("unknown city", 1),
    ]
    assert [(r["key"], r["units"]) for r in mix["marketplaces"]] == [("jd", 3), ("tmall", 1)]
    # the omni-channel milestone: the store's payment crossed it, at its own time
    (crossing,) = data["milestones"]
    assert crossing["channel"] == "store:s1"
    assert crossing["at"] == (CN_OPENS + timedelta(minutes=1, seconds=21)).isoformat()

    code, table, err = run(capsys, *args)
    assert code == 0, err
    text = words(table)
    assert "Channels: mix by kind" in text
    assert "store 4 40.0 % 3 3,196.00 CNY 35.6 %" in text
    offline = Money(4 * 79_900, "CNY").format()
    assert "Offline share (stores): 35.6 % of money" in text  # 3,196.00 of 8,990.00
    assert offline in text
    assert "Top stores" in text
    assert "Mi Home Wangfujing (s1) Beijing 2" in text
    assert "Top cities (stores)" in text
    assert "store:s1" in text  # the milestone's channel


def words(table: str) -> str:
    """A Rich table's text, its cells' words one space apart (no borders)."""
    return " ".join(table.replace("│", " ").split())


def test_period_results_show_the_network_its_growth_target_and_first_store(
    capsys: pytest.CaptureFixture[str], sold: str, tmp_path: Path
) -> None:
    stores = str(registry(tmp_path))
    targets = tmp_path / "targets.toml"
    targets.write_text(
        '[[network_targets]]\nlabel = "15 stores"\nstores = 15\nby = 2016-12-31\n',
        encoding="utf-8",
    )
    args = (
        "report",
        "period",
        "2015Q2",
        "--storage",
        sold,
        "--stores",
        stores,
        "--targets",
        str(targets),
    )
    code, out, err = run(capsys, *args, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["network"]["total"]["open"] == 5
    assert data["network"]["total"]["change"] == 2
    assert data["network"]["by_market"]["IN"]["open"] == 1
    (goal,) = data["network_targets"]
    assert goal["open"] == 5
    assert goal["share"] == "1/3"
    assert goal["as_of"] == "2015-06-30"
    assert [f["market"] for f in data["first_stores"]] == ["IN"]
    mix = data["channels"]
    assert mix["money"]["amount"] == data["figures"]["revenue"]
    assert sum(p["money"]["amount"] for p in mix["by_outlet"]) == data["figures"]["revenue"]
    assert {p["key"]: p["units"] for p in mix["by_kind"]} == {
        "online": 2,
        "marketplace": 4,
        "store": 4,
    }

    code, table, err = run(capsys, *args)
    assert code == 0, err
    text = words(table)
    assert "Store network: 5 stores, +2 QoQ (+66.7 %); opened 2, closed 0" in text
    assert "IN: 1 store, +1 QoQ (n/a)" in text
    assert "Network target 15 stores: 15 stores by 2016-12-31; 5 open on 2015-06-30" in text
    assert "33.3 % of the way" in text
    assert "Milestone: first store in IN, Mi Home Bangalore (in1, Bangalore), opened" in text
    assert "Channels: mix by kind" in text


def test_a_bad_registry_is_refused_whole_before_storage_is_read(
    capsys: pytest.CaptureFixture[str], sold: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,name,kind,market,city,opened,closed,lat,lon\ns1,A,own,CN,Beijing,2015-13-01,,,\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "report", "event", "omni", "--storage", sold, "--stores", str(bad))
    assert code == 2
    assert out == ""
    assert "line 2, opened" in err


def test_a_registry_past_its_size_bound_is_refused_before_it_is_read(
    capsys: pytest.CaptureFixture[str], sold: str, tmp_path: Path
) -> None:
    from lampo.domain.stores import MAX_CSV_BYTES

    huge = tmp_path / "huge.csv"
    with huge.open("wb") as f:
        f.truncate(MAX_CSV_BYTES + 1)  # sparse: nothing is written
    args = ("report", "period", "2015Q2", "--storage", sold, "--stores", str(huge))
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert f"{MAX_CSV_BYTES + 1:,} bytes, more than {MAX_CSV_BYTES:,}" in err
