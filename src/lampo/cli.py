"""The ``lampo`` command (Typer + Rich): parse the input, call a service, format the answer.

Every failure of every command ends in ``main``: one red ``error: ...`` line on stderr
and an exit code (``EXIT_*``: 2 for bad input and refusals), never a traceback unless
``LAMPO_DEBUG=1``. ``simulate`` and ``demo`` exit 1 when the audit finds anything.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import traceback
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from lampo import __version__
from lampo.bootstrap import Config, build_simulation, default_storage_url, open_storage
from lampo.domain.errors import InvalidRequest, LampoError, Unavailable, UnknownEvent
from lampo.domain.money import Money
from lampo.event_cli import event_app
from lampo.reconcile_cli import reconcile_command
from lampo.report_cli import StorageOpt, render_battle, report_app
from lampo.services.audit import Audit, audit
from lampo.services.report import battle_report
from lampo.services.sales import Sales
from lampo.sim import scenario as scenarios
from lampo.sim.driver import SimResult
from lampo.sim.driver import run as run_simulation
from lampo.storage import Storage
from lampo.storage.urls import redact
from lampo.web.cli import register as register_web

DEMO_SCENARIO = "mi-fan-fest-2015"

app = typer.Typer(
    name="lampo",
    help="lampo: an omni-channel flash-sale engine with a live battle report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lampo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """lampo: an omni-channel flash-sale engine with a live battle report."""


ScaleOpt = Annotated[float, typer.Option(help="Scale factor of stock and crowd, in (0, 10].")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the crowd: the same seed, the same run.")]


# -- demo and simulate ----------------------------------------------------------
@app.command()
def demo(
    scale: ScaleOpt = 0.01,
    db: Annotated[Path, typer.Option(help="SQLite file to run on; replaced if it exists.")] = Path(
        "lampo-demo.db"
    ),
    seed: SeedOpt = 42,
) -> None:
    """Run a scaled-down Mi Fan Fest 2015 on a fresh SQLite file and show the result."""
    console = Console()
    loaded = scenarios.load(DEMO_SCENARIO, scale)
    if "?" in str(db) or "#" in str(db):  # they would end the file's name in its URL
        raise InvalidRequest("db", f"{str(db)!r}: a file name holding ? or # cannot be used")
    _remove_database(db)
    url = f"sqlite:///{db}"
    console.print(
        f"[bold]{escape(loaded.event.name)}[/] at scale {scale:g} on {escape(url)}: "
        f"{loaded.event.total_allocation:,} units in {len(loaded.event.markets)} markets"
    )
    found = _simulate(console, loaded, Config.from_env(storage_url=url), seed)
    raise typer.Exit(0 if found.ok else 1)


@app.command()
def simulate(
    scenario: Annotated[str, typer.Argument(help="A shipped scenario name or a TOML file.")],
    scale: ScaleOpt = 1.0,
    storage: StorageOpt = None,
    seed: SeedOpt = 42,
) -> None:
    """Run a scenario's crowd in-process against the engine, then audit the result."""
    console = Console()
    loaded = scenarios.load(scenario, scale)
    config = Config.from_env(storage_url=storage)
    found = _simulate(console, loaded, config, seed, audit_table=True)
    raise typer.Exit(0 if found.ok else 1)


def _simulate(
    console: Console,
    loaded: scenarios.Scenario,
    config: Config,
    seed: int,
    audit_table: bool = False,
) -> Audit:
    sales, clock = build_simulation(config, loaded)
    try:
        if loaded.event.id in sales.storage.events():
            raise InvalidRequest(
                "storage",
                f"{config.storage_url} holds {loaded.event.id!r} already; "
                "simulate on fresh storage (a new file, or memory://)",
            )
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[clock]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            home = loaded.event.markets[loaded.home_market]
            task = bar.add_task("simulating", total=1, clock="")

            def progress(done: int, total: int) -> None:
                at = home.local(loaded.event.opens + timedelta(seconds=done))
                bar.update(task, completed=done, total=total, clock=at.strftime("%H:%M:%S"))

            result = run_simulation(loaded, sales, clock, seed=seed, progress=progress)
        found = audit(sales.storage, loaded.event)
        # the same report, records included, as `lampo report event` prints from storage
        battle = battle_report(sales.storage, loaded.event.id, sales.clock(), result.refusals)
        render_battle(console, battle, loaded.event.markets[loaded.home_market].tz)
        _report(console, loaded, sales, result, found, battle.money)
        if audit_table:
            _audit_table(console, found)
        return found
    finally:
        sales.storage.close()


