"""The API docs page (``/docs``, vendored Swagger UI) in a real browser against ``lampo
serve``: it renders every operation of the OpenAPI document, under its
Content-Security-Policy, with no console error, no refused load and no request to
anywhere but this server; and try-it-out calls this server.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e._http import Server

pytestmark = [pytest.mark.sqlite, pytest.mark.browser]

RENDER_MS = 20_000  # the bundle is 1.7 MB of script; this only bounds a failure


def operations(server: Server) -> set[tuple[str, str]]:
    spec = server.request("GET", "/openapi.json").json
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


@pytest.fixture
def watched(page: Any, server: Server) -> dict[str, list[str]]:
    """Every console message of the tab, and every request it made elsewhere than this
    server or that failed (the ``page`` fixture fails the test on console errors too,
    but lets a 404 through)."""
    seen: dict[str, list[str]] = {"console": [], "elsewhere": [], "failed": []}
    origin = f"http://127.0.0.1:{server.port}/"
    page.on("console", lambda msg: seen["console"].append(f"{msg.type}: {msg.text}"))
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((origin, "data:"))
            else seen["elsewhere"].append(request.url)
        ),
    )
    page.on("requestfailed", lambda request: seen["failed"].append(request.url))
    page.on(
        "response",
        lambda response: (
            seen["failed"].append(f"{response.status} {response.url}")
            if response.status >= 400
            else None
        ),
    )
    return seen


def test_the_docs_page_renders_every_operation_under_its_policy(
    server: Server, page: Any, watched: dict[str, list[str]]
) -> None:
    from playwright.sync_api import expect

    expected = operations(server)
    page.goto(f"http://127.0.0.1:{server.port}/docs")
    blocks = page.locator(".opblock")
    expect(blocks).to_have_count(len(expected), timeout=RENDER_MS)
    shown = {
        (
            block.locator(".opblock-summary-method").inner_text().strip(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in blocks.all()
    }
    assert shown == expected
    expect(page.locator(".info .title")).to_contain_text("lampo")
    assert watched["elsewhere"] == []
    assert watched["failed"] == []
    problems = [m for m in watched["console"] if m.startswith(("error", "warning"))]
    assert problems == []
    # the policy the page was served with is the one the browser enforced
    policy = server.request("GET", "/docs").headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe" not in policy


def test_try_it_out_calls_this_server(
    server: Server, page: Any, watched: dict[str, list[str]]
) -> None:
    from playwright.sync_api import expect

    page.goto(f"http://127.0.0.1:{server.port}/docs")
    health = page.locator(".opblock", has=page.locator("[data-path='/health']"))
    health.locator(".opblock-summary-control").click(timeout=RENDER_MS)
    health.get_by_role("button", name="Try it out").click()
    health.get_by_role("button", name="Execute").click()
    live = health.locator(".live-responses-table tbody .response-col_status")
    expect(live.first).to_have_text(re.compile(r"^\s*200"), timeout=RENDER_MS)
    expect(health.locator(".live-responses-table .microlight").first).to_contain_text('"ok"')
    assert watched["elsewhere"] == []
    assert watched["failed"] == []


def test_the_page_and_its_files_are_served_with_their_types(server: Server) -> None:
    docs = server.request("GET", "/docs")
    assert docs.status == 200
    assert docs.headers["content-type"].startswith("text/html")
    urls = re.findall(r"(?:src|href)='([^']*)'", docs.body.decode())
    assert all(u.startswith(("/", "data:")) for u in urls), urls  # nothing from elsewhere
    for url in (u for u in urls if u.startswith("/docs/")):
        reply = server.request("GET", url)
        assert reply.status == 200, url
        kind = "text/css" if url.split("?")[0].endswith(".css") else "text/javascript"
        assert reply.headers["content-type"] == kind
        assert reply.headers["x-content-type-options"] == "nosniff"
    assert server.request("GET", "/docs/nothing.js").status == 404
