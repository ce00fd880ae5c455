"""``redis://host:port/db`` and ``redis+cluster://host:port``: the live stock in Redis.

Every transition is one Lua script (``lua/*.lua``, each with ``lua/_lib.lua`` in front),
loaded by SHA (EVALSHA; loaded again after a server restart). Redis runs a script alone,
so each request in it is checked in full and written with nothing in between; a refusal
writes nothing. Redis does not roll a failing script back, so a script also checks
everything its writes could fail on before its first write (``_lib.lua``, "Guards"): a
key of another type, a field missing or not an integer, a counter at the end of the 64-bit
range is answered ``CorruptStore`` for that request, having written nothing. Every key
of an event carries the hash tag ``{event}``, so one event's keys share a hash slot and
every script touches one slot: the same scripts run on a Redis Cluster. Hold expiry reads
a sorted set by deadline (no scan).

Group commit: a writer thread (``_batcher.Batcher``) takes the requests of all the
callers waiting at that moment and sends them as one script call per (script, event,
stock bucket), all in one pipeline when there are several, so N concurrent callers share
one round trip; each gets its own answer, in order. ``areserve``/``apay`` queue from the event loop
without a thread hop. Requests are encoded in the caller's thread, not the writer's.

Two keys lie outside the events' slots: the hold index (``<prefix>hx:<hold id>`` -> its
event, read by pay, release, refund and ``hold``) and the set of event ids (read only by
``events``/``load_events``). On one server the scripts write them in the same atomic
step. On a cluster they cannot, so the client writes them right after the script, and
again whenever an idempotent repeat returns the same hold or event: a caller is answered
only after the index is written, and a crash between the two leaves a hold that its
caller, retrying with the same key, finds again; one nobody retries for expires as usual
(expiry reads the event's own deadline index). Hold ids are unique per event.

Payment ids have keys outside the events' slots too (``<prefix>px:<payment id>``, a
hash: the hold it settled): a payment id settles at most one hold. On one server pay.lua
checks and writes it in the same atomic step as the payment. On a cluster the client
claims the id for its hold (claim.lua, in the key's own slot) before pay.lua, and lets
go of it if pay.lua refused; a claim for another hold that may still be paid with the id
makes the payment ``Unavailable`` (retry), one for a hold that cannot be is taken over.
See ``_pay_on_cluster`` and docs/storage-redis-postgres.md, "Payment ids on a cluster".
Orders paid before these keys existed get theirs when a store opens, once per prefix
(``<prefix>px-bound``).

Reads: ``holds`` and ``totals`` are scripts too (one slot, one snapshot per call;
``holds`` pages through the event's hold ids with SSCAN, so a huge event never blocks
the server for long). On a cluster, the stores of one process share one ``RedisCluster``
client per cluster URL, kept for the process's life.

Durability is the server's: an answer means the script ran, and it survives a crash only
as far as the server's AOF policy says (``appendfsync always`` for guarantee 5; see
docs/architecture.md).

Hot events: ``buckets=N`` splits each event set up by this store into N stock buckets,
each in its own hash slot (bucket 0 keeps ``{event}``, bucket b the tag ``{event #b}``).
A customer is pinned to one bucket (``_buckets.bucket_of``), so their limits and
idempotency records stay in one slot; each bucket owns a share of every allocation, and
a reservation its bucket cannot serve borrows units from sibling buckets by a journaled
two-step transfer (lend.lua, borrow.lua, settle.lua; recovered on open and by every
expiry sweep). Reads sum the buckets. An event keeps the bucket count it was set up with
(``:nb`` in its bucket 0), whatever the ``buckets`` option of a store that opens it later.
See docs/storage-redis-postgres.md, "Hot events: stock buckets".

``update`` is one script in the event's slot (update.lua, which refuses if the definition
changed since it was read); with buckets, one script in bucket 0 too, with journaled
transfers before it (the units a lower allocation takes) and after it (new units spread).
See docs/storage-redis-postgres.md, "Updating a live event".

Query options (declared, bounded and checked in ``storage/urls.py``; removed before
connecting): ``prefix`` (default ``lampo:``), put in front of every key, so several
stores can share one server; ``max_batch`` (most requests per writer round, default 256);
``buckets`` (stock buckets of the events this store sets up, 1 to 64, default 1: one slot
per event, as without the option). The URL's path is the database number.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import msgspec
import redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException

from lampo.domain.codec import event_from_json, event_to_json
from lampo.domain.errors import (
    AlreadyPaid,
    HoldExpired,
    IdempotencyConflict,
    IllegalTransition,
    InvalidRequest,
    LampoError,
    LimitExceeded,
    SoldOut,
    Unavailable,
    UnknownEvent,
    UnknownHold,
    UnknownSku,
)
from lampo.domain.event import SaleEvent, StockChange, plan_update
from lampo.domain.holds import (
    Hold,
    HoldLine,
    HoldState,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
    StockLevel,
)
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.money import Money
from lampo.domain.totals import Totals, order_key
from lampo.storage import urls
from lampo.storage._batcher import Batcher
from lampo.storage._buckets import bucket_of, plan_moves, shares
from lampo.storage.port import (
    CorruptStore,
    KeyRef,
    Result,
    below_committed,
    check_same_definition,
)
from lampo.storage.urls import StorageUrl

SEP = "\x1f"  # between the parts of a counter or totals key
RS = "\x1e"  # after each field of a request sent to reserve.lua
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCRIPTS = (
    "setup",
    "reserve",
    "pay",
    "release",
    "expire",
    "refund",
    "holds",
    "totals",
    "lend",
    "borrow",
    "settle",
    "bucket",
    "update",
    "rows",
    "claim",
    "recorded",
)
#: The scripts whose requests run in their customer's stock bucket.
_BY_CUSTOMER = ("reserve", "recorded")
#: Rounds of balancing (move units, run the refused reservations again) per writer round.
_BALANCE_ROUNDS = 8
#: Reads of a bucketed event's stock before one is known to be a consistent snapshot.
_VIEW_TRIES = 20
#: Attempts of one update (planned again after another update or, with buckets, after
#: buyers took the units gathered for a lower allocation) before ``Unavailable``.
_UPDATE_ROUNDS = 50
#: Tries to claim a payment id on a cluster whose claim other clients keep taking over.
_CLAIM_TRIES = 4


@functools.cache
def script_text(name: str) -> str:
    """The full text of one shipped script: the shared library, then the script."""
    folder = resources.files("lampo.storage") / "lua"
    lib = (folder / "_lib.lua").read_text(encoding="utf-8")
    return lib + "\n" + (folder / f"{name}.lua").read_text(encoding="utf-8")


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _us(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _when(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_JSON = msgspec.json.Encoder()


def _encode(req: ReserveRequest) -> tuple[str, str, str] | LampoError:
    """The three arguments of one request to reserve.lua: head, body, tot (lua/_lib.lua)."""
    hold = req.hold
    if not hold.lines:
        return InvalidRequest("lines", "a hold needs at least one line")
    if len(req.sku_limits) != len(hold.lines):
        return InvalidRequest("sku_limits", "one limit per line")
    limits: dict[str, int | None] = {}
    wanted: dict[str, int] = {}
    for line, limit in zip(hold.lines, req.sku_limits, strict=True):
        limits[line.sku] = limit
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    ch = hold.channel
    elimit = req.event_limit
    expires = _us(hold.expires_at)
    head = [
        req.key,
        req.fingerprint,
        hold.id,
        hold.customer,
        "" if elimit is None else str(elimit),
        str(hold.units),
        str(expires),
        str(len(wanted)),
    ]
    for sku in sorted(wanted):
        limit = limits[sku]
        head += [sku, str(wanted[sku]), "" if limit is None else str(limit)]
    lines = [[ln.sku, ln.quantity, ln.unit_price] for ln in hold.lines]
    body: list[Any] = [hold.id, hold.event, hold.customer, hold.market, ch.kind.value]
    body += [ch.name, ch.referral, hold.currency, lines, _us(hold.created_at), expires]
    ok = SEP.join(order_key(hold))
    tot = [hold.currency, str(hold.amount.amount), ok, str(len(hold.lines))]
    for line in hold.lines:
        tot += [line.sku + SEP + ok, str(line.quantity), str(line.amount)]
    return RS.join(head) + RS, _JSON.encode(body).decode(), RS.join(tot) + RS


#: The hold's fields Python reads, in the order of ``view`` in lua/_lib.lua.
_VIEW = ("body", "state", "payment_id", "paid_at", "ended_at", "refunded_at")


def _hold_from_view(view: Sequence[str]) -> Hold:
    body, state, payment_id, paid_at, ended_at, refunded_at = view
    hid, event, customer, market, kind, name, referral, currency, lines, created, expires = (
        msgspec.json.decode(body)
    )
    return Hold(
        id=hid,
        event=event,
        customer=customer,
        market=market,
        channel=Channel(ChannelKind(kind), name, referral),
        lines=tuple(HoldLine(s, q, p) for s, q, p in lines),
        currency=currency,
        created_at=_from_us(created),
        expires_at=_from_us(expires),
        state=HoldState(state),
        payment_id=payment_id,
        paid_at=_when(paid_at),
        ended_at=_when(ended_at),
        refunded_at=_when(refunded_at),
    )


_CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, RedisClusterException)


# One RedisCluster client per cluster URL in a process, shared by its stores and kept
# for the process's life (it is thread-safe): a client learns the cluster's slots and
# its command table when it starts, which costs more than hundreds of requests.
_CLUSTERS: dict[str, Any] = {}
_CLUSTERS_LOCK = threading.Lock()


def _cluster_client(url: str) -> Any:
    with _CLUSTERS_LOCK:
        client = _CLUSTERS.get(url)
        if client is None:
            client = RedisCluster.from_url(url, decode_responses=True, socket_timeout=10)
            _CLUSTERS[url] = client
        return client


class _Req:
    """One request of a writer round: its script call's arguments, later its answer."""

    __slots__ = (
        "answer",
        "args",
        "bucket",
        "customer",
        "event",
        "hold_id",
        "payment_id",
        "script",
        "tag",
        "wanted",
    )

    def __init__(self, script: str, event: str | None, args: list[Any], hold_id: str = "") -> None:
        self.script = script
        self.event = event  # None: looked up from hold_id by the round
        self.bucket = 0  # the event's stock bucket this request runs in
        self.tag = event or ""  # the hold index value: the event, or "<event>\x1f<bucket>"
        self.args = args
        self.hold_id = hold_id
        self.customer = ""  # reserve only: routes the request to the customer's bucket
        self.wanted: dict[str, int] = {}  # reserve only: units per SKU
        self.payment_id = ""  # pay only
        self.answer: Any = None


