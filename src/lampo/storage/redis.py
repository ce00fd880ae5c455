"""``redis://host:port/db``: the live stock in Redis, every transition one Lua script.

The scripts (``lua/*.lua``, each with ``lua/_lib.lua`` in front) are loaded by SHA
(EVALSHA, reloaded by themselves after a server restart). A batch of requests of one
event is one script call: Redis runs a script alone, so each request is checked and
written with nothing in between, and the whole batch costs one round trip. Every key of
an event carries the hash tag ``{event}``, so one event's keys share a hash slot. Hold
expiry reads a sorted set by deadline (no scan).

Durability is the server's: an answer means the script ran, and it survives a crash only
as far as the server's AOF policy says (``appendfsync always`` for guarantee 5; see
docs/architecture.md). The hold index (hold id -> event) and the set of event ids are
two keys outside the events' slots: this backend is for one Redis server.

Query option (removed before connecting): ``prefix`` (default ``lampo:``), put in front
of every key, so several stores can share one server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.commands.core import Script

from lampo.domain.codec import event_from_dict, event_to_dict
from lampo.domain.errors import (
    AlreadyPaid,
    HoldExpired,
    IdempotencyConflict,
    IllegalTransition,
    InvalidRequest,
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
from lampo.storage.port import Result, check_same_definition

SEP = "\x1f"  # between the parts of a counter or totals key
RS = "\x1e"  # after each field of a request sent to reserve.lua
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCRIPTS = ("setup", "reserve", "pay", "release", "expire", "refund")


def script_text(name: str) -> str:
    """The full text of one shipped script: the shared library, then the script."""
    folder = resources.files("lampo.storage") / "lua"
    lib = (folder / "_lib.lua").read_text(encoding="utf-8")
    return lib + "\n" + (folder / f"{name}.lua").read_text(encoding="utf-8")


def _us(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _iso(when: datetime | None) -> str:
    return "" if when is None else when.isoformat()


def _when(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _hold_fields(hold: Hold, counts_event: bool) -> list[str]:
    """The hold's hash, flat: its body and what the scripts need, precomputed."""
    ch = hold.channel
    body = {
        "id": hold.id,
        "event": hold.event,
        "customer": hold.customer,
        "market": hold.market,
        "channel": [ch.kind.value, ch.name, ch.referral],
        "currency": hold.currency,
        "lines": [[ln.sku, ln.quantity, ln.unit_price] for ln in hold.lines],
        "created_at": hold.created_at.isoformat(),
        "expires_at": hold.expires_at.isoformat(),
    }
    ok = SEP.join(order_key(hold))
    amount = hold.amount.amount
    fields = {
        "body": json.dumps(body, separators=(",", ":")),
        "state": hold.state.value,
        "payment_id": hold.payment_id,
        "paid_at": _iso(hold.paid_at),
        "ended_at": _iso(hold.ended_at),
        "refunded_at": _iso(hold.refunded_at),
        "exp": str(_us(hold.expires_at)),
        "cust": hold.customer,
        "units": str(hold.units),
        "evc": "1" if counts_event else "0",
        "cur": hold.currency,
        "ok": ok,
        "amt": str(amount),
        "namt": str(-amount),
        "nl": str(len(hold.lines)),
    }
    folded = _folded(hold)
    fields["n"] = str(len(folded))
    for i, (sku, qty) in enumerate(folded, 1):
        fields[f"s{i}"] = sku
        fields[f"q{i}"] = str(qty)
    for i, line in enumerate(hold.lines, 1):
        fields[f"lk{i}"] = line.sku + SEP + ok
        fields[f"lu{i}"] = str(line.quantity)
        fields[f"la{i}"] = str(line.amount)
        fields[f"nla{i}"] = str(-line.amount)
    return [x for pair in fields.items() for x in pair]


def _folded(hold: Hold) -> list[tuple[str, int]]:
    wanted: dict[str, int] = {}
    for line in hold.lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    return sorted(wanted.items())


def _hold_from_flat(flat: Sequence[str]) -> Hold:
    f = dict(zip(flat[::2], flat[1::2], strict=True))
    body = json.loads(f["body"])
    kind, name, referral = body["channel"]
    created, expires = _when(body["created_at"]), _when(body["expires_at"])
    assert created is not None
    assert expires is not None
    return Hold(
        id=body["id"],
        event=body["event"],
        customer=body["customer"],
        market=body["market"],
        channel=Channel(ChannelKind(kind), name, referral),
        lines=tuple(HoldLine(s, q, p) for s, q, p in body["lines"]),
        currency=body["currency"],
        created_at=created,
        expires_at=expires,
        state=HoldState(f["state"]),
        payment_id=f["payment_id"],
        paid_at=_when(f["paid_at"]),
        ended_at=_when(f["ended_at"]),
        refunded_at=_when(f["refunded_at"]),
    )


