"""The Lua scripts of the Redis store and the one way they are called.

Every transition is one Lua script (``storage/lua/*.lua``, each with ``lua/_lib.lua`` in
front), called by SHA (EVALSHA), several calls in one pipeline, and loaded again when the
server lost them (a restart, SCRIPT FLUSH: NOSCRIPT means the script did not run at all).

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
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError

from lampo.storage.port import CorruptStore

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


@functools.cache
def script_text(name: str) -> str:
    """The full text of one shipped script: the shared library, then the script."""
    folder = resources.files("lampo.storage") / "lua"
    lib = (folder / "_lib.lua").read_text(encoding="utf-8")
    return lib + "\n" + (folder / f"{name}.lua").read_text(encoding="utf-8")


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


#: The SHA1 of each script's full text, as the server names it.
SHAS = {name: _sha(script_text(name)) for name in SCRIPTS}


def evalsha(client: Any, shas: dict[str, str], calls: list[Call]) -> list[Any]:
    """Run ``(script, keys, args)`` calls, in one pipeline when there are several.

    One answer per call, an exception object for a call that failed. A script the
    server lost (a restart, SCRIPT FLUSH) is loaded again and its calls run again:
    NOSCRIPT means it did not run at all.
    """
    out: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in range(2):
        if len(todo) == 1:
            script, keys, args = calls[todo[0]]
            try:
                answers = [client.execute_command("EVALSHA", shas[script], len(keys), *keys, *args)]
            except redis.ResponseError as exc:
                answers = [exc]
        else:
            pipe = client.pipeline(transaction=False)
            for i in todo:
                script, keys, args = calls[i]
                pipe.execute_command("EVALSHA", shas[script], len(keys), *keys, *args)
            answers = pipe.execute(raise_on_error=False)
        lost = []
        for i, answer in zip(todo, answers, strict=True):
            if isinstance(answer, redis.ResponseError) and str(answer).startswith("CORRUPT"):
                # the script checked before its first write (lua/_lib.lua, "Guards")
                answer = CorruptStore(f"{calls[i][0]}.lua: {answer}; nothing written")
            out[i] = answer
            if isinstance(answer, NoScriptError):
                lost.append(i)
        if not lost or attempt:
            break
        for name in SCRIPTS:
            client.script_load(script_text(name))
        todo = lost
    return out
