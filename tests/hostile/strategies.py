"""Hypothesis strategies for hostile input, shared by every entry point's hostile tests.

Each strategy mixes plain random values with the shapes that broke parsers before: digits
outside ASCII (``'²'.isdigit()`` is true, then ``int('²')`` fails, while ``int()``
reads an Arabic-Indic or a fullwidth digit as a number nobody typed),
integers past 64 bits or with more digits than ``int()`` converts, floats that are not
finite, control characters, text that is not valid UTF-8, nesting deeper than Python's
recursion limit, and sizes past every documented bound. Nothing here knows lampo's
routes or options: the tests combine these values into requests, arguments and files.

Each function returns the same strategy object for the same arguments (they are cached:
building and validating a strategy costs far more than drawing from it).

Generic: ``hostile_text``, ``hostile_integers``, ``hostile_floats``,
``hostile_number_text``, ``json_values``, ``nested_json``, ``nested_toml`` (and the
documents they draw: ``nested_json_text``, ``nested_toml_text``), ``toml_documents``.
HTTP: ``header_values``, ``raw_header_values``, ``bearer_values``,
``signature_values``, ``query_values``, ``path_segments``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

#: Characters ``str.isdigit()`` accepts beyond ASCII. ``int()`` takes the decimal ones
#: (Arabic-Indic, Devanagari, fullwidth, mathematical) and refuses the others
#: (superscripts, circled digits), so a parser that checks with ``isdigit`` and converts
#: with ``int`` can be made to fail, or to read a number nobody typed.
UNICODE_DIGITS = (
    "\u00b2\u00b3\u00b9\u2070\u2081\u2460"  # superscripts, subscript, circled: int() refuses
    "\u0661\u0662\u0663\u06f4\u096b\u09e6\u0e51\u0ed2\u0f23\u1044\u17e1\u07c1"  # decimal
    "\uff11\uff19\U0001d7d8\U0001d7d9"  # fullwidth, mathematical: int() reads them too
)

#: Integers at and around the limits that storage, Lua, JSON and C code care about.
INTERESTING_INTEGERS: tuple[int, ...] = (
    0,
    1,
    -1,
    2**31 - 1,
    2**31,
    -(2**31),
    2**53,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    10**18,
    10**30,
    10**100,
    -(10**30),
)

#: Text that once meant something to some parser.
_TRICKY_WORDS = (
    "",
    " ",
    "null",
    "None",
    "true",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "-0",
    "0x10",
    "1e309",
    "1_000",
    "\uff11",  # a fullwidth one
    "²",
    "../../etc/passwd",
    "%00",
    "%ff",
    "\x00",
    "\r\n",
    "\u202e",  # right-to-left override
    "\ufeff",  # byte order mark
    "\u200b",  # zero-width space
    "e\u0301",  # a combining accent
    "🙂",
    "a" * 129,
    "a" * 5000,
    "t=1,v1=",
    "Bearer ",
    "${jndi:ldap://x}",
    "'; DROP TABLE holds; --",
    "<script>alert(1)</script>",
    # what a terminal or Rich makes of text printed as it is
    "[/x]",
    "[bold]x",
    ":smile:",
    "\x1b[2J\x1b[H",
    "\x1b]0;title\x07",
    "-",
    "--help",
)


def _sized(
    alphabet: st.SearchStrategy[str], min_size: int, max_size: int
) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=min_size, max_size=max_size)


@functools.cache
def hostile_text(
    *, min_size: int = 0, max_size: int = 200, surrogates: bool = False
) -> st.SearchStrategy[str]:
    """Any text, leaning on what breaks parsers: Unicode digits, control and format
    characters, whitespace that is not a space, words like ``NaN`` and very long runs.
    ``surrogates``: also lone surrogates (what ``surrogateescape`` makes of bytes that are
    not UTF-8, e.g. in a command-line argument); off by default, since JSON and HTTP
    cannot carry them."""
    categories: tuple[Any, ...] = ("Cs",) if not surrogates else ()
    anything = st.characters(exclude_categories=categories)
    special = st.sampled_from(
        UNICODE_DIGITS + "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x7f\x85\xa0\u2028\u2029\u3000"
    )
    # the nastiest branches first: hypothesis starts from (and shrinks to) the first
    pieces = st.one_of(
        st.builds(
            lambda head, digits, tail: head + digits + tail,
            st.sampled_from(("", "-", "+", " ", "0")),
            _sized(st.sampled_from(UNICODE_DIGITS + "0123456789"), 1, 30),
            st.sampled_from(("", " ", ".5", "e9", "\x00", "abc")),
        ),
        *(
            [st.sampled_from(words)]
            if (words := [w for w in _TRICKY_WORDS if min_size <= len(w) <= max_size])
            else []
        ),
        _sized(st.one_of(special, anything), min_size, max_size),
        _sized(anything, min_size, max_size),
    )
    return pieces.filter(lambda s: min_size <= len(s) <= max_size)


@functools.cache
def hostile_integers() -> st.SearchStrategy[int]:
    """Integers near zero, at the 32-, 53-, 63- and 64-bit limits, and far past them."""
    return st.one_of(
        st.sampled_from(INTERESTING_INTEGERS),
        st.integers(min_value=-1000, max_value=1000),
        st.integers(),
        st.builds(
            lambda base, delta: base + delta,
            st.sampled_from(INTERESTING_INTEGERS),
            st.integers(min_value=-2, max_value=2),
        ),
        st.integers(min_value=1, max_value=4000).map(lambda digits: 10**digits - 1),
    )


@functools.cache
def hostile_floats() -> st.SearchStrategy[float]:
    """Floats, including NaN, the infinities, -0.0, subnormals and the largest ones."""
    return st.one_of(
        st.sampled_from((0.0, -0.0, 0.5, 1.5, 1e-300, 5e-324, 1e300, 1.7976931348623157e308)),
        st.sampled_from((float("nan"), float("inf"), float("-inf"))),
        st.floats(allow_nan=True, allow_infinity=True),
    )


@functools.cache
def hostile_number_text(max_digits: int = 5000) -> st.SearchStrategy[str]:
    """Text that looks like a number to someone: ASCII integers of any size (past the
    4,300 digits ``int()`` converts), signs, spaces, underscores, exponents, hex, Unicode
    digits, non-finite words."""
    many = min(4301, max_digits)  # one past what int() converts
    digits = st.integers(min_value=many, max_value=max(many, max_digits)).map(lambda n: "9" * n)
    # the nastiest branches first: hypothesis starts from (and shrinks to) the first
    return st.one_of(
        st.sampled_from(UNICODE_DIGITS).map(lambda d: d * 3),
        st.builds(
            lambda sign, body, tail: sign + body + tail,
            st.sampled_from(("", "-", "+", " ", "\t", "0", "00")),
            _sized(st.sampled_from(UNICODE_DIGITS + "0123456789_.,eE"), 1, 40),
            st.sampled_from(("", " ", "\n", "\x00", "abc", "%", "e999")),
        ),
        digits,
        st.sampled_from(
            ("nan", "inf", "-inf", "1e309", "0x1f", "1_0", "\u0661\u0660", "\u00b2", "")
        ),
        hostile_integers().map(lambda n: str(n) if abs(n) < 10**4000 else "9" * 4301),
        hostile_floats().map(repr),
    )


@functools.cache
def json_values(max_leaves: int = 30) -> st.SearchStrategy[Any]:
    """JSON values of every type (to go where another type is expected), with hostile
    leaves: huge and negative integers, extreme floats, hostile strings."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        hostile_integers(),
        hostile_floats().filter(lambda f: f == f and abs(f) != float("inf")),
        hostile_text(max_size=60),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(hostile_text(max_size=20), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


@functools.cache
def depths(max_depth: int) -> st.SearchStrategy[int]:
    """Nesting depths: shallow, around Python's recursion limit (1,000 frames: parsers
    written as recursive functions fail somewhere in 900-1,600), and up to ``max_depth``."""
    return st.one_of(
        st.integers(min_value=900, max_value=min(1600, max_depth)),
        st.integers(min_value=min(1600, max_depth), max_value=max_depth),
        st.integers(min_value=1, max_value=64),
    )


def nested_json_text(kind: str, depth: int, closed: bool = True) -> str:
    """A JSON document nested ``depth`` deep: ``array``, ``object`` or ``mixed``;
    ``closed=False`` leaves it unclosed."""
    if kind == "array":
        opening, leaf, closing = "[" * depth, "1", "]" * depth
    elif kind == "object":
        opening, leaf, closing = '{"a":' * depth, "1", "}" * depth
    else:
        opening, leaf, closing = '[{"a":' * depth, "[]", "}]" * depth
    return opening + leaf + (closing if closed else "")


def nested_toml_text(kind: str, depth: int) -> str:
    """A TOML document nested ``depth`` deep: ``array``, ``inline`` tables, a ``dotted``
    key or a table ``header`` of many parts."""
    if kind == "array":
        return "a = " + "[" * depth + "1" + "]" * depth + "\n"
    if kind == "inline":
        return "a = " + "{b = " * depth + "1" + "}" * depth + "\n"
    if kind == "dotted":
        return ".".join(["a"] * depth) + " = 1\n"
    return "[" + ".".join(["a"] * depth) + "]\nb = 1\n"


@functools.cache
def nested_json(max_depth: int = 100_000) -> st.SearchStrategy[str]:
    """JSON text nested from a few levels to far past any recursion limit: arrays,
    objects, a mix, sometimes left unclosed."""

    return st.builds(
        nested_json_text,
        st.sampled_from(("array", "object", "mixed")),
        depths(max_depth),
        st.booleans().map(lambda unclosed: not unclosed),
    )


@functools.cache
def nested_toml(max_depth: int = 50_000) -> st.SearchStrategy[str]:
    """TOML text nested from a few levels to far past any recursion limit: arrays and
    inline tables (which Python's ``tomllib`` parses recursively), dotted keys and table
    headers of many parts (parsed flat, but nested as dicts afterwards)."""

    return st.builds(
        nested_toml_text,
        st.sampled_from(("array", "inline", "dotted", "header")),
        depths(max_depth),
    )


@functools.cache
def toml_documents(
    tables: tuple[str, ...] = ("event", "fx", "markets", "skus"),
) -> st.SearchStrategy[str]:
    """Hostile TOML text: syntax errors, deep nesting, huge integers, non-finite floats,
    and otherwise plausible tables (named ``tables``) with values of the wrong type."""
    value = st.one_of(
        hostile_integers().map(lambda n: str(n) if abs(n) < 10**4000 else "9" * 4301),
        st.sampled_from(("nan", "inf", "-inf", "1e309", "true", "[]", "{}", '""', "1979-05-27")),
        hostile_text(max_size=40).map(json.dumps),
    )
    line = st.builds(lambda key, v: f"{key} = {v}\n", st.sampled_from(("id", "name", "x")), value)
    table = st.builds(
        lambda name, lines: f"[{name}]\n" + "".join(lines),
        st.sampled_from(tables),
        st.lists(line, max_size=5),
    )
    return st.one_of(
        nested_toml(),
        st.lists(table, max_size=4).map("".join),
        hostile_text(max_size=300),
    )


# -- HTTP ---------------------------------------------------------------------------------

#: Bytes an HTTP/1.1 server passes on in a header value (RFC 9110 field-vchar, SP, HTAB,
#: obs-text); anything else is refused by the server before the app sees the request.
_FIELD_BYTES = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])


