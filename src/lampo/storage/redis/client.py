"""The Redis store's connection, keys and script calls: what every other part stands on.

One server: a blocking pool of up to 64 connections. A cluster: one ``RedisCluster``
client per cluster URL in a process, shared by its stores (``_cluster_client``). Every
key of an event carries the hash tag ``{event}`` (bucket b > 0: ``{event #b}``), so one
event's keys share a hash slot and every script touches one slot. A request of a writer
round is a ``_Req``; ``_run_reqs`` sends one script call per (script, event, bucket).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from lampo.domain.errors import InvalidRequest, Unavailable
from lampo.storage import urls
from lampo.storage.port import CorruptStore
from lampo.storage.redis.scripts import SHAS, Call, Direct, Scripts, run
from lampo.storage.urls import StorageUrl

_CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, RedisClusterException)

#: The layout of the keys this code reads and writes (lua/_lib.lua), kept in the key
#: ``<prefix>layout``. Layout 1 (before issue 14) kept a hold as nine fields with its
#: request as separator-ended text; layout 2 keeps only the fields that exist and the
#: request as JSON. A store of another layout is refused when it is opened.
LAYOUT = "2"


# One RedisCluster client per cluster URL in a process, shared by its stores and kept
# for the process's life (it is thread-safe): a client learns the cluster's slots and
# its command table when it starts, which costs more than hundreds of requests.
_CLUSTERS: dict[str, Any] = {}
_CLUSTERS_LOCK = threading.Lock()


def _cluster_client(url: str) -> Any:
    with _CLUSTERS_LOCK:
        client = _CLUSTERS.get(url)
        if client is None:
            client = RedisCluster.from_url(url, decode_responses=True, socket_timeout=10)
            _CLUSTERS[url] = client
        return client


class _Req:
    """One request of a writer round: its script call's arguments, later its answer."""

    __slots__ = (
        "answer",
        "args",
        "bucket",
        "customer",
        "event",
        "hold_id",
        "payment_id",
        "script",
        "tag",
        "wanted",
    )

    def __init__(self, script: str, event: str | None, args: list[Any], hold_id: str = "") -> None:
        self.script = script
        self.event = event  # None: looked up from hold_id by the round
        self.bucket = 0  # the event's stock bucket this request runs in
        self.tag = event or ""  # the hold index value: the event, or "<event>\x1f<bucket>"
        self.args = args
        self.hold_id = hold_id
        self.customer = ""  # reserve only: routes the request to the customer's bucket
        self.wanted: dict[str, int] = {}  # reserve only: units per stock key (per pool)
        self.payment_id = ""  # pay only
        self.answer: Any = None


class _Round:
    """The requests of one batch of callers, sent to Redis together by the writer."""

    __slots__ = ("reqs",)

    def __init__(self) -> None:
        self.reqs: list[_Req] = []

    def add(self, script: str, event: str | None, args: list[Any], hold_id: str = "") -> _Req:
        req = _Req(script, event, args, hold_id)
        self.reqs.append(req)
        return req


#: A unit of the writer's batch: it adds its requests to the round and returns the
#: function that turns their answers into its result once the round has run.
_Unit = Callable[[_Round], Callable[[], Any]]


def _answer(req: _Req) -> Any:
    if isinstance(req.answer, Exception):
        raise req.answer
    return req.answer


