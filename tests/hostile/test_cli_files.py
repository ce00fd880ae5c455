"""``lampo event load|update`` and ``lampo simulate`` given hostile files (issue 10, item
9): deep documents, numbers past 64 bits, wrong types, text that is no document, and
real definitions with hostile values in them. The command succeeds or answers one line
on stderr, with no traceback; a deep document or a number past its bound is bad input
(exit 2), never an "internal error".
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lampo.domain.codec import event_to_dict
from lampo.sim.scenario import load as load_scenario
from tests.hostile._cli import EVENT, assert_one_line_or_success, run
from tests.hostile.strategies_cli import (
    deep_json,
    deep_toml,
    hostile_files,
    mutated_definitions,
    mutated_scenarios,
)

FLASH_DROP = resources.files("lampo.scenarios").joinpath("flash-drop.toml").read_text("utf-8")
DEFINITION = event_to_dict(load_scenario("flash-drop", 0.01).event)
SETTINGS = settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

definition_files = st.one_of(
    hostile_files().flatmap(lambda c: st.tuples(st.just(c), st.sampled_from([".json", ".toml"]))),
    st.tuples(mutated_definitions(DEFINITION), st.just(".json")),
    st.tuples(mutated_scenarios(FLASH_DROP), st.just(".toml")),
)


def _write(sandbox: Path, content: str, suffix: str) -> str:
    path = sandbox / f"definition{suffix}"
    path.write_text(content, encoding="utf-8")
    return str(path)


def _load_or_update(sandbox: Path, url: str, content: str, suffix: str, verb: str) -> list[str]:
    file = _write(sandbox, content, suffix)
    storage = "memory://" if verb == "load" else url
    return ["event", verb, file, "--storage", storage, "--scale", "0.01"]


@SETTINGS
@given(case=definition_files, verb=st.sampled_from(["load", "update"]))
def test_a_hostile_definition_file_gets_an_answer_or_one_line(
    case: tuple[str, str],
    verb: str,
    sale_database: str,
    sandbox: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    done = run(capsys, _load_or_update(sandbox, sale_database, *case, verb))
    assert_one_line_or_success(done)


@settings(
    max_examples=15,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=mutated_scenarios(FLASH_DROP))
def test_a_hostile_scenario_file_simulates_or_gets_one_line(
    scenario: str, sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _write(sandbox, scenario, ".toml")
    done = run(capsys, ["simulate", file, "--scale", "0.01", "--storage", "memory://"])
    assert_one_line_or_success(done)


def test_a_definition_with_markup_in_its_names_loads_and_prints_them_as_text(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = dict(DEFINITION, id="[/x]:smile:", name="[bold]:smile:[/]")
    file = _write(sandbox, json.dumps(hostile), ".json")
    done = run(capsys, ["event", "load", file, "--storage", "memory://"])
    assert done.code == 0, done.err
    assert "[/x]:smile:: loaded" in done.out  # not read as Rich markup or an emoji code


def test_a_name_with_a_terminal_escape_is_refused_and_the_escape_is_shown_not_sent(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = dict(DEFINITION, name="[bold]\x1b[2J")
    file = _write(sandbox, json.dumps(hostile), ".json")
    done = run(capsys, ["event", "load", file, "--storage", "memory://"])
    assert done.code == 2
    assert done.err.count("\n") == 1
    assert "name" in done.err
    assert "\x1b" not in done.err  # escaped in the one line, never sent to the terminal


@SETTINGS
@example(case=(deep_json("array", 100_000), ".json"), verb="load")
@example(case=(deep_toml("inline", 5000), ".toml"), verb="load")
@given(case=definition_files, verb=st.sampled_from(["load", "update"]))
def test_a_hostile_definition_file_is_refused_as_bad_input(
    case: tuple[str, str],
    verb: str,
    sale_database: str,
    sandbox: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    done = run(capsys, _load_or_update(sandbox, sale_database, *case, verb))
    assert_one_line_or_success(done)


def test_a_scenario_whose_names_hold_markup_simulates_and_reports(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = FLASH_DROP.replace('name = "Redmi 1S on Flipkart"', 'name = "[/x] on Flipkart"')
    file = _write(sandbox, scenario, ".toml")
    done = run(capsys, ["simulate", file, "--scale", "0.01", "--storage", "memory://"])
    assert done.code == 0, done.err
    assert "[/x] on Flipkart" in done.out


def test_the_loaded_definition_is_the_one_the_file_holds(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The property's success path is real: an unmutated file loads and shows as itself."""
    file = _write(sandbox, json.dumps(DEFINITION), ".json")
    url = f"sqlite:///{(sandbox / 'fresh.db').as_posix()}"
    assert run(capsys, ["event", "load", file, "--storage", url]).code == 0
    shown = run(capsys, ["event", "show", EVENT, "--storage", url])
    assert json.loads(shown.out) == DEFINITION
