"""The Lua scripts of the Redis store and the one way they are called.

Every transition is one Lua script (``storage/lua/*.lua``, each with ``lua/_lib.lua`` in
front). On Redis 7 and later they run as the functions of one library (``FCALL``), built
here from the same files and loaded once per server; before Redis 7 (no ``FUNCTION``
command, or a user the ACL refuses it) as scripts called by SHA (``EVALSHA``). Several
calls go in one pipeline. A server that lost them (a restart without persistence,
``SCRIPT FLUSH``, ``FUNCTION FLUSH``) has them loaded again and the calls run again: a
script or function that was not found did not run at all.

**Why a library.** A script's text is ``_lib.lua`` then the script: every call runs the
library's prologue again, defining each of its functions (a closure each) and its state.
Measured on one server (Redis 7.0, 3,000 calls of each, three rounds, two sittings): a
call of the library alone then ``return 1`` took 11.4-13.7 and 21.5-31.1 µs of server
time by ``EVALSHA``, against 5.1-7.3 and 8.0-8.2 µs as a function that only resets the
per-call state, and 1.1-1.8 and 3.1-4.3 µs for a bare ``return 1``. In instructions
(callgrind), a call's fixed part went from about 291,000 to 216,000.

The library (``library_text``) is built from the unedited files: each top-level
``local function`` of ``_lib.lua`` is defined once, when the library is loaded, and so
is each constant (a number, a quoted string); each other top-level ``local`` of it (the
key names of the call's event, the tables a call plans its writes in) is declared there
and assigned at the start of every call by ``lampo_reset``, in file order, so a call
starts from the same state as a script does;
each script becomes a function ``(KEYS, ARGV)`` of the library, its body unchanged.
``_lib.lua`` must keep to what the builder knows at its top level (comments, blank
lines, ``local function ... end`` and ``local`` statements, a statement's further lines
indented or closing a bracket); anything else fails the build (``ValueError``), and the
unit tests. What the library's functions share they reach as upvalues, at most 60 per
function in Redis's Lua 5.1 (a script reaches ``_lib.lua``'s names as locals, up to
200): ``reserve.lua`` uses 36 of ``_lib.lua``'s names and ``lampo_reset`` sets 29; past
60, ``FUNCTION LOAD`` refuses the library and every Redis contract test fails.

Why by hand and not through redis-py's ``Script`` objects (``register_script``): a
``Script`` queued in a pipeline makes ``Pipeline.execute`` send ``SCRIPT EXISTS`` for its
scripts first, one more round trip on every writer round that runs more than one script
call; measured on one server (redis-py 8.1, a pipeline of two script calls, four
alternating rounds of 3,000), ``Script`` objects ran 0.34 to 0.60 times as many pipelines
per second as the EVALSHA here. A single call costs the same either way (0.67 to 2.2,
noise). On a cluster the pipeline cannot load scripts at all (``ClusterPipeline`` queues
the EVALSHA and never sees NOSCRIPT), so the reload below would be needed anyway.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import redis
from redis.exceptions import DataError, NoScriptError

from lampo.storage.port import CorruptStore

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:  # part of lampo[redis]; without it, the connection's own packer
    from hiredis import pack_command as _pack
except ImportError:  # pragma: no cover
    _pack = None


#: One script call: (script name, keys, arguments).
Call = tuple[str, list[str], list[Any]]

SCRIPTS = (
    "setup",
    "reserve",
    "pay",
    "release",
    "expire",
    "refund",
    "holds",
    "totals",
    "lend",
    "borrow",
    "settle",
    "bucket",
    "update",
    "rows",
    "claim",
    "recorded",
)


def _read(name: str) -> str:
    return (resources.files("lampo.storage") / "lua" / name).read_text(encoding="utf-8")


@functools.cache
def script_text(name: str) -> str:
    """The full text of one shipped script: the shared library, then the script."""
    return _read("_lib.lua") + "\n" + _read(f"{name}.lua")


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


#: The SHA1 of each script's full text, as the server names it.
SHAS = {name: _sha(script_text(name)) for name in SCRIPTS}

# A top-level ``local`` statement of _lib.lua: its names, then what they are set to.
_LOCAL = re.compile(r"local\s+([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(?:=(.*))?\Z", re.S)
# A value that is the same on every call and cannot be changed by one: a number or a
# quoted string; then a comment, if any. (Not ``string.find``: a library being loaded
# may not read Lua's own libraries in Redis 7.0, only its functions may when called.)
_CONSTANT = r"(?:-?\d+(?:\.\d+)?|'(?:[^'\\\n]|\\.)*')"
_CONSTANTS = re.compile(rf"\s*{_CONSTANT}(?:\s*,\s*{_CONSTANT})*\s*(?:--[^\n]*)?")


def _split_lib(lib: str) -> tuple[str, str]:
    """``_lib.lua`` as (what a library defines once: its functions, its state's names
    declared; the statements that set its state, run at the start of every call)."""
    lines = lib.split("\n")
    once: list[str] = []
    each: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("local function "):
            j = i
            while j < len(lines) and not re.match(r"end\b", lines[j]):
                j += 1
            if j == len(lines):
                raise ValueError(f"_lib.lua line {i + 1}: a function with no 'end' at column 0")
            once += lines[i : j + 1]
            i = j + 1
        elif line.startswith("local "):
            j = i + 1
            while j < len(lines) and lines[j].strip() and lines[j][0] in " \t})]":
                j += 1
            found = _LOCAL.match("\n".join(lines[i:j]))
            if found is None:
                raise ValueError(f"_lib.lua line {i + 1}: a local statement it cannot read")
            names, value = found.group(1), found.group(2)
            if value is not None and _CONSTANTS.fullmatch(value):
                once += lines[i:j]  # set once: no call can change it
            else:
                once.append(f"local {names}")
                each.append(f"{names} = {'nil' if value is None else value.strip()}")
            i = j
        elif not line.strip() or line.startswith("--"):
            once.append(line)
            i += 1
        else:
            raise ValueError(f"_lib.lua line {i + 1}: a top-level statement it cannot place")
    return "\n".join(once), "\n".join(each)


@functools.cache
def library_text() -> str:
    """The Redis Functions library of every script (Redis 7+): see the module docstring."""
    once, each = _split_lib(_read("_lib.lua"))
    body = [once, "local function lampo_reset(KEYS)", each, "end"]
    for name in SCRIPTS:
        body += [f"local function lampo_{name}(KEYS, ARGV)", "lampo_reset(KEYS)"]
        body += [_read(f"{name}.lua"), "end"]
    text = "\n".join(body)
    lib = LIBRARY_PREFIX + _sha(text)[:16]  # another lampo's library beside it: another name
    register = [f"redis.register_function('{lib}_{name}', lampo_{name})" for name in SCRIPTS]
    return "\n".join([f"#!lua name={lib}", text, *register, ""])


#: The library's name starts with this, then a hash of its text.
LIBRARY_PREFIX = "lampo_"


def library_name() -> str:
    return library_text().split("\n", 1)[0].removeprefix("#!lua name=")


class Scripts:
    """How one client calls the scripts: ``FCALL`` of the library's functions when the
    server took the library (``functions``), else ``EVALSHA``."""

    def __init__(self, client: Any) -> None:
        self.functions = self.load(client)
        lib = library_name()
        self._fcall = {name: f"{lib}_{name}" for name in SCRIPTS}

    @staticmethod
    def load(client: Any) -> bool:
        """Load the library (``FUNCTION LOAD REPLACE``: the same text again changes
        nothing, and a cluster node that lacks it gets it); False when the server has no
        functions (before Redis 7) or the user may not load them."""
        try:
            client.function_load(library_text(), replace=True)
        except redis.ResponseError as exc:
            text = str(exc).lower()
            if "unknown command" in text or "noperm" in text or "no permissions" in text:
                return False
            raise
        return True

    def command(self, script: str) -> tuple[str, str]:
        if self.functions:
            return "FCALL", self._fcall[script]
        return "EVALSHA", SHAS[script]

    def lost(self, answer: Any) -> bool:
        """Whether an answer says the server did not have the script (it did not run)."""
        if self.functions:
            return (
                isinstance(answer, redis.ResponseError)
                and "function not found" in str(answer).lower()
            )
        return isinstance(answer, NoScriptError)

    def reload(self, client: Any) -> None:
        if self.functions:
            self.load(client)
        else:
            for name in SCRIPTS:
                client.script_load(script_text(name))


def run(client: Any, scripts: Scripts, calls: list[Call], send: Send | None = None) -> list[Any]:
    """Run ``(script, keys, args)`` calls, in one pipeline when there are several; through
    ``send`` (a ``Direct`` connection's) when given, else through ``client``.

    One answer per call, an exception object for a call that failed. A script the
    server lost (a restart, SCRIPT FLUSH, FUNCTION FLUSH) is loaded again and its calls
    run again: not found means it did not run at all.
    """
    out: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in range(2):
        commands = []
        for i in todo:
            script, keys, args = calls[i]
            commands.append((*scripts.command(script), len(keys), *keys, *args))
        if send is not None:
            answers = send(commands)
        elif len(commands) == 1:
            try:
                answers = [client.execute_command(*commands[0])]
            except redis.ResponseError as exc:
                answers = [exc]
        else:
            pipe = client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            answers = pipe.execute(raise_on_error=False)
        lost = []
        for i, answer in zip(todo, answers, strict=True):
            if isinstance(answer, redis.ResponseError) and str(answer).startswith("CORRUPT"):
                # the script checked before its first write (lua/_lib.lua, "Guards")
                answer = CorruptStore(f"{calls[i][0]}.lua: {answer}; nothing written")
            out[i] = answer
            if scripts.lost(answer):
                lost.append(i)
        if not lost or attempt:
            break
        scripts.reload(client)
        todo = lost
    return out


#: Sends commands in one write and reads one answer (or ResponseError) per command.
Send = Callable[[list[tuple[Any, ...]]], list[Any]]


class Direct:
    """The writer's own connection to one server, outside the pool, and the leanest way
    through redis-py to use it: the commands packed by hiredis in one call each, sent in
    one write, the answers read by the connection's (hiredis) parser.

    What redis-py's ``Pipeline`` and ``execute_command`` add around the same
    ``send_packed_command`` and ``read_response`` is left out: the pool's checkout and
    checkin, the pipeline object and its command stack, a pass over every argument
    looking for ``bytearray`` and ``memoryview`` before hiredis packs them (hiredis
    refuses what that pass converts, and lampo sends only ``str`` and ``int``), the
    response callbacks (none for ``FCALL``/``EVALSHA``), the metrics hooks. The same
    bytes go out (``tests/unit/test_redis_scripts.py``), and a lost connection is handled
    as the pool's connections handle it: the connection's own ``retry`` policy (as the
    pool made it: no retry), disconnected on failure, connected again on the next use.
    Measured (one process, a call of 32 reservations, 450 arguments, three rounds of
    2,000): 228-249 µs of client CPU per call against 275-327 through ``execute_command``
    and 341-372 through a one-call pipeline; of that, packing took 58-68 µs with
    ``hiredis.pack_command`` against 156-177 through ``Connection.pack_commands``.

    One thread at a time: the writer's rounds, which take turns (``_batcher``). Made by
    the store's pool (``BlockingConnectionPool.make_connection``), so the pool's
    ``disconnect`` at the store's close closes it too.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._conn: Any = None

    def send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._pool.make_connection()
        if _pack is None:  # pragma: no cover
            packed = conn.pack_commands(commands)
        else:
            try:
                packed = [_pack(command) for command in commands]
            except TypeError as exc:  # as redis-py reports it
                raise DataError(str(exc)) from None

        def once() -> list[Any]:
            _ready(conn)
            conn.send_packed_command(packed)
            answers: list[Any] = []
            try:
                for _ in commands:
                    try:
                        answers.append(conn.read_response())
                    except redis.ResponseError as exc:
                        answers.append(exc)
            except BaseException:
                conn.disconnect()  # never leave answers unread on a reused connection
                raise
            return answers

        answers: list[Any] = conn.retry.call_with_retry(once, lambda _error: conn.disconnect())
        return answers


def _ready(conn: Any) -> None:
    """What the pool does to a connection it hands out (``ConnectionPool.get_connection``):
    connected, and with nothing to read; one the server closed while it was idle (a
    restart, ``CLIENT KILL``, a timeout) is connected again, so the call goes through."""
    conn.connect()
    try:
        if conn.can_read():
            raise redis.ConnectionError("Connection has data")
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        conn.disconnect()
        conn.connect()
        if conn.can_read():
            raise redis.ConnectionError("Connection not ready") from None
