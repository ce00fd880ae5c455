"""The live battle report's server side: many viewers share one storage read, the report's
new figures (units per category, milestones, sold-out flags, currency exponents), and the
live pages' routes, driven in-process through the ASGI app."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from datetime import date
from fractions import Fraction
from typing import Any

import msgspec

from lampo.bootstrap import Config
from lampo.domain.event import Milestone
from lampo.domain.money import FxTable
from lampo.domain.report import milestone_levels, units_by_category
from lampo.domain.totals import Totals
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage.memory import MemoryStorage
from lampo.web import schemas
from lampo.web.app import App
from lampo.web.config import WebConfig
from lampo.web.shared_reads import SharedReads
from tests.factories import NOW, sale_event

# -- SharedReads ----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SlowRead:
    """A read that takes a while (in the thread ``SharedReads`` runs it in) and counts."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.calls = 0
        self.seconds = seconds
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.seconds)
        return n


def test_concurrent_callers_share_one_read() -> None:
    reads: SharedReads[int] = SharedReads(0.5)
    read = SlowRead()

    async def main() -> list[int]:
        return await asyncio.gather(*(reads.get("fest", read) for _ in range(200)))

    assert asyncio.run(main()) == [1] * 200
    assert read.calls == reads.reads == 1


def test_a_result_is_served_until_it_is_ttl_old_then_read_again() -> None:
    clock = FakeClock()
    reads: SharedReads[int] = SharedReads(0.5, clock)
    read = SlowRead(0)

    async def main() -> list[int]:
        seen = [await reads.get("fest", read)]
        clock.now += 0.49
        seen.append(await reads.get("fest", read))
        clock.now += 0.02  # 0.51 s after the first read started
        seen.append(await reads.get("fest", read))
        return seen

    assert asyncio.run(main()) == [1, 1, 2]
    assert read.calls == 2


def test_each_key_has_its_own_read() -> None:
    reads: SharedReads[str] = SharedReads(0.5)

    async def main() -> list[str]:
        return await asyncio.gather(
            *(reads.get(key, lambda k=key: k.upper()) for key in ["a", "b"] * 50)
        )

    assert asyncio.run(main()) == ["A", "B"] * 50
    assert reads.reads == 2


def test_a_failed_read_reaches_every_waiter_and_is_not_kept() -> None:
    reads: SharedReads[int] = SharedReads(60)
    calls = 0

    def failing() -> int:
        nonlocal calls
        calls += 1
        time.sleep(0.02)
        raise ConnectionError("storage went away")

    async def main() -> tuple[list[Any], int]:
        results = await asyncio.gather(
            *(reads.get("fest", failing) for _ in range(20)), return_exceptions=True
        )
        return results, await reads.get("fest", lambda: 7)

    results, after = asyncio.run(main())
    assert all(isinstance(r, ConnectionError) for r in results)
    assert calls == 1
    assert after == 7  # the next caller read again


def test_a_caller_that_goes_away_does_not_cancel_the_others_read() -> None:
    reads: SharedReads[int] = SharedReads(0.5)
    read = SlowRead(0.1)

    async def main() -> int:
        first = asyncio.ensure_future(reads.get("fest", read))
        second = asyncio.ensure_future(reads.get("fest", read))
        await asyncio.sleep(0.01)
        first.cancel()
        return await second

    assert asyncio.run(main()) == 1
    assert read.calls == 1


def test_a_ttl_of_zero_reads_every_time() -> None:
    reads: SharedReads[int] = SharedReads(0)
    read = SlowRead(0)

    async def main() -> list[int]:
        return [await reads.get("fest", read) for _ in range(3)]

    assert asyncio.run(main()) == [1, 2, 3]


# -- the report's figures ----------------------------------------------------------------------


def sold(event_id: str = "fest") -> tuple[Sales, MemoryStorage]:
    storage = MemoryStorage()
    sales = Sales(storage, clock=ManualClock(NOW))
    event = replace(
        sale_event(event_id, {"phone-red": 50, "tv-55": 2}),
        milestones=(
            Milestone("¥3,000", 300_000),
            Milestone("2 TVs", 2, "tv"),
            Milestone("100 phones", 100, "phone"),
        ),
    )
    sales.open(event)
    for customer, market, items in [
        ("alice", "CN", {"tv-55": 1}),
        ("bruno", "IN", {"tv-55": 1, "phone-red": 2}),
    ]:
        hold = sales.reserve(event_id, customer, market, items)
        sales.pay(hold.id, f"pay-{customer}")
    sales.reserve(event_id, "carla", "CN", {"phone-red": 1})  # held, not paid
    return sales, storage


def test_units_per_category_and_milestones_come_from_the_live_totals() -> None:
    sales, storage = sold()
    event = sales.event("fest")
    totals = storage.totals("fest")
    assert units_by_category(event, totals) == {"phone": 2, "tv": 2}
    # CN: 1,799.00 CNY; IN: 16,999.00 + 2 x 6,999.00 INR = 30,997.00 INR = 3,099.70 CNY
    levels = milestone_levels(event, totals)
    assert [(lv.value, lv.reached) for lv in levels] == [
        (179_900 + 309_970, True),
        (2, True),
        (2, False),
    ]
    assert units_by_category(event, Totals()) == {"phone": 0, "tv": 0}


