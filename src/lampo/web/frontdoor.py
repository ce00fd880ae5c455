"""The front door's handlers (docs/front-door.md): registration, the waiting room and its
proof of work, the admin's view of the queue, and the gate of the buy path.

``App`` has checked the caller the route asks for (``routes.py``); the work is the front
door service's (``services/frontdoor.py``); every call that may reach storage runs in
the thread pool. The poll (``GET /v1/queue/poll``), the hottest endpoint of a launch, is
answered on the loop when the service can answer it from memory (``poll_cached``: a
numbered ticket, the queue's counters and the market's stock each cached for a tenth of
a second); the others go with the other such polls of the same turn of the loop to the
service in one trip to the thread pool (``App.polls``).

The velocity limits of the front door (per device hash, from ``Lampo-Device``, and per
network, /24 or /48) are taken on registration, challenge, join and a reservation behind
the door, in the run's shared rate-limit tables. Every refusal of the front door, the
web layer's and the service's, is counted in the metrics (``lampo_door_refusals``), which
every worker of the server writes to its own file: the admin's view of the queue sums
them, so it shows the whole server's refusals whichever worker answers it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import time
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, TextIO

from lampo.domain.errors import LampoError, NotAdmitted, NotDrawn, NotRegistered, UnknownMarket
from lampo.domain.event import SaleEvent
from lampo.domain.frontdoor import check_hash
from lampo.web import door_schemas as ds
from lampo.web.asgi import Request, Response, Send, decode, json_response, require_json
from lampo.web.auth import Buyer
from lampo.web.problems import RateLimited
from lampo.web.ratelimit import network_of

if TYPE_CHECKING:
    from lampo.services.frontdoor import FrontDoorService, Poll, QueueState
    from lampo.storage.door import Registration
    from lampo.web.app import App

TICKET = b"lampo-ticket"
ADMISSION = b"lampo-admission"
DEVICE = b"lampo-device"
_CSV = b"text/csv; charset=utf-8"
_NO_STORE = (b"cache-control", b"no-store")


def _buyer(req: Request) -> Buyer:
    buyer = req.buyer
    assert buyer is not None, "a buyer route: App checked the token"
    return buyer


def velocity(app: App, req: Request, event: str) -> None:
    """Take one request of the caller's device (``Lampo-Device``, when sent) and network
    from their budgets, or refuse (``rate-limited``, counted as ``rate-limited:device``
    or ``rate-limited:network``)."""
    device = req.header(DEVICE)
    networks = app.network_limit
    try:
        if device is not None:  # checked even with the limit off: a bad header is refused
            app.device_limit.take(check_hash("Lampo-Device", device))
        if networks.enabled:  # an address is parsed only for a limit that counts it
            networks.take(network_of(req.client))
    except RateLimited as refusal:
        app.metrics.door_refused(event, f"rate-limited:{refusal.scope}")
        raise


class NoFrontDoor(LampoError):
    """The event has no such part of a front door (no registration window, waiting room
    or lottery): the resource does not exist for it (404)."""

    reason = "no-front-door"

    def __init__(self, event: str, part: str) -> None:
        self.event = event
        self.part = part
        super().__init__()

    def message(self) -> str:
        return f"{self.event!r} has no {self.part}"


def _part(event: SaleEvent, part: str) -> SaleEvent:
    """``event``, if it has a "front door" with ``part`` ("registration", "waiting room"
    or "lottery"); ``NoFrontDoor`` otherwise."""
    door = event.front_door
    has = door is not None and (
        part == "front door"
        or (part == "registration" and door.registration_opens is not None)
        or (part == "waiting room" and door.waiting_room)
        or (part == "lottery" and door.lottery_factor is not None)
    )
    if not has:
        raise NoFrontDoor(event.id, part)
    return event


def _market(event: SaleEvent, market: str) -> str:
    if market not in event.windows:
        raise UnknownMarket(event.id, market)
    return market


# -- registration -------------------------------------------------------------------
async def register(app: App, req: Request) -> Response:
    buyer = _buyer(req)
    event = _part(await app.event(req.params["event_id"]), "registration")
    velocity(app, req, event.id)
    body = await req.body(app.config.max_body)
    data = ds.RegistrationIn()
    if body.strip():
        require_json(req)
        data = decode(ds.registration_decoder, body)
    reg = await asyncio.to_thread(
        app.door.register, event.id, buyer.id, data.phone_hash, data.device_hash
    )
    out = ds.RegistrationOut(event.id, reg.account, reg.at.astimezone(UTC))
    return json_response(201, out)


async def registration_count(app: App, req: Request) -> Response:
    """The live count, read at most once per ``report_ttl`` per event and worker."""
    event_id = _part(await app.event(req.params["event_id"]), "front door").id
    door = app.door
    count = await app.door_counts.get(event_id, lambda: door.registrations(event_id))
    return json_response(200, ds.RegistrationCount(event_id, count))


# -- the waiting room ---------------------------------------------------------------
async def challenge(app: App, req: Request) -> Response:
    buyer = _buyer(req)
    event = _part(await app.event(req.params["event_id"]), "waiting room")
    market = req.arg("market")
    if market is not None:
        _market(event, market)
    velocity(app, req, event.id)
    found = await asyncio.to_thread(app.door.challenge, event.id, buyer.id)
    return json_response(
        200, ds.ChallengeOut(found.token, found.bits, found.expires_at.astimezone(UTC))
    )


async def join(app: App, req: Request) -> Response:
    buyer = _buyer(req)
    event = _part(await app.event(req.params["event_id"]), "waiting room")
    require_json(req)
    data: ds.JoinIn = decode(ds.join_decoder, await req.body(app.config.max_body))
    market = _market(event, data.market)
    velocity(app, req, event.id)
    ticket = await asyncio.to_thread(
        app.door.join, event.id, market, buyer.id, data.challenge, data.solution
    )
    return json_response(201, ds.TicketOut(event.id, market, ticket.token, ticket.seq))


async def poll(app: App, req: Request) -> Response:
    buyer = _buyer(req)
    ticket = req.header(TICKET)
    if ticket is None:
        raise NotAdmitted("", "", "no Lampo-Ticket header: join the queue first")
    # most polls are answered from the process's caches, here on the loop; the rest (a
    # cache gone stale, a ticket's first poll after the opening) go to storage
    found = app.door.poll_cached(ticket, buyer.id)
    if found is None:
        polled = await app.polls.submit((ticket, buyer.id))
        if isinstance(polled, LampoError):
            raise polled
        found = polled
    ahead = found.ahead
    return json_response(
        200,
        ds.PollOut(
            found.state,
            None if ahead is None else (ahead + 1 if found.state == "waiting" else 0),
            ahead,
            found.eta_seconds,
            found.ticket,
            found.seq,
            found.admission,
        ),
        _NO_STORE,  # a place is now's: no cache keeps it (nor the admission)
    )


def poll_many(door: FrontDoorService, polls: Sequence[tuple[str, str]]) -> list[Poll | LampoError]:
    """Each (ticket, buyer)'s place, or its refusal: the polls of one turn of the loop,
    in one trip to the thread pool (``App.polls``)."""
    out: list[Poll | LampoError] = []
    for ticket, buyer in polls:
        try:
            out.append(door.poll(ticket, buyer))
        except LampoError as refusal:
            out.append(refusal)
    return out


# -- the gate of the buy path -------------------------------------------------------
async def gate(app: App, req: Request, buyer: Buyer, event: SaleEvent, market: str) -> str:
    """The idempotency key of a reservation behind ``event``'s front door, or "" for an
    event without one. With a waiting room: ``Lampo-Admission`` verified and bound to the
    buyer, and the key is ``adm:<admission id>`` (one admission, one hold). Without one,
    but with required registration: the buyer must be registered (and drawn, after a
    draw). Refusals change nothing and are counted with the service's."""
    door = event.front_door
    if door is None:
        return ""
    velocity(app, req, event.id)
    service = app.door
    if door.waiting_room:
        # pure (a signature and the clock): no storage, so on the loop; it counts its
        # own refusals, a missing header ("") among them
        admission = req.header(ADMISSION) or ""
        return f"adm:{service.check_admission(admission, buyer.id, event.id, market)}"
    if door.require_registration or door.lottery_factor is not None:
        try:  # the rule of joining a queue, read from the same store
            await asyncio.to_thread(service.check_eligible, event.id, buyer.id)
        except (NotDrawn, NotRegistered) as refusal:
            app.metrics.door_refused(event.id, refusal.reason)
            raise
    return ""


