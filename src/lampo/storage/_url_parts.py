"""The pieces storage URLs are checked with (``storage/urls.py`` puts them together):
the kinds of an option's value, and the rules of the address part (host, port, Redis
database, SQLite file, PostgreSQL database). Each refuses with an ``OptionError`` that
says why; ``urls.parse`` turns it into the ``InvalidRequest`` naming the part."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

#: Highest Redis database number in a URL; the server's ``databases`` setting (16 by
#: default) is the real limit, and a number beyond it is refused when connecting.
MAX_REDIS_DB = 2**31 - 1
#: PostgreSQL truncates longer identifiers, so two long schema names could meet in one.
MAX_IDENTIFIER = 63


# -- option kinds --------------------------------------------------------------------
class OptionError(ValueError):
    """A value outside its option's kind or bound; the text says why."""


@dataclass(frozen=True, slots=True)
class Integer:
    """A whole number in ASCII digits (no sign, space, ``_`` or other scripts' digits)."""

    low: int
    high: int
    unit: str = ""

    @property
    def bound(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.low == self.high:
            return f"{self.low:,}{unit} only"
        return f"{self.low:,} to {self.high:,}{unit}"

    def __call__(self, text: str) -> int:
        if not re.fullmatch(r"[0-9]{1,20}", text):
            raise OptionError(f"{text[:40]!r} is not a whole number")
        number = int(text)
        if not self.low <= number <= self.high:
            raise OptionError(f"{number:,} is not {self.bound}")
        return number


@dataclass(frozen=True, slots=True)
class Choice:
    """One of a few words, in any letter case; the value is the word in capitals."""

    words: tuple[str, ...]

    @property
    def bound(self) -> str:
        return ", ".join(self.words[:-1]) + " or " + self.words[-1]

    def __call__(self, text: str) -> str:
        word = text.upper()
        if word not in self.words:
            raise OptionError(f"{text[:40]!r} is not one of {self.bound}")
        return word


@dataclass(frozen=True, slots=True)
class Text:
    """Printable text of at most ``longest`` characters, without the ``forbidden`` ones."""

    longest: int
    forbidden: str = ""
    why: str = ""

    @property
    def bound(self) -> str:
        no = f", no {' or '.join(self.forbidden)}" if self.forbidden else ""
        return f"0 to {self.longest} printable characters{no}"

    def __call__(self, text: str) -> str:
        if len(text) > self.longest:
            raise OptionError(f"{len(text):,} characters; at most {self.longest}")
        if not text.isprintable():
            raise OptionError(f"{text[:40]!r} holds a control character")
        bad = sorted(set(text) & set(self.forbidden))
        if bad:
            raise OptionError(f"{text[:40]!r} holds {' and '.join(bad)}{self.why}")
        return text


@dataclass(frozen=True, slots=True)
class Identifier:
    """A plain SQL identifier: ASCII letters, digits and ``_``, not starting with a digit."""

    @property
    def bound(self) -> str:
        return f"1 to {MAX_IDENTIFIER} of a-z A-Z 0-9 _, not starting with a digit"

    def __call__(self, text: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) or len(text) > MAX_IDENTIFIER:
            raise OptionError(f"{text[:40]!r} is not {self.bound}")
        return text


# -- the parts of a URL before its options -------------------------------------------
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def _host(text: str) -> str:
    """A host name (letters, digits, ``-``, ``_``; labels of 1-63), IPv4, or [IPv6]."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise OptionError(f"{text[:60]!r} is not an IPv6 address in brackets")
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise OptionError(f"{text[:60]!r} is not an IPv6 address") from None
        return text
    if len(text) > 253 or not _HOSTNAME.fullmatch(text):
        raise OptionError(f"{text[:60]!r} is not a host name or IP address")
    if all(label.isdigit() for label in text.rstrip(".").split(".")):
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            raise OptionError(f"{text!r} is not an IPv4 address") from None
    return text


_PORT = Integer(1, 65_535)


def _host_port(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port``; an empty host is the driver's default."""
    if text.startswith("["):
        close = text.find("]")
        host, rest = text[: close + 1], text[close + 1 :]
        if close < 0 or (rest and not rest.startswith(":")):
            raise OptionError(f"{text[:60]!r} is not [IPv6 address]:port")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
    if host:
        _host(host)
    if port_text is None:
        return host, None
    try:
        return host, _PORT(port_text)
    except OptionError as exc:
        raise OptionError(f"port: {exc}") from None


@dataclass(frozen=True, slots=True)
class Address:
    """What the part between the scheme and the query names."""

    path: str = ""  # SQLite: the file
    db: int = 0  # Redis: the database number


Locator = Callable[[str, str], Address]  # (netloc, path) -> Address, or OptionError


def no_address(netloc: str, path: str) -> Address:
    if netloc or path:
        raise OptionError("names nothing: no host, path or file")
    return Address()


def sqlite_address(netloc: str, path: str) -> Address:
    """sqlite:///lampo.db -> lampo.db (relative); sqlite:////abs/lampo.db -> /abs/lampo.db;
    sqlite://relative/path.db is a common slip for the first: kept relative."""
    if netloc:
        path = netloc + path
    elif path.startswith("/"):
        path = path[1:]
    if not path or path.endswith("/"):
        raise OptionError("names no file (sqlite:///FILE, or sqlite:////ABSOLUTE/FILE)")
    return Address(path=path)


def _userinfo(netloc: str) -> str:
    """The host part of ``netloc`` (a ``user:password@`` in front may hold anything)."""
    return netloc.rpartition("@")[2]


def redis_address(netloc: str, path: str, cluster: bool = False) -> Address:
    host, _ = _host_port(_userinfo(netloc))
    if cluster and not host:
        raise OptionError("names no node: redis+cluster://HOST:PORT")
    number = path[1:] if path.startswith("/") else path
    if not number:
        return Address(db=0)
    try:
        db = Integer(0, 0 if cluster else MAX_REDIS_DB)(number)
    except OptionError as exc:
        where = "a cluster has database 0 only" if cluster else "the path is the database"
        raise OptionError(f"database {exc} ({where})") from None
    return Address(db=db)


def redis_cluster_address(netloc: str, path: str) -> Address:
    return redis_address(netloc, path, cluster=True)


def postgres_address(netloc: str, path: str) -> Address:
    """``[user[:password]@]host[:port][,host[:port]...]/dbname`` (libpq's multi-host form;
    a host may be a percent-encoded socket directory, ``%2Fvar%2Frun%2Fpostgresql``)."""
    for spec in _userinfo(netloc).split(","):
        if spec[:3].upper() == "%2F":
            if not unquote(spec).isprintable():
                raise OptionError(f"{spec[:60]!r} is not a socket directory")
            continue
        _host_port(spec)
    name = unquote(path[1:]) if path.startswith("/") else path
    if "/" in name or len(name.encode()) > MAX_IDENTIFIER or not name.isprintable():
        raise OptionError(f"database {name[:60]!r} is not a name of 0 to 63 bytes")
    return Address()
