"""Uploaded definitions, TOML and JSON, read by ``lampo.sim.definition``: whatever the
document (nested thousands deep, megabytes long, numbers of thousands of digits, any
value of any type anywhere), the answer is an event or a clean refusal, ``InvalidRequest``
or ``ScenarioError``, and never another exception. Each test has its own timeout (the
bound on time; no timing is asserted)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.domain.codec import event_to_dict
from lampo.domain.errors import InvalidRequest, LampoError
from lampo.domain.event import SaleEvent
from lampo.sim import definition
from lampo.sim._limits import MAX_DEPTH, MAX_DOCUMENT_BYTES
from lampo.sim.scenario import ScenarioError, load, loads
from tests.factories import sale_event

SCENARIOS = Path(__file__).resolve().parents[2] / "src" / "lampo" / "scenarios"
TOML = (SCENARIOS / "flash-drop.toml").read_text(encoding="utf-8")
JSON = json.dumps(event_to_dict(sale_event()), indent=1)

pytestmark = pytest.mark.timeout(120)
FEW = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def outcome(content: str | bytes, form: definition.Form) -> SaleEvent | LampoError:
    """The event, or the refusal (a short message); any other exception fails the test."""
    try:
        return definition.parse(content, form, "upload")
    except (InvalidRequest, ScenarioError) as refusal:
        refused: LampoError = refusal
    assert len(str(refused)) < 2_000
    return refused


def test_the_shipped_forms_are_read() -> None:
    assert isinstance(outcome(TOML, "toml"), SaleEvent)
    assert outcome(JSON, "json") == sale_event()
    assert outcome(JSON.encode(), "json") == sale_event()


# -- nesting ---------------------------------------------------------------------------------

DEPTHS = st.integers(1, 40) | st.integers(40, 3_000) | st.sampled_from([MAX_DEPTH, 100_000])


def nested_json(levels: int, kind: str) -> str:
    if kind == "array":
        return "[" * levels + "1" + "]" * levels
    return '{"a":' * levels + "1" + "}" * levels


def nested_toml(levels: int, kind: str) -> str:
    if kind == "array":
        return "[" * levels + "1" + "]" * levels
    if kind == "inline":
        return "{a = " * levels + "1" + "}" * levels
    return "1"  # dotted keys: see key_toml


@FEW
@given(
    DEPTHS, st.sampled_from(["array", "object"]), st.sampled_from(["name", "hold_seconds", "fx"])
)
def test_deep_json_anywhere_is_refused_cleanly(levels: int, kind: str, where: str) -> None:
    text = JSON.replace(f'"{where}": ', f'"{where}": {nested_json(levels, kind)}, "x{where}": ', 1)
    result = outcome(text, "json")
    assert isinstance(result, InvalidRequest)
    if levels + 1 > MAX_DEPTH:
        assert "deeper" in result.problem


@FEW
@given(DEPTHS, st.sampled_from(["array", "inline", "dotted", "header"]))
def test_deep_toml_anywhere_is_refused_cleanly(levels: int, kind: str) -> None:
    if kind == "dotted":
        extra = ".".join(["a"] * min(levels, 5_000)) + " = 1\n"
    elif kind == "header":
        extra = "[" + ".".join(["t"] * min(levels, 5_000)) + "]\nx = 1\n"
    else:
        extra = f"deep = {nested_toml(levels, kind)}\n"
    result = outcome(extra + TOML if kind != "header" else TOML + extra, "toml")
    # the document (a table) holds the value: one level more, but for dotted keys
    if (levels if kind == "dotted" else levels + 1) > MAX_DEPTH:
        assert isinstance(result, ScenarioError)
        assert "deeper" in result.problem or "TOML" in result.problem
    else:  # a stray key the scenario does not read: still a scenario
        assert isinstance(result, SaleEvent | ScenarioError)


@pytest.mark.parametrize("form", ["json", "toml"])
def test_a_million_opening_brackets_are_refused_at_once(form: definition.Form) -> None:
    text = "[" * (MAX_DOCUMENT_BYTES - 10) if form == "json" else "a = " + "[" * 500_000
    result = outcome(text, form)
    assert isinstance(result, InvalidRequest | ScenarioError)


# -- size ------------------------------------------------------------------------------------


@FEW
@given(
    st.integers(MAX_DOCUMENT_BYTES - 2_000, MAX_DOCUMENT_BYTES + 2_000),
    st.sampled_from(["json", "toml"]),
    st.booleans(),
)
def test_a_document_longer_than_the_bound_is_refused_and_one_within_is_read(
    size: int, form: definition.Form, as_bytes: bool
) -> None:
    base = JSON if form == "json" else TOML
    padding = " " * (size - len(base))  # whitespace: the same document, only longer
    text = base + padding if form == "json" else base + "#" + padding[1:]
    result = outcome(text.encode() if as_bytes else text, form)
    if len(text) > MAX_DOCUMENT_BYTES:
        assert isinstance(result, LampoError)
        assert "longer" in str(result)
    else:
        assert isinstance(result, SaleEvent)


# -- numbers and types -----------------------------------------------------------------------

TOML_VALUES = st.one_of(
    st.integers().map(str),
    st.sampled_from(
        [
            "9" * 5_000,
            "-" + "9" * 4_000,
            "9223372036854775808",
            "1e400",
            "-inf",
            "nan",
            "0x7fffffffffffffff",
            "true",
            '""',
            '"' + "9" * 5_000 + '"',
            '"1e999999999"',
            '"99999999999999999999999999999.99"',
            "[]",
            "{}",
            "9999-12-31T23:59:59-05:00",
            "0001-01-01T00:00:00",
            "0001-01-01",
            "23:59:59",
            "[[[[1]]]]",
            "{ a = { b = 1 } }",
        ]
    ),
    st.floats(allow_nan=False).map(repr).filter(lambda t: "e" not in t or "." in t),
)
ASSIGNMENT = re.compile(r"^(\s*[A-Za-z0-9_-]+\s*=\s*)(.+)$", re.MULTILINE)
TOML_LINES = [m.start(2) for m in ASSIGNMENT.finditer(TOML)]


def replace_value(text: str, at: int, value: str) -> str:
    end = text.find("\n", at)
    line = text[at:end]
    # keep an inline table's first value only: "{ peak = 1, base = 2 }" -> its "peak" value
    if line.startswith("{"):
        inner = re.match(r"\{\s*([A-Za-z0-9_-]+)\s*=\s*([^,}]+)", line)
        if inner:
            start = at + inner.start(2)
            return text[:start] + value + text[at + inner.end(2) :]
    return text[:at] + value + text[end:]


@FEW
@given(st.lists(st.tuples(st.sampled_from(TOML_LINES), TOML_VALUES), min_size=1, max_size=3))
def test_any_toml_value_in_place_of_any_other_is_an_event_or_a_scenario_error(
    changes: list[tuple[int, str]],
) -> None:
    text = TOML
    for at, value in sorted(changes, reverse=True):  # from the end: offsets stay valid
        text = replace_value(text, at, value)
    result = outcome(text, "toml")
    assert isinstance(result, SaleEvent | ScenarioError)


JSON_VALUES = st.one_of(
    st.integers().map(str),
    st.sampled_from(
        ["9" * 5_000, "1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1.5", "true", "null"]
    ),
    st.sampled_from(['"' + "9" * 5_000 + '"', '"1e999999999"', '"9999-12-31T23:59:59-05:00"']),
    st.sampled_from(["[]", "{}", "[1, 2]", '{"a": 1}', '["1", "CNY"]', "[1e400, 1]"]),
)
JSON_VALUE_AT = [m.end() for m in re.finditer(r'": ', JSON)]


@FEW
@given(st.lists(st.tuples(st.sampled_from(JSON_VALUE_AT), JSON_VALUES), min_size=1, max_size=3))
def test_any_json_value_in_place_of_any_other_is_an_event_or_an_invalid_request(
    changes: list[tuple[int, str]],
) -> None:
    text = JSON
    for at, value in sorted(changes, reverse=True):
        end = at
        while end < len(text) and text[end] not in ",\n":
            end += 1
        if text[at] in "[{":  # a nested value: replace it whole
            end = _closing(text, at) + 1
        text = text[:at] + value + text[end:]
    result = outcome(text, "json")
    assert isinstance(result, SaleEvent | InvalidRequest)


def _closing(text: str, at: int) -> int:
    level = 0
    for i in range(at, len(text)):
        if text[i] in "[{":
            level += 1
        elif text[i] in "]}":
            level -= 1
            if level == 0:
                return i
    return len(text) - 1


@FEW
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_an_event_or_a_refusal(content: bytes) -> None:
    for form in definition.FORMS:
        assert isinstance(outcome(content, form), SaleEvent | LampoError)


# -- files -----------------------------------------------------------------------------------


def test_a_file_is_read_no_further_than_the_bound(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as out:
        out.truncate(50 * MAX_DOCUMENT_BYTES)  # sparse: 50 MiB of NUL, never read whole
    with pytest.raises(InvalidRequest) as caught:
        definition.read(big)
    assert "longer" in caught.value.problem
    with pytest.raises(ScenarioError) as refused:
        load(big)
    assert "longer" in refused.value.problem


@pytest.mark.parametrize("name", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_not_read(name: str) -> None:
    if not Path(name).exists():
        pytest.skip(f"no {name} here")
    with pytest.raises(InvalidRequest) as caught:
        definition.read(Path(name))
    assert caught.value.field == "file"
    with pytest.raises(ScenarioError):
        load(name)


def test_a_json_file_and_a_toml_file_are_told_apart_by_their_name(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text(JSON, encoding="utf-8")
    (tmp_path / "e.toml").write_text(TOML, encoding="utf-8")
    assert definition.read(tmp_path / "e.json") == sale_event()
    assert definition.read(tmp_path / "e.toml", 0.5) == loads(TOML, "e", 0.5).event
