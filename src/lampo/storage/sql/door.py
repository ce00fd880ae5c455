"""The front door in SQLite and PostgreSQL (``storage.door.DoorStore``), tables of
migration 0004 (``door_*``).

Writes are units of the storage's own writer (its batcher), so they share its
transactions, its group commit and, on SQLite, its file lock: every write reads what it
decides on first, then writes. On PostgreSQL a queue's row is locked (``FOR UPDATE``)
before anything of the queue is read, so joins and the freeze of one queue take turns
and sequence numbers follow the order of their transactions. A registration checks its
rows, then inserts: two at once for the same account or identity cannot both insert
(the primary keys), and the loser is run again by the writer (a unique violation is
retried), finding the winner's row. Reads use the storage's read connections.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from lampo.domain.frontdoor import AdmissionLine
from lampo.storage._door import NO_QUEUE, Draw, Entry, QueueCounts, Registration, caught_up
from lampo.storage.sql.dialect import Dialect
from lampo.storage.sql.state import SqlState
from lampo.storage.sql.storage import SqlStorage

#: Registrations read by one statement of an export.
EXPORT_PAGE = 5_000
#: Winners inserted by one statement (SQLite allows 32,766 parameters).
_WINNERS_PER_INSERT = 500


class _Statements:
    """The front door's statements in one dialect."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.reg_has = q("SELECT 1 FROM door_registrations WHERE event = ? AND account = ?")
        self.identity_has = q(
            "SELECT 1 FROM door_identities WHERE event = ? AND kind = ? AND hash = ?"
        )
        self.reg_insert = q("INSERT INTO door_registrations VALUES (?, ?, ?, ?, ?)")
        self.identity_insert = q("INSERT INTO door_identities VALUES (?, ?, ?, ?)")
        self.reg_count = q("SELECT count(*) FROM door_registrations WHERE event = ?")
        # a page of registrations in (at, account) order, after a given one (keyset
        # pagination, along the index on (event, at, account))
        self.reg_first = q(
            "SELECT account, at, phone_hash, device_hash FROM door_registrations "
            "WHERE event = ? ORDER BY at, account LIMIT ?"
        )
        self.reg_after = q(
            "SELECT account, at, phone_hash, device_hash FROM door_registrations "
            "WHERE event = ? AND (at > ? OR (at = ? AND account > ?)) "
            "ORDER BY at, account LIMIT ?"
        )
        self.draw_get = q("SELECT seed, at, registrations FROM door_draws WHERE event = ?")
        self.draw_insert = q("INSERT INTO door_draws VALUES (?, ?, ?, ?)")
        self.winners = q("SELECT account FROM door_winners WHERE event = ? ORDER BY place")
        self.won = q("SELECT 1 FROM door_winners WHERE event = ? AND account = ?")
        self.queue_make = q(
            "INSERT INTO door_queues (event, market, seed) VALUES (?, ?, '') "
            "ON CONFLICT (event, market) DO NOTHING"
        )
        self.queue_lock = q(
            "SELECT seed, prequeue, frozen, last_seq, since, base, rate FROM door_queues "
            "WHERE event = ? AND market = ?" + d.lock
        )
        self.queue_seed = q(
            "UPDATE door_queues SET seed = ? WHERE event = ? AND market = ? AND seed = ''"
        )
        self.queue_counts = q(
            "SELECT prequeue, frozen, last_seq, since, base, rate FROM door_queues "
            "WHERE event = ? AND market = ?"
        )
        self.queue_pre = q(
            "UPDATE door_queues SET prequeue = prequeue + 1 WHERE event = ? AND market = ?"
        )
        self.queue_last = q("UPDATE door_queues SET last_seq = ? WHERE event = ? AND market = ?")
        self.queue_frozen = q(
            "UPDATE door_queues SET frozen = ?, last_seq = prequeue WHERE event = ? AND market = ?"
        )
        self.queue_line = q(
            "UPDATE door_queues SET since = ?, base = ?, rate = ? WHERE event = ? AND market = ?"
        )
        self.entry_get = q(
            "SELECT ticket, seq, joined FROM door_entries "
            "WHERE event = ? AND market = ? AND buyer = ?"
        )
        self.entry_insert = q("INSERT INTO door_entries VALUES (?, ?, ?, ?, ?, ?, ?)")
        # seqs 1..P in rank-key order, ties by buyer: one statement
        self.freeze = q(
            "UPDATE door_entries SET seq = numbered.seq FROM ("
            "SELECT buyer, ROW_NUMBER() OVER (ORDER BY rank, buyer) AS seq FROM door_entries "
            "WHERE event = ? AND market = ? AND seq = 0) AS numbered "
            "WHERE door_entries.event = ? AND door_entries.market = ? "
            "AND door_entries.buyer = numbered.buyer"
        )


