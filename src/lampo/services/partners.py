"""Marketplace intake: a partner's orders, one at a time (signed, over HTTP) or a file of
them for after-the-fact settlement (``lampo partners import``).

Each line of an order is sold on its own, paid at once (``Sales.sell``) through the
channel ``marketplace/<partner>``, for the customer ``<partner>:<buyer or order id>``,
under the key ``<order id>:<n>`` (n from 1): a line is accepted with its order, or refused
with its refusal, and the other lines go on. The answers are kept once per ``(partner,
order id)`` (the binding ``partner-order``, with a fingerprint of the order), so a replay
gets the same answers, and the same order id with other content is an
``IdempotencyConflict``. Answers with an ``unavailable`` line are not kept: the retry
sells what is left (the lines sold already answer from their keys). Two deliveries of one
order at the very same moment both sell through the same line keys, so each line is sold
once; the answers kept are the first delivery's.

Bounds, checked before anything is sold: an order has 1 to ``MAX_ORDER_LINES`` lines of
1 to ``MAX_QUANTITY`` units and an id of at most ``MAX_ORDER_ID`` characters; a file
holds at most ``MAX_FILE_ROWS`` rows and ``MAX_FILE_BYTES`` bytes.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lampo.domain.catalog import check_id
from lampo.domain.errors import (
    IdempotencyConflict,
    InvalidRequest,
    LampoError,
    OrdersRefused,
    Unavailable,
    UnknownMarket,
    UnknownSku,
)
from lampo.domain.event import SaleEvent
from lampo.domain.market import Channel, ChannelKind
from lampo.services.sales import MAX_QUANTITY, Sales

ORDERS = "partner-order"
#: The longest partner order id: 63 characters, so the customer of an order without a
#: buyer, ``<partner>:<order id>``, is an id of at most 128 (partner ids are at most 64).
MAX_ORDER_ID = 63
#: The most lines one partner order may carry.
MAX_ORDER_LINES = 100
#: The most rows (CSV lines, or JSONL orders) of an order file: 100,000.
MAX_FILE_ROWS = 100_000
#: The most bytes of an order file: 64 MiB.
MAX_FILE_BYTES = 64 * 2**20
#: The columns of a CSV order file, one order line a row (the rows of one order id form
#: one order, its lines in file order).
CSV_COLUMNS = ("order_id", "market", "buyer", "sku", "quantity")


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PartnerOrder:
    event: str
    order_id: str
    market: str
    lines: tuple[OrderLine, ...]
    buyer: str | None = None

    def fingerprint(self) -> str:
        content = [
            self.event,
            self.market,
            self.buyer,
            [[ln.sku, ln.quantity] for ln in self.lines],
        ]
        return hashlib.blake2b(json.dumps(content).encode(), digest_size=16).hexdigest()


def check_order(event: SaleEvent, order: PartnerOrder, skus: bool = True) -> list[tuple[str, str]]:
    """Every problem of ``order`` against ``event``, as (field, reason); none: it may be
    sold (each line may still be refused when sold: sold out, a limit, a closed window).
    ``skus=False``: a SKU not on sale is left to its line's answer (``unknown-sku``)."""
    problems: list[tuple[str, str]] = []

    def check(name: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except InvalidRequest as exc:
            problems.append((name, exc.problem))

    check("order_id", lambda: check_id("order_id", order.order_id, MAX_ORDER_ID))
    if order.buyer is not None:
        check("buyer", lambda: check_id("buyer", order.buyer, 64))
    if order.market not in event.markets:
        problems.append(("market", str(UnknownMarket(event.id, order.market))))
    if not 1 <= len(order.lines) <= MAX_ORDER_LINES:
        problems.append(("lines", f"must be 1 to {MAX_ORDER_LINES} lines, got {len(order.lines)}"))
    for n, line in enumerate(order.lines, 1):
        q = line.quantity
        if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= MAX_QUANTITY:
            problems.append((f"lines[{n}].quantity", f"must be 1..{MAX_QUANTITY}, got {q!r}"))
        if skus and (not isinstance(line.sku, str) or line.sku not in event.offers):
            problems.append((f"lines[{n}].sku", str(UnknownSku(event.id, str(line.sku)))))
    return problems


def _answer(n: int, line: OrderLine, result: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"line": n, "sku": line.sku, "quantity": line.quantity}
    if isinstance(result, LampoError):
        out["accepted"] = False
        out["refusal"] = {"reason": result.reason, "message": result.message(), **result.detail()}
    else:
        out["accepted"] = True
        out["order_id"] = result.id
        out["amount"] = {"amount": result.amount.amount, "currency": result.amount.currency}
    return out


@dataclass(frozen=True, slots=True)
class Answers:
    """A partner order's answers, line by line; ``replayed`` when kept from before."""

    order_id: str
    lines: list[dict[str, Any]]
    replayed: bool = False

    @property
    def accepted(self) -> int:
        return sum(1 for a in self.lines if a["accepted"])


class Intake:
    """The orders of marketplace partners, through one ``Sales``."""

    def __init__(self, sales: Sales) -> None:
        self.sales = sales

    def _checked(self, partner: str, order: PartnerOrder) -> tuple[SaleEvent, str]:
        check_id("partner", partner)
        event = self.sales.event(order.event)
        if order.market not in event.markets:  # every line's refusal: the order's
            raise UnknownMarket(event.id, order.market)
        problems = check_order(event, order, skus=False)
        if problems:
            name, reason = problems[0]
            raise InvalidRequest(name, reason)
        return event, f"{partner} {order.order_id}"

    def _kept(self, key: str, order: PartnerOrder) -> Answers | None:
        kept = self.sales.storage.bound(ORDERS, key)
        return None if kept is None else self._from_kept(kept, order)

    @staticmethod
    def _from_kept(kept: str, order: PartnerOrder) -> Answers:
        record = json.loads(kept)
        if record["fingerprint"] != order.fingerprint():
            raise IdempotencyConflict(order.order_id)
        return Answers(order.order_id, record["answers"], replayed=True)

    def _keep(self, key: str, order: PartnerOrder, answers: list[dict[str, Any]]) -> Answers:
        if any(not a["accepted"] and a["refusal"]["reason"] == Unavailable.reason for a in answers):
            return Answers(order.order_id, answers)  # not kept: a retry sells the rest
        record = json.dumps({"fingerprint": order.fingerprint(), "answers": answers})
        kept = self.sales.storage.bind(ORDERS, key, record)
        if kept != record:  # another delivery of the same order was answered first
            return self._from_kept(kept, order)
        return Answers(order.order_id, answers)

    def _line_args(self, partner: str, order: PartnerOrder) -> list[tuple[Any, ...]]:
        channel = Channel(ChannelKind.MARKETPLACE, partner)
        customer = f"{partner}:{order.buyer or order.order_id}"
        return [
            (
                order.event,
                channel,
                customer,
                order.market,
                {ln.sku: ln.quantity},
                f"{order.order_id}:{n}",
            )
            for n, ln in enumerate(order.lines, 1)
        ]

    def take(self, partner: str, order: PartnerOrder) -> Answers:
        """Sell an order's lines, each on its own; or the answers kept for it."""
        _, key = self._checked(partner, order)
        kept = self._kept(key, order)
        if kept is not None:
            return kept
        answers = []
        for n, (line, args) in enumerate(
            zip(order.lines, self._line_args(partner, order), strict=True), 1
        ):
            try:
                result: Any = self.sales.sell(*args)
            except LampoError as refusal:
                result = refusal
            answers.append(_answer(n, line, result))
        return self._keep(key, order, answers)

    async def atake(self, partner: str, order: PartnerOrder) -> Answers:
        """``take`` for a coroutine: storage reads off the loop, the sales awaited."""
        _, key = self._checked(partner, order)
        kept = await asyncio.to_thread(self._kept, key, order)
        if kept is not None:
            return kept
        answers = []
        for n, (line, args) in enumerate(
            zip(order.lines, self._line_args(partner, order), strict=True), 1
        ):
            try:
                result: Any = await self.sales.asell(*args)
            except LampoError as refusal:
                result = refusal
            answers.append(_answer(n, line, result))
        return await asyncio.to_thread(self._keep, key, order, answers)

    # -- order files -----------------------------------------------------------------------
    def settle_file(self, partner: str, event_id: str, text: str, fmt: str) -> Settlement:
        """Check every row of an order file (CSV or JSONL), refusing it whole with
        ``OrdersRefused`` (every problem, line by line) before anything is sold; then take
        its orders one by one."""
        check_id("partner", partner)
        event = self.sales.event(event_id)
        orders = read_orders(event, text, fmt)
        summary = Settlement()
        for order in orders:
            answers = self.take(partner, order)
            summary.count(answers)
        return summary


@dataclass
class Settlement:
    """What an order file did: orders (and those answered from before), lines accepted,
    lines refused by reason."""

    orders: int = 0
    replayed: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def count(self, answers: Answers) -> None:
        self.orders += 1
        self.replayed += answers.replayed
        for a in answers.lines:
            if a["accepted"]:
                self.accepted += 1
            else:
                self.refused[a["refusal"]["reason"]] += 1


def read_orders(event: SaleEvent, text: str, fmt: str) -> list[PartnerOrder]:
    """The orders of a file, every row checked; ``OrdersRefused`` listing every problem."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        problem = f"{size:,} bytes, more than {MAX_FILE_BYTES:,} (MAX_FILE_BYTES)"
        raise OrdersRefused([{"line": 0, "column": "file", "reason": problem}])
    problems: list[dict[str, Any]] = []
    if fmt == "csv":
        orders = _csv_orders(event, text, problems)
    elif fmt == "jsonl":
        orders = _jsonl_orders(event, text, problems)
    else:
        raise InvalidRequest("format", f"must be csv or jsonl, got {fmt!r}")
    for line, order in orders:
        for column, reason in check_order(event, order):
            problems.append({"line": line, "column": column, "reason": reason})
    if problems:
        raise OrdersRefused(sorted(problems, key=lambda p: p["line"]))
    return [order for _, order in orders]


def _too_many(rows: int, line: int, problems: list[dict[str, Any]]) -> bool:
    if rows > MAX_FILE_ROWS:
        problems.append(
            {"line": line, "column": "file", "reason": f"more than {MAX_FILE_ROWS:,} rows"}
        )
        return True
    return False


def _csv_orders(
    event: SaleEvent, text: str, problems: list[dict[str, Any]]
) -> list[tuple[int, PartnerOrder]]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    first_line: dict[str, int] = {}
    heads: dict[str, tuple[str, str | None]] = {}
    lines: dict[str, list[OrderLine]] = {}
    try:
        header = next(reader, None)
        if header is None or tuple(header) != CSV_COLUMNS:
            got = ",".join(header) if header else "nothing"
            reason = f"must be {','.join(CSV_COLUMNS)}, got {got[:80]!r}"
            raise OrdersRefused([{"line": 1, "column": "header", "reason": reason}])
        rows = 0
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            rows += 1
            if _too_many(rows, line, problems):
                break
            if len(row) != len(CSV_COLUMNS):
                reason = f"has {len(row)} fields, the header {len(CSV_COLUMNS)}"
                problems.append({"line": line, "column": "row", "reason": reason})
                continue
            order_id, market, buyer, sku, quantity = row
            if not quantity.isascii() or not quantity.isdigit() or len(quantity) > 7:
                problems.append(
                    {"line": line, "column": "quantity", "reason": f"must be 1..{MAX_QUANTITY}"}
                )
                continue
            head = (market, buyer or None)
            if order_id in heads and heads[order_id] != head:
                first = first_line[order_id]
                reason = f"order {order_id[:80]!r} has another market or buyer on line {first}"
                problems.append({"line": line, "column": "order_id", "reason": reason})
                continue
            first_line.setdefault(order_id, line)
            heads[order_id] = head
            lines.setdefault(order_id, []).append(OrderLine(sku, int(quantity)))
    except csv.Error as exc:
        problems.append(
            {"line": reader.line_num, "column": "file", "reason": f"not valid CSV: {exc}"}
        )
    return [
        (first_line[o], PartnerOrder(event.id, o, heads[o][0], tuple(lines[o]), heads[o][1]))
        for o in lines
    ]


def _jsonl_orders(
    event: SaleEvent, text: str, problems: list[dict[str, Any]]
) -> list[tuple[int, PartnerOrder]]:
    out: list[tuple[int, PartnerOrder]] = []
    seen: dict[str, int] = {}
    rows = 0
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        rows += 1
        if _too_many(rows, line, problems):
            break
        try:
            order = order_from_json(event.id, json.loads(raw))
        except (ValueError, InvalidRequest) as exc:
            reason = exc.problem if isinstance(exc, InvalidRequest) else f"not JSON: {exc}"
            problems.append({"line": line, "column": "row", "reason": reason})
            continue
        if order.order_id in seen:
            reason = f"order {order.order_id[:80]!r} is already on line {seen[order.order_id]}"
            problems.append({"line": line, "column": "order_id", "reason": reason})
            continue
        seen[order.order_id] = line
        out.append((line, order))
    return out


def order_from_json(event_id: str, data: object) -> PartnerOrder:
    """An order from its JSON form (``{"order_id", "market", "buyer"?, "lines": [{"sku",
    "quantity"}]}``), its types checked (its bounds: ``check_order``)."""
    if not isinstance(data, dict):
        raise InvalidRequest("order", "must be a JSON object")
    order_id, market, buyer, lines = (data.get(k) for k in ("order_id", "market", "buyer", "lines"))
    if not isinstance(order_id, str) or not isinstance(market, str):
        raise InvalidRequest("order", "order_id and market must be strings")
    if buyer is not None and not isinstance(buyer, str):
        raise InvalidRequest("buyer", "must be a string when given")
    if not isinstance(lines, list) or len(lines) > MAX_ORDER_LINES:
        raise InvalidRequest("lines", f"must be a list of 1 to {MAX_ORDER_LINES} lines")
    parsed: list[OrderLine] = []
    for item in lines:
        if not isinstance(item, dict) or set(item) != {"sku", "quantity"}:
            raise InvalidRequest("lines", 'each line must be {"sku", "quantity"}')
        sku, qty = item["sku"], item["quantity"]
        if not isinstance(sku, str) or isinstance(qty, bool) or not isinstance(qty, int):
            raise InvalidRequest("lines", "a line's sku is a string, its quantity an integer")
        parsed.append(OrderLine(sku, qty))
    return PartnerOrder(event_id, order_id, market, tuple(parsed), buyer)


__all__: Sequence[str] = ("Answers", "Intake", "OrderLine", "PartnerOrder", "Settlement")
