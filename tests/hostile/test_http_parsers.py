"""Each reader of outside input on the HTTP edge, alone, under generated hostile input.

The rule for all of them: any input in, a value or the refusal the API documents out,
never another exception (a ``ValueError`` from ``int('²')``, a ``TypeError`` from
``hmac.compare_digest`` on non-ASCII text, a ``RecursionError`` from deep JSON would each
be a 500). They run without a server, so they take many examples in little time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lampo.domain.catalog import check_id
from lampo.domain.errors import InvalidRequest, UnknownEvent, UnknownHold
from lampo.services.sales import Sales
from lampo.storage import from_url
from lampo.web import limits, problems
from lampo.web.asgi import Request
from lampo.web.asgi import decode as _decode
from lampo.web.auth import (
    BadSignature,
    StaleSignature,
    TokenVerifier,
    Unauthorized,
    check_admin,
    issue_token,
    sign_webhook,
    verify_webhook,
)
from lampo.web.problems import NoRoute, PayloadTooLarge, RateLimited
from lampo.web.ratelimit import RateLimiter
from lampo.web.schemas import any_decoder, reserve_decoder
from tests.hostile import strategies as hs

SECRET = b"parser-test-secret-0123456789abcdef"
NOW = 1_700_000_000

# -- Lampo-Signature (webhooks; no credentials needed to send one) ---------------------------


def latin1(data: bytes) -> str:
    """A header value as the app reads it (``Request.header``)."""
    return data.decode("latin-1")


@settings(max_examples=400)
@given(header=hs.signature_values(SECRET, b"{}", NOW), body=st.sampled_from((b"{}", b"")))
def test_any_signature_header_verifies_or_is_refused_as_a_bad_or_stale_signature(
    header: bytes, body: bytes
) -> None:
    try:
        verify_webhook(SECRET, latin1(header), body, 300, now=NOW)
    except (BadSignature, StaleSignature):
        pass


@given(
    stamp=st.text(hs.UNICODE_DIGITS + "0123456789", min_size=1, max_size=12).filter(
        lambda t: not t.isascii()
    )
)
def test_a_timestamp_in_digits_other_than_ascii_is_refused_even_when_signed(stamp: str) -> None:
    mac = hmac.new(SECRET, stamp.encode() + b"." + b"{}", hashlib.sha256).hexdigest()
    with pytest.raises(BadSignature):
        verify_webhook(SECRET, f"t={stamp},v1={mac}", b"{}", 300, now=NOW)


@given(body=st.binary(max_size=300), skew=st.integers(min_value=-300, max_value=300))
def test_a_signature_made_by_the_provider_verifies_within_the_window(
    body: bytes, skew: int
) -> None:
    verify_webhook(SECRET, sign_webhook(SECRET, body, NOW + skew), body, 300, now=NOW)


# -- buyer tokens (no credentials needed to send one) --------------------------------------


@settings(max_examples=400)
@given(authorization=hs.bearer_values(SECRET))
def test_any_authorization_header_names_a_buyer_or_is_refused_as_unauthorized(
    authorization: bytes,
) -> None:
    verifier = TokenVerifier(SECRET)
    try:
        buyer = verifier.buyer(authorization, now=NOW)
    except Unauthorized:
        return
    # only a token signed with the secret gets here, and it names a valid buyer
    assert 1 <= len(buyer.id) <= 128
    assert buyer.expires > NOW


@given(buyer=st.from_regex(r"[A-Za-z0-9_.@-]{1,64}", fullmatch=True))
def test_an_issued_token_names_its_buyer_and_any_change_to_it_is_refused(buyer: str) -> None:
    token = issue_token(SECRET, buyer, 60, now=NOW)
    assert TokenVerifier(SECRET).buyer(f"Bearer {token}", now=NOW).id == buyer
    header, payload, signature = token.split(".")
    for forged in (
        f"{header}.{payload}x.{signature}",
        f"{header}.{payload}.{signature[:-2]}",
        f"{header}.{payload}!.{signature}",  # base64 decoders skip what they do not know
    ):
        with pytest.raises(Unauthorized):
            TokenVerifier(SECRET).buyer(f"Bearer {forged}", now=NOW)


def test_an_unsigned_token_is_never_decoded() -> None:
    """JSON nested past the recursion limit in a token nobody signed is refused as a bad
    signature, never parsed."""
    deep = base64.urlsafe_b64encode(b"[" * 1400).rstrip(b"=").decode()
    token = f"{deep}.e30.AAAA"
    assert len(token) <= limits.MAX_TOKEN
    with pytest.raises(Unauthorized, match="signature"):
        TokenVerifier(SECRET).buyer(f"Bearer {token}", now=NOW)


# -- numbers, keys and cursors in headers and query strings ---------------------------------

ASCII_NUMBER = re.compile(r"[0-9]+")


@settings(max_examples=400)
@given(text=st.one_of(hs.hostile_number_text(), hs.hostile_text()))
def test_a_page_size_is_read_from_ascii_digits_only(text: str) -> None:
    expected: int | None = None
    if ASCII_NUMBER.fullmatch(text) and len(text.lstrip("0")) <= 4 and 1 <= int(text) <= 1000:
        expected = int(text)
    got: int | None = None
    field = "limit"
    try:
        got = limits.whole_number(text, "limit", 1, limits.MAX_PAGE)
    except InvalidRequest as refusal:
        field = refusal.field
    assert (got, field) == (expected, "limit")


@settings(max_examples=300)
@given(data=st.one_of(hs.header_values(), hs.raw_header_values(), hs.hostile_number_text()))
def test_a_number_in_a_header_is_ascii_digits_of_bounded_length_or_none(data: Any) -> None:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    got = limits.digits(raw, limits.MAX_LENGTH_DIGITS)
    if re.fullmatch(rb"[0-9]{1,20}", raw):
        assert got == int(raw)
    else:
        assert got is None


@given(key=st.one_of(hs.header_values(), st.text(max_size=200)))
def test_an_idempotency_key_is_1_to_128_visible_ascii_characters(key: Any) -> None:
    text = latin1(key) if isinstance(key, bytes) else key
    valid = re.fullmatch(r"[!-~]{1,128}", text) is not None
    try:
        assert limits.idempotency_key(text) == text
        assert valid
    except InvalidRequest:
        assert not valid


@given(after=hs.hostile_text(max_size=300))
def test_a_cursor_longer_than_a_hold_id_is_refused(after: str) -> None:
    try:
        assert limits.cursor(after) == after
        assert len(after) <= limits.MAX_HOLD_ID
    except InvalidRequest:
        assert len(after) > limits.MAX_HOLD_ID


@given(
    seconds=st.one_of(hs.hostile_integers(), hs.hostile_floats(), hs.json_values(max_leaves=3)),
    offset_days=st.integers(min_value=-36600, max_value=36600),
)
def test_a_clock_step_keeps_the_test_clock_within_bounds_or_is_refused(
    seconds: Any, offset_days: int
) -> None:
    offset = timedelta(days=offset_days)
    try:
        step = limits.clock_step(seconds, offset)
    except InvalidRequest:
        return
    assert abs(offset + step) <= limits.MAX_CLOCK_OFFSET


# -- bodies ---------------------------------------------------------------------------------


def read(headers: list[tuple[bytes, bytes]], chunks: list[bytes], limit: int) -> bytes:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return asyncio.run(Request(scope, receive).body(limit))


@settings(max_examples=200)
@given(
    length=st.one_of(
        hs.hostile_number_text().map(lambda s: s.encode("utf-8", "surrogatepass")),
        hs.header_values(),
        st.integers(min_value=0, max_value=100).map(lambda n: str(n).encode()),
    ),
    chunks=st.lists(st.binary(max_size=40), min_size=1, max_size=4),
    complete=st.booleans(),
)
def test_a_body_is_read_whatever_the_content_length_says_or_refused(
    length: bytes, chunks: list[bytes], complete: bool
) -> None:
    sent = chunks if complete else [*chunks[:-1]]  # else the client leaves mid-body
    try:
        body = read([(b"content-length", length)], sent or [b""], 64)
    except (InvalidRequest, PayloadTooLarge):
        return
    assert body == b"".join(sent)
    assert len(body) <= 64


@settings(max_examples=200)
@given(body=st.one_of(hs.nested_json().map(str.encode), st.binary(max_size=200)))
def test_a_json_body_decodes_or_is_refused_as_invalid(body: bytes) -> None:
    for decoder in (any_decoder, reserve_decoder):
        field = "body"
        try:
            _decode(decoder, body)
        except InvalidRequest as refusal:
            field = refusal.field
        assert field == "body"


# -- what answers and counts them ------------------------------------------------------------


#: Text with a lone surrogate in it (what ``surrogateescape`` makes of bytes that are not
#: UTF-8), or any other hostile text.
WITH_SURROGATES = st.one_of(
    st.builds(lambda head, tail: head + "\udcff" + tail, hs.hostile_text(max_size=20), st.text()),
    hs.hostile_text(surrogates=True),
)


@given(value=WITH_SURROGATES)
def test_a_problem_document_is_json_whatever_text_it_carries(value: str) -> None:
    status, doc = problems.problem(InvalidRequest(value, value), value)
    parsed = json.loads(problems.encode(doc))
    assert parsed["status"] == status == 400
    assert parsed["reason"] == "invalid-request"


@given(key=WITH_SURROGATES)
def test_any_text_is_a_rate_limit_key(key: str) -> None:
    limiter = RateLimiter("buyer", rate=1.0, burst=1.0, slots=64)
    limiter.take(key, now=time.monotonic())
    with pytest.raises(RateLimited):
        limiter.take(key, now=time.monotonic())


@given(
    text=st.text(min_size=1, max_size=5).map(lambda s: s * 20_000),
    refusal=st.sampled_from((UnknownEvent, UnknownHold, NoRoute)),
)
def test_a_problem_repeats_a_bounded_part_of_what_it_was_sent(text: str, refusal: Any) -> None:
    _, doc = problems.problem(refusal(text), "/v1/events/" + text)
    # four clipped texts, each character at most 6 bytes of JSON (an escape like \u0000)
    assert len(problems.encode(doc)) < 4 * 2 * problems.ECHO * 6


def test_the_bounds_of_ids_on_the_edge_are_the_domains() -> None:
    """``limits`` repeats two bounds of the domain and the sale service: an id of
    ``MAX_ID`` characters is one and a longer one is not; a hold id of ``MAX_HOLD_ID``
    characters is looked up and a longer one refused."""
    check_id("event", "e" * limits.MAX_ID)
    with pytest.raises(InvalidRequest):
        check_id("event", "e" * (limits.MAX_ID + 1))
    sales = Sales(from_url("memory://"))
    with pytest.raises(UnknownHold):
        sales.release("h" * limits.MAX_HOLD_ID)
    with pytest.raises(InvalidRequest):
        sales.release("h" * (limits.MAX_HOLD_ID + 1))


@given(
    key=st.text(st.characters(exclude_categories=("C", "Z")), min_size=16, max_size=64),
    other=hs.header_values(),
)
def test_the_admin_key_is_the_bytes_the_operator_set_and_nothing_else(
    key: str, other: bytes
) -> None:
    """The key comes from the environment as text and is kept as UTF-8; a client sends
    those bytes, which the app reads as Latin-1 (``Request.header``)."""
    secret = key.encode()
    check_admin(secret, latin1(secret))
    if other != secret:
        with pytest.raises(Unauthorized):
            check_admin(secret, latin1(other))


@example(text="0.01")
@example(text="1e-3")
@example(text="10")
@given(text=hs.hostile_number_text(max_digits=40))
def test_a_scale_is_read_from_ascii_decimals_only(text: str) -> None:
    """``?scale=``: a number in ASCII (``0.01``, ``1e-3``) or an ``invalid-request`` naming
    the field; never a digit of another script, an underscore, a space or ``inf``."""
    refused: InvalidRequest | None = None
    try:
        value = limits.decimal(text, "scale")
    except InvalidRequest as refusal:
        refused = refusal
    if refused is not None:
        assert refused.field == "scale"
        return
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", text), text
    assert value == float(text)
    assert math.isfinite(value)
