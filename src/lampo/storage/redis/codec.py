"""How the Redis store's values are written and read: times as microseconds since the
epoch, a reservation as the two arguments of reserve.lua, a hold from the fields the
scripts answer with (``view`` in lua/_lib.lua), the hold index's value."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from lampo.domain.errors import InvalidRequest, LampoError
from lampo.domain.holds import Hold, HoldLine, HoldState, ReserveRequest
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.totals import order_key

SEP = "\x1f"  # between the parts of a counter or totals key
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_JSON = msgspec.json.Encoder()


def _encode(req: ReserveRequest) -> list[Any] | LampoError:
    """The arguments of one request to reserve.lua: the hold's body and its data ``d``
    (lua/_lib.lua), both JSON, both stored as they come; then the fields reserve.lua
    reads, positional (no parsing in Lua)."""
    hold = req.hold
    if not hold.lines:
        return InvalidRequest("lines", "a hold needs at least one line")
    if len(req.sku_limits) != len(hold.lines):
        return InvalidRequest("sku_limits", "one limit per line")
    # Folded by stock key (a SKU's shared pool: its id), each with its SKU's limit: the
    # scripts move stock by stock key and count a customer's units per SKU (lua/_lib.lua).
    limits: dict[str, int | None] = {}  # by stock key: its SKU's limit
    wanted: dict[str, int] = {}
    for line, limit in zip(hold.lines, req.sku_limits, strict=True):
        key = line.stock
        limits[key] = limit
        wanted[key] = wanted.get(key, 0) + line.quantity
    ch = hold.channel
    elimit = req.event_limit
    expires = _us(hold.expires_at)
    skus: list[Any] = []
    for key in sorted(wanted):
        limit = limits[key]
        skus += (key, wanted[key], False if limit is None else limit)
    ok = SEP.join(order_key(hold))
    lines: list[Any] = []
    for line in hold.lines:
        lines += (line.sku + SEP + ok, line.quantity, str(line.amount))
    data = (
        hold.customer,
        False if elimit is None else elimit,
        hold.units,
        expires,
        skus,
        hold.currency,
        str(hold.amount.amount),
        ok,
        lines,
    )
    # A line of a reserved pool carries its pool; one of the shared pool is written as
    # before the pools, so a hold of before reads the same.
    priced = [
        [ln.sku, ln.quantity, ln.unit_price, ln.pool]
        if ln.pool
        else [ln.sku, ln.quantity, ln.unit_price]
        for ln in hold.lines
    ]
    body: tuple[Any, ...] = (hold.id, hold.event, hold.customer, hold.market, ch.kind.value)
    body += (ch.name, ch.referral, hold.currency, priced, _us(hold.created_at), expires)
    head: list[Any] = [_JSON.encode(body), _JSON.encode(data), req.key, req.fingerprint, hold.id]
    head += [hold.customer, "" if elimit is None else elimit, hold.units, expires, len(wanted)]
    head += ["" if v is False else v for v in skus]
    return head


#: The hold's fields Python reads, in the order of ``view`` in lua/_lib.lua: body, state,
#: payment id, paid at, ended at, refunded at (the last four absent until set).
_VIEW = ("b", "s", "p", "pa", "e", "r")


def _hold_from_view(view: Sequence[str | None]) -> Hold:
    body, state, payment_id, paid_at, ended_at, refunded_at = view
    assert body is not None
    assert state is not None
    hid, event, customer, market, kind, name, referral, currency, lines, created, expires = (
        msgspec.json.decode(body)
    )
    return Hold(
        id=hid,
        event=event,
        customer=customer,
        market=market,
        channel=Channel(ChannelKind(kind), name, referral),
        lines=tuple(HoldLine(*line) for line in lines),
        currency=currency,
        created_at=_from_us(created),
        expires_at=_from_us(expires),
        state=HoldState(state),
        payment_id=payment_id or "",
        paid_at=_when(paid_at),
        ended_at=_when(ended_at),
        refunded_at=_when(refunded_at),
    )


def _tag(event: str, bucket: int, buckets: int) -> str:
    """The hold index value of a hold in ``bucket`` of an event of ``buckets`` buckets."""
    return event if buckets == 1 else f"{event}{SEP}{bucket}"


def _untag(value: str) -> tuple[str, int]:
    event, _, bucket = value.partition(SEP)
    return event, int(bucket) if bucket else 0


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _view_id(view: Sequence[str]) -> str:
    return _hold_from_view(view).id
