"""The installed command as a real process: what an operator sees on a terminal when
``lampo serve`` cannot listen, a storage URL from the environment is malformed, or a
file is hostile. One line on stderr, a non-zero exit, no traceback; the traceback only
when asked for with ``LAMPO_DEBUG=1``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.strategies_cli import deep_json

TIMEOUT = 120  # seconds: a hung command fails the test instead of the suite


def lampo(
    *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``lampo ARGV...`` in a fresh interpreter, as the console script runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LAMPO_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lampo.cli", *argv],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines[:5]
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something listens on for the test's length."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_on_a_port_in_use_says_so_in_one_line_before_starting(
    tmp_path: Path, taken_port: int
) -> None:
    secrets = tmp_path / "secrets.env"
    done = lampo(
        "serve", "--port", str(taken_port), "--storage", "memory://",
        "--secrets-file", str(secrets), cwd=tmp_path,
    )  # fmt: skip
    line = assert_one_line(done, 2)
    assert f"cannot listen on 127.0.0.1 port {taken_port}" in line
    assert "in use" in line
    assert "serving" not in done.stdout  # granian never started
    assert not secrets.exists()  # a refusal changes nothing


@pytest.mark.parametrize("host", ["localhost", "1.2.3"])
def test_serve_on_a_host_that_is_no_ip_address_says_so_in_one_line(
    tmp_path: Path, host: str
) -> None:
    done = lampo("serve", "--host", host, "--port", "0", "--storage", "memory://", cwd=tmp_path)
    line = assert_one_line(done, 2)
    assert "is not an IP address" in line


def test_serve_on_an_address_of_no_interface_says_so_in_one_line(tmp_path: Path) -> None:
    done = lampo(  # TEST-NET-3: documentation only, never a local address
        "serve", "--host", "203.0.113.7", "--port", "0", "--storage", "memory://", cwd=tmp_path
    )
    assert "cannot listen on 203.0.113.7" in assert_one_line(done, 2)


def test_a_malformed_storage_url_from_the_environment_is_one_line(tmp_path: Path) -> None:
    env = {"LAMPO_STORAGE": "redis://127.0.0.1:6379/abc?socket_timeout=1"}
    line = assert_one_line(lampo("stock", cwd=tmp_path, env=env), 2)
    assert "database 'abc'" in line


def test_storage_that_is_down_exits_69_in_one_line(tmp_path: Path) -> None:
    done = lampo("stock", "--storage", "redis://127.0.0.1:1/0", cwd=tmp_path)
    assert "storage unavailable" in assert_one_line(done, 69)


def test_a_deep_document_is_one_line_and_its_traceback_only_under_lampo_debug(
    tmp_path: Path,
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(deep_json("array", 100_000), encoding="utf-8")
    done = lampo("event", "load", str(deep), "--storage", "memory://", cwd=tmp_path)
    assert done.returncode != 0
    line = assert_one_line(done, done.returncode)
    debugged = lampo(
        "event", "load", str(deep), "--storage", "memory://", cwd=tmp_path,
        env={"LAMPO_DEBUG": "1"},
    )  # fmt: skip
    assert debugged.returncode == done.returncode
    assert "Traceback" in debugged.stderr
    assert debugged.stderr.splitlines()[-1] == line
