"""``redis://host:port/db`` and ``redis+cluster://host:port``: the live stock in Redis.

Every transition is one Lua script (``lua/*.lua``, each with ``lua/_lib.lua`` in front),
loaded by SHA (EVALSHA; loaded again after a server restart). Redis runs a script alone,
so each request in it is checked in full and written with nothing in between; a refusal
writes nothing. Redis does not roll a failing script back, so a script also checks
everything its writes could fail on before its first write (``_lib.lua``, "Guards"): a
key of another type, a field missing or not an integer, a counter at the end of the 64-bit
range is answered ``CorruptStore`` for that request, having written nothing. Every key
of an event carries the hash tag ``{event}``, so one event's keys share a hash slot and
every script touches one slot: the same scripts run on a Redis Cluster.

The package's modules, each standing on the ones after it:

- ``store``: ``RedisStorage``, opened and closed;
- ``transitions``: reserve, pay, release, refund, expire, through the writer's rounds
  (group commit);
- ``cluster``: the hold index and payment ids, whose keys lie outside the events' slots;
- ``reads``: events, holds, stock, totals;
- ``events``: setting up and updating events;
- ``buckets``: stock buckets of hot events, journalled transfers, balancing;
- ``client``: the connection, keys, a writer round's requests and their script calls;
- ``scripts`` (the scripts and the EVALSHA path) and ``codec`` (values to and from Redis).

Durability is the server's: an answer means the script ran, and it survives a crash only
as far as the server's AOF policy says (``appendfsync always`` for guarantee 5; see
docs/architecture.md).

Query options (declared, bounded and checked in ``storage/urls.py``; removed before
connecting): ``prefix`` (default ``lampo:``), put in front of every key, so several
stores can share one server; ``max_batch`` (most requests per writer round, default 256);
``buckets`` (stock buckets of the events this store sets up, 1 to 64, default 1: one slot
per event, as without the option). The URL's path is the database number.
"""

from lampo.storage.redis.scripts import script_text
from lampo.storage.redis.store import RedisStorage

__all__ = ["RedisStorage", "script_text"]
