"""Stock pools on every backend (docs/new-retail.md): a stock row per SKU and pool, a line
served whole from its pool and given back to it, limits per SKU across pools, updates that
move units between pools in one step, and ``pools()`` adding up to ``stock()``.

Holds name their lines' pools directly here (``HoldLine(..., pool="jd")``): picking a
line's pool is the service's job (``SaleEvent.pools_for``), not storage's.
"""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
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

from lampo.domain.channels import ChannelSpec, split_stock_key, stock_key
from lampo.domain.errors import LimitExceeded, SoldOut, UnknownSku, UpdateRefused
from lampo.domain.event import SaleEvent
from lampo.domain.holds import (
    Hold,
    HoldLine,
    HoldState,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
    StockLevel,
    by_sku,
)
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.totals import recount
from lampo.services.audit import audit
from lampo.services.clock import ManualClock
from lampo.services.reconcile import reconcile
from lampo.services.sales import Sales
from lampo.storage import Storage
from lampo.storage.combined import RedisPostgresStorage
from tests.contract.conftest import REDIS_POSTGRES, Backend, assert_consistent, snapshot
from tests.contract.test_concurrency import reasons, together
from tests.factories import NOW, sale_event

SKU = "phone-red"
JD = Channel(ChannelKind.MARKETPLACE, "jd")
ONLINE = Channel()
_ids = itertools.count()


def pooled_event(
    event_id: str = "pools",
    allocation: int = 10,
    pools: dict[str, int] | None = None,
    *,
    sku_limit: int | None = None,
    hold_seconds: int = 900,
) -> SaleEvent:
    """One SKU (``phone-red``) of ``allocation`` units, ``pools`` reserved of it (default
    jd 3 and stores 2, the rest shared), and a TV without pools; jd and a store group
    declared as channels that draw on them."""
    base = sale_event(
        event_id, {SKU: allocation, "tv-55": 4}, sku_limit=sku_limit, hold_seconds=hold_seconds
    )
    offer = replace(base.offers[SKU], pools=pools if pools is not None else {"jd": 3, "stores": 2})
    channels = {
        "jd": ChannelSpec("jd", ChannelKind.MARKETPLACE, pool="jd"),
        "mi-home": ChannelSpec("mi-home", ChannelKind.STORE, pool="stores"),
    }
    return replace(base, offers={**base.offers, SKU: offer}, channels=channels)


def request(
    event: SaleEvent,
    lines: list[tuple[str, int, str]],
    customer: str = "c1",
    channel: Channel = ONLINE,
    key: str | None = None,
) -> ReserveRequest:
    """A reservation of ``(sku, quantity, pool)`` lines at their CN prices."""
    hold_id = f"h{next(_ids)}"
    held = tuple(
        HoldLine(sku, qty, event.offers[sku].prices["CN"].amount, pool) for sku, qty, pool in lines
    )
    expires = NOW + timedelta(seconds=event.hold_seconds)
    hold = Hold(hold_id, event.id, customer, "CN", channel, held, "CNY", NOW, expires)
    limits = tuple(event.offers[sku].limit_per_customer for sku, _, _ in lines)
    return ReserveRequest(key or f"k-{hold_id}", hold, limits, event.limit_per_customer)


def placed(store: Storage, req: ReserveRequest) -> Hold:
    [result] = store.reserve([req])
    assert isinstance(result, Hold), result
    return result


def refused(store: Storage, req: ReserveRequest) -> object:
    before = snapshot(store, req.hold.event)
    [result] = store.reserve([req])
    assert not isinstance(result, Hold), result
    assert snapshot(store, req.hold.event) == before, "a refusal changed something"
    return result


def levels(store: Storage, event: str) -> dict[str, tuple[int, int, int, int]]:
    """(allocation, available, held, sold) by stock key."""
    return {k: (v.allocation, v.available, v.held, v.sold) for k, v in store.pools(event).items()}


