"""Driving the ASGI app in process as an HTTP server would, and what an answer must be.

``scope_of`` builds the ASGI scope the way granian (and uvicorn, hypercorn) build it from
the bytes of a request: the path percent-decoded as UTF-8 with U+FFFD for what is not
UTF-8, the query string raw, header names lowercased, values as received. So what the
app sees in process is what it would see behind a real server; what a server refuses
itself (control bytes in a header, a malformed Content-Length) is covered over a socket
in ``test_http_server.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from lampo.domain.codec import event_to_dict
from lampo.domain.event import SaleEvent
from lampo.storage import Storage
from lampo.storage.door import door_store
from lampo.web.app import App
from lampo.web.problems import TYPES
from tests.contract.conftest import snapshot
from tests.hostile._requests import Call


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def content_type(self) -> bytes:
        return self.headers.get(b"content-type", b"")


def scope_of(call: Call) -> dict[str, Any]:
    raw_path, _, query = call.target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": call.method,
        "scheme": "http",
        "path": unquote(raw_path, errors="replace"),
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [
            *call.headers,
            (b"content-length", str(len(call.body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def _chunks(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def answer(app: App, call: Call, chunk: int = 4096) -> Answer:
    """What ``app`` answers ``call``; the body arrives in ``chunk``-byte messages. An
    exception that escapes the app propagates (a server would drop the connection)."""
    pieces = list(_chunks(call.body, chunk)) or [b""]
    messages = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    start: dict[str, Any] = {}
    parts: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(scope_of(call), receive, send)
    assert start, f"no answer to {call.route}"
    return Answer(start["status"], dict(start["headers"]), b"".join(parts))


def problems_in(call: Call, status: int, content_type: bytes, body: bytes) -> list[str]:
    """What is wrong with an answer, by the rule every answer follows: a 2xx or 3xx, or a
    4xx RFC 9457 problem whose ``reason`` is a known type with that status (the one
    exception: the small HTML page ``GET /live/{id}`` shows for an unknown event). No
    5xx: these tests have no outage."""
    if status < 400:
        return []
    if status >= 500:
        return [f"{status} to {call.route}: {body[:300]!r}"]
    if status == 404 and call.method == "GET" and content_type.startswith(b"text/html"):
        return [] if call.target.startswith("/live/") else [f"an HTML 404 from {call.route}"]
    if call.method == "HEAD":
        return []  # a HEAD answer has no body to check; its status was checked above
    if content_type != b"application/problem+json":
        return [f"{status} with content type {content_type!r}, not problem+json"]
    try:
        doc = json.loads(body)
    except ValueError:
        return [f"{status} with a body that is not JSON: {body[:200]!r}"]
    reason = doc.get("reason")
    kind = TYPES.get(reason) if isinstance(reason, str) else None
    if kind is None:
        return [f"unknown reason {reason!r}"]
    wrong = []
    if kind.status != status or doc.get("status") != status:
        wrong.append(f"{reason} answered {status}, its type says {kind.status}")
    if doc.get("type") != f"/problems/{reason}":
        wrong.append(f"type {doc.get('type')!r} for reason {reason!r}")
    return wrong


def state(storage: Storage) -> dict[str, Any]:
    """Everything a refusal must leave as it was: every event's definition, stock, live
    totals and holds, and the front door of an event with one (registrations, the draw,
    each market's queue)."""
    events = {e.id: e for e in storage.load_events()}
    return {
        e: (
            event_to_dict(events[e]) if e in events else None,
            snapshot(storage, e),
            _door_state(storage, events[e]) if e in events else None,
        )
        for e in sorted(storage.events())
    }


def _door_state(storage: Storage, event: SaleEvent) -> Any:
    if event.front_door is None:
        return None
    door = door_store(storage)
    return (
        list(door.export(event.id)),
        door.drawn(event.id),
        {m: door.counts(event.id, m) for m in sorted(event.windows)},
    )
