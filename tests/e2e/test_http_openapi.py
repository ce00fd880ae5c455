"""Schemathesis against the OpenAPI document, with every check it has, in both modes.

Positive mode sends requests the document allows; negative mode sends requests that
break it (a value past a bound, a wrong type, a missing required header). Every answer
must then match the document (status, content type, headers, body) and no answer is a
5xx; schema-valid requests must be accepted and schema-breaking ones refused. The
document is the one the server serves (``lampo.web.openapi.spec``), each operation is its
own test, and it runs against ``lampo serve`` on SQLite and on Redis.

Where a check is wrong for lampo, for a documented reason, this file says so in
``CONFIG`` rather than skipping the check:

- A schema-valid request may still be refused for what no schema can know: an event,
  SKU, market or hold that does not exist (404, 422), a hold in the wrong state or
  sold out (409), an expired hold (410), a key used before with another body (422).
  ``positive_data_acceptance`` takes those statuses (docs/http-api.md, "Errors").
- The amount a buyer gives to pay must be the hold's: another amount is refused as
  ``invalid-request`` (400, field ``amount``), which no schema can foresee.
- An event definition upload is an object in the document (its form is the domain
  codec's, documented in docs/http-api.md), so a schema-valid object that is not a
  definition is refused with 400.
- JSON Schema counts ``3.0`` as an integer; lampo wants integers written as integers
  (quantities, amounts) and refuses ``3.0`` with 400 (docs/http-api.md, "Bounds"), so
  positive cases with such a float are not sent.
- A channel's ``name`` and ``referral``, a webhook's ``hold_id`` and ``payment_id`` are
  ids: printable text without spaces, in Unicode's sense, which the document's regular
  expressions cannot state (its schemas say so in words); positive cases that break that
  rule are not sent either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from lampo.web.auth import issue_token, sign_webhook
from lampo.web.openapi import spec
from tests.contract.conftest import REDIS, SQLITE, Backend
from tests.e2e._http import ADMIN_KEY, SECRET, WEBHOOK_SECRET, Server, live_event, running_server
from tests.hostile._stores import fresh_store

EXAMPLES = 25
BUYER = "schemathesis"
EVENT = "http-schema"

#: What the server refuses for reasons a schema cannot express (see the module docstring).
_SEMANTIC = ["2xx", "3xx", "401", "403", "404", "409", "410", "422", "429"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {"positive_data_acceptance": {"expected-statuses": _SEMANTIC}},
        "operations": [
            {
                "include-path": "/v1/admin/events",
                "checks": {"positive_data_acceptance": {"expected-statuses": [*_SEMANTIC, "400"]}},
            },
            {
                "include-path": "/v1/admin/events/{event_id}",
                "checks": {"positive_data_acceptance": {"expected-statuses": [*_SEMANTIC, "400"]}},
            },
            {
                "include-path": "/v1/holds/{hold_id}/pay",
                "checks": {"positive_data_acceptance": {"expected-statuses": [*_SEMANTIC, "400"]}},
            },
        ],
    }
)

#: Operations whose only inputs are fixed: negative mode has nothing to break in them.
_NOTHING_TO_BREAK = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/live"),
    ("GET", "/results"),
}
RUNS = [
    pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path}-{mode.value}")
    for path, ops in spec()["paths"].items()
    for method in ops
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or (method.upper(), path) not in _NOTHING_TO_BREAK
]


@schemathesis.serializer("application/toml")
def _toml(ctx: Any, value: Any) -> bytes:
    return str(value).encode()


@dataclass
class Served:
    server: Server
    held: str
    paid: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(SQLITE, marks=pytest.mark.sqlite, id="sqlite"),
        pytest.param(REDIS, marks=pytest.mark.redis, id="redis"),
    ],
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    backend: Backend = request.param
    tmp = tmp_path_factory.mktemp(f"schema-{backend.name}")
    # the store is opened here first to see that its server is there (or skip loudly)
    with fresh_store(backend, tmp) as (_, url), running_server(tmp, storage=url) as server:
        server.load(live_event(EVENT, {"phone-red": 100_000}))
        held = server.reserve(BUYER, EVENT, {"phone-red": 1}).json["id"]
        paid = server.reserve(BUYER, EVENT, {"phone-red": 1}).json["id"]
        assert server.pay(BUYER, paid).status == 200
        yield Served(server, held, paid)


def _has_integral_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_has_integral_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_integral_float(v) for v in value)
    return False


#: Body fields that are ids: printable, without spaces (see the module docstring).
_IDS = {"name", "referral", "hold_id", "payment_id"}


def _breaks_a_documented_rule(body: Any) -> bool:
    """Whether ``body`` breaks a rule the document states only in words (see the module
    docstring): an integer written as a float, or an id field that is not an id."""
    if _has_integral_float(body):
        return True
    if not isinstance(body, dict):
        return False
    fields = [*body.items(), *(body.get("channel") or {}).items()]
    return any(
        k in _IDS and isinstance(v, str) and v and (not v.isprintable() or " " in v)
        for k, v in fields
    )


def _cases(operation: Any, mode: GenerationMode, served: Served) -> st.SearchStrategy[Any]:
    """Generated cases; in positive mode, half of them name the live event and holds that
    exist, so they get past the lookups to the code behind them."""
    cases = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.NEGATIVE:
        return cases
    names = {p.name for p in operation.path_parameters}
    if names:
        existing = st.fixed_dictionaries(
            {"event_id": st.just(EVENT), "hold_id": st.sampled_from((served.held, served.paid))}
        ).map(lambda known: {k: v for k, v in known.items() if k in names})
        cases = st.one_of(
            cases,
            existing.flatmap(
                lambda known: operation.as_strategy(generation_mode=mode, path_parameters=known)
            ),
        )
    return cases.filter(lambda case: not _breaks_a_documented_rule(case.body))


def _call(case: Any, served: Served, headers: dict[str, str]) -> Any:
    """Send ``case``; a webhook is signed over the exact bytes sent, as a provider would
    (unless negative mode broke its headers on purpose: then they go as generated)."""
    if case.operation.path != "/v1/webhooks/payments":
        return case.call_and_validate(base_url=served.base_url, headers=headers)
    sent = case.as_transport_kwargs(base_url=served.base_url, headers=headers)
    body = json.dumps(sent["json"]).encode() if "json" in sent else sent.get("data") or b""
    if isinstance(body, str):
        body = body.encode()
    signed = dict(headers)
    header_info = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    if header_info is None or not header_info.mode.is_negative:
        signed["Lampo-Signature"] = sign_webhook(WEBHOOK_SECRET.encode(), body)
    return case.call_and_validate(base_url=served.base_url, headers=signed, data=body, json=None)


@pytest.fixture(scope="module")
def api() -> Any:
    return schemathesis.openapi.from_dict(spec(), config=CONFIG)


@pytest.mark.parametrize(("method", "path", "mode"), RUNS)
def test_every_operation_answers_as_its_openapi_document_says(
    api: Any, served: Served, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api[path][method]
    headers = {
        "Authorization": f"Bearer {issue_token(SECRET.encode(), BUYER)}",
        "X-API-Key": ADMIN_KEY,
    }

    @given(case=_cases(operation, mode, served))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        _call(case, served, headers)

    check()
