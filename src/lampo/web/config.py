"""Settings of the HTTP service: ``WebConfig``, built from the declarations of
``lampo.config`` (``ENGINE`` and ``WEB``, the HTTP server's defaults), read from the
environment (``lampo serve`` sets it from its flags).

Secrets (``LAMPO_SECRET`` for buyer tokens, ``LAMPO_ADMIN_KEY``, ``LAMPO_WEBHOOK_SECRET``)
come from the environment or from a secrets file (``KEY=value`` lines, mode 0600) that
``lampo serve`` creates with random values on first start. They are never logged, nor
shown in a ``WebConfig``'s repr.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lampo import config as declared
from lampo.bootstrap import Config
from lampo.domain.catalog import check_id
from lampo.domain.errors import InvalidRequest
from lampo.web.auth import check_token_secret

SECRET_NAMES = tuple(s.env for s in declared.SECRETS)
DEFAULT_SECRETS_FILE = declared.DEFAULT_SECRETS_FILE
#: Marketplace partners and their own signing secrets (``POST /v1/partners/{partner}/
#: orders``), as ``jd:<secret>,tmall:<secret>``: from the environment, else from a line of
#: the secrets file. Optional: without it, no partner's order is taken. Never made up.
PARTNER_SECRETS = "LAMPO_PARTNER_SECRETS"
#: The most partners, and the shortest and longest secret of one, in characters.
MAX_PARTNERS = 64
MIN_PARTNER_SECRET = 16
MAX_PARTNER_SECRET = 256


def parse_partner_secrets(text: str) -> dict[str, bytes]:
    """``jd:<secret>,tmall:<secret>`` as {partner: secret}; ``InvalidRequest`` naming
    ``LAMPO_PARTNER_SECRETS`` for a bad entry (never showing a secret)."""
    out: dict[str, bytes] = {}
    for n, entry in enumerate(e.strip() for e in text.split(",") if e.strip()):
        partner, sep, secret = entry.partition(":")
        try:
            check_id("partner", partner)
        except InvalidRequest as exc:
            raise InvalidRequest(PARTNER_SECRETS, f"entry {n + 1}: {exc.problem}") from None
        if not sep or not MIN_PARTNER_SECRET <= len(secret) <= MAX_PARTNER_SECRET:
            raise InvalidRequest(
                PARTNER_SECRETS,
                f"{partner}: a secret of {MIN_PARTNER_SECRET} to {MAX_PARTNER_SECRET} "
                "characters after ':'",
            )
        if partner in out:
            raise InvalidRequest(PARTNER_SECRETS, f"{partner} is given twice")
        out[partner] = secret.encode()
    if len(out) > MAX_PARTNERS:
        raise InvalidRequest(PARTNER_SECRETS, f"at most {MAX_PARTNERS} partners")
    return out


def _partner_secrets(env: Mapping[str, str], path: Path) -> dict[str, bytes]:
    text = env.get(PARTNER_SECRETS, "")
    if not text and path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.strip().partition("=")
            if sep and name == PARTNER_SECRETS:
                text = value
    return parse_partner_secrets(text)


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


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The HTTP service's settings. Each attribute named as a setting of ``lampo.config``
    takes its default (and its meaning: see its ``help``) from the declaration."""

    engine: Config
    secret: bytes = field(repr=False)
    admin_key: bytes = field(repr=False)
    webhook_secret: bytes = field(repr=False)
    webhook_tolerance: int = declared.WEBHOOK_TOLERANCE.default
    #: Each marketplace partner's secret for its signed orders (``PARTNER_SECRETS``).
    partner_secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    buyer_rate: float = declared.BUYER_RATE.default
    buyer_burst: float = declared.BUYER_BURST.default
    ip_rate: float = declared.IP_RATE.default
    ip_burst: float = declared.IP_BURST.default
    #: Largest body on the buyer paths, and on admin uploads.
    max_body: int = 16 * 1024
    max_admin_body: int = 1024 * 1024
    #: Successful replies kept for idempotent replays (per process), and for how long.
    replay_entries: int = 100_000
    replay_seconds: float = 24 * 3600.0
    device_rate: float = declared.DEVICE_RATE.default
    device_burst: float = declared.DEVICE_BURST.default
    network_rate: float = declared.NETWORK_RATE.default
    network_burst: float = declared.NETWORK_BURST.default
    sweep_interval: float = declared.SWEEP_INTERVAL.default
    event_refresh: float = declared.EVENT_REFRESH.default
    report_ttl: float = declared.REPORT_TTL.default
    wall_interval: float = declared.WALL_INTERVAL.default
    bench: bool = declared.BENCH.default
    test_clock: bool = declared.TEST_CLOCK.default
    run_dir: str = declared.RUN_DIR.default
    metrics_dir: str = declared.METRICS_DIR.default
    log_format: str = declared.LOG_FORMAT.default

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebConfig:
        """Every setting from ``environ`` (default ``os.environ``) over the HTTP server's
        defaults; the secrets from it, else from the secrets file it names."""
        env = os.environ if environ is None else environ
        found = {n: env.get(n, "") for n in SECRET_NAMES}
        if not all(found.values()):
            path = declared.read([declared.SECRETS_FILE], env)[declared.SECRETS_FILE]
            from_file = read_secrets_file(path)
            found = {n: found[n] or from_file.get(n, "") for n in SECRET_NAMES}
        missing = [n for n, v in found.items() if not v]
        if missing:
            raise InvalidRequest(
                "secrets", f"set {', '.join(missing)} (or start with `lampo serve` once)"
            )
        secret, admin_key, webhook_secret = (
            s.kind.parse(found[s.env], s.env).encode() for s in declared.SECRETS
        )
        check_token_secret(secret)
        settings = declared.read((*declared.ENGINE, *declared.WEB), env, server=True)
        secrets_path = declared.read([declared.SECRETS_FILE], env)[declared.SECRETS_FILE]
        return cls(
            Config.from_settings(settings),
            secret,
            admin_key,
            webhook_secret,
            partner_secrets=_partner_secrets(env, secrets_path),
            **settings.values(declared.WEB),
        )
