"""The crowd of a scenario file: its types (``Crowd``, ``Arrivals``, ``Wave``,
``StoreTraffic``), their bounds, and ``CrowdReader``, which reads the ``[crowd]`` table
(docs/scenarios.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from lampo.domain.bounds import MAX_EVENT_SPAN, MAX_HOLD_SECONDS, show
from lampo.domain.event import SaleEvent
from lampo.domain.market import ChannelKind
from lampo.sim._locate import Path as FieldPath
from lampo.sim.fields import FieldReader, kind_of

# The bounds of a crowd (before scaling): each far above the shipped scenarios' and low
# enough that no sum or product of them leaves the finite floats.
#: Buyers arriving per second in one market, at the peak or the baseline.
MAX_ARRIVALS_PER_SECOND = 100_000.0
#: A relative weight (demand per SKU, channel mix, referrals).
MAX_WEIGHT = 1_000_000.0
#: How long the opening spike takes to decay (by 1/e): at most the longest event.
MAX_DECAY_SECONDS = MAX_EVENT_SPAN.total_seconds()
#: The median delay between a hold and its payment: at most the longest hold.
MAX_PAY_DELAY_SECONDS = float(MAX_HOLD_SECONDS)
#: Waves of arrivals a crowd may declare (a daily one counts once).
MAX_WAVES = 64
#: A wave's peak, as a multiple of the market's opening peak.
MAX_PEAK_FACTOR = 100.0
#: Walk-ins per store and hour that buy at the till: at most one a second, a busy till's
#: pace (a flagship Mi Home store serves some hundreds an hour on a festival evening).
MAX_WALK_INS_PER_HOUR = 3_600.0
_HOUR_MINUTE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$", re.ASCII)
#: The largest share of a crowd's accounts that may be bots (``[crowd.bots]``), and of its
#: requests they may send: at 0.99 bots send 99 requests for every human one (the run's
#: budget, ``crowd.MAX_SIM_REQUESTS``, counts them and refuses a run past it).
MAX_BOT_ACCOUNTS = 0.5
MAX_BOT_REQUESTS = 0.99
#: How long before the opening visitors may wait in a front door's pre-queue
#: (``[crowd.door]``): a day.
MAX_EARLY_SECONDS = 86_400.0
#: A visitor's seconds between two polls of the waiting room: from a tenth of a second to
#: ten minutes.
MIN_POLL_SECONDS, MAX_POLL_SECONDS = 0.1, 600.0


@dataclass(frozen=True, slots=True)
class Arrivals:
    """One market's arrivals per second: ``peak * exp(-t / decay) + baseline``."""

    peak_per_second: float
    baseline_per_second: float


@dataclass(frozen=True, slots=True)
class Wave:
    """Another spike of arrivals: at a local date-time (``at``), or every day of the window
    at a local time of day (``daily``), in ``markets`` (None: every market). Its peak is
    ``peak_factor`` times each market's opening peak; it decays by 1/e every
    ``decay_seconds``."""

    peak_factor: float
    decay_seconds: float
    at: datetime | None = None  # naive: local time in each market
    daily: time | None = None
    markets: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class StoreTraffic:
    """Buyers who walk into the event's stores and buy at the till (``[crowd.stores]``).

    ``walk_ins_per_hour``: per store, while it is open (``opens`` to ``closes``, each
    store in its market's local time, within the market's window). The number of stores
    that sell scales with the scenario (``crowd.selling_stores``), not this rate, so the
    stores' traffic scales as every other figure does. ``demand``: the SKU mix of store
    buyers (default: the crowd's). ``two_units``: buyers who take two units."""

    walk_ins_per_hour: float
    opens: time
    closes: time
    demand: Mapping[str, float]
    two_units: float = 0.0


@dataclass(frozen=True, slots=True)
class Bots:
    """Scripted buyers (``[crowd.bots]``): ``share_of_accounts`` of the crowd's accounts,
    sending ``share_of_requests`` of its requests, all on the opening millisecond of each
    market (``crowd.bot_plan`` turns the shares into accounts and requests)."""

    share_of_accounts: float
    share_of_requests: float


