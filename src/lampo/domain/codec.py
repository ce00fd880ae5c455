"""Sale events to and from plain JSON-ready dicts, so storage can keep a definition.

Money is kept as integer minor units with its currency, FX rates as exact fraction
strings (``"1001/10000"``) and times as ISO 8601 with offset: nothing passes through a
float. ``event_from_dict(event_to_dict(e)) == e`` for every valid event.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from lampo.domain.catalog import Category, Sku
from lampo.domain.errors import InvalidRequest
from lampo.domain.event import Milestone, Offer, SaleEvent, Window
from lampo.domain.market import Market
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
            }
            for s, o in event.offers.items()
        },
        "milestones": [
            {"label": m.label, "threshold": m.threshold, "category": m.category}
            for m in event.milestones
        ],
    }


def event_from_dict(data: dict[str, Any]) -> SaleEvent:
    """The event ``data`` describes; ``InvalidRequest`` naming the field if it is malformed."""
    try:
        if data.get("format") != FORMAT:
            raise InvalidRequest("format", f"expected event format {FORMAT}")
        fx = data["fx"]
        return SaleEvent(
            id=data["id"],
            name=data["name"],
            hold_seconds=int(data["hold_seconds"]),
            limit_per_customer=data.get("limit_per_customer"),
            fx=FxTable(
                fx["reporting"],
                date.fromisoformat(fx["on"]),
                {c: Fraction(r) for c, r in fx["rates"].items()},
            ),
            markets={
                c: Market(c, m["name"], m["currency"], m["tz"]) for c, m in data["markets"].items()
            },
            windows={
                c: Window(datetime.fromisoformat(w["opens"]), datetime.fromisoformat(w["closes"]))
                for c, w in data["windows"].items()
            },
            categories={
                c: Category(c, k["name"], k.get("unit", "units"))
                for c, k in data["categories"].items()
            },
            skus={
                s: Sku(s, k["product"], k["name"], k["category"]) for s, k in data["skus"].items()
            },
            offers={
                s: Offer(
                    s,
                    int(o["allocation"]),
                    {m: Money(int(a), c) for m, (a, c) in o["prices"].items()},
                    o.get("limit_per_customer"),
                )
                for s, o in data["offers"].items()
            },
            milestones=tuple(
                Milestone(m["label"], int(m["threshold"]), m.get("category", ""))
                for m in data.get("milestones", [])
            ),
        )
    except InvalidRequest:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidRequest("event", f"malformed event definition: {exc!r}") from None


def event_to_json(event: SaleEvent) -> str:
    """The definition as storage keeps it: ``event_to_dict`` as JSON, keys sorted (so one
    definition is always the same text)."""
    return json.dumps(event_to_dict(event), sort_keys=True)


def event_from_json(text: str) -> SaleEvent:
    return event_from_dict(json.loads(text))
