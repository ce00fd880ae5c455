"""``redis://host:port/db`` and ``redis+cluster://host:port``: the live stock in Redis.

Every transition is one Lua script (``lua/*.lua``, each with ``lua/_lib.lua`` in front),
loaded by SHA (EVALSHA; loaded again after a server restart). Redis runs a script alone,
so each request in it is checked in full and written with nothing in between; a refusal
writes nothing. Every key of an event carries the hash tag ``{event}``, so one event's
keys share a hash slot and every script touches one slot: the same scripts run on a
Redis Cluster. Hold expiry reads a sorted set by deadline (no scan).

Group commit: a writer thread (``_batcher.Batcher``) takes the requests of all the
callers waiting at that moment and sends them as one script call per (script, event),
all in one pipeline when there are several, so N concurrent callers share one round
trip; each gets its own answer, in order. ``areserve``/``apay`` queue from the event loop
without a thread hop. Requests are encoded in the caller's thread, not the writer's.

Two keys lie outside the events' slots: the hold index (``<prefix>hx:<hold id>`` -> its
event, read by pay, release, refund and ``hold``) and the set of event ids (read only by
``events``/``load_events``). On one server the scripts write them in the same atomic
step. On a cluster they cannot, so the client writes them right after the script, and
again whenever an idempotent repeat returns the same hold or event: a caller is answered
only after the index is written, and a crash between the two leaves a hold that its
caller, retrying with the same key, finds again; one nobody retries for expires as usual
(expiry reads the event's own deadline index). Hold ids are unique per event.

Reads: ``holds`` and ``totals`` are scripts too (one slot, one snapshot per call;
``holds`` pages through the event's hold ids with SSCAN, so a huge event never blocks
the server for long). On a cluster, the stores of one process share one ``RedisCluster``
client per cluster URL, kept for the process's life.

Durability is the server's: an answer means the script ran, and it survives a crash only
as far as the server's AOF policy says (``appendfsync always`` for guarantee 5; see
docs/architecture.md).

Query options (removed before connecting): ``prefix`` (default ``lampo:``), put in front
of every key, so several stores can share one server; ``max_batch`` (most requests per
writer round, default 256).
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException

from lampo.domain.codec import event_from_dict, event_to_dict
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
)
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.money import Money
from lampo.domain.totals import Totals, order_key
from lampo.storage._batcher import Batcher
from lampo.storage.port import Result, check_same_definition

SEP = "\x1f"  # between the parts of a counter or totals key
RS = "\x1e"  # after each field of a request sent to reserve.lua
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCRIPTS = ("setup", "reserve", "pay", "release", "expire", "refund", "holds", "totals")


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


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """The URL to connect to (``redis://``, lampo's options removed) and those options."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in _OPTIONS}
    rest = urlencode([(k, v) for k, v in query if k not in _OPTIONS])
    scheme = "redis" if parts.scheme == "redis+cluster" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, rest, "")), options


_OPTIONS = ("prefix", "max_batch")
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

    __slots__ = ("answer", "args", "event", "hold_id", "script")

    def __init__(self, script: str, event: str | None, args: list[Any], hold_id: str = "") -> None:
        self.script = script
        self.event = event  # None: looked up from hold_id by the round
        self.args = args
        self.hold_id = hold_id
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


#: A unit of the writer's batch: it adds its requests to the round and returns the
#: function that turns their answers into its result once the round has run.
_Unit = Callable[[_Round], Callable[[], Any]]


