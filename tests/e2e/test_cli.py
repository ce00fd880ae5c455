"""The ``lampo`` command end to end: real scenarios, real SQLite files, real exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lampo import __version__
from tests.e2e._cli import run

pytestmark = pytest.mark.usefixtures("cli_sandbox")

AUDIT_LINE = "oversold 0 · limit violations 0 · leaked 0 · totals vs recount: equal"
TINY = "0.0005"


def test_the_demo_runs_on_a_fresh_sqlite_file_and_ends_with_a_clean_audit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "demo", "--scale", TINY, "--db", "demo.db")
    assert code == 0
    assert AUDIT_LINE in " ".join(out.split())
    for heading in (
        "Battle report",
        "Sales per category",
        "Sales per market",
        "Stock sold per SKU",
        "Refused requests",
        "Against the seed's figures",
    ):
        assert heading in out
    assert "CNY" in out
    assert "INR" in out
    assert (tmp_path / "demo.db").is_file()
    code, again, _ = run(capsys, "demo", "--scale", TINY, "--db", "demo.db")
    assert code == 0, "a second demo replaces the previous file"
    assert AUDIT_LINE in " ".join(again.split())


def test_the_demo_will_not_replace_a_file_that_is_not_a_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    precious = tmp_path / "notes.db"
    precious.write_text("my notes")
    code, _, err = run(capsys, "demo", "--scale", TINY, "--db", "notes.db")
    assert code == 2
    assert "not a SQLite file" in err
    assert precious.read_text() == "my notes"


def test_a_demo_past_the_run_budget_is_refused_before_the_old_file_is_replaced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, _ = run(capsys, "demo", "--scale", TINY, "--db", "demo.db")
    assert code == 0
    before = (tmp_path / "demo.db").read_bytes()
    code, _, err = run(capsys, "demo", "--scale", "10", "--db", "demo.db")
    assert code == 2
    assert "scale" in err
    assert (tmp_path / "demo.db").read_bytes() == before  # the last demo's file is kept


@pytest.mark.parametrize("url", ["memory://", "sqlite:///sim.db"])
def test_simulate_ends_with_the_audit_table_and_exit_zero(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    code, out, _ = run(capsys, "simulate", "flash-drop", "--scale", "0.02", "--storage", url)
    assert code == 0
    assert "Audit of redmi-1s-flipkart-2014" in out
    assert AUDIT_LINE in " ".join(out.split())


def test_simulate_refuses_storage_that_holds_the_event_already(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ("simulate", "flash-drop", "--scale", "0.01", "--storage", "sqlite:///twice.db")
    assert run(capsys, *args)[0] == 0
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "already" in err


def test_stock_and_expire_read_the_database_a_run_left(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "sqlite:///shop.db"
    assert run(capsys, "simulate", "flash-drop", "--scale", "0.01", "--storage", url)[0] == 0
    code, out, _ = run(capsys, "stock", "--storage", url)
    assert code == 0
    assert "redmi-1s" in out
    assert "400" in out  # the allocation at scale 0.01
    code, out, _ = run(capsys, "expire", "--storage", url, "--event", "redmi-1s-flipkart-2014")
    assert code == 0
    assert "expired 0 holds" in out  # the simulation ends with every hold ended


def test_the_storage_url_can_come_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMPO_STORAGE", "sqlite:///from-env.db")
    assert run(capsys, "simulate", "flash-drop", "--scale", "0.01")[0] == 0
    code, out, _ = run(capsys, "stock", "redmi-1s-flipkart-2014")
    assert code == 0
    assert "redmi-1s" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--scale", "-1"], "scale"),
        (["demo", "--scale", "abc"], "--scale"),
        (["demo", "--scale", "0"], "scale"),
        (["simulate", "no-such-fest", "--storage", "memory://"], "no such scenario"),
        (["simulate", "flash-drop", "--storage", "ftp://x"], "unknown scheme"),
        (["simulate", "flash-drop", "--storage", "sqlite://"], "storage"),
        (["stock", "--storage", "sqlite:///missing.db"], "no database"),
        (["stock", "nope", "--storage", "memory://"], "nope"),
        (["expire", "--storage", "sqlite:///missing.db"], "no database"),
        (["frobnicate"], "frobnicate"),
        (["demo", "--seed", "x"], "--seed"),
    ],
)
def test_bad_input_gets_a_one_line_error_and_exit_two(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error:")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("demo", "simulate", "stock", "expire"):
        assert command in out
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"lampo {__version__}"


def test_the_installed_command_exits_two_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lampo.cli", "simulate", "nowhere", "--scale", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "error:" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
