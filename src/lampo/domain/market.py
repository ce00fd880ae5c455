"""Markets (a country with its currency and time zone) and sales channels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lampo.domain.bounds import show
from lampo.domain.catalog import check_id, check_name
from lampo.domain.errors import InvalidRequest
from lampo.domain.money import check_currency


@dataclass(frozen=True, slots=True)
class Market:
    """``code`` is the ISO 3166 country code (``CN``); ``tz`` an IANA zone (``Asia/Shanghai``)."""

    code: str
    name: str
    currency: str
    tz: str

    def __post_init__(self) -> None:
        check_id("market", self.code, 8)
        check_name("market name", self.name)
        check_currency(self.currency)
        if not isinstance(self.tz, str):
            raise InvalidRequest("tz", f"must be an IANA time zone name, got {show(self.tz)}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidRequest("tz", f"unknown time zone {show(self.tz)}") from None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def local(self, when: datetime) -> datetime:
        """``when`` (aware) as this market's wall-clock time."""
        return when.astimezone(self.zone)


class ChannelKind(StrEnum):
    ONLINE = "online"
    MARKETPLACE = "marketplace"
    STORE = "store"


@dataclass(frozen=True, slots=True)
class Channel:
    """Where a sale happens. ``name``: the marketplace or store id; ``referral``: what brought
    an online buyer (weibo, wechat, baidu ...)."""

    kind: ChannelKind = ChannelKind.ONLINE
    name: str = ""
    referral: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ChannelKind):
            try:
                object.__setattr__(self, "kind", ChannelKind(self.kind))
            except ValueError:
                kinds = ", ".join(k.value for k in ChannelKind)
                raise InvalidRequest("channel", f"{self.kind!r} is not one of {kinds}") from None
        if self.kind is not ChannelKind.ONLINE and not self.name:
            raise InvalidRequest("channel", f"a {self.kind.value} channel needs a name")
        if self.name:
            check_id("channel", self.name)
        if self.referral:
            check_id("referral", self.referral)
