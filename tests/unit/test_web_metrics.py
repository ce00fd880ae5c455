"""The metrics of several worker processes: snapshots summed, the file of a worker that
exited still counted, a bad file left out, and a scrape that gets a fresh snapshot from
every other worker (real files and Unix sockets, in one process)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from lampo.domain.errors import InvalidRequest
from lampo.web.config import WebConfig
from lampo.web.metrics import Metrics, SharedMetrics, merge, read_snapshots

HOLDS = 'lampo_http_requests_total{route="/v1/holds",method="POST",status="%d"} %d'


def sample(n: int, refused: int = 0) -> Metrics:
    metrics = Metrics()
    for i in range(n):
        metrics.observe("/v1/holds", "POST", 201, 0.002 * i)
    for _ in range(refused):
        metrics.observe("/v1/holds", "POST", 409, 0.03)
        metrics.refused("sold-out")
    return metrics


def test_a_snapshot_reads_back_as_the_same_metrics() -> None:
    metrics = sample(5, refused=2)
    again, batches = Metrics.from_json(metrics.to_json((3, 7)))
    assert batches == (3, 7)
    assert again.render({}, batches) == metrics.render({}, (3, 7))


def test_two_snapshots_sum_to_what_one_process_would_count() -> None:
    one, two = sample(3, refused=1), sample(4, refused=2)
    total, batches = merge([one.to_json((1, 3)), two.to_json((2, 4))])
    assert batches == (3, 7)
    text = total.render({}, batches)
    assert HOLDS % (201, 7) in text
    assert HOLDS % (409, 3) in text
    assert 'lampo_refusals_total{reason="sold-out"} 3' in text
    assert 'lampo_http_request_duration_seconds_count{route="/v1/holds"} 10' in text
    assert "lampo_reserve_batched_requests_total 7" in text
    together = Metrics()
    for part in (one, two):
        together.add(part)
    assert total.render({}, batches) == together.render({}, batches)
    # the same lines, in the same order, as a single process that counted it all
    single = sample(3, refused=1)
    for i in range(4):
        single.observe("/v1/holds", "POST", 201, 0.002 * i)
    for _ in range(2):
        single.observe("/v1/holds", "POST", 409, 0.03)
        single.refused("sold-out")
    mine = [line for line in text.splitlines() if "_sum{" not in line]
    theirs = [line for line in single.render({}, batches).splitlines() if "_sum{" not in line]
    assert mine == theirs


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"{",
        b'{"requests":[["/v1/holds","POST",201,',  # cut short
        b"[]",
        b"\xff\xfe",
        b'{"requests":[],"refusals":{},"hist":{"/x":[1,2]},"sum":{},"batches":[0,0]}',
        b'{"requests":[["/x","GET",200,-1]],"refusals":{},"hist":{},"sum":{},"batches":[0,0]}',
        b'{"requests":[["/x","GET",200,1.5]],"refusals":{},"hist":{},"sum":{},"batches":[0,0]}',
        b'{"requests":[],"refusals":{"x":1},"hist":{},"sum":{},"batches":[0]}',
    ],
)
def test_a_file_that_is_not_a_snapshot_is_left_out(bad: bytes) -> None:
    with pytest.raises(ValueError, match="not a metrics snapshot"):
        Metrics.from_json(bad)
    total, batches = merge([sample(2).to_json((1, 2)), bad])
    text = total.render({}, batches)
    assert HOLDS % (201, 2) in text
    assert "lampo_reserve_batches_total 1" in text


def test_the_run_dir_must_be_a_directory(tmp_path: Path) -> None:
    env = {
        "LAMPO_SECRET": "s" * 32,
        "LAMPO_ADMIN_KEY": "a" * 32,
        "LAMPO_WEBHOOK_SECRET": "w" * 32,
        "LAMPO_STORAGE": "memory://",
    }
    assert WebConfig.from_env(env).run_dir == ""
    assert WebConfig.from_env({**env, "LAMPO_RUN_DIR": str(tmp_path)}).run_dir == str(tmp_path)
    with pytest.raises(InvalidRequest):
        WebConfig.from_env({**env, "LAMPO_RUN_DIR": str(tmp_path / "nowhere")})


# -- workers sharing a directory ------------------------------------------------------------


class Worker:
    """A worker's counters and its ``SharedMetrics`` (the same process, its own files)."""

    def __init__(self, directory: Path) -> None:
        self.metrics = Metrics()
        self.shared = SharedMetrics(directory, lambda: self.metrics.to_json((0, 0)))

    def count(self, n: int) -> None:
        for _ in range(n):
            self.metrics.observe("/v1/holds", "POST", 201, 0.001)