def assert_pools_consistent(store: Storage, event: SaleEvent) -> None:
    """Per pool: the event's allocation, conservation, held and sold as the holds say;
    ``pools()`` adds up to ``stock()``; the audit finds nothing."""
    pools = store.pools(event.id)
    assert {k: v.allocation for k, v in pools.items()} == event.stock_rows()
    holds = list(store.holds(event.id))
    for key, level in pools.items():
        assert stock_key(level.sku, level.pool) == key
        assert level.conserved, level
        held = sum(
            ln.quantity
            for h in holds
            if h.state is HoldState.HELD
            for ln in h.lines
            if ln.stock == key
        )
        sold = sum(
            ln.quantity
            for h in holds
            if h.state is HoldState.PAID
            for ln in h.lines
            if ln.stock == key
        )
        assert (level.held, level.sold) == (held, sold), (key, level)
    assert by_sku(pools.values()) == store.stock(event.id)
    assert_consistent(store, event)
    found = audit(store, event)
    assert found.ok, found


def test_setup_keeps_a_stock_row_per_pool_and_stock_adds_them_up(store: Storage) -> None:
    event = pooled_event()
    store.setup(event)
    assert levels(store, event.id) == {
        SKU: (5, 5, 0, 0),
        f"{SKU} jd": (3, 3, 0, 0),
        f"{SKU} stores": (2, 2, 0, 0),
        "tv-55": (4, 4, 0, 0),
    }
    pools = store.pools(event.id)
    assert (pools[f"{SKU} jd"].sku, pools[f"{SKU} jd"].pool) == (SKU, "jd")
    assert (pools[SKU].sku, pools[SKU].pool) == (SKU, "")
    assert store.stock(event.id) == {
        SKU: StockLevel(SKU, 10, 10, 0, 0),
        "tv-55": StockLevel("tv-55", 4, 4, 0, 0),
    }
    assert_pools_consistent(store, event)


def test_a_reserved_pool_sells_out_while_the_shared_pool_still_has_stock(store: Storage) -> None:
    event = pooled_event()
    store.setup(event)
    placed(store, request(event, [(SKU, 3, "jd")], channel=JD))
    refusal = refused(store, request(event, [(SKU, 1, "jd")], "c2", JD))
    assert refusal == SoldOut(SKU, 1, 0, "jd")
    assert isinstance(refusal, SoldOut)
    assert refusal.detail() == {"sku": SKU, "requested": 1, "available": 0, "pool": "jd"}
    placed(store, request(event, [(SKU, 5, "")], "c3"))  # the shared pool is whole
    assert levels(store, event.id)[SKU] == (5, 0, 5, 0)
    assert_pools_consistent(store, event)


def test_the_shared_pool_sells_out_while_a_reserved_pool_still_has_stock(store: Storage) -> None:
    event = pooled_event()
    store.setup(event)
    placed(store, request(event, [(SKU, 4, "")]))
    refusal = refused(store, request(event, [(SKU, 2, "")], "c2"))
    assert refusal == SoldOut(SKU, 2, 1)
    assert isinstance(refusal, SoldOut)
    assert "pool" not in refusal.detail()  # the shared pool: the refusal of before
    placed(store, request(event, [(SKU, 2, "stores")], "c3", Channel(ChannelKind.STORE, "s1")))
    assert levels(store, event.id)[f"{SKU} stores"] == (2, 0, 2, 0)
    assert_pools_consistent(store, event)


def test_a_hold_with_lines_in_two_pools_is_placed_whole_or_not_at_all(store: Storage) -> None:
    event = pooled_event()
    store.setup(event)
    refusal = refused(store, request(event, [(SKU, 1, ""), (SKU, 4, "jd")], channel=JD))
    assert refusal == SoldOut(SKU, 4, 3, "jd")
    hold = placed(store, request(event, [(SKU, 1, ""), (SKU, 3, "jd"), ("tv-55", 1, "")]))
    assert levels(store, event.id)[SKU] == (5, 4, 1, 0)
    assert levels(store, event.id)[f"{SKU} jd"] == (3, 0, 3, 0)
    assert store.hold(hold.id) == hold
    assert_pools_consistent(store, event)


