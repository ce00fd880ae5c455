"""The store registry and the retail records in storage, on every backend: a registry is
replaced whole at the version it replaces (of two writes racing on one version, one
wins, the other is refused and changes nothing), and a binding keeps its first value."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest

from lampo.domain.errors import RegistryChanged
from lampo.domain.stores import Store, StoreKind
from lampo.storage.port import Storage
from tests.contract.conftest import Backend


def a_store(store_id: str, market: str = "CN", opened: date = date(2017, 4, 1)) -> Store:
    return Store(store_id, f"Mi Home {store_id}", StoreKind.OWN, market, "Beijing", opened)


def test_an_empty_registry_is_version_zero_with_no_store(store: Storage) -> None:
    assert store.stores() == (0, ())


def test_each_write_replaces_the_whole_registry_and_counts_a_version(store: Storage) -> None:
    first = (a_store("bj-1"), a_store("bj-2"))
    assert store.put_stores(first, replaces=0) == 1
    assert store.stores() == (1, first)
    second = (a_store("sh-1", opened=date(2017, 6, 30)),)
    assert store.put_stores(second, replaces=1) == 2
    assert store.stores() == (2, second)


def test_a_write_at_an_old_version_is_refused_and_changes_nothing(store: Storage) -> None:
    kept = (a_store("bj-1"),)
    store.put_stores(kept, replaces=0)
    with pytest.raises(RegistryChanged) as caught:
        store.put_stores((a_store("other"),), replaces=0)
    assert (caught.value.version, caught.value.replaces) == (1, 0)
    assert store.stores() == (1, kept)


@pytest.mark.parametrize("replaces", [0, 1])
def test_of_two_imports_racing_on_one_version_exactly_one_wins(
    backend: Backend, tmp_path: Path, replaces: int
) -> None:
    stores = backend.open_shared(tmp_path, 2)
    try:
        if replaces:
            stores[0].put_stores((a_store("seed"),), replaces=0)
        registries = [(a_store("left"),), (a_store("right"),)]
        barrier = threading.Barrier(2)
        outcome: list[int | RegistryChanged | None] = [None, None]

        def write(i: int) -> None:
            barrier.wait()
            try:
                outcome[i] = stores[i].put_stores(registries[i], replaces=replaces)
            except RegistryChanged as refusal:
                outcome[i] = refusal

        threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [i for i in range(2) if outcome[i] == replaces + 1]
        lost = [i for i in range(2) if isinstance(outcome[i], RegistryChanged)]
        assert len(won) == 1, outcome
        assert len(lost) == 1, outcome
        assert stores[1].stores() == (replaces + 1, registries[won[0]])
    finally:
        for s in {id(s): s for s in stores}.values():
            s.close()


def test_a_binding_keeps_its_first_value_for_good(store: Storage) -> None:
    assert store.bound("receipt", "bj-1 r-1") is None
    assert store.bind("receipt", "bj-1 r-1", "fest h1") == "fest h1"
    assert store.bind("receipt", "bj-1 r-1", "fest h2") == "fest h1"
    assert store.bound("receipt", "bj-1 r-1") == "fest h1"
    assert store.bound("return", "bj-1 r-1") is None  # spaces are apart
    store.bind("receipt", "bj-2 r-1", "fest h3")
    assert store.bindings("receipt") == {"bj-1 r-1": "fest h1", "bj-2 r-1": "fest h3"}
    assert store.bindings("nothing") == {}
