"""The transitions, written once over a ``State`` that a backend provides.

Each function checks everything first and writes only when the request is accepted, so a
refusal changes nothing. The caller runs it inside the backend's atomic step (a lock, or
a write transaction held by a single writer), so reads and writes cannot interleave with
another transition's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from lampo.domain.channels import split_stock_key, stock_key
from lampo.domain.errors import (
    AlreadyPaid,
    IdempotencyConflict,
    InvalidRequest,
    LampoError,
    LimitExceeded,
    SoldOut,
    UnknownEvent,
    UnknownHold,
    UnknownSku,
)
from lampo.domain.event import SaleEvent, StockChange, plan_update
from lampo.domain.holds import (
    Hold,
    HoldState,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
    StockLevel,
    pool_level,
)
from lampo.storage.port import below_committed

EVENT_SCOPE = ""  # the counter key of a customer's units across a whole event


class State(Protocol):
    """Reads and writes of one atomic step. ``stock_move`` must refuse (return False)
    rather than let a column go negative.

    Stock rows are kept per stock key (``channels.stock_key``: a SKU's shared pool under
    its id, a reserved pool under ``"<sku> <pool>"``); a row's level names its SKU and
    pool (``holds.pool_level``). Per-customer counters are kept per SKU, whatever the
    pool of the units they count."""

    def idem_get(self, key: str) -> tuple[str, str] | None:
        """(fingerprint, hold id) recorded under ``key``."""

    def idem_put(self, key: str, fingerprint: str, hold_id: str) -> None: ...

    def payment_get(self, payment_id: str) -> str | None:
        """The id of the hold ``payment_id`` settled, if it settled one."""

    def payment_put(self, payment_id: str, hold_id: str) -> bool:
        """Bind ``payment_id`` to ``hold_id`` for good (a refund keeps it); True if it is
        bound to ``hold_id`` now. False, having written nothing, if it is bound to another
        hold: a backend whose concurrent transactions learn of each other's binding only
        here (a unique key) refuses here."""

    def has_event(self, event: str) -> bool: ...

    def stock_get(self, event: str, key: str) -> StockLevel | None:
        """The level of the row under stock key ``key``."""

    def stock_move(self, event: str, key: str, available: int, held: int, sold: int) -> bool:
        """Add the deltas, unless a column would go below zero (then change nothing)."""

    def stock_set(self, event: str, level: StockLevel) -> None:
        """Write ``level`` as the row of its SKU and pool, creating it if there is none
        (an update)."""

    def definition_get(self, event: str) -> SaleEvent | None:
        """The stored definition of ``event`` (locked against other writers until the
        step ends, where the backend has row locks)."""

    def definition_set(self, event: SaleEvent) -> None:
        """Replace the stored definition of the existing event ``event.id``."""

    def counter_get(self, event: str, customer: str, sku: str) -> int: ...

    def counter_add(self, event: str, customer: str, sku: str, delta: int) -> None:
        """Add ``delta``; a negative delta on a counter that was never kept does nothing."""

    def hold_get(self, hold_id: str) -> Hold | None: ...

    def hold_id_taken(self, hold_id: str) -> bool:
        """Whether ``hold_id`` is in use. A backend whose insert refuses a duplicate id
        atomically (a primary key) may answer False and let that insert fail."""

    def hold_insert(self, hold: Hold) -> None:
        """Insert a new hold; ``InvalidRequest`` (having written nothing) if its id is taken."""

    def hold_update(self, hold: Hold) -> None: ...

    def totals_add(self, hold: Hold, sign: int) -> None: ...


R = TypeVar("R")


def reserve(st: State, req: ReserveRequest) -> Hold:
    hold = req.hold
    seen = st.idem_get(req.key)
    if seen is not None:
        fingerprint, hold_id = seen
        if fingerprint != req.fingerprint:
            raise IdempotencyConflict(req.key)
        first = st.hold_get(hold_id)
        assert first is not None, "an idempotency record points at a missing hold"
        return first
    if not st.has_event(hold.event):
        raise UnknownEvent(hold.event)
    if not hold.lines:
        raise InvalidRequest("lines", "a hold needs at least one line")
    if len(req.sku_limits) != len(hold.lines):
        raise InvalidRequest("sku_limits", "one limit per line")
    if st.hold_id_taken(hold.id):
        raise InvalidRequest("hold_id", f"{hold.id} exists already")

    # Stock is folded by stock key (a SKU's pools are rows of their own) and taken in one
    # fixed (sorted) order; limits and counters are per SKU, whatever the pools.
    # The shared pool's stock key is the SKU id: a hold without a reserved pool (the hot
    # path) folds once, into one dict that serves both.
    wanted: dict[str, int] = {}
    limits: dict[str, int | None] = {}
    pooled = False
    for line, limit in zip(hold.lines, req.sku_limits, strict=True):
        sku = line.sku
        if line.pool:
            pooled = True
            key = stock_key(sku, line.pool)
        else:
            key = sku
        wanted[key] = wanted.get(key, 0) + line.quantity
        limits[sku] = limit
    per_sku = hold.units_by_sku() if pooled else wanted
    skus = sorted(per_sku)
    keys = sorted(wanted) if pooled else skus

    # The event-wide counter is kept only for events with an event-wide limit (an update
    # never adds a limit: ``plan_update``), so a limit-free event spends no write on it.
    if req.event_limit is not None:
        already = st.counter_get(hold.event, hold.customer, EVENT_SCOPE)
        if already + hold.units > req.event_limit:
            raise LimitExceeded(hold.customer, req.event_limit, already)
    for sku in skus:
        limit = limits[sku]
        if limit is not None:
            already = st.counter_get(hold.event, hold.customer, sku)
            if already + per_sku[sku] > limit:
                raise LimitExceeded(hold.customer, limit, already, sku)
    _check_stock(st, hold.event, wanted, keys)

    # The hold row first: a backend that learns of a duplicate id only from its insert
    # (``hold_id_taken`` said False) refuses here, before anything else was written.
    st.hold_insert(hold)
    for key in keys:
        moved = st.stock_move(hold.event, key, -wanted[key], wanted[key], 0)
        assert moved, "stock changed inside an atomic step"
    for sku in skus:
        # Like the event-wide one, a SKU's counter is kept only when the SKU has a limit:
        # nothing else reads it, and the giving back below is a no-op on a missing one.
        if limits[sku] is not None:
            st.counter_add(hold.event, hold.customer, sku, per_sku[sku])
    if req.event_limit is not None:
        st.counter_add(hold.event, hold.customer, EVENT_SCOPE, hold.units)
    st.idem_put(req.key, req.fingerprint, hold.id)
    return hold


def _check_stock(
    st: State, event: str, wanted: Mapping[str, int], keys: Sequence[str], sold: bool = True
) -> None:
    """Refuse unless every stock row of ``keys`` exists and (``sold``: the units are to
    be taken) has ``wanted`` units available: ``UnknownSku``, or ``SoldOut`` naming the
    pool that cannot serve."""
    for key in keys:
        level = st.stock_get(event, key)
        if level is None:
            raise UnknownSku(event, split_stock_key(key)[0])
        if sold and level.available < wanted[key]:
            sku, pool = split_stock_key(key)
            raise SoldOut(sku, wanted[key], level.available, pool)


def _existing(st: State, hold_id: str) -> Hold:
    hold = st.hold_get(hold_id)
    if hold is None:
        raise UnknownHold(hold_id)
    return hold


def _return_to_pool(st: State, hold: Hold, held: int, sold: int) -> None:
    """Give ``hold``'s units back to the pools of its lines, out of ``held`` or ``sold``."""
    for key, qty in sorted(hold.units_by_stock().items()):
        moved = st.stock_move(hold.event, key, qty, -qty * held, -qty * sold)
        assert moved, "stock went out of balance"
    for sku, qty in sorted(hold.units_by_sku().items()):
        st.counter_add(hold.event, hold.customer, sku, -qty)  # no-op if not kept
    st.counter_add(hold.event, hold.customer, EVENT_SCOPE, -hold.units)  # no-op if not kept


