"""Helpers for the HTTP tests: a real ``lampo serve`` on a free loopback port over a
SQLite file, and a small JSON client on ``http.client`` (one connection per call)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lampo.domain.codec import event_to_dict
from lampo.domain.event import SaleEvent, Window
from lampo.web.auth import issue_token, sign_webhook
from tests.factories import sale_event

SECRET = "test-buyer-secret-0123456789abcdef"
ADMIN_KEY = "test-admin-key-0123456789abcdef"
WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"
STARTUP_SECONDS = 30.0


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def type(self) -> str:
        value: str = self.json["type"]
        return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    port: int
    db: Path
    pid: int = 0  # of ``lampo serve`` (granian's main process)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = dict(headers or {})
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
                sent.setdefault("Content-Type", "application/json")
            try:
                conn.request(method, path, body=data, headers=sent)
            except (BrokenPipeError, ConnectionResetError):
                # the server answered before the whole body was sent (413) and closed
                # the connection; like curl or a browser, read the answer it sent
                pass
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    # -- as a buyer ----------------------------------------------------------------
    def buyer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(SECRET.encode(), name)}"}

    def reserve(
        self, buyer: str, event: str, items: Mapping[str, int], key: str | None = None, **extra: Any
    ) -> Reply:
        headers = {**self.buyer(buyer), "Idempotency-Key": key or uuid.uuid4().hex}
        body = {"event": event, "market": extra.pop("market", "CN"), "items": dict(items), **extra}
        return self.request("POST", "/v1/holds", body, headers)

    def pay(self, buyer: str, hold_id: str, key: str | None = None, body: Any = None) -> Reply:
        headers = {**self.buyer(buyer), "Idempotency-Key": key or uuid.uuid4().hex}
        return self.request("POST", f"/v1/holds/{hold_id}/pay", body, headers)

    # -- as the admin and the payment provider ---------------------------------------
    def admin(self, method: str, path: str, body: Any = None, **headers: str) -> Reply:
        sent = {"X-API-Key": ADMIN_KEY, "Idempotency-Key": uuid.uuid4().hex}
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        return self.request(method, path, body, sent)

    def load(self, event: SaleEvent) -> Reply:
        reply = self.admin("POST", "/v1/admin/events", event_to_dict(event))
        assert reply.status in (200, 201), reply.body
        return reply

    def webhook(self, payload: Mapping[str, Any], timestamp: int | None = None) -> Reply:
        raw = json.dumps(payload).encode()
        signature = sign_webhook(WEBHOOK_SECRET.encode(), raw, timestamp)
        headers = {"Content-Type": "application/json", "Lampo-Signature": signature}
        return self.request("POST", "/v1/webhooks/payments", raw=raw, headers=headers)

    def stock(self, event: str) -> dict[str, dict[str, int]]:
        reply = self.request("GET", f"/v1/events/{event}/stock")
        assert reply.status == 200, reply.body
        return {row["sku"]: row for row in reply.json["skus"]}


def live_event(
    event_id: str,
    stock: Mapping[str, int] | None = None,
    *,
    opens_in: timedelta = timedelta(hours=-1),
    hours: int = 12,
    **kwargs: Any,
) -> SaleEvent:
    """``tests.factories.sale_event`` with both markets' windows moved around now."""
    event = sale_event(event_id, stock, hours=hours, **kwargs)
    opens = datetime.now(UTC).replace(microsecond=0) + opens_in
    window = Window(opens, opens + timedelta(hours=hours))
    return replace(event, windows={"CN": window, "IN": window})


@contextmanager
def running_server(
    tmp: Path,
    workers: int = 1,
    storage: str | None = None,
    flags: Sequence[str] = (),
    **env: str,
) -> Iterator[Server]:
    """``lampo serve`` (``workers`` processes, and ``flags``) in a child process, on
    ``storage`` (default: a SQLite file in ``tmp``); stopped (SIGINT, then kill) at the end."""
    port = free_port()
    db = tmp / "lampo.db"
    child_env = {
        **os.environ,
        "LAMPO_SECRET": SECRET,
        "LAMPO_ADMIN_KEY": ADMIN_KEY,
        "LAMPO_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LAMPO_IP_RATE": "0",
        "LAMPO_BUYER_RATE": "0",
        "LAMPO_DEVICE_RATE": "0",
        "LAMPO_NETWORK_RATE": "0",
        **env,
    }
    child_env.pop("LAMPO_STORAGE", None)
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lampo.cli",
            "serve",
            "--port",
            str(port),
            "--storage",
            storage or f"sqlite:///{db}",
            "--secrets-file",
            str(tmp / "secrets.env"),
            "--test-clock",
            "--workers",
            str(workers),
            *flags,
        ],
        cwd=tmp,
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(port, db, proc.pid)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:  # wait for the server to listen (startup, not a race)
            assert proc.poll() is None, (tmp / "server.log").read_text()
            try:
                if server.request("GET", "/health").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield server
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
