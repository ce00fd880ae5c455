"""``lampo demo`` and ``lampo simulate``: a scenario's crowd run in-process against the
engine, or over HTTP against running servers (``--target``), then the battle report, the
run against the scenario's figures, and the audit; ``--json`` writes one JSON document
instead. While it runs, a live view on a terminal (``live_view``)."""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lampo.bootstrap import Config, build_simulation
from lampo.cli.live_view import Figures, LiveView
from lampo.cli.options import SecretsOpt, StorageOpt, read_secret
from lampo.cli.render import render_battle
from lampo.config import ADMIN_KEY, SECRET
from lampo.domain.errors import InvalidRequest
from lampo.domain.holds import StockLevel
from lampo.domain.money import Money
from lampo.domain.report import BattleReport
from lampo.domain.stores import Store
from lampo.domain.timetext import duration
from lampo.services.audit import Audit, audit
from lampo.services.report import battle_report, to_data
from lampo.sim import remote
from lampo.sim import scenario as scenarios
from lampo.sim.crowd import check_work
from lampo.sim.driver import SimResult
from lampo.sim.driver import run as run_simulation
from lampo.sim.latency import PERCENTILES
from lampo.sim.snapshot import Snapshot
from lampo.storage import Storage

DEMO_SCENARIO = "mi-fan-fest-2015"