def header_bytes(text: str, latin1: bool) -> bytes:
    """``text`` as a client would put it in a header: UTF-8, or Latin-1 where it can be
    (an app reading headers as Latin-1, as ASGI suggests, then sees ``text`` itself:
    '²', '³' and '¹' are Latin-1 and ``isdigit()``), keeping only the bytes a server lets
    through, trimmed."""
    if latin1:
        data = text.encode("latin-1", "ignore")
    else:
        data = text.encode("utf-8", "surrogatepass")
    return bytes(c for c in data if c in _FIELD_BYTES).strip()


@functools.cache
def header_values(max_size: int = 300) -> st.SearchStrategy[bytes]:
    """Header values a server hands to the app: printable ASCII and obs-text (bytes
    0x80-0xFF: Latin-1 '²', UTF-8 of Unicode digits), no leading or trailing whitespace
    (servers strip it)."""
    text = st.builds(header_bytes, hostile_text(max_size=max_size), st.sampled_from((True, False)))
    raw = st.binary(max_size=max_size).map(lambda b: bytes(c for c in b if c in _FIELD_BYTES))
    return st.one_of(text, raw.map(bytes.strip))


@functools.cache
def raw_header_values(max_size: int = 300) -> st.SearchStrategy[bytes]:
    """Any bytes for a header value but CR and LF (which would end it): control bytes,
    NUL, DEL, obs-text. Servers refuse some of these themselves (400, no body)."""
    return st.binary(max_size=max_size).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(header: bytes, payload: bytes, secret: bytes | None, signature: bytes = b"") -> str:
    head, body = _b64(header), _b64(payload)
    if secret is not None:
        signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


