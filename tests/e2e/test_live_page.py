"""The live battle-report page in a real browser: Debian's Chromium (``LAMPO_CHROMIUM``,
default ``/usr/bin/chromium``) driven by Playwright against ``lampo serve``.

The page must show what the JSON report says, formatted as ``Money.format`` formats it,
and follow a new payment by itself. Without Chromium or Playwright the tests skip loudly;
with ``CI=true`` they fail instead, so CI cannot go green without them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from fractions import Fraction
from typing import Any

import pytest

from lampo.domain.event import Milestone
from lampo.domain.money import FxTable, Money
from tests.e2e._http import Server, live_event, running_server

pytestmark = [pytest.mark.sqlite, pytest.mark.browser]

UPDATE_MS = 10_000  # the page polls every second; this only bounds a failure


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The module's server, whose report is read afresh by every call: the tests read it
    right after a payment, and a report shared for ``LAMPO_REPORT_TTL`` (0.5 s) may have
    been read by the page's last poll before that payment."""
    with running_server(tmp_path_factory.mktemp("live"), LAMPO_REPORT_TTL="0") as srv:
        yield srv


def buy(
    server: Server,
    buyer: str,
    event: str,
    items: dict[str, int],
    market: str = "CN",
    channel: dict[str, str] | None = None,
) -> None:
    extra = {"channel": channel} if channel else {}
    held = server.reserve(buyer, event, items, market=market, **extra)
    assert held.status == 201, held.body
    paid = server.pay(buyer, held.json["id"])
    assert paid.status == 200, paid.body


def report(server: Server, event: str) -> dict[str, Any]:
    reply = server.request("GET", f"/v1/events/{event}/report")
    assert reply.status == 200, reply.body
    data: dict[str, Any] = reply.json
    return data


def money(value: dict[str, Any]) -> str:
    return Money(value["amount"], value["currency"]).format()


@pytest.fixture(scope="module")
def launch(server: Server) -> str:
    """An event on sale with a few orders (two online, one in a store): one TV model sold
    out, one milestone crossed (the TVs), one to cross (10,000 CNY), and an unpaid hold."""
    event = replace(
        live_event("live-page", {"phone-red": 50, "phone-black": 20, "tv-55": 2}),
        milestones=(
            Milestone("2 TVs", 2, "tv"),
            Milestone("¥10,000", 1_000_000),
            Milestone("1 M phones", 1_000_000, "phone"),
        ),
    )
    server.load(event)
    buy(server, "alice", "live-page", {"tv-55": 1})
    buy(server, "bruno", "live-page", {"tv-55": 1}, market="IN")
    buy(server, "carla", "live-page", {"phone-red": 2}, channel={"kind": "store", "name": "s1"})
    assert server.reserve("dario", "live-page", {"phone-black": 1}).status == 201  # unpaid
    return "live-page"


