"""The ``lampo`` command (Typer + Rich): parse the input, call a service, format the answer.

This module holds the app and the one error path; each command group is a module of its
own (``simulate``: demo and simulate; ``stock``: stock and expire; ``event``, ``report``,
``reconcile``, ``queue``; ``serve``: serve and token; ``stores``, ``partners``), registered
here. Options several commands share are in ``options``, Rich rendering several commands
share in ``render``.

Every failure of every command ends in ``main``: one red ``error: ...`` line on stderr
and an exit code (``EXIT_*``: 2 for bad input and refusals), never a traceback unless
``LAMPO_DEBUG=1``. ``simulate`` and ``demo`` exit 1 when the audit finds anything.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import traceback
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from lampo import __version__
from lampo.cli import event, partners, queue, reconcile, report, serve, simulate, stock, stores
from lampo.domain.errors import LampoError, Unavailable

app = typer.Typer(
    name="lampo",
    help="lampo: an omni-channel flash-sale engine with a live battle report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lampo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """lampo: an omni-channel flash-sale engine with a live battle report."""


app.command()(simulate.demo)  # lampo demo
app.command()(simulate.simulate)  # lampo simulate SCENARIO
app.command()(stock.stock)  # lampo stock [EVENT]
app.command()(stock.expire)  # lampo expire
app.command()(serve.serve)  # lampo serve
app.command()(serve.token)  # lampo token BUYER
app.command("reconcile")(reconcile.reconcile_command)  # lampo reconcile [--check]
app.add_typer(report.report_app, name="report")  # lampo report event|period
app.add_typer(event.event_app, name="event")  # lampo event show|load|update|allocate
app.add_typer(stores.stores_app, name="stores")  # lampo stores import|list|show|export|key|revoke
app.add_typer(partners.partners_app, name="partners")  # lampo partners import
app.add_typer(queue.queue_app, name="queue")  # lampo queue show|rate|draw|registrations


# -- entry point: every failure of every command ends here ---------------------
#: Exit codes of ``lampo`` (README, "The lampo command").
EXIT_FOUND = 1  # simulate/demo: the audit found something; reconcile --check: a difference
EXIT_REFUSED = 2  # bad input, or a refusal (a LampoError, a usage error)
EXIT_UNAVAILABLE = 69  # storage unavailable (sysexits' EX_UNAVAILABLE): retry later
EXIT_INTERNAL = 70  # a bug in lampo (sysexits' EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
#: Set (to anything but "" or "0") to see the traceback of any failure, not one line.
DEBUG_VARIABLE = "LAMPO_DEBUG"
_LONGEST = 2000  # characters of an error line


def _refusal_in(err: BaseException) -> LampoError | None:
    """The refusal behind ``err``: itself, its cause or context, or one in a group (a
    cleanup that failed after a refusal must not hide the refusal the user can act on)."""
    seen: set[int] = set()
    todo = [err]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, LampoError):
            return current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def one_line(message: str) -> str:
    """``message`` as one printable line: whitespace (newlines too) collapsed, control
    characters shown escaped (they could move a terminal's cursor), length capped."""
    line = " ".join(message.split())
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    return line if len(line) <= _LONGEST else line[: _LONGEST - 1] + "…"


def _fail(message: str, code: int = EXIT_REFUSED) -> int:
    """Print ``error: MESSAGE`` as one line on stderr; return ``code``. The message is
    plain text: Rich markup or emoji codes in it (an event id, a file name) print as is."""
    err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, markup=False)
    err.print(Text.assemble(("error:", "bold red"), " ", (one_line(message), "red")))
    return code


def _usage_errors() -> tuple[type[Exception], ...]:
    """Usage errors of the click that typer runs on (its vendored copy, or click itself)."""
    types: list[type[Exception]] = [typer.TyperException]
    try:
        import click

        types.append(click.ClickException)
    except ImportError:  # pragma: no cover - recent typer vendors click
        pass
    return tuple(types)


def _debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    """Run ``lampo`` with ``argv`` (default: the process arguments); return the exit code.

    The one place where every command's failure becomes one line on stderr and an exit
    code (``EXIT_*``): a refusal or bad input names the problem; anything unexpected is an
    internal error, still one line, its traceback shown only with ``LAMPO_DEBUG=1``."""
    usage = _usage_errors()
    try:
        code: Any = app(args=argv, prog_name="lampo", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        return _fail("interrupted", EXIT_INTERRUPTED)
    except Exception as err:
        if _debugging():
            traceback.print_exception(err, file=sys.stderr)
        return _failure(err, usage)
    if code == EXIT_INTERRUPTED:  # typer turns a Ctrl-C inside a command into this code
        return _fail("interrupted", EXIT_INTERRUPTED)
    return code if isinstance(code, int) else 0


def _failure(err: Exception, usage: tuple[type[Exception], ...]) -> int:
    """The line and exit code of a command's failure."""
    refusal = _refusal_in(err)
    if isinstance(refusal, Unavailable):
        return _fail(str(refusal), EXIT_UNAVAILABLE)
    if refusal is not None:
        return _fail(str(refusal))
    if isinstance(err, usage):
        text = err.format_message() if hasattr(err, "format_message") else str(err)
        return _fail(f"{text} (see lampo --help)")
    if isinstance(err, sqlite3.Error):
        return _fail(f"database: {err}")
    if isinstance(err, OSError):
        return _fail(f"{err.strerror or err}: {err.filename or ''}".rstrip(": "))
    if isinstance(err, ImportError):  # a backend's extra is not installed
        return _fail(str(err))
    first = (str(err).strip().splitlines() or [""])[0]
    return _fail(
        f"internal error: {type(err).__name__}: {first} "
        f"(a bug in lampo; rerun with {DEBUG_VARIABLE}=1 to see where)",
        EXIT_INTERNAL,
    )


__all__ = ["app", "main"]
