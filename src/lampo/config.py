"""Every setting of lampo, declared once: name, type, default, environment variable, bound
and help. Everything else reads these declarations.

``read`` is the one reader: a value given as a flag wins over the environment, which wins
over the default; every value, wherever it came from, passes its declaration's parser
(numbers from ASCII digits only, each bound checked) and check before anything uses it.
``bootstrap.Config`` and ``web.config.WebConfig`` are built from what ``read`` returns
(their attributes are the settings' names); ``lampo serve``'s options, with their default
and variable in ``--help``, are generated from the declarations (``lampo.cli.options``),
and so is the settings table of docs/http-api.md (``markdown_table``).

One setting has two defaults, said here once: ``soldout_ttl`` is 0 for the library and
the commands that run the engine in-process (``bootstrap.Config``, ``lampo simulate``,
``lampo demo``): every refusal asks storage, so their counts are exact. The HTTP server
(``lampo serve``, ``WebConfig.from_env``) refuses a SKU it has just seen sold out from
memory for 1 s: under a crowd that saves a storage round trip per refused request, at the
price of refusing for up to a second after stock comes back.

Secrets (``SECRETS``) have no flag, so they never show in a process list or a shell's
history; they come from the environment or the secrets file (``web.config``), and
``Settings.environment`` never writes them.

The module is over 500 lines on purpose: about 200 of them are the declarations (lines
266-456), a table meant to be read top to bottom in one place; splitting it would put
the settings in two files again.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from lampo.domain.errors import InvalidRequest
from lampo.storage import urls

T = TypeVar("T")

_LONGEST_NUMBER = 40  # characters: any number a setting takes is far shorter
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


# -- kinds: how a setting's text reads -----------------------------------------------------
class Kind(Generic[T]):
    """How a setting's text becomes its value: ``parse`` (raising ``InvalidRequest`` naming
    ``field``), ``valid`` (the same check on a value given already typed), ``text`` (the
    value as ``parse`` reads it back), ``bound`` (the bound in words, for help)."""

    python: type

    def parse(self, text: str, field: str) -> T:
        raise NotImplementedError

    def valid(self, value: object, field: str) -> T:
        """``value`` if it is of this kind and within the bound; text is parsed."""
        if isinstance(value, str):
            return self.parse(value, field)
        typed = isinstance(value, self.python) or (self.python is float and isinstance(value, int))
        if not typed or (isinstance(value, bool) and self.python is not bool):
            raise InvalidRequest(field, f"expected {self.python.__name__}, got {value!r}")
        return self.parse(self.text(cast(T, value)), field)

    def text(self, value: T) -> str:
        return str(value)

    @property
    def bound(self) -> str:
        return ""


def _number(text: str, field: str, whole: bool, low: float, high: float, bound: str) -> float:
    """``text`` as a number within ``low`` and ``high``: ASCII digits only (``float`` and
    ``int`` would also take other scripts' digits, underscores and spaces)."""
    pattern = _WHOLE if whole else _DECIMAL
    if len(text) > _LONGEST_NUMBER or not pattern.fullmatch(text):
        shown = text if len(text) <= _LONGEST_NUMBER else text[:_LONGEST_NUMBER] + "…"
        raise InvalidRequest(field, f"not {'a whole number' if whole else 'a number'}: {shown!r}")
    value: float = int(text) if whole else float(text)
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidRequest(field, f"must be from {bound}, not {text!r}")
    return value


def _range(low: float, high: float, unit: str) -> str:
    low_text, high_text = (f"{float(v):,g}" if v % 1 else f"{int(v):,}" for v in (low, high))
    return f"{low_text} to {high_text}" + (f" {unit}" if unit else "")


_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Real(Kind[float]):
    """A number from ``low`` to ``high``, an exponent allowed: ``0.5``, ``20``, ``1e6``."""

    low: float
    high: float
    unit: str = ""
    python: type = float

    def parse(self, text: str, field: str) -> float:
        return float(_number(text, field, False, self.low, self.high, self.bound))

    def text(self, value: float) -> str:
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))  # 20.0 reads as 20
        return repr(value)

    @property
    def bound(self) -> str:
        return _range(self.low, self.high, self.unit)


