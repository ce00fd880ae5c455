"""``lampo stores``: the store network's registry (import, list, show, export) and the
keys of its tills (key, revoke)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lampo.bootstrap import Config, open_storage
from lampo.cli.options import StorageOpt
from lampo.domain import bounds
from lampo.domain.errors import InvalidRequest, StoresRefused
from lampo.domain.stores import MAX_CSV_BYTES
from lampo.services.stores import StoreNetwork

stores_app = typer.Typer(
    help="The store network: its registry (a CSV file, replaced whole) and till keys.",
    no_args_is_help=True,
)

#: The exit code of a refused file (``cli.EXIT_REFUSED``).
_REFUSED = 2


@contextmanager
def _network(storage: str | None, must_exist: bool = True) -> Iterator[StoreNetwork]:
    store = open_storage(Config.from_env(storage_url=storage).storage_url, must_exist=must_exist)
    try:
        yield StoreNetwork(store)
    finally:
        store.close()


def read_text(file: Path, limit: int) -> str:
    """A UTF-8 file of at most ``limit`` bytes (checked before it is read whole)."""
    size = file.stat().st_size
    if size > limit:
        raise InvalidRequest("file", f"{file}: {size:,} bytes, more than {limit:,}")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("file", f"{file}: not UTF-8 at byte {exc.start}") from None


def refuse_rows(file: Path, problems: list[dict[str, Any]], what: str) -> NoReturn:
    """Print every problem of a refused file, one line each (``FILE:LINE: COLUMN:
    REASON``), on stderr; exit 2."""
    err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, markup=False)
    for p in problems:
        err.print(Text(f"{file}:{p['line']}: {p['column']}: {p['reason']}"))
    noun = "problem" if len(problems) == 1 else "problems"
    err.print(
        Text.assemble(("error:", "bold red"), f" {what} refused whole: {len(problems)} {noun}")
    )
    raise typer.Exit(_REFUSED)


@stores_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The registry as CSV (header: id,name,kind,...).")],
    storage: StorageOpt = None,
    replaces: Annotated[
        int | None,
        typer.Option(help="The registry version this file replaces (default: the current)."),
    ] = None,
) -> None:
    """Replace the registry with a CSV file, whole; any bad row refuses the whole file."""
    text = read_text(file, MAX_CSV_BYTES)
    with _network(storage, must_exist=False) as network:
        try:
            version, count = network.import_csv(text, replaces)
        except StoresRefused as refused:
            refuse_rows(file, refused.problems, "the store registry")
    Console().print(Text(f"imported {count:,} stores: registry version {version}"))


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return bounds.day("on", date.fromisoformat(text))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date such as 2017-06-30") from None


@stores_app.command("list")
def list_(
    storage: StorageOpt = None,
    market: Annotated[str | None, typer.Option(help="Only this market's stores.")] = None,
    on: Annotated[
        str | None, typer.Option(help="Only the stores open at the close of this day.")
    ] = None,
) -> None:
    """List the stores of the registry."""
    day = _day(on)
    with _network(storage) as network:
        version, stores = network.registry()
    shown = [
        s
        for s in stores
        if (market is None or s.market == market) and (day is None or s.open_on(day))
    ]
    table = Table(title=Text(f"Stores (registry version {version})"), title_justify="left")
    for column in ("id", "name", "kind", "market", "city", "opened", "closed"):
        table.add_column(column)
    for s in shown:
        closed = s.closed.isoformat() if s.closed else ""
        table.add_row(
            *(Text(v) for v in (s.id, s.name, s.kind.value, s.market, s.city)),
            s.opened.isoformat(),
            closed,
        )
    console = Console()
    console.print(table)
    console.print(Text(f"{len(shown):,} of {len(stores):,} stores"))


@stores_app.command("show")
def show(
    store: Annotated[str, typer.Argument(help="A store id.")], storage: StorageOpt = None
) -> None:
    """Show one store and its till keys (never their secrets)."""
    with _network(storage) as network:
        found = network.find(store)
        keys = network.keys(found.id)
    console = Console(highlight=False)
    for name in ("id", "name", "kind", "market", "city", "opened", "closed", "lat", "lon"):
        value = getattr(found, name)
        text = "" if value is None else getattr(value, "isoformat", lambda v=value: str(v))()
        console.print(Text(f"{name:>7}: {text}"))
    for k in keys:
        state = f"revoked {k.revoked_at.isoformat()}" if k.revoked_at else "active"
        console.print(Text(f"    key {k.key_id}: issued {k.issued_at.isoformat()}, {state}"))


@stores_app.command("export")
def export(storage: StorageOpt = None) -> None:
    """Print the registry as CSV (what `import` reads back)."""
    with _network(storage) as network:
        _, text = network.export_csv()
    sys.stdout.write(text)


@stores_app.command("key")
def key(
    store: Annotated[str, typer.Argument(help="A store id of the registry.")],
    storage: StorageOpt = None,
) -> None:
    """Issue a key for a store's tills; it is printed this once (only its hash is kept)."""
    with _network(storage) as network:
        issued = network.issue_key(store)
    typer.echo(issued.key)
    typer.echo(f"key id {issued.info.key_id} for {issued.info.store}", err=True)


@stores_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (`lampo stores show` lists them).")],
    storage: StorageOpt = None,
) -> None:
    """Revoke a till key for good (revoking it again changes nothing)."""
    with _network(storage) as network:
        info = network.revoke(key_id)
    assert info.revoked_at is not None
    Console().print(
        Text(f"key {info.key_id} of {info.store} revoked at {info.revoked_at.isoformat()}")
    )