def test_a_hold_line_keeps_its_pool_when_read_back(store: Storage) -> None:
    event = pooled_event()
    store.setup(event)
    hold = placed(store, request(event, [(SKU, 1, "stores"), ("tv-55", 1, "")]))
    for read in (store.hold(hold.id), *store.holds(event.id)):
        assert read is not None
        assert [(ln.sku, ln.pool) for ln in read.lines] == [(SKU, "stores"), ("tv-55", "")]
    paid = store.pay([PayRequest(hold.id, "pay-1", NOW)])[0]
    assert isinstance(paid, Hold)
    assert paid.lines == hold.lines


@pytest.mark.parametrize("ending", ["release", "expire", "refund"])
def test_units_go_back_to_the_pool_of_their_line(store: Storage, ending: str) -> None:
    event = pooled_event(hold_seconds=60)
    store.setup(event)
    hold = placed(store, request(event, [(SKU, 2, "jd"), (SKU, 1, "")], channel=JD))
    if ending == "refund":
        assert isinstance(store.pay([PayRequest(hold.id, "pay-1", NOW)])[0], Hold)
        assert levels(store, event.id)[f"{SKU} jd"] == (3, 1, 0, 2)
        assert isinstance(store.refund([RefundRequest(hold.id, NOW)])[0], Hold)
    elif ending == "release":
        assert isinstance(store.release([ReleaseRequest(hold.id, NOW)])[0], Hold)
    else:
        [expired] = store.expire_due(event.id, NOW + timedelta(seconds=60))
        assert expired.state is HoldState.EXPIRED
    assert levels(store, event.id)[f"{SKU} jd"] == (3, 3, 0, 0)
    assert levels(store, event.id)[SKU] == (5, 5, 0, 0)
    assert_pools_consistent(store, event)
    # the units given back serve the same pool again
    placed(store, request(event, [(SKU, 3, "jd")], "c2", JD))


def test_a_customers_limit_counts_a_skus_lines_in_every_pool(store: Storage) -> None:
    event = pooled_event(sku_limit=3)
    store.setup(event)
    refusal = refused(store, request(event, [(SKU, 2, ""), (SKU, 2, "jd")], channel=JD))
    assert refusal == LimitExceeded("c1", 3, 0, SKU)
    first = placed(store, request(event, [(SKU, 2, "jd")], channel=JD))
    assert refused(store, request(event, [(SKU, 2, "")])) == LimitExceeded("c1", 3, 2, SKU)
    placed(store, request(event, [(SKU, 1, "stores")]))
    # a release gives the customer's units back whatever their pool
    assert isinstance(store.release([ReleaseRequest(first.id, NOW)])[0], Hold)
    placed(store, request(event, [(SKU, 1, ""), (SKU, 1, "jd")], channel=JD))
    assert_pools_consistent(store, event)


def test_a_line_of_a_pool_the_offer_lacks_is_refused(store: Storage) -> None:
    event = pooled_event()
    store.setup(event)
    assert refused(store, request(event, [("tv-55", 1, "jd")], channel=JD)) == UnknownSku(
        event.id, "tv-55"
    )
    assert_pools_consistent(store, event)


def test_an_update_moves_units_between_pools_in_one_step(store: Storage) -> None:
    event = pooled_event()
    store.setup(event)
    placed(store, request(event, [(SKU, 2, "jd")], channel=JD))
    moved = pooled_event(pools={"jd": 2, "stores": 2, "tmall": 1})  # jd gives one to tmall
    moved = replace(
        moved,
        channels={
            **moved.channels,
            "tmall": ChannelSpec("tmall", ChannelKind.MARKETPLACE, pool="tmall"),
        },
    )
    store.update(moved)
    assert levels(store, event.id) == {
        SKU: (5, 5, 0, 0),
        f"{SKU} jd": (2, 0, 2, 0),
        f"{SKU} stores": (2, 2, 0, 0),
        f"{SKU} tmall": (1, 1, 0, 0),
        "tv-55": (4, 4, 0, 0),
    }
    assert store.stock(event.id)[SKU] == StockLevel(SKU, 10, 8, 2, 0)
    assert_pools_consistent(store, moved)
    # a larger allocation given to the shared pool, and stores' pool given back to it
    grown = replace(
        moved,
        offers={
            **moved.offers,
            SKU: replace(
                moved.offers[SKU], allocation=12, pools={"jd": 2, "stores": 0, "tmall": 1}
            ),
        },
    )
    store.update(grown)
    assert levels(store, event.id)[SKU] == (9, 9, 0, 0)
    assert levels(store, event.id)[f"{SKU} stores"] == (0, 0, 0, 0)
    assert_pools_consistent(store, grown)


