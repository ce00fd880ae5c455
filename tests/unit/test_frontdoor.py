"""The front door's pure parts: declarations and their bounds, tokens, proof of work, the
admission line and a visitor's place in it, the lottery."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lampo.domain.codec import event_from_dict, event_to_dict
from lampo.domain.errors import InvalidRequest
from lampo.domain.frontdoor import (
    AdmissionLine,
    BadToken,
    FrontDoor,
    PlaceState,
    adapt,
    draw,
    place,
    pow_ok,
    rank_key,
    solve,
)
from lampo.services.tokens import derive_key, sign, verify
from tests.factories import CN_OPENS, sale_event

KEY = derive_key(b"s" * 32, "ticket")
T0 = datetime(2014, 9, 2, 8, 30, tzinfo=UTC)
claims = st.dictionaries(
    st.text(max_size=5), st.one_of(st.integers(-(2**53), 2**53), st.text(max_size=20)), max_size=5
)


@given(claims)
def test_a_signed_token_gives_back_its_claims(c: dict[str, object]) -> None:
    assert verify(KEY, "ticket", sign(KEY, "ticket", c)) == c


@given(claims, st.integers(0, 200), st.characters(min_codepoint=32, max_codepoint=126))
def test_a_changed_token_never_verifies(c: dict[str, object], at: int, char: str) -> None:
    token = sign(KEY, "ticket", c)
    at %= len(token)
    changed = token[:at] + char + token[at + 1 :]
    if changed == token:
        return
    with pytest.raises(BadToken):
        verify(KEY, "ticket", changed)


@given(st.one_of(st.text(max_size=2000), st.integers(), st.none(), st.binary(max_size=50)))
def test_anything_else_is_refused_as_a_bad_token(junk: object) -> None:
    with pytest.raises(BadToken):
        verify(KEY, "ticket", junk)


def test_a_token_of_another_kind_or_key_is_refused() -> None:
    token = sign(KEY, "ticket", {"b": "u1"})
    with pytest.raises(BadToken):
        verify(KEY, "admission", token.replace("ticket.", "admission.", 1))
    with pytest.raises(BadToken):
        verify(derive_key(b"t" * 32, "ticket"), "ticket", token)


@given(st.text(min_size=1, max_size=30), st.integers(0, 10))
def test_a_solved_challenge_passes_with_its_bits(challenge: str, bits: int) -> None:
    solution = solve(challenge, bits)
    assert pow_ok(challenge, solution, bits)


def test_proof_of_work_refuses_an_unsolved_or_malformed_solution() -> None:
    bits = 12
    solution = solve("c", bits)
    wrong = [s for s in (format(n, "x") for n in range(200)) if not pow_ok("c", s, bits)]
    assert wrong  # most short solutions fail at 12 bits (1 in 4,096 passes)
    assert not pow_ok("c", "x" * 65, bits)
    assert not pow_ok("c", "", bits)
    assert not pow_ok("c", "é", bits)
    assert pow_ok("c", solution, bits)


@given(
    st.integers(0, 1000),
    st.integers(1, 10_000),
    st.integers(0, 10**7),
    st.integers(0, 10**7),
    st.integers(0, 10**6),
)
def test_the_admission_line_only_moves_forward(
    base: int, rate: int, a_us: int, b_us: int, length: int
) -> None:
    line = AdmissionLine(T0, base, rate)
    a, b = sorted((a_us, b_us))
    at_a = line.admitted(T0 + timedelta(microseconds=a), length)
    at_b = line.admitted(T0 + timedelta(microseconds=b), length)
    assert 0 <= at_a <= at_b <= length
    rebased = line.rebase(T0 + timedelta(microseconds=a), length, max(1, rate // 2))
    assert rebased.admitted(T0 + timedelta(microseconds=a), length) == at_a


@given(st.integers(1, 10**6), st.integers(0, 10**4), st.integers(1, 1000), st.integers(0, 10**7))
def test_a_place_is_admitted_exactly_when_the_line_passed_it(
    seq: int, base: int, rate: int, us: int
) -> None:
    line = AdmissionLine(T0, base, rate)
    now = T0 + timedelta(microseconds=us)
    length = 10**6
    p = place(seq, line, now, length)
    admitted = line.admitted(now, length)
    assert (p.state is PlaceState.ADMITTED) == (seq <= admitted)
    if p.state is PlaceState.WAITING:
        assert p.ahead == seq - admitted - 1
        # when the ETA has passed, the line has passed the visitor
        assert place(seq, line, now + p.eta + timedelta(seconds=1), length).state is (
            PlaceState.ADMITTED
        )


@given(st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=50), st.integers(0, 60))
def test_the_lottery_is_the_same_for_the_same_seed(accounts: list[str], winners: int) -> None:
    first = draw(b"seed", accounts, winners)
    assert first == draw(b"seed", list(reversed(accounts)), winners)
    assert len(first) == min(winners, len(accounts))
    assert set(first) <= set(accounts)
    # one pass keeping the winners so far: what ranking every account gives
    ranked = sorted(accounts, key=lambda a: (rank_key(b"seed", a), a))
    assert first == ranked[:winners]
    assert draw(b"seed", iter(accounts), winners) == first  # a stream will do


def test_front_door_bounds_are_checked() -> None:
    for bad in (
        {"admit_per_second": 0},
        {"admit_per_second": 10**7},
        {"admission_seconds": 5},
        {"pow_bits": 29},
        {"unique": ("email",)},
        {"require_registration": True},
        {"lottery_factor": 2},
        {"registration_opens": T0},
    ):
        with pytest.raises(InvalidRequest):
            FrontDoor(**bad)  # type: ignore[arg-type]


def test_registration_closes_by_the_opening_and_survives_the_codec() -> None:
    event = sale_event()
    door = FrontDoor(
        registration_opens=CN_OPENS - timedelta(days=7),
        registration_closes=CN_OPENS,
        require_registration=True,
        unique=("phone",),
        lottery_factor=3,
        admit_per_second=200,
        pow_bits=8,
    )
    pooled = replace(event, front_door=door)
    assert event_from_dict(event_to_dict(pooled)) == pooled
    late = replace(door, registration_closes=CN_OPENS + timedelta(minutes=1))
    with pytest.raises(InvalidRequest):
        replace(event, front_door=late)


@given(st.integers(1, 10**6), st.floats(0, 10**5), st.integers(1, 60_000), st.integers(1, 10**7))
def test_an_adapted_rate_never_rises_when_slow_nor_falls_when_fast(
    rate: int, latency: float, target: int, ceiling: int
) -> None:
    new = adapt(rate, latency, target, ceiling)
    assert 1 <= new <= max(1, ceiling)
    if latency > target:
        assert new <= rate
    if latency < target / 2 and rate < ceiling:
        assert new > rate