class RedisStorage:
    """All live state in Redis (one server, or a cluster); writes coalesced per batch."""

    def __init__(self, url: str) -> None:
        self.cluster = urlsplit(url).scheme == "redis+cluster"
        conn_url, options = _split_url(url)
        self.prefix = options.get("prefix", "lampo:")
        if "{" in self.prefix or "}" in self.prefix:
            raise InvalidRequest("prefix", "may not contain { or } (they make the hash tag)")
        try:
            max_batch = int(options.get("max_batch", 256))
        except ValueError:
            raise InvalidRequest("storage", "max_batch is an integer") from None
        if max_batch < 1:
            raise InvalidRequest("storage", "max_batch must be >= 1")
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
                self._r.ping()
            # Loaded on first use: a NOSCRIPT answer loads them (see _evalsha).
            self._shas = {name: _sha(script_text(name)) for name in SCRIPTS}
        except (*_CONNECTION_ERRORS, ValueError) as exc:
            raise Unavailable(f"redis: {exc}") from None
        self._events = self.prefix + "events"
        self._closed = False
        self._batcher: Batcher[_Round] = Batcher(self._commit, max_batch, name="lampo-redis-writer")

    def _base(self, event: str) -> str:
        return f"{self.prefix}{{{event}}}"

    def _index(self, hold_id: str) -> str:
        """The key that names a hold's event (outside the event's slot)."""
        return f"{self.prefix}hx:{hold_id}"

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
        """Look up the holds' events, run one script call per (script, event), in order."""
        lookup = [req for req in rnd.reqs if req.event is None]
        if lookup:
            keys = [self._index(req.hold_id) for req in lookup]
            mget = self._r.mget_nonatomic if self.cluster else self._r.mget
            for req, event in zip(lookup, mget(keys), strict=True):
                if event is None:
                    req.answer = ["unknown-hold"]
                req.event = event
        groups: dict[tuple[str, str], list[_Req]] = {}
        for req in rnd.reqs:
            if req.answer is None and req.event is not None:
                groups.setdefault((req.script, req.event), []).append(req)
        calls: list[tuple[str, list[str], list[Any]]] = []
        for (script, event), reqs in groups.items():
            keys = [self._base(event)]
            if script == "reserve" and not self.cluster:
                keys += [self._index(req.hold_id) for req in reqs]
            args: list[Any] = [event]
            for req in reqs:
                args += req.args
            calls.append((script, keys, args))
        answers = self._evalsha(calls)
        index: dict[str, str] = {}
        for ((script, event), reqs), answer in zip(groups.items(), answers, strict=True):
            if isinstance(answer, Exception):
                for req in reqs:
                    req.answer = answer
                continue
            for req, one in zip(reqs, answer, strict=True):
                req.answer = one
                if script == "reserve" and self.cluster and one[0] in ("ok", "same"):
                    hold_id = req.hold_id if one[0] == "ok" else _view_id(one[1])
                    index[self._index(hold_id)] = event
        if index:
            # On a cluster the index lies in other slots than the event: written after
            # the hold, again on every idempotent repeat, so a caller that was answered
            # can always find its hold (see the module docstring).
            self._r.mset_nonatomic(index)

    # -- the port ------------------------------------------------------------------------
    def setup(self, event: SaleEvent) -> None:
        definition = json.dumps(event_to_dict(event), sort_keys=True)
        args: list[Any] = [event.id, definition, len(event.offers)]
        for sku, offer in sorted(event.offers.items()):
            args += [sku, offer.allocation]
        keys = [self._base(event.id)]
        if not self.cluster:
            keys.append(self._events)
        out = self._run("setup", keys, args)
        if self.cluster:  # the registry of event ids lies outside the event's slot
            self._call(self._r.sadd, self._events, event.id)
        if out[0] == "exists":
            check_same_definition(event_from_dict(json.loads(out[1])), event)

    def events(self) -> list[str]:
        return sorted(self._call(self._r.smembers, self._events))

    def load_events(self) -> list[SaleEvent]:
        out = []
        for event in self.events():
            text = self._call(self._r.get, self._base(event) + ":def")
            if text is not None:
                out.append(event_from_dict(json.loads(text)))
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
            sent = [
                (i, rnd.add("reserve", event, args, hold_id)) for i, event, hold_id, args in encoded
            ]

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
        return self._by_hold_unit("pay", requests, _pay_args, _paid)

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
        out = self._run("expire", [self._base(event)], [_us(now), now.isoformat(), limit])
        return [_hold_from_view(flat) for flat in out]

    def hold(self, hold_id: str) -> Hold | None:
        event = self._call(self._r.get, self._index(hold_id))
        if event is None:
            return None
        view = self._call(self._r.hmget, f"{self._base(event)}:h:{hold_id}", _VIEW)
        return None if view[0] is None else _hold_from_view(view)

    def holds(self, event: str) -> Iterator[Hold]:
        found: dict[str, Hold] = {}
        cursor = "0"
        while True:  # one script call per page of holds (SSCAN: no long block)
            cursor, *views = self._run("holds", [self._base(event)], [cursor, 1000])
            for view in views:
                if view[0] is not None:
                    hold = _hold_from_view(view)
                    found[hold.id] = hold
            if cursor == "0":
                break
        return iter(sorted(found.values(), key=lambda h: (h.created_at, h.id)))

    def stock(self, event: str) -> dict[str, StockLevel]:
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
        base = self._base(event)
        lu, la, ou, oa = (_pairs(flat) for flat in self._run("totals", [base], []))
        lines: dict[Any, list[int]] = {
            tuple(k.split(SEP)): [int(v), int(la.get(k, 0))] for k, v in lu.items()
        }
        orders: dict[Any, list[int]] = {
            tuple(k.split(SEP)): [int(v), int(oa.get(k, 0))] for k, v in ou.items()
        }
        return Totals(lines, orders)

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
    raise AssertionError(f"{action}: the script answered {answer!r}")


def _paid(req: PayRequest, answer: list[Any]) -> Result:
    match answer:
        case ["amount", amount, currency]:
            held = Money(int(amount), currency)
            return InvalidRequest("amount", f"payment of {req.amount} for a hold of {held}")
        case ["already-paid", payment_id]:
            return AlreadyPaid(req.hold_id, payment_id)
        case ["hold-expired", flat]:
            return HoldExpired(req.hold_id, _hold_from_view(flat).expires_at)
    return _ended(req.hold_id, "paid", answer)


__all__ = ["RedisStorage", "script_text"]
