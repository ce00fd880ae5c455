"""The front door's use cases: registration, the lottery, the waiting room, admissions.

``FrontDoorService`` joins the pure rules of ``domain/frontdoor.py`` with the queue kept
in storage (``storage/door.py``). What travels is signed: a challenge (the proof of work
a join needs), a ticket (event, market, buyer, ticket id, and its sequence number once
known), an admission (event, market, buyer, admission id, expiry), each kind under its
own key derived from the server secret. The hottest call, ``poll`` with a numbered
ticket, reads no storage but the queue's counters and whether the market sold out, each
kept in this process for at most ``cache_seconds``.

Rules of admission (docs/front-door.md): the admission id is the ticket id, so a place
in the queue gives one admission, and the buy path's hold key ``adm:<admission id>``
makes it one hold. An admission is good from the moment the line passed its place (or
the visitor joined, if later) for the event's ``admission_seconds``; the first poll that
finds it admitted fixes that moment in the ticket it renews, and a poll after the expiry
is refused ``not-admitted``. The line never runs ahead of the queue: a join that finds
everyone admitted restarts it (``DoorStore.join``). Every refusal is counted in
``refusals`` by (event, reason).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, NoReturn

from lampo.domain.catalog import check_id
from lampo.domain.errors import (
    AlreadyRegistered,
    Closed,
    InvalidRequest,
    LampoError,
    NotAdmitted,
    NotDrawn,
    NotOpen,
    NotRegistered,
    ProofOfWork,
    RegistrationClosed,
)
from lampo.domain.event import SaleEvent, Window
from lampo.domain.frontdoor import (
    ADAPT_CEILING,
    IDENTITIES,
    AdmissionLine,
    FrontDoor,
    PlaceState,
    adapt,
    check_hash,
    place,
    pow_ok,
    rank_key,
)
from lampo.domain.frontdoor import draw as draw_lottery
from lampo.services._frontdoor_values import (
    ADMISSION_CLAIMS,
    CHALLENGE_CLAIMS,
    TICKET_CLAIMS,
    Challenge,
    Poll,
    QueueState,
    Ticket,
    from_us,
    us,
)
from lampo.services.clock import Clock
from lampo.services.ids import new_id
from lampo.services.sales import Sales
from lampo.services.tokens import derive_key, sign, verify_as
from lampo.storage.door import DoorStore, Draw, Entry, QueueCounts, Registration

__all__ = ["Challenge", "FrontDoorService", "Poll", "QueueState", "Ticket"]

#: How long a proof-of-work challenge may be answered.
CHALLENGE_SECONDS = 120
#: The longest a poll's view of a queue's counters and of sold-out is kept per process.
CACHE_SECONDS = 0.1
#: How often a process adapts a room's rate at most, and the most latencies it keeps
#: between two adaptations.
ADAPT_SECONDS = 1.0
MAX_SAMPLES = 10_000
#: The shortest server secret taken (bytes).
MIN_SECRET = 16


class FrontDoorService:
    """The front door of the events ``sales`` knows, over ``store``. Thread-safe; one
    per process. ``secret``: the server secret every token's key is derived from (the
    same in every worker and node)."""

    def __init__(
        self,
        sales: Sales,
        store: DoorStore,
        secret: bytes,
        clock: Clock | None = None,
        cache_seconds: float = CACHE_SECONDS,
        randomness: Callable[[int], bytes] | None = None,
        on_refusal: Callable[[str, str], None] | None = None,
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET:
            raise ValueError(f"the front door needs a secret of at least {MIN_SECRET} bytes")
        self.sales = sales
        self.store = store
        self.clock: Clock = clock or sales.clock
        self.cache_seconds = cache_seconds
        #: Where the pre-queue's and the lottery's seeds, tickets' and challenges' ids
        #: come from: the operating system's random bytes, or (a rehearsal, to be
        #: reproducible from its seed) a generator's.
        self._random = randomness or os.urandom
        self._new_id = new_id if randomness is None else lambda: randomness(16).hex()
        self._ticket_key = derive_key(secret, "ticket")
        self._admission_key = derive_key(secret, "admission")
        self._challenge_key = derive_key(secret, "challenge")
        self._lock = threading.Lock()
        #: Refusals this service made, by (event, reason); each also told to
        #: ``on_refusal(event, reason)`` when given (the server counts them in the
        #: metrics every worker shares).
        self.refusals: Counter[tuple[str, str]] = Counter()
        self._on_refusal = on_refusal
        self._seeds: dict[tuple[str, str], bytes] = {}
        self._frozen: set[tuple[str, str]] = set()
        self._drawn: set[str] = set()
        self._counts: dict[tuple[str, str], tuple[float, QueueCounts]] = {}
        #: The queues polled (past the opening) since ``warm`` last read them again.
        self._polled: set[tuple[str, str]] = set()
        self._soldout: dict[tuple[str, str], tuple[float, bool]] = {}
        #: The buy path's latencies (seconds) per queue since its rate last adapted here,
        #: and when it may adapt next (monotonic): an adaptive room's controller.
        self._latency: dict[tuple[str, str], list[float]] = {}
        self._adapt_at: dict[tuple[str, str], datetime] = {}

    # -- plumbing ----------------------------------------------------------------------
    def _refuse(self, event: str, refusal: LampoError) -> NoReturn:
        with self._lock:
            self.refusals[(event, refusal.reason)] += 1
        if self._on_refusal is not None:
            self._on_refusal(event, refusal.reason)
        raise refusal

    def _door(self, event: str) -> tuple[SaleEvent, FrontDoor]:
        ev = self.sales.event(event)
        door = ev.front_door
        if door is None:
            raise InvalidRequest("front_door", f"{event} has no front door")
        return ev, door

    def _room(self, event: str, market: str) -> tuple[SaleEvent, FrontDoor, Window]:
        ev, door = self._door(event)
        if not door.waiting_room:
            raise InvalidRequest("front_door", f"{event} has no waiting room")
        return ev, door, ev.window(market)

    @staticmethod
    def _line(door: FrontDoor, window: Window, counts: QueueCounts) -> AdmissionLine:
        """The queue's admission line; until a rate is set, the event's from the opening."""
        return counts.line or AdmissionLine(window.opens, 0, door.admit_per_second)

    # -- registration ------------------------------------------------------------------
    def register(
        self,
        event: str,
        account: str,
        phone_hash: str | None = None,
        device_hash: str | None = None,
    ) -> Registration:
        """Register ``account`` (and its hashes) for ``event``, inside the registration
        window: ``AlreadyRegistered`` names the identity (account, phone, device) found
        registered; ``RegistrationClosed`` outside the window."""
        try:
            _, door = self._door(event)
            opens, closes = door.registration_opens, door.registration_closes
            if opens is None or closes is None:
                raise InvalidRequest("front_door", f"{event} takes no registrations")
            check_id("account", account, 128)
            hashes = {"phone": phone_hash, "device": device_hash}
            for kind in IDENTITIES:
                value = hashes[kind]
                if value is not None:
                    check_hash(f"{kind}_hash", value)
                elif kind in door.unique:
                    raise InvalidRequest(
                        f"{kind}_hash", f"{event} registers one account per {kind}: give its hash"
                    )
            now = self.clock()
            if not door.registration_open(now):
                raise RegistrationClosed(event, opens, closes)
            registration = Registration(account, now, phone_hash, device_hash)
            found = self.store.register(event, registration, door.unique)
            if found:
                raise AlreadyRegistered(event, found)
            return registration
        except LampoError as refusal:
            self._refuse(event, refusal)

    def registrations(self, event: str) -> int:
        """How many accounts registered for ``event`` (the live count)."""
        try:
            self._door(event)
        except LampoError as refusal:
            self._refuse(event, refusal)
        return self.store.registrations(event)

    def export(self, event: str) -> Iterator[Registration]:
        """Every registration of ``event``, by time then account."""
        try:
            self._door(event)
        except LampoError as refusal:
            self._refuse(event, refusal)
        return self.store.export(event)

    # -- the lottery ---------------------------------------------------------------------
    def draw(self, event: str) -> Draw:
        """Draw the lottery of ``event`` once registration has closed: the
        ``lottery_factor`` x units accounts with the smallest rank key under a fresh seed,
        published with the draw. Idempotent: the first draw stands."""
        try:
            ev, door = self._door(event)
            if door.lottery_factor is None or door.registration_closes is None:
                raise InvalidRequest("lottery_factor", f"{event} has no lottery")
            kept = self.store.drawn(event)
            if kept is not None:
                return kept
            now = self.clock()
            if now < door.registration_closes:
                raise InvalidRequest(
                    "draw",
                    f"registration for {event} closes at "
                    f"{door.registration_closes.isoformat()}; the draw comes after",
                )
            seen = [0]

            def accounts() -> Iterator[str]:  # counted as they stream past the draw
                for registration in self.store.export(event):
                    seen[0] += 1
                    yield registration.account

            seed = self._random(32)
            winners = draw_lottery(seed, accounts(), door.lottery_factor * ev.total_allocation)
            return self.store.draw(event, Draw(seed.hex(), now, seen[0], tuple(winners)))
        except LampoError as refusal:
            self._refuse(event, refusal)

    def check_eligible(self, event: str, buyer: str) -> None:
        """Refuse (``NotDrawn``) a buyer the draw left out, or, without a draw, one not
        registered (``NotRegistered``) when the event admits registered accounts only: the
        rule of joining a queue, and of buying in an event without one. Counts nothing:
        the caller does."""
        door = self.sales.event(event).front_door
        if door is None:
            return
        drawn = event in self._drawn
        if not drawn and door.lottery_factor is not None and self.store.has_draw(event):
            with self._lock:
                self._drawn.add(event)  # the first draw stands: known for good
            drawn = True
        if drawn:
            if not self.store.won(event, buyer):
                raise NotDrawn(event, buyer)
        elif door.require_registration and not self.store.registered(event, buyer):
            raise NotRegistered(event, buyer)

    # -- the waiting room ----------------------------------------------------------------
    def challenge(self, event: str, buyer: str) -> Challenge:
        """A proof-of-work challenge for ``buyer`` to join a queue of ``event``."""
        try:
            _, door = self._door(event)
            check_id("buyer", buyer, 128)
            expires = self.clock() + timedelta(seconds=CHALLENGE_SECONDS)
            claims = {
                "e": event,
                "b": buyer,
                "n": self._new_id(),
                "bits": door.pow_bits,
                "x": us(expires),
            }
            return Challenge(sign(self._challenge_key, "challenge", claims), door.pow_bits, expires)
        except LampoError as refusal:
            self._refuse(event, refusal)

    def _check_pow(
        self, event: str, buyer: str, bits: int, challenge: str, solution: str, now: datetime
    ) -> None:
        if not challenge:
            raise ProofOfWork(event, bits, "no challenge given")
        claims = verify_as(self._challenge_key, "challenge", challenge, CHALLENGE_CLAIMS)
        if claims.e != event or claims.b != buyer:
            raise ProofOfWork(event, bits, "the challenge is another buyer's or event's")
        if from_us(claims.x) <= now:
            raise ProofOfWork(event, bits, "the challenge expired")
        given = claims.bits
        if given < bits:
            raise ProofOfWork(event, bits, f"the challenge asks for {given} bits only")
        if not pow_ok(challenge, solution, given):
            raise ProofOfWork(event, bits, "the solution does not solve the challenge")

    def _seed(self, event: str, market: str) -> bytes:
        key = (event, market)
        seed = self._seeds.get(key)
        if seed is None:
            seed = self.store.seed(event, market, self._random(32))
            with self._lock:
                self._seeds[key] = seed
        return seed

    def join(
        self, event: str, market: str, buyer: str, challenge: str = "", solution: str = ""
    ) -> Ticket:
        """Put ``buyer`` in the queue of ``market`` (before its opening: the pre-queue,
        in a random order fixed at opening; after: in arrival order). Joining again
        answers the same ticket id and seq."""
        try:
            _, door, window = self._room(event, market)
            check_id("buyer", buyer, 128)
            now = self.clock()
            if now >= window.closes:
                raise Closed(market, window.closes)
            if door.pow_bits:
                self._check_pow(event, buyer, door.pow_bits, challenge, solution, now)
            self.check_eligible(event, buyer)
            ticket_id = self._new_id()
            rank = None
            if now < window.opens:
                rank = rank_key(self._seed(event, market), ticket_id)
            else:
                # the pre-queue closes at the opening: frozen before the first join after
                # it, so a later arrival is numbered after every pre-queue member and a
                # member joining again gets its place
                self._freeze(event, market)
            line = AdmissionLine(window.opens, 0, door.admit_per_second)
            entry = self.store.join(event, market, buyer, Entry(ticket_id, 0, now), rank, line)
            if entry.seq:
                # A view of the counters cached before this join is read again for this
                # seq (``_cached_counts``): it may predate a restart of the line.
                with self._lock:
                    self._frozen.add((event, market))
            return Ticket(self._ticket(event, market, buyer, entry), entry.seq)
        except LampoError as refusal:
            self._refuse(event, refusal)

    def _ticket(
        self, event: str, market: str, buyer: str, entry: Entry, admitted: datetime | None = None
    ) -> str:
        claims: dict[str, Any] = {
            "e": event,
            "m": market,
            "b": buyer,
            "t": entry.ticket,
            "s": entry.seq,
            "j": us(entry.joined),
        }
        if admitted is not None:  # fixed at the first poll that found it admitted
            claims["a"] = us(admitted)
        return sign(self._ticket_key, "ticket", claims)

    def poll(self, ticket: str, buyer: str) -> Poll:
        """Where ``ticket`` stands now. A numbered ticket reads no storage but the
        queue's counters and the market's stock, each cached ``cache_seconds``."""
        found = self._poll(ticket, buyer, reads=True)
        assert found is not None, "a poll that may read storage always answers"
        return found

    def poll_cached(self, ticket: str, buyer: str) -> Poll | None:
        """``poll`` answered from this process's memory alone (the queue's counters and
        sold-out state as cached, the ticket's own claims), or None when it would read
        storage: the first poll of a ticket numbered at the opening, a cache gone stale,
        an adaptive rate due. Cheap and free of I/O, so the event loop answers most polls
        itself, and sends only the rest to the thread pool (``poll``). A refusal is
        raised (and counted) as ``poll`` raises it."""
        return self._poll(ticket, buyer, reads=False)

    def _poll(self, ticket: str, buyer: str, reads: bool) -> Poll | None:
        event = ""
        try:
            claims = verify_as(self._ticket_key, "ticket", ticket, TICKET_CLAIMS)
            event, market, ticket_id, seq = claims.e, claims.m, claims.t, claims.s
            if claims.b != buyer:
                raise NotAdmitted(event, market, "the ticket is another buyer's")
            ev, door, window = self._room(event, market)
            now = self.clock()
            if now >= window.closes:
                raise Closed(market, window.closes)
            if seq == 0:
                if now < window.opens:
                    eta = (window.opens - now).total_seconds()
                    return Poll(PlaceState.WAITING, 0, None, eta, ticket)
                if not reads:
                    return None
                entry = self._numbered(event, market, buyer)
                if entry is None or entry.ticket != ticket_id:
                    raise NotAdmitted(event, market, "the ticket is not in this queue")
                seq = entry.seq
                ticket = self._ticket(event, market, buyer, entry)
            self._polled.add((event, market))
            sold_out = self._sold_out(ev, market, reads)
            if sold_out is None:
                return None
            if sold_out:
                return Poll(PlaceState.SOLD_OUT, seq, 0, 0.0, ticket)
            if door.target_latency_ms is not None and self._adapt_due(event, market, now):
                if not reads:
                    return None
                self.adapt(event, market)
            counts = self._cached_counts(event, market, seq, reads)
            if counts is None:
                return None
            line = self._line(door, window, counts)
            where = place(seq, line, now, counts.last)
            if where.state is not PlaceState.ADMITTED:
                return Poll(where.state, seq, where.ahead, where.eta.total_seconds(), ticket)
            if claims.a is not None:
                admitted = from_us(claims.a)
            else:
                joined = from_us(claims.j)
                admitted = self._admitted_at(line, seq, joined)
                entry = Entry(ticket_id, seq, joined)
                ticket = self._ticket(event, market, buyer, entry, admitted)
            expires = admitted + timedelta(seconds=door.admission_seconds)
            if now >= expires:
                raise NotAdmitted(event, market, f"the admission expired at {expires.isoformat()}")
            signed = {"e": event, "m": market, "b": buyer, "a": ticket_id, "x": us(expires)}
            admission = sign(self._admission_key, "admission", signed)
            return Poll(PlaceState.ADMITTED, seq, 0, 0.0, ticket, admission, expires)
        except LampoError as refusal:
            self._refuse(event, refusal)

    def _numbered(self, event: str, market: str, buyer: str) -> Entry | None:
        """The buyer's entry in a queue past its opening, the queue frozen first (by
        whichever worker asks first; idempotent)."""
        self._freeze(event, market)
        return self.store.entry(event, market, buyer)

    def _freeze(self, event: str, market: str) -> None:
        """Freeze the pre-queue of a queue past its opening, once per process (the store's
        freeze is idempotent: whichever worker asks first numbers it)."""
        key = (event, market)
        if key not in self._frozen:
            self.store.freeze(event, market)
            with self._lock:
                self._frozen.add(key)
                self._counts.pop(key, None)

    @staticmethod
    def _admitted_at(line: AdmissionLine, seq: int, joined: datetime) -> datetime:
        """When the line passed ``seq`` (or the visitor joined, if later). A place the
        line had passed when it was last rebased counts from that rebase."""
        at = line.since
        if seq > line.base:
            micros = -(-(seq - line.base) * 1_000_000 // line.rate)  # ceiling
            at = line.since + timedelta(microseconds=micros)
        return max(at, joined)

    def polled(self) -> bool:
        """Whether a queue was polled since the last ``warm``."""
        return bool(self._polled)

    def warm(self) -> int:
        """Read again the counters and the sold-out state of every queue polled since the
        last call (how many), so that the polls that follow find them fresh and are
        answered from memory (``poll_cached``). The server calls it off the loop every
        half ``cache_seconds``: without it, each time a cache goes stale every poll in
        flight would go to the thread pool until one of them had read it again."""
        polled = self._polled
        self._polled = set()
        keys = list(polled)  # one step under the GIL: the loop may be adding to it
        markets: dict[str, list[str]] = {}
        for event, market in keys:
            ev = self.sales.events.get(event)
            if ev is not None and market in ev.windows:
                self._read_counts(event, market)
                markets.setdefault(event, []).append(market)
        for event, in_event in markets.items():  # one read of an event's stock for all
            self._read_sold_out(self.sales.events[event], in_event)
        return len(keys)

    def _read_counts(self, event: str, market: str) -> QueueCounts:
        good_until = time.monotonic() + self.cache_seconds  # from before the read
        counts = self.store.counts(event, market)
        with self._lock:
            self._counts[(event, market)] = (good_until, counts)
        return counts

    def _cached_counts(
        self, event: str, market: str, seq: int = 0, reads: bool = True
    ) -> QueueCounts | None:
        """The queue's counters, read again when older than ``cache_seconds`` or shorter
        than ``seq`` (a ticket proves the queue is at least that long); None for such a
        read when storage may not be ``reads``."""
        key = (event, market)
        mono = time.monotonic()
        cached = self._counts.get(key)
        if cached is not None and cached[0] > mono and cached[1].last >= seq:
            return cached[1]
        if not reads:
            return None
        return self._read_counts(event, market)

    def _sold_out(self, ev: SaleEvent, market: str, reads: bool = True) -> bool | None:
        """Whether every SKU sold in ``market`` has nothing available or held (units
        held may come back, so they keep the room waiting). Cached ``cache_seconds``;
        None when it would be read again and storage may not be ``reads``."""
        key = (ev.id, market)
        mono = time.monotonic()
        cached = self._soldout.get(key)
        if cached is not None and cached[0] > mono:
            return cached[1]
        if not reads:
            return None
        return self._read_sold_out(ev, [market])[market]

    def _read_sold_out(self, ev: SaleEvent, markets: list[str]) -> dict[str, bool]:
        """Whether each of ``markets`` is sold out (``_sold_out``), from one read of the
        event's stock, cached."""
        good_until = time.monotonic() + self.cache_seconds
        stock = list(self.sales.stock(ev.id).values())
        out = {}
        for market in markets:
            skus = {sku for sku, offer in ev.offers.items() if market in offer.prices}
            levels = [lv for lv in stock if lv.sku in skus]
            out[market] = bool(levels) and all(lv.available + lv.held == 0 for lv in levels)
        with self._lock:
            for market, sold_out in out.items():
                self._soldout[(ev.id, market)] = (good_until, sold_out)
        return out

    def check_admission(self, admission: str, buyer: str, event: str, market: str) -> str:
        """The admission id of ``admission`` if it admits ``buyer`` to ``market``'s sale
        of ``event`` now; ``BadToken`` if it does not verify, ``NotAdmitted`` if it is
        missing, expired, or another buyer's, event's or market's."""
        try:
            if not admission:
                raise NotAdmitted(event, market, "no admission given")
            claims = verify_as(self._admission_key, "admission", admission, ADMISSION_CLAIMS)
            for given, wanted, what in (
                (claims.b, buyer, "buyer"),
                (claims.e, event, "event"),
                (claims.m, market, "market"),
            ):
                if given != wanted:
                    raise NotAdmitted(event, market, f"the admission is another {what}'s")
            if us(self.clock()) >= claims.x:
                expires = from_us(claims.x)
                raise NotAdmitted(event, market, f"the admission expired at {expires.isoformat()}")
            return claims.a
        except LampoError as refusal:
            self._refuse(event, refusal)

    def queue_seed(self, event: str, market: str) -> str:
        """The seed of the pre-queue's order (hex), published once ``market`` opened:
        with the ticket ids, anyone can then redo the order (``rank_key``). ``NotOpen``
        before: until then it is secret."""
        try:
            _, _, window = self._room(event, market)
            if self.clock() < window.opens:
                raise NotOpen(market, window.opens)
            return self._seed(event, market).hex()
        except LampoError as refusal:
            self._refuse(event, refusal)

    # -- the adaptive admission rate ----------------------------------------------------------
    def observe(self, event: str, market: str, seconds: float) -> None:
        """Note how long the buy path took to answer a reservation of ``market``'s sale of
        ``event`` (an adaptive room's rate follows it). In memory: a list append."""
        samples = self._latency.setdefault((event, market), [])
        if len(samples) < MAX_SAMPLES:
            samples.append(seconds)

    def _adapt_due(self, event: str, market: str, now: datetime) -> bool:
        """Whether ``adapt`` would act now: the buy path was observed and the interval
        since this process last adapted the room has passed."""
        key = (event, market)
        due = self._adapt_at.get(key)
        return (due is None or due <= now) and bool(self._latency.get(key))

    def adapt(self, event: str, market: str) -> int | None:
        """At most once per ``ADAPT_SECONDS`` per process, when the room adapts and the buy
        path was observed since: set the rate ``adapt`` gives for the 90th percentile of
        the latencies observed (the line rebased, as ``set_rate``). The new rate, or None
        when nothing was due. Every worker adapts from its own observations; the stored
        line is the one they all move, each at most once per interval."""
        key = (event, market)
        now = self.clock()
        if not self._adapt_due(event, market, now):
            return None
        with self._lock:
            samples, self._latency[key] = self._latency.get(key, []), []
            self._adapt_at[key] = now + timedelta(seconds=ADAPT_SECONDS)
        if not samples:
            return None
        _, door, window = self._room(event, market)
        if door.target_latency_ms is None:
            return None
        samples.sort()
        p90_ms = samples[min(len(samples) - 1, len(samples) * 9 // 10)] * 1000
        counts = self.store.counts(event, market)
        line = self._line(door, window, counts)
        ceiling = ADAPT_CEILING * door.admit_per_second
        rate = adapt(line.rate, p90_ms, door.target_latency_ms, ceiling)
        if rate != line.rate:
            self.store.set_line(event, market, line.rebase(now, counts.last, rate))
            with self._lock:
                self._counts.pop(key, None)
        return rate

    # -- the operator's side ---------------------------------------------------------------
    def set_rate(self, event: str, market: str, per_second: int) -> None:
        """Admit ``per_second`` from now on (the line rebased: none admitted is taken
        back)."""
        try:
            _, door, window = self._room(event, market)
            counts = self.store.counts(event, market)
            line = self._line(door, window, counts)
            self.store.set_line(event, market, line.rebase(self.clock(), counts.last, per_second))
            with self._lock:
                self._counts.pop((event, market), None)
        except LampoError as refusal:
            self._refuse(event, refusal)

    def state(self, event: str, market: str) -> QueueState:
        """The queue of ``market`` now, read from storage (not the poll's cache)."""
        try:
            _, door, window = self._room(event, market)
        except LampoError as refusal:
            self._refuse(event, refusal)
        counts = self.store.counts(event, market)
        line = self._line(door, window, counts)
        now = self.clock()
        admitted = line.admitted(now, counts.last) if counts.frozen else 0
        waiting = counts.joined - admitted
        return QueueState(
            joined=counts.joined,
            prequeue=counts.prequeue,
            frozen=counts.frozen,
            admitted=admitted,
            waiting=waiting,
            rate=line.rate,
            eta_last_seconds=waiting / line.rate,
        )
