"""The store network over HTTP: the registry and store keys (admin), and the till (a
store's terminals, authenticated by a store key).

The registry is written whole, at the version it replaces (``If-Match: "<version>"`` or
``?replaces=<version>``; the answer's ``ETag`` is the new version), and read as JSON or
CSV. A till sale or return runs the services of ``services/stores.py``; storage is never
called on the loop (the sale's reads in the thread pool, its transitions awaited).
"""

from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from lampo.domain.errors import InvalidRequest
from lampo.domain.stores import MAX_CSV_BYTES
from lampo.services.stores import TillSale
from lampo.web import limits, schemas
from lampo.web.asgi import Request, Response, decode, json_response, require_json
from lampo.web.auth import Unauthorized
from lampo.web.problems import UnsupportedMediaType

if TYPE_CHECKING:
    from lampo.web.app import App

_CSV = ("text/csv",)
_MAX_VERSION = 2**62
_DATE = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def _etag(version: int) -> tuple[bytes, bytes]:
    return (b"etag", f'"{version}"'.encode())


def _replaces(req: Request) -> int:
    """The version a write replaces: ``If-Match`` (one quoted or bare version) or the
    ``replaces`` query; one of them is required."""
    match = req.header(b"if-match")
    if match is not None:
        text = match.strip().removeprefix("W/").strip('"')
        return limits.whole_number(text, "If-Match", 0, _MAX_VERSION)
    query = req.arg("replaces")
    if query is None:
        raise InvalidRequest(
            "replaces",
            'send the version this write replaces: If-Match: "<version>" or '
            "?replaces=<version> (0 for the first)",
        )
    return limits.whole_number(query, "replaces", 0, _MAX_VERSION)


async def put_stores(app: App, req: Request) -> Response:
    replaces = _replaces(req)
    if req.media_type() not in _CSV:
        raise UnsupportedMediaType(req.media_type(), _CSV)
    body = await req.body(MAX_CSV_BYTES)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("body", f"not UTF-8 at byte {exc.start}") from None
    version, count = await asyncio.to_thread(app.network.import_csv, text, replaces)
    return json_response(200, schemas.RegistryWritten(version, count), _etag(version))


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest("on", "must be a date such as 2017-06-30") from None


def _filters(req: Request) -> dict[str, str]:
    """The query of ``GET /v1/admin/stores``: ``market`` (1 to 8 characters) and ``on``
    (a date), each given once at most; a blank value or any other name is refused."""
    found = parse_qs(req.query.decode("latin-1"), keep_blank_values=True)
    out: dict[str, str] = {}
    for name, values in found.items():
        if name not in ("market", "on"):
            raise InvalidRequest("query", f"{name[:40]!r} is not a filter; use market or on")
        if len(values) != 1 or not 1 <= len(values[0]) <= (8 if name == "market" else 10):
            raise InvalidRequest(name, "give it once, not blank (market: 1 to 8 characters)")
        out[name] = values[0]
    return out


async def list_stores(app: App, req: Request) -> Response:
    args = _filters(req)
    market, day = args.get("market"), _day(args.get("on"))
    if "text/csv" in (req.header(b"accept") or ""):  # the whole registry, as imported
        version, text = await asyncio.to_thread(app.network.export_csv)
        headers = [(b"content-type", b"text/csv; charset=utf-8"), _etag(version)]
        return Response(200, text.encode(), headers)
    version, stores = await asyncio.to_thread(app.network.registry)
    items = [
        schemas.store_out(s)
        for s in stores
        if (market is None or s.market == market) and (day is None or s.open_on(day))
    ]
    return json_response(200, schemas.StoreList(version, items), _etag(version))


async def read_store(app: App, req: Request) -> Response:
    store = await asyncio.to_thread(app.network.find, req.params["store"])
    return json_response(200, schemas.store_out(store))


async def issue_key(app: App, req: Request) -> Response:
    key = app.idempotency_key(req)
    store_id = req.params["store"]

    async def run(body: bytes) -> Response:
        issued = await asyncio.to_thread(app.network.issue_key, store_id)
        return json_response(201, schemas.store_key_out(issued.info, issued.key))

    return await app.once(req, "admin", key, app.config.max_body, run)


async def list_keys(app: App, req: Request) -> Response:
    store = await asyncio.to_thread(app.network.find, req.params["store"])
    keys = await asyncio.to_thread(app.network.keys, store.id)
    return json_response(200, schemas.StoreKeyList([schemas.store_key_out(k) for k in keys]))


async def revoke_key(app: App, req: Request) -> Response:
    info = await asyncio.to_thread(app.network.revoke, req.params["key_id"], req.params["store"])
    return json_response(200, schemas.store_key_out(info))


# -- the till ---------------------------------------------------------------------------
async def _check_key(app: App, req: Request) -> str:
    store = req.params["store"]
    presented = req.header(b"lampo-store-key")
    if not presented:
        raise Unauthorized("the store key is required (Lampo-Store-Key)")
    if not await asyncio.to_thread(app.network.key_fits, store, presented):
        raise Unauthorized("the store key is unknown, revoked or not this store's")
    return store


async def till_sale(app: App, req: Request) -> Response:
    store = await _check_key(app, req)
    body = await req.body(app.config.max_body)
    require_json(req)
    data: schemas.TillSaleIn = decode(schemas.till_sale_decoder, body)
    await app.event(data.event)
    order = await app.till.asell(store, TillSale(data.event, data.receipt_id, data.items))
    return json_response(201, schemas.hold_out(order))


async def till_return(app: App, req: Request) -> Response:
    store = await _check_key(app, req)
    body = await req.body(app.config.max_body)
    require_json(req)
    data: schemas.TillReturnIn = decode(schemas.till_return_decoder, body)
    order = await asyncio.to_thread(app.till.give_back, store, data.receipt_id, data.return_id)
    return json_response(200, schemas.hold_out(order))
