"""``lampo serve`` and ``lampo token``, registered on the main ``lampo`` command.

``serve`` puts its flags in the environment and starts granian with the app factory, so
every worker process builds the same configuration (``WebConfig.from_env``). It also
makes the run's private directory that its workers share (``LAMPO_RUN_DIR``: the metrics'
files, ``PROMETHEUS_MULTIPROC_DIR``, see ``web/metrics.py``; rate limits, see
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

from lampo.bootstrap import SQLITE_DEFAULT, Config
from lampo.domain.errors import InvalidRequest
from lampo.storage import urls
from lampo.web import logs
from lampo.web.config import DEFAULT_SECRETS_FILE, ensure_secrets_file, read_secrets_file
from lampo.web.logs import LogFormat

SecretsOpt = Annotated[
    Path,
    typer.Option(
        "--secrets-file",
        envvar="LAMPO_SECRETS_FILE",
        help="Where the server secrets live when they are not in the environment "
        "(created with random values, mode 0600, on first start).",
    ),
]


def serve(
    host: Annotated[
        str, typer.Option(help="IP address to listen on (0.0.0.0 or :: for every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each with its own writer).")
    ] = 1,
    storage: Annotated[
        str,
        typer.Option("--storage", envvar="LAMPO_STORAGE", show_envvar=True, help=urls.cli_help()),
    ] = SQLITE_DEFAULT,
    secrets_file: SecretsOpt = Path(DEFAULT_SECRETS_FILE),
    buyer_rate: Annotated[
        float | None,
        typer.Option(envvar="LAMPO_BUYER_RATE", help="Requests/s per buyer (0: no limit)."),
    ] = None,
    ip_rate: Annotated[
        float | None,
        typer.Option(envvar="LAMPO_IP_RATE", help="Requests/s per client address (0: none)."),
    ] = None,
    sweep_interval: Annotated[
        float | None,
        typer.Option(envvar="LAMPO_SWEEP_INTERVAL", help="Seconds between expiry sweeps."),
    ] = None,
    event_refresh: Annotated[
        float | None,
        typer.Option(
            envvar="LAMPO_EVENT_REFRESH",
            help="Seconds between a worker's reads of event definitions updated elsewhere.",
        ),
    ] = None,
    soldout_ttl: Annotated[
        float | None,
        typer.Option(
            envvar="LAMPO_SOLDOUT_TTL", help="Seconds a sold-out SKU is refused from memory."
        ),
    ] = 1.0,
    access_log: Annotated[
        bool,
        typer.Option(
            envvar="LAMPO_ACCESS_LOG",
            help="Log every request: client, method, path, status, time (no header, no "
            "query string).",
        ),
    ] = False,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            envvar="LAMPO_LOG_FORMAT",
            help="json: one JSON object per line, for granian's logs, the access log and lampo's.",
        ),
    ] = LogFormat.text,
    bench_endpoints: Annotated[bool, typer.Option(hidden=True)] = False,
    test_clock: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) with granian."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Config.from_env(storage_url=storage, soldout_ttl=soldout_ttl)  # fail early on bad input
    check_listen(host, port)  # before any file is made or any worker starts
    secrets = ensure_secrets_file(secrets_file, os.environ)
    env = {
        "LAMPO_STORAGE": storage,
        "LAMPO_SECRETS_FILE": str(secrets_file.resolve()),
        "LAMPO_LOG_FORMAT": log_format.value,
    }
    for name, value in (
        ("LAMPO_BUYER_RATE", buyer_rate),
        ("LAMPO_IP_RATE", ip_rate),
        ("LAMPO_SWEEP_INTERVAL", sweep_interval),
        ("LAMPO_EVENT_REFRESH", event_refresh),
        ("LAMPO_SOLDOUT_TTL", soldout_ttl),
    ):
        if value is not None:
            env[name] = str(value)
    if bench_endpoints:
        env["LAMPO_BENCH_ENDPOINTS"] = "1"
    if test_clock:
        env["LAMPO_TEST_CLOCK"] = "1"
    # what the workers share (metrics files, rate limits): private (0700), this run only
    run_dir = tempfile.mkdtemp(prefix="lampo-run-")
    env["LAMPO_RUN_DIR"] = run_dir
    env["PROMETHEUS_MULTIPROC_DIR"] = str(Path(run_dir, "metrics"))  # prometheus-client's
    os.mkdir(env["PROMETHEUS_MULTIPROC_DIR"], 0o700)
    os.environ.update(env)
    for name, secret in secrets.items():
        os.environ.setdefault(name, secret)
    from lampo.web.config import WebConfig

    try:
        WebConfig.from_env()  # every setting checked before a worker starts
        logging_config = logs.granian_config(log_format)
        banner = (
            f"lampo serving {urls.redact(storage)} on http://{host}:{port} with {workers} "
            f"worker(s); secrets in {secrets_file}"
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
            workers=workers,
            factory=True,
            log_access=access_log,
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
    secrets_file: SecretsOpt = Path(DEFAULT_SECRETS_FILE),
) -> None:
    """Print a buyer token signed with the server secret (for tests and demos)."""
    from lampo.web.auth import issue_token

    secret = os.environ.get("LAMPO_SECRET") or read_secrets_file(secrets_file).get("LAMPO_SECRET")
    if not secret:
        raise InvalidRequest(
            "secret",
            f"no LAMPO_SECRET in the environment or in {secrets_file}; "
            "start `lampo serve` once to create it",
        )
    typer.echo(issue_token(secret.encode(), buyer, ttl))


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(token)
