"""Fixtures of the hostile-input tests of the command line."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CLI test runs in its own directory, on the default storage, at a fixed width,
    without the debug variable (a traceback there is the point of LAMPO_DEBUG)."""
    monkeypatch.chdir(tmp_path)
    for name in ("LAMPO_STORAGE", "LAMPO_DEBUG", "LAMPO_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path
