"""The admin handlers (events, orders, refunds, the sweeper, the test clock) and the
operations endpoints (health, readiness, metrics).

``App`` has checked the admin key before an admin handler runs (``routes.Auth.ADMIN``).
Every storage call runs in the thread pool: these are rare calls, and a slow one (a
page of orders, loading a large event) must not stall the buyers' requests.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lampo.domain.errors import InvalidRequest, LampoError, Unavailable
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold, HoldState
from lampo.sim import definition
from lampo.web import limits, schemas
from lampo.web.asgi import Request, Response, decode, json_response
from lampo.web.metrics import CONTENT_TYPE as METRICS_TYPE
from lampo.web.problems import EventExists, UnsupportedMediaType

if TYPE_CHECKING:
    from lampo.web.app import App


async def list_events(app: App, req: Request) -> Response:
    await asyncio.to_thread(app.refresh_events)
    items = [
        schemas.EventSummary(e.id, e.name, e.opens, e.closes)
        for _, e in sorted(app.service.events.items())
    ]
    return json_response(200, schemas.EventList(items))


def _event_from_body(req: Request, body: bytes) -> SaleEvent:
    """The event an admin upload defines: JSON (the codec's form, as ``GET
    /v1/events/{id}`` gives it) or a scenario TOML file, scaled by ``?scale=``."""
    media = req.media_type()
    if media in ("application/toml", "text/toml"):
        factor = limits.decimal(req.arg("scale") or "1", "scale")
        return definition.parse(body, "toml", "upload", factor)
    if media == "application/json":
        return definition.parse(body, "json", "upload")
    raise UnsupportedMediaType(media, ("application/json", "application/toml"))


async def load_event(app: App, req: Request) -> Response:
    key = app.idempotency_key(req)

    async def run(body: bytes) -> Response:
        event = _event_from_body(req, body)
        return await asyncio.to_thread(_setup, app, event)

    return await app.once(req, "admin", key, app.config.max_admin_body, run)


def _setup(app: App, event: SaleEvent) -> Response:
    sales = app.service
    known = {e.id: e for e in sales.storage.load_events()}
    status = 201
    if event.id in known:
        if known[event.id] != event:
            raise EventExists(event.id)
        status = 200
    sales.open(event)
    return _summary(status, event)


def _summary(status: int, event: SaleEvent) -> Response:
    summary = schemas.EventSummary(event.id, event.name, event.opens, event.closes)
    return json_response(status, summary, (b"location", f"/v1/events/{event.id}".encode()))


async def update_event(app: App, req: Request) -> Response:
    key = app.idempotency_key(req)
    event_id = req.params["event_id"]

    async def run(body: bytes) -> Response:
        event = _event_from_body(req, body)
        if event.id != event_id:
            raise InvalidRequest("id", f"the body defines {event.id!r}, not {event_id!r}")
        await asyncio.to_thread(app.service.update, event)
        return _summary(200, event)

    return await app.once(req, "admin", key, app.config.max_admin_body, run)


async def list_orders(app: App, req: Request) -> Response:
    event = await app.event(req.params["event_id"])
    state = req.arg("state")
    if state is not None and state not in {s.value for s in HoldState}:
        raise InvalidRequest("state", f"{state!r} is not a hold state")
    limit_text = req.arg("limit")
    limit = (
        limits.DEFAULT_PAGE
        if limit_text is None
        else limits.whole_number(limit_text, "limit", 1, limits.MAX_PAGE)
    )
    after = limits.cursor(req.arg("after"))
    storage = app.storage

    def page() -> tuple[list[Hold], str | None]:
        found = sorted(
            (
                h
                for h in storage.holds(event.id)
                if (state is None or h.state.value == state) and h.id > after
            ),
            key=lambda h: h.id,
        )
        more = len(found) > limit
        found = found[:limit]
        return found, (found[-1].id if more and found else None)

    holds, cursor = await asyncio.to_thread(page)
    return json_response(200, schemas.HoldList([schemas.hold_out(h) for h in holds], cursor))


async def read_totals(app: App, req: Request) -> Response:
    """The live totals at their finest grain, for an audit from outside (``lampo simulate
    --target`` recounts them from the orders)."""
    event = await app.event(req.params["event_id"])
    totals = await asyncio.to_thread(app.storage.totals, event.id)
    return json_response(200, schemas.totals_out(event.id, totals))


async def refund(app: App, req: Request) -> Response:
    key = app.idempotency_key(req)
    hold_id = req.params["hold_id"]

    async def run(body: bytes) -> Response:
        order = await asyncio.to_thread(app.service.refund, hold_id)
        return json_response(200, schemas.hold_out(order))

    return await app.once(req, "admin", key, app.config.max_body, run)


async def expire(app: App, req: Request) -> Response:
    key = app.idempotency_key(req)

    async def run(body: bytes) -> Response:
        expired = await asyncio.to_thread(app.service.expire_due)
        return json_response(200, {"expired": len(expired)})

    return await app.once(req, "admin", key, app.config.max_body, run)


async def move_clock(app: App, req: Request) -> Response:
    data = decode(schemas.any_decoder, await req.body(app.config.max_body))
    seconds = data.get("advance_seconds") if isinstance(data, dict) else None
    app.clock.offset += limits.clock_step(seconds, app.clock.offset)
    return json_response(200, {"now": app.clock()})


# -- operations ---------------------------------------------------------------------
async def health(app: App, req: Request) -> Response:
    return json_response(200, schemas.Health("ok"))


async def ready(app: App, req: Request) -> Response:
    try:
        await asyncio.to_thread(app.storage.events)
    except LampoError:
        raise
    except Exception as exc:
        raise Unavailable(type(exc).__name__) from None
    return json_response(200, schemas.Health("ready"))


async def read_metrics(app: App, req: Request) -> Response:
    def text() -> bytes:  # reads storage and the workers' files: off the loop
        storage = app.storage
        return app.metrics.render({ev: storage.stock(ev) for ev in app.service.events})

    return Response(200, await asyncio.to_thread(text), [(b"content-type", METRICS_TYPE)])