def scrape(snapshots: list[bytes]) -> str:
    total, batches = merge(snapshots)
    return total.render({}, batches)


def test_a_scrape_gets_a_fresh_snapshot_of_every_worker(tmp_path: Path) -> None:
    async def run() -> list[str]:
        a, b, c = Worker(tmp_path), Worker(tmp_path), Worker(tmp_path)
        for w in (a, b, c):
            await w.shared.start()
        try:
            texts = []
            for n in (1, 2, 3):
                # counted after their last snapshot, with no time for the periodic one
                a.count(n)
                b.count(10 * n)
                c.count(100 * n)
                texts.append(scrape(await a.shared.collect()))
            return texts
        finally:
            for w in (a, b, c):
                await w.shared.stop()

    texts = asyncio.run(run())
    for text, total in zip(texts, (111, 333, 666), strict=True):
        assert HOLDS % (201, total) in text


def test_the_file_of_a_worker_that_exited_keeps_counting(tmp_path: Path) -> None:
    async def run() -> tuple[str, str]:
        a, b = Worker(tmp_path), Worker(tmp_path)
        await a.shared.start()
        await b.shared.start()
        b.count(7)
        await b.shared.stop()  # b exits (its address goes, its last snapshot stays)
        assert not b.shared.address.exists()
        # a worker killed outright: its file and its address stay behind
        dead = tmp_path / "4194305-00000000"
        killed = Metrics()
        killed.observe("/v1/holds", "POST", 201, 0.001)
        dead.with_suffix(".json").write_bytes(killed.to_json((1, 1)))
        dead.with_suffix(".addr").write_bytes(b"1 0123")
        a.count(2)
        try:
            first = scrape(await a.shared.collect())
            second = scrape(await a.shared.collect())
        finally:
            await a.shared.stop()
        assert not dead.with_suffix(".addr").exists()  # no process has that pid
        return first, second

    first, second = asyncio.run(run())
    assert HOLDS % (201, 10) in first
    assert "lampo_reserve_batches_total 1" in first
    assert first == second
    assert len(read_snapshots(tmp_path)) == 3


def test_a_corrupt_file_in_the_directory_does_not_break_a_scrape(tmp_path: Path) -> None:
    (tmp_path / "1-cut.json").write_bytes(b'{"requests":[["/v1/holds","POST",201,9')
    (tmp_path / "2-junk.json").write_bytes(json.dumps({"requests": "no"}).encode())
    (tmp_path / ".3-busy.tmp").write_bytes(b"{")  # a snapshot being written: not read

    async def run() -> str:
        a = Worker(tmp_path)
        await a.shared.start()
        a.count(4)
        try:
            return scrape(await a.shared.collect())
        finally:
            await a.shared.stop()

    assert HOLDS % (201, 4) in asyncio.run(run())


def test_snapshots_are_written_only_when_the_counts_changed(tmp_path: Path) -> None:
    w = Worker(tmp_path)
    w.shared.write()
    w.shared.file.write_bytes(b"changed behind its back")
    w.shared.write()  # the same counts: nothing written
    assert w.shared.file.read_bytes() == b"changed behind its back"
    w.count(1)
    w.shared.write()
    assert HOLDS % (201, 1) in scrape(read_snapshots(tmp_path))
