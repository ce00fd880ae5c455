"""The in-memory backend: the reference semantics, and the fast double for service tests.

One lock makes each batch atomic. Nothing survives the process (no durability).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime

from lampo.domain.channels import stock_key
from lampo.domain.event import SaleEvent
from lampo.domain.holds import (
    Hold,
    HoldState,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
    StockLevel,
    by_sku,
    pool_level,
)
from lampo.domain.stores import Store
from lampo.domain.totals import Totals
from lampo.storage import _transitions as tx
from lampo.storage.port import (
    STORES_DOCUMENT,
    KeyRef,
    Result,
    check_binding,
    check_replaces,
    check_same_definition,
    stores_document,
    stores_from_document,
)


class _MemoryState:
    def __init__(self) -> None:
        self.stock: dict[tuple[str, str], StockLevel] = {}  # by (event, stock key)
        self.definitions: dict[str, SaleEvent] = {}
        self.events: dict[str, Totals] = {}
        self.counters: dict[tuple[str, str, str], int] = {}
        self.holds: dict[str, Hold] = {}
        self.idem: dict[str, tuple[str, str]] = {}
        self.payments: dict[str, str] = {}  # payment id -> the hold it settled
        # Per event, a heap of (deadline, hold id) of holds placed; entries whose hold has
        # ended since are skipped when popped, so the sweep never scans every hold.
        self.due: dict[str, list[tuple[datetime, str]]] = {}

    def idem_get(self, key: str) -> tuple[str, str] | None:
        return self.idem.get(key)

    def idem_put(self, key: str, fingerprint: str, hold_id: str) -> None:
        self.idem[key] = (fingerprint, hold_id)

    def payment_get(self, payment_id: str) -> str | None:
        return self.payments.get(payment_id)

    def payment_put(self, payment_id: str, hold_id: str) -> bool:
        return self.payments.setdefault(payment_id, hold_id) == hold_id

    def has_event(self, event: str) -> bool:
        return event in self.events

    def stock_get(self, event: str, key: str) -> StockLevel | None:
        return self.stock.get((event, key))

    def stock_set(self, event: str, level: StockLevel) -> None:
        self.stock[(event, stock_key(level.sku, level.pool))] = level

    def definition_get(self, event: str) -> SaleEvent | None:
        return self.definitions.get(event)

    def definition_set(self, event: SaleEvent) -> None:
        self.definitions[event.id] = event

    def stock_move(self, event: str, key: str, available: int, held: int, sold: int) -> bool:
        s = self.stock[(event, key)]
        new = replace(s, available=s.available + available, held=s.held + held, sold=s.sold + sold)
        if min(new.available, new.held, new.sold) < 0:
            return False
        self.stock[(event, key)] = new
        return True

    def counter_get(self, event: str, customer: str, sku: str) -> int:
        return self.counters.get((event, customer, sku), 0)

    def counter_add(self, event: str, customer: str, sku: str, delta: int) -> None:
        key = (event, customer, sku)
        if delta < 0 and key not in self.counters:
            return
        self.counters[key] = self.counters.get(key, 0) + delta

    def hold_get(self, hold_id: str) -> Hold | None:
        return self.holds.get(hold_id)

    def hold_id_taken(self, hold_id: str) -> bool:
        return hold_id in self.holds

    def hold_insert(self, hold: Hold) -> None:
        self.holds[hold.id] = hold
        heapq.heappush(self.due.setdefault(hold.event, []), (hold.expires_at, hold.id))

    def pop_due(self, event: str, now: datetime, limit: int) -> list[str]:
        heap = self.due.get(event, [])
        out: list[str] = []
        while heap and len(out) < limit and heap[0][0] <= now:
            _, hold_id = heapq.heappop(heap)
            if self.holds[hold_id].state is HoldState.HELD:
                out.append(hold_id)
        return out

    def hold_update(self, hold: Hold) -> None:
        self.holds[hold.id] = hold

    def totals_add(self, hold: Hold, sign: int) -> None:
        self.events[hold.event].add(hold, sign)


class MemoryStorage:
    """``memory://``: all state in dicts behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._st = _MemoryState()
        # the store registry and the retail records: apart from the sale's state
        self._documents: dict[str, tuple[int, str]] = {}
        self._bindings: dict[str, dict[str, str]] = {}

    def setup(self, event: SaleEvent) -> None:
        with self._lock:
            known = self._st.definitions.get(event.id)
            if known is not None:
                check_same_definition(known, event)
                return
            self._st.definitions[event.id] = event
            self._st.events[event.id] = Totals()
            for key, allocation in event.stock_rows().items():
                self._st.stock[(event.id, key)] = pool_level(key, allocation, allocation, 0, 0)

    def update(self, event: SaleEvent) -> None:
        with self._lock:
            tx.redefine(self._st, event)

    def events(self) -> list[str]:
        with self._lock:
            return sorted(self._st.events)

    def load_events(self) -> list[SaleEvent]:
        with self._lock:
            definitions = self._st.definitions
            return [definitions[k] for k in sorted(definitions)]

    def reserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        with self._lock:
            return tx.apply_all(self._st, tx.reserve, requests)

    async def areserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        return self.reserve(requests)

    async def apay(self, requests: Sequence[PayRequest]) -> list[Result]:
        return self.pay(requests)

    def recorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        with self._lock:
            return [ref.key in self._st.idem for ref in keys]

    async def arecorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        return self.recorded(keys)

    def pay(self, requests: Sequence[PayRequest]) -> list[Result]:
        with self._lock:
            return tx.apply_all(self._st, tx.pay, requests)

    def release(self, requests: Sequence[ReleaseRequest]) -> list[Result]:
        with self._lock:
            return tx.apply_all(self._st, tx.release, requests)

    def refund(self, requests: Sequence[RefundRequest]) -> list[Result]:
        with self._lock:
            return tx.apply_all(self._st, tx.refund, requests)

    def expire_due(self, event: str, now: datetime, limit: int = 1000) -> list[Hold]:
        with self._lock:
            return [tx.expire(self._st, h, now) for h in self._st.pop_due(event, now, limit)]

    def hold(self, hold_id: str) -> Hold | None:
        with self._lock:
            return self._st.holds.get(hold_id)

    def holds(self, event: str) -> Iterator[Hold]:
        with self._lock:
            found = [h for h in self._st.holds.values() if h.event == event]
        return iter(found)

    def stock(self, event: str) -> dict[str, StockLevel]:
        return by_sku(self.pools(event).values())

    def pools(self, event: str) -> dict[str, StockLevel]:
        with self._lock:
            found = {key: s for (ev, key), s in self._st.stock.items() if ev == event}
        return dict(sorted(found.items()))

    def totals(self, event: str) -> Totals:
        with self._lock:
            t = self._st.events.get(event, Totals())
            return t.copy()

    # -- the store registry and the retail records ------------------------------------
    def stores(self) -> tuple[int, tuple[Store, ...]]:
        with self._lock:
            found = self._documents.get(STORES_DOCUMENT)
        return stores_from_document(found)

    def put_stores(self, stores: Sequence[Store], replaces: int) -> int:
        text = stores_document(stores, replaces)
        with self._lock:
            version = self._documents.get(STORES_DOCUMENT, (0, ""))[0]
            new = check_replaces(version, replaces)
            self._documents[STORES_DOCUMENT] = (new, text)
        return new

    def bind(self, space: str, key: str, value: str) -> str:
        check_binding(space, key, value)
        with self._lock:
            return self._bindings.setdefault(space, {}).setdefault(key, value)

    def bound(self, space: str, key: str) -> str | None:
        with self._lock:
            return self._bindings.get(space, {}).get(key)

    def bindings(self, space: str) -> dict[str, str]:
        with self._lock:
            return dict(self._bindings.get(space, {}))

    def close(self) -> None:
        pass
