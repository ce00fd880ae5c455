"""Buyer tokens: the audience, ``exp``, ``nbf`` and ``iat`` with the leeway, on the first
verification and on every request served from the cache of verified tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampo.domain.errors import InvalidRequest
from lampo.web.auth import (
    AUDIENCE,
    LEEWAY_SECONDS,
    MIN_SECRET_BYTES,
    TokenVerifier,
    Unauthorized,
    issue_token,
)
from lampo.web.config import WebConfig

SECRET = b"token-test-secret-0123456789abcdef" * 2  # long enough for HS512 too
NOW = 1_700_000_000
#: Offsets from NOW either side of the leeway's edges.
offsets = st.integers(min_value=-3 * LEEWAY_SECONDS, max_value=3 * LEEWAY_SECONDS)


def bearer(**claims: Any) -> str:
    """A token signed with the server's secret, holding ``claims`` (None: left out)."""
    full = {"sub": "alice", "aud": AUDIENCE, "exp": NOW + 3600} | claims
    token = jwt.encode({k: v for k, v in full.items() if v is not None}, SECRET, "HS256")
    return f"Bearer {token}"


def accepted(verifier: TokenVerifier, authorization: str, now: float) -> bool:
    try:
        verifier.buyer(authorization, now=now)
    except Unauthorized:
        return False
    return True


def test_an_issued_token_names_lampo_as_its_audience() -> None:
    token = issue_token(SECRET, "alice", 60, now=NOW)
    claims = jwt.decode(token, SECRET, ["HS256"], audience=AUDIENCE, options={"verify_exp": False})
    assert claims == {"sub": "alice", "aud": AUDIENCE, "iat": NOW, "exp": NOW + 60}


@given(audience=st.one_of(st.none(), st.text(max_size=20), st.lists(st.text(max_size=8))))
def test_a_token_for_another_audience_or_none_is_refused(audience: str | list[str] | None) -> None:
    expected = audience == AUDIENCE or (isinstance(audience, list) and AUDIENCE in audience)
    verifier = TokenVerifier(SECRET)
    if expected:
        assert verifier.buyer(bearer(aud=audience), now=NOW).id == "alice"
    else:
        with pytest.raises(Unauthorized, match="aud"):
            verifier.buyer(bearer(aud=audience), now=NOW)


@settings(max_examples=100)
@given(exp=offsets, at=offsets)
def test_a_token_is_taken_until_its_expiry_plus_the_leeway(exp: int, at: int) -> None:
    verifier = TokenVerifier(SECRET)
    token = bearer(exp=NOW + exp)
    assert accepted(verifier, token, NOW + at) == (at < exp + LEEWAY_SECONDS)


@settings(max_examples=100)
@given(claim=st.sampled_from(["nbf", "iat"]), starts=offsets, at=offsets)
def test_a_token_is_refused_before_its_nbf_or_iat_less_the_leeway(
    claim: str, starts: int, at: int
) -> None:
    verifier = TokenVerifier(SECRET)
    token = bearer(**{claim: NOW + starts})
    assert accepted(verifier, token, NOW + at) == (at >= starts - LEEWAY_SECONDS)


def test_a_cached_token_is_checked_against_the_clock_on_every_request() -> None:
    verifier = TokenVerifier(SECRET)
    token = bearer(nbf=NOW + 100, exp=NOW + 200)
    with pytest.raises(Unauthorized, match="not valid yet"):
        verifier.buyer(token, now=NOW)  # verified and remembered, but not yet good
    assert verifier.buyer(token, now=NOW + 100).id == "alice"
    with pytest.raises(Unauthorized, match="expired"):
        verifier.buyer(token, now=NOW + 200 + LEEWAY_SECONDS)


@given(claim=st.sampled_from(["exp", "nbf", "iat"]), value=st.sampled_from([1.5, "1", True, []]))
def test_a_time_claim_that_is_not_whole_seconds_is_refused(claim: str, value: object) -> None:
    with pytest.raises(Unauthorized):
        TokenVerifier(SECRET).buyer(bearer(**{claim: value}), now=NOW)


