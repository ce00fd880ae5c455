"""The rehearsal at full scale: a scenario's whole crowd run in-process, phase by phase.

Run:  .venv/bin/python bench/rehearsal.py [--scenario mi-fan-fest-2015] [--scale 1]
                                          [--storage sqlite|memory|URL] [--seed 42]
                                          [--sweep-every 1]

What it measures, in one process, as ``lampo simulate`` runs it:

* **crowd**: the scenario's timeline generated and counted, nothing sent: the cost of
  the crowd model alone (visits per second).
* **run**: the driver against ``Sales`` over the storage (a fresh SQLite file in a
  temporary directory by default, ``synchronous=FULL``): wall and CPU seconds, requests,
  storage calls and microseconds per request.
* **report**: the battle report and the audit read back from storage, as the command
  prints them.

After each phase, the peak resident memory of the process so far. The run's audit and
its totals against the seed's headline figures close the output, so a fast but wrong run
shows.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from lampo.bootstrap import Config, build_simulation
from lampo.services.audit import audit
from lampo.services.report import battle_report
from lampo.sim import scenario as scenarios
from lampo.sim.crowd import timeline
from lampo.sim.driver import run


def peak_mb() -> float:
    """The peak resident memory of this process so far, in MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="mi-fan-fest-2015")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--storage", default="sqlite", help="sqlite, memory or a URL")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sweep-every", type=float, default=1.0)
    args = parser.parse_args()
    loaded = scenarios.load(args.scenario, args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        url = {
            "sqlite": f"sqlite:///{Path(tmp) / 'rehearsal.db'}",
            "memory": "memory://",
        }.get(args.storage, args.storage)
        print(f"{loaded.event.name} at scale {args.scale:g} on {args.storage}, seed {args.seed}")

        start, spent = time.perf_counter(), cpu()
        visits = sum(1 for _ in timeline(loaded, args.seed))
        wall = time.perf_counter() - start
        print(
            f"crowd   {wall:8.1f} s wall {cpu() - spent:8.1f} s CPU  {visits:,} visits "
            f"({visits / wall:,.0f}/s)  peak {peak_mb():,.0f} MiB"
        )

        sales, clock = build_simulation(Config.from_env(storage_url=url), loaded)
        try:
            start, spent = time.perf_counter(), cpu()
            result = run(loaded, sales, clock, seed=args.seed, sweep_every=args.sweep_every)
            wall, used = time.perf_counter() - start, cpu() - spent
            per = 1e6 * wall / max(1, result.requests)
            print(
                f"run     {wall:8.1f} s wall {used:8.1f} s CPU  {result.requests:,} requests, "
                f"{result.batches:,} storage calls, {per:,.0f} us/request  "
                f"peak {peak_mb():,.0f} MiB"
            )

            start, spent = time.perf_counter(), cpu()
            found = audit(sales.storage, loaded.event)
            report = battle_report(sales.storage, loaded.event.id, sales.clock(), result.refusals)
            wall = time.perf_counter() - start
            print(
                f"report  {wall:8.1f} s wall {cpu() - spent:8.1f} s CPU  "
                f"{found.holds:,} holds read back  peak {peak_mb():,.0f} MiB"
            )
            sold: Counter[str] = Counter()
            for sku, level in sales.storage.stock(loaded.event.id).items():
                sold[loaded.event.category_of(sku)] += level.sold
        finally:
            sales.storage.close()
    for cid, expected in loaded.expected.units.items():
        print(f"  {cid}: {sold[cid]:,} sold of the seed's {expected:,}")
    print(f"  revenue: {report.money.format()}; audit: {found.summary()}")
    return 0 if found.ok else 1


if __name__ == "__main__":
    sys.exit(main())
