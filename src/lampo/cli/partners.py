"""``lampo partners import``: a marketplace partner's order file, settled after the fact
through the same path as its signed orders (``services/partners.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from lampo.bootstrap import Config, open_storage
from lampo.cli.options import StorageOpt
from lampo.cli.stores import read_text, refuse_rows
from lampo.domain.errors import InvalidRequest, OrdersRefused, UnknownEvent
from lampo.services.partners import MAX_FILE_BYTES, Intake
from lampo.services.sales import Sales

partners_app = typer.Typer(
    help="Marketplace partners: settle a partner's order file.", no_args_is_help=True
)

_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


@partners_app.command("import")
def import_(
    partner: Annotated[str, typer.Argument(help="The partner's id (its channel's name).")],
    file: Annotated[
        Path,
        typer.Argument(
            help="Orders as CSV (order_id,market,buyer,sku,quantity; one line a row) or "
            "JSONL (one order a line: order_id, market, buyer, lines)."
        ),
    ],
    event: Annotated[str, typer.Option(help="The sale event the orders draw on.")],
    storage: StorageOpt = None,
) -> None:
    """Check every row of an order file, then sell its orders, each line on its own;
    print what was accepted and what refused, by reason. A bad row refuses the whole
    file before anything is sold; a file taken again answers from before."""
    fmt = _FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise InvalidRequest("file", f"{file}: name it .csv or .jsonl")
    text = read_text(file, MAX_FILE_BYTES)
    store = open_storage(Config.from_env(storage_url=storage).storage_url, must_exist=True)
    try:
        sales = Sales(store)
        known = {e.id: e for e in store.load_events()}
        if event not in known:
            raise UnknownEvent(event)
        sales.learn(known[event])
        try:
            summary = Intake(sales).settle_file(partner, event, text, fmt)
        except OrdersRefused as refused:
            refuse_rows(file, refused.problems, "the order file")
    finally:
        store.close()
    console = Console(highlight=False)
    replayed = f" ({summary.replayed:,} answered before)" if summary.replayed else ""
    console.print(Text(f"orders: {summary.orders:,}{replayed}"))
    console.print(Text(f"lines accepted: {summary.accepted:,}"))
    refused_total = sum(summary.refused.values())
    by_reason = ", ".join(f"{r} {n:,}" for r, n in sorted(summary.refused.items()))
    console.print(
        Text(f"lines refused: {refused_total:,}" + (f" ({by_reason})" if by_reason else ""))
    )
