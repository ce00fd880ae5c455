"""The log formats of the HTTP service: text (the default) or JSON, one object per line.

``lampo serve --log-format json`` hands granian a logging configuration
(``granian_config``) that its processes apply, the server's and every worker's: granian's
own messages, its access log (``--access-log``) and lampo's loggers all go to standard
output through ``JsonFormatter``. The app configures its own loggers the same way, to
standard error, when another server runs it (``configure``, from ``LAMPO_LOG_FORMAT``). In
text, granian keeps its own format and
lampo's loggers write ``time logger message`` lines to standard error, as before.

No header reaches a log: an access record holds the client address, method, path (not
the query string), protocol, status and time taken, so no token, key or signature is
logged; lampo's own messages name routes, never credentials.

Kept by hand: the formatter, twenty lines over the standard library. python-json-logger
would still need a subclass to turn granian's access fields, which come as a record's
arguments, into members of the object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

#: The logger granian writes its access records to.
ACCESS_LOGGER = "granian.access"
#: The fields of an access record (granian's names), in the order they are written.
ACCESS_FIELDS = ("addr", "method", "path", "protocol", "status", "dt_ms")


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``; an access record's fields (``ACCESS_FIELDS``); ``exception`` with its
    traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        args = record.args
        if record.name == ACCESS_LOGGER and isinstance(args, Mapping):
            out["message"] = f"{args.get('method')} {args.get('path')} {args.get('status')}"
            out.update((name, args[name]) for name in ACCESS_FIELDS if name in args)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def granian_config(log_format: LogFormat) -> dict[str, Any] | None:
    """The ``log_dictconfig`` for granian: None in text (granian's own)."""
    if log_format is LogFormat.text:
        return None
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stdout",
    }
    quiet = {"handlers": ["json"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {"_granian": quiet, ACCESS_LOGGER: quiet},
        "root": {"handlers": ["json"], "level": "INFO"},
    }


def configure(log_format: LogFormat) -> None:
    """Lampo's loggers in ``log_format``, unless the server configured them already."""
    if logging.getLogger().handlers:
        return  # granian applied ``granian_config`` (or the deployment its own)
    if log_format is LogFormat.json:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
