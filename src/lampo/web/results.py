"""The results pages: ``/results/{period}`` shows what ``lampo report period`` prints, as a
page with charts; ``/results`` lists the periods with orders.

The figures come from the same code as the command line (``services.report.period_report``
with the shipped targets and market shares, the same defaults): the tables print them with
the same formatting (``Money.format``, ``percent``), and the page carries the report as
``lampo report period --format json`` gives it (``to_data``) in a JSON data block, from
which the charts are drawn. Periods are in UTC, compared with the previous period (QoQ)
and the same period a year earlier (YoY), as ``lampo report period PERIOD`` does.

Charts are Chart.js, vendored (``static/chartjs/``) and served by the app
(``docs.ASSETS``), loaded with its Subresource Integrity. The page's
Content-Security-Policy allows scripts from this server and the page's own inline script
by its hash, the inline style by its hash, and nothing else: no request leaves the page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources

from lampo.domain.money import MINOR_UNITS, Money
from lampo.domain.period import Period, Share, percent
from lampo.services.report import PeriodReport, comparisons, to_data
from lampo.web import docs

HTML = b"text/html; charset=utf-8"
CHART_JS = "/results/chart.umd.min.js"
#: How long one read of a period's results serves every reader (per worker), in seconds.
#: A period's figures change only as its orders are paid or refunded, and a read goes
#: through every order in storage (seconds for tens of thousands of orders on a busy
#: host), so they are kept longer than the live report's ``LAMPO_REPORT_TTL``.
TTL = 30.0


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.cache
def _static() -> tuple[str, str]:
    """The page's style and script (``static/results.css``, ``.js``), read once."""
    folder = resources.files("lampo.web") / "static"
    return (
        (folder / "results.css").read_text(encoding="utf-8"),
        (folder / "results.js").read_text(encoding="utf-8"),
    )


def _page(status: int, title: str, content: str, charts: bool = False) -> Page:
    style, script = _static()
    scripts = ""
    script_src = "'none'"
    if charts:
        scripts = (
            f"<script src='{docs.url(CHART_JS)}' integrity='{docs.integrity(CHART_JS)}'>"
            f"</script><script>{script}</script>"
        )
        script_src = f"'self' {_hash(script)}"
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><link rel='icon' href='data:,'>"
        f"<style>{style}</style></head>{content}{scripts}</body></html>"
    )
    csp = (
        f"default-src 'none'; script-src {script_src}; style-src {_hash(style)}; "
        "img-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    headers = [
        (b"content-type", HTML),
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-cache"),
    ]
    return Page(status, body.encode(), headers)


def path_of(period: Period) -> str:
    return f"/results/{period.label}"


def index(periods: Sequence[Period]) -> Page:
    """Every year and quarter with orders, each a link to its results."""
    if not periods:
        items = "<p class='muted'>No order has been paid yet, so there is no result.</p>"
    else:
        years = sorted({p.year for p in periods}, reverse=True)
        rows = []
        for year in years:
            links = "".join(
                f"<li class='{'year' if not p.quarter else 'quarter'}'>"
                f"<a href='{path_of(p)}'>{p.label}</a></li>"
                for p in periods
                if p.year == year
            )
            rows.append(f"<h2>{year}</h2><ul class='periods'>{links}</ul>")
        items = "".join(rows)
    return _page(
        200,
        "Results",
        "<body><main><h1>Results</h1><p class='muted'>Quarters and years with orders "
        f"(UTC), the latest first.</p>{items}</main>",
    )


def problem(status: int, title: str, text: str) -> Page:
    """A small page for a period that does not parse (400) or has no order (404)."""
    return _page(
        status,
        title,
        f"<body><main><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        "<p><a href='/results'>Every period with results</a></p></main>",
    )


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def _share(value: Fraction | None) -> str:
    return percent(value).replace("+", "")


def _growth(value: Fraction | None) -> str:
    text = percent(value)
    kind = "up" if text.startswith("+") else "down" if text.startswith("-") else "muted"
    return f"<span class='{kind}'>{html.escape(text)}</span>"


