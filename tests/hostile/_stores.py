"""A fresh store of one backend, for tests outside the contract suite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lampo.storage import Storage
from tests.contract.conftest import Backend


@contextmanager
def fresh_store(backend: Backend, tmp: Path) -> Iterator[tuple[Storage, str]]:
    """A fresh store of ``backend`` and its URL (skipped loudly, or failed under CI, when
    its server is absent), removed afterwards."""
    url = backend.url(tmp)
    storage = Backend(backend.name, lambda _: url, backend.server).open(tmp)
    try:
        yield storage, url
    finally:
        storage.close()
        if backend.dispose is not None:
            backend.dispose(url)
