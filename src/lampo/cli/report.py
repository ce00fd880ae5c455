"""``lampo report``: the battle report of an event and the results of a period.

``lampo report event NAME`` and ``lampo report period 2017Q2 [--vs 2017Q1]``, each with
``--format table|json|csv`` and ``--storage URL``. Tables are Rich; JSON and CSV carry the
exact figures (money in integer minor units, ratios as exact fractions).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from lampo.bootstrap import Config, open_storage
from lampo.cli.options import StorageOpt
from lampo.cli.render import (
    add_row,
    money_text,
    new_table,
    render_battle,
    render_channels,
    share_text,
)
from lampo.domain.errors import InvalidRequest
from lampo.domain.period import Period, PeriodFigures, Share, percent
from lampo.domain.report import FrontDoorReport
from lampo.domain.stores import MAX_CSV_BYTES, NetworkFigures, Store, parse_csv
from lampo.services import imports
from lampo.services.frontdoor import FrontDoorService
from lampo.services.imports import (
    DEFAULT_ACTUALS,
    DEFAULT_HISTORY,
    DEFAULT_RANKINGS,
    DEFAULT_SHARES,
    DEFAULT_TARGETS,
    ActualResult,
    MarketplaceRank,
)
from lampo.services.report import (
    PeriodReport,
    battle_report,
    comparisons,
    event_of,
    flatten,
    front_door_report,
    period_report,
    to_data,
)
from lampo.services.sales import Sales
from lampo.storage import Storage
from lampo.storage.door import door_store

report_app = typer.Typer(
    name="report",
    help="Battle report of an event, results of a quarter or a year.",
    no_args_is_help=True,
)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FormatOpt = Annotated[Format, typer.Option("--format", help="table, json or csv.")]
StoresOpt = Annotated[
    Path | None,
    typer.Option(
        "--stores",
        help="A store registry CSV (id,name,kind,market,city,opened,closed,lat,lon): names "
        "the stores, places them in cities, and counts the network in period results.",
    ),
]


def read_stores(path: Path | None) -> list[Store]:
    """The store registry of a CSV file (``stores.parse_csv``: refused whole on any bad
    row), its size checked against ``MAX_CSV_BYTES`` before it is read; none without a
    path (the report then takes the registry kept in storage)."""
    if path is None:
        return []
    try:
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            raise InvalidRequest("stores", f"{size:,} bytes, more than {MAX_CSV_BYTES:,}")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InvalidRequest("stores", f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidRequest("stores", f"cannot read {path}: {err}") from None
    return parse_csv(text)


def kept_stores(store: Storage) -> list[Store]:
    """The store registry kept in storage (``lampo stores import``, or a simulated
    scenario's): what a report names and counts stores by unless ``--stores`` says."""
    return list(store.stores()[1])


def _emit(data: object, fmt: Format) -> None:
    plain = to_data(data)
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(plain, indent=2, ensure_ascii=False) + "\n")
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["field", "value"])
        writer.writerows(flatten(plain))


# -- event ----------------------------------------------------------------------------------
@report_app.command("event")
def event_cmd(
    name: Annotated[str, typer.Argument(help="Event id, as `lampo stock` lists them.")],
    storage: StorageOpt = None,
    fmt: FormatOpt = Format.TABLE,
    history: Annotated[
        str, typer.Option(help="Past results to compare with: a shipped name or a CSV file.")
    ] = DEFAULT_HISTORY,
    tz: Annotated[
        str | None, typer.Option(help="Time zone of the times shown (default: first market).")
    ] = None,
    stores: StoresOpt = None,
) -> None:
    """The battle report of an event: totals, channels, milestones, records, rankings, curve."""
    imports.past_results(history)  # a bad history file is refused before storage is opened
    registry = read_stores(stores)
    config = Config.from_env(storage_url=storage)
    store = open_storage(config.storage_url, must_exist=True)
    try:
        registry = registry or kept_stores(store)
        door = _front_door(store, name)
        report = battle_report(
            store, name, datetime.now(UTC), history=history, stores=registry, front_door=door
        )
    finally:
        store.close()
    if fmt is Format.TABLE:
        render_battle(Console(), report, tz)
    else:
        _emit(report, fmt)


