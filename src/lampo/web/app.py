"""The ASGI application: a small hand-written router over the sale service.

The hot path (``POST /v1/holds``, ``POST /v1/holds/{id}/pay``) costs one dict lookup to
route, one msgspec decode, a cached token check, two token buckets and one awaited
storage call that shares its SQLite transaction with every concurrent request
(reservations of concurrent requests go to ``Sales.areserve_many`` together, see
``coalesce.py``; payments to ``apay``). Everything else is plain handlers; no framework.

Every refusal is an RFC 9457 problem (``problems.py``); anything unexpected is logged and
answered with a 500 problem that carries no internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import mmap
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec

from lampo.bootstrap import build_sales
from lampo.domain.codec import event_to_dict
from lampo.domain.errors import (
    InvalidRequest,
    LampoError,
    Unavailable,
    UnknownEvent,
    UnknownHold,
)
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold, HoldState
from lampo.domain.market import Channel
from lampo.domain.money import Money
from lampo.services.sales import ReserveCommand, Sales
from lampo.sim import definition
from lampo.storage import Storage
from lampo.storage.port import Result
from lampo.web import docs, limits, live, logs, problems, schemas
from lampo.web.auth import Buyer, TokenVerifier, check_admin, verify_webhook
from lampo.web.coalesce import Coalescer
from lampo.web.config import WebConfig
from lampo.web.idempotency import Answer, Calls
from lampo.web.metrics import CONTENT_TYPE as METRICS_TYPE
from lampo.web.metrics import Metrics
from lampo.web.problems import (
    PROBLEM_JSON,
    EventExists,
    MethodNotAllowed,
    NoRoute,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from lampo.web.ratelimit import RateLimiter, shared_table
from lampo.web.shared_reads import SharedReads

log = logging.getLogger("lampo.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
_JSON_HEADER = [(b"content-type", JSON)]
_ONLINE = Channel()  # the channel of a reservation that names none (immutable, shared)
#: What a path parameter that cannot name anything answers (``limits.names_nothing``).
_NOT_FOUND: dict[str, Callable[[str], LampoError]] = {
    "event_id": UnknownEvent,
    "hold_id": UnknownHold,
}


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=lambda: list(_JSON_HEADER))


def json_response(status: int, value: Any, *extra: tuple[bytes, bytes]) -> Response:
    return Response(status, schemas.encoder.encode(value), [*_JSON_HEADER, *extra])


class Request:
    """What a handler needs of the HTTP request; the body is read once, with a limit."""

    __slots__ = ("_body", "_receive", "headers", "method", "params", "path", "query", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: bytes = scope.get("query_string", b"")
        # ASGI servers give header names lowercased (the spec requires it), as bytes.
        self.headers: dict[bytes, bytes] = dict(scope.get("headers", ()))
        self.params: dict[str, str] = {}
        self._body: bytes | None = None

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    @property
    def client(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else "unknown"

    def arg(self, name: str) -> str | None:
        values = parse_qs(self.query.decode("latin-1")).get(name)
        return values[-1] if values else None

    async def body(self, limit: int) -> bytes:
        if self._body is not None:
            return self._body
        declared = self.headers.get(b"content-length")
        if declared is not None:
            length = limits.digits(declared, limits.MAX_LENGTH_DIGITS)
            if length is None:
                raise InvalidRequest("Content-Length", "must be a whole number")
            if length > limit:
                raise PayloadTooLarge(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                # a part of a body is not the request the client meant: refuse it (the
                # client is gone and will not read the answer, but nothing is done)
                raise InvalidRequest("body", "the client left before sending all of it")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self._body = b"".join(chunks)
        return self._body

    def media_type(self) -> str:
        value = self.headers.get(b"content-type", b"").decode("latin-1")
        return value.split(";", 1)[0].strip().lower()


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Route:
    name: str  # the path template, as metrics and OpenAPI show it
    segments: tuple[str, ...]
    handlers: dict[str, Handler]


class Router:
    def __init__(self) -> None:
        self._static: dict[str, Route] = {}
        self._templated: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        segments = tuple(template.strip("/").split("/"))
        for route in (*self._static.values(), *self._templated):
            if route.name == template:
                route.handlers[method] = handler
                return
        route = Route(template, segments, {method: handler})
        if "{" in template:
            self._templated.append(route)
        else:
            self._static[template] = route

    def match(self, path: str) -> tuple[Route, dict[str, str]]:
        route = self._static.get(path)
        if route is not None:
            return route, {}
        parts = path.strip("/").split("/")
        for route in self._templated:
            if len(route.segments) != len(parts):
                continue
            params: dict[str, str] = {}
            for seg, part in zip(route.segments, parts, strict=True):
                if seg.startswith("{"):
                    if not part:
                        break
                    params[seg[1:-1]] = part
                elif seg != part:
                    break
            else:
                return route, params
        raise NoRoute(path)


class InternalError(LampoError):
    reason = "internal-error"

    def message(self) -> str:
        return "an unexpected error; it has been logged"


class OffsetClock:
    """The wall clock moved by an offset (``POST /v1/admin/clock`` when enabled)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    """The body decoded, or ``InvalidRequest``: whatever the bytes (msgspec decodes a
    value of any type recursively, so JSON nested deeper than the interpreter's limit
    raises ``RecursionError``)."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as err:
        raise InvalidRequest("body", str(err)) from None
    except msgspec.DecodeError as err:
        raise InvalidRequest("body", f"not valid JSON: {err}") from None
    except RecursionError:
        raise InvalidRequest("body", "JSON nested too deeply") from None


def _require_json(req: Request, allow_empty: bool = False) -> None:
    if req.headers.get(b"content-type") == JSON:  # what nearly every client sends
        return
    media = req.media_type()
    if media == "application/json" or media.endswith("+json"):
        return
    if allow_empty and not media:
        return
    raise UnsupportedMediaType(media, ("application/json",))


class App:
    """The ASGI callable. ``sales`` may be given (tests); otherwise the lifespan startup
    opens storage from the config, loads every event it holds and starts the sweeper."""

    def __init__(self, config: WebConfig, sales: Sales | None = None) -> None:
        self.config = config
        self.clock = OffsetClock()
        self.sales: Sales | None = sales
        self.tokens = TokenVerifier(config.secret)

        def table(name: str, rate: float) -> mmap.mmap | None:
            """The run's table shared by every worker, or None: this process's own."""
            if not config.run_dir or rate <= 0:
                return None
            return shared_table(Path(config.run_dir) / f"ratelimit-{name}")

        self.buyer_limit = RateLimiter(
            "buyer", config.buyer_rate, config.buyer_burst, table("buyer", config.buyer_rate)
        )
        self.ip_limit = RateLimiter(
            "client address", config.ip_rate, config.ip_burst, table("address", config.ip_rate)
        )
        #: Successes remembered by idempotency key, and the calls in flight.
        self.calls = Calls(config.replay_entries, config.replay_seconds)
        self.metrics = Metrics(config.metrics_dir)
        self.reservations = Coalescer(self._reserve_many, on_batch=self.metrics.batch)
        #: One read of an event's live report serves every viewer for ``report_ttl``.
        self.reports: SharedReads[bytes] = SharedReads(config.report_ttl)
        self.router = Router()
        self._sweeper: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Future[None] | None = None
        self._routes()

    # -- ASGI -------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.error("startup failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start(self) -> None:
        """Open storage and every event it holds (blocking; run once per process)."""
        if self.sales is None:
            clock = self.clock if self.config.test_clock else None
            if clock is None:
                self.sales = build_sales(self.config.engine)
            else:
                self.sales = build_sales(self.config.engine, clock)
        self.refresh_events()

    async def startup(self) -> None:
        """``start`` off the loop, then the expiry sweeper and the definitions' watcher on it."""
        await asyncio.to_thread(self.start)
        loop = asyncio.get_running_loop()
        config = self.config
        if config.sweep_interval > 0 and self._sweeper is None:
            sweep = self._every(
                config.sweep_interval, lambda: self.service.expire_due(), "expiry sweep"
            )
            self._sweeper = loop.create_task(sweep)
        if config.event_refresh > 0 and self._watcher is None:
            # the definitions that other workers (or `lampo event`) updated
            watch = self._every(
                config.event_refresh, lambda: self.refresh_events(True), "reading event definitions"
            )
            self._watcher = loop.create_task(watch)

    async def stop(self) -> None:
        for task in (self._sweeper, self._watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sweeper = self._watcher = None
        if self.sales is not None:
            await asyncio.to_thread(self.sales.storage.close)

    def refresh_events(self, definitions: bool = False) -> None:
        """Open the events storage holds that this process has not seen (another worker,
        or an admin call, may have added them); with ``definitions``, also take the new
        definitions of events updated elsewhere."""
        sales = self.service
        if not definitions and all(e in sales.events for e in sales.storage.events()):
            return  # the usual case: one read of the ids, no definitions decoded
        for event in sales.storage.load_events():
            if event.id not in sales.events:
                sales.open(event)
            else:
                sales.learn(event)

    @staticmethod
    async def _every(seconds: float, work: Callable[[], object], what: str) -> None:
        """Run ``work`` off the loop every ``seconds``, for ever; a failure is logged and
        the next round comes as usual."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(work)
            except LampoError as refusal:
                log.warning("%s refused: %s", what, refusal)
            except Exception:
                log.exception("%s failed", what)

    @property
    def service(self) -> Sales:
        if self.sales is None:
            raise Unavailable("the server is starting")
        return self.sales

    @property
    def storage(self) -> Storage:
        return self.service.storage

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        if self.config.bench and path == "/_bench/empty":
            await self._send(send, Response(200, b"{}"))
            return
        req = Request(scope, receive)
        name = "unmatched"
        try:
            route, req.params = self.router.match(path)
            name = route.name
            for param, value in req.params.items():
                if limits.names_nothing(param, value):
                    raise _NOT_FOUND[param](value) if param in _NOT_FOUND else NoRoute(path)
            handler = route.handlers.get(req.method)
            if handler is None:
                if req.method == "HEAD" and "GET" in route.handlers:
                    handler = route.handlers["GET"]
                else:
                    raise MethodNotAllowed(req.method, tuple(sorted(route.handlers)))
            if self.ip_limit.rate > 0 and name not in ("/health", "/metrics"):
                self.ip_limit.take(req.client)
            response = await handler(req)
        except LampoError as refusal:
            response = self._problem(refusal, path)
        except Exception:
            log.exception("unexpected error on %s %s", req.method, name)
            response = self._problem(InternalError(), path)
        if req.method == "HEAD":
            response = Response(response.status, b"", response.headers)
        # counted before it is sent: a client that has the answer finds it in /metrics
        self.metrics.observe(name, req.method, response.status, time.perf_counter() - started)
        await self._send(send, response)

    @staticmethod
    async def _send(send: Send, response: Response) -> None:
        headers = [*response.headers, (b"content-length", str(len(response.body)).encode())]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def _problem(self, refusal: LampoError, path: str) -> Response:
        status, body = problems.problem(refusal, path)
        self.metrics.refused(refusal.reason)
        headers = [(b"content-type", PROBLEM_JSON)]
        now = self.clock() if self.config.test_clock else None
        wait = problems.retry_after(refusal, now)
        if wait is not None:
            headers.append((b"retry-after", str(wait).encode()))
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="lampo"'))
        if isinstance(refusal, MethodNotAllowed):
            headers.append((b"allow", ", ".join(refusal.allowed).encode()))
        return Response(status, problems.encode(body), headers)

    # -- who is calling -----------------------------------------------------------
    def _buyer(self, req: Request) -> Buyer:
        buyer = self.tokens.buyer(req.headers.get(b"authorization"))
        self.buyer_limit.take(buyer.id)
        return buyer

    def _admin(self, req: Request) -> None:
        given = req.header(b"x-api-key")
        if given is None:
            auth = req.header(b"authorization") or ""
            scheme, _, value = auth.partition(" ")
            given = value if scheme.lower() == "bearer" else None
        check_admin(self.config.admin_key, given)

    @staticmethod
    def _idempotency_key(req: Request) -> str:
        return limits.idempotency_key(req.header(b"idempotency-key"))

    async def _once(
        self,
        req: Request,
        principal: str,
        key: str,
        limit: int,
        run: Callable[[bytes], Awaitable[Response]],
    ) -> Response:
        """Run a mutating call once per (principal, route, key) and body: a success is
        replayed, an identical call in flight shares its answer, and anything else is
        evaluated, storage's record of the key answering first (``idempotency.py``)."""
        body = await req.body(limit)
        fingerprint = hashlib.blake2b(body, digest_size=16).digest()

        async def evaluate() -> Answer:
            try:
                response = await run(body)
            except LampoError as refusal:
                response = self._problem(refusal, req.path)
            return response.status, response.body, tuple(response.headers)

        status, content, headers = await self.calls.once(
            (principal, req.method, req.path, key), fingerprint, evaluate
        )
        return Response(status, content, list(headers))

    # -- routes -----------------------------------------------------------------
    def _routes(self) -> None:
        add = self.router.add
        add("POST", "/v1/holds", self.reserve)
        add("GET", "/v1/holds/{hold_id}", self.read_hold)
        add("POST", "/v1/holds/{hold_id}/pay", self.pay)
        add("POST", "/v1/holds/{hold_id}/release", self.release)
        add("POST", "/v1/webhooks/payments", self.payment_webhook)
        add("GET", "/v1/events/{event_id}", self.read_event)
        add("GET", "/v1/events/{event_id}/stock", self.read_stock)
        add("GET", "/v1/events/{event_id}/report", self.read_report)
        add("GET", "/v1/admin/events", self.list_events)
        add("POST", "/v1/admin/events", self.load_event)
        add("PUT", "/v1/admin/events/{event_id}", self.update_event)
        add("GET", "/v1/admin/events/{event_id}/orders", self.list_orders)
        add("GET", "/v1/admin/events/{event_id}/totals", self.read_totals)
        add("POST", "/v1/admin/holds/{hold_id}/refund", self.refund)
        add("POST", "/v1/admin/expire", self.expire)
        add("GET", "/health", self.health)
        add("GET", "/ready", self.ready)
        add("GET", "/metrics", self.read_metrics)
        add("GET", "/openapi.json", self.openapi)
        add("GET", "/docs", self.docs)
        for path in docs.ASSETS:
            add("GET", path, self.docs_asset)
        add("GET", "/problems/{reason}", self.problem_page)
        add("GET", "/live", self.live_index)
        add("GET", "/live/{event_id}", self.live_page)
        if self.config.test_clock:
            add("POST", "/v1/admin/clock", self.move_clock)

    # -- the hot path -------------------------------------------------------------
    async def reserve(self, req: Request) -> Response:
        buyer = self._buyer(req)
        key = self._idempotency_key(req)

        async def run(body: bytes) -> Response:
            _require_json(req)
            data: schemas.ReserveIn = _decode(schemas.reserve_decoder, body)
            ch = data.channel
            channel = Channel(ch.kind, ch.name, ch.referral) if ch else _ONLINE  # type: ignore[arg-type]
            cmd = ReserveCommand(data.event, buyer.id, data.market, data.items, channel, key)
            event = self.service.events.get(data.event)
            if (
                event is None
                or data.market not in event.windows
                or not event.offers.keys() >= data.items.keys()
            ):
                # another worker may have loaded the event, or added the SKU or market
                await self._refresh_events_since_now()
            result = await self.reservations.submit(cmd)
            if isinstance(result, LampoError):
                raise result
            return json_response(
                201, schemas.hold_out(result), (b"location", f"/v1/holds/{result.id}".encode())
            )

        return await self._once(req, buyer.id, key, self.config.max_body, run)

    def _reserve_many(self, commands: Sequence[ReserveCommand]) -> Awaitable[list[Result]]:
        return self.service.areserve_many(commands)

    async def _refresh_events_since_now(self) -> None:
        """An unknown event, SKU or market may have been loaded or added by another worker:
        read the definitions in storage, with a read that starts after this call did (so an
        update answered before the request came is found). Concurrent callers share one
        read, and at most one is in flight, so a flood of bad ids costs one read at a time."""
        started_after_call = False
        while True:
            running = self._refreshing
            if running is None or running.done():
                running = self._refreshing = asyncio.ensure_future(
                    asyncio.to_thread(self.refresh_events, True)
                )
                started_after_call = True
            with contextlib.suppress(Exception):
                await asyncio.shield(running)
            if started_after_call:
                return
            started_after_call = True  # any read that starts from now on does

    async def _own_hold(self, buyer: Buyer, hold_id: str) -> Hold:
        hold = self.storage.hold(hold_id)  # a well-formed id (checked with the route)
        if hold is None or hold.customer != buyer.id:
            raise UnknownHold(hold_id)  # someone else's hold does not exist for this buyer
        return hold

    async def pay(self, req: Request) -> Response:
        buyer = self._buyer(req)
        key = self._idempotency_key(req)
        hold_id = req.params["hold_id"]

        async def run(body: bytes) -> Response:
            data = schemas.PayIn()
            if body.strip():
                _require_json(req)
                data = _decode(schemas.pay_decoder, body)
            amount = Money(data.amount.amount, data.amount.currency) if data.amount else None
            await self._own_hold(buyer, hold_id)
            order = await self.service.apay(hold_id, key, amount)
            return json_response(200, schemas.hold_out(order))

        return await self._once(req, buyer.id, key, self.config.max_body, run)

    # -- the rest of the buyer API -------------------------------------------------
    async def release(self, req: Request) -> Response:
        buyer = self._buyer(req)
        key = self._idempotency_key(req)
        hold_id = req.params["hold_id"]

        async def run(body: bytes) -> Response:
            await self._own_hold(buyer, hold_id)
            hold = await asyncio.to_thread(self.service.release, hold_id)
            return json_response(200, schemas.hold_out(hold))

        return await self._once(req, buyer.id, key, self.config.max_body, run)

    async def read_hold(self, req: Request) -> Response:
        hold_id = req.params["hold_id"]
        if req.header(b"x-api-key") is not None:
            self._admin(req)
            hold = self.storage.hold(hold_id)
            if hold is None:
                raise UnknownHold(hold_id)
        else:
            hold = await self._own_hold(self._buyer(req), hold_id)
        return json_response(200, schemas.hold_out(hold))

    async def payment_webhook(self, req: Request) -> Response:
        body = await req.body(self.config.max_body)
        verify_webhook(
            self.config.webhook_secret,
            req.header(b"lampo-signature"),
            body,
            self.config.webhook_tolerance,
        )
        _require_json(req)
        data: schemas.PaymentWebhookIn = _decode(schemas.webhook_decoder, body)
        amount = Money(data.amount.amount, data.amount.currency)
        order = await self.service.apay(data.hold_id, data.payment_id, amount)
        return json_response(200, schemas.hold_out(order))

    # -- events, stock, report -------------------------------------------------------
    def _event(self, event_id: str) -> SaleEvent:
        sales = self.service
        if event_id not in sales.events:
            if event_id in sales.storage.events():
                self.refresh_events()
            else:
                raise UnknownEvent(event_id)
        return sales.event(event_id)

    async def read_event(self, req: Request) -> Response:
        event = self._event(req.params["event_id"])
        return json_response(200, event_to_dict(event))

    async def read_stock(self, req: Request) -> Response:
        event = self._event(req.params["event_id"])
        return json_response(200, schemas.stock_out(event.id, self.storage.stock(event.id)))

    async def read_report(self, req: Request) -> Response:
        """The live report, read at most once per ``report_ttl`` per event however many
        dashboards ask (``SharedReads``): live totals and stock only, no order is read."""
        event_id = self._event(req.params["event_id"]).id
        body = await self.reports.get(event_id, lambda: self._report_body(event_id))
        return Response(200, body)

    def _report_body(self, event_id: str) -> bytes:
        as_of = self.clock()
        event = self.service.event(event_id)  # the newest definition this worker knows
        report = schemas.report_out(
            event, self.storage.totals(event_id), self.storage.stock(event_id), as_of
        )
        # msgspec's module-level encoder: this runs in a thread, beside the loop's encoder
        return msgspec.json.encode(report)

    # -- the live dashboard ------------------------------------------------------------
    async def live_index(self, req: Request) -> Response:
        await asyncio.to_thread(self.refresh_events)
        events = list(self.service.events.values())
        page = live.index(events, self.clock())
        if len(events) == 1:  # straight to the only event's page (the list links to it too)
            location = (b"location", live.path_of(events[0].id).encode())
            return Response(302, page.body, [*page.headers, location])
        return Response(200, page.body, page.headers)

    async def live_page(self, req: Request) -> Response:
        event_id = req.params["event_id"]
        try:
            event = self._event(event_id)
        except UnknownEvent:
            page = live.not_found(event_id)
            return Response(404, page.body, page.headers)
        page = live.dashboard(event)
        return Response(200, page.body, page.headers)

    # -- admin ------------------------------------------------------------------------
    async def list_events(self, req: Request) -> Response:
        self._admin(req)
        await asyncio.to_thread(self.refresh_events)
        items = [
            schemas.EventSummary(e.id, e.name, e.opens, e.closes)
            for _, e in sorted(self.service.events.items())
        ]
        return json_response(200, schemas.EventList(items))

    def _event_from_body(self, req: Request, body: bytes) -> SaleEvent:
        """The event an admin upload defines: JSON (the codec's form, as ``GET
        /v1/events/{id}`` gives it) or a scenario TOML file, scaled by ``?scale=``."""
        media = req.media_type()
        if media in ("application/toml", "text/toml"):
            factor = limits.decimal(req.arg("scale") or "1", "scale")
            return definition.parse(body, "toml", "upload", factor)
        if media == "application/json":
            return definition.parse(body, "json", "upload")
        raise UnsupportedMediaType(media, ("application/json", "application/toml"))

    async def load_event(self, req: Request) -> Response:
        self._admin(req)
        key = self._idempotency_key(req)

        async def run(body: bytes) -> Response:
            event = self._event_from_body(req, body)
            return await asyncio.to_thread(self._setup, event)

        return await self._once(req, "admin", key, self.config.max_admin_body, run)

    def _setup(self, event: SaleEvent) -> Response:
        sales = self.service
        known = {e.id: e for e in sales.storage.load_events()}
        status = 201
        if event.id in known:
            if known[event.id] != event:
                raise EventExists(event.id)
            status = 200
        sales.open(event)
        return self._summary(status, event)

    def _summary(self, status: int, event: SaleEvent) -> Response:
        summary = schemas.EventSummary(event.id, event.name, event.opens, event.closes)
        return json_response(status, summary, (b"location", f"/v1/events/{event.id}".encode()))

    async def update_event(self, req: Request) -> Response:
        self._admin(req)
        key = self._idempotency_key(req)
        event_id = req.params["event_id"]

        async def run(body: bytes) -> Response:
            event = self._event_from_body(req, body)
            if event.id != event_id:
                raise InvalidRequest("id", f"the body defines {event.id!r}, not {event_id!r}")
            await asyncio.to_thread(self.service.update, event)
            return self._summary(200, event)

        return await self._once(req, "admin", key, self.config.max_admin_body, run)

    async def list_orders(self, req: Request) -> Response:
        self._admin(req)
        event = self._event(req.params["event_id"])
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

        def page() -> tuple[list[Hold], str | None]:
            found = sorted(
                (
                    h
                    for h in self.storage.holds(event.id)
                    if (state is None or h.state.value == state) and h.id > after
                ),
                key=lambda h: h.id,
            )
            more = len(found) > limit
            found = found[:limit]
            return found, (found[-1].id if more and found else None)

        holds, cursor = await asyncio.to_thread(page)
        return json_response(200, schemas.HoldList([schemas.hold_out(h) for h in holds], cursor))

    async def read_totals(self, req: Request) -> Response:
        """The live totals at their finest grain, for an audit from outside (``lampo
        simulate --target`` recounts them from the orders)."""
        self._admin(req)
        event = self._event(req.params["event_id"])
        totals = await asyncio.to_thread(self.storage.totals, event.id)
        return json_response(200, schemas.totals_out(event.id, totals))

    async def refund(self, req: Request) -> Response:
        self._admin(req)
        key = self._idempotency_key(req)
        hold_id = req.params["hold_id"]

        async def run(body: bytes) -> Response:
            order = await asyncio.to_thread(self.service.refund, hold_id)
            return json_response(200, schemas.hold_out(order))

        return await self._once(req, "admin", key, self.config.max_body, run)

    async def expire(self, req: Request) -> Response:
        self._admin(req)
        key = self._idempotency_key(req)

        async def run(body: bytes) -> Response:
            expired = await asyncio.to_thread(self.service.expire_due)
            return json_response(200, {"expired": len(expired)})

        return await self._once(req, "admin", key, self.config.max_body, run)

    async def move_clock(self, req: Request) -> Response:
        self._admin(req)
        data = _decode(schemas.any_decoder, await req.body(self.config.max_body))
        seconds = data.get("advance_seconds") if isinstance(data, dict) else None
        self.clock.offset += limits.clock_step(seconds, self.clock.offset)
        return json_response(200, {"now": self.clock()})

    # -- operations ---------------------------------------------------------------------
    async def health(self, req: Request) -> Response:
        return json_response(200, schemas.Health("ok"))

    async def ready(self, req: Request) -> Response:
        try:
            await asyncio.to_thread(self.storage.events)
        except LampoError:
            raise
        except Exception as exc:
            raise Unavailable(type(exc).__name__) from None
        return json_response(200, schemas.Health("ready"))

    async def read_metrics(self, req: Request) -> Response:
        def text() -> bytes:  # reads storage and the workers' files: off the loop
            return self.metrics.render({ev: self.storage.stock(ev) for ev in self.service.events})

        return Response(200, await asyncio.to_thread(text), [(b"content-type", METRICS_TYPE)])

    async def openapi(self, req: Request) -> Response:
        from lampo.web.openapi import spec

        return json_response(200, spec())

    async def docs(self, req: Request) -> Response:
        page = docs.page()
        return Response(page.status, page.body, page.headers)

    async def docs_asset(self, req: Request) -> Response:
        page = docs.asset(req.path)
        return Response(page.status, page.body, page.headers)

    async def problem_page(self, req: Request) -> Response:
        reason = req.params["reason"]
        kind = problems.TYPES.get(reason)
        if kind is None:
            raise NoRoute(req.path)
        text = f"{reason}: {kind.title} (HTTP {kind.status})\n"
        return Response(200, text.encode(), [(b"content-type", b"text/plain; charset=utf-8")])


#: Allocations (net, of objects the cyclic garbage collector tracks) between two
#: collections of its youngest generation in a server process; Python's default is 700.
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Run the cyclic garbage collector less often, in a server process.

    Every reservation leaves objects that live on (the hold and its line in a storage
    cache, an entry of the replay cache), so with the default threshold the collector
    runs every ~90 reservations and, through its older generations, keeps walking every
    cached hold: 6-25 % of a reservation's CPU in-process (SQLite, memory). The hot path
    makes no reference cycles, so collecting less often costs no memory worth counting.
    Never lowers a threshold set higher (or collection turned off) by the deployment.
    """
    young, middle, old = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def create_app() -> App:
    """The app configured from the environment (the factory ``lampo serve`` runs)."""
    config = WebConfig.from_env()
    logs.configure(logs.LogFormat(config.log_format))
    tune_gc()
    return App(config)
