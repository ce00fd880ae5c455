"""The front door in Redis (``storage.door.DoorStore``), in the event's hash slot.

Every key carries the event's hash tag, as the sale's keys do (``client._base``), so an
event's front door lives beside its stock, and each script touches one slot (a cluster
runs them too). Under ``<base>`` = ``<prefix>{<event>}``:

- ``<base>:dr``: registrations, account -> "at phone device" ("-" for a missing hash);
  ``<base>:di:<kind>``: the identities kept unique, hash -> account;
- ``<base>:dd``: the draw (seed, at, n); ``<base>:dw``: its winners, scored by place;
- ``<base>:dq:<market>``: the queue (seed, pre, frozen, last, since, base, rate);
  ``...:e``: its entries, buyer -> "ticket joined seq [rank]"; ``...:p``: the pre-queue,
  a sorted set of "rank:buyer" (the rank key as 16 hex digits: members sort by rank key,
  then buyer).

Each write is one script (``lua/door_*.lua``) that checks every key it writes before
its first write (a key of another type, a counter that is not one: ``CorruptStore``,
nothing written): registration checks every identity, then writes; a join, the freeze
and an entry's read are ``door_queue.lua``. The freeze is one O(1) step: it closes the
pre-queue and fixes its size P; a member's seq is then its rank in the sorted set + 1
(``ZRANK``), which nothing changes any more.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import redis

from lampo.domain.frontdoor import AdmissionLine
from lampo.storage._door import NO_QUEUE, Draw, Entry, QueueCounts, Registration
from lampo.storage.port import CorruptStore
from lampo.storage.redis.client import RedisClient

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time(value: Any) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


@functools.cache
def _script_text(name: str) -> str:
    return (resources.files("lampo.storage") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


class RedisDoor:
    """``DoorStore`` in the Redis store ``client`` (one server or a cluster)."""

    def __init__(self, client: RedisClient) -> None:
        self._c = client
        # redis-py's Script: EVALSHA, loading the script again when the server lost it
        self._register = client._r.register_script(_script_text("door_register"))
        self._draw = client._r.register_script(_script_text("door_draw"))
        self._queue = client._r.register_script(_script_text("door_queue"))

    def _base(self, event: str) -> str:
        return self._c._base(event)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._c._call(lambda: fn(*args, **kwargs))
        except redis.ResponseError as exc:
            if str(exc).startswith("CORRUPT"):  # a script's guard: nothing written
                raise CorruptStore(f"front door: {exc}; nothing written") from None
            raise

    # -- registrations ---------------------------------------------------------------
    def register(self, event: str, registration: Registration, unique: Sequence[str]) -> str:
        r = registration
        identities = r.identities()
        wanted = [(kind, identities[kind]) for kind in unique if kind in identities]
        record = f"{_us(r.at)} {r.phone_hash or '-'} {r.device_hash or '-'}"
        args: list[Any] = [r.account, record, len(wanted)]
        for kind, value in wanted:
            args += [kind, value]
        found = self._call(self._register, keys=[self._base(event)], args=args)
        return str(found or "")

    def registrations(self, event: str) -> int:
        return int(self._call(self._c._r.hlen, self._base(event) + ":dr"))

    def registered(self, event: str, account: str) -> bool:
        return bool(self._call(self._c._r.hexists, self._base(event) + ":dr", account))

    def export(self, event: str) -> Iterator[Registration]:
        key = self._base(event) + ":dr"
        found = []
        for account, record in self._call(lambda: list(self._c._r.hscan_iter(key, count=1000))):
            at, phone, device = record.split(" ")
            found.append(
                Registration(
                    account,
                    _time(at),
                    None if phone == "-" else phone,
                    None if device == "-" else device,
                )
            )
        return iter(sorted(found, key=lambda r: (r.at, r.account)))

    # -- the lottery ------------------------------------------------------------------
    def draw(self, event: str, draw: Draw) -> Draw:
        args = [draw.seed, _us(draw.at), draw.registrations, *draw.winners]
        if self._call(self._draw, keys=[self._base(event)], args=args):
            return draw
        kept = self.drawn(event)
        assert kept is not None
        return kept

    def drawn(self, event: str) -> Draw | None:
        base = self._base(event)

        def read() -> list[Any]:
            pipe = self._c._r.pipeline(transaction=False)
            pipe.hmget(base + ":dd", "seed", "at", "n")
            pipe.zrange(base + ":dw", 0, -1)
            out: list[Any] = pipe.execute()
            return out

        (seed, at, n), winners = self._call(read)
        if seed is None:
            return None
        return Draw(seed, _time(at), int(n), tuple(winners))

    def has_draw(self, event: str) -> bool:
        return bool(self._call(self._c._r.exists, self._base(event) + ":dd"))

    def won(self, event: str, account: str) -> bool:
        score = self._call(self._c._r.zscore, self._base(event) + ":dw", account)
        return score is not None

    # -- queues ---------------------------------------------------------------------
    def _keys(self, event: str, market: str) -> list[str]:
        q = f"{self._base(event)}:dq:{market}"
        return [q, q + ":e", q + ":p"]

    def seed(self, event: str, market: str, candidate: bytes) -> bytes:
        q = self._keys(event, market)[0]

        def setnx() -> Any:
            pipe = self._c._r.pipeline(transaction=False)
            pipe.hsetnx(q, "seed", candidate.hex())
            pipe.hget(q, "seed")
            return pipe.execute()[1]

        return bytes.fromhex(self._call(setnx))

    @staticmethod
    def _entry(answer: Any) -> Entry:
        ticket, joined, seq = answer
        return Entry(str(ticket), int(seq), _time(joined))

    def join(
        self,
        event: str,
        market: str,
        buyer: str,
        entry: Entry,
        rank: int | None,
        line: AdmissionLine | None = None,
    ) -> Entry:
        args: list[Any] = [
            "join",
            buyer,
            entry.ticket,
            _us(entry.joined),
            "" if rank is None else format(rank, "016x"),
        ]
        args += ["", "", ""] if line is None else [_us(line.since), line.base, line.rate]
        return self._entry(self._call(self._queue, keys=self._keys(event, market), args=args))

    def freeze(self, event: str, market: str) -> int:
        keys = self._keys(event, market)
        return int(self._call(self._queue, keys=keys, args=["freeze", ""]))

    def entry(self, event: str, market: str, buyer: str) -> Entry | None:
        keys = self._keys(event, market)
        answer = self._call(self._queue, keys=keys, args=["entry", buyer])
        return None if answer is None else self._entry(answer)

    def counts(self, event: str, market: str) -> QueueCounts:
        q = self._keys(event, market)[0]
        fields = ("pre", "frozen", "last", "since", "base", "rate")
        pre, frozen, last, since, base, rate = self._call(self._c._r.hmget, q, fields)
        if pre is None and frozen is None and rate is None:
            return NO_QUEUE
        line = None
        if rate is not None:
            line = AdmissionLine(_time(since), int(base), int(rate))
        return QueueCounts(int(pre or 0), frozen == "1", int(last or 0), line)

    def set_line(self, event: str, market: str, line: AdmissionLine) -> None:
        q = self._keys(event, market)[0]
        mapping = {"since": _us(line.since), "base": line.base, "rate": line.rate}
        self._call(self._c._r.hset, q, mapping=mapping)
