"""The pure rules of stock buckets: routing, shares, and the plan of moves."""

from __future__ import annotations

import zlib
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lampo.domain.errors import InvalidRequest
from lampo.storage import urls
from lampo.storage._buckets import MAX_BUCKETS, bucket_of, plan_moves, shares


def test_a_customer_always_lands_in_the_same_bucket() -> None:
    # CRC-32 of the UTF-8 id: the same in every process, unlike Python's salted hash().
    assert bucket_of("alice", 4) == zlib.crc32(b"alice") % 4 == bucket_of("alice", 4)
    assert bucket_of("alice", 1) == 0
    assert {bucket_of(f"c{i}", 4) for i in range(100)} == {0, 1, 2, 3}


@given(st.integers(0, 10**9), st.integers(1, MAX_BUCKETS))
def test_shares_sum_exactly_to_the_allocation(allocation: int, buckets: int) -> None:
    parts = shares(allocation, buckets)
    assert len(parts) == buckets
    assert sum(parts) == allocation
    assert max(parts) - min(parts) <= 1


@pytest.mark.parametrize("text", ["0", "-1", "65", "abc", "", "1.5", "\u0663", " 2"])
def test_a_bad_bucket_count_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match="buckets") as caught:
        urls.parse(f"redis://127.0.0.1:6379/0?buckets={quote(text)}")
    assert caught.value.field == "buckets"


def test_a_short_bucket_borrows_half_of_the_richest_sibling_and_at_least_its_need() -> None:
    available = [{"p": 0}, {"p": 10}, {"p": 4}]
    assert plan_moves(available, 0, {"p": 1}) == [(1, "p", 5)]
    assert available == [{"p": 4}, {"p": 5}, {"p": 4}]  # the request's unit is taken too
    assert plan_moves(available, 2, {"p": 12}) == [(1, "p", 5), (0, "p", 3)]
    assert available == [{"p": 1}, {"p": 0}, {"p": 0}]


def test_no_plan_when_the_buckets_together_hold_too_few_and_nothing_changes() -> None:
    available = [{"p": 1, "q": 0}, {"p": 1, "q": 5}]
    assert plan_moves(available, 0, {"p": 3, "q": 1}) is None
    assert available == [{"p": 1, "q": 0}, {"p": 1, "q": 5}]


@given(
    st.lists(st.integers(0, 20), min_size=2, max_size=6),
    st.integers(0, 5),
    st.integers(1, 30),
)
def test_a_plan_conserves_units_and_covers_the_request(
    stock: list[int], to: int, wanted: int
) -> None:
    to %= len(stock)
    available = [{"p": v} for v in stock]
    plan = plan_moves(available, to, {"p": wanted})
    if sum(stock) < wanted:
        assert plan is None
        return
    assert plan is not None
    assert sum(a["p"] for a in available) == sum(stock) - wanted
    assert all(a["p"] >= 0 for a in available)
    assert stock[to] + sum(k for _, _, k in plan) >= wanted
    assert all(frm != to and k > 0 for frm, _, k in plan)
