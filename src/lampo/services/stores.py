"""The store network's use cases: the registry (import, read, export), store keys, and the
till (a sale paid at once, and the return of a whole receipt).

Everything is kept through the storage port: the registry as a versioned document
(``Storage.stores``/``put_stores``), the rest as bindings, each written once:

- ``store-key``: key id -> ``{"store", "digest", "issued_at"}``; a key is
  ``lsk_<key id>_<secret>``, shown once when it is issued; only the SHA-256 of its secret
  is kept (the secret is 256 random bits, so a fast hash is enough).
- ``store-key-revoked``: key id -> when it was revoked (the first revocation stands).
- ``receipt``: ``"<store> <receipt id>"`` -> ``"<event> <order id>"`` (ids have no spaces).
- ``return-id``: ``"<store> <return id>"`` -> the receipt id it returned;
  ``returned``: ``"<store> <receipt id>"`` -> the return id that returned it.

A till sale is idempotent on its receipt id per store: the hold's key is the receipt id,
its customer the receipt's walk-in (``walk_in``: ``store:<store>:<receipt id>``), so an
offer's per-customer limit bounds one receipt, as a shop's "two per customer" does; a
receipt bound to another event is a conflict. A return
refunds the whole receipt (returning some lines of a receipt is not built: a refund
reverses a whole order), idempotent on its return id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from lampo.domain.catalog import check_id
from lampo.domain.errors import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidRequest,
    StoreNotOpen,
    UnknownReceipt,
    UnknownStore,
    UnknownStoreKey,
)
from lampo.domain.holds import Hold, HoldState
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.stores import Store, parse_csv, to_csv
from lampo.services.clock import Clock, utcnow
from lampo.services.ids import new_id
from lampo.services.sales import MAX_CUSTOMER, Sales
from lampo.storage.port import Storage

KEYS = "store-key"
REVOKED = "store-key-revoked"
RECEIPTS = "receipt"
RETURN_IDS = "return-id"
RETURNED = "returned"

#: A store key as issued: ``lsk_``, 16 hex digits of key id, ``_``, 43 base64url characters.
_KEY = re.compile(r"lsk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})", re.ASCII)
#: The longest ``Lampo-Store-Key`` header read at all.
MAX_KEY_TEXT = 80
#: The most keys one store may hold (revoked ones count): a bound on what a key listing
#: reads, far above a store's tills.
MAX_KEYS_PER_STORE = 1000
#: Key records a process keeps in memory (they never change): beyond, it starts again.
MAX_KEYS_KEPT = 10_000
#: Seconds a process keeps the registry it read before reading it again for a sale that
#: it finds known and open (a refusal always reads it again first).
REGISTRY_TTL = 1.0


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def walk_in(store: str, receipt_id: str) -> str:
    """The customer of a till sale: the receipt's walk-in, ``store:<store>:<receipt id>``
    (a receipt id too long for a customer id is named by its hash)."""
    customer = f"store:{store}:{receipt_id}"
    if len(customer) <= MAX_CUSTOMER:
        return customer
    digest = hashlib.blake2b(receipt_id.encode(), digest_size=16).hexdigest()
    return f"store:{store}:#{digest}"


@dataclass(frozen=True, slots=True)
class StoreKeyInfo:
    """A store key as kept: never its secret."""

    key_id: str
    store: str
    issued_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just issued: ``key`` is the whole key, shown this once and never again."""

    info: StoreKeyInfo
    key: str


@dataclass(frozen=True, slots=True)
class _Registry:
    version: int
    stores: tuple[Store, ...]
    by_id: Mapping[str, Store]
    read_at: float


