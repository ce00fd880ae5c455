"""The rehearsal of an event with a front door, in process (docs/front-door.md).

The crowd (``sim.crowd``) is walked in virtual time as the driver walks it, but a buyer no
longer reaches the buy path on arriving: each visitor goes through the front door's
service (``services.frontdoor``) first, as a client of the HTTP API would:

- **registration** (when the event requires it): every account of the crowd registers in
  the window, with a device hash of its own, before anything else; then the draw, if the
  event has a lottery and registrations exceed it;
- **join**: a visitor joins the waiting room of its market on arriving (solving the proof
  of work at the event's bits: keep ``pow_bits`` low in scenarios, a solution costs about
  ``2**bits`` hashes of this process's CPU). ``[crowd.door]``'s ``early`` share of those who
  would arrive in the first ``early_seconds`` after the opening come before it instead,
  into the pre-queue: at a uniform instant from ``early_seconds`` before they would have
  come to the opening;
- **poll**: a visitor polls its ticket after ``poll_seconds``, or after its ETA when that is
  later (at most ``MAX_POLL_WAIT_SECONDS``); one in the pre-queue polls just after the
  opening; after ``MAX_POLLS`` polls a visitor gives up;
- **buy**: an admitted visitor buys at once, through ``gate`` (what the HTTP buy path
  does: the admission verified and bound to the buyer, the hold's idempotency key
  ``adm:<admission id>``); the driver (``sim.driver``) then places the hold and plays the
  buyer's plan (pay, release, abandon...). A ``sold-out`` answer sends the visitor home.
  A later visit of the same buyer (a resent request, a second try) goes through the gate
  with the admission it has (replayed, or refused once expired), or is not made while the
  buyer still waits. Nobody comes back after a sold-out: the room said so.

Bots (``[crowd.bots]``) try every way around the door, on the opening millisecond: each
bot's requests alternate between joining again (the same ticket comes back: one place per
account) and buying without an admission (refused); they poll at ``poll_seconds`` without
waiting for their ETA; an admitted bot first tries the admission of the bot admitted before
it (refused: bound to its buyer), then buys with its own. The result counts the door's
requests and refusals by reason, and the units bots got against their share of accounts.

The door's service runs on a clock of its own, set to each door request's instant; the
driver's buffers may hold reservations not yet sent when a poll reads the stock, so the
room may say ``sold-out`` a little later than a live server would (never earlier).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from lampo.domain.errors import LampoError
from lampo.domain.frontdoor import FrontDoor, solve
from lampo.services.clock import ManualClock
from lampo.services.frontdoor import FrontDoorService
from lampo.services.sales import Sales
from lampo.sim import driver
from lampo.sim.crowd import Visit, check_work, is_bot, timeline
from lampo.sim.scenario import Scenario
from lampo.storage.door import door_store
from lampo.storage.port import Storage

#: The longest a visitor waits between two polls, whatever its ETA (seconds).
MAX_POLL_WAIT_SECONDS = 30.0
#: The most polls one visitor makes before giving up: with the cadence, this bounds a
#: rehearsal's door requests to ``MAX_POLLS`` per visitor.
MAX_POLLS = 200
#: The server secret of a rehearsal's tokens (in process: nothing leaves it).
SECRET = b"lampo-rehearsal-front-door-secret"

_ARRIVE, _JOIN, _POLL = 0, 1, 2


@dataclass(slots=True)
class DoorResult:
    """What the front door did in a rehearsal, beside the buy path's ``sim``."""

    sim: driver.SimResult
    visitors: int = 0  # people (accounts) who came to the door, bots included
    bot_accounts: int = 0
    registered: int = 0
    drawn: int = 0  # winners of the lottery (0: no draw)
    joins: int = 0  # join requests, repeated ones included
    polls: int = 0
    admitted: int = 0  # visitors admitted
    sold_out: int = 0  # visitors told the room is sold out
    gave_up: int = 0  # visitors who polled MAX_POLLS times
    buys: int = 0  # buy requests at the gate
    bot_requests: int = 0  # the bots' joins, polls and buys
    refusals: Counter[str] = field(default_factory=Counter)  # the door's, by reason
    units: int = 0  # units sold
    bot_units: int = 0  # of which to bots

    @property
    def requests(self) -> int:
        return self.joins + self.polls + self.buys

    @property
    def bot_account_share(self) -> float:
        return self.bot_accounts / self.visitors if self.visitors else 0.0

    @property
    def bot_unit_share(self) -> float:
        return self.bot_units / self.units if self.units else 0.0

    def as_dict(self) -> dict[str, object]:
        """The door's figures for ``lampo simulate --json`` (the buy path's are the run's)."""
        return {
            "visitors": self.visitors,
            "registered": self.registered,
            "drawn": self.drawn,
            "joins": self.joins,
            "polls": self.polls,
            "admitted": self.admitted,
            "sold_out": self.sold_out,
            "gave_up": self.gave_up,
            "buys": self.buys,
            "refusals": dict(self.refusals.most_common()),
            "bots": {
                "accounts": self.bot_accounts,
                "account_share": round(self.bot_account_share, 6),
                "requests": self.bot_requests,
                "request_share": round(self.bot_request_share, 6),
                "units": self.bot_units,
                "unit_share": round(self.bot_unit_share, 6),
            },
            "units": self.units,
        }

    @property
    def bot_request_share(self) -> float:
        """The bots' share of the door's requests (every buy goes through the gate)."""
        return self.bot_requests / self.requests if self.requests else 0.0


