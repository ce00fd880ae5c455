"""``redis+postgresql://``: the live sale in Redis, the orders recorded in PostgreSQL.

Redis (``RedisStorage``) holds the live stock, holds, per-customer counters, idempotency
records and live totals: every transition is decided there, atomically, by one script
per batch. PostgreSQL (``PostgresStorage``, system of record) holds the event
definitions and every order (paid, then maybe refunded), with its own stock and totals,
written through ``PostgresStorage.record``. The order of writes, what each crash leaves
behind and how ``lampo reconcile`` repairs it: docs/storage-redis-postgres.md.

In short: reserve, release and expire touch Redis only; pay is decided in Redis, then
recorded in PostgreSQL, and acknowledged only once both are done; refund is recorded in
PostgreSQL first, then applied in Redis; setup writes PostgreSQL first. Reads come from
Redis (the live state), event definitions from PostgreSQL, and so the store registry
and the retail records (till receipts, store keys, partner orders: ``bind``).

A payment decided in Redis whose record failed (PostgreSQL went away) is answered
``Unavailable`` and kept as *pending*: it is recorded with the next batch that reaches
PostgreSQL (a payment, a refund, an expiry sweep), or by ``lampo reconcile`` if this
process dies first; a retry of the same payment id records it too. While PostgreSQL is
known to be down, a payment is refused with ``Unavailable`` before Redis is touched
(changing nothing), after one probe of PostgreSQL per batch.

URL: ``redis+postgresql://HOST:PORT/DB?prefix=lampo:&pg=<URL-encoded postgresql URL>``;
everything but ``pg`` is the Redis URL (``redis://HOST:PORT/DB?prefix=...``). Its options
are declared and checked in ``storage/urls.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

from lampo.domain.errors import LampoError, Unavailable, UnknownHold
from lampo.domain.event import SaleEvent
from lampo.domain.holds import (
    Hold,
    HoldState,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
    StockLevel,
)
from lampo.domain.stores import Store
from lampo.domain.totals import Totals
from lampo.storage import urls
from lampo.storage.port import KeyRef, Result
from lampo.storage.postgres import PostgresStorage
from lampo.storage.redis import RedisStorage
from lampo.storage.urls import StorageUrl

SCHEME = "redis+postgresql"


def split_url(url: str | StorageUrl) -> tuple[str, str]:
    """(Redis URL, PostgreSQL URL) of a checked ``redis+postgresql://`` URL."""
    checked = urls.checked(url, SCHEME)
    live = [(o.name, checked.options[o.name]) for o in checked.backend.options if o.name != "pg"]
    parts = urlsplit(checked.target)
    redis_url = urlunsplit(("redis", parts.netloc, parts.path, urlencode(live), ""))
    return redis_url, str(checked.text("pg"))


