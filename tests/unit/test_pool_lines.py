"""A hold line's pool as storage writes and reads it: the SQL ``lines`` JSON and the Redis
hold body carry it as a fourth item, only for a reserved pool, so a line of the shared pool
is stored byte for byte as before pools, and a line of before reads as the shared pool's."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from lampo.domain.errors import SoldOut
from lampo.domain.holds import Hold, HoldLine, ReserveRequest
from lampo.domain.market import Channel
from lampo.storage.redis.codec import _encode, _hold_from_view
from lampo.storage.sql.dialect import POSTGRES, SQLITE
from tests.factories import NOW

#: Any text a pool might hold, quotes, backslashes and all (no NUL: no SQL text holds one).
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=12,
)
#: A SKU id as ``catalog.check_id`` lets one through: printable, no space; quotes and
#: backslashes included.
SKU_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp", "Cf", "Co", "Cn")),
    min_size=1,
    max_size=12,
).filter(str.isprintable)
LINES = st.lists(
    st.builds(HoldLine, SKU_TEXT, st.integers(1, 10**6), st.integers(0, 10**9), st.just("") | TEXT),
    min_size=1,
    max_size=5,
)


def hold_of(lines: list[HoldLine]) -> Hold:
    return Hold(
        "h1", "fest", "c1", "CN", Channel(), tuple(lines), "CNY", NOW, NOW + timedelta(minutes=15)
    )


@given(LINES)
def test_sql_lines_read_back_with_their_pools(lines: list[HoldLine]) -> None:
    for dialect in (SQLITE, POSTGRES):
        stored = dialect.lines_in(lines)
        parsed = json.loads(stored)
        assert [HoldLine(*item) for item in parsed] == lines
        assert [len(item) for item in parsed] == [4 if ln.pool else 3 for ln in lines]


@given(LINES)
def test_redis_hold_bodies_read_back_with_their_pools(lines: list[HoldLine]) -> None:
    hold = hold_of(lines)
    head = _encode(ReserveRequest("k1", hold, (None,) * len(lines)))
    assert isinstance(head, list)
    body = head[0].decode()
    assert _hold_from_view([body, "held", None, None, None, None]) == hold
    priced = json.loads(body)[8]
    assert [len(item) for item in priced] == [4 if ln.pool else 3 for ln in lines]


def test_lines_of_before_pools_read_as_the_shared_pool() -> None:
    before = '[["phone-red",2,79900],["tv-55",1,279900]]'  # as stored before pools
    lines = [HoldLine(*item) for item in SQLITE.lines_out(before)]
    assert [ln.pool for ln in lines] == ["", ""]
    assert SQLITE.lines_in(lines) == before  # and written the same again


def test_a_sold_out_shows_its_pool_only_for_a_reserved_pool() -> None:
    shared, jd = SoldOut("phone-red", 2, 1), SoldOut("phone-red", 2, 1, "jd")
    assert shared.detail() == {"sku": "phone-red", "requested": 2, "available": 1}
    assert jd.detail() == {"sku": "phone-red", "requested": 2, "available": 1, "pool": "jd"}
    assert str(jd) == "phone-red in pool jd: 2 requested, 1 available"
    assert str(shared) == "phone-red: 2 requested, 1 available"
    assert shared != jd
