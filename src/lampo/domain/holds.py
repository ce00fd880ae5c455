"""Holds and orders, and the one state machine they share.

A hold reserves stock for a buyer for the event's hold time. It ends exactly once:
``paid`` (it becomes an order), ``released`` or ``expired``. A paid order may later be
``refunded``. An order *is* its paid hold: same id, same lines, same money.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from lampo.domain.bounds import MAX_MINOR_UNITS, MAX_UNITS, whole
from lampo.domain.channels import split_stock_key, stock_key
from lampo.domain.errors import AlreadyPaid, HoldExpired, IllegalTransition
from lampo.domain.market import Channel
from lampo.domain.money import Money


class HoldState(StrEnum):
    HELD = "held"
    PAID = "paid"
    RELEASED = "released"
    EXPIRED = "expired"
    REFUNDED = "refunded"


class Action(StrEnum):
    PAY = "paid"
    RELEASE = "released"
    EXPIRE = "expired"
    REFUND = "refunded"


#: The only legal moves. Everything else is an ``IllegalTransition``.
TRANSITIONS: dict[tuple[HoldState, Action], HoldState] = {
    (HoldState.HELD, Action.PAY): HoldState.PAID,
    (HoldState.HELD, Action.RELEASE): HoldState.RELEASED,
    (HoldState.HELD, Action.EXPIRE): HoldState.EXPIRED,
    (HoldState.PAID, Action.REFUND): HoldState.REFUNDED,
}

#: States in which a hold's units count as held, and as sold.
HELD_STATES = frozenset({HoldState.HELD})
SOLD_STATES = frozenset({HoldState.PAID})


@dataclass(frozen=True, slots=True)
class HoldLine:
    """``quantity`` units of ``sku`` at ``unit_price`` minor units of the hold's currency:
    a quantity from 1 to ``MAX_UNITS``, a price from 0 to ``MAX_MINOR_UNITS`` (the bounds
    every live total rests on: lampo.domain.bounds). ``pool``: the stock pool the line's
    units came from and go back to ("": the shared pool; ``domain.channels``)."""

    sku: str
    quantity: int
    unit_price: int
    pool: str = ""

    def __post_init__(self) -> None:
        whole("quantity", self.quantity, 1, MAX_UNITS, "MAX_UNITS", self.sku)
        whole("unit_price", self.unit_price, 0, MAX_MINOR_UNITS, "MAX_MINOR_UNITS", self.sku)

    @property
    def stock(self) -> str:
        """The stock key of the line's SKU in its pool (``channels.stock_key``)."""
        return stock_key(self.sku, self.pool)

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True, slots=True)
class Hold:
    """Stock reserved for ``customer``; once paid, the order. Times are aware UTC."""

    id: str
    event: str
    customer: str
    market: str
    channel: Channel
    lines: tuple[HoldLine, ...]
    currency: str
    created_at: datetime
    expires_at: datetime
    state: HoldState = HoldState.HELD
    payment_id: str = ""
    paid_at: datetime | None = None
    ended_at: datetime | None = None  # when it left HELD (paid, released, expired)
    refunded_at: datetime | None = None

    @property
    def amount(self) -> Money:
        return Money(sum(line.amount for line in self.lines), self.currency)

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def is_order(self) -> bool:
        return self.state in (HoldState.PAID, HoldState.REFUNDED)

    def units_by_sku(self) -> dict[str, int]:
        """Units per SKU (lines of one SKU added up)."""
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.sku] = out.get(line.sku, 0) + line.quantity
        return out

    def units_by_stock(self) -> dict[str, int]:
        """Units per stock key (``channels.stock_key``): per SKU and pool."""
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.stock] = out.get(line.stock, 0) + line.quantity
        return out

    def quantity_of(self, sku: str) -> int:
        return sum(line.quantity for line in self.lines if line.sku == sku)

    def _move(self, action: Action) -> HoldState:
        try:
            return TRANSITIONS[(self.state, action)]
        except KeyError:
            raise IllegalTransition(self.id, self.state.value, action.value) from None

    def pay(self, payment_id: str, now: datetime) -> Hold:
        """The paid hold (the order). Refuses a hold that is past its expiry, even unswept."""
        if self.state is HoldState.PAID and self.payment_id != payment_id:
            raise AlreadyPaid(self.id, self.payment_id)
        if self.state is HoldState.HELD and now >= self.expires_at:
            raise HoldExpired(self.id, self.expires_at)
        if self.state is HoldState.EXPIRED:
            raise HoldExpired(self.id, self.expires_at)
        state = self._move(Action.PAY)
        return replace(self, state=state, payment_id=payment_id, paid_at=now, ended_at=now)

    def release(self, now: datetime) -> Hold:
        return replace(self, state=self._move(Action.RELEASE), ended_at=now)

    def expire(self, now: datetime) -> Hold:
        if now < self.expires_at:
            raise IllegalTransition(self.id, "held until " + self.expires_at.isoformat(), "expired")
        return replace(self, state=self._move(Action.EXPIRE), ended_at=now)

    def refund(self, now: datetime) -> Hold:
        return replace(self, state=self._move(Action.REFUND), refunded_at=now)