class StoreNetwork:
    """The registry and the store keys over one storage. Thread-safe."""

    def __init__(self, storage: Storage, clock: Clock = utcnow) -> None:
        self.storage = storage
        self.clock = clock
        self._cached: _Registry | None = None
        self._lock = threading.Lock()
        # key id -> its record, as bound (a binding never changes, so it may be kept;
        # a revocation is another binding, read on every use)
        self._key_records: dict[str, dict[str, str]] = {}

    # -- the registry ---------------------------------------------------------------
    def _read(self) -> _Registry:
        version, stores = self.storage.stores()
        read = _Registry(version, stores, {s.id: s for s in stores}, time.monotonic())
        with self._lock:
            self._cached = read
        return read

    def registry(self) -> tuple[int, tuple[Store, ...]]:
        """The registry as stored now, and its version."""
        read = self._read()
        return read.version, read.stores

    def put(self, stores: Sequence[Store], replaces: int | None = None) -> int:
        """Replace the registry with ``stores`` if it is at version ``replaces`` (None:
        the version read just before); the new version, or ``RegistryChanged``."""
        if replaces is None:
            replaces = self._read().version
        version = self.storage.put_stores(stores, replaces)
        self._read()
        return version

    def import_csv(self, text: str, replaces: int | None = None) -> tuple[int, int]:
        """Replace the registry with a CSV file's stores, refused whole (``StoresRefused``)
        if any row is bad; ``(new version, stores)``."""
        stores = parse_csv(text)
        return self.put(stores, replaces), len(stores)

    def export_csv(self) -> tuple[int, str]:
        version, stores = self.registry()
        return version, to_csv(stores)

    def find(self, store_id: str, fresh: bool = True) -> Store:
        """A store of the registry (``fresh=False``: as read within ``REGISTRY_TTL``,
        read again before ``UnknownStore``)."""
        check_id("store", store_id)
        with self._lock:
            cached = self._cached
        if fresh or cached is None or time.monotonic() - cached.read_at > REGISTRY_TTL:
            cached = self._read()
        found = cached.by_id.get(store_id)
        if found is None and not fresh:
            found = self._read().by_id.get(store_id)
        if found is None:
            raise UnknownStore(store_id)
        return found

    def open_store(self, store_id: str, day: date) -> Store:
        """The store, if it trades on ``day``; else ``UnknownStore`` or ``StoreNotOpen``
        (both after a fresh read of the registry)."""
        store = self.find(store_id, fresh=False)
        if not store.open_on(day):
            store = self.find(store_id, fresh=True)
        if not store.open_on(day):
            closed = store.closed.isoformat() if store.closed else None
            raise StoreNotOpen(store.id, day.isoformat(), store.opened.isoformat(), closed)
        return store

    # -- keys -------------------------------------------------------------------------
    def issue_key(self, store_id: str) -> IssuedKey:
        """A new key for a store of the registry; its secret is kept only as a hash."""
        store = self.find(store_id)
        if len(self.keys(store.id)) >= MAX_KEYS_PER_STORE:
            raise InvalidRequest("store", f"{store.id} holds {MAX_KEYS_PER_STORE} keys already")
        key_id = new_id()[:16]
        secret = secrets.token_urlsafe(32)
        issued_at = self.clock()
        record = {"store": store.id, "digest": _digest(secret), "issued_at": issued_at.isoformat()}
        kept = self.storage.bind(KEYS, key_id, json.dumps(record, sort_keys=True))
        if json.loads(kept) != record:  # 64 random bits taken already: never in practice
            raise InvalidRequest("key", "a key id was drawn twice; issue again")
        info = StoreKeyInfo(key_id, store.id, issued_at)
        return IssuedKey(info, f"lsk_{key_id}_{secret}")

    def _info(self, key_id: str, kept: str, revoked: str | None) -> StoreKeyInfo:
        record = json.loads(kept)
        return StoreKeyInfo(
            key_id,
            record["store"],
            datetime.fromisoformat(record["issued_at"]),
            None if revoked is None else datetime.fromisoformat(revoked),
        )

    def keys(self, store_id: str | None = None) -> list[StoreKeyInfo]:
        """Every key issued (to one store), revoked ones with their time; by issue time."""
        revoked = self.storage.bindings(REVOKED)
        out = [
            self._info(k, v, revoked.get(k))
            for k, v in self.storage.bindings(KEYS).items()
            if store_id is None or json.loads(v)["store"] == store_id
        ]
        return sorted(out, key=lambda i: (i.issued_at, i.key_id))

    def revoke(self, key_id: str, store_id: str | None = None) -> StoreKeyInfo:
        """Revoke a key (of ``store_id``, when given) for good; revoking it again is a
        no-op that answers the first revocation."""
        kept = self.storage.bound(KEYS, key_id) if re.fullmatch("[0-9a-f]{16}", key_id) else None
        if kept is None or (store_id is not None and json.loads(kept)["store"] != store_id):
            raise UnknownStoreKey(key_id)
        when = self.storage.bind(REVOKED, key_id, self.clock().isoformat())
        return self._info(key_id, kept, when)

    def key_fits(self, store_id: str, presented: str | None) -> bool:
        """Whether ``presented`` is a key issued to ``store_id`` and not revoked."""
        if not presented or len(presented) > MAX_KEY_TEXT:
            return False
        match = _KEY.fullmatch(presented)
        if match is None:
            return False
        key_id, secret = match.groups()
        record = self._key_records.get(key_id)
        if record is None:
            kept = self.storage.bound(KEYS, key_id)
            if kept is None:
                return False
            record = json.loads(kept)
            if len(self._key_records) >= MAX_KEYS_KEPT:
                self._key_records.clear()
            self._key_records[key_id] = record
        fits = hmac.compare_digest(record["digest"], _digest(secret))
        if not fits or record["store"] != store_id:
            return False
        return self.storage.bound(REVOKED, key_id) is None