@dataclass(frozen=True, slots=True)
class Whole(Kind[int]):
    """A whole number from ``low`` to ``high``."""

    low: int
    high: int
    unit: str = ""
    python: type = int

    def parse(self, text: str, field: str) -> int:
        return int(_number(text, field, True, self.low, self.high, self.bound))

    @property
    def bound(self) -> str:
        return _range(self.low, self.high, self.unit)


@dataclass(frozen=True, slots=True)
class Switch(Kind[bool]):
    """On or off: 1, true, yes, on or 0, false, no, off (any case)."""

    python: type = bool

    def parse(self, text: str, field: str) -> bool:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise InvalidRequest(field, f"expected one of {', '.join(_TRUE + _FALSE)}, not {text!r}")

    def text(self, value: bool) -> str:
        return "1" if value else "0"

    @property
    def bound(self) -> str:
        return "on or off"


@dataclass(frozen=True, slots=True)
class Text(Kind[str]):
    """Text of ``least`` characters at least. ``what`` says what it names, for the docs:
    the setting's check sees to it (a storage URL's check refuses control characters)."""

    what: str = "text"
    least: int = 0
    python: type = str

    def parse(self, text: str, field: str) -> str:
        if len(text) < self.least:
            raise InvalidRequest(
                field, f"must be at least {self.least} characters" if self.least > 1 else "empty"
            )
        return text

    @property
    def bound(self) -> str:
        return f"at least {self.least} characters" if self.least > 1 else self.what


@dataclass(frozen=True, slots=True)
class Choice(Kind[str]):
    """One of ``values`` (as written, lower case)."""

    values: tuple[str, ...]
    python: type = str

    def parse(self, text: str, field: str) -> str:
        if text not in self.values:
            raise InvalidRequest(field, f"expected one of {', '.join(self.values)}, not {text!r}")
        return text

    @property
    def bound(self) -> str:
        return " or ".join(self.values)


@dataclass(frozen=True, slots=True)
class FilePath(Kind[Path]):
    """A file's path, relative to the working directory or absolute."""

    python: type = Path

    def parse(self, text: str, field: str) -> Path:
        if not text or "\x00" in text:
            raise InvalidRequest(field, "a file path, not empty and without a NUL character")
        return Path(text)

    @property
    def bound(self) -> str:
        return "a file path"


# -- declarations ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class Setting(Generic[T]):
    """One setting. ``name`` is the attribute of the configuration object that holds it;
    ``flag`` its command-line option (``--`` and the name with dashes unless given; None:
    no flag), ``env`` its variable. ``server_default`` (when not None) is the HTTP server's
    default where it differs from the library's. ``check`` (given the value and the name of
    where it came from) refuses what the kind alone cannot see, such as a storage URL no
    backend takes."""

    name: str
    kind: Kind[T]
    default: T
    env: str
    help: str
    server_default: T | None = None
    flag: str | None = ""
    check: Callable[[T, str], None] | None = None
    secret: bool = False
    hidden: bool = False
    #: What the docs' table says the setting sets, where ``help`` is longer.
    summary: str = ""

    @property
    def option(self) -> str | None:
        """The flag, ``--buyer-rate``; None for a setting the command line cannot set."""
        if self.flag is None:
            return None
        return self.flag or "--" + self.name.replace("_", "-")

    def default_for(self, server: bool) -> T:
        if server and self.server_default is not None:
            return self.server_default
        return self.default

    def lookup(self, given: object, environ: Mapping[str, str]) -> T | None:
        """The flag's value (``given``, unless None), else the variable's (unless unset or
        empty), parsed and bound-checked; None when neither is there."""
        if given is not None:
            return self.kind.valid(given, self.option or self.name)
        text = environ.get(self.env, "")
        return self.kind.parse(text, self.env) if text else None


