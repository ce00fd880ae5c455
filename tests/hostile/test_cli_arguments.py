"""Every command of ``lampo`` under hostile arguments (issue 10, item 9): it succeeds, or
exits non-zero with exactly one line on stderr naming the problem, never a traceback.

The commands run in-process through ``lampo.cli.main``, the entry point the installed
command runs, on a real SQLite file holding a simulated sale. Arguments hold no NUL
character: a process's arguments cannot (execve ends each at the first NUL).
"""

from __future__ import annotations

import ipaddress
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile._cli import EVENT, SKU, assert_one_line_or_success, run
from tests.hostile.strategies_cli import hostile_text, number_text

SMALLEST_RUN = 0.002  # scales above this run whole simulations: slow, and not the point


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _no_long_run(text: str) -> bool:
    """False for a scale that would simulate more than ``SMALLEST_RUN`` of a scenario."""
    value = _float(text)
    return value is None or math.isnan(value) or not SMALLEST_RUN < value <= 10


argument = hostile_text.map(lambda t: t.replace("\x00", ""))
number = number_text.map(lambda t: t.replace("\x00", ""))
within_64_bits = st.integers(-(2**63) + 1, 2**63 - 1)
events = st.one_of(st.just(EVENT), argument)
allocations = st.lists(
    st.tuples(
        st.one_of(st.just(SKU), argument),
        st.sampled_from(["=", "=+", "=-", "", "=="]),
        st.one_of(within_64_bits.map(str), number.filter(lambda t: len(t) < 19)),
    ).map("".join),
    max_size=3,
)
scales = st.one_of(st.floats(0.0001, SMALLEST_RUN).map(repr), number.filter(_no_long_run), argument)
periods = st.one_of(
    st.sampled_from(["2014", "2014Q3", "2014-Q3", "2017Q2"]),
    st.tuples(number, st.sampled_from(["Q", "-Q", "q", ""]), number).map("".join),
    argument,
)
zones = st.one_of(st.sampled_from(["UTC", "Asia/Kolkata", "America/Adak"]), argument)
formats = st.one_of(st.sampled_from(["table", "json", "csv"]), argument)


def commands(url: str, secrets: str) -> st.SearchStrategy[list[str]]:
    """Argument lists of every command, hostile in every position."""
    storage = ["--storage", url]
    return st.one_of(
        st.tuples(events).map(lambda a: ["stock", a[0], *storage]),
        st.tuples(events).map(lambda a: ["expire", "--event", a[0], *storage]),
        st.tuples(events).map(lambda a: ["event", "show", a[0], *storage]),
        st.tuples(events, allocations).map(lambda a: ["event", "allocate", a[0], *a[1], *storage]),
        st.tuples(events, formats, zones).map(
            lambda a: ["report", "event", a[0], "--format", a[1], "--tz", a[2], *storage]
        ),
        st.tuples(periods, periods, zones, formats).map(
            lambda a: [
                "report",
                "period",
                a[0],
                "--vs",
                a[1],
                "--tz",
                a[2],
                "--format",
                a[3],
                *storage,
            ]
        ),
        st.tuples(scales, number).map(
            lambda a: [
                "simulate",
                "flash-drop",
                "--scale",
                a[0],
                "--seed",
                a[1],
                "--storage",
                "memory://",
            ]
        ),
        st.tuples(argument, number).map(
            lambda a: ["token", a[0], "--ttl", a[1], "--secrets-file", secrets]
        ),
        st.tuples(argument.filter(_not_an_address), number).map(
            lambda a: ["serve", "--host", a[0], "--port", a[1], "--secrets-file", secrets]
        ),
        st.tuples(argument).map(lambda a: ["stores", "show", a[0], *storage]),
        st.tuples(argument, argument).map(
            lambda a: ["stores", "list", "--market", a[0], "--on", a[1], *storage]
        ),
        st.tuples(argument).map(lambda a: ["stores", "key", a[0], *storage]),
        st.tuples(argument).map(lambda a: ["stores", "revoke", a[0], *storage]),
        st.tuples(argument, argument).map(
            lambda a: ["stores", "import", a[0], "--replaces", a[1], *storage]
        ),
        st.tuples(argument, argument, events).map(
            lambda a: ["partners", "import", a[0], a[1], "--event", a[2], *storage]
        ),
        st.lists(argument, max_size=4).filter(lambda a: not a or a[0] not in RUN_FOREVER),
    )


#: Commands that, given nothing else, run a long time (serve: until stopped).
RUN_FOREVER = ("serve", "demo", "simulate")


def _not_an_address(host: str) -> bool:
    """True unless ``serve`` could listen on ``host`` (and run until stopped)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


@settings(
    max_examples=100,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_command_succeeds_or_answers_one_line_on_hostile_arguments(
    data: st.DataObject,
    sale_database: str,
    sandbox: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAMPO_SECRET", "a-secret-for-tokens-0123456789abcdef")
    argv = data.draw(commands(sale_database, str(sandbox / "secrets.env")), label="argv")
    done = run(capsys, argv)
    assert_one_line_or_success(done)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event=argument.filter(lambda t: t != EVENT and 0 < len(t) < 200 and not t.startswith("-")),
    command=st.sampled_from([["stock"], ["event", "show"], ["report", "event"]]),
)
def test_an_unknown_event_is_named_in_the_one_line(
    event: str,
    command: list[str],
    sale_database: str,
    sandbox: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    done = run(capsys, [*command, event, "--storage", sale_database])
    assert done.code == 2, done
    assert len(done.err.splitlines()) == 1
    assert "no sale event named" in done.err
    # shown as Python shows it: escapes for what a terminal would act on
    assert " ".join(repr(event).split())[:100] in done.err


def _whole_number(text: str) -> bool:
    """The allocation rule: ASCII digits with a sign or not; ``_`` and ``,`` group them."""
    return re.fullmatch(r"[+-]?[0-9]+", text.replace("_", "").replace(",", "")) is not None


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=number.filter(lambda t: not _whole_number(t)))
def test_an_allocation_that_is_no_whole_number_is_refused_naming_it(
    value: str, sale_database: str, sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = f"{SKU}={value}"
    done = run(capsys, ["event", "allocate", EVENT, item, "--storage", sale_database])
    assert done.code == 2
    assert done.err.startswith("error: invalid allocation: ")
    assert len(done.err.splitlines()) == 1


def test_an_allocation_in_other_scripts_digits_is_refused_not_read(
    sale_database: str, sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run(capsys, ["event", "allocate", EVENT, f"{SKU}=+\u0665", "--storage", sale_database])
    assert done.code == 2
    assert "not a whole number" in done.err
    shown = run(capsys, ["stock", EVENT, "--storage", sale_database])
    assert "405" not in shown.out  # int() would have read the ARABIC-INDIC FIVE as 5


@pytest.mark.parametrize("allocation", [2**63, 10**30])
def test_an_allocation_beyond_64_bits_is_refused_as_bad_input(
    allocation: int, sale_database: str, sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run(
        capsys, ["event", "allocate", EVENT, f"{SKU}={allocation}", "--storage", sale_database]
    )
    assert_one_line_or_success(done)
    assert done.code == 2, done.err
