"""What the front door's service answers and signs: the values it returns (challenge,
ticket, poll, queue state) and the claims' times and fields as its tokens carry them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from lampo.domain.frontdoor import PlaceState

#: Token times are integer microseconds since this moment.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us(when: datetime) -> int:
    """``when`` as integer microseconds since the epoch (exact)."""
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True, slots=True)
class Challenge:
    """A proof-of-work challenge: find ``solution`` with ``sha256(token ":" solution)``
    starting with ``bits`` zero bits (``domain.frontdoor.solve``), before ``expires_at``."""

    token: str
    bits: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Ticket:
    """A place in a queue: the signed ``token`` a visitor polls with, its ``seq`` (0 while
    in the pre-queue)."""

    token: str
    seq: int


@dataclass(frozen=True, slots=True)
class Poll:
    """Where a ticket stands: ``state`` (waiting, admitted, sold-out), ``seq`` (0 in a
    pre-queue not numbered yet), ``ahead`` (people before it; None in the pre-queue),
    ``eta_seconds`` (until admission; in the pre-queue, until the opening), ``ticket``
    (renewed with its seq once known), ``admission`` and its expiry when admitted."""

    state: PlaceState
    seq: int
    ahead: int | None
    eta_seconds: float
    ticket: str
    admission: str | None = None
    admission_expires: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueState:
    """A queue at a moment: ``joined`` (everyone in it), ``prequeue`` (those who came
    before opening), ``frozen`` (numbered), ``admitted`` (by the line so far),
    ``waiting`` (joined, not admitted), ``rate`` (per second), ``eta_last_seconds`` (the
    last in line's wait)."""

    joined: int
    prequeue: int
    frozen: bool
    admitted: int
    waiting: int
    rate: int
    eta_last_seconds: float


class TicketClaims(msgspec.Struct, frozen=True):
    """What a ticket says: event, market, buyer, ticket id, seq (0 in a pre-queue), when
    the visitor joined and (once a poll found it admitted) when the line admitted it, in
    ``us``."""

    e: str
    m: str
    b: str
    t: str
    s: int
    j: int
    a: int | None = None


class AdmissionClaims(msgspec.Struct, frozen=True):
    """What an admission says: event, market, buyer, admission id, expiry (``us``)."""

    e: str
    m: str
    b: str
    a: str
    x: int


class ChallengeClaims(msgspec.Struct, frozen=True):
    """What a challenge says: event, buyer, nonce, the bits asked, expiry (``us``)."""

    e: str
    b: str
    n: str
    bits: int
    x: int


TICKET_CLAIMS = msgspec.json.Decoder(TicketClaims)
CHALLENGE_CLAIMS = msgspec.json.Decoder(ChallengeClaims)
ADMISSION_CLAIMS = msgspec.json.Decoder(AdmissionClaims)
