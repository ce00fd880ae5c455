"""The in-process driver: runs a scenario's crowd against a ``Sales`` service in virtual time.

Virtual time moves on a ``ManualClock`` from one busy second to the next (quiet seconds are
skipped). In each busy second the driver first runs the expiry sweeper if a hold it placed
is due, then submits the payments and releases due now, then the new reservations, each in
chunks through ``pay_many`` / ``release_many`` / ``reserve_many`` so that storage batches
them. After the last visit it goes on until every hold has ended (paid, released or
expired), so the run ends at a quiet point where nothing is held.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import TypeVar

from lampo.domain.errors import InvalidRequest, LampoError
from lampo.domain.holds import Hold
from lampo.services.clock import ManualClock
from lampo.services.sales import ReserveCommand, Sales
from lampo.sim.crowd import Plan, Visit, check_work, timeline
from lampo.sim.scenario import Scenario

#: ``progress(done, total)``: virtual seconds simulated so far, out of the event's length.
Progress = Callable[[int, int], None]

_PAY, _RELEASE = 0, 1
T = TypeVar("T")


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
    refusals: Counter[str] = field(default_factory=Counter)
    sold_out_at: dict[str, datetime] = field(default_factory=dict)  # first time, UTC
    batches: int = 0  # storage calls made
    started: datetime | None = None  # virtual, UTC
    ended: datetime | None = None
    wall_seconds: float = 0.0

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())


class _Run:
    def __init__(
        self,
        scenario: Scenario,
        sales: Sales,
        clock: ManualClock,
        seed: int,
        chunk: int,
        sweep_every: int,
        tick: int,
        progress: Progress | None,
    ) -> None:
        self.scenario = scenario
        self.event = scenario.event
        self.sales = sales
        self.clock = clock
        self.chunk = chunk
        self.progress = progress
        self.start = self.event.opens
        self.length = int((self.event.closes - self.start).total_seconds())
        self.result = SimResult(scenario.name, scenario.scale, seed)
        self.available = {sku: o.allocation for sku, o in self.event.offers.items()}
        self.live: dict[str, int] = {}  # hold id -> second it is due to expire
        self.known: set[str] = set()  # every hold id placed in this run
        self.expiries: list[tuple[int, str]] = []
        self.actions: list[tuple[int, int, int, str, str]] = []  # (at, seq, kind, hold, pay id)
        self.seq = 0
        self.reported = -1
        self.sweep_every = sweep_every
        self.tick = tick
        self.next_sweep = 0

    # -- the loop ---------------------------------------------------------------
    def run(self, visits: Iterator[Visit]) -> SimResult:
        wall = time.perf_counter()
        self.result.started = self.start
        pending = next(visits, None)
        while True:
            now = self.next_second(pending)
            if now is None:
                break
            self.clock.set(self.start + timedelta(seconds=now))
            self.sweep(now)
            self.act(now + self.tick - 1)
            batch: list[Visit] = []
            while pending is not None and pending.at < now + self.tick:
                batch.append(pending)
                pending = next(visits, None)
            self.reserve(now, batch)
            self.report(now)
        self.result.ended = self.clock()
        self.result.wall_seconds = time.perf_counter() - wall
        if self.progress is not None:
            self.progress(self.length, self.length)
        return self.result

    def next_second(self, pending: Visit | None) -> int | None:
        candidates = []
        if pending is not None:
            candidates.append(pending.at)
        if self.actions:
            candidates.append(self.actions[0][0])
        while self.expiries and self.expiries[0][1] not in self.live:
            heapq.heappop(self.expiries)  # ended already: no sweep needed for it
        if self.expiries:
            candidates.append(max(self.expiries[0][0], self.next_sweep))
        return min(candidates) if candidates else None

    def report(self, now: int) -> None:
        if self.progress is None:
            return
        done = min(now, self.length)
        if done - self.reported >= max(1, self.length // 400):
            self.reported = done
            self.progress(done, self.length)

    def chunks(self, items: Sequence[T]) -> Iterator[list[T]]:
        it = iter(items)
        while block := list(islice(it, self.chunk)):
            yield block

    # -- steps ------------------------------------------------------------------
    def sweep(self, now: int) -> None:
        if now < self.next_sweep:
            return
        due = False
        while self.expiries and self.expiries[0][0] <= now:
            _, hold_id = heapq.heappop(self.expiries)
            due = due or hold_id in self.live
        if not due:
            return
        self.next_sweep = now + self.sweep_every
        self.result.batches += 1
        for hold in self.sales.expire_due(self.event.id):
            if self.live.pop(hold.id, None) is not None:
                self.result.expired += 1
                self.give_back(hold)

    def act(self, until: int) -> None:
        pays: list[tuple[str, str]] = []
        releases: list[str] = []
        while self.actions and self.actions[0][0] <= until:
            _, _, kind, hold_id, payment_id = heapq.heappop(self.actions)
            if kind == _PAY:
                pays.append((hold_id, payment_id))
            else:
                releases.append(hold_id)
        for block in self.chunks(pays):
            self.result.batches += 1
            self.result.payments += len(block)
            for paid in self.sales.pay_many(block):
                if isinstance(paid, LampoError):
                    self.result.refusals[paid.reason] += 1
                elif self.live.pop(paid.id, None) is not None:
                    self.result.paid += 1
        for hold_ids in self.chunks(releases):
            self.result.batches += 1
            self.result.releases += len(hold_ids)
            for released in self.sales.release_many(hold_ids):
                if isinstance(released, LampoError):
                    self.result.refusals[released.reason] += 1
                elif self.live.pop(released.id, None) is not None:
                    self.give_back(released)

    def reserve(self, now: int, visits: list[Visit]) -> None:
        ev = self.event.id
        for block in self.chunks(visits):
            commands = [
                ReserveCommand(ev, v.customer, v.market, dict(v.items), v.channel, v.key)
                for v in block
            ]
            self.result.batches += 1
            self.result.requests += len(commands)
            results = self.sales.reserve_many(commands)
            for visit, held in zip(block, results, strict=True):
                if isinstance(held, LampoError):
                    self.result.refusals[held.reason] += 1
                else:
                    self.placed(now, visit, held)

    def placed(self, now: int, visit: Visit, hold: Hold) -> None:
        if hold.id in self.known:
            self.result.resent += 1  # the same key again: the first hold, no second effect
            return
        self.known.add(hold.id)
        plan, delay = visit.plan, visit.delay
        if plan is Plan.NONE:  # a resent request whose first try was refused got through
            plan, delay = Plan.PAY, 1
        self.result.holds += 1
        due = now + self.event.hold_seconds
        self.live[hold.id] = due
        heapq.heappush(self.expiries, (due, hold.id))
        for line in hold.lines:
            self.available[line.sku] -= line.quantity
            if self.available[line.sku] == 0 and line.sku not in self.result.sold_out_at:
                self.result.sold_out_at[line.sku] = self.clock()
        payment = f"pay-{hold.id}"
        if plan in (Plan.PAY, Plan.PAY_LATE):
            self.schedule(now + delay, _PAY, hold.id, payment)
        elif plan is Plan.PAY_TWICE:
            self.schedule(now + delay, _PAY, hold.id, payment)
            self.schedule(now + delay + 1, _PAY, hold.id, payment)
        elif plan is Plan.RELEASE:
            self.schedule(now + delay, _RELEASE, hold.id, "")

    def schedule(self, at: int, kind: int, hold_id: str, payment_id: str) -> None:
        self.seq += 1
        heapq.heappush(self.actions, (at, self.seq, kind, hold_id, payment_id))

    def give_back(self, hold: Hold) -> None:
        for line in hold.lines:
            self.available[line.sku] += line.quantity


def run(
    scenario: Scenario,
    sales: Sales,
    clock: ManualClock,
    seed: int = 0,
    chunk: int = 500,
    sweep_every: int = 60,
    tick: int = 1,
    progress: Progress | None = None,
) -> SimResult:
    """Run ``scenario``'s crowd (seeded by ``seed``) against ``sales``, whose clock is
    ``clock``. Opens the event in ``sales`` first. Returns what the driver counted.

    ``chunk``: requests per storage call. ``sweep_every``: virtual seconds between two runs
    of the expiry sweeper (as a server runs it now and then, not at every request).
    ``tick``: virtual seconds whose requests are submitted together, at the tick's start
    (1: every request at its own second; more: fewer, larger storage batches).
    ``ScenarioError`` (nothing written) for a run beyond the budget (``crowd.check_work``)."""
    if chunk < 1 or sweep_every < 1 or tick < 1:
        raise InvalidRequest("driver", "chunk, sweep_every and tick must be at least 1")
    check_work(scenario)  # before anything is written
    sales.open(scenario.event)
    run = _Run(scenario, sales, clock, seed, chunk, sweep_every, tick, progress)
    return run.run(timeline(scenario, seed))