def test_an_update_below_a_pools_held_and_sold_units_is_refused_and_changes_nothing(
    store: Storage,
) -> None:
    event = pooled_event()
    store.setup(event)
    hold = placed(store, request(event, [(SKU, 3, "jd")], channel=JD))
    assert isinstance(store.pay([PayRequest(hold.id, "pay-1", NOW)])[0], Hold)
    before = (snapshot(store, event.id), levels(store, event.id), store.load_events())
    # the SKU's total is unchanged: only jd's pool falls below its 3 sold units
    shrunk = pooled_event(pools={"jd": 2, "stores": 3})
    with pytest.raises(UpdateRefused) as refusal:
        store.update(shrunk)
    assert refusal.value.field == "allocation"
    assert "pool jd" in refusal.value.problem
    assert (snapshot(store, event.id), levels(store, event.id), store.load_events()) == before
    assert_pools_consistent(store, event)


def test_tills_a_marketplace_and_online_buyers_never_oversell_a_pool(
    backend: Backend, tmp_path: Path
) -> None:
    """One hot SKU with a jd pool, a stores pool and the shared pool; till, jd and online
    buyers at once, each thread with its own service, over two stores of one state (two
    processes' worth of writers): each reserves one unit from its channel's pool, then
    pays. Demand is above every pool, so each pool sells exactly its allocation."""
    event = pooled_event("hot", allocation=60, pools={"jd": 20, "stores": 15})
    stores = backend.open_shared(tmp_path, 2)
    try:
        stores[0].setup(event)
        buyers = 150
        kinds = [
            (Channel(ChannelKind.STORE, "store-7"), "stores"),
            (JD, "jd"),
            (ONLINE, ""),
        ]

        services = []  # each buyer's own service, ready before the race
        for i in range(buyers):
            services.append(Sales(stores[i % 2], clock=ManualClock(NOW)))
            services[-1].open(event)

        def buy(i: int) -> object:
            store, sales = stores[i % 2], services[i]
            channel, pool = kinds[i % 3]
            req = request(event, [(SKU, 1, pool)], f"b{i}", channel)
            [held] = store.reserve([req])
            if not isinstance(held, Hold):
                return held
            return sales.pay(held.id, f"pay-{held.id}")

        results = together(buyers, buy)
        assert reasons(results) == {"ok": 60, "sold-out": buyers - 60}
        for i, result in enumerate(results):
            if isinstance(result, SoldOut):
                assert (result.sku, result.pool, result.available) == (SKU, kinds[i % 3][1], 0)
            else:
                assert isinstance(result, Hold)
                assert result.state is HoldState.PAID
                assert result.lines[0].pool == kinds[i % 3][1]
        assert levels(stores[0], event.id) == {
            SKU: (25, 0, 0, 25),
            f"{SKU} jd": (20, 0, 0, 20),
            f"{SKU} stores": (15, 0, 0, 15),
            "tv-55": (4, 4, 0, 0),
        }
        sold = Counter(h.lines[0].pool for h in stores[0].holds(event.id) if h.is_order)
        assert sold == {"": 25, "jd": 20, "stores": 15}
        assert stores[0].totals(event.id) == recount(list(stores[0].holds(event.id)))
        assert stores[0].totals(event.id).order_count == 60
        assert_pools_consistent(stores[0], event)
    finally:
        for store in {id(s): s for s in stores}.values():
            store.close()


# -- a state machine over pooled lines ------------------------------------------------------

MACHINE_POOLS = ("", "jd", "stores", "ghost")  # "ghost": a pool no offer reserves
MACHINE_LIMIT = 3
#: Pool names as hostile as storage may meet: quotes, backslashes, spaces, any script (no
#: control character: the service only ever names pools of the definition, checked ids).
_POOL_TEXT = st.characters(categories=("L", "N", "P", "S", "Zs"))


