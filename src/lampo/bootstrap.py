"""The one place that wires configuration, storage, clock and services together.

Nothing happens at import: every function builds what it is asked for when called.
Configuration is declared in ``lampo.config`` and read by its ``read``: arguments (flags)
over the environment over the library's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lampo.config import ENGINE, SOLDOUT_TTL, Settings, read
from lampo.domain.errors import InvalidRequest
from lampo.services.clock import Clock, ManualClock, utcnow
from lampo.services.sales import Sales
from lampo.sim.crowd import check_work
from lampo.sim.scenario import Scenario
from lampo.storage import Storage, from_url, urls


@dataclass(frozen=True, slots=True)
class Config:
    """The engine's settings (``lampo.config.ENGINE``: ``storage_url``, ``soldout_ttl``)."""

    storage_url: str
    soldout_ttl: float = SOLDOUT_TTL.default

    @classmethod
    def from_settings(cls, found: Settings) -> Config:
        return cls(**found.values(ENGINE))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Config:
        """Settings from the ``overrides`` (flags, by setting name: ``storage_url``,
        ``soldout_ttl``; None is not given), else ``environ`` (default ``os.environ``),
        else the library's defaults. The storage URL is checked (``storage.urls``) but not
        opened."""
        return cls.from_settings(read(ENGINE, environ, overrides))


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite://`` URL names (checked as ``lampo.storage`` does); else None."""
    checked = urls.parse(url)
    return Path(checked.address.path) if checked.backend.name == "sqlite" else None


def open_storage(url: str, must_exist: bool = False) -> Storage:
    """The storage ``url`` names. ``must_exist``: refuse a SQLite file that is not there
    (a read command should not create an empty database by mistake)."""
    if must_exist:
        path = sqlite_file(url)
        if path is not None and not path.is_file():
            raise InvalidRequest("storage", f"no database at {path} (from {url!r})")
    return from_url(url)


def build_sales(config: Config, clock: Clock = utcnow, storage: Storage | None = None) -> Sales:
    """The sale service over ``storage`` (or the storage the config names)."""
    return Sales(storage or from_url(config.storage_url), clock, config.soldout_ttl)


def build_simulation(config: Config, scenario: Scenario) -> tuple[Sales, ManualClock]:
    """A sale service on a virtual clock that starts at the scenario's first opening.
    A run beyond the budget (``crowd.check_work``) is refused before storage is opened."""
    check_work(scenario)
    clock = ManualClock(scenario.event.opens)
    return build_sales(config, clock), clock
