"""The sale use cases: reserve, pay, release, expire, refund, sell in store.

Each checks the event's window and domain rules, prices the request from the event, then
calls storage once. Refusals raise a ``LampoError`` and change nothing; batch variants
(``*_many``) return one result per request instead, so a driver can submit many at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from lampo.domain.catalog import check_id
from lampo.domain.channels import stock_key
from lampo.domain.errors import InvalidRequest, LampoError, SoldOut, UnknownEvent, UnknownHold
from lampo.domain.event import SaleEvent
from lampo.domain.holds import (
    Hold,
    HoldLine,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
    StockLevel,
)
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.money import Money
from lampo.domain.totals import Totals
from lampo.services.clock import Clock, utcnow
from lampo.services.ids import new_id
from lampo.storage.port import KeyRef, Result, Storage

MAX_LINES = 20
MAX_QUANTITY = 1000
#: The longest customer id.
MAX_CUSTOMER = 128


@dataclass(frozen=True, slots=True)
class ReserveCommand:
    """A buyer's request: ``items`` maps SKU to quantity. ``key`` is the idempotency key
    (one is made up when empty, so the request is then not safely retryable). ``at``: when
    it was made, for a simulation that sends many instants in one batch (None: the
    service's clock when the batch is placed; never taken from outside the process)."""

    event: str
    customer: str
    market: str
    items: Mapping[str, int]
    channel: Channel = field(default_factory=Channel)
    key: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _KnownSoldOut:
    """What the sold-out memory says of a command: its refusal, given only if its key has
    no idempotency record (``ref``; None when the command has no key, so no record)."""

    refusal: SoldOut
    ref: KeyRef | None


@dataclass(slots=True)
class _Batch:
    """A batch of commands sorted for storage: ``results`` of those refused already;
    ``requests`` for ``reserve`` (``where``: their commands' indexes); those the sold-out
    memory would refuse, whose keys' records are read first (``asked_refs``, and
    ``asked_where``: their commands' indexes)."""

    commands: Sequence[ReserveCommand]
    now: datetime
    results: list[Result | None] = field(init=False)
    requests: list[ReserveRequest] = field(default_factory=list)
    where: list[int] = field(default_factory=list)
    asked: list[_KnownSoldOut] = field(default_factory=list)
    asked_refs: list[KeyRef] = field(default_factory=list)
    asked_where: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.commands)


def _key(event: str, customer: str, key: str) -> str:
    """The storage key of a buyer's idempotency key: records are per event and customer."""
    return f"{event}:{customer}:{key}"


def _pool_of(request: ReserveRequest, sku: str) -> str:
    """The pool ``request``'s line of ``sku`` is placed in ("" if it has none)."""
    for line in request.hold.lines:
        if line.sku == sku:
            return line.pool
    return ""


def _unwrap(result: Result) -> Hold:
    if isinstance(result, LampoError):
        raise result
    return result


