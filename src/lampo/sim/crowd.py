"""The crowd model: a seeded, reproducible stream of buyers' visits over virtual time.

Time is kept in whole milliseconds after the event's first opening, as a real clock would
stamp requests. In each market, arrivals per second follow a spike at the market's
opening that decays exponentially, over a steady baseline: ``rate(t) = peak * exp(-t /
decay) + baseline``; the count in each second is drawn from a Poisson law of that mean,
and each arrival is placed at its millisecond within the second (the spike's following
its decaying rate). Each arriving buyer picks a channel (online with a referral, or a
marketplace), a SKU by popularity (one or two units, within the limit), maybe an add-on,
and a plan: pay after a delay, pay twice with the same payment id, pay too late, release,
or never pay (the hold expires). Some resend the same request with the same idempotency
key; some come back later and try to pass the per-customer limit.

Stores (``[crowd.stores]``): buyers walk into each selling store at a steady rate while it
is open, from its opening to its closing time of day in its market's local time and within
the market's window, and buy at the till (``Plan.TILL``: a sale paid at once). Which
stores sell scales with the scenario (``selling_stores``), so the stores' traffic scales
with every other figure; walk-ins draw from their own ``random.Random`` (seed, market,
"stores"), so a scenario's online crowd is the same with or without stores.

A crowd may hold bots (``[crowd.bots]``): a few accounts sending many requests, all on
each market's opening millisecond, scripted (``bot_plan``): ``share_of_accounts`` of the
accounts and ``share_of_requests`` of the requests, both against the market's expected
human buyers and their requests. Each bot asks for one unit of a SKU picked by demand,
under a new idempotency key each time, and pays at once when it gets a hold. Bots draw
from a ``random.Random`` of their own, so adding them leaves the human crowd unchanged.

The stream is produced lazily in time order, so memory stays small at any scale. The same
scenario and seed give the identical sequence: every market draws from its own
``random.Random`` seeded from (seed, market).

Every parameter of a crowd is bounded where the scenario file is read (``sim/scenario.py``),
and the work of a whole run by ``check_work``: a scenario that would send more than
``MAX_SIM_REQUESTS`` requests, or step through more than ``MAX_SIM_SECONDS`` seconds of
its markets' windows, is refused before anything runs, so no input makes a simulation
run for hours.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from lampo.domain.market import Channel, ChannelKind
from lampo.domain.stores import Store
from lampo.sim.arrivals import Shape, spent
from lampo.sim.scenario import Crowd, Scenario, ScenarioError

#: The most reservation requests one run may send (the crowd's expected visits, resent and
#: returning ones included): Mi Fan Fest 2015 at full scale sends 3.2 million. The driver
#: sends 1,000 to 20,000 a second depending on the backend and host, so the budget is
#: minutes to an hour or two.
MAX_SIM_REQUESTS = 5_000_000
#: The most seconds the crowd steps through, its markets' windows added up (a draw per
#: market and second, about a microsecond each): 50 markets open for 12 days.
MAX_SIM_SECONDS = 50_000_000


class Plan(StrEnum):
    """What a buyer does with the hold they get."""

    PAY = "pay"
    PAY_TWICE = "pay-twice"  # the same payment id submitted twice (double click)
    PAY_LATE = "pay-late"  # pays after the hold expired: refused
    RELEASE = "release"
    ABANDON = "abandon"  # never pays: the hold expires
    NONE = "none"  # a resent request: the first request's plan applies
    TILL = "till"  # a walk-in at a store: the sale is paid at once (a till sale)


#: The shortest delay between a hold and the buyer's next step (a payment, a release),
#: and between a buyer's request and its resending: a person does not act faster.
MIN_STEP_MS = 1000
#: The gap between a payment and the same payment submitted again (a double click).
DOUBLE_PAY_GAP_MS = 1000
_DAY_MS = 86_400_000
#: A bot account's name within its market: ``<market>-bot-<n>`` (a human's is
#: ``<market>-<n>``, so the two never meet).
BOT_INFIX = "bot-"


def is_bot(customer: str) -> bool:
    """Whether ``customer`` is one of a crowd's bots (by name, as storage keeps it)."""
    _, dash, rest = customer.partition("-")
    return bool(dash) and rest.startswith(BOT_INFIX)


@dataclass(frozen=True, slots=True)
class BotPlan:
    """A market's bots: ``accounts`` accounts, each sending ``each`` requests."""

    accounts: int
    each: int

    @property
    def requests(self) -> int:
        return self.accounts * self.each


