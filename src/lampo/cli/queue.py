"""``lampo queue show|rate|draw|registrations``: an event's front door from the command
line (docs/front-door.md), on the storage a running ``lampo serve`` shares: what the
queues hold, a market's admission rate, the lottery, the registrations as CSV.

None of these signs a token (tickets, admissions and challenges are the server's), so
they need no server secret: the service is given a random one of its own."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lampo.bootstrap import Config, open_storage
from lampo.cli.options import StorageOpt
from lampo.domain.errors import InvalidRequest, UnknownEvent, UnknownMarket
from lampo.domain.event import SaleEvent
from lampo.domain.frontdoor import MAX_ADMIT_PER_SECOND
from lampo.services.frontdoor import FrontDoorService
from lampo.services.sales import Sales
from lampo.storage.door import door_store
from lampo.web.frontdoor import write_csv

queue_app = typer.Typer(
    help="An event's front door: its queues, admission rate, lottery and registrations.",
    no_args_is_help=True,
)

EventArg = Annotated[str, typer.Argument(help="Event id.")]


@contextmanager
def _door(storage: str | None) -> Iterator[FrontDoorService]:
    config = Config.from_env(storage_url=storage)
    store = open_storage(config.storage_url, must_exist=True)
    try:
        sales = Sales(store)
        for event in store.load_events():
            sales.learn(event)
        yield FrontDoorService(sales, door_store(store), os.urandom(32))
    finally:
        store.close()


def _event(door: FrontDoorService, event_id: str) -> SaleEvent:
    event = door.sales.events.get(event_id)
    if event is None:
        raise UnknownEvent(event_id)
    if event.front_door is None:
        raise InvalidRequest("event", f"{event_id} has no front door ([front_door])")
    return event


def _markets(event: SaleEvent, market: str | None) -> list[str]:
    if market is None:
        return sorted(event.windows)
    if market not in event.windows:
        raise UnknownMarket(event.id, market)
    return [market]


def _eta(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02} min" if hours else f"{minutes} min {secs:02} s"


def show(
    event: EventArg,
    market: Annotated[str | None, typer.Option(help="Only this market.")] = None,
    storage: StorageOpt = None,
) -> None:
    """Show the queues: joined, pre-queue, waiting, admitted, the admission rate per
    second, the ETA of the last in line; registrations; where the refusals are counted."""
    with _door(storage) as door:
        ev = _event(door, event)
        table = Table(title=Text(f"Front door of {ev.id}"), title_justify="left")
        table.add_column("market")
        for col in ("joined", "pre-queue", "waiting", "admitted", "per second", "last in line"):
            table.add_column(col, justify="right")
        for m in _markets(ev, market):
            state = door.state(ev.id, m)
            prequeue = f"{state.prequeue:,}" + (" (frozen)" if state.frozen else "")
            table.add_row(
                Text(m),
                f"{state.joined:,}",
                prequeue,
                f"{state.waiting:,}",
                f"{state.admitted:,}",
                f"{state.rate:,}",
                _eta(state.eta_last_seconds) if state.waiting else "-",
            )
        console = Console()
        console.print(table)
        console.print(f"registrations: {door.registrations(ev.id):,}")
        # storage keeps no refusal: the server's workers count them in their metrics
        console.print(
            Text(
                "refusals: counted by the server, by reason, every worker's summed: "
                f"GET /v1/admin/events/{ev.id}/queue (and lampo_door_refusals_total in "
                "/metrics)",
                style="dim",
            )
        )


def rate(
    event: EventArg,
    market: Annotated[str, typer.Argument(help="Market code.")],
    per_second: Annotated[
        int,
        typer.Argument(min=1, max=MAX_ADMIT_PER_SECOND, help="Admissions per second, from now on."),
    ],
    storage: StorageOpt = None,
) -> None:
    """Set a market's admission rate (from now on: nobody admitted is taken back)."""
    with _door(storage) as door:
        ev = _event(door, event)
        (m,) = _markets(ev, market)
        door.set_rate(ev.id, m, per_second)
        state = door.state(ev.id, m)
        Console().print(
            f"{ev.id} {m}: {state.rate:,} per second; {state.waiting:,} waiting, "
            f"{state.admitted:,} admitted"
        )


def draw(event: EventArg, storage: StorageOpt = None) -> None:
    """Draw the lottery once registration has closed (the first draw stands); print its
    seed, with which anyone can redo it from the registrations."""
    with _door(storage) as door:
        ev = _event(door, event)
        drawn = door.draw(ev.id)
        Console().print(
            f"{ev.id}: {len(drawn.winners):,} drawn of {drawn.registrations:,} "
            f"registrations at {drawn.at.isoformat()}; seed {drawn.seed}"
        )


def registrations(
    event: EventArg,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Every registration as CSV on stdout.")
    ] = False,
    storage: StorageOpt = None,
) -> None:
    """How many accounts are registered; with --csv, every registration (account,
    registered_at in UTC, phone_hash, device_hash)."""
    with _door(storage) as door:
        ev = _event(door, event)
        if as_csv:
            write_csv(door, ev.id, sys.stdout)
        else:
            Console().print(f"{ev.id}: {door.registrations(ev.id):,} registrations")


queue_app.command()(show)
queue_app.command()(rate)
queue_app.command()(draw)
queue_app.command()(registrations)