class PoolMachine(RuleBasedStateMachine):
    """Reserve lines in any pool (one that exists or not), pay, release, refund, expire,
    and move units between the pools of the live event; every outcome predicted from a
    model of each stock row and each customer's units per SKU."""

    backend: Backend
    tmp: Path

    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.store: Storage = self.backend.open(Path(tempfile.mkdtemp(dir=self.tmp)))
        self.event = pooled_event(
            "machine",
            allocation=6,
            pools={"jd": 2, "stores": 1},
            sku_limit=MACHINE_LIMIT,
            hold_seconds=60,
        )
        self.store.setup(self.event)
        self.rows = {k: [a, a, 0, 0] for k, a in self.event.stock_rows().items()}
        self.states: dict[str, HoldState] = {}
        self.lines: dict[str, tuple[str, tuple[HoldLine, ...]]] = {}

    def teardown(self) -> None:
        self.store.close()

    def _active(self, customer: str, sku: str) -> int:
        return sum(
            ln.quantity
            for hid, (cust, lines) in self.lines.items()
            if cust == customer and self.states[hid] in (HoldState.HELD, HoldState.PAID)
            for ln in lines
            if ln.sku == sku
        )

    def _move(self, lines: tuple[HoldLine, ...], frm: int, to: int) -> None:
        for ln in lines:
            self.rows[ln.stock][frm] -= ln.quantity
            self.rows[ln.stock][to] += ln.quantity

    @rule(
        target=holds,
        customer=st.sampled_from(["c1", "c2"]),
        lines=st.lists(
            st.tuples(
                st.sampled_from([SKU, "tv-55"]),
                st.integers(1, 3),
                st.sampled_from(MACHINE_POOLS) | st.text(_POOL_TEXT, min_size=1, max_size=8),
            ),
            min_size=1,
            max_size=3,
        ),
    )
    def reserve(self, customer: str, lines: list[tuple[str, int, str]]) -> object:
        req = request(self.event, lines, customer, JD)
        per_sku: Counter[str] = Counter()
        wanted: Counter[str] = Counter()
        for ln in req.hold.lines:
            per_sku[ln.sku] += ln.quantity
            wanted[ln.stock] += ln.quantity
        expected: object = None
        for sku in sorted(per_sku):
            already = self._active(customer, sku)
            if already + per_sku[sku] > MACHINE_LIMIT:
                expected = LimitExceeded(customer, MACHINE_LIMIT, already, sku)
                break
        if expected is None:
            for key in sorted(wanted):
                sku, pool = split_stock_key(key)
                if key not in self.rows:
                    expected = UnknownSku(self.event.id, sku)
                    break
                if self.rows[key][1] < wanted[key]:
                    expected = SoldOut(sku, wanted[key], self.rows[key][1], pool)
                    break
        if expected is not None:
            assert refused(self.store, req) == expected
            return multiple()
        hold = placed(self.store, req)
        assert hold.lines == req.hold.lines
        self.states[hold.id] = HoldState.HELD
        self.lines[hold.id] = (customer, hold.lines)
        self._move(hold.lines, 1, 2)
        return hold.id

    @rule(hold_id=holds)
    def pay(self, hold_id: str) -> None:
        [result] = self.store.pay([PayRequest(hold_id, f"pay-{hold_id}", NOW)])
        state = self.states[hold_id]
        if state is HoldState.HELD:
            assert isinstance(result, Hold), result
            self.states[hold_id] = HoldState.PAID
            self._move(self.lines[hold_id][1], 2, 3)
        elif state in (HoldState.PAID, HoldState.REFUNDED):  # its own payment id again
            assert isinstance(result, Hold), result
            assert result.state is state
        else:
            assert not isinstance(result, Hold), result

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        [result] = self.store.release([ReleaseRequest(hold_id, NOW)])
        if self.states[hold_id] is HoldState.HELD:
            assert isinstance(result, Hold), result
            self.states[hold_id] = HoldState.RELEASED
            self._move(self.lines[hold_id][1], 2, 1)

    @rule(hold_id=holds)
    def refund(self, hold_id: str) -> None:
        [result] = self.store.refund([RefundRequest(hold_id, NOW)])
        if self.states[hold_id] is HoldState.PAID:
            assert isinstance(result, Hold), result
            self.states[hold_id] = HoldState.REFUNDED
            self._move(self.lines[hold_id][1], 3, 1)

    @rule()
    def expire_every_held_hold(self) -> None:
        expired = self.store.expire_due(self.event.id, NOW + timedelta(seconds=60))
        held = {h for h, s in self.states.items() if s is HoldState.HELD}
        assert {h.id for h in expired} == held
        for hold_id in held:
            self.states[hold_id] = HoldState.EXPIRED
            self._move(self.lines[hold_id][1], 2, 1)

    @rule(pool=st.sampled_from(["jd", "stores"]), delta=st.integers(-2, 2))
    def move_units_between_a_pool_and_the_shared_one(self, pool: str, delta: int) -> None:
        offer = self.event.offers[SKU]
        units = offer.pools[pool] + delta
        if not 0 <= units <= offer.allocation - sum(offer.pools.values()) + offer.pools[pool]:
            return
        new = replace(
            self.event,
            offers={**self.event.offers, SKU: replace(offer, pools={**offer.pools, pool: units})},
        )
        key = stock_key(SKU, pool)
        short = min(self.rows[key][1] + delta, self.rows[SKU][1] - delta) < 0
        before = (snapshot(self.store, self.event.id), self.store.pools(self.event.id))
        if short:
            with pytest.raises(UpdateRefused):
                self.store.update(new)
            assert (snapshot(self.store, self.event.id), self.store.pools(self.event.id)) == before
            return
        self.store.update(new)
        for k, d in ((key, delta), (SKU, -delta)):
            self.rows[k][0] += d
            self.rows[k][1] += d
        self.event = new

    @invariant()
    def every_pool_is_as_the_model_says_and_adds_up(self) -> None:
        assert levels(self.store, self.event.id) == {k: tuple(v) for k, v in self.rows.items()}
        assert_pools_consistent(self.store, self.event)


