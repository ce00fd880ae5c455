"""Who is calling: buyer tokens, the admin API key and payment-provider signatures.

Buyer tokens are JWTs signed with HMAC-SHA256 (``HS256``) under the server secret,
written and read by PyJWT; the buyer id is the ``sub`` claim, so a buyer is never a field
the caller can type. A token names lampo as its audience (``aud``), and its ``exp``,
``nbf`` and ``iat`` are honoured with ``LEEWAY_SECONDS`` of clock skew. Webhook bodies
carry ``Lampo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``; a signature
older or newer than the tolerance is refused, so a captured delivery cannot be replayed
later (inside the window a replay is harmless: payment is idempotent by ``payment_id``).
Every comparison of secrets is constant-time.

Kept by hand around PyJWT: the cache of verified tokens (measured to matter on the hot
path: a request pays one dict lookup and two comparisons, not a decode and an HMAC), and
so the time checks that a cached token must pass on every request (the same rule as
PyJWT's, in one place); and the check of the signature (HMAC-SHA256, constant-time)
before PyJWT reads the token, since PyJWT decodes the header's JSON before it verifies a
signature, and nothing of a token nobody signed is ever parsed here. PyJWT does not check
the signature a second time: that cost 25 µs per token a worker sees for the first time
(PyJWT reads one in about 45 µs where the hand-written reader took 15-20; a flash sale
brings many buyers who each send a few requests, so first sightings are frequent).
"""

from __future__ import annotations

import hashlib
import hmac
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
#: PyJWT signs tokens (refusing a short key) and reads them.
_JWT = jwt.PyJWT(options={"enforce_minimum_key_length": True})
#: What PyJWT checks of a token ``TokenVerifier`` reads: its parts, the audience, the
#: subject's type, that the claims are there. Not the signature: ``TokenVerifier``
#: checked it before (a second HMAC, with PyJWT's key preparation, cost 25 µs per new
#: token); nor the times, checked on every request (the same rule, with the cache).
_READ = {
    "verify_signature": False,
    "verify_aud": True,
    "verify_sub": True,
    "require": ["sub", "exp", "aud"],
}
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
        signing_input, _, signature = token.rpartition(".")
        expected = jwt.utils.base64url_encode(
            hmac.new(self._secret, signing_input.encode(), hashlib.sha256).digest()
        )
        if not hmac.compare_digest(expected, signature.encode()):
            raise Unauthorized("the buyer token's signature does not verify")
        try:
            read = _JWT.decode_complete(token, options=_READ, audience=AUDIENCE)  # type: ignore[arg-type]
        except jwt.InvalidAudienceError:
            raise Unauthorized(_CLAIM_PROBLEMS["aud"]) from None
        except jwt.exceptions.InvalidSubjectError:
            raise Unauthorized(_CLAIM_PROBLEMS["sub"]) from None
        except jwt.MissingRequiredClaimError as err:
            raise Unauthorized(_CLAIM_PROBLEMS[err.claim]) from None
        except (jwt.PyJWTError, RecursionError):
            raise Unauthorized("the buyer token is malformed") from None
        if read["header"].get("alg") != _ALGORITHM:
            raise Unauthorized(f"the buyer token must be signed with {_ALGORITHM}")
        claims: dict[str, Any] = read["payload"]
        sub, expires = claims["sub"], _seconds(claims, "exp")
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
