"""Refusals. Each carries the data a caller needs and a stable machine-readable ``reason``.

A refusal never has side effects: whoever raises one has changed nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar


class LampoError(Exception):
    """Base of every refusal lampo gives. ``reason`` is stable; ``detail()`` is JSON-ready."""

    reason: ClassVar[str] = "error"

    def detail(self) -> dict[str, Any]:
        """The data of the refusal, as plain JSON-ready values."""
        out: dict[str, Any] = {}
        for key, value in vars(self).items():
            if key.startswith("_"):
                continue
            out[key] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def __str__(self) -> str:
        return self.message()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"

    def message(self) -> str:
        return self.reason

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(map(str, vars(self).items())))))


class InvalidRequest(LampoError):
    """The request is malformed: a field is missing, of the wrong type or out of range."""

    reason = "invalid-request"

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__()

    def message(self) -> str:
        return f"invalid {self.field}: {self.problem}"


class UnknownEvent(LampoError):
    reason = "unknown-event"

    def __init__(self, event: str) -> None:
        self.event = event
        super().__init__()

    def message(self) -> str:
        return f"no sale event named {self.event!r}"


class UnknownSku(LampoError):
    reason = "unknown-sku"

    def __init__(self, event: str, sku: str) -> None:
        self.event = event
        self.sku = sku
        super().__init__()

    def message(self) -> str:
        return f"SKU {self.sku!r} is not on sale in {self.event!r}"


class UnknownMarket(LampoError):
    reason = "unknown-market"

    def __init__(self, event: str, market: str) -> None:
        self.event = event
        self.market = market
        super().__init__()

    def message(self) -> str:
        return f"market {self.market!r} takes no part in {self.event!r}"


class UnknownHold(LampoError):
    reason = "unknown-hold"

    def __init__(self, hold_id: str) -> None:
        self.hold_id = hold_id
        super().__init__()

    def message(self) -> str:
        return f"no hold {self.hold_id!r}"


class NotOpen(LampoError):
    reason = "not-open"

    def __init__(self, market: str, opens_at: datetime) -> None:
        self.market = market
        self.opens_at = opens_at
        super().__init__()

    def message(self) -> str:
        return f"the sale in {self.market} opens at {self.opens_at.isoformat()}"


class Closed(LampoError):
    reason = "closed"

    def __init__(self, market: str, closed_at: datetime) -> None:
        self.market = market
        self.closed_at = closed_at
        super().__init__()

    def message(self) -> str:
        return f"the sale in {self.market} closed at {self.closed_at.isoformat()}"


class SoldOut(LampoError):
    """Too few units of ``sku`` for a line. ``pool``: the reserved stock pool that could not
    serve it ("" for the shared pool, or a SKU without pools: then not in ``detail()``)."""

    reason = "sold-out"

    def __init__(self, sku: str, requested: int, available: int, pool: str = "") -> None:
        self.sku = sku
        self.requested = requested
        self.available = available
        self.pool = pool
        super().__init__()

    def detail(self) -> dict[str, Any]:
        out = super().detail()
        if not self.pool:
            del out["pool"]
        return out

    def message(self) -> str:
        where = f" in pool {self.pool}" if self.pool else ""
        return f"{self.sku}{where}: {self.requested} requested, {self.available} available"


class LimitExceeded(LampoError):
    """A customer would pass a per-customer limit (per SKU when ``sku`` is set, else per event)."""

    reason = "limit-exceeded"

    def __init__(self, customer: str, limit: int, already: int, sku: str | None = None) -> None:
        self.customer = customer
        self.limit = limit
        self.already = already
        self.sku = sku
        super().__init__()

    def message(self) -> str:
        scope = f"of {self.sku}" if self.sku else "in this event"
        return f"customer {self.customer} may buy {self.limit} {scope} and has {self.already}"


class HoldExpired(LampoError):
    reason = "hold-expired"

    def __init__(self, hold_id: str, expired_at: datetime) -> None:
        self.hold_id = hold_id
        self.expired_at = expired_at
        super().__init__()

    def message(self) -> str:
        return f"hold {self.hold_id} expired at {self.expired_at.isoformat()}"


class IllegalTransition(LampoError):
    """A hold or order was asked to move to a state its current state does not allow."""

    reason = "illegal-transition"

    def __init__(self, hold_id: str, state: str, action: str) -> None:
        self.hold_id = hold_id
        self.state = state
        self.action = action
        super().__init__()

    def message(self) -> str:
        return f"hold {self.hold_id} is {self.state}; it cannot be {self.action}"


class AlreadyPaid(LampoError):
    """The hold was paid already, under another payment id."""

    reason = "already-paid"

    def __init__(self, hold_id: str, payment_id: str) -> None:
        self.hold_id = hold_id
        self.payment_id = payment_id
        super().__init__()

    def message(self) -> str:
        return f"hold {self.hold_id} was paid by payment {self.payment_id}"


class IdempotencyConflict(LampoError):
    """An idempotency key was reused for a request with different content."""

    reason = "idempotency-conflict"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__()

    def message(self) -> str:
        return f"idempotency key {self.key!r} was used for a different request"


class Unavailable(LampoError):
    """The storage cannot take the request now (overloaded, or a server is down). Retry later."""

    reason = "unavailable"

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__()

    def message(self) -> str:
        return f"storage unavailable: {self.problem}"


class UpdateRefused(LampoError):
    """A live event cannot take this new definition: ``field`` says what part, ``problem``
    why. The event is left as it was."""

    reason = "update-refused"

    def __init__(self, event: str, field: str, problem: str) -> None:
        self.event = event
        self.field = field
        self.problem = problem
        super().__init__()

    def message(self) -> str:
        return f"event {self.event!r} cannot change its {self.field}: {self.problem}"


# -- the front door (issue 13, docs/front-door.md) --------------------------------------
class BadToken(InvalidRequest):
    """A ticket, admission or challenge that does not verify (never half-read)."""

    reason = "bad-token"


class AlreadyRegistered(LampoError):
    """An event's registration exists already for this ``identity`` (``account``,
    ``phone`` or ``device``): one registration per account, and per phone or device
    hash when the event says so."""

    reason = "already-registered"

    def __init__(self, event: str, identity: str) -> None:
        self.event = event
        self.identity = identity
        super().__init__()

    def message(self) -> str:
        return f"this {self.identity} is registered for {self.event!r} already"


class NotRegistered(LampoError):
    """The event admits registered accounts only, and this one is not."""

    reason = "not-registered"

    def __init__(self, event: str, account: str) -> None:
        self.event = event
        self.account = account
        super().__init__()

    def message(self) -> str:
        return f"{self.account} did not register for {self.event!r}"


class RegistrationClosed(LampoError):
    """Registration is taken from ``opens_at`` until ``closes_at`` only."""

    reason = "registration-closed"

    def __init__(self, event: str, opens_at: datetime, closes_at: datetime) -> None:
        self.event = event
        self.opens_at = opens_at
        self.closes_at = closes_at
        super().__init__()

    def message(self) -> str:
        return (
            f"registration for {self.event!r} is open from {self.opens_at.isoformat()} "
            f"until {self.closes_at.isoformat()}"
        )


class NotDrawn(LampoError):
    """The event's lottery was drawn and this account is not among its winners."""

    reason = "not-drawn"

    def __init__(self, event: str, account: str) -> None:
        self.event = event
        self.account = account
        super().__init__()

    def message(self) -> str:
        return f"{self.account} was not drawn in the lottery of {self.event!r}"


