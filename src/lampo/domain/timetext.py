"""How durations and instants read in reports: ``4 h 10 min`` rather than ``15,001.0 s``,
and a local time with its date whenever the date is not the one the table states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from lampo.domain.errors import InvalidRequest

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * 60  # in minutes


def duration(seconds: Fraction | int) -> str:
    """A duration of ``seconds`` (>= 0) as people read it, to the precision its size
    deserves: under a minute to a tenth of a second (``4.2 s``, ``2 s``), under an hour to
    the second (``4 min 10 s``), longer to the minute (``4 h 10 min``, ``2 d 3 h``). The
    last place shown is rounded half to even, and a part that is zero is left out."""
    exact = Fraction(seconds)
    if exact < 0:
        raise InvalidRequest("duration", f"must be >= 0, got {float(exact):g} s")
    tenths = round(exact * 10)
    if tenths < 10 * _MINUTE:
        whole, tenth = divmod(tenths, 10)
        return f"{whole}.{tenth} s" if tenth else f"{whole} s"
    whole_seconds = round(exact)
    if whole_seconds < _HOUR:
        minutes, rest = divmod(whole_seconds, _MINUTE)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    days, minutes = divmod(round(exact / _MINUTE), _DAY)
    hours, minutes = divmod(minutes, 60)
    parts = ((days, f"{days:,} d"), (hours, f"{hours} h"), (minutes, f"{minutes} min"))
    return " ".join(text for n, text in parts if n)


@dataclass(frozen=True, slots=True)
class LocalClock:
    """Instants as the wall clock of ``zone`` reads them, in a table about one span of time
    (an event, from its opening to its close).

    ``day`` is the span's local date when it opens and closes on one local date: the table
    states that date once, and an instant on it reads ``14:00:00``. Any other instant, and
    every instant of a span over two local dates or more, reads with its date
    (``2015-04-09 00:30:00``), so no time can be taken for another day's."""

    zone: ZoneInfo
    day: date | None

    @classmethod
    def over(cls, zone: ZoneInfo, opens: datetime, closes: datetime) -> LocalClock:
        """The clock of a table about ``[opens, closes)`` (aware instants)."""
        first = opens.astimezone(zone).date()
        last = max(opens, closes - timedelta(microseconds=1)).astimezone(zone).date()
        return cls(zone, first if first == last else None)

    def text(self, when: datetime, millis: bool = False) -> str:
        """``when`` (aware) to the second (``millis``: to the millisecond, truncated, as
        ``14:00:04.213``), dated unless it falls on ``day``."""
        local = when.astimezone(self.zone)
        shown = local.strftime("%H:%M:%S" if local.date() == self.day else "%Y-%m-%d %H:%M:%S")
        return f"{shown}.{local.microsecond // 1000:03d}" if millis else shown

    @property
    def on(self) -> str:
        """`` on 2015-04-08`` for a title when the table's times are undated, else ``""``."""
        return f" on {self.day.isoformat()}" if self.day else ""
