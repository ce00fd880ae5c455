"""``RedisStorage``: the Redis store put together from its parts, opened and closed.

Opening completes the transfers a crash left half done (``buckets``) and gives the
orders paid before payment ids had keys theirs (``cluster``), then starts the writer.
"""

from __future__ import annotations

from lampo.storage._batcher import Batcher
from lampo.storage.redis.transitions import Transitions
from lampo.storage.urls import StorageUrl


class RedisStorage(Transitions):
    """All live state in Redis (one server, or a cluster); writes coalesced per batch."""

    def __init__(self, url: str | StorageUrl) -> None:
        super().__init__(url)
        # Transfers that a crash left half done are completed before anything else.
        self._call(self._recover_all)
        self._call(self._bind_paid_orders)
        self._batcher = Batcher(self._commit, self._max_batch, name="lampo-redis-writer")

    def close(self) -> None:
        if self._closed:
            return
        self._batcher.close()  # the callers already queued are answered first
        self._closed = True
        if not self.cluster:  # a cluster's client is shared (see _cluster_client)
            self._r.close()
            self._r.connection_pool.disconnect()

    def __enter__(self) -> RedisStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