class RedisPostgresStorage:
    """The Storage port over a live ``RedisStorage`` and a recording ``PostgresStorage``."""

    def __init__(self, url: str | StorageUrl) -> None:
        # Checked in full before connecting to anything: a refusal changes nothing. The
        # one bucket (buckets=1 only) is declared in storage/urls.py: reconcile and the
        # record compare per-event stock rows of one live bucket.
        redis_url, pg_url = split_url(url)
        #: The system of record (orders, events); period reports read it.
        self.ledger = PostgresStorage(pg_url)
        try:
            #: The live sale: every transition is decided here.
            self.live = RedisStorage(redis_url)
        except BaseException:
            self.ledger.close()
            raise
        self._lock = threading.Lock()
        self._pending: dict[str, Hold] = {}  # decided in Redis, not yet recorded
        self._ledger_down = False

    # -- recording orders ----------------------------------------------------------------
    @property
    def pending(self) -> list[Hold]:
        """Orders decided in Redis whose record in PostgreSQL has not succeeded yet."""
        with self._lock:
            return list(self._pending.values())

    def _to_record(self, fresh: list[Hold]) -> list[Hold]:
        ids = {h.id for h in fresh}
        with self._lock:
            extra = [h for h in self._pending.values() if h.id not in ids]
        return fresh + extra

    def _recorded(self, orders: list[Hold], results: list[Result] | None) -> None:
        with self._lock:
            if results is None:  # PostgreSQL unavailable: keep them all for later
                self._ledger_down = True
                for order in orders:
                    self._pending.setdefault(order.id, order)
                return
            self._ledger_down = False
            for order, result in zip(orders, results, strict=True):
                if not isinstance(result, Unavailable):
                    self._pending.pop(order.id, None)

    def _ledger_is_down(self) -> bool:
        """Whether a payment must be refused before touching Redis: PostgreSQL failed
        last time and does not answer a probe now (which records the pending orders)."""
        with self._lock:
            if not self._ledger_down:
                return False
        try:
            self.flush_pending()
            if not self.pending:
                self.ledger.events()  # the probe, when there was nothing to record
        except Unavailable:
            return True
        with self._lock:
            self._ledger_down = False
        return False

    def flush_pending(self) -> int:
        """Record the pending orders; return how many are left. ``Unavailable`` if
        PostgreSQL still cannot take them."""
        orders = self.pending
        if orders:
            try:
                results = self.ledger.record(orders)
            except Unavailable:
                self._recorded(orders, None)
                raise
            self._recorded(orders, results)
        return len(self.pending)

    @staticmethod
    def _orders(results: Sequence[Result]) -> list[tuple[int, Hold]]:
        return [(i, r) for i, r in enumerate(results) if isinstance(r, Hold) and r.is_order]

    def _merge(
        self,
        results: list[Result],
        picked: list[tuple[int, Hold]],
        orders: list[Hold],
        recorded: list[Result] | None,
        error: Unavailable | None,
    ) -> list[Result]:
        self._recorded(orders, recorded)
        for n, (i, _) in enumerate(picked):
            if recorded is None:
                assert error is not None
                results[i] = error
            elif isinstance(recorded[n], LampoError):
                results[i] = recorded[n]
        return results

    # -- the port ------------------------------------------------------------------------
    def setup(self, event: SaleEvent) -> None:
        self.ledger.setup(event)  # the definition is on record before it goes live
        self.live.setup(event)

    def update(self, event: SaleEvent) -> None:
        # The live store first: it alone knows the units held, so it decides whether an
        # allocation may fall. The ledger then takes the definition (its stock moves by the
        # same amounts). If it is down, or the process dies in between, the update is
        # simply run again: the live store has it already and does nothing.
        self.live.update(event)
        self.ledger.update(event)

    def events(self) -> list[str]:
        return self.ledger.events()

    def load_events(self) -> list[SaleEvent]:
        return self.ledger.load_events()

    def reserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        return self.live.reserve(requests)

    async def areserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        return await self.live.areserve(requests)

    def recorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        return self.live.recorded(keys)  # idempotency records are live state

    async def arecorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        return await self.live.arecorded(keys)

    def pay(self, requests: Sequence[PayRequest]) -> list[Result]:
        if not requests:
            return []
        if self._ledger_is_down():
            return [Unavailable("postgresql is down: payment not taken") for _ in requests]
        results = self.live.pay(requests)
        picked = self._orders(results)
        if not picked:
            return results
        orders = self._to_record([h for _, h in picked])
        try:
            recorded: list[Result] | None = self.ledger.record(orders)
            error = None
        except Unavailable as exc:
            recorded, error = None, exc
        return self._merge(results, picked, orders, recorded, error)

    async def apay(self, requests: Sequence[PayRequest]) -> list[Result]:
        if not requests:
            return []
        if self._ledger_down and await asyncio.to_thread(self._ledger_is_down):
            return [Unavailable("postgresql is down: payment not taken") for _ in requests]
        results = await self.live.apay(requests)
        picked = self._orders(results)
        if not picked:
            return results
        orders = self._to_record([h for _, h in picked])
        try:
            recorded: list[Result] | None = await self.ledger.arecord(orders)
            error = None
        except Unavailable as exc:
            recorded, error = None, exc
        return self._merge(results, picked, orders, recorded, error)

    def release(self, requests: Sequence[ReleaseRequest]) -> list[Result]:
        return self.live.release(requests)

    def refund(self, requests: Sequence[RefundRequest]) -> list[Result]:
        """On record first (PostgreSQL), then live (Redis, at the recorded time)."""
        results: list[Result | None] = [None] * len(requests)
        picked: list[tuple[int, Hold]] = []
        for i, req in enumerate(requests):
            hold = self.live.hold(req.hold_id)
            if hold is None:
                results[i] = UnknownHold(req.hold_id)
                continue
            try:
                refunded = hold if hold.state is HoldState.REFUNDED else hold.refund(req.now)
            except LampoError as refusal:
                results[i] = refusal
                continue
            picked.append((i, refunded))
        if picked:
            orders = self._to_record([h for _, h in picked])
            try:
                recorded = self.ledger.record(orders)
            except Unavailable as exc:
                for i, _ in picked:
                    results[i] = exc
                return [r for r in results if r is not None]
            self._recorded(orders, recorded)
            live: list[tuple[int, RefundRequest]] = []
            for n, (i, _) in enumerate(picked):
                on_record = recorded[n]
                if isinstance(on_record, LampoError):
                    results[i] = on_record
                else:
                    assert on_record.refunded_at is not None
                    live.append((i, RefundRequest(on_record.id, on_record.refunded_at)))
            if live:
                for (i, _), result in zip(
                    live, self.live.refund([r for _, r in live]), strict=True
                ):
                    results[i] = result
        return [r for r in results if r is not None]

    def expire_due(self, event: str, now: datetime, limit: int = 1000) -> list[Hold]:
        if self._pending:  # the sweeper's tick also records what PostgreSQL missed
            try:
                self.flush_pending()
            except Unavailable:
                pass
        return self.live.expire_due(event, now, limit)

    def hold(self, hold_id: str) -> Hold | None:
        return self.live.hold(hold_id)

    def holds(self, event: str) -> Iterator[Hold]:
        return self.live.holds(event)

    def stock(self, event: str) -> dict[str, StockLevel]:
        return self.live.stock(event)

    def pools(self, event: str) -> dict[str, StockLevel]:
        return self.live.pools(event)

    def totals(self, event: str) -> Totals:
        return self.live.totals(event)

    # -- the store registry and the retail records: the system of record's -------------
    def stores(self) -> tuple[int, tuple[Store, ...]]:
        return self.ledger.stores()

    def put_stores(self, stores: Sequence[Store], replaces: int) -> int:
        return self.ledger.put_stores(stores, replaces)

    def bind(self, space: str, key: str, value: str) -> str:
        return self.ledger.bind(space, key, value)

    def bound(self, space: str, key: str) -> str | None:
        return self.ledger.bound(space, key)

    def bindings(self, space: str) -> dict[str, str]:
        return self.ledger.bindings(space)

    def close(self) -> None:
        try:
            self.live.close()
        finally:
            self.ledger.close()

    def __enter__(self) -> RedisPostgresStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["SCHEME", "RedisPostgresStorage", "split_url"]
