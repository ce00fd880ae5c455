"""Reads of the Redis store: events, one hold, an event's holds, stock and totals.

``holds`` and ``totals`` are scripts (one slot, one snapshot per call; ``holds`` pages
through the event's hold ids with SSCAN, so a huge event never blocks the server for
long). A bucketed event's reads sum its buckets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lampo.domain.codec import event_from_json
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold, StockLevel, by_sku, pool_level
from lampo.domain.totals import Totals
from lampo.storage.redis.codec import _VIEW, SEP, _hold_from_view, _pairs, _untag
from lampo.storage.redis.events import Events
from lampo.storage.redis.scripts import Call


class Reads(Events):
    """What the store holds, read without writing."""

    def events(self) -> list[str]:
        return sorted(self._call(self._r.smembers, self._events))

    def load_events(self) -> list[SaleEvent]:
        out = []
        for event in self.events():
            text = self._call(self._r.get, self._base(event) + ":def")
            if text is not None:
                out.append(event_from_json(text))
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
        return by_sku(self.pools(event).values())

    def pools(self, event: str) -> dict[str, StockLevel]:
        n = self._call(self._bucket_count, event)
        if n > 1:
            levels: dict[str, StockLevel] = self._call(self._read_view, event, n).stock()
            return levels
        raw: dict[str, str] = self._call(self._r.hgetall, self._base(event) + ":stock")
        keys = sorted(k[2:] for k in raw if k.startswith("a:"))
        return {
            key: pool_level(
                key,
                int(raw["a:" + key]),
                int(raw["v:" + key]),
                int(raw["h:" + key]),
                int(raw["s:" + key]),
            )
            for key in keys
        }

    def totals(self, event: str) -> Totals:
        n = self._call(self._bucket_count, event)
        calls: list[Call] = [("totals", [self._base(event, b)], []) for b in range(n)]
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
