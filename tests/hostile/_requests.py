"""Hostile HTTP requests to every route of the API, as hypothesis strategies.

A request starts as a well-formed call to one route (credentials, an idempotency key,
a body that would be accepted), then a few of its parts are replaced with hostile values
from ``strategies.py``: a path parameter, a query value, a header (Authorization,
X-API-Key, Idempotency-Key, Lampo-Signature, Content-Type), the body or one field of
it. So every parser is reached both by garbage and by garbage that got past the parsers
before it. A few requests go to paths and methods that do not exist.

The same ``Call`` drives the app in process (``_asgi.py``) and a real server over a
socket (``Call.wire``).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from lampo.domain.codec import event_to_dict
from lampo.domain.event import SaleEvent
from lampo.web.auth import issue_token, sign_webhook
from tests.hostile import strategies as hs


@dataclass(frozen=True)
class Call:
    """One HTTP request: ``target`` is the request target as sent (path and query,
    percent-encoded), ``headers`` as sent (names lowercase), ``body`` raw."""

    method: str
    target: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    #: What the request was meant to reach, for reports: "POST /v1/holds" ...
    route: str = ""

    def wire(self) -> bytes:
        """The request as HTTP/1.1 bytes on a connection the server should then close."""
        head = f"{self.method} {self.target} HTTP/1.1\r\n".encode("latin-1")
        lines = [b"host: lampo\r\n", b"connection: close\r\n"]
        lines += [name + b": " + value + b"\r\n" for name, value in self.headers]
        lines.append(b"content-length: %d\r\n" % len(self.body))
        return head + b"".join(lines) + b"\r\n" + self.body


@dataclass(frozen=True, eq=False)  # hashed by identity: strategies are cached per Api
class Api:
    """What a well-formed call needs: secrets, a live event and holds that exist."""

    secret: bytes
    admin_key: bytes
    webhook_secret: bytes
    event: SaleEvent
    buyer: str
    held: str  # a hold of ``buyer`` in state held
    paid: str  # a paid order of ``buyer``
    amounts: dict[str, tuple[int, str]] = field(default_factory=dict)  # hold id -> amount
    clock_route: bool = True  # POST /v1/admin/clock is served
    skus: tuple[str, ...] = field(default=())
    door_event: str = ""  # an event with a front door (registration open, a waiting room)

    def token(self) -> bytes:
        return b"Bearer " + issue_token(self.secret, self.buyer).encode()


#: The shipped scenario file an admin may upload as TOML (small, one market, one SKU).
def scenario_toml() -> str:
    return resources.files("lampo.scenarios").joinpath("flash-drop.toml").read_text("utf-8")


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _key() -> st.SearchStrategy[bytes]:
    # fresh each time: hypothesis would draw the same few uuids again and again, and a
    # key used twice is a replay (or a conflict), not the call meant
    return st.builds(lambda: uuid.uuid4().hex.encode())


# -- well-formed calls, one per route --------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    auth: str  # "", "buyer", "admin", "webhook"
    idempotent: bool = False  # needs an Idempotency-Key
    body: Callable[[Api], st.SearchStrategy[Any]] | None = None  # a JSON-ready body
    query: Callable[[Api], st.SearchStrategy[dict[str, str]]] | None = None
    uploads: bool = False  # takes an event definition (JSON or TOML)
    door_headers: tuple[str, ...] = ()  # the front door's headers it reads (Lampo-*)


@functools.cache
def _reserve_body(api: Api) -> st.SearchStrategy[Any]:
    skus = api.skus or tuple(api.event.offers)
    return st.fixed_dictionaries(
        {
            "event": st.just(api.event.id),
            "market": st.sampled_from(sorted(api.event.windows)),
            "items": st.dictionaries(
                st.sampled_from(skus), st.integers(min_value=1, max_value=3), min_size=1
            ),
        },
        optional={
            "channel": st.fixed_dictionaries(
                {"kind": st.just("online")}, optional={"referral": st.just("weibo")}
            )
        },
    )


@functools.cache
def _pay_body(api: Api) -> st.SearchStrategy[Any]:
    return st.one_of(st.just({}), st.just({"amount": _amount(api, api.held)}))


@functools.cache
def _webhook_body(api: Api) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "type": st.just("payment.succeeded"),
            "hold_id": st.sampled_from((api.held, api.paid)),
            "payment_id": st.uuids().map(lambda u: u.hex),
        }
    ).map(lambda body: {**body, "amount": _amount(api, body["hold_id"])})


def _amount(api: Api, hold_id: str) -> dict[str, Any]:
    amount, currency = api.amounts.get(hold_id, (100, "CNY"))
    return {"amount": amount, "currency": currency}


@functools.cache
def _orders_query(api: Api) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "state": st.sampled_from(("held", "paid", "released", "expired", "refunded")),
            "limit": st.integers(min_value=1, max_value=1000).map(str),
            "after": st.sampled_from(("", api.held, api.paid)),
        },
    )


@functools.cache
def _scale_query(api: Api) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional={"scale": st.sampled_from(("1", "0.5", "0.01"))})


@functools.cache
def _clock_body(api: Api) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({"advance_seconds": st.integers(min_value=0, max_value=60)})


@functools.cache
def _registration_body(api: Api) -> st.SearchStrategy[Any]:
    hashes = st.text("0123456789abcdef", min_size=16, max_size=128)
    return st.fixed_dictionaries({}, optional={"phone_hash": hashes, "device_hash": hashes})


@functools.cache
def _market_query(api: Api) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {}, optional={"market": st.sampled_from(sorted(api.event.windows))}
    )


@functools.cache
def _join_body(api: Api) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"market": st.sampled_from(sorted(api.event.windows))},
        optional={"challenge": st.just(""), "solution": st.just("")},
    )


@functools.cache
def _rate_body(api: Api) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "market": st.sampled_from(sorted(api.event.windows)),
            "per_second": st.integers(min_value=1, max_value=1_000_000),
        }
    )


_DEVICE = ("lampo-device",)
ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/holds",
        "buyer",
        True,
        _reserve_body,
        door_headers=("lampo-admission", "lampo-device"),
    ),
    Route("GET", "/v1/holds/{hold_id}", "buyer"),
    Route("GET", "/v1/holds/{hold_id}", "admin"),
    Route("POST", "/v1/holds/{hold_id}/pay", "buyer", True, _pay_body),
    Route("POST", "/v1/holds/{hold_id}/release", "buyer", True),
    Route("POST", "/v1/webhooks/payments", "webhook", False, _webhook_body),
    Route("GET", "/v1/events/{event_id}", ""),
    Route("GET", "/v1/events/{event_id}/stock", ""),
    Route("GET", "/v1/events/{event_id}/report", ""),
    Route("GET", "/v1/admin/events", "admin"),
    Route("POST", "/v1/admin/events", "admin", True, query=_scale_query, uploads=True),
    Route("PUT", "/v1/admin/events/{event_id}", "admin", True, query=_scale_query, uploads=True),
    Route("GET", "/v1/admin/events/{event_id}/orders", "admin", query=_orders_query),
    Route("GET", "/v1/admin/events/{event_id}/totals", "admin"),
    Route("POST", "/v1/admin/holds/{hold_id}/refund", "admin", True),
    Route("POST", "/v1/admin/expire", "admin", True),
    Route("POST", "/v1/admin/clock", "admin", False, _clock_body),
    # the front door (issue 13)
    Route(
        "POST",
        "/v1/events/{event_id}/registrations",
        "buyer",
        False,
        _registration_body,
        door_headers=_DEVICE,
    ),
    Route("GET", "/v1/events/{event_id}/registrations/count", ""),
    Route(
        "GET",
        "/v1/events/{event_id}/queue/challenge",
        "buyer",
        query=_market_query,
        door_headers=_DEVICE,
    ),
    Route("POST", "/v1/events/{event_id}/queue", "buyer", False, _join_body, door_headers=_DEVICE),
    Route("GET", "/v1/queue/poll", "buyer", door_headers=("lampo-ticket",)),
    Route("GET", "/v1/admin/events/{event_id}/queue", "admin"),
    Route("PUT", "/v1/admin/events/{event_id}/queue/rate", "admin", False, _rate_body),
    Route("POST", "/v1/admin/events/{event_id}/draw", "admin"),
    Route("GET", "/v1/admin/events/{event_id}/registrations.csv", "admin"),
    Route("GET", "/health", ""),
    Route("GET", "/ready", ""),
    Route("GET", "/metrics", ""),
    Route("GET", "/openapi.json", ""),
    Route("GET", "/docs", ""),
    Route("GET", "/problems/{reason}", ""),
    Route("GET", "/live", ""),
    Route("GET", "/live/{event_id}", ""),
)


# -- what replaces a part of a call ----------------------------------------------------------


@functools.cache
def hostile_json_bodies() -> st.SearchStrategy[bytes]:
    """Bodies that are not what any route wants: other JSON types, deep nesting, bytes
    that are not UTF-8 or not JSON, an empty body, one just past the 16 KiB limit."""
    return st.one_of(
        hs.json_values().map(_json),
        hs.nested_json(max_depth=20_000).map(str.encode),
        st.binary(max_size=200),
        hs.hostile_text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.just(b""),
        st.integers(min_value=16 * 1024 - 8, max_value=16 * 1024 + 64).map(
            lambda n: b'{"a":"' + b"x" * n + b'"}'
        ),
    )


def _same_type(node: Any) -> st.SearchStrategy[Any]:
    """A hostile value of the JSON type of ``node``, with numbers an event takes today."""
    if isinstance(node, bool) or node is None:
        return st.one_of(st.booleans(), st.none())
    if isinstance(node, int):
        return st.integers(min_value=-(2**31), max_value=2**31)
    if isinstance(node, float):
        return st.floats(min_value=-(2**31), max_value=2**31)
    if isinstance(node, str):
        return hs.hostile_text(max_size=60)
    return st.just(type(node)())  # an empty list or object


def _mutate_fields(value: Any, same_types: bool = False) -> st.SearchStrategy[Any]:
    """``value`` (a JSON-ready dict) with one field, at any depth, replaced by a hostile
    value (``same_types``: one of the field's JSON type, numbers within 32 bits), removed,
    or joined by an unknown field."""
    paths: list[tuple[Any, ...]] = []
    nodes: dict[tuple[Any, ...], Any] = {}

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        nodes[path] = node
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(value, ())

    def apply(path: tuple[Any, ...], how: str, new: Any, name: str) -> Any:
        def rebuild(node: Any, rest: tuple[Any, ...]) -> Any:
            if not rest:
                if how == "extra" and isinstance(node, dict):
                    return {**node, name: new}
                return new
            head, tail = rest[0], rest[1:]
            if isinstance(node, dict):
                if how == "drop" and not tail:
                    return {k: v for k, v in node.items() if k != head}
                return {**node, head: rebuild(node[head], tail)}
            copy = list(node)
            copy[head] = rebuild(node[head], tail)
            return copy

        return rebuild(value, path)

    def mutate(path: tuple[Any, ...]) -> st.SearchStrategy[Any]:
        replacement = _same_type(nodes[path]) if same_types else hs.json_values(max_leaves=8)
        return st.builds(
            apply,
            st.just(path),
            st.sampled_from(("replace", "replace", "drop", "extra")),
            replacement,
            hs.hostile_text(max_size=30),
        )

    return st.sampled_from(paths).flatmap(mutate)


@functools.cache
def _event_json_bodies(api: Api, tame: bool) -> st.SearchStrategy[bytes]:
    """The live event's definition (as ``GET /v1/events/{id}`` gives it), as it is or
    with a field mutated (``tame``: see ``event_uploads``)."""
    base = event_to_dict(api.event)
    return st.one_of(st.just(base), _mutate_fields(base, same_types=tame)).map(_json)


@functools.cache
def _event_toml_bodies(tame: bool) -> st.SearchStrategy[bytes]:
    """The shipped scenario as TOML, as it is or with one line's value replaced, or
    hostile TOML text (``tame``: see ``event_uploads``)."""
    text = scenario_toml()
    lines = text.splitlines(keepends=True)
    assignments = [i for i, line in enumerate(lines) if "=" in line and not line.startswith("#")]

    def value_for(i: int) -> st.SearchStrategy[str]:
        old = lines[i].partition("=")[2].strip()
        strings = hs.hostile_text(max_size=30).map(json.dumps)
        if not tame:
            return st.one_of(
                hs.hostile_number_text(max_digits=4400),
                st.sampled_from(('""', "[]", "{}", "true", "nan", "inf", "1979-05-27")),
                strings,
                hs.nested_toml().map(lambda t: t.partition("=")[2].strip() or "1"),
            )
        if old.startswith('"'):
            return strings
        if old[:1].isdigit():
            return st.integers(min_value=-(2**31), max_value=2**31).map(str)
        return st.just(old)

    def replace_line(i: int, value: str) -> str:
        copy = list(lines)
        copy[i] = f"{lines[i].partition('=')[0]}= {value}\n"
        return "".join(copy)

    replaced = st.sampled_from(assignments).flatmap(
        lambda i: value_for(i).map(lambda v: replace_line(i, v))
    )
    documents = hs.toml_documents()
    if tame:  # shallower than any recursion limit
        documents = documents.filter(lambda t: t.count("[") + t.count("{") < 64)
    return st.one_of(st.just(text), replaced, documents).map(
        lambda t: t.encode("utf-8", "surrogatepass")
    )


@functools.cache
def event_uploads(api: Api, tame: bool = True) -> st.SearchStrategy[tuple[bytes, bytes]]:
    """(content type, body) of an event upload: JSON or TOML, well formed or not.

    ``tame``: only what the parsing of event definitions handles on this branch (values
    of the right JSON type, numbers within 32 bits, nesting shallower than 64 levels);
    the rest (wrong types, numbers past any bound, deep nesting) is another fix's, and
    ``test_event_uploads.py`` covers it."""
    return st.one_of(
        st.tuples(st.just(b"application/json"), _event_json_bodies(api, tame)),
        st.tuples(st.just(b"application/toml"), _event_toml_bodies(tame)),
    )


# -- calls ---------------------------------------------------------------------------------


def _fill(template: str, api: Api, draw: Any, hostile_path: bool) -> str:
    out = template
    for name, known in (
        ("{hold_id}", (api.held, api.paid, uuid.uuid4().hex)),
        ("{event_id}", tuple(filter(None, (api.event.id, api.door_event, "no-such-event")))),
        ("{reason}", ("sold-out", "no-such-reason")),
    ):
        if name in out:
            value = draw(hs.path_segments() if hostile_path else st.sampled_from(known))
            out = out.replace(name, value)
    return out


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


def hostile_parts(route: Route) -> tuple[str, ...]:
    """The parts of a call to ``route`` that its handler reads (and so are worth making
    hostile), and two that every call has: its method and an unknown header."""
    parts = ["method", "content-type", "body"]
    if "{" in route.template:
        parts.append("path")
    if route.query is not None:
        parts.append("query")
    if route.body is not None or route.uploads:
        parts.append("field")
    if route.auth == "buyer":
        parts.append("authorization")
    elif route.auth == "admin":
        parts += ["x-api-key", "authorization"]  # the admin key may come as a bearer token
    elif route.auth == "webhook":
        parts.append("lampo-signature")
    if route.idempotent:
        parts.append("idempotency-key")
    if route.door_headers:
        parts.append("door-header")
    return tuple(parts)


#: Routes whose handlers parse something are drawn three times as often as the others.
def _weighted(routes: tuple[Route, ...]) -> list[Route]:
    out: list[Route] = []
    for route in routes:
        parses = route.auth or route.body or route.query or route.uploads or "{" in route.template
        out += [route] * (3 if parses else 1)
    return out


@st.composite
def calls(
    draw: Any,
    api: Api,
    routes: tuple[Route, ...] = ROUTES,
    part: str | None = None,
    tame: bool = True,
) -> Call:
    """A call to one of ``routes``, well formed but for 0-3 hostile parts (``part``
    always among them, when given). ``tame``: event uploads as ``event_uploads`` says."""
    served = tuple(r for r in routes if api.clock_route or "clock" not in r.template)
    route = draw(st.sampled_from(_weighted(served)))
    # one call in six is well formed (so holds are made, paid, refunded: a refusal is
    # then checked against a store that has something to lose)
    count = draw(st.sampled_from((0, 1, 1, 2, 2, 3)))
    parts = hostile_parts(route)
    hostile = set(draw(st.lists(st.sampled_from(parts), min_size=count, max_size=count)))
    if part is not None:
        hostile.add(part)
    method = route.method
    if "method" in hostile:
        method = draw(st.sampled_from(("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")))
    path = _fill(route.template, api, draw, "path" in hostile)
    params = draw(route.query(api)) if route.query else {}
    query = _query(params)
    if "query" in hostile:
        known = [*params, "limit", "after", "state", "scale"] if params else ["limit", "scale"]
        names = st.one_of(st.sampled_from(known), st.sampled_from(("x", "limit&limit", "")))
        hostile_params = draw(st.lists(st.tuples(names, hs.query_values()), min_size=1, max_size=3))
        query = "&".join(filter(None, [query, *(f"{k}={v}" for k, v in hostile_params)]))
    target = path + ("?" + query if query else "")

    headers: dict[bytes, bytes] = {}
    content_type = b"application/json"
    body: bytes = b""
    if route.uploads:
        content_type, body = draw(event_uploads(api, tame))
    elif route.body is not None:
        value = draw(route.body(api))
        if "field" in hostile and isinstance(value, dict):
            value = draw(_mutate_fields(value))
        body = _json(value)
    if "body" in hostile:
        body = draw(hostile_json_bodies())
    if body or route.body is not None:
        headers[b"content-type"] = content_type
    if route.auth == "buyer":
        headers[b"authorization"] = api.token()
    elif route.auth == "admin":
        headers[b"x-api-key"] = api.admin_key
    elif route.auth == "webhook":
        headers[b"lampo-signature"] = sign_webhook(api.webhook_secret, body).encode()
    if route.idempotent:
        headers[b"idempotency-key"] = draw(_key())
    for name in ("authorization", "x-api-key", "idempotency-key", "content-type"):
        if name in hostile:
            values = hs.bearer_values(api.secret) if name == "authorization" else hs.header_values()
            headers[name.encode()] = draw(values)
    if "door-header" in hostile:
        for name in route.door_headers:
            headers[name.encode()] = draw(hs.header_values())
    if "lampo-signature" in hostile:
        headers[b"lampo-signature"] = draw(
            hs.signature_values(api.webhook_secret, body, int(time.time()))
        )
    return Call(method, target, tuple(headers.items()), body, f"{route.method} {route.template}")


@st.composite
def upload_calls(draw: Any, api: Api, tame: bool = True) -> Call:
    """A well-formed ``POST /v1/admin/events`` or ``PUT /v1/admin/events/{id}`` but for
    its body: an upload from ``event_uploads``."""
    content_type, body = draw(event_uploads(api, tame))
    method, path = draw(
        st.sampled_from((("POST", "/v1/admin/events"), ("PUT", f"/v1/admin/events/{api.event.id}")))
    )
    headers = (
        (b"x-api-key", api.admin_key),
        (b"idempotency-key", draw(_key())),
        (b"content-type", content_type),
    )
    return Call(method, path, headers, body, f"{method} /v1/admin/events")
