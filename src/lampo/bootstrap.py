"""The one place that wires configuration, storage, clock and services together.

Nothing happens at import: every function builds what it is asked for when called.
Configuration comes from arguments, else from the environment (``LAMPO_STORAGE``,
``LAMPO_SOLDOUT_TTL``), else from the defaults below.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lampo.domain.errors import InvalidRequest
from lampo.services.clock import Clock, ManualClock, utcnow
from lampo.services.sales import Sales
from lampo.sim.crowd import check_work
from lampo.sim.scenario import Scenario
from lampo.storage import Storage, from_url, urls

SQLITE_DEFAULT = "sqlite:///lampo.db"
MEMORY = "memory://"


def default_storage_url() -> str:
    """The embedded SQLite file, when that backend is installed; memory otherwise."""
    if importlib.util.find_spec("lampo.storage.sqlite") is not None:
        return SQLITE_DEFAULT
    return MEMORY


@dataclass(frozen=True, slots=True)
class Config:
    storage_url: str
    #: Seconds a sold-out SKU is refused from memory without asking storage (0: never).
    soldout_ttl: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Config:
        """Settings from ``environ`` (default ``os.environ``); a ``None`` override is unset.
        The storage URL is checked (``storage.urls``) but not opened."""
        env = os.environ if environ is None else environ
        url = overrides.get("storage_url") or env.get("LAMPO_STORAGE") or default_storage_url()
        ttl_text = overrides.get("soldout_ttl") or env.get("LAMPO_SOLDOUT_TTL") or 0.0
        try:
            ttl = float(str(ttl_text))
        except ValueError:
            raise InvalidRequest("soldout_ttl", f"not a number: {ttl_text!r}") from None
        if not 0 <= ttl < 3600:
            raise InvalidRequest("soldout_ttl", "must be between 0 and 3600 seconds")
        urls.parse(str(url))  # a malformed storage URL is refused here, before anything runs
        return cls(str(url), ttl)


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
