"""Hot events in the Redis store: stock buckets, journalled transfers between them, and
balancing.

``buckets=N`` splits each event set up by a store into N stock buckets, each in its own
hash slot (bucket 0 keeps ``{event}``, bucket b the tag ``{event #b}``). A customer is
pinned to one bucket (``_buckets.bucket_of``), so their limits and idempotency records
stay in one slot; each bucket owns a share of every allocation, and a reservation its
bucket cannot serve borrows units from sibling buckets by a journalled two-step transfer
(lend.lua, borrow.lua, settle.lua; recovered on open and by every expiry sweep). Reads sum
the buckets (``_read_view``). An event keeps the bucket count it was set up with (``:nb``
in its bucket 0), whatever the ``buckets`` option of a store that opens it later. See
docs/storage-redis-postgres.md, "Hot events: stock buckets".
"""

from __future__ import annotations

import uuid
from typing import Any

from lampo.domain.errors import Unavailable
from lampo.domain.holds import StockLevel, pool_level
from lampo.storage._buckets import plan_moves
from lampo.storage.redis.client import RedisClient, _Req
from lampo.storage.redis.codec import SEP, _pairs
from lampo.storage.redis.scripts import Call

#: Rounds of balancing (move units, run the refused reservations again) per writer round.
_BALANCE_ROUNDS = 8
#: Reads of a bucketed event's stock before one is known to be a consistent snapshot.
_VIEW_TRIES = 20


class _View:
    """One consistent read of a bucketed event's stock: per bucket, stock key (a SKU's
    pool: ``channels.stock_key``) -> [allocation share, available, held, sold]; and the
    units in transit (lent, not yet received)."""

    __slots__ = ("levels", "transit")

    def __init__(self, levels: list[dict[str, list[int]]], transit: dict[str, int]) -> None:
        self.levels = levels
        self.transit = transit

    def total(self, key: str) -> int:
        """Available units of ``key`` across the buckets, those in transit included."""
        return sum(b[key][1] for b in self.levels if key in b) + self.transit.get(key, 0)

    def stock(self) -> dict[str, StockLevel]:
        """The levels by stock key, the buckets added up."""
        out = {}
        for key in sorted(self.levels[0]):
            a, v, h, s = (sum(b.get(key, [0, 0, 0, 0])[i] for b in self.levels) for i in range(4))
            extra = self.transit.get(key, 0)
            out[key] = pool_level(key, a + extra, v + extra, h, s)
        return out


class Buckets(RedisClient):
    """Stock buckets: consistent reads across them, transfers, recovery, balancing."""

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
        calls: list[Call] = []
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


def _sold_out(answer: Any) -> bool:
    return isinstance(answer, list) and answer[0] == "sold-out"


def _refusal(view: _View, wanted: dict[str, int]) -> list[str] | None:
    """The answer to a request that the buckets together cannot serve, else None
    (``wanted``: units by stock key; the answer names the stock key, as reserve.lua's)."""
    for key in sorted(wanted):
        if key not in view.levels[0]:
            return ["unknown-sku", key]
        total = view.total(key)
        if total < wanted[key]:
            return ["sold-out", key, str(wanted[key]), str(total)]
    return None
