"""The route table: every route of the API, declared once; it serves and documents.

Each ``Route`` names its method and path, the handler, the OpenAPI operation id and
summary, who may call it (``Auth``: ``App`` checks it before the handler runs, and the
document lists it as the operation's security), whether it takes an ``Idempotency-Key``,
its query parameters, request body and responses. ``App`` builds its router from
``ROUTES``; ``openapi.py`` builds the document's paths from the same entries (a route
with ``documented=False`` is served but not listed: the docs page's own files, the
problem pages, the test clock). Every operation also answers problems (RFC 9457), which
the document adds to each.

What a route is: ``route.py``. The front door's routes are their own table,
``door_routes.py``, served here among the others. Handlers live by resource: ``buyer.py``
(holds, and the public event reads), ``webhooks.py``, ``admin.py`` (and operations),
``pages.py`` (live pages, API docs), ``frontdoor.py``, ``stores.py``, ``partners.py``.
"""

from __future__ import annotations

from lampo.domain.holds import HoldState
from lampo.web import admin, buyer, docs, limits, pages, partners, stores, webhooks
from lampo.web import door_schemas as ds
from lampo.web.door_routes import DOOR_ROUTES
from lampo.web.openapi import EVENT_BODY, HOLD, OBJECT, SCALE, html, json_body, page, ref
from lampo.web.route import Auth, Route, query

_EXPIRED = {
    "type": "object",
    "properties": {"expired": {"type": "integer"}},
    "required": ["expired"],
}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_CSV = {"text/csv": {"schema": {"type": "string"}}}
_VERSION_TAG = {"ETag": '`"<version>"` of the registry.'}
#: One server-sent event of the wall's stream, as its fields.
_WALL_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["wall", "bye"]},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "The figures, one JSON object.",
        },
        "retry": {"type": "integer", "minimum": 0},
    },
}

