"""Prometheus metrics (``GET /metrics``) through prometheus-client.

The counters and the histogram are prometheus-client's. A server of several worker
processes runs them in the library's multiprocess mode: ``lampo serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` to a directory of the run directory it makes for its workers
(``LAMPO_RUN_DIR``), each worker writes its values to its own memory-mapped files there
(``counter_<pid>.db``, ``histogram_<pid>.db``), and a scrape, in whichever worker it
lands, sums every file. An observation is written to the file before the response is
sent, so a scrape counts every response sent before it, with no message between the
workers. Counters and histograms of multiprocess mode are summed over the files of live
and exited workers alike, and a file is never removed while the server runs, so the sums
never go backwards, across workers that exit and are respawned too. The stock gauges are
not in files (no gauge mode to choose): a collector reads them from storage at scrape
time, so they are exact. An app run without ``PROMETHEUS_MULTIPROC_DIR`` counts in its
own memory and shows its own process only.

The cost, measured (callgrind, so the machine's load does not blur it): an observation
takes 30,000 instructions in multiprocess mode (three writes to the file, each under the
library's lock and with a ``getpid``) against 6,000 for the dict updates it replaced: a
tenth of a reservation in-process on ``memory://``, 6 % on SQLite, less over HTTP, where
granian and the kernel add theirs (bench/README.md). The ``getpid`` is now answered from
a copy renewed after a fork (``_pid``): in a server worker under load the three system
calls had been the larger part (py-spy: 16 % of a poll's samples, 5 % after). Counting
in process memory and handing the counts to the library now and then would not save it:
the library's histogram takes one observation per call (no public way to add several at
once), and counts held back from the files would be missing from a scrape in another
worker, which is what the files are for.

Kept by hand: the labelled children of each (route, method, status) are looked up once
and cached, since ``labels()`` was the larger part of an observation's cost (6.7 against
4.0 µs with the cache, in multiprocess mode); and a scrape leaves out, with a warning, a
file that does not read, rather than failing.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from lampo.domain.errors import InvalidRequest
from lampo.domain.holds import StockLevel

log = logging.getLogger("lampo.web.metrics")

#: The histogram's upper bounds, in seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: The ``Content-Type`` of the exposition (the text format, version 0.0.4).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4.encode()
#: The variable that names the directory of the workers' files (prometheus-client's own).
DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

#: Stock per event and SKU, as ``Storage.stock`` gives it for each event.
Stock = Mapping[str, Mapping[str, StockLevel]]
#: prometheus-client's sum of workers' files (the library leaves it unannotated).
_merge: Callable[[list[str]], Iterable[Metric]] = MultiProcessCollector.merge
_STOCK_GAUGES = (
    ("allocation", "Units allocated to the event."),
    ("available", "Units on sale now."),
    ("held", "Units in unpaid holds."),
    ("sold", "Units paid for."),
)


def multiprocess_mode() -> bool:
    """Whether prometheus-client writes this process's values to files: it decides once,
    when it is first imported, from ``PROMETHEUS_MULTIPROC_DIR``."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


#: prometheus-client's class of values kept in files (the library leaves it unannotated).
_multiprocess_value: Callable[..., type] = values.MultiProcessValue
#: This process's id, renewed in a child after a fork.
_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


def _pid() -> int:
    """``os.getpid()`` without its system call: the multiprocess values ask for it on
    every write, to notice a fork (after which a child writes files of its own)."""
    return _PID[0]


if multiprocess_mode():
    # before any metric exists (this module makes them all): each value of the files
    # asks the process id through this
    values.ValueClass = _multiprocess_value(process_identifier=_pid)