@pytest.mark.parametrize("claim", ["sub", "exp", "aud"])
def test_a_token_without_a_required_claim_is_refused(claim: str) -> None:
    with pytest.raises(Unauthorized, match="buyer token"):
        TokenVerifier(SECRET).buyer(bearer(**{claim: None}), now=NOW)


def test_a_token_signed_with_another_algorithm_is_refused_before_it_is_read() -> None:
    token = jwt.encode({"sub": "alice", "aud": AUDIENCE, "exp": NOW + 60}, SECRET, "HS512")
    with pytest.raises(Unauthorized, match="signature"):
        TokenVerifier(SECRET).buyer(f"Bearer {token}", now=NOW)


def test_the_token_secret_is_at_least_as_long_as_the_hash() -> None:
    short = b"s" * (MIN_SECRET_BYTES - 1)
    with pytest.raises(InvalidRequest, match="LAMPO_SECRET"):
        TokenVerifier(short)
    with pytest.raises(InvalidRequest, match="LAMPO_SECRET"):
        issue_token(short, "alice")
    env = {
        "LAMPO_SECRET": short.decode(),
        "LAMPO_ADMIN_KEY": "a" * 32,
        "LAMPO_WEBHOOK_SECRET": "w" * 32,
        "LAMPO_STORAGE": "memory://",
    }
    with pytest.raises(InvalidRequest, match="LAMPO_SECRET"):
        WebConfig.from_env(env)
    assert WebConfig.from_env({**env, "LAMPO_SECRET": "s" * MIN_SECRET_BYTES}).secret


@pytest.mark.parametrize("alg", ["none", "HS512", "RS256", None])
def test_a_token_whose_header_names_another_algorithm_is_refused_even_when_signed(
    alg: str | None,
) -> None:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    head = part({"typ": "JWT"} if alg is None else {"alg": alg, "typ": "JWT"})
    body = part({"sub": "alice", "aud": AUDIENCE, "exp": NOW + 60})
    mac = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    token = f"{head}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(Unauthorized, match="HS256"):
        TokenVerifier(SECRET).buyer(f"Bearer {token}", now=NOW)


# -- PyJWT is the reference --------------------------------------------------------------

#: Times relative to the real clock, each at least 10 s from any edge of the leeway, so
#: PyJWT (which reads the clock itself) and the verifier judge the same instant alike.
real_offsets = st.sampled_from([-1000, -100, -20, 0, 20, 100, 1000])
audiences = st.one_of(
    st.none(),
    st.sampled_from([AUDIENCE, "lampo-admin", "", "LAMPO"]),
    st.lists(st.sampled_from([AUDIENCE, "other", 7, None]), max_size=3),
    st.integers(),
)


@settings(max_examples=200)
@given(
    aud=audiences,
    exp=st.one_of(st.none(), real_offsets),
    nbf=st.one_of(st.none(), real_offsets),
    iat=st.one_of(st.none(), real_offsets),
    sub=st.one_of(st.none(), st.sampled_from(["alice", "b-42"])),
)
def test_a_token_is_taken_exactly_when_pyjwt_takes_it(
    aud: object, exp: int | None, nbf: int | None, iat: int | None, sub: str | None
) -> None:
    now = int(time.time())
    claims = {
        name: value
        for name, value in {
            "sub": sub,
            "aud": aud,
            "exp": None if exp is None else now + exp,
            "nbf": None if nbf is None else now + nbf,
            "iat": None if iat is None else now + iat,
        }.items()
        if value is not None
    }
    token = jwt.encode(claims, SECRET, "HS256")
    try:
        jwt.decode(
            token,
            SECRET,
            ["HS256"],
            audience=AUDIENCE,
            leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "exp", "aud"]},
        )
        pyjwt_takes_it = True
    except jwt.PyJWTError:
        pyjwt_takes_it = False
    assert accepted(TokenVerifier(SECRET), f"Bearer {token}", now) == pyjwt_takes_it
