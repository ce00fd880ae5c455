"""The discount given, end to end: the shipped fan festival (mainland list prices)
simulated into a real SQLite file and reported by ``lampo report event``; and an event
with list prices sold over HTTP, whose live report (``GET /v1/events/{id}/report``) states
the same discount as the command line."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lampo.bootstrap import open_storage
from lampo.domain.codec import event_to_dict
from lampo.domain.holds import HoldState
from lampo.domain.money import Money
from lampo.sim.scenario import load
from tests.e2e._cli import run
from tests.e2e._http import Server, live_event

pytestmark = pytest.mark.sqlite


@pytest.mark.usefixtures("cli_sandbox")
def test_the_fan_festival_report_states_the_discount_given_per_sku_and_event(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{(tmp_path / 'fest.db').as_posix()}"
    code, _, _ = run(capsys, "simulate", "mi-fan-fest-2015", "--scale", "0.0005", "--storage", url)
    assert code == 0
    code, out, _ = run(
        capsys, "report", "event", "mi-fan-fest-2015", "--storage", url, "--format", "json"
    )
    assert code == 0
    given = json.loads(out)["discounts"]

    # recount from the orders themselves: (list - flash) per unit, China only
    event = load("mi-fan-fest-2015", 0.0005).event
    store = open_storage(url, must_exist=True)
    try:
        holds = [h for h in store.holds(event.id) if h.state is HoldState.PAID]
    finally:
        store.close()
    expected: Counter[str] = Counter()
    for h in holds:
        for line in h.lines:
            listed = event.offers[line.sku].list_prices.get(h.market)
            if listed is not None:
                expected[line.sku] += (listed.amount - line.unit_price) * line.quantity
    assert sum(expected.values()) > 0
    rows = {row["key"]: row for row in given["per_sku"]}
    for sku, amount in expected.items():
        assert rows[sku]["amounts"] == {"CNY": amount}
    assert given["total"]["amounts"] == {"CNY": sum(expected.values())}
    assert given["total"]["money"]["amount"] == sum(expected.values())  # CNY reports in CNY
    num, den = (int(x) for x in given["total"]["percent"].split("/"))
    assert num * given["total"]["list_money"]["amount"] == den * given["total"]["money"]["amount"]

    code, table, _ = run(capsys, "report", "event", "mi-fan-fest-2015", "--storage", url)
    assert code == 0
    text = " ".join(table.split())
    assert "Discount given (list price minus flash price, on the units sold)" in text
    assert Money(sum(expected.values()), "CNY").format() in text


@pytest.mark.usefixtures("cli_sandbox")
def test_the_live_report_states_the_discount_as_the_command_line_does(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    base = live_event("discounted", {"phone-red": 50, "tv-55": 5})
    offers = dict(base.offers)
    phone = offers["phone-red"]
    offers["phone-red"] = replace(
        phone,
        list_prices={
            "CN": Money(phone.prices["CN"].amount + 20_000, "CNY"),  # 200.00 CNY off
            "IN": Money(phone.prices["IN"].amount + 100_000, "INR"),  # 1,000.00 INR off
        },
    )
    server.load(replace(base, offers=offers))
    for buyer, market, qty in (("ana", "CN", 2), ("ben", "IN", 1), ("cy", "CN", 1)):
        held = server.reserve(buyer, "discounted", {"phone-red": qty}, market=market)
        assert held.status == 201, held.body
        assert server.pay(buyer, held.json["id"]).status == 200
    held = server.reserve("dee", "discounted", {"tv-55": 1})  # no list price: no discount
    assert server.pay("dee", held.json["id"]).status == 200

    reply = server.request("GET", "/v1/events/discounted/report")
    assert reply.status == 200
    live: dict[str, Any] = reply.json
    assert live["discount"]["amounts"] == {"CNY": 60_000, "INR": 100_000}
    # 1,000.00 INR at the factories' 1/10 is 100.00 CNY: 700.00 CNY in all
    assert live["discount"]["total"] == {"amount": 70_000, "currency": "CNY"}
    assert [row["sku"] for row in live["discount_skus"]] == ["phone-red", "tv-55"]
    assert live["discount_skus"][1]["amounts"] == {}

    url = f"sqlite:///{server.db.as_posix()}"
    code, out, _ = run(
        capsys, "report", "event", "discounted", "--storage", url, "--format", "json"
    )
    assert code == 0
    cli = json.loads(out)["discounts"]["total"]
    assert cli["amounts"] == live["discount"]["amounts"]
    assert cli["money"]["amount"] == live["discount"]["total"]["amount"]
    assert cli["list_money"]["amount"] == live["discount"]["list_total"]["amount"]
    assert cli["percent"] == live["discount"]["percent"]


def test_an_upload_with_a_flash_price_above_list_is_refused_and_loads_nothing(
    server: Server,
) -> None:
    event = live_event("overpriced", {"phone-red": 5})
    data = event_to_dict(event)
    flash = data["offers"]["phone-red"]["prices"]["CN"][0]
    data["offers"]["phone-red"]["list_prices"] = {"CN": [flash - 1, "CNY"]}
    reply = server.admin("POST", "/v1/admin/events", data)
    assert reply.status == 400
    assert reply.json["type"].endswith("/invalid-request")
    assert "above the list price" in reply.json["detail"]
    assert server.request("GET", "/v1/events/overpriced").status == 404