@functools.cache
def bearer_values(secret: bytes) -> st.SearchStrategy[bytes]:
    """``Authorization`` values: garbage, other schemes, tokens with deeply nested or
    malformed JSON in their parts, wrong algorithms, forged or missing signatures, claims
    of the wrong type, and tokens properly signed with ``secret`` whose claims are
    hostile (a buyer id of any text, an expiry of any size or type)."""
    json_part = st.one_of(
        nested_json(max_depth=5000).map(str.encode),
        json_values().map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=60),
    )
    good_head = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    claims = st.fixed_dictionaries(
        {},
        optional={
            "sub": st.one_of(hostile_text(max_size=200), json_values(max_leaves=3)),
            "exp": st.one_of(hostile_integers(), json_values(max_leaves=3)),
        },
    ).map(lambda c: json.dumps(c).encode())
    token = st.one_of(
        st.builds(_jwt, json_part, json_part, st.none(), st.binary(max_size=40)),
        st.builds(_jwt, json_part, json_part, st.just(secret)),
        st.builds(_jwt, st.just(good_head), claims, st.just(secret)),
        st.builds(_jwt, st.just(good_head), claims, st.none(), st.binary(max_size=40)),
        st.builds(
            _jwt,
            st.sampled_from((b'{"alg":"none"}', b'{"alg":"HS512"}', b"[]", b'"HS256"')),
            claims,
            st.just(secret),
        ),
        hostile_text(max_size=300),
    )
    scheme = st.sampled_from(("Bearer ", "bearer ", "BEARER ", "Bearer  ", "Basic ", "", "Bearer"))
    return st.one_of(
        st.builds(
            lambda s, t, latin1: header_bytes(s + t, latin1),
            scheme,
            token,
            st.sampled_from((True, False)),
        ),
        header_values(),
    )


