"""The in-process driver: runs a scenario's crowd against a ``Sales`` service in virtual time.

Time is whole milliseconds after the event's first opening. Every request carries its own
instant (``ReserveCommand.at``, ``pay_many`` and ``release_many``'s ``at``; a sweep sets the
clock), so holds, payments, releases and expiries are stamped to the millisecond and the
report's sell-out times and milestone crossings are exact, as a real clock gives them.
The expiry sweeper runs as a server's does, every ``sweep_every`` seconds (the server's
default: one) when a hold is due.

Storage's group commit costs one commit (an fsync on SQLite's default) per call, so the
driver sends large batches. It walks the visits and the buyers' later steps in time
order and gathers them into three buffers, flushed in this order, each as one or a few
storage calls: payments, returns (releases and sweeps, in time order), reservations.
Flushing kinds in a fixed order reorders requests of different kinds; the driver flushes
early exactly where that could change a result:

- a payment moves units from held to sold, which no reservation or release reads; it goes
  before a sweep, as it must (paid before the deadline, the hold is no longer held; paid
  after it, the payment is refused either way);
- a return sent before earlier reservations would hand them units they might not have
  found: it joins the buffer only if the buffered reservations ask for no more units of
  each of its SKUs than are available (so none is refused for want of them, in either
  order) and none is its customer's (limits); otherwise the buffers are flushed first;
- a buyer's next step needs the hold: the buffers are flushed before the first step of a
  buffered reservation (its plan's delay, or the hold's expiry) could be due.

A walk-in at a store (``Plan.TILL``) is a till sale: the protocol of
``Sales.sell_in_store`` (a hold under the till's key, paid at once with payment id
``store:<hold id>``), its hold placed with the buffered reservations and paid in the same
flush at the same instant, so it is never held across a sweep. Availability is followed
per stock pool (an event that declares channels keeps a row per reserved pool), and a
return conflicts with buffered reservations when its pool could not serve them all.

So every request gets the result it would get if each were sent alone at its instant, in
time order (``one_by_one=True`` does exactly that, and the tests compare the two), in a few
thousand commits instead of millions. After the last visit the run goes on until every
hold has ended (paid, released or expired), so it ends at a quiet point.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from lampo.domain.channels import split_stock_key
from lampo.domain.errors import InvalidRequest, LampoError, SoldOut
from lampo.domain.holds import Hold
from lampo.services.clock import ManualClock
from lampo.services.sales import ReserveCommand, Sales
from lampo.sim.crowd import DOUBLE_PAY_GAP_MS, Plan, Visit, again, check_work, timeline
from lampo.sim.scenario import Scenario

#: ``progress(done, total, result)``: virtual seconds simulated so far, out of the event's
#: length, and what the run counted so far (the live view reads it; it must not keep it).
Progress = Callable[[int, int, "SimResult"], None]

_PAY, _RELEASE, _SWEEP = 0, 1, 2
_NEVER = 1 << 62
T = TypeVar("T")
#: A live hold as the driver keeps it: (expiry in ms, customer, (stock key, units) lines).
_Live = tuple[int, str, tuple[tuple[str, int], ...]]


@dataclass(slots=True)
class SimResult:
    """What a run did, counted by the driver from the results it got back."""

    scenario: str
    scale: float
    seed: int
    requests: int = 0  # reservation requests sent, resent ones included
    resent: int = 0  # of which repeated an idempotency key and got the first hold back
    holds: int = 0  # distinct holds placed
    payments: int = 0  # payment requests sent
    paid: int = 0  # holds turned into orders
    releases: int = 0
    expired: int = 0
    till_sales: int = 0  # walk-ins sold at a store's till (paid at once)
    refusals: Counter[str] = field(default_factory=Counter)
    batches: int = 0  # storage calls made
    started: datetime | None = None  # virtual, UTC
    ended: datetime | None = None
    wall_seconds: float = 0.0

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())


class _Visits:
    """The crowd's visits merged with those of buyers who come back after a sold-out."""

    def __init__(self, crowd: Iterator[Visit]) -> None:
        self.crowd = crowd
        self.head = next(crowd, None)
        self.later: list[tuple[int, int, Visit]] = []
        self.seq = 0

    def next_at(self) -> int:
        at = self.head.at_ms if self.head is not None else _NEVER
        return min(at, self.later[0][0]) if self.later else at

    def pop(self) -> Visit:
        if self.later and (self.head is None or self.later[0][0] < self.head.at_ms):
            return heapq.heappop(self.later)[2]
        visit = self.head
        assert visit is not None
        self.head = next(self.crowd, None)
        return visit

    def add(self, visit: Visit) -> None:
        self.seq += 1
        heapq.heappush(self.later, (visit.at_ms, self.seq, visit))


