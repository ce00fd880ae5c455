"""Settings of the HTTP service, from the environment (``lampo serve`` sets it from flags).

Secrets (``LAMPO_SECRET`` for buyer tokens, ``LAMPO_ADMIN_KEY``, ``LAMPO_WEBHOOK_SECRET``)
come from the environment or from a secrets file (``KEY=value`` lines, mode 0600) that
``lampo serve`` creates with random values on first start. They are never logged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lampo.bootstrap import Config
from lampo.domain.errors import InvalidRequest
from lampo.web.auth import check_token_secret
from lampo.web.logs import LogFormat

SECRET_NAMES = ("LAMPO_SECRET", "LAMPO_ADMIN_KEY", "LAMPO_WEBHOOK_SECRET")
DEFAULT_SECRETS_FILE = "lampo-secrets.env"


def read_secrets_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name in SECRET_NAMES and value:
            out[name] = value
    return out


def ensure_secrets_file(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The secrets, from ``environ`` first, then ``path``; missing ones are made up and
    written to ``path`` (created 0600), so ``lampo token`` and restarts agree."""
    known = read_secrets_file(path)
    missing = [n for n in SECRET_NAMES if not environ.get(n) and n not in known]
    if missing:
        for name in missing:
            known[name] = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("# lampo secrets: keep this file private\n")
            f.writelines(f"{n}={known[n]}\n" for n in SECRET_NAMES if n in known)
    return {n: environ.get(n) or known[n] for n in SECRET_NAMES}


def _number(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise InvalidRequest(name, f"not a number: {text!r}") from None
    if not lo <= value <= hi:
        raise InvalidRequest(name, f"must be between {lo:g} and {hi:g}")
    return value


def _directory(env: Mapping[str, str], name: str) -> str:
    text = env.get(name, "")
    if text and not Path(text).is_dir():
        raise InvalidRequest(name, f"not a directory: {text!r}")
    return text


def _log_format(text: str) -> LogFormat:
    try:
        return LogFormat(text)
    except ValueError:
        raise InvalidRequest(
            "LAMPO_LOG_FORMAT", f"{text!r} is not one of {', '.join(LogFormat)}"
        ) from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class WebConfig:
    engine: Config
    secret: bytes
    admin_key: bytes
    webhook_secret: bytes
    #: Seconds a webhook signature stays valid either side of the server's clock.
    webhook_tolerance: int = 300
    #: Requests per second (and burst) per buyer and per client address; 0 disables.
    buyer_rate: float = 20.0
    buyer_burst: float = 40.0
    ip_rate: float = 2000.0
    ip_burst: float = 4000.0
    #: Largest body on the buyer paths, and on admin uploads.
    max_body: int = 16 * 1024
    max_admin_body: int = 1024 * 1024
    #: Replies kept for idempotent replays (per process), and for how long.
    replay_entries: int = 100_000
    replay_seconds: float = 24 * 3600.0
    #: Seconds between expiry sweeps (0: no sweeper in this server).
    sweep_interval: float = 1.0
    #: Seconds between reads of the event definitions, so a worker takes an update made
    #: through another worker (0: only at start and on unknown events).
    event_refresh: float = 1.0
    #: Seconds one read of an event's live report is served to every viewer (per worker):
    #: many dashboards cost one storage read per event per interval. 0: read every time.
    report_ttl: float = 0.5
    #: Serve ``/_bench/empty`` (the benchmark's baseline endpoint).
    bench: bool = False
    #: Serve ``POST /v1/admin/clock`` to move the server's clock (tests, demos).
    test_clock: bool = False
    #: The private directory of one ``lampo serve`` run, shared by its workers: the rate
    #: limits' table and the metrics' directory (``lampo serve`` makes it); empty: this
    #: process's limits only.
    run_dir: str = ""
    #: Where every worker writes its metrics (prometheus-client's multiprocess mode;
    #: ``lampo serve`` makes it in ``run_dir``); empty: this process's metrics only.
    metrics_dir: str = ""
    #: How lampo's loggers write (``logs.py``): text lines, or one JSON object per line.
    log_format: LogFormat = LogFormat.text

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebConfig:
        env = os.environ if environ is None else environ
        found = {n: env.get(n, "") for n in SECRET_NAMES}
        if not all(found.values()):
            path = Path(env.get("LAMPO_SECRETS_FILE") or DEFAULT_SECRETS_FILE)
            from_file = read_secrets_file(path)
            found = {n: found[n] or from_file.get(n, "") for n in SECRET_NAMES}
        missing = [n for n, v in found.items() if not v]
        if missing:
            raise InvalidRequest(
                "secrets", f"set {', '.join(missing)} (or start with `lampo serve` once)"
            )
        for name, value in found.items():
            if len(value) < 16:
                raise InvalidRequest(name, "must be at least 16 characters")
        check_token_secret(found["LAMPO_SECRET"].encode())
        return cls(
            engine=Config.from_env(env),
            secret=found["LAMPO_SECRET"].encode(),
            admin_key=found["LAMPO_ADMIN_KEY"].encode(),
            webhook_secret=found["LAMPO_WEBHOOK_SECRET"].encode(),
            webhook_tolerance=int(_number(env, "LAMPO_WEBHOOK_TOLERANCE", 300, 1, 86_400)),
            buyer_rate=_number(env, "LAMPO_BUYER_RATE", 20.0, 0, 1e6),
            buyer_burst=_number(env, "LAMPO_BUYER_BURST", 40.0, 1, 1e6),
            ip_rate=_number(env, "LAMPO_IP_RATE", 2000.0, 0, 1e7),
            ip_burst=_number(env, "LAMPO_IP_BURST", 4000.0, 1, 1e7),
            sweep_interval=_number(env, "LAMPO_SWEEP_INTERVAL", 1.0, 0, 3600),
            event_refresh=_number(env, "LAMPO_EVENT_REFRESH", 1.0, 0, 3600),
            report_ttl=_number(env, "LAMPO_REPORT_TTL", 0.5, 0, 60),
            bench=_flag(env, "LAMPO_BENCH_ENDPOINTS"),
            test_clock=_flag(env, "LAMPO_TEST_CLOCK"),
            run_dir=_directory(env, "LAMPO_RUN_DIR"),
            metrics_dir=_directory(env, "PROMETHEUS_MULTIPROC_DIR"),
            log_format=_log_format(env.get("LAMPO_LOG_FORMAT") or "text"),
        )
