"""Channels an event sells through, and the stock pools they draw on (docs/new-retail.md).

An event that declares no channel sells through any channel from one pool per SKU, as
before channels were declared. One that declares channels sells only through those: each
channel says its kind (``online``, ``marketplace``, ``store``), which SKUs and markets it
sells, and the pool it draws on. A pool is a part of an offer's allocation reserved for
the channels that name it; the rest of the allocation is the shared pool.

Inside storage a pool's stock is a row of its own, under its **stock key**: the SKU id for
the shared pool, ``"<sku> <pool>"`` for a reserved one. Ids never hold a space
(``catalog.check_id``), so a stock key names one (SKU, pool) pair and no SKU id is ever
read as one.
"""

from __future__ import annotations

from dataclasses import dataclass

from lampo.domain.bounds import show
from lampo.domain.catalog import check_id
from lampo.domain.errors import InvalidRequest
from lampo.domain.market import ChannelKind

#: The shared pool's name in documents; in a hold line and a stock key it is "".
SHARED = "shared"
#: The most channels one event declares (each one is checked on every sale through it).
MAX_CHANNELS = 1_000


def check_pool(field: str, name: object) -> str:
    """A reserved pool's name: an id, and not ``shared`` (the pool every offer has)."""
    check_id(field, name)
    assert isinstance(name, str)
    if name == SHARED:
        raise InvalidRequest(field, f"{SHARED!r} is the shared pool; a reserved pool needs a name")
    return name


def stock_key(sku: str, pool: str = "") -> str:
    """The storage key of ``sku``'s stock in ``pool`` ("": the shared pool)."""
    return f"{sku} {pool}" if pool else sku


def split_stock_key(key: str) -> tuple[str, str]:
    """``(sku, pool)`` of a stock key (pool "" for the shared pool)."""
    sku, _, pool = key.partition(" ")
    return sku, pool


def pool_label(pool: str) -> str:
    """A pool as people read it: ``shared`` for the shared pool."""
    return pool or SHARED


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A channel an event sells through. ``id``: the marketplace's id (``jd``), a store
    group's (``mi-home``: every store of the registry in ``markets``) or ``online``.
    ``skus``/``markets``: what it sells where (empty: every SKU, every market of the
    event). ``pool``: the reserved pool it draws on first ("": the shared pool)."""

    id: str
    kind: ChannelKind
    skus: tuple[str, ...] = ()
    markets: tuple[str, ...] = ()
    pool: str = ""

    def __post_init__(self) -> None:
        check_id("channels.id", self.id)
        if not isinstance(self.kind, ChannelKind):
            try:
                object.__setattr__(self, "kind", ChannelKind(self.kind))
            except ValueError:
                kinds = ", ".join(k.value for k in ChannelKind)
                raise InvalidRequest(
                    "channels.kind", f"{self.id}: {show(self.kind)} is not one of {kinds}"
                ) from None
        for name in ("skus", "markets"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                raise InvalidRequest(f"channels.{name}", f"{self.id}: must be a list of ids")
            for item in value:
                check_id(f"channels.{name}", item)
            if len(set(value)) != len(value):
                raise InvalidRequest(f"channels.{name}", f"{self.id}: an id is named twice")
        if self.pool:
            check_pool("channels.pool", self.pool)

    def sells(self, sku: str, market: str) -> bool:
        return (not self.skus or sku in self.skus) and (not self.markets or market in self.markets)
