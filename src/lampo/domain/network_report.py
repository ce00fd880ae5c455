"""The store network in a period report: progress toward the network's targets and the
markets whose first store opened in the period (a milestone). Pure functions over a store
registry (``domain/stores.py``) and a period.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from lampo.domain.period import NetworkTarget, Period
from lampo.domain.stores import Store, days_of, open_at, progress_to


@dataclass(frozen=True, slots=True)
class NetworkProgress:
    """A network target at ``as_of`` (the period's last day, or the target's own day if
    that comes first): stores open then, and the exact share of the target reached."""

    target: NetworkTarget
    as_of: date
    open: int
    share: Fraction

    @property
    def reached(self) -> bool:
        return self.open >= self.target.stores


def network_progress(
    stores: Sequence[Store], period: Period, targets: Iterable[NetworkTarget]
) -> list[NetworkProgress]:
    """Each target set by ``period``'s last day whose own day is not before its first day,
    at the period's end."""
    first, last = days_of(period)
    out = []
    for t in targets:
        if t.by < first or (t.since is not None and t.since > last):
            continue
        as_of = min(last, t.by)
        count = open_at(stores, as_of, t.market or None)
        out.append(NetworkProgress(t, as_of, count, progress_to(t.stores, count)))
    return out


@dataclass(frozen=True, slots=True)
class FirstStore:
    """A milestone: the first store of ``market`` opened on ``opened`` (``store`` the id of
    the first to open that day, by id)."""

    market: str
    opened: date
    store: str
    name: str
    city: str


def first_stores(stores: Iterable[Store], period: Period) -> list[FirstStore]:
    """The markets whose first store ever opened within ``period``, by date then market."""
    first, last = days_of(period)
    earliest: dict[str, Store] = {}
    for s in stores:
        had = earliest.get(s.market)
        if had is None or (s.opened, s.id) < (had.opened, had.id):
            earliest[s.market] = s
    found = [s for s in earliest.values() if first <= s.opened <= last]
    return [
        FirstStore(s.market, s.opened, s.id, s.name, s.city)
        for s in sorted(found, key=lambda s: (s.opened, s.market))
    ]
