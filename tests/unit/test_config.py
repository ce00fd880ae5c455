"""Every setting declared once (``lampo.config``) and read once: flags over the environment
over the defaults, every value through its declaration's parser and bound, and the
configuration objects built from the same declarations."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lampo import config
from lampo.bootstrap import Config
from lampo.config import (
    ALL,
    ENGINE,
    SECRETS,
    SERVE,
    SOLDOUT_TTL,
    WEB,
    Choice,
    FilePath,
    Real,
    Setting,
    Switch,
    Text,
    Whole,
    read,
)
from lampo.domain.errors import InvalidRequest
from lampo.web.config import WebConfig

DOCS = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"
#: Settings whose values ``read`` takes (the secrets are read by ``WebConfig``).
READABLE = [s for s in ALL if not s.secret]
NUMBERS = [s for s in READABLE if isinstance(s.kind, Real | Whole)]
SECRET_ENV = {s.env: f"{s.name}-0123456789abcdef0123456789abcdef" for s in SECRETS}
no_nul = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]))


def values(setting: Setting[Any]) -> st.SearchStrategy[Any]:
    """Values ``setting`` takes: within its bound, and past its check."""
    kind = setting.kind
    if setting is config.STORAGE:
        return st.sampled_from(["memory://", "sqlite:///sale.db", "redis://127.0.0.1:6379/3"])
    if setting in (config.RUN_DIR, config.METRICS_DIR):
        return st.sampled_from(["", str(Path(__file__).parent)])
    if isinstance(kind, Real):
        return st.floats(kind.low, kind.high, allow_nan=False)
    if isinstance(kind, Whole):
        return st.integers(kind.low, kind.high)
    if isinstance(kind, Switch):
        return st.booleans()
    if isinstance(kind, Choice):
        return st.sampled_from(kind.values)
    if isinstance(kind, FilePath):
        return no_nul.filter(bool).map(Path)
    assert isinstance(kind, Text)
    return no_nul.filter(lambda t: len(t) >= kind.least)


def set_in_environment(setting: Setting[Any]) -> st.SearchStrategy[Any]:
    """Values ``setting`` takes that its variable can hold (empty is unset)."""
    return values(setting).filter(lambda v: setting.kind.text(v) != "")


@given(data=st.data(), server=st.booleans())
def test_a_flag_wins_over_the_variable_which_wins_over_the_default(
    data: st.DataObject, server: bool
) -> None:
    for setting in READABLE:
        flag = data.draw(st.none() | values(setting), label=f"flag {setting.name}")
        var = data.draw(st.none() | set_in_environment(setting), label=setting.env)
        env = {} if var is None else {setting.env: setting.kind.text(var)}
        found = read([setting], env, {setting.name: flag}, server=server)[setting]
        if flag is not None:
            assert found == flag
        elif var is not None:
            assert found == var
        else:
            assert found == setting.default_for(server)


@given(data=st.data())
def test_what_serve_reads_its_workers_read_back_from_their_environment(
    data: st.DataObject,
) -> None:
    """``lampo serve`` hands its values to the workers as their variables: whatever came
    from flags, the environment or the defaults, each worker reads the same."""
    flags = {s.name: data.draw(st.none() | values(s), label=s.name) for s in SERVE}
    env = {
        s.env: s.kind.text(data.draw(set_in_environment(s), label=s.env))
        for s in SERVE
        if data.draw(st.booleans(), label=f"{s.env} set")
    }
    found = read(SERVE, env, flags, server=True)
    again = read(SERVE, found.environment(SERVE), server=True)
    assert again.values(SERVE) == found.values(SERVE)


#: What a number setting's variable may hold: ASCII digits, a sign, a decimal point and an
#: exponent for the non-whole ones (never other scripts' digits, underscores or spaces).
WHOLE_TEXT = re.compile(r"[+-]?[0-9]+")
REAL_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


@given(
    setting=st.sampled_from(NUMBERS),
    text=st.one_of(no_nul, st.from_regex(r"-?[0-9.e+٣]{1,12}", fullmatch=True)),
)
def test_a_number_is_ascii_and_within_its_bound_or_refused_naming_its_variable(
    setting: Setting[Any], text: str
) -> None:
    kind = setting.kind
    assert isinstance(kind, Real | Whole)
    whole = isinstance(kind, Whole)
    written = (WHOLE_TEXT if whole else REAL_TEXT).fullmatch(text) and len(text) <= 40
    number = (int(text) if whole else float(text)) if written else None
    if text == "":  # empty is unset: the default
        assert read([setting], {setting.env: text})[setting] == setting.default
    elif number is not None and kind.low <= number <= kind.high:
        assert read([setting], {setting.env: text})[setting] == number
    else:
        with pytest.raises(InvalidRequest) as refused:
            read([setting], {setting.env: text})
        assert refused.value.field == setting.env


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.env)
def test_a_number_just_past_either_end_of_its_bound_is_refused(setting: Setting[Any]) -> None:
    kind = setting.kind
    assert isinstance(kind, Real | Whole)
    step = 1 if isinstance(kind, Whole) else 0.001
    for outside in (kind.low - step, kind.high + step):
        with pytest.raises(InvalidRequest) as refused:
            read([setting], {setting.env: str(outside)})
        assert refused.value.field == setting.env
        assert kind.bound in refused.value.problem


@pytest.mark.parametrize("setting", READABLE, ids=lambda s: s.env)
def test_every_default_is_a_value_its_own_declaration_takes(setting: Setting[Any]) -> None:
    for server in (False, True):
        default = setting.default_for(server)
        assert setting.kind.parse(setting.kind.text(default), setting.env) == default
        if setting.check is not None:
            setting.check(default, setting.env)


def test_the_configuration_objects_take_their_names_and_defaults_from_the_declarations() -> None:
    config_defaults = {f.name: f.default for f in fields(Config)}
    for setting in ENGINE:
        if setting is not config.STORAGE:  # a Config names its storage, always
            assert config_defaults[setting.name] == setting.default
    web_defaults = {f.name: f.default for f in fields(WebConfig)}
    for setting in WEB:
        assert web_defaults[setting.name] == setting.default, setting.name


def test_soldout_ttl_is_said_once_zero_for_the_library_and_one_second_in_the_server() -> None:
    assert (SOLDOUT_TTL.default, SOLDOUT_TTL.server_default) == (0.0, 1.0)
    assert Config.from_env({}).soldout_ttl == 0.0
    assert Config("memory://").soldout_ttl == 0.0
    served = WebConfig.from_env({**SECRET_ENV, "LAMPO_STORAGE": "memory://"})
    assert served.engine.soldout_ttl == 1.0
    assert WebConfig.from_env({**SECRET_ENV, "LAMPO_SOLDOUT_TTL": "0"}).engine.soldout_ttl == 0


def test_the_server_reads_every_web_setting_from_its_environment() -> None:
    env = {**SECRET_ENV, "LAMPO_BUYER_BURST": "7", "LAMPO_WEBHOOK_TOLERANCE": "60"}
    built = WebConfig.from_env(env)
    assert (built.buyer_burst, built.webhook_tolerance, built.ip_burst) == (7, 60, 4000)


def test_secrets_never_leave_as_text_nor_have_a_flag() -> None:
    built = WebConfig.from_env(SECRET_ENV)
    shown = repr(built)
    for secret in SECRET_ENV.values():
        assert secret not in shown
    assert all(s.option is None for s in SECRETS)
    found = read(SERVE, {**SECRET_ENV})
    assert not set(found.environment(ALL)) & set(SECRET_ENV)


def test_a_short_secret_is_refused_naming_its_variable() -> None:
    with pytest.raises(InvalidRequest) as refused:
        WebConfig.from_env({**SECRET_ENV, "LAMPO_ADMIN_KEY": "too-short"})
    assert refused.value.field == "LAMPO_ADMIN_KEY"


def test_a_name_no_setting_has_is_a_bug_not_a_silent_default() -> None:
    with pytest.raises(TypeError, match="soldout"):
        Config.from_env({}, soldout=1.0)


def test_the_docs_settings_table_is_written_from_the_declarations() -> None:
    assert config.markdown_table() in DOCS.read_text(encoding="utf-8"), (
        "docs/http-api.md's settings table differs from lampo.config.markdown_table(); "
        "paste its output between the settings markers"
    )
