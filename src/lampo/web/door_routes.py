"""The front door's routes (issue 13; handlers in ``frontdoor.py``, docs/front-door.md):
registration and its live count, the waiting room's challenge, join and poll, and the
admin's queue, rate, lottery and export. ``routes.py`` serves them among the others."""

from __future__ import annotations

from lampo.web import door_schemas as ds
from lampo.web import frontdoor
from lampo.web.openapi import json_body, page, ref
from lampo.web.route import Auth, Route, query

DOOR_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/events/{event_id}/registrations",
        frontdoor.register,
        "register",
        "Register the calling buyer for an event's sale (inside its registration window)",
        "front door",
        {"201": json_body(ref("RegistrationOut"), "Registered.")},
        Auth.BUYER,
        query=(ds.DEVICE_HEADER,),
        body={
            "required": False,
            "content": {"application/json": {"schema": ref("RegistrationIn")}},
        },
        description="One registration per account, and per phone or device hash when the "
        "event says so. Refusals: `already-registered` (409, names the identity), "
        "`registration-closed` (409), `rate-limited` (per device and network), "
        "`unknown-event`.",
    ),
    Route(
        "GET",
        "/v1/events/{event_id}/registrations/count",
        frontdoor.registration_count,
        "registrationCount",
        "How many accounts are registered (live, cheap)",
        "front door",
        {"200": json_body(ref("RegistrationCount"), "The count.")},
        description="One read per event serves every caller for `LAMPO_REPORT_TTL` seconds "
        "in each worker.",
    ),
    Route(
        "GET",
        "/v1/events/{event_id}/queue/challenge",
        frontdoor.challenge,
        "queueChallenge",
        "A proof-of-work challenge for joining the queue",
        "front door",
        {"200": json_body(ref("ChallengeOut"), "The signed challenge and its difficulty.")},
        Auth.BUYER,
        query=(
            query("market", {"type": "string", "minLength": 1, "maxLength": 8}),
            ds.DEVICE_HEADER,
        ),
        description="Bound to the calling buyer; `bits` 0 asks for no work. Refusals: "
        "`unknown-market`, `rate-limited`.",
    ),
    Route(
        "POST",
        "/v1/events/{event_id}/queue",
        frontdoor.join,
        "joinQueue",
        "Join a market's waiting room: a signed ticket",
        "front door",
        {"201": json_body(ref("TicketOut"), "The ticket (the same one when joined before).")},
        Auth.BUYER,
        query=(ds.DEVICE_HEADER,),
        body={"required": True, "content": {"application/json": {"schema": ref("JoinIn")}}},
        description="Before the market opens the ticket is in the pre-queue (`seq` 0), "
        "ordered at random at opening; after, in arrival order. Refusals: `proof-of-work` "
        "(403), `bad-token` (401: the challenge), `not-registered`, `not-drawn` (403), "
        "`unknown-market`, `rate-limited`.",
    ),
    Route(
        "GET",
        "/v1/queue/poll",
        frontdoor.poll,
        "pollQueue",
        "Where a ticket stands: position, people ahead, ETA, or an admission",
        "front door",
        {"200": json_body(ref("PollOut"), "The ticket's place.")},
        Auth.BUYER,
        query=(ds.TICKET_HEADER,),
        description="Send the ticket as `Lampo-Ticket`; poll with the `ticket` of the "
        "answer from then on. Refusals: `bad-token` (401: a ticket that does not "
        "verify), `not-admitted` (403: no ticket, another buyer's, an admission that "
        "expired unused), `closed`.",
    ),
    Route(
        "GET",
        "/v1/admin/events/{event_id}/queue",
        frontdoor.queue_state,
        "readQueue",
        "The front door of an event: registrations, each market's queue, refusals",
        "admin",
        {
            "200": json_body(
                ref("QueueOut"),
                "Registrations, each market's queue (none without a waiting room), and "
                "this worker's refusals by reason.",
            )
        },
        Auth.ADMIN,
    ),
    Route(
        "PUT",
        "/v1/admin/events/{event_id}/queue/rate",
        frontdoor.set_rate,
        "setQueueRate",
        "Change a market's admission rate (from now on; none admitted is taken back)",
        "admin",
        {"200": json_body(ref("QueueMarketOut"), "The market's queue at the new rate.")},
        Auth.ADMIN,
        body={"required": True, "content": {"application/json": {"schema": ref("RateIn")}}},
    ),
    Route(
        "POST",
        "/v1/admin/events/{event_id}/draw",
        frontdoor.draw,
        "drawLottery",
        "Draw the lottery (after registration closes; the first draw stands)",
        "admin",
        {"200": json_body(ref("DrawOut"), "The seed and how many were drawn.")},
        Auth.ADMIN,
        description="Refused: `no-front-door` (404) for an event without a lottery, "
        "`invalid-request` before its registration closes.",
    ),
    Route(
        "GET",
        "/v1/admin/events/{event_id}/registrations.csv",
        frontdoor.registrations_csv,
        "exportRegistrations",
        "Every registration as CSV: account, registered_at (UTC), phone_hash, device_hash",
        "admin",
        {"200": {"description": "CSV with a header row.", "content": {"text/csv": page()}}},
        Auth.ADMIN,
    ),
)