def _remove_database(db: Path) -> None:
    """Delete a previous demo database, but only if it is one (or an empty file)."""
    if db.is_dir():
        raise InvalidRequest("db", f"{db} is a directory")
    if db.exists():
        with db.open("rb") as f:
            head = f.read(16)
        if head and head != b"SQLite format 3\x00":
            raise InvalidRequest("db", f"{db} exists and is not a SQLite file; not replacing it")
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-lock")):
        path.unlink(missing_ok=True)


# -- the result tables ----------------------------------------------------------
def _report(
    console: Console,
    loaded: scenarios.Scenario,
    sales: Sales,
    result: SimResult,
    found: Audit,
    revenue: Money,
) -> None:
    """After the battle report: the run against the seed's figures, the run, the audit."""
    event = loaded.event
    sold: Counter[str] = Counter()
    for sku, level in sales.storage.stock(event.id).items():
        sold[event.category_of(sku)] += level.sold
    seed = Table(
        title=f"Against the seed's figures (scaled x{loaded.scale:g})", title_justify="left"
    )
    for col in ("figure", "this run", "seed", "ratio"):
        seed.add_column(col, justify="left" if col == "figure" else "right")
    for cid, category in event.categories.items():
        expected = loaded.expected.units.get(cid)
        if expected:
            ratio = f"{sold[cid] / expected:.1%}"
            seed.add_row(Text(category.name), f"{sold[cid]:,}", f"{expected:,}", ratio)
    goal = loaded.expected.revenue
    if goal is not None and goal.amount and goal.currency == revenue.currency:
        ratio = f"{revenue.amount / goal.amount:.1%}"
        seed.add_row("revenue", revenue.format(), goal.format(), ratio)
    if seed.row_count:
        console.print(seed)

    rate = result.requests / result.wall_seconds if result.wall_seconds else 0.0
    console.print(
        f"{result.requests:,} reservation requests ({result.resent:,} resent with the same key)"
        f" · {result.holds:,} holds · {result.paid:,} orders · {result.expired:,} expired"
        f" · {result.releases:,} released · {result.wall_seconds:.1f} s ({rate:,.0f} requests/s)"
    )
    style = "bold green" if found.ok else "bold red"
    console.print(Text(found.summary(), style=style))


def _audit_table(console: Console, found: Audit) -> None:
    table = Table(
        title=Text(f"Audit of {found.event} ({found.holds:,} holds recounted)"),
        title_justify="left",
    )
    table.add_column("check")
    table.add_column("found", justify="right")
    table.add_column("detail")

    def row(name: str, count: int, detail: str) -> None:
        mark = "[green]0" if not count else f"[red]{count:,}"
        table.add_row(name, mark, Text(detail))

    row(
        "oversold units",
        found.oversold_units,
        ", ".join(f"{k}: {v}" for k, v in found.oversold.items()),
    )
    row(
        "limit violations",
        len(found.limit_violations),
        ", ".join(
            f"{v.customer} {v.units}/{v.limit} {v.sku or 'event'}"
            for v in found.limit_violations[:5]
        ),
    )
    row("leaked units", found.leaked_units, ", ".join(f"{k}: {v}" for k, v in found.leaked.items()))
    row(
        "totals rows differing from recount",
        len(found.totals),
        ", ".join(str(d.key) for d in found.totals[:3]),
    )
    console.print(table)


# -- stock and expire -----------------------------------------------------------
@app.command()
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


@app.command()
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


register_web(app)  # lampo serve, lampo token
app.command("reconcile")(reconcile_command)  # lampo reconcile [--check]
app.add_typer(report_app, name="report")  # lampo report event|period
app.add_typer(event_app, name="event")  # lampo event show|load|update|allocate


