"""What a route of the API is (``Route``) and who may call it (``Auth``): the type of the
route tables, ``routes.py`` (every route) and ``door_routes.py`` (the front door's)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from lampo.web.asgi import Request, Response

if TYPE_CHECKING:
    from lampo.web.app import App

Handler = Callable[["App", Request], Awaitable[Response]]


class Auth(Enum):
    """Who may call a route; the value is the OpenAPI security schemes (any one will do)."""

    NONE = ()
    BUYER = ("buyerToken",)  # a buyer token: ``req.buyer`` is set, the buyer's limit taken
    ADMIN = ("adminKey",)
    #: The admin key when ``X-API-Key`` is sent, else a buyer token.
    BUYER_OR_ADMIN = ("buyerToken", "adminKey")
    #: A signature over the body: the handler checks it, once it has read the body.
    WEBHOOK = ("webhookSignature",)
    #: A store key (``Lampo-Store-Key``): the handler checks it is the path's store's.
    STORE_KEY = ("storeKey",)
    #: The partner's own signature over the body: the handler checks it.
    PARTNER = ("partnerSignature",)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    #: OpenAPI responses by status (the problem answers are added to every route).
    responses: Mapping[str, Mapping[str, Any]]
    auth: Auth = Auth.NONE
    idempotent: bool = False  # takes (and documents) an Idempotency-Key header
    query: tuple[Mapping[str, Any], ...] = ()
    body: Mapping[str, Any] | None = None
    description: str = ""
    documented: bool = True
    test_clock: bool = False  # served only when the test clock is on


def query(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": dict(schema)}