def _front_door(store: Storage, name: str) -> FrontDoorReport | None:
    """The front-door section of an event that has one, from storage (registrations,
    queues, the draw; refusals are counted by the serving process, not kept)."""
    event = event_of(store, name)
    if event.front_door is None:
        return None
    sales = Sales(store)
    sales.learn(event)
    # reads only: the service signs nothing here, so a secret of its own will do
    service = FrontDoorService(sales, door_store(store), os.urandom(32))
    return front_door_report(service, event, refusals={})


# -- period ---------------------------------------------------------------------------------
@report_app.command("period")
def period_cmd(
    period: Annotated[str, typer.Argument(help="A quarter (2017Q2) or a year (2017).")],
    vs: Annotated[
        str | None, typer.Option(help="Period to compare with (default: the previous one).")
    ] = None,
    storage: StorageOpt = None,
    fmt: FormatOpt = Format.TABLE,
    tz: Annotated[str, typer.Option(help="Time zone that defines the periods.")] = "UTC",
    currency: Annotated[
        str | None, typer.Option(help="Currency of revenue (default: the events' reporting).")
    ] = None,
    targets: Annotated[
        str, typer.Option(help="Targets: a shipped name or a TOML file.")
    ] = DEFAULT_TARGETS,
    shares: Annotated[
        str, typer.Option(help="Market shares: a shipped name or a CSV file.")
    ] = DEFAULT_SHARES,
    target_scale: Annotated[
        float, typer.Option(help="Scale the targets, to read a scaled simulation against them.")
    ] = 1.0,
    stores: StoresOpt = None,
    actuals: Annotated[
        str,
        typer.Option(help="Results sold outside lampo: a shipped name or a CSV file."),
    ] = DEFAULT_ACTUALS,
    rankings: Annotated[
        str, typer.Option(help="Marketplace rankings: a shipped name or a CSV file.")
    ] = DEFAULT_RANKINGS,
) -> None:
    """Results of a quarter or a year from every order in storage: growth and targets."""
    current = Period.parse(period, tz)
    base = Period.parse(vs, tz) if vs else None
    if not 0 < target_scale <= 10:
        raise InvalidRequest("target-scale", "must be in (0, 10]")
    goals = imports.targets(targets, tz)
    known = imports.market_shares(shares)
    registry = read_stores(stores)
    outside = imports.of_period(imports.actual_results(actuals), current)
    places = imports.of_period(imports.marketplace_rankings(rankings), current)
    config = Config.from_env(storage_url=storage)
    store = open_storage(config.storage_url, must_exist=True)
    try:
        registry = registry or kept_stores(store)
        report = period_report(
            store,
            current,
            base,
            currency.upper() if currency else None,
            goals,
            known,
            Fraction(str(target_scale)),
            registry,
        )
    finally:
        store.close()
    if fmt is Format.TABLE:
        console = Console()
        render_period(console, report)
        render_imported(console, current.label, outside, places)
    else:
        _emit(report, fmt)


def render_imported(
    console: Console, period: str, actuals: list[ActualResult], ranks: list[MarketplaceRank]
) -> None:
    """Results from outside lampo for ``period`` (imported, as reported, never recounted),
    in tables of their own after lampo's figures, each labelled as imported."""
    if actuals:
        table = new_table(f"Results from outside lampo, {period} (imported, as reported)")
        for col in ("market", "channel", "category", "units", "revenue", "source"):
            table.add_column(col, justify="right" if col in ("units", "revenue") else "left")
        for a in actuals:
            add_row(
                table,
                a.market,
                a.channel,
                a.category,
                "-" if a.units is None else f"{a.units:,}",
                "-" if a.revenue is None else money_text(a.revenue.amount, a.revenue.currency),
                a.source,
            )
        console.print(table)
    if ranks:
        table = new_table(f"Marketplace rankings, {period} (imported)")
        for col in ("marketplace", "list", "category", "rank", "brand", "source"):
            table.add_column(col, justify="right" if col == "rank" else "left")
        for r in ranks:
            add_row(table, r.marketplace, r.list, r.category, f"#{r.rank}", r.brand, r.source)
        console.print(table)


