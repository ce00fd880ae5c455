"""Hostile targets files: ``[[network_targets]]`` with any values at all is either read into
targets within their bounds or refused with ``ImportFileError`` naming the file, never
anything else (``services/imports.py``)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampo.domain.bounds import EARLIEST, LATEST
from lampo.domain.period import MAX_NETWORK_TARGET
from lampo.domain.stores import MAX_STORES
from lampo.services.imports import MAX_NETWORK_TARGETS, ImportFileError, targets


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | date):
        return str(value) if isinstance(value, int) else value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


values = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-2, MAX_NETWORK_TARGET + 2),
    st.booleans(),
    st.floats(),
    st.dates(),
    st.text(max_size=80),
    st.sampled_from(["CN", "IN", "", " ", "C N", "x" * 9, "2030-01-01"]),
)
keys = st.sampled_from(["label", "stores", "by", "market", "from", "city", "Stores", ""])
tables = st.lists(st.dictionaries(keys, values, max_size=6), max_size=4)


def text_of(items: list[dict[str, Any]]) -> str:
    out = []
    for table in items:
        out.append("[[network_targets]]")
        out.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("targets")


@settings(max_examples=300, deadline=None)
@given(items=tables)
def test_any_network_target_is_read_within_its_bounds_or_refused_naming_the_file(
    folder: Path, items: list[dict[str, Any]]
) -> None:
    path = folder / "targets.toml"
    path.write_text(text_of(items), encoding="utf-8")
    refused: ImportFileError | None = None
    try:
        read = targets(path)
    except ImportFileError as err:
        refused = err
    if refused is not None:
        assert refused.file == str(path)
        return
    assert read.targets == []
    assert len(read.network) == len(items) > 0
    for t, raw in zip(read.network, items, strict=True):
        assert set(raw) <= {"label", "stores", "by", "market", "from"}
        assert t.since is None or t.since <= t.by
        assert 1 <= t.stores <= MAX_NETWORK_TARGET
        assert not isinstance(raw["stores"], bool)
        assert EARLIEST.date() <= t.by < LATEST.date()
        assert t.label == raw["label"]
        assert t.label
        assert " " not in t.market


def test_the_network_bound_is_the_store_registrys() -> None:
    assert MAX_NETWORK_TARGET == MAX_STORES


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('label = "x"\nstores = 0\nby = 2020-01-01', "network_targets[0].stores must be from 1"),
        ('label = "x"\nstores = 100_001\nby = 2020-01-01', "MAX_NETWORK_TARGET"),
        ('label = "x"\nstores = true\nby = 2020-01-01', "stores must be a whole number"),
        ('label = "x"\nstores = 10\nby = "2020-01-01"', "by must be a date"),
        ('label = "x"\nstores = 10\nby = 2020-01-01\nmarkt = "CN"', "unknown key(s) 'markt'"),
        ("stores = 10\nby = 2020-01-01", "network_targets[0].label must be a non-empty"),
    ],
)
def test_a_bad_network_target_is_refused_with_its_place_and_reason(
    tmp_path: Path, body: str, problem: str
) -> None:
    path = tmp_path / "t.toml"
    path.write_text(f"[[network_targets]]\n{body}\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r".") as caught:
        targets(path)
    assert problem in str(caught.value)


def test_more_network_targets_than_the_bound_are_refused(tmp_path: Path) -> None:
    one = '[[network_targets]]\nlabel = "x"\nstores = 1\nby = 2020-01-01\n'
    path = tmp_path / "t.toml"
    path.write_text(one * (MAX_NETWORK_TARGETS + 1), encoding="utf-8")
    with pytest.raises(ImportFileError, match="more than 1000"):
        targets(path)
