"""Fresh, isolated stores on the test servers, and their removal.

Each PostgreSQL store gets its own schema and each Redis store its own key prefix, so
tests running at once never see each other. Where the servers are:
``LAMPO_TEST_POSTGRES_URL`` and ``LAMPO_TEST_REDIS_URL`` (``.ci/run`` sets both).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

POSTGRES = os.environ.get("LAMPO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("LAMPO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _option(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query)[name][-1]


def _with(url: str, **options: str) -> str:
    sep = "&" if urlsplit(url).query else "?"
    return url + sep + "&".join(f"{k}={v}" for k, v in options.items())


def postgres_url(tmp: Path) -> str:
    # No commit waits for its WAL flush: the tests prove atomicity and isolation, not
    # PostgreSQL's durability, and each fresh schema is a burst of DDL commits.
    return _with(
        POSTGRES,
        schema=f"lampo_test_{uuid.uuid4().hex[:16]}",
        options="-csynchronous_commit%3Doff",
    )


def drop_postgres_schema(url: str) -> None:
    import psycopg
    from psycopg import sql

    schema = _option(url, "schema")
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def redis_url(tmp: Path) -> str:
    return _with(REDIS, prefix=f"lampo-test-{uuid.uuid4().hex[:16]}:")


def drop_redis_prefix(url: str) -> None:
    import redis

    prefix = _option(url, "prefix")
    client = redis.Redis.from_url(REDIS)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def redis_postgres_url(tmp: Path) -> str:
    """A ``redis+postgresql://`` store: a fresh Redis prefix and a fresh PG schema."""
    live = redis_url(tmp)
    return "redis+postgresql" + live[len("redis") :] + "&pg=" + quote(postgres_url(tmp), safe="")


def drop_redis_postgres(url: str) -> None:
    from lampo.storage.combined import split_url

    live, ledger = split_url(url)
    try:
        drop_redis_prefix(live)
    finally:
        drop_postgres_schema(ledger)
