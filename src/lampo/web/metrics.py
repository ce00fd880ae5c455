"""Prometheus metrics in the text exposition format, without a client library.

Counters and histograms live in process memory (with ``--workers N`` a scrape sees one
worker); stock gauges are read from storage at scrape time, so they are exact.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

from lampo.domain.holds import StockLevel

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.refusals: defaultdict[str, int] = defaultdict(int)
        self._hist: dict[str, list[int]] = {}
        self._sum: defaultdict[str, float] = defaultdict(float)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests[(route, method, status)] += 1
        counts = self._hist.get(route)
        if counts is None:
            counts = self._hist[route] = [0] * (len(BUCKETS) + 1)
        counts[bisect_left(BUCKETS, seconds)] += 1  # the first bucket with seconds <= bound
        self._sum[route] += seconds

    def refused(self, reason: str) -> None:
        self.refusals[reason] += 1

    def render(
        self, stock: dict[str, dict[str, StockLevel]], batches: tuple[int, int] = (0, 0)
    ) -> str:
        """The exposition text; ``batches``: reservation batches sent to storage and the
        requests in them (their ratio is the mean batch)."""
        out = [
            "# HELP lampo_http_requests_total HTTP requests answered, by route and status.",
            "# TYPE lampo_http_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.requests.items()):
            out.append(
                f'lampo_http_requests_total{{route="{_label(route)}",method="{method}",'
                f'status="{status}"}} {n}'
            )
        out += [
            "# HELP lampo_http_request_duration_seconds Time to answer, by route.",
            "# TYPE lampo_http_request_duration_seconds histogram",
        ]
        for route, counts in sorted(self._hist.items()):
            label = _label(route)
            running = 0
            for bound, n in zip(BUCKETS, counts, strict=False):
                running += n
                out.append(
                    f'lampo_http_request_duration_seconds_bucket{{route="{label}",le="{bound}"}}'
                    f" {running}"
                )
            running += counts[-1]
            out.append(
                f'lampo_http_request_duration_seconds_bucket{{route="{label}",le="+Inf"}} {running}'
            )
            out.append(f'lampo_http_request_duration_seconds_count{{route="{label}"}} {running}')
            out.append(
                f'lampo_http_request_duration_seconds_sum{{route="{label}"}} {self._sum[route]:.6f}'
            )
        out += [
            "# HELP lampo_reserve_batches_total Reservation batches sent to storage.",
            "# TYPE lampo_reserve_batches_total counter",
            f"lampo_reserve_batches_total {batches[0]}",
            "# HELP lampo_reserve_batched_requests_total Reservations in those batches.",
            "# TYPE lampo_reserve_batched_requests_total counter",
            f"lampo_reserve_batched_requests_total {batches[1]}",
            "# HELP lampo_refusals_total Requests refused, by problem type.",
            "# TYPE lampo_refusals_total counter",
        ]
        for reason, n in sorted(self.refusals.items()):
            out.append(f'lampo_refusals_total{{reason="{_label(reason)}"}} {n}')
        for name, help_text in (
            ("allocation", "Units allocated to the event."),
            ("available", "Units on sale now."),
            ("held", "Units in unpaid holds."),
            ("sold", "Units paid for."),
        ):
            out.append(f"# HELP lampo_stock_{name} {help_text}")
            out.append(f"# TYPE lampo_stock_{name} gauge")
            for event, levels in sorted(stock.items()):
                for sku, level in sorted(levels.items()):
                    value = getattr(level, name)
                    out.append(
                        f'lampo_stock_{name}{{event="{_label(event)}",sku="{_label(sku)}"}} {value}'
                    )
        return "\n".join(out) + "\n"