def admission_key(admission_id: str) -> str:
    """The idempotency key of the one hold an admission may place."""
    return f"adm:{admission_id}"


def gate(
    door: FrontDoorService, admission: str, buyer: str, event: str, market: str
) -> str | LampoError:
    """The buy path's check of an event with a waiting room: the hold's idempotency key
    (``admission_key``), or the refusal (``not-admitted``: none, expired, another buyer's,
    event's or market's; ``bad-token``)."""
    try:
        return admission_key(door.check_admission(admission, buyer, event, market))
    except LampoError as refused:
        return refused


@dataclass(slots=True)
class _Visitor:
    """One account at the door: its first visit, its ticket, its admission."""

    first: Visit
    ticket: str = ""
    admission: str = ""
    polls: int = 0
    done: bool = False  # admitted (and bought), sold out, or gave up


class _Door:
    def __init__(
        self, scenario: Scenario, door: FrontDoorService, clock: ManualClock, seed: int
    ) -> None:
        self.event = scenario.event
        spec = self.event.front_door
        assert spec is not None
        self.spec: FrontDoor = spec
        self.crowd = scenario.crowd
        self.door = door
        self.clock = clock
        self.start = self.event.opens
        self.opening = {
            m: round((w.opens - self.start).total_seconds() * 1000)
            for m, w in self.event.windows.items()
        }
        self.rng = random.Random(f"{seed}:{self.event.id}:door")
        self.early_ms = round(self.crowd.door.early_seconds * 1000)
        self.poll_ms = max(1, round(self.crowd.door.poll_seconds * 1000))
        self.result = DoorResult(driver.SimResult(scenario.name, scenario.scale, seed))
        self.visitors: dict[str, _Visitor] = {}
        self.events: list[tuple[int, int, int, Visit]] = []  # (at, seq, kind, visit)
        self.seq = 0
        self.last_bot_admission: dict[str, tuple[str, str]] = {}  # market: (bot, admission)

    def at(self, at_ms: int) -> datetime:
        when = self.start + timedelta(milliseconds=at_ms)
        self.clock.set(when)
        return when

    def schedule(self, at: int, kind: int, visit: Visit) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, visit))

    def refused(self, error: LampoError, bot: bool) -> None:
        self.result.refusals[error.reason] += 1
        if bot:
            self.result.bot_requests += 1

    # -- the walk -----------------------------------------------------------------
    def visits(self, crowd: Iterator[Visit]) -> Iterator[Visit]:
        """The buy path's visits (admitted ones, keyed by their admission), in time order,
        while the door's own requests are made in between, each at its instant."""
        head = next(crowd, None)
        events = self.events
        while head is not None or events:
            # a visit may be moved up to early_ms before its instant: every visit that
            # could come before the next door request is scheduled first
            if head is not None and (not events or head.at_ms - self.early_ms <= events[0][0]):
                self.arrive(head)
                head = next(crowd, None)
                continue
            at, _, kind, visit = heapq.heappop(events)
            if kind == _ARRIVE:
                yield from self.again(at, visit)
            elif kind == _JOIN:
                self.join(at, visit.customer)
            else:
                yield from self.poll(at, visit.customer)

    def arrive(self, visit: Visit) -> None:
        """Schedule a visit: a newcomer's join (moved before the opening for the early
        ones), or a known visitor's next request at its instant."""
        if visit.customer in self.visitors:
            self.schedule(visit.at_ms, _ARRIVE, visit)
            return
        self.visitors[visit.customer] = _Visitor(replace(visit, comeback_ms=0))
        self.result.visitors += 1
        at = visit.at_ms
        if visit.bot:
            self.result.bot_accounts += 1
        else:
            opening = self.opening[visit.market]
            if at - opening < self.early_ms and self.rng.random() < self.crowd.door.early:
                # at most early_ms earlier than it would have come, before the opening:
                # so no visit left in the crowd can come before a door request made
                at = self.rng.randint(at - self.early_ms, opening - 1)
        self.schedule(at, _JOIN, visit)

    def again(self, at: int, visit: Visit) -> Iterator[Visit]:
        """A known visitor's next request: a bot's in its burst; a person's resent
        request or second try, with the admission it has (none made while it waits)."""
        known = self.visitors[visit.customer]
        if visit.bot:
            yield from self.bot(at, known, visit)
        elif known.admission:
            yield from self.buy(known, replace(visit, comeback_ms=0), at)

    def join(self, at: int, customer: str) -> bool:
        visitor = self.visitors[customer]
        market, bot = visitor.first.market, visitor.first.bot
        self.at(at)
        self.result.joins += 1
        if bot:
            self.result.bot_requests += 1
        try:
            challenge = solution = ""
            if self.spec.pow_bits:
                got = self.door.challenge(self.event.id, customer)
                challenge, solution = got.token, solve(got.token, got.bits)
            ticket = self.door.join(self.event.id, market, customer, challenge, solution)
        except LampoError as refused:
            self.refused(refused, False)  # counted as a bot request above already
            visitor.done = visitor.done or not visitor.ticket
            return False
        if not visitor.ticket:
            visitor.ticket = ticket.token
            self.schedule(self.next_poll(at, market, bot, None), _POLL, visitor.first)
        return True

    def next_poll(self, at: int, market: str, bot: bool, eta: float | None) -> int:
        opening = self.opening[market]
        if at < opening:  # in the pre-queue: just after the opening
            return opening + self.rng.randint(1, self.poll_ms)
        wait = self.poll_ms
        if eta is not None and not bot:
            wait = max(wait, min(round(eta * 1000), round(MAX_POLL_WAIT_SECONDS * 1000)))
        return at + wait

    def poll(self, at: int, customer: str) -> Iterator[Visit]:
        visitor = self.visitors[customer]
        bot = visitor.first.bot
        if visitor.done:
            return
        self.at(at)
        self.result.polls += 1
        visitor.polls += 1
        if bot:
            self.result.bot_requests += 1
        try:
            answer = self.door.poll(visitor.ticket, customer)
        except LampoError as refused:
            self.refused(refused, False)
            visitor.done = True
            return
        visitor.ticket = answer.ticket or visitor.ticket
        state = str(answer.state)
        if state == "admitted" and answer.admission:
            visitor.done = True
            visitor.admission = answer.admission
            self.result.admitted += 1
            if bot:
                yield from self.bot_bought(at, visitor)
            else:
                yield from self.buy(visitor, visitor.first, at)
        elif state == "sold-out":
            visitor.done = True
            self.result.sold_out += 1
        elif visitor.polls >= MAX_POLLS:
            visitor.done = True
            self.result.gave_up += 1
        else:
            self.schedule(
                self.next_poll(at, visitor.first.market, bot, answer.eta_seconds),
                _POLL,
                visitor.first,
            )

    def buy(self, visitor: _Visitor, visit: Visit, at: int) -> Iterator[Visit]:
        self.at(at)
        self.result.buys += 1
        if visit.bot:
            self.result.bot_requests += 1
        key = gate(self.door, visitor.admission, visit.customer, self.event.id, visit.market)
        if isinstance(key, LampoError):
            self.refused(key, False)
            return
        yield replace(visit, at_ms=at, key=key)

    # -- bots ---------------------------------------------------------------------
    def bot(self, at: int, known: _Visitor, visit: Visit) -> Iterator[Visit]:
        """One of a bot's requests after its first (a join) on the opening millisecond: in
        turn, a join again and a buy without an admission."""
        if int(visit.key.rpartition(":")[2]) % 2:
            self.join(at, visit.customer)
            return
        yield from self.buy(replace(known, admission=""), visit, at)

    def bot_bought(self, at: int, visitor: _Visitor) -> Iterator[Visit]:
        """An admitted bot tries the admission of the bot admitted before it, then buys
        with its own."""
        market = visitor.first.market
        other = self.last_bot_admission.get(market)
        if other is not None:
            yield from self.buy(replace(visitor, admission=other[1]), visitor.first, at)
        self.last_bot_admission[market] = (visitor.first.customer, visitor.admission)
        yield from self.buy(visitor, visitor.first, at)

    # -- registration ---------------------------------------------------------------
    def register(self, scenario: Scenario, seed: int) -> None:
        """Every account of the crowd registers in the window (its first visit's order,
        spread over the window), then the draw when the event has a lottery."""
        opens, closes = self.spec.registration_opens, self.spec.registration_closes
        if opens is None or closes is None:
            return
        span_ms = max(1, int((closes - opens).total_seconds() * 1000) - 1)
        unique = set(self.spec.unique)
        seen: set[str] = set()
        for visit in timeline(scenario, seed):
            if visit.customer in seen:
                continue
            seen.add(visit.customer)
            self.clock.set(opens + timedelta(milliseconds=self.rng.randint(0, span_ms)))
            device = hashlib.blake2b(visit.customer.encode(), digest_size=16).hexdigest()
            try:
                self.door.register(
                    self.event.id,
                    visit.customer,
                    phone_hash=device if "phone" in unique else None,
                    device_hash=device if "device" in unique else None,
                )
                self.result.registered += 1
            except LampoError as refused:
                self.refused(refused, False)  # registrations are not counted as requests
        if self.spec.lottery_factor is not None:
            self.clock.set(closes)
            self.result.drawn = len(self.door.draw(self.event.id).winners)


