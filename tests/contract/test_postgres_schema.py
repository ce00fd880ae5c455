"""The PostgreSQL schema: migrated once, kept across openings, refused when newer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from lampo.domain.errors import IdempotencyConflict, InvalidRequest
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import Storage, from_url
from lampo.storage.sql.migrations import migrations
from tests.contract.conftest import _TO_DISPOSE, POSTGRES, snapshot
from tests.factories import NOW, sale_event

pytestmark = pytest.mark.postgres


def open_fresh(tmp_path: Path) -> tuple[Storage, str]:
    """A store on a fresh schema, and the URL that opens that schema again."""
    store = POSTGRES.open(tmp_path)
    return store, _TO_DISPOSE[-1][1]


#: The version of every migration shipped, as ``lampo_migrations`` lists them.
SHIPPED = [(v,) for v, _, _ in migrations("postgres")]


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
        versions = sql(again, "SELECT version FROM lampo_migrations ORDER BY version")
        assert versions.fetchall() == SHIPPED
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


def test_a_schema_1_database_is_migrated_and_its_first_payment_keeps_the_id(
    tmp_path: Path,
) -> None:
    """Migration 2 on a database as schema 1 left it: no ``payments`` table, and one
    payment id (psp-1) on two orders, which schema 1 allowed."""
    store, url = open_fresh(tmp_path)
    clock = ManualClock(NOW)
    try:
        sales = Sales(store, clock=clock)
        sales.open(sale_event())
        alice, bruno, dario = (
            sales.reserve("fest", c, "CN", {"phone-red": 1}) for c in ("alice", "bruno", "dario")
        )
        sales.pay(alice.id, "psp-1")
        clock.advance(5)
        sales.pay(bruno.id, "psp-b")
        sql(store, "DROP TABLE payments")
        sql(store, "DELETE FROM lampo_migrations WHERE version = 2")
        sql(store, f"UPDATE holds SET payment_id = 'psp-1' WHERE id = '{bruno.id}'")
    finally:
        store.close()
    again = from_url(url)
    try:
        versions = sql(again, "SELECT version FROM lampo_migrations ORDER BY version")
        assert versions.fetchall() == SHIPPED
        assert sql(again, "SELECT payment_id, hold_id FROM payments").fetchall() == [
            ("psp-1", alice.id)
        ]
        sales = Sales(again, clock=clock)
        before = snapshot(again, "fest")
        assert sales.pay(bruno.id, "psp-1").id == bruno.id  # as schema 1 left it
        with pytest.raises(IdempotencyConflict):
            sales.pay(dario.id, "psp-1")
        assert snapshot(again, "fest") == before
        with pytest.raises(psycopg.errors.UniqueViolation):  # the key, under the check
            sql(again, f"INSERT INTO payments VALUES ('psp-1', '{dario.id}')")
    finally:
        again.close()
