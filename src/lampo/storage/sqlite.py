"""``sqlite:///path.db``: the embedded default. One file, WAL, group commit.

See docs/sqlite-group-commit.md for the protocol and its crash points. The state, reads
and statements are shared with PostgreSQL (``storage/sql``); what is SQLite's own is here:
the file lock, the writer's transaction and its row cache, the schema's migrations through
``PRAGMA user_version`` (``sql/migrations.py``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from lampo.domain.channels import stock_key
from lampo.domain.errors import InvalidRequest, Unavailable
from lampo.domain.holds import Hold, StockLevel
from lampo.storage import urls
from lampo.storage._batcher import Batcher
from lampo.storage.port import KeyRef
from lampo.storage.sql.dialect import SQLITE
from lampo.storage.sql.migrations import migrate_sqlite, migrations
from lampo.storage.sql.state import SqlState
from lampo.storage.sql.storage import SqlStorage

if sys.platform != "win32":
    import fcntl

#: The schema version this lampo writes (``migrations/sqlite``).
SCHEMA_VERSION = max(v for v, _, _ in migrations("sqlite"))

#: Keys looked up by one statement of ``recorded`` (SQLite allows 32,766 parameters).
_KEYS_PER_READ = 500


class _CachedState(SqlState):
    """The shared state, caching holds and stock rows read or written, so paying a hold
    just placed costs no read. The caches are only as good as the file: ``begin()`` drops
    them when another connection (another process) has committed since, and ``forget()``
    after a rollback.

    Stock moves change the cached row only; ``flush()`` writes each changed row once, just
    before the transaction commits (a batch of 64 reservations of 10 SKUs: 10 ``UPDATE``s,
    not 64). This process holds the write lock from ``BEGIN IMMEDIATE`` to ``COMMIT``, so
    the cached row is the row, and its checks are the table's ``CHECK``s, made before.
    """

    CACHE_LIMIT = 200_000

    def __init__(self, conn: sqlite3.Connection, known_events: set[str]) -> None:
        super().__init__(conn.execute, SQLITE, known_events)
        self._conn = conn
        self._holds: dict[str, Hold] = {}
        self._stock: dict[tuple[str, str], StockLevel] = {}
        self._moved: set[tuple[str, str]] = set()  # stock rows changed since the flush
        self._data_version = -1

    def begin(self) -> None:
        version = self._x("PRAGMA data_version").fetchone()[0]
        if version != self._data_version or len(self._holds) > self.CACHE_LIMIT:
            self.forget()
            self._data_version = version

    def forget(self) -> None:
        self._holds.clear()
        self._stock.clear()
        self._moved.clear()
        self._known.clear()
        self._data_version = -1

    def flush(self) -> None:
        """Write the stock rows moved since the last flush (before ``COMMIT``)."""
        if self._moved:
            stock = self._stock
            self._conn.executemany(
                self._q.stock_write,
                [
                    (s.available, s.held, s.sold, event, key)
                    for event, key in self._moved
                    for s in (stock[(event, key)],)
                ],
            )
            self._moved.clear()

    def stock_set(self, event: str, level: StockLevel) -> None:
        super().stock_set(event, level)
        key = stock_key(level.sku, level.pool)
        self._stock[(event, key)] = level
        self._moved.discard((event, key))  # written whole just now

    def stock_get(self, event: str, key: str) -> StockLevel | None:
        cached = self._stock.get((event, key))
        if cached is not None:
            return cached
        level = super().stock_get(event, key)
        if level is not None:
            self._stock[(event, key)] = level
        return level

    def stock_move(self, event: str, key: str, available: int, held: int, sold: int) -> bool:
        level = self.stock_get(event, key)
        if level is None:
            return False
        a, h, s = level.available + available, level.held + held, level.sold + sold
        if a < 0 or h < 0 or s < 0:
            return False
        self._stock[(event, key)] = StockLevel(level.sku, level.allocation, a, h, s, level.pool)
        self._moved.add((event, key))
        return True

    def hold_get(self, hold_id: str) -> Hold | None:
        cached = self._holds.get(hold_id)
        if cached is not None:
            return cached
        hold = super().hold_get(hold_id)
        if hold is not None:
            self._holds[hold_id] = hold
        return hold

    def hold_id_taken(self, hold_id: str) -> bool:
        # The primary key refuses a duplicate inside the insert; the writer then rolls the
        # batch back and retries each request alone, so the duplicate fails by itself.
        return False

    def hold_insert(self, hold: Hold) -> None:
        try:
            super().hold_insert(hold)
        except sqlite3.IntegrityError:
            raise InvalidRequest("hold_id", f"{hold.id} exists already") from None
        self._holds[hold.id] = hold

    def hold_update(self, hold: Hold) -> None:
        self._holds[hold.id] = hold
        super().hold_update(hold)


class SqliteStorage(SqlStorage):
    """All state in one SQLite file; writes coalesced by one writer thread (group commit).

    ``options`` (from a ``sqlite://`` URL, checked by ``storage.urls``; default: each
    option's default): ``synchronous``: FULL (survives a power cut) or NORMAL (survives
    kill -9); ``max_batch``: most requests in one transaction; ``busy_timeout``: ms to wait
    for the write lock a process that is not lampo holds.

    Processes of lampo that share the file (several ``lampo serve`` workers, a sweep from
    the command line) take turns through an exclusive ``flock`` on ``<file>-lock``, taken
    around each transaction: the kernel wakes the next one as soon as the lock is free.
    Left to SQLite's own busy handler they would sleep and poll instead (up to 100 ms a
    turn), which put the p99 of two workers above one second.
    """

    dialect = SQLITE

    def __init__(self, path: str, options: Mapping[str, int | str | None] | None = None) -> None:
        chosen = {**urls.defaults("sqlite"), **(options or {})}  # checked by storage.urls
        self._max_batch = urls.option_int(chosen, "max_batch")
        self._busy = urls.option_int(chosen, "busy_timeout")
        sync = str(urls.option_str(chosen, "synchronous"))
        self.path = path
        self.synchronous = sync
        self._lock_fd = -1
        if sys.platform != "win32" and path != ":memory:":
            try:
                self._lock_fd = os.open(f"{path}-lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise InvalidRequest("storage", f"cannot open {path}-lock: {exc}") from None
        try:
            with self._file_turn():
                self._conn = self._connect()
                version = migrate_sqlite(self._conn, path)
        except BaseException as exc:
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
            if isinstance(exc, sqlite3.Error):
                raise InvalidRequest(
                    "storage", f"cannot open SQLite file {path!r}: {exc}"
                ) from None
            raise  # a refusal (a newer schema)
        assert version == SCHEMA_VERSION
        self._known: set[str] = set()
        self._state = _CachedState(self._conn, self._known)
        self._readers = threading.local()
        self._open_readers()
        self._batcher: Batcher[_CachedState] = Batcher(
            self._commit, self._max_batch, name="lampo-sqlite-writer", try_commit=self._try_commit
        )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {self._busy}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: hot B-tree pages stay in memory
        return conn

    # -- the writer -------------------------------------------------------------
    def _commit(self, units: list[Callable[[_CachedState], Any]]) -> list[tuple[Any, Any]]:
        """Run ``units`` in one transaction; on failure, each alone, so one bad request
        cannot fail its neighbours. Called by the batcher only, one batch at a time (its
        writer thread, or an event loop's thread for coroutines' batches), and one
        process at a time (the file lock)."""
        with self._file_turn():
            return self._transaction(units)

    def _try_commit(
        self, units: list[Callable[[_CachedState], Any]]
    ) -> list[tuple[Any, Any]] | None:
        """``_commit``, or None at once when another process holds the file lock."""
        with self._file_turn(wait=False) as mine:
            return self._transaction(units) if mine else None

    @contextlib.contextmanager
    def _file_turn(self, wait: bool = True) -> Iterator[bool]:
        """This process's turn to write the file (see the class's docstring); with
        ``wait=False``, False at once when another process has it."""
        if self._lock_fd < 0:
            yield True
            return
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _transaction(self, units: list[Callable[[_CachedState], Any]]) -> list[tuple[Any, Any]]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._state.begin()
            results = [unit(self._state) for unit in units]
            self._state.flush()
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            if len(units) > 1:
                return [self._transaction([unit])[0] for unit in units]
            return [(None, Unavailable(f"sqlite: {exc}"))]
        except BaseException as exc:  # a bug: let that caller see it, keep serving
            self._rollback()
            if len(units) > 1:
                return [self._transaction([unit])[0] for unit in units]
            return [(None, exc)]
        return [(r, None) for r in results]

    def _rollback(self) -> None:
        self._state.forget()
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # no transaction was open (BEGIN itself failed)

    # -- reads (their own connection per thread; WAL lets them run beside the writer) ----
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            if self._closed:
                raise Unavailable("storage is closed")
            conn = self._connect()
            self._readers.conn = conn
            self._keep_reader(conn)
        return conn

    # -- the port (the rest is SqlStorage's) --------------------------------------------
    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._reader().execute(query, params).fetchall()

    def recorded(self, keys: Sequence[KeyRef]) -> list[bool]:
        wanted = sorted({ref.key for ref in keys})
        found: set[str] = set()
        conn = self._reader()
        for start in range(0, len(wanted), _KEYS_PER_READ):
            part = wanted[start : start + _KEYS_PER_READ]
            marks = ",".join("?" * len(part))
            found.update(
                r[0] for r in conn.execute(f"SELECT key FROM idem WHERE key IN ({marks})", part)
            )
        return [ref.key in found for ref in keys]

    def _close_writer(self) -> None:
        self._conn.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)


__all__ = ["SqliteStorage"]
