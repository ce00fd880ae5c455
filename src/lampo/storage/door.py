"""The front door's storage: ``door_store(storage)`` gives the ``DoorStore`` (the port,
``storage/_door.py``) of any opened storage: memory, SQLite, PostgreSQL, Redis, and the
combined Redis+PostgreSQL backend, which keeps the queue in Redis (its live half).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from lampo.storage._door import (
    NO_QUEUE,
    DoorStore,
    Draw,
    Entry,
    QueueCounts,
    Registration,
)
from lampo.storage.port import Storage

__all__ = [
    "NO_QUEUE",
    "DoorStore",
    "Draw",
    "Entry",
    "QueueCounts",
    "Registration",
    "door_store",
]


def door_store(storage: Storage | Any) -> DoorStore:
    """The front door's store over ``storage`` (one per storage object, made once).
    ``redis+postgresql://`` keeps the queue in Redis, the live half."""
    with _STORES_LOCK:  # one per storage: a memory store's queue lives in it
        found = _STORES.get(storage)
        if found is None:
            found = _STORES[storage] = _make(storage)
        return found


_STORES: weakref.WeakKeyDictionary[Any, DoorStore] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def _make(storage: Any) -> DoorStore:
    from lampo.storage.memory import MemoryStorage

    if isinstance(storage, MemoryStorage):
        from lampo.storage.door_memory import MemoryDoor

        return MemoryDoor()
    from lampo.storage.sql.storage import SqlStorage

    if isinstance(storage, SqlStorage):
        from lampo.storage.sql.door import SqlDoor

        return SqlDoor(storage)
    live = getattr(storage, "live", storage)  # redis+postgresql://: its live store
    try:
        from lampo.storage.redis import RedisStorage
    except ImportError:  # no lampo[redis]: then no Redis store either
        RedisStorage = None  # type: ignore[assignment,misc]
    if RedisStorage is not None and isinstance(live, RedisStorage):
        from lampo.storage.redis.door import RedisDoor

        return RedisDoor(live)
    raise TypeError(f"no front door store for {type(storage).__name__}")
