"""The results page's HTML: text from definitions and imported files is escaped (in the
tables and in the JSON the charts read), brand ranks get a table and a chart, and the
page's policy allows exactly its own inline script and style."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from fractions import Fraction

from lampo.domain.money import Money
from lampo.domain.period import Period, PeriodFigures, Share, compare
from lampo.domain.report import MarketShare, brand_ranks
from lampo.services.report import PeriodReport, to_data
from lampo.web import results

EVIL = "</script><script>alert(1)</script>"


def figures(period: Period, units: int, revenue: int) -> PeriodFigures:
    return PeriodFigures(
        period=period,
        currency="CNY",
        orders=units,
        units=units,
        revenue=revenue,
        units_by_category={"phones": units},
        by_market=[Share("CN", units, revenue)],
        local={"CN": Money(revenue, "CNY")},
        by_channel=[Share("online", units, revenue)],
        by_category=[Share("phones", units, revenue)],
        best_sellers={"CN": (EVIL, units)},
        events=["fest"],
    )


def report() -> PeriodReport:
    now = figures(Period(2021, 3), 170, 17_000_000)
    before = figures(Period(2021, 2), 100, 10_000_000)
    ago = figures(Period(2020, 3), 50, 5_000_000)
    shares = [
        MarketShare("2021Q3", "CN", "Vivo", Fraction(23, 100)),
        MarketShare("2021Q3", "CN", EVIL, Fraction(14, 100)),
    ]
    return PeriodReport(
        figures=now,
        base=before,
        against="QoQ",
        growth=compare(now, before),
        year_ago=ago,
        yoy=compare(now, ago),
        targets=[],
        ranks={"CN": brand_ranks(shares, "2021Q3", "CN")},
    )


def test_names_are_escaped_in_the_tables_and_cannot_close_the_data_block() -> None:
    page = results.results(report())
    body = page.body.decode()
    assert EVIL not in body
    assert html.escape(EVIL) in body  # the best seller and the brand, as text
    data = re.search(r"<script type='application/json' id='figures'>(.*?)</script>", body, re.S)
    assert data is not None
    assert json.loads(data.group(1)) == json.loads(json.dumps(to_data(report())))


def test_growth_is_printed_as_the_command_line_prints_it() -> None:
    text = " ".join(re.sub(r"<[^>]+>", " ", results.results(report()).body.decode()).split())
    assert "units (QoQ) 170 2021Q2 100 +70.0 %" in text
    assert "units (YoY) 170 2020Q3 50 +240.0 %" in text


def test_brand_ranks_get_a_table_and_a_chart() -> None:
    body = results.results(report()).body.decode()
    assert "Brand ranking, CN 2021Q3 (imported)" in body
    assert "id='chart-ranks-0'" in body
    assert "<td>1</td><td>Vivo</td><td>23.0 %</td>" in body


def test_the_policy_allows_the_inline_script_and_style_by_hash_and_nothing_inline_else() -> None:
    page = results.results(report())
    body = page.body.decode()
    csp = dict(page.headers)[b"content-security-policy"].decode()
    for tag in ("script", "style"):
        (inline,) = re.findall(rf"<{tag}>(.*?)</{tag}>", body, re.S)
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "unsafe" not in csp
    assert " style=" not in body


def test_the_index_and_problem_pages_run_no_script() -> None:
    for page in (
        results.index([Period(2017), Period(2017, 2)]),
        results.index([]),
        results.problem(400, "Not a period", EVIL),
    ):
        csp = dict(page.headers)[b"content-security-policy"].decode()
        assert "script-src 'none'" in csp
        assert "<script" not in page.body.decode()


def test_the_channel_mix_and_the_store_network_get_tables_with_names_escaped() -> None:
    from dataclasses import replace
    from datetime import date

    from lampo.domain.channel_report import Sale, mix
    from lampo.domain.network_report import first_stores, network_progress
    from lampo.domain.period import NetworkTarget
    from lampo.domain.stores import Store, StoreKind, network

    stores = [
        Store("s1", EVIL, StoreKind.OWN, "CN", "Beijing", date(2021, 1, 5)),
        Store("s2", "Mi Home Sanlitun", StoreKind.OWN, "CN", EVIL, date(2021, 8, 1)),
    ]
    sales = [
        Sale("online", "", 100, 100, "CNY", 10_000_000),
        Sale("marketplace", "jd", 50, 50, "CNY", 5_000_000),
        Sale("store", "s1", 15, 15, "CNY", 1_500_000),
        Sale("store", "s2", 5, 5, "CNY", 500_000),
    ]
    period = Period(2021, 3)
    goal = [NetworkTarget("3 stores", 3, date(2024, 12, 31))]
    page = replace(
        report(),
        channels=mix(sales, "CNY", stores),
        network=network(stores, period),
        network_targets=network_progress(stores, period, goal),
        first_stores=first_stores(stores, Period(2021, 1)),
    )
    body = results.results(page).body.decode()
    assert EVIL not in body
    text = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    assert "Per outlet (offline share: 11.8 % of revenue, 11.8 % of units)" in text
    head = "rank name city units CNY"
    assert f"Top stores {head} 1 {html.escape(EVIL)} Beijing 15 15,000.00 CNY" in text
    assert f"Top marketplaces {head} 1 jd - 50 50,000.00 CNY" in text
    assert "Store network (QoQ) market stores change growth opened closed" in text
    assert "all markets 2 +1 +100.0 % 1 0" in text
    assert "3 stores 3 2024-12-31 2 66.7 %" in text