@dataclass(frozen=True, slots=True)
class TillSale:
    """A till's sale as it arrives: ``items`` maps SKU to quantity."""

    event: str
    receipt_id: str
    items: Mapping[str, int]


class Till:
    """Till sales and returns of the stores of a network, through one ``Sales``."""

    def __init__(self, sales: Sales, network: StoreNetwork) -> None:
        self.sales = sales
        self.network = network

    def _prepare(self, store_id: str, sale: TillSale) -> tuple[Store, str]:
        check_id("receipt_id", sale.receipt_id, 128)
        event = self.sales.event(sale.event)
        now = self.sales.clock()
        # the store's market's calendar day; a market outside the event: the UTC day, and
        # the sale is then refused by the event (unknown-market)
        market = event.markets.get(self.network.find(store_id, fresh=False).market)
        day = (market.local(now) if market else now).date()
        store = self.network.open_store(store_id, day)
        receipt = f"{store.id} {sale.receipt_id}"
        bound = self.network.storage.bound(RECEIPTS, receipt)
        if bound is not None and bound.split(" ")[0] != event.id:
            raise IdempotencyConflict(sale.receipt_id)
        return store, receipt

    def _bind(self, receipt: str, order: Hold, receipt_id: str) -> Hold:
        kept = self.network.storage.bind(RECEIPTS, receipt, f"{order.event} {order.id}")
        if kept != f"{order.event} {order.id}":  # the receipt sold in another event at once
            raise IdempotencyConflict(receipt_id)
        return order

    def sell(self, store_id: str, sale: TillSale) -> Hold:
        """Sell at ``store_id``'s till: an order at once, or the refusal (nothing sold)."""
        store, receipt = self._prepare(store_id, sale)
        order = self.sales.sell(
            sale.event,
            Channel(ChannelKind.STORE, store.id),
            walk_in(store.id, sale.receipt_id),
            store.market,
            sale.items,
            sale.receipt_id,
        )
        return self._bind(receipt, order, sale.receipt_id)

    async def asell(self, store_id: str, sale: TillSale) -> Hold:
        """``sell`` for a coroutine: the reads off the loop, the sale awaited."""
        store, receipt = await asyncio.to_thread(self._prepare, store_id, sale)
        order = await self.sales.asell(
            sale.event,
            Channel(ChannelKind.STORE, store.id),
            walk_in(store.id, sale.receipt_id),
            store.market,
            sale.items,
            sale.receipt_id,
        )
        return await asyncio.to_thread(self._bind, receipt, order, sale.receipt_id)

    def give_back(self, store_id: str, receipt_id: str, return_id: str) -> Hold:
        """Refund the whole order of a receipt; idempotent on ``return_id`` (per store). A
        return id used for another receipt: ``IdempotencyConflict``; a receipt returned
        under another return id: ``IllegalTransition``."""
        check_id("store", store_id)
        check_id("receipt_id", receipt_id, 128)
        check_id("return_id", return_id, 128)
        storage = self.network.storage
        receipt = f"{store_id} {receipt_id}"
        bound = storage.bound(RECEIPTS, receipt)
        if bound is None:
            raise UnknownReceipt(store_id, receipt_id)
        _, order_id = bound.split(" ")
        order = self.sales.hold(order_id)
        if not order.is_order:  # a sale a crash left unpaid: its retry pays it first
            raise IllegalTransition(order_id, order.state.value, "returned")
        returned = storage.bound(RETURNED, receipt)
        if returned is not None and returned != return_id:  # refused before any write
            raise IllegalTransition(order_id, HoldState.REFUNDED.value, "returned again")
        if storage.bind(RETURN_IDS, f"{store_id} {return_id}", receipt_id) != receipt_id:
            raise IdempotencyConflict(return_id)
        # two returns of one receipt under two ids at the very same moment: one wins here;
        # the other's return id stays bound to this receipt, which it did name
        if storage.bind(RETURNED, receipt, return_id) != return_id:
            raise IllegalTransition(order_id, HoldState.REFUNDED.value, "returned again")
        order = self.sales.hold(order_id)
        if order.state is HoldState.REFUNDED:
            return order
        return self.sales.refund(order_id)
