"""The command line's settings, read once from ``lampo.config``'s declarations: what
``--help`` shows, which source wins, and that a bad value is refused before anything
starts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lampo.config import SECRETS, SERVE, Setting, default_text
from tests.e2e._cli import run
from tests.e2e._http import Server, live_event, running_server

pytestmark = pytest.mark.usefixtures("cli_sandbox")


def _flattened(text: str) -> str:
    """Help text without the panel's borders and line breaks."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("setting", [s for s in SERVE if not s.hidden], ids=lambda s: s.name)
def test_every_serve_option_shows_its_default_and_its_variable(
    setting: Setting[object], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option
    code, out, _ = run(capsys, "serve", "--help")
    assert code == 0
    line = next(ln for ln in out.splitlines() if f" {setting.option} " in ln)
    shown = _flattened(line)
    assert f"[default: {default_text(setting, True)}] [env var: {setting.env}]" in shown


def test_serve_has_no_flag_for_a_secret(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "serve", "--help")
    assert code == 0
    for secret in SECRETS:
        assert not re.search(rf"\b{secret.env}\b", out)
        assert f"--{secret.name.replace('_', '-')} " not in out


def test_a_bad_variable_stops_serve_before_it_writes_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMPO_BUYER_BURST", "lots")
    secrets = tmp_path / "secrets.env"
    code, out, err = run(capsys, "serve", "--port", "0", "--secrets-file", str(secrets))
    assert code == 2
    assert err == "error: invalid LAMPO_BUYER_BURST: not a number: 'lots'\n"
    assert "serving" not in out
    assert not secrets.exists()


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--buyer-burst", "0"), ("--report-ttl", "61"), ("--webhook-tolerance", "1.5")],
)
def test_a_flag_out_of_its_bound_is_a_usage_error(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "serve", flag, value)
    assert code == 2
    assert err.startswith(f"error: Invalid value for '{flag}': ")
    assert err.rstrip().endswith("(see lampo --help)")
    assert len(err.splitlines()) == 1


def test_the_storage_flag_wins_over_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMPO_STORAGE", "redis://127.0.0.1:6379/abc")
    assert run(capsys, "stock", "--storage", "memory://")[0] == 0
    code, _, err = run(capsys, "stock")
    assert code == 2
    assert "database 'abc'" in err


def test_reconcile_without_a_storage_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "reconcile", "--check")
    assert code == 2
    assert "'--storage'" in err
    assert err.rstrip().endswith("(see lampo --help)")


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose flags allow a buyer 3 requests, where its environment allows 50."""
    env = {"LAMPO_BUYER_RATE": "100", "LAMPO_BUYER_BURST": "50"}
    flags = ["--buyer-rate", "0.01", "--buyer-burst", "3"]
    with running_server(tmp_path_factory.mktemp("flagged"), workers=2, flags=flags, **env) as srv:
        srv.load(live_event("http-flags", {"phone-red": 100}))
        yield srv


@pytest.mark.sqlite
def test_serve_flags_win_over_the_environment_in_every_worker(flagged: Server) -> None:
    statuses = [flagged.reserve("eager", "http-flags", {"phone-red": 1}).status for _ in range(3)]
    assert statuses == [201, 201, 201]
    refused = flagged.reserve("eager", "http-flags", {"phone-red": 1})
    assert refused.status == 429
    assert refused.json["scope"] == "buyer"
