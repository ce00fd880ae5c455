"""Marketplace intake over HTTP: a partner's order, signed with the partner's own secret
in the payment webhook's ``Lampo-Signature`` scheme (``auth.verify_webhook``), answered
line by line (``services/partners.py``). A partner that is not configured is refused as
a signature that does not verify, so the answer does not say which partners exist."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lampo.domain.errors import refusal_from_detail
from lampo.services.partners import OrderLine, PartnerOrder
from lampo.web import problems, schemas
from lampo.web.asgi import Request, Response, decode, json_response, require_json
from lampo.web.auth import BadSignature, verify_webhook

if TYPE_CHECKING:
    from lampo.web.app import App

#: The largest order body: 100 lines of the longest ids fit in 32 KiB.
MAX_ORDER_BODY = 32 * 1024


def _line_out(answer: dict[str, Any], instance: str) -> schemas.PartnerLineOut:
    out = schemas.PartnerLineOut(
        answer["line"], answer["sku"], answer["quantity"], answer["accepted"]
    )
    if answer["accepted"]:
        out.order_id = answer["order_id"]
        out.amount = schemas.MoneyIO(answer["amount"]["amount"], answer["amount"]["currency"])
    else:
        data = dict(answer["refusal"])
        reason, message = data.pop("reason"), data.pop("message")
        try:
            _, body = problems.problem(refusal_from_detail(reason, data), instance)
        except (KeyError, TypeError):  # a refusal this version does not know: as kept
            body = {"type": f"/problems/{reason}", "reason": reason, "detail": message}
        out.problem = body
    return out


async def order(app: App, req: Request) -> Response:
    partner = req.params["partner"]
    body = await req.body(MAX_ORDER_BODY)
    secret = app.config.partner_secrets.get(partner)
    if secret is None:
        raise BadSignature("the signature does not match the body")
    verify_webhook(secret, req.header(b"lampo-signature"), body, app.config.webhook_tolerance)
    require_json(req)
    data: schemas.PartnerOrderIn = decode(schemas.partner_order_decoder, body)
    await app.event(data.event)
    lines = tuple(OrderLine(ln.sku, ln.quantity) for ln in data.lines)
    taken = await app.intake.atake(
        partner, PartnerOrder(data.event, data.order_id, data.market, lines, data.buyer)
    )
    out = [_line_out(a, req.path) for a in taken.lines]
    accepted = sum(1 for a in out if a.accepted)
    answers = schemas.PartnerAnswers(taken.order_id, accepted, len(out) - accepted, out)
    extra = [(b"idempotent-replayed", b"true")] if taken.replayed else []
    return json_response(200, answers, *extra)
