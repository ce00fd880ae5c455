"""Idempotent calls at the HTTP edge: one process's memory of answers, by key.

The rule (docs/architecture.md, "The idempotency rule"): storage's durable record of a key
is the only source of truth; a cache may hold only answers that record would give, and
never a refusal storage did not make for that exact key and body. So:

- ``ReplayCache`` keeps successes only (2xx: the call's effect is in storage, under the key
  where storage keeps one), and answers only a byte-identical body. A refusal changed
  nothing, so it is not kept: its retry is evaluated again, and storage, which checks the
  key's record first, answers it. Another body under a remembered key is not refused here
  either: storage says whether it is the same request (a reserve's fingerprint) or a
  conflict, so a restart, which empties this memory, never changes an answer.
- ``Calls`` also holds the calls in flight: an identical request (same key, same body)
  that comes while the first is running waits for it and gets exactly its answer, refusal
  included; a request with another body under that key waits for the first to finish and
  is then evaluated as usual.

Keys are ``(principal, method, path, idempotency key)``; one ``Calls`` per event loop (an
ASGI worker has one). Across workers, storage's record makes both calls get one hold.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

#: An answer: (status, body, headers). Only bytes, numbers and tuples of bytes, so the
#: garbage collector stops tracking a cached answer once a collection or two have seen it:
#: a full cache (100,000 entries) adds nothing to the full collections, which would walk
#: a Python object per entry again and again.
Answer = tuple[int, bytes, tuple[tuple[bytes, bytes], ...]]
Key = tuple[str, ...]

REPLAYED = (b"idempotent-replayed", b"true")


def replayed(answer: Answer) -> Answer:
    """``answer`` given again to another call: marked ``Idempotent-Replayed: true``."""
    status, body, headers = answer
    return status, body, (*headers, REPLAYED)


def durable(answer: Answer) -> bool:
    """Whether a call's answer may be remembered for its key: a success (2xx)."""
    return 200 <= answer[0] < 300


class ReplayCache:
    """The first success under each key, for byte-identical replays (``entries`` at most,
    each for ``seconds``; the oldest goes first)."""

    def __init__(self, entries: int, seconds: float) -> None:
        self._items: OrderedDict[Key, tuple[bytes, float, Answer]] = OrderedDict()
        self._entries = entries
        self._seconds = seconds

    def get(self, key: Key, fingerprint: bytes) -> Answer | None:
        """The remembered answer when ``fingerprint`` is the body it answered; None when
        nothing is remembered or another body comes (storage decides that one)."""
        hit = self._items.get(key)
        if hit is None:
            return None
        first, at, answer = hit
        if time.monotonic() - at > self._seconds:
            del self._items[key]
            return None
        return answer if first == fingerprint else None

    def put(self, key: Key, fingerprint: bytes, answer: Answer) -> None:
        """Remember ``answer`` to the body ``fingerprint``; only a ``durable`` one."""
        if not durable(answer):
            raise ValueError(f"a {answer[0]} answer is not remembered as a key's reply")
        items = self._items
        items[key] = (fingerprint, time.monotonic(), answer)
        items.move_to_end(key)
        if len(items) > self._entries:
            items.popitem(last=False)


class Calls:
    """Run each call once per key and body: remembered successes, and calls in flight."""

    def __init__(self, entries: int, seconds: float) -> None:
        self.replays = ReplayCache(entries, seconds)
        #: Per key: the body's fingerprint and the answer to come (None: the call ended
        #: without one, an unexpected error or a cancellation).
        self._flights: dict[Key, tuple[bytes, asyncio.Future[Answer | None]]] = {}

    async def once(
        self, key: Key, fingerprint: bytes, run: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        """The answer to the body ``fingerprint`` under ``key``: remembered, shared with
        an identical call in flight, or ``run()``'s (remembered if ``durable``)."""
        while True:
            hit = self.replays.get(key, fingerprint)
            if hit is not None:
                return replayed(hit)
            flight = self._flights.get(key)
            if flight is None:
                break
            first, future = flight
            # shielded: a waiter that goes away does not cancel the first call's answer
            shared = await asyncio.shield(future)
            if shared is not None and first == fingerprint:
                return replayed(shared)
            # another body, or no answer: evaluated as usual now the first is done
        future = asyncio.get_running_loop().create_future()
        self._flights[key] = (fingerprint, future)
        answer: Answer | None = None
        try:
            answer = await run()
            if durable(answer):
                self.replays.put(key, fingerprint, answer)
            return answer
        finally:
            # out of the table before the waiters wake, so none of them finds it again
            del self._flights[key]
            future.set_result(answer)
