"""The wall's event stream, driven in-process through the ASGI app on a real memory
backend: many viewers of one event cost one aggregation per interval and get the same
bytes; a sale reaches every viewer; viewers who leave stop the feed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from lampo.domain.holds import Hold
from lampo.services.sales import Sales
from lampo.web import schemas, wall
from lampo.web.app import App
from tests.unit.test_web_live import CountingStorage, make_app

VIEWERS = 50


class OrdersCounting(CountingStorage):
    """Also counts the reads of every hold of an event (the wall's read of the orders)."""

    def __init__(self) -> None:
        super().__init__()
        self.holds_reads = 0

    def holds(self, event: str) -> Iterator[Hold]:
        self.holds_reads += 1
        return super().holds(event)


@dataclass
class Viewer:
    """One browser's stream: what it was sent, and a switch to leave."""

    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    frames: list[bytes] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    leave: asyncio.Event = field(default_factory=asyncio.Event)

    async def receive(self) -> dict[str, Any]:
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message["headers"])
        elif b"event: wall" in message.get("body", b""):
            self.frames.append(message["body"])
            self.arrived.set()

    async def frame(self, count: int) -> bytes:
        while len(self.frames) < count:
            self.arrived.clear()
            await self.arrived.wait()
        return self.frames[count - 1]

    async def until(self, check: Callable[[dict[str, Any]], bool]) -> bytes:
        """The first frame whose data passes ``check``."""
        seen = 0
        while True:
            seen += 1
            frame = await self.frame(seen)
            if check(data(frame)):
                return frame


def watch(app: App, viewer: Viewer, event: str = "fest") -> asyncio.Task[None]:
    path = f"/v1/events/{event}/wall"
    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}
    return asyncio.ensure_future(app(scope, viewer.receive, viewer.send))


def quick(storage: CountingStorage) -> tuple[App, Sales]:
    """The app on ``storage``, its wall reading every tenth of a second; and its service."""
    app = make_app(storage)
    app.wall.interval = 0.1
    return app, app.service


def data(frame: bytes) -> dict[str, Any]:
    line = next(ln for ln in frame.decode().splitlines() if ln.startswith("data: "))
    parsed: dict[str, Any] = json.loads(line.removeprefix("data: "))
    return parsed


def test_many_viewers_cost_one_aggregation_and_get_the_same_bytes() -> None:
    storage = CountingStorage()
    app = make_app(storage)
    app.wall.interval = 3600.0  # one aggregation, whatever the time the viewers take

    async def main() -> list[Viewer]:
        viewers = [Viewer() for _ in range(VIEWERS)]
        tasks = [watch(app, v) for v in viewers]
        for v in viewers:
            await v.frame(1)
        for v in viewers:
            v.leave.set()
        await asyncio.gather(*tasks)
        return viewers

    viewers = asyncio.run(main())
    assert {v.status for v in viewers} == {200}
    assert viewers[0].headers[b"content-type"].startswith(b"text/event-stream")
    assert len({v.frames[0] for v in viewers}) == 1
    assert app.wall.aggregations == 1
    assert storage.totals_reads == 1  # what the records compare with is read apart
    assert app.wall.viewers == 0


def test_a_sale_reaches_every_viewer_as_the_report_states_it() -> None:
    storage = CountingStorage()
    app, sales = quick(storage)

    async def main() -> tuple[list[bytes], dict[str, Any]]:
        viewers = [Viewer() for _ in range(10)]
        tasks = [watch(app, v) for v in viewers]
        for v in viewers:
            await v.frame(1)
        hold = await asyncio.to_thread(sales.reserve, "fest", "ana", "CN", {"tv-55": 2})
        await asyncio.to_thread(sales.pay, hold.id, "pay-1")
        event = sales.event("fest")
        report = msgspec.to_builtins(
            schemas.report_out(event, storage.totals("fest"), storage.stock("fest"), app.clock())
        )
        # the figures from the orders' times are read less often than the totals
        seconds = [
            await v.until(lambda d: d["report"]["orders"] == 1 and "tv-55" in d["sold_out_at"])
            for v in viewers
        ]
        for v in viewers:
            v.leave.set()
        await asyncio.gather(*tasks)
        assert app.wall.viewers == 0
        assert all(feed.task is None for feed in app.wall._feeds.values())
        return seconds, report

    seconds, report = asyncio.run(main())
    assert len(set(seconds)) == 1
    frame = data(seconds[0])
    del report["as_of"]
    assert frame["report"] == report
    assert frame["report"]["orders"] == 1
    assert frame["best_sellers"][0]["sku"] == "tv-55"
    assert frame["champions"] == [
        {
            "category": "tv",
            "category_name": "Tv",
            "rank": 1,
            "sku": "tv-55",
            "name": "tv-55",
            "units": 2,
            "money": report["total"]["amount"],
        }
    ]
    assert [row["kind"] for row in frame["channels"]] == ["online"]
    sold_out = [t for t in frame["ticker"] if t["kind"] == "sold-out"]
    assert [t["text"] for t in sold_out] == ["tv-55 sold out"]
    assert frame["sold_out_at"]["tv-55"] == sold_out[0]["at"]


def test_an_unknown_event_has_no_stream() -> None:
    app = make_app(CountingStorage())

    async def main() -> Viewer:
        viewer = Viewer()
        viewer.leave.set()
        await watch(app, viewer, "no-such-event")
        return viewer

    viewer = asyncio.run(main())
    assert viewer.status == 404
    assert app.wall.viewers == 0


def test_reservations_alone_cost_no_read_of_the_orders_and_a_payment_does() -> None:
    storage = OrdersCounting()
    app, sales = quick(storage)

    async def main() -> None:
        viewer = Viewer()
        task = watch(app, viewer)
        await viewer.frame(1)
        first = storage.holds_reads
        holds = []
        for buyer in ("ana", "bo", "cy"):
            holds.append(
                await asyncio.to_thread(sales.reserve, "fest", buyer, "CN", {"phone-red": 1})
            )
        held = data(await viewer.until(lambda d: sum(s["held"] for s in d["report"]["stock"]) == 3))
        assert held["report"]["orders"] == 0
        # several more readings of the totals, each long past the pacing of the orders'
        # read (a fraction of a millisecond here, times twenty): none reads the orders
        later = app.wall.aggregations + 5
        while app.wall.aggregations < later:
            await asyncio.sleep(app.wall.interval)
        assert storage.holds_reads == first
        await asyncio.to_thread(sales.pay, holds[0].id, "pay-ana")
        paid = data(await viewer.until(lambda d: sum(p[0] for p in d["curve"]["points"]) == 1))
        assert paid["report"]["orders"] == 1
        assert storage.holds_reads > first
        viewer.leave.set()
        await task

    asyncio.run(main())


def test_a_stream_ends_with_bye_after_its_time_and_frees_its_viewer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wall, "STREAM_SECONDS", 0.2)
    app, _ = quick(CountingStorage())
    last: list[bytes] = []

    async def main() -> None:
        viewer = Viewer()
        original = viewer.send

        async def send(message: dict[str, Any]) -> None:
            last.append(message.get("body", b""))
            await original(message)

        viewer.send = send  # type: ignore[method-assign]
        await watch(app, viewer)  # returns: the stream ended by itself

    asyncio.run(main())
    bodies = [b for b in last if b]
    assert bodies[-1] == b"retry: 250\nevent: bye\ndata: 1\n\n"
    assert app.wall.viewers == 0