class Sales:
    """The sale service over one storage. Thread-safe; share one per process."""

    def __init__(self, storage: Storage, clock: Clock = utcnow, soldout_ttl: float = 0.0) -> None:
        self.storage = storage
        self.clock = clock
        #: Seconds a sold-out SKU is refused from memory, without a storage round trip.
        self.soldout_ttl = soldout_ttl
        self._events: dict[str, SaleEvent] = {}
        self._soldout: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        #: Refusals seen by this process, by (event, reason).
        self.refusals: Counter[tuple[str, str]] = Counter()

    # -- events -----------------------------------------------------------------
    def open(self, event: SaleEvent) -> None:
        """Make ``event`` known here and create its stock in storage (idempotent)."""
        self.storage.setup(event)
        self._events[event.id] = event

    def update(self, event: SaleEvent) -> None:
        """Give the live event ``event.id`` this new definition (``Storage.update``); new
        holds placed here are checked and priced by it from now on."""
        self.storage.update(event)
        self.learn(event)

    def learn(self, event: SaleEvent) -> None:
        """Take a definition that storage already holds (another process set it up or
        updated it) without writing anything."""
        if self._events.get(event.id) != event:
            self._events[event.id] = event
            self._forget_soldout(event.id)

    def event(self, event_id: str) -> SaleEvent:
        try:
            return self._events[event_id]
        except KeyError:
            raise UnknownEvent(event_id) from None

    @property
    def events(self) -> Mapping[str, SaleEvent]:
        return self._events

    # -- reserve ----------------------------------------------------------------
    def _request(
        self, cmd: ReserveCommand, now: datetime | None = None, now_mono: float | None = None
    ) -> ReserveRequest | _KnownSoldOut:
        """The priced request of ``cmd`` at ``now`` (default: the clock), or its refusal.
        With ``now_mono`` (the monotonic clock), what the sold-out memory says of it
        instead, if it says anything: checked once the command is valid and priced (a
        refusal of it comes first), before a hold is made for it."""
        if now is None:
            now = self.clock()
        event = self.event(cmd.event)
        check_id("customer", cmd.customer, MAX_CUSTOMER)
        if cmd.key:
            check_id("idempotency key", cmd.key, 128)
        event.check_open(cmd.market, now)
        items = cmd.items
        if not items:
            raise InvalidRequest("items", "a hold needs at least one SKU")
        if len(items) > MAX_LINES:
            raise InvalidRequest("items", f"at most {MAX_LINES} SKUs in one hold")
        lines = []
        limits = []
        known_out: SoldOut | None = None
        for sku in sorted(items):
            qty = items[sku]
            if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= MAX_QUANTITY:
                raise InvalidRequest("quantity", f"{sku}: must be 1..{MAX_QUANTITY}")
            price = event.price(sku, cmd.market)
            pools = event.pools_for(cmd.channel, sku, cmd.market)
            pool = pools[0]
            if now_mono is not None:
                # the first pool the sold-out memory does not know to be empty
                fresh = [p for p in pools if not self._is_soldout(event.id, sku, p, now_mono)]
                if fresh:
                    pool = fresh[0]
                elif known_out is None:
                    known_out = SoldOut(sku, qty, 0)
            lines.append(HoldLine(sku, qty, price.amount, pool))
            limits.append(event.offers[sku].limit_per_customer)
        if now_mono is not None:
            refusal = known_out
            if refusal is not None:
                if not cmd.key:
                    return _KnownSoldOut(refusal, None)
                key = _key(event.id, cmd.customer, cmd.key)
                return _KnownSoldOut(refusal, KeyRef(event.id, cmd.customer, key))
        hold_id = new_id()
        hold = Hold(
            id=hold_id,
            event=event.id,
            customer=cmd.customer,
            market=cmd.market,
            channel=cmd.channel,
            lines=tuple(lines),
            currency=event.markets[cmd.market].currency,
            created_at=now,
            expires_at=now + timedelta(seconds=event.hold_seconds),
        )
        key = _key(event.id, cmd.customer, cmd.key or "auto:" + hold_id)
        return ReserveRequest(key, hold, tuple(limits), event.limit_per_customer)

    def _is_soldout(self, event: str, sku: str, pool: str, now_mono: float) -> bool:
        """Whether the sold-out memory knows ``sku``'s ``pool`` to be empty."""
        until = self._soldout.get((event, stock_key(sku, pool)))
        return until is not None and until > now_mono

    def _count(self, event: str, refusal: LampoError) -> None:
        with self._lock:
            self.refusals[(event, refusal.reason)] += 1

    def _note(self, event: str, result: Result, request: ReserveRequest | None = None) -> None:
        """Count a refusal storage (or the service's own checks) made; remember a SKU's
        pool that storage found sold out (the pool of ``request``'s line of that SKU)."""
        if isinstance(result, LampoError):
            self._count(event, result)
            self._remember(event, result, request)

    def _remember(self, event: str, result: LampoError, request: ReserveRequest | None) -> None:
        """Keep in the sold-out memory the pool a ``SoldOut`` from storage found empty."""
        if self.soldout_ttl and isinstance(result, SoldOut) and result.available == 0:
            pool = _pool_of(request, result.sku) if request is not None else ""
            key = (event, stock_key(result.sku, pool))
            self._soldout[key] = time.monotonic() + self.soldout_ttl

    def _forget_soldout(self, event: str) -> None:
        if self._soldout:
            for key in [k for k in self._soldout if k[0] == event]:
                self._soldout.pop(key, None)

    def _prepare(self, commands: Sequence[ReserveCommand]) -> _Batch:
        batch = _Batch(commands, self.clock())  # one reading: the holds are placed together
        now_mono = time.monotonic() if self._soldout else None
        for i, cmd in enumerate(commands):
            try:
                req = self._request(cmd, cmd.at or batch.now, now_mono)
            except LampoError as refusal:
                batch.results[i] = refusal
                self._note(cmd.event, refusal)
                continue
            if isinstance(req, ReserveRequest):
                batch.requests.append(req)
                batch.where.append(i)
            elif req.ref is None:  # no key, so no record: the memory's refusal stands
                batch.results[i] = req.refusal
                self._count(cmd.event, req.refusal)
            else:
                batch.asked.append(req)
                batch.asked_refs.append(req.ref)
                batch.asked_where.append(i)
        if batch.asked:
            self._keep_order(batch)
        return batch

    def _keep_order(self, batch: _Batch) -> None:
        """A command known sold out whose key a request of the batch for ``reserve`` also
        carries goes to ``reserve`` too, in its place: storage alone says which of the two
        the key's record is for (read beside the batch, the record would be the other's)."""
        fresh = {req.key for req in batch.requests}
        if not any(ref.key in fresh for ref in batch.asked_refs):
            return
        placed = list(zip(batch.where, batch.requests, strict=True))
        asked = list(zip(batch.asked_where, batch.asked, batch.asked_refs, strict=True))
        batch.asked, batch.asked_refs, batch.asked_where = [], [], []
        for i, known, ref in asked:
            if ref.key in fresh:
                cmd = batch.commands[i]
                req = self._request(cmd, cmd.at or batch.now)  # checked once already
                assert isinstance(req, ReserveRequest)
                placed.append((i, req))
            else:
                batch.asked.append(known)
                batch.asked_refs.append(ref)
                batch.asked_where.append(i)
        placed.sort(key=lambda pair: pair[0])
        batch.where = [i for i, _ in placed]
        batch.requests = [req for _, req in placed]

    def _take_recorded(self, batch: _Batch, found: list[bool]) -> None:
        """The commands known sold out, by what their keys' records say: a key with a
        record goes to ``reserve``, which answers it from the record (the first hold, or
        the conflict); one without gets the memory's refusal, which storage did not make
        (so it arms nothing, and no cache may keep it as the key's reply)."""
        for i, known, recorded in zip(batch.asked_where, batch.asked, found, strict=True):
            cmd = batch.commands[i]
            if recorded:
                try:
                    req = self._request(cmd, cmd.at or batch.now)
                except LampoError as refusal:  # the event changed meanwhile (an update)
                    batch.results[i] = refusal
                    self._note(cmd.event, refusal)
                    continue
                assert isinstance(req, ReserveRequest)
                batch.requests.append(req)
                batch.where.append(i)
            else:
                batch.results[i] = known.refusal
                self._count(cmd.event, known.refusal)

    def _merge(self, batch: _Batch, stored: list[Result]) -> list[Result]:
        results, commands = batch.results, batch.commands
        for i, req, result in zip(batch.where, batch.requests, stored, strict=True):
            results[i] = result
            self._note(commands[i].event, result, req)
        return [r for r in results if r is not None]

    def _fallbacks(self, batch: _Batch, stored: list[Result], positions: range) -> list[int]:
        """The positions (among ``positions`` of ``batch.requests``) of requests refused
        ``SoldOut`` on a pool whose offer falls back to another, each request replaced there
        by the same request with that SKU's lines in the next pool (same key and hold id: a
        refusal wrote nothing). ``stored`` keeps the refusals of those that have no next
        pool."""
        again = []
        for n in positions:
            i, req, result = batch.where[n], batch.requests[n], stored[n]
            if not isinstance(result, SoldOut):
                continue
            nxt = self._next_pool(batch.commands[i], req, result.sku)
            if nxt is None:
                continue
            self._remember(batch.commands[i].event, result, req)  # not a refusal yet
            lines = tuple(
                replace(ln, pool=nxt) if ln.sku == result.sku else ln for ln in req.hold.lines
            )
            batch.requests[n] = replace(req, hold=replace(req.hold, lines=lines))
            again.append(n)
        return again

    def _next_pool(self, cmd: ReserveCommand, req: ReserveRequest, sku: str) -> str | None:
        """The pool after the one ``req``'s ``sku`` lines came from, if the offer has one."""
        pools = self.event(cmd.event).pools_for(cmd.channel, sku, cmd.market)
        pool = _pool_of(req, sku)
        at = pools.index(pool) if pool in pools else len(pools)
        return pools[at + 1] if at + 1 < len(pools) else None

    @staticmethod
    def _pooled(batch: _Batch, start: int, end: int) -> bool:
        """Whether a request of ``batch.requests[start:end]`` has a line in a reserved pool
        (the only kind that may fall back)."""
        return any(ln.pool for req in batch.requests[start:end] for ln in req.hold.lines)

    def _may_fall_back(self, n: int, batch: _Batch) -> bool:
        req = batch.requests[n]
        cmd = batch.commands[batch.where[n]]
        return any(
            ln.pool and self._next_pool(cmd, req, ln.sku) is not None for ln in req.hold.lines
        )

    def _segments(self, batch: _Batch, start: int, end: int) -> list[range]:
        """``batch.requests[start:end]`` in runs that each end with a request that may fall
        back to another pool (or at ``end``): a run is placed, then its fallbacks, before
        the next run, so a line that falls back is served in its arrival order."""
        out, first = [], start
        for n in range(start, end):
            if self._may_fall_back(n, batch):
                out.append(range(first, n + 1))
                first = n + 1
        if first < end:
            out.append(range(first, end))
        return out

    def _place(self, batch: _Batch, start: int, end: int) -> list[Result]:
        """Reserve ``batch.requests[start:end]``, in arrival order, each line that finds its
        reserved pool dry placed again in the next pool its offer falls back to (a line is
        served whole from one pool)."""
        if not self._pooled(batch, start, end):  # the hot path: one call, as it was
            return self.storage.reserve(batch.requests[start:end])
        stored: list[Result] = [None] * len(batch.requests)  # type: ignore[list-item]
        for run in self._segments(batch, start, end):
            for n, result in zip(
                run, self.storage.reserve(batch.requests[run.start : run.stop]), strict=True
            ):
                stored[n] = result
            for _ in range(MAX_LINES):  # each round moves one SKU of a request one pool on
                again = self._fallbacks(batch, stored, run)
                if not again:
                    break
                placed = self.storage.reserve([batch.requests[n] for n in again])
                for n, result in zip(again, placed, strict=True):
                    stored[n] = result
        return stored[start:end]

    async def _aplace(self, batch: _Batch, start: int, end: int) -> list[Result]:
        """``_place`` for a coroutine."""
        if not self._pooled(batch, start, end):
            return await self.storage.areserve(batch.requests[start:end])
        stored: list[Result] = [None] * len(batch.requests)  # type: ignore[list-item]
        for run in self._segments(batch, start, end):
            placed = await self.storage.areserve(batch.requests[run.start : run.stop])
            for n, result in zip(run, placed, strict=True):
                stored[n] = result
            for _ in range(MAX_LINES):
                again = self._fallbacks(batch, stored, run)
                if not again:
                    break
                placed = await self.storage.areserve([batch.requests[n] for n in again])
                for n, result in zip(again, placed, strict=True):
                    stored[n] = result
        return stored[start:end]

    def reserve_many(self, commands: Sequence[ReserveCommand]) -> list[Result]:
        """Place many holds in one storage batch; one result per command, in order.

        A command for a SKU known sold out (``soldout_ttl``) does not reach ``reserve``
        unless its key has an idempotency record (``Storage.recorded``, a read): then
        ``reserve`` answers it from the record; without one it is refused ``SoldOut``.
        """
        batch = self._prepare(commands)
        fresh = len(batch.requests)
        stored = self._place(batch, 0, fresh) if fresh else []
        if batch.asked:
            self._take_recorded(batch, self.storage.recorded(batch.asked_refs))
            if len(batch.requests) > fresh:
                stored += self._place(batch, fresh, len(batch.requests))
        return self._merge(batch, stored)

    async def areserve_many(self, commands: Sequence[ReserveCommand]) -> list[Result]:
        """``reserve_many`` for a coroutine: the loop runs on while the batch commits, and
        the records of the commands known sold out are read beside it."""
        batch = self._prepare(commands)
        fresh = len(batch.requests)
        stored: list[Result] = []
        if not batch.asked:
            if fresh:
                stored = await self._aplace(batch, 0, fresh)
            return self._merge(batch, stored)
        reading = self.storage.arecorded(batch.asked_refs)
        if fresh:
            stored, found = await asyncio.gather(self._aplace(batch, 0, fresh), reading)
        else:
            found = await reading
        self._take_recorded(batch, found)
        if len(batch.requests) > fresh:
            stored += await self._aplace(batch, fresh, len(batch.requests))
        return self._merge(batch, stored)

    def reserve(
        self,
        event: str,
        customer: str,
        market: str,
        items: Mapping[str, int],
        channel: Channel | None = None,
        key: str = "",
    ) -> Hold:
        """Hold ``items`` for ``customer``; raises the refusal if there is one."""
        cmd = ReserveCommand(event, customer, market, items, channel or Channel(), key)
        return _unwrap(self.reserve_many([cmd])[0])

    async def areserve(
        self,
        event: str,
        customer: str,
        market: str,
        items: Mapping[str, int],
        channel: Channel | None = None,
        key: str = "",
    ) -> Hold:
        cmd = ReserveCommand(event, customer, market, items, channel or Channel(), key)
        return _unwrap((await self.areserve_many([cmd]))[0])

    def sell(
        self,
        event: str,
        channel: Channel,
        customer: str,
        market: str,
        items: Mapping[str, int],
        key: str,
    ) -> Hold:
        """A sale that is paid as it is made (a till's, a marketplace's order line): the
        units are taken and paid at once, an order of ``channel``.

        Two steps under one key: a hold keyed ``key`` (per customer, as every reserve
        key), then its payment with payment id ``<channel kind>:<hold id>``, which no other
        sale can hold (a payment id settles one hold only). A retry with the same key after
        a crash between them finds the first hold and pays it; one after the payment finds
        the order and returns it, so the sale happens once whatever fails.
        """
        if not key:
            raise InvalidRequest("key", f"a {channel.kind} sale needs its idempotency key")
        hold = self.reserve(event, customer, market, items, channel, key)
        if hold.is_order:  # paid by the first try (under whatever payment id it used)
            return hold
        return self.pay(hold.id, f"{channel.kind}:{hold.id}")

    async def asell(
        self,
        event: str,
        channel: Channel,
        customer: str,
        market: str,
        items: Mapping[str, int],
        key: str,
    ) -> Hold:
        """``sell`` for a coroutine: the loop runs on while each step commits."""
        if not key:
            raise InvalidRequest("key", f"a {channel.kind} sale needs its idempotency key")
        hold = await self.areserve(event, customer, market, items, channel, key)
        if hold.is_order:
            return hold
        return await self.apay(hold.id, f"{channel.kind}:{hold.id}")

    def sell_in_store(
        self,
        event: str,
        store: str,
        customer: str,
        market: str,
        items: Mapping[str, int],
        key: str,
    ) -> Hold:
        """A sale at a store's till (``sell`` through the store's channel)."""
        check_id("store", store)
        return self.sell(event, Channel(ChannelKind.STORE, store), customer, market, items, key)

    # -- pay, release, refund, expire ------------------------------------------
    def _pay_requests(
        self,
        pairs: Sequence[tuple[str, str]],
        amounts: Sequence[Money | None] | None = None,
        at: Sequence[datetime] | None = None,
    ) -> tuple[list[Result | None], list[PayRequest], list[int]]:
        now = self.clock()
        results: list[Result | None] = [None] * len(pairs)
        requests: list[PayRequest] = []
        where: list[int] = []
        for i, (hold_id, payment_id) in enumerate(pairs):
            try:
                check_id("hold_id", hold_id, 128)
                check_id("payment_id", payment_id, 128)
            except LampoError as refusal:
                results[i] = refusal
                self._note("", refusal)
                continue
            amount = amounts[i] if amounts else None
            requests.append(PayRequest(hold_id, payment_id, at[i] if at else now, amount))
            where.append(i)
        return results, requests, where

    def _merge_paid(
        self, results: list[Result | None], where: list[int], stored: list[Result]
    ) -> list[Result]:
        for i, result in zip(where, stored, strict=True):
            results[i] = result
            if isinstance(result, LampoError):
                self._note("", result)
        return [r for r in results if r is not None]

    def pay_many(
        self, pairs: Sequence[tuple[str, str]], at: Sequence[datetime] | None = None
    ) -> list[Result]:
        """Pay ``(hold_id, payment_id)`` pairs in one batch; one result per pair. ``at``:
        the instant of each payment (a simulation's), else the clock's for all."""
        results, requests, where = self._pay_requests(pairs, at=at)
        stored = self.storage.pay(requests) if requests else []
        return self._merge_paid(results, where, stored)

    async def apay_many(self, pairs: Sequence[tuple[str, str]]) -> list[Result]:
        results, requests, where = self._pay_requests(pairs)
        stored = await self.storage.apay(requests) if requests else []
        return self._merge_paid(results, where, stored)

    def pay(self, hold_id: str, payment_id: str, amount: Money | None = None) -> Hold:
        """Pay a hold; the payment id is the idempotency key. ``amount``, when given, must
        be the hold's amount exactly."""
        results, requests, where = self._pay_requests([(hold_id, payment_id)], [amount])
        stored = self.storage.pay(requests) if requests else []
        return _unwrap(self._merge_paid(results, where, stored)[0])

    async def apay(self, hold_id: str, payment_id: str, amount: Money | None = None) -> Hold:
        results, requests, where = self._pay_requests([(hold_id, payment_id)], [amount])
        stored = await self.storage.apay(requests) if requests else []
        return _unwrap(self._merge_paid(results, where, stored)[0])

    def release_many(
        self, hold_ids: Sequence[str], at: Sequence[datetime] | None = None
    ) -> list[Result]:
        """Release holds in one batch; ``at``: the instant of each (as ``pay_many``)."""
        now = self.clock()
        times = at or [now] * len(hold_ids)
        results = self.storage.release(
            [ReleaseRequest(h, t) for h, t in zip(hold_ids, times, strict=True)]
        )
        for r in results:
            if isinstance(r, Hold):
                self._forget_soldout(r.event)
        return results

    def release(self, hold_id: str) -> Hold:
        check_id("hold_id", hold_id, 128)
        return _unwrap(self.release_many([hold_id])[0])

    def refund(self, hold_id: str) -> Hold:
        check_id("hold_id", hold_id, 128)
        result = _unwrap(self.storage.refund([RefundRequest(hold_id, self.clock())])[0])
        self._forget_soldout(result.event)
        return result

    def expire_due(self, event: str | None = None, limit: int = 1000) -> list[Hold]:
        """Expire the holds that are due, in every event this storage holds (or one)."""
        now = self.clock()
        events = [event] if event else self.storage.events()
        expired: list[Hold] = []
        for ev in events:
            while True:
                batch = self.storage.expire_due(ev, now, limit)
                expired.extend(batch)
                if len(batch) < limit:
                    break
            self._forget_soldout(ev)
        return expired

    # -- reads ------------------------------------------------------------------
    def hold(self, hold_id: str) -> Hold:
        hold = self.storage.hold(hold_id)
        if hold is None:
            raise UnknownHold(hold_id)
        return hold

    def stock(self, event: str) -> dict[str, StockLevel]:
        if event not in self._events and event not in self.storage.events():
            raise UnknownEvent(event)
        return self.storage.stock(event)

    def totals(self, event: str) -> Totals:
        return self.storage.totals(event)