# -- the admin's view ---------------------------------------------------------------
def _market_out(market: str, state: QueueState) -> ds.QueueMarketOut:
    return ds.QueueMarketOut(
        market,
        state.joined,
        state.prequeue,
        state.frozen,
        state.admitted,
        state.waiting,
        state.rate,
        state.eta_last_seconds,
    )


async def queue_state(app: App, req: Request) -> Response:
    """Registrations, each market's queue (none without a waiting room), refusals."""
    event = _part(await app.event(req.params["event_id"]), "front door")
    room = event.front_door is not None and event.front_door.waiting_room
    door = app.door

    def read() -> ds.QueueOut:
        markets = [_market_out(m, door.state(event.id, m)) for m in sorted(event.windows) if room]
        refused = app.metrics.door_refusals(event.id)  # every worker's: reads their files
        return ds.QueueOut(event.id, door.registrations(event.id), markets, refused)

    return json_response(200, await asyncio.to_thread(read))


async def set_rate(app: App, req: Request) -> Response:
    event = _part(await app.event(req.params["event_id"]), "waiting room")
    require_json(req)
    data: ds.RateIn = decode(ds.rate_decoder, await req.body(app.config.max_body))
    market = _market(event, data.market)
    door = app.door

    def run() -> ds.QueueMarketOut:
        door.set_rate(event.id, market, data.per_second)
        return _market_out(market, door.state(event.id, market))

    return json_response(200, await asyncio.to_thread(run))


