"""Storage URLs: each backend's URL form and options, declared once, and their checks.

``parse(url)`` checks every part of a storage URL (scheme, host, port, database, path,
each option and its value) against its backend's declaration in ``BACKENDS`` before
anything connects or opens a file, and returns a ``StorageUrl``; anything else is an
``InvalidRequest`` naming the part, with the valid options listed. The backends read
their options from the ``StorageUrl`` (``storage/__init__.py`` chooses them by the same
scheme); the ``--storage`` help (``cli_help``) and the README's option table
(``markdown_table``) are written from the same declarations.

This module imports no driver: the help and the checks need neither redis nor psycopg.
Only the PostgreSQL parameters that lampo passes on to libpq are looked up in libpq
itself (``psycopg.pq``), the one authority on them, when a ``postgresql://`` URL names one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lampo.domain.errors import InvalidRequest
from lampo.storage._buckets import MAX_BUCKETS
from lampo.storage._url_parts import (
    MAX_IDENTIFIER,
    MAX_REDIS_DB,
    Address,
    Choice,
    Identifier,
    Integer,
    Locator,
    OptionError,
    Text,
    no_address,
    postgres_address,
    redis_address,
    redis_cluster_address,
    sqlite_address,
)

#: Longest storage URL accepted, in characters (a combined URL carries a second one).
MAX_URL_LENGTH = 4096
#: Most requests one writer round (one transaction, one script call) takes, every backend.
MAX_BATCH = 65_536
#: Longest Redis key prefix.
MAX_PREFIX = 64
#: SQLite's own synchronous modes (``PRAGMA synchronous``).
SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


# -- option kinds (the others are in _url_parts.py) ------------------------------------
@dataclass(frozen=True, slots=True)
class NestedUrl:
    """Another storage URL of the named backend, percent-encoded in this one's query."""

    backend: str

    @property
    def bound(self) -> str:
        return f"a {self.backend}:// URL (percent-encoded), checked by the same rules"

    def __call__(self, text: str) -> str:
        scheme = urlsplit(text).scheme if "://" in text else ""
        if scheme not in BACKENDS or BACKENDS[scheme].name != self.backend:
            raise OptionError(f"must be a {self.backend}:// URL")
        parse(text)  # its own refusal names what is wrong inside it
        return text


Kind = Integer | Choice | Text | Identifier | NestedUrl


@dataclass(frozen=True, slots=True)
class Option:
    """A query option lampo reads from a storage URL (and removes before connecting)."""

    name: str
    kind: Kind
    default: int | str | None
    help: str
    required: bool = False


# -- the backends --------------------------------------------------------------------
_WRITER_ROUND = "most requests in one writer round (one transaction or script call)"
_MAX_BATCH = Option("max_batch", Integer(1, MAX_BATCH), 256, _WRITER_ROUND)
_PREFIX = Option(
    "prefix",
    Text(MAX_PREFIX, "{}", " ({ and } make Redis Cluster hash tags)"),
    "lampo:",
    "put in front of every key, so several stores can share one server",
)
_BUCKETS = Option(
    "buckets",
    Integer(1, MAX_BUCKETS),
    1,
    "stock buckets (hash slots) of each event this store sets up",
)
_HOST = "HOST: a host name, IPv4 address or [IPv6 address]; PORT: 1 to 65,535"

#: libpq parameters that lampo sets itself, so a URL's value would be ignored.
_SET_BY_LAMPO = {"connect_timeout": "5 seconds"}


@cache
def _libpq_parameters() -> frozenset[str]:
    """The connection parameters this libpq knows, from libpq itself."""
    from psycopg import pq

    return frozenset(
        o.keyword.decode() for o in pq.Conninfo.get_defaults() if o.keyword is not None
    )


