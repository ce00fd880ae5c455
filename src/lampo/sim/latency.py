"""Latency of a rehearsal's requests: an HDR histogram (the ``hdrhistogram`` package) in
microseconds, from 1 µs to an hour at three significant digits, so p99.9 and the maximum
are as exact as the median whatever the spread, in constant memory."""

from __future__ import annotations

from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

#: The longest latency recorded as itself, in µs (an hour); a longer one counts as this.
HIGHEST_US = 3_600_000_000
#: The percentiles a rehearsal reports, by label.
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


@dataclass(frozen=True, slots=True)
class Summary:
    """A histogram's figures, in milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "p50_ms": self.p50,
            "p90_ms": self.p90,
            "p99_ms": self.p99,
            "p99.9_ms": self.p999,
            "max_ms": self.max,
        }


class Latency:
    """Latencies recorded in seconds, read back in milliseconds."""

    def __init__(self) -> None:
        self._histogram = HdrHistogram(1, HIGHEST_US, 3)

    def record(self, seconds: float) -> None:
        micros = min(max(1, round(seconds * 1e6)), HIGHEST_US)
        self._histogram.record_value(micros)

    @property
    def count(self) -> int:
        count: int = self._histogram.get_total_count()
        return count

    def add(self, other: Latency) -> None:
        self._histogram.add(other._histogram)

    def summary(self) -> Summary:
        h = self._histogram
        if not self.count:
            return Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        p50, p90, p99, p999 = (h.get_value_at_percentile(p) / 1000 for _, p in PERCENTILES)
        return Summary(self.count, p50, p90, p99, p999, h.get_max_value() / 1000)
