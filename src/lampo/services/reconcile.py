"""Reconcile the live store (Redis) with the system of record (PostgreSQL).

The record wins for what it holds: event definitions and orders (paid, refunded). The
live store wins for what only it holds: holds not paid yet. What the live store decided
but the record missed (a payment whose record failed, an event update cut before the
record took it) is rolled forward onto the record.
See docs/storage-redis-postgres.md for when each difference arises.

Every repair goes through the storage port (setup, reserve, pay, refund, release,
``record``), so the live store's own atomic steps keep stock, counters and totals in
balance. Repairs are idempotent: a second run finds nothing to do. Run it while nothing
sells (``lampo serve`` stopped): a sale between a lost write and its repair may take
units the record already counts as sold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from lampo.domain.channels import pool_label, split_stock_key, stock_key
from lampo.domain.errors import LampoError, SoldOut
from lampo.domain.event import SaleEvent
from lampo.domain.holds import (
    HELD_STATES,
    SOLD_STATES,
    Hold,
    HoldState,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
)
from lampo.services.clock import Clock, utcnow
from lampo.storage.port import Result, Storage

#: The event-wide limit a restored order is reserved under: the original sale passed the
#: real limit already, and a restore must keep the event-wide counter without checking it.
NO_LIMIT = 2**62


class Ledger(Storage, Protocol):
    """The system of record: a storage that can also record orders decided elsewhere."""

    def record(self, orders: Sequence[Hold]) -> list[Result]: ...


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the live store and the record disagree; ``repaired`` once fixed."""

    event: str
    kind: str
    subject: str
    detail: str
    repaired: bool = False


@dataclass
class Reconciliation:
    """What ``reconcile`` found (and, unless ``check``, repaired)."""

    check: bool
    events: int = 0
    orders: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def unresolved(self) -> list[Difference]:
        return [d for d in self.differences if not d.repaired]

    @property
    def ok(self) -> bool:
        """Nothing left to repair: no difference at all when checking."""
        return not (self.differences if self.check else self.unresolved)


