"""A buyer process for the kill -9 test: reserves and pays in a loop, forever.

Run as ``python -m tests.contract._buyer_child FILE ROUND``. It prints one line per
acknowledged transition, flushed, only *after* storage returned it:

    ready
    held <hold id>
    paid <hold id> <payment id>
    released <hold id>
    refunded <hold id>

The parent kills it with SIGKILL at random points, so every printed line is a promise that
the transition survives.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from pathlib import Path

from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import from_url
from tests.factories import NOW, sale_event

#: Enough stock for any number of rounds; holds that never expire during the test.
EVENT = sale_event("durable", stock={"phone-red": 10**6, "tv-55": 10**6}, hold_seconds=3600)
THREADS = 4

_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def buyer(sales: Sales, round_: str, thread: int) -> None:
    try:
        buy_forever(sales, round_, thread)
    except BaseException:
        traceback.print_exc()
        os._exit(3)  # the parent sees the end of output and shows stderr


def buy_forever(sales: Sales, round_: str, thread: int) -> None:
    i = 0
    while True:
        customer = f"r{round_}-t{thread}-{i}"
        sku = "tv-55" if i % 3 == 0 else "phone-red"
        hold = sales.reserve(EVENT.id, customer, "CN", {sku: 1 + i % 2}, key=f"k{i}")
        say(f"held {hold.id}")
        if i % 4 == 3:
            sales.release(hold.id)
            say(f"released {hold.id}")
        else:
            paid = sales.pay(hold.id, f"pay-{hold.id}")
            say(f"paid {hold.id} {paid.payment_id}")
            if i % 5 == 0:
                sales.refund(hold.id)
                say(f"refunded {hold.id}")
        i += 1


def main() -> None:
    path, round_ = sys.argv[1], sys.argv[2]
    storage = from_url(f"sqlite:///{Path(path).resolve().as_posix()}")
    sales = Sales(storage, clock=ManualClock(NOW))
    sales.open(EVENT)
    say("ready")
    threads = [
        threading.Thread(target=buyer, args=(sales, round_, t), daemon=True) for t in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
