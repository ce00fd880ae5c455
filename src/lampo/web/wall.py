"""The battle wall's feed: one aggregation per event and interval in each worker, pushed to
every viewer of that event as the same bytes (server-sent events,
``GET /v1/events/{id}/wall``).

Watching must not slow selling, so the cost does not grow with the viewers: while anyone
watches an event, one task per event reads storage off the loop every ``interval``
(``LAMPO_WALL_INTERVAL``, default 1 s), encodes one frame, and every viewer's stream sends
those bytes. A viewer who connects (or reconnects, whatever its ``Last-Event-ID``) gets the
latest frame at once; a frame that says nothing new is not sent again (a comment line
keeps quiet streams open). A stream ends after ``STREAM_SECONDS`` and the browser comes
back at once: a server stopping waits for open requests, and a stream never ends by
itself. When the last viewer leaves, the task stops.

What it reads, per event and worker:

- every interval, the live totals and stock levels (``storage.totals``, ``storage.stock``):
  rows per SKU, market and channel, bounded by the catalogue, not by the orders. They give
  the totals, markets, channels, categories, rankings and champions, milestone levels and
  stock, exactly as the JSON report does (``schemas.report_out``, ``report.rankings``);
- the orders (``storage.holds``), for what needs their times: orders and money per minute,
  sold-out times, when milestones were crossed, the records and when they fell (the report's
  own functions: ``sales_curve``, ``sold_out_times``, ``milestone_crossings``,
  ``past_result`` and ``compare_records``, ``record_falls``). That read grows with the
  event, so it is paced by its own cost: the next one starts no sooner than
  ``1 / ORDERS_SHARE`` times the last one's duration after it ended (at most a twentieth of
  a core, whatever the event's size) and no sooner than the interval; and none is made
  while the live totals show no new payment, refund or sell-out (``_orders_key``):
  reservations alone, however many, cost no read of the orders;
- what the records compare with (the history file, earlier events: they are over), once,
  again only when the set of events in storage changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from lampo.domain.errors import Unavailable
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold, StockLevel
from lampo.domain.records import PastResult, amount_text, compare_records, margin_text
from lampo.domain.report import (
    Ranked,
    grand_total,
    milestone_crossings,
    rankings,
    record_falls,
    rollup,
    sales_curve,
    sold_out_times,
)
from lampo.domain.totals import Totals
from lampo.services.report import earlier_results, past_result
from lampo.storage.port import Storage
from lampo.web import schemas

log = logging.getLogger("lampo.web.wall")

EVENT_STREAM = b"text/event-stream; charset=utf-8"
#: At most this share of one core goes to reading an event's orders (per worker).
ORDERS_SHARE = 0.05
#: A comment line on a stream with nothing new for this long (keeps proxies from closing it).
KEEPALIVE_SECONDS = 15.0
#: Viewers of one worker, all events together; the next one is refused (503).
MAX_VIEWERS = 10_000
#: The curve has at most this many points: buckets of one minute, or of a few when the
#: event has run longer.
MAX_POINTS = 120
#: SKUs in the overall ranking.
TOP = 10
#: How long a browser waits before reconnecting (the ``retry`` field).
RETRY_MS = 2000
#: A stream ends after this long (an event ``bye`` first) and the browser reconnects at
#: once to the latest frame. A server that is stopping waits for its open requests
#: (granian tells a stream nothing), so this bounds how long a restart waits for walls.
STREAM_SECONDS = 15.0
#: What a stream that ends sends last: reconnect soon.
_BYE = b"retry: 250\nevent: bye\ndata: 1\n\n"


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


@dataclass(slots=True)
class _OrdersPart:
    """What the orders' times give: computed at most every few intervals."""

    data: dict[str, Any]
    read_at: float  # monotonic, when the read ended
    cost: float  # seconds the read and its sums took
    key: object  # ``_orders_key`` when it was read: what, unchanged, leaves it true


