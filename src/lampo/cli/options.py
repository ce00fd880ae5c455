"""Options that several commands share, and any setting of ``lampo.config`` as an option.

An option made from a setting (``setting_option``) has no default of its own and reads no
variable itself: a flag not given arrives as None, and ``config.read`` puts flags over the
environment over the defaults, in one place, for the command line and the server's
workers alike. Its ``--help`` shows the setting's bound, default and variable, written
from the declaration. A flag that its setting's parser refuses is a usage error.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.markup import escape

from lampo.config import SECRETS_FILE, STORAGE, Real, Setting, Whole, default_text, read
from lampo.domain.errors import InvalidRequest
from lampo.web.config import read_secrets_file


def help_text(
    setting: Setting[Any], *, server: bool = False, help: str | None = None, required: bool = False
) -> str:
    """The option's help (``help``, else the setting's), its bound, default (``required``:
    none) and variable, as Rich markup: typer reads help as markup, and a bracket is text
    here."""
    text = help or setting.help
    if isinstance(setting.kind, Real | Whole):  # other kinds' bounds are in their help
        text += f" From {setting.kind.bound}."
    default = "required" if required else f"default: {default_text(setting, server)}"
    return escape(f"{text} [{default}] [env var: {setting.env}]")


def _parser(setting: Setting[Any]) -> Callable[[str], Any]:
    """The setting's parser for a flag's text; a refusal is a usage error naming the flag."""

    def parse(text: str) -> Any:
        try:
            return setting.kind.valid(text, setting.option or setting.name)
        except InvalidRequest as refused:
            problem = refused.problem
        # raised outside the handler: with the refusal as its context, ``cli.main`` would
        # answer the refusal, not the usage error (which points to --help)
        raise typer.BadParameter(problem)

    return parse


def setting_option(
    setting: Setting[Any], *, server: bool = False, help: str | None = None, required: bool = False
) -> Any:
    """The ``typer.Option`` of ``setting``: its flag and help; None when not given (then
    ``config.read`` takes the variable or the default; ``required``: the command has none)."""
    option = setting.option
    if option is None:
        raise ValueError(f"{setting.name} has no flag")
    shown = help_text(setting, server=server, help=help, required=required)
    if setting.kind.python is bool:  # a switch: --name/--no-name, no value to parse
        return typer.Option(f"{option}/--no-{option[2:]}", help=shown, hidden=setting.hidden)
    return typer.Option(option, help=shown, parser=_parser(setting), hidden=setting.hidden)


def with_setting_options(
    settings: Sequence[Setting[Any]], *, server: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give ``command(**given)`` one keyword option per setting (its name), generated from
    the declarations: typer reads a command's options from its signature."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        parameters = [
            inspect.Parameter(
                s.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=cast(Any, Annotated)[
                    s.kind.python | None, setting_option(s, server=server)
                ],
            )
            for s in settings
        ]
        command.__dict__["__signature__"] = inspect.Signature(parameters)
        return command

    return decorate


#: ``--storage URL``: flag over ``LAMPO_STORAGE`` over ``sqlite:///lampo.db``.
StorageOpt = Annotated[str | None, setting_option(STORAGE)]

#: ``--secrets-file PATH``: flag over ``LAMPO_SECRETS_FILE`` over ``lampo-secrets.env``.
SecretsOpt = Annotated[Path | None, setting_option(SECRETS_FILE)]


def read_secret(setting: Setting[Any], secrets_file: Path | None) -> str:
    """A server secret as ``lampo serve`` has it: its variable, else the secrets file
    (``--secrets-file``, ``LAMPO_SECRETS_FILE`` or the default)."""
    path = read([SECRETS_FILE], os.environ, {SECRETS_FILE.name: secrets_file})[SECRETS_FILE]
    secret = os.environ.get(setting.env) or read_secrets_file(path).get(setting.env)
    if not secret:
        raise InvalidRequest(
            setting.name,
            f"no {setting.env} in the environment or in {path}; "
            "start `lampo serve` once to create it",
        )
    return secret
