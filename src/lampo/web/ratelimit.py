"""Per-key rate limits (token buckets), in process memory.

Each key (a buyer, a client address) has a bucket of ``burst`` tokens that refills at
``rate`` per second; a request takes one token or is refused with the time until one is
back. State is per process: with ``--workers N`` each worker limits on its own, so the
effective limit is up to N times the setting (put a shared limiter in front for more).
"""

from __future__ import annotations

import time

from lampo.web.problems import RateLimited


class RateLimiter:
    """``rate`` tokens per second, at most ``burst`` saved up. ``rate <= 0`` disables it."""

    def __init__(self, scope: str, rate: float, burst: float, max_keys: int = 200_000) -> None:
        self.scope = scope
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._max_keys = max_keys

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str, now: float | None = None) -> None:
        """Spend one token of ``key``'s bucket, or raise ``RateLimited``."""
        if self.rate <= 0:
            return
        moment = time.monotonic() if now is None else now
        tokens, since = self._buckets.get(key, (self.burst, moment))
        tokens = min(self.burst, tokens + (moment - since) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, moment)
            raise RateLimited(self.scope, (1.0 - tokens) / self.rate)
        self._buckets[key] = (tokens - 1.0, moment)
        if len(self._buckets) > self._max_keys:
            self._prune(moment)

    def _prune(self, now: float) -> None:
        """Forget buckets that are full again (they carry no information)."""
        full_after = self.burst / self.rate
        for key, (_, since) in list(self._buckets.items()):
            if now - since >= full_after:
                del self._buckets[key]
        while len(self._buckets) > self._max_keys:  # still too many: drop the oldest
            del self._buckets[next(iter(self._buckets))]
