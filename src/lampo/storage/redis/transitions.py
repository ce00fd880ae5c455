"""The transitions of the Redis store: reserve, pay, release, refund, expire.

Every transition is one Lua script. Group commit: a writer thread (``_batcher.Batcher``)
takes the requests of all the callers waiting at that moment and sends them as one
script call per (script, event, stock bucket), all in one pipeline when there are
several, so N concurrent callers share one round trip; each gets its own answer, in
order. ``areserve``/``apay`` queue from the event loop without a thread hop. Requests
are encoded in the caller's thread, not the writer's. Hold expiry reads a sorted set by
deadline (no scan).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import redis

from lampo.domain.channels import split_stock_key
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
from lampo.domain.holds import (
    Hold,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
)
from lampo.domain.money import Money
from lampo.storage._batcher import Batcher
from lampo.storage._buckets import bucket_of
from lampo.storage.port import CorruptStore, KeyRef, Result
from lampo.storage.redis.client import _CONNECTION_ERRORS, _answer, _Req, _Round, _Unit
from lampo.storage.redis.cluster import PaymentIds
from lampo.storage.redis.codec import _encode, _hold_from_view, _tag, _untag, _us, _view_id

#: The scripts whose requests run in their customer's stock bucket.
_BY_CUSTOMER = ("reserve", "recorded")


class Transitions(PaymentIds):
    """The transitions, run by the writer in rounds."""

    _batcher: Batcher[_Round]

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

    def _reserve_unit(self, requests: Sequence[ReserveRequest]) -> _Unit:
        """Encode the requests (in the caller's thread); the unit the writer runs."""
        refused: dict[int, Result] = {}
        encoded: list[tuple[int, str, str, list[Any]]] = []
        for i, req in enumerate(requests):
            args = _encode(req)
            if isinstance(args, LampoError):
                refused[i] = args
            else:
                encoded.append((i, req.hold.event, req.hold.id, args))

        def unit(rnd: _Round) -> Callable[[], list[Result]]:
            sent = []
            for i, event, hold_id, args in encoded:
                req = rnd.add("reserve", event, args, hold_id)
                req.customer = requests[i].hold.customer
                req.wanted = requests[i].hold.units_by_stock()
                sent.append((i, req))

            def finish() -> list[Result]:
                results: dict[int, Result] = dict(refused)
                for i, req in sent:
                    results[i] = _reserved(requests[i], _answer(req))
                return [results[i] for i in range(len(requests))]

            return finish

        return unit

    def _submit(self, make: Callable[[Sequence[Any]], _Unit], items: Sequence[Any]) -> list[Any]:
        """The results of ``items``, run by the writer as the unit ``make`` encodes."""
        return self._batcher.submit(make(items), len(items)) if items else []

    async def _asubmit(
        self, make: Callable[[Sequence[Any]], _Unit], items: Sequence[Any]
    ) -> list[Any]:
        """``_submit`` from the event loop, without a thread hop."""
        return await self._batcher.asubmit(make(items), len(items)) if items else []

    def reserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        return self._submit(self._reserve_unit, requests)

    async def areserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        return await self._asubmit(self._reserve_unit, requests)

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
        return self._submit(self._recorded_unit, keys)

    async def arecorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        return await self._asubmit(self._recorded_unit, keys)

    def _by_hold_unit(
        self, action: str, requests: Sequence[ReleaseRequest | RefundRequest]
    ) -> _Unit:
        """release.lua (``action`` "released") or refund.lua ("refunded") per request."""
        script = "release" if action == "released" else "refund"
        encoded = [(req.hold_id, [req.hold_id, req.now.isoformat()]) for req in requests]

        def unit(rnd: _Round) -> Callable[[], list[Result]]:
            sent = [rnd.add(script, None, a, hold_id) for hold_id, a in encoded]
            return lambda: [
                _ended(hid, action, _answer(s)) for (hid, _), s in zip(encoded, sent, strict=True)
            ]

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
        return self._submit(self._pay_unit, requests)

    async def apay(self, requests: Sequence[PayRequest]) -> list[Result]:
        return await self._asubmit(self._pay_unit, requests)

    def release(self, requests: Sequence[ReleaseRequest]) -> list[Result]:
        return self._submit(functools.partial(self._by_hold_unit, "released"), requests)

    def refund(self, requests: Sequence[RefundRequest]) -> list[Result]:
        return self._submit(functools.partial(self._by_hold_unit, "refunded"), requests)

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
        case ["unknown-sku", key]:
            return UnknownSku(hold.event, split_stock_key(key)[0])
        case ["sold-out", key, requested, available]:
            sku, pool = split_stock_key(key)
            return SoldOut(sku, int(requested), int(available), pool)
        case ["corrupt", problem]:
            raise CorruptStore(f"reserve {hold.id}: {problem}; nothing written")
    raise AssertionError(f"reserve.lua answered {answer!r}")


def _pay_args(req: PayRequest) -> list[Any]:
    amount = req.amount
    args: list[Any] = [req.hold_id, req.payment_id, _us(req.now), req.now.isoformat()]
    args += ["", ""] if amount is None else [amount.amount, amount.currency]
    return args


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
