"""The live view of a rehearsal (``lampo simulate``, ``lampo demo``): a Rich Live panel
redrawn while the crowd runs, in-process or over HTTP, then cleared for the report.

It shows the progress in the crowd's time (the home market's clock), units sold per
category against the stock on sale, refusals by reason and, over HTTP, requests sent, in
flight and their latency so far. It is drawn only on a terminal: piped or with
``--json``, nothing but the result is written.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from zoneinfo import ZoneInfo

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from lampo.domain.event import SaleEvent

#: Refusal reasons shown (the most frequent); the rest are summed on one line.
TOP_REASONS = 6


@dataclass(frozen=True, slots=True)
class Figures:
    """One frame: crowd seconds done of ``total``, units sold per category, refusals by
    reason; over HTTP also requests sent, in flight and latency so far (ms)."""

    done: float
    total: float
    sold: Mapping[str, int]
    refusals: Mapping[str, int]
    requests: int | None = None
    in_flight: int | None = None
    latency_ms: Mapping[str, float] = field(default_factory=dict)


class LiveView:
    """``with LiveView(console, event, home, title) as view: ... view.show(figures)``.
    Without a terminal (``console.is_terminal`` false), or not ``wanted`` (``--json``),
    ``show`` does nothing."""

    def __init__(
        self, console: Console, event: SaleEvent, home: str, title: str, wanted: bool = True
    ) -> None:
        self.console = console
        self.event = event
        self.tz = ZoneInfo(event.markets[home].tz)
        self.title = title
        self.on = wanted and console.is_terminal
        self.live: Live | None = None
        self.started = time.perf_counter()
        self.stock: dict[str, int] = {}
        for offer in event.offers.values():
            category = event.category_of(offer.sku)
            self.stock[category] = self.stock.get(category, 0) + offer.allocation

    def __enter__(self) -> LiveView:
        if self.on:
            self.live = Live(console=self.console, transient=True, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live is not None:
            self.live.__exit__(kind, exc, tb)
            self.live = None

    def show(self, figures: Figures) -> None:
        if self.live is not None:
            self.live.update(self.render(figures))

    def render(self, f: Figures) -> RenderableType:
        at: datetime = self.event.opens + timedelta(seconds=f.done)
        elapsed = time.perf_counter() - self.started
        head = Table.grid(padding=(0, 2), expand=True)
        head.add_column(ratio=1)
        head.add_column(justify="right")
        head.add_row(
            ProgressBar(total=max(f.total, 1.0), completed=f.done),
            f"{at.astimezone(self.tz):%Y-%m-%d %H:%M:%S} · {elapsed:,.0f} s",
        )
        parts: list[RenderableType] = [head]
        if f.requests is not None:
            latency = " · ".join(f"{k} {v:,.1f} ms" for k, v in f.latency_ms.items())
            parts.append(
                Text(f"{f.requests:,} requests answered · {f.in_flight or 0:,} in flight")
                + Text(f" · latency {latency}" if latency else "")
            )
        tables = Table.grid(padding=(0, 4))
        tables.add_row(self._sold(f.sold), self._refusals(f.refusals))
        parts.append(tables)
        return Panel(Group(*parts), title=self.title, title_align="left")

    def _sold(self, sold: Mapping[str, int]) -> Table:
        table = Table(box=None, title="sold", title_justify="left")
        table.add_column("category")
        table.add_column("sold", justify="right")
        table.add_column("on sale", justify="right")
        for cid, category in self.event.categories.items():
            if self.stock.get(cid):
                table.add_row(Text(category.name), f"{sold.get(cid, 0):,}", f"{self.stock[cid]:,}")
        return table

    def _refusals(self, refusals: Mapping[str, int]) -> Table:
        table = Table(box=None, title="refused", title_justify="left")
        table.add_column("reason")
        table.add_column("count", justify="right")
        ranked = sorted(refusals.items(), key=lambda kv: (-kv[1], kv[0]))
        for reason, count in ranked[:TOP_REASONS]:
            table.add_row(Text(reason), f"{count:,}")
        rest = sum(count for _, count in ranked[TOP_REASONS:])
        if rest:
            table.add_row("others", f"{rest:,}")
        return table