def test_every_sequence_of_pooled_operations_keeps_each_pool_whole(
    backend: Backend, tmp_path: Path
) -> None:
    machine = type(
        "PoolMachineOn" + backend.name.title(),
        (PoolMachine,),
        {"backend": backend, "tmp": tmp_path},
    )
    run_state_machine_as_test(
        machine, settings=settings(max_examples=15, stateful_step_count=15, deadline=None)
    )


@pytest.mark.redis_postgres
def test_reconcile_restores_an_order_of_a_pool_by_releasing_a_hold_of_that_pool(
    tmp_path: Path,
) -> None:
    """An order on record only (its live write lost), of jd's pool, which live unpaid
    holds fill: the restore releases the newest unpaid hold of jd's pool, not the shared
    pool's, and afterwards each pool's sold agrees between the two stores."""
    store = REDIS_POSTGRES.open(tmp_path)
    try:
        assert isinstance(store, RedisPostgresStorage)
        event = pooled_event()
        store.setup(event)
        jd_holds = [placed(store, request(event, [(SKU, 1, "jd")], f"j{i}", JD)) for i in range(3)]
        shared = placed(store, request(event, [(SKU, 1, "")], "c1"))  # the newest unpaid hold
        lost = request(event, [(SKU, 1, "jd")], "c9", JD).hold.pay("pay-lost", NOW)
        [recorded] = store.ledger.record([lost])
        assert isinstance(recorded, Hold), recorded
        found = reconcile(store.live, store.ledger, clock=ManualClock(NOW))
        released = [d.subject for d in found.differences if d.kind == "hold-released"]
        assert released == [jd_holds[-1].id]
        assert store.hold(shared.id).state is HoldState.HELD  # type: ignore[union-attr]
        assert levels(store, event.id)[f"{SKU} jd"] == (3, 0, 2, 1)
        assert reconcile(store.live, store.ledger, check=True).differences == []
        assert_pools_consistent(store, event)
    finally:
        store.close()
