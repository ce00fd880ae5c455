"""How the Redis store's scripts are packaged and sent (storage/redis/scripts.py), without
a server: the library of functions built from the unedited .lua files, and the writer's
direct connection packing exactly the bytes redis-py would."""

from __future__ import annotations

import re

import pytest
from hiredis import pack_command
from hypothesis import given
from hypothesis import strategies as st
from redis.connection import Connection

from lampo.storage.redis import scripts
from lampo.storage.redis.scripts import SCRIPTS, _split_lib, library_name, library_text


def test_the_library_registers_one_function_per_script_under_its_own_name() -> None:
    text = library_text()
    name = library_name()
    assert text.startswith(f"#!lua name={name}\n")
    assert re.fullmatch(r"lampo_[0-9a-f]{16}", name)
    registered = re.findall(r"redis\.register_function\('([^']+)', lampo_(\w+)\)", text)
    assert registered == [(f"{name}_{script}", script) for script in SCRIPTS]


def test_every_script_body_is_in_the_library_unchanged_after_the_state_reset() -> None:
    text = library_text()
    for script in SCRIPTS:
        body = scripts._read(f"{script}.lua")
        wrapped = f"local function lampo_{script}(KEYS, ARGV)\nlampo_reset(KEYS)\n{body}\nend"
        assert wrapped in text


def test_the_shipped_lib_keeps_its_functions_once_and_resets_all_of_its_state() -> None:
    lib = scripts._read("_lib.lua")
    once, each = _split_lib(lib)
    for name in re.findall(r"^local function (\w+)", lib, re.M):
        assert f"local function {name}(" in once
    state = re.findall(r"^local (?!function )([\w, ]+?)\s*=(.*)", lib, re.M)
    assert state
    for names, value in state:
        if re.fullmatch(r"\s*\{.*|.*\b(KEYS|base|nil)\b.*", value):  # a table, the call's keys
            assert f"local {names}\n" in once + "\n"
            assert re.search(rf"^{re.escape(names)} = ", each, re.M)  # set on every call
        elif re.fullmatch(r"\s*[-\d., ]+(--.*)?", value):  # numbers: set once
            assert f"local {names} =" in once
            assert not re.search(rf"^{re.escape(names)} = ", each, re.M)
    for table in ("B", "DIRTY", "HOLDS", "USES", "KINDS", "broken_found", "K_STOCK"):
        assert re.search(rf"^{table} = ", each, re.M)  # what a call changes starts afresh


def test_a_lib_is_split_into_what_is_defined_once_and_what_is_set_on_every_call() -> None:
    lib = "\n".join(
        [
            "-- a comment",
            "local SEP, N = '\\31', -2  -- constants",
            "local find = string.find",  # Lua's libraries: not while the library loads
            "local base = KEYS[1]",
            "local A, B = {}, 2  -- trailing",
            "local T = {",
            "  {base, 'hash'},",
            "}",
            "local NONE",
            "",
            "local function f(x)",
            "  if x then",
            "    return A",
            "  end",
            "end",
        ]
    )
    once, each = _split_lib(lib)
    assert once.split("\n") == [
        "-- a comment",
        "local SEP, N = '\\31', -2  -- constants",
        "local find",
        "local base",
        "local A, B",
        "local T",
        "local NONE",
        "",
        "local function f(x)",
        "  if x then",
        "    return A",
        "  end",
        "end",
    ]
    assert each.split("\n") == [
        "find = string.find",
        "base = KEYS[1]",
        "A, B = {}, 2  -- trailing",
        "T = {",
        "  {base, 'hash'},",
        "}",
        "NONE = nil",
    ]


@pytest.mark.parametrize(
    "lib",
    [
        "x = 1",  # a global
        "redis.call('GET', 'k')",  # a call at the top level
        "local function f()\n  return 1\n  end",  # no 'end' at column 0
        "local 1x = 2",
    ],
)
def test_a_lib_with_a_top_level_shape_the_builder_does_not_know_fails_the_build(
    lib: str,
) -> None:
    with pytest.raises(ValueError, match=r"_lib\.lua line"):
        _split_lib(lib)


ARG = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
)


@given(st.lists(ARG, min_size=0, max_size=30))
def test_the_direct_connection_packs_the_bytes_redis_py_would(args: list[object]) -> None:
    command = ("FCALL", "lampo_0123456789abcdef_reserve", 1, "{ev}", *args)
    assert pack_command(command) == b"".join(Connection().pack_commands([command]))