def pay(st: State, req: PayRequest) -> Hold:
    """Pay a hold. A payment id settles at most one hold, forever: the same id on this
    hold again returns the first result (an ``IdempotencyConflict`` if it states another
    amount than the one paid); on any other hold it is an
    ``IdempotencyConflict`` keyed by the payment id (which names nothing of that other
    hold, maybe another buyer's). A refused payment binds nothing."""
    hold = _existing(st, req.hold_id)
    if hold.state is not HoldState.HELD and hold.payment_id == req.payment_id:
        if req.amount is not None and req.amount != hold.amount:
            # the same payment id with other content: not a retry of that payment
            raise IdempotencyConflict(req.payment_id)
        return hold  # the same payment again: the first result, no second effect
    if st.payment_get(req.payment_id) is not None:  # bound, and not to this hold (above)
        raise IdempotencyConflict(req.payment_id)
    if req.amount is not None and req.amount != hold.amount:
        raise InvalidRequest("amount", f"payment of {req.amount} for a hold of {hold.amount}")
    paid = hold.pay(req.payment_id, req.now)
    # The binding is the first write: a backend that learns of a concurrent binding only
    # from its insert refuses here, before anything else was written.
    if not st.payment_put(req.payment_id, hold.id):
        raise IdempotencyConflict(req.payment_id)
    for key, qty in sorted(hold.units_by_stock().items()):
        moved = st.stock_move(hold.event, key, 0, -qty, qty)
        assert moved, "stock went out of balance"
    st.hold_update(paid)
    st.totals_add(paid, 1)
    return paid


