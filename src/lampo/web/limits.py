"""The bounds of everything the HTTP API reads from outside, and the parsing of its numbers.

One place for each bound: the handlers check them, the OpenAPI document publishes them
(``openapi.py``, ``schemas.py``) and docs/http-api.md lists them. Every check here is
total: any text in, a value or an ``InvalidRequest`` out (never ``ValueError``,
``OverflowError`` or a number nobody typed: ``str.isdigit`` accepts '²' and the
Arabic-Indic digits, and ``int()`` refuses the first and reads the others as numbers, so
numbers are read from ASCII digits only, with a bounded length).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from lampo.domain.errors import InvalidRequest

#: An id of the domain (an event, a SKU): ``catalog.check_id``'s bound.
MAX_ID = 64
#: A hold id (path ``{hold_id}``), the ``after`` cursor, the ids of a webhook body.
MAX_HOLD_ID = 128
#: ``Idempotency-Key``: visible ASCII (no space or control character), 1..128 of them.
MAX_KEY = 128
_KEY_CHARS = "[!-~]"
KEY_PATTERN = f"^{_KEY_CHARS}+$"
#: The longest value of each path parameter: a longer one, or one that is not printable
#: without spaces (the domain's rule for ids), names nothing.
PATH_PARAMS = {
    "event_id": MAX_ID,
    "hold_id": MAX_HOLD_ID,
    "reason": 64,
    "period": 16,
    "store": MAX_ID,
    "key_id": 16,
    "partner": MAX_ID,
}
#: Path parameters with a form of their own (the OpenAPI document states it): a period is
#: a year or a quarter, ``2017``, ``2017Q2`` or ``2017-Q2`` (``domain.period.Period.parse``).
PATH_PATTERNS = {"period": "^[0-9]{4}(-?[Qq][1-4])?$"}
#: ``GET .../orders?limit=``: the page size, and the default.
MAX_PAGE = 1000
DEFAULT_PAGE = 100
#: A buyer token (``Authorization: Bearer <token>``), in characters.
MAX_TOKEN = 2048
#: A ``Lampo-Signature`` header, in characters (room for a timestamp and a few ``v1=``).
MAX_SIGNATURE = 1024
#: Digits of a webhook's ``t=`` (unix seconds: 12 digits reach the year 33658).
MAX_TIMESTAMP_DIGITS = 12
#: Digits of a ``Content-Length`` (a length with more digits is refused, not read).
MAX_LENGTH_DIGITS = 20
#: ``POST /v1/admin/clock`` (test servers only): one step, and how far the clock may be
#: from the real time in all (datetimes stay well inside the years 1..9999).
MAX_CLOCK_STEP = timedelta(days=3660)
MAX_CLOCK_OFFSET = timedelta(days=36600)

_KEY = re.compile(f"{_KEY_CHARS}+")


def digits(text: str | bytes, max_digits: int) -> int | None:
    """The number ``text`` writes in 1..``max_digits`` ASCII digits, else None (a sign,
    a space, an underscore, a digit from another script, or too many digits)."""
    # bytes.isdigit() knows ASCII digits only; str.isdigit() knows every script's
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def names_nothing(name: str, value: str) -> bool:
    """Whether path parameter ``name`` cannot name anything with ``value``."""
    # isprintable() refuses every whitespace character but the ASCII space
    return len(value) > PATH_PARAMS.get(name, 0) or not value.isprintable() or " " in value


def whole_number(text: str, field: str, lo: int, hi: int) -> int:
    """``text`` as a whole number in ``lo..hi`` (ASCII digits only, leading zeros
    allowed), or ``InvalidRequest``."""
    value = digits(text.lstrip("0") or "0", len(str(hi)))
    if value is None or not lo <= value <= hi:
        raise InvalidRequest(field, f"must be a whole number in {lo}..{hi}")
    return value


#: A number as a query string writes it: ASCII digits, at most one point, an exponent.
_DECIMAL = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,12})?(?:[eE][-+]?[0-9]{1,3})?")


def decimal(text: str, field: str) -> float:
    """``text`` as a number written in ASCII (``1``, ``0.001``, ``1e-3``; no sign,
    underscore, space, ``inf``/``nan`` or another script's digits), or ``InvalidRequest``.
    The caller bounds the value."""
    if not text.isascii() or _DECIMAL.fullmatch(text) is None:
        raise InvalidRequest(field, f"must be a decimal number such as 0.01, got {text[:40]!r}")
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise InvalidRequest(field, f"must be a finite number, got {text[:40]!r}")
    return value


def idempotency_key(text: str | None) -> str:
    """The ``Idempotency-Key`` header's value, or ``InvalidRequest``."""
    if not text:
        raise InvalidRequest("Idempotency-Key", "this call needs an Idempotency-Key header")
    if len(text) > MAX_KEY or _KEY.fullmatch(text) is None:
        raise InvalidRequest("Idempotency-Key", f"1..{MAX_KEY} visible ASCII characters, no spaces")
    return text


def cursor(text: str | None) -> str:
    """The ``after`` cursor of a page of holds ("" for the first page), or
    ``InvalidRequest``."""
    if text is None:
        return ""
    if len(text) > MAX_HOLD_ID:
        raise InvalidRequest("after", f"at most {MAX_HOLD_ID} characters (a hold id)")
    return text


def clock_step(seconds: object, offset: timedelta) -> timedelta:
    """The step ``POST /v1/admin/clock`` asks for, if it keeps the clock within bounds."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise InvalidRequest("advance_seconds", "a number of seconds")
    limit = MAX_CLOCK_STEP.total_seconds()
    if not -limit <= seconds <= limit:  # also refuses NaN
        raise InvalidRequest("advance_seconds", f"at most {limit:.0f} seconds either way")
    step = timedelta(seconds=seconds)
    if abs(offset + step) > MAX_CLOCK_OFFSET:
        raise InvalidRequest(
            "advance_seconds", f"the clock may be at most {MAX_CLOCK_OFFSET.days} days off"
        )
    return step
