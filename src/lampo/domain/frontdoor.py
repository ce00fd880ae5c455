"""The front door of a hot launch: registration, the waiting room and its admissions, and
the proof of work that slows bots down (docs/front-door.md).

Pure: what an event declares (``FrontDoor``), the random order of the pre-queue
(``rank_key``), the lottery (``draw``), the moving admission line (``AdmissionLine``), a
visitor's place in it (``place``) and hashcash (``pow_ok``, ``solve``); the signed tokens a
visitor carries are the service's (``services/tokens.py``). Storage keeps the queue; the
service joins these.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from lampo.domain.bounds import moment, show, whole
from lampo.domain.errors import BadToken as BadToken  # re-exported: its home before
from lampo.domain.errors import InvalidRequest

#: Admissions let in per second per queue, at most (and at least 1).
MAX_ADMIT_PER_SECOND = 1_000_000
#: How long an admission is good for: from ``MIN_ADMISSION_SECONDS`` to ``MAX_...``.
MIN_ADMISSION_SECONDS = 10
MAX_ADMISSION_SECONDS = 3_600
#: The hardest proof of work a join may ask for: 2**28 hashes on average (minutes of a
#: phone's CPU); 0 asks for none.
MAX_POW_BITS = 28
#: The most winners a lottery draws per unit on offer.
MAX_LOTTERY_FACTOR = 1_000
#: Identities a registration may have to be unique by, besides the account.
IDENTITIES = ("phone", "device")
#: A client's hash of a phone number or device: hex, 16 to 128 characters.
MIN_HASH_HEX, MAX_HASH_HEX = 16, 128
#: The longest token this module reads (a ticket, an admission, a challenge).
MAX_TOKEN = 1_024
#: The buy path's latency an adaptive waiting room aims at: 1 ms to a minute.
MIN_TARGET_MS, MAX_TARGET_MS = 1, 60_000
#: An adaptive room admits at most this many times its starting rate.
ADAPT_CEILING = 10


@dataclass(frozen=True, slots=True)
class FrontDoor:
    """What stands before an event's buy path. ``registration_opens``/``closes``: the
    registration window (both or neither; it closes no later than the sale opens, which
    ``SaleEvent`` checks); ``require_registration``: only registered (or, after a draw,
    drawn) accounts may queue; ``unique``: identities a registration must be unique by
    besides the account; ``lottery_factor``: winners per unit when registrations exceed
    that many per unit; ``waiting_room``: a queue per market; ``admit_per_second``,
    ``admission_seconds``; ``pow_bits``: the proof of work a join needs;
    ``target_latency_ms``: when set, the admission rate adapts to the buy path's measured
    latency (``adapt``), from ``admit_per_second`` up to ``ADAPT_CEILING`` times it."""

    registration_opens: datetime | None = None
    registration_closes: datetime | None = None
    require_registration: bool = False
    unique: tuple[str, ...] = ()
    lottery_factor: int | None = None
    waiting_room: bool = True
    admit_per_second: int = 500
    admission_seconds: int = 300
    pow_bits: int = 0
    target_latency_ms: int | None = None

    def __post_init__(self) -> None:
        opens, closes = self.registration_opens, self.registration_closes
        if (opens is None) != (closes is None):
            raise InvalidRequest("registration", "needs both registration_opens and _closes")
        if opens is not None and closes is not None:
            moment("registration_opens", opens)
            moment("registration_closes", closes)
            if closes <= opens:
                raise InvalidRequest("registration", "registration_closes must be after opens")
        for name in ("require_registration", "waiting_room"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidRequest(name, "must be true or false")
        if self.require_registration and opens is None:
            raise InvalidRequest("require_registration", "needs a registration window")
        if not isinstance(self.unique, tuple) or not set(self.unique) <= set(IDENTITIES):
            raise InvalidRequest("unique", f"must be a list of {', '.join(IDENTITIES)}")
        if len(set(self.unique)) != len(self.unique):
            raise InvalidRequest("unique", "an identity is named twice")
        if self.lottery_factor is not None:
            whole("lottery_factor", self.lottery_factor, 1, MAX_LOTTERY_FACTOR)
            if opens is None:
                raise InvalidRequest("lottery_factor", "a lottery needs a registration window")
        whole("admit_per_second", self.admit_per_second, 1, MAX_ADMIT_PER_SECOND)
        whole(
            "admission_seconds",
            self.admission_seconds,
            MIN_ADMISSION_SECONDS,
            MAX_ADMISSION_SECONDS,
        )
        whole("pow_bits", self.pow_bits, 0, MAX_POW_BITS)
        if self.target_latency_ms is not None:
            whole("target_latency_ms", self.target_latency_ms, MIN_TARGET_MS, MAX_TARGET_MS)
            if not self.waiting_room:
                raise InvalidRequest("target_latency_ms", "adapts a waiting room's rate")

    def registration_open(self, now: datetime) -> bool:
        opens, closes = self.registration_opens, self.registration_closes
        return opens is not None and closes is not None and opens <= now < closes


# -- the pre-queue's order and the lottery ---------------------------------------------
def rank_key(seed: bytes, name: str) -> int:
    """A 64-bit number that orders ``name`` among others at random, the same for the same
    seed: the pre-queue's order (``name``: a ticket id) and the lottery's (an account)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8, key=seed[:64]).digest()
    return int.from_bytes(digest, "big") >> 1  # 63 bits: fits a signed 64-bit column


