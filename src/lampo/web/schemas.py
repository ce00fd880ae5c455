"""Request and response bodies as msgspec structs: one definition gives the parser (strict:
unknown fields, wrong types and out-of-range values are refused), the encoder and the
JSON Schema that the OpenAPI document publishes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from lampo.domain.discount import Discount, discounts
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold, StockLevel
from lampo.domain.money import MINOR_UNITS, Money
from lampo.domain.report import milestone_levels, units_by_category
from lampo.domain.stores import Store
from lampo.domain.totals import Totals
from lampo.services.partners import MAX_ORDER_ID, MAX_ORDER_LINES
from lampo.services.sales import MAX_LINES, MAX_QUANTITY
from lampo.services.stores import StoreKeyInfo
from lampo.web.limits import MAX_HOLD_ID, MAX_ID

Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID, examples=["redmi-note-4"])]
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
MinorUnits = Annotated[int, Meta(ge=0, description="Integer minor units (cents, fen, paise).")]
Currency = Annotated[
    str,
    Meta(
        pattern=f"^({'|'.join(sorted(MINOR_UNITS))})$",
        examples=["CNY"],
        description="An ISO 4217 code lampo knows.",
    ),
]


class ChannelIn(Struct, forbid_unknown_fields=True):
    """Where the sale happens. ``name`` and ``referral``, when given, are ids: printable,
    without spaces (a rule JSON Schema's regular expressions cannot state)."""

    kind: Annotated[str, Meta(pattern="^(online|marketplace|store)$")] = "online"
    name: Annotated[str, Meta(max_length=64)] = ""
    referral: Annotated[str, Meta(max_length=64)] = ""


#: What the struct cannot say of a channel (``domain.market.Channel`` checks it): a
#: marketplace or store channel needs a name. ``openapi.py`` adds it to the schema.
CHANNEL_NEEDS_A_NAME: dict[str, Any] = {
    "if": {"properties": {"kind": {"enum": ["marketplace", "store"]}}, "required": ["kind"]},
    "then": {"properties": {"name": {"minLength": 1}}, "required": ["name"]},
}


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
    hold_id: Annotated[str, Meta(min_length=1, max_length=MAX_HOLD_ID)]
    payment_id: Annotated[str, Meta(min_length=1, max_length=MAX_HOLD_ID)]
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


class LineTotal(Struct):
    """Units and money (minor units of the market's currency) of one SKU in one market and
    channel, net of refunds."""

    sku: str
    market: str
    channel: str
    name: str
    referral: str
    units: int
    amount: int


class OrderTotal(Struct):
    """Orders (a multi-line order once) and their money in one market and channel."""

    market: str
    channel: str
    name: str
    referral: str
    orders: int
    amount: int


class EventTotals(Struct):
    """The live totals as storage keeps them with every transition, at their finest grain."""

    event: str
    lines: list[LineTotal]
    orders: list[OrderTotal]


class EventSummary(Struct):
    id: str
    name: str
    opens: datetime
    closes: datetime


class EventList(Struct):
    items: list[EventSummary]


class Health(Struct):
    status: str


class ReportTotal(Struct):
    amount: Annotated[int, Meta(description="Minor units of the reporting currency.")]
    currency: str


class DiscountOut(Struct):
    """The discount given on the units sold (list price minus flash price; a sale without
    a list price counts at no discount), of one SKU (``sku``) or the event (``sku`` "")."""

    sku: str
    units: int
    amounts: Annotated[dict[str, int], Meta(description="Minor units per currency.")]
    total: Annotated[ReportTotal, Meta(description="In the reporting currency.")]
    list_total: Annotated[
        ReportTotal, Meta(description="The units sold at list price, in the reporting currency.")
    ]
    percent: Annotated[
        str, Meta(description="`total / list_total` as an exact fraction of 1: `1/4` is 25 %.")
    ]


class MarketTotal(Struct):
    """One market's live totals: ``amount`` in minor units of its own ``currency``,
    ``money`` the same converted to the reporting currency (minor units)."""

    orders: int
    amount: int
    currency: str
    units: int
    money: int


class MarketWindow(Struct):
    """A market's sale window (UTC) and what a dashboard needs to show its local time."""

    name: str
    currency: str
    tz: Annotated[str, Meta(description="IANA time zone of the market.")]
    opens: datetime
    closes: datetime


class CategoryTotal(Struct):
    name: str
    unit: Annotated[str, Meta(description="What one item is called, e.g. phones.")]
    units: int


class SkuStock(Struct):
    """Stock of one SKU (allocation = available + held + sold), with what a dashboard
    shows beside it. ``sold_out``: no unit is left to hold now (units in holds come back
    if they are released or expire)."""

    sku: str
    allocation: int
    available: int
    held: int
    sold: int
    name: str
    category: str
    sold_out: bool


class MilestoneOut(Struct):
    """A milestone of the event against its live figure: ``value`` and ``threshold`` are
    minor units of the reporting currency (``kind`` money) or units of ``category``."""

    label: str
    kind: Annotated[str, Meta(pattern="^(money|units)$")]
    category: str
    threshold: int
    value: int
    reached: bool


class Report(Struct):
    """The live battle report of an event, from the live totals storage keeps."""

    event: str
    name: str
    orders: int
    units: int
    amounts: Annotated[dict[str, int], Meta(description="Minor units per currency.")]
    total: ReportTotal
    markets: Annotated[
        dict[str, MarketTotal], Meta(description="Markets with orders, by market code.")
    ]
    stock: list[SkuStock]
    as_of: Annotated[datetime, Meta(description="When these figures were read (UTC).")]
    opens: datetime
    closes: datetime
    currencies: Annotated[
        dict[str, int],
        Meta(description="Minor-unit exponent (ISO 4217) of each currency: CNY 2, JPY 0."),
    ]
    windows: Annotated[
        dict[str, MarketWindow], Meta(description="Every market on sale, by market code.")
    ]
    categories: Annotated[
        dict[str, CategoryTotal], Meta(description="Units sold per category (net).")
    ]
    milestones: list[MilestoneOut]
    discount: DiscountOut
    discount_skus: Annotated[
        list[DiscountOut], Meta(description="Per SKU sold, the largest discount first.")
    ]


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


def totals_out(event: str, totals: Totals) -> EventTotals:
    t = totals.normalized()
    return EventTotals(
        event,
        [LineTotal(*key, units, amount) for key, (units, amount) in sorted(t.lines.items())],
        [OrderTotal(*key, n, amount) for key, (n, amount) in sorted(t.orders.items())],
    )


def stock_out(event: str, levels: dict[str, StockLevel]) -> EventStock:
    return EventStock(
        event,
        [
            StockOut(s.sku, s.allocation, s.available, s.held, s.sold)
            for _, s in sorted(levels.items())
        ],
    )


def report_out(
    event: SaleEvent, totals: Totals, levels: dict[str, StockLevel], as_of: datetime
) -> Report:
    """The live report of ``event`` from its live totals and stock levels: no order is
    read or recounted, so it is cheap enough to serve every second."""
    currency_of = {code: m.currency for code, m in event.markets.items()}
    amounts = totals.amounts_by_currency(currency_of)
    total = event.fx.total(amounts)
    by_market: dict[str, list[int]] = {}  # orders, amount, units
    for okey, orow in totals.orders.items():
        row = by_market.setdefault(okey.market, [0, 0, 0])
        row[0] += orow.orders
        row[1] += orow.amount
    for lkey, lrow in totals.lines.items():
        by_market.setdefault(lkey.market, [0, 0, 0])[2] += lrow.units
    categories = units_by_category(event, totals)
    given = discounts(event, totals)
    currencies = {event.fx.reporting, *currency_of.values()}
    return Report(
        event=event.id,
        name=event.name,
        orders=totals.order_count,
        units=totals.units,
        amounts=amounts,
        total=ReportTotal(total.amount, total.currency),
        markets={
            m: MarketTotal(
                orders,
                amount,
                currency_of[m],
                units,
                event.fx.convert(Money(amount, currency_of[m])).amount,
            )
            for m, (orders, amount, units) in sorted(by_market.items())
        },
        stock=[
            SkuStock(
                s.sku,
                s.allocation,
                s.available,
                s.held,
                s.sold,
                event.skus[s.sku].name if s.sku in event.skus else s.sku,
                event.category_of(s.sku) if s.sku in event.skus else "",
                s.available == 0,
            )
            for _, s in sorted(levels.items())
        ],
        as_of=as_of.astimezone(UTC),
        opens=event.opens.astimezone(UTC),
        closes=event.closes.astimezone(UTC),
        currencies={c: MINOR_UNITS[c] for c in sorted(currencies)},
        windows={
            code: MarketWindow(
                event.markets[code].name,
                event.markets[code].currency,
                event.markets[code].tz,
                w.opens.astimezone(UTC),
                w.closes.astimezone(UTC),
            )
            for code, w in sorted(event.windows.items(), key=lambda kv: (kv[1].opens, kv[0]))
        },
        categories={
            code: CategoryTotal(cat.name, cat.unit, categories.get(code, 0))
            for code, cat in event.categories.items()
        },
        milestones=[
            MilestoneOut(
                lv.milestone.label,
                lv.milestone.kind,
                lv.milestone.category,
                lv.milestone.threshold,
                lv.value,
                lv.reached,
            )
            for lv in milestone_levels(event, totals)
        ],
        discount=_discount_out(given.total),
        discount_skus=[_discount_out(d) for d in given.per_sku],
    )


def _discount_out(d: Discount) -> DiscountOut:
    return DiscountOut(
        d.key,
        d.units,
        dict(d.amounts),
        ReportTotal(d.money.amount, d.money.currency),
        ReportTotal(d.list_money.amount, d.list_money.currency),
        str(d.percent),
    )


encoder = msgspec.json.Encoder()
reserve_decoder = msgspec.json.Decoder(ReserveIn)
pay_decoder = msgspec.json.Decoder(PayIn)
webhook_decoder = msgspec.json.Decoder(PaymentWebhookIn)
any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


# -- the store network, the till and the partners (issue 12) -----------------------------
ReceiptId = Annotated[str, Meta(min_length=1, max_length=128, examples=["r-000017"])]


class StoreOut(Struct):
    """A store of the registry (``domain.stores.Store``)."""

    id: str
    name: str
    kind: Annotated[str, Meta(pattern="^(own|authorised|partner)$")]
    market: str
    city: str
    opened: date
    closed: date | None = None
    lat: float | None = None
    lon: float | None = None


class StoreList(Struct):
    """The registry at ``version`` (its ``ETag``), filtered as the query asked."""

    version: int
    items: list[StoreOut]


class RegistryWritten(Struct):
    version: int
    stores: int


class StoreKeyOut(Struct):
    """A store key; ``key`` (the whole key, for the till's ``Lampo-Store-Key``) only in
    the answer that issues it: lampo keeps no more than its hash."""

    key_id: str
    store: str
    issued_at: datetime
    revoked_at: datetime | None = None
    key: str | None = None


class StoreKeyList(Struct):
    items: list[StoreKeyOut]


class TillSaleIn(Struct, forbid_unknown_fields=True):
    """A till's sale: paid at once. Idempotent on ``receipt_id`` per store."""

    event: Id
    receipt_id: ReceiptId
    items: Annotated[
        dict[Id, Quantity],
        Meta(min_length=1, max_length=MAX_LINES, description="SKU -> quantity"),
    ]


class TillReturnIn(Struct, forbid_unknown_fields=True):
    """The return of a whole receipt (a refund of its order); idempotent on ``return_id``."""

    receipt_id: ReceiptId
    return_id: ReceiptId


class PartnerLineIn(Struct, forbid_unknown_fields=True):
    sku: Id
    quantity: Quantity


class PartnerOrderIn(Struct, forbid_unknown_fields=True):
    """A marketplace partner's order; each line is sold on its own."""

    event: Id
    order_id: Annotated[str, Meta(min_length=1, max_length=MAX_ORDER_ID, examples=["jd-6180001"])]
    market: Annotated[str, Meta(min_length=1, max_length=8, examples=["CN"])]
    lines: Annotated[list[PartnerLineIn], Meta(min_length=1, max_length=MAX_ORDER_LINES)]
    buyer: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class PartnerLineOut(Struct, omit_defaults=True):
    """One line's answer: ``accepted`` with its order (``order_id``, ``amount``), or
    refused with ``problem`` (the refusal as problem details, as a call would get it)."""

    line: int
    sku: str
    quantity: int
    accepted: bool
    order_id: str | None = None
    amount: MoneyIO | None = None
    problem: dict[str, Any] | None = None


class PartnerAnswers(Struct):
    order_id: str
    accepted: int
    refused: int
    lines: list[PartnerLineOut]


def store_out(s: Store) -> StoreOut:
    return StoreOut(s.id, s.name, s.kind.value, s.market, s.city, s.opened, s.closed, s.lat, s.lon)


def store_key_out(info: StoreKeyInfo, key: str | None = None) -> StoreKeyOut:
    return StoreKeyOut(info.key_id, info.store, info.issued_at, info.revoked_at, key)


till_sale_decoder = msgspec.json.Decoder(TillSaleIn)
till_return_decoder = msgspec.json.Decoder(TillReturnIn)
partner_order_decoder = msgspec.json.Decoder(PartnerOrderIn)
