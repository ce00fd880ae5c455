"""Hostile event definitions at every entry point that takes one: ``POST``/``PUT
/v1/admin/events``, ``lampo event load|update|allocate`` and ``lampo simulate FILE``.

Numbers beyond their bounds (allocations of 2**63 or 10**30, prices of 10**30, a
``hold_seconds`` of 10**12, an arrival rate of 1e300), documents nested thousands deep
or megabytes long: each is a clean refusal (400 problem+json over HTTP; one line on
stderr, exit 2, no traceback on the CLI) and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.bootstrap import open_storage
from lampo.domain.bounds import MAX_UNITS
from lampo.domain.codec import event_to_dict
from lampo.sim._limits import MAX_DOCUMENT_BYTES
from tests.e2e._cli import run
from tests.e2e._http import ADMIN_KEY, Server, live_event, running_server

pytestmark = [pytest.mark.sqlite, pytest.mark.timeout(300)]

FLASH = (resources.files("lampo.scenarios") / "flash-drop.toml").read_text(encoding="utf-8")
EVENT = live_event("hostile", {"phone-red": 5, "tv-55": 2})
GOOD = event_to_dict(EVENT)


def with_value(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    data: Any = json.loads(json.dumps(GOOD))
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return dict(data)


#: Out-of-bound numbers in the JSON form, each where the issue found it.
OUT_OF_BOUNDS = st.sampled_from(
    [
        (("offers", "phone-red", "allocation"), 2**63),
        (("offers", "phone-red", "allocation"), 10**30),
        (("offers", "phone-red", "allocation"), MAX_UNITS + 1),
        (("offers", "phone-red", "allocation"), -1),
        (("offers", "tv-55", "prices", "CN"), [10**30, "CNY"]),
        (("offers", "tv-55", "prices", "CN"), [2**63, "CNY"]),
        (("hold_seconds",), 10**12),
        (("hold_seconds",), 86_401),
        (("limit_per_customer",), 2**64),
        (("fx", "rates", "INR"), "1e999999999"),
        (("windows", "CN", "closes"), "9999-12-31T23:59:59-05:00"),
    ]
)


def nested(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


#: Documents that are not a usable definition at all: deep, huge, not JSON, wrong types.
BROKEN_JSON = st.one_of(
    st.integers(40, 20_000).map(lambda n: json.dumps(GOOD)[:-1] + f', "x": {nested(n)}}}'),
    st.integers(40, 100_000).map(lambda n: "[" * n + "]" * n),
    st.sampled_from(["[]", "null", "1e400", '"event"', "9" * 5_000, "{", ""]),
    st.sampled_from([json.dumps(GOOD).replace('"hold_seconds": 900', '"hold_seconds": "900"')]),
)


# -- HTTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("bounds")) as srv:
        assert srv.load(EVENT).status == 201
        yield srv


def events(server: Server) -> Any:
    reply = server.admin("GET", "/v1/admin/events")
    assert reply.status == 200
    return reply.json


def assert_refused(server: Server, reply: Any, before: Any) -> None:
    assert reply.status in (400, 413), reply.body[:300]
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json["reason"] in ("invalid-request", "invalid-scenario", "payload-too-large")
    assert events(server) == before
    assert server.stock(EVENT.id)["phone-red"]["allocation"] == 5


FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FEW
@given(OUT_OF_BOUNDS, st.booleans())
def test_a_json_upload_with_a_number_beyond_its_bound_is_refused_and_changes_nothing(
    server: Server, change: tuple[tuple[str | int, ...], object], as_new: bool
) -> None:
    before = events(server)
    path, value = change
    body = with_value(path, value)
    if as_new:
        body["id"] = "hostile-new"
        reply = server.admin("POST", "/v1/admin/events", body)
    else:
        reply = server.admin("PUT", f"/v1/admin/events/{EVENT.id}", body)
    assert_refused(server, reply, before)
    assert reply.json["detail"]


#: Out-of-bound numbers in a scenario file: (text in flash-drop.toml, its replacement).
TOML_OUT_OF_BOUNDS = st.sampled_from(
    [
        ("allocation = 40_000", f"allocation = {2**63 - 1}"),
        ("allocation = 40_000", f"allocation = {MAX_UNITS + 1}"),
        ("allocation = 40_000", "allocation = " + "9" * 5_000),
        ('"5999.00"', '"1000000000000000000000000000000.00"'),
        ("hold_seconds = 600", "hold_seconds = 1_000_000_000_000"),
        ("closes = 2014-09-02T14:30:00", "closes = 9999-12-31T23:59:59-05:00"),
        ("peak_per_second = 16_000", "peak_per_second = 1e300"),
    ]
)


@FEW
@given(TOML_OUT_OF_BOUNDS)
def test_a_toml_upload_with_a_number_beyond_its_bound_is_refused_and_changes_nothing(
    server: Server, change: tuple[str, str]
) -> None:
    before = events(server)
    toml = FLASH.replace(*change)
    reply = _raw(server, "POST", "/v1/admin/events", toml.encode(), "application/toml")
    assert_refused(server, reply, before)


def _raw(server: Server, method: str, path: str, body: bytes, media: str) -> Any:
    headers = {"X-API-Key": ADMIN_KEY, "Content-Type": media, "Idempotency-Key": uuid4().hex}
    return server.request(method, path, raw=body, headers=headers)


@FEW
@given(BROKEN_JSON, st.booleans())
def test_a_broken_json_upload_is_refused_and_changes_nothing(
    server: Server, text: str, as_new: bool
) -> None:
    before = events(server)
    if as_new:
        reply = _raw(server, "POST", "/v1/admin/events", text.encode(), "application/json")
    else:
        path = f"/v1/admin/events/{EVENT.id}"
        reply = _raw(server, "PUT", path, text.encode(), "application/json")
    assert_refused(server, reply, before)


@FEW
@given(st.integers(40, 100_000), st.sampled_from(["[", "{a = "]))
def test_a_deep_toml_upload_is_refused_and_changes_nothing(
    server: Server, levels: int, opening: str
) -> None:
    before = events(server)
    closing = "]" if opening == "[" else "}"
    toml = f"deep = {opening * levels}1{closing * levels}\n" + FLASH
    reply = _raw(server, "POST", "/v1/admin/events", toml.encode(), "application/toml")
    assert_refused(server, reply, before)


def test_an_upload_longer_than_the_document_bound_is_refused(server: Server) -> None:
    before = events(server)
    text = json.dumps(GOOD) + " " * MAX_DOCUMENT_BYTES
    reply = _raw(server, "POST", "/v1/admin/events", text.encode(), "application/json")
    assert_refused(server, reply, before)


def test_a_definition_at_every_bound_is_taken(server: Server) -> None:
    at_bounds = replace(
        live_event("at-bounds", {"phone-red": MAX_UNITS - 1, "tv-55": 1}),
        hold_seconds=86_400,
    )
    body = event_to_dict(at_bounds)
    body["offers"]["tv-55"]["prices"]["CN"] = [10_000_000_000, "CNY"]
    reply = server.admin("POST", "/v1/admin/events", body)
    assert reply.status == 201, reply.body
    assert server.stock("at-bounds")["phone-red"]["allocation"] == MAX_UNITS - 1


# -- the command line ------------------------------------------------------------------------

URL = "sqlite:///bounds.db"


def assert_one_line_refusal(code: int, out: str, err: str, *words: str) -> None:
    assert code == 2, out + err
    assert err.startswith("error:")
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in out + err
    for word in words:
        assert word in err


def stored_events() -> list[str]:
    store = open_storage(URL)
    try:
        return store.events()
    finally:
        store.close()


@pytest.fixture
def loaded(cli_sandbox: None, capsys: pytest.CaptureFixture[str]) -> None:
    Path("good.json").write_text(json.dumps(GOOD), encoding="utf-8")
    assert run(capsys, "event", "load", "good.json", "--storage", URL)[0] == 0


@pytest.mark.parametrize(
    ("path", "value", "word"),
    [
        (("offers", "phone-red", "allocation"), 2**63, "MAX_UNITS"),
        (("offers", "phone-red", "allocation"), 10**30, "MAX_UNITS"),
        (("offers", "tv-55", "prices", "CN"), [10**30, "CNY"], "MAX_MINOR_UNITS"),
        (("hold_seconds",), 10**12, "MAX_HOLD_SECONDS"),
    ],
    ids=["allocation-2^63", "allocation-10^30", "price-10^30", "hold-10^12"],
)
@pytest.mark.parametrize("command", ["load", "update"])
def test_event_load_and_update_refuse_a_number_beyond_its_bound_in_one_line(
    loaded: None,
    capsys: pytest.CaptureFixture[str],
    path: tuple[str | int, ...],
    value: object,
    word: str,
    command: str,
) -> None:
    body = with_value(path, value)
    if command == "load":
        body["id"] = "hostile-new"
    Path("bad.json").write_text(json.dumps(body), encoding="utf-8")
    assert_one_line_refusal(*run(capsys, "event", command, "bad.json", "--storage", URL), word)
    assert stored_events() == [EVENT.id]


@pytest.mark.parametrize(
    "content",
    [
        "[" * 100_000,
        json.dumps(GOOD)[:-1] + f', "x": {nested(5_000)}}}',
        "9" * 5_000,
    ],
    ids=["brackets", "deep-object", "5000-digits"],
)
@pytest.mark.parametrize("command", ["load", "update"])
def test_event_load_and_update_refuse_a_broken_json_file_in_one_line(
    loaded: None, capsys: pytest.CaptureFixture[str], content: str, command: str
) -> None:
    Path("bad.json").write_text(content, encoding="utf-8")
    assert_one_line_refusal(*run(capsys, "event", command, "bad.json", "--storage", URL))
    assert stored_events() == [EVENT.id]


@pytest.mark.parametrize("change", [f"phone-red={2**63}", f"phone-red=+{10**30}", "tv-55=-3"])
def test_event_allocate_refuses_an_allocation_beyond_its_bound_in_one_line(
    loaded: None, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    assert_one_line_refusal(*run(capsys, "event", "allocate", EVENT.id, change, "--storage", URL))
    store = open_storage(URL)
    try:
        assert store.stock(EVENT.id)["phone-red"].allocation == 5
    finally:
        store.close()


@pytest.mark.usefixtures("cli_sandbox")
@pytest.mark.parametrize(
    ("old", "new", "word"),
    [
        ("peak_per_second = 16_000", "peak_per_second = 1e300", "peak_per_second"),
        ("hold_seconds = 600", "hold_seconds = 1_000_000_000_000", "hold_seconds"),
        ("allocation = 40_000", f"allocation = {2**63 - 1}", "allocation"),
        ('"5999.00"', '"1000000000000000000000000000000.00"', "prices"),
        ("[crowd]", "deep = " + "[" * 50_000 + "]" * 50_000 + "\n[crowd]", "deeper"),
        ("pay_delay_seconds = 90", "pay_delay_seconds = inf", "pay_delay"),
    ],
    ids=["peak-1e300", "hold-10^12", "allocation-2^63", "price-10^30", "deep", "inf-delay"],
)
def test_simulate_refuses_a_scenario_beyond_its_bounds_in_one_line(
    capsys: pytest.CaptureFixture[str], old: str, new: str, word: str
) -> None:
    assert old in FLASH
    Path("bad.toml").write_text(FLASH.replace(old, new, 1), encoding="utf-8")
    result = run(capsys, "simulate", "bad.toml", "--storage", "sqlite:///sim.db")
    assert_one_line_refusal(*result, word)
    assert not Path("sim.db").exists()


@pytest.mark.usefixtures("cli_sandbox")
def test_simulate_refuses_a_run_beyond_the_budget_before_touching_storage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run(capsys, "simulate", "mi-2017q2", "--storage", "sqlite:///sim.db")
    assert_one_line_refusal(*result, "MAX_SIM_REQUESTS", "scale of 0.")
    assert not Path("sim.db").exists()