class RedisClient:
    """The connection to Redis (one server, or a cluster), the keys, the script calls."""

    def __init__(self, url: str | StorageUrl) -> None:
        checked = urls.checked(url, "redis", "redis+cluster")
        self.cluster = checked.backend.name == "redis+cluster"
        conn_url = checked.target
        prefix = checked.text("prefix")
        self.prefix = "" if prefix is None else prefix
        #: Most requests per writer round.
        self._max_batch = checked.number("max_batch")
        #: The stock buckets of each event this store sets up (1: one slot per event).
        self.buckets = checked.number("buckets")
        self._r: Any
        try:
            if self.cluster:
                self._r = _cluster_client(conn_url)
            else:
                # Blocking: a burst of readers waits for a connection rather than failing.
                pool = redis.BlockingConnectionPool.from_url(
                    conn_url,
                    decode_responses=True,
                    socket_timeout=10,
                    max_connections=64,
                    timeout=30,
                )
                self._r = redis.Redis(connection_pool=pool)
                try:
                    self._r.ping()
                except redis.ResponseError as exc:  # refused while connecting: the URL's
                    pool.disconnect()  # database number or credentials
                    raise InvalidRequest("storage", f"the redis server refuses it: {exc}") from None
            # The library of functions (Redis 7+) is loaded now; scripts by SHA on first
            # use: a NOSCRIPT answer loads them (see scripts.run).
            self._shas = dict(SHAS)
            self._scripts = Scripts(self._r)
            #: The writer's own connection (one server): see ``scripts.Direct``.
            self._direct = None if self.cluster else Direct(self._r.connection_pool)
        except (*_CONNECTION_ERRORS, ValueError) as exc:
            raise Unavailable(f"redis: {exc}") from None
        self._events = self.prefix + "events"
        self._closed = False
        #: Bucket count of each event known to exist (it never changes once set up).
        self._nbs: dict[str, int] = {}
        try:
            self._check_layout()
        except _CONNECTION_ERRORS as exc:
            raise Unavailable(f"redis: {exc}") from None

    def _check_layout(self) -> None:
        """Mark a store with no events as of ``LAYOUT``; refuse one of another layout
        (events written by an older lampo, with no mark) with ``CorruptStore``."""
        key = self.prefix + "layout"
        found = self._r.get(key)
        if found is None and not self._r.exists(self._events):
            self._r.set(key, LAYOUT, nx=True)
            found = self._r.get(key)
        if found != LAYOUT:
            if not self.cluster:
                self._r.close()
            layout = "1" if found is None else found
            raise CorruptStore(
                f"the redis store under prefix {self.prefix!r} was written in layout "
                f"{layout} (events without the key {key!r}); this lampo reads layout "
                f"{LAYOUT} only: finish its sales with the lampo that wrote them, or use "
                f"another prefix or database"
            )

    def _base(self, event: str, bucket: int = 0) -> str:
        if bucket == 0:
            return f"{self.prefix}{{{event}}}"
        return f"{self.prefix}{{{event} #{bucket}}}"  # event ids have no spaces: no clash

    def _index(self, hold_id: str) -> str:
        """The key that names a hold's event (outside the event's slot)."""
        return f"{self.prefix}hx:{hold_id}"

    def _payment_key(self, payment_id: str) -> str:
        """The key of a payment id: the hold it settled (outside every event's slot)."""
        return f"{self.prefix}px:{payment_id}"

    def _call(self, fn: Any, *args: Any) -> Any:
        if self._closed:
            raise Unavailable("storage is closed")
        try:
            return fn(*args)
        except _CONNECTION_ERRORS as exc:
            raise Unavailable(f"redis: {exc}") from None

    # -- script calls --------------------------------------------------------------------
    def _evalsha(self, calls: list[Call]) -> list[Any]:
        """Run script calls (FCALL, or EVALSHA before Redis 7), in one pipeline when
        there are several (``scripts.run``)."""
        return run(self._r, self._scripts, calls)

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """One script call outside the writer (setup, expiry)."""
        [answer] = self._call(self._evalsha, [(script, keys, args)])
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _run_reqs(self, reqs: list[_Req]) -> None:
        """One script call per (script, event, bucket), all in one pipeline."""
        if not reqs:
            return
        groups: dict[tuple[str, str, int], list[_Req]] = {}
        for req in reqs:
            assert req.event is not None
            groups.setdefault((req.script, req.event, req.bucket), []).append(req)
        calls: list[Call] = []
        for (script, event, bucket), group in groups.items():
            keys = [self._base(event, bucket)]
            if script == "reserve" and not self.cluster:
                keys += [self._index(req.hold_id) for req in group]
            elif script == "pay" and not self.cluster:
                keys += [self._payment_key(req.payment_id) for req in group]
            args: list[Any] = [group[0].tag if script == "reserve" else event]
            for req in group:
                args += req.args
            calls.append((script, keys, args))
        if self._direct is None:
            answers = self._evalsha(calls)
        else:  # the writer's rounds: its own connection
            answers = run(self._r, self._scripts, calls, self._direct.send)
        for group, answer in zip(groups.values(), answers, strict=True):
            if isinstance(answer, Exception):
                for req in group:
                    req.answer = answer
                continue
            for req, one in zip(group, answer, strict=True):
                req.answer = one

    def _bucket_counts(self, events: set[str]) -> dict[str, int]:
        """The bucket count of each event; 1 for an event not set up (yet)."""
        out = {e: self._nbs[e] for e in events if e in self._nbs}
        for event, n in self._probe(events - out.keys()).items():
            out[event] = n or 1
            if n is not None:  # an event's count never changes once it exists
                self._nbs[event] = n
        return out

    def _probe(self, events: set[str]) -> dict[str, int | None]:
        """The stored bucket count of each event, None for one not set up."""
        if not events:
            return {}
        todo = sorted(events)
        pipe = self._r.pipeline(transaction=False)
        for event in todo:
            pipe.get(self._base(event) + ":nb")
            pipe.exists(self._base(event) + ":def")
        found = pipe.execute()
        return {
            event: (int(nb) if nb else 1) if known else None
            for event, nb, known in zip(todo, found[::2], found[1::2], strict=True)
        }

    def _bucket_count(self, event: str) -> int:
        return self._bucket_counts({event})[event]
