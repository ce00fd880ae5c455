"""Per-key rate limits, one budget per key for every worker of a ``lampo serve`` run.

Each key (a buyer, a client address) may send ``burst`` requests at once and ``rate`` per
second after that: a token bucket, kept as the generic cell rate algorithm (GCRA) keeps
it, as one number per key, its theoretical arrival time ``tat``. A request at ``now`` is
let through when ``max(tat, now) + 1/rate - now <= burst/rate``, and then moves ``tat`` to
that sum; a refusal writes nothing and says when a request would pass.

The numbers live in a table of fixed size: 16-byte slots of a 64-bit tag of the key and
its ``tat`` in ``time.monotonic()`` seconds (one clock for every process of a machine).
Without a run directory the table is in process memory; ``lampo serve`` gives its workers
one (``LAMPO_RUN_DIR``) and each maps the same file of it, so a buyer whose requests land
on several workers has one budget, not one per worker. A key hashes (crc32: the same in
every process) to a pair of slots and uses the one with its tag, else takes the one idle
longer. Nothing is locked, so the check costs a few microseconds: two workers updating
the same key at the same instant may both count their request from the same ``tat`` and
let one request more through, and a key pushed out of its slots by two busier ones starts
again with a full bucket. Both err on the side of letting a buyer in; neither can refuse
one who is within the limit.

Hand-written, kept because it was measured to matter: a rate-limit library keeps its
counters either in one process's memory (``--workers N`` would allow N times the rate)
or in a server such as Redis (a network round trip per request on the hot path, and a
server the embedded SQLite setup does not have); this table is shared by the workers of
one machine at about 2 µs per check (docs/http-api.md, "Security").
"""

from __future__ import annotations

import functools
import ipaddress
import mmap
import os
import struct
import time
import zlib
from pathlib import Path

from lampo.web.problems import RateLimited

_SLOT = struct.Struct("<Qd")  # tag (0: never used), tat
#: Slots of a table: 4 MiB, room for the keys of a large sale with few evictions.
SLOTS = 1 << 18

Table = bytearray | mmap.mmap


def shared_table(path: Path, slots: int = SLOTS) -> mmap.mmap:
    """The table in file ``path``, made (zeroed, mode 0600) by whichever worker comes first;
    every process that maps it shares its slots."""
    size = slots * _SLOT.size
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


class RateLimiter:
    """``rate`` requests per second per key, ``burst`` at once; ``rate <= 0`` disables it.
    ``table``: a shared one (``shared_table``), or None for one of this process only."""

    def __init__(
        self,
        scope: str,
        rate: float,
        burst: float,
        table: Table | None = None,
        slots: int = SLOTS,
    ) -> None:
        if slots < 2 or slots & (slots - 1):
            raise ValueError("slots must be a power of two >= 2")
        self.scope = scope
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._interval = 1.0 / rate if rate > 0 else 0.0
        # a microsecond of slack, so float sums of 1/rate never refuse the last of a burst
        self._window = self.burst * self._interval + 1e-6
        self._pairs = slots - 2  # masks a hash to the first slot of a pair (an even index)
        if table is not None and len(table) < slots * _SLOT.size:
            raise ValueError("the table is smaller than its slots")
        self._table: Table = table if table is not None else bytearray(slots * _SLOT.size)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str, now: float | None = None) -> None:
        """Count one request of ``key``, or raise ``RateLimited`` (having counted nothing)."""
        if self.rate <= 0:
            return
        moment = time.monotonic() if now is None else now
        data = key.encode("utf-8", "surrogatepass")  # any str is a key, and hashes
        h = zlib.crc32(data)
        tag = (h << 32 | zlib.crc32(data, 0x5BD1E995)) | 1  # odd: never the empty tag 0
        first = (h & self._pairs) * 16
        table = self._table
        tag0, tat0 = _SLOT.unpack_from(table, first)
        tag1, tat1 = _SLOT.unpack_from(table, first + 16)
        if tag0 == tag:
            where, tat = first, tat0
        elif tag1 == tag:
            where, tat = first + 16, tat1
        else:  # a key not seen (or pushed out): a full bucket, in the slot idle longer
            where, tat = (first if tat0 <= tat1 else first + 16), moment
        after = max(tat, moment) + self._interval
        if after - moment > self._window:
            raise RateLimited(self.scope, max(after - moment - self._window, 0.001))
        _SLOT.pack_into(table, where, tag, after)


@functools.lru_cache(maxsize=1 << 16)
def network_of(address: str) -> str:
    """The network a client address counts in for the front door's velocity limit: its
    /24 for IPv4 (and IPv4 mapped into IPv6), its /48 for IPv6; any other text (a Unix
    socket's name, a test client) is its own network. Remembered for the last 65,536
    addresses: parsing one costs more than the limit's check."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