@dataclass(frozen=True, slots=True)
class Backend:
    """One backend's URL: its schemes, the form and rules of its address, its options."""

    name: str
    schemes: tuple[str, ...]
    form: str
    #: Checks the part between the scheme and the query (netloc, path).
    locate: Locator
    #: What ``locate`` accepts, as the README shows it.
    address: str
    options: tuple[Option, ...] = ()
    #: Query parameters the driver takes (passed on as they are), and what they are.
    passthrough: Callable[[], frozenset[str]] | None = None
    passthrough_help: str = ""
    #: The scheme the driver is given (lampo's own schemes are not the driver's).
    driver_scheme: str = ""
    option: Mapping[str, Option] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "option", {o.name: o for o in self.options})

    def valid_options(self) -> str:
        names = ", ".join(o.name for o in self.options) or "no options"
        if self.passthrough_help:
            names += f", and {self.passthrough_help}"
        return names


_REDIS_ADDRESS = (
    f"{_HOST} (default 6379); DB: 0 to {MAX_REDIS_DB:,} (default 0), below the "
    "server's `databases` setting (16 by default; a number beyond it is refused on connecting)"
)

#: Every backend's URL, by scheme (``storage.BACKENDS`` opens them by the backends' names).
BACKENDS: dict[str, Backend] = {
    scheme: backend
    for backend in (
        Backend(
            "memory",
            ("memory",),
            "memory://",
            no_address,
            "nothing: no host, path or option",
        ),
        Backend(
            "sqlite",
            ("sqlite",),
            "sqlite:///FILE",
            sqlite_address,
            "FILE: a path relative to the working directory; an absolute one after a "
            "fourth slash (`sqlite:////var/lib/lampo.db`); taken as written (no %-decoding)",
            (
                Option(
                    "synchronous",
                    Choice(SYNC_MODES),
                    "FULL",
                    "FULL survives a power cut, NORMAL a kill -9, OFF neither "
                    "(SQLite's PRAGMA synchronous)",
                ),
                Option("max_batch", Integer(1, MAX_BATCH), 512, _WRITER_ROUND),
                Option(
                    "busy_timeout",
                    Integer(0, 3_600_000, "ms"),
                    10_000,
                    "how long to wait for a write lock that another program (not lampo) holds",
                ),
            ),
        ),
        Backend(
            "postgresql",
            ("postgresql", "postgres"),
            "postgresql://USER@HOST:PORT/DB",
            postgres_address,
            f"{_HOST} (default: libpq's); several as HOST:PORT,HOST:PORT, or a %-encoded "
            f"socket directory; DB: a name of at most {MAX_IDENTIFIER} bytes",
            (
                Option(
                    "schema",
                    Identifier(),
                    None,
                    "created if missing, then the search path (default: the user's)",
                ),
                _MAX_BATCH,
                Option("readers", Integer(1, 64), 4, "read connections kept open"),
            ),
            passthrough=_libpq_parameters,
            passthrough_help="libpq's connection parameters (sslmode, options, ...)",
            driver_scheme="postgresql",
        ),
        Backend(
            "redis",
            ("redis",),
            "redis://HOST:PORT/DB",
            redis_address,
            _REDIS_ADDRESS,
            (_PREFIX, _MAX_BATCH, _BUCKETS),
            driver_scheme="redis",
        ),
        Backend(
            "redis+cluster",
            ("redis+cluster",),
            "redis+cluster://HOST:PORT",
            redis_cluster_address,
            f"any node of the cluster, {_HOST}; DB: 0 only",
            (_PREFIX, _MAX_BATCH, _BUCKETS),
            driver_scheme="redis",
        ),
        Backend(
            "redis+postgresql",
            ("redis+postgresql",),
            "redis+postgresql://HOST:PORT/DB?pg=URL",
            redis_address,
            f"the Redis server, as `redis://`: {_REDIS_ADDRESS}",
            (
                Option(
                    "pg",
                    NestedUrl("postgresql"),
                    None,
                    "the PostgreSQL system of record",
                    required=True,
                ),
                _PREFIX,
                _MAX_BATCH,
                Option(
                    "buckets",
                    Integer(1, 1),
                    1,
                    "one stock bucket: reconcile compares one live bucket with the record",
                ),
            ),
            driver_scheme="redis",
        ),
    )
    for scheme in backend.schemes
}