def release(st: State, req: ReleaseRequest) -> Hold:
    hold = _existing(st, req.hold_id)
    if hold.state is HoldState.RELEASED:
        return hold
    released = hold.release(req.now)
    _return_to_pool(st, hold, held=1, sold=0)
    st.hold_update(released)
    return released


def expire(st: State, hold_id: str, now: datetime) -> Hold:
    hold = _existing(st, hold_id)
    expired = hold.expire(now)
    _return_to_pool(st, hold, held=1, sold=0)
    st.hold_update(expired)
    return expired


def refund(st: State, req: RefundRequest) -> Hold:
    hold = _existing(st, req.hold_id)
    if hold.state is HoldState.REFUNDED:
        return hold
    refunded = hold.refund(req.now)
    _return_to_pool(st, hold, held=0, sold=1)
    st.hold_update(refunded)
    st.totals_add(hold, -1)
    return refunded


def record(st: State, order: Hold) -> Hold:
    """Write an order that another store decided (the live store of a combined backend),
    as it is. A paid order takes its units from available into sold, checked (so the
    record itself refuses an oversell) and counts in the totals; a refunded one moves an
    order recorded as paid on, or is written as it is. Idempotent by hold id: the same
    order again, or an older state of it, returns the record unchanged. A payment id
    on record for another order is an ``IdempotencyConflict``, as in ``pay``."""
    if not order.is_order:
        raise InvalidRequest("state", f"only orders are recorded, not a {order.state} hold")
    if not st.has_event(order.event):
        raise UnknownEvent(order.event)
    known = st.hold_get(order.id)
    if known is not None:
        if known.payment_id != order.payment_id:
            raise AlreadyPaid(order.id, known.payment_id)
        if known.state is HoldState.PAID and order.state is HoldState.REFUNDED:
            assert order.refunded_at is not None
            refunded = known.refund(order.refunded_at)
            _return_to_pool(st, known, held=0, sold=1)
            st.hold_update(refunded)
            st.totals_add(known, -1)
            return refunded
        return known
    if st.payment_get(order.payment_id) is not None:  # and not for this order: it is new
        raise IdempotencyConflict(order.payment_id)
    wanted = order.units_by_stock()
    keys = sorted(wanted)
    _check_stock(st, order.event, wanted, keys, sold=order.state is HoldState.PAID)
    if not st.payment_put(order.payment_id, order.id):
        raise IdempotencyConflict(order.payment_id)
    st.hold_insert(order)
    if order.state is HoldState.PAID:
        for key in keys:
            moved = st.stock_move(order.event, key, -wanted[key], 0, wanted[key])
            assert moved, "stock changed inside an atomic step"
        st.totals_add(order, 1)
    return order


def apply_all(
    st: State, fn: Callable[[State, R], Hold], requests: Sequence[R]
) -> list[Hold | LampoError]:
    """Apply ``fn`` to each request in order; a refusal becomes that request's result."""
    out: list[Hold | LampoError] = []
    for req in requests:
        try:
            out.append(fn(st, req))
        except LampoError as refusal:
            out.append(refusal)
    return out


def redefine(st: State, event: SaleEvent) -> None:
    """``Storage.update`` in one atomic step: from the stored definition to ``event``.
    ``UnknownEvent``; the same definition: nothing; otherwise refuse what ``plan_update``
    refuses, set the stock rows it changes (``restock``), then the definition."""
    known = st.definition_get(event.id)
    if known is None:
        raise UnknownEvent(event.id)
    if known == event:
        return
    change = plan_update(known, event)
    levels = {}
    for key in sorted(change.deltas):  # rows taken in one order, as reserve takes them
        level = st.stock_get(event.id, key)
        assert level is not None, f"{event.id}/{key} has an offer but no stock"
        levels[key] = level
    for level in restock(event.id, change, levels):
        st.stock_set(event.id, level)
    st.definition_set(event)


def restock(event: str, change: StockChange, levels: Mapping[str, StockLevel]) -> list[StockLevel]:
    """The stock levels an update leaves (``levels``: the current ones of the rows it
    changes, by stock key): an allocation moved by its delta moves ``available`` with it,
    a new row (a new SKU, a new pool) starts at its allocation. ``below_committed`` when a
    delta would take a row's ``available`` below zero: every row is checked before any
    level is returned, so units moved between two pools are refused whole."""
    out = []
    for key, delta in sorted(change.deltas.items()):
        level = levels[key]
        if level.available + delta < 0:
            raise below_committed(event, key, level.allocation + delta, level.held + level.sold)
        allocation, available = level.allocation + delta, level.available + delta
        out.append(pool_level(key, allocation, available, level.held, level.sold))
    for key, allocation in sorted(change.added.items()):
        out.append(pool_level(key, allocation, allocation, 0, 0))
    return out
