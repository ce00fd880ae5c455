"""``lampo simulate`` of an event with a waiting room: the crowd goes through the front
door (registration, pre-queue, polls, admissions), bots included; the report and the JSON
document say how many units the bots got against their share of the accounts."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e._cli import run

pytestmark = pytest.mark.slow


def test_the_door_rehearsal_reports_the_bots_share(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "simulate", "redmi-1s-2014-door", "--scale", "0.002", "--storage", "memory://"
    )
    assert code == 0  # the audit is clean
    text = " ".join(out.split())
    assert "front door:" in text
    assert "bots:" in text
    found = re.search(
        r"bots: ([\d,]+) accounts \(([\d.]+)% of the visitors\)"
        r".* got ([\d,]+) of 80 units sold \(([\d.]+)%\)",
        text,
    )
    assert found is not None, text
    assert float(found[4]) <= float(found[2])


def test_the_door_rehearsal_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "simulate",
        "redmi-1s-2014-door",
        "--scale",
        "0.002",
        "--storage",
        "memory://",
        "--json",
    )
    assert code == 0
    door = json.loads(out)["run"]["front_door"]
    bots = door["bots"]
    assert bots["accounts"] > 0
    assert bots["unit_share"] <= bots["account_share"]
    assert door["units"] == 80
    assert door["registered"] == door["visitors"]
    assert door["refusals"]["not-admitted"] > 0  # the bots' buys without an admission
    assert door["admitted"] <= door["visitors"]


def test_a_rehearsal_over_http_of_an_event_behind_a_door_is_refused_before_it_starts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTP the crowd would not pass the door and every buy would be refused: the
    run is refused with its reason before anything is sent (no server needed to say so)."""
    monkeypatch.setenv("LAMPO_SECRET", "a rehearsal's secret of 32 bytes.")
    monkeypatch.setenv("LAMPO_ADMIN_KEY", "a rehearsal's admin key, 32 bytes")
    code, out, err = run(
        capsys,
        "simulate",
        "redmi-1s-2014-door",
        "--scale",
        "0.002",
        "--target",
        "http://127.0.0.1:9",
    )
    assert code != 0
    said = " ".join((out + err).split())
    assert "front door" in said
    assert "without --target" in said
