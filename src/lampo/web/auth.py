"""Who is calling: buyer tokens, the admin API key and payment-provider signatures.

Buyer tokens are JWTs signed with HMAC-SHA256 (``HS256``) under the server secret; the
buyer id is the ``sub`` claim, so a buyer is never a field the caller can type. A token
names lampo as its audience (``aud``), and its ``exp``, ``nbf`` and ``iat`` are honoured
with ``LEEWAY_SECONDS`` of clock skew, by PyJWT's rules. Webhook bodies carry
``Lampo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``; a signature older
or newer than the tolerance is refused, so a captured delivery cannot be replayed later
(inside the window a replay is harmless: payment is idempotent by ``payment_id``). Every
comparison of secrets is constant-time.

PyJWT writes the tokens (``issue_token``, ``lampo token``) and is the reference the
reader here is tested against (tests/unit/test_web_tokens.py: for generated claims, a
token is taken here exactly when PyJWT takes it). The reader stays hand-written because
it was measured to matter: a flash sale brings many buyers who each send a few requests,
so a worker reads many tokens for the first time, and PyJWT took 281,000 instructions to
read one against 115,000 here (callgrind; 46-71 µs against 15-20 µs on the development
machine): with PyJWT and the new metrics, a reservation over HTTP cost 18 % more server
CPU in ``bench/http_api.py`` with 10,000 buyers (two requests in five carry a token new
to its worker) and 8 % more with 1,000 (bench/README.md). The cache of verified tokens
stays too (a request pays one dict lookup and two comparisons), and with it the time
checks a cached token must pass on every request. The signature is checked
before any part is decoded: nothing of a token nobody signed is ever parsed (PyJWT
decodes the header's JSON first).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import jwt

from lampo.domain.catalog import check_id
from lampo.domain.errors import InvalidRequest, LampoError
from lampo.web.limits import MAX_SIGNATURE, MAX_TIMESTAMP_DIGITS, MAX_TOKEN, digits

#: The audience of a buyer token (its ``aud`` claim); a token without it is refused.
AUDIENCE = "lampo"
#: Seconds of clock skew allowed between a token's issuer and this server, on ``exp``,
#: ``nbf`` and ``iat``.
LEEWAY_SECONDS = 10
#: The shortest secret that signs buyer tokens, in bytes: RFC 7518 (3.2) wants an HS256
#: key at least as long as the hash, 256 bits.
MIN_SECRET_BYTES = 32
_ALGORITHM = "HS256"
#: PyJWT signs the tokens (refusing a key shorter than the hash).
_JWT = jwt.PyJWT(options={"enforce_minimum_key_length": True})
#: A token: three parts in base64url (RFC 7515), unpadded, as ``issue_token`` writes them.
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
#: A ``v1=`` signature: the lowercase hex of an HMAC-SHA256.
_HEX_MAC = re.compile(r"[0-9a-f]{64}")


def check_token_secret(secret: bytes) -> None:
    """Refuse a secret too short to sign buyer tokens (``MIN_SECRET_BYTES``)."""
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidRequest("LAMPO_SECRET", f"must be at least {MIN_SECRET_BYTES} bytes")


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


def issue_token(
    secret: bytes, buyer: str, ttl_seconds: int = 3600, now: float | None = None
) -> str:
    """A buyer token for ``buyer``, for lampo (``aud``), valid ``ttl_seconds`` from
    ``now``."""
    check_id("buyer", buyer, 128)
    check_token_secret(secret)
    if ttl_seconds < 1:
        raise InvalidRequest("ttl", "must be at least 1 second")
    issued = int(time.time() if now is None else now)
    claims = {"sub": buyer, "aud": AUDIENCE, "iat": issued, "exp": issued + ttl_seconds}
    return _JWT.encode(claims, secret, algorithm=_ALGORITHM)


@dataclass(frozen=True, slots=True)
class Buyer:
    id: str
    #: The first instant this server refuses the token: its ``exp`` plus the leeway.
    expires: float
    #: The first instant this server takes it: its ``nbf`` (or ``iat``, if later) less the
    #: leeway; minus infinity for a token with neither.
    not_before: float = -math.inf


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _seconds(claims: dict[str, Any], name: str) -> int | None:
    """A time claim: a whole number of seconds, or absent."""
    value = claims.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise Unauthorized(f"the buyer token's {name} is not a whole number of seconds")
    return value


class TokenVerifier:
    """Verifies buyer tokens; remembers good ones by the exact ``Authorization`` value, so
    the hot path pays for parsing and the HMAC once per token, then one dict lookup and
    the time checks per request. Only tokens that verified are remembered (at most
    ``cache_size``, oldest out first), so garbage cannot fill the cache."""

    def __init__(self, secret: bytes, cache_size: int = 65_536) -> None:
        check_token_secret(secret)
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
        moment = time.time() if now is None else now
        if known.expires <= moment:
            raise Unauthorized("the buyer token has expired")
        if moment < known.not_before:
            raise Unauthorized("the buyer token is not valid yet")
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
        if not isinstance(head, dict) or head.get("alg") != _ALGORITHM:
            raise Unauthorized(f"the buyer token must be signed with {_ALGORITHM}")
        if not isinstance(claims, dict):
            raise Unauthorized("the buyer token is malformed")
        aud = claims.get("aud")  # a string, or a list of strings (then one must be lampo's)
        if aud != AUDIENCE and not (
            type(aud) is list and AUDIENCE in aud and all(type(a) is str for a in aud)
        ):
            raise Unauthorized(_CLAIM_PROBLEMS["aud"])
        sub, expires = claims.get("sub"), _seconds(claims, "exp")
        if expires is None:
            raise Unauthorized(_CLAIM_PROBLEMS["exp"])
        try:
            check_id("buyer", sub, 128)
        except InvalidRequest:
            raise Unauthorized(_CLAIM_PROBLEMS["sub"]) from None
        starts = [t for t in (_seconds(claims, "nbf"), _seconds(claims, "iat")) if t is not None]
        return Buyer(
            str(sub),
            expires + LEEWAY_SECONDS,
            max(starts) - LEEWAY_SECONDS if starts else -math.inf,
        )


#: What a token missing a claim, or holding a wrong one, is told.
_CLAIM_PROBLEMS = {
    "aud": f"the buyer token is not for this server (its aud must be {AUDIENCE!r})",
    "exp": "the buyer token has no expiry",
    "sub": "the buyer token names no valid buyer",
}


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
