"""Storage backends, chosen by URL through an explicit registry.

``from_url("memory://")``, ``from_url("sqlite:///lampo.db")``. Server backends are
imported lazily so the embedded default needs nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from lampo.domain.errors import InvalidRequest
from lampo.storage.port import Result, Storage

__all__ = ["BACKENDS", "Result", "Storage", "from_url"]


def _memory(url: str) -> Storage:
    from lampo.storage.memory import MemoryStorage

    return MemoryStorage()


def _sqlite(url: str) -> Storage:
    from lampo.storage.sqlite import SqliteStorage

    parts = urlsplit(url)
    path = parts.path
    if parts.netloc:  # sqlite://relative/path.db is a common slip: keep it relative
        path = parts.netloc + path
    elif path.startswith("/") and not path.startswith("//"):
        path = path[1:]  # sqlite:///lampo.db -> lampo.db (relative), sqlite:////abs -> /abs
    elif path.startswith("//"):
        path = path[1:]
    if not path:
        raise InvalidRequest("storage", f"{url!r} names no file")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return SqliteStorage(path, **options)


def _postgres(url: str) -> Storage:
    try:
        from lampo.storage.postgres import PostgresStorage
    except ImportError as exc:
        raise ImportError(f"{url.split(':')[0]}:// needs lampo[postgres] ({exc})") from exc
    return PostgresStorage(url)


def _redis(url: str) -> Storage:
    try:
        from lampo.storage.redis import RedisStorage
    except ImportError as exc:
        raise ImportError(f"{url.split(':')[0]}:// needs lampo[redis] ({exc})") from exc
    return RedisStorage(url)


def _redis_postgres(url: str) -> Storage:
    try:
        from lampo.storage.combined import RedisPostgresStorage
    except ImportError as exc:
        raise ImportError(f"redis+postgresql:// needs lampo[redis,postgres] ({exc})") from exc
    return RedisPostgresStorage(url)


BACKENDS: dict[str, Callable[[str], Storage]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
    "redis": _redis,
    "redis+cluster": _redis,
    "redis+postgresql": _redis_postgres,
}


def from_url(url: str) -> Storage:
    """The backend that ``url`` names; a clear ``InvalidRequest`` for anything else."""
    scheme = urlsplit(url).scheme
    try:
        factory = BACKENDS[scheme]
    except KeyError:
        known = ", ".join(f"{s}://" for s in BACKENDS)
        raise InvalidRequest("storage", f"unknown scheme in {url!r}; known: {known}") from None
    return factory(url)
