"""The OpenAPI 3.1 document (``/openapi.json``; ``docs.py`` serves the page that reads it).

Body schemas come from the msgspec structs the server parses and encodes with, so the
document cannot drift from the code; the table below adds paths, statuses and security.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from lampo import __version__
from lampo.domain.holds import HoldState
from lampo.sim.scenario import MAX_SCALE
from lampo.web import limits, schemas
from lampo.web.problems import TYPES

_REF = "#/components/schemas/{name}"
_MODELS = (
    schemas.ReserveIn,
    schemas.PayIn,
    schemas.PaymentWebhookIn,
    schemas.HoldOut,
    schemas.HoldList,
    schemas.EventStock,
    schemas.EventTotals,
    schemas.EventList,
    schemas.EventSummary,
    schemas.Report,
    schemas.Health,
    schemas.Problem,
)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(name=name)}


_OBJECT: dict[str, Any] = {"type": "object"}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "Makes the call safe to retry: a retry of a success gets its result "
    "(the same body: the first response, with `Idempotent-Replayed: true`); a refused call "
    "is evaluated again; a reservation under the key with another request is refused "
    "(`idempotency-conflict`). For pay, it is the payment id, which settles one hold only: "
    "on another hold it is refused (`idempotency-conflict`).",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": limits.MAX_KEY,
        "pattern": limits.KEY_PATTERN,
    },
}


def _path_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": "Printable, without spaces; any other value names nothing (404).",
        "schema": {"type": "string", "minLength": 1, "maxLength": limits.PATH_PARAMS[name]},
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_PAGE = {"schema": {"type": "string"}}


def _html(description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"text/html": _PAGE}}
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


def _op(
    summary: str,
    tag: str,
    responses: dict[str, dict[str, Any]],
    security: str | tuple[str, ...] | None = None,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    if description:
        op["description"] = description
    op["responses"]["default"] = {
        "description": "A refusal, as RFC 9457 problem details (`type` is stable).",
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }
    if security:
        # one requirement per scheme: any one of them is enough
        schemes = (security,) if isinstance(security, str) else security
        op["security"] = [{scheme: []} for scheme in schemes]
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


_SCALE = {
    "name": "scale",
    "in": "query",
    "required": False,
    "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SCALE},
}
_EVENT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": _OBJECT},
        "application/toml": {"schema": {"type": "string"}},
    },
}


def _paths() -> dict[str, Any]:
    hold = _json(_ref("HoldOut"), "The hold (or order) as it is now.")
    hold_param = _path_param("hold_id")
    event_param = _path_param("event_id")
    return {
        "/v1/holds": {
            "post": _op(
                "Reserve: hold stock for the calling buyer",
                "buyer",
                {"201": _json(_ref("HoldOut"), "The hold; it expires at `expires_at`.")},
                "buyerToken",
                [_IDEMPOTENCY],
                {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ReserveIn")}},
                },
                "Refusals: `sold-out`, `limit-exceeded`, `not-open` (with Retry-After), "
                "`closed`, `unknown-sku`, `unknown-market`, `unknown-event`.",
            )
        },
        "/v1/holds/{hold_id}": {
            "get": _op(
                "Read one of your holds or orders (or any, with the admin key)",
                "buyer",
                {"200": hold},
                ("buyerToken", "adminKey"),
                [hold_param],
            )
        },
        "/v1/holds/{hold_id}/pay": {
            "post": _op(
                "Pay a hold: it becomes an order",
                "buyer",
                {"200": _json(_ref("HoldOut"), "The order.")},
                "buyerToken",
                [hold_param, _IDEMPOTENCY],
                {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("PayIn")}},
                },
            )
        },
        "/v1/holds/{hold_id}/release": {
            "post": _op(
                "Release a hold: its stock returns to the pool at once",
                "buyer",
                {"200": hold},
                "buyerToken",
                [hold_param, _IDEMPOTENCY],
            )
        },
        "/v1/webhooks/payments": {
            "post": _op(
                "Payment provider notice (signed)",
                "payments",
                {"200": _json(_ref("HoldOut"), "The order.")},
                "webhookSignature",
                None,
                {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("PaymentWebhookIn")}},
                },
                '`Lampo-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`; a '
                "signature outside the time window is refused (`stale-signature`). "
                "Idempotent by `payment_id`; a `payment_id` that paid another hold is "
                "refused (`idempotency-conflict`).",
            )
        },
        "/v1/events/{event_id}": {
            "get": _op(
                "A sale event's definition",
                "events",
                {"200": _json(_OBJECT, "Markets, windows, catalog, offers and prices.")},
                None,
                [event_param],
            )
        },
        "/v1/events/{event_id}/stock": {
            "get": _op(
                "Stock per SKU",
                "events",
                {"200": _json(_ref("EventStock"), "allocation = available + held + sold.")},
                None,
                [event_param],
            )
        },
        "/v1/events/{event_id}/report": {
            "get": _op(
                "Live totals of the event (orders, units, money per market and in total)",
                "events",
                {"200": _json(_ref("Report"), "The live totals, stock and milestones.")},
                None,
                [event_param],
                description=(
                    "Read from the live totals and stock levels that storage keeps (no order "
                    "is recounted). One read per event serves every caller for "
                    "`LAMPO_REPORT_TTL` seconds (default 0.5) in each worker, so the figures "
                    "may be that much older than the request; `as_of` says when they were "
                    "read. `milestones[].reached` compares the live figure now, net of "
                    "refunds; `lampo report event` gives the time each was first crossed."
                ),
            )
        },
        "/live": {
            "get": _op(
                "The live battle-report pages: a list of events, or the only one",
                "dashboard",
                {
                    "200": _html("A page that links every event's live page."),
                    "302": _html(
                        "With exactly one event: its live page.",
                        Location="`/live/{event_id}`",
                    ),
                },
            )
        },
        "/live/{event_id}": {
            "get": _op(
                "The live battle-report page of an event, for a big screen",
                "dashboard",
                {
                    "200": _html("A self-contained page that polls the JSON report."),
                    "404": {
                        "description": "No such event: a small HTML page (a path that "
                        "matches no route is a problem, as elsewhere).",
                        "content": {
                            "text/html": _PAGE,
                            "application/problem+json": {"schema": _ref("Problem")},
                        },
                    },
                },
                None,
                [event_param],
            )
        },
        "/v1/admin/events": {
            "get": _op(
                "List sale events",
                "admin",
                {"200": _json(_ref("EventList"), "Every event in storage.")},
                "adminKey",
            ),
            "post": _op(
                "Load a sale event (JSON definition, or a scenario TOML file)",
                "admin",
                {
                    "200": _json(_ref("EventSummary"), "The same definition was there already."),
                    "201": _json(_ref("EventSummary"), "Loaded and open for sale."),
                },
                "adminKey",
                [_IDEMPOTENCY, _SCALE],
                _EVENT_BODY,
            ),
        },
        "/v1/admin/events/{event_id}": {
            "put": _op(
                "Update a live sale event (the same forms as loading it)",
                "admin",
                {"200": _json(_ref("EventSummary"), "Updated; new holds follow it at once.")},
                "adminKey",
                [event_param, _IDEMPOTENCY, _SCALE],
                _EVENT_BODY,
                description=(
                    "Add stock or SKUs, markets or categories; move windows; change prices "
                    "(holds keep theirs), the hold time, FX rates, names, milestones; change "
                    "or drop a per-customer limit. Refused (`update-refused`, nothing "
                    "changed): an allocation below the units held and sold, dropping what "
                    "holds and totals refer to, changing a market's currency or a SKU's "
                    "category, adding a limit where there was none. Other workers of the "
                    "server follow within `LAMPO_EVENT_REFRESH` seconds (default 1)."
                ),
            )
        },
        "/v1/admin/events/{event_id}/totals": {
            "get": _op(
                "The live totals of an event at their finest grain",
                "admin",
                {
                    "200": _json(
                        _ref("EventTotals"),
                        "Units and money per SKU, market and channel; orders per market and "
                        "channel; net of refunds, rows of zero left out.",
                    )
                },
                "adminKey",
                [event_param],
            )
        },
        "/v1/admin/events/{event_id}/orders": {
            "get": _op(
                "List holds and orders of an event, by id, a page at a time",
                "admin",
                {"200": _json(_ref("HoldList"), "A page; `next` is the `after` of the next.")},
                "adminKey",
                [
                    event_param,
                    {
                        "name": "state",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "enum": [state.value for state in HoldState],
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": limits.MAX_PAGE,
                            "default": limits.DEFAULT_PAGE,
                        },
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "maxLength": limits.MAX_HOLD_ID},
                    },
                ],
            )
        },
        "/v1/admin/holds/{hold_id}/refund": {
            "post": _op(
                "Refund an order: units back to the pool, money out of the totals",
                "admin",
                {"200": _json(_ref("HoldOut"), "The refunded order.")},
                "adminKey",
                [hold_param, _IDEMPOTENCY],
            )
        },
        "/v1/admin/expire": {
            "post": _op(
                "Run the expiry sweeper once",
                "admin",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"expired": {"type": "integer"}},
                            "required": ["expired"],
                        },
                        "How many holds expired.",
                    )
                },
                "adminKey",
                [_IDEMPOTENCY],
            )
        },
        "/health": {"get": _op("Liveness", "operations", {"200": _json(_ref("Health"), "Alive.")})},
        "/ready": {
            "get": _op(
                "Readiness: storage answers", "operations", {"200": _json(_ref("Health"), "Ready.")}
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                "operations",
                {
                    "200": {
                        "description": "Text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
    }


@functools.cache
def spec() -> dict[str, Any]:
    """The OpenAPI document (built once per process)."""
    _, components = msgspec.json.schema_components(_MODELS, ref_template=_REF)
    components["ChannelIn"].update(schemas.CHANNEL_NEEDS_A_NAME)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lampo",
            "version": __version__,
            "description": "The flash-sale API: reserve, pay, release; stock and live totals. "
            "Errors are RFC 9457 problem details; types: "
            + ", ".join(f"`{t}` ({k.status})" for t, k in TYPES.items())
            + ".",
        },
        "paths": _paths(),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "buyerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT (HS256)",
                    "description": "Issued by `lampo token BUYER`; the buyer is its `sub`.",
                },
                "adminKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "webhookSignature": {"type": "apiKey", "in": "header", "name": "Lampo-Signature"},
            },
        },
    }
