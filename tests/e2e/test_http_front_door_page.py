"""The live page's waiting-room panel in a real browser (Chromium, as test_live_page.py):
shown, per market, for an event with a waiting room; absent for an event without one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from lampo.domain.frontdoor import FrontDoor
from tests.e2e._http import Server, live_event, running_server

pytestmark = [pytest.mark.sqlite, pytest.mark.browser]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("door-page"), LAMPO_REPORT_TTL="0") as srv:
        yield srv


def test_the_live_page_shows_who_waits_in_each_markets_room(server: Server, page: Any) -> None:
    from playwright.sync_api import expect

    # the sale an hour away: three visitors in the CN pre-queue, none admitted yet
    event = replace(
        live_event("door-page", {"phone-red": 10}, opens_in=timedelta(hours=1)),
        front_door=FrontDoor(admit_per_second=7),
    )
    server.load(event)
    for buyer in ("ana", "ben", "cai"):
        joined = server.request(
            "POST", "/v1/events/door-page/queue", {"market": "CN"}, server.buyer(buyer)
        )
        assert joined.status == 201, joined.body
    page.goto(f"http://127.0.0.1:{server.port}/live/door-page")
    panel = page.locator("#queue-panel")
    expect(panel).to_be_visible()
    cn = page.locator('#queue li[data-market="CN"]')
    expect(cn.locator(".share")).to_have_text("3 waiting")
    expect(cn.locator(".sub")).to_contain_text("0 admitted")
    expect(page.locator('#queue li[data-market="IN"] .share')).to_have_text("0 waiting")


def test_an_event_without_a_waiting_room_shows_no_panel(server: Server, page: Any) -> None:
    from playwright.sync_api import expect

    server.load(live_event("plain-page", {"phone-red": 10}))
    page.goto(f"http://127.0.0.1:{server.port}/live/plain-page")
    expect(page.locator("#total")).to_be_visible()
    expect(page.locator("#orders")).to_have_text("0")  # the first frame has arrived
    expect(page.locator("#queue-panel")).to_be_hidden()
