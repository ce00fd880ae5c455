"""``lampo serve --workers 2``: ``/metrics`` is the sum over both workers, exact at every
scrape, and it does not drop when the workers are respawned (granian's SIGHUP reload)."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.e2e._http import Server, live_event, running_server

pytestmark = pytest.mark.sqlite

# prometheus-client writes the labels of a sample in the order of their names
STOCK_404 = (
    'lampo_http_requests_total{method="GET",route="/v1/events/{event_id}/stock",status="404"}'
)
RELOAD_SECONDS = 60.0


def line(text: str, prefix: str) -> float:
    """The value of the one sample that starts with ``prefix`` (0 when it is absent)."""
    found = [row for row in text.splitlines() if row.startswith(prefix + " ")]
    assert len(found) <= 1, found
    return float(found[0].rsplit(" ", 1)[1]) if found else 0


def scrape(server: Server) -> str:
    reply = server.request("GET", "/metrics")
    assert reply.status == 200, reply.body
    return reply.body.decode()


def per_worker(directory: Path) -> dict[str, float]:
    """404s of the stock route counted in each worker's counter file, by file name."""
    out = {}
    for path in directory.glob("counter_*.db"):
        [requests] = [
            m for m in MultiProcessCollector.merge([str(path)]) if m.name == "lampo_http_requests"
        ]
        out[path.stem] = sum(
            s.value
            for s in requests.samples
            if s.labels
            == {"route": "/v1/events/{event_id}/stock", "method": "GET", "status": "404"}
        )
    return out


@pytest.mark.slow
def test_metrics_are_the_sum_over_the_workers_at_every_scrape(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"  # where `lampo serve` makes its metrics directory
    tmpdir.mkdir()
    with running_server(tmp_path, workers=2, TMPDIR=str(tmpdir)) as server:
        [run_dir] = tmpdir.glob("lampo-run-*")
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
        shared = run_dir / "metrics"
        # both workers serve (each writes its counters' file when it counts its first
        # request): on a loaded machine the second can start seconds after the first serves
        deadline = time.monotonic() + RELOAD_SECONDS
        while len(list(shared.glob("counter_*.db"))) < 2:  # an observable state, not a race
            assert time.monotonic() < deadline, sorted(p.name for p in shared.iterdir())
            assert server.request("GET", "/health").status == 200
        server.load(live_event("metrics-sum", {"phone-red": 1000}))
        # every call is a new connection, so the calls spread over both workers
        for i in range(200):
            assert server.request("GET", f"/v1/events/nope-{i}/stock").status == 404
        for i in range(30):
            assert server.reserve(f"m-{i}", "metrics-sum", {"phone-red": 1}).status == 201

        scrapes = 5
        for k in range(scrapes):
            text = scrape(server)
            assert line(text, STOCK_404) == 200
            assert line(text, 'lampo_refusals_total{reason="unknown-event"}') == 200
            count = 'lampo_http_request_duration_seconds_count{route="/v1/events/{event_id}/stock"}'
            assert line(text, count) == 200
            post = 'lampo_http_requests_total{method="POST",route="/v1/holds",status="201"}'
            assert line(text, post) == 30
            assert line(text, "lampo_reserve_batched_requests_total") == 30
            # the earlier scrapes, wherever they landed
            metrics_route = 'lampo_http_requests_total{method="GET",route="/metrics",status="200"}'
            assert line(text, metrics_route) == k
        counts = per_worker(shared)
        assert len(counts) == 2, counts
        assert all(counts.values()), counts  # both workers served some
        assert sum(counts.values()) == 200
        pids = {name.partition("_")[2] for name in counts}
        assert len(pids) == 2

        # granian respawns both workers (new processes); the old ones' files keep counting
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_SECONDS
        while not (
            len(list(shared.glob("counter_*.db"))) == 4
            and not any(Path("/proc", pid).exists() for pid in pids)
        ):  # wait for the reload to end (an observable state, not a race)
            assert time.monotonic() < deadline, sorted(p.name for p in shared.iterdir())
            time.sleep(0.05)
        text = scrape(server)
        assert line(text, STOCK_404) == 200
        assert line(text, metrics_route) == scrapes
        assert server.request("GET", "/v1/events/nope/stock").status == 404
        assert line(scrape(server), STOCK_404) == 201
    assert not run_dir.exists()  # removed when `lampo serve` exits


@pytest.mark.slow
def test_the_front_doors_refusals_are_the_whole_servers_whichever_worker_answers(
    tmp_path: Path,
) -> None:
    """Refusals made by both workers (the web layer's gate and the service's own) add up
    in the admin's view of the queue, at every read, wherever it lands."""
    from tests.e2e.test_http_front_door import door_event, poll, queue_state

    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    with running_server(tmp_path, workers=2, TMPDIR=str(tmpdir)) as server:
        [run_dir] = tmpdir.glob("lampo-run-*")
        shared = run_dir / "metrics"
        deadline = time.monotonic() + RELOAD_SECONDS
        while len(list(shared.glob("counter_*.db"))) < 2:  # both workers serve
            assert time.monotonic() < deadline, sorted(p.name for p in shared.iterdir())
            assert server.request("GET", "/health").status == 200
        event = door_event(server, "door-sum").id
        for i in range(60):  # each on a connection of its own: spread over both workers
            refused = server.reserve(f"b-{i}", event, {"phone-red": 1})
            assert refused.status == 403, refused.body
            assert refused.json["reason"] == "not-admitted"
        for i in range(40):  # the service's own refusal, counted in the thread pool
            assert poll(server, f"p-{i}", "ticket.forged.x").status == 401
        for _ in range(5):
            assert queue_state(server, event)["refusals"] == {"not-admitted": 60}
        door = [
            sum(
                s.value
                for m in MultiProcessCollector.merge([str(path)])
                if m.name == "lampo_door_refusals"
                for s in m.samples
                if s.name.endswith("_total") and s.labels["reason"] == "not-admitted"
            )
            for path in shared.glob("counter_*.db")
        ]
        assert sum(door) == 60
        assert len([n for n in door if n]) == 2, door  # both workers refused some
