"""Storage URLs under hostile input (issue 10, item 11): every part and option is checked
against its backend's declaration (``lampo.storage.urls``) before anything connects."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lampo import storage
from lampo.domain.errors import InvalidRequest
from lampo.storage import from_url, urls
from lampo.storage.urls import (
    MAX_REDIS_DB,
    Backend,
    Choice,
    Identifier,
    Integer,
    NestedUrl,
    Option,
    Text,
)
from tests.factories import sale_event
from tests.hostile._cli import assert_one_line_or_success, run
from tests.hostile.strategies_cli import hostile_text, number_text, storage_urls

README = Path(__file__).resolve().parents[2] / "README.md"
REDIS = os.environ.get("LAMPO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = list(dict.fromkeys(urls.BACKENDS.values()))
SERVERS = [b for b in BACKENDS if b.name != "memory"]


# -- strategies built from the declarations ---------------------------------------------
def valid_values(kind: object) -> st.SearchStrategy[tuple[str, object]]:
    """(text in the URL, the value it means) for every valid value of ``kind``."""
    if isinstance(kind, Integer):
        return st.integers(kind.low, kind.high).map(lambda n: (str(n), n))
    if isinstance(kind, Choice):
        return st.sampled_from(kind.words).flatmap(
            lambda w: st.sampled_from([w, w.lower(), w.title()]).map(lambda t: (t, w))
        )
    if isinstance(kind, Text):
        chars = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters=kind.forbidden)
        return st.text(chars, max_size=kind.longest).filter(str.isprintable).map(lambda t: (t, t))
    if isinstance(kind, Identifier):
        return st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,62}", fullmatch=True).map(lambda t: (t, t))
    if isinstance(kind, NestedUrl):
        return valid_urls(urls.BACKENDS[kind.backend]).map(lambda u: (u[0], u[0]))
    raise AssertionError(kind)


def invalid_values(kind: object) -> st.SearchStrategy[str]:
    """Texts ``kind`` must refuse."""
    if isinstance(kind, Integer):
        inside = st.integers(kind.low, kind.high)
        return st.one_of(
            st.integers(max_value=kind.low - 1).map(str),
            st.integers(min_value=kind.high + 1).map(str),
            inside.map(lambda n: f"+{n}"),
            inside.map(lambda n: f" {n}"),
            inside.map(lambda n: f"{n}.0"),
            inside.map(lambda n: f"1_{n}"),
            inside.map(lambda n: str(n).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))),
            st.sampled_from(["", "1e3", "0x1", "nan", "9" * 30]),
        )
    if isinstance(kind, Choice):
        return hostile_text.filter(lambda t: t.upper() not in kind.words)
    if isinstance(kind, Text):
        return st.one_of(
            st.text(min_size=kind.longest + 1, max_size=kind.longest + 20),
            st.sampled_from(["\n", "\x00", "a\x1b[2J", "\u2028"]),
            *([st.sampled_from(list(kind.forbidden))] if kind.forbidden else []),
        )
    if isinstance(kind, Identifier):
        return st.one_of(
            st.sampled_from(["", "1abc", "a-b", "a b", "a;drop", "é", "a" * 64]),
            hostile_text.filter(lambda t: not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", t)),
        )
    if isinstance(kind, NestedUrl):
        return st.sampled_from(["", "redis://127.0.0.1/0", "postgresql://h/db?schema=1x", "x"])
    raise AssertionError(kind)


def addresses(backend: Backend) -> st.SearchStrategy[tuple[str, dict[str, object]]]:
    """(what follows ``scheme://`` up to the query, the address it names)."""
    host = st.sampled_from(["127.0.0.1", "localhost", "[::1]", "db-1.example.com", "redis_1"])
    port = st.integers(1, 65_535)
    if backend.name == "memory":
        return st.just(("", {}))
    if backend.name == "sqlite":
        return st.from_regex(r"/?[a-z0-9_][a-z0-9_.-]{0,20}\.db", fullmatch=True).map(
            lambda p: (f"/{p}", {"path": p})
        )
    if backend.name == "postgresql":
        return st.tuples(host, port, st.from_regex(r"[a-z_]{1,20}", fullmatch=True)).map(
            lambda t: (f"postgres@{t[0]}:{t[1]}/{t[2]}", {})
        )
    db = st.just(0) if backend.name == "redis+cluster" else st.integers(0, MAX_REDIS_DB)
    return st.tuples(host, port, db).map(lambda t: (f"{t[0]}:{t[1]}/{t[2]}", {"db": t[2]}))


@st.composite
def valid_urls(draw: st.DrawFn, backend: Backend) -> tuple[str, dict[str, object], dict]:
    """(a valid URL of ``backend``, the options it sets, the address it names)."""
    scheme = draw(st.sampled_from(backend.schemes))
    rest, address = draw(addresses(backend))
    chosen = (
        draw(st.lists(st.sampled_from(backend.options), unique=True)) if backend.options else []
    )
    required = [o for o in backend.options if o.required and o not in chosen]
    pairs: list[tuple[str, str]] = []
    values: dict[str, object] = {}
    for option in [*chosen, *required]:
        text, value = draw(valid_values(option.kind))
        pairs.append((option.name, text))
        values[option.name] = value
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs)
    return f"{scheme}://{rest}" + (f"?{query}" if query else ""), values, address


