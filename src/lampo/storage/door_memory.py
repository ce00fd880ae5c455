"""The front door in memory (``memory://``): dicts behind one lock, the reference
semantics of ``storage.door.DoorStore``. Nothing survives the process."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from lampo.domain.frontdoor import AdmissionLine
from lampo.storage._door import NO_QUEUE, Draw, Entry, QueueCounts, Registration, caught_up


@dataclass(slots=True)
class _Queue:
    seed: bytes
    frozen: bool = False
    prequeue: int = 0
    last: int = 0
    line: AdmissionLine | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)  # pre-queue members' rank keys


class MemoryDoor:
    """``DoorStore`` in this process's memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registrations: dict[str, dict[str, Registration]] = {}
        self._identities: dict[tuple[str, str, str], str] = {}  # (event, kind, hash)
        self._draws: dict[str, Draw] = {}
        self._winners: dict[str, frozenset[str]] = {}
        self._queues: dict[tuple[str, str], _Queue] = {}

    # -- registrations ---------------------------------------------------------------
    def register(self, event: str, registration: Registration, unique: Sequence[str]) -> str:
        with self._lock:
            known = self._registrations.setdefault(event, {})
            if registration.account in known:
                return "account"
            identities = registration.identities()
            wanted = [(kind, identities[kind]) for kind in unique if kind in identities]
            for kind, value in wanted:
                if (event, kind, value) in self._identities:
                    return kind
            known[registration.account] = registration
            for kind, value in wanted:
                self._identities[(event, kind, value)] = registration.account
            return ""

    def registrations(self, event: str) -> int:
        with self._lock:
            return len(self._registrations.get(event, {}))

    def registered(self, event: str, account: str) -> bool:
        with self._lock:
            return account in self._registrations.get(event, {})

    def export(self, event: str) -> Iterator[Registration]:
        with self._lock:
            found = list(self._registrations.get(event, {}).values())
        return iter(sorted(found, key=lambda r: (r.at, r.account)))

    # -- the lottery ------------------------------------------------------------------
    def draw(self, event: str, draw: Draw) -> Draw:
        with self._lock:
            kept = self._draws.setdefault(event, draw)
            if kept is draw:
                self._winners[event] = frozenset(draw.winners)
            return kept

    def drawn(self, event: str) -> Draw | None:
        with self._lock:
            return self._draws.get(event)

    def has_draw(self, event: str) -> bool:
        with self._lock:
            return event in self._draws

    def won(self, event: str, account: str) -> bool:
        with self._lock:
            return account in self._winners.get(event, frozenset())

    # -- queues ---------------------------------------------------------------------
    def seed(self, event: str, market: str, candidate: bytes) -> bytes:
        with self._lock:
            return self._queue(event, market, candidate).seed

    def _queue(self, event: str, market: str, seed: bytes = b"") -> _Queue:
        q = self._queues.get((event, market))
        if q is None:
            q = self._queues[(event, market)] = _Queue(seed)
        elif not q.seed and seed:
            q.seed = seed
        return q

    def join(
        self,
        event: str,
        market: str,
        buyer: str,
        entry: Entry,
        rank: int | None,
        line: AdmissionLine | None = None,
    ) -> Entry:
        with self._lock:
            q = self._queue(event, market)
            found = q.entries.get(buyer)
            if found is not None:
                return found
            if rank is not None and not q.frozen:
                q.entries[buyer] = replace(entry, seq=0)
                q.ranks[buyer] = rank
                q.prequeue += 1
                return q.entries[buyer]
            self._freeze(q)
            current = q.line or line
            restarted = None if current is None else caught_up(current, entry.joined, q.last)
            if restarted is not None:
                q.line = restarted
            q.last += 1
            q.entries[buyer] = replace(entry, seq=q.last)
            return q.entries[buyer]

    def freeze(self, event: str, market: str) -> int:
        with self._lock:
            q = self._queue(event, market)
            self._freeze(q)
            return q.prequeue

    @staticmethod
    def _freeze(q: _Queue) -> None:
        if q.frozen:
            return
        order = sorted(q.ranks, key=lambda buyer: (q.ranks[buyer], buyer))
        for seq, buyer in enumerate(order, start=1):
            q.entries[buyer] = replace(q.entries[buyer], seq=seq)
        q.ranks.clear()
        q.frozen = True
        q.last = q.prequeue

    def entry(self, event: str, market: str, buyer: str) -> Entry | None:
        with self._lock:
            q = self._queues.get((event, market))
            return None if q is None else q.entries.get(buyer)

    def counts(self, event: str, market: str) -> QueueCounts:
        with self._lock:
            q = self._queues.get((event, market))
            if q is None:
                return NO_QUEUE
            return QueueCounts(q.prequeue, q.frozen, q.last, q.line)

    def set_line(self, event: str, market: str, line: AdmissionLine) -> None:
        with self._lock:
            self._queue(event, market).line = line
