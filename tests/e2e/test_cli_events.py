"""``lampo event``: show, load, update and allocate an event in a real SQLite file."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from lampo.bootstrap import open_storage
from lampo.domain.codec import event_to_dict
from lampo.sim.scenario import load as load_scenario
from tests.e2e._cli import run

pytestmark = pytest.mark.usefixtures("cli_sandbox")

URL = "sqlite:///events.db"
EVENT = "redmi-1s-flipkart-2014"


@pytest.fixture
def sold(capsys: pytest.CaptureFixture[str]) -> None:
    """The flash-drop scenario run at scale 0.01: 400 Redmi 1S, every one sold."""
    assert run(capsys, "simulate", "flash-drop", "--scale", "0.01", "--storage", URL)[0] == 0


def stock(sku: str) -> tuple[int, int, int]:
    store = open_storage(URL, must_exist=True)
    try:
        level = store.stock(EVENT)[sku]
        return level.allocation, level.available, level.sold
    finally:
        store.close()


def test_allocate_adds_stock_to_a_live_event(
    sold: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stock("redmi-1s") == (400, 0, 400)
    code, out, _ = run(capsys, "event", "allocate", EVENT, "redmi-1s=+250", "--storage", URL)
    assert code == 0, out
    assert "+250" in out
    assert stock("redmi-1s") == (650, 250, 400)
    code, out, _ = run(capsys, "event", "allocate", EVENT, "redmi-1s=420", "--storage", URL)
    assert code == 0
    assert stock("redmi-1s") == (420, 20, 400)


def test_allocate_below_the_units_sold_is_refused_and_changes_nothing(
    sold: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "event", "allocate", EVENT, "redmi-1s=-1", "--storage", URL)
    assert code == 2
    assert "400 units are held or sold" in err
    code, _, err = run(capsys, "event", "allocate", EVENT, "no-such-sku=5", "--storage", URL)
    assert code == 2
    assert "redmi-1s" in err  # the error lists the SKUs there are
    assert stock("redmi-1s") == (400, 0, 400)


def test_show_then_update_a_json_definition(
    sold: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "event", "show", EVENT, "--storage", URL)
    assert code == 0
    data = json.loads(out)
    data["name"] = "Redmi 1S, second wave"
    data["offers"]["redmi-1s"]["allocation"] = 1000
    path = tmp_path / "second-wave.json"
    path.write_text(json.dumps(data))

    code, out, _ = run(capsys, "event", "update", str(path), "--storage", URL)

    assert code == 0, out
    assert stock("redmi-1s") == (1000, 600, 400)
    store = open_storage(URL, must_exist=True)
    try:
        [event] = store.load_events()
    finally:
        store.close()
    assert event.name == "Redmi 1S, second wave"
    code, out, _ = run(capsys, "event", "update", str(path), "--storage", URL)
    assert "nothing changed" in out
    assert stock("redmi-1s") == (1000, 600, 400)


def test_load_a_scenario_file_then_refuse_to_load_it_changed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    event = load_scenario("flash-drop", scale=0.01).event
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event_to_dict(event)))
    assert run(capsys, "event", "load", str(path), "--storage", URL)[0] == 0
    assert run(capsys, "event", "load", str(path), "--storage", URL)[0] == 0  # the same: no-op
    data = event_to_dict(event)
    data["hold_seconds"] = 60
    path.write_text(json.dumps(data))
    code, _, err = run(capsys, "event", "load", str(path), "--storage", URL)
    assert code == 2
    assert "lampo event update" in err
    assert stock("redmi-1s") == (400, 400, 0)


def test_load_a_scenario_toml_at_a_scale(capsys: pytest.CaptureFixture[str]) -> None:
    toml = resources.files("lampo.scenarios") / "flash-drop.toml"
    with resources.as_file(toml) as path:
        code, out, _ = run(capsys, "event", "load", str(path), "--scale", "0.02", "--storage", URL)
    assert code == 0, out
    assert stock("redmi-1s") == (800, 800, 0)