class NotAdmitted(LampoError):
    """No admission to ``market``'s sale of ``event`` for this buyer: ``problem`` says
    why (none, expired, another buyer's, event's or market's)."""

    reason = "not-admitted"

    def __init__(self, event: str, market: str, problem: str) -> None:
        self.event = event
        self.market = market
        self.problem = problem
        super().__init__()

    def message(self) -> str:
        return f"not admitted to {self.event!r} in {self.market}: {self.problem}"


class ProofOfWork(LampoError):
    """Joining the queue needs a solved challenge of ``bits`` zero bits (missing, wrong,
    expired or another buyer's: ``problem``)."""

    reason = "proof-of-work"

    def __init__(self, event: str, bits: int, problem: str) -> None:
        self.event = event
        self.bits = bits
        self.problem = problem
        super().__init__()

    def message(self) -> str:
        return f"joining {self.event!r} needs a proof of work of {self.bits} bits: {self.problem}"


class FileRefused(LampoError):
    """A file refused whole: ``problems`` lists every bad row's line, column and reason
    (each a plain dict); the message shows the first five. ``what`` names the file."""

    what: ClassVar[str] = "file"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        super().__init__()

    def message(self) -> str:
        shown = "; ".join(
            f"line {p['line']}, {p['column']}: {p['reason']}" for p in self.problems[:5]
        )
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        return f"{self.what} refused, {len(self.problems)} problem(s): {shown}{more}"


