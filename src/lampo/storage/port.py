"""The storage port: atomic, batch-oriented state transitions.

Every batch method takes a sequence of requests and returns one result per request, in
order: the new ``Hold`` or the ``LampoError`` that refused it. A refused request changed
nothing. A backend may run a whole batch in one transaction (group commit) and returns
only once the batch is durable. Live totals change in the same atomic step as the
transition that changes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from lampo.domain.channels import split_stock_key
from lampo.domain.errors import InvalidRequest, LampoError, RegistryChanged, UpdateRefused
from lampo.domain.event import SaleEvent
from lampo.domain.holds import (
    Hold,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
    StockLevel,
)
from lampo.domain.stores import Store, parse_csv, to_csv
from lampo.domain.totals import Totals

Result = Hold | LampoError


@dataclass(frozen=True, slots=True)
class KeyRef:
    """An idempotency key as ``reserve`` gets it (``ReserveRequest.key``), with the event
    and customer of the requests under it: where a backend keeps its record (on Redis,
    the event's slot and the customer's stock bucket)."""

    event: str
    customer: str
    key: str


class CorruptStore(RuntimeError):
    """The stored state in a transition's way is unusable (a key of another type, a field
    that is missing or not an integer, a counter that would leave 64 bits): the backend
    wrote nothing for the request. A fault of the store, for an operator to repair; never
    a refusal of the caller, so not a ``LampoError`` (over HTTP: 500, not 4xx or 503)."""


def check_same_definition(known: SaleEvent, new: SaleEvent) -> None:
    """Refuse to set up an event again under another definition (changing a live
    event's allocation or prices is not what ``setup`` does)."""
    if known != new:
        raise InvalidRequest(
            "event", f"{new.id!r} exists with another definition; setup changes nothing"
        )


def below_committed(event: str, key: str, allocation: int, committed: int) -> UpdateRefused:
    """The refusal of an allocation lower than the units held and sold, of the stock row
    under ``key`` (a SKU's shared pool, or ``"<sku> <pool>"``: ``channels.stock_key``)."""
    sku, pool = split_stock_key(key)
    where = f"{sku} (pool {pool})" if pool else sku
    return UpdateRefused(
        event, "allocation", f"{where}: {committed} units are held or sold, more than {allocation}"
    )


#: The name the store registry is kept under among a backend's versioned documents.
STORES_DOCUMENT = "stores"
#: The longest value ``bind`` keeps (a partner order's answers, 1,000 lines of at most
#: about 700 bytes each, fit): checked before anything is written.
MAX_BOUND_VALUE = 1 << 20


def stores_from_document(found: tuple[int, str] | None) -> tuple[int, tuple[Store, ...]]:
    """The registry of a stored document (``(version, CSV)``), ``(0, ())`` for none."""
    if found is None:
        return 0, ()
    return found[0], tuple(parse_csv(found[1]))


def stores_document(stores: Sequence[Store], replaces: int) -> str:
    """The stored form of a registry (its CSV); ``replaces`` checked as a version."""
    if isinstance(replaces, bool) or not isinstance(replaces, int) or not 0 <= replaces < 2**62:
        raise InvalidRequest("replaces", f"must be a version from 0 to 2**62, got {replaces!r}")
    return to_csv(stores)


def check_replaces(version: int, replaces: int) -> int:
    """The version a write of a registry at ``version`` makes, or ``RegistryChanged``."""
    if version != replaces:
        raise RegistryChanged(version, replaces)
    return version + 1


def check_binding(space: str, key: str, value: str) -> None:
    """Refuse a binding no backend should keep: an empty space or key, or a value longer
    than ``MAX_BOUND_VALUE`` characters."""
    if not space or not key or len(key) > 1024:
        raise InvalidRequest("key", "a binding needs a space and a key of at most 1,024 chars")
    if len(value) > MAX_BOUND_VALUE:
        raise InvalidRequest("value", f"longer than {MAX_BOUND_VALUE} characters")


class Reads(Protocol):
    """What the battle report and the audit read: a ``Storage``, or a snapshot of one read
    from elsewhere (``lampo simulate --target`` reads a server's over HTTP)."""

    def load_events(self) -> list[SaleEvent]: ...

    def holds(self, event: str) -> Iterator[Hold]: ...

    def stock(self, event: str) -> dict[str, StockLevel]:
        """Per SKU, its pools added up (``holds.by_sku``)."""

    def pools(self, event: str) -> dict[str, StockLevel]:
        """Per stock row, by stock key (``channels.stock_key``): each level's ``sku`` is
        the SKU, its ``pool`` the pool ("" shared)."""

    def totals(self, event: str) -> Totals: ...


@runtime_checkable
class Storage(Protocol):
    def setup(self, event: SaleEvent) -> None:
        """Keep the event's definition and create its stock at its allocation.
        Idempotent: a second call with the same definition changes nothing; one with a
        different definition is refused (``InvalidRequest``) and changes nothing."""

    def update(self, event: SaleEvent) -> None:
        """Give a live event the definition ``event``, in one atomic step: new SKUs get
        stock at their allocation, a changed allocation moves ``available`` by the same
        amount. Holds keep the prices they were placed at. Refuses, changing nothing:
        ``UnknownEvent``; ``UpdateRefused`` by ``plan_update``'s rules, or with field
        ``allocation`` (``below_committed``) when an allocation would fall below the units
        held and sold. The definition it holds already: a no-op."""

    def events(self) -> list[str]:
        """Ids of the events this storage holds."""

    def load_events(self) -> list[SaleEvent]:
        """The definitions of every event this storage holds, as ``setup`` got them."""

    def reserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        """Place holds, each all-or-nothing, SKUs taken in a fixed order."""

    def pay(self, requests: Sequence[PayRequest]) -> list[Result]:
        """Turn holds into orders; a repeated payment id returns the first result."""

    async def areserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        """``reserve`` for a coroutine: the event loop is not blocked while the batch
        commits, and concurrent coroutines' requests share a batch."""

    async def apay(self, requests: Sequence[PayRequest]) -> list[Result]:
        """``pay`` for a coroutine (the hot path's other half)."""

    def recorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        """Whether each key has an idempotency record, that is whether ``reserve`` would
        answer a request under it from that record alone (the first hold, or the
        conflict). A read of committed state, writing nothing, one round trip per batch
        where the backend allows: a cache that refuses before ``reserve`` (the service's
        sold-out memory) asks it first, and sends the keys that have one to ``reserve``."""

    async def arecorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        """``recorded`` for a coroutine: the event loop is not blocked by the read."""

    def release(self, requests: Sequence[ReleaseRequest]) -> list[Result]:
        """Return held stock to the pool at once; releasing a released hold is a no-op."""

    def refund(self, requests: Sequence[RefundRequest]) -> list[Result]:
        """Reverse orders: units back to the pool, money out of the totals."""

    def expire_due(self, event: str, now: datetime, limit: int = 1000) -> list[Hold]:
        """Expire up to ``limit`` holds of ``event`` whose deadline is ``<= now``."""

    def hold(self, hold_id: str) -> Hold | None: ...

    def holds(self, event: str) -> Iterator[Hold]:
        """Every hold and order of the event, in any state."""

    def stock(self, event: str) -> dict[str, StockLevel]:
        """Each SKU's stock, its pools added up (``holds.by_sku``), sorted by SKU."""

    def pools(self, event: str) -> dict[str, StockLevel]:
        """Each stock row by stock key (``channels.stock_key``), sorted: a SKU's shared
        pool under its id, a reserved pool under ``"<sku> <pool>"``; each level's ``sku``
        is the SKU, its ``pool`` the pool ("" shared). Sums to ``stock`` per SKU."""

    def totals(self, event: str) -> Totals:
        """The live totals, as kept by the transitions (not recounted)."""

    # -- the store registry and the retail records (issue 12) ---------------------------
    def stores(self) -> tuple[int, tuple[Store, ...]]:
        """The store registry and its version; ``(0, ())`` before the first write."""

    def put_stores(self, stores: Sequence[Store], replaces: int) -> int:
        """Replace the whole registry with ``stores`` in one atomic step, only if it is at
        version ``replaces`` still; return the new version (``replaces + 1``). Else
        ``RegistryChanged``, changing nothing: of two writes that replace one version,
        one wins."""

    def bind(self, space: str, key: str, value: str) -> str:
        """Keep ``value`` under ``(space, key)`` unless something is kept there already;
        return what is kept there now (``value``, or the first one). A binding never
        changes: what a key first meant (a receipt's order, a revoked key, a partner
        order's answers) is what it means for good."""

    def bound(self, space: str, key: str) -> str | None:
        """The value kept under ``(space, key)``, None if nothing is."""

    def bindings(self, space: str) -> dict[str, str]:
        """Every binding of ``space`` (meant for small spaces: store keys)."""

    def close(self) -> None: ...