@dataclass(slots=True)
class _Sweep:
    at: int
    due: dict[str, _Live]  # the holds due by ``at``, out of ``live`` until the sweep ran


class _Run:
    def __init__(
        self,
        scenario: Scenario,
        sales: Sales,
        clock: ManualClock,
        seed: int,
        chunk: int,
        sweep_ms: int,
        one_by_one: bool,
        progress: Progress | None,
    ) -> None:
        self.event = scenario.event
        self.sales = sales
        self.clock = clock
        self.chunk = chunk
        self.sweep_ms = sweep_ms
        self.one_by_one = one_by_one
        self.progress = progress
        self.start = self.event.opens
        self.hold_ms = self.event.hold_seconds * 1000
        self.length = int((self.event.closes - self.start).total_seconds())
        self.result = SimResult(scenario.name, scenario.scale, seed)
        self.available = self.event.stock_rows()  # by stock key: a row per pool
        self.live: OrderedDict[str, _Live] = OrderedDict()  # in placement (= expiry) order
        self.swept: dict[str, _Live] = {}  # due holds whose sweep is buffered
        self.closing: dict[str, _Live] = {}  # holds a buffered payment or release ends
        self.steps: list[tuple[int, int, int, str]] = []  # (at, seq, kind, hold id)
        self.seq = 0
        self.reported = -1
        self.now = 0
        # the buffers
        self.pays: list[tuple[int, str]] = []
        self.returns: list[tuple[int, str] | _Sweep] = []
        self.reserves: list[Visit] = []
        self.wanted: Counter[str] = Counter()  # units the buffered reservations ask for
        self.buyers: set[str] = set()  # customers of the buffered reservations
        self.horizon = _NEVER  # the first instant a buffered reservation's hold is needed

    # -- the loop ---------------------------------------------------------------
    def run(self, visits: Iterator[Visit]) -> SimResult:
        wall = time.perf_counter()
        self.result.started = self.start
        stream = self.visits = _Visits(visits)
        steps = self.steps
        while True:
            visit_at = stream.next_at()
            step_at = steps[0][0] if steps else _NEVER
            sweep_at = self.next_sweep()
            at = min(visit_at, step_at, sweep_at)
            if at == _NEVER:
                if self.reserves or self.pays or self.returns:
                    self.flush()  # its results may schedule more
                    continue
                break
            if at >= self.horizon:
                self.flush()
                continue  # the flush may have scheduled steps due sooner
            self.now = at
            if sweep_at == at:  # at one instant: a sweep, then steps, then new visits
                self.add_sweep(at)
            elif step_at == at:
                _, _, kind, hold_id = heapq.heappop(steps)
                if kind == _PAY:
                    self.add_pay(at, hold_id)
                else:
                    self.add_release(at, hold_id)
            else:
                self.add_reserve(stream.pop())
            if self.one_by_one or len(self.reserves) >= self.chunk:
                self.flush()
            self.report(at // 1000)
        self.result.ended = self.instant(self.now)
        self.result.wall_seconds = time.perf_counter() - wall
        if self.progress is not None:
            self.progress(self.length, self.length, self.result)
        return self.result

    def next_sweep(self) -> int:
        """The first sweep (on the sweeper's beat) with a live hold due, or ``_NEVER``."""
        if not self.live:
            return _NEVER
        due = next(iter(self.live.values()))[0]
        return -(-due // self.sweep_ms) * self.sweep_ms

    def report(self, now: int) -> None:
        if self.progress is None:
            return
        done = min(now, self.length)
        if done - self.reported >= max(1, self.length // 400):
            self.reported = done
            self.progress(done, self.length, self.result)

    def instant(self, at_ms: int) -> datetime:
        return self.start + timedelta(milliseconds=at_ms)

    # -- gathering --------------------------------------------------------------
    def add_reserve(self, visit: Visit) -> None:
        self.reserves.append(visit)
        for sku, units in visit.items:
            self.wanted[sku] += units
        self.buyers.add(visit.customer)
        first = visit.delay_ms if visit.plan not in (Plan.ABANDON, Plan.TILL) else self.hold_ms
        first = min(max(first, 1), self.hold_ms)
        if visit.comeback_ms:  # refused as sold out, the buyer comes back then
            first = min(first, visit.comeback_ms)
        self.horizon = min(self.horizon, visit.at_ms + first)

    def conflicts(self, customer: str, items: tuple[tuple[str, int], ...]) -> bool:
        """Whether a return of ``items`` to ``customer`` could change the result of a
        buffered reservation if it were sent before it."""
        if customer in self.buyers:
            return True
        wanted, available = self.wanted, self.available
        for stock, _ in items:
            sku = split_stock_key(stock)[0]
            if sku in wanted and wanted[sku] > available[stock]:
                return True
        return False

    def closes(self, at: int, hold_id: str) -> _Live | None:
        """A step at ``at`` on a live hold ends it, if the hold is still held then: move it
        out of ``live`` at once, so no sweep is planned for it."""
        held = self.live.get(hold_id)
        if held is not None and at < held[0]:
            del self.live[hold_id]
            self.closing[hold_id] = held
        return held

    def add_pay(self, at: int, hold_id: str) -> None:
        self.closes(at, hold_id)
        self.pays.append((at, hold_id))

    def add_release(self, at: int, hold_id: str) -> None:
        held = self.closes(at, hold_id)
        if held is not None and self.reserves and self.conflicts(held[1], held[2]):
            self.flush()
        self.returns.append((at, hold_id))

    def add_sweep(self, at: int) -> None:
        due: dict[str, _Live] = {}
        live = self.live
        while live:
            hold_id, held = next(iter(live.items()))
            if held[0] > at:
                break
            del live[hold_id]
            due[hold_id] = held
        self.swept.update(due)  # before a flush: a buffered payment may end one of them
        if self.reserves and any(self.conflicts(h[1], h[2]) for h in due.values()):
            self.flush()
        self.returns.append(_Sweep(at, due))

    # -- sending ----------------------------------------------------------------
    def chunks(self, items: Sequence[T]) -> Iterator[Sequence[T]]:
        for i in range(0, len(items), self.chunk):
            yield items[i : i + self.chunk]

    def flush(self) -> None:
        self.clock.set(self.instant(self.now))
        pays, returns, reserves = self.pays, self.returns, self.reserves
        self.pays, self.returns, self.reserves = [], [], []
        self.wanted.clear()
        self.buyers.clear()
        self.horizon = _NEVER
        for block in self.chunks(pays):
            self.send_pays(block)
        releases: list[tuple[int, str]] = []
        for item in returns:
            if isinstance(item, _Sweep):
                self.send_releases(releases)
                releases = []
                self.sweep(item)
            else:
                releases.append(item)
        self.send_releases(releases)
        for visits in self.chunks(reserves):
            self.send_reserves(visits)

    def send_pays(self, block: Sequence[tuple[int, str]]) -> None:
        result = self.result
        result.batches += 1
        result.payments += len(block)
        pairs = [(hold_id, f"pay-{hold_id}") for _, hold_id in block]
        at = [self.instant(t) for t, _ in block]
        for paid in self.sales.pay_many(pairs, at):
            if isinstance(paid, LampoError):
                result.refusals[paid.reason] += 1
            elif self.ended(paid.id) is not None:
                result.paid += 1

    def send_releases(self, block: list[tuple[int, str]]) -> None:
        if not block:
            return
        for part in self.chunks(block):
            self.result.batches += 1
            self.result.releases += len(part)
            at = [self.instant(t) for t, _ in part]
            for released in self.sales.release_many([h for _, h in part], at):
                if isinstance(released, LampoError):
                    self.result.refusals[released.reason] += 1
                elif self.ended(released.id) is not None:
                    self.give_back(released)

    def sweep(self, sweep: _Sweep) -> None:
        self.clock.set(self.instant(sweep.at))
        self.result.batches += 1
        for hold in self.sales.expire_due(self.event.id):
            if self.ended(hold.id) is not None:
                self.result.expired += 1
                self.give_back(hold)
        for hold_id in sweep.due:  # paid or released before the sweep
            self.swept.pop(hold_id, None)
        self.clock.set(self.instant(self.now))

    def send_reserves(self, visits: Sequence[Visit]) -> None:
        if self.one_by_one and len(visits) == 1 and visits[0].plan is Plan.TILL:
            self.sell_alone(visits[0])
            return
        ev, result = self.event.id, self.result
        commands = [
            ReserveCommand(
                ev, v.customer, v.market, dict(v.items), v.channel, v.key, self.instant(v.at_ms)
            )
            for v in visits
        ]
        result.batches += 1
        result.requests += len(commands)
        tills: list[tuple[Visit, Hold]] = []
        for visit, command, held in zip(
            visits, commands, self.sales.reserve_many(commands), strict=True
        ):
            if isinstance(held, LampoError):
                result.refusals[held.reason] += 1
                if visit.comeback_ms and isinstance(held, SoldOut):
                    self.visits.add(again(visit))
            elif held.created_at != command.at:
                result.resent += 1  # the same key again: the first hold, no second effect
            elif visit.plan is Plan.TILL:
                tills.append((visit, held))
            else:
                self.placed(visit, held)
        if tills:
            self.pay_tills(tills)

    def pay_tills(self, tills: list[tuple[Visit, Hold]]) -> None:
        """Pay the holds of till sales at their own instants (``sell_in_store``'s second
        step, under its payment id)."""
        result = self.result
        result.batches += 1
        result.holds += len(tills)
        result.payments += len(tills)
        for _, hold in tills:
            for line in hold.lines:
                self.available[line.stock] -= line.quantity
        pairs = [(hold.id, f"store:{hold.id}") for _, hold in tills]
        at = [self.instant(visit.at_ms) for visit, _ in tills]
        for (visit, hold), paid in zip(tills, self.sales.pay_many(pairs, at), strict=True):
            self.sold_at_till(visit, hold, paid)

    def sold_at_till(self, visit: Visit, hold: Hold, paid: Hold | LampoError) -> None:
        if isinstance(paid, LampoError):  # never expected: the hold is left to expire
            self.result.refusals[paid.reason] += 1
            lines = tuple((line.stock, line.quantity) for line in hold.lines)
            self.live[hold.id] = (visit.at_ms + self.hold_ms, hold.customer, lines)
            # ``live`` is kept in expiry order, which this late entry may break
            self.live = OrderedDict(sorted(self.live.items(), key=lambda item: item[1][0]))
            return
        self.result.paid += 1
        self.result.till_sales += 1

    def sell_alone(self, visit: Visit) -> None:
        """A till sale sent alone, through ``Sales.sell_in_store`` (the reference)."""
        result = self.result
        result.batches += 1
        result.requests += 1
        store = visit.channel.name
        try:
            sold = self.sales.sell_in_store(
                self.event.id, store, visit.customer, visit.market, dict(visit.items), visit.key
            )
        except LampoError as refusal:
            result.refusals[refusal.reason] += 1
            return
        result.holds += 1
        result.payments += 1
        for line in sold.lines:
            self.available[line.stock] -= line.quantity
        self.sold_at_till(visit, sold, sold)

    # -- results ----------------------------------------------------------------
    def ended(self, hold_id: str) -> _Live | None:
        """Forget a hold that has ended; what was kept of it if it was live."""
        held = self.closing.pop(hold_id, None) or self.live.pop(hold_id, None)
        return held if held is not None else self.swept.pop(hold_id, None)

    def placed(self, visit: Visit, hold: Hold) -> None:
        plan, delay, at = visit.plan, visit.delay_ms, visit.at_ms
        if plan is Plan.NONE:  # a resent request whose first try was refused got through
            plan = Plan.PAY
        self.result.holds += 1
        lines = tuple((line.stock, line.quantity) for line in hold.lines)
        self.live[hold.id] = (at + self.hold_ms, hold.customer, lines)
        for stock, units in lines:
            self.available[stock] -= units
        if plan in (Plan.PAY, Plan.PAY_LATE):
            self.schedule(at + delay, _PAY, hold.id)
        elif plan is Plan.PAY_TWICE:
            self.schedule(at + delay, _PAY, hold.id)
            self.schedule(at + delay + DOUBLE_PAY_GAP_MS, _PAY, hold.id)
        elif plan is Plan.RELEASE:
            self.schedule(at + delay, _RELEASE, hold.id)

    def schedule(self, at: int, kind: int, hold_id: str) -> None:
        self.seq += 1
        heapq.heappush(self.steps, (at, self.seq, kind, hold_id))

    def give_back(self, hold: Hold) -> None:
        for line in hold.lines:
            self.available[line.stock] += line.quantity


def run(
    scenario: Scenario,
    sales: Sales,
    clock: ManualClock,
    seed: int = 0,
    chunk: int = 10_000,
    sweep_every: float = 1.0,
    one_by_one: bool = False,
    progress: Progress | None = None,
    visits: Iterator[Visit] | None = None,
    opened: bool = False,
) -> SimResult:
    """Run ``scenario``'s crowd (seeded by ``seed``) against ``sales``, whose clock is
    ``clock``. Opens the event in ``sales`` first. Returns what the driver counted.

    ``chunk``: the most requests per storage call. ``sweep_every``: virtual seconds
    between two runs of the expiry sweeper (as a server runs it), at least a millisecond.
    ``one_by_one``: send every request alone, at its instant, in time order (the
    reference the batched run must agree with; slow).
    ``ScenarioError`` (nothing written) for a run beyond the budget (``crowd.check_work``).
    ``visits``: the buy path's visits instead of the crowd's timeline, in time order (the
    front door's rehearsal, ``sim.door``, passes its admitted ones); ``opened``: the event
    is open in ``sales`` already."""
    sweep_ms = round(sweep_every * 1000)
    if chunk < 1 or sweep_ms < 1:
        raise InvalidRequest("driver", "chunk must be at least 1, sweep_every 0.001 s")
    check_work(scenario)  # before anything is written
    if not opened:
        sales.open(scenario.event)
    run = _Run(scenario, sales, clock, seed, chunk, sweep_ms, one_by_one, progress)
    return run.run(timeline(scenario, seed) if visits is None else visits)