def test_the_page_shows_the_reports_figures_and_follows_a_new_payment(
    server: Server, launch: str, page: Any
) -> None:
    from playwright.sync_api import expect

    before = report(server, launch)
    page.goto(f"http://127.0.0.1:{server.port}/live/{launch}")
    expect(page.get_by_role("heading", level=1)).to_have_text(before["name"])
    expect(page.locator("#total")).to_have_text(money(before["total"]))
    expect(page.locator("#orders")).to_have_text(f"{before['orders']:,}")
    expect(page.locator("#units")).to_have_text(f"{before['units']:,}")
    for code, row in before["markets"].items():
        market = page.locator(f'#markets tr[data-market="{code}"]')
        expect(market.locator(".orders")).to_have_text(f"{row['orders']:,}")
        expect(market.locator(".amount")).to_have_text(money(row))
    assert set(before["markets"]) == {"CN", "IN"}
    # the split by channel kind, orders, money and units: two TVs online, two phones in s1
    for kind, orders, units in (("online", 2, 2), ("store", 1, 2)):
        expect(page.locator(f'#channels li[data-channel="{kind}"] .sub')).to_have_text(
            re.compile(rf"^{orders} orders · [0-9,.]+ CNY · {units} units$")
        )

    tv = page.locator('#stock tr[data-sku="tv-55"]')
    expect(tv.locator(".badge")).to_have_text("Sold out")
    expect(page.locator('#stock tr[data-sku="phone-red"] .badge')).to_have_count(0)
    expect(page.locator('#stock tr[data-sku="phone-black"] td.held')).to_have_text("1")

    tvs, ten_thousand, phones = (
        page.locator(f'#milestones li[data-milestone="{i}"]') for i in range(3)
    )
    expect(tvs).to_have_class(re.compile(r"\breached\b"))
    expect(tvs.locator(".mark")).to_have_text("Reached ✓")
    # bruno's TV (online, in India) was the second: the milestone names its channel
    expect(tvs.locator(".of")).to_have_text(re.compile(r" · reached at .+ via online$"))
    expect(ten_thousand).not_to_have_class(re.compile(r"\breached\b"))
    expect(phones).not_to_have_class(re.compile(r"\breached\b"))

    # one more order, in a store, takes the total past 10,000 CNY: the page follows by itself
    buy(server, "erika", "live-page", {"phone-red": 3}, channel={"kind": "store", "name": "s2"})
    after = report(server, launch)
    assert after["total"]["amount"] >= 1_000_000 > before["total"]["amount"]
    expect(page.locator("#total")).to_have_text(money(after["total"]), timeout=UPDATE_MS)
    expect(page.locator("#orders")).to_have_text(f"{after['orders']:,}", timeout=UPDATE_MS)
    cn = page.locator('#markets tr[data-market="CN"] .amount')
    expect(cn).to_have_text(money(after["markets"]["CN"]), timeout=UPDATE_MS)
    # the split by channel kind follows too: erika bought in a store, the online sales stay
    for kind, orders, units in (("online", 2, 2), ("store", 2, 5)):
        expect(page.locator(f'#channels li[data-channel="{kind}"] .sub')).to_have_text(
            re.compile(rf"^{orders} orders · [0-9,.]+ CNY · {units} units$"), timeout=UPDATE_MS
        )
    expect(ten_thousand).to_have_class(re.compile(r"\breached\b"), timeout=UPDATE_MS)
    # the omni-channel milestone: erika's store payment crossed it, and the page says so
    expect(ten_thousand.locator(".of")).to_have_text(re.compile(r" · reached at .+ via store:s2$"))
    expect(page.locator("#toast")).to_have_text("¥10,000 reached")


def test_money_in_a_currency_without_minor_units_has_no_decimals(server: Server, page: Any) -> None:
    from playwright.sync_api import expect

    yen = FxTable("JPY", date(2015, 4, 8), {"CNY": Fraction(19), "INR": Fraction(19, 10)})
    server.load(replace(live_event("live-yen", {"tv-55": 100}), fx=yen))
    for buyer in ("fumi", "gen", "hana", "ivo"):
        buy(server, buyer, "live-yen", {"tv-55": 1})  # 4 x 799.00 CNY x 19 = 60,724 JPY
    data = report(server, "live-yen")
    assert data["currencies"]["JPY"] == 0
    page.goto(f"http://127.0.0.1:{server.port}/live/live-yen")
    expect(page.locator("#total")).to_have_text("60,724 JPY")
    expect(page.locator('#markets tr[data-market="CN"] .amount')).to_have_text("3,196.00 CNY")


def test_the_page_fits_a_laptop_screen_without_sideways_scrolling(
    server: Server, launch: str, page: Any
) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"http://127.0.0.1:{server.port}/live/{launch}")
    expect(page.locator("#orders")).to_have_text(re.compile(r"^\d[\d,]*$"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_an_unknown_event_gets_a_small_html_404_page(server: Server, page: Any) -> None:
    response = page.goto(f"http://127.0.0.1:{server.port}/live/no-such-event")
    assert response is not None
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert page.get_by_role("heading", level=1).text_content() == "No such sale event"


def test_the_live_index_links_every_event(server: Server, launch: str, page: Any) -> None:
    server.load(live_event("live-other"))
    page.goto(f"http://127.0.0.1:{server.port}/live")
    page.get_by_role("link", name=re.compile(r"live-page")).click()
    assert page.url.endswith("/live/live-page")