def bot_plan(scenario: Scenario, market: str) -> BotPlan:
    """The bots of ``market``: with ``H`` expected human buyers sending ``R`` requests,
    ``a`` and ``r`` the shares of ``[crowd.bots]``, ``max(1, round(H a / (1 - a)))``
    accounts sending ``round(R r / (1 - r))`` requests between them (at least one each).
    No bots (``BotPlan(0, 0)``) in a crowd without them, or a market without buyers."""
    crowd = scenario.crowd
    bots = crowd.bots
    humans = Shape(scenario.event, crowd, market).count()
    if bots is None or humans <= 0:
        return BotPlan(0, 0)
    a, r = bots.share_of_accounts, bots.share_of_requests
    accounts = max(1, round(humans * a / (1 - a)))
    requests = humans * (1 + crowd.retry + crowd.repeat + crowd.comeback) * r / (1 - r)
    return BotPlan(accounts, max(1, round(requests / accounts)))


@dataclass(frozen=True, slots=True)
class Visit:
    """One reservation request, at ``at_ms`` milliseconds after the event's first opening.

    ``plan`` and ``delay_ms`` say what the buyer does with the hold: ``delay_ms`` after it
    is placed, the plan's step (a payment, a release). A resent request (``Plan.NONE``)
    carries the first request's delay: if the first try was refused and the resent one
    got a hold, that buyer pays after that delay."""

    at_ms: int
    market: str
    customer: str
    key: str
    items: tuple[tuple[str, int], ...]
    channel: Channel
    plan: Plan
    delay_ms: int
    comeback_ms: int = 0  # refused as sold out, the buyer tries again this much later
    bot: bool = False  # a scripted buyer of ``[crowd.bots]``


def again(visit: Visit) -> Visit:
    """The visit of a buyer who was refused as sold out and comes back
    (``visit.comeback_ms`` later): the same request under a new key, once."""
    return replace(visit, at_ms=visit.at_ms + visit.comeback_ms, key=f"{visit.key}+", comeback_ms=0)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 60:  # normal approximation: exact enough, and constant time
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _cumulative(weights: list[float]) -> list[float]:
    out, run = [], 0.0
    for w in weights:
        run += w
        out.append(run)
    return out


