"""``lampo event show|load|update|allocate``: an event's definition in storage, from the
command line. A running ``lampo serve`` on the same storage follows an update within its
``--event-refresh`` seconds (see docs/http-api.md, "Updating a live event")."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lampo.bootstrap import Config, open_storage
from lampo.cli.options import StorageOpt
from lampo.domain.codec import event_to_dict
from lampo.domain.errors import InvalidRequest, UnknownEvent
from lampo.domain.event import SaleEvent, plan_update
from lampo.sim import definition
from lampo.storage import Storage

event_app = typer.Typer(
    help="Show, load and update sale events in storage (live ones included).",
    no_args_is_help=True,
)

FileArg = Annotated[
    Path, typer.Argument(help="A scenario TOML file, or a JSON definition (as `show` prints).")
]
ScaleOpt = Annotated[
    float, typer.Option(help="Scale factor of a TOML scenario's stock, in (0, 10].")
]


def read_definition(path: Path, scale: float = 1.0) -> SaleEvent:
    """The event a file defines: a scenario TOML (scaled), or JSON in the codec's form."""
    return definition.read(path, scale)


def _stored(store: Storage, event_id: str) -> SaleEvent:
    for event in store.load_events():
        if event.id == event_id:
            return event
    raise UnknownEvent(event_id)


def _changes(old: SaleEvent, new: SaleEvent) -> Table:
    change = plan_update(old, new)
    table = Table(title=Text(f"Update of {new.id}"), title_justify="left")
    for col in ("SKU", "allocation before", "after", "change"):
        table.add_column(col, justify="left" if col == "SKU" else "right")
    for sku, delta in sorted(change.deltas.items()):
        before = old.offers[sku].allocation
        table.add_row(Text(sku), f"{before:,}", f"{before + delta:,}", f"{delta:+,}")
    for sku, allocation in sorted(change.added.items()):
        table.add_row(Text(sku), "new", f"{allocation:,}", f"{allocation:+,}")
    return table


def _apply(storage: str | None, event: SaleEvent) -> None:
    store = open_storage(Config.from_env(storage_url=storage).storage_url, must_exist=True)
    try:
        before = _stored(store, event.id)
        if before == event:
            Console().print(Text(f"{event.id}: the definition is the same; nothing changed"))
            return
        table = _changes(before, event)  # refuses here, before any write, what cannot change
        store.update(event)
        console = Console()
        if table.row_count:
            console.print(table)
        console.print(Text(f"{event.id}: updated"))
    finally:
        store.close()


@event_app.command()
def show(
    event: Annotated[str, typer.Argument(help="Event id.")],
    storage: StorageOpt = None,
) -> None:
    """Print the event's definition as JSON (edit it, then `lampo event update`)."""
    store = open_storage(Config.from_env(storage_url=storage).storage_url, must_exist=True)
    try:
        typer.echo(json.dumps(event_to_dict(_stored(store, event)), indent=2, sort_keys=True))
    finally:
        store.close()


@event_app.command()
def load(file: FileArg, storage: StorageOpt = None, scale: ScaleOpt = 1.0) -> None:
    """Load a new event and put its stock on sale (the same definition again: no-op)."""
    event = read_definition(file, scale)
    store = open_storage(Config.from_env(storage_url=storage).storage_url)
    try:
        if event.id in store.events() and _stored(store, event.id) != event:
            raise InvalidRequest(
                "event", f"{event.id!r} exists with another definition: `lampo event update`"
            )
        store.setup(event)
        Console().print(Text(f"{event.id}: loaded, {event.total_allocation:,} units on offer"))
    finally:
        store.close()


@event_app.command()
def update(file: FileArg, storage: StorageOpt = None, scale: ScaleOpt = 1.0) -> None:
    """Give a live event a new definition: more stock, new SKUs, moved windows, prices.

    Holds keep their prices; what holds and totals rest on cannot change."""
    _apply(storage, read_definition(file, scale))


@event_app.command()
def allocate(
    event: Annotated[str, typer.Argument(help="Event id.")],
    changes: Annotated[
        list[str],
        typer.Argument(help="SKU=N (the new allocation), SKU=+N or SKU=-N (a change)."),
    ],
    storage: StorageOpt = None,
) -> None:
    """Change SKUs' allocations of a live event: `lampo event allocate fest redmi=+5000`."""
    store = open_storage(Config.from_env(storage_url=storage).storage_url, must_exist=True)
    try:
        current = _stored(store, event)
    finally:
        store.close()
    offers = dict(current.offers)
    seen: set[str] = set()
    for item in changes:
        sku, sep, value = item.partition("=")
        if not sep or sku not in offers:
            known = ", ".join(sorted(offers))
            raise InvalidRequest("allocation", f"{item!r}: expected SKU=N with SKU one of {known}")
        if sku in seen:
            raise InvalidRequest("allocation", f"{sku!r} is given twice")
        seen.add(sku)
        digits = value.replace("_", "").replace(",", "")  # 5_000 and 5,000 read as 5000
        # ASCII digits only: int() would also take other scripts' digits and spaces
        if not re.fullmatch(r"[+-]?[0-9]+", digits):
            raise InvalidRequest("allocation", f"{item[:60]!r}: not a whole number")
        try:
            number = int(digits)
        except ValueError:  # past the 4,300 digits int() reads: past any bound too
            raise InvalidRequest("allocation", f"{item[:60]!r}: too many digits") from None
        allocation = offers[sku].allocation + number if value[:1] in "+-" else number
        offers[sku] = replace(offers[sku], allocation=allocation)  # Offer checks its bounds
    _apply(storage, replace(current, offers=offers))
