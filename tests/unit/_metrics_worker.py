"""A worker process of the metrics tests: it counts what its standard input tells it.

Started with ``PROMETHEUS_MULTIPROC_DIR`` in its environment, as ``lampo serve`` starts
its workers. Each line is one command, answered with ``ok`` once counted:
``observe ROUTE METHOD STATUS SECONDS``, ``refused REASON``, ``batch REQUESTS``, ``fork N``
(a child forked from this worker counts N responses to ``/v1/holds`` and exits; answered
with the child's pid once it has), as granian forks its workers from one process.
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
        elif command == "fork":
            child = os.fork()
            if child == 0:
                for _ in range(int(args[0])):
                    metrics.observe("/v1/holds", "POST", 201, 0.001)
                os._exit(0)
            _, status = os.waitpid(child, 0)
            print("ok" if status == 0 else f"child failed {status}", child, flush=True)
            continue
        else:
            raise SystemExit(f"unknown command {command!r}")
        print("ok", flush=True)


if __name__ == "__main__":
    main()