def summary(result: DoorResult) -> str:
    """The front door's lines of a rehearsal's report."""
    refused = ", ".join(f"{n:,} {reason}" for reason, n in result.refusals.most_common())
    return (
        f"front door: {result.visitors:,} visitors ({result.registered:,} registered) · "
        f"{result.joins:,} joins · {result.polls:,} polls · {result.admitted:,} admitted · "
        f"{result.sold_out:,} told sold out · {result.gave_up:,} gave up · "
        f"{result.buys:,} buys at the gate · refused: {refused or 'none'}\n"
        f"bots: {result.bot_accounts:,} accounts ({result.bot_account_share:.2%} of the "
        f"visitors) sent {result.bot_requests:,} requests "
        f"({result.bot_request_share:.1%} of all) and got {result.bot_units:,} of "
        f"{result.units:,} units sold ({result.bot_unit_share:.2%})"
    )


def bot_units(storage: Storage, event: str) -> tuple[int, int]:
    """Units sold in ``event`` (paid holds), and of those to the crowd's bots."""
    units = bots = 0
    for hold in storage.holds(event):
        if hold.state.value != "paid":
            continue
        n = sum(line.quantity for line in hold.lines)
        units += n
        if is_bot(hold.customer):
            bots += n
    return units, bots


def run(
    scenario: Scenario,
    sales: Sales,
    clock: ManualClock,
    seed: int = 0,
    chunk: int = 10_000,
    progress: driver.Progress | None = None,
    secret: bytes = SECRET,
    door_clock: ManualClock | None = None,
) -> DoorResult:
    """Rehearse ``scenario`` (whose event has a front door) through its door: the door's
    service on ``sales``' storage, its own clock; the buy path as ``driver.run`` plays it.
    Opens the event in ``sales`` first; ``ScenarioError`` for a run past the budget.
    ``door_clock``: the door's clock (default a new one), set to each door request's
    instant in turn."""
    event = scenario.event
    if event.front_door is None:
        raise ValueError(f"{event.id} has no front door")
    check_work(scenario)
    sales.open(event)
    door_clock = door_clock or ManualClock(event.opens)
    # the door's random choices (the pre-queue's order, the lottery, ids) from the seed:
    # the same seed rehearses the same sale
    randomness = random.Random(f"{seed}:{event.id}:door-randomness").randbytes
    door = FrontDoorService(
        sales,
        door_store(sales.storage),
        secret,
        door_clock,
        cache_seconds=0.0,
        randomness=randomness,
    )
    walk = _Door(scenario, door, door_clock, seed)
    walk.register(scenario, seed)
    sim = driver.run(
        scenario,
        sales,
        clock,
        seed=seed,
        chunk=chunk,
        progress=progress,
        visits=walk.visits(timeline(scenario, seed)),
        opened=True,
    )
    result = walk.result
    result.sim = sim
    result.units, result.bot_units = bot_units(sales.storage, event.id)
    return result
