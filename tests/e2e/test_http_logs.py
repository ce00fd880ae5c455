"""``lampo serve --access-log`` and ``--log-format json``: every request is logged once, in
text or as one JSON object per line with granian's and lampo's own messages alike, and no
token, key, signature or secret reaches the log."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lampo.web.auth import issue_token, sign_webhook
from tests.e2e._http import ADMIN_KEY, SECRET, WEBHOOK_SECRET, Server, live_event, running_server

pytestmark = pytest.mark.sqlite


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("json-logs")
    tmpdir = tmp / "tmp"  # where `lampo serve` makes its run directory
    tmpdir.mkdir()
    with running_server(
        tmp, LAMPO_LOG_FORMAT="json", LAMPO_ACCESS_LOG="1", TMPDIR=str(tmpdir)
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def text_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("text-logs"), LAMPO_ACCESS_LOG="1") as srv:
        yield srv


def log_of(server: Server) -> str:
    return (server.db.parent / "server.log").read_text()


def credentials_sent(server: Server) -> list[str]:
    """Calls that carry every kind of credential, good and bad; what they carried."""
    token = issue_token(SECRET.encode(), "logged-buyer")
    server.load(live_event("logged", {"phone-red": 5}))
    key = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    body = {"event": "logged", "market": "CN", "items": {"phone-red": 1}}
    assert server.request("POST", "/v1/holds", body, headers).status == 201
    wrong_key = "wrong-admin-key-" + uuid.uuid4().hex
    assert server.request("GET", "/v1/admin/events", headers={"X-API-Key": wrong_key}).status == 401
    hook = json.dumps({"type": "payment.succeeded"}).encode()
    signature = sign_webhook(WEBHOOK_SECRET.encode(), hook)
    signed = {"Content-Type": "application/json", "Lampo-Signature": signature}
    assert server.request("POST", "/v1/webhooks/payments", raw=hook, headers=signed).status == 400
    return [token, wrong_key, signature.split("v1=")[1], SECRET, ADMIN_KEY, WEBHOOK_SECRET]


def test_every_line_is_json_and_every_request_has_one_access_record(json_server: Server) -> None:
    secrets = credentials_sent(json_server)
    marker = f"/v1/events/{uuid.uuid4().hex}/stock"
    assert json_server.request("GET", marker).status == 404
    # a file nobody can read in the metrics directory: lampo's own logger warns
    [run_dir] = (json_server.db.parent / "tmp").glob("lampo-run-*")
    (run_dir / "metrics" / "counter_4194305.db").write_bytes(b"\x00" * 3)
    assert json_server.request("GET", "/metrics").status == 200
    json_server.request("GET", "/health")  # written after the records above

    text = log_of(json_server)
    records: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines() if line]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    loggers = {r["logger"] for r in records}
    assert {"lampo.serve", "_granian", "granian.access", "lampo.web.metrics"} <= loggers
    assert any("lampo serving" in r["message"] for r in records)
    access = [r for r in records if r["logger"] == "granian.access"]
    [found] = [r for r in access if r["path"] == marker]
    assert (found["method"], found["status"], found["protocol"]) == ("GET", 404, "HTTP/1.1")
    assert isinstance(found["dt_ms"], float)
    assert [r["status"] for r in access if r["path"] == "/v1/holds"] == [201]
    admin = [(r["method"], r["status"]) for r in access if r["path"] == "/v1/admin/events"]
    assert admin == [("POST", 201), ("GET", 401)]
    for secret in secrets:
        assert secret not in text


def test_the_text_access_log_has_one_line_per_request(text_server: Server) -> None:
    secrets = credentials_sent(text_server)
    marker = f"/v1/events/{uuid.uuid4().hex}/stock"
    assert text_server.request("GET", marker).status == 404
    text_server.request("GET", "/health")
    text = log_of(text_server)
    assert "lampo serving" in text
    assert len([line for line in text.splitlines() if f'"GET {marker} HTTP/1.1" 404' in line]) == 1
    for secret in secrets:
        assert secret not in text


def test_an_unknown_log_format_is_refused_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "lampo.cli", "serve", "--log-format", "yaml", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "yaml" in done.stderr
