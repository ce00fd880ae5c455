"""The audit finds what it looks for: it passes a clean run and flags a broken one."""

from __future__ import annotations

from dataclasses import replace

from lampo.services.audit import audit
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.sim.driver import run
from lampo.sim.scenario import load
from lampo.sim.snapshot import Snapshot
from lampo.storage.memory import MemoryStorage
from tests.contract.test_pools import JD, SKU, pooled_event, request


def simulated() -> tuple[MemoryStorage, Sales]:
    scenario = load("flash-drop", 0.01)
    storage = MemoryStorage()
    clock = ManualClock(scenario.event.opens)
    sales = Sales(storage, clock)
    result = run(scenario, sales, clock, seed=3)
    assert result.paid > 0
    return storage, sales


def test_a_clean_run_passes_the_audit() -> None:
    storage, sales = simulated()
    found = audit(storage, sales.event("redmi-1s-flipkart-2014"))
    assert found.ok
    assert found.summary() == (
        "oversold 0 · limit violations 0 · leaked 0 · totals vs recount: equal"
    )


def test_the_audit_flags_stock_that_disagrees_with_the_holds() -> None:
    storage, sales = simulated()
    key = ("redmi-1s-flipkart-2014", "redmi-1s")
    level = storage._st.stock[key]
    storage._st.stock[key] = replace(level, sold=level.sold + 3)  # a corrupted counter
    found = audit(storage, sales.event("redmi-1s-flipkart-2014"))
    assert not found.ok
    assert found.leaked["redmi-1s"] >= 3
    assert found.oversold["redmi-1s"] == 3


def test_the_audit_flags_totals_that_differ_from_the_recount() -> None:
    storage, sales = simulated()
    totals = storage._st.events["redmi-1s-flipkart-2014"]
    key, row = next(iter(totals.lines.items()))
    totals.lines[key] = row._replace(amount=row.amount + 1)  # one paisa too many
    found = audit(storage, sales.event("redmi-1s-flipkart-2014"))
    assert len(found.totals) == 1
    assert "1 rows differ" in found.summary()


def test_the_audit_flags_a_customer_over_the_limit() -> None:
    storage, sales = simulated()
    paid = next(h for h in storage.holds("redmi-1s-flipkart-2014") if h.state == "paid")
    twin = replace(paid, id="twin-" + paid.id)
    storage._st.holds[twin.id] = twin  # a second order for the same customer
    found = audit(storage, sales.event("redmi-1s-flipkart-2014"))
    assert any(v.customer == paid.customer for v in found.limit_violations)


def test_the_audit_flags_units_in_the_wrong_pool_that_the_sku_total_hides() -> None:
    storage = MemoryStorage()
    event = pooled_event()
    storage.setup(event)
    storage.reserve([request(event, [(SKU, 2, "jd")], channel=JD)])
    assert audit(storage, event).ok
    # two units held in jd's pool booked in the shared one instead: per SKU all agrees
    shared, jd = (event.id, SKU), (event.id, f"{SKU} jd")
    st = storage._st.stock
    st[shared] = replace(st[shared], available=st[shared].available - 2, held=2)
    st[jd] = replace(st[jd], available=st[jd].available + 2, held=0)
    found = audit(storage, event)
    assert SKU not in found.leaked
    assert found.leaked == {f"{SKU} (shared)": 2, f"{SKU} (jd)": 2}
    assert found.oversold == {}
    assert not found.ok


def test_a_snapshot_that_knows_no_pools_is_audited_per_sku() -> None:
    storage = MemoryStorage()
    event = pooled_event()
    storage.setup(event)
    storage.reserve([request(event, [(SKU, 2, "jd")], channel=JD)])
    seen = Snapshot(
        event, list(storage.holds(event.id)), storage.stock(event.id), storage.totals(event.id)
    )
    assert seen.pools(event.id) == {}
    assert audit(seen, event).ok
