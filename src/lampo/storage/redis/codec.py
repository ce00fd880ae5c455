"""How the Redis store's values are written and read: times as microseconds since the
epoch, a reservation as the three arguments of reserve.lua, a hold from the fields the
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
RS = "\x1e"  # after each field of a request sent to reserve.lua
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _when(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_JSON = msgspec.json.Encoder()


def _encode(req: ReserveRequest) -> tuple[str, str, str] | LampoError:
    """The three arguments of one request to reserve.lua: head, body, tot (lua/_lib.lua)."""
    hold = req.hold
    if not hold.lines:
        return InvalidRequest("lines", "a hold needs at least one line")
    if len(req.sku_limits) != len(hold.lines):
        return InvalidRequest("sku_limits", "one limit per line")
    limits: dict[str, int | None] = {}
    wanted: dict[str, int] = {}
    for line, limit in zip(hold.lines, req.sku_limits, strict=True):
        limits[line.sku] = limit
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    ch = hold.channel
    elimit = req.event_limit
    expires = _us(hold.expires_at)
    head = [
        req.key,
        req.fingerprint,
        hold.id,
        hold.customer,
        "" if elimit is None else str(elimit),
        str(hold.units),
        str(expires),
        str(len(wanted)),
    ]
    for sku in sorted(wanted):
        limit = limits[sku]
        head += [sku, str(wanted[sku]), "" if limit is None else str(limit)]
    lines = [[ln.sku, ln.quantity, ln.unit_price] for ln in hold.lines]
    body: list[Any] = [hold.id, hold.event, hold.customer, hold.market, ch.kind.value]
    body += [ch.name, ch.referral, hold.currency, lines, _us(hold.created_at), expires]
    ok = SEP.join(order_key(hold))
    tot = [hold.currency, str(hold.amount.amount), ok, str(len(hold.lines))]
    for line in hold.lines:
        tot += [line.sku + SEP + ok, str(line.quantity), str(line.amount)]
    return RS.join(head) + RS, _JSON.encode(body).decode(), RS.join(tot) + RS


#: The hold's fields Python reads, in the order of ``view`` in lua/_lib.lua.
_VIEW = ("body", "state", "payment_id", "paid_at", "ended_at", "refunded_at")


def _hold_from_view(view: Sequence[str]) -> Hold:
    body, state, payment_id, paid_at, ended_at, refunded_at = view
    hid, event, customer, market, kind, name, referral, currency, lines, created, expires = (
        msgspec.json.decode(body)
    )
    return Hold(
        id=hid,
        event=event,
        customer=customer,
        market=market,
        channel=Channel(ChannelKind(kind), name, referral),
        lines=tuple(HoldLine(s, q, p) for s, q, p in lines),
        currency=currency,
        created_at=_from_us(created),
        expires_at=_from_us(expires),
        state=HoldState(state),
        payment_id=payment_id,
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