def _option_of(backends: list[Backend]) -> st.SearchStrategy[tuple[Backend, Option]]:
    return st.sampled_from([(b, o) for b in backends for o in b.options])


# -- the checks, without a server ----------------------------------------------------------
@given(st.sampled_from(BACKENDS).flatmap(valid_urls))
def test_a_valid_url_means_what_it_says(case: tuple[str, dict[str, object], dict]) -> None:
    url, values, address = case
    checked = urls.parse(url)
    for option in checked.backend.options:
        assert checked.options[option.name] == values.get(option.name, option.default)
    for name, value in address.items():
        assert getattr(checked.address, name) == value
    passed_on = {k for k, _ in parse_qsl(urlsplit(checked.target).query)}
    assert not passed_on & set(checked.options)  # lampo's options never reach the driver


@given(
    _option_of(BACKENDS).flatmap(
        lambda bo: st.tuples(st.just(bo), valid_urls(bo[0]), invalid_values(bo[1].kind))
    )
)
def test_a_malformed_option_value_is_refused_naming_it_and_the_valid_options(
    case: tuple[tuple[Backend, Option], tuple[str, dict[str, object], dict], str],
) -> None:
    (backend, option), (url, _, _), bad = case
    base = re.sub(rf"([?&]){re.escape(option.name)}=[^&]*&?", r"\1", url).rstrip("?&")
    sep = "&" if "?" in base else "?"
    with_it = f"{base}{sep}{option.name}={quote(bad, safe='')}"
    assume(len(with_it) <= urls.MAX_URL_LENGTH)  # else refused for its length
    with pytest.raises(InvalidRequest) as refused:
        urls.parse(with_it)
    if isinstance(option.kind, NestedUrl):  # the nested URL's own part is named
        return
    assert refused.value.field == option.name
    for valid in backend.options:
        assert valid.name in refused.value.problem


@given(
    st.sampled_from(BACKENDS).flatmap(valid_urls),
    st.one_of(st.sampled_from(["db", "password", "socket_timeout", "PREFIX", ""]), hostile_text),
)
def test_an_unknown_option_is_refused_with_the_list_of_valid_ones(
    case: tuple[str, dict[str, object], dict], name: str
) -> None:
    url, _, _ = case
    backend = urls.parse(url).backend
    libpq = backend.passthrough() if backend.passthrough else frozenset()
    assume(name not in backend.option and name not in libpq)
    sep = "&" if "?" in url else "?"
    with_it = f"{url}{sep}{quote(name, safe='')}=1"
    assume(len(with_it) <= urls.MAX_URL_LENGTH)  # else refused for its length
    with pytest.raises(InvalidRequest) as refused:
        urls.parse(with_it)
    problem = refused.value.problem
    assert f"unknown option {name[:60]!r}" in problem
    for valid in backend.options:
        assert valid.name in problem


@given(st.one_of(st.text(), storage_urls(), hostile_text))
def test_any_text_is_a_storage_url_or_a_clear_refusal(text: str) -> None:
    refusal: InvalidRequest | None = None
    try:
        checked = urls.parse(text)
    except InvalidRequest as refused:
        refusal = refused
    if refusal is None:
        assert checked.backend is urls.BACKENDS[checked.scheme]
    else:
        assert refusal.field
        assert "\n" not in str(refusal)


@given(number_text)
def test_a_redis_database_is_a_whole_number_in_the_path_or_refused(text: str) -> None:
    url = f"redis://127.0.0.1:6379/{quote(text, safe='')}"
    if not text:
        assert urls.parse(url).address.db == 0  # redis://HOST:PORT/ names the default
    elif re.fullmatch(r"[0-9]{1,10}", text) and int(text) <= MAX_REDIS_DB:
        assert urls.parse(url).address.db == int(text)
    else:
        with pytest.raises(InvalidRequest, match=r"database|at most 4,096"):
            urls.parse(url)


def test_the_issue_s_url_is_refused_rather_than_read_as_database_zero() -> None:
    with pytest.raises(InvalidRequest, match="database 'abc' is not a whole number"):
        from_url("redis://127.0.0.1:6379/abc")


