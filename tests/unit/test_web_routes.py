"""The route table: each route declared once, served as declared, documented as served,
and guarded by the caller it names."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from lampo.bootstrap import Config
from lampo.services.sales import Sales
from lampo.storage.memory import MemoryStorage
from lampo.web.app import App
from lampo.web.config import WebConfig
from lampo.web.openapi import spec
from lampo.web.problems import NoRoute
from lampo.web.route import Auth, Route
from lampo.web.routes import ROUTES
from tests.unit.test_web_live import get


def _app(test_clock: bool = False) -> App:
    config = WebConfig(
        engine=Config("memory://"),
        secret=b"s" * 32,
        admin_key=b"a" * 32,
        webhook_secret=b"w" * 32,
        buyer_rate=0,
        ip_rate=0,
        test_clock=test_clock,
    )
    return App(config, Sales(MemoryStorage()))


def _target(route: Route) -> str:
    return re.sub(r"\{[a-z_]+\}", "x1", route.path)


async def _status(app: App, method: str, path: str) -> tuple[int, Any]:
    status, _, body = await get(app, path, method)
    return status, body


def test_each_route_and_operation_is_declared_once() -> None:
    pairs = [(r.method, r.path) for r in ROUTES]
    assert len(pairs) == len(set(pairs))
    ids = [r.operation_id for r in ROUTES]
    assert len(ids) == len(set(ids))


def test_the_document_lists_exactly_the_documented_routes() -> None:
    listed = {(m.upper(), p) for p, ops in spec()["paths"].items() for m in ops}
    assert listed == {(r.method, r.path) for r in ROUTES if r.documented}
    for route in ROUTES:
        if not route.documented:
            continue
        op = spec()["paths"][route.path][route.method.lower()]
        assert op["operationId"] == route.operation_id
        assert [s for req in op.get("security", []) for s in req] == list(route.auth.value)
        named = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert named == set(re.findall(r"\{([a-z_]+)\}", route.path))


@pytest.mark.parametrize("test_clock", [False, True])
def test_every_route_is_served_and_only_those(test_clock: bool) -> None:
    app = _app(test_clock)
    for route in ROUTES:
        try:
            match, _ = app.router.match(_target(route))
        except NoRoute:
            served = False
        else:
            served = route.method in match.by_method
        assert served == (test_clock or not route.test_clock), route.path


@pytest.mark.parametrize(
    "route",
    [r for r in ROUTES if r.auth in (Auth.BUYER, Auth.ADMIN, Auth.BUYER_OR_ADMIN)],
    ids=lambda r: f"{r.method} {r.path}",
)
def test_a_guarded_route_refuses_a_caller_without_credentials(route: Route) -> None:
    app = _app(test_clock=True)
    status, body = asyncio.run(_status(app, route.method, _target(route)))
    assert status == 401, body
    assert json.loads(body)["reason"] == "unauthorized"
