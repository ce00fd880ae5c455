"""Request and response bodies as msgspec structs: one definition gives the parser (strict:
unknown fields, wrong types and out-of-range values are refused), the encoder and the
JSON Schema that the OpenAPI document publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from lampo.domain.holds import Hold, StockLevel
from lampo.services.sales import MAX_LINES, MAX_QUANTITY

Id = Annotated[str, Meta(min_length=1, max_length=64, examples=["redmi-note-4"])]
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
MinorUnits = Annotated[int, Meta(ge=0, description="Integer minor units (cents, fen, paise).")]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$", examples=["CNY"])]


class ChannelIn(Struct, forbid_unknown_fields=True):
    kind: Annotated[str, Meta(pattern="^(online|marketplace|store)$")] = "online"
    name: Annotated[str, Meta(max_length=64)] = ""
    referral: Annotated[str, Meta(max_length=64)] = ""


class ReserveIn(Struct, forbid_unknown_fields=True):
    """A hold request. The buyer is the token's subject, never a field of the body."""

    event: Id
    market: Annotated[str, Meta(min_length=1, max_length=8, examples=["CN"])]
    items: Annotated[
        dict[Id, Quantity],
        Meta(min_length=1, max_length=MAX_LINES, description="SKU -> quantity"),
    ]
    channel: ChannelIn | None = None


class MoneyIO(Struct, forbid_unknown_fields=True):
    amount: MinorUnits
    currency: Currency


class PayIn(Struct, forbid_unknown_fields=True):
    """Optional: the amount the buyer expects to pay; refused unless it is the hold's."""

    amount: MoneyIO | None = None


class PaymentWebhookIn(Struct, forbid_unknown_fields=True):
    """A payment provider's notice that ``hold_id`` was paid by ``payment_id``."""

    type: Annotated[str, Meta(pattern="^payment\\.succeeded$")]
    hold_id: Annotated[str, Meta(min_length=1, max_length=128)]
    payment_id: Annotated[str, Meta(min_length=1, max_length=128)]
    amount: MoneyIO


class LineOut(Struct):
    sku: str
    quantity: int
    unit_price: int


class ChannelOut(Struct):
    kind: str
    name: str
    referral: str


class HoldOut(Struct):
    """A hold; once paid, the order (same id)."""

    id: str
    event: str
    customer: str
    market: str
    channel: ChannelOut
    state: Annotated[str, Meta(pattern="^(held|paid|released|expired|refunded)$")]
    lines: list[LineOut]
    amount: MoneyIO
    units: int
    created_at: datetime
    expires_at: datetime
    payment_id: str | None
    paid_at: datetime | None
    ended_at: datetime | None
    refunded_at: datetime | None


class HoldList(Struct):
    items: list[HoldOut]
    next: Annotated[str | None, Meta(description="Cursor of the next page, if any.")]


class StockOut(Struct):
    sku: str
    allocation: int
    available: int
    held: int
    sold: int


class EventStock(Struct):
    event: str
    skus: list[StockOut]


class EventSummary(Struct):
    id: str
    name: str
    opens: datetime
    closes: datetime


class EventList(Struct):
    items: list[EventSummary]


class Health(Struct):
    status: str


class Problem(Struct):
    """RFC 9457 problem details; refusal data follow as extension members."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    reason: str


def hold_out(hold: Hold) -> HoldOut:
    # one pass over the lines for amount and units (on the hot path: every reservation)
    lines = []
    amount = units = 0
    for ln in hold.lines:
        lines.append(LineOut(ln.sku, ln.quantity, ln.unit_price))
        amount += ln.quantity * ln.unit_price
        units += ln.quantity
    return HoldOut(
        id=hold.id,
        event=hold.event,
        customer=hold.customer,
        market=hold.market,
        # the kind and the state are StrEnums: a str each, which msgspec writes as its value
        channel=ChannelOut(hold.channel.kind, hold.channel.name, hold.channel.referral),
        state=hold.state,
        lines=lines,
        amount=MoneyIO(amount, hold.currency),
        units=units,
        created_at=hold.created_at,
        expires_at=hold.expires_at,
        payment_id=hold.payment_id or None,
        paid_at=hold.paid_at,
        ended_at=hold.ended_at,
        refunded_at=hold.refunded_at,
    )


def stock_out(event: str, levels: dict[str, StockLevel]) -> EventStock:
    return EventStock(
        event,
        [
            StockOut(s.sku, s.allocation, s.available, s.held, s.sold)
            for _, s in sorted(levels.items())
        ],
    )


encoder = msgspec.json.Encoder()
reserve_decoder = msgspec.json.Decoder(ReserveIn)
pay_decoder = msgspec.json.Decoder(PayIn)
webhook_decoder = msgspec.json.Decoder(PaymentWebhookIn)
any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
