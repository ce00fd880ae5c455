"""The battle report's front-door section: built from the service on the memory backend,
its refusals in the report's order, and printed with what a rehearsal measured."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from rich.console import Console

from lampo.cli.render import _front_door
from lampo.domain.event import Window
from lampo.domain.frontdoor import FrontDoor
from lampo.domain.report import FRONT_DOOR_REFUSALS, front_door_refusals
from lampo.services.clock import ManualClock
from lampo.services.frontdoor import FrontDoorService
from lampo.services.report import battle_report, front_door_report
from lampo.services.sales import Sales
from lampo.storage.door import door_store
from lampo.storage.memory import MemoryStorage
from tests.factories import sale_event


def test_only_the_front_doors_refusals_are_kept_in_the_reports_order() -> None:
    given = {"sold-out": 9, "not-drawn": 2, "proof-of-work": 5, "rate-limited:network": 1}
    assert list(front_door_refusals(given).items()) == [
        ("proof-of-work", 5),
        ("rate-limited:network", 1),
        ("not-drawn", 2),
    ]
    assert set(front_door_refusals(dict.fromkeys(FRONT_DOOR_REFUSALS, 1))) == set(
        FRONT_DOOR_REFUSALS
    )


def test_the_section_counts_the_queues_and_prints_what_the_rehearsal_measured() -> None:
    now = datetime(2014, 9, 2, 6, 30, tzinfo=UTC)
    window = Window(now + timedelta(minutes=5), now + timedelta(hours=2))
    event = replace(
        sale_event("door-report", {"phone-red": 10}),
        windows={"CN": window, "IN": window},
        front_door=FrontDoor(admit_per_second=3),
    )
    store = MemoryStorage()
    sales = Sales(store, ManualClock(now))
    sales.open(event)
    door = FrontDoorService(sales, door_store(store), b"k" * 32)
    for buyer in ("a", "b", "c"):
        door.join(event.id, "CN", buyer)
    section = front_door_report(
        door,
        event,
        refusals={"proof-of-work": 4, "sold-out": 1},
        fairness={"bots' share of the units": "0.8 % (1 % of the accounts)"},
        peaks={"CN": 3},
    )
    assert section is not None
    assert section.registrations == 0
    assert section.drawn is None
    cn = next(q for q in section.queues if q.market == "CN")
    assert (cn.joined, cn.prequeue, cn.peak, cn.rate) == (3, 3, 3, 3)
    assert section.refusals == {"proof-of-work": 4}

    report = battle_report(store, event.id, now, front_door=section)
    console = Console(width=120, record=True)
    _front_door(console, report)
    text = console.export_text()
    assert "Front door: 0 registered" in text
    assert "Refused at the front door: proof-of-work 4" in text
    assert "Fairness, bots' share of the units: 0.8 % (1 % of the accounts)" in text

    plain = replace(event, id="plain", front_door=None)
    assert front_door_report(door, plain) is None