# -- the app, in-process -------------------------------------------------------------------------


class CountingStorage(MemoryStorage):
    """A real memory backend that counts the reads the live report makes."""

    def __init__(self) -> None:
        super().__init__()
        self.totals_reads = 0
        self.stock_reads = 0

    def totals(self, event: str) -> Totals:
        self.totals_reads += 1
        time.sleep(0.02)  # a read long enough for every viewer to arrive while it runs
        return super().totals(event)

    def stock(self, event: str) -> Any:
        self.stock_reads += 1
        return super().stock(event)


def make_app(storage: MemoryStorage, report_ttl: float = 0.5) -> App:
    config = WebConfig(
        engine=Config("memory://"),
        secret=b"s" * 32,
        admin_key=b"a" * 32,
        webhook_secret=b"w" * 32,
        buyer_rate=0,
        ip_rate=0,
        report_ttl=report_ttl,
    )
    sales = Sales(storage, clock=ManualClock(NOW))
    sales.open(sale_event("fest", {"phone-red": 50, "tv-55": 2}))
    return App(config, sales)


async def get(app: App, path: str, method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:
    """``app``'s status, headers and body for a bodiless ``method`` on ``path``."""
    scope = {"type": "http", "method": method, "path": path, "query_string": b"", "headers": []}
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        else:
            chunks.append(message["body"])

    await app(scope, receive, send)
    return start["status"], dict(start["headers"]), b"".join(chunks)


def test_a_hundred_viewers_at_once_cost_one_read_of_the_live_totals() -> None:
    storage = CountingStorage()
    app = make_app(storage)

    async def main() -> list[tuple[int, dict[bytes, bytes], bytes]]:
        return await asyncio.gather(*(get(app, "/v1/events/fest/report") for _ in range(100)))

    answers = asyncio.run(main())
    assert {status for status, _, _ in answers} == {200}
    assert len({body for _, _, body in answers}) == 1  # the same bytes for everyone
    assert storage.totals_reads == storage.stock_reads == 1
    report = msgspec.json.decode(answers[0][2])
    assert report["event"] == "fest"
    assert report["currencies"] == {"CNY": 2, "INR": 2}


def test_without_sharing_every_viewer_reads() -> None:
    storage = CountingStorage()
    app = make_app(storage, report_ttl=0)

    async def main() -> None:
        await asyncio.gather(*(get(app, "/v1/events/fest/report") for _ in range(5)))

    asyncio.run(main())
    assert storage.totals_reads == 5


def test_the_live_index_sends_a_single_event_straight_to_its_page() -> None:
    app = make_app(MemoryStorage())
    status, headers, _ = asyncio.run(get(app, "/live"))
    assert status == 302
    assert headers[b"location"] == b"/live/fest"


def test_the_live_index_lists_every_event_with_a_link() -> None:
    storage = MemoryStorage()
    app = make_app(storage)
    assert app.sales is not None
    app.sales.open(replace(sale_event("later"), name="Later <b>sale</b>"))
    status, headers, body = asyncio.run(get(app, "/live"))
    assert status == 200
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert b"href='/live/fest'" in body
    assert b"href='/live/later'" in body
    assert b"Later &lt;b&gt;sale&lt;/b&gt;" in body  # names are escaped


def test_the_live_page_is_self_contained_and_names_its_event() -> None:
    app = make_app(MemoryStorage())
    status, headers, body = asyncio.run(get(app, "/live/fest"))
    assert status == 200
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert b'<meta name="lampo-event" content="fest">' in body
    assert b"Test sale fest" in body
    assert b"http://" not in body  # nothing from elsewhere
    assert b"https://" not in body
    policy = headers[b"content-security-policy"]
    assert b"default-src 'none'" in policy
    assert b"script-src 'sha256-" in policy


def test_an_unknown_event_has_a_small_html_404_page() -> None:
    app = make_app(MemoryStorage())
    status, headers, body = asyncio.run(get(app, "/live/<nope>"))
    assert status == 404
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert b"&lt;nope&gt;" in body
    assert b"<nope>" not in body


def test_the_report_gives_each_currency_its_minor_unit_exponent() -> None:
    sales, storage = sold()
    yen = FxTable("JPY", date(2015, 4, 8), {"CNY": Fraction(19), "INR": Fraction(19, 10)})
    event = replace(sales.event("fest"), fx=yen)
    report = schemas.report_out(event, storage.totals("fest"), storage.stock("fest"), NOW)
    assert report.currencies == {"CNY": 2, "INR": 2, "JPY": 0}
    # 1,799.00 CNY x 19 + 30,997.00 INR x 1.9 (58,894.3), each converted once, whole yen
    assert (report.total.amount, report.total.currency) == (34_181 + 58_894, "JPY")
    assert report.markets["IN"].money == 58_894
    assert [s.sold_out for s in report.stock] == [False, True]
    assert report.categories["tv"].units == 2