@dataclass(frozen=True, slots=True)
class DoorVisitors:
    """How people use an event's front door (``[crowd.door]``; read only by the waiting
    room's rehearsal, ``sim.door``): ``early`` of the buyers who would reach the page in the
    first ``early_seconds`` after the opening come before it instead (the pre-queue), at a
    uniform instant from ``early_seconds`` before they would have come to the opening; a
    visitor polls after ``poll_seconds``, or
    its ETA if later (capped by ``sim.door.MAX_POLL_WAIT_SECONDS``)."""

    early: float = 0.0
    early_seconds: float = 300.0
    poll_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class Crowd:
    """How buyers behave; shares are probabilities, counts already scaled."""

    decay_seconds: float
    arrivals: Mapping[str, Arrivals]
    demand: Mapping[str, float]
    channels: Mapping[str, Mapping[str, float]]
    referrals: Mapping[str, float]
    two_units: float = 0.0
    add_on: float = 0.0
    never_pay: float = 0.0
    release: float = 0.0
    late_pay: float = 0.0
    retry: float = 0.0
    double_pay: float = 0.0
    repeat: float = 0.0
    pay_delay_seconds: float = 60.0
    #: The baseline's weight per local hour (0 to 23): a daily rhythm. None: flat.
    rhythm: tuple[float, ...] | None = None
    waves: tuple[Wave, ...] = ()
    #: Buyers refused as sold out who try again later (a unit may be back by then).
    comeback: float = 0.0
    comeback_seconds: float = 120.0
    #: Walk-ins at the event's stores (None: nobody buys at a till).
    stores: StoreTraffic | None = None
    #: Scripted buyers on the opening millisecond; None: none.
    bots: Bots | None = None
    door: DoorVisitors = DoorVisitors()


