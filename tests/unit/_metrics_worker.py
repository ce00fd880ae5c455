"""A worker process of the metrics tests: it counts what its standard input tells it.

Started with ``PROMETHEUS_MULTIPROC_DIR`` in its environment, as ``lampo serve`` starts
its workers. Each line is one command, answered with ``ok`` once counted:
``observe ROUTE METHOD STATUS SECONDS``, ``refused REASON``, ``batch REQUESTS``.
"""

from __future__ import annotations

import os
import sys

from lampo.web.metrics import Metrics


def main() -> None:
    metrics = Metrics(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "observe":
            route, method, status, seconds = args
            metrics.observe(route, method, int(status), float(seconds))
        elif command == "refused":
            metrics.refused(args[0])
        elif command == "batch":
            metrics.batch(int(args[0]))
        else:
            raise SystemExit(f"unknown command {command!r}")
        print("ok", flush=True)


if __name__ == "__main__":
    main()
