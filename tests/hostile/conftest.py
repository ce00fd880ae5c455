"""Fixtures of the hostile-input tests of the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lampo.cli import main


@pytest.fixture(scope="module")
def sale_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of a SQLite file holding the flash-drop sale simulated at scale 0.01 (400
    units, sold out), made once per module."""
    path = tmp_path_factory.mktemp("hostile-cli") / "sale.db"
    url = f"sqlite:///{path.resolve().as_posix()}"
    assert main(["simulate", "flash-drop", "--scale", "0.01", "--storage", url]) == 0
    return url


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CLI test runs in its own directory, on the default storage, at a fixed width,
    without the debug variable (a traceback there is the point of LAMPO_DEBUG)."""
    monkeypatch.chdir(tmp_path)
    for name in ("LAMPO_STORAGE", "LAMPO_DEBUG", "LAMPO_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path
