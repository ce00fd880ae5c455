"""A sale that is paid at once, through any channel: the one place the till and the
partner intake call.

``sell`` is the two-step protocol of ``Sales.sell_in_store`` generalised to a channel: a
hold under the caller's idempotency key, then its payment with payment id
``<channel kind>:<hold id>``, which no other sale can hold. A retry with the same key
after a crash between them finds the first hold and pays it; one after the payment finds
the order and returns it, so the sale happens once whatever fails. When ``Sales`` offers
``sell``/``asell`` itself (issue 12, the lead's part), these two functions become calls of
them, and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping

from lampo.domain.catalog import check_id
from lampo.domain.errors import InvalidRequest
from lampo.domain.holds import Hold
from lampo.domain.market import Channel
from lampo.services.sales import Sales


def _check(channel: Channel, key: str) -> None:
    check_id("channel", channel.name)
    if not key:
        raise InvalidRequest("key", "a sale paid at once needs an idempotency key")


def sell(
    sales: Sales,
    event: str,
    channel: Channel,
    customer: str,
    market: str,
    items: Mapping[str, int],
    key: str,
) -> Hold:
    """Take ``items`` and pay for them at once (an order), idempotent on ``key`` per
    ``customer``: the same key with the same items returns the first order; with other
    items, ``IdempotencyConflict``."""
    _check(channel, key)
    hold = sales.reserve(event, customer, market, items, channel, key)
    if hold.is_order:  # paid by the first try
        return hold
    return sales.pay(hold.id, f"{channel.kind.value}:{hold.id}")


async def asell(
    sales: Sales,
    event: str,
    channel: Channel,
    customer: str,
    market: str,
    items: Mapping[str, int],
    key: str,
) -> Hold:
    """``sell`` for a coroutine: the loop runs on while storage commits."""
    _check(channel, key)
    hold = await sales.areserve(event, customer, market, items, channel, key)
    if hold.is_order:
        return hold
    return await sales.apay(hold.id, f"{channel.kind.value}:{hold.id}")
