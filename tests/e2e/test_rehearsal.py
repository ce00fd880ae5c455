"""``lampo simulate SCENARIO --target URL`` against a real ``lampo serve`` with two workers,
on SQLite and on Redis: the crowd sells the stock out exactly, the audit read back from
the server finds nothing, and the performance block carries the latency percentiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lampo.sim import scenario as scenarios
from tests.contract._servers import drop_redis_prefix, redis_url
from tests.e2e._cli import run
from tests.e2e._http import ADMIN_KEY, SECRET, Server, running_server

SCENARIO = "flash-drop"
SCALE = "0.01"  # 400 units, about 1,300 reservation requests
SPEED = "200"  # the 30-minute window in 9 s, the 10-minute hold in 3 s
#: The server's own timers do not follow --speed: every reservation asks storage (no
#: sold-out memory, whose second would be 200 of the crowd's), and the sweeper runs
#: every 0.3 s, the in-process driver's minute at this speed.
SERVER_ENV = {"LAMPO_SOLDOUT_TTL": "0", "LAMPO_SWEEP_INTERVAL": "0.3"}


def _sqlite(tmp: Path) -> str:
    return f"sqlite:///{(tmp / 'lampo.db').resolve().as_posix()}"


def _no_drop(url: str) -> None:
    return None


STORES = [
    pytest.param(_sqlite, _no_drop, id="sqlite", marks=pytest.mark.sqlite),
    pytest.param(redis_url, drop_redis_prefix, id="redis", marks=pytest.mark.redis),
]


def simulate(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAMPO_SECRET": SECRET, "LAMPO_ADMIN_KEY": ADMIN_KEY}
    return subprocess.run(
        [sys.executable, "-m", "lampo.cli", "simulate", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize(("store", "drop"), STORES)
def test_a_rehearsal_over_http_sells_out_exactly_and_audits_clean(
    tmp_path: Path, store: Callable[[Path], str], drop: Callable[[str], None]
) -> None:
    url = store(tmp_path)
    try:
        with running_server(tmp_path, workers=2, storage=url, **SERVER_ENV) as server:
            target = f"http://127.0.0.1:{server.port}"
            done = simulate(
                tmp_path, SCENARIO, "--scale", SCALE, "--target", target, "--speed", SPEED, "--json"
            )
            assert done.returncode == 0, done.stderr
            found = json.loads(done.stdout)
            stock = server.stock(found["run"]["run_id"])
    finally:
        drop(url)

    event = scenarios.load(SCENARIO, float(SCALE)).event
    # sold out exactly: every unit paid, none held or left, on the server itself
    for sku, offer in event.offers.items():
        level = stock[sku]
        assert (level["sold"], level["held"], level["available"]) == (offer.allocation, 0, 0)
        assert found["run"]["sold_out_ms"][sku] >= 0
    assert found["audit"] == {
        "ok": True,
        "holds": found["run"]["holds"],
        "oversold_units": 0,
        "limit_violations": 0,
        "leaked_units": 0,
        "totals_differing": 0,
    }
    report = found["report"]
    assert report["units"] == event.total_allocation
    assert report["truth"] is True
    assert report["refusals"]["sold-out"] > 0  # the crowd was larger than the stock
    run = found["run"]
    assert run["orders"] == report["orders"]
    assert run["held"] == 0
    performance = found["performance"]
    assert performance["requests"] >= run["requests"] + run["orders"]
    for kind in ("reserve", "pay", "all"):
        row = performance["latency"][kind]
        assert row["count"] > 0
        figures = [row[k] for k in ("p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms")]
        assert figures == sorted(figures)
        assert figures[0] > 0
    assert performance["errors"] == {}


BAD_OPTIONS = [
    pytest.param(["--speed", "0"], "speed", id="speed zero"),
    pytest.param(["--speed", "nan"], "speed", id="speed nan"),
    pytest.param(["--speed", "100001"], "speed", id="speed too fast"),
    pytest.param(["--speed", "0.0001"], "speed", id="slowed past the longest event"),
    pytest.param(["--connections", "0"], "connections", id="no connection"),
    pytest.param(["--connections", "10001"], "connections", id="too many connections"),
    pytest.param(["--storage", "memory://"], "storage", id="storage with a target"),
]


@pytest.mark.usefixtures("cli_sandbox")
@pytest.mark.parametrize(("extra", "field"), BAD_OPTIONS)
def test_a_rehearsal_with_bad_options_is_refused_in_one_line_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: Server,
    extra: list[str],
    field: str,
) -> None:
    monkeypatch.setenv("LAMPO_SECRET", SECRET)
    monkeypatch.setenv("LAMPO_ADMIN_KEY", ADMIN_KEY)
    before = server.admin("GET", "/v1/admin/events").json
    target = f"http://127.0.0.1:{server.port}"
    code, out, err = run(capsys, "simulate", SCENARIO, "--scale", SCALE, "--target", target, *extra)
    assert code == 2
    assert err.startswith("error: ")
    assert field in err
    assert err.count("\n") == 1
    assert out == ""
    assert server.admin("GET", "/v1/admin/events").json == before  # nothing loaded


@pytest.mark.usefixtures("cli_sandbox")
def test_a_wrong_admin_key_or_a_target_that_is_no_url_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, server: Server
) -> None:
    monkeypatch.setenv("LAMPO_SECRET", SECRET)
    monkeypatch.setenv("LAMPO_ADMIN_KEY", "not-the-admin-key-0123456789")
    before = server.admin("GET", "/v1/admin/events").json
    target = f"http://127.0.0.1:{server.port}"
    code, _, err = run(capsys, "simulate", SCENARIO, "--scale", SCALE, "--target", target)
    assert code == 2
    assert "401" in err
    assert err.count("\n") == 1
    code, _, err = run(capsys, "simulate", SCENARIO, "--target", "ftp://127.0.0.1:1")
    assert code == 2
    assert "target" in err
    assert server.admin("GET", "/v1/admin/events").json == before


@pytest.mark.usefixtures("cli_sandbox")
def test_json_in_process_is_one_document_with_the_report_the_audit_and_the_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys, "simulate", SCENARIO, "--scale", SCALE, "--storage", "memory://", "--json"
    )
    assert code == 0
    found = json.loads(out)  # stdout holds the document alone
    assert found["mode"] == "in-process"
    assert found["audit"]["ok"] is True
    event = scenarios.load(SCENARIO, float(SCALE)).event
    assert found["report"]["units"] == event.total_allocation
    assert found["run"]["orders"] == found["report"]["orders"]
    assert set(found["run"]["sold_out_ms"]) == set(event.offers)
    assert "performance" not in found  # latency is measured over HTTP only
