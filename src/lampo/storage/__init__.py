"""Storage backends, chosen by URL through an explicit registry.

``from_url("memory://")``, ``from_url("sqlite:///lampo.db")``. The URL is checked in full
first (``storage.urls``: every part and option against its backend's declaration), so a
malformed one is refused before anything connects or opens a file. Server backends are
imported lazily so the embedded default needs nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable

from lampo.storage import urls
from lampo.storage.port import Result, Storage
from lampo.storage.urls import StorageUrl

__all__ = ["BACKENDS", "Result", "Storage", "from_url"]


def _memory(url: StorageUrl) -> Storage:
    from lampo.storage.memory import MemoryStorage

    return MemoryStorage()


def _sqlite(url: StorageUrl) -> Storage:
    from lampo.storage.sqlite import SqliteStorage

    return SqliteStorage(url.address.path, url.options)


def _postgres(url: StorageUrl) -> Storage:
    try:
        from lampo.storage.postgres import PostgresStorage
    except ImportError as exc:
        raise ImportError(f"{url.scheme}:// needs lampo[postgres] ({exc})") from exc
    return PostgresStorage(url)


def _redis(url: StorageUrl) -> Storage:
    try:
        from lampo.storage.redis import RedisStorage
    except ImportError as exc:
        raise ImportError(f"{url.scheme}:// needs lampo[redis] ({exc})") from exc
    return RedisStorage(url)


def _redis_postgres(url: StorageUrl) -> Storage:
    try:
        from lampo.storage.combined import RedisPostgresStorage
    except ImportError as exc:
        raise ImportError(f"redis+postgresql:// needs lampo[redis,postgres] ({exc})") from exc
    return RedisPostgresStorage(url)


#: How each backend is opened, by the backend names of ``urls.BACKENDS``.
BACKENDS: dict[str, Callable[[StorageUrl], Storage]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "redis": _redis,
    "redis+cluster": _redis,
    "redis+postgresql": _redis_postgres,
}


def from_url(url: str) -> Storage:
    """The backend that ``url`` names; a clear ``InvalidRequest`` for anything else."""
    checked = urls.parse(url)
    return BACKENDS[checked.backend.name](checked)
