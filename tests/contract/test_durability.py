"""Guarantee 5 on SQLite: an acknowledged transition survives close, reopen and kill -9.

The kill test drives a child process (``_buyer_child.py``) by reading its output: every
line it prints is a transition storage acknowledged. The parent kills it with SIGKILL
after a random number of lines, several rounds on one file, then checks every promise.
Set ``LAMPO_KILL_SEED`` to replay a run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from lampo.domain.holds import HoldState
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import Storage, from_url
from tests.contract import _buyer_child
from tests.contract.conftest import SQLITE, assert_consistent
from tests.factories import NOW, sale_event

pytestmark = pytest.mark.sqlite

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 10


def open_file(path: Path) -> Storage:
    return from_url(f"sqlite:///{path.resolve().as_posix()}")


def test_everything_survives_closing_and_reopening_the_file(tmp_path: Path) -> None:
    event = sale_event(stock={"phone-red": 10, "tv-55": 3})
    store = SQLITE.open(tmp_path)
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(event)
    paid = sales.pay(sales.reserve(event.id, "c1", "CN", {"phone-red": 2}, key="k1").id, "p1")
    held = sales.reserve(event.id, "c2", "IN", {"tv-55": 1})
    released = sales.release(sales.reserve(event.id, "c3", "CN", {"tv-55": 1}).id)
    before = (
        store.stock(event.id),
        store.totals(event.id),
        sorted(store.holds(event.id), key=lambda h: h.id),
    )
    store.close()

    again = SQLITE.open(tmp_path)
    try:
        sales = Sales(again, clock=ManualClock(NOW))
        sales.open(event)  # opening again must not reset the stock
        after = (
            again.stock(event.id),
            again.totals(event.id),
            sorted(again.holds(event.id), key=lambda h: h.id),
        )
        assert after == before
        assert again.hold(paid.id) == paid
        assert again.hold(held.id) == held
        assert again.hold(released.id) == released
        # idempotency records survive too: the retry returns the order, not a new hold
        assert sales.reserve(event.id, "c1", "CN", {"phone-red": 2}, key="k1") == paid
        assert sales.pay(paid.id, "p1") == paid
        assert_consistent(again, event)
    finally:
        again.close()


def run_child(path: Path, round_: int, kill_after: int) -> list[str]:
    """Start a buyer on ``path``, read ``kill_after`` acknowledgements, SIGKILL it, and
    return every complete line it printed (also those still in the pipe)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.contract._buyer_child", str(path), str(round_)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stderr is not None
    lines: list[str] = []
    try:
        while len(lines) < kill_after + 1:  # +1: the "ready" line
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"the buyer ended by itself: {child.stderr.read()}")
            lines.append(line)
    finally:
        child.send_signal(signal.SIGKILL)
        rest, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    lines.append(rest)
    text = "".join(lines)
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    return complete.splitlines()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.timeout(180)
def test_acknowledged_transitions_survive_kill_9(tmp_path: Path) -> None:
    seed = int(os.environ.get("LAMPO_KILL_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    path = tmp_path / "lampo.db"
    promised: dict[str, str] = {}  # hold id -> the latest acknowledged state
    payments: dict[str, str] = {}
    acknowledged = 0
    for round_ in range(ROUNDS):
        kill_after = 0 if round_ == 0 else rng.randrange(1, 400)
        lines = run_child(path, round_, kill_after)
        assert lines[0] == "ready", lines[:3]
        for line in lines[1:]:
            verb, hold_id, *rest = line.split()
            promised[hold_id] = verb
            if verb == "paid":
                payments[hold_id] = rest[0]
        acknowledged += len(lines) - 1
    assert acknowledged >= ROUNDS - 1, f"too few transitions to prove anything (seed {seed})"

    store = open_file(path)
    try:
        event = _buyer_child.EVENT
        later = {
            "held": set(HoldState),
            "paid": {HoldState.PAID, HoldState.REFUNDED},
            "released": {HoldState.RELEASED},
            "refunded": {HoldState.REFUNDED},
        }
        for hold_id, verb in promised.items():
            hold = store.hold(hold_id)
            assert hold is not None, f"acknowledged hold {hold_id} was lost (seed {seed})"
            assert hold.state in later[verb], (hold_id, verb, hold.state, seed)
            if hold_id in payments:
                assert hold.payment_id == payments[hold_id], (hold_id, seed)
        assert_consistent(store, event)
    finally:
        store.close()


def test_lampo_processes_sharing_a_file_take_turns_without_busy_errors(tmp_path: Path) -> None:
    """Four processes write one file with SQLite's busy timeout at 0: without the file
    lock they take turns on, a process that finds the write lock taken fails at once
    (``database is locked``, answered ``unavailable``). Every reservation must succeed."""
    url = f"sqlite:///{tmp_path / 'shared.db'}?busy_timeout=0"
    from_url(url).close()  # create the file once, so the children do not race on the schema
    count, procs = 400, []
    for n in range(4):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.contract._writer_child", url, f"p{n}", str(count)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        assert p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            p.kill()
            _, err = p.communicate()
            pytest.fail(f"a writer process did not start: {err}")
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outcomes: Counter[str] = Counter()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        for line in out.split("\n"):
            if line.strip():
                reason, n = line.split()
                outcomes[reason] += int(n)
    assert outcomes == {"ok": 4 * count}
    store = from_url(url)
    try:
        level = store.stock("shared-file")["phone-red"]
        assert (level.held, level.available) == (4 * count, 10**6 - 4 * count)
        assert sum(1 for _ in store.holds("shared-file")) == 4 * count
    finally:
        store.close()