@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8))
def test_a_password_never_appears_in_a_redacted_url(password: str) -> None:
    secret = quote(password, safe="")
    url = f"redis://lampo:{secret}@127.0.0.1:6379/0"
    nested = f"postgresql://lampo:{secret}@127.0.0.1:5432/db"
    combined = f"redis+postgresql://127.0.0.1:6379/0?pg={quote(nested, safe='')}"
    assert secret not in urls.redact(url)
    assert quote(secret, safe="") not in urls.redact(combined)
    assert urls.redact(url).startswith("redis://lampo:***@127.0.0.1")


def test_the_readme_shows_the_declared_options_and_bounds() -> None:
    assert urls.markdown_table() in README.read_text(encoding="utf-8"), (
        "README.md's storage URL tables differ from lampo.storage.urls.markdown_table(); "
        "paste its output between the storage-url-options markers"
    )


def test_every_declared_backend_can_be_opened_and_every_opener_is_declared() -> None:
    assert set(storage.BACKENDS) == {b.name for b in BACKENDS}


# -- the command line ----------------------------------------------------------------------
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=storage_urls(ports=(1, 6379)))
def test_any_storage_url_gets_an_answer_or_one_line_from_the_command(
    url: str, capsys: pytest.CaptureFixture[str], sandbox: Path
) -> None:
    done = run(capsys, ["stock", "--storage", url])
    assert_one_line_or_success(done)
    if done.code == 2:
        assert done.err.startswith("error: invalid "), done.err


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(db=number_text.filter(lambda t: t != "" and not re.fullmatch("[0-9]{1,10}", t)))
def test_the_command_refuses_a_redis_database_that_is_not_a_number(
    db: str, capsys: pytest.CaptureFixture[str], sandbox: Path
) -> None:
    done = run(capsys, ["stock", "--storage", f"redis://127.0.0.1:6379/{quote(db, safe='')}"])
    assert done.code == 2
    assert done.err.startswith(
        ("error: invalid storage: redis:// database", "error: invalid storage: the URL is")
    )
    assert len(done.err.splitlines()) == 1


# -- against the Redis server --------------------------------------------------------------
def _redis_client(db: int) -> object:
    import redis

    parts = urlsplit(REDIS)
    return redis.Redis(host=parts.hostname, port=parts.port or 6379, db=db)


@pytest.fixture
def redis_server() -> str:
    """host:port of the test Redis; skip loudly without it (fail when CI=true)."""
    try:
        client = _redis_client(0)
        client.ping()  # type: ignore[attr-defined]
        client.close()  # type: ignore[attr-defined]
    except Exception as exc:
        message = f"Redis at {REDIS} unavailable ({exc}): the storage URL tests did NOT run"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " and CI=true requires it")
        pytest.skip(message)
    return urlsplit(REDIS).netloc


@pytest.mark.redis
@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(db=st.integers(1, 15))
def test_a_redis_url_s_database_number_is_the_database_written(redis_server: str, db: int) -> None:
    prefix = f"lampo-test-{uuid.uuid4().hex[:12]}:"
    store = from_url(f"redis://{redis_server}/{db}?prefix={prefix}")
    here, zero = _redis_client(db), _redis_client(0)
    try:
        store.setup(sale_event())
        assert list(here.scan_iter(match=prefix + "*"))  # type: ignore[attr-defined]
        assert not list(zero.scan_iter(match=prefix + "*"))  # type: ignore[attr-defined]
    finally:
        store.close()
        for key in here.scan_iter(match=prefix + "*"):  # type: ignore[attr-defined]
            here.delete(key)  # type: ignore[attr-defined]
        here.close()  # type: ignore[attr-defined]
        zero.close()  # type: ignore[attr-defined]


@pytest.mark.redis
@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(db=st.integers(16, MAX_REDIS_DB))
def test_a_database_beyond_the_server_s_count_is_refused_and_nothing_written(
    redis_server: str, db: int
) -> None:
    info = _redis_client(0)
    count = int(info.config_get("databases")["databases"])  # type: ignore[attr-defined]
    info.close()  # type: ignore[attr-defined]
    assume(db >= count)
    prefix = f"lampo-test-{uuid.uuid4().hex[:12]}:"
    with pytest.raises(InvalidRequest, match="DB index is out of range"):
        from_url(f"redis://{redis_server}/{db}?prefix={prefix}")
    zero = _redis_client(0)
    assert not list(zero.scan_iter(match=prefix + "*"))  # type: ignore[attr-defined]
    zero.close()  # type: ignore[attr-defined]


def test_a_sqlite_file_whose_name_holds_a_space_is_still_a_storage_url(
    capsys: pytest.CaptureFixture[str], sandbox: Path
) -> None:
    url = "sqlite:///my sale.db"
    done = run(capsys, ["simulate", "flash-drop", "--scale", "0.01", "--storage", url])
    assert done.code == 0, done.err
    assert (sandbox / "my sale.db").is_file()
