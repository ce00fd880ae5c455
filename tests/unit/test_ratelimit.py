"""Rate limits: a token bucket per key, kept as GCRA in a table that the workers of one
``lampo serve`` share (a file each maps), so a buyer has one budget across workers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lampo.web.problems import RateLimited
from lampo.web.ratelimit import RateLimiter, shared_table

T0 = 1_000.0


def passes(limiter: RateLimiter, key: str, now: float) -> bool:
    try:
        limiter.take(key, now)
    except RateLimited:
        return False
    return True


def test_a_burst_passes_then_one_request_per_interval() -> None:
    limiter = RateLimiter("buyer", rate=2.0, burst=3)
    assert [passes(limiter, "b1", T0) for _ in range(4)] == [True, True, True, False]
    with pytest.raises(RateLimited) as refused:
        limiter.take("b1", T0 + 0.1)
    assert refused.value.retry_after == pytest.approx(0.4)
    assert passes(limiter, "b1", T0 + 0.5)
    assert not passes(limiter, "b1", T0 + 0.6)
    assert passes(limiter, "b2", T0)  # another key has its own bucket


def test_refusals_count_nothing() -> None:
    limiter = RateLimiter("buyer", rate=1.0, burst=1)
    assert passes(limiter, "b1", T0)
    assert not any(passes(limiter, "b1", T0 + 0.1 * i) for i in range(1, 10))
    assert passes(limiter, "b1", T0 + 1.0)


def test_a_rate_of_zero_lets_everything_through() -> None:
    limiter = RateLimiter("buyer", rate=0, burst=1)
    assert all(passes(limiter, "b1", T0) for _ in range(1000))


class TokenBucket:
    """The reference: tokens refill at ``rate`` up to ``burst``; a request takes one."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.state: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float) -> bool:
        tokens, since = self.state.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - since) * self.rate)
        if tokens < 1.0 - 1e-9:
            self.state[key] = (tokens, now)
            return False
        self.state[key] = (tokens - 1.0, now)
        return True


@given(
    rate=st.sampled_from([0.5, 1.0, 3.0, 20.0]),
    burst=st.integers(1, 5),
    steps=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([0, 0, 0.01, 0.2, 1, 7])),
        max_size=60,
    ),
)
def test_the_limiter_decides_as_a_token_bucket(
    rate: float, burst: int, steps: list[tuple[str, float]]
) -> None:
    limiter = RateLimiter("buyer", rate, burst)
    reference = TokenBucket(rate, burst)
    now = T0
    for key, dt in steps:
        now += dt
        assert passes(limiter, key, now) == reference.take(key, now), (key, now)


def test_limiters_over_one_file_share_each_key_s_budget(tmp_path: Path) -> None:
    path = tmp_path / "ratelimit-buyer"
    first = RateLimiter("buyer", 0.01, 3, shared_table(path, 64), slots=64)
    second = RateLimiter("buyer", 0.01, 3, shared_table(path, 64), slots=64)
    assert passes(first, "b1", T0)
    assert passes(second, "b1", T0)
    assert passes(first, "b1", T0)
    assert not passes(second, "b1", T0)
    assert passes(second, "b2", T0)


def _spend(path: str, key: str, tries: int, out: multiprocessing.Queue[int]) -> None:
    limiter = RateLimiter("buyer", 0.01, 5, shared_table(Path(path)))
    out.put(sum(passes(limiter, key, T0) for _ in range(tries)))


def test_processes_mapping_one_table_each_see_the_others_requests(tmp_path: Path) -> None:
    """Four processes one after the other spend one key's budget of 5 between them; four
    more at once spend four other keys' budgets, and no key disturbs another's."""
    ctx = multiprocessing.get_context("spawn")
    path = str(tmp_path / "ratelimit-buyer")
    out: multiprocessing.Queue[int] = ctx.Queue()
    spent = []
    for _ in range(4):
        child = ctx.Process(target=_spend, args=(path, "shared", 2, out))
        child.start()
        spent.append(out.get(timeout=60))
        child.join()
    assert spent == [2, 2, 1, 0]
    children = [ctx.Process(target=_spend, args=(path, f"own-{i}", 8, out)) for i in range(4)]
    for child in children:
        child.start()
    assert sorted(out.get(timeout=60) for _ in children) == [5, 5, 5, 5]
    for child in children:
        child.join()


def test_a_key_pushed_out_of_its_slots_starts_again_with_a_full_bucket() -> None:
    limiter = RateLimiter("buyer", 1.0, 1, slots=2)  # one pair of slots for every key
    assert passes(limiter, "a", T0)
    assert passes(limiter, "b", T0 + 0.1)
    assert not passes(limiter, "a", T0 + 0.2)  # both still in their slots
    assert passes(limiter, "c", T0 + 0.3)  # takes a's slot, idle longer
    assert passes(limiter, "a", T0 + 0.4)  # a was forgotten: lenient, never stricter
