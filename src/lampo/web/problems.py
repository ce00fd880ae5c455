"""RFC 9457 problem details: one stable ``type`` and one status per refusal.

The ``type`` is ``/problems/<reason>`` (a URI reference the server also serves as a short
page), ``reason`` repeats the bare name for clients that switch on it, and the refusal's
data (``sku``, ``available``, ``opens_at`` ...) follow as extension members.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from lampo.domain.errors import LampoError, NotOpen

PROBLEM_JSON = b"application/problem+json"


class NoRoute(LampoError):
    reason = "not-found"

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__()

    def message(self) -> str:
        return f"nothing at {self.path}"


class MethodNotAllowed(LampoError):
    reason = "method-not-allowed"

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        self.method = method
        self.allowed = list(allowed)
        super().__init__()

    def message(self) -> str:
        return f"{self.method} is not allowed here; use {', '.join(self.allowed)}"


class PayloadTooLarge(LampoError):
    reason = "payload-too-large"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__()

    def message(self) -> str:
        return f"the body is larger than {self.limit} bytes"


class UnsupportedMediaType(LampoError):
    reason = "unsupported-media-type"

    def __init__(self, given: str, accepted: tuple[str, ...]) -> None:
        self.given = given
        self.accepted = list(accepted)
        super().__init__()

    def message(self) -> str:
        return f"{self.given or 'no content type'}; send {' or '.join(self.accepted)}"


class RateLimited(LampoError):
    reason = "rate-limited"

    def __init__(self, scope: str, retry_after: float) -> None:
        self.scope = scope
        self.retry_after = round(retry_after, 3)
        super().__init__()

    def message(self) -> str:
        return f"too many requests from this {self.scope}; retry in {self.retry_after:g} s"


class EventExists(LampoError):
    reason = "event-exists"

    def __init__(self, event: str) -> None:
        self.event = event
        super().__init__()

    def message(self) -> str:
        return (
            f"event {self.event!r} exists with another definition; "
            f"PUT /v1/admin/events/{self.event} updates it"
        )


@dataclass(frozen=True, slots=True)
class ProblemType:
    status: int
    title: str


#: Every problem type the API answers with. Statuses never change for a type.
TYPES: dict[str, ProblemType] = {
    "invalid-request": ProblemType(400, "The request is malformed"),
    "invalid-scenario": ProblemType(400, "The scenario file cannot be used"),
    "unauthorized": ProblemType(401, "Credentials are missing or do not verify"),
    "invalid-signature": ProblemType(401, "The webhook signature does not verify"),
    "stale-signature": ProblemType(401, "The webhook signature is outside the time window"),
    "forbidden": ProblemType(403, "These credentials do not allow this call"),
    "not-found": ProblemType(404, "No such resource"),
    "unknown-event": ProblemType(404, "No such sale event"),
    "unknown-hold": ProblemType(404, "No such hold or order"),
    "unknown-store": ProblemType(404, "No such store in the registry"),
    "unknown-store-key": ProblemType(404, "No such store key"),
    "unknown-receipt": ProblemType(404, "No sale of this store has this receipt id"),
    "method-not-allowed": ProblemType(405, "Method not allowed"),
    "sold-out": ProblemType(409, "Sold out"),
    "limit-exceeded": ProblemType(409, "Per-customer limit reached"),
    "not-open": ProblemType(409, "The sale has not opened yet"),
    "closed": ProblemType(409, "The sale has closed"),
    "illegal-transition": ProblemType(409, "The hold is not in a state that allows this"),
    "already-paid": ProblemType(409, "The hold was paid by another payment"),
    "event-exists": ProblemType(409, "The event exists with another definition"),
    "update-refused": ProblemType(409, "The live event cannot take this definition"),
    "registry-changed": ProblemType(409, "The store registry changed since that version"),
    "store-not-open": ProblemType(409, "The store does not trade on that day"),
    "hold-expired": ProblemType(410, "The hold has expired"),
    "payload-too-large": ProblemType(413, "The body is too large"),
    "unsupported-media-type": ProblemType(415, "Unsupported content type"),
    "unknown-sku": ProblemType(422, "The SKU is not on sale in this event"),
    "unknown-market": ProblemType(422, "The market takes no part in this event"),
    "idempotency-conflict": ProblemType(422, "The idempotency key was used for another request"),
    "stores-refused": ProblemType(422, "The store registry file was refused whole"),
    "orders-refused": ProblemType(422, "The order file was refused whole"),
    "rate-limited": ProblemType(429, "Too many requests"),
    # -- the front door (issue 13; web/frontdoor.py, docs/front-door.md) --
    "bad-token": ProblemType(401, "The ticket, admission or challenge does not verify"),
    "not-registered": ProblemType(403, "The account is not registered for this event"),
    "not-drawn": ProblemType(403, "The account was not drawn in the event's lottery"),
    "not-admitted": ProblemType(403, "No valid admission from the waiting room"),
    "proof-of-work": ProblemType(403, "The proof of work is missing or wrong"),
    "already-registered": ProblemType(409, "This account, phone or device is registered"),
    "registration-closed": ProblemType(409, "Registration is not open"),
    "no-front-door": ProblemType(404, "The event has no such part of a front door"),
    # --
    "internal-error": ProblemType(500, "Internal error"),
    "unavailable": ProblemType(503, "Storage is unavailable; retry later"),
}


def status_of(error: LampoError) -> int:
    return TYPES.get(error.reason, TYPES["invalid-request"]).status


def retry_after(error: LampoError, now: datetime | None = None) -> int | None:
    """Seconds a client should wait before trying again, where that is known."""
    if isinstance(error, RateLimited):
        return max(1, math.ceil(error.retry_after))
    if isinstance(error, NotOpen):
        moment = now or datetime.now(UTC)
        return max(1, math.ceil((error.opens_at - moment).total_seconds()))
    if error.reason == "unavailable":
        return 1
    return None


#: The most of one text sent by the client that a problem repeats (an id, a path): a
#: refusal of a 60 KiB path is not a 180 KiB answer.
ECHO = 256


def _clip(value: Any, limit: int = ECHO) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value


def problem(error: LampoError, instance: str) -> tuple[int, dict[str, Any]]:
    """``(status, body)`` of the problem document for ``error``. Texts from the request
    (the path, an id in the refusal's data or its detail) are cut to ``ECHO`` characters."""
    kind = TYPES.get(error.reason)
    status = kind.status if kind else 400
    body: dict[str, Any] = {
        "type": f"/problems/{error.reason}",
        "title": kind.title if kind else error.reason,
        "status": status,
        "detail": _clip(error.message(), 2 * ECHO),
        "instance": _clip(instance),
        "reason": error.reason,
    }
    for key, value in error.detail().items():
        if key not in body:
            body[key] = _clip(value)
    return status, body


_encode = msgspec.json.Encoder().encode


def encode(body: dict[str, Any]) -> bytes:
    """The problem document as JSON. Text that cannot be UTF-8 (a lone surrogate, which an
    ASGI server may make of a path that is not UTF-8) is written with '?' in its place, so
    a refusal always has a body."""
    try:
        return _encode(body)
    except UnicodeEncodeError:
        return _encode(_scrub(body))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value