class _Run:
    def __init__(self, live: Storage, ledger: Ledger, check: bool, clock: Clock) -> None:
        self.live, self.ledger, self.check, self.clock = live, ledger, check, clock
        self.out = Reconciliation(check)

    def note(
        self, event: str, kind: str, subject: str, detail: str, fix: Callable[[], str]
    ) -> None:
        """Record a difference; unless checking, repair it (``fix`` returns '' when it
        succeeded, else why not)."""
        if self.check:
            self.out.differences.append(Difference(event, kind, subject, detail))
            return
        problem = fix()
        if problem:
            detail = f"{detail}; NOT repaired: {problem}"
        self.out.differences.append(Difference(event, kind, subject, detail, not problem))

    # -- events ----------------------------------------------------------------------
    def events(self) -> list[SaleEvent]:
        on_record = {e.id: e for e in self.ledger.load_events()}
        live = {e.id: e for e in self.live.load_events()}
        for event in on_record.values():
            if event.id not in live:
                self.note(
                    event.id,
                    "event-not-live",
                    event.id,
                    "defined on record only",
                    partial(_refusal, self.live.setup, event),
                )
        for event in live.values():
            if event.id not in on_record:
                self.note(
                    event.id,
                    "event-not-on-record",
                    event.id,
                    "defined live only",
                    partial(_refusal, self.ledger.setup, event),
                )
            elif on_record[event.id] != event:
                # An update goes live first (the live store decides whether its stock
                # allows it), so the live definition is the newer: roll it forward.
                self.note(
                    event.id,
                    "definition-not-on-record",
                    event.id,
                    "updated live only",
                    partial(_refusal, self.ledger.update, event),
                )
        merged = {**on_record, **live}
        self.out.events = len(merged)
        return [merged[k] for k in sorted(merged)]

    # -- orders ----------------------------------------------------------------------
    def orders(self, event: SaleEvent, live_known: bool) -> None:
        live = {h.id: h for h in self.live.holds(event.id)} if live_known else {}
        record = {h.id: h for h in self.ledger.holds(event.id)}
        self.out.orders += len(record)
        for hold in sorted(live.values(), key=lambda h: (h.created_at, h.id)):
            known = record.get(hold.id)
            if not hold.is_order:
                continue
            if known is None or (
                known.state is HoldState.PAID and hold.state is HoldState.REFUNDED
            ):
                said = "not recorded" if known is None else "refund not recorded"
                self.note(
                    event.id,
                    "order-not-on-record",
                    hold.id,
                    f"{hold.state} live, {said}",
                    partial(self._record, hold),
                )
        for order in sorted(record.values(), key=lambda h: (h.paid_at or h.created_at, h.id)):
            seen = live.get(order.id)
            if seen is None:
                self.note(
                    event.id,
                    "order-not-live",
                    order.id,
                    f"{order.state} on record, missing live",
                    partial(self._restore, event, order),
                )
            elif seen.payment_id and seen.payment_id != order.payment_id:
                self.note(
                    event.id,
                    "payment-conflict",
                    order.id,
                    f"paid live by {seen.payment_id!r}, on record by {order.payment_id!r}",
                    partial(str, "two payments: refund one by hand"),
                )
            elif seen.state is HoldState.HELD:
                self.note(
                    event.id,
                    "order-held-live",
                    order.id,
                    f"{order.state} on record, held live",
                    partial(self._pay_live, order),
                )
            elif seen.state in (HoldState.EXPIRED, HoldState.RELEASED):
                self.note(
                    event.id,
                    "order-ended-live",
                    order.id,
                    f"{order.state} on record, {seen.state} live (its units went back to the pool)",
                    partial(str, "the live store cannot undo an ended hold: refund the order"),
                )
            elif seen.state is HoldState.PAID and order.state is HoldState.REFUNDED:
                self.note(
                    event.id,
                    "refund-not-live",
                    order.id,
                    "refunded on record, paid live",
                    partial(self._refund_live, order),
                )

    def _record(self, hold: Hold) -> str:
        result = self.ledger.record([hold])[0]
        return _problem(result)

    def _pay_live(self, order: Hold) -> str:
        assert order.paid_at is not None
        paid = self.live.pay([PayRequest(order.id, order.payment_id, order.paid_at)])[0]
        if isinstance(paid, LampoError) or order.state is not HoldState.REFUNDED:
            return _problem(paid)
        return self._refund_live(order)

    def _refund_live(self, order: Hold) -> str:
        assert order.refunded_at is not None
        return _problem(self.live.refund([RefundRequest(order.id, order.refunded_at)])[0])

    def _restore(self, event: SaleEvent, order: Hold) -> str:
        """Place the order again live: a hold as it was, then its payment (and refund)."""
        hold = dataclasses.replace(
            order,
            state=HoldState.HELD,
            payment_id="",
            paid_at=None,
            ended_at=None,
            refunded_at=None,
        )
        request = ReserveRequest(
            f"reconcile:{order.id}",
            hold,
            (None,) * len(hold.lines),
            None if event.limit_per_customer is None else NO_LIMIT,
        )
        while True:
            placed = self.live.reserve([request])[0]
            if not isinstance(placed, SoldOut) or order.state is HoldState.REFUNDED:
                break
            # Units the record counts as sold are held live by an unpaid hold: the
            # acknowledged order comes first, the newest unpaid hold gives way.
            if not self._make_room(event, placed.sku, placed.pool):
                where = f"{placed.sku} (pool {placed.pool})" if placed.pool else placed.sku
                return f"{where} is sold out live even without unpaid holds"
        if isinstance(placed, LampoError):
            return _problem(placed)
        return self._pay_live(order)

    def _make_room(self, event: SaleEvent, sku: str, pool: str = "") -> bool:
        """Release the newest unpaid hold with units of ``sku`` in ``pool`` (the pool the
        restored order's line needs: another pool's units would not serve it)."""
        key = stock_key(sku, pool)
        unpaid = [h for h in self.live.holds(event.id) if h.state in HELD_STATES]
        unpaid = [h for h in unpaid if any(ln.stock == key for ln in h.lines)]
        if not unpaid:
            return False
        newest = max(unpaid, key=lambda h: (h.created_at, h.id))
        released = self.live.release([ReleaseRequest(newest.id, self.clock())])[0]
        self.out.differences.append(
            Difference(
                event.id,
                "hold-released",
                newest.id,
                f"unpaid hold released to restore a recorded order of {sku}",
                not isinstance(released, LampoError),
            )
        )
        return not isinstance(released, LampoError)

    # -- stock and totals --------------------------------------------------------------
    def figures(self, event: SaleEvent) -> None:
        live_stock, record_stock = self.live.stock(event.id), self.ledger.stock(event.id)
        holds = list(self.live.holds(event.id))
        for sku, level in sorted(live_stock.items()):
            on_record = record_stock.get(sku)
            held = sum(h.quantity_of(sku) for h in holds if h.state in HELD_STATES)
            sold = sum(h.quantity_of(sku) for h in holds if h.state in SOLD_STATES)
            wrong = []
            if not level.conserved:
                wrong.append(f"live stock not conserved: {level}")
            if (level.held, level.sold) != (held, sold):
                wrong.append(f"live held/sold {level.held}/{level.sold}, holds say {held}/{sold}")
            if on_record is None or on_record.sold != level.sold:
                got = None if on_record is None else on_record.sold
                wrong.append(f"sold {level.sold} live, {got} on record")
            if wrong:
                self.out.differences.append(Difference(event.id, "stock", sku, "; ".join(wrong)))
        if any(offer.pools for offer in event.offers.values()):  # each pool's sold too
            live_pools, record_pools = self.live.pools(event.id), self.ledger.pools(event.id)
            for key, level in sorted(live_pools.items()):
                on_record = record_pools.get(key)
                if on_record is None or on_record.sold != level.sold:
                    got = None if on_record is None else on_record.sold
                    sku, pool = split_stock_key(key)
                    self.out.differences.append(
                        Difference(
                            event.id,
                            "stock",
                            f"{sku} ({pool_label(pool)})",
                            f"sold {level.sold} live, {got} on record",
                        )
                    )
        if self.live.totals(event.id) != self.ledger.totals(event.id):
            self.out.differences.append(
                Difference(event.id, "totals", event.id, "live totals differ from the record")
            )


def _refusal(write: Callable[[SaleEvent], None], event: SaleEvent) -> str:
    """Run a definition write (``setup``, ``update``): '' or what refused it."""
    try:
        write(event)
    except LampoError as refusal:
        return str(refusal)
    return ""


def _problem(result: Result) -> str:
    return str(result) if isinstance(result, LampoError) else ""


def reconcile(
    live: Storage, ledger: Ledger, check: bool = False, clock: Clock = utcnow
) -> Reconciliation:
    """Compare (``check``) or repair the live store against the record: events, then
    orders (record to live, live to record), then stock and totals, which are only
    reported (the live store keeps them in step with its holds by itself)."""
    run = _Run(live, ledger, check, clock)
    live_ids = set(live.events())
    for event in run.events():
        known = event.id in live_ids or not check
        run.orders(event, known)
        if known:
            run.figures(event)
    return run.out


__all__ = ["Difference", "Ledger", "Reconciliation", "reconcile"]