class _Market:
    """The visits of one market, in time order (milliseconds)."""

    def __init__(self, scenario: Scenario, market: str, seed: int) -> None:
        event, crowd = scenario.event, scenario.crowd
        self.crowd: Crowd = crowd
        self.market = market
        self.prefix = market.lower() + "-"
        self.rng = random.Random(f"{seed}:{scenario.event.id}:{market}")
        window = event.windows[market]
        self.offset_ms = round((window.opens - event.opens).total_seconds() * 1000)
        self.seconds = int(window.length.total_seconds())
        self.hold_ms = event.hold_seconds * 1000
        self.shape = Shape(event, crowd, market)
        self.upcoming = sorted(self.shape.spikes, reverse=True)  # to start, last first
        self.active: list[tuple[int, float, float]] = []
        skus = [
            s
            for s in sorted(crowd.demand)
            if market in event.offers[s].prices and crowd.demand[s] > 0
        ]
        self.skus = skus
        self.cum = _cumulative([crowd.demand[s] for s in skus])
        self.limits = {s: event.offers[s].limit_per_customer for s in skus}
        # every channel a buyer may come through, weighted once: a marketplace by its
        # share, the online store by its share times each referral's
        mix = crowd.channels.get(market, {"online": 1.0})
        referrals = sorted(k for k, v in crowd.referrals.items() if v > 0) or ["direct"]
        ref_total = sum(crowd.referrals.get(k, 1.0) for k in referrals)
        channels: list[Channel] = []
        weights: list[float] = []
        for name in sorted(k for k, v in mix.items() if v > 0):
            if name != "online":
                channels.append(Channel(ChannelKind.MARKETPLACE, name))
                weights.append(mix[name])
                continue
            for referral in referrals:
                share = crowd.referrals.get(referral, 1.0) / ref_total
                channels.append(
                    Channel(ChannelKind.ONLINE, referral="" if referral == "direct" else referral)
                )
                weights.append(mix[name] * share)
        self.channels = channels
        self.channel_cum = _cumulative(weights)
        self.buyers = 0
        self.pending: list[tuple[int, int, Visit]] = []  # resent and repeat visits to come
        self.seq = 0
        self.scenario = scenario
        self.seed = seed
        self.bots = bot_plan(scenario, market) if market in crowd.arrivals else BotPlan(0, 0)
        self.bot_rng = random.Random(f"{seed}:{scenario.event.id}:{market}:bots")

    def bot_visits(self) -> Iterator[Visit]:
        """The bots' requests, all on the market's opening millisecond: each account's in a
        row, each under a new key; a bot pays at once when it gets a hold."""
        online = next((c for c in self.channels if c.kind is ChannelKind.ONLINE), None)
        channel = online or self.channels[0]
        for n in range(1, self.bots.accounts + 1):
            customer = f"{self.prefix}{BOT_INFIX}{n}"
            sku = self.skus[
                bisect.bisect_right(
                    self.cum, self.bot_rng.random() * self.cum[-1], 0, len(self.cum) - 1
                )
            ]
            for k in range(1, self.bots.each + 1):
                yield Visit(
                    self.offset_ms,
                    self.market,
                    customer,
                    f"{customer}:{k}",
                    ((sku, 1),),
                    channel,
                    Plan.PAY,
                    MIN_STEP_MS,
                    bot=True,
                )

    def instants(self, s: int) -> list[int]:
        """The arrivals of second ``s``, each at its millisecond (sorted): each drawn from
        one component of the rate (a spike, the baseline) in proportion to its mass."""
        upcoming, active = self.upcoming, self.active
        while upcoming and upcoming[-1][0] <= s:
            active.append(upcoming.pop())
        if any(spent(a, s) for a in active):
            active[:] = [a for a in active if not spent(a, s)]
        masses = self.shape.masses(s, active)
        total = sum(masses)
        n = _poisson(self.rng, total)
        if not n:
            return []
        rng, start = self.rng, self.offset_ms + s * 1000
        if len(masses) == 1:
            return sorted(start + Shape.place(rng, None) for _ in range(n))
        cum = _cumulative(masses)
        last = len(cum) - 1
        out = []
        for _ in range(n):
            c = bisect.bisect_right(cum, rng.random() * total, 0, last)
            out.append(start + Shape.place(rng, active[c][2] if c < len(active) else None))
        out.sort()
        return out

    def visits(self) -> Iterator[Visit]:
        """The market's visits in time order: online and marketplace buyers, and walk-ins
        at its stores."""
        walk_ins = store_visits(self.scenario, self.market, self.seed)
        yield from heapq.merge(self.online(), walk_ins, key=lambda v: v.at_ms)

    def online(self) -> Iterator[Visit]:
        if not self.skus:
            return
        end_ms = self.offset_ms + self.seconds * 1000
        pending = self.pending
        yield from self.bot_visits()  # before any human: nothing comes before the opening
        for s in range(self.seconds):
            for at in self.instants(s):
                while pending and pending[0][0] <= at:
                    yield heapq.heappop(pending)[2]
                yield self.buyer(at)
            second_end = self.offset_ms + (s + 1) * 1000
            while pending and pending[0][0] < min(second_end, end_ms):
                yield heapq.heappop(pending)[2]
        while pending:  # visits after the close: refused as closed, as they would be
            yield heapq.heappop(pending)[2]

    def later(self, at_ms: int, visit: Visit) -> None:
        self.seq += 1
        heapq.heappush(self.pending, (at_ms, self.seq, visit))

    def pick(self, cum: list[float]) -> int:
        return bisect.bisect_right(cum, self.rng.random() * cum[-1], 0, len(cum) - 1)

    def buyer(self, at_ms: int) -> Visit:
        rng, crowd = self.rng, self.crowd
        self.buyers += 1
        customer = f"{self.prefix}{self.buyers}"
        channel = self.channels[self.pick(self.channel_cum)]
        sku = self.skus[self.pick(self.cum)]
        limit = self.limits[sku]
        quantity = 2 if rng.random() < crowd.two_units and (limit is None or limit >= 2) else 1
        items: tuple[tuple[str, int], ...] = ((sku, quantity),)
        if rng.random() < crowd.add_on and len(self.skus) > 1:
            extra = self.skus[self.pick(self.cum)]
            if extra != sku:
                items = tuple(sorted((*items, (extra, 1))))
        plan, delay = self.plan()
        comeback = 0
        if crowd.comeback and rng.random() < crowd.comeback:
            comeback = self.delay(crowd.comeback_seconds, 5 * MIN_STEP_MS, _DAY_MS)
        visit = Visit(
            at_ms, self.market, customer, f"{customer}:1", items, channel, plan, delay, comeback
        )
        if rng.random() < crowd.retry:
            at = at_ms + rng.randint(200, 3 * MIN_STEP_MS)
            step = delay if plan is not Plan.ABANDON else self.pay_delay()
            self.later(
                at, Visit(at, self.market, customer, visit.key, items, channel, Plan.NONE, step)
            )
        if rng.random() < crowd.repeat:
            back = at_ms + rng.randint(30_000, 1_800_000)
            greedy = (limit or 2) if quantity < (limit or 2) else quantity
            self.later(
                back,
                Visit(
                    back,
                    self.market,
                    customer,
                    f"{customer}:2",
                    ((sku, greedy),),
                    channel,
                    Plan.PAY,
                    self.pay_delay(),
                ),
            )
        return visit

    def delay(self, median_seconds: float, low: int, high: int) -> int:
        """Milliseconds, log-normal around ``median_seconds``, within ``[low, high]``."""
        delay = round(1000 * self.rng.lognormvariate(math.log(median_seconds), 0.7))
        return max(low, min(delay, high))

    def pay_delay(self) -> int:
        """Milliseconds from a hold to its payment: log-normal around the crowd's median,
        within the hold's time."""
        return self.delay(self.crowd.pay_delay_seconds, MIN_STEP_MS, self.hold_ms - MIN_STEP_MS)

    def plan(self) -> tuple[Plan, int]:
        crowd, u = self.crowd, self.rng.random()
        if u < crowd.never_pay:
            return Plan.ABANDON, 0
        u -= crowd.never_pay
        if u < crowd.release:
            return Plan.RELEASE, self.rng.randint(
                MIN_STEP_MS, max(MIN_STEP_MS, self.hold_ms - MIN_STEP_MS)
            )
        u -= crowd.release
        if u < crowd.late_pay:
            return Plan.PAY_LATE, self.hold_ms + self.rng.randint(0, 600_000)
        if self.rng.random() < crowd.double_pay:
            return Plan.PAY_TWICE, self.pay_delay()
        return Plan.PAY, self.pay_delay()