def draw(seed: bytes, accounts: Iterable[str], winners: int) -> list[str]:
    """The lottery: the ``winners`` accounts with the smallest ``rank_key``, in that order
    (ties, 2**-63 apart, broken by the account). Anyone with the seed can redo it. One
    pass over ``accounts``, keeping only the winners so far (``heapq.nsmallest``, which
    gives what sorting all and taking the first would)."""
    return heapq.nsmallest(max(0, winners), accounts, key=lambda a: (rank_key(seed, a), a))


# -- the admission line -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AdmissionLine:
    """The queue's admission line: ``base`` admitted at ``since``, ``rate`` more per second
    after. Nothing is written per admitted visitor: a sequence number ``seq`` is admitted
    at ``t`` when ``seq <= admitted(t)``."""

    since: datetime
    base: int
    rate: int

    def admitted(self, now: datetime, length: int) -> int:
        """How many of the first ``length`` in line are admitted at ``now``."""
        if now <= self.since:
            return min(self.base, length)
        elapsed = now - self.since
        micros = (elapsed.days * 86_400 + elapsed.seconds) * 1_000_000 + elapsed.microseconds
        return min(length, self.base + self.rate * micros // 1_000_000)

    def rebase(self, now: datetime, length: int, rate: int) -> AdmissionLine:
        """The same line from ``now`` on at ``rate`` (none admitted is taken back)."""
        whole("admit_per_second", rate, 1, MAX_ADMIT_PER_SECOND)
        return AdmissionLine(max(now, self.since), self.admitted(now, length), rate)


def adapt(rate: int, latency_ms: float, target_ms: int, ceiling: int) -> int:
    """The next admission rate of a room whose buy path answers in ``latency_ms`` (a high
    percentile of the last interval) against ``target_ms``: a quarter less when slower than
    the target, a tenth more (at least one) when faster than half of it, else the same;
    from 1 to ``ceiling`` (additive increase, multiplicative decrease: the rates of several
    workers adapting at once settle rather than swing)."""
    if latency_ms > target_ms:
        return max(1, min(ceiling, rate * 3 // 4))
    if latency_ms < target_ms / 2:
        return max(1, min(ceiling, rate + max(1, rate // 10)))
    return max(1, min(rate, ceiling))


class PlaceState(StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"
    SOLD_OUT = "sold-out"


@dataclass(frozen=True, slots=True)
class Place:
    """A visitor's place: ``ahead`` people before them, admitted in about ``eta``."""

    state: PlaceState
    seq: int
    ahead: int
    eta: timedelta


def place(seq: int, line: AdmissionLine, now: datetime, length: int) -> Place:
    """Where the visitor with sequence number ``seq`` (1-based) stands at ``now`` in a
    queue of ``length``."""
    admitted = line.admitted(now, length)
    if seq <= admitted:
        return Place(PlaceState.ADMITTED, seq, 0, timedelta(0))
    ahead = seq - admitted - 1
    return Place(PlaceState.WAITING, seq, ahead, timedelta(seconds=(ahead + 1) / line.rate))


# -- proof of work ---------------------------------------------------------------------------
def _zero_bits(digest: bytes) -> int:
    n = int.from_bytes(digest, "big")
    return len(digest) * 8 - n.bit_length()


def pow_ok(challenge: str, solution: str, bits: int) -> bool:
    """Whether ``sha256(challenge ":" solution)`` starts with ``bits`` zero bits."""
    if bits <= 0:
        return True
    if not isinstance(solution, str) or not 1 <= len(solution) <= 64 or not solution.isascii():
        return False
    digest = hashlib.sha256(f"{challenge}:{solution}".encode()).digest()
    return _zero_bits(digest) >= bits


def solve(challenge: str, bits: int) -> str:
    """A solution of ``challenge`` (what a client does: about 2**bits hashes)."""
    n = 0
    while not pow_ok(challenge, format(n, "x"), bits):
        n += 1
    return format(n, "x")


def check_hash(field: str, value: object) -> str:
    """A client's hash of an identity: lowercase hex, ``MIN_HASH_HEX``-``MAX_HASH_HEX``."""
    if (
        not isinstance(value, str)
        or not MIN_HASH_HEX <= len(value) <= MAX_HASH_HEX
        or any(c not in "0123456789abcdef" for c in value)
    ):
        raise InvalidRequest(
            field, f"must be {MIN_HASH_HEX}-{MAX_HASH_HEX} lowercase hex chars, got {show(value)}"
        )
    return value
