"""The store registry and the retail records on Redis (issue 12), apart from the sale.

The registry is one hash, ``<prefix>{retail}:doc:stores`` (``version``, ``body``: its
CSV), replaced by one script that checks the version first, so of two writes that replace
one version one wins. A binding is a field of the hash ``<prefix>{retail}:bind:<space>``,
set with ``HSETNX`` (the first value stays) and read back. Every key carries the hash tag
``{retail}``, so on a cluster each call touches one slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lampo.domain.errors import RegistryChanged
from lampo.domain.stores import Store
from lampo.storage.port import (
    STORES_DOCUMENT,
    check_binding,
    stores_document,
    stores_from_document,
)
from lampo.storage.redis.client import RedisClient

# Replace a document if it is at ARGV[1]: {1, new version}, else {0, its version}.
_PUT_DOCUMENT = """
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if v ~= tonumber(ARGV[1]) then return {0, v} end
redis.call('HSET', KEYS[1], 'version', v + 1, 'body', ARGV[2])
return {1, v + 1}
"""


class Retail(RedisClient):
    """``stores``, ``put_stores``, ``bind``, ``bound`` and ``bindings`` of the port."""

    def _retail_key(self, suffix: str) -> str:
        return f"{self.prefix}{{retail}}:{suffix}"

    def stores(self) -> tuple[int, tuple[Store, ...]]:
        found: list[Any] = self._call(
            self._r.hmget, self._retail_key("doc:" + STORES_DOCUMENT), ["version", "body"]
        )
        version, body = found
        return stores_from_document(None if version is None else (int(version), body or ""))

    def put_stores(self, stores: Sequence[Store], replaces: int) -> int:
        text = stores_document(stores, replaces)
        key = self._retail_key("doc:" + STORES_DOCUMENT)
        done, version = self._call(self._r.eval, _PUT_DOCUMENT, 1, key, replaces, text)
        if not int(done):
            raise RegistryChanged(int(version), replaces)
        return int(version)

    def bind(self, space: str, key: str, value: str) -> str:
        check_binding(space, key, value)
        name = self._retail_key("bind:" + space)
        self._call(self._r.hsetnx, name, key, value)
        kept: str = self._call(self._r.hget, name, key)
        return kept

    def bound(self, space: str, key: str) -> str | None:
        found: str | None = self._call(self._r.hget, self._retail_key("bind:" + space), key)
        return found

    def bindings(self, space: str) -> dict[str, str]:
        found: dict[str, str] = self._call(self._r.hgetall, self._retail_key("bind:" + space))
        return dict(found)