def _storage_url(url: str, field: str) -> None:
    urls.parse(url)  # a malformed storage URL is refused here, before anything runs


def _directory(path: str, field: str) -> None:
    if path and ("\x00" in path or not Path(path).is_dir()):
        raise InvalidRequest(field, f"not a directory: {path!r}")


SQLITE_DEFAULT = "sqlite:///lampo.db"
DEFAULT_SECRETS_FILE = "lampo-secrets.env"
_SECONDS_IN_AN_HOUR = Real(0, 3600, "seconds")

# the engine: bootstrap.Config
STORAGE = Setting(
    "storage_url",
    Text("a storage URL"),
    SQLITE_DEFAULT,
    "LAMPO_STORAGE",
    urls.cli_help(),
    flag="--storage",
    check=_storage_url,
    summary="Where the sales are stored (README, 'Storage URLs').",
)
SOLDOUT_TTL = Setting(
    "soldout_ttl",
    _SECONDS_IN_AN_HOUR,
    0.0,
    "LAMPO_SOLDOUT_TTL",
    "Seconds a SKU seen sold out is refused from memory, without asking storage "
    "(0: every request asks storage).",
    server_default=1.0,
)
ENGINE: tuple[Setting[Any], ...] = (STORAGE, SOLDOUT_TTL)

# the HTTP service: web.config.WebConfig
BUYER_RATE = Setting(
    "buyer_rate",
    Real(0, 1e6),
    20.0,
    "LAMPO_BUYER_RATE",
    "Requests per second per buyer (0: no limit).",
)
BUYER_BURST = Setting(
    "buyer_burst",
    Real(1, 1e6),
    40.0,
    "LAMPO_BUYER_BURST",
    "Requests a buyer may send at once before the rate applies.",
)
IP_RATE = Setting(
    "ip_rate",
    Real(0, 1e7),
    2000.0,
    "LAMPO_IP_RATE",
    "Requests per second per client address (0: no limit).",
)
IP_BURST = Setting(
    "ip_burst",
    Real(1, 1e7),
    4000.0,
    "LAMPO_IP_BURST",
    "Requests a client address may send at once before the rate applies.",
)
# the front door's velocity limits (issue 13): per device hash and per network
DEVICE_RATE = Setting(
    "device_rate",
    Real(0, 1e6),
    5.0,
    "LAMPO_DEVICE_RATE",
    "Front-door requests per second per device hash (Lampo-Device; 0: no limit).",
)
DEVICE_BURST = Setting(
    "device_burst",
    Real(1, 1e6),
    20.0,
    "LAMPO_DEVICE_BURST",
    "Front-door requests a device may send at once before the rate applies.",
)
NETWORK_RATE = Setting(
    "network_rate",
    Real(0, 1e7),
    500.0,
    "LAMPO_NETWORK_RATE",
    "Front-door requests per second per network, /24 IPv4 or /48 IPv6 (0: no limit).",
)
NETWORK_BURST = Setting(
    "network_burst",
    Real(1, 1e7),
    1000.0,
    "LAMPO_NETWORK_BURST",
    "Front-door requests a network may send at once before the rate applies.",
)
SWEEP_INTERVAL = Setting(
    "sweep_interval",
    _SECONDS_IN_AN_HOUR,
    1.0,
    "LAMPO_SWEEP_INTERVAL",
    "Seconds between expiry sweeps (0: no sweeper in this server).",
)
EVENT_REFRESH = Setting(
    "event_refresh",
    _SECONDS_IN_AN_HOUR,
    1.0,
    "LAMPO_EVENT_REFRESH",
    "Seconds between a worker's reads of event definitions updated elsewhere "
    "(0: only at start and on an unknown event).",
)
REPORT_TTL = Setting(
    "report_ttl",
    Real(0, 60, "seconds"),
    0.5,
    "LAMPO_REPORT_TTL",
    "Seconds one read of an event's live report serves every viewer, per worker "
    "(0: read for every request).",
)
WALL_INTERVAL = Setting(
    "wall_interval",
    Real(0.1, 60, "seconds"),
    1.0,
    "LAMPO_WALL_INTERVAL",
    "Seconds between a worker's readings of a watched event for the live wall; one "
    "reading feeds every viewer of the event.",
)
WEBHOOK_TOLERANCE = Setting(
    "webhook_tolerance",
    Whole(1, 86_400, "seconds"),
    300,
    "LAMPO_WEBHOOK_TOLERANCE",
    "Seconds a webhook signature stays valid either side of the server's clock.",
)
BENCH = Setting(
    "bench",
    Switch(),
    False,
    "LAMPO_BENCH_ENDPOINTS",
    "Serve /_bench/empty, the HTTP benchmark's baseline endpoint.",
    flag="--bench-endpoints",
    hidden=True,
)
TEST_CLOCK = Setting(
    "test_clock",
    Switch(),
    False,
    "LAMPO_TEST_CLOCK",
    "Serve POST /v1/admin/clock, which moves the server's clock (tests, demos).",
    hidden=True,
)
RUN_DIR = Setting(
    "run_dir",
    Text("a directory"),
    "",
    "LAMPO_RUN_DIR",
    "The private directory of one `lampo serve` run that its workers share (the metrics' "
    "directory, rate limits); `lampo serve` makes it. Empty: this process's own.",
    flag=None,
    check=_directory,
)
METRICS_DIR = Setting(
    "metrics_dir",
    Text("a directory"),
    "",
    "PROMETHEUS_MULTIPROC_DIR",
    "Where every worker writes its metrics (prometheus-client's multiprocess mode); "
    "`lampo serve` makes it in the run's directory. Empty: this process's metrics only.",
    flag=None,
    check=_directory,
)
LOG_FORMAT = Setting(
    "log_format",
    Choice(("text", "json")),
    "text",
    "LAMPO_LOG_FORMAT",
    "json: one JSON object per line, for granian's logs, the access log and lampo's.",
)
WEB: tuple[Setting[Any], ...] = (
    *(BUYER_RATE, BUYER_BURST, IP_RATE, IP_BURST, SWEEP_INTERVAL, EVENT_REFRESH, REPORT_TTL),
    *(DEVICE_RATE, DEVICE_BURST, NETWORK_RATE, NETWORK_BURST),
    WALL_INTERVAL,
    *(WEBHOOK_TOLERANCE, BENCH, TEST_CLOCK, RUN_DIR, METRICS_DIR, LOG_FORMAT),
)

