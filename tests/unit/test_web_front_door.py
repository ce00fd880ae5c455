"""The front door's web layer in process, on the memory backend: the velocity limits per
device and per network, the networks they count in, and the live wall's queue panel."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lampo.bootstrap import Config
from lampo.domain.event import Window
from lampo.domain.frontdoor import FrontDoor
from lampo.services.sales import Sales
from lampo.storage.memory import MemoryStorage
from lampo.web.app import App
from lampo.web.auth import issue_token
from lampo.web.config import WebConfig
from lampo.web.frontdoor import QueuePanel
from lampo.web.ratelimit import network_of
from tests.factories import sale_event

SECRET = b"s" * 32


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.7", "203.0.113.0/24"),
        ("203.0.113.250", "203.0.113.0/24"),
        ("2001:db8:abcd:12:1::9", "2001:db8:abcd::/48"),
        ("::ffff:198.51.100.3", "198.51.100.0/24"),
        ("unknown", "unknown"),
        ("", ""),
    ],
)
def test_an_address_counts_in_its_slash_24_or_slash_48(address: str, network: str) -> None:
    assert network_of(address) == network


def _app(**limits: float) -> App:
    config = WebConfig(
        engine=Config("memory://"),
        secret=SECRET,
        admin_key=b"a" * 32,
        webhook_secret=b"w" * 32,
        buyer_rate=0,
        ip_rate=0,
        **limits,  # type: ignore[arg-type]
    )
    sales = Sales(MemoryStorage())
    now = datetime.now(UTC).replace(microsecond=0)
    window = Window(now - timedelta(minutes=1), now + timedelta(hours=1))
    event = replace(
        sale_event("door", {"phone-red": 10}),
        windows={"CN": window, "IN": window},
        front_door=FrontDoor(admit_per_second=1),
    )
    sales.open(event)
    return App(config, sales)


async def _join(app: App, buyer: str, client: str, device: str | None) -> tuple[int, Any]:
    headers = [
        (b"authorization", f"Bearer {issue_token(SECRET, buyer)}".encode()),
        (b"content-type", b"application/json"),
    ]
    if device is not None:
        headers.append((b"lampo-device", device.encode()))
    body = b'{"market": "CN"}'
    headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/events/door/queue",
        "query_string": b"",
        "headers": headers,
        "client": (client, 40000),
    }
    start: dict[str, Any] = {}
    chunks: list[bytes] = []
    sent = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return sent.pop() if sent else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        else:
            chunks.append(message["body"])

    await app(scope, receive, send)
    return start["status"], json.loads(b"".join(chunks))


def _joined(app: App) -> int:
    return app.door.state("door", "CN").joined


def test_a_device_past_its_budget_is_refused_and_counted_and_joins_nobody() -> None:
    app = _app(device_rate=0.001, device_burst=2, network_rate=0)
    device = "ab" * 16

    async def main() -> list[tuple[int, Any]]:
        return [await _join(app, f"buyer-{i}", f"198.51.100.{i}", device) for i in range(3)] + [
            await _join(app, "buyer-9", "198.51.100.9", "cd" * 16)
        ]

    answers = asyncio.run(main())
    assert [status for status, _ in answers] == [201, 201, 429, 201]
    assert answers[2][1]["reason"] == "rate-limited"
    assert answers[2][1]["scope"] == "device"
    assert _joined(app) == 3
    assert app.metrics.door_refusals("door") == {"rate-limited:device": 1}


def test_a_network_shares_one_budget_and_another_network_has_its_own() -> None:
    app = _app(network_rate=0.001, network_burst=2, device_rate=0)

    async def main() -> list[int]:
        same = [await _join(app, f"n-{i}", f"203.0.113.{i + 1}", None) for i in range(3)]
        other = await _join(app, "n-9", "203.0.114.1", None)
        return [status for status, _ in [*same, other]]

    assert asyncio.run(main()) == [201, 201, 429, 201]
    assert app.metrics.door_refusals("door") == {"rate-limited:network": 1}
    assert _joined(app) == 3


def test_a_malformed_device_hash_is_an_invalid_request_that_joins_nobody() -> None:
    app = _app(device_rate=100, device_burst=100, network_rate=0)
    status, body = asyncio.run(_join(app, "m-1", "192.0.2.1", "NOT-HEX"))
    assert status == 400
    assert body["field"] == "Lampo-Device"
    assert _joined(app) == 0


def test_the_wall_shows_the_waiting_room_of_an_event_with_one() -> None:
    app = _app(network_rate=0, device_rate=0)

    async def main() -> None:
        for i in range(3):
            status, _ = await _join(app, f"w-{i}", "192.0.2.1", None)
            assert status == 201

    asyncio.run(main())
    panel = QueuePanel(lambda: app.door)
    event = app.service.event("door")
    shown = panel.read(event)
    assert shown is not None
    cn = next(m for m in shown["markets"] if m["market"] == "CN")
    assert cn["waiting"] + cn["admitted"] == 3
    assert cn["rate"] == 1
    assert panel.read(replace(event, id="door", front_door=None)) is None


def test_the_registrations_export_streams_in_chunks_every_row_once() -> None:
    """More registrations than one chunk holds: the answer comes in several body
    messages, which together are exactly the CSV the CLI writes."""
    import io

    from lampo.storage.door import Registration
    from lampo.web.frontdoor import EXPORT_CHUNK, write_csv

    app = _app()
    store = app.door.store
    at = datetime(2014, 8, 1, tzinfo=UTC)
    n = 2 * EXPORT_CHUNK + 1
    for i in range(n):
        store.register("door", Registration(f"acct-{i:06d}", at + timedelta(seconds=i)), ())
    messages: list[dict[str, Any]] = []

    async def main() -> None:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/v1/admin/events/door/registrations.csv",
            "query_string": b"",
            "headers": [(b"x-api-key", b"a" * 32)],
            "client": ("127.0.0.1", 1),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        await app(scope, receive, send)

    asyncio.run(main())
    assert messages[0]["status"] == 200
    bodies = [m["body"] for m in messages[1:]]
    assert len([b for b in bodies if b]) == 3  # three chunks, then the end
    assert messages[-1].get("more_body", False) is False
    expected = io.StringIO()
    assert write_csv(app.door, "door", expected) == n
    assert b"".join(bodies).decode() == expected.getvalue()
