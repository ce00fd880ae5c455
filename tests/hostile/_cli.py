"""Running ``lampo`` in-process on hostile input, and what every answer must look like."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lampo.cli import EXIT_INTERNAL, main

#: The flash-drop scenario's sale and its one SKU, as the ``sale_database`` fixture holds it.
EVENT = "redmi-1s-flipkart-2014"
SKU = "redmi-1s"

#: Exit codes a command may end with on any input: done, found something (audit,
#: reconcile --check), refused (bad input), storage unavailable. Never EXIT_INTERNAL.
CLEAN_CODES = (0, 1, 2, 69)


@dataclass(frozen=True, slots=True)
class Outcome:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Outcome:
    """``lampo ARGV...`` in this process, through the same ``main`` the command runs."""
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


def assert_one_line_or_success(done: Outcome, *, internal_allowed: bool = False) -> None:
    """The CLI's property: success, or a non-zero exit with exactly one line on stderr,
    ``error: ...`` naming the problem, and no traceback anywhere. An internal error is
    one line too, but is allowed only where the caller says so."""
    assert "Traceback" not in done.out + done.err, done.err[-2000:]
    if done.code == 0:
        return
    lines = done.err.splitlines()
    assert len(lines) == 1, lines[:5]
    assert lines[0].startswith("error: "), lines[0]
    assert lines[0][len("error: ") :].strip(), lines[0]  # it names something
    if not internal_allowed:
        assert done.code != EXIT_INTERNAL, lines[0]
        assert done.code in CLEAN_CODES, (done.code, lines[0])
