"""The handlers of the pages: the live battle-report pages (``live.py`` renders them) and
the wall's event stream they follow (``wall.py``), the results pages of quarters and years
(``results.py``), the API's own documents (``/openapi.json``, the ``/docs`` page and its
files, ``docs.py``) and the problem types' pages (``/problems/{reason}``).
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from lampo.domain.errors import InvalidRequest, UnknownEvent
from lampo.domain.period import Period
from lampo.services import imports
from lampo.services.imports import DEFAULT_SHARES, DEFAULT_TARGETS
from lampo.services.report import period_report, periods_with_orders
from lampo.web import docs, limits, live, problems, results, wall
from lampo.web.asgi import Request, Response, Send, json_response
from lampo.web.problems import NoRoute

if TYPE_CHECKING:
    from lampo.web.app import App


async def live_index(app: App, req: Request) -> Response:
    await asyncio.to_thread(app.refresh_events)
    events = list(app.service.events.values())
    page = live.index(events, app.clock())
    if len(events) == 1:  # straight to the only event's page (the list links to it too)
        location = (b"location", live.path_of(events[0].id).encode())
        return Response(302, page.body, [*page.headers, location])
    return Response(200, page.body, page.headers)


async def live_page(app: App, req: Request) -> Response:
    event_id = req.params["event_id"]
    try:
        event = await app.event(event_id)
    except UnknownEvent:
        page = live.not_found(event_id)
        return Response(404, page.body, page.headers)
    page = live.dashboard(event)
    return Response(200, page.body, page.headers)


async def results_index(app: App, req: Request) -> Response:
    page = results.index(await _periods(app))
    return Response(page.status, page.body, page.headers)


async def results_page(app: App, req: Request) -> Response:
    text = req.params["period"]
    if not re.fullmatch(limits.PATH_PATTERNS["period"], text):
        problem = f"{text!r} is not a quarter or year such as 2017Q2 or 2017"
        page = results.problem(400, "Not a period", problem + ".")
        return Response(page.status, page.body, page.headers)
    try:
        period = Period.parse(text)
        if period not in await _periods(app):  # known without reading every order again
            raise InvalidRequest("period", f"{period.label} (UTC) has no order in this storage")
        page = await app.results.get(period.label, lambda: _results_of(app, period))
    except InvalidRequest as err:  # a year lampo cannot hold, or no order in the period
        page = results.problem(404, f"No results for {text}", f"{err.problem}.")
    return Response(page.status, page.body, page.headers)


async def _periods(app: App) -> list[Period]:
    """The periods with orders (UTC), one read shared per ``LAMPO_REPORT_TTL``."""
    return await app.periods.get("", lambda: periods_with_orders(app.storage))


def _results_of(app: App, period: Period) -> results.Page:
    """What ``lampo report period PERIOD`` reports, with its defaults, as a page."""
    report = period_report(
        app.storage,
        period,
        targets=imports.targets(DEFAULT_TARGETS, period.tz),
        shares=imports.market_shares(DEFAULT_SHARES),
        stores=app.storage.stores()[1],  # read off the loop: ``app.results.get`` runs this
    )
    return results.results(report)


async def wall_stream(app: App, req: Request) -> Response:
    event_id = (await app.event(req.params["event_id"])).id
    app.wall.admit()
    headers = [
        (b"content-type", wall.EVENT_STREAM),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),  # a proxy in front must not hold the frames back
    ]

    async def stream(send: Send) -> None:
        await app.wall.serve(event_id, req.receive, send)

    return Response(200, b"", headers, stream)


async def openapi(app: App, req: Request) -> Response:
    from lampo.web.openapi import spec

    return json_response(200, spec())


async def docs_page(app: App, req: Request) -> Response:
    page = docs.page()
    return Response(page.status, page.body, page.headers)


async def docs_asset(app: App, req: Request) -> Response:
    page = docs.asset(req.path)
    return Response(page.status, page.body, page.headers)


async def problem_page(app: App, req: Request) -> Response:
    reason = req.params["reason"]
    kind = problems.TYPES.get(reason)
    if kind is None:
        raise NoRoute(req.path)
    text = f"{reason}: {kind.title} (HTTP {kind.status})\n"
    return Response(200, text.encode(), [(b"content-type", b"text/plain; charset=utf-8")])
