"""Sale events to and from plain JSON-ready dicts, so storage can keep a definition.

Money is kept as integer minor units with its currency, FX rates as exact fraction
strings (``"1001/10000"``) and times as ISO 8601 with offset: nothing passes through a
float. ``event_from_dict(event_to_dict(e)) == e`` for every valid event.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from lampo.domain.catalog import Category, Sku
from lampo.domain.channels import ChannelSpec
from lampo.domain.errors import InvalidRequest
from lampo.domain.event import Milestone, Offer, SaleEvent, Window
from lampo.domain.frontdoor import FrontDoor
from lampo.domain.market import ChannelKind, Market
from lampo.domain.money import FxTable, Money

FORMAT = 1


def event_to_dict(event: SaleEvent) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "id": event.id,
        "name": event.name,
        "hold_seconds": event.hold_seconds,
        "limit_per_customer": event.limit_per_customer,
        "fx": {
            "reporting": event.fx.reporting,
            "on": event.fx.on.isoformat(),
            "rates": {c: str(r) for c, r in sorted(event.fx.rates.items())},
        },
        "markets": {
            c: {"name": m.name, "currency": m.currency, "tz": m.tz}
            for c, m in event.markets.items()
        },
        "windows": {
            c: {"opens": w.opens.isoformat(), "closes": w.closes.isoformat()}
            for c, w in event.windows.items()
        },
        "categories": {c: {"name": k.name, "unit": k.unit} for c, k in event.categories.items()},
        "skus": {
            s: {"product": k.product, "name": k.name, "category": k.category}
            for s, k in event.skus.items()
        },
        "offers": {
            s: {
                "allocation": o.allocation,
                "limit_per_customer": o.limit_per_customer,
                "prices": {m: [p.amount, p.currency] for m, p in o.prices.items()},
                # only when given: definitions stored before list prices read the same
                **(
                    {"list_prices": {m: [p.amount, p.currency] for m, p in o.list_prices.items()}}
                    if o.list_prices
                    else {}
                ),
                **({"pools": dict(o.pools)} if o.pools else {}),
                **({"fallback": True} if o.fallback else {}),
            }
            for s, o in event.offers.items()
        },
        "milestones": [
            {"label": m.label, "threshold": m.threshold, "category": m.category}
            for m in event.milestones
        ],
        # only when declared: definitions stored before channels read the same
        **(
            {
                "channels": [
                    {
                        "id": c.id,
                        "kind": c.kind.value,
                        "skus": list(c.skus),
                        "markets": list(c.markets),
                        "pool": c.pool,
                    }
                    for c in event.channels.values()
                ]
            }
            if event.channels
            else {}
        ),
        **({"front_door": _door_to_dict(event.front_door)} if event.front_door else {}),
    }


def _door_to_dict(door: FrontDoor) -> dict[str, Any]:
    opens, closes = door.registration_opens, door.registration_closes
    return {
        "registration_opens": opens.isoformat() if opens else None,
        "registration_closes": closes.isoformat() if closes else None,
        "require_registration": door.require_registration,
        "unique": list(door.unique),
        "lottery_factor": door.lottery_factor,
        "waiting_room": door.waiting_room,
        "admit_per_second": door.admit_per_second,
        "admission_seconds": door.admission_seconds,
        "pow_bits": door.pow_bits,
        **({"target_latency_ms": door.target_latency_ms} if door.target_latency_ms else {}),
    }


def _door(d: _Fields) -> FrontDoor:
    return FrontDoor(
        registration_opens=d.moment("registration_opens") if d.has("registration_opens") else None,
        registration_closes=(
            d.moment("registration_closes") if d.has("registration_closes") else None
        ),
        require_registration=_flag(d, "require_registration"),
        unique=tuple(d.ids("unique")),
        lottery_factor=d.maybe_whole("lottery_factor"),
        waiting_room=_flag(d, "waiting_room", True),
        admit_per_second=d.whole("admit_per_second"),
        admission_seconds=d.whole("admission_seconds"),
        pow_bits=d.whole("pow_bits"),
        target_latency_ms=d.maybe_whole("target_latency_ms"),
    )


def event_from_dict(data: object) -> SaleEvent:
    """The event ``data`` describes, for any JSON value ``data``: the event, or
    ``InvalidRequest`` naming the field that is missing, of the wrong type or out of its
    bound (``lampo.domain.bounds``). Nothing else escapes."""
    try:
        return _event(_Fields(data, "event"))
    except InvalidRequest:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, ArithmeticError) as exc:
        # The readers below check every type first; this is the net under them.
        raise InvalidRequest("event", f"malformed event definition: {type(exc).__name__}") from None


#: An FX rate as the codec writes it (``str(Fraction)``: ``"1001/10000"``, ``"7"``), or a
#: decimal (``"0.1001"``). Digits are few, and no exponent: ``Fraction("1e999999999")``
#: would build a number of a billion digits.
_RATE = re.compile(r"[0-9]{1,20}(?:/[0-9]{1,20}|\.[0-9]{1,20})?")


class _Fields:
    """A JSON object being read: typed reads that name the field of every problem."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise InvalidRequest(path, f"must be a JSON object, got {_kind(data)}")
        self.data: dict[str, Any] = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path != "event" else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str) -> object:
        if key not in self.data:
            raise InvalidRequest(self.at(key), "is missing")
        return self.data[key]

    def obj(self, key: str) -> _Fields:
        return _Fields(self.get(key), self.at(key))

    def entries(self, key: str) -> list[tuple[str, _Fields]]:
        """The members of the object at ``key``, each an object."""
        table = self.obj(key)
        return [(code, table.obj(code)) for code in table.data]

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default) if default is not None else self.get(key)
        if not isinstance(value, str):
            raise InvalidRequest(self.at(key), f"must be a string, got {_kind(value)}")
        return value

    def whole(self, key: str) -> int:
        value = self.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequest(self.at(key), f"must be a whole number, got {_kind(value)}")
        return value

    def maybe_whole(self, key: str) -> int | None:
        return self.whole(key) if self.has(key) else None

    def moment(self, key: str) -> datetime:
        try:
            return datetime.fromisoformat(self.text(key))
        except ValueError:
            raise InvalidRequest(self.at(key), "must be an ISO 8601 date-time") from None

    def day(self, key: str) -> date:
        try:
            return date.fromisoformat(self.text(key))
        except ValueError:
            raise InvalidRequest(self.at(key), "must be an ISO 8601 date") from None

    def rate(self, key: str) -> Fraction:
        value = self.get(key)
        if not isinstance(value, str) or not _RATE.fullmatch(value):
            raise InvalidRequest(
                self.at(key), f"must be a fraction such as '1001/10000', got {_kind(value)}"
            )
        try:
            return Fraction(value)
        except ZeroDivisionError:
            raise InvalidRequest(self.at(key), "has a zero denominator") from None

    def price(self, key: str) -> Money:
        value = self.get(key)
        if not isinstance(value, list) or len(value) != 2:
            raise InvalidRequest(self.at(key), f"must be [amount, currency], got {_kind(value)}")
        amount, currency = value
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise InvalidRequest(
                self.at(key), f"amount must be a whole number, got {_kind(amount)}"
            )
        return Money(amount, currency)

    def ids(self, key: str) -> list[str]:
        """The strings of the array at ``key`` (missing: none)."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRequest(self.at(key), f"must be an array of ids, got {_kind(value)}")
        return value

    def items(self, key: str) -> list[_Fields]:
        """The elements of the array at ``key`` (missing: none), each an object."""
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise InvalidRequest(self.at(key), f"must be an array, got {_kind(value)}")
        return [_Fields(item, f"{self.at(key)}[{i}]") for i, item in enumerate(value)]


def _event(d: _Fields) -> SaleEvent:
    if type(d.data.get("format")) is not int or d.data["format"] != FORMAT:
        raise InvalidRequest("format", f"expected event format {FORMAT}")
    fx = d.obj("fx")
    rates = fx.obj("rates")
    return SaleEvent(
        id=d.text("id"),
        name=d.text("name"),
        hold_seconds=d.whole("hold_seconds"),
        limit_per_customer=d.maybe_whole("limit_per_customer"),
        fx=FxTable(
            fx.text("reporting"),
            fx.day("on"),
            {c: rates.rate(c) for c in rates.data},
        ),
        markets={
            c: Market(c, m.text("name"), m.text("currency"), m.text("tz"))
            for c, m in d.entries("markets")
        },
        windows={c: Window(w.moment("opens"), w.moment("closes")) for c, w in d.entries("windows")},
        categories={
            c: Category(c, k.text("name"), k.text("unit", "units"))
            for c, k in d.entries("categories")
        },
        skus={
            s: Sku(s, k.text("product"), k.text("name"), k.text("category"))
            for s, k in d.entries("skus")
        },
        offers={s: _offer(s, o) for s, o in d.entries("offers")},
        milestones=tuple(
            Milestone(m.text("label"), m.whole("threshold"), m.text("category", ""))
            for m in d.items("milestones")
        ),
        channels=_channels(d.items("channels")),
        front_door=_door(d.obj("front_door")) if d.has("front_door") else None,
    )


def _channels(items: list[_Fields]) -> dict[str, ChannelSpec]:
    out: dict[str, ChannelSpec] = {}
    for c in items:
        spec = ChannelSpec(
            c.text("id"),
            ChannelKind(_one_of(c, "kind", [k.value for k in ChannelKind])),
            tuple(c.ids("skus")),
            tuple(c.ids("markets")),
            c.text("pool", ""),
        )
        if spec.id in out:
            raise InvalidRequest("channels", f"{spec.id!r} is declared twice")
        out[spec.id] = spec
    return out


def _one_of(d: _Fields, key: str, allowed: list[str]) -> str:
    value = d.text(key)
    if value not in allowed:
        raise InvalidRequest(d.at(key), f"{_kind(value)} is not one of {', '.join(allowed)}")
    return value


def _offer(sku: str, o: _Fields) -> Offer:
    prices = o.obj("prices")
    listed = o.obj("list_prices") if o.has("list_prices") else None
    pools = o.obj("pools") if o.has("pools") else None
    return Offer(
        sku,
        o.whole("allocation"),
        {m: prices.price(m) for m in prices.data},
        o.maybe_whole("limit_per_customer"),
        {m: listed.price(m) for m in listed.data} if listed else {},
        {p: pools.whole(p) for p in pools.data} if pools else {},
        _flag(o, "fallback"),
    )


def _flag(d: _Fields, key: str, default: bool = False) -> bool:
    value = d.data.get(key, default)
    if not isinstance(value, bool):
        raise InvalidRequest(d.at(key), f"must be true or false, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    """What a JSON value is, for a message (never the value itself: it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return f"a string of {len(value):,} characters" if len(value) > 40 else repr(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def event_to_json(event: SaleEvent) -> str:
    """The definition as storage keeps it: ``event_to_dict`` as JSON, keys sorted (so one
    definition is always the same text)."""
    return json.dumps(event_to_dict(event), sort_keys=True)


def event_from_json(text: str) -> SaleEvent:
    return event_from_dict(json.loads(text))