def _table(
    title: str, head: Iterable[str], rows: Iterable[Iterable[str]], wide: bool = False
) -> str:
    """A table whose cells are HTML already (escaped where they carry text); ``wide``: it
    takes the whole width of the page."""
    cols = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    kind = "table wide" if wide else "table"
    return (
        f"<section class='{kind}'><h2>{html.escape(title)}</h2><div class='scroll'><table>"
        f"<thead><tr>{cols}</tr></thead><tbody>{body}</tbody></table></div></section>"
    )


def _shares(title: str, rows: Iterable[Share], currency: str, revenue: int) -> str:
    esc = html.escape
    return _table(
        title,
        ("", "units", currency, "share of revenue"),
        (
            [esc(s.key), f"{s.units:,}", esc(_money(s.money, currency)), _share(s.of(revenue))]
            for s in rows
        ),
    )


def _channels(report: PeriodReport) -> list[str]:
    """The period's channel mix by outlet with the offline share, its top marketplaces,
    stores and cities, and the store network (when the report has a registry)."""
    mix = report.channels
    esc = html.escape
    out = []
    if mix is not None and mix.by_outlet:
        cur = mix.money.currency
        off = mix.offline
        out.append(
            _table(
                f"Per outlet (offline share: {_share(off.money_share)} of revenue, "
                f"{_share(off.units_share)} of units)",
                ("outlet", "units", "orders", cur, "share of revenue"),
                (
                    [
                        esc(p.key),
                        f"{p.units:,}",
                        f"{p.orders:,}",
                        esc(p.money.format()),
                        esc(_share(p.money_share)),
                    ]
                    for p in mix.by_outlet
                ),
            )
        )
        for title, rows in (
            ("Top marketplaces", mix.marketplaces),
            ("Top stores", mix.stores),
            ("Top cities (stores)", mix.cities),
        ):
            if rows:
                out.append(
                    _table(
                        title,
                        ("rank", "name", "city", "units", cur),
                        (
                            [
                                str(r.rank),
                                esc(r.name),
                                esc(r.city or "-"),
                                f"{r.units:,}",
                                esc(r.money.format()),
                            ]
                            for r in rows
                        ),
                    )
                )
    net = report.network
    if net is not None:
        against = net.period.against(net.period.previous())
        network_rows = [
            [
                esc("all markets" if n.market == "*" else n.market),
                f"{n.open:,}",
                f"{n.change:+,}",
                _growth(n.growth),
                f"{n.opened:,}",
                f"{n.closed:,}",
            ]
            for n in (net.total, *net.by_market.values())
        ]
        out.append(
            _table(
                f"Store network ({against})",
                ("market", "stores", "change", "growth", "opened", "closed"),
                network_rows,
            )
        )
        goals = [
            [
                esc(p.target.label),
                f"{p.target.stores:,}",
                esc(p.target.by.isoformat()),
                f"{p.open:,}",
                esc(_share(p.share)),
            ]
            for p in report.network_targets
        ]
        goals += [
            [esc(f"first store in {s.market}: {s.name}"), "1", esc(s.opened.isoformat()), "1", "-"]
            for s in report.first_stores
        ]
        if goals:
            out.append(
                _table(
                    "Network targets and milestones",
                    ("target", "stores", "by", "open", "done"),
                    goals,
                )
            )
    return out


def _figure(canvas: str, caption: str) -> str:
    return (
        f"<figure><figcaption>{html.escape(caption)}</figcaption><div class='plot'>"
        f"<canvas id='{canvas}' role='img' aria-label='{html.escape(caption)}'></canvas>"
        "</div></figure>"
    )


