"""The results pages (``/results``, ``/results/{period}``) against ``lampo serve``: the
shipped quarter scenarios simulated into a real SQLite file, then read as a page. The page
must carry exactly what ``lampo report period PERIOD --format json`` gives, print the
seed's figures, and (in Debian's Chromium, ``browser`` marker) draw its charts with no
console error at a desktop, a small laptop and a phone width; screenshots go to
``build/``."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lampo.cli import main
from lampo.domain.money import Money
from tests.e2e._http import Server, running_server

pytestmark = [pytest.mark.sqlite, pytest.mark.slow]

BUILD = Path(__file__).resolve().parents[2] / "build"
_FIGURES = re.compile(r"<script type='application/json' id='figures'>(.*?)</script>", re.S)


@pytest.fixture
def history(quarter_history: str) -> str:
    """Q2 2016 India, Q1 and Q2 2017 in one SQLite file (``conftest.quarter_history``)."""
    return quarter_history


def period_json(url: str, period: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """What `lampo report period PERIOD --format json` says, read beside the server."""
    capsys.readouterr()
    assert main(["report", "period", period, "--storage", url, "--format", "json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


@pytest.fixture(scope="module")
def server(quarter_history: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("results-server")
    with running_server(folder, storage=quarter_history) as srv:
        yield srv


def page_figures(body: str) -> dict[str, Any]:
    found = _FIGURES.search(body)
    assert found, "the page carries no figures"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def text_of(body: str) -> str:
    """The page's visible text, on one line."""
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", body, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def fraction(text: str) -> float:
    num, den = (int(x) for x in text.split("/"))
    return num / den


@pytest.mark.parametrize("period", ["2017Q2", "2017", "2016Q2"])
def test_the_page_carries_the_command_lines_report_exactly(
    server: Server,
    history: str,
    period: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = period_json(history, period, capsys)
    reply = server.request("GET", f"/results/{period}")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert page_figures(reply.body.decode()) == expected


def test_2017q2_shows_the_seeds_figures(
    server: Server, history: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = period_json(history, "2017Q2", capsys)
    body = server.request("GET", "/results/2017Q2").body.decode()
    text = text_of(body)
    # +70 % phones quarter on quarter (seed 002), from the orders
    assert round(1000 * fraction(data["growth"]["by_category_units"]["phones"])) == 700
    assert "units (QoQ) 2,316 2017Q1 1,362 +70.0 %" in text
    # +328 % India year on year, in rupees
    assert round(1000 * fraction(data["yoy"]["by_market_revenue"]["IN"])) == 3280
    india = re.search(r"IN 266 [0-9,.]+ INR [0-9,.]+ CNY [0-9.]+ % (\S+ %) (\S+ %)", text)
    assert india, text
    assert india.group(2) == "+328.0 %"
    # the 2017 revenue target's progress, as the command line computes it
    (target,) = data["targets"]
    progress = target["progress"]
    assert progress["target"]["label"] == "revenue $14.7 B in 2017"
    to_date = Money(progress["actual"], "USD").format()
    projected = Money(progress["projection"], "USD").format()
    assert f"revenue $14.7 B in 2017 14,700,000,000.00 USD {to_date} 0.0 % {projected} no" in text


def test_the_index_lists_every_period_with_orders(server: Server) -> None:
    reply = server.request("GET", "/results")
    assert reply.status == 200
    links = re.findall(r"href='/results/([0-9Q]+)'", reply.body.decode())
    assert links == ["2017", "2017Q1", "2017Q2", "2016", "2016Q2"]


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/results/2017Q7", 400, "is not a quarter or year"),
        ("/results/next-year", 400, "is not a quarter or year"),
        ("/results/2019", 404, "has no order in this storage"),
        ("/results/1969", 404, "no such period"),
        ("/results/2017q2%3Cscript%3E", 400, "is not a quarter or year"),
    ],
)
def test_a_period_that_does_not_parse_or_has_no_order_gets_a_small_page(
    server: Server, path: str, status: int, says: str
) -> None:
    reply = server.request("GET", path)
    assert reply.status == status
    assert reply.headers["content-type"].startswith("text/html")
    assert says in html.unescape(reply.body.decode())
    assert "<script" not in reply.body.decode()


def test_the_page_runs_only_its_own_script_and_the_vendored_chart_library(server: Server) -> None:
    reply = server.request("GET", "/results/2017Q2")
    csp = reply.headers["content-security-policy"]
    body = reply.body.decode()
    assert "unsafe" not in csp
    assert "connect-src 'none'" in csp
    inline = re.findall(r"<script>(.*?)</script>", body, re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    src, integrity = re.search(r"<script src='([^']+)' integrity='([^']+)'>", body).groups()  # type: ignore[union-attr]
    assert src.startswith("/results/chart.umd.min.js?v=")
    library = server.request("GET", src)
    assert library.status == 200
    assert library.headers["content-type"] == "text/javascript"
    assert b"Chart.js v4" in library.body[:200]
    expected = base64.b64encode(hashlib.sha384(library.body).digest()).decode()
    assert integrity == f"sha384-{expected}"


@pytest.mark.browser
@pytest.mark.parametrize(
    ("width", "height"), [(1366, 768), (1920, 1080), (390, 844)], ids=["laptop", "desktop", "phone"]
)
def test_the_charts_render_and_the_page_fits(
    server: Server, page: Any, width: int, height: int
) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"http://127.0.0.1:{server.port}/results/2017Q2")
    page.wait_for_selector("body[data-charts]")
    canvases = page.locator("canvas")
    count = canvases.count()
    assert count == 4  # markets, categories, channels, targets (no brand data for 2017Q2)
    assert page.get_attribute("body", "data-charts") == str(count)
    for i in range(count):
        canvas = canvases.nth(i)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box["width"] > 100
        assert box["height"] > 100
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= width
        # something was drawn: pixels that are not transparent
        painted = canvas.evaluate(
            "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"
        )
        assert painted > 1000
    # nothing wider than the screen: tables scroll inside their own box
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.locator("text=+70.0 %").first.is_visible()
    BUILD.mkdir(exist_ok=True)
    page.screenshot(path=str(BUILD / f"results-2017Q2-{width}x{height}.png"), full_page=True)
