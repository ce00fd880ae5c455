"""``lampo report``: the battle report of an event and the results of a period.

``lampo report event NAME`` and ``lampo report period 2017Q2 [--vs 2017Q1]``, each with
``--format table|json|csv`` and ``--storage URL``. Tables are Rich; JSON and CSV carry the
exact figures (money in integer minor units, ratios as exact fractions).
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from fractions import Fraction
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lampo.bootstrap import Config, open_storage
from lampo.domain.errors import InvalidRequest
from lampo.domain.money import Money
from lampo.domain.period import Growth, Period, PeriodFigures, Share, percent, zone
from lampo.domain.records import amount_text, margin_text
from lampo.domain.report import BattleReport, Bucket, Row, measured
from lampo.domain.timetext import LocalClock
from lampo.services import imports
from lampo.services.imports import DEFAULT_HISTORY
from lampo.services.report import PeriodReport, battle_report, flatten, period_report, to_data
from lampo.storage import urls

report_app = typer.Typer(
    name="report",
    help="Battle report of an event, results of a quarter or a year.",
    no_args_is_help=True,
)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        envvar="LAMPO_STORAGE",
        show_envvar=True,
        help=f"{urls.cli_help()} Default: sqlite:///lampo.db.",
    ),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="table, json or csv.")]


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
) -> None:
    """The battle report of an event: totals, milestones, records, rankings, curve."""
    imports.past_results(history)  # a bad history file is refused before storage is opened
    config = Config.from_env(storage_url=storage)
    store = open_storage(config.storage_url, must_exist=True)
    try:
        report = battle_report(store, name, datetime.now(UTC), history=history)
    finally:
        store.close()
    if fmt is Format.TABLE:
        render_battle(Console(), report, tz)
    else:
        _emit(report, fmt)


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def _pct(value: Fraction) -> str:
    return percent(value).replace("+", "")


def _spark(buckets: list[Bucket], width: int = 72) -> str:
    bars = " ▁▂▃▄▅▆▇█"
    values = [b.units for b in buckets]
    if not values:
        return ""
    step = max(1, -(-len(values) // width))
    sums = [sum(values[i : i + step]) for i in range(0, len(values), step)]
    top = max(sums) or 1
    return "".join(bars[-(-v * (len(bars) - 1) // top)] for v in sums)


def _row(table: Table, *cells: str | Text) -> None:
    """Add a row whose text cells print as they are: names come from event definitions
    and history files, so a '[' in one is text, never Rich markup."""
    table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells))


def _table(title: str) -> Table:
    return Table(title=Text(title), title_justify="left")


def render_battle(console: Console, report: BattleReport, tz: str | None = None) -> None:
    """The battle report as Rich tables (``tz``: the zone of the times shown). A local time
    reads with its date unless the event opens and closes on one date there, which the
    table's title then states."""
    zone_name = tz or next(iter(report.markets.values()), "UTC")
    shown = LocalClock.over(zone(zone_name), report.opens, report.closes)

    def at(when: datetime | None) -> str:
        return shown.text(when) if when else "-"

    cur = report.reporting
    truth = ("equal", "green") if report.truth else ("DIFFERENT", "red")
    console.print(
        Text.assemble(
            (f"Battle report: {report.name}", "bold"),
            f" ({report.event}) · {report.units:,} units · {report.orders:,} orders · "
            f"{report.buyers:,} buyers · ",
            (report.money.format(), "bold"),
            f" (FX of {report.fx_on}) · live totals vs recount from orders: ",
            truth,
        )
    )

    def rows_table(title: str, rows: list[Row], label: str, local: bool = False) -> None:
        table = _table(title)
        for col in (label, "units", "orders", *(["local"] if local else []), cur):
            table.add_column(col, justify="left" if col == label else "right")
        for r in rows:
            cells = [r.key, f"{r.units:,}", "-" if r.orders is None else f"{r.orders:,}"]
            if local:
                cells.append(", ".join(_money(a, c) for c, a in r.amounts.items()))
            _row(table, *cells, r.money.format())
        console.print(table)

    rows_table("Sales per category", report.by["category"], "category")
    rows_table("Sales per market", report.by["market"], "market", local=True)
    rows_table("Sales per channel", report.by["outlet"], "channel")
    rows_table("Sales per referral (online)", report.by["referral"], "referral")

    skus = _table(f"Stock sold per SKU (times in {zone_name}{shown.on})")
    for col in ("SKU", "category", "sold", "allocation", "share", "sold out at"):
        skus.add_column(col, justify="left" if col in ("SKU", "category") else "right")
    for s in sorted(report.skus, key=lambda s: (s.sold_out_at is None, s.sold_out_at, s.sku)):
        _row(
            skus,
            s.name,
            s.category,
            f"{s.sold:,}",
            f"{s.allocation:,}",
            _pct(s.share),
            at(s.sold_out_at),
        )
    console.print(skus)

    if report.milestones:
        ms = _table("Milestones (the payment that crossed each)")
        ms.add_column("milestone")
        ms.add_column("threshold", justify="right")
        ms.add_column("UTC", justify="right")
        # One column per local clock: markets whose clocks agree at the opening share one.
        clocks: dict[object, list[str]] = {}
        for code in sorted(report.markets):
            offset = report.opens.astimezone(zone(report.markets[code])).utcoffset()
            clocks.setdefault(offset, []).append(code)
        columns = [
            LocalClock.over(zone(report.markets[codes[0]]), report.opens, report.closes)
            for codes in clocks.values()
        ]
        for codes, clock in zip(clocks.values(), columns, strict=True):
            ms.add_column(" ".join(codes) + clock.on, justify="right")
        for c in report.milestones:
            m = c.milestone
            cells = [m.label, measured(m, cur, report.category_units)]
            if c.at is None:
                cells += ["not reached"] + ["" for _ in columns]
            else:
                cells.append(c.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))
                cells += [clock.text(c.at) for clock in columns]
            _row(ms, *cells)
        console.print(ms)

    if report.records:
        rec = _table("Records")
        for col in ("record", "this event", "best before", "held by", "beaten", "margin"):
            rec.add_column(col, justify="left" if col in ("record", "held by") else "right")
        for r in report.records:
            beaten = "-" if r.beaten is None else Text("yes", "green") if r.beaten else "no"
            _row(
                rec,
                r.title,
                amount_text(r.value, r.unit),
                "-" if r.best is None else amount_text(r.best, r.unit),
                r.best_name or "-",
                beaten,
                margin_text(r),
            )
        console.print(rec)

    rk = report.rankings
    if rk.overall:
        best = _table("Best sellers and category champions")
        for col in ("rank", "SKU", "units", cur, "where"):
            best.add_column(col, justify="left" if col in ("SKU", "where") else "right")
        for top in rk.overall:
            _row(best, str(top.rank), top.key, f"{top.units:,}", top.money.format(), "overall")
        for cat, top in rk.champions.items():
            _row(best, "1", top.key, f"{top.units:,}", top.money.format(), f"champion of {cat}")
        for market, ranked in rk.per_market.items():
            top = ranked[0]
            _row(best, "1", top.key, f"{top.units:,}", top.money.format(), f"best in {market}")
        console.print(best)

    curve = report.curve.per_minute
    if curve and any(b.units for b in curve):
        peak = max(curve, key=lambda b: b.units)
        console.print(
            f"[bold]Units paid per minute[/] ({at(report.opens)} to {at(report.closes)}"
            f"{shown.on}, "
            f"peak {peak.units:,} at {at(peak.start)}): {_spark(curve)}"
        )
        first = report.curve.per_second[:120]
        console.print(f"[bold]First 2 minutes, per second[/]: {_spark(first, 120)}")
    if report.refusals:
        console.print(
            "Refused requests: "
            + ", ".join(f"{reason} {n:,}" for reason, n in report.refusals.items())
        )


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
    ] = "targets.toml",
    shares: Annotated[
        str, typer.Option(help="Market shares: a shipped name or a CSV file.")
    ] = "market-share.csv",
    target_scale: Annotated[
        float, typer.Option(help="Scale the targets, to read a scaled simulation against them.")
    ] = 1.0,
) -> None:
    """Results of a quarter or a year from every order in storage: growth and targets."""
    current = Period.parse(period, tz)
    base = Period.parse(vs, tz) if vs else None
    if not 0 < target_scale <= 10:
        raise InvalidRequest("target-scale", "must be in (0, 10]")
    goals = imports.targets(targets, tz)
    known = imports.market_shares(shares)
    config = Config.from_env(storage_url=storage)
    store = open_storage(config.storage_url, must_exist=True)
    try:
        report = period_report(
            store,
            current,
            base,
            currency.upper() if currency else None,
            goals,
            known,
            Fraction(str(target_scale)),
        )
    finally:
        store.close()
    if fmt is Format.TABLE:
        render_period(Console(), report)
    else:
        _emit(report, fmt)