@dataclass(slots=True, eq=False)
class _Viewer:
    """One stream: woken (``waiter``) by a new frame, a keep-alive or its client leaving."""

    waiter: asyncio.Future[None] | None = None
    gone: bool = False  # the client left
    expired: bool = False  # the stream has run ``STREAM_SECONDS``

    def expire(self) -> None:
        self.expired = True
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


@dataclass(slots=True)
class _Feed:
    event_id: str
    frame: bytes = b""  # the latest event, as sent
    seq: int = 0
    pings: int = 0  # keep-alive comments asked for
    viewers: set[_Viewer] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    payload: bytes = b""  # the latest frame's data without its time, to skip repeats
    sent_at: float = 0.0  # monotonic: the latest frame or keep-alive
    orders: _OrdersPart | None = None
    past: list[PastResult] = field(default_factory=list)
    past_key: tuple[str, ...] | None = None

    def wake_all(self) -> None:
        for viewer in self.viewers:
            viewer.wake()


class Wall:
    """The feeds of one worker, one per watched event. ``event_of(id)`` is the newest
    definition the worker knows; ``storage()`` its storage (both called off the loop)."""

    def __init__(
        self,
        interval: float,
        event_of: Callable[[str], SaleEvent],
        storage: Callable[[], Storage],
        clock: Callable[[], datetime],
        queue: Callable[[SaleEvent], dict[str, Any] | None] | None = None,
    ) -> None:
        self.interval = interval
        #: The front door's waiting room (``frontdoor.QueuePanel``): a frame's ``queue``.
        self._queue = queue
        self._event_of = event_of
        self._storage = storage
        self._clock = clock
        self._feeds: dict[str, _Feed] = {}
        self.viewers = 0
        #: Aggregations run (each serves every viewer of its event).
        self.aggregations = 0
        self._closed = False

    # -- viewers ------------------------------------------------------------------------
    def admit(self) -> None:
        """Refuse a viewer (``Unavailable``, 503) past ``MAX_VIEWERS`` or while stopping."""
        if self._closed or self.viewers >= MAX_VIEWERS:
            raise Unavailable("the wall has as many viewers as it serves")

    async def serve(self, event_id: str, receive: Any, send: Any) -> None:
        """Stream ``event_id``'s frames to one viewer until it leaves (or the server stops).

        Each viewer waits on a future of its own, which the feed resolves: a new frame
        costs one wake-up and one send per viewer (a shared future awaited by many would
        be cancelled for all when one viewer's task is cancelled)."""
        feed, viewer = self._join(event_id)
        gone = asyncio.ensure_future(_disconnect(receive, viewer))
        loop = asyncio.get_running_loop()
        timer = loop.call_later(STREAM_SECONDS, viewer.expire)
        try:
            await _body(send, b"retry: %d\n\n" % RETRY_MS)
            seen = pinged = 0
            while not viewer.gone and not viewer.expired and not self._closed:
                if feed.seq != seen:
                    seen = feed.seq
                    await _body(send, feed.frame)
                elif feed.pings != pinged:
                    pinged = feed.pings
                    await _body(send, b": keep-alive\n\n")
                else:
                    viewer.waiter = loop.create_future()
                    await viewer.waiter
            if not viewer.gone:
                await _body(send, _BYE)
        except (OSError, RuntimeError, asyncio.CancelledError):
            pass  # the viewer went away while a frame was on its way
        finally:
            timer.cancel()
            gone.cancel()
            self._leave(feed, viewer)

    def _join(self, event_id: str) -> tuple[_Feed, _Viewer]:
        feed = self._feeds.get(event_id)
        if feed is None:
            feed = self._feeds[event_id] = _Feed(event_id)
        viewer = _Viewer()
        feed.viewers.add(viewer)
        self.viewers += 1
        if feed.task is None or feed.task.done():
            feed.task = asyncio.get_running_loop().create_task(self._run(feed))
        return feed, viewer

    def _leave(self, feed: _Feed, viewer: _Viewer) -> None:
        feed.viewers.discard(viewer)
        self.viewers -= 1
        if not feed.viewers and feed.task is not None:
            feed.task.cancel()
            feed.task = None

    async def close(self) -> None:
        """Stop every feed and end every stream (server shutdown)."""
        self._closed = True
        for feed in self._feeds.values():
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feed.task
            feed.wake_all()

    # -- the one aggregation per event and interval --------------------------------------
    async def _run(self, feed: _Feed) -> None:
        while feed.viewers:
            started = time.monotonic()
            try:
                payload, read_at = await asyncio.to_thread(self._aggregate, feed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the wall of %s: aggregation failed", feed.event_id)
                payload = None
            self.aggregations += 1
            if payload is not None and payload != feed.payload:
                feed.payload = payload
                as_of = msgspec.json.encode(_iso(read_at))
                feed.seq += 1
                # one encoding for every viewer: the time is spliced in front of the rest
                feed.frame = b'id: %d\nevent: wall\ndata: {"as_of":%s,%s\n\n' % (
                    feed.seq,
                    as_of,
                    payload[1:],
                )
                feed.sent_at = time.monotonic()
                feed.wake_all()
            elif time.monotonic() - feed.sent_at >= KEEPALIVE_SECONDS:
                feed.pings += 1
                feed.sent_at = time.monotonic()
                feed.wake_all()
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def _aggregate(self, feed: _Feed) -> tuple[bytes, datetime]:
        """The frame's data (JSON, without ``as_of``) and when its totals were read; read
        and summed in a worker thread."""
        storage = self._storage()
        event = self._event_of(feed.event_id)
        read_at = self._clock()
        totals = storage.totals(event.id)
        stock = storage.stock(event.id)
        now = time.monotonic()
        part = feed.orders
        key = _orders_key(event, totals, stock)
        if part is None or (
            key != part.key and now - part.read_at >= max(self.interval, part.cost / ORDERS_SHARE)
        ):
            feed.orders = self._orders_part(feed, storage, event, totals, key)
        assert feed.orders is not None
        # the report as GET /v1/events/{id}/report gives it, but for its time: the frame's
        # ``as_of`` says when it was read, and a frame equal to the last but for the time
        # is not sent again
        report = msgspec.to_builtins(schemas.report_out(event, totals, stock, read_at))
        del report["as_of"]
        orders = dict(feed.orders.data)
        orders["curve"] = curve(event, orders.pop("per_minute"), read_at)
        data = {"report": report, **live_part(event, totals), **orders}
        queue = self._queue(event) if self._queue is not None else None
        if queue is not None:
            data["queue"] = queue
        return msgspec.json.encode(data), read_at

    def _orders_part(
        self, feed: _Feed, storage: Storage, event: SaleEvent, totals: Totals, key: object
    ) -> _OrdersPart:
        started = time.monotonic()
        events = tuple(sorted(storage.events()))
        if events != feed.past_key:
            feed.past = earlier_results(storage, event)
            feed.past_key = events
        holds = list(storage.holds(event.id))
        data = orders_part(event, totals, holds, feed.past)
        ended = time.monotonic()
        log.info("wall of %s: read %d holds in %.3f s", event.id, len(holds), ended - started)
        return _OrdersPart(data, ended, ended - started, key)


def _orders_key(event: SaleEvent, totals: Totals, stock: dict[str, StockLevel]) -> object:
    """What the orders' figures depend on, from the live totals and stock: while the
    orders, units and money (refunds included) and the SKUs with nothing left are the
    same, a new read of the orders would find the same figures (but
    for a sell-out undone within one interval), so none is made."""
    units, orders, amounts, _ = grand_total(event, totals)
    empty = tuple(sorted(sku for sku, level in stock.items() if level.available == 0))
    return (event, units, orders, tuple(amounts.items()), empty)


def curve(event: SaleEvent, per_minute: list[tuple[int, int]], now: datetime) -> dict[str, Any]:
    """Orders and money per minute from the opening up to ``now`` (or the close), in at most
    ``MAX_POINTS`` buckets of ``minutes`` minutes each."""
    elapsed = int((min(now, event.closes) - event.opens).total_seconds()) // 60 + 1
    minutes = per_minute[: max(0, min(len(per_minute), elapsed))]
    width = max(1, -(-len(minutes) // MAX_POINTS))
    points = [
        [sum(n for n, _ in minutes[i : i + width]), sum(m for _, m in minutes[i : i + width])]
        for i in range(0, len(minutes), width)
    ]
    return {"start": _iso(event.opens), "minutes": width, "points": points}


def live_part(event: SaleEvent, totals: Totals) -> dict[str, Any]:
    """The wall's figures that come from the live totals alone (beside the report's)."""
    ranked = rankings(event, totals, TOP)
    names = {sku: item.name for sku, item in event.skus.items()}

    def sku_row(r: Ranked) -> dict[str, Any]:
        return {
            "rank": r.rank,
            "sku": r.key,
            "name": names.get(r.key, r.key),
            "category": event.category_of(r.key) if r.key in event.skus else "",
            "units": r.units,
            "money": r.money.amount,
        }

    return {
        "best_sellers": [sku_row(r) for r in ranked.overall],
        "champions": [
            {"category": c, "category_name": event.categories[c].name, **sku_row(r)}
            for c, r in ranked.champions.items()
            if c in event.categories
        ],
        "channels": [
            {
                "kind": row.key,
                "orders": row.orders or 0,
                "units": row.units,
                "money": row.money.amount,
            }
            for row in rollup(event, totals, "channel")
        ],
        "market_order": [row.key for row in rollup(event, totals, "market")],
        "home_tz": next(iter(event.markets.values())).tz if event.markets else "UTC",
    }


def orders_part(
    event: SaleEvent,
    totals: Totals,
    holds: list[Hold],
    past: list[PastResult],
) -> dict[str, Any]:
    """The wall's figures that need the orders' times: orders and money per minute of the
    whole event (``per_minute``, which ``curve`` cuts at each frame's time), the ticker
    (sell-outs, milestones, records that fell) and the records, each with its exact time."""
    orders = [h for h in holds if h.paid_at is not None]
    per_minute = [(b.orders, b.money) for b in sales_curve(event, orders, 0).per_minute]
    units = {c: cat.unit for c, cat in event.categories.items()}
    records = compare_records(past_result(event, totals, holds), past, units)
    falls = record_falls(event, records, orders)
    crossings = milestone_crossings(event, orders)
    sold_out = sold_out_times(event, holds)
    ticker: list[dict[str, Any]] = [
        {"at": _iso(at), "kind": "sold-out", "text": f"{event.skus[sku].name} sold out"}
        for sku, at in sold_out.items()
        if sku in event.skus
    ]
    ticker += [
        {"at": _iso(c.at), "kind": "milestone", "text": f"{c.milestone.label} reached"}
        for c in crossings
        if c.at is not None
    ]
    record_rows = []
    for record, fell in zip(records, falls, strict=True):
        title = record.title[:1].upper() + record.title[1:]
        record_rows.append(
            {
                "title": title,
                "value": amount_text(record.value, record.unit),
                "best": None if record.best is None else amount_text(record.best, record.unit),
                "best_name": record.best_name,
                "beaten": record.beaten,
                "margin": margin_text(record),
                "at": _iso(fell),
            }
        )
        if fell is not None:
            ticker.append({"at": _iso(fell), "kind": "record", "text": f"{title}: beaten"})
    ticker.sort(key=lambda t: (t["at"], t["kind"], t["text"]), reverse=True)
    return {
        "per_minute": per_minute,
        "records": record_rows,
        "milestone_times": [_iso(c.at) for c in crossings],
        "milestone_channels": [c.channel for c in crossings],
        "sold_out_at": {sku: _iso(at) for sku, at in sorted(sold_out.items())},
        "ticker": ticker[:50],
    }


async def _disconnect(receive: Any, viewer: _Viewer) -> None:
    """Marks ``viewer`` gone, and wakes it, when its client has left (the request has no
    body to read)."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            viewer.gone = True
            viewer.wake()
            return


async def _body(send: Any, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})
