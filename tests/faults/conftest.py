"""Fixtures of the fault tests: private servers, and a combined store over them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from lampo.storage import from_url
from lampo.storage.combined import RedisPostgresStorage
from tests.faults._instances import PostgresServer, RedisServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL for the session (each test uses a schema of its own)."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def combined_url(redis: RedisServer, postgres: PostgresServer) -> str:
    """A ``redis+postgresql://`` URL over the private servers, with a fresh schema."""
    ledger = f"{postgres.url}?schema=faults_{uuid.uuid4().hex[:12]}"
    return f"redis+postgresql://127.0.0.1:{redis.port}/0?pg={quote(ledger, safe='')}"


@pytest.fixture
def url(redis_server: RedisServer, postgres_server: PostgresServer) -> str:
    """The URL of a fresh combined store over this test's private servers."""
    return combined_url(redis_server, postgres_server)


@pytest.fixture
def store(url: str) -> Iterator[RedisPostgresStorage]:
    storage = from_url(url)
    assert isinstance(storage, RedisPostgresStorage)
    try:
        yield storage
    finally:
        storage.close()
