"""The API docs page (``/docs``): Swagger UI over ``/openapi.json``, with try-it-out.

Swagger UI is vendored (``static/swagger-ui/``: its bundle and style as the npm package
``swagger-ui-dist`` ships them, with their licence and notice) and served by the app
under ``/docs/``, so the page loads nothing from elsewhere. Its Content-Security-Policy
differs from the live pages' (``live.py``: inline code allowed by hash) in two places,
both for Swagger UI: scripts and styles come from this server's own files
(``'self'``), since the bundle is a file; and ``img-src`` allows ``'self'`` besides
``data:``, for the images the style sheet names. ``connect-src 'self'`` lets the page
read the document and send the calls of try-it-out, to this server only. The page also
lists every operation in a ``<noscript>``, for a browser without scripts.

The files are read once per process. The page names each with a digest of its content
(``?v=``), so a browser may keep them for a year and still gets a new Swagger UI with a
new version of lampo at once; the page itself is never kept.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
from dataclasses import dataclass
from importlib import resources

from lampo.web.openapi import spec
from lampo.web.problems import NoRoute

_HTML = b"text/html; charset=utf-8"
#: The files the pages load, by path: (file in ``static/``, media type). ``/docs`` loads
#: Swagger UI's; ``/results/{period}`` loads Chart.js (``results.py``).
ASSETS = {
    "/docs/swagger-ui-bundle.js": ("swagger-ui/swagger-ui-bundle.js", b"text/javascript"),
    "/docs/swagger-ui.css": ("swagger-ui/swagger-ui.css", b"text/css"),
    "/docs/docs.js": ("docs.js", b"text/javascript"),
    "/results/chart.umd.min.js": ("chartjs/chart.umd.min.js", b"text/javascript"),
}
CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


@functools.cache
def page() -> Page:
    """The docs page (built once per process)."""
    rows = "".join(
        f"<li><code>{method.upper()} {html.escape(path)}</code>: "
        f"{html.escape(op.get('summary', ''))}</li>"
        for path, operations in spec()["paths"].items()
        for method, op in operations.items()
    )
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>lampo API</title><link rel='icon' href='data:,'>"
        f"<link rel='stylesheet' href='{url('/docs/swagger-ui.css')}'></head><body>"
        "<div id='swagger-ui'></div>"
        "<noscript><h1>lampo API</h1><p>The OpenAPI document: "
        f"<a href='/openapi.json'>/openapi.json</a>.</p><ul>{rows}</ul></noscript>"
        f"<script src='{url('/docs/swagger-ui-bundle.js')}'></script>"
        f"<script src='{url('/docs/docs.js')}'></script></body></html>"
    )
    headers = [
        (b"content-type", _HTML),
        (b"content-security-policy", CSP),
        (b"cache-control", b"no-cache"),
        *_COMMON,
    ]
    return Page(200, body.encode(), headers)


@functools.cache
def _asset(path: str) -> tuple[bytes, bytes, str]:
    """A file of ``ASSETS``: its bytes, media type and the digest the page names it by."""
    name, media = ASSETS[path]
    data = (resources.files("lampo.web") / "static" / name).read_bytes()
    return data, media, hashlib.sha256(data).hexdigest()[:16]


def url(path: str) -> str:
    return f"{path}?v={_asset(path)[2]}"


def integrity(path: str) -> str:
    """The Subresource Integrity value of a file of ``ASSETS`` (``sha384-...``), so a page
    runs it only if it is the file shipped."""
    return "sha384-" + base64.b64encode(hashlib.sha384(_asset(path)[0]).digest()).decode()


def asset(path: str) -> Page:
    """One file of the page (``ASSETS``), or ``NoRoute``."""
    if path not in ASSETS:
        raise NoRoute(path)
    data, media, _ = _asset(path)
    headers = [
        (b"content-type", media),
        (b"cache-control", b"public, max-age=31536000, immutable"),
        *_COMMON,
    ]
    return Page(200, data, headers)
