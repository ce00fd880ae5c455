"""The payment provider's webhook: a signed notice that a hold was paid.

The signature covers the body, so it is checked here once the body is read (the route
table marks the route ``Auth.WEBHOOK``, for the document); the payment goes through the
service's awaitable ``apay``, idempotent by the provider's payment id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lampo.domain.money import Money
from lampo.web import schemas
from lampo.web.asgi import Request, Response, decode, json_response, require_json
from lampo.web.auth import verify_webhook

if TYPE_CHECKING:
    from lampo.web.app import App


async def payment(app: App, req: Request) -> Response:
    config = app.config
    body = await req.body(config.max_body)
    verify_webhook(
        config.webhook_secret, req.header(b"lampo-signature"), body, config.webhook_tolerance
    )
    require_json(req)
    data: schemas.PaymentWebhookIn = decode(schemas.webhook_decoder, body)
    amount = Money(data.amount.amount, data.amount.currency)
    order = await app.service.apay(data.hold_id, data.payment_id, amount)
    return json_response(200, schemas.hold_out(order))
