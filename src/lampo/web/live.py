"""The live battle-report pages: ``/live/{event_id}``, the battle wall for the big screen,
and ``/live`` to pick an event.

The wall is one self-contained page (``static/live.html``: HTML, CSS and its script,
nothing from elsewhere, its chart drawn as SVG by the script) that follows the wall's
event stream, ``GET /v1/events/{id}/wall`` (``wall.py``). The file is read once per
process, on first use. Every inline script and style is allowed by its hash in a
Content-Security-Policy, so nothing else can run on the page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from urllib.parse import quote

from lampo.domain.event import SaleEvent

HTML = b"text/html; charset=utf-8"

_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_STYLE = re.compile(r"<style>(.*?)</style>", re.S)

#: The style of the small pages (the event list and the 404 page).
_SMALL_STYLE = (
    ":root{color-scheme:dark;font-family:system-ui,-apple-system,'Segoe UI',Roboto,"
    "'Noto Sans',Arial,sans-serif}body{margin:0 auto;max-width:48rem;padding:2rem;"
    "background:#0a0f1e;color:#f4f6fb;font-size:1.1rem;line-height:1.45}"
    "a{color:#ff8a45}h1{font-size:2rem}p.muted,span.muted{color:#aab4ca}"
    "ul{padding:0;list-style:none}li{border-top:1px solid #26314f;padding:.8rem 0}"
    "li a{font-weight:700;font-size:1.3rem}"
)


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes
    headers: list[tuple[bytes, bytes]]


def _csp(page: str) -> bytes:
    """A policy that allows exactly the page's own inline scripts and styles, and requests
    to this server."""

    def hashes(pattern: re.Pattern[str]) -> str:
        return " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
            for s in pattern.findall(page)
        )

    scripts = hashes(_SCRIPT) or "'none'"
    styles = hashes(_STYLE) or "'none'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src {styles}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"
    ).encode()


def _headers(page: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", HTML),
        (b"content-security-policy", _csp(page)),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-cache"),
    ]


@functools.cache
def _dashboard() -> tuple[str, list[tuple[bytes, bytes]]]:
    page = (resources.files("lampo.web") / "static" / "live.html").read_text(encoding="utf-8")
    if any("__EVENT_" in part for part in (*_SCRIPT.findall(page), *_STYLE.findall(page))):
        # what is filled in per event must not change what the policy's hashes cover
        raise RuntimeError("live.html: a placeholder inside a script or style")
    return page, _headers(page)


def dashboard(event: SaleEvent) -> Page:
    """The live page of ``event``; its figures come from the JSON report, by script."""
    page, headers = _dashboard()
    body = page.replace("__EVENT_ID__", html.escape(event.id)).replace(
        "__EVENT_NAME__", html.escape(event.name)
    )
    return Page(body.encode(), headers)


def _small(title: str, content: str) -> Page:
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><link rel='icon' href='data:,'>"
        f"<style>{_SMALL_STYLE}</style></head><body><main>{content}</main></body></html>"
    )
    return Page(page.encode(), _headers(page))


def path_of(event_id: str) -> str:
    return "/live/" + quote(event_id, safe="")


def not_found(event_id: str) -> Page:
    return _small(
        "No such sale event",
        "<h1>No such sale event</h1>"
        f"<p>There is no sale event <code>{html.escape(event_id)}</code> here.</p>"
        "<p><a href='/live'>Every event</a></p>",
    )


def index(events: Sequence[SaleEvent], now: datetime) -> Page:
    """Every event with a link to its live page, the soonest first; the state of each
    (on sale, opens, ended) is judged at ``now``."""
    if not events:
        return _small(
            "Live battle reports",
            "<h1>Live battle reports</h1><p class='muted'>No sale event is loaded yet.</p>",
        )
    items = []
    for event in sorted(events, key=lambda e: (e.opens, e.id)):
        opens, closes = event.opens.astimezone(UTC), event.closes.astimezone(UTC)
        if now < opens:
            state = f"opens {opens:%Y-%m-%d %H:%M} UTC"
        elif now < closes:
            state = "on sale now"
        else:
            state = f"ended {closes:%Y-%m-%d %H:%M} UTC"
        items.append(
            f"<li><a href='{html.escape(path_of(event.id))}'>{html.escape(event.name)}</a> "
            f"<span class='muted'>· {html.escape(state)}</span></li>"
        )
    return _small(
        "Live battle reports",
        "<h1>Live battle reports</h1><ul>" + "".join(items) + "</ul>",
    )