def _split_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in reversed(query) if k == "prefix"), "lampo:")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, "")), prefix


class RedisStorage:
    """All state in one Redis server; each batch of one event is one script call."""

    def __init__(self, url: str) -> None:
        conn_url, self.prefix = _split_url(url)
        if "{" in self.prefix or "}" in self.prefix:
            raise InvalidRequest("prefix", "may not contain { or } (they make the hash tag)")
        try:
            # Blocking: a burst of callers waits for a connection rather than failing.
            pool = redis.BlockingConnectionPool.from_url(
                conn_url, decode_responses=True, socket_timeout=10, max_connections=64, timeout=30
            )
            self._r: redis.Redis = redis.Redis(connection_pool=pool)
            self._r.ping()
        except (redis.RedisError, ValueError) as exc:
            raise Unavailable(f"redis: {exc}") from None
        self._scripts: dict[str, Script] = {
            name: self._r.register_script(script_text(name)) for name in SCRIPTS
        }
        self._index = self.prefix + "holds"
        self._events = self.prefix + "events"
        self._closed = False

    def _base(self, event: str) -> str:
        return f"{self.prefix}{{{event}}}"

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        if self._closed:
            raise Unavailable("storage is closed")
        try:
            return self._scripts[script](keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable(f"redis: {exc}") from None

    def _call(self, fn: Any, *args: Any) -> Any:
        if self._closed:
            raise Unavailable("storage is closed")
        try:
            return fn(*args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable(f"redis: {exc}") from None

    # -- the port ------------------------------------------------------------------------
    def setup(self, event: SaleEvent) -> None:
        definition = json.dumps(event_to_dict(event), sort_keys=True)
        args: list[Any] = [event.id, definition, len(event.offers)]
        for sku, offer in sorted(event.offers.items()):
            args += [sku, offer.allocation]
        out = self._run("setup", [self._base(event.id), self._events], args)
        if out[0] == "exists":
            check_same_definition(event_from_dict(json.loads(out[1])), event)

    def events(self) -> list[str]:
        return sorted(self._call(self._r.smembers, self._events))

    def load_events(self) -> list[SaleEvent]:
        out = []
        for event in self.events():
            text = self._call(self._r.get, self._base(event) + ":def")
            out.append(event_from_dict(json.loads(text)))
        return out

    def reserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        results: list[Result | None] = [None] * len(requests)
        by_event: dict[str, tuple[list[int], list[Any]]] = {}
        for i, req in enumerate(requests):
            hold = req.hold
            if not hold.lines:
                results[i] = InvalidRequest("lines", "a hold needs at least one line")
                continue
            if len(req.sku_limits) != len(hold.lines):
                results[i] = InvalidRequest("sku_limits", "one limit per line")
                continue
            limits: dict[str, int | None] = {}
            for line, limit in zip(hold.lines, req.sku_limits, strict=True):
                limits[line.sku] = limit
            folded = _folded(hold)
            elimit = "" if req.event_limit is None else str(req.event_limit)
            parts = [req.key, req.fingerprint, hold.id, hold.customer, elimit]
            parts += [str(hold.units), str(_us(hold.expires_at)), str(len(folded))]
            for sku, qty in folded:
                limit = limits[sku]
                parts += [sku, str(qty), "" if limit is None else str(limit)]
            parts += _hold_fields(hold, req.event_limit is not None)
            idx, flat = by_event.setdefault(hold.event, ([], []))
            idx.append(i)
            flat.append(RS.join(parts) + RS)
        for event, (idx, flat) in by_event.items():
            out = self._run("reserve", [self._base(event), self._index], [event, *flat])
            for i, answer in zip(idx, out, strict=True):
                results[i] = self._reserved(requests[i], answer)
        return [r for r in results if r is not None]

    @staticmethod
    def _reserved(req: ReserveRequest, answer: list[Any]) -> Result:
        hold = req.hold
        match answer:
            case ["ok"]:
                return hold
            case ["same", flat]:
                return _hold_from_flat(flat)
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

    async def areserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        return await asyncio.to_thread(self.reserve, requests)

    async def apay(self, requests: Sequence[PayRequest]) -> list[Result]:
        return await asyncio.to_thread(self.pay, requests)

    def _by_event(
        self, hold_ids: Sequence[str], results: list[Result | None]
    ) -> dict[str, list[int]]:
        """Request indexes grouped by their hold's event; unknown holds answered here."""
        events = self._call(self._r.hmget, self._index, list(hold_ids)) if hold_ids else []
        groups: dict[str, list[int]] = {}
        for i, (hold_id, event) in enumerate(zip(hold_ids, events, strict=True)):
            if event is None:
                results[i] = UnknownHold(hold_id)
            else:
                groups.setdefault(event, []).append(i)
        return groups

    @staticmethod
    def _ended(hold_id: str, action: str, answer: list[Any]) -> Result:
        match answer:
            case ["ok", flat] | ["same", flat]:
                return _hold_from_flat(flat)
            case ["unknown-hold"]:
                return UnknownHold(hold_id)
            case ["illegal-transition", state]:
                return IllegalTransition(hold_id, state, action)
        raise AssertionError(f"{action}: the script answered {answer!r}")

    def pay(self, requests: Sequence[PayRequest]) -> list[Result]:
        results: list[Result | None] = [None] * len(requests)
        for event, idx in self._by_event([r.hold_id for r in requests], results).items():
            args: list[Any] = [len(idx)]
            for i in idx:
                req = requests[i]
                amount = req.amount
                args += [req.hold_id, req.payment_id, _us(req.now), req.now.isoformat()]
                args += ["", ""] if amount is None else [amount.amount, amount.currency]
            out = self._run("pay", [self._base(event)], args)
            for i, answer in zip(idx, out, strict=True):
                results[i] = self._paid(requests[i], answer)
        return [r for r in results if r is not None]

    def _paid(self, req: PayRequest, answer: list[Any]) -> Result:
        match answer:
            case ["amount", amount, currency]:
                held = Money(int(amount), currency)
                return InvalidRequest("amount", f"payment of {req.amount} for a hold of {held}")
            case ["already-paid", payment_id]:
                return AlreadyPaid(req.hold_id, payment_id)
            case ["hold-expired"]:
                hold = self.hold(req.hold_id)
                assert hold is not None
                return HoldExpired(req.hold_id, hold.expires_at)
        return self._ended(req.hold_id, "paid", answer)

    def _simple(
        self, script: str, action: str, requests: Sequence[ReleaseRequest | RefundRequest]
    ) -> list[Result]:
        results: list[Result | None] = [None] * len(requests)
        for event, idx in self._by_event([r.hold_id for r in requests], results).items():
            args: list[Any] = [len(idx)]
            for i in idx:
                args += [requests[i].hold_id, requests[i].now.isoformat()]
            out = self._run(script, [self._base(event)], args)
            for i, answer in zip(idx, out, strict=True):
                results[i] = self._ended(requests[i].hold_id, action, answer)
        return [r for r in results if r is not None]

    def release(self, requests: Sequence[ReleaseRequest]) -> list[Result]:
        return self._simple("release", "released", requests)

    def refund(self, requests: Sequence[RefundRequest]) -> list[Result]:
        return self._simple("refund", "refunded", requests)

    def expire_due(self, event: str, now: datetime, limit: int = 1000) -> list[Hold]:
        out = self._run("expire", [self._base(event)], [_us(now), now.isoformat(), limit])
        return [_hold_from_flat(flat) for flat in out]

    def hold(self, hold_id: str) -> Hold | None:
        event = self._call(self._r.hget, self._index, hold_id)
        if event is None:
            return None
        flat = self._call(self._r.hgetall, f"{self._base(event)}:h:{hold_id}")
        return _hold_from_flat(_flatten(flat)) if flat else None

    def holds(self, event: str) -> Iterator[Hold]:
        base = self._base(event)
        ids = sorted(self._call(self._r.smembers, base + ":ids"))
        pipe = self._r.pipeline(transaction=True)
        for hold_id in ids:
            pipe.hgetall(f"{base}:h:{hold_id}")
        rows = self._call(pipe.execute)
        holds = [_hold_from_flat(_flatten(row)) for row in rows]
        return iter(sorted(holds, key=lambda h: (h.created_at, h.id)))

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
        pipe = self._r.pipeline(transaction=True)  # MULTI: one snapshot of the four hashes
        for suffix in (":lu", ":la", ":ou", ":oa"):
            pipe.hgetall(base + suffix)
        lu, la, ou, oa = self._call(pipe.execute)
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
        self._closed = True
        self._r.close()
        self._r.connection_pool.disconnect()

    def __enter__(self) -> RedisStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _flatten(row: dict[str, str] | list[str]) -> list[str]:
    if isinstance(row, dict):
        return [x for pair in row.items() for x in pair]
    return list(row)


__all__ = ["RedisStorage", "script_text"]