def signature_values(secret: bytes, body: bytes, now: int) -> st.SearchStrategy[bytes]:
    """``Lampo-Signature`` values for ``body``: malformed fields, Unicode digits and
    non-ASCII bytes in the timestamp or signature, repeated or missing fields, huge or
    negative timestamps, stale and valid signatures (signed with ``secret``)."""

    def mac(t: str) -> str:
        return hmac.new(
            secret, t.encode("utf-8", "surrogatepass") + b"." + body, hashlib.sha256
        ).hexdigest()

    stamp = st.one_of(
        st.builds(lambda d: str(now).replace("1", d, 1), st.sampled_from(UNICODE_DIGITS)),
        hostile_number_text(max_digits=40),
        st.integers(min_value=-(10**6), max_value=10**6).map(lambda d: str(now + d)),
        st.just(str(now)),
    )
    signature = st.one_of(
        st.text("é" + UNICODE_DIGITS + "0123456789abcdefABCDEF", min_size=64, max_size=64),
        hostile_text(max_size=80),
        st.just(""),
        st.binary(min_size=32, max_size=32).map(bytes.hex),
    )

    def header(t: str, sig: str | None, good: bool, extra: str, latin1: bool) -> bytes:
        v1 = mac(t) if good or sig is None else sig
        return header_bytes(f"t={t},v1={v1}{extra}", latin1)

    return st.one_of(
        st.builds(
            header,
            stamp,
            st.one_of(signature, st.none()),
            st.sampled_from((False, True)),
            st.sampled_from((",v1=" + "é" * 64, "", ",v1=00", ",t=1", ",,", ", v0=ab")),
            st.sampled_from((True, False)),
        ),
        header_values(),
    )


@functools.cache
def query_values(max_size: int = 300) -> st.SearchStrategy[str]:
    """A query-string value, percent-encoded as a client would send it (so any text,
    including NUL and non-UTF-8 bytes, reaches the server's decoder), or raw."""
    return st.one_of(
        hostile_number_text().map(lambda s: quote(s, safe="")),
        hostile_text(max_size=max_size).map(
            lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="")
        ),
        st.binary(max_size=40).map(lambda b: quote(b, safe="")),
        st.text("abc019=&%+;", max_size=20),
    )


@functools.cache
def path_segments(max_size: int = 300) -> st.SearchStrategy[str]:
    """One path segment, percent-encoded (any text or bytes, NUL and invalid UTF-8 too)."""
    return st.one_of(
        hostile_text(min_size=1, max_size=max_size).map(
            lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="")
        ),
        st.binary(min_size=1, max_size=40).map(lambda b: quote(b, safe="")),
        st.sampled_from(("%2F", "..", ".", "%2e%2e", "%00", "%ff", "a" * 129, "a" * 5000)),
    )