#: An order is a paid (possibly since refunded) hold.
Order = Hold


@dataclass(frozen=True, slots=True)
class ReserveRequest:
    """Everything storage needs to place a hold atomically; priced and checked by the service.

    ``key`` is the idempotency key: a repeat returns the first hold and changes nothing.
    ``sku_limits`` gives the per-customer limit of each line's SKU (``None``: none).
    """

    key: str
    hold: Hold
    sku_limits: tuple[int | None, ...]
    event_limit: int | None = None

    @property
    def fingerprint(self) -> str:
        """What makes two requests with one key the same request."""
        h = self.hold
        ch = h.channel
        # ch.kind is a StrEnum: join takes its text, which is its value
        parts = [h.event, h.customer, h.market, ch.kind, ch.name, ch.referral, h.currency]
        for ln in h.lines:
            parts.append(f"{ln.sku}:{ln.quantity}:{ln.unit_price}")
        return hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class PayRequest:
    """Pay ``hold_id`` with ``payment_id`` (the idempotency key of payment)."""

    hold_id: str
    payment_id: str
    now: datetime
    amount: Money | None = None  # when given, it must equal the hold's amount


@dataclass(frozen=True, slots=True)
class ReleaseRequest:
    hold_id: str
    now: datetime


@dataclass(frozen=True, slots=True)
class RefundRequest:
    hold_id: str
    now: datetime


@dataclass(frozen=True, slots=True)
class StockLevel:
    """One SKU's stock in one event, or in one pool of it (``pool``: "" for the shared pool
    or the SKU's total, ``by_sku``). Conservation: allocation = available + held + sold."""

    sku: str
    allocation: int
    available: int
    held: int
    sold: int
    pool: str = ""

    @property
    def conserved(self) -> bool:
        return (
            self.allocation == self.available + self.held + self.sold
            and min(self.available, self.held, self.sold) >= 0
        )


def pool_level(key: str, allocation: int, available: int, held: int, sold: int) -> StockLevel:
    """The level of the stock row kept under the stock key ``key``."""
    sku, pool = split_stock_key(key)
    return StockLevel(sku, allocation, available, held, sold, pool)


def by_sku(levels: Iterable[StockLevel]) -> dict[str, StockLevel]:
    """Pools' levels added up per SKU (each SKU's total over its pools), sorted by SKU."""
    out: dict[str, StockLevel] = {}
    for lv in sorted(levels, key=lambda lv: (lv.sku, lv.pool)):
        t = out.get(lv.sku)
        out[lv.sku] = (
            StockLevel(lv.sku, lv.allocation, lv.available, lv.held, lv.sold)
            if t is None
            else StockLevel(
                lv.sku,
                t.allocation + lv.allocation,
                t.available + lv.available,
                t.held + lv.held,
                t.sold + lv.sold,
            )
        )
    return out
