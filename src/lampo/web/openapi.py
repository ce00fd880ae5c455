"""The OpenAPI 3.1 document (``/openapi.json``; ``docs.py`` serves the page that reads it).

Paths come from the route table (``routes.py``: the routes the server serves, each
declared once); body schemas from the msgspec structs the server parses and encodes
with, so the document cannot drift from the code. This module holds the pieces the
table's entries are written with (``ref``, ``json_body``, ``html``, the shared
parameters and bodies) and turns each entry into an operation.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from lampo import __version__
from lampo.sim.scenario import MAX_SCALE
from lampo.web import door_schemas, limits, schemas
from lampo.web.problems import TYPES

if TYPE_CHECKING:
    from lampo.web.route import Route

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
    schemas.StoreList,
    schemas.StoreOut,
    schemas.RegistryWritten,
    schemas.StoreKeyOut,
    schemas.StoreKeyList,
    schemas.TillSaleIn,
    schemas.TillReturnIn,
    schemas.PartnerOrderIn,
    schemas.PartnerAnswers,
    *door_schemas.MODELS,
    door_schemas.QueueMarketOut,
)


def ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(name=name)}


OBJECT: dict[str, Any] = {"type": "object"}
IDEMPOTENCY = {
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


def path_param(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "string",
        "minLength": 1,
        "maxLength": limits.PATH_PARAMS[name],
    }
    description = "Printable, without spaces; any other value names nothing (404)."
    if name in limits.PATH_PATTERNS:
        schema["pattern"] = limits.PATH_PATTERNS[name]
        description = "Of this pattern; any other value is refused (400)."
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def page() -> dict[str, Any]:
    return {"schema": {"type": "string"}}


def html(description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"text/html": page()}}
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


HOLD = json_body(ref("HoldOut"), "The hold (or order) as it is now.")
SCALE = {
    "name": "scale",
    "in": "query",
    "required": False,
    "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SCALE},
}
EVENT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": OBJECT},
        "application/toml": {"schema": {"type": "string"}},
    },
}
_PROBLEMS = {
    "description": "A refusal, as RFC 9457 problem details (`type` is stable).",
    "content": {"application/problem+json": {"schema": ref("Problem")}},
}


def operation(route: Route) -> dict[str, Any]:
    """The OpenAPI operation of one entry of the route table."""
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": {status: dict(r) for status, r in route.responses.items()},
    }
    if route.description:
        op["description"] = route.description
    op["responses"]["default"] = _PROBLEMS
    if route.auth.value:
        # one requirement per scheme: any one of them is enough
        op["security"] = [{scheme: []} for scheme in route.auth.value]
    params = [path_param(seg[1:-1]) for seg in route.path.split("/") if seg.startswith("{")]
    if route.idempotent:
        params.append(IDEMPOTENCY)
    params += [dict(q) for q in route.query]
    if params:
        op["parameters"] = params
    if route.body:
        op["requestBody"] = dict(route.body)
    return op


def paths(routes: Iterable[Route]) -> dict[str, Any]:
    """The document's paths: every documented route, in the table's order."""
    found: dict[str, Any] = {}
    for route in routes:
        if route.documented:
            found.setdefault(route.path, {})[route.method.lower()] = operation(route)
    return found


@functools.cache
def spec() -> dict[str, Any]:
    """The OpenAPI document (built once per process)."""
    from lampo.web.routes import ROUTES  # the table names handlers, which name this module

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
        "paths": paths(ROUTES),
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
                "storeKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Lampo-Store-Key",
                    "description": "Issued per store by `lampo stores key STORE` or "
                    "`POST /v1/admin/stores/{store}/keys`; revocable.",
                },
                "partnerSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Lampo-Signature",
                    "description": "The webhook's scheme under the partner's own secret "
                    "(`LAMPO_PARTNER_SECRETS`).",
                },
            },
        },
    }
