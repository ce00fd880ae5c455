"""Running the ``lampo`` command in-process, for the CLI tests."""

from __future__ import annotations

import pytest

from lampo.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``lampo ARGV...``: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
