"""An event definition as a document: a scenario TOML file, or the codec's JSON.

``parse`` is how every entry point that takes a definition (``POST`` and ``PUT
/v1/admin/events``, ``lampo event load|update``) turns one into an event, and ``read`` the
same for a file. The document is bounded before any parser sees it (at most
``MAX_DOCUMENT_BYTES``, nested at most ``MAX_DEPTH`` levels: ``lampo.sim._limits``) and
every number in it by the domain (``lampo.domain.bounds``). A refusal is a
``ScenarioError`` (a TOML file, with its line and field) or an ``InvalidRequest`` (JSON,
and the document itself); no other exception escapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from lampo.domain.codec import event_from_dict
from lampo.domain.errors import InvalidRequest
from lampo.domain.event import SaleEvent
from lampo.sim import scenario as scenarios
from lampo.sim._limits import MAX_DEPTH, MAX_DOCUMENT_BYTES, depth, read_capped

Form = Literal["toml", "json"]
FORMS: tuple[Form, ...] = ("toml", "json")


def parse(
    content: bytes | str, form: Form, label: str, scale: float = 1.0, base: Path | None = None
) -> SaleEvent:
    """The event ``content`` defines: ``"toml"``, a scenario file (its stock scaled by
    ``scale``, in (0, 10]); ``"json"``, the codec's form (as ``lampo event show`` and
    ``GET /v1/events/{id}`` give it; not scaled). ``label`` names the document in messages.
    Bytes must be UTF-8. ``base``: the folder of a file, where a scenario's stores file
    is read (None, an upload: a scenario declares its stores inline)."""
    if form not in FORMS:
        raise InvalidRequest("definition", f"{label}: {form!r} is not one of {', '.join(FORMS)}")
    if isinstance(content, bytes):
        if len(content) > MAX_DOCUMENT_BYTES:
            raise _too_large(label)
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidRequest("definition", f"{label} is not UTF-8: {err.reason}") from None
    if form == "toml":
        return scenarios.loads(content, label, scale, base).event
    return event_from_dict(parse_json(content, label))


def parse_json(text: str, label: str) -> object:
    """The JSON document ``text``, or ``InvalidRequest``: more than ``MAX_DOCUMENT_BYTES``
    characters, nested deeper than ``MAX_DEPTH``, not JSON (NaN and Infinity, which JSON
    has not, included), or an integer of thousands of digits."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise _too_large(label)
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise InvalidRequest("definition", f"{label} is not JSON: {err}") from None
    except RecursionError:
        data = _TOO_DEEP  # the parser recursed once per level: far deeper than allowed
    except ValueError as err:  # an integer of 4,300 digits and more, NaN, Infinity
        raise InvalidRequest("definition", f"{label} is not usable JSON: {err}") from None
    if data is _TOO_DEEP or depth(data) > MAX_DEPTH:
        raise InvalidRequest(
            "definition", f"{label} is nested deeper than {MAX_DEPTH} levels (MAX_DEPTH)"
        )
    return data


def read(path: Path, scale: float = 1.0) -> SaleEvent:
    """The event the file ``path`` defines: JSON when its name ends in ``.json``, else a
    scenario TOML file (scaled by ``scale``). At most ``MAX_DOCUMENT_BYTES`` are read, and
    only from a regular file."""
    try:
        content = read_capped(path)
    except OSError as err:
        raise InvalidRequest("file", f"cannot read {path}: {err.strerror or err}") from None
    form: Form = "json" if path.suffix.lower() == ".json" else "toml"
    return parse(content, form, str(path), scale, path.parent)


_TOO_DEEP = object()


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _too_large(label: str) -> InvalidRequest:
    return InvalidRequest(
        "definition", f"{label} is longer than {MAX_DOCUMENT_BYTES:,} bytes (MAX_DOCUMENT_BYTES)"
    )
