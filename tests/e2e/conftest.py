"""Fixtures of the HTTP tests: one real server per test module; the shipped quarter
scenarios simulated into one SQLite file (``quarter_history``); and the browser of the
page tests, Debian's Chromium (``LAMPO_CHROMIUM``, default ``/usr/bin/chromium``) driven
by Playwright. Without Chromium or Playwright the browser tests skip loudly; with
``CI=true`` they fail instead, so CI cannot go green without them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e._http import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("http")) as srv:
        yield srv


@pytest.fixture(scope="session")
def quarter_history(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of a SQLite file holding Q2 2016 India, Q1 and Q2 2017 simulated at scale
    0.0001 (their allocations are multiples of 10,000: exact there), once per session;
    tests only read it."""
    from lampo.cli import main

    db = tmp_path_factory.mktemp("history") / "history.db"
    url = f"sqlite:///{db.resolve().as_posix()}"
    for scenario in ("mi-india-2016q2", "mi-2017q1", "mi-2017q2"):
        assert main(["simulate", scenario, "--scale", "0.0001", "--storage", url]) == 0
    return url


@pytest.fixture
def cli_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CLI test runs in its own directory, on the default storage, at a fixed width."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAMPO_STORAGE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


CHROMIUM = os.environ.get("LAMPO_CHROMIUM", "/usr/bin/chromium")


def _unavailable(reason: str) -> None:
    message = f"browser tests did NOT run: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " and CI=true requires them")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        _unavailable(f"Playwright is missing ({exc}): pip install -e '.[test]'")
    if not Path(CHROMIUM).is_file():
        _unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set LAMPO_CHROMIUM")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        except Error as exc:
            _unavailable(f"Chromium at {CHROMIUM} did not start: {exc}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A 1920x1080 tab whose script errors and refused loads (CSP) fail the test."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))

    def console(msg: Any) -> None:
        # a 404 page is logged as a failed load; the tests check their statuses themselves
        if msg.type == "error" and "status of 404" not in msg.text:
            errors.append(f"console: {msg.text}")

    tab.on("console", console)
    yield tab
    context.close()
    assert errors == []
