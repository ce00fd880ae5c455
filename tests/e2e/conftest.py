"""Fixtures of the HTTP tests: one real server per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._http import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("http")) as srv:
        yield srv


@pytest.fixture
def cli_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CLI test runs in its own directory, on the default storage, at a fixed width."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAMPO_STORAGE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
