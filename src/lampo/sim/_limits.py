"""The bounds of a document lampo reads (a scenario file, an uploaded event definition).

A document is at most ``MAX_DOCUMENT_BYTES`` long and nested at most ``MAX_DEPTH`` levels
(tables and arrays). The largest shipped scenario is 8 KB and 4 levels deep, and a
definition of thousands of SKUs still fits: the bounds refuse only what no event needs,
before a parser spends time or stack on it.
"""

from __future__ import annotations

from pathlib import Path

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_DEPTH = 32


def depth(value: object) -> int:
    """How deeply ``value`` (parsed TOML or JSON) nests tables and arrays; a scalar is 0.
    Iterative, so it answers for any depth without recursion."""
    deepest = 0
    todo: list[tuple[object, int]] = [(value, 0)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
        todo.extend((child, level + 1) for child in children)
    return deepest


def read_capped(path: Path) -> bytes:
    """The bytes of ``path``, at most ``MAX_DOCUMENT_BYTES + 1`` of them (one more than is
    allowed, so the caller can tell the file is too large): a huge file is never read
    whole, and a device or a pipe (which may never end) not at all. ``OSError`` otherwise,
    as ``open`` raises it."""
    if path.exists() and not path.is_file():
        raise OSError(f"{path} is not a regular file")
    with path.open("rb") as file:
        return file.read(MAX_DOCUMENT_BYTES + 1)