class _Round:
    """The requests of one batch of callers, sent to Redis together by the writer."""

    __slots__ = ("reqs",)

    def __init__(self) -> None:
        self.reqs: list[_Req] = []

    def add(self, script: str, event: str | None, args: list[Any], hold_id: str = "") -> _Req:
        req = _Req(script, event, args, hold_id)
        self.reqs.append(req)
        return req


def _tag(event: str, bucket: int, buckets: int) -> str:
    """The hold index value of a hold in ``bucket`` of an event of ``buckets`` buckets."""
    return event if buckets == 1 else f"{event}{SEP}{bucket}"


def _untag(value: str) -> tuple[str, int]:
    event, _, bucket = value.partition(SEP)
    return event, int(bucket) if bucket else 0


class _View:
    """One consistent read of a bucketed event's stock: per bucket, SKU -> [allocation
    share, available, held, sold]; and the units in transit (lent, not yet received)."""

    __slots__ = ("levels", "transit")

    def __init__(self, levels: list[dict[str, list[int]]], transit: dict[str, int]) -> None:
        self.levels = levels
        self.transit = transit

    def total(self, sku: str) -> int:
        """Available units of ``sku`` across the buckets, those in transit included."""
        return sum(b[sku][1] for b in self.levels if sku in b) + self.transit.get(sku, 0)

    def stock(self) -> dict[str, StockLevel]:
        out = {}
        for sku in sorted(self.levels[0]):
            a, v, h, s = (sum(b.get(sku, [0, 0, 0, 0])[i] for b in self.levels) for i in range(4))
            extra = self.transit.get(sku, 0)
            out[sku] = StockLevel(sku, a + extra, v + extra, h, s)
        return out


#: A unit of the writer's batch: it adds its requests to the round and returns the
#: function that turns their answers into its result once the round has run.
_Unit = Callable[[_Round], Callable[[], Any]]