class Metrics:
    """The counters of one process. ``directory``: where every worker of the server writes
    its files (``PROMETHEUS_MULTIPROC_DIR``); empty: this process counts for itself."""

    def __init__(self, directory: str = "") -> None:
        if directory and (
            not multiprocess_mode() or os.environ.get(DIRECTORY_VARIABLE) != directory
        ):
            raise InvalidRequest(
                DIRECTORY_VARIABLE,
                "must be in the environment before the server starts (prometheus-client "
                "reads it once, when it is imported)",
            )
        self.directory = directory
        # in multiprocess mode the values live in the files, read back by the scrape;
        # otherwise in this registry (one per app: tests run several in one process)
        self._registry = None if directory else CollectorRegistry(auto_describe=True)
        registry = self._registry
        self._requests = Counter(
            "lampo_http_requests",
            "HTTP requests answered, by route and status.",
            ("route", "method", "status"),
            registry=registry,
        )
        self._seconds = Histogram(
            "lampo_http_request_duration_seconds",
            "Time to answer, by route.",
            ("route",),
            buckets=BUCKETS,
            registry=registry,
        )
        self._batches = Counter(
            "lampo_reserve_batches", "Reservation batches sent to storage.", registry=registry
        )
        self._batched = Counter(
            "lampo_reserve_batched_requests",
            "Reservations in those batches.",
            registry=registry,
        )
        self._refusals = Counter(
            "lampo_refusals", "Requests refused, by problem type.", ("reason",), registry=registry
        )
        self._door_refusals = Counter(
            "lampo_door_refusals",
            "The front door's refusals, by event and reason.",
            ("event", "reason"),
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._door_children: dict[tuple[str, str], Counter] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """One response: counted by route, method and status, timed by route."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.labels(route, method, str(status)),
                self._seconds.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def refused(self, reason: str) -> None:
        self._refusals.labels(reason).inc()

    def door_refused(self, event: str, reason: str) -> None:
        """One refusal of ``event``'s front door (thread-safe: the service's refusals are
        counted in the thread pool)."""
        key = (event, reason)
        child = self._door_children.get(key)
        if child is None:
            child = self._door_children[key] = self._door_refusals.labels(event, reason)
        child.inc()

    def door_refusals(self, event: str) -> dict[str, int]:
        """The front door's refusals of ``event`` by reason, summed over every worker of
        the server (or this process's). Reads files: call it off the event loop."""
        counted = workers(self.directory) if self._registry is None else self._registry.collect()
        out: dict[str, int] = {}
        for metric in counted:
            if metric.name != "lampo_door_refusals":
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("event") == event:
                    reason = sample.labels["reason"]
                    out[reason] = out.get(reason, 0) + int(sample.value)
        return dict(sorted((r, n) for r, n in out.items() if n))

    def batch(self, requests: int) -> None:
        """One reservation batch of ``requests`` sent to storage (their ratio over time is
        the mean batch)."""
        self._batches.inc()
        self._batched.inc(requests)

    def render(self, stock: Stock) -> bytes:
        """The exposition text: every worker's counters (or this process's) and ``stock``
        as gauges. Reads files: call it off the event loop."""
        if self._registry is None:
            return render(workers(self.directory), stock)
        return render(self._registry.collect(), stock)


def workers(directory: str) -> Iterable[Metric]:
    """The counters and the histogram summed over every worker's files in ``directory``."""
    files = sorted(glob.glob(os.path.join(directory, "*.db")))
    try:
        return _merge(files)
    except Exception:  # the library raises whatever reading a bad file raised
        return _merge([f for f in files if _readable(f)])


def render(counted: Iterable[Metric], stock: Stock) -> bytes:
    """The exposition of ``counted`` and of ``stock`` as gauges."""
    return generate_latest(_Scrape(counted, stock))


def _readable(path: str) -> bool:
    """Whether a worker's file reads (a file that does not is logged and left out)."""
    try:
        _merge([path])
    except FileNotFoundError:
        return False
    except Exception as err:
        log.warning("metrics: %s left out: %r", os.path.basename(path), err)
        return False
    return True


class _Scrape:
    """What one scrape collects: the counted metrics, and the stock as gauges."""

    def __init__(self, counted: Iterable[Metric], stock: Stock) -> None:
        self._counted = counted
        self._stock = stock

    def collect(self) -> Iterable[Metric]:
        yield from self._counted
        for name, help_text in _STOCK_GAUGES:
            family = GaugeMetricFamily(f"lampo_stock_{name}", help_text, labels=("event", "sku"))
            for event, levels in sorted(self._stock.items()):
                for sku, level in sorted(levels.items()):
                    family.add_metric((event, sku), getattr(level, name))
            yield family
