"""Fixtures of the HTTP tests: one real server per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e._http import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("http")) as srv:
        yield srv
