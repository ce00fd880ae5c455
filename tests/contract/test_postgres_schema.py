"""The PostgreSQL schema: migrated once, kept across openings, refused when newer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lampo.domain.errors import InvalidRequest
from lampo.services.sales import Sales
from lampo.storage import Storage, from_url
from tests.contract.conftest import _TO_DISPOSE, POSTGRES
from tests.factories import sale_event

pytestmark = pytest.mark.postgres


def open_fresh(tmp_path: Path) -> tuple[Storage, str]:
    """A store on a fresh schema, and the URL that opens that schema again."""
    store = POSTGRES.open(tmp_path)
    return store, _TO_DISPOSE[-1][1]


def sql(store: Storage, query: str) -> Any:
    return store._conn.execute(query)  # type: ignore[attr-defined]


def test_a_second_opening_of_a_schema_keeps_its_state_and_migrates_nothing(
    tmp_path: Path,
) -> None:
    first, url = open_fresh(tmp_path)
    try:
        Sales(first).open(sale_event())
    finally:
        first.close()
    again = from_url(url)
    try:
        assert again.events() == ["fest"]
        assert again.stock("fest")["tv-55"].available == 5
        assert sql(again, "SELECT version FROM lampo_migrations ORDER BY version").fetchall() == [
            (1,),
            (2,),
        ]
    finally:
        again.close()


def test_a_schema_migrated_by_a_newer_lampo_is_refused(tmp_path: Path) -> None:
    store, url = open_fresh(tmp_path)
    try:
        sql(store, "INSERT INTO lampo_migrations (version, name) VALUES (9999, 'future')")
    finally:
        store.close()
    with pytest.raises(InvalidRequest, match="9999"):
        from_url(url)
