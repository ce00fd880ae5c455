"""Channels and pools in the domain: what an event declares, which pool a line is served
from, and what an update does to each pool's stock row."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lampo.domain.channels import ChannelSpec, split_stock_key, stock_key
from lampo.domain.codec import event_from_dict, event_to_dict
from lampo.domain.errors import InvalidRequest
from lampo.domain.event import plan_update
from lampo.domain.market import Channel, ChannelKind
from tests.factories import channel_event, sale_event

ids = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=12)


pooled = channel_event


@given(ids, ids)
def test_a_stock_key_names_one_sku_and_pool(sku: str, pool: str) -> None:
    if " " in sku or " " in pool:
        return
    assert split_stock_key(stock_key(sku, pool)) == (sku, pool)
    assert split_stock_key(stock_key(sku)) == (sku, "")


@given(st.integers(0, 60), st.integers(0, 60))
def test_pools_add_up_to_at_most_the_allocation(jd: int, stores: int) -> None:
    if jd + stores > 50:
        with pytest.raises(InvalidRequest) as refused:
            pooled(jd, stores)
        assert refused.value.field == "pools"
        return
    event = pooled(jd, stores)
    rows = event.stock_rows()
    assert rows[stock_key("phone-red", "jd")] == jd
    assert rows[stock_key("phone-red", "stores")] == stores
    assert rows["phone-red"] == 50 - jd - stores
    assert sum(rows.values()) == event.total_allocation


def test_the_shared_pool_cannot_be_reserved_by_name() -> None:
    base = sale_event()
    with pytest.raises(InvalidRequest):
        replace(base.offers["phone-red"], pools={"shared": 1})
    with pytest.raises(InvalidRequest):
        replace(base.offers["phone-red"], pools={"jd": -1})


def test_channels_name_what_the_event_has() -> None:
    event = pooled()
    with pytest.raises(InvalidRequest, match="no offer"):
        replace(event, channels={"x": ChannelSpec("x", ChannelKind.ONLINE, skus=("nope",))})
    with pytest.raises(InvalidRequest, match="unknown market"):
        replace(event, channels={"x": ChannelSpec("x", ChannelKind.ONLINE, markets=("FR",))})
    with pytest.raises(InvalidRequest, match="no offer reserves"):
        replace(event, channels={"x": ChannelSpec("x", ChannelKind.MARKETPLACE, pool="nope")})
    with pytest.raises(InvalidRequest, match="need channels"):
        replace(event, channels={})
    with pytest.raises(InvalidRequest):
        ChannelSpec("x", "shop")  # type: ignore[arg-type]


def test_each_channel_draws_on_its_pool_then_the_shared_one_when_the_offer_falls_back() -> None:
    event = pooled()
    jd = Channel(ChannelKind.MARKETPLACE, "jd")
    store = Channel(ChannelKind.STORE, "mi-home-42")
    assert event.pools_for(jd, "phone-red", "CN") == ("jd", "")
    assert event.pools_for(store, "phone-red", "CN") == ("stores", "")
    assert event.pools_for(Channel(), "phone-red", "IN") == ("",)
    assert event.pools_for(jd, "tv-55", "CN") == ("",)  # no jd pool of the TV
    strict = pooled(fallback=False)
    assert strict.pools_for(jd, "phone-red", "CN") == ("jd",)


def test_a_channel_the_event_does_not_sell_through_is_refused() -> None:
    event = pooled()
    for channel, sku, market in [
        (Channel(ChannelKind.MARKETPLACE, "amazon"), "phone-red", "CN"),
        (Channel(ChannelKind.MARKETPLACE, "tmall"), "phone-red", "CN"),  # sells TVs only
        (Channel(ChannelKind.STORE, "s1"), "phone-red", "IN"),  # stores in CN only
    ]:
        with pytest.raises(InvalidRequest) as refused:
            event.pools_for(channel, sku, market)
        assert refused.value.field == "channel"
    # an event that declares no channel sells through any, from the shared pool
    assert sale_event().pools_for(Channel(ChannelKind.STORE, "s1"), "phone-red", "IN") == ("",)


@given(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20), st.integers(50, 70))
def test_an_update_moves_each_pool_row_by_its_change(
    jd0: int, jd1: int, stores1: int, allocation: int
) -> None:
    old = pooled(jd=jd0, stores=5)
    new = pooled(jd=jd1, stores=stores1, allocation=allocation)
    change = plan_update(old, new)
    before, after = old.stock_rows(), new.stock_rows()
    for key in after:
        assert (
            before.get(key, 0) + change.deltas.get(key, 0) + change.added.get(key, 0)
            == (after[key])
        )
    assert sum(change.deltas.values()) == allocation - 50


def test_a_pool_dropped_from_an_offer_keeps_its_row_at_zero() -> None:
    old = pooled(jd=10, stores=5)
    base = old.offers["phone-red"]
    new = replace(
        old,
        offers={**old.offers, "phone-red": replace(base, pools={"jd": 10})},
        channels={k: v for k, v in old.channels.items() if k != "mi-home"},
    )
    change = plan_update(old, new)
    assert change.deltas == {stock_key("phone-red", "stores"): -5, "phone-red": 5}


def test_channels_and_pools_survive_the_codec() -> None:
    event = pooled()
    assert event_from_dict(event_to_dict(event)) == event
    plain = sale_event()
    assert "channels" not in event_to_dict(plain)  # stored definitions read the same


@given(
    st.dictionaries(
        st.sampled_from(["kind", "skus", "markets", "pool", "id"]),
        st.one_of(
            st.none(), st.integers(), st.text(max_size=5), st.lists(st.text(max_size=3), max_size=3)
        ),
    )
)
def test_a_malformed_channel_in_a_document_is_refused_by_field(raw: dict[str, object]) -> None:
    doc = event_to_dict(pooled())
    doc["channels"] = [raw]
    refusal: InvalidRequest | None = None
    try:
        event = event_from_dict(doc)
    except InvalidRequest as refused:
        refusal = refused
    if refusal is not None:
        assert refusal.field.startswith("channels")
    else:  # only a valid declaration gets through
        assert all(isinstance(c, ChannelSpec) for c in event.channels.values())
