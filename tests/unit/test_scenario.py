"""The scenario loader: shipped files load exactly; bad files are refused with file, line
and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lampo.domain.errors import InvalidRequest, LampoError
from lampo.domain.money import Money
from lampo.sim.crowd import check_work, expected_buyers
from lampo.sim.scenario import ScenarioError, available, load

FLASH = Path(__file__).resolve().parents[2] / "src" / "lampo" / "scenarios" / "flash-drop.toml"


def units_per_category(scenario_name: str, scale: float) -> dict[str, int]:
    scenario = load(scenario_name, scale)
    out: dict[str, int] = {}
    for sku, offer in scenario.event.offers.items():
        category = scenario.event.category_of(sku)
        out[category] = out.get(category, 0) + offer.allocation
    return out


def test_the_shipped_scenarios_are_listed() -> None:
    assert {"mi-fan-fest-2015", "flash-drop", "redmi-1s-flipkart-2014"} <= set(available())


def test_redmi_1s_is_one_sku_in_india_for_a_crowd_over_a_hundred_times_its_stock() -> None:
    scenario = load("redmi-1s-flipkart-2014")
    event = scenario.event
    assert list(event.markets) == ["IN"]
    assert [(o.sku, o.allocation, o.limit_per_customer) for o in event.offers.values()] == [
        ("redmi-1s", 40_000, 1)
    ]
    assert event.price("redmi-1s", "IN") == Money(599_900, "INR")
    assert expected_buyers(scenario) > 100 * 40_000
    check_work(scenario)  # and the whole crowd fits a run's budget


def test_mi_fan_fest_allocations_add_up_to_the_seed_figures() -> None:
    assert units_per_category("mi-fan-fest-2015", 1) == {
        "phones": 2_112_010,
        "tv": 38_000,
        "smart-home": 770_000,
    }


def test_mi_fan_fest_has_seven_markets_with_twelve_hour_windows_opening_at_ten_local() -> None:
    event = load("mi-fan-fest-2015").event
    assert sorted(event.markets) == ["CN", "HK", "ID", "IN", "MY", "SG", "TW"]
    for code, window in event.windows.items():
        assert window.length.total_seconds() == 12 * 3600
        assert event.markets[code].local(window.opens).hour == 10
    assert event.windows["IN"].opens.isoformat() == "2015-04-08T04:30:00+00:00"


def test_prices_and_fx_rates_are_exact_decimals() -> None:
    event = load("mi-fan-fest-2015").event
    assert event.price("redmi-2", "CN") == Money(59900, "CNY")
    assert event.price("mi-band", "SG") == Money(1990, "SGD")
    assert event.fx.convert(Money(10000, "INR")) == Money(994, "CNY")


def test_the_expected_figures_and_milestones_come_from_the_seed() -> None:
    scenario = load("mi-fan-fest-2015")
    assert scenario.expected.revenue == Money(2_080_000_000_00, "CNY")
    assert scenario.expected.units["phones"] == 2_112_010
    labels = {m.label: m for m in scenario.event.milestones}
    assert labels["¥1 billion"].threshold == 1_000_000_000_00
    assert labels["1 M phones"].category == "phones"


def test_scale_multiplies_stock_figures_and_arrivals_keeping_at_least_one_unit() -> None:
    full, small = load("mi-fan-fest-2015", 1), load("mi-fan-fest-2015", 0.01)
    assert small.event.offers["redmi-2"].allocation == 10_000
    assert small.expected.units["tv"] == 380
    assert small.crowd.arrivals["CN"].peak_per_second == pytest.approx(
        full.crowd.arrivals["CN"].peak_per_second / 100
    )
    tiny = load("mi-fan-fest-2015", 0.000001)
    assert all(o.allocation >= 1 for o in tiny.event.offers.values())


@pytest.mark.parametrize("scale", [0, -1, 11, float("nan"), float("inf")])
def test_a_scale_out_of_range_is_refused(scale: float) -> None:
    with pytest.raises(InvalidRequest, match="scale"):
        load("mi-fan-fest-2015", scale)


def test_a_scenario_file_can_be_loaded_by_path() -> None:
    scenario = load(FLASH)
    assert scenario.event.offers["redmi-1s"].allocation == 40_000
    assert scenario.name == "flash-drop"


def test_an_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match="mi-fan-fest-2015"):
        load("no-such-fest")


def test_a_missing_file_is_refused() -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load("missing/nowhere.toml")


def bad(tmp_path: Path, old: str, new: str) -> ScenarioError:
    text = FLASH.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load(path)
    return caught.value


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def test_a_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    err = bad(tmp_path, 'name = "India"', 'name = "India')
    assert err.line == line_of(tmp_path / "bad.toml", 'name = "India')
    assert "bad.toml" in str(err)
    assert f"line {err.line}" in str(err)


def test_a_float_price_is_refused_with_the_field_path_and_line(tmp_path: Path) -> None:
    err = bad(tmp_path, 'prices = { IN = "5999.00" }', "prices = { IN = 5999.00 }")
    assert err.field == "skus[0].prices.IN"
    assert err.line == line_of(tmp_path / "bad.toml", "prices = { IN = 5999.00 }")
    assert "float" in err.problem
    assert isinstance(err, LampoError)
    assert err.reason == "invalid-scenario"


def test_a_float_fx_rate_is_refused(tmp_path: Path) -> None:
    err = bad(
        tmp_path,
        'reporting = "INR"\non = 2014-09-02\n',
        'reporting = "CNY"\non = 2014-09-02\n[fx.rates]\nINR = 0.0994\n',
    )
    assert err.field == "fx.rates.INR"
    assert err.line == line_of(tmp_path / "bad.toml", "INR = 0.0994")


def test_a_price_with_too_many_decimals_is_refused(tmp_path: Path) -> None:
    err = bad(tmp_path, '"5999.00"', '"5999.001"')
    assert err.field == "skus[0].prices.IN"
    assert "decimals" in err.problem


def test_a_price_in_an_undeclared_market_is_refused(tmp_path: Path) -> None:
    err = bad(tmp_path, 'prices = { IN = "5999.00" }', 'prices = { IN = "5999.00", XX = "1.00" }')
    assert err.field == "skus[0].prices.XX"


def test_a_missing_field_names_its_path_and_the_table_it_belongs_to(tmp_path: Path) -> None:
    err = bad(tmp_path, "allocation = 40_000\n", "")
    assert err.field == "skus[0].allocation"
    assert "missing" in err.problem
    assert err.line == line_of(tmp_path / "bad.toml", "[[skus]]")


def test_a_negative_allocation_is_refused(tmp_path: Path) -> None:
    err = bad(tmp_path, "allocation = 40_000", "allocation = -5")
    assert err.field == "skus[0].allocation"


def test_an_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    err = bad(tmp_path, 'tz = "Asia/Kolkata"', 'tz = "Asia/Nowhere"')
    assert err.field == "markets.IN"
    assert "Asia/Nowhere" in err.problem


def test_a_window_that_closes_before_it_opens_is_refused(tmp_path: Path) -> None:
    err = bad(tmp_path, "closes = 2014-09-02T14:30:00", "closes = 2014-09-02T13:30:00")
    assert "closes" in err.field


def test_a_share_above_one_is_refused(tmp_path: Path) -> None:
    err = bad(tmp_path, "never_pay = 0.04", "never_pay = 1.5")
    assert err.field == "crowd.never_pay"


def test_demand_for_an_unknown_sku_is_refused(tmp_path: Path) -> None:
    err = bad(tmp_path, "redmi-1s = 1.0", "redmi-9 = 1.0")
    assert err.field == "crowd.demand.redmi-9"
    assert err.line == line_of(tmp_path / "bad.toml", "redmi-9 = 1.0")
