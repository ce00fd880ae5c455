"""Setting up and updating events in the Redis store.

``setup`` writes each bucket's share of the allocations, bucket 0 last: its definition is
what makes the event known. ``update`` is one script in the event's slot (update.lua,
which refuses if the definition changed since it was read); with buckets, one script in
bucket 0 too, with journalled transfers before it (the units a lower allocation takes)
and after it (new units spread). See docs/storage-redis-postgres.md, "Updating a live
event".
"""

from __future__ import annotations

from typing import Any

from lampo.domain.codec import event_from_json, event_to_json
from lampo.domain.errors import Unavailable, UnknownEvent
from lampo.domain.event import SaleEvent, StockChange, plan_update
from lampo.storage._buckets import plan_moves, shares
from lampo.storage.port import below_committed, check_same_definition
from lampo.storage.redis.buckets import Buckets

#: Attempts of one update (planned again after another update or, with buckets, after
#: buyers took the units gathered for a lower allocation) before ``Unavailable``.
_UPDATE_ROUNDS = 50


class Events(Buckets):
    """Events set up and updated, with their buckets."""

    def setup(self, event: SaleEvent) -> None:
        definition = event_to_json(event)
        # An event set up before keeps its bucket count; a new one gets this store's.
        known = self._nbs.get(event.id) or self._call(self._probe, {event.id})[event.id]
        n = known or self.buckets
        # Bucket 0 last: its definition is what makes the event known (and routed by its
        # bucket count), so an interrupted setup is simply run again. Once it is known,
        # only bucket 0's definition counts (the others' copies follow it after an update).
        rows = sorted(event.stock_rows().items())  # a row per stock key: per SKU and pool
        for bucket in range(1) if known else range(n - 1, -1, -1):
            args: list[Any] = [event.id, definition, len(rows)]
            for key, allocation in rows:
                args += [key, shares(allocation, n)[bucket]]
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
                case ["short", key, committed] if n == 1:
                    allocation = event.stock_rows().get(key, 0)
                    raise below_committed(event.id, key, allocation, int(committed))
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
            rows = event.stock_rows()
            for key in sorted(lower):
                committed = sum(b[key][2] + b[key][3] for b in view.levels if key in b)
                allocation = rows.get(key, 0)  # a pool the offer dropped keeps a row at 0
                if allocation < committed:
                    raise below_committed(event.id, key, allocation, committed)
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
