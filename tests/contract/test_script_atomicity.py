"""No Redis script can be left half-done: each checks everything that can fail before its
first write (lua/_lib.lua, "Guards"; docs/architecture.md, "Atomicity of scripts").

Redis runs a script alone but does not roll it back: an error halfway leaves what was
written before it. So for every script, through a real Redis, these tests put something
in the script's way on purpose and check the rule: the script either fails and changes
nothing at all, or (when it simply overwrites what was put there) does exactly what it
does on a sound store.

What to put in the way is not listed by hand: each script is first run on a sound store,
and every key of the store and every hash field the run changed is then broken in turn,
in a fresh copy of that store: a key of another type, a field that is missing, not an
integer, or one step from the end of the 64-bit range in the direction the run moves it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from lampo.domain.catalog import Sku
from lampo.domain.errors import LampoError
from lampo.domain.event import Offer
from lampo.domain.holds import (
    Hold,
    HoldLine,
    PayRequest,
    RefundRequest,
    ReleaseRequest,
    ReserveRequest,
)
from lampo.domain.market import Channel
from lampo.domain.money import Money
from lampo.storage.combined import RedisPostgresStorage
from lampo.storage.port import CorruptStore
from lampo.storage.redis import RedisStorage
from tests.contract._servers import REDIS as REDIS_SERVER
from tests.contract.conftest import REDIS, REDIS_BUCKETS, REDIS_POSTGRES
from tests.factories import NOW, sale_event

pytestmark = [pytest.mark.redis, pytest.mark.timeout(600)]

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)

EVENT = sale_event(
    "atom",
    stock={"phone-red": 10, "tv-55": 4},
    sku_limit={"phone-red": 3, "tv-55": None},
    event_limit=5,
    hold_seconds=600,
)
#: The same event, updated: more phones, fewer TVs, a new SKU.
UPDATED = replace(
    EVENT,
    skus={**EVENT.skus, "phone-blue": Sku("phone-blue", "phone-product", "Blue", "phone")},
    offers={
        **EVENT.offers,
        "phone-red": replace(EVENT.offers["phone-red"], allocation=15),
        "tv-55": replace(EVENT.offers["tv-55"], allocation=2),
        "phone-blue": Offer("phone-blue", 7, {"CN": Money(99_900, "CNY")}),
    },
)


def hold(hold_id: str, customer: str) -> Hold:
    lines = (HoldLine("phone-red", 2, 79_900), HoldLine("tv-55", 1, 179_900))
    expires = NOW + timedelta(seconds=EVENT.hold_seconds)
    return Hold(hold_id, EVENT.id, customer, "CN", Channel(), lines, "CNY", NOW, expires)


def reserve(store: RedisStorage, hold_id: str, customer: str) -> list[Any]:
    request = ReserveRequest(f"key-{hold_id}", hold(hold_id, customer), (3, None), 5)
    return store.reserve([request])


def pay(store: RedisStorage, hold_id: str) -> list[Any]:
    return store.pay([PayRequest(hold_id, f"pay-{hold_id}", NOW + timedelta(seconds=1))])


# -- each script, called once on a store made ready for it -----------------------------------


@dataclass(frozen=True)
class Case:
    """``prepare`` makes a fresh store ready; ``call`` runs the script once (its result:
    whatever the port or the script answers)."""

    script: str
    bucketed: bool
    prepare: Callable[[RedisStorage], None]
    call: Callable[[RedisStorage], Any]
    #: keys the script sets to a value it decides on (not a counter it moves): they get
    #: no value at the edge of the range, only values of the wrong kind
    decided: tuple[str, ...] = ()


def setup_only(store: RedisStorage) -> None:
    store.setup(EVENT)


def one_hold(store: RedisStorage) -> None:
    store.setup(EVENT)
    reserve(store, "h0", "c0")  # an earlier hold: counters and rows already there
    reserve(store, "h1", "c1")


def one_due(store: RedisStorage) -> None:
    """h1 is due at NOW + 601 s, h0 (placed a minute later) is not."""
    store.setup(EVENT)
    later = hold("h0", "c0")
    minute = timedelta(minutes=1)
    later = replace(later, created_at=NOW + minute, expires_at=later.expires_at + minute)
    store.reserve([ReserveRequest("key-h0", later, (3, None), 5)])
    reserve(store, "h1", "c1")


def two_orders(store: RedisStorage) -> None:
    one_hold(store)
    pay(store, "h0")  # an earlier order: the totals' rows are there
    pay(store, "h1")


def lent(store: RedisStorage) -> None:
    store.setup(EVENT)
    store._run("lend", [store._base(EVENT.id, 0)], ["t1", 1, "phone-red", 2])


def borrowed(store: RedisStorage) -> None:
    lent(store)
    store._run("borrow", [store._base(EVENT.id, 1)], ["t1", "phone-red", 2])


CASES = [
    Case("setup", False, lambda store: None, lambda store: store.setup(EVENT)),
    Case("reserve", False, one_hold, lambda store: reserve(store, "h2", "c2")),
    Case("pay", False, one_hold, lambda store: pay(store, "h1")),
    Case(
        "release",
        False,
        one_hold,
        lambda store: store.release([ReleaseRequest("h1", NOW + timedelta(seconds=1))]),
    ),
    Case(
        "refund",
        False,
        two_orders,
        lambda store: store.refund([RefundRequest("h1", NOW + timedelta(seconds=2))]),
    ),
    Case(
        "expire",
        False,
        one_due,
        lambda store: store.expire_due(EVENT.id, NOW + timedelta(seconds=601)),
    ),
    Case("update", False, one_hold, lambda store: store.update(UPDATED)),
    Case(
        "lend",
        True,
        setup_only,
        lambda store: store._run("lend", [store._base(EVENT.id, 0)], ["t1", 1, "phone-red", 2]),
    ),
    Case(
        "borrow",
        True,
        lent,
        lambda store: store._run("borrow", [store._base(EVENT.id, 1)], ["t1", "phone-red", 2]),
    ),
    Case(
        "settle",
        True,
        borrowed,
        lambda store: store._run("settle", [store._base(EVENT.id, 0)], ["t1"]),
    ),
    Case(
        "rows",
        True,
        setup_only,
        lambda store: store._run("rows", [store._base(EVENT.id, 1)], ["7", "{}", 1, "phone-blue"]),
        decided=(":dv",),  # a newer version there: only the rows are written, by design
    ),
    # read-only scripts: nothing to leave half-done, and the tests show they write nothing
    Case(
        "holds",
        False,
        two_orders,
        lambda store: store._run("holds", [store._base(EVENT.id)], ["0", 100]),
    ),
    Case(
        "totals", False, two_orders, lambda store: store._run("totals", [store._base(EVENT.id)], [])
    ),
    Case("bucket", True, lent, lambda store: store._run("bucket", [store._base(EVENT.id, 0)], [])),
]


# -- the store's whole content, and the ways to break it -------------------------------------

Snapshot = dict[str, tuple[str, Any]]


class Lab:
    """A store and a raw client on its key prefix: wipe, snapshot, break."""

    def __init__(self, store: RedisStorage) -> None:
        self.store = store
        self.r: Any = store._r
        self.raw: Any = redis.Redis.from_url(REDIS_SERVER)  # bytes, for DUMP and RESTORE
        self.prefix = store.prefix
        self.prepared: Case | None = None
        self.dumps: dict[str, bytes] = {}

    def keys(self) -> list[str]:
        return sorted(self.r.scan_iter(match=self.prefix + "*", count=1000))

    def wipe(self) -> None:
        keys = self.keys()
        if keys:
            self.r.delete(*keys)
        self.store._nbs.clear()  # the bucket count it remembers of the events it saw
        self.prepared = None

    def snapshot(self) -> Snapshot:
        out: Snapshot = {}
        for key in self.keys():
            kind = self.r.type(key)
            value: Any
            if kind == "string":
                value = self.r.get(key)
            elif kind == "hash":
                value = self.r.hgetall(key)
            elif kind == "set":
                value = sorted(self.r.smembers(key))
            elif kind == "zset":
                value = self.r.zrange(key, 0, -1, withscores=True)
            else:
                value = self.r.lrange(key, 0, -1)
            out[key[len(self.prefix) :]] = (kind, value)
        return out

    def fresh(self, case: Case) -> None:
        """The store as ``case.prepare`` leaves it: prepared once, then restored from a
        dump of every key (much quicker than preparing it again)."""
        if self.prepared is not case:
            self.wipe()
            case.prepare(self.store)
            self.dumps = {key: self.raw.dump(key) for key in self.keys()}
            self.prepared = case
            return
        pipe = self.raw.pipeline(transaction=True)
        stale = self.keys()
        if stale:
            pipe.delete(*stale)
        for key, payload in self.dumps.items():
            pipe.restore(key, 0, payload, replace=True)
        pipe.execute()


@dataclass(frozen=True)
class Breakage:
    """What to do to one key (``field`` empty) or one hash field before the call."""

    key: str  # without the prefix
    field: str
    how: str  # "type", "missing", or the value to write

    def apply(self, lab: Lab, kind_before: str | None) -> None:
        key = lab.prefix + self.key
        if self.how == "type":  # the key replaced by one of another type
            lab.r.delete(key)
            if kind_before == "string":
                lab.r.hset(key, "x", "1")
            else:
                lab.r.set(key, "x")
        elif self.how == "missing":
            lab.r.hdel(key, self.field)
        elif self.field:
            lab.r.hset(key, self.field, self.how)
        else:
            lab.r.set(key, self.how)


#: Values that are no integer Redis or the guards take.
NOT_INTEGERS = ["x", "007", str(INT64_MAX + 1)]
#: Fields only Python reads (the scripts store and return them as they are).
OPAQUE = {"b"}


def as_int(value: Any) -> int | None:
    try:
        return int(value) if str(int(value)) == value else None
    except (TypeError, ValueError):
        return None


def breakages(before: Snapshot, after: Snapshot, decided: tuple[str, ...]) -> list[Breakage]:
    """Every key of either snapshot broken by type; every changed hash field (and every
    changed counter string) missing, not an integer, and at the edge of the range in the
    direction the sound run moved it (but the ``decided`` keys)."""
    out = [Breakage(key, "", "type") for key in sorted(before.keys() | after.keys())]
    for key in sorted(before.keys() | after.keys()):
        kind = (after.get(key) or before[key])[0]
        was = before.get(key, (kind, {} if kind == "hash" else None))[1]
        now = after.get(key, (kind, {} if kind == "hash" else None))[1]
        if kind == "hash":
            pairs = [(f, was.get(f), now.get(f)) for f in sorted(was.keys() | now.keys())]
        elif kind == "string":
            pairs = [("", was, now)]
        else:
            continue
        for field, old, new in pairs:
            if old == new or field in OPAQUE:
                continue
            if field and old is not None:
                out.append(Breakage(key, field, "missing"))
            a, b = as_int(old if old is not None else "0"), as_int(new)
            if a is None or b is None:
                continue
            out += [Breakage(key, field, text) for text in NOT_INTEGERS]
            if key.endswith(decided):
                continue
            moved = b - a  # one step beyond the end of the range, then at its very end
            beyond = INT64_MAX - moved + 1 if moved > 0 else INT64_MIN - moved - 1
            out.append(Breakage(key, field, str(beyond)))
            out.append(Breakage(key, field, str(INT64_MAX if moved > 0 else INT64_MIN)))
    return out


def failed(result: Any) -> bool:
    """Whether a call's result is a refusal (a LampoError among the port's results)."""
    return isinstance(result, list) and any(isinstance(r, LampoError) for r in result)


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, Lab]]:
    tmp: Path = tmp_path_factory.mktemp("atomicity")
    plain = REDIS.open(tmp)
    bucketed = REDIS_BUCKETS.open(tmp)
    assert isinstance(plain, RedisStorage)
    assert isinstance(bucketed, RedisStorage)
    labs = {False: Lab(plain), True: Lab(bucketed)}
    try:
        yield labs
    finally:
        for lab in labs.values():
            lab.wipe()
            lab.raw.close()
            lab.store.close()


@pytest.mark.parametrize("case", CASES, ids=[c.script for c in CASES])
def test_a_script_with_anything_in_its_way_fails_whole_or_does_its_whole_work(
    labs: dict[bool, Lab], case: Case
) -> None:
    lab = labs[case.bucketed]
    lab.fresh(case)
    before = lab.snapshot()
    sound = case.call(lab.store)
    assert not failed(sound), sound
    after = lab.snapshot()
    if case.script in ("holds", "totals", "bucket"):
        assert after == before  # a read writes nothing
    tried = refusals = 0
    for breakage in breakages(before, after, case.decided):
        lab.fresh(case)
        breakage.apply(lab, before.get(breakage.key, after.get(breakage.key, ("none", None)))[0])
        broken = lab.snapshot()
        try:
            result: Any = case.call(lab.store)
            refused = failed(result)
        except Exception:  # a script error, a guard's CORRUPT, a refusal raised
            refused = True
        tried += 1
        if refused:
            refusals += 1
            assert lab.snapshot() == broken, f"{case.script}: {breakage} left a change behind"
        else:  # nothing done (a no-op answer), or the sound run's work done whole
            done = lab.snapshot()
            untouched = before.get(breakage.key) == after.get(breakage.key)
            whole = {**after, breakage.key: broken[breakage.key]} if untouched else after
            assert done in (broken, whole), f"{case.script}: {breakage} left part of its work"
    assert tried > 0
    if case.script not in ("holds", "totals", "bucket"):
        assert refusals > 0  # the breakages did stand in the script's way


# -- a batch: each request is whole or untouched, and a broken one is no refusal -------------


def test_a_broken_request_in_a_batch_changes_nothing_and_leaves_its_neighbours_whole(
    labs: dict[bool, Lab],
) -> None:
    lab = labs[False]
    lab.wipe()
    one_hold(lab.store)
    lab.r.hset(lab.prefix + "{atom}:h:h1", "d", "garbage")  # h1 can no longer be paid whole
    base = lab.store._base(EVENT.id)
    paid_at = NOW + timedelta(seconds=1)
    args: list[Any] = [EVENT.id]
    for hold_id in ("h0", "h1"):
        args += [hold_id, f"pay-{hold_id}", 1428472801000000, paid_at.isoformat(), "", ""]
    before = lab.snapshot()

    first, second = lab.store._run("pay", [base], args)

    assert first[0] == "ok"
    assert second[0] == "corrupt"
    after = lab.snapshot()
    assert after["{atom}:h:h1"] == before["{atom}:h:h1"]
    assert after["{atom}:h:h0"][1]["s"] == "paid"
    sold = {k: v for k, v in after["{atom}:stock"][1].items() if k.startswith("s:")}
    assert sold == {"s:phone-red": "2", "s:tv-55": "1"}  # h0's units only


def test_a_broken_store_is_answered_as_a_fault_of_the_store_not_a_refusal(
    labs: dict[bool, Lab],
) -> None:
    lab = labs[False]
    lab.wipe()
    one_hold(lab.store)
    lab.r.hset(lab.prefix + "{atom}:stock", "s:tv-55", "x")
    before = lab.snapshot()
    with pytest.raises(CorruptStore, match="s:tv-55"):
        pay(lab.store, "h1")
    assert lab.snapshot() == before
    lab.r.hset(lab.prefix + "{atom}:h:h1", "d", "[1]")
    before = lab.snapshot()
    with pytest.raises(CorruptStore, match="h1"):  # not LampoError: no 4xx, no 503
        lab.store.expire_due(EVENT.id, NOW + timedelta(seconds=601))
    assert lab.snapshot()["{atom}:h:h1"] == before["{atom}:h:h1"]
    assert lab.snapshot()["{atom}:h:h0"][1]["s"] == "expired"  # h0 expired whole


@pytest.mark.redis_postgres
def test_the_combined_backend_answers_a_broken_live_store_as_a_fault_not_unavailable(
    tmp_path: Path,
) -> None:
    store = REDIS_POSTGRES.open(tmp_path)
    try:
        assert isinstance(store, RedisPostgresStorage)
        store.setup(EVENT)
        reserve(store.live, "h1", "c1")
        live = Lab(store.live)
        live.r.hset(live.prefix + "{atom}:lu", "tv-55\x1fCN\x1fonline\x1f\x1f", INT64_MAX)
        with pytest.raises(CorruptStore):
            pay(store, "h1")
        assert store.ledger.hold("h1") is None  # nothing recorded
        assert store.live.hold("h1").state.value == "held"  # type: ignore[union-attr]
    finally:
        store.close()
