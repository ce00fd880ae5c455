"""Prometheus metrics in the text exposition format, without a client library.

Counters and histograms live in process memory, so counting costs the request path a few
dict updates and nothing else. With several worker processes (``lampo serve --workers
N``) each worker also keeps a snapshot of its own counters in a file of a directory that
``lampo serve`` makes for the run (``LAMPO_RUN_DIR``), and a scrape answers the sum of
every file (``SharedMetrics``): the sum over all workers, which never goes backwards (the
file of a worker that exited keeps counting). Stock gauges are read from storage at
scrape time, so they are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lampo.domain.holds import StockLevel

log = logging.getLogger("lampo.web.metrics")

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Reservation batches sent to storage and the requests in them.
Batches = tuple[int, int]
#: Seconds between two snapshots of a worker's counters (written only when they changed).
SNAPSHOT_SECONDS = 1.0
#: Longest wait of a scrape for another worker's fresh snapshot (its last one counts).
ASK_SECONDS = 1.0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value


class Metrics:
    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.refusals: defaultdict[str, int] = defaultdict(int)
        self._hist: dict[str, list[int]] = {}
        self._sum: defaultdict[str, float] = defaultdict(float)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests[(route, method, status)] += 1
        counts = self._hist.get(route) or self._new_histogram(route)
        counts[bisect_left(BUCKETS, seconds)] += 1  # the first bucket with seconds <= bound
        self._sum[route] += seconds

    def _new_histogram(self, route: str) -> list[int]:
        counts = self._hist[route] = [0] * (len(BUCKETS) + 1)  # one per bound, and +Inf
        return counts

    def refused(self, reason: str) -> None:
        self.refusals[reason] += 1

    # -- snapshots, for the sum over worker processes ---------------------------------------
    def to_json(self, batches: Batches = (0, 0)) -> bytes:
        """Every counter (and ``batches``) as JSON; ``from_json`` reads it back."""
        return json.dumps(
            {
                "requests": [[r, m, s, n] for (r, m, s), n in self.requests.items()],
                "refusals": self.refusals,
                "hist": self._hist,
                "sum": self._sum,
                "batches": list(batches),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> tuple[Metrics, Batches]:
        """The counters of a ``to_json`` text; ``ValueError`` if it is not one."""
        try:
            doc = json.loads(data)
            out = cls()
            for route, method, status, n in doc["requests"]:
                if not (isinstance(route, str) and isinstance(method, str)):
                    raise ValueError("a route and a method are text")
                out.requests[(route, method, _count(status))] += _count(n)
            for reason, n in doc["refusals"].items():
                out.refusals[reason] += _count(n)
            for route, counts in doc["hist"].items():
                if not isinstance(counts, list) or len(counts) != len(BUCKETS) + 1:
                    raise ValueError("a histogram has one count per bucket, and +Inf")
                out._hist[route] = [_count(n) for n in counts]
            for route, seconds in doc["sum"].items():
                if type(seconds) not in (int, float) or route not in out._hist:
                    raise ValueError("a sum is a number, of a histogram")
                out._sum[route] = float(seconds)
            batches, requests = doc["batches"]
            return out, (_count(batches), _count(requests))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
            raise ValueError(f"not a metrics snapshot: {err!r}") from None

    def add(self, other: Metrics) -> None:
        for key, n in other.requests.items():
            self.requests[key] += n
        for reason, n in other.refusals.items():
            self.refusals[reason] += n
        for route, counts in other._hist.items():
            mine = self._hist.get(route) or self._new_histogram(route)
            for i, n in enumerate(counts):
                mine[i] += n
            self._sum[route] += other._sum[route]

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


def merge(snapshots: Iterable[bytes]) -> tuple[Metrics, Batches]:
    """The sum of ``to_json`` snapshots; one that does not read as a snapshot is left out
    (a scrape never fails on a file)."""
    total = Metrics()
    batches = requests = 0
    for data in snapshots:
        try:
            one, (b, r) = Metrics.from_json(data)
        except ValueError as err:
            log.warning("a metrics snapshot left out: %s", err)
            continue
        total.add(one)
        batches += b
        requests += r
    return total, (batches, requests)


def read_snapshots(directory: Path) -> list[bytes]:
    """Every worker's snapshot file in ``directory``, those of exited workers included."""
    out: list[bytes] = []
    for path in sorted(directory.glob("*.json")):
        with contextlib.suppress(FileNotFoundError):
            out.append(path.read_bytes())
    return out


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists (another user's, after the pid was reused)
    return True


class SharedMetrics:
    """One worker's part in the metrics of a ``lampo serve`` with several workers.

    The worker writes ``to_json`` of its counters to ``<pid>-<nonce>.json`` in the shared
    directory (a temporary file, then ``os.replace``, so a reader never sees half of one):
    when they changed, at most once per ``SNAPSHOT_SECONDS``, from the event loop; when
    another worker asks for it; and when it stops. It listens for those asks on a loopback
    TCP port, which it names with a random token in ``<pid>-<nonce>.addr`` (the directory
    is private: only the server's own processes read the token; a Unix socket would do,
    but its path length is limited and the directory's is not).

    ``collect`` (a scrape) writes this worker's snapshot, asks every other running worker
    to write theirs and waits for their answers (``ASK_SECONDS`` at most, then their last
    snapshot counts), then reads every file: every response a worker sent before the
    scrape began is counted. Files are never deleted while the server runs, and each only
    grows, so the sum never goes backwards, across workers that exit and are respawned too.
    """

    def __init__(self, directory: Path, snapshot: Callable[[], bytes]) -> None:
        self.directory = directory
        self._snapshot = snapshot
        self.pid = os.getpid()
        name = f"{self.pid}-{secrets.token_hex(4)}"  # a reused pid gets a file of its own
        self.file = directory / f"{name}.json"
        self.address = directory / f"{name}.addr"
        self._tmp = directory / f".{name}.tmp"
        self._token = secrets.token_hex(16).encode()
        self._written: bytes | None = None
        self._server: asyncio.AbstractServer | None = None
        self._task: asyncio.Task[None] | None = None

    def write(self) -> None:
        """This worker's snapshot, to its file (if it changed since the last one)."""
        data = self._snapshot()
        if data == self._written:
            return
        if self._replace(self.file, data):
            self._written = data

    def _replace(self, path: Path, data: bytes) -> bool:
        try:
            self._tmp.write_bytes(data)
            os.replace(self._tmp, path)
        except OSError as err:
            log.warning("metrics: %s not written: %s", path.name, err)
            return False
        return True

    async def start(self) -> None:
        self.write()
        try:
            self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        except OSError as err:  # no loopback: the snapshots of every second still count
            log.warning("metrics: other workers cannot ask this one for snapshots: %s", err)
        else:
            port = self._server.sockets[0].getsockname()[1]
            self._replace(self.address, b"%d %s" % (port, self._token))
        self._task = asyncio.get_running_loop().create_task(self._every())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            self._server.close()
            self._server = None
        self.write()
        self.address.unlink(missing_ok=True)  # its last snapshot is written

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_SECONDS)
            self.write()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(ASK_SECONDS):
                token = await reader.readline()
                if hmac.compare_digest(token.rstrip(b"\n"), self._token):
                    self.write()
                    writer.write(b"!")  # written: the file is current
                    await writer.drain()
        except (OSError, TimeoutError):
            pass  # the asking worker went away, or this was not one
        finally:
            writer.close()

    async def collect(self) -> list[bytes]:
        """Every worker's snapshot, fresh (see the class)."""
        self.write()
        asks = []
        for path in self.directory.glob("*.addr"):
            pid = path.stem.partition("-")[0]
            if path == self.address or not pid.isdigit():
                continue
            if not _running(int(pid)):
                path.unlink(missing_ok=True)  # its worker died without stopping
                continue
            asks.append(self._ask(path))
        if asks:
            await asyncio.gather(*asks)
        return read_snapshots(self.directory)

    async def _ask(self, path: Path) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            port, token = path.read_bytes().split(b" ")
            async with asyncio.timeout(ASK_SECONDS):
                reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
                writer.write(token + b"\n")
                await reader.readexactly(1)
        except (FileNotFoundError, ConnectionRefusedError):
            pass  # that worker is stopping, and writes its last snapshot as it does
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as err:
            log.warning("metrics: no fresh snapshot from %s: %r", path.stem, err)
        finally:
            if writer is not None:
                writer.close()
