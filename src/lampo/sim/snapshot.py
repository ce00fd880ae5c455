"""What a rehearsal over HTTP reads back from the servers, as the report and the audit
read storage (``storage.port.Reads``), and the map between the crowd's time and the
servers' (``TimeMap``): the event loaded on the servers is the scenario's, moved to now
and compressed by the speed (``rebase``); what they send back is moved back, so the
report reads on the scenario's own dates."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from lampo.domain.bounds import MAX_EVENT_SPAN
from lampo.domain.errors import InvalidRequest
from lampo.domain.event import SaleEvent, Window
from lampo.domain.holds import Hold, HoldLine, HoldState, StockLevel
from lampo.domain.market import Channel
from lampo.domain.totals import LineKey, LineTotal, OrderKey, OrderTotal, Totals


@dataclass(frozen=True, slots=True)
class TimeMap:
    """Crowd time (``origin``: the scenario's opening) to server time (``start``) and
    back: ``speed`` crowd seconds pass in one server second."""

    origin: datetime
    start: datetime
    speed: float

    def to_server(self, at: datetime) -> datetime:
        return self.start + (at - self.origin) / self.speed

    def to_crowd(self, at: datetime) -> datetime:
        return self.origin + (at - self.start) * self.speed


def rebase(event: SaleEvent, run_id: str, times: TimeMap) -> SaleEvent:
    """``event`` as the server gets it: the run's id, its windows in server time and its
    hold time divided by the speed (whole seconds, at least one)."""
    windows = {
        code: Window(times.to_server(w.opens), times.to_server(w.closes))
        for code, w in event.windows.items()
    }
    span = (event.closes - event.opens) / times.speed
    if span > MAX_EVENT_SPAN:
        raise InvalidRequest(
            "speed",
            f"at speed {times.speed:g} the event would last {span}, more than "
            f"{MAX_EVENT_SPAN.days} days (MAX_EVENT_SPAN)",
        )
    hold = max(1, round(event.hold_seconds / times.speed))
    return replace(event, id=run_id, windows=windows, hold_seconds=hold)


class Snapshot:
    """A server's view of the rehearsal, read once at the end: what the battle report
    and the audit read (``storage.port.Reads``), under the scenario's own id and times."""

    def __init__(
        self, event: SaleEvent, holds: list[Hold], stock: dict[str, StockLevel], totals: Totals
    ) -> None:
        self.event = event
        self._holds = holds
        self._stock = stock
        self._totals = totals

    def load_events(self) -> list[SaleEvent]:
        return [self.event]

    def holds(self, event: str) -> Iterator[Hold]:
        return iter(self._holds if event == self.event.id else [])

    def stock(self, event: str) -> dict[str, StockLevel]:
        return dict(self._stock) if event == self.event.id else {}

    def pools(self, event: str) -> dict[str, StockLevel]:
        """A server's stock endpoint reports SKUs, not pools: an event that reserves no
        pool has one row per SKU, its stock; for one that does, the pools are not known
        here ({}: the audit then checks per SKU only)."""
        if any(offer.pools for offer in self.event.offers.values()):
            return {}
        return self.stock(event)

    def totals(self, event: str) -> Totals:
        return self._totals if event == self.event.id else Totals()


def hold_of(item: dict[str, Any], event: str, times: TimeMap) -> Hold:
    """A hold as a server sent it (``GET /v1/admin/events/{id}/orders``), under ``event``
    and in the crowd's time."""

    def back(text: str | None) -> datetime | None:
        return None if text is None else times.to_crowd(datetime.fromisoformat(text))

    ch = item["channel"]
    return Hold(
        id=item["id"],
        event=event,
        customer=item["customer"],
        market=item["market"],
        channel=Channel(ch["kind"], ch["name"], ch["referral"]),
        lines=tuple(HoldLine(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in item["lines"]),
        currency=item["amount"]["currency"],
        created_at=times.to_crowd(datetime.fromisoformat(item["created_at"])),
        expires_at=times.to_crowd(datetime.fromisoformat(item["expires_at"])),
        state=HoldState(item["state"]),
        payment_id=item["payment_id"] or "",
        paid_at=back(item["paid_at"]),
        ended_at=back(item["ended_at"]),
        refunded_at=back(item["refunded_at"]),
    )


def stock_of(data: dict[str, Any]) -> dict[str, StockLevel]:
    """``GET /v1/events/{id}/stock`` as storage's stock levels."""
    return {
        r["sku"]: StockLevel(r["sku"], r["allocation"], r["available"], r["held"], r["sold"])
        for r in data["skus"]
    }


def totals_of(data: dict[str, Any]) -> Totals:
    """``GET /v1/admin/events/{id}/totals`` as storage's live totals."""
    return Totals(
        {
            LineKey(r["sku"], r["market"], r["channel"], r["name"], r["referral"]): LineTotal(
                r["units"], r["amount"]
            )
            for r in data["lines"]
        },
        {
            OrderKey(r["market"], r["channel"], r["name"], r["referral"]): OrderTotal(
                r["orders"], r["amount"]
            )
            for r in data["orders"]
        },
    )
