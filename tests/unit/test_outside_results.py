"""Results from outside lampo as shipped: the seeds' figures, read and picked per period."""

from __future__ import annotations

from lampo.domain.money import Money
from lampo.domain.period import Period
from lampo.services import imports


def test_the_shipped_results_from_outside_are_the_seeds_figures() -> None:
    actual = imports.actual_results()
    by_period = {(a.period, a.category): a for a in actual}
    assert by_period["2014", "phones"].units == 60_000_000  # "più di 60 milioni": a floor
    assert by_period["2017Q2", "phones"].units == 23_160_000
    ten_billion = by_period["2021Q4", "all"]
    assert ten_billion.revenue == Money(10_000_000_000_00, "CNY")
    assert ten_billion.units is None
    assert "18:21:07" in ten_billion.source
    assert all(a.source.startswith("seed ") for a in actual)


def test_the_shipped_marketplace_ranking_is_phones_first_on_jd() -> None:
    (rank,) = imports.marketplace_rankings()
    assert (rank.period, rank.marketplace, rank.category, rank.rank, rank.brand) == (
        "2021Q4",
        "jd",
        "phones",
        1,
        "Xiaomi",
    )


def test_rows_are_picked_by_the_period_they_report() -> None:
    actual = imports.actual_results()
    assert [a.units for a in imports.of_period(actual, Period.parse("2017Q2"))] == [23_160_000]
    assert imports.of_period(actual, Period.parse("2017Q1")) == []
    assert len(imports.of_period(imports.marketplace_rankings(), Period.parse("2021Q4"))) == 1