# secrets: the environment or the secrets file, never a flag
SECRETS_FILE = Setting(
    "secrets_file",
    FilePath(),
    Path(DEFAULT_SECRETS_FILE),
    "LAMPO_SECRETS_FILE",
    "Where the server secrets live when they are not in the environment "
    "(created with random values, mode 0600, on first start).",
)
_SECRET = Text(least=16)
_SECRET_ONLY: dict[str, Any] = {"flag": None, "secret": True}
SECRET = Setting(
    "secret",
    Text(least=32),  # an HS256 key: RFC 7518, section 3.2
    "",
    "LAMPO_SECRET",
    "Signs buyer tokens (JWT, HS256).",
    **_SECRET_ONLY,
)
ADMIN_KEY = Setting(
    "admin_key", _SECRET, "", "LAMPO_ADMIN_KEY", "Guards admin calls (X-API-Key).", **_SECRET_ONLY
)
WEBHOOK_SECRET = Setting(
    "webhook_secret",
    _SECRET,
    "",
    "LAMPO_WEBHOOK_SECRET",
    "Signs payment-provider webhooks (Lampo-Signature).",
    **_SECRET_ONLY,
)
SECRETS: tuple[Setting[str], ...] = (SECRET, ADMIN_KEY, WEBHOOK_SECRET)

