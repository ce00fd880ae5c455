"""Find the line of a field in a TOML text, so a scenario error can point at it.

tomllib keeps no positions, so this is a small line scanner that follows table headers
(``[a.b]``, ``[[a]]``), ``key = value`` lines and one-line inline tables. It is a best
effort for error messages only: when a field is not written out (it is missing), the line
of its closest written ancestor is returned.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY = rf"(?:{_BARE}|{_QUOTED})(?:\s*\.\s*(?:{_BARE}|{_QUOTED}))*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_KEY})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_KEY})\s*=\s*(.*)$")
_INLINE_KEY = re.compile(rf"[{{,]\s*({_KEY})\s*=")


def _split_key(key: str) -> list[str]:
    parts = re.findall(rf"{_BARE}|{_QUOTED}", key)
    return [p[1:-1] if p[0] in "\"'" else p for p in parts]


def format_path(path: Path) -> str:
    """``("skus", 2, "prices", "IN")`` as ``skus[2].prices.IN``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _index(text: str) -> dict[Path, int]:
    """Every written path and the 1-based line where it is written."""
    found: dict[Path, int] = {}
    arrays: dict[tuple[str, ...], int] = {}  # array-of-tables path -> last index
    table: Path = ()

    def resolve(keys: list[str]) -> Path:
        # Map a dotted header onto the array indexes seen so far: [skus.prices] -> skus[i].prices
        out: list[str | int] = []
        for i, key in enumerate(keys):
            out.append(key)
            prefix = tuple(keys[: i + 1])
            if prefix in arrays and i < len(keys) - 1:
                out.append(arrays[prefix])
        return tuple(out)

    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            keys = _split_key(header.group(2))
            if header.group(1) == "[[":
                arrays[tuple(keys)] = arrays.get(tuple(keys), -1) + 1
                table = (*resolve(keys), arrays[tuple(keys)])
            else:
                table = resolve(keys)
            for n in range(1, len(table) + 1):
                found.setdefault(table[:n], lineno)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            path = (*table, *_split_key(assign.group(1)))
            found.setdefault(path, lineno)
            value = assign.group(2)
            if value.lstrip().startswith("{"):
                for inline in _INLINE_KEY.finditer(value):
                    found.setdefault((*path, *_split_key(inline.group(1))), lineno)
    return found


def locate(text: str, path: Path) -> int | None:
    """The line where ``path`` (or its closest written ancestor) is written, if any."""
    found = _index(text)
    for n in range(len(path), 0, -1):
        if path[:n] in found:
            return found[path[:n]]
    return None
