"""The new-retail scenarios end to end: double-11-2021 simulated on a real SQLite file
(stores sell at their tills, the audit is all zeros, the ¥10 B omni-channel milestone
falls on 5 November), and the period report showing results from outside lampo beside
its own figures, labelled as imported."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.e2e._cli import run

pytestmark = pytest.mark.usefixtures("cli_sandbox")


def test_double_11_2021_sells_through_every_channel_kind_and_audits_clean(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys,
        "simulate",
        "double-11-2021",
        "--scale",
        "0.001",
        "--storage",
        "sqlite:///d11.db?synchronous=OFF",  # durability is not what this test is about
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    found = data["audit"]
    assert found["ok"]
    assert found["holds"] > 0
    for check in ("oversold_units", "limit_violations", "leaked_units", "totals_differing"):
        assert found[check] == 0
    report = data["report"]
    kinds = {row["key"]: row["units"] for row in report["by"]["channel"]}
    assert set(kinds) == {"online", "marketplace", "store"}
    assert all(units > 0 for units in kinds.values())
    assert sum(kinds.values()) == report["units"]  # the split adds up exactly
    outlets = {row["key"] for row in report["by"]["outlet"]}
    assert {"marketplace:jd", "marketplace:tmall"} <= outlets
    assert any(key.startswith("store:") for key in outlets)
    ten_billion = report["milestones"][0]
    assert ten_billion["reached"]
    assert "¥10 billion" in ten_billion["milestone"]["label"]
    crossed = datetime.fromisoformat(ten_billion["at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert crossed.date().isoformat() == "2021-11-05"  # the seed: 18:21:07 on 5 November


@pytest.fixture
def history(quarter_history: str) -> str:
    return quarter_history


def test_the_period_report_shows_results_from_outside_labelled_as_imported(
    capsys: pytest.CaptureFixture[str], history: str
) -> None:
    capsys.readouterr()
    code, out, err = run(capsys, "report", "period", "2017Q2", "--storage", history)
    assert code == 0, err
    text = " ".join(out.split())
    assert "Results from outside lampo, 2017Q2 (imported, as reported)" in text
    assert "23,160,000" in text  # seed 002's phones of the quarter, beside lampo's own
    assert "Marketplace rankings" not in text  # none imported for 2017Q2


def test_the_q2_2017_channel_mix_includes_the_stores_and_every_unit_still_sells(
    capsys: pytest.CaptureFixture[str], history: str
) -> None:
    capsys.readouterr()
    code, out, err = run(
        capsys, "report", "period", "2017Q2", "--storage", history, "--format", "json"
    )
    assert code == 0, err
    figures = json.loads(out)["figures"]
    kinds = {row["key"]: row["units"] for row in figures["by_channel"]}
    assert set(kinds) == {"online", "marketplace", "store"}
    assert kinds["store"] > 0
    assert sum(kinds.values()) == figures["units"] == 2316  # every unit of the quarter


def test_a_bad_row_of_an_outside_results_file_is_refused_before_storage_is_read(
    capsys: pytest.CaptureFixture[str], history: str
) -> None:
    Path("bad.csv").write_text(
        "period,market,channel,category,units,revenue,currency,source\n"
        "2017Q2,CN,jd,phones,12,,,ok\n"
        "2017Q2,CN,jd,phones,-3,,,negative\n"
        "2017Q9,CN,jd,phones,3,,,no such quarter\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    code, out, err = run(
        capsys, "report", "period", "2017Q2", "--storage", history, "--actuals", "bad.csv"
    )
    assert code == 2
    message = " ".join(err.split())
    assert "bad.csv" in message
    assert "line 3" in message
    assert "line 4" in message
    assert "Traceback" not in err + out


def test_a_rehearsal_over_http_refuses_walk_ins_before_sending_anything(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMPO_SECRET", "s" * 32)
    monkeypatch.setenv("LAMPO_ADMIN_KEY", "a" * 32)
    code, out, err = run(
        capsys, "simulate", "double-11-2021", "--scale", "0.001", "--target", "http://127.0.0.1:9"
    )
    assert code == 2
    message = " ".join(err.split())
    assert "walk-ins at stores" in message
    assert "POST /v1/stores/{store}/sales" in message
    assert "Traceback" not in err + out


def test_the_q2_2017_period_report_counts_the_store_network_from_the_kept_registry(
    capsys: pytest.CaptureFixture[str], history: str
) -> None:
    """The simulated mi-2017q2 kept its registry in the storage it ran on; the period
    report reads it there, with no --stores file: the seed's 123 Mi Home stores, +14."""
    capsys.readouterr()
    code, out, err = run(capsys, "report", "period", "2017Q2", "--storage", history)
    assert code == 0, err
    text = " ".join(out.split())
    assert "CN: 123 stores, +14 QoQ" in text
    assert "first store in IN" in text
    code, out, err = run(capsys, "stores", "list", "--market", "CN", "--storage", history)
    assert code == 0, err
    assert out.count("\n") >= 123
