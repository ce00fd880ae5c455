"""Schemathesis against the OpenAPI document: generated requests to every operation get
no 5xx, and every answer matches the document (status, content type, headers, body).

The document is the one the server serves (``lampo.web.openapi.spec``); each operation is
its own test, driven by hypothesis with a small example budget to keep CI fast.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from lampo.web.auth import issue_token
from lampo.web.openapi import spec
from tests.e2e._http import ADMIN_KEY, SECRET, Server, live_event

pytestmark = pytest.mark.sqlite

EXAMPLES = 25
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
OPERATIONS = [(method.upper(), path) for path, ops in spec()["paths"].items() for method in ops]


@schemathesis.serializer("application/toml")
def _toml(ctx: Any, value: Any) -> bytes:
    return str(value).encode()


@pytest.fixture(scope="module")
def api(server: Server) -> Any:
    server.load(live_event("http-schema", {"phone-red": 1000}))
    return schemathesis.openapi.from_dict(spec())


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_as_its_openapi_document_says(
    api: Any, server: Server, method: str, path: str
) -> None:
    operation = api[path][method]
    headers = {
        "Authorization": f"Bearer {issue_token(SECRET.encode(), 'schemathesis')}",
        "X-API-Key": ADMIN_KEY,
    }
    base_url = f"http://127.0.0.1:{server.port}"

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

    check()
