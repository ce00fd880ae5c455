"""Who is calling: buyer tokens, the admin API key and payment-provider signatures.

Buyer tokens are JWTs signed with HMAC-SHA256 (``HS256``) under the server secret; the
buyer id is the ``sub`` claim, so a buyer is never a field the caller can type. Webhook
bodies carry ``Lampo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``; a
signature older or newer than the tolerance is refused, so a captured delivery cannot be
replayed later (inside the window a replay is harmless: payment is idempotent by
``payment_id``). Every comparison of secrets is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from lampo.domain.catalog import check_id
from lampo.domain.errors import InvalidRequest, LampoError
from lampo.web.limits import MAX_SIGNATURE, MAX_TIMESTAMP_DIGITS, MAX_TOKEN, digits

_HEADER = (
    base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    .rstrip(b"=")
    .decode()
)
#: A token: three parts in base64url (RFC 7515), unpadded, as ``issue_token`` writes them.
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
#: A ``v1=`` signature: the lowercase hex of an HMAC-SHA256.
_HEX_MAC = re.compile(r"[0-9a-f]{64}")


class Unauthorized(LampoError):
    """No credentials, or credentials that do not verify (status 401)."""

    reason = "unauthorized"

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__()

    def message(self) -> str:
        return self.problem


class Forbidden(LampoError):
    """Valid credentials that do not allow this call (status 403)."""

    reason = "forbidden"

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__()

    def message(self) -> str:
        return self.problem


class BadSignature(LampoError):
    """A webhook whose signature is missing, malformed or wrong (status 401)."""

    reason = "invalid-signature"

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__()

    def message(self) -> str:
        return self.problem


class StaleSignature(LampoError):
    """A webhook signed outside the tolerance window: a replay or a skewed clock (401)."""

    reason = "stale-signature"

    def __init__(self, age_seconds: int, tolerance_seconds: int) -> None:
        self.age_seconds = age_seconds
        self.tolerance_seconds = tolerance_seconds
        super().__init__()

    def message(self) -> str:
        return f"signed {self.age_seconds} s from now; the window is ±{self.tolerance_seconds} s"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(
    secret: bytes, buyer: str, ttl_seconds: int = 3600, now: float | None = None
) -> str:
    """A buyer token for ``buyer``, valid ``ttl_seconds`` from ``now``."""
    check_id("buyer", buyer, 128)
    if ttl_seconds < 1:
        raise InvalidRequest("ttl", "must be at least 1 second")
    issued = int(time.time() if now is None else now)
    claims = {"sub": buyer, "iat": issued, "exp": issued + ttl_seconds}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{_HEADER}.{payload}".encode()
    signature = _b64(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return f"{_HEADER}.{payload}.{signature}"


@dataclass(frozen=True, slots=True)
class Buyer:
    id: str
    expires: int


class TokenVerifier:
    """Verifies buyer tokens; remembers good ones by the exact ``Authorization`` value, so
    the hot path pays for parsing and the HMAC once per token, then one dict lookup and
    the expiry check per request. Only tokens that verified are remembered (at most
    ``cache_size``, oldest out first), so garbage cannot fill the cache."""

    def __init__(self, secret: bytes, cache_size: int = 65_536) -> None:
        self._secret = secret
        self._cache: dict[bytes | str, Buyer] = {}
        self._cache_size = cache_size

    def buyer(self, authorization: bytes | str | None, now: float | None = None) -> Buyer:
        """The buyer a ``Bearer`` header names, or ``Unauthorized``."""
        if not authorization:
            raise Unauthorized("a buyer token is required: Authorization: Bearer <token>")
        known = self._cache.get(authorization)
        if known is None:
            known = self._parse(authorization)
            cache = self._cache
            cache[authorization] = known
            if len(cache) > self._cache_size:
                del cache[next(iter(cache))]
        if known.expires <= (time.time() if now is None else now):
            raise Unauthorized("the buyer token has expired")
        return known

    def _parse(self, authorization: bytes | str) -> Buyer:
        if isinstance(authorization, bytes):
            authorization = authorization.decode("latin-1")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN:
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return self._verify(token)

    def _verify(self, token: str) -> Buyer:
        # The signature is checked before any part is decoded: what an unsigned token
        # holds (JSON nested past the recursion limit, say) is never parsed.
        if _TOKEN.fullmatch(token) is None:
            raise Unauthorized("the buyer token is malformed")
        header, payload, signature = token.split(".")
        expected = hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        try:
            given = _unb64(signature)
        except (binascii.Error, ValueError):
            raise Unauthorized("the buyer token is malformed") from None
        if not hmac.compare_digest(expected, given):
            raise Unauthorized("the buyer token's signature does not verify")
        try:
            head: Any = json.loads(_unb64(header))
            claims: Any = json.loads(_unb64(payload))
        except (binascii.Error, ValueError, RecursionError):
            raise Unauthorized("the buyer token is malformed") from None
        if not isinstance(head, dict) or head.get("alg") != "HS256":
            raise Unauthorized("the buyer token must be signed with HS256")
        if not isinstance(claims, dict):
            raise Unauthorized("the buyer token is malformed")
        sub, exp = claims.get("sub"), claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise Unauthorized("the buyer token has no expiry")
        try:
            check_id("buyer", sub, 128)
        except InvalidRequest:
            raise Unauthorized("the buyer token names no valid buyer") from None
        return Buyer(str(sub), exp)


def check_admin(key: bytes, given: str | None) -> None:
    """Refuse unless ``given`` is the admin API key (``Authorization: Bearer <key>`` or
    ``X-API-Key``). ``given`` is the header as the app reads it, Latin-1: its bytes are
    compared with the key's (UTF-8), so a key that is not ASCII works too."""
    if not given:
        raise Unauthorized("the admin API key is required (X-API-Key)")
    if not hmac.compare_digest(key, given.encode("latin-1", "replace")):
        raise Unauthorized("the admin API key does not match")


def sign_webhook(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The ``Lampo-Signature`` header a payment provider sends with ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_webhook(
    secret: bytes, header: str | None, body: bytes, tolerance: int, now: float | None = None
) -> None:
    """Refuse a missing, malformed, wrong or stale ``Lampo-Signature``. Any text may come
    in: the timestamp is read from ASCII digits only, and a ``v1=`` that is not 64
    lowercase hex digits matches nothing."""
    if not header:
        raise BadSignature("the Lampo-Signature header is missing")
    if len(header) > MAX_SIGNATURE:
        raise BadSignature(f"the Lampo-Signature header is longer than {MAX_SIGNATURE} characters")
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    stamps = fields.get("t", [])
    t = digits(stamps[0], MAX_TIMESTAMP_DIGITS) if len(stamps) == 1 else None
    if t is None:
        raise BadSignature("the Lampo-Signature header needs one t=<unix seconds>")
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest().encode()
    given = (v.encode() for v in fields.get("v1", []) if _HEX_MAC.fullmatch(v))
    if not any(hmac.compare_digest(mac, v) for v in given):
        raise BadSignature("the signature does not match the body")
    moment = int(time.time() if now is None else now)
    if abs(moment - t) > tolerance:
        raise StaleSignature(t - moment, tolerance)
