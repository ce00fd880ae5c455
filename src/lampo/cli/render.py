"""Rich rendering that several commands share: the battle report (``lampo report event``,
and the end of ``lampo simulate`` and ``lampo demo``) and the table helpers of every
report. Text from event definitions and history files prints as text, never markup."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lampo.domain.channel_report import ChannelMix
from lampo.domain.money import Money
from lampo.domain.period import percent, zone
from lampo.domain.records import amount_text, margin_text
from lampo.domain.report import BattleReport, Bucket, Row, measured
from lampo.domain.timetext import LocalClock


def money_text(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def share_text(value: Fraction) -> str:
    return percent(value).replace("+", "")


def spark(buckets: list[Bucket], width: int = 72) -> str:
    bars = " ▁▂▃▄▅▆▇█"
    values = [b.units for b in buckets]
    if not values:
        return ""
    step = max(1, -(-len(values) // width))
    sums = [sum(values[i : i + step]) for i in range(0, len(values), step)]
    top = max(sums) or 1
    return "".join(bars[-(-v * (len(bars) - 1) // top)] for v in sums)


def add_row(table: Table, *cells: str | Text) -> None:
    """Add a row whose text cells print as they are: names come from event definitions
    and history files, so a '[' in one is text, never Rich markup."""
    table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells))


def new_table(title: str) -> Table:
    return Table(title=Text(title), title_justify="left")


def render_battle(console: Console, report: BattleReport, tz: str | None = None) -> None:
    """The battle report as Rich tables (``tz``: the zone of the times shown). A local time
    reads with its date unless the event opens and closes on one date there, which the
    table's title then states."""
    zone_name = tz or next(iter(report.markets.values()), "UTC")
    shown = LocalClock.over(zone(zone_name), report.opens, report.closes)

    def at(when: datetime | None) -> str:
        return shown.text(when, millis=True) if when else "-"

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
        table = new_table(title)
        for col in (label, "units", "orders", *(["local"] if local else []), cur):
            table.add_column(col, justify="left" if col == label else "right")
        for r in rows:
            cells = [r.key, f"{r.units:,}", "-" if r.orders is None else f"{r.orders:,}"]
            if local:
                cells.append(", ".join(money_text(a, c) for c, a in r.amounts.items()))
            add_row(table, *cells, r.money.format())
        console.print(table)

    rows_table("Sales per category", report.by["category"], "category")
    rows_table("Sales per market", report.by["market"], "market", local=True)
    if report.channels is not None:
        render_channels(console, report.channels)
    rows_table(
        "Sales per referral (online; other channels by kind)", report.by["referral"], "referral"
    )

    skus = new_table(f"Stock sold per SKU (times in {zone_name}{shown.on})")
    for col in ("SKU", "category", "sold", "allocation", "share", "sold out at"):
        skus.add_column(col, justify="left" if col in ("SKU", "category") else "right")
    for s in sorted(report.skus, key=lambda s: (s.sold_out_at is None, s.sold_out_at, s.sku)):
        add_row(
            skus,
            s.name,
            s.category,
            f"{s.sold:,}",
            f"{s.allocation:,}",
            share_text(s.share),
            at(s.sold_out_at),
        )
    console.print(skus)

    if report.milestones:
        ms = new_table("Milestones (the payment that crossed each)")
        ms.add_column("milestone")
        ms.add_column("threshold", justify="right")
        ms.add_column("through", justify="left")
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
            cells = [m.label, measured(m, cur, report.category_units), c.channel or "-"]
            if c.at is None:
                cells += ["not reached"] + ["" for _ in columns]
            else:
                utc = c.at.astimezone(UTC)
                cells.append(f"{utc:%Y-%m-%d %H:%M:%S}.{utc.microsecond // 1000:03d}")
                cells += [clock.text(c.at, millis=True) for clock in columns]
            add_row(ms, *cells)
        console.print(ms)

    if report.records:
        rec = new_table("Records")
        for col in ("record", "this event", "best before", "held by", "beaten", "margin"):
            rec.add_column(col, justify="left" if col in ("record", "held by") else "right")
        for r in report.records:
            beaten = "-" if r.beaten is None else Text("yes", "green") if r.beaten else "no"
            add_row(
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
        best = new_table("Best sellers and category champions")
        for col in ("rank", "SKU", "units", cur, "where"):
            best.add_column(col, justify="left" if col in ("SKU", "where") else "right")
        for top in rk.overall:
            add_row(best, str(top.rank), top.key, f"{top.units:,}", top.money.format(), "overall")
        for cat, top in rk.champions.items():
            add_row(best, "1", top.key, f"{top.units:,}", top.money.format(), f"champion of {cat}")
        for market, ranked in rk.per_market.items():
            top = ranked[0]
            add_row(best, "1", top.key, f"{top.units:,}", top.money.format(), f"best in {market}")
        console.print(best)

    curve = report.curve.per_minute
    if curve and any(b.units for b in curve):
        peak = max(curve, key=lambda b: b.units)
        console.print(
            f"[bold]Units paid per minute[/] ({shown.text(report.opens)} to "
            f"{shown.text(report.closes)}{shown.on}, "
            f"peak {peak.units:,} at {shown.text(peak.start)}): {spark(curve)}"
        )
        first = report.curve.per_second[:120]
        console.print(f"[bold]First 2 minutes, per second[/]: {spark(first, 120)}")
    _discounts(console, report)
    _front_door(console, report)
    if report.refusals:
        console.print(
            "Refused requests: "
            + ", ".join(f"{reason} {n:,}" for reason, n in report.refusals.items())
        )


def render_channels(console: Console, mix: ChannelMix) -> None:
    """The "Channels" section of a battle report or a period's results: the mix by kind
    with the offline share, every outlet, and the top marketplaces, stores and cities.
    Shares are of the units and money of the whole; the money of the parts adds up to the
    total exactly (``domain/channel_report.py``)."""
    cur = mix.money.currency
    kinds = new_table("Channels: mix by kind")
    for col in ("kind", "units", "% units", "orders", cur, "% money"):
        kinds.add_column(col, justify="left" if col == "kind" else "right", no_wrap=col == "kind")
    for p in mix.by_kind:
        add_row(
            kinds,
            p.key,
            f"{p.units:,}",
            share_text(p.units_share),
            f"{p.orders:,}",
            p.money.format(),
            share_text(p.money_share),
        )
    console.print(kinds)
    off = mix.offline
    console.print(
        Text(
            f"Offline share (stores): {share_text(off.money_share)} of money "
            f"({off.money.format()} of {mix.money.format()}), "
            f"{share_text(off.units_share)} of units ({off.units:,} of {mix.units:,})"
        )
    )
    outlets = new_table("Channels: per outlet")
    # amounts in their own currencies only when some are not in the reporting one
    local = any(c != cur and a for p in mix.by_outlet for c, a in p.amounts.items())
    for col in ("outlet", "units", "orders", *(["local"] if local else []), cur, "% money"):
        outlets.add_column(
            col, justify="left" if col == "outlet" else "right", no_wrap=col == "outlet"
        )
    for p in mix.by_outlet:
        cells = [p.key, f"{p.units:,}", f"{p.orders:,}"]
        if local:
            cells.append(", ".join(money_text(a, c) for c, a in p.amounts.items()) or "-")
        add_row(outlets, *cells, p.money.format(), share_text(p.money_share))
    console.print(outlets)
    for title, rows, label in (
        ("Top marketplaces", mix.marketplaces, "marketplace"),
        ("Top stores", mix.stores, "store"),
        ("Top cities (stores)", mix.cities, "city"),
    ):
        if not rows:
            continue
        table = new_table(title)
        with_city = label == "store"
        for col in ("rank", label, *(["city"] if with_city else []), "units", cur):
            table.add_column(col, justify="left" if col in (label, "city") else "right")
        for r in rows:
            name = r.key if r.name == r.key else f"{r.name} ({r.key})"
            add_row(
                table,
                str(r.rank),
                name,
                *([r.city] if with_city else []),
                f"{r.units:,}",
                r.money.format(),
            )
        console.print(table)


def _front_door(console: Console, report: BattleReport) -> None:
    """The front door (issue 13): registrations, each market's queue, the refusals of
    the bot defence by reason, and the fairness a rehearsal measured."""
    door = report.front_door
    if door is None:
        return
    drawn = f", {door.drawn:,} drawn" if door.drawn is not None else ""
    console.print(f"[bold]Front door[/]: {door.registrations:,} registered{drawn}")
    if door.queues:
        table = new_table("Waiting room")
        for col in ("market", "joined", "pre-queue", "peak", "admitted", "waiting", "per second"):
            table.add_column(col, justify="left" if col == "market" else "right")
        for q in door.queues:
            peak = "-" if q.peak is None else f"{q.peak:,}"
            add_row(
                table,
                q.market,
                f"{q.joined:,}",
                f"{q.prequeue:,}",
                peak,
                f"{q.admitted:,}",
                f"{q.waiting:,}",
                f"{q.rate:,}",
            )
        console.print(table)
    if door.refusals:
        console.print(
            "Refused at the front door: "
            + ", ".join(f"{reason} {n:,}" for reason, n in door.refusals.items())
        )
    for label, figure in door.fairness.items():
        console.print(Text(f"Fairness, {label}: {figure}"))  # the simulator's words, as text


def _discounts(console: Console, report: BattleReport) -> None:
    """The discount given (list price minus flash price), per SKU and for the event, when
    any SKU sold below a list price."""
    given = report.discounts
    if given is None or not any(d.amounts.get(c) for d in given.per_sku for c in d.amounts):
        return
    rows = [*given.per_sku, given.total]
    # amounts in their own currencies only when some are not in the reporting one
    local = any(c != report.reporting and a for d in rows for c, a in d.amounts.items())
    table = new_table("Discount given (list price minus flash price, on the units sold)")
    head = ("SKU", "units", *(["local"] if local else []), report.reporting, "at list", "off")
    for col in head:
        table.add_column(col, justify="left" if col == "SKU" else "right")
    for d in rows:
        cells = [d.key or "the event", f"{d.units:,}"]
        if local:
            cells.append(", ".join(money_text(a, c) for c, a in d.amounts.items() if a) or "-")
        add_row(table, *cells, d.money.format(), d.list_money.format(), share_text(d.percent))
    console.print(table)


__all__ = [
    "add_row",
    "money_text",
    "new_table",
    "render_battle",
    "render_channels",
    "share_text",
    "spark",
]