class RedisStorage:
    """All live state in Redis (one server, or a cluster); writes coalesced per batch."""

    def __init__(self, url: str | StorageUrl) -> None:
        checked = urls.checked(url, "redis", "redis+cluster")
        self.cluster = checked.backend.name == "redis+cluster"
        conn_url = checked.target
        prefix = checked.text("prefix")
        self.prefix = "" if prefix is None else prefix
        max_batch = checked.number("max_batch")
        #: The stock buckets of each event this store sets up (1: one slot per event).
        self.buckets = checked.number("buckets")
        self._r: Any
        try:
            if self.cluster:
                self._r = _cluster_client(conn_url)
            else:
                # Blocking: a burst of readers waits for a connection rather than failing.
                pool = redis.BlockingConnectionPool.from_url(
                    conn_url,
                    decode_responses=True,
                    socket_timeout=10,
                    max_connections=64,
                    timeout=30,
                )
                self._r = redis.Redis(connection_pool=pool)
                try:
                    self._r.ping()
                except redis.ResponseError as exc:  # refused while connecting: the URL's
                    pool.disconnect()  # database number or credentials
                    raise InvalidRequest("storage", f"the redis server refuses it: {exc}") from None
            # Loaded on first use: a NOSCRIPT answer loads them (see _evalsha).
            self._shas = {name: _sha(script_text(name)) for name in SCRIPTS}
        except (*_CONNECTION_ERRORS, ValueError) as exc:
            raise Unavailable(f"redis: {exc}") from None
        self._events = self.prefix + "events"
        self._closed = False
        #: Bucket count of each event known to exist (it never changes once set up).
        self._nbs: dict[str, int] = {}
        # Transfers that a crash left half done are completed before anything else.
        self._call(self._recover_all)
        self._call(self._bind_paid_orders)
        self._batcher: Batcher[_Round] = Batcher(self._commit, max_batch, name="lampo-redis-writer")

    def _base(self, event: str, bucket: int = 0) -> str:
        if bucket == 0:
            return f"{self.prefix}{{{event}}}"
        return f"{self.prefix}{{{event} #{bucket}}}"  # event ids have no spaces: no clash

    def _index(self, hold_id: str) -> str:
        """The key that names a hold's event (outside the event's slot)."""
        return f"{self.prefix}hx:{hold_id}"

    def _payment_key(self, payment_id: str) -> str:
        """The key of a payment id: the hold it settled (outside every event's slot)."""
        return f"{self.prefix}px:{payment_id}"

    def _call(self, fn: Any, *args: Any) -> Any:
        if self._closed:
            raise Unavailable("storage is closed")
        try:
            return fn(*args)
        except _CONNECTION_ERRORS as exc:
            raise Unavailable(f"redis: {exc}") from None

    # -- script calls --------------------------------------------------------------------
    def _evalsha(self, calls: list[tuple[str, list[str], list[Any]]]) -> list[Any]:
        """Run ``(script, keys, args)`` calls, in one pipeline when there are several.

        One answer per call, an exception object for a call that failed. A script the
        server lost (a restart, SCRIPT FLUSH) is loaded again and its calls run again:
        NOSCRIPT means it did not run at all.
        """
        out: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            if len(todo) == 1:
                script, keys, args = calls[todo[0]]
                try:
                    answers = [
                        self._r.execute_command(
                            "EVALSHA", self._shas[script], len(keys), *keys, *args
                        )
                    ]
                except redis.ResponseError as exc:
                    answers = [exc]
            else:
                pipe = self._r.pipeline(transaction=False)
                for i in todo:
                    script, keys, args = calls[i]
                    pipe.execute_command("EVALSHA", self._shas[script], len(keys), *keys, *args)
                answers = pipe.execute(raise_on_error=False)
            lost = []
            for i, answer in zip(todo, answers, strict=True):
                if isinstance(answer, redis.ResponseError) and str(answer).startswith("CORRUPT"):
                    # the script checked before its first write (lua/_lib.lua, "Guards")
                    answer = CorruptStore(f"{calls[i][0]}.lua: {answer}; nothing written")
                out[i] = answer
                if isinstance(answer, NoScriptError):
                    lost.append(i)
            if not lost or attempt:
                break
            for name in SCRIPTS:
                self._r.script_load(script_text(name))
            todo = lost
        return out

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """One script call outside the writer (setup, expiry)."""
        [answer] = self._call(self._evalsha, [(script, keys, args)])
        if isinstance(answer, Exception):
            raise answer
        return answer

    # -- the writer ----------------------------------------------------------------------
    def _commit(self, units: list[_Unit]) -> list[tuple[Any, BaseException | None]]:
        rnd = _Round()
        finishers = [unit(rnd) for unit in units]
        try:
            self._call(self._play, rnd)
        except BaseException as exc:  # the server is gone: every caller gets it
            return [(None, exc)] * len(units)
        outcomes: list[tuple[Any, BaseException | None]] = []
        for finish in finishers:
            try:
                outcomes.append((finish(), None))
            except BaseException as exc:
                outcomes.append((None, exc))
        return outcomes

    def _play(self, rnd: _Round) -> None:
        """Look up the holds' events, route reservations to their customers' buckets, run
        one script call per (script, event, bucket), in order (on a cluster, payments
        after the others, each payment id claimed around them: ``_pay_on_cluster``); then
        balance the buckets of the reservations their bucket refused as sold out."""
        lookup = [req for req in rnd.reqs if req.event is None]
        if lookup:
            keys = [self._index(req.hold_id) for req in lookup]
            mget = self._r.mget_nonatomic if self.cluster else self._r.mget
            for req, value in zip(lookup, mget(keys), strict=True):
                if value is None:
                    req.answer = ["unknown-hold"]
                else:
                    req.event, req.bucket = _untag(value)
                    req.tag = value
        keyed = [req for req in rnd.reqs if req.script in _BY_CUSTOMER and req.answer is None]
        reserves = [req for req in keyed if req.script == "reserve"]
        bucketed: list[_Req] = []  # reservations in a bucket of a bucketed event
        if keyed:
            counts = self._bucket_counts({req.event for req in keyed if req.event})
            for req in keyed:
                assert req.event is not None
                n = counts[req.event]
                if n > 1:
                    req.bucket = bucket_of(req.customer, n)
                    req.tag = _tag(req.event, req.bucket, n)
                    if req.script == "reserve":
                        bucketed.append(req)
            if bucketed and self.cluster:
                self._check_hold_ids(bucketed)
        runnable = [req for req in rnd.reqs if req.answer is None and req.event is not None]
        if self.cluster:
            self._run_reqs([req for req in runnable if req.script != "pay"])
            self._pay_on_cluster([req for req in runnable if req.script == "pay"])
        else:
            self._run_reqs(runnable)
        short = [r for r in bucketed if isinstance(r.answer, list) and r.answer[0] == "sold-out"]
        if short:
            try:
                self._balance(short)
            except (*_CONNECTION_ERRORS, redis.ResponseError) as exc:
                for req in short:  # outcome unknown to the caller: retry with the same key
                    req.answer = Unavailable(f"redis: {exc}")
        if self.cluster:
            index: dict[str, str] = {}
            for req in reserves:
                one = req.answer
                if isinstance(one, list) and one[0] in ("ok", "same"):
                    hold_id = req.hold_id if one[0] == "ok" else _view_id(one[1])
                    index[self._index(hold_id)] = req.tag
            if index:
                # On a cluster the index lies in other slots than the event: written after
                # the hold, again on every idempotent repeat, so a caller that was answered
                # can always find its hold (see the module docstring).
                self._r.mset_nonatomic(index)

    def _run_reqs(self, reqs: list[_Req]) -> None:
        """One script call per (script, event, bucket), all in one pipeline."""
        if not reqs:
            return
        groups: dict[tuple[str, str, int], list[_Req]] = {}
        for req in reqs:
            assert req.event is not None
            groups.setdefault((req.script, req.event, req.bucket), []).append(req)
        calls: list[tuple[str, list[str], list[Any]]] = []
        for (script, event, bucket), group in groups.items():
            keys = [self._base(event, bucket)]
            if script == "reserve" and not self.cluster:
                keys += [self._index(req.hold_id) for req in group]
            elif script == "pay" and not self.cluster:
                keys += [self._payment_key(req.payment_id) for req in group]
            args: list[Any] = [group[0].tag if script == "reserve" else event]
            for req in group:
                args += req.args
            calls.append((script, keys, args))
        answers = self._evalsha(calls)
        for group, answer in zip(groups.values(), answers, strict=True):
            if isinstance(answer, Exception):
                for req in group:
                    req.answer = answer
                continue
            for req, one in zip(group, answer, strict=True):
                req.answer = one

    # -- payment ids on a cluster ----------------------------------------------------------
    def _pay_on_cluster(self, reqs: list[_Req]) -> None:
        """Payments on a cluster, where a payment id's key lies in another slot than its
        hold: claim each payment id for its hold (claim.lua), run pay.lua where claimed,
        then let go of the claims pay.lua refused. A payment that succeeded needs no third
        step: its hold, paid with the id, refuses the id elsewhere from then on. The
        requests of one payment id for several holds go one hold at a time, so each
        learns how the one before ended. See docs/storage-redis-postgres.md, "Payment ids
        on a cluster"."""
        while reqs:
            hold_of: dict[str, str] = {}  # payment id -> the hold it is tried on now
            now: list[_Req] = []
            later: list[_Req] = []
            for req in reqs:
                same = hold_of.setdefault(req.payment_id, req.hold_id) == req.hold_id
                (now if same else later).append(req)
            refused = self._claim(hold_of)
            for req in now:
                req.answer = refused.get(req.payment_id)
            claimed = [req for req in now if req.answer is None]
            self._run_reqs(claimed)
            self._let_go(claimed)
            reqs = later

    def _claim(self, hold_of: dict[str, str]) -> dict[str, list[str]]:
        """Claim each payment id for its hold; the answers of those that cannot be:
        ``payment-id`` (it settled another hold), ``payment-busy`` (claimed for another
        hold that is still held and may be paid with it: an attempt under way, or one a
        crash cut)."""
        out: dict[str, list[str]] = {}
        # payment id -> (the hold its claim may be taken from, the most attempts for that
        # hold it may still count: '' any, as that hold can never be paid with the id)
        over: dict[str, tuple[str, str]] = {}
        todo = dict(hold_of)
        for _ in range(_CLAIM_TRIES):
            if not todo:
                break
            calls: list[tuple[str, list[str], list[Any]]] = [
                ("claim", [self._payment_key(pid)], ["claim", hold_id, *over.get(pid, ("", ""))])
                for pid, hold_id in todo.items()
            ]
            again: dict[str, str] = {}
            for (pid, hold_id), answer in zip(todo.items(), self._evalsha(calls), strict=True):
                if isinstance(answer, Exception):
                    raise answer
                match answer:
                    case ["ok"]:
                        pass
                    case ["bound"] if not self._paid_with(hold_id, pid):
                        out[pid] = ["payment-id"]
                    case ["bound"]:
                        pass  # an order from before the keys, paid with it too: "same"
                    case ["other", other, attempts]:
                        verdict = self._claimed_by(other, pid, int(attempts))
                        if isinstance(verdict, list):
                            out[pid] = verdict
                        else:  # claim it again, taking it over from that hold
                            over[pid] = (other, verdict)
                            again[pid] = hold_id
                    case _:
                        raise AssertionError(f"claim.lua answered {answer!r}")
            todo = again
        for pid in todo:  # claimed again by others each time: under way elsewhere
            out[pid] = ["payment-busy"]
        return out

    def _claimed_by(self, hold_id: str, payment_id: str, attempts: int) -> list[str] | str:
        """What a claim of ``payment_id`` for ``hold_id`` (``attempts`` for it not known
        to have been refused) means for a payment of another hold: the answer
        ``payment-id`` if that hold is paid with it (it settled it: the key says so from
        now on, ``bind``), ``payment-busy`` if it is held and an attempt may yet pay it.
        Otherwise the claim may be taken over, and the most attempts it may count then:
        '' (any) if that hold can never be paid with the id (it ended otherwise, was paid
        with another id, or is gone); '0' if it is held and every attempt was refused, so
        that one claiming it meanwhile keeps it."""
        other = self.hold(hold_id)
        if other is None:
            return ""
        if other.is_order and other.payment_id == payment_id:
            self._run("claim", [self._payment_key(payment_id)], ["bind", hold_id])
            return ["payment-id"]
        if other.state is not HoldState.HELD:
            return ""
        return ["payment-busy"] if attempts > 0 else "0"

    def _paid_with(self, hold_id: str, payment_id: str) -> bool:
        hold = self.hold(hold_id)
        return hold is not None and hold.is_order and hold.payment_id == payment_id

    def _let_go(self, claimed: list[_Req]) -> None:
        """Let go of each payment id whose requests pay.lua all refused (the claim counts
        one attempt fewer). One paid or found paid keeps its claim; one whose outcome is
        unknown (the script call failed) too, as if it might have paid."""
        refused: dict[str, list[bool]] = {}
        hold_of: dict[str, str] = {}
        for req in claimed:
            one = req.answer
            done = isinstance(one, list) and one[0] not in ("ok", "same")
            refused.setdefault(req.payment_id, []).append(done)
            hold_of[req.payment_id] = req.hold_id
        calls: list[tuple[str, list[str], list[Any]]] = [
            ("claim", [self._payment_key(pid)], ["refused", hold_of[pid]])
            for pid, all_refused in refused.items()
            if all(all_refused)
        ]
        for answer in self._evalsha(calls) if calls else []:
            if isinstance(answer, Exception):
                raise answer

    def _bind_paid_orders(self) -> None:
        """Give every order's payment id its key, once per store prefix (the key
        ``px-bound`` says it was done): orders paid by a lampo from before payment ids
        had keys have none. An id that paid several keeps the first paid."""
        done = self.prefix + "px-bound"
        if self._r.exists(done):
            return
        orders = [
            hold
            for event in sorted(self._r.smembers(self._events))
            for hold in self.holds(event)
            if hold.is_order
        ]
        orders.sort(key=lambda h: (h.paid_at or h.created_at, h.id))
        calls: list[tuple[str, list[str], list[Any]]] = [
            ("claim", [self._payment_key(h.payment_id)], ["bind", h.id]) for h in orders
        ]
        for start in range(0, len(calls), 1000):
            for answer in self._evalsha(calls[start : start + 1000]):
                if isinstance(answer, Exception):
                    raise answer
        self._r.set(done, "1")

    # -- stock buckets -------------------------------------------------------------------
    def _bucket_counts(self, events: set[str]) -> dict[str, int]:
        """The bucket count of each event; 1 for an event not set up (yet)."""
        out = {e: self._nbs[e] for e in events if e in self._nbs}
        for event, n in self._probe(events - out.keys()).items():
            out[event] = n or 1
            if n is not None:  # an event's count never changes once it exists
                self._nbs[event] = n
        return out

    def _probe(self, events: set[str]) -> dict[str, int | None]:
        """The stored bucket count of each event, None for one not set up."""
        if not events:
            return {}
        todo = sorted(events)
        pipe = self._r.pipeline(transaction=False)
        for event in todo:
            pipe.get(self._base(event) + ":nb")
            pipe.exists(self._base(event) + ":def")
        found = pipe.execute()
        return {
            event: (int(nb) if nb else 1) if known else None
            for event, nb, known in zip(todo, found[::2], found[1::2], strict=True)
        }

    def _bucket_count(self, event: str) -> int:
        return self._bucket_counts({event})[event]

    def _check_hold_ids(self, reqs: list[_Req]) -> None:
        """On a cluster: refuse a bucketed reservation whose hold id the index gives to
        another bucket or event (on one server reserve.lua checks it atomically)."""
        values = self._r.mget_nonatomic([self._index(req.hold_id) for req in reqs])
        mine: dict[str, str] = {}
        for req, value in zip(reqs, values, strict=True):
            first = mine.setdefault(req.hold_id, req.tag)
            if (value is not None and value != req.tag) or first != req.tag:
                req.answer = ["hold-id"]

    def _read_view(self, event: str, n: int) -> _View:
        """A consistent read of the ``n`` buckets of ``event``.

        Each bucket is read atomically (bucket.lua: its stock, the transfers it lent and
        has not settled, its transfer version); a lent transfer the borrower has not
        applied yet is in transit. The read is kept only if no bucket's transfer version
        moved between its read and a check after all reads: then every bucket was as read
        at one instant between the two, and no unit is missed or counted twice.
        """
        view = _View([{} for _ in range(n)], {})
        for _ in range(_VIEW_TRIES):
            answers = self._evalsha([("bucket", [self._base(event, b)], []) for b in range(n)])
            levels: list[dict[str, list[int]]] = []
            versions: list[str] = []
            lent: list[tuple[int, str, str, int]] = []  # (to, id, sku, units)
            for answer in answers:
                if isinstance(answer, Exception):
                    raise answer
                flat_stock, flat_lent, version = answer
                raw = _pairs(flat_stock)
                levels.append(
                    {
                        k[2:]: [
                            int(raw[k]),
                            int(raw["v:" + k[2:]]),
                            int(raw["h:" + k[2:]]),
                            int(raw["s:" + k[2:]]),
                        ]
                        for k in raw
                        if k.startswith("a:")
                    }
                )
                versions.append(str(version))
                for tid, record in _pairs(flat_lent).items():
                    parts = record.split(SEP)
                    lent.append((int(parts[0]), tid, parts[1], int(parts[2])))
            pipe = self._r.pipeline(transaction=False)
            for dest, tid, _, _ in lent:
                pipe.sismember(self._base(event, dest) + ":xin", tid)
            for b in range(n):
                pipe.get(self._base(event, b) + ":xv")
            checked = pipe.execute()
            applied, after = checked[: len(lent)], checked[len(lent) :]
            transit: dict[str, int] = {}
            for (_, _, item, count), done in zip(lent, applied, strict=True):
                if not done:
                    transit[item] = transit.get(item, 0) + count
            view = _View(levels, transit)
            if [str(v or "0") for v in after] == versions:
                break
        return view

    def _transfer(self, event: str, moves: list[tuple[int, int, str, int]]) -> None:
        """Move units between buckets: ``(from, to, sku, units)``, in three steps (see
        docs/storage-redis-postgres.md): lend (the lender takes them off and records the
        transfer), borrow (the borrower adds them, once per transfer id), settle (the
        lender clears the record). A crash between steps leaves records that
        ``_recover`` completes."""
        if not moves:
            return
        ids = [uuid.uuid4().hex for _ in moves]
        lend: dict[int, list[int]] = {}
        for i, (frm, _, _, _) in enumerate(moves):
            lend.setdefault(frm, []).append(i)
        calls: list[tuple[str, list[str], list[Any]]] = []
        for frm, idx in lend.items():
            args: list[Any] = []
            for i in idx:
                _, to, sku, units = moves[i]
                args += [ids[i], to, sku, units]
            calls.append(("lend", [self._base(event, frm)], args))
        taken = [0] * len(moves)
        for (_, idx), answer in zip(lend.items(), self._evalsha(calls), strict=True):
            if isinstance(answer, Exception):
                raise answer
            for i, units in zip(idx, answer, strict=True):
                taken[i] = int(units)
        self._complete(
            event,
            [
                (frm, ids[i], to, sku, taken[i])
                for i, (frm, to, sku, _) in enumerate(moves)
                if taken[i]
            ],
        )

    def _complete(self, event: str, lent: list[tuple[int, str, int, str, int]]) -> None:
        """Steps 2 and 3 of transfers ``(lender, id, to, sku, units)`` already lent."""
        if not lent:
            return
        borrow: dict[int, list[Any]] = {}
        settle: dict[int, list[Any]] = {}
        for frm, tid, to, sku, units in lent:
            borrow.setdefault(to, []).extend([tid, sku, units])
            settle.setdefault(frm, []).append(tid)
        for script, by_bucket in (("borrow", borrow), ("settle", settle)):
            calls = [(script, [self._base(event, b)], args) for b, args in by_bucket.items()]
            for answer in self._evalsha(calls):
                if isinstance(answer, Exception):
                    raise answer

    def _recover(self, event: str, n: int) -> int:
        """Complete every transfer of ``event`` left half done (a crash between its
        steps); safe to run twice or at once with the transfer itself. How many it found."""
        pipe = self._r.pipeline(transaction=False)
        for b in range(n):
            pipe.hgetall(self._base(event, b) + ":xfer")
        lent: list[tuple[int, str, int, str, int]] = []
        for frm, records in enumerate(pipe.execute()):
            for tid, record in records.items():
                to, sku, units = record.split(SEP)
                lent.append((frm, tid, int(to), sku, int(units)))
        self._complete(event, lent)
        return len(lent)

    def _recover_all(self) -> None:
        events = set(self._r.smembers(self._events))
        for event, n in self._bucket_counts(events).items():
            if n > 1:
                self._recover(event, n)

    def _balance(self, pending: list[_Req]) -> None:
        """Serve the reservations refused sold-out in their bucket from sibling buckets.

        Per round: a consistent read of each event's buckets; a request short of some SKU
        across all buckets (transit included) is answered sold-out with the true total; the
        others get moves planned (``plan_moves``), the moves are made, and those requests
        run again in their buckets. A request the round's plan could not cover (the units
        went to earlier requests of the round) waits for the next round.
        """
        for _ in range(_BALANCE_ROUNDS):
            retry: list[_Req] = []
            waiting: list[_Req] = []
            by_event: dict[str, list[_Req]] = {}
            for req in pending:
                assert req.event is not None
                by_event.setdefault(req.event, []).append(req)
            for event, reqs in by_event.items():
                n = self._bucket_count(event)
                view = self._read_view(event, n)
                if view.transit:  # units stuck between buckets: complete, then read again
                    self._recover(event, n)
                    view = self._read_view(event, n)
                available = [{sku: lv[1] for sku, lv in b.items()} for b in view.levels]
                moves: list[tuple[int, int, str, int]] = []
                for req in reqs:
                    refusal = _refusal(view, req.wanted)
                    if refusal is not None:
                        req.answer = refusal
                        continue
                    plan = plan_moves(available, req.bucket, req.wanted)
                    if plan is None:
                        waiting.append(req)
                        continue
                    moves += [(frm, req.bucket, sku, units) for frm, sku, units in plan]
                    retry.append(req)
                self._transfer(event, moves)
            for req in retry:
                req.answer = None
            self._run_reqs(retry)
            pending = [r for r in retry if _sold_out(r.answer)] + waiting
            if not pending:
                return
        # Still refused after every round (other processes took the units meanwhile): a
        # true sold-out is answered as such; otherwise the units are there but kept moving,
        # and the answer is a retryable ``unavailable``, never a sold-out with stock left.
        for req in pending:
            assert req.event is not None
            view = self._read_view(req.event, self._bucket_count(req.event))
            req.answer = _refusal(view, req.wanted) or Unavailable(
                "stock is moving between buckets under contention; retry"
            )

    # -- the port ------------------------------------------------------------------------
    def setup(self, event: SaleEvent) -> None:
        definition = event_to_json(event)
        # An event set up before keeps its bucket count; a new one gets this store's.
        known = self._nbs.get(event.id) or self._call(self._probe, {event.id})[event.id]
        n = known or self.buckets
        # Bucket 0 last: its definition is what makes the event known (and routed by its
        # bucket count), so an interrupted setup is simply run again. Once it is known,
        # only bucket 0's definition counts (the others' copies follow it after an update).
        for bucket in range(1) if known else range(n - 1, -1, -1):
            args: list[Any] = [event.id, definition, len(event.offers)]
            for sku, offer in sorted(event.offers.items()):
                args += [sku, shares(offer.allocation, n)[bucket]]
            args.append("" if n == 1 else str(n))
            keys = [self._base(event.id, bucket)]
            if bucket == 0 and not self.cluster:
                keys.append(self._events)
            out = self._run("setup", keys, args)
            if bucket == 0 and self.cluster:  # the registry of event ids lies elsewhere
                self._call(self._r.sadd, self._events, event.id)
            if out[0] == "exists":
                check_same_definition(event_from_json(out[1]), event)
        self._nbs[event.id] = n

    def update(self, event: SaleEvent) -> None:
        self._call(self._update, event)

    def _update(self, event: SaleEvent) -> None:
        """Plan from bucket 0's definition, and apply in one script there (update.lua),
        which compares the definition it was planned from: another update in between
        makes it plan again. With buckets, a lower allocation first gathers the units it
        takes into bucket 0 (journaled transfers), and afterwards the other buckets get
        the definition's copy and a share of new units (see docs/storage-redis-postgres.md,
        "Updating a live event")."""
        n = self._bucket_count(event.id)
        text = event_to_json(event)
        for _ in range(_UPDATE_ROUNDS):
            known = self._r.get(self._base(event.id) + ":def")
            if known is None:
                raise UnknownEvent(event.id)
            stored = event_from_json(known)
            change = StockChange({}, {}) if stored == event else plan_update(stored, event)
            if n > 1 and stored != event:
                self._prepare_update(event, change, n)
            new = known if stored == event else text  # the same again: nothing written
            match self._apply_update(event.id, n, known, new, change):
                case ["ok", version]:
                    if n > 1:
                        self._finish_update(event.id, n, change, version, new)
                    return
                case ["unknown"]:
                    raise UnknownEvent(event.id)
                case ["short", sku, committed] if n == 1:
                    allocation = event.offers[sku].allocation
                    raise below_committed(event.id, sku, allocation, int(committed))
                case ["changed"] | ["short", *_]:
                    continue  # another update, or buyers took the gathered units: again
                case answer:
                    raise AssertionError(f"update.lua answered {answer!r}")
        raise Unavailable(f"{event.id}: stock kept moving during the update; retry")

    def _apply_update(
        self, event: str, n: int, known: str, new: str, change: StockChange
    ) -> list[str]:
        """update.lua in bucket 0: if its definition is still ``known``, apply ``change``
        and write ``new``, or change nothing. Its answer."""
        deltas = {**change.deltas, **change.added}  # a new SKU: its allocation
        args: list[Any] = [known, new, "1" if n > 1 else "", len(deltas)]
        for sku, delta in sorted(deltas.items()):
            args += [sku, delta]
        answer: list[str] = self._run("update", [self._base(event)], args)
        return answer

    def _prepare_update(self, event: SaleEvent, change: StockChange, n: int) -> None:
        """Before bucket 0 applies an update of a bucketed event: refuse an allocation
        below the units held and sold (``below_committed``, nothing written); move the
        units a lower allocation takes into bucket 0 from its siblings; give new SKUs
        empty rows in buckets n-1 .. 1. None of it changes what ``stock`` reports."""
        lower = {sku: -d for sku, d in change.deltas.items() if d < 0}
        if lower:
            view = self._read_view(event.id, n)
            if view.transit:  # units stuck between buckets: complete, then read again
                self._recover(event.id, n)
                view = self._read_view(event.id, n)
            for sku in sorted(lower):
                committed = sum(b[sku][2] + b[sku][3] for b in view.levels if sku in b)
                allocation = event.offers[sku].allocation
                if allocation < committed:
                    raise below_committed(event.id, sku, allocation, committed)
            available = [{sku: lv[1] for sku, lv in b.items()} for b in view.levels]
            plan = plan_moves(available, 0, lower)  # None: buyers took them; update.lua says
            self._transfer(event.id, [(frm, 0, sku, k) for frm, sku, k in plan or []])
        if change.added:
            self._rows(event.id, n, sorted(change.added), "", "")

    def _finish_update(
        self, event: str, n: int, change: StockChange, version: str, definition: str
    ) -> None:
        """After bucket 0 applied an update of a bucketed event: the other buckets' copy
        of the definition (kept only if newer), and new units spread over the buckets by
        ``shares`` as setup spreads them (journaled transfers from bucket 0). Either may
        be cut by a crash: nothing reads the copies to decide, and units anywhere serve."""
        if version != "0":  # "0": never updated, the copies are setup's
            self._rows(event, n, [], version, definition)
        moves: list[tuple[int, int, str, int]] = []
        more = {**change.added, **{sku: d for sku, d in change.deltas.items() if d > 0}}
        for sku, units in sorted(more.items()):
            parts = shares(units, n)
            moves += [(0, b, sku, parts[b]) for b in range(1, n) if parts[b]]
        self._transfer(event, moves)

    def _rows(self, event: str, n: int, skus: list[str], version: str, definition: str) -> None:
        """rows.lua in buckets n-1 .. 1: empty rows for ``skus``; the definition's copy
        if ``version`` is newer than the bucket's."""
        args: list[Any] = [version, definition, len(skus), *skus]
        calls = [("rows", [self._base(event, b)], args) for b in reversed(range(1, n))]
        for answer in self._evalsha(calls):
            if isinstance(answer, Exception):
                raise answer

    def events(self) -> list[str]:
        return sorted(self._call(self._r.smembers, self._events))

    def load_events(self) -> list[SaleEvent]:
        out = []
        for event in self.events():
            text = self._call(self._r.get, self._base(event) + ":def")
            if text is not None:
                out.append(event_from_json(text))
        return out

    def _reserve_unit(self, requests: Sequence[ReserveRequest]) -> _Unit:
        """Encode the requests (in the caller's thread); the unit the writer runs."""
        refused: dict[int, Result] = {}
        encoded: list[tuple[int, str, str, list[Any]]] = []
        for i, req in enumerate(requests):
            args = _encode(req)
            if isinstance(args, LampoError):
                refused[i] = args
            else:
                encoded.append((i, req.hold.event, req.hold.id, list(args)))

        def unit(rnd: _Round) -> Callable[[], list[Result]]:
            sent = []
            for i, event, hold_id, args in encoded:
                req = rnd.add("reserve", event, args, hold_id)
                req.customer = requests[i].hold.customer
                req.wanted = requests[i].hold.units_by_sku()
                sent.append((i, req))

            def finish() -> list[Result]:
                results: dict[int, Result] = dict(refused)
                for i, req in sent:
                    results[i] = _reserved(requests[i], _answer(req))
                return [results[i] for i in range(len(requests))]

            return finish

        return unit

    def reserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        if not requests:
            return []
        out: list[Result] = self._batcher.submit(self._reserve_unit(requests), len(requests))
        return out

    async def areserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        if not requests:
            return []
        unit = self._reserve_unit(requests)
        out: list[Result] = await self._batcher.asubmit(unit, len(requests))
        return out

    def _recorded_unit(self, keys: Sequence[KeyRef]) -> _Unit:
        """recorded.lua in each key's customer's bucket: a read, in the writer's round
        (so it shares the round trip of the reservations beside it)."""

        def unit(rnd: _Round) -> Callable[[], list[bool]]:
            sent = []
            for ref in keys:
                req = rnd.add("recorded", ref.event, [ref.key])
                req.customer = ref.customer
                sent.append(req)
            return lambda: [_answer(req) == 1 for req in sent]

        return unit

    def recorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        if not keys:
            return []
        out: list[bool] = self._batcher.submit(self._recorded_unit(keys), len(keys))
        return out

    async def arecorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        if not keys:
            return []
        out: list[bool] = await self._batcher.asubmit(self._recorded_unit(keys), len(keys))
        return out

    def _by_hold_unit(
        self,
        script: str,
        requests: Sequence[Any],
        args: Callable[[Any], list[Any]],
        decode: Callable[[Any, list[Any]], Result],
    ) -> _Unit:
        encoded = [(req.hold_id, args(req)) for req in requests]

        def unit(rnd: _Round) -> Callable[[], list[Result]]:
            sent = [rnd.add(script, None, a, hold_id) for hold_id, a in encoded]
            return lambda: [decode(req, _answer(s)) for req, s in zip(requests, sent, strict=True)]

        return unit

    def _pay_unit(self, requests: Sequence[PayRequest]) -> _Unit:
        encoded = [(req.hold_id, req.payment_id, _pay_args(req)) for req in requests]

        def unit(rnd: _Round) -> Callable[[], list[Result]]:
            sent = []
            for hold_id, payment_id, args in encoded:
                req = rnd.add("pay", None, args, hold_id)
                req.payment_id = payment_id
                sent.append(req)
            return lambda: [_paid(r, _answer(s)) for r, s in zip(requests, sent, strict=True)]

        return unit

    def pay(self, requests: Sequence[PayRequest]) -> list[Result]:
        if not requests:
            return []
        out: list[Result] = self._batcher.submit(self._pay_unit(requests), len(requests))
        return out

    async def apay(self, requests: Sequence[PayRequest]) -> list[Result]:
        if not requests:
            return []
        out: list[Result] = await self._batcher.asubmit(self._pay_unit(requests), len(requests))
        return out

    def release(self, requests: Sequence[ReleaseRequest]) -> list[Result]:
        if not requests:
            return []
        unit = self._by_hold_unit(
            "release", requests, _end_args, lambda req, a: _ended(req.hold_id, "released", a)
        )
        out: list[Result] = self._batcher.submit(unit, len(requests))
        return out

    def refund(self, requests: Sequence[RefundRequest]) -> list[Result]:
        if not requests:
            return []
        unit = self._by_hold_unit(
            "refund", requests, _end_args, lambda req, a: _ended(req.hold_id, "refunded", a)
        )
        out: list[Result] = self._batcher.submit(unit, len(requests))
        return out

    def expire_due(self, event: str, now: datetime, limit: int = 1000) -> list[Hold]:
        n = self._call(self._bucket_count, event)
        if n > 1:  # the sweep also completes transfers a crash left half done
            self._call(self._recover, event, n)
        out: list[Hold] = []
        corrupt: list[str] = []
        for bucket in range(n):
            if len(out) + len(corrupt) >= limit:
                break
            args = [_us(now), now.isoformat(), limit - len(out) - len(corrupt)]
            for flat in self._run("expire", [self._base(event, bucket)], args):
                if flat[0] == "corrupt":  # a view starts with the hold's JSON body
                    corrupt.append(f"{flat[1]}: {flat[2]}")
                else:
                    out.append(_hold_from_view(flat))
        if corrupt:  # the others expired in full; these are left as they are
            raise CorruptStore(f"expire {event}: {'; '.join(corrupt)}; nothing written")
        return out

    def hold(self, hold_id: str) -> Hold | None:
        value = self._call(self._r.get, self._index(hold_id))
        if value is None:
            return None
        event, bucket = _untag(value)
        view = self._call(self._r.hmget, f"{self._base(event, bucket)}:h:{hold_id}", _VIEW)
        return None if view[0] is None else _hold_from_view(view)

    def holds(self, event: str) -> Iterator[Hold]:
        found: dict[str, Hold] = {}
        for bucket in range(self._call(self._bucket_count, event)):
            base = self._base(event, bucket)
            cursor = "0"
            while True:  # one script call per page of holds (SSCAN: no long block)
                cursor, *views = self._run("holds", [base], [cursor, 1000])
                for view in views:
                    if view[0] is not None:
                        hold = _hold_from_view(view)
                        found[hold.id] = hold
                if cursor == "0":
                    break
        return iter(sorted(found.values(), key=lambda h: (h.created_at, h.id)))

    def stock(self, event: str) -> dict[str, StockLevel]:
        n = self._call(self._bucket_count, event)
        if n > 1:
            levels: dict[str, StockLevel] = self._call(self._read_view, event, n).stock()
            return levels
        raw: dict[str, str] = self._call(self._r.hgetall, self._base(event) + ":stock")
        skus = sorted(k[2:] for k in raw if k.startswith("a:"))
        return {
            sku: StockLevel(
                sku,
                int(raw["a:" + sku]),
                int(raw["v:" + sku]),
                int(raw["h:" + sku]),
                int(raw["s:" + sku]),
            )
            for sku in skus
        }

    def totals(self, event: str) -> Totals:
        n = self._call(self._bucket_count, event)
        calls: list[tuple[str, list[str], list[Any]]] = [
            ("totals", [self._base(event, b)], []) for b in range(n)
        ]
        lines: dict[Any, list[int]] = {}
        orders: dict[Any, list[int]] = {}
        for answer in self._call(self._evalsha, calls):
            if isinstance(answer, Exception):
                raise answer
            lu, la, ou, oa = (_pairs(flat) for flat in answer)
            for into, units, amounts in ((lines, lu, la), (orders, ou, oa)):
                for k, v in units.items():
                    row = into.setdefault(tuple(k.split(SEP)), [0, 0])
                    row[0] += int(v)
                    row[1] += int(amounts.get(k, 0))
        return Totals.of(lines, orders)

    def close(self) -> None:
        if self._closed:
            return
        self._batcher.close()  # the callers already queued are answered first
        self._closed = True
        if not self.cluster:  # a cluster's client is shared (see _cluster_client)
            self._r.close()
            self._r.connection_pool.disconnect()

    def __enter__(self) -> RedisStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sold_out(answer: Any) -> bool:
    return isinstance(answer, list) and answer[0] == "sold-out"