def render_period(console: Console, report: PeriodReport) -> None:
    f = report.figures
    cur = f.currency
    console.print(
        Text.assemble(
            (f"Results of {f.period.label}", "bold"),
            f" ({f.period.tz}; {f.period.start:%Y-%m-%d %H:%M} to {f.period.end:%Y-%m-%d %H:%M}"
            f" UTC) from {len(f.events)} event(s): {f.units:,} units · {f.orders:,} orders · ",
            (_money(f.revenue, cur), "bold"),
        )
    )
    head = _table("Growth")
    for col in ("figure", f.period.label, "vs", "base", "growth"):
        head.add_column(col, justify="left" if col == "figure" else "right")
    for label, base, growth in _comparisons(report):
        _row(
            head,
            f"units ({label})",
            f"{f.units:,}",
            base.period.label,
            f"{base.units:,}",
            percent(growth.units),
        )
        _row(
            head,
            f"revenue ({label})",
            _money(f.revenue, cur),
            base.period.label,
            _money(base.revenue, cur),
            percent(growth.revenue),
        )
    console.print(head)

    markets = _table("Per market (growth of local-currency revenue)")
    growths = _comparisons(report)
    labels = [label for label, _, _ in growths]
    for col in ("market", "units", "revenue (local)", cur, "share", *labels, "best seller"):
        markets.add_column(col, justify="left" if col in ("market", "best seller") else "right")
    for s in f.by_market:
        local = f.local.get(s.key)
        best = f.best_sellers.get(s.key)
        _row(
            markets,
            s.key,
            f"{s.units:,}",
            local.format() if local else "-",
            _money(s.money, cur),
            _pct(s.of(f.revenue)),
            *(percent(growth.by_market_revenue.get(s.key)) for _, _, growth in growths),
            f"{best[0]} ({best[1]:,})" if best else "-",
        )
    console.print(markets)
    _shares(console, "Per channel", f, f.by_channel)
    _shares(console, "Per category", f, f.by_category)

    if report.targets:
        tg = _table("Targets")
        for col in ("target", "goal", "to date", "done", "projected at this pace", "on track"):
            tg.add_column(col, justify="left" if col == "target" else "right")
        for line in report.targets:
            p = line.progress
            t = p.target
            goal = t.money.amount if t.money else t.units or 0

            def show(v: int, unit: str = line.unit, money: bool = t.money is not None) -> str:
                return _money(v, unit) if money else f"{v:,} {unit}"

            _row(
                tg,
                t.label,
                show(goal),
                show(p.actual),
                _pct(p.share),
                "-" if p.projection is None else show(p.projection),
                "-" if p.on_track is None else "yes" if p.on_track else "no",
            )
        console.print(tg)
    for market, ranks in report.ranks.items():
        rt = _table(f"Brand ranking, {market} {f.period.label} (imported)")
        for col in ("rank", "brand", "share"):
            rt.add_column(col, justify="left" if col == "brand" else "right")
        for r in ranks:
            _row(rt, str(r.rank), r.brand, _pct(r.share))
        console.print(rt)


def _comparisons(report: PeriodReport) -> list[tuple[str, PeriodFigures, Growth]]:
    """(name, base, growth) of each comparison the period report shows: against its base
    (``QoQ``, ``YoY`` or ``vs 2016Q4``), then year on year unless the base is that year."""
    out = []
    if report.base is not None and report.growth is not None:
        out.append((report.against, report.base, report.growth))
    if report.year_ago is not None and report.yoy is not None and report.against != "YoY":
        out.append(("YoY", report.year_ago, report.yoy))
    return out


def _shares(console: Console, title: str, f: PeriodFigures, rows: list[Share]) -> None:
    table = _table(title)
    for col in ("", "units", f.currency, "share of revenue"):
        table.add_column(col, justify="left" if not col else "right")
    for s in rows:
        _row(table, s.key, f"{s.units:,}", _money(s.money, f.currency), _pct(s.of(f.revenue)))
    console.print(table)


__all__ = ["render_battle", "render_period", "report_app"]