ScaleOpt = Annotated[float, typer.Option(help="Scale factor of stock and crowd, in (0, 10].")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the crowd: the same seed, the same run.")]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        help="Base URL of a running `lampo serve` to rehearse against over HTTP, instead of "
        "in-process (repeat it, or separate URLs by commas, for several: requests go "
        "round them in turn).",
    ),
]
SpeedOpt = Annotated[
    str,
    typer.Option(
        help="With --target: crowd seconds per real second (0 < N <= 100000; the event's "
        "windows and hold time on the server are divided by N), or max: each request as "
        "soon as a connection is free.",
    ),
]
ConnectionsOpt = Annotated[
    int,
    typer.Option(
        help="With --target: the most connections open at once (1 to 10,000).",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Write one JSON document (report, audit, run) instead.")
]


# -- demo and simulate ----------------------------------------------------------
def keep_registry(storage: Storage, stores: Sequence[Store]) -> tuple[Store, ...]:
    """Keep a scenario's store registry in the (fresh) storage it ran on, so that `lampo
    report event|period` and `lampo stores list` read it there; a registry kept already is
    left as it is. The registry the reports use."""
    version, kept = storage.stores()
    if stores and not kept:
        storage.put_stores(stores, replaces=version)
        return tuple(stores)
    return kept


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
    target: TargetOpt = None,
    speed: SpeedOpt = "1",
    connections: ConnectionsOpt = 256,
    secrets_file: SecretsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a scenario's crowd in-process against the engine, or over HTTP against running
    servers (--target), then audit the result."""
    console = Console(stderr=as_json)  # with --json, stdout carries the document alone
    loaded = scenarios.load(scenario, scale)
    if target:
        if storage is not None:
            raise InvalidRequest("storage", "a rehearsal over HTTP uses the servers' storage")
        urls = tuple(u.strip().rstrip("/") for item in target for u in item.split(",") if u.strip())
        pace = _speed(speed)
        secret = read_secret(SECRET, secrets_file).encode()
        ttl = _token_seconds(loaded, pace)

        def token(buyer: str) -> str:
            from lampo.web.auth import issue_token

            return issue_token(secret, buyer, ttl)

        where = remote.Remote(urls, read_secret(ADMIN_KEY, secrets_file), token, pace, connections)
        found = _rehearse(console, loaded, where, seed, as_json)
    else:
        config = Config.from_env(storage_url=storage)
        found = _simulate(console, loaded, config, seed, audit_table=True, as_json=as_json)
    raise typer.Exit(0 if found.ok else 1)


def _speed(text: str) -> float | None:
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= remote.MAX_SPEED:  # NaN fails too
        raise InvalidRequest("speed", f"{text!r}: a number in (0, 100000], or max")
    return value


def _token_seconds(loaded: scenarios.Scenario, speed: float | None) -> int:
    """How long buyer tokens must live: the event and a hold, in server time, and an hour."""
    event = loaded.event
    span = (event.closes - event.opens).total_seconds() + event.hold_seconds
    return math.ceil(span / (speed or 1.0)) + 3600


def _simulate(
    console: Console,
    loaded: scenarios.Scenario,
    config: Config,
    seed: int,
    audit_table: bool = False,
    as_json: bool = False,
) -> Audit:
    sales, clock = build_simulation(config, loaded)
    try:
        if loaded.event.id in sales.storage.events():
            raise InvalidRequest(
                "storage",
                f"{config.storage_url} holds {loaded.event.id!r} already; "
                "simulate on fresh storage (a new file, or memory://)",
            )
        event = loaded.event
        title = f"{event.name} · scale {loaded.scale:g} · in-process"
        with LiveView(console, event, loaded.home_market, title, not as_json) as view:

            def progress(done: int, total: int, counted: SimResult) -> None:
                if not view.on:
                    return
                sold: Counter[str] = Counter()
                for sku, level in sales.storage.stock(event.id).items():
                    sold[event.category_of(sku)] += level.sold
                view.show(Figures(done, total, sold, dict(counted.refusals)))

            door_line, door_data = "", None
            if event.front_door is not None and event.front_door.waiting_room:  # issue 13
                from lampo.sim import door

                at_door = door.run(loaded, sales, clock, seed=seed, progress=progress)
                result, door_line, door_data = at_door.sim, door.summary(at_door), at_door
            else:
                result = run_simulation(loaded, sales, clock, seed=seed, progress=progress)
        found = audit(sales.storage, event)
        registry = keep_registry(sales.storage, loaded.stores)
        # the same report, records included, as `lampo report event` prints from storage
        battle = battle_report(
            sales.storage, event.id, sales.clock(), result.refusals, stores=registry
        )
        stock = sales.storage.stock(event.id)
        rate = result.requests / result.wall_seconds if result.wall_seconds else 0.0
        run: dict[str, Any] = {
            "requests": result.requests,
            "resent": result.resent,
            "holds": result.holds,
            "orders": result.paid,
            "expired": result.expired,
            "released": result.releases,
            "wall_seconds": round(result.wall_seconds, 3),
            "requests_per_second": round(rate, 1),
        }
        line = (
            f"{result.requests:,} reservation requests ({result.resent:,} resent with the "
            f"same key) · {result.holds:,} holds · {result.paid:,} orders · "
            f"{result.expired:,} expired · {result.releases:,} released · "
            f"{result.wall_seconds:.1f} s ({rate:,.0f} requests/s)"
        )
        if door_data is not None:
            run["front_door"] = door_data.as_dict()
            line = f"{line}\n{door_line}"
        out = _Out(console, loaded, seed, as_json)
        out.show("in-process", battle, found, stock, run, line, audit_table=audit_table)
        return found
    finally:
        sales.storage.close()


def _rehearse(
    console: Console,
    loaded: scenarios.Scenario,
    where: remote.Remote,
    seed: int,
    as_json: bool,
) -> Audit:
    """The crowd over HTTP (``sim.remote``), then the same report and audit as in-process,
    on what the servers hold, and the performance block."""
    event = loaded.event
    pace = "max" if where.speed is None else f"x{where.speed:g}"
    title = f"{event.name} · scale {loaded.scale:g} · {len(where.targets)} server(s), {pace}"
    with LiveView(console, event, loaded.home_market, title, not as_json) as view:

        def progress(f: remote.Live) -> None:
            view.show(
                Figures(f.done, f.total, f.sold, f.refusals, f.requests, f.in_flight, f.latency_ms)
            )

        result, snapshot = remote.rehearse(loaded, where, seed, progress if view.on else None)
    found = audit(snapshot, event)
    as_of = result.times.to_crowd(datetime.now(UTC))
    battle = battle_report(snapshot, event.id, as_of, result.refusals)
    stock = snapshot.stock(event.id)
    run = _remote_run(result, snapshot)
    performance = _performance(result)
    line = (
        f"{run['requests']:,} reservation requests ({run['resent']:,} resent with the same "
        f"key) · {run['holds']:,} holds · {run['orders']:,} orders · {run['expired']:,} "
        f"expired · {run['released']:,} released · {run['held']:,} still held · on "
        f"{result.run_id} at {', '.join(result.targets)}"
    )
    _Out(console, loaded, seed, as_json).show("http", battle, found, stock, run, line, performance)
    return found


@dataclass(frozen=True, slots=True)
class _Out:
    """Where a run's result goes: the terminal's tables, or one JSON document."""

    console: Console
    loaded: scenarios.Scenario
    seed: int
    as_json: bool

    def show(
        self,
        mode: str,
        battle: BattleReport,
        found: Audit,
        stock: Mapping[str, StockLevel],
        run: dict[str, Any],
        line: str,
        performance: Mapping[str, Any] | None = None,
        audit_table: bool = True,
    ) -> None:
        run["sold_out_ms"] = {
            s.sku: round((s.sold_out_at - battle.opens).total_seconds() * 1000)
            for s in battle.skus
            if s.sold_out_at is not None
        }
        if self.as_json:
            _write_json(self.loaded, self.seed, mode, battle, found, run, performance)
            return
        console, loaded = self.console, self.loaded
        render_battle(console, battle, loaded.event.markets[loaded.home_market].tz)
        _against_seed(console, loaded, stock, battle.money)
        console.print(Text(line))
        for sku, ms in sorted(run["sold_out_ms"].items(), key=lambda kv: (kv[1], kv[0])):
            console.print(Text(f"{sku} sold out {_after(ms)} after the opening"))
        if performance is not None:
            _performance_table(console, performance)
        _summary(console, found)
        if audit_table:
            _audit_table(console, found)


def _remote_run(result: remote.RemoteResult, snapshot: Snapshot) -> dict[str, Any]:
    states = Counter(h.state.value for h in snapshot.holds(snapshot.event.id))
    return {
        "run_id": result.run_id,
        "targets": list(result.targets),
        "speed": "max" if result.speed is None else result.speed,
        "requests": result.requests,
        "resent": result.resent,
        "holds": result.holds,
        "orders": states["paid"],
        "expired": states["expired"],
        "released": states["released"],
        "held": states["held"],
        "wall_seconds": round(result.wall_seconds, 3),
    }


def _performance(result: remote.RemoteResult) -> dict[str, Any]:
    seconds = result.seconds or math.inf
    latency = {kind: h.summary().as_dict() for kind, h in result.latency.items() if h.count}
    latency["all"] = result.overall().summary().as_dict()
    lag = result.lag.summary()
    return {
        "seconds": round(result.seconds, 3),
        "requests": result.sent,
        "requests_per_second": round(result.sent / seconds, 1),
        "sales_per_second": round(result.paid / seconds, 1),
        "busiest_second": {
            "requests": max(result.answered.values(), default=0),
            "sales": max(result.paid_in.values(), default=0),
        },
        "latency": latency,
        "client_lag_ms": {"p99": lag.p99, "max": lag.max},
        "refusals": dict(result.refusals.most_common()),
        "errors": dict(result.errors.most_common()),
    }


def _performance_table(console: Console, perf: Mapping[str, Any]) -> None:
    console.print(
        f"{perf['requests']:,} requests in {perf['seconds']:,.1f} s: "
        f"{perf['requests_per_second']:,.0f} requests/s, "
        f"{perf['sales_per_second']:,.1f} successful sales/s (busiest second: "
        f"{perf['busiest_second']['requests']:,} requests, "
        f"{perf['busiest_second']['sales']:,} sales); the client sent "
        f"{perf['client_lag_ms']['p99']:,.1f} ms late at p99 "
        f"({perf['client_lag_ms']['max']:,.1f} ms at most)"
    )
    table = Table(title="Latency from the scheduled time (ms)", title_justify="left")
    table.add_column("requests")
    for col in ("count", *(label for label, _ in PERCENTILES), "max"):
        table.add_column(col, justify="right")
    for kind, row in perf["latency"].items():
        cells = [f"{row['count']:,}"]
        cells += [f"{row[f'{label}_ms']:,.1f}" for label, _ in PERCENTILES]
        table.add_row(kind, *cells, f"{row['max_ms']:,.1f}")
    console.print(table)
    if perf["refusals"]:
        refused = Table(title="Refusals by reason", title_justify="left")
        refused.add_column("reason")
        refused.add_column("count", justify="right")
        for reason, count in perf["refusals"].items():
            refused.add_row(Text(reason), f"{count:,}")
        console.print(refused)


def _write_json(
    loaded: scenarios.Scenario,
    seed: int,
    mode: str,
    battle: BattleReport,
    found: Audit,
    run: Mapping[str, Any],
    performance: Mapping[str, Any] | None = None,
) -> None:
    document: dict[str, Any] = {
        "scenario": loaded.name,
        "scale": loaded.scale,
        "seed": seed,
        "mode": mode,
        "run": dict(run),
        "audit": {
            "ok": found.ok,
            "holds": found.holds,
            "oversold_units": found.oversold_units,
            "limit_violations": len(found.limit_violations),
            "leaked_units": found.leaked_units,
            "totals_differing": len(found.totals),
        },
        "report": to_data(battle),
    }
    if performance is not None:
        document["performance"] = dict(performance)
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


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
def _against_seed(
    console: Console,
    loaded: scenarios.Scenario,
    stock: Mapping[str, StockLevel],
    revenue: Money,
) -> None:
    """After the battle report: the run against the seed's figures."""
    event = loaded.event
    sold: Counter[str] = Counter()
    for sku, level in stock.items():
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


def _summary(console: Console, found: Audit) -> None:
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


def _after(ms: int) -> str:
    """How long after the opening: to the millisecond under a minute (``4.149 s``), as people
    read longer spans otherwise (``3 h 8 min``)."""
    if ms < 60_000:
        return f"{ms / 1000:.3f} s"
    return duration(Fraction(ms, 1000))