def _refusal(view: _View, wanted: dict[str, int]) -> list[str] | None:
    """The answer to a request that the buckets together cannot serve, else None."""
    for sku in sorted(wanted):
        if sku not in view.levels[0]:
            return ["unknown-sku", sku]
        total = view.total(sku)
        if total < wanted[sku]:
            return ["sold-out", sku, str(wanted[sku]), str(total)]
    return None


def _answer(req: _Req) -> Any:
    if isinstance(req.answer, Exception):
        raise req.answer
    return req.answer


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _view_id(view: Sequence[str]) -> str:
    return _hold_from_view(view).id


def _reserved(req: ReserveRequest, answer: list[Any]) -> Result:
    hold = req.hold
    match answer:
        case ["ok"]:
            return hold
        case ["same", flat]:
            return _hold_from_view(flat)
        case ["idempotency-conflict"]:
            return IdempotencyConflict(req.key)
        case ["unknown-event"]:
            return UnknownEvent(hold.event)
        case ["hold-id"]:
            return InvalidRequest("hold_id", f"{hold.id} exists already")
        case ["limit-exceeded", limit, already, sku]:
            return LimitExceeded(hold.customer, int(limit), int(already), sku or None)
        case ["unknown-sku", sku]:
            return UnknownSku(hold.event, sku)
        case ["sold-out", sku, requested, available]:
            return SoldOut(sku, int(requested), int(available))
        case ["corrupt", problem]:
            raise CorruptStore(f"reserve {hold.id}: {problem}; nothing written")
    raise AssertionError(f"reserve.lua answered {answer!r}")