def results(report: PeriodReport) -> Page:
    """The results page of ``report``."""
    f = report.figures
    cur = f.currency
    label = f.period.label
    compared = comparisons(report)
    esc = html.escape

    def card(title: str, value: str, base_of: str) -> str:
        lines = "".join(
            f"<div class='growth'>{_growth(getattr(growth, base_of))} {esc(name)} "
            f"<span class='muted'>vs {esc(base.period.label)}</span></div>"
            for name, base, growth in compared
        )
        return (
            f"<div class='card'><div class='label'>{esc(title)}</div>"
            f"<div class='value'>{esc(value)}</div>{lines}</div>"
        )

    cards = (
        card("Units", f"{f.units:,}", "units")
        + card("Revenue", _money(f.revenue, cur), "revenue")
        + f"<div class='card'><div class='label'>Orders</div><div class='value'>{f.orders:,}"
        f"</div><div class='growth muted'>from {len(f.events)} event(s)</div></div>"
    )

    growth_rows = []
    for name, base, growth in compared:
        growth_rows.append(
            [
                f"units ({esc(name)})",
                f"{f.units:,}",
                esc(base.period.label),
                f"{base.units:,}",
                _growth(growth.units),
            ]
        )
        growth_rows.append(
            [
                f"revenue ({esc(name)})",
                esc(_money(f.revenue, cur)),
                esc(base.period.label),
                esc(_money(base.revenue, cur)),
                _growth(growth.revenue),
            ]
        )
    tables = [
        _table("Growth", ("figure", label, "vs", "base", "growth"), growth_rows),
        _shares("Per category", f.by_category, cur, f.revenue),
    ]

    market_rows = []
    for s in f.by_market:
        local = f.local.get(s.key)
        best = f.best_sellers.get(s.key)
        market_rows.append(
            [
                esc(s.key),
                f"{s.units:,}",
                esc(local.format()) if local else "-",
                esc(_money(s.money, cur)),
                esc(_share(s.of(f.revenue))),
                *(_growth(g.by_market_revenue.get(s.key)) for _, _, g in compared),
                f"{esc(best[0])} ({best[1]:,})" if best else "-",
            ]
        )
    tables.append(
        _table(
            "Per market (growth of local-currency revenue)",
            ["market", "units", "revenue (local)", cur, "share"]
            + [n for n, _, _ in compared]
            + ["best seller"],
            market_rows,
            wide=True,
        )
    )
    tables.append(_shares("Per channel", f.by_channel, cur, f.revenue))
    tables.extend(_channels(report))
    if report.targets:
        target_rows = []
        for line in report.targets:
            p = line.progress
            t = p.target
            is_money = t.money is not None
            goal = t.money.amount if t.money else t.units or 0

            def show(v: int, unit: str = line.unit, money: bool = is_money) -> str:
                return esc(_money(v, unit) if money else f"{v:,} {unit}")

            on_track = "-" if p.on_track is None else "yes" if p.on_track else "no"
            target_rows.append(
                [
                    esc(t.label),
                    show(goal),
                    show(p.actual),
                    esc(_share(p.share)),
                    "-" if p.projection is None else show(p.projection),
                    on_track,
                ]
            )
        tables.append(
            _table(
                "Targets",
                ("target", "goal", "to date", "done", "projected at this pace", "on track"),
                target_rows,
                wide=True,
            )
        )
    for market, ranks in report.ranks.items():
        tables.append(
            _table(
                f"Brand ranking, {market} {label} (imported)",
                ("rank", "brand", "share"),
                ([str(r.rank), esc(r.brand), esc(_share(r.share))] for r in ranks),
            )
        )

    versus = ", ".join(f"{b.period.label} ({n})" for n, b, _ in compared)
    figures = [
        _figure("chart-markets", f"Revenue per market ({cur}): {label} against {versus}"),
        _figure("chart-categories", f"Units per category: {label} against {versus}"),
        _figure("chart-channels", f"Revenue per channel, {label}"),
    ]
    if report.targets:
        figures.append(_figure("chart-targets", "Targets: share done and share of time gone"))
    for i, market in enumerate(report.ranks):
        figures.append(_figure(f"chart-ranks-{i}", f"Brand shares, {market} {label}"))

    # the report as `lampo report period --format json` gives it; "<" escaped so that no
    # text in it can close the script element
    data = json.dumps(to_data(report), ensure_ascii=False).replace("<", "\\u003c")
    span = f"{f.period.start:%Y-%m-%d %H:%M} to {f.period.end:%Y-%m-%d %H:%M} UTC"
    content = (
        f"<body data-minor='{MINOR_UNITS[cur]}'><main>"
        f"<h1>Results of {esc(label)}</h1>"
        f"<p class='muted'>{esc(f.period.tz)}; {esc(span)} · {f.units:,} units · "
        f"{f.orders:,} orders · {esc(_money(f.revenue, cur))} · "
        f"<a href='/results'>every period</a></p>"
        f"<section class='cards'>{cards}</section>"
        f"<section class='charts'>{''.join(figures)}</section>"
        f"<section class='tables'>{''.join(tables)}</section></main>"
        f"<script type='application/json' id='figures'>{data}</script>"
    )
    return _page(200, f"Results of {label}", content, charts=True)
