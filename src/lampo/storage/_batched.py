"""The port's transitions for a backend that runs the shared transition code on a
``Batcher``'s writer (SQLite, PostgreSQL): one piece of code for both.

A backend using it sets ``self._batcher``, whose units of work receive the backend's
``State`` for the open transaction; that state also answers ``due(event, now, limit)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from lampo.domain.holds import (
    Hold,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
)
from lampo.storage import _transitions as tx
from lampo.storage._batcher import Batcher
from lampo.storage.port import Result


class BatchedTransitions:
    """reserve/pay/release/refund (sync and async) and expire_due, each request batch one
    unit of work: all of it commits in the writer's next transaction, or none of it."""

    _batcher: Batcher[Any]

    def _batch(self, fn: Callable[[Any, Any], Hold], requests: Sequence[Any]) -> list[Result]:
        if not requests:
            return []
        out: list[Result] = self._batcher.submit(
            lambda st: tx.apply_all(st, fn, requests), weight=len(requests)
        )
        return out

    async def _abatch(
        self, fn: Callable[[Any, Any], Hold], requests: Sequence[Any]
    ) -> list[Result]:
        if not requests:
            return []
        out: list[Result] = await self._batcher.asubmit(
            lambda st: tx.apply_all(st, fn, requests), weight=len(requests)
        )
        return out

    def reserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        return self._batch(tx.reserve, requests)

    async def areserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        return await self._abatch(tx.reserve, requests)

    def pay(self, requests: Sequence[PayRequest]) -> list[Result]:
        return self._batch(tx.pay, requests)

    async def apay(self, requests: Sequence[PayRequest]) -> list[Result]:
        return await self._abatch(tx.pay, requests)

    def release(self, requests: Sequence[ReleaseRequest]) -> list[Result]:
        return self._batch(tx.release, requests)

    def refund(self, requests: Sequence[RefundRequest]) -> list[Result]:
        return self._batch(tx.refund, requests)

    def expire_due(self, event: str, now: datetime, limit: int = 1000) -> list[Hold]:
        def work(st: Any) -> list[Hold]:
            return [tx.expire(st, hold_id, now) for hold_id in st.due(event, now, limit)]

        out: list[Hold] = self._batcher.submit(work, weight=limit)
        return out
