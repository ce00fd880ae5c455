"""A spike of buyers on threads, each reserving one unit and paying for it.

A buyer retries a request that got ``Unavailable`` with the same idempotency key or
payment id (what a well-behaved client does with a 503), backing off a little, until it
gets an answer; it stops when the SKU is sold out or the spike is stopped. Every payment
the buyer saw acknowledged is kept, to check afterwards that none was lost.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from lampo.domain.errors import LampoError, SoldOut, Unavailable
from lampo.domain.holds import Hold
from lampo.services.sales import Sales

BACKOFF = 0.005  # seconds between retries of an unavailable request
SPIKE_LIMIT = 45.0  # seconds after which the spike gives up (the test then fails)


@dataclass
class Spike:
    sales: Sales
    event: str
    sku: str
    buyers: int
    acked: dict[str, str] = field(default_factory=dict)  # hold id -> payment id
    refusals: Counter[str] = field(default_factory=Counter)
    crashes: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._deadline = time.monotonic() + SPIKE_LIMIT
        for i in range(self.buyers):
            t = threading.Thread(target=self._buyer, args=(i,), name=f"buyer-{i}")
            t.start()
            self._threads.append(t)

    def join(self) -> None:
        for t in self._threads:
            t.join()
        assert not self.crashes, self.crashes[:3]

    def count(self, reason: str) -> int:
        with self._lock:
            return self.refusals[reason]

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return len(self.acked)

    def _note(self, reason: str) -> None:
        with self._lock:
            self.refusals[reason] += 1

    def _retry(self, what: str, call: Callable[[], Hold]) -> Hold | LampoError:
        """Call until the answer is not ``Unavailable`` (or the spike is over)."""
        while True:
            try:
                return call()
            except Unavailable as exc:
                self._note(f"{what}-unavailable")
                if self.stop.is_set() or time.monotonic() > self._deadline:
                    return exc
                self.stop.wait(BACKOFF)
            except LampoError as refusal:
                return refusal

    def _buyer(self, i: int) -> None:
        try:
            n = 0
            while not self.stop.is_set() and time.monotonic() < self._deadline:
                n += 1
                customer, key = f"b{i}-{n}", f"k{i}-{n}"
                reserve = partial(self.sales.reserve, self.event, customer, "CN", {self.sku: 1})
                hold = self._retry("reserve", partial(reserve, key=key))
                if isinstance(hold, SoldOut):
                    return
                if isinstance(hold, LampoError):
                    self._note(hold.reason)
                    continue
                payment = "pay-" + hold.id
                paid = self._retry("pay", partial(self.sales.pay, hold.id, payment))
                if isinstance(paid, Hold):
                    with self._lock:
                        self.acked[paid.id] = paid.payment_id
                else:
                    self._note(paid.reason)
        except BaseException as exc:
            self.crashes.append(exc)