class StoresRefused(FileRefused):
    """A store registry file was refused whole. Nothing of the file was taken."""

    reason: ClassVar[str] = "stores-refused"
    what: ClassVar[str] = "store registry"


class RegistryChanged(LampoError):
    """The store registry is at ``version``, not at the version ``replaces`` the write was
    meant to replace: another write came first. Nothing was written; read it again."""

    reason: ClassVar[str] = "registry-changed"

    def __init__(self, version: int, replaces: int) -> None:
        self.version = version
        self.replaces = replaces
        super().__init__()

    def message(self) -> str:
        return f"the store registry is at version {self.version}, not {self.replaces}"


class UnknownStore(LampoError):
    reason: ClassVar[str] = "unknown-store"

    def __init__(self, store: str) -> None:
        self.store = store
        super().__init__()

    def message(self) -> str:
        return f"no store {self.store!r} in the registry"


class StoreNotOpen(LampoError):
    """The store does not trade on ``day`` (its market's date of the sale): it opens on
    ``opened`` and, when ``closed`` is set, trades no more from that day (ISO dates)."""

    reason: ClassVar[str] = "store-not-open"

    def __init__(self, store: str, day: str, opened: str, closed: str | None) -> None:
        self.store = store
        self.day = day
        self.opened = opened
        self.closed = closed
        super().__init__()

    def message(self) -> str:
        until = f" until {self.closed}" if self.closed else ""
        return f"store {self.store} is not open on {self.day} (open from {self.opened}{until})"


class UnknownStoreKey(LampoError):
    reason: ClassVar[str] = "unknown-store-key"

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__()

    def message(self) -> str:
        return f"no store key {self.key_id!r}"


class UnknownReceipt(LampoError):
    reason: ClassVar[str] = "unknown-receipt"

    def __init__(self, store: str, receipt_id: str) -> None:
        self.store = store
        self.receipt_id = receipt_id
        super().__init__()

    def message(self) -> str:
        return f"store {self.store} has no sale with receipt {self.receipt_id!r}"


class OrdersRefused(FileRefused):
    """A partner's order file was refused whole before anything was sold."""

    reason: ClassVar[str] = "orders-refused"
    what: ClassVar[str] = "order file"


REFUSALS: dict[str, type[LampoError]] = {
    cls.reason: cls
    for cls in (
        InvalidRequest,
        UnknownEvent,
        UnknownSku,
        UnknownMarket,
        UnknownHold,
        NotOpen,
        Closed,
        SoldOut,
        LimitExceeded,
        HoldExpired,
        IllegalTransition,
        AlreadyPaid,
        IdempotencyConflict,
        Unavailable,
        UpdateRefused,
        BadToken,
        AlreadyRegistered,
        NotRegistered,
        RegistrationClosed,
        NotDrawn,
        NotAdmitted,
        ProofOfWork,
        StoresRefused,
        RegistryChanged,
        UnknownStore,
        StoreNotOpen,
        UnknownStoreKey,
        UnknownReceipt,
        OrdersRefused,
    )
}


def refusal_from_detail(reason: str, detail: dict[str, Any]) -> LampoError:
    """Rebuild a refusal from its ``reason`` and ``detail()`` (for storage that keeps JSON)."""
    cls = REFUSALS[reason]
    args = dict(detail)
    for key in ("opens_at", "closed_at", "closes_at", "expired_at"):
        if isinstance(args.get(key), str):
            args[key] = datetime.fromisoformat(args[key])
    return cls(**args)
