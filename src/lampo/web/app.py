"""The ASGI application: the sale service behind the route table (``routes.py``).

``App`` holds what every handler shares (configuration, the service, the rate limits,
the idempotency records, the coalescers, metrics) and dispatches each request: route
(``asgi.Router``), the client address's rate limit, the caller the route asks for
(``routes.Auth``), the handler, and every refusal as an RFC 9457 problem
(``problems.py``); anything unexpected is logged and answered with a 500 problem that
carries no internals. The handlers are in ``buyer.py``, ``webhooks.py``, ``admin.py``
and ``pages.py``.

The hot path (``POST /v1/holds``, ``POST /v1/holds/{id}/pay``) costs one dict lookup to
route, one msgspec decode, a cached token check, two token buckets and one awaited
storage call that shares its SQLite transaction with every concurrent request
(reservations of concurrent requests go to ``Sales.areserve_many`` together, see
``coalesce.py``; payments to ``apay``). No handler calls storage on the event loop: the
storage's own awaitable calls, a coalescer, or the thread pool (``tests/unit/
test_web_loop.py`` runs the buyer and admin flows over a storage that refuses a call
from the loop's thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mmap
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from lampo.bootstrap import build_sales
from lampo.domain.errors import (
    LampoError,
    Unavailable,
    UnknownEvent,
    UnknownHold,
    UnknownStore,
    UnknownStoreKey,
)
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold
from lampo.domain.period import Period
from lampo.services.frontdoor import FrontDoorService, Poll
from lampo.services.partners import Intake
from lampo.services.sales import ReserveCommand, Sales
from lampo.services.stores import StoreNetwork, Till
from lampo.storage import Storage
from lampo.storage.door import door_store
from lampo.storage.port import Result
from lampo.web import limits, logs, problems, results
from lampo.web.asgi import (
    InternalError,
    OffsetClock,
    Receive,
    Request,
    Response,
    Router,
    Scope,
    Send,
    tune_gc,
)
from lampo.web.auth import Buyer, TokenVerifier, check_admin
from lampo.web.coalesce import Coalescer
from lampo.web.config import WebConfig
from lampo.web.frontdoor import QueuePanel, poll_many
from lampo.web.idempotency import Answer, Calls
from lampo.web.metrics import Metrics
from lampo.web.problems import PROBLEM_JSON, MethodNotAllowed, NoRoute
from lampo.web.ratelimit import RateLimiter, shared_table
from lampo.web.route import Auth, Route
from lampo.web.routes import ROUTES
from lampo.web.shared_reads import SharedReads
from lampo.web.wall import Wall

log = logging.getLogger("lampo.web")

#: What a path parameter that cannot name anything answers (``limits.names_nothing``).
_NOT_FOUND: dict[str, Callable[[str], LampoError]] = {
    "event_id": UnknownEvent,
    "hold_id": UnknownHold,
    "store": UnknownStore,
    "key_id": UnknownStoreKey,
}


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
        # -- the front door (web/frontdoor.py): velocity limits, the live count --
        self.device_limit = RateLimiter(
            "device", config.device_rate, config.device_burst, table("device", config.device_rate)
        )
        self.network_limit = RateLimiter(
            "network",
            config.network_rate,
            config.network_burst,
            table("network", config.network_rate),
        )
        self.door_counts: SharedReads[int] = SharedReads(config.report_ttl)
        #: The polls of one turn of the loop, answered in one trip to the thread pool.
        self.polls: Coalescer[tuple[str, str], Poll | LampoError] = Coalescer(self._poll_many)
        self._door: FrontDoorService | None = None
        # --
        #: Successes remembered by idempotency key, and the calls in flight.
        self.calls = Calls(config.replay_entries, config.replay_seconds)
        self.metrics = Metrics(config.metrics_dir)
        self.reservations: Coalescer[ReserveCommand, Result] = Coalescer(
            self._reserve_many, on_batch=self.metrics.batch
        )
        #: The holds whose owner a call checks, read together off the loop.
        self.hold_reads: Coalescer[str, Hold | None] = Coalescer(self._read_holds)
        #: One read of an event's live report serves every viewer for ``report_ttl``.
        self.reports: SharedReads[bytes] = SharedReads(config.report_ttl)
        #: The results pages, read the same way (one read of every order per period) but
        #: kept longer (``results.TTL``; not at all when ``report_ttl`` is 0), and the
        #: periods with orders, which answer a period without any before a read.
        results_ttl = results.TTL if config.report_ttl > 0 else 0.0
        self.results: SharedReads[results.Page] = SharedReads(results_ttl)
        self.periods: SharedReads[list[Period]] = SharedReads(results_ttl)
        #: One aggregation per watched event and interval, pushed to every viewer.
        self.wall = Wall(
            config.wall_interval,
            lambda e: self.service.event(e),
            lambda: self.storage,
            self.clock,
            QueuePanel(lambda: self.door).read,
        )
        self.router: Router[Route] = Router()
        for route in ROUTES:
            if config.test_clock or not route.test_clock:
                self.router.add(route.method, route.path, route)
        self._sweeper: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._warmer: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Future[None] | None = None
        self._retail_parts: tuple[StoreNetwork, Till, Intake] | None = None

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
        _ = self.door  # the front door's store is made here, off the loop (it reads files)
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
        if self._warmer is None:
            self._warmer = loop.create_task(self._warm_door())

    async def _warm_door(self) -> None:
        """Every half of the poll caches' life, read again (off the loop) the queues
        polled since the last time (``FrontDoorService.warm``), so that the loop answers
        polls from fresh caches; nothing while nobody polls."""
        door = self.door
        while True:
            await asyncio.sleep(door.cache_seconds / 2)
            if not door.polled():
                continue
            try:
                await asyncio.to_thread(door.warm)
            except Exception:  # a poll reads it again itself: logged, and on
                log.exception("warming the waiting rooms' caches failed")

    async def stop(self) -> None:
        await self.wall.close()
        for task in (self._sweeper, self._watcher, self._warmer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sweeper = self._watcher = self._warmer = None
        if self.sales is not None:
            await asyncio.to_thread(self.sales.storage.close)

    def refresh_events(self, definitions: bool = False) -> None:
        """Open the events storage holds that this process has not seen (another worker,
        or an admin call, may have added them); with ``definitions``, also take the new
        definitions of events updated elsewhere. Blocking: call it off the loop."""
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

    # -- the store network, the till, the partners (built on first use) ---------------
    def _retail(self) -> tuple[StoreNetwork, Till, Intake]:
        sales = self.service
        built = self._retail_parts
        if built is None or built[1].sales is not sales:
            network = StoreNetwork(sales.storage, sales.clock)
            built = self._retail_parts = (network, Till(sales, network), Intake(sales))
        return built

    @property
    def network(self) -> StoreNetwork:
        return self._retail()[0]

    @property
    def till(self) -> Till:
        return self._retail()[1]

    @property
    def intake(self) -> Intake:
        return self._retail()[2]

    @property
    def door(self) -> FrontDoorService:
        """The front door service over this worker's storage (``web/frontdoor.py``)."""
        if self._door is None:
            sales = self.service
            self._door = FrontDoorService(
                sales,
                door_store(sales.storage),
                self.config.secret,
                on_refusal=self.metrics.door_refused,
            )
        return self._door

    def _poll_many(self, polls: Sequence[tuple[str, str]]) -> Awaitable[list[Poll | LampoError]]:
        door = self.door
        return asyncio.to_thread(poll_many, door, polls)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        if self.config.bench and path == "/_bench/empty":
            await self._send(send, Response(200, b"{}"))
            return
        req = Request(scope, receive, started)
        name = "unmatched"
        try:
            match, req.params = self.router.match(path)
            name = match.name
            for param, value in req.params.items():
                if limits.names_nothing(param, value):
                    raise _NOT_FOUND[param](value) if param in _NOT_FOUND else NoRoute(path)
            route = match.by_method.get(req.method)
            if route is None:
                if req.method == "HEAD" and "GET" in match.by_method:
                    route = match.by_method["GET"]
                else:
                    raise MethodNotAllowed(req.method, tuple(sorted(match.by_method)))
            if self.ip_limit.rate > 0 and name not in ("/health", "/metrics"):
                self.ip_limit.take(req.client)
            auth = route.auth
            if auth is Auth.BUYER:
                req.buyer = self.check_buyer(req)
            elif auth is Auth.ADMIN:
                self.check_admin(req)
            elif auth is Auth.BUYER_OR_ADMIN:
                if b"x-api-key" in req.headers:
                    self.check_admin(req)
                else:
                    req.buyer = self.check_buyer(req)
            response = await route.handler(self, req)
        except LampoError as refusal:
            response = self.problem(refusal, path)
        except Exception:
            log.exception("unexpected error on %s %s", req.method, name)
            response = self.problem(InternalError(), path)
        if req.method == "HEAD":
            response = Response(response.status, b"", response.headers)  # and no stream
        # counted before it is sent: a client that has the answer finds it in /metrics
        self.metrics.observe(name, req.method, response.status, time.perf_counter() - started)
        await self._send(send, response)

    @staticmethod
    async def _send(send: Send, response: Response) -> None:
        if response.stream is not None:  # no length: the body runs until the stream ends
            start = {"type": "http.response.start", "status": response.status}
            await send({**start, "headers": response.headers})
            await response.stream(send)
            with contextlib.suppress(OSError, RuntimeError):  # the client may be gone
                await send({"type": "http.response.body", "body": b""})
            return
        headers = [*response.headers, (b"content-length", str(len(response.body)).encode())]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def problem(self, refusal: LampoError, path: str) -> Response:
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
    def check_buyer(self, req: Request) -> Buyer:
        buyer = self.tokens.buyer(req.headers.get(b"authorization"))
        self.buyer_limit.take(buyer.id)
        return buyer

    def check_admin(self, req: Request) -> None:
        given = req.header(b"x-api-key")
        if given is None:
            auth = req.header(b"authorization") or ""
            scheme, _, value = auth.partition(" ")
            given = value if scheme.lower() == "bearer" else None
        check_admin(self.config.admin_key, given)

    @staticmethod
    def idempotency_key(req: Request) -> str:
        return limits.idempotency_key(req.header(b"idempotency-key"))

    async def once(
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
                response = self.problem(refusal, req.path)
            return response.status, response.body, tuple(response.headers)

        status, content, headers = await self.calls.once(
            (principal, req.method, req.path, key), fingerprint, evaluate
        )
        return Response(status, content, list(headers))

    # -- what handlers read -------------------------------------------------------
    def _reserve_many(self, commands: Sequence[ReserveCommand]) -> Awaitable[list[Result]]:
        return self.service.areserve_many(commands)

    def _read_holds(self, hold_ids: Sequence[str]) -> Awaitable[list[Hold | None]]:
        storage = self.storage
        return asyncio.to_thread(lambda: [storage.hold(h) for h in hold_ids])

    async def hold(self, hold_id: str) -> Hold:
        """Any hold or order (an admin's read); the id is well formed (checked with the
        route)."""
        hold = await self.hold_reads.submit(hold_id)
        if hold is None:
            raise UnknownHold(hold_id)
        return hold

    async def own_hold(self, buyer: Buyer, hold_id: str) -> Hold:
        hold = await self.hold_reads.submit(hold_id)
        if hold is None or hold.customer != buyer.id:
            raise UnknownHold(hold_id)  # someone else's hold does not exist for this buyer
        return hold

    async def event(self, event_id: str) -> SaleEvent:
        """A known event: this worker's, or one storage holds that another worker (or an
        admin call) added, read off the loop; else ``UnknownEvent``."""
        sales = self.service
        if event_id not in sales.events:
            if not await asyncio.to_thread(self._load_if_stored, event_id):
                raise UnknownEvent(event_id)
        return sales.event(event_id)

    def _load_if_stored(self, event_id: str) -> bool:
        if event_id not in self.storage.events():
            return False
        self.refresh_events()
        return True

    async def refresh_events_since_now(self) -> None:
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


def create_app() -> App:
    """The app configured from the environment (the factory ``lampo serve`` runs)."""
    config = WebConfig.from_env()
    logs.configure(logs.LogFormat(config.log_format))
    tune_gc()
    return App(config)