def render_period(console: Console, report: PeriodReport) -> None:
    f = report.figures
    cur = f.currency
    console.print(
        Text.assemble(
            (f"Results of {f.period.label}", "bold"),
            f" ({f.period.tz}; {f.period.start:%Y-%m-%d %H:%M} to {f.period.end:%Y-%m-%d %H:%M}"
            f" UTC) from {len(f.events)} event(s): {f.units:,} units · {f.orders:,} orders · ",
            (money_text(f.revenue, cur), "bold"),
        )
    )
    head = new_table("Growth")
    for col in ("figure", f.period.label, "vs", "base", "growth"):
        head.add_column(col, justify="left" if col == "figure" else "right")
    for label, base, growth in comparisons(report):
        add_row(
            head,
            f"units ({label})",
            f"{f.units:,}",
            base.period.label,
            f"{base.units:,}",
            percent(growth.units),
        )
        add_row(
            head,
            f"revenue ({label})",
            money_text(f.revenue, cur),
            base.period.label,
            money_text(base.revenue, cur),
            percent(growth.revenue),
        )
    console.print(head)

    markets = new_table("Per market (growth of local-currency revenue)")
    growths = comparisons(report)
    labels = [label for label, _, _ in growths]
    for col in ("market", "units", "revenue (local)", cur, "share", *labels, "best seller"):
        markets.add_column(col, justify="left" if col in ("market", "best seller") else "right")
    for s in f.by_market:
        local = f.local.get(s.key)
        best = f.best_sellers.get(s.key)
        add_row(
            markets,
            s.key,
            f"{s.units:,}",
            local.format() if local else "-",
            money_text(s.money, cur),
            share_text(s.of(f.revenue)),
            *(percent(growth.by_market_revenue.get(s.key)) for _, _, growth in growths),
            f"{best[0]} ({best[1]:,})" if best else "-",
        )
    console.print(markets)
    _shares(console, "Per category", f, f.by_category)
    if report.channels is not None:
        render_channels(console, report.channels)
    _network(console, report)

    if report.targets:
        tg = new_table("Targets")
        for col in ("target", "goal", "to date", "done", "projected at this pace", "on track"):
            tg.add_column(col, justify="left" if col == "target" else "right")
        for line in report.targets:
            p = line.progress
            t = p.target
            goal = t.money.amount if t.money else t.units or 0

            def show(v: int, unit: str = line.unit, money: bool = t.money is not None) -> str:
                return money_text(v, unit) if money else f"{v:,} {unit}"

            add_row(
                tg,
                t.label,
                show(goal),
                show(p.actual),
                share_text(p.share),
                "-" if p.projection is None else show(p.projection),
                "-" if p.on_track is None else "yes" if p.on_track else "no",
            )
        console.print(tg)
    for market, ranks in report.ranks.items():
        rt = new_table(f"Brand ranking, {market} {f.period.label} (imported)")
        for col in ("rank", "brand", "share"):
            rt.add_column(col, justify="left" if col == "brand" else "right")
        for r in ranks:
            add_row(rt, str(r.rank), r.brand, share_text(r.share))
        console.print(rt)


def _network(console: Console, report: PeriodReport) -> None:
    """The store network: "123 stores, +14 QoQ" in all and per market, its targets'
    progress, and each market's first store when it opened in the period."""
    net = report.network
    if net is None:
        return
    against = net.period.against(net.period.previous())

    def line(n: NetworkFigures) -> str:
        return (
            f"{n.open:,} store{'' if n.open == 1 else 's'}, {n.change:+,} {against} "
            f"({percent(n.growth)}); "
            f"opened {n.opened:,}, closed {n.closed:,}"
        )

    console.print(Text.assemble(("Store network: ", "bold"), line(net.total)))
    if len(net.by_market) > 1:
        for market, figures in net.by_market.items():
            console.print(Text(f"  {market}: {line(figures)}"))
    for p in report.network_targets:
        where = f" in {p.target.market}" if p.target.market else ""
        console.print(
            Text(
                f"Network target {p.target.label}: {p.target.stores:,} stores{where} by "
                f"{p.target.by.isoformat()}; {p.open:,} open on {p.as_of.isoformat()}, "
                f"{share_text(p.share)} of the way"
            )
        )
    for first in report.first_stores:
        console.print(
            Text(
                f"Milestone: first store in {first.market}, {first.name} ({first.store}, "
                f"{first.city}), opened {first.opened.isoformat()}"
            )
        )


def _shares(console: Console, title: str, f: PeriodFigures, rows: list[Share]) -> None:
    table = new_table(title)
    for col in ("", "units", f.currency, "share of revenue"):
        table.add_column(col, justify="left" if not col else "right")
    for s in rows:
        add_row(
            table,
            s.key,
            f"{s.units:,}",
            money_text(s.money, f.currency),
            share_text(s.of(f.revenue)),
        )
    console.print(table)


__all__ = ["render_imported", "render_period", "report_app"]