async def draw(app: App, req: Request) -> Response:
    event = _part(await app.event(req.params["event_id"]), "lottery")
    drawn = await asyncio.to_thread(app.door.draw, event.id)
    out = ds.DrawOut(
        event.id, drawn.seed, drawn.at.astimezone(UTC), drawn.registrations, len(drawn.winners)
    )
    return json_response(200, out)


#: Registrations written per chunk of the streamed export.
EXPORT_CHUNK = 10_000


async def registrations_csv(app: App, req: Request) -> Response:
    """Every registration as CSV (account, registered at, hashes), read off the loop and
    streamed in chunks of ``EXPORT_CHUNK`` rows: a launch's million registrations are
    never one string in memory."""
    event = _part(await app.event(req.params["event_id"]), "front door")
    rows = await asyncio.to_thread(app.door.export, event.id)

    def chunk(first: bool) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if first:
            writer.writerow(CSV_HEADER)
        for reg in itertools.islice(rows, EXPORT_CHUNK):
            writer.writerow(_csv_row(reg))
        return out.getvalue().encode()

    async def stream(send: Send) -> None:
        first = True
        while True:
            body = await asyncio.to_thread(chunk, first)
            if not body:
                return
            try:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            except (OSError, RuntimeError):  # the client left: read no further
                return
            first = False

    return Response(200, b"", [(b"content-type", _CSV)], stream)


CSV_HEADER = ("account", "registered_at", "phone_hash", "device_hash")


def write_csv(door: FrontDoorService, event: str, out: TextIO) -> int:
    """The registrations of ``event`` as CSV rows into ``out`` (UTC times); how many.
    Cells are written as they are (quoted as CSV needs): the export is the lottery's
    input, which anyone must be able to redo byte for byte, so no spreadsheet guard
    rewrites an account id."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    n = 0
    for reg in door.export(event):
        writer.writerow(_csv_row(reg))
        n += 1
    return n


def _csv_row(reg: Registration) -> tuple[str, str, str, str]:
    return (
        reg.account,
        reg.at.astimezone(UTC).isoformat(),
        reg.phone_hash or "",
        reg.device_hash or "",
    )


# -- the live wall's queue panel ----------------------------------------------------------
class QueuePanel:
    """The wall's figures of an event's waiting room (``wall.py`` calls ``read`` off the
    loop, once per event and interval): per market, waiting, admitted, admitted per
    second (measured between two readings) and the ETA of the last in line."""

    def __init__(self, door: Callable[[], FrontDoorService]) -> None:
        self._door = door
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def read(self, event: SaleEvent) -> dict[str, Any] | None:
        door = event.front_door
        if door is None or not door.waiting_room:
            return None
        service = self._door()
        now = time.monotonic()
        markets = []
        for market in sorted(event.windows):
            state = service.state(event.id, market)
            before = self._last.get((event.id, market))
            self._last[(event.id, market)] = (now, state.admitted)
            per_second = 0.0
            if before is not None and now > before[0]:
                per_second = max(0, state.admitted - before[1]) / (now - before[0])
            markets.append(
                {
                    "market": market,
                    "waiting": state.waiting,
                    "admitted": state.admitted,
                    "admitted_per_second": round(per_second),
                    "rate": state.rate,
                    "last_eta_seconds": state.eta_last_seconds,
                }
            )
        return {"registrations": service.registrations(event.id), "markets": markets}
