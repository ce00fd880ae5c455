"""A hypothesis state machine over reserve, pay (with a hold's own payment ids, and with
ids of a pool every hold shares), release, expire, refund, time travel and updates of the
live event's allocations.

Each rule predicts its outcome from the state storage shows just before it (the domain
rules are deterministic), so a wrong answer fails at once; a refusal must change nothing.
After every step: conservation per SKU, stock equal to the recount from holds, live totals
equal to the recount, no customer above a limit, and every hold only ever moved forward.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from lampo.domain.errors import LampoError
from lampo.domain.holds import Hold, HoldState
from lampo.domain.report import grand_total, rollup
from lampo.domain.totals import recount
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import Storage
from tests.contract.conftest import Backend, assert_consistent, snapshot, units_by_customer
from tests.factories import NOW, sale_event

SKU_LIMITS: dict[str, int | None] = {"phone-red": 3, "phone-black": None, "tv-55": 1}
EVENT_LIMIT = 4
EVENT = sale_event(
    "machine",
    stock={"phone-red": 6, "phone-black": 3, "tv-55": 2},
    sku_limit=SKU_LIMITS,
    event_limit=EVENT_LIMIT,
    hold_seconds=300,
)
CUSTOMERS = ["c1", "c2", "c3"]
PAYMENT_POOL = ["psp-1", "psp-2"]

#: Where a hold may go from each state (itself included: a read may see no change).
REACHABLE = {
    HoldState.HELD: set(HoldState),
    HoldState.PAID: {HoldState.PAID, HoldState.REFUNDED},
    HoldState.RELEASED: {HoldState.RELEASED},
    HoldState.EXPIRED: {HoldState.EXPIRED},
    HoldState.REFUNDED: {HoldState.REFUNDED},
}


class SaleMachine(RuleBasedStateMachine):
    backend: Backend
    tmp: Path

    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.store: Storage = self.backend.open(Path(tempfile.mkdtemp(dir=self.tmp)))
        self.clock = ManualClock(NOW)
        self.sales = Sales(self.store, clock=self.clock)
        self.sales.open(EVENT)
        self.event = EVENT  # the definition storage holds now
        self.first: dict[tuple[str, str], tuple[str, tuple[tuple[str, int], ...], str]] = {}
        self.seen: dict[str, HoldState] = {}
        self.settled: dict[str, str] = {}  # payment id -> the hold it paid (the model)

    def teardown(self) -> None:
        self.store.close()

    # -- helpers ----------------------------------------------------------------------------
    def current(self, hold_id: str) -> Hold:
        hold = self.store.hold(hold_id)
        assert hold is not None, f"hold {hold_id} vanished"
        return hold

    def expect(self, expected: str, call: object, before: tuple[object, ...]) -> Hold | None:
        """Check ``call``'s outcome against ``expected`` ('ok' or a refusal reason)."""
        if isinstance(call, LampoError):
            assert call.reason == expected, (call, expected)
            assert snapshot(self.store, EVENT.id) == before, f"{call.reason} changed state"
            return None
        assert expected == "ok", (call, expected)
        assert isinstance(call, Hold)
        return call

    def attempt(self, fn: object, *args: object, **kw: object) -> object:
        try:
            return fn(*args, **kw)  # type: ignore[operator]
        except LampoError as refusal:
            return refusal

    # -- rules -----------------------------------------------------------------------------
    @rule(
        target=holds,
        customer=st.sampled_from(CUSTOMERS),
        items=st.dictionaries(
            st.sampled_from(sorted(EVENT.offers)), st.integers(1, 2), min_size=1, max_size=2
        ),
        market=st.sampled_from(["CN", "IN"]),
        key=st.sampled_from(["", "k1", "k2"]),
    )
    def reserve(self, customer: str, items: dict[str, int], market: str, key: str) -> object:
        before = snapshot(self.store, EVENT.id)
        content = (market, tuple(sorted(items.items())), customer)
        first = self.first.get((customer, key)) if key else None
        expected = self.predict_reserve(customer, items, market)
        if first is not None and expected != "closed":
            expected = "ok" if first[:2] == content[:2] else "idempotency-conflict"
        result = self.attempt(self.sales.reserve, EVENT.id, customer, market, items, key=key)
        hold = self.expect(expected, result, before)
        if hold is None:
            return multiple()
        if first is not None:
            assert hold.id == first[2], "a repeated key made a second hold"
            assert snapshot(self.store, EVENT.id) == before, "a repeated key had an effect"
            return multiple()
        assert hold.state is HoldState.HELD
        assert {(ln.sku, ln.quantity) for ln in hold.lines} == set(items.items())
        if key:
            self.first[(customer, key)] = (*content[:2], hold.id)
        self.seen[hold.id] = HoldState.HELD
        return hold.id

    def predict_reserve(self, customer: str, items: dict[str, int], market: str) -> str:
        now = self.clock()
        if now >= EVENT.windows[market].closes:
            return "closed"
        taken = units_by_customer(list(self.store.holds(EVENT.id)))
        if taken.get((customer, ""), 0) + sum(items.values()) > EVENT_LIMIT:
            return "limit-exceeded"
        for sku, qty in items.items():
            limit = SKU_LIMITS[sku]
            if limit is not None and taken.get((customer, sku), 0) + qty > limit:
                return "limit-exceeded"
        stock = self.store.stock(EVENT.id)
        if any(stock[sku].available < qty for sku, qty in items.items()):
            return "sold-out"
        return "ok"

    @rule(hold_id=holds, payment=st.sampled_from(["pay-a", "pay-b"]))
    def pay(self, hold_id: str, payment: str) -> None:
        """A payment id of this hold's own (retries, and a second payment of one hold)."""
        self.settle(hold_id, f"{payment}-{hold_id}")

    @rule(hold_id=holds, payment=st.sampled_from(PAYMENT_POOL))
    def pay_with_a_shared_payment_id(self, hold_id: str, payment: str) -> None:
        """A payment id of a small pool shared by every hold: once one settled a hold, it
        is refused on any other (``idempotency-conflict``), refunded or not."""
        self.settle(hold_id, payment)

    def settle(self, hold_id: str, payment: str) -> None:
        before = snapshot(self.store, EVENT.id)
        hold = self.current(hold_id)
        if hold.state is not HoldState.HELD and hold.payment_id == payment:
            expected = "ok"
        elif payment in self.settled:
            expected = "idempotency-conflict"
        elif hold.state is HoldState.PAID:
            expected = "already-paid"
        elif hold.state is HoldState.EXPIRED or (
            hold.state is HoldState.HELD and self.clock() >= hold.expires_at
        ):
            expected = "hold-expired"
        elif hold.state is HoldState.HELD:
            expected = "ok"
        else:
            expected = "illegal-transition"
        paid = self.expect(expected, self.attempt(self.sales.pay, hold_id, payment), before)
        if paid is not None:
            assert paid.payment_id == payment
            assert paid.state in (HoldState.PAID, HoldState.REFUNDED)
            if hold.state is not HoldState.HELD:
                assert paid == hold
                assert snapshot(self.store, EVENT.id) == before, "a repeated payment had an effect"
            self.settled[payment] = hold_id

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        before = snapshot(self.store, EVENT.id)
        hold = self.current(hold_id)
        ok = hold.state in (HoldState.HELD, HoldState.RELEASED)
        released = self.expect(
            "ok" if ok else "illegal-transition", self.attempt(self.sales.release, hold_id), before
        )
        if released is not None:
            assert released.state is HoldState.RELEASED

    @rule(hold_id=holds)
    def refund(self, hold_id: str) -> None:
        before = snapshot(self.store, EVENT.id)
        hold = self.current(hold_id)
        ok = hold.state in (HoldState.PAID, HoldState.REFUNDED)
        refunded = self.expect(
            "ok" if ok else "illegal-transition", self.attempt(self.sales.refund, hold_id), before
        )
        if refunded is not None:
            assert refunded.state is HoldState.REFUNDED

    @rule()
    def expire(self) -> None:
        now = self.clock()
        due = {
            h.id
            for h in self.store.holds(EVENT.id)
            if h.state is HoldState.HELD and h.expires_at <= now
        }
        expired = self.sales.expire_due(EVENT.id)
        assert {h.id for h in expired} == due
        assert all(h.state is HoldState.EXPIRED for h in expired)

    @rule()
    def pay_an_unknown_hold(self) -> None:
        before = snapshot(self.store, EVENT.id)
        self.expect("unknown-hold", self.attempt(self.sales.pay, "no-such-hold", "pay-a"), before)

    @rule(sku=st.sampled_from(sorted(SKU_LIMITS)), allocation=st.integers(0, 9))
    def update_allocation(self, sku: str, allocation: int) -> None:
        level = self.store.stock(EVENT.id)[sku]
        offers = {**self.event.offers, sku: replace(self.event.offers[sku], allocation=allocation)}
        new = replace(self.event, offers=offers)
        before = snapshot(self.store, EVENT.id)
        expected = "ok" if allocation >= level.held + level.sold else "update-refused"
        outcome = self.attempt(self.sales.update, new)
        if expected == "ok":
            assert outcome is None, outcome
            self.event = new
            assert self.store.stock(EVENT.id)[sku].available == allocation - level.held - level.sold
        else:
            assert isinstance(outcome, LampoError), outcome
            assert outcome.reason == expected, outcome
            assert snapshot(self.store, EVENT.id) == before, "a refused update changed state"
        assert self.store.load_events() == [self.event]

    @rule(seconds=st.sampled_from([1, 30, 299, 300, 301, 3600, 4 * 3600]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def stock_and_totals_agree_with_the_holds(self) -> None:
        assert_consistent(self.store, self.event)

    @invariant()
    def the_battle_report_figures_equal_the_recount(self) -> None:
        recounted = recount(list(self.store.holds(EVENT.id)))
        live = self.store.totals(EVENT.id)
        assert grand_total(EVENT, live) == grand_total(EVENT, recounted)
        for dim in ("market", "category", "outlet"):
            assert rollup(EVENT, live, dim) == rollup(EVENT, recounted, dim), dim

    @invariant()
    def no_customer_is_above_a_limit(self) -> None:
        for (_, sku), units in units_by_customer(list(self.store.holds(EVENT.id))).items():
            limit = EVENT_LIMIT if sku == "" else SKU_LIMITS[sku]
            assert limit is None or units <= limit

    @invariant()
    def each_payment_id_settled_the_one_hold_the_model_says(self) -> None:
        orders = [h for h in self.store.holds(EVENT.id) if h.is_order]
        assert {h.payment_id: h.id for h in orders} == self.settled
        assert len(orders) == len(self.settled), "a payment id settled two orders"

    @invariant()
    def holds_only_move_forward(self) -> None:
        now = {h.id: h.state for h in self.store.holds(EVENT.id)}
        assert set(now) == set(self.seen), "storage holds a hold nobody was given"
        for hold_id, state in now.items():
            assert state in REACHABLE[self.seen[hold_id]], (hold_id, self.seen[hold_id], state)
            self.seen[hold_id] = state


def test_every_sequence_of_sale_operations_keeps_the_guarantees(
    backend: Backend, tmp_path: Path
) -> None:
    machine = type(
        "SaleMachineOn" + backend.name.title(),
        (SaleMachine,),
        {"backend": backend, "tmp": tmp_path},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None),
    )
