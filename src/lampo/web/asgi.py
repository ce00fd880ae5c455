"""The small ASGI framework under the app: Request, Response, the router, body decoding.

Hand-written, kept because it was measured to matter. The same handlers under Starlette
1.10 (its router, request-response wrapper and middleware, each endpoint handing the
ASGI scope to these handlers; in-process, ``bench/http_api.py``'s requests, 64
coroutines, CPU per request, 4 rounds alternated with this router, medians) cost
77-87 µs per reservation against 57-67 on ``memory://`` (throughput 0.81 of this
router's) and 0.86 on SQLite; 70-75 µs per payment against 57-58 on ``memory://``
(0.79). Starlette's own cost is the same on every route (15-20 µs of CPU per request),
so one router for all routes serves the rest as well: the issue's bar was 5 %.

The route table itself (what each route is, does and documents) is ``routes.py``; the
dispatch (limits, authentication, problems, metrics) is ``App`` in ``app.py``.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import parse_qs

import msgspec

from lampo.domain.errors import InvalidRequest, LampoError
from lampo.web import limits, schemas
from lampo.web.problems import NoRoute, PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from lampo.web.auth import Buyer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
_JSON_HEADER = [(b"content-type", JSON)]


@dataclass(slots=True)
class Response:
    """An answer; with ``stream``, its body is what ``stream(send)`` sends after the
    headers (chunks with ``more_body``: server-sent events), not ``body``."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=lambda: list(_JSON_HEADER))
    stream: Callable[[Send], Awaitable[None]] | None = None


def json_response(status: int, value: Any, *extra: tuple[bytes, bytes]) -> Response:
    return Response(status, schemas.encoder.encode(value), [*_JSON_HEADER, *extra])


class Request:
    """What a handler needs of the HTTP request; the body is read once, with a limit.
    ``buyer`` is the caller a buyer token named, when the route asks for one."""

    __slots__ = (
        "_body",
        "_receive",
        "buyer",
        "headers",
        "method",
        "params",
        "path",
        "query",
        "scope",
        "started",
    )

    def __init__(self, scope: Scope, receive: Receive, started: float = 0.0) -> None:
        self.scope = scope
        #: When the app took the request (``time.perf_counter()``).
        self.started = started
        self._receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: bytes = scope.get("query_string", b"")
        # ASGI servers give header names lowercased (the spec requires it), as bytes.
        self.headers: dict[bytes, bytes] = dict(scope.get("headers", ()))
        self.params: dict[str, str] = {}
        self.buyer: Buyer | None = None
        self._body: bytes | None = None

    @property
    def receive(self) -> Receive:
        """The ASGI receive channel (a stream watches it for the client leaving)."""
        return self._receive

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    @property
    def client(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else "unknown"

    def arg(self, name: str) -> str | None:
        values = parse_qs(self.query.decode("latin-1")).get(name)
        return values[-1] if values else None

    async def body(self, limit: int) -> bytes:
        if self._body is not None:
            return self._body
        declared = self.headers.get(b"content-length")
        if declared is not None:
            length = limits.digits(declared, limits.MAX_LENGTH_DIGITS)
            if length is None:
                raise InvalidRequest("Content-Length", "must be a whole number")
            if length > limit:
                raise PayloadTooLarge(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                # a part of a body is not the request the client meant: refuse it (the
                # client is gone and will not read the answer, but nothing is done)
                raise InvalidRequest("body", "the client left before sending all of it")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self._body = b"".join(chunks)
        return self._body

    def media_type(self) -> str:
        value = self.headers.get(b"content-type", b"").decode("latin-1")
        return value.split(";", 1)[0].strip().lower()


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    name: str  # the path template, as metrics and OpenAPI show it
    segments: tuple[str, ...]
    by_method: dict[str, T]


class Router(Generic[T]):
    """Path templates (``/v1/holds/{hold_id}``) to what serves each method: one dict
    lookup for a path without parameters, else the templates in turn."""

    def __init__(self) -> None:
        self._static: dict[str, Match[T]] = {}
        self._templated: list[Match[T]] = []

    def add(self, method: str, template: str, target: T) -> None:
        segments = tuple(template.strip("/").split("/"))
        for route in (*self._static.values(), *self._templated):
            if route.name == template:
                route.by_method[method] = target
                return
        route = Match(template, segments, {method: target})
        if "{" in template:
            self._templated.append(route)
        else:
            self._static[template] = route

    def match(self, path: str) -> tuple[Match[T], dict[str, str]]:
        route = self._static.get(path)
        if route is not None:
            return route, {}
        parts = path.strip("/").split("/")
        for route in self._templated:
            if len(route.segments) != len(parts):
                continue
            params: dict[str, str] = {}
            for seg, part in zip(route.segments, parts, strict=True):
                if seg.startswith("{"):
                    if not part:
                        break
                    params[seg[1:-1]] = part
                elif seg != part:
                    break
            else:
                return route, params
        raise NoRoute(path)


class InternalError(LampoError):
    reason = "internal-error"

    def message(self) -> str:
        return "an unexpected error; it has been logged"


class OffsetClock:
    """The wall clock moved by an offset (``POST /v1/admin/clock`` when enabled)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    """The body decoded, or ``InvalidRequest``: whatever the bytes (msgspec decodes a
    value of any type recursively, so JSON nested deeper than the interpreter's limit
    raises ``RecursionError``)."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as err:
        raise InvalidRequest("body", str(err)) from None
    except msgspec.DecodeError as err:
        raise InvalidRequest("body", f"not valid JSON: {err}") from None
    except RecursionError:
        raise InvalidRequest("body", "JSON nested too deeply") from None


def require_json(req: Request, allow_empty: bool = False) -> None:
    if req.headers.get(b"content-type") == JSON:  # what nearly every client sends
        return
    media = req.media_type()
    if media == "application/json" or media.endswith("+json"):
        return
    if allow_empty and not media:
        return
    raise UnsupportedMediaType(media, ("application/json",))


#: Allocations (net, of objects the cyclic garbage collector tracks) between two
#: collections of its youngest generation in a server process; Python's default is 700.
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Run the cyclic garbage collector less often, in a server process.

    Every reservation leaves objects that live on (the hold and its line in a storage
    cache, an entry of the replay cache), so with the default threshold the collector
    runs every ~90 reservations and, through its older generations, keeps walking every
    cached hold: 6-25 % of a reservation's CPU in-process (SQLite, memory). The hot path
    makes no reference cycles, so collecting less often costs no memory worth counting.
    Never lowers a threshold set higher (or collection turned off) by the deployment.
    """
    young, middle, old = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
