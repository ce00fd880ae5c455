"""The front door's storage port: registrations, the lottery, the waiting room's queues
(re-exported by ``storage.door``, whose ``door_store`` opens one).

One ``DoorStore`` per opened ``Storage`` (``door_store``), over the same state, so every
worker and node sees one queue (docs/front-door.md, "Storage"). Every write is one atomic
step of its backend: it checks everything first, then writes, so a refusal changes
nothing. The records here are what the backends keep; the service
(``services/frontdoor.py``) decides when each step is taken and signs what travels.

A queue is one per (event, market). Before the market opens its joins go to the
pre-queue, each with a rank key; ``freeze`` numbers the pre-queue 1..P in rank-key order
(ties by buyer), once, and every join after it gets P + 1, P + 2, ... in the order the
backend takes them. A join that finds the buyer in the queue answers their entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lampo.domain.frontdoor import AdmissionLine


@dataclass(frozen=True, slots=True)
class Registration:
    """An account registered for an event at ``at``, with the client's hashes of its
    phone and device when given (hex, ``frontdoor.check_hash``)."""

    account: str
    at: datetime
    phone_hash: str | None = None
    device_hash: str | None = None

    def identities(self) -> dict[str, str]:
        """The identities a registration may have to be unique by, that it carries."""
        out = {}
        if self.phone_hash is not None:
            out["phone"] = self.phone_hash
        if self.device_hash is not None:
            out["device"] = self.device_hash
        return out


@dataclass(frozen=True, slots=True)
class Draw:
    """An event's lottery: the ``seed`` (hex) fixed at ``at``, the ``registrations`` it
    drew from and its ``winners`` in draw order. The first draw stands."""

    seed: str
    at: datetime
    registrations: int
    winners: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """A buyer's place in a queue: ``ticket`` (the ticket id), ``seq`` (0 while in the
    pre-queue that is not frozen yet), ``joined`` (when)."""

    ticket: str
    seq: int
    joined: datetime


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """A queue's counters: ``prequeue`` members (P, fixed once ``frozen``), ``last``
    sequence number given (P + joins after the freeze; 0 before it), ``line``: the
    admission line, None until a rate was set (the service then uses its default)."""

    prequeue: int
    frozen: bool
    last: int
    line: AdmissionLine | None

    @property
    def joined(self) -> int:
        return self.last if self.frozen else self.prequeue


NO_QUEUE = QueueCounts(0, False, 0, None)


def caught_up(line: AdmissionLine, now: datetime, length: int) -> AdmissionLine | None:
    """The line restarted at ``now`` at the queue's ``length`` if, at ``now``, it has
    admitted all ``length`` in line (and would run ahead of the queue); else None."""
    if now > line.since and line.admitted(now, length) >= length:
        return AdmissionLine(now, length, line.rate)
    return None


class DoorStore(Protocol):
    """The front door's state in one backend. Thread-safe; every write atomic."""

    # -- registrations ---------------------------------------------------------------
    def register(self, event: str, registration: Registration, unique: Sequence[str]) -> str:
        """Keep ``registration`` unless the account, or one of its identities named in
        ``unique`` (``phone``, ``device``), is registered for ``event`` already: then
        the identity found first (account, then in ``unique``'s order) and nothing is
        written. "" when kept. Checked and written in one atomic step."""

    def registrations(self, event: str) -> int:
        """How many accounts registered for ``event``."""

    def registered(self, event: str, account: str) -> bool: ...

    def export(self, event: str) -> Iterator[Registration]:
        """Every registration of ``event``, by time, then account."""

    # -- the lottery ------------------------------------------------------------------
    def draw(self, event: str, draw: Draw) -> Draw:
        """Keep ``draw`` as ``event``'s lottery unless one is kept already: the kept one
        (the first stands)."""

    def drawn(self, event: str) -> Draw | None:
        """The kept draw (its winners in draw order), or None."""

    def has_draw(self, event: str) -> bool: ...

    def won(self, event: str, account: str) -> bool:
        """Whether ``account`` is among the winners of ``event``'s draw."""

    # -- queues ---------------------------------------------------------------------
    def seed(self, event: str, market: str, candidate: bytes) -> bytes:
        """The queue's seed of the pre-queue's order: ``candidate`` if it had none (the
        first stands)."""

    def join(
        self,
        event: str,
        market: str,
        buyer: str,
        entry: Entry,
        rank: int | None,
        line: AdmissionLine | None = None,
    ) -> Entry:
        """Put ``buyer`` in the queue as ``entry`` unless they are in it: their entry.
        ``rank`` given (a join before opening) and the queue not frozen: into the
        pre-queue with that rank key, seq 0. Otherwise (``rank`` None, a join after
        opening, or a frozen queue) the queue is frozen first if it is not, and the
        entry gets the next sequence number. One atomic step.

        ``line``: the queue's admission line while none is kept. A numbered join that
        finds the line caught up with the queue at ``entry.joined`` (everyone in it
        admitted, ``caught_up``) first keeps the line restarted there: from then, at the
        queue's length, at its rate. So a lull banks no admissions for the next burst."""

    def freeze(self, event: str, market: str) -> int:
        """Number the pre-queue 1..P in rank-key order (ties by buyer), unless done:
        P either way. Idempotent and atomic: nothing joins the pre-queue after it."""

    def entry(self, event: str, market: str, buyer: str) -> Entry | None:
        """The buyer's entry, its seq as numbered (0 if in a pre-queue not frozen)."""

    def counts(self, event: str, market: str) -> QueueCounts:
        """The queue's counters (``NO_QUEUE`` for a queue nobody joined)."""

    def set_line(self, event: str, market: str, line: AdmissionLine) -> None:
        """Keep ``line`` as the queue's admission line."""