@functools.cache
def _statements(d: Dialect) -> _Statements:
    return _Statements(d)


class SqlDoor:
    """``DoorStore`` in the tables of a SQLite file or PostgreSQL schema."""

    def __init__(self, storage: SqlStorage) -> None:
        self._storage = storage
        self._d = storage.dialect
        self._q = _statements(storage.dialect)

    def _write(self, work: Callable[[Callable[..., Any]], Any]) -> Any:
        """Run ``work(execute)`` as one unit of the storage's writer (its transaction)."""

        def unit(st: SqlState) -> Any:
            return work(st._x)  # the writer's open transaction

        return self._storage._batcher.submit(unit)

    def _rows(self, query: str, params: Sequence[Any]) -> list[Any]:
        return self._storage._rows(query, params)

    def _time(self, value: Any) -> datetime:
        out = self._d.time_out(value)
        assert out is not None
        return out

    # -- registrations ---------------------------------------------------------------
    def register(self, event: str, registration: Registration, unique: Sequence[str]) -> str:
        q, t = self._q, self._d.time_in
        identities = registration.identities()
        wanted = [(kind, identities[kind]) for kind in unique if kind in identities]
        r = registration

        def work(x: Callable[..., Any]) -> str:
            if x(q.reg_has, (event, r.account)).fetchone():
                return "account"
            for kind, value in wanted:
                if x(q.identity_has, (event, kind, value)).fetchone():
                    return kind
            x(q.reg_insert, (event, r.account, t(r.at), r.phone_hash, r.device_hash))
            for kind, value in wanted:
                x(q.identity_insert, (event, kind, value, r.account))
            return ""

        found: str = self._write(work)
        return found

    def registrations(self, event: str) -> int:
        return int(self._rows(self._q.reg_count, (event,))[0][0])

    def registered(self, event: str, account: str) -> bool:
        return bool(self._rows(self._q.reg_has, (event, account)))

    def export(self, event: str) -> Iterator[Registration]:
        """Read in pages of ``EXPORT_PAGE`` as it is walked: an export or a draw of
        millions of registrations never holds them all."""
        rows = self._rows(self._q.reg_first, (event, EXPORT_PAGE))
        while rows:
            for account, at, phone, device in rows:
                yield Registration(account, self._time(at), phone, device)
            if len(rows) < EXPORT_PAGE:
                return
            account, at = rows[-1][0], rows[-1][1]  # as stored: compared as stored
            rows = self._rows(self._q.reg_after, (event, at, at, account, EXPORT_PAGE))

    # -- the lottery ------------------------------------------------------------------
    def draw(self, event: str, draw: Draw) -> Draw:
        q, t = self._q, self._d.time_in

        def work(x: Callable[..., Any]) -> bool:
            if x(q.draw_get + self._d.lock, (event,)).fetchone():
                return False
            x(q.draw_insert, (event, draw.seed, t(draw.at), draw.registrations))
            winners = list(enumerate(draw.winners, start=1))
            for start in range(0, len(winners), _WINNERS_PER_INSERT):
                part = winners[start : start + _WINNERS_PER_INSERT]
                marks = ", ".join(["(?, ?, ?)"] * len(part))
                params = [v for place, account in part for v in (event, account, place)]
                x(self._d.sql(f"INSERT INTO door_winners VALUES {marks}"), params)
            return True

        if self._write(work):
            return draw
        kept = self.drawn(event)
        assert kept is not None
        return kept

    def drawn(self, event: str) -> Draw | None:
        rows = self._rows(self._q.draw_get, (event,))
        if not rows:
            return None
        seed, at, registrations = rows[0]
        winners = tuple(r[0] for r in self._rows(self._q.winners, (event,)))
        return Draw(seed, self._time(at), int(registrations), winners)

    def has_draw(self, event: str) -> bool:
        return bool(self._rows(self._q.draw_get, (event,)))

    def won(self, event: str, account: str) -> bool:
        return bool(self._rows(self._q.won, (event, account)))

    # -- queues ---------------------------------------------------------------------
    def _lock_queue(self, x: Callable[..., Any], event: str, market: str) -> tuple[Any, ...]:
        """The queue's row (seed, prequeue, frozen, last_seq, since, base, rate), made if
        missing, locked."""
        x(self._q.queue_make, (event, market))
        row: tuple[Any, ...] = x(self._q.queue_lock, (event, market)).fetchone()
        return row

    def seed(self, event: str, market: str, candidate: bytes) -> bytes:
        q = self._q

        def work(x: Callable[..., Any]) -> str:
            seed = self._lock_queue(x, event, market)[0]
            if seed:
                return str(seed)
            x(q.queue_seed, (candidate.hex(), event, market))
            return candidate.hex()

        return bytes.fromhex(self._write(work))

    def _freeze(self, x: Callable[..., Any], event: str, market: str, row: tuple[Any, ...]) -> int:
        prequeue, frozen = row[1], row[2]
        if not frozen:
            x(self._q.freeze, (event, market, event, market))
            x(self._q.queue_frozen, (True, event, market))
        return int(prequeue)

    def join(
        self,
        event: str,
        market: str,
        buyer: str,
        entry: Entry,
        rank: int | None,
        line: AdmissionLine | None = None,
    ) -> Entry:
        q, t = self._q, self._d.time_in

        def work(x: Callable[..., Any]) -> Entry:
            row = self._lock_queue(x, event, market)
            found = x(q.entry_get, (event, market, buyer)).fetchone()
            if found is not None:
                return Entry(found[0], int(found[1]), self._time(found[2]))
            if rank is not None and not row[2]:
                x(q.entry_insert, (event, market, buyer, entry.ticket, rank, 0, t(entry.joined)))
                x(q.queue_pre, (event, market))
                return Entry(entry.ticket, 0, entry.joined)
            last = self._freeze(x, event, market, row) if not row[2] else int(row[3])
            since, base, rate = row[4:7]
            current = line
            if rate is not None:
                current = AdmissionLine(self._time(since), int(base), int(rate))
            restarted = None if current is None else caught_up(current, entry.joined, last)
            if restarted is not None:
                r = restarted
                x(q.queue_line, (t(r.since), r.base, r.rate, event, market))
            seq = last + 1
            x(q.entry_insert, (event, market, buyer, entry.ticket, None, seq, t(entry.joined)))
            x(q.queue_last, (seq, event, market))
            return Entry(entry.ticket, seq, entry.joined)

        out: Entry = self._write(work)
        return out

    def freeze(self, event: str, market: str) -> int:
        def work(x: Callable[..., Any]) -> int:
            return self._freeze(x, event, market, self._lock_queue(x, event, market))

        out: int = self._write(work)
        return out

    def entry(self, event: str, market: str, buyer: str) -> Entry | None:
        rows = self._rows(self._q.entry_get, (event, market, buyer))
        if not rows:
            return None
        ticket, seq, joined = rows[0]
        return Entry(ticket, int(seq), self._time(joined))

    def counts(self, event: str, market: str) -> QueueCounts:
        rows = self._rows(self._q.queue_counts, (event, market))
        if not rows:
            return NO_QUEUE
        prequeue, frozen, last, since, base, rate = rows[0]
        line = None
        if rate is not None:
            line = AdmissionLine(self._time(since), int(base), int(rate))
        return QueueCounts(int(prequeue), bool(frozen), int(last), line)

    def set_line(self, event: str, market: str, line: AdmissionLine) -> None:
        q, t = self._q, self._d.time_in

        def work(x: Callable[..., Any]) -> None:
            self._lock_queue(x, event, market)
            x(q.queue_line, (t(line.since), line.base, line.rate, event, market))

        self._write(work)
