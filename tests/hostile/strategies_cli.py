"""Hypothesis strategies for hostile command-line input: text, numbers written every way
an attacker or a careless operator writes them, nested documents, storage URLs.

What every entry point shares (hostile text, integers, numbers as text, nested
documents) comes from ``tests/hostile/strategies.py``; this module adds what only the
command line takes: mutated definition and scenario files, and storage URLs.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from hypothesis import strategies as st

from tests.hostile import strategies as hs

#: Arguments longer than any id or option lampo takes.
LONG = ("9" * 5000, "x" * 3000)

#: Hostile text (``strategies.hostile_text``: Rich markup, terminal escapes, other scripts'
#: digits, ...) and a few arguments longer than anything the CLI takes.
hostile_text = st.one_of(st.sampled_from(LONG), hs.hostile_text(max_size=40))

hostile_integers = hs.hostile_integers()

#: Numbers as an operator might type them, and as an attacker would; or no number at all.
number_text = st.one_of(hs.hostile_number_text(), hostile_text)

deep_json = hs.nested_json_text
deep_toml = hs.nested_toml_text
deep_documents = st.one_of(hs.nested_json(), hs.nested_toml())


def _hostile_value() -> st.SearchStrategy[object]:
    """A JSON value of the wrong type, size or shape."""
    return st.one_of(
        hostile_integers,
        hostile_text,
        st.floats(allow_nan=False),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )


@st.composite
def mutated_definitions(draw: st.DrawFn, definition: dict[str, object]) -> str:
    """``definition`` (an event as ``lampo event show`` prints it) as JSON with one to
    three values anywhere in it replaced by hostile ones (or removed)."""
    document = json.loads(json.dumps(definition))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(document))
        path = draw(st.sampled_from(paths))
        *parents, last = path
        node = document
        for step in parents:
            node = node[step]
        if draw(st.integers(0, 9)) == 0 and isinstance(node, dict):
            del node[last]
        else:
            node[last] = draw(_hostile_value())
    return json.dumps(document, ensure_ascii=draw(st.booleans()))


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


#: The keys of a scenario's sale event (not of its crowd) whose values are mutated.
EVENT_KEYS = (
    "id",
    "name",
    "home_market",
    "hold_seconds",
    "limit_per_customer",
    "opens",
    "closes",
    "currency",
    "tz",
    "category",
    "allocation",
    "limit",
    "prices",
    "units",
    "label",
    "reporting",
)


def toml_values() -> st.SearchStrategy[str]:
    """TOML literals of the wrong type, size or shape."""
    return st.one_of(
        hostile_integers.map(str),
        hostile_text.map(lambda t: json.dumps(t)),  # a JSON string is a TOML basic string
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(["[]", "{}", "true", "1979-05-27T07:32:00Z", "nan", "inf"]),
        hostile_integers.map(lambda n: f'{{ IN = "{n}" }}'),
        st.integers(1, 3000).map(lambda d: "[" * d + "]" * d),
    )


@st.composite
def mutated_scenarios(draw: st.DrawFn, scenario: str) -> str:
    """``scenario`` (TOML) with one to three of its event's values replaced by hostile
    ones; its crowd is left alone (how long a crowd may run is another bound)."""
    lines = scenario.splitlines()
    crowd = next(i for i, line in enumerate(lines) if line.startswith("[crowd"))
    keyed = [
        i
        for i, line in enumerate(lines[:crowd])
        if re.match(rf"({'|'.join(EVENT_KEYS)})\s*=", line)
    ]
    for index in draw(st.lists(st.sampled_from(keyed), min_size=1, max_size=3, unique=True)):
        key = lines[index].split("=", 1)[0].strip()
        lines[index] = f"{key} = {draw(toml_values())}"
    return "\n".join(lines) + "\n"


def hostile_files() -> st.SearchStrategy[str]:
    """File contents: deep documents, text and bytes-as-text that is no document at all."""
    return st.one_of(
        deep_documents,
        hostile_text,
        st.text(max_size=200),
        st.dictionaries(st.text(max_size=5), _hostile_value(), max_size=4).map(json.dumps),
    )


# -- storage URLs ------------------------------------------------------------------
SCHEMES = (
    "memory",
    "sqlite",
    "postgresql",
    "postgres",
    "redis",
    "redis+cluster",
    "redis+postgresql",
)
OPTION_NAMES = (
    "prefix",
    "max_batch",
    "buckets",
    "synchronous",
    "busy_timeout",
    "schema",
    "readers",
    "pg",
    "db",
    "socket_timeout",
    "sslmode",
    "connect_timeout",
    "options",
    "PREFIX",
    "",
)

#: Hosts that never make a name lookup: local addresses, and text that no host name is.
_URL_SYNTAX = re.compile(r"[/?#@:\[\]%\s]")
local_hosts = st.sampled_from(["127.0.0.1", "[::1]", ""])
bad_hosts = st.one_of(
    st.sampled_from(["999.1.1.1", "a..b", "-a", "a" * 64, "[::1", "[zz]", "ü", "*"]),
    hostile_text.filter(lambda t: not _URL_SYNTAX.search(t)).map(lambda t: t + "*"),
)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


@st.composite
def storage_urls(draw: st.DrawFn, ports: tuple[int, ...] = (1,)) -> str:
    """Storage URLs built part by part: scheme (known, misspelt, in capitals), user,
    host (local, or no host name at all: nothing is looked up), port, path, options
    (declared, undeclared, repeated) with hostile values. A server is only ever reached
    on 127.0.0.1 (or ::1) at one of ``ports`` (default: port 1, where nothing listens)
    or at a driver's default port (Redis: 6379; PostgreSQL never: a store opened there
    would migrate the database)."""
    scheme = draw(
        st.one_of(
            st.sampled_from(SCHEMES),
            st.sampled_from(["REDIS", "Sqlite", "ftp", "", "redis+", "mem", "http"]),
        )
    )
    user = draw(st.sampled_from(["", "u@", "u:p%40ss@", ":secret@"]))
    host = draw(st.one_of(local_hosts, bad_hosts))
    port = draw(
        st.one_of(
            st.none(),
            st.sampled_from(ports).map(str),
            st.integers(-5, 70_000).map(str),
            number_text.filter(lambda t: not _URL_SYNTAX.search(t)),
        )
    )
    if port is None and "postgres" in scheme.lower():
        port = str(ports[0])  # never the default 5432: opening a store there migrates it
    elif port is not None and re.fullmatch("[0-9]{1,6}", port) and 0 < int(port) < 65_536:
        port = port if int(port) in ports else str(ports[0])  # whatever listens there
    path = draw(
        st.one_of(
            st.just(""),
            st.integers(0, 40).map(lambda n: f"/{n}"),
            number_text.map(lambda t: "/" + quote(t, safe="")),
            st.sampled_from(["/", "//", "/a.db", "/0/1", "/test"]),
        )
    )
    options = draw(
        st.lists(
            st.tuples(st.one_of(st.sampled_from(OPTION_NAMES), hostile_text), number_text),
            max_size=4,
        )
    )
    netloc = user + host + (f":{port}" if port is not None else "")
    query = _query(options)
    url = f"{scheme}://{netloc}{path}" + (f"?{query}" if query or draw(st.booleans()) else "")
    if scheme == "redis+postgresql" and draw(st.booleans()):
        pg = f"postgresql://postgres@127.0.0.1:{draw(st.sampled_from(ports))}/test"
        url += ("&" if "?" in url else "?") + "pg=" + quote(pg, safe="")
    return url


__all__ = [
    "deep_documents",
    "hostile_files",
    "hostile_integers",
    "hostile_text",
    "mutated_definitions",
    "mutated_scenarios",
    "number_text",
    "storage_urls",
]