# where `lampo serve` listens
HOST = Setting(
    "host",
    Text("an IP address", least=1),
    "127.0.0.1",
    "LAMPO_HOST",
    "IP address to listen on (0.0.0.0 or :: for every interface).",
)
PORT = Setting("port", Whole(0, 65_535), 8000, "LAMPO_PORT", "Port to listen on.")
WORKERS = Setting(
    "workers", Whole(1, 64), 1, "LAMPO_WORKERS", "Worker processes (each with its own writer)."
)
ACCESS_LOG = Setting(
    "access_log",
    Switch(),
    False,
    "LAMPO_ACCESS_LOG",
    "Log every request: client, method, path, status, time (no header, no query string).",
)

#: ``lampo serve``'s options, in the order ``--help`` lists them.
SERVE: tuple[Setting[Any], ...] = (
    *(HOST, PORT, WORKERS, STORAGE, SECRETS_FILE, ACCESS_LOG),
    *(s for s in (*ENGINE, *WEB) if s is not STORAGE and s.option is not None),
)
#: Every setting, for the docs' table.
ALL: tuple[Setting[Any], ...] = (*SERVE, RUN_DIR, METRICS_DIR, *SECRETS)


# -- reading ----------------------------------------------------------------------------------
class Settings:
    """The values ``read`` found, by setting: ``found[BUYER_RATE]`` is a float."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, object]) -> None:
        self._values = dict(values)

    def __getitem__(self, setting: Setting[T]) -> T:
        return cast(T, self._values[setting.name])

    def values(self, settings: Iterable[Setting[Any]]) -> dict[str, Any]:
        """``{name: value}`` of ``settings``: the keyword arguments of the object built."""
        return {s.name: self._values[s.name] for s in settings}

    def environment(self, settings: Iterable[Setting[Any]]) -> dict[str, str]:
        """Each of ``settings`` as its variable, the text its parser reads back: what a
        child process needs to ``read`` the same values. Never a secret."""
        return {
            s.env: s.kind.text(self._values[s.name])
            for s in settings
            if not s.secret and s.name in self._values
        }


def read(
    settings: Iterable[Setting[Any]],
    environ: Mapping[str, str] | None = None,
    given: Mapping[str, object] | None = None,
    *,
    server: bool = False,
) -> Settings:
    """The value of each of ``settings``: ``given[name]`` (a flag; None is not given), else
    ``environ[env]`` (default ``os.environ``; unset or empty is not given), else the
    default (``server``: the HTTP server's). Each checked against its declaration; the
    first one refused raises ``InvalidRequest`` naming its flag or variable."""
    env = os.environ if environ is None else environ
    flags = dict(given or {})
    wanted = list(settings)
    unknown = set(flags) - {s.name for s in wanted}
    if unknown:
        raise TypeError(f"no such setting: {', '.join(sorted(unknown))}")
    values: dict[str, object] = {}
    for setting in wanted:
        value = setting.lookup(flags.get(setting.name), env)
        flagged = flags.get(setting.name) is not None
        origin = (setting.option or setting.name) if flagged else setting.env
        if value is None:
            value = setting.default_for(server)
        if setting.check is not None:
            setting.check(value, origin)
        values[setting.name] = value
    return Settings(values)


def markdown_table() -> str:
    """The settings as docs/http-api.md shows them, from the declarations."""
    rows = [
        "| flag | variable | default | values | what it sets |",
        "|---|---|---|---|---|",
    ]
    for s in ALL:
        if s.hidden:
            continue
        rows.append(
            f"| {f'`{s.option}`' if s.option else 'none'} | `{s.env}` | {default_text(s)} "
            f"| {s.kind.bound} | {s.summary or s.help} |"
        )
    return "\n".join(rows)


def default_text(setting: Setting[Any], server: bool | None = None) -> str:
    """The default in words: ``server`` None gives both where they differ."""
    if setting.secret:
        return "from the secrets file"
    if server is not None:
        value = setting.default_for(server)
        return setting.kind.text(value) if value != "" else "none"
    text = default_text(setting, False)
    if setting.server_default is None:
        return text
    return f"{text} ({default_text(setting, True)} in the HTTP server)"