def _pay_args(req: PayRequest) -> list[Any]:
    amount = req.amount
    args: list[Any] = [req.hold_id, req.payment_id, _us(req.now), req.now.isoformat()]
    args += ["", ""] if amount is None else [amount.amount, amount.currency]
    return args


def _end_args(req: ReleaseRequest | RefundRequest) -> list[Any]:
    return [req.hold_id, req.now.isoformat()]


def _ended(hold_id: str, action: str, answer: list[Any]) -> Result:
    match answer:
        case ["ok", flat] | ["same", flat]:
            return _hold_from_view(flat)
        case ["unknown-hold"]:
            return UnknownHold(hold_id)
        case ["illegal-transition", state]:
            return IllegalTransition(hold_id, state, action)
        case ["corrupt", problem]:
            raise CorruptStore(f"{action} {hold_id}: {problem}; nothing written")
    raise AssertionError(f"{action}: the script answered {answer!r}")


def _paid(req: PayRequest, answer: list[Any]) -> Result:
    match answer:
        case ["amount", amount, currency]:
            held = Money(int(amount), currency)
            return InvalidRequest("amount", f"payment of {req.amount} for a hold of {held}")
        case ["already-paid", payment_id]:
            return AlreadyPaid(req.hold_id, payment_id)
        case ["payment-id"]:
            return IdempotencyConflict(req.payment_id)
        case ["payment-busy"]:
            return Unavailable(f"payment {req.payment_id!r} is under way on another hold; retry")
        case ["hold-expired", flat]:
            return HoldExpired(req.hold_id, _hold_from_view(flat).expires_at)
    return _ended(req.hold_id, "paid", answer)


__all__ = ["RedisStorage", "script_text"]