# -- entry point: every failure of every command ends here ---------------------
#: Exit codes of ``lampo`` (README, "The lampo command").
EXIT_FOUND = 1  # simulate/demo: the audit found something; reconcile --check: a difference
EXIT_REFUSED = 2  # bad input, or a refusal (a LampoError, a usage error)
EXIT_UNAVAILABLE = 69  # storage unavailable (sysexits' EX_UNAVAILABLE): retry later
EXIT_INTERNAL = 70  # a bug in lampo (sysexits' EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
#: Set (to anything but "" or "0") to see the traceback of any failure, not one line.
DEBUG_VARIABLE = "LAMPO_DEBUG"
_LONGEST = 2000  # characters of an error line


def _refusal_in(err: BaseException) -> LampoError | None:
    """The refusal behind ``err``: itself, its cause or context, or one in a group (a
    cleanup that failed after a refusal must not hide the refusal the user can act on)."""
    seen: set[int] = set()
    todo = [err]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, LampoError):
            return current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def one_line(message: str) -> str:
    """``message`` as one printable line: whitespace (newlines too) collapsed, control
    characters shown escaped (they could move a terminal's cursor), length capped."""
    line = " ".join(message.split())
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    return line if len(line) <= _LONGEST else line[: _LONGEST - 1] + "…"


def _fail(message: str, code: int = EXIT_REFUSED) -> int:
    """Print ``error: MESSAGE`` as one line on stderr; return ``code``. The message is
    plain text: Rich markup or emoji codes in it (an event id, a file name) print as is."""
    err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, markup=False)
    err.print(Text.assemble(("error:", "bold red"), " ", (one_line(message), "red")))
    return code


def _usage_errors() -> tuple[type[Exception], ...]:
    """Usage errors of the click that typer runs on (its vendored copy, or click itself)."""
    types: list[type[Exception]] = [typer.TyperException]
    try:
        import click

        types.append(click.ClickException)
    except ImportError:  # pragma: no cover - recent typer vendors click
        pass
    return tuple(types)


def _debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    """Run ``lampo`` with ``argv`` (default: the process arguments); return the exit code.

    The one place where every command's failure becomes one line on stderr and an exit
    code (``EXIT_*``): a refusal or bad input names the problem; anything unexpected is an
    internal error, still one line, its traceback shown only with ``LAMPO_DEBUG=1``."""
    usage = _usage_errors()
    try:
        code: Any = app(args=argv, prog_name="lampo", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        return _fail("interrupted", EXIT_INTERRUPTED)
    except Exception as err:
        if _debugging():
            traceback.print_exception(err, file=sys.stderr)
        return _failure(err, usage)
    if code == EXIT_INTERRUPTED:  # typer turns a Ctrl-C inside a command into this code
        return _fail("interrupted", EXIT_INTERRUPTED)
    return code if isinstance(code, int) else 0


def _failure(err: Exception, usage: tuple[type[Exception], ...]) -> int:
    """The line and exit code of a command's failure."""
    refusal = _refusal_in(err)
    if isinstance(refusal, Unavailable):
        return _fail(str(refusal), EXIT_UNAVAILABLE)
    if refusal is not None:
        return _fail(str(refusal))
    if isinstance(err, usage):
        text = err.format_message() if hasattr(err, "format_message") else str(err)
        return _fail(f"{text} (see lampo --help)")
    if isinstance(err, sqlite3.Error):
        return _fail(f"database: {err}")
    if isinstance(err, OSError):
        return _fail(f"{err.strerror or err}: {err.filename or ''}".rstrip(": "))
    if isinstance(err, ImportError):  # a backend's extra is not installed
        return _fail(str(err))
    first = (str(err).strip().splitlines() or [""])[0]
    return _fail(
        f"internal error: {type(err).__name__}: {first} "
        f"(a bug in lampo; rerun with {DEBUG_VARIABLE}=1 to see where)",
        EXIT_INTERNAL,
    )


__all__ = ["app", "default_storage_url", "main"]

if __name__ == "__main__":
    sys.exit(main())
