"""Stock buckets of a hot event (``redis://...?buckets=N``): the pure rules.

A bucketed event's state is split into ``N`` buckets, each in its own hash slot. A
customer lives in one bucket, chosen by a stable hash of the customer id, so every limit
and idempotency record of theirs stays in one slot. Each bucket owns a share of every
SKU's allocation; ``plan_moves`` says which units to move between buckets when a
customer's bucket runs short. See docs/storage-redis-postgres.md, "Hot events: stock
buckets", for the transfer protocol and its recovery.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

#: Most stock buckets of one event (the ``buckets`` URL option, see ``storage/urls.py``).
MAX_BUCKETS = 64


def bucket_of(customer: str, buckets: int) -> int:
    """The bucket of ``customer`` among ``buckets``: stable across processes and runs
    (CRC-32 of the UTF-8 id, not Python's salted ``hash``)."""
    if buckets == 1:
        return 0
    return zlib.crc32(customer.encode()) % buckets


def shares(allocation: int, buckets: int) -> list[int]:
    """``allocation`` split over ``buckets`` as evenly as integers allow; the shares sum
    to ``allocation`` exactly (the first ``allocation % buckets`` get one more)."""
    base, extra = divmod(allocation, buckets)
    return [base + (1 if b < extra else 0) for b in range(buckets)]


def plan_moves(
    available: list[dict[str, int]], to: int, wanted: Mapping[str, int]
) -> list[tuple[int, str, int]] | None:
    """Moves ``(from bucket, sku, units)`` that let bucket ``to`` place a request for
    ``wanted``, planned on ``available`` (units per SKU, per bucket).

    On success ``available`` is updated as if the moves were made and the request placed
    (so the next request of the same round plans on what is left) and the moves are
    returned; ``None`` (and ``available`` unchanged) when the buckets hold too few of
    some SKU. Each lender, the richest first, gives at least what is still needed and up
    to half of what it has, so a bucket that borrows keeps some slack and two buckets do
    not pass units back and forth one at a time.
    """
    for sku, q in wanted.items():
        if sum(a.get(sku, 0) for a in available) < q:
            return None
    moves: list[tuple[int, str, int]] = []
    mine = available[to]
    for sku in sorted(wanted):
        need = wanted[sku] - mine.get(sku, 0)
        if need > 0:
            lenders = sorted(
                (b for b in range(len(available)) if b != to and available[b].get(sku, 0) > 0),
                key=lambda b: (-available[b][sku], b),
            )
            for b in lenders:
                if need <= 0:
                    break
                have = available[b][sku]
                k = min(have, max(need, have // 2))
                available[b][sku] = have - k
                mine[sku] = mine.get(sku, 0) + k
                need -= k
                moves.append((b, sku, k))
        mine[sku] = mine.get(sku, 0) - wanted[sku]
    return moves
