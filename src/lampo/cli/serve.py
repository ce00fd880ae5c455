"""``lampo serve`` and ``lampo token``.

``serve``'s options are generated from ``lampo.config.SERVE``; it reads every setting once
(flags over the environment over the server's defaults), then hands the workers the
values it read as their variables and starts granian with the app factory, so every
worker process builds the same configuration (``WebConfig.from_env``). It also makes the
run's private directory that its workers share (``LAMPO_RUN_DIR``: the metrics' files,
``PROMETHEUS_MULTIPROC_DIR``, see ``web/metrics.py``; rate limits, see
``web/ratelimit.py``) and removes it when granian stops.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging.config
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from lampo.cli.options import SecretsOpt, read_secret, with_setting_options
from lampo.config import (
    ACCESS_LOG,
    ENGINE,
    HOST,
    LOG_FORMAT,
    METRICS_DIR,
    PORT,
    RUN_DIR,
    SECRET,
    SECRETS_FILE,
    SERVE,
    STORAGE,
    WEB,
    WORKERS,
    read,
)
from lampo.domain.errors import InvalidRequest
from lampo.storage import urls
from lampo.web import logs
from lampo.web.config import ensure_secrets_file


@with_setting_options(SERVE, server=True)
def serve(**given: object) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) with granian."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    found = read(SERVE, os.environ, given, server=True)  # every setting checked, once
    host, port, storage = found[HOST], found[PORT], found[STORAGE]
    check_listen(host, port)  # before any file is made or any worker starts
    secrets_file = found[SECRETS_FILE]
    secrets = ensure_secrets_file(secrets_file, os.environ)
    # what every worker reads: the values read here, whatever their source
    env = found.environment(s for s in (*ENGINE, *WEB) if s not in (RUN_DIR, METRICS_DIR))
    env[SECRETS_FILE.env] = str(secrets_file.resolve())
    # what the workers share (metrics files, rate limits): private (0700), this run only
    run_dir = tempfile.mkdtemp(prefix="lampo-run-")
    env[RUN_DIR.env] = run_dir
    env[METRICS_DIR.env] = str(Path(run_dir, "metrics"))  # prometheus-client's
    os.mkdir(env[METRICS_DIR.env], 0o700)
    os.environ.update(env)
    for name, secret in secrets.items():
        os.environ.setdefault(name, secret)
    from lampo.web.config import WebConfig

    try:
        WebConfig.from_env()  # the secrets checked before a worker starts
        logging_config = logs.granian_config(logs.LogFormat(found[LOG_FORMAT]))
        banner = (
            f"lampo serving {urls.redact(storage)} on http://{host}:{port} with "
            f"{found[WORKERS]} worker(s); secrets in {secrets_file}"
        )
        if logging_config is None:
            typer.echo(banner)
        else:  # a log line like every other
            logging.config.dictConfig(logging_config)
            logging.getLogger("lampo.serve").info(banner)
        Granian(
            "lampo.web.app:create_app",
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=found[WORKERS],
            factory=True,
            log_access=found[ACCESS_LOG],
            log_dictconfig=logging_config,
            # uvloop's call_soon_threadsafe, which granian calls once per request, is cheaper
            loop=Loops.uvloop if importlib.util.find_spec("uvloop") else Loops.asyncio,
        ).serve()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def check_listen(host: str, port: int) -> None:
    """Refuse an address granian could not listen on (not an IP address, a port in use,
    an address of no interface) with one clear ``InvalidRequest``, before it starts: its
    own failure comes as a long traceback from the Rust side. A probe socket binds and
    listens with ``SO_REUSEADDR``, as a server does, so a port still in TIME_WAIT from a
    previous run passes; anything listening there fails it."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidRequest(
            "host",
            f"{host!r} is not an IP address (granian listens on an address, not a name: "
            "127.0.0.1, ::1, or 0.0.0.0 / :: for every interface)",
        ) from None
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            probe.listen()
        except OSError as exc:
            raise InvalidRequest(
                "port", f"cannot listen on {host} port {port}: {exc.strerror or exc}"
            ) from None


def token(
    buyer: Annotated[str, typer.Argument(help="The buyer id the token names.")],
    ttl: Annotated[int, typer.Option(min=1, help="Seconds the token is valid.")] = 3600,
    secrets_file: SecretsOpt = None,
) -> None:
    """Print a buyer token signed with the server secret (for tests and demos)."""
    from lampo.web.auth import issue_token

    secret = read_secret(SECRET, secrets_file)
    typer.echo(issue_token(secret.encode(), buyer, ttl))
