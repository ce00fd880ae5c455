"""``lampo reconcile``: check or repair the live store (Redis) against the record
(PostgreSQL) of a ``redis+postgresql://`` storage. See docs/storage-redis-postgres.md."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lampo.bootstrap import open_storage
from lampo.cli.options import setting_option
from lampo.config import STORAGE
from lampo.domain.errors import InvalidRequest
from lampo.services.reconcile import Reconciliation, reconcile
from lampo.storage import urls


def reconcile_command(
    storage: Annotated[
        str | None,
        setting_option(
            STORAGE,
            required=True,
            help="A redis+postgresql://HOST:PORT/DB?pg=<URL-encoded postgresql URL> storage. "
            + urls.cli_help(),
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Report the differences, write nothing.")
    ] = False,
) -> None:
    """Rebuild or check Redis from PostgreSQL after a Redis loss (run with lampo serve
    stopped). Exit 1 if --check finds a difference, or if one is left unrepaired."""
    from lampo.storage.combined import RedisPostgresStorage

    url = STORAGE.lookup(storage, os.environ)  # no default: which store to rebuild is asked
    if url is None:
        raise typer.BadParameter(
            f"reconcile needs a redis+postgresql:// storage, from the flag or {STORAGE.env}",
            param_hint=f"'{STORAGE.option}'",
        )
    store = open_storage(url)
    try:
        if not isinstance(store, RedisPostgresStorage):
            raise InvalidRequest("storage", "reconcile needs a redis+postgresql:// storage")
        found = reconcile(store.live, store.ledger, check=check)
    finally:
        store.close()
    render(Console(), found)
    raise typer.Exit(0 if found.ok else 1)


def render(console: Console, found: Reconciliation) -> None:
    verb = "checked" if found.check else "reconciled"
    console.print(
        f"{verb} {found.events} event(s), {found.orders} order(s) on record: "
        f"{len(found.differences)} difference(s), {len(found.unresolved)} not repaired"
    )
    if not found.differences:
        return
    table = Table("event", "difference", "subject", "detail", "repaired")
    for d in found.differences:
        table.add_row(
            *map(Text, (d.event, d.kind, d.subject, d.detail)), "yes" if d.repaired else "no"
        )
    console.print(table)


__all__ = ["reconcile_command", "render"]
