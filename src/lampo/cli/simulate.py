"""``lampo demo`` and ``lampo simulate``: a scenario's crowd run in-process against the
engine, then the battle report, the run against the scenario's figures, and the audit."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from lampo.bootstrap import Config, build_simulation
from lampo.cli.options import StorageOpt
from lampo.cli.render import render_battle
from lampo.domain.errors import InvalidRequest
from lampo.domain.money import Money
from lampo.services.audit import Audit, audit
from lampo.services.report import battle_report
from lampo.services.sales import Sales
from lampo.sim import scenario as scenarios
from lampo.sim.crowd import check_work
from lampo.sim.driver import SimResult
from lampo.sim.driver import run as run_simulation

DEMO_SCENARIO = "mi-fan-fest-2015"

ScaleOpt = Annotated[float, typer.Option(help="Scale factor of stock and crowd, in (0, 10].")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the crowd: the same seed, the same run.")]


# -- demo and simulate ----------------------------------------------------------
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
    check_work(loaded)  # a run past the budget is refused before the old file is removed
    _remove_database(db)
    url = f"sqlite:///{db}"
    console.print(
        f"[bold]{escape(loaded.event.name)}[/] at scale {scale:g} on {escape(url)}: "
        f"{loaded.event.total_allocation:,} units in {len(loaded.event.markets)} markets"
    )
    found = _simulate(console, loaded, Config.from_env(storage_url=url), seed)
    raise typer.Exit(0 if found.ok else 1)


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
