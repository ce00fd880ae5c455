"""The buyer's handlers: reserve, pay, release and read holds; the public event reads
(definition, stock, live report).

Each takes the app (``app.py``) and the request; the route table (``routes.py``) says
which caller each accepts, and ``App`` has checked it before the handler runs
(``req.buyer`` is the buyer). No storage call runs on the event loop: reservations and
payments go through the service's awaitable calls (the coalescer, storage's batcher),
owner checks through the app's coalesced hold reads, other reads to the thread pool.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import msgspec

from lampo.domain.codec import event_to_dict
from lampo.domain.errors import InvalidRequest, LampoError
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.money import Money
from lampo.services.sales import ReserveCommand
from lampo.web import frontdoor, schemas
from lampo.web.asgi import Request, Response, decode, json_response, require_json
from lampo.web.auth import Buyer

if TYPE_CHECKING:
    from lampo.web.app import App

_ONLINE = Channel()  # the channel of a reservation that names none (immutable, shared)


def _buyer(req: Request) -> Buyer:
    buyer = req.buyer
    assert buyer is not None, "a buyer route: App checked the token"
    return buyer


# -- the hot path -------------------------------------------------------------------
async def reserve(app: App, req: Request) -> Response:
    buyer = _buyer(req)
    key = app.idempotency_key(req)

    async def run(body: bytes) -> Response:
        require_json(req)
        data: schemas.ReserveIn = decode(schemas.reserve_decoder, body)
        ch = data.channel
        channel = Channel(ch.kind, ch.name, ch.referral) if ch else _ONLINE  # type: ignore[arg-type]
        event = app.service.events.get(data.event)
        if (
            event is None
            or data.market not in event.windows
            or not event.offers.keys() >= data.items.keys()
        ):
            # another worker may have loaded the event, or added the SKU or market
            await app.refresh_events_since_now()
            event = app.service.events.get(data.event)
        if channel.kind is not ChannelKind.ONLINE and event is not None and event.channels:
            # an event that declares its channels takes marketplace orders and till sales
            # only through their own authenticated doors, never a buyer's word for it
            raise InvalidRequest(
                "channel",
                f"{data.event} sells through {channel.kind} channels by their own API only",
            )
        door = event.front_door if event is not None else None
        hold_key = key
        if door is not None:
            # the front door's gate: an admission (one hold each) or a registration
            hold_key = await frontdoor.gate(app, req, buyer, event, data.market) or key  # type: ignore[arg-type]
        cmd = ReserveCommand(data.event, buyer.id, data.market, data.items, channel, hold_key)
        result = await app.reservations.submit(cmd)
        if door is not None and door.target_latency_ms is not None:
            # an adaptive room admits as fast as the buy path keeps its latency: from the
            # request's arrival in the app (its wait for the loop included) to its hold
            app.door.observe(data.event, data.market, time.perf_counter() - req.started)
        if isinstance(result, LampoError):
            raise result
        return json_response(
            201, schemas.hold_out(result), (b"location", f"/v1/holds/{result.id}".encode())
        )

    return await app.once(req, buyer.id, key, app.config.max_body, run)


async def pay(app: App, req: Request) -> Response:
    buyer = _buyer(req)
    key = app.idempotency_key(req)
    hold_id = req.params["hold_id"]

    async def run(body: bytes) -> Response:
        data = schemas.PayIn()
        if body.strip():
            require_json(req)
            data = decode(schemas.pay_decoder, body)
        amount = Money(data.amount.amount, data.amount.currency) if data.amount else None
        await app.own_hold(buyer, hold_id)
        order = await app.service.apay(hold_id, key, amount)
        return json_response(200, schemas.hold_out(order))

    return await app.once(req, buyer.id, key, app.config.max_body, run)


# -- the rest of the buyer API --------------------------------------------------------
async def release(app: App, req: Request) -> Response:
    buyer = _buyer(req)
    key = app.idempotency_key(req)
    hold_id = req.params["hold_id"]

    async def run(body: bytes) -> Response:
        await app.own_hold(buyer, hold_id)
        hold = await asyncio.to_thread(app.service.release, hold_id)
        return json_response(200, schemas.hold_out(hold))

    return await app.once(req, buyer.id, key, app.config.max_body, run)


async def read_hold(app: App, req: Request) -> Response:
    """A buyer's own hold, or any with the admin key (``Auth.BUYER_OR_ADMIN``)."""
    hold_id = req.params["hold_id"]
    if req.buyer is None:  # the admin
        hold = await app.hold(hold_id)
    else:
        hold = await app.own_hold(req.buyer, hold_id)
    return json_response(200, schemas.hold_out(hold))


# -- events, stock, report --------------------------------------------------------------
async def read_event(app: App, req: Request) -> Response:
    event = await app.event(req.params["event_id"])
    return json_response(200, event_to_dict(event))


async def read_stock(app: App, req: Request) -> Response:
    event = await app.event(req.params["event_id"])
    stock = await asyncio.to_thread(app.storage.stock, event.id)
    return json_response(200, schemas.stock_out(event.id, stock))


async def read_report(app: App, req: Request) -> Response:
    """The live report, read at most once per ``report_ttl`` per event however many
    dashboards ask (``SharedReads``): live totals and stock only, no order is read."""
    event_id = (await app.event(req.params["event_id"])).id
    body = await app.reports.get(event_id, lambda: _report_body(app, event_id))
    return Response(200, body)


def _report_body(app: App, event_id: str) -> bytes:
    as_of = app.clock()
    event = app.service.event(event_id)  # the newest definition this worker knows
    storage = app.storage
    report = schemas.report_out(event, storage.totals(event_id), storage.stock(event_id), as_of)
    # msgspec's module-level encoder: this runs in a thread, beside the loop's encoder
    return msgspec.json.encode(report)
