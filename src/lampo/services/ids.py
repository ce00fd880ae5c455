"""Hold ids: 128 random bits from the operating system as 32 hex digits.

The format is the one ``uuid.uuid4().hex`` gave (32 lowercase hex digits; the version
and variant digits of a UUID are no longer fixed), at a fraction of its cost: one
``os.urandom`` call fills a pool of 256 ids instead of one call and one ``UUID`` object per
id. The ids are as unguessable as the operating system's random bytes.

Thread-safe: ``list.pop`` and ``list.extend`` are atomic, and every id comes from bytes
that no other id was sliced from. Fork-safe: a child process starts with an empty pool
(``os.register_at_fork``), so it never hands out an id its parent has drawn (the HTTP
server forks its workers after the app is imported).
"""

from __future__ import annotations

import os

_REFILL_BYTES = 4096  # one os.urandom call per 256 ids
_ID_DIGITS = 32

_pool: list[str] = []


def new_id() -> str:
    """A fresh random id of 32 lowercase hex digits."""
    try:
        return _pool.pop()
    except IndexError:
        pass
    digits = os.urandom(_REFILL_BYTES).hex()
    _pool.extend([digits[i : i + _ID_DIGITS] for i in range(_ID_DIGITS, len(digits), _ID_DIGITS)])
    return digits[:_ID_DIGITS]


def _drop_pool() -> None:
    """In a forked child: forget the ids drawn by the parent (the parent may hand them
    out too)."""
    _pool.clear()


os.register_at_fork(after_in_child=_drop_pool)
