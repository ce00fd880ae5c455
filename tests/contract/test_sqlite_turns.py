"""SQLite: an event loop commits its coroutines' batches in its own thread, but never
waits for a batch that is not its own (the writer thread's, or another process's).

Each test holds the other party's lock, lets the loop turn, and has the loop itself let
go of that lock: if the loop waited for it, it could never get there. A timer lets go
after ten seconds so that a failure ends; the test then sees who let go.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path

from lampo.domain.holds import Hold
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage.sqlite import SqliteStorage
from tests.factories import NOW, sale_event

EVENT = sale_event("turns", stock={"phone-red": 10})


def reserve_while_held(sales: Sales, let_go: Callable[[], None]) -> tuple[Hold, list[str]]:
    """Reserve from a coroutine while a lock is held; the loop lets go of it after a few
    turns. Returns the hold and who let go (["loop"] unless the loop was stuck)."""
    who: list[str] = []
    lock = threading.Lock()

    def once(name: str) -> None:
        with lock:
            if not who:
                let_go()
            who.append(name)

    async def crowd() -> Hold:
        task = asyncio.ensure_future(
            sales.areserve(EVENT.id, "c1", "CN", {"phone-red": 1}, key="k1")
        )
        for _ in range(5):  # the loop turns: its batch is handed on, not waited for
            await asyncio.sleep(0)
        once("loop")
        return await task

    failsafe = threading.Timer(10, once, args=("timer",))
    failsafe.start()
    try:
        return asyncio.run(crowd()), who
    finally:
        failsafe.cancel()


def test_a_loop_hands_its_batch_on_while_the_writer_thread_commits(tmp_path: Path) -> None:
    store = SqliteStorage(str(tmp_path / "turns.db"))
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(EVENT)
    started, release = threading.Event(), threading.Event()

    def slow_unit(_: object) -> None:  # a thread's unit of work, committing slowly
        started.set()
        release.wait(timeout=30)

    writer = threading.Thread(target=store._batcher.submit, args=(slow_unit,))
    writer.start()
    try:
        assert started.wait(timeout=30)
        hold, who = reserve_while_held(sales, release.set)
    finally:
        release.set()
        writer.join()
    assert who == ["loop"]
    assert hold.customer == "c1"
    assert store.stock(EVENT.id)["phone-red"].held == 1
    store.close()


def test_a_loop_hands_its_batch_on_while_another_process_holds_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "turns.db"
    store = SqliteStorage(str(path))
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(EVENT)
    other = os.open(f"{path}-lock", os.O_RDWR)  # as another process would hold it
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        hold, who = reserve_while_held(sales, lambda: fcntl.flock(other, fcntl.LOCK_UN))
    finally:
        os.close(other)
    assert who == ["loop"]
    assert hold.customer == "c1"
    assert store.stock(EVENT.id)["phone-red"].held == 1
    store.close()
