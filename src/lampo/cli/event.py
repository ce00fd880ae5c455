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
from lampo.domain.channels import SHARED, pool_label, split_stock_key
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
    rows = old.stock_rows()
    pooled = any(o.pools for o in (*old.offers.values(), *new.offers.values()))
    table = Table(title=Text(f"Update of {new.id}"), title_justify="left")
    for col in ("SKU (pool)" if pooled else "SKU", "allocation before", "after", "change"):
        table.add_column(col, justify="right" if col[0].islower() else "left")

    def label(key: str) -> Text:
        sku, pool = split_stock_key(key)
        return Text(f"{sku} ({pool_label(pool)})" if pooled else sku)

    for key, delta in sorted(change.deltas.items()):
        before = rows[key]
        table.add_row(label(key), f"{before:,}", f"{before + delta:,}", f"{delta:+,}")
    for key, allocation in sorted(change.added.items()):
        table.add_row(label(key), "new", f"{allocation:,}", f"{allocation:+,}")
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
        typer.Argument(
            help="SKU=N (the new allocation), SKU=+N or SKU=-N (a change, in the shared "
            "pool); SKU:POOL=N, +N or -N: a reserved pool, its units taken from or given "
            "back to the shared pool."
        ),
    ],
    storage: StorageOpt = None,
) -> None:
    """Change SKUs' allocations of a live event: `lampo event allocate fest redmi=+5000`;
    move units into a channel's pool: `lampo event allocate fest redmi:jd=+2000`."""
    store = open_storage(Config.from_env(storage_url=storage).storage_url, must_exist=True)
    try:
        current = _stored(store, event)
    finally:
        store.close()
    offers = dict(current.offers)
    seen: set[str] = set()
    for item in changes:
        target, sep, value = item.partition("=")
        sku, _, pool = target.partition(":")
        if not sep or sku not in offers:
            known = ", ".join(sorted(offers))
            raise InvalidRequest(
                "allocation", f"{item!r}: expected SKU=N or SKU:POOL=N with SKU one of {known}"
            )
        if target in seen:
            raise InvalidRequest("allocation", f"{target!r} is given twice")
        seen.add(target)
        digits = value.replace("_", "").replace(",", "")  # 5_000 and 5,000 read as 5000
        # ASCII digits only: int() would also take other scripts' digits and spaces
        if not re.fullmatch(r"[+-]?[0-9]+", digits):
            raise InvalidRequest("allocation", f"{item[:60]!r}: not a whole number")
        try:
            number = int(digits)
        except ValueError:  # past the 4,300 digits int() reads: past any bound too
            raise InvalidRequest("allocation", f"{item[:60]!r}: too many digits") from None
        offer = offers[sku]
        if pool and pool != SHARED:
            # a reserved pool's units come from the shared pool, and go back to it
            pools = dict(offer.pools)
            pools[pool] = pools.get(pool, 0) + number if value[:1] in "+-" else number
            offers[sku] = replace(offer, pools=pools)  # Offer checks the pools' bounds
            continue
        allocation = offer.allocation + number if value[:1] in "+-" else number
        if pool == SHARED and value[:1] not in "+-":  # the shared pool set: the rest stays
            allocation = number + sum(offer.pools.values())
        offers[sku] = replace(offer, allocation=allocation)  # Offer checks its bounds
    _apply(storage, replace(current, offers=offers))
