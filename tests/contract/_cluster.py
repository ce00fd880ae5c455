"""A private 3-master Redis Cluster on loopback ports, for the ``redis-cluster`` backend.

Started from the ``redis-server`` binary the first time a test asks for it (each node on a
free port of 127.0.0.1, its bus port chosen free too, no persistence, files in a temporary
directory), joined with ``redis-cli --cluster create ... --cluster-replicas 0``, and
waited for by polling ``CLUSTER INFO`` on every node until ``cluster_state:ok``. Stopped
when the test process exits. The shared servers of ``.ci/run`` are never touched.

If the cluster cannot start (no binaries, no free ports, a node that does not come up),
the tests that need it skip loudly, or fail when ``CI=true``, as the other server
backends do; the failure is remembered so later tests do not try again.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

MASTERS = 3
START_TIMEOUT = 30.0  # seconds for the nodes to answer and the cluster to reach ok


class ClusterError(Exception):
    """The private cluster could not be started."""


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _cli(cli: str, port: int, *args: str) -> str:
    out = subprocess.run(
        [cli, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.stdout


def _says(cli: str, port: int, text: str, *args: str) -> bool:
    return text in _cli(cli, port, *args)


def _poll(what: str, check: Callable[[], bool], deadline: float) -> None:
    """Call ``check()`` until it is true; ClusterError once ``deadline`` has passed."""
    while True:
        try:
            if check():
                return
        except (OSError, subprocess.SubprocessError):
            pass
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} did not happen within {START_TIMEOUT:g} s")
        time.sleep(0.05)


class PrivateCluster:
    """The nodes of one private cluster: ``start()`` once, ``stop()`` at exit."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise ClusterError("redis-server or redis-cli is not installed")
        self._dir = tempfile.TemporaryDirectory(prefix="lampo-cluster-")
        atexit.register(self.stop)
        ports = _free_ports(2 * MASTERS)
        self.ports, buses = ports[:MASTERS], ports[MASTERS:]
        for port, bus in zip(self.ports, buses, strict=True):
            folder = Path(self._dir.name) / str(port)
            folder.mkdir()
            args = [server, "--port", str(port), "--cluster-port", str(bus)]
            args += ["--bind", "127.0.0.1", "--cluster-enabled", "yes"]
            args += ["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"]
            args += ["--dir", str(folder), "--save", "", "--appendonly", "no"]
            args += ["--logfile", "redis.log", "--daemonize", "no"]
            self._procs.append(
                subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        deadline = time.monotonic() + START_TIMEOUT
        for port in self.ports:
            _poll(f"node {port} answering", partial(_says, cli, port, "PONG", "ping"), deadline)
        create = [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
        create += ["--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise ClusterError(f"redis-cli --cluster create failed: {done.stdout[-300:]}")
        for port in self.ports:
            ok = partial(_says, cli, port, "cluster_state:ok", "cluster", "info")
            _poll(f"node {port} reaching cluster_state:ok", ok, deadline)

    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self._procs:
            proc.wait()
        self._procs.clear()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


_CLUSTER: PrivateCluster | None = None
_FAILURE: str | None = None


def cluster_base_url() -> str:
    """The running private cluster's URL, started on first use; skip (or fail) without."""
    global _CLUSTER, _FAILURE
    if _CLUSTER is None and _FAILURE is None:
        for _ in range(2):  # a second try on other ports: a free port may be taken meanwhile
            cluster = PrivateCluster()
            try:
                cluster.start()
            except (ClusterError, OSError, subprocess.SubprocessError) as exc:
                cluster.stop()
                _FAILURE = f"{type(exc).__name__}: {exc}"
                continue
            _CLUSTER, _FAILURE = cluster, None
            break
    if _CLUSTER is None:
        message = f"redis-cluster backend unavailable ({_FAILURE}): its contract tests did NOT run"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " and CI=true requires every backend")
        pytest.skip(message)
    return _CLUSTER.url()


def redis_cluster_url(tmp: Path) -> str:
    """A fresh store on the private cluster: its own key prefix."""
    return f"{cluster_base_url()}?prefix=lampo-test-{uuid.uuid4().hex[:16]}:"