ROUTES: tuple[Route, ...] = (
    # -- buyers ---------------------------------------------------------------------
    Route(
        "POST",
        "/v1/holds",
        buyer.reserve,
        "reserve",
        "Reserve: hold stock for the calling buyer",
        "buyer",
        {"201": json_body(ref("HoldOut"), "The hold; it expires at `expires_at`.")},
        Auth.BUYER,
        idempotent=True,
        query=(ds.ADMISSION_HEADER, ds.BUY_DEVICE_HEADER),  # the front door's gate
        body={"required": True, "content": {"application/json": {"schema": ref("ReserveIn")}}},
        description="Refusals: `sold-out`, `limit-exceeded`, `not-open` (with Retry-After), "
        "`closed`, `unknown-sku`, `unknown-market`, `unknown-event`; behind a front door "
        "(docs/front-door.md): `not-admitted`, `bad-token`, `not-registered`, `not-drawn`.",
    ),
    Route(
        "GET",
        "/v1/holds/{hold_id}",
        buyer.read_hold,
        "readHold",
        "Read one of your holds or orders (or any, with the admin key)",
        "buyer",
        {"200": HOLD},
        Auth.BUYER_OR_ADMIN,
    ),
    Route(
        "POST",
        "/v1/holds/{hold_id}/pay",
        buyer.pay,
        "pay",
        "Pay a hold: it becomes an order",
        "buyer",
        {"200": json_body(ref("HoldOut"), "The order.")},
        Auth.BUYER,
        idempotent=True,
        body={"required": False, "content": {"application/json": {"schema": ref("PayIn")}}},
    ),
    Route(
        "POST",
        "/v1/holds/{hold_id}/release",
        buyer.release,
        "release",
        "Release a hold: its stock returns to the pool at once",
        "buyer",
        {"200": HOLD},
        Auth.BUYER,
        idempotent=True,
    ),
    Route(
        "POST",
        "/v1/webhooks/payments",
        webhooks.payment,
        "paymentWebhook",
        "Payment provider notice (signed)",
        "payments",
        {"200": json_body(ref("HoldOut"), "The order.")},
        Auth.WEBHOOK,
        body={
            "required": True,
            "content": {"application/json": {"schema": ref("PaymentWebhookIn")}},
        },
        description='`Lampo-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`; a '
        "signature outside the time window is refused (`stale-signature`). "
        "Idempotent by `payment_id`; a `payment_id` that paid another hold is "
        "refused (`idempotency-conflict`).",
    ),
    # -- the shop floor and the partners -----------------------------------------------
    Route(
        "POST",
        "/v1/stores/{store}/sales",
        stores.till_sale,
        "tillSale",
        "A till's sale: the units are taken and paid at once (an order)",
        "stores",
        {"201": json_body(ref("HoldOut"), "The order (a replay of the receipt: the first).")},
        Auth.STORE_KEY,
        body={"required": True, "content": {"application/json": {"schema": ref("TillSaleIn")}}},
        description="The store's key (`Lampo-Store-Key`); a key unknown, revoked or of "
        "another store is refused (401), changing nothing. The market is the store's "
        "(registry); the store must be in the registry (`unknown-store`) and open on the "
        "sale's day in its market (`store-not-open`). Idempotent on `receipt_id` per "
        "store: a replay returns the first order; the same receipt with other items is "
        "`idempotency-conflict`. Other refusals as `reserve`: `sold-out`, `not-open`, "
        "`closed`, `unknown-sku`, `unknown-market`.",
    ),
    Route(
        "POST",
        "/v1/stores/{store}/returns",
        stores.till_return,
        "tillReturn",
        "Return a whole receipt at the till: its order is refunded",
        "stores",
        {"200": json_body(ref("HoldOut"), "The refunded order.")},
        Auth.STORE_KEY,
        body={"required": True, "content": {"application/json": {"schema": ref("TillReturnIn")}}},
        description="Idempotent on `return_id` (per store): a replay answers the refunded "
        "order; a `return_id` used for another receipt is `idempotency-conflict`; a "
        "receipt returned under another return id is `illegal-transition`; an unknown "
        "receipt `unknown-receipt`. Returning some lines of a receipt is not offered.",
    ),
    Route(
        "POST",
        "/v1/partners/{partner}/orders",
        partners.order,
        "partnerOrder",
        "A marketplace partner's order, each line sold on its own",
        "partners",
        {"200": json_body(ref("PartnerAnswers"), "The answer of every line, in order.")},
        Auth.PARTNER,
        body={
            "required": True,
            "content": {"application/json": {"schema": ref("PartnerOrderIn")}},
        },
        description="Signed as the payment webhook (`Lampo-Signature`), under the partner's "
        "own secret (`LAMPO_PARTNER_SECRETS`). Each line is a sale paid at once through "
        "the channel `marketplace/<partner>`: accepted with its order, or refused with its "
        "problem, the others going on. Idempotent on `order_id` per partner: a replay "
        "gets the same answers (`Idempotent-Replayed: true`); the same id with another "
        "order is `idempotency-conflict`.",
    ),
    # -- events, for everyone ---------------------------------------------------------
    Route(
        "GET",
        "/v1/events/{event_id}",
        buyer.read_event,
        "readEvent",
        "A sale event's definition",
        "events",
        {"200": json_body(OBJECT, "Markets, windows, catalog, offers and prices.")},
    ),
    Route(
        "GET",
        "/v1/events/{event_id}/stock",
        buyer.read_stock,
        "readStock",
        "Stock per SKU",
        "events",
        {"200": json_body(ref("EventStock"), "allocation = available + held + sold.")},
    ),
    Route(
        "GET",
        "/v1/events/{event_id}/report",
        buyer.read_report,
        "readReport",
        "Live totals of the event (orders, units, money per market and in total)",
        "events",
        {"200": json_body(ref("Report"), "The live totals, stock and milestones.")},
        description="Read from the live totals and stock levels that storage keeps (no "
        "order is recounted). One read per event serves every caller for "
        "`LAMPO_REPORT_TTL` seconds (default 0.5) in each worker, so the figures "
        "may be that much older than the request; `as_of` says when they were "
        "read. `milestones[].reached` compares the live figure now, net of "
        "refunds; `lampo report event` gives the time each was first crossed.",
    ),
    Route(
        "GET",
        "/v1/events/{event_id}/wall",
        pages.wall_stream,
        "wallStream",
        "The live wall's figures, pushed as server-sent events",
        "events",
        {
            "200": {
                "description": "`text/event-stream`: a `retry` line, then an event `wall` "
                "whenever the figures change, at most once per `LAMPO_WALL_INTERVAL` "
                "(default 1 s), and after 15 s an event `bye` (the stream ends; the "
                "browser reconnects at once). A `wall` event's data is one JSON "
                "object: `as_of`, `report` (the live report without its `as_of`), "
                "`best_sellers`, `champions`, `channels`, "
                "`market_order`, `curve` (orders and money per bucket of `minutes` "
                "minutes from `start`), `records`, `ticker`, `milestone_times`, "
                "`sold_out_at`; for an event with a waiting room, `queue`: "
                "`registrations` and per market `waiting`, `admitted`, "
                "`admitted_per_second`, `rate`, `last_eta_seconds`.",
                "content": {"text/event-stream": {"schema": _WALL_EVENT}},
            }
        },
        description="One reading of storage per event and interval, per worker, feeds "
        "every viewer the same bytes; a viewer that connects or reconnects gets the "
        "latest frame at once (`Last-Event-ID` is not needed). The orders are read for "
        "their times (per-minute figures, sell-outs, milestones, records) at most every "
        "interval and at most a twentieth of a core's time. A comment line keeps a "
        "quiet stream open.",
    ),
    *DOOR_ROUTES,
    # -- the live pages -----------------------------------------------------------------
    Route(
        "GET",
        "/live",
        pages.live_index,
        "liveIndex",
        "The live battle-report pages: a list of events, or the only one",
        "dashboard",
        {
            "200": html("A page that links every event's live page."),
            "302": html("With exactly one event: its live page.", Location="`/live/{event_id}`"),
        },
    ),
    Route(
        "GET",
        "/live/{event_id}",
        pages.live_page,
        "livePage",
        "The live battle-report page of an event, for a big screen",
        "dashboard",
        {
            "200": html("A self-contained page that follows the wall's event stream."),
            "404": {
                "description": "No such event: a small HTML page (a path that "
                "matches no route is a problem, as elsewhere).",
                "content": {
                    "text/html": page(),
                    "application/problem+json": {"schema": ref("Problem")},
                },
            },
        },
    ),
    # -- the results pages ----------------------------------------------------------------
    Route(
        "GET",
        "/results",
        pages.results_index,
        "resultsIndex",
        "The results pages: every year and quarter with orders",
        "dashboard",
        {"200": html("A page that links the results of every period with orders (UTC).")},
    ),
    Route(
        "GET",
        "/results/{period}",
        pages.results_page,
        "resultsPage",
        "The results of a quarter or a year, as `lampo report period` gives them, with charts",
        "dashboard",
        {
            "200": html(
                "Units, revenue and orders with QoQ and YoY growth, per market, channel and "
                "category, best sellers per market, targets with progress and projection, "
                "brand ranks, and charts of them; the report's JSON is in the page."
            ),
            "400": html("Not a quarter or year such as `2017Q2` or `2017`: a small page."),
            "404": {
                "description": "No order was paid in the period (or a year before 1970): a "
                "small HTML page (a path that matches no route is a problem, as elsewhere).",
                "content": {
                    "text/html": page(),
                    "application/problem+json": {"schema": ref("Problem")},
                },
            },
        },
        description="The figures of `lampo report period PERIOD --format json` (UTC, the "
        "shipped targets and market shares), from the same code. Read at most once per "
        "30 seconds per period in each worker, however many readers.",
    ),
    # -- admin --------------------------------------------------------------------------
    Route(
        "GET",
        "/v1/admin/events",
        admin.list_events,
        "listEvents",
        "List sale events",
        "admin",
        {"200": json_body(ref("EventList"), "Every event in storage.")},
        Auth.ADMIN,
    ),
    Route(
        "POST",
        "/v1/admin/events",
        admin.load_event,
        "loadEvent",
        "Load a sale event (JSON definition, or a scenario TOML file)",
        "admin",
        {
            "200": json_body(ref("EventSummary"), "The same definition was there already."),
            "201": json_body(ref("EventSummary"), "Loaded and open for sale."),
        },
        Auth.ADMIN,
        idempotent=True,
        query=(SCALE,),
        body=EVENT_BODY,
    ),
    Route(
        "PUT",
        "/v1/admin/events/{event_id}",
        admin.update_event,
        "updateEvent",
        "Update a live sale event (the same forms as loading it)",
        "admin",
        {"200": json_body(ref("EventSummary"), "Updated; new holds follow it at once.")},
        Auth.ADMIN,
        idempotent=True,
        query=(SCALE,),
        body=EVENT_BODY,
        description="Add stock or SKUs, markets or categories; move windows; change prices "
        "(holds keep theirs), the hold time, FX rates, names, milestones; change "
        "or drop a per-customer limit. Refused (`update-refused`, nothing "
        "changed): an allocation below the units held and sold, dropping what "
        "holds and totals refer to, changing a market's currency or a SKU's "
        "category, adding a limit where there was none. Other workers of the "
        "server follow within `LAMPO_EVENT_REFRESH` seconds (default 1).",
    ),
    Route(
        "GET",
        "/v1/admin/events/{event_id}/orders",
        admin.list_orders,
        "listOrders",
        "List holds and orders of an event, by id, a page at a time",
        "admin",
        {"200": json_body(ref("HoldList"), "A page; `next` is the `after` of the next.")},
        Auth.ADMIN,
        query=(
            query("state", {"type": "string", "enum": [s.value for s in HoldState]}),
            query(
                "limit",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": limits.MAX_PAGE,
                    "default": limits.DEFAULT_PAGE,
                },
            ),
            query("after", {"type": "string", "maxLength": limits.MAX_HOLD_ID}),
        ),
    ),
    Route(
        "GET",
        "/v1/admin/events/{event_id}/totals",
        admin.read_totals,
        "readTotals",
        "The live totals of an event at their finest grain",
        "admin",
        {
            "200": json_body(
                ref("EventTotals"),
                "Units and money per SKU, market and channel; orders per market and "
                "channel; net of refunds, rows of zero left out.",
            )
        },
        Auth.ADMIN,
    ),
    Route(
        "PUT",
        "/v1/admin/stores",
        stores.put_stores,
        "putStores",
        "Replace the store registry with a CSV file, whole, at the version it replaces",
        "stores",
        {"200": json_body(ref("RegistryWritten"), "The new version and the store count.")},
        Auth.ADMIN,
        query=(
            {
                **query("replaces", {"type": "integer", "minimum": 0, "maximum": 2**62}),
                "required": True,
                "description": 'Or `If-Match: "<version>"` in its place.',
            },
        ),
        body={"required": True, "content": _CSV},
        description="Header `id,name,kind,market,city,opened,closed,lat,lon`. The version "
        'replaced: `If-Match: "<version>"` or `?replaces=<version>` (0 for the first). A '
        "file with any bad row is refused whole (`stores-refused`, every problem with "
        "its line, column and reason); a write at an old version is refused "
        "(`registry-changed`): of two writes of one version, one wins.",
    ),
    Route(
        "GET",
        "/v1/admin/stores",
        stores.list_stores,
        "listStores",
        "The store registry (JSON, or CSV with `Accept: text/csv`)",
        "stores",
        {
            "200": {
                "description": "The registry and its version (`ETag`).",
                "content": {"application/json": {"schema": ref("StoreList")}, **_CSV},
            }
        },
        Auth.ADMIN,
        query=(
            query("market", {"type": "string", "minLength": 1, "maxLength": 8}),
            query(
                "on",
                {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
            ),
        ),
        description="JSON only: `market` keeps one market's stores, `on` those open at the "
        "close of that day.",
    ),
    Route(
        "GET",
        "/v1/admin/stores/{store}",
        stores.read_store,
        "readStore",
        "One store of the registry",
        "stores",
        {"200": json_body(ref("StoreOut"), "The store.")},
        Auth.ADMIN,
    ),
    Route(
        "POST",
        "/v1/admin/stores/{store}/keys",
        stores.issue_key,
        "issueStoreKey",
        "Issue a key for a store's tills (shown once)",
        "stores",
        {"201": json_body(ref("StoreKeyOut"), "The key, in `key`: lampo keeps only a hash.")},
        Auth.ADMIN,
        idempotent=True,
    ),
    Route(
        "GET",
        "/v1/admin/stores/{store}/keys",
        stores.list_keys,
        "listStoreKeys",
        "A store's keys (never their secrets)",
        "stores",
        {"200": json_body(ref("StoreKeyList"), "By issue time; revoked ones with the time.")},
        Auth.ADMIN,
    ),
    Route(
        "DELETE",
        "/v1/admin/stores/{store}/keys/{key_id}",
        stores.revoke_key,
        "revokeStoreKey",
        "Revoke a store key for good",
        "stores",
        {"200": json_body(ref("StoreKeyOut"), "The key, with `revoked_at` (the first).")},
        Auth.ADMIN,
    ),
    Route(
        "POST",
        "/v1/admin/holds/{hold_id}/refund",
        admin.refund,
        "refund",
        "Refund an order: units back to the pool, money out of the totals",
        "admin",
        {"200": json_body(ref("HoldOut"), "The refunded order.")},
        Auth.ADMIN,
        idempotent=True,
    ),
    Route(
        "POST",
        "/v1/admin/expire",
        admin.expire,
        "expire",
        "Run the expiry sweeper once",
        "admin",
        {"200": json_body(_EXPIRED, "How many holds expired.")},
        Auth.ADMIN,
        idempotent=True,
    ),
    Route(
        "POST",
        "/v1/admin/clock",
        admin.move_clock,
        "moveClock",
        "Move the test clock",
        "admin",
        {},
        Auth.ADMIN,
        documented=False,
        test_clock=True,
    ),
    # -- operations ---------------------------------------------------------------------
    Route(
        "GET",
        "/health",
        admin.health,
        "health",
        "Liveness",
        "operations",
        {"200": json_body(ref("Health"), "Alive.")},
    ),
    Route(
        "GET",
        "/ready",
        admin.ready,
        "ready",
        "Readiness: storage answers",
        "operations",
        {"200": json_body(ref("Health"), "Ready.")},
    ),
    Route(
        "GET",
        "/metrics",
        admin.read_metrics,
        "metrics",
        "Prometheus metrics",
        "operations",
        {"200": {"description": "Text exposition format.", "content": _TEXT}},
    ),
    # -- the API's own documents ------------------------------------------------------------
    Route(
        "GET",
        "/openapi.json",
        pages.openapi,
        "openapi",
        "This document",
        "docs",
        {},
        documented=False,
    ),
    Route(
        "GET", "/docs", pages.docs_page, "docs", "The API docs page", "docs", {}, documented=False
    ),
    *(
        Route(
            "GET",
            path,
            pages.docs_asset,
            f"docsAsset{i}",
            "A file the docs or results page loads",
            "docs",
            {},
            documented=False,
        )
        for i, path in enumerate(docs.ASSETS)
    ),
    Route(
        "GET",
        "/problems/{reason}",
        pages.problem_page,
        "problem",
        "What a problem type means",
        "docs",
        {},
        documented=False,
    ),
)
