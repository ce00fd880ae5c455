"""Storage keeps each event's definition, so a restarted process can serve and report it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lampo.domain.codec import event_from_dict, event_to_dict
from lampo.domain.errors import InvalidRequest
from lampo.sim.scenario import load
from lampo.storage import Storage
from tests.contract.conftest import SQLITE, Backend
from tests.factories import sale_event


def test_a_stored_event_comes_back_with_the_same_definition(store: Storage) -> None:
    event = sale_event(stock={"redmi-2": 5}, sku_limit=2, event_limit=3)
    store.setup(event)
    assert store.load_events() == [event]


def test_setting_up_an_event_again_with_another_definition_is_refused_and_changes_nothing(
    store: Storage,
) -> None:
    event = sale_event(stock={"redmi-2": 5})
    store.setup(event)
    store.setup(event)  # the same definition: a no-op
    bigger = replace(event, hold_seconds=event.hold_seconds + 1)
    with pytest.raises(InvalidRequest) as refused:
        store.setup(bigger)
    assert refused.value.field == "event"
    assert store.load_events() == [event]
    assert store.stock(event.id)["redmi-2"].allocation == 5


@pytest.mark.sqlite
def test_a_reopened_sqlite_file_knows_its_events(tmp_path: Path) -> None:
    event = load("mi-fan-fest-2015", scale=0.001).event
    first = SQLITE.open(tmp_path)
    first.setup(event)
    first.close()
    again = Backend.open(SQLITE, tmp_path)
    try:
        assert again.load_events() == [event]
    finally:
        again.close()


def test_the_shipped_scenario_survives_the_json_codec() -> None:
    event = load("mi-fan-fest-2015").event
    assert event_from_dict(event_to_dict(event)) == event


def test_a_malformed_definition_is_refused_with_a_reason() -> None:
    data = event_to_dict(sale_event())
    del data["fx"]
    with pytest.raises(InvalidRequest) as refused:
        event_from_dict(data)
    assert refused.value.reason == "invalid-request"
