"""The one place where the ``lampo`` command turns a failure into a line and an exit code
(``lampo.cli.main``): what it prints, and which code each kind of failure gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo import cli
from lampo.cli import stock
from lampo.domain.errors import InvalidRequest, UnknownEvent
from tests.hostile._cli import run
from tests.hostile.strategies_cli import hostile_text

messages = st.one_of(hostile_text, st.text(), st.text(min_size=2500, max_size=3000))


@given(messages)
def test_a_message_becomes_one_printable_line(message: str) -> None:
    line = cli.one_line(message)
    assert len(line.splitlines()) <= 1
    assert line.isprintable()
    assert len(line) <= 2000


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=messages)
def test_the_error_line_is_the_message_as_text_never_markup_or_emoji(
    message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli._fail(message) == cli.EXIT_REFUSED
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"error: {cli.one_line(message)}\n"


def _raise_in_cleanup(refusal: Exception) -> Exception:
    """What ``try: <refused> finally: <cleanup that fails>`` raises."""
    try:
        try:
            raise refusal
        finally:
            raise RuntimeError("the store could not close")
    except RuntimeError as failed:
        return failed


def test_a_refusal_behind_a_failed_cleanup_is_still_the_refusal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    failure = _raise_in_cleanup(UnknownEvent("fest"))
    assert cli._failure(failure, cli._usage_errors()) == cli.EXIT_REFUSED
    assert capsys.readouterr().err == "error: no sale event named 'fest'\n"


def test_a_refusal_in_an_exception_group_is_the_refusal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    group = ExceptionGroup("batch", [ValueError("other"), InvalidRequest("qty", "too many")])
    assert cli._failure(group, cli._usage_errors()) == cli.EXIT_REFUSED
    assert capsys.readouterr().err == "error: invalid qty: too many\n"


@pytest.fixture
def broken_stock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``lampo stock`` with a bug in it: listing the events divides by zero."""

    def broken(*_: object) -> list[str]:
        return [str(1 // 0)]

    monkeypatch.setattr(stock, "_events", broken)


@pytest.mark.usefixtures("broken_stock")
def test_a_bug_is_one_internal_error_line_with_a_hint_and_exit_70(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run(capsys, ["stock", "--storage", "memory://"])
    assert done.code == cli.EXIT_INTERNAL == 70
    assert done.err == (
        "error: internal error: ZeroDivisionError: integer division or modulo by zero "
        "(a bug in lampo; rerun with LAMPO_DEBUG=1 to see where)\n"
    )


@pytest.mark.usefixtures("broken_stock")
def test_lampo_debug_shows_the_traceback_then_the_same_line(
    sandbox: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMPO_DEBUG", "1")
    done = run(capsys, ["stock", "--storage", "memory://"])
    assert done.code == cli.EXIT_INTERNAL
    assert done.err.startswith("Traceback")
    assert "1 // 0" in done.err
    assert done.err.splitlines()[-1].startswith("error: internal error: ZeroDivisionError")


def test_ctrl_c_is_one_line_and_exit_130(
    sandbox: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(stock, "_events", interrupted)
    done = run(capsys, ["stock", "--storage", "memory://"])
    assert (done.code, done.err) == (130, "error: interrupted\n")


@pytest.mark.parametrize(
    "argv",
    [["stock", "--nope"], ["report"], ["event", "allocate"], ["serve", "--port", "70000"]],
)
def test_a_usage_error_is_one_line_with_a_pointer_to_help(
    argv: list[str], sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run(capsys, argv)
    if done.code == 0:  # a group given no command prints its help, as --help does
        assert "Usage" in done.out
        return
    assert done.code == cli.EXIT_REFUSED
    assert len(done.err.splitlines()) == 1
    assert done.err.rstrip().endswith("(see lampo --help)")