# -- stores ------------------------------------------------------------------------------
def selling_stores(scenario: Scenario) -> tuple[Store, ...]:
    """The stores whose tills sell in a run: of the stores open on some day of their
    market's window, ``round(n * scale)`` of the ``n`` (at least one, at most all), spread
    evenly over the registry's order, so a scaled run keeps stores of every city."""
    event, traffic = scenario.event, scenario.crowd.stores
    if traffic is None:
        return ()
    eligible = [s for s in scenario.stores if s.market in event.markets and _days(scenario, s)]
    n = len(eligible)
    if not n:
        return ()
    keep = min(n, max(1, round(n * scenario.scale)))
    return tuple(eligible[i * n // keep] for i in range(keep))


def _days(scenario: Scenario, store: Store) -> list[tuple[int, int, int]]:
    """The store's opening hours within its market's window, as (day, start, end): the
    day's index in the window (0: the local day of the opening) and milliseconds after the
    event's first opening, for each day it opens."""
    traffic = scenario.crowd.stores
    assert traffic is not None
    event = scenario.event
    window = event.windows[store.market]
    zone = event.markets[store.market].zone
    first = window.opens.astimezone(zone).date()
    day, last = first, window.closes.astimezone(zone).date()
    out = []
    while day <= last:
        if store.open_on(day):
            opens = datetime.combine(day, traffic.opens, zone).astimezone(UTC)
            closes = datetime.combine(day, traffic.closes, zone).astimezone(UTC)
            start, end = max(opens, window.opens), min(closes, window.closes)
            if start < end:
                out.append(
                    (
                        (day - first).days,
                        round((start - event.opens).total_seconds() * 1000),
                        round((end - event.opens).total_seconds() * 1000),
                    )
                )
        day += timedelta(days=1)
    return out


def _rate_per_ms(scenario: Scenario) -> float:
    """Walk-ins per selling store and millisecond: the declared rate per hour, times the
    share of eligible stores the scale left out (so store traffic scales exactly)."""
    traffic = scenario.crowd.stores
    if traffic is None:
        return 0.0
    selling = len(selling_stores(scenario))
    if not selling:
        return 0.0
    event = scenario.event
    eligible = sum(1 for s in scenario.stores if s.market in event.markets and _days(scenario, s))
    return traffic.walk_ins_per_hour * scenario.scale * eligible / selling / 3_600_000


def expected_walk_ins(scenario: Scenario) -> float:
    """The mean number of till sales of a run."""
    rate = _rate_per_ms(scenario)
    return sum(
        rate * (end - start)
        for store in selling_stores(scenario)
        for _, start, end in _days(scenario, store)
    )


def store_visits(scenario: Scenario, market: str, seed: int) -> Iterator[Visit]:
    """The walk-ins of ``market``'s selling stores in time order: each store's count per
    day drawn from a Poisson law of its rate over its opening hours, each walk-in at a
    uniform millisecond of them, buying one SKU of the store mix (two units for
    ``two_units`` of them, within the SKU's limit) at the till."""
    traffic = scenario.crowd.stores
    if traffic is None:
        return
    event = scenario.event
    stores = [s for s in selling_stores(scenario) if s.market == market]
    skus = [
        sku
        for sku in sorted(traffic.demand)
        if traffic.demand[sku] > 0 and market in event.offers[sku].prices
    ]
    if not stores or not skus:
        return
    rng = random.Random(f"{seed}:{event.id}:{market}:stores")
    cum = _cumulative([traffic.demand[sku] for sku in skus])
    rate = _rate_per_ms(scenario)
    by_day: dict[int, list[tuple[str, int, int]]] = {}
    for store in stores:
        for day, start, end in _days(scenario, store):
            by_day.setdefault(day, []).append((store.id, start, end))
    prefix, n = market.lower() + "-walk-in-", 0
    for day in sorted(by_day):
        today: list[tuple[int, str]] = []
        for store_id, start, end in by_day[day]:
            for _ in range(_poisson(rng, rate * (end - start))):
                today.append((rng.randrange(start, end), store_id))
        today.sort()
        for at, store_id in today:
            n += 1
            sku = skus[bisect.bisect_right(cum, rng.random() * cum[-1], 0, len(cum) - 1)]
            limit = event.offers[sku].limit_per_customer
            two = rng.random() < traffic.two_units and (limit is None or limit >= 2)
            customer = f"{prefix}{n}"
            yield Visit(
                at,
                market,
                customer,
                f"{store_id}:{n}",
                ((sku, 2 if two else 1),),
                Channel(ChannelKind.STORE, store_id),
                Plan.TILL,
                0,
            )


def timeline(scenario: Scenario, seed: int = 0) -> Iterator[Visit]:
    """Every visit of the scenario's crowd, in time order to the millisecond (ties: market
    order, then arrival)."""
    streams = [
        _keyed(i, _Market(scenario, m, seed).visits())
        for i, m in enumerate(sorted(scenario.event.markets))
    ]
    for _, _, _, visit in heapq.merge(*streams):
        yield visit


def _keyed(index: int, visits: Iterator[Visit]) -> Iterator[tuple[int, int, int, Visit]]:
    for n, visit in enumerate(visits):
        yield visit.at_ms, index, n, visit


def expected_requests(scenario: Scenario) -> float:
    """The mean number of reservation requests of a run at most: each buyer's first visit,
    the resent ones, the returning ones, and those who come back after a sold-out (as if
    every one of them were refused), the walk-ins at the stores' tills, and the bots'
    requests."""
    crowd = scenario.crowd
    humans = expected_buyers(scenario) * (1 + crowd.retry + crowd.repeat + crowd.comeback)
    bots = sum(bot_plan(scenario, m).requests for m in crowd.arrivals)
    return humans + expected_walk_ins(scenario) + bots


def market_seconds(scenario: Scenario) -> int:
    """The seconds the crowd steps through: every market's window, added up."""
    return sum(int(w.length.total_seconds()) for w in scenario.event.windows.values())


def check_work(
    scenario: Scenario,
    max_requests: int = MAX_SIM_REQUESTS,
    max_seconds: int = MAX_SIM_SECONDS,
) -> None:
    """Refuse (``ScenarioError``) a scenario whose run would exceed the budget: more than
    ``max_requests`` requests (naming the largest scale that fits) or more than
    ``max_seconds`` seconds of windows."""
    requests = expected_requests(scenario)
    if requests > max_requests:
        fits = scenario.scale * max_requests / requests
        digits = max(0, 1 - math.floor(math.log10(fits)))  # two significant digits
        fits = math.floor(fits * 10**digits) / 10**digits
        raise ScenarioError(
            scenario.source,
            f"about {requests:,.0f} reservation requests at scale {scenario.scale:g}, more "
            f"than a run's budget of {max_requests:,} (MAX_SIM_REQUESTS); "
            f"use a scale of {fits:g} or less",
            "scale",
        )
    seconds = market_seconds(scenario)
    if seconds > max_seconds:
        raise ScenarioError(
            scenario.source,
            f"the markets' windows add up to {seconds:,} seconds, more than a run's budget "
            f"of {max_seconds:,} (MAX_SIM_SECONDS)",
            "markets",
        )


def expected_buyers(scenario: Scenario) -> float:
    """The mean number of first visits (buyers) over the whole event."""
    event, crowd = scenario.event, scenario.crowd
    return sum(Shape(event, crowd, market).count() for market in crowd.arrivals)