# -- parsing -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StorageUrl:
    """A checked storage URL: its backend, what it names, and every option's value."""

    url: str
    scheme: str
    backend: Backend
    address: Address
    #: Every declared option: the URL's value, parsed, else the default.
    options: Mapping[str, int | str | None]
    #: What the driver connects to: the URL without lampo's options (server backends).
    target: str

    def number(self, name: str) -> int:
        return option_int(self.options, name)

    def text(self, name: str) -> str | None:
        return option_str(self.options, name)


def option_int(options: Mapping[str, int | str | None], name: str) -> int:
    """The value of an ``Integer`` option among checked ``options``."""
    value = options[name]
    if not isinstance(value, int):
        raise TypeError(f"option {name} is {value!r}, not a whole number")
    return value


def option_str(options: Mapping[str, int | str | None], name: str) -> str | None:
    """The value of a text option among checked ``options`` (None: not given, no default)."""
    value = options[name]
    if value is not None and not isinstance(value, str):
        raise TypeError(f"option {name} is {value!r}, not text")
    return value


def _refuse(part: str, problem: str) -> InvalidRequest:
    return InvalidRequest(part, problem)


def parse(url: str) -> StorageUrl:
    """``url`` checked in full (see the module's docstring); ``InvalidRequest`` otherwise."""
    if not isinstance(url, str) or not url:
        raise _refuse("storage", "no URL given")
    if len(url) > MAX_URL_LENGTH:
        raise _refuse("storage", f"the URL is {len(url):,} characters; at most {MAX_URL_LENGTH:,}")
    for at, char in enumerate(url):  # a space passes: a SQLite file's name may hold one
        if not char.isprintable():
            raise _refuse("storage", f"the URL holds {char!r} at position {at}; encode it")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme
        netloc, path = parts.netloc, parts.path
    except ValueError as exc:
        raise _refuse("storage", f"{redact(url)!r} is not a URL: {exc}") from None
    backend = BACKENDS.get(scheme)
    known = ", ".join(f"{s}://" for s in BACKENDS)
    if backend is None:
        raise _refuse("storage", f"unknown scheme in {redact(url)[:200]!r}; known: {known}")
    if not url[: len(scheme) + 3].lower() == f"{scheme}://":
        raise _refuse("storage", f"a {scheme} URL starts with {scheme}://, as in {backend.form}")
    if parts.fragment or url.endswith("#"):
        raise _refuse("storage", f"{scheme}:// takes no #fragment; encode # as %23")
    try:
        address = backend.locate(netloc, path)
    except OptionError as exc:
        raise _refuse("storage", f"{scheme}:// {exc}") from None
    options, passed = _options(backend, scheme, parts.query)
    target = ""
    if backend.driver_scheme:
        rest = urlencode(passed)
        target = urlunsplit((backend.driver_scheme, netloc, path, rest, ""))
    return StorageUrl(url, scheme, backend, address, options, target)


def _options(
    backend: Backend, scheme: str, query: str
) -> tuple[dict[str, int | str | None], list[tuple[str, str]]]:
    """The declared options' values, and the driver's parameters to pass on."""
    valid = f"{scheme}:// takes {backend.valid_options()}"
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict", max_num_fields=64)
    except ValueError as exc:  # bad percent-encoding (not UTF-8), too many fields
        problem = f"the options of {scheme}:// cannot be read ({exc}); {valid}"
        raise _refuse("storage", problem) from None
    seen: set[str] = set()
    values: dict[str, int | str | None] = {o.name: o.default for o in backend.options}
    passed: list[tuple[str, str]] = []
    for name, text in pairs:
        if name in seen:
            raise _refuse(name or "storage", f"option {name!r} given twice; {valid}")
        seen.add(name)
        option = backend.option.get(name)
        if option is None:
            known = backend.passthrough() if backend.passthrough else frozenset()
            if name in known and name in _SET_BY_LAMPO:
                raise _refuse(name, f"{name} is set by lampo ({_SET_BY_LAMPO[name]}); {valid}")
            if name not in known:
                raise _refuse("storage", f"unknown option {name[:60]!r}; {valid}")
            if not text.isprintable():  # not echoed: it may be a password
                raise _refuse(name, f"the value of {name} holds a control character; {valid}")
            passed.append((name, text))
            continue
        try:
            values[name] = option.kind(text)
        except OptionError as exc:
            shown = redact(text)[:40]
            raise _refuse(name, f"{name}={shown!r} in the URL: {exc}; {valid}") from None
    for option in backend.options:
        if option.required and option.name not in seen:
            raise _refuse(option.name, f"{scheme}:// needs {option.name}= ({option.kind.bound})")
    return values, passed


