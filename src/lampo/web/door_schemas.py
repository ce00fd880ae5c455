"""The front door's request and response bodies (docs/front-door.md), as msgspec structs:
one definition parses (strictly), encodes, and gives the OpenAPI document its schemas
(``openapi.py`` lists ``MODELS``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from lampo.domain.frontdoor import (
    MAX_ADMIT_PER_SECOND,
    MAX_HASH_HEX,
    MAX_TOKEN,
    MIN_HASH_HEX,
)

#: A client's hash of a phone number or device (``domain.frontdoor.check_hash``).
HASH_PATTERN = f"^[0-9a-f]{{{MIN_HASH_HEX},{MAX_HASH_HEX}}}$"
Hash = Annotated[
    str,
    Meta(
        pattern=HASH_PATTERN,
        description=f"The client's hash of it: {MIN_HASH_HEX}-{MAX_HASH_HEX} lowercase hex "
        "characters, never the raw number.",
    ),
]
Market = Annotated[str, Meta(min_length=1, max_length=8, examples=["IN"])]
#: A proof-of-work solution: 1-64 ASCII characters (``domain.frontdoor.pow_ok``).
MAX_SOLUTION = 64
Token = Annotated[str, Meta(max_length=MAX_TOKEN)]


class RegistrationIn(Struct, forbid_unknown_fields=True):
    """A registration of the calling buyer (the token's subject), with the identities the
    event may require to be unique."""

    phone_hash: Hash | None = None
    device_hash: Hash | None = None


class RegistrationOut(Struct):
    event: str
    account: str
    registered_at: datetime


class RegistrationCount(Struct):
    """How many accounts are registered, read at most once per ``LAMPO_REPORT_TTL``."""

    event: str
    registrations: int


class ChallengeOut(Struct):
    """A proof-of-work challenge: find ``solution`` with ``sha256(challenge ":" solution)``
    starting with ``bits`` zero bits, then join with both before ``expires_at``."""

    challenge: str
    bits: int
    expires_at: datetime


class JoinIn(Struct, forbid_unknown_fields=True):
    """Join a market's queue; ``challenge`` and ``solution`` when the event asks for a
    proof of work."""

    market: Market
    challenge: Token = ""
    solution: Annotated[str, Meta(max_length=MAX_SOLUTION)] = ""


class TicketOut(Struct):
    """A place in the queue: keep ``ticket`` and send it as ``Lampo-Ticket`` to poll.
    ``seq`` is 0 while in the pre-queue (before the market opens)."""

    event: str
    market: str
    ticket: str
    seq: int


class PollOut(Struct):
    """Where the ticket stands: ``waiting`` (``position`` in line, ``ahead`` before it,
    ``eta_seconds``), ``admitted`` (``admission``: send it as ``Lampo-Admission`` to
    reserve) or ``sold-out``. ``ticket``: the ticket to poll with from now on (it carries
    its number once known: such a poll reads no storage but the queue's line)."""

    state: Annotated[str, Meta(pattern="^(waiting|admitted|sold-out)$")]
    position: Annotated[int | None, Meta(description="None in the pre-queue (not numbered).")]
    ahead: Annotated[int | None, Meta(description="None in the pre-queue (not numbered).")]
    eta_seconds: Annotated[
        float, Meta(description="Until admission; in the pre-queue, until the opening.")
    ]
    ticket: str
    seq: int
    admission: str | None = None


class QueueMarketOut(Struct):
    """One market's queue: ``joined`` in all, ``prequeue`` of them before opening,
    ``frozen`` once the pre-queue is numbered, ``admitted`` so far, ``waiting``, the
    admission ``rate`` per second and the ETA of the last in line."""

    market: str
    joined: int
    prequeue: int
    frozen: bool
    admitted: int
    waiting: int
    rate: int
    last_eta_seconds: float


class QueueOut(Struct):
    """An event's front door: registrations, each market's queue (none without a waiting
    room), this worker's refusals by reason since it started."""

    event: str
    registrations: int
    markets: list[QueueMarketOut]
    refusals: Annotated[dict[str, int], Meta(description="Refusals by reason (this worker).")]


class RateIn(Struct, forbid_unknown_fields=True):
    market: Market
    per_second: Annotated[int, Meta(ge=1, le=MAX_ADMIT_PER_SECOND)]


class DrawOut(Struct):
    """The lottery: ``seed`` (hex) is published, so anyone with the registrations (``GET
    .../registrations.csv``) can redo it; ``winners`` drawn of ``registrations`` at
    ``at``. The first draw stands: a second call answers it again."""

    event: str
    seed: str
    at: datetime
    registrations: int
    winners: int


MODELS = (
    RegistrationIn,
    RegistrationOut,
    RegistrationCount,
    ChallengeOut,
    JoinIn,
    TicketOut,
    PollOut,
    QueueOut,
    RateIn,
    DrawOut,
)

registration_decoder = msgspec.json.Decoder(RegistrationIn)
join_decoder = msgspec.json.Decoder(JoinIn)
rate_decoder = msgspec.json.Decoder(RateIn)


# -- the front door's headers, as OpenAPI parameters (routes.py lists them) --------------
def _header(
    name: str, required: bool, description: str, pattern: str = "", bounded: bool = True
) -> dict[str, object]:
    """A header parameter. ``bounded``: its schema states its bound (or ``pattern``);
    a header only some events read (the buy path's) states it in words only, since the
    others take the request whatever the header holds."""
    schema: dict[str, object] = {"type": "string"}
    if bounded:
        schema = {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN}
        if pattern:
            schema = {"type": "string", "pattern": pattern}
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": schema,
    }


TICKET_HEADER = _header("Lampo-Ticket", True, "The ticket of the join (or of the last poll).")
ADMISSION_HEADER = _header(
    "Lampo-Admission",
    False,
    "Required by an event with a waiting room (read by no other): the admission of a "
    f"poll (at most {MAX_TOKEN} characters), for this buyer, event and market, before it "
    "expires. One admission places one hold: a second reservation with it replays the "
    "first (or is an `idempotency-conflict`). Without it, or with one that is another's "
    "or expired: `not-admitted` (403); garbled: `bad-token` (401).",
    bounded=False,
)
_DEVICE = "The client's device hash: the front door's velocity limit per device."
DEVICE_HEADER = _header("Lampo-Device", False, _DEVICE, HASH_PATTERN)
#: On the buy path, read for an event with a front door only.
BUY_DEVICE_HEADER = _header(
    "Lampo-Device",
    False,
    _DEVICE + f" Read for an event with a front door only: {MIN_HASH_HEX}-{MAX_HASH_HEX} "
    "lowercase hex characters, else `invalid-request`.",
    bounded=False,
)
