"""``lampo stock`` and ``lampo expire``: the stock of the events in storage, and one run
of the expiry sweeper."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lampo.bootstrap import Config, open_storage
from lampo.cli.options import StorageOpt
from lampo.domain.errors import UnknownEvent
from lampo.services.sales import Sales
from lampo.storage import Storage
from lampo.storage.urls import redact


def stock(
    event: Annotated[str | None, typer.Argument(help="Event id (default: every event).")] = None,
    storage: StorageOpt = None,
) -> None:
    """Show the stock per SKU: allocation, available, held, sold."""
    config = Config.from_env(storage_url=storage)
    store = open_storage(config.storage_url, must_exist=True)
    try:
        events = _events(store, event)
        console = Console()
        if not events:
            console.print(Text(f"no sale events in {redact(config.storage_url)}"))
        for ev in events:
            table = Table(title=Text(f"Stock of {ev}"), title_justify="left")
            table.add_column("SKU")
            for col in ("allocation", "available", "held", "sold"):
                table.add_column(col, justify="right")
            for sku, level in sorted(store.stock(ev).items()):
                table.add_row(
                    Text(sku),
                    f"{level.allocation:,}",
                    f"{level.available:,}",
                    f"{level.held:,}",
                    f"{level.sold:,}",
                )
            console.print(table)
    finally:
        store.close()


def expire(
    storage: StorageOpt = None,
    event: Annotated[str | None, typer.Option(help="Only this event (default: all).")] = None,
) -> None:
    """Run the expiry sweeper once: holds past their time go back to the pool."""
    config = Config.from_env(storage_url=storage)
    store = open_storage(config.storage_url, must_exist=True)
    try:
        events = _events(store, event)
        sales = Sales(store)
        expired = sum(len(sales.expire_due(ev)) for ev in events)
        noun = "hold" if expired == 1 else "holds"
        Console().print(f"expired {expired} {noun} in {len(events)} event(s)")
    finally:
        store.close()


def _events(store: Storage, event: str | None) -> list[str]:
    known = store.events()
    if event is None:
        return known
    if event not in known:
        raise UnknownEvent(event)
    return [event]