class CrowdReader(FieldReader):
    """``FieldReader`` with the crowd's own reads; ``scale`` multiplies arrival rates."""

    def rate(self, value: Any, path: FieldPath) -> float:
        """Arrivals per second, up to ``MAX_ARRIVALS_PER_SECOND``."""
        return self.number(value, path, 0.0, MAX_ARRIVALS_PER_SECOND)

    def weight(self, value: Any, path: FieldPath) -> float:
        """A relative weight, up to ``MAX_WEIGHT``."""
        return self.number(value, path, 0.0, MAX_WEIGHT)

    def crowd(self, c: dict[str, Any], event: SaleEvent) -> Crowd:
        base: FieldPath = ("crowd",)
        shares = {
            key: self.share(c.get(key, 0.0), (*base, key))
            for key in (
                "two_units",
                "add_on",
                "never_pay",
                "release",
                "late_pay",
                "retry",
                "double_pay",
                "repeat",
            )
        }
        if shares["never_pay"] + shares["release"] + shares["late_pay"] > 1:
            raise self.fail((*base, "never_pay"), "never_pay + release + late_pay exceed 1")
        arrivals = {}
        raw_arrivals = self.table(self.get(c, base, "arrivals"), (*base, "arrivals"))
        for market, raw in raw_arrivals.items():
            path: FieldPath = (*base, "arrivals", market)
            if market not in event.markets:
                raise self.fail(path, "is not a declared market")
            a = self.table(raw, path)
            peak = self.get(a, path, "peak_per_second")
            baseline = a.get("baseline_per_second", 0.0)
            arrivals[market] = Arrivals(
                self.rate(peak, (*path, "peak_per_second")) * self.scale,
                self.rate(baseline, (*path, "baseline_per_second")) * self.scale,
            )
        if not arrivals:
            raise self.fail((*base, "arrivals"), "needs at least one market")
        demand = {}
        for sku, value in self.table(self.get(c, base, "demand"), (*base, "demand")).items():
            path = (*base, "demand", sku)
            if sku not in event.offers:
                raise self.fail(path, f"{show(sku)} is not a declared SKU")
            demand[sku] = self.weight(value, path)
        if not any(demand.values()):
            raise self.fail((*base, "demand"), "needs a positive weight for at least one SKU")
        channels: dict[str, dict[str, float]] = {}
        for market, raw in self.table(c.get("channels", {}), (*base, "channels")).items():
            path = (*base, "channels", market)
            if market not in event.markets:
                raise self.fail(path, "is not a declared market")
            mix = {k: self.weight(v, (*path, k)) for k, v in self.table(raw, path).items()}
            if not any(mix.values()):
                raise self.fail(path, "needs a positive weight")
            channels[market] = mix
        referrals = {
            k: self.weight(v, (*base, "referrals", k))
            for k, v in self.table(
                c.get("referrals", {"direct": 1.0}), (*base, "referrals")
            ).items()
        }
        decay = self.number(
            self.get(c, base, "decay_seconds"), (*base, "decay_seconds"), 1.0, MAX_DECAY_SECONDS
        )
        return Crowd(
            decay_seconds=decay,
            arrivals=arrivals,
            demand=demand,
            channels=channels,
            referrals=referrals or {"direct": 1.0},
            pay_delay_seconds=self.number(
                c.get("pay_delay_seconds", 60.0),
                (*base, "pay_delay_seconds"),
                1.0,
                MAX_PAY_DELAY_SECONDS,
            ),
            rhythm=self.rhythm(c.get("rhythm"), (*base, "rhythm")),
            waves=self.waves(c.get("waves", []), (*base, "waves"), event, decay),
            comeback=self.share(c.get("comeback", 0.0), (*base, "comeback")),
            comeback_seconds=self.number(
                c.get("comeback_seconds", 120.0),
                (*base, "comeback_seconds"),
                1.0,
                MAX_DECAY_SECONDS,
            ),
            stores=self.store_traffic(c.get("stores"), (*base, "stores"), event, demand),
            bots=self.bots(c.get("bots"), (*base, "bots")),
            door=self.door(c.get("door"), (*base, "door")),
            **shares,
        )

    def declared_channels(self, crowd: Crowd, event: SaleEvent) -> None:
        """An event that declares its channels sells through those only (``pools_for``
        refuses any other): every channel the crowd shops through must be one of them."""
        if not event.channels:
            return
        for market in crowd.arrivals:
            mix = crowd.channels.get(market, {"online": 1.0})
            where: FieldPath = ("crowd", "channels", market)
            for name, weight in mix.items():
                if not weight:
                    continue
                path: FieldPath = (*where, name) if market in crowd.channels else where
                kind = ChannelKind.ONLINE if name == "online" else ChannelKind.MARKETPLACE
                # online: any channel of its kind; a marketplace: the channel of its id
                found = [
                    spec
                    for spec in event.channels.values()
                    if spec.kind is kind and (kind is ChannelKind.ONLINE or spec.id == name)
                ]
                if not any(not spec.markets or market in spec.markets for spec in found):
                    raise self.fail(
                        path,
                        f"the event declares its channels ([[channels]]) and no {kind.value} "
                        f"channel {show(name)} sells in {market}",
                    )

    def store_traffic(
        self, raw: Any, path: FieldPath, event: SaleEvent, demand: Mapping[str, float]
    ) -> StoreTraffic | None:
        if raw is None:
            return None
        t = self.table(raw, path)
        mix = dict(demand)
        if "demand" in t:
            mix = {}
            for sku, value in self.table(t["demand"], (*path, "demand")).items():
                if sku not in event.offers:
                    raise self.fail((*path, "demand", sku), f"{show(sku)} is not a declared SKU")
                mix[sku] = self.weight(value, (*path, "demand", sku))
            if not any(mix.values()):
                raise self.fail((*path, "demand"), "needs a positive weight for at least one SKU")
        opens = self.time_of_day(t.get("opens", "10:00"), (*path, "opens"))
        closes = self.time_of_day(t.get("closes", "22:00"), (*path, "closes"))
        if closes <= opens:
            raise self.fail((*path, "closes"), "must be after opens (a store closes the same day)")
        return StoreTraffic(
            walk_ins_per_hour=self.number(
                self.get(t, path, "walk_ins_per_hour"),
                (*path, "walk_ins_per_hour"),
                0.0,
                MAX_WALK_INS_PER_HOUR,
            ),
            opens=opens,
            closes=closes,
            demand=mix,
            two_units=self.share(t.get("two_units", 0.0), (*path, "two_units")),
        )

    def time_of_day(self, value: Any, path: FieldPath) -> time:
        """A local time of day: ``"10:00"`` or a TOML time (``10:00:00``)."""
        if isinstance(value, time) and value.tzinfo is None:
            return value
        if isinstance(value, str):
            found = _HOUR_MINUTE.match(value)
            if found:
                return time(int(found.group(1)), int(found.group(2)))
        raise self.fail(path, f'must be a local time of day such as "10:00", got {kind_of(value)}')

    def bots(self, raw: Any, path: FieldPath) -> Bots | None:
        """``[crowd.bots]``: ``share_of_accounts`` in (0, ``MAX_BOT_ACCOUNTS``],
        ``share_of_requests`` in [0, ``MAX_BOT_REQUESTS``]."""
        if raw is None:
            return None
        b = self.known(self.table(raw, path), path, ("share_of_accounts", "share_of_requests"))
        accounts = self.number(
            self.get(b, path, "share_of_accounts"),
            (*path, "share_of_accounts"),
            0.0,
            MAX_BOT_ACCOUNTS,
        )
        if accounts <= 0:
            raise self.fail((*path, "share_of_accounts"), "must be more than 0")
        requests = self.number(
            self.get(b, path, "share_of_requests"),
            (*path, "share_of_requests"),
            0.0,
            MAX_BOT_REQUESTS,
        )
        return Bots(accounts, requests)

    def door(self, raw: Any, path: FieldPath) -> DoorVisitors:
        """``[crowd.door]``: ``early`` (a share), ``early_seconds`` in [1,
        ``MAX_EARLY_SECONDS``], ``poll_seconds`` in [``MIN_POLL_SECONDS``,
        ``MAX_POLL_SECONDS``]."""
        if raw is None:
            return DoorVisitors()
        d = self.known(self.table(raw, path), path, ("early", "early_seconds", "poll_seconds"))
        default = DoorVisitors()
        return DoorVisitors(
            early=self.share(d.get("early", default.early), (*path, "early")),
            early_seconds=self.number(
                d.get("early_seconds", default.early_seconds),
                (*path, "early_seconds"),
                1.0,
                MAX_EARLY_SECONDS,
            ),
            poll_seconds=self.number(
                d.get("poll_seconds", default.poll_seconds),
                (*path, "poll_seconds"),
                MIN_POLL_SECONDS,
                MAX_POLL_SECONDS,
            ),
        )

    def known(self, d: dict[str, Any], path: FieldPath, keys: tuple[str, ...]) -> dict[str, Any]:
        """``d``, refused (naming the key) if it holds a key not in ``keys``."""
        for key in d:
            if key not in keys:
                raise self.fail((*path, key), f"is not one of {', '.join(keys)}")
        return d

    def rhythm(self, raw: Any, path: FieldPath) -> tuple[float, ...] | None:
        if raw is None:
            return None
        if not isinstance(raw, list) or len(raw) != 24:
            raise self.fail(path, "must be an array of 24 weights, one per local hour 0-23")
        weights = tuple(self.weight(w, (*path, i)) for i, w in enumerate(raw))
        if not any(weights):
            raise self.fail(path, "needs a positive weight")
        return weights

    def waves(self, raw: Any, path: FieldPath, event: SaleEvent, decay: float) -> tuple[Wave, ...]:
        if not isinstance(raw, list):
            raise self.fail(path, "must be an array of tables ([[crowd.waves]])")
        if len(raw) > MAX_WAVES:
            raise self.fail(path, f"at most {MAX_WAVES} waves (MAX_WAVES), got {len(raw)}")
        out = []
        for i, item in enumerate(raw):
            where: FieldPath = (*path, i)
            w = self.table(item, where)
            at = self.get(w, where, "at")
            if isinstance(at, datetime) and at.tzinfo is None:
                one, daily = at, None
            elif isinstance(at, time) and at.tzinfo is None:
                one, daily = None, at
            else:
                raise self.fail(
                    (*where, "at"),
                    "must be a local date-time (2021-11-11T00:00:00) or a local time of day "
                    f"(20:00:00, every day), got {kind_of(at)}",
                )
            markets = None
            if "markets" in w:
                names = w["markets"]
                if not isinstance(names, list) or not names:
                    raise self.fail((*where, "markets"), "must be a non-empty array of markets")
                for j, m in enumerate(names):
                    if m not in event.markets:
                        raise self.fail((*where, "markets", j), f"{show(m)} is not a market")
                markets = frozenset(names)
            out.append(
                Wave(
                    peak_factor=self.number(
                        self.get(w, where, "peak_factor"),
                        (*where, "peak_factor"),
                        0.0,
                        MAX_PEAK_FACTOR,
                    ),
                    decay_seconds=self.number(
                        w.get("decay_seconds", decay),
                        (*where, "decay_seconds"),
                        1.0,
                        MAX_DECAY_SECONDS,
                    ),
                    at=one,
                    daily=daily,
                    markets=markets,
                )
            )
        return tuple(out)
