"""The metrics of one process and of several worker processes: what a scrape shows is what
one process would have counted, summed over every worker's file (live, exited or killed),
exact at every scrape, and a file that does not read is left out.

Workers are real processes (``_metrics_worker.py``) started as ``lampo serve`` starts
its own: with ``PROMETHEUS_MULTIPROC_DIR`` in their environment.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from lampo.domain.errors import InvalidRequest
from lampo.domain.holds import StockLevel
from lampo.web.config import WebConfig
from lampo.web.metrics import BUCKETS, Metrics, render, workers

ROOT = Path(__file__).resolve().parents[2]
HOLDS = ("lampo_http_requests_total", {"route": "/v1/holds", "method": "POST", "status": "201"})
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: bytes) -> Samples:
    """Every sample of an exposition, as Prometheus reads it (``_created`` left out: only
    a process counting for itself has those)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: bytes, name: str, labels: dict[str, str] | None = None) -> float:
    """One sample's value (0 when the scrape has no such sample)."""
    return samples(text).get((name, frozenset((labels or {}).items())), 0.0)


class Worker:
    """A worker process counting into ``directory``'s files, driven line by line."""

    def __init__(self, directory: Path) -> None:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.unit._metrics_worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._answer() == "ready"

    def _answer(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def send(self, *commands: str) -> None:
        """Run ``commands``; returns once the worker has counted every one."""
        assert self.process.stdin is not None
        for command in commands:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            assert self._answer() == "ok", command

    def count(self, n: int, status: int = 201, seconds: float = 0.001) -> None:
        self.send(*[f"observe /v1/holds POST {status} {seconds}"] * n)

    def exit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        if w.process.poll() is None:
            w.kill()
        for pipe in (w.process.stdin, w.process.stdout):
            if pipe is not None:
                pipe.close()


def scrape(directory: Path) -> bytes:
    """A scrape of the workers' files, as ``/metrics`` makes it in any worker (this
    process only reads them)."""
    return render(workers(str(directory)), {})


OBSERVATIONS = [
    ("/v1/holds", "POST", 201, 0.0004),
    ("/v1/holds", "POST", 201, 0.003),
    ("/v1/holds", "POST", 409, 0.03),
    ("/v1/holds/{hold_id}/pay", "POST", 200, 2.6),
    ("/metrics", "GET", 200, 0.001),
]


def commands(observations: list[tuple[str, str, int, float]]) -> list[str]:
    return [f"observe {r} {m} {s} {t}" for r, m, s, t in observations]


def test_workers_files_sum_to_what_one_process_would_count(
    tmp_path: Path, started: list[Worker]
) -> None:
    one, two = Worker(tmp_path), Worker(tmp_path)
    started += [one, two]
    one.send(*commands(OBSERVATIONS[:2]), "refused sold-out", "batch 3")
    two.send(*commands(OBSERVATIONS[2:]), "refused sold-out", "refused unknown-sku", "batch 4")
    single = Metrics()  # one process counting all of it for itself
    for observation in OBSERVATIONS:
        single.observe(*observation)
    for reason in ("sold-out", "sold-out", "unknown-sku"):
        single.refused(reason)
    single.batch(3)
    single.batch(4)
    text = scrape(tmp_path)
    assert samples(text) == samples(single.render({}))
    assert value(text, "lampo_refusals_total", {"reason": "sold-out"}) == 2
    assert value(text, "lampo_reserve_batches_total") == 2
    assert value(text, "lampo_reserve_batched_requests_total") == 7


def test_a_worker_forked_from_a_counting_process_counts_in_a_file_of_its_own(
    tmp_path: Path, started: list[Worker]
) -> None:
    """The values ask the process id through a cache renewed at fork (not a system call
    each time): a forked child must still notice it is another process, and write its
    counts to its own file, leaving its parent's as they were."""
    parent = Worker(tmp_path)
    started.append(parent)
    parent.count(3)
    assert parent.process.stdin is not None
    parent.process.stdin.write("fork 5\n")
    parent.process.stdin.flush()
    answer, child = parent._answer().split()
    assert answer == "ok"
    assert (tmp_path / f"counter_{child}.db").exists()
    assert (tmp_path / f"counter_{parent.process.pid}.db").exists()
    assert value(scrape(tmp_path), *HOLDS) == 8
    parent.count(1)  # the parent goes on in its own file
    assert value(scrape(tmp_path), *HOLDS) == 9


def test_a_scrape_counts_every_response_a_worker_counted_before_it(
    tmp_path: Path, started: list[Worker]
) -> None:
    a, b, c = Worker(tmp_path), Worker(tmp_path), Worker(tmp_path)
    started += [a, b, c]
    for n, total in ((1, 111), (2, 333), (3, 666)):
        # each worker answers once it has counted; the scrape follows at once
        a.count(n)
        b.count(10 * n)
        c.count(100 * n)
        assert value(scrape(tmp_path), *HOLDS) == total


def test_the_files_of_workers_that_exited_or_were_killed_keep_counting(
    tmp_path: Path, started: list[Worker]
) -> None:
    a, b, killed = Worker(tmp_path), Worker(tmp_path), Worker(tmp_path)
    started += [a, b, killed]
    b.count(7)
    b.exit()
    killed.count(1)
    killed.send("batch 1")
    killed.kill()
    a.count(2)
    first, second = scrape(tmp_path), scrape(tmp_path)
    assert value(first, *HOLDS) == 10
    assert value(first, "lampo_reserve_batches_total") == 1
    assert first == second
    # a worker started after them (a respawn) counts on from the sum, never below it
    again = Worker(tmp_path)
    started.append(again)
    again.count(1)
    assert value(scrape(tmp_path), *HOLDS) == 11


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x00" * 3,  # shorter than its header
        b"\xff\xff\xff\x7f" + bytes(4),  # says it holds more than it has
        b"\x40\x00\x00\x00\x00\x00\x00\x00\x30\x00\x00\x00{",  # an entry cut short
        (64).to_bytes(4, "little")
        + bytes(4)
        + (20).to_bytes(4, "little")
        + b"not json at all!xxxx"
        + bytes(40),
    ],
)
def test_a_file_that_does_not_read_is_left_out_of_the_scrape(
    tmp_path: Path, started: list[Worker], bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    good = Worker(tmp_path)
    started.append(good)
    good.count(2)
    (tmp_path / "counter_4194305.db").write_bytes(bad)
    text = scrape(tmp_path)
    assert value(text, *HOLDS) == 2
    assert "counter_4194305.db left out" in caplog.text


def test_a_metrics_directory_needs_prometheus_client_in_multiprocess_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # this test process imported prometheus-client without PROMETHEUS_MULTIPROC_DIR
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(InvalidRequest, match="PROMETHEUS_MULTIPROC_DIR"):
        Metrics(str(tmp_path))


@pytest.mark.parametrize("variable", ["LAMPO_RUN_DIR", "PROMETHEUS_MULTIPROC_DIR"])
def test_the_run_and_metrics_directories_must_be_directories(tmp_path: Path, variable: str) -> None:
    env = {
        "LAMPO_SECRET": "s" * 32,
        "LAMPO_ADMIN_KEY": "a" * 32,
        "LAMPO_WEBHOOK_SECRET": "w" * 32,
        "LAMPO_STORAGE": "memory://",
    }
    field = {"LAMPO_RUN_DIR": "run_dir", "PROMETHEUS_MULTIPROC_DIR": "metrics_dir"}[variable]
    assert getattr(WebConfig.from_env(env), field) == ""
    assert getattr(WebConfig.from_env({**env, variable: str(tmp_path)}), field) == str(tmp_path)
    with pytest.raises(InvalidRequest):
        WebConfig.from_env({**env, variable: str(tmp_path / "nowhere")})


# -- one process counting for itself ------------------------------------------------------

observations = st.lists(
    st.tuples(
        st.sampled_from(["/v1/holds", "/v1/holds/{hold_id}/pay", "unmatched"]),
        st.sampled_from(["GET", "POST", "HEAD"]),
        st.sampled_from([200, 201, 404, 409, 500]),
        st.floats(min_value=0, max_value=10, allow_nan=False),
    ),
    max_size=40,
)


@settings(max_examples=60)
@given(seen=observations, reasons=st.lists(st.sampled_from(["sold-out", "not-open"])))
def test_the_exposition_counts_every_observation_by_route_method_and_status(
    seen: list[tuple[str, str, int, float]], reasons: list[str]
) -> None:
    metrics = Metrics()
    for observation in seen:
        metrics.observe(*observation)
    for reason in reasons:
        metrics.refused(reason)
    got = samples(metrics.render({}))
    expected = Counter((r, m, str(s)) for r, m, s, _ in seen)
    for (route, method, status), n in expected.items():
        labels = {"route": route, "method": method, "status": status}
        assert got[("lampo_http_requests_total", frozenset(labels.items()))] == n
    assert sum(v for (name, _), v in got.items() if name == "lampo_http_requests_total") == len(
        seen
    )
    for route in {r for r, _, _, _ in seen}:
        times = [t for r, _, _, t in seen if r == route]
        for bound in (*BUCKETS, math.inf):
            le = "+Inf" if bound == math.inf else repr(bound)
            key = ("lampo_http_request_duration_seconds_bucket", {"route": route, "le": le})
            assert got[(key[0], frozenset(key[1].items()))] == sum(t <= bound for t in times)
        count = got[("lampo_http_request_duration_seconds_count", frozenset({("route", route)}))]
        assert count == len(times)
    for reason, n in Counter(reasons).items():
        assert got[("lampo_refusals_total", frozenset({("reason", reason)}))] == n


def test_the_stock_gauges_are_the_levels_read_at_scrape_time() -> None:
    stock = {
        "launch": {
            "phone-red": StockLevel("phone-red", 10, 6, 1, 3),
            "phone-blue": StockLevel("phone-blue", 5, 5, 0, 0),
        }
    }
    got = samples(Metrics().render(stock))
    for name, expected in (("allocation", 10), ("available", 6), ("held", 1), ("sold", 3)):
        labels = frozenset({("event", "launch"), ("sku", "phone-red")})
        assert got[(f"lampo_stock_{name}", labels)] == expected
    assert (
        got[("lampo_stock_available", frozenset({("event", "launch"), ("sku", "phone-blue")}))] == 5
    )