def checked(url: str | StorageUrl, *backends: str) -> StorageUrl:
    """``url`` parsed (unless it is already), and refused unless it names one of
    ``backends`` (for the backends' constructors, which may be called with a string)."""
    parsed = url if isinstance(url, StorageUrl) else parse(url)
    if parsed.backend.name not in backends:
        names = ", ".join(f"{b}://" for b in backends)
        raise _refuse("storage", f"{parsed.scheme}:// is not {names}")
    return parsed


def defaults(backend: str) -> dict[str, int | str | None]:
    """Every option of ``backend`` at its default."""
    return {o.name: o.default for o in BACKENDS[backend].options}


def redact(url: str) -> str:
    """``url`` with the password of its user (and of a nested ``pg=`` URL) replaced by
    ``***``, for messages and logs."""
    out = re.sub(r"(://[^/?#@:]*:)[^/?#@]*@", r"\1***@", url)
    # a nested URL is percent-encoded: ://user:secret@ is %3A%2F%2Fuser%3Asecret%40
    return re.sub(r"(?i)(%3A%2F%2F(?:(?!%3A|%40|%2F).)*%3A)(?:(?!%40|%2F).)*%40", r"\1***%40", out)


# -- what the help and the README show -----------------------------------------------
def _backends() -> list[Backend]:
    return list(dict.fromkeys(BACKENDS.values()))


def cli_help() -> str:
    """The ``--storage`` option's help: each scheme with its options (no square brackets:
    typer reads help as Rich markup)."""
    forms = "; ".join(
        b.form + (f" ({', '.join(o.name for o in b.options)})" if b.options else "")
        for b in _backends()
    )
    return f"Storage URL: {forms}. Bounds: README, 'Storage URLs'."


def markdown_table() -> str:
    """The README's tables of storage URLs and their options, from the declarations."""
    rows = ["| URL | what it names | options |", "|---|---|---|"]
    for backend in _backends():
        names = ", ".join(f"`{o.name}`" for o in backend.options) or "none"
        if backend.passthrough_help:
            names += f"; {backend.passthrough_help}, passed on"
        rows.append(f"| `{backend.form}` | {backend.address} | {names} |")
    rows += ["", "| option | of | values | default | what it sets |", "|---|---|---|---|---|"]
    users: dict[Option, list[str]] = {}
    for backend in _backends():
        for option in backend.options:
            users.setdefault(option, []).append(f"`{backend.schemes[0]}`")
    for option, schemes in users.items():
        if option.required:
            default = "required"
        else:
            default = "none" if option.default is None else f"`{option.default}`"
        rows.append(
            f"| `{option.name}` | {', '.join(schemes)} | {option.kind.bound} | {default} "
            f"| {option.help} |"
        )
    rows.append(
        f"\nA URL holds at most {MAX_URL_LENGTH:,} characters, no control character or line "
        "break (encode them), no `#fragment`, and each option once; an unknown option or a "
        "value out of bounds is refused, naming it and the valid options, before anything "
        "connects."
    )
    return "\n".join(rows) + "\n"


__all__ = [
    "BACKENDS",
    "MAX_BATCH",
    "MAX_BUCKETS",
    "MAX_IDENTIFIER",
    "MAX_REDIS_DB",
    "MAX_URL_LENGTH",
    "SYNC_MODES",
    "Address",
    "Backend",
    "Choice",
    "Identifier",
    "Integer",
    "NestedUrl",
    "Option",
    "StorageUrl",
    "Text",
    "checked",
    "cli_help",
    "defaults",
    "markdown_table",
    "option_int",
    "option_str",
    "parse",
    "redact",
]
