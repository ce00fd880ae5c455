"""Private redis-server and PostgreSQL instances on free loopback ports, in a temp dir.

Fault tests kill and stop these, never the shared servers of the other tests. A binary
that is missing makes the test skip loudly (fail when ``CI=true``). PostgreSQL refuses
to run as root: then ``initdb``/``pg_ctl`` run as the ``postgres`` user (``runuser``),
which owns the data directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

STARTUP = 30.0  # seconds a server gets to come up


def require(what: str, found: object) -> None:
    if found:
        return
    message = f"{what} not found: the fault tests did NOT run"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " and CI=true requires them")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(what: str, ready: Callable[[], bool], timeout: float = STARTUP) -> None:
    """Poll ``ready`` until it answers True; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(0.02)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RedisServer:
    """``redis-server`` with AOF on (``appendfsync everysec``) in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.binary = shutil.which("redis-server")
        require("redis-server", self.binary)
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.binary is not None
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "everysec"]
        args += ["--save", "", "--logfile", str(self.folder / "redis.log")]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until("redis-server up", self._ready)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"redis-server exited:\n{log}")
        return _answers(self.port)

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, no final AOF rewrite."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def wipe(self) -> None:
        """Lose every file of the server (a lost disk); only while it is down."""
        assert self.process is None or self.process.poll() is not None
        for entry in self.folder.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            elif entry.name != "redis.log":
                entry.unlink()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb) in ``folder``, trust auth on loopback."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        require("initdb and pg_ctl", self.initdb and self.pg_ctl)
        # A directory of its own right under the temp dir: when PostgreSQL runs as
        # postgres, pytest's private (0700, root's) tmp_path would be out of its reach.
        self.folder = Path(tempfile.mkdtemp(prefix="lampo-faults-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            runuser = shutil.which("runuser")
            require("runuser (to run PostgreSQL as postgres)", runuser)
            assert runuser is not None
            self._as = [runuser, "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres")
        initdb = [self.initdb or "", "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        self._run([*initdb, "--no-sync", "-E", "UTF8"])

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        out = subprocess.run(self._as + args, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise AssertionError(f"{' '.join(args[:2])} failed:\n{out.stdout}\n{out.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c max_connections=50"
        )
        log = str(self.folder / "postgres.log")
        pg_ctl = [self.pg_ctl or "", "-D", str(self.data)]
        self._run([*pg_ctl, "-o", options, "-l", log, "-w", "start"])

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m immediate``: the server drops every connection at once."""
        self._run([self.pg_ctl or "", "-D", str(self.data), "-m", mode, "-w", "stop"])

    def remove(self) -> None:
        """Stop the server if it runs, and delete its directory."""
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
