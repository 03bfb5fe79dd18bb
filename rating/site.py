"""Site configuration: currency, time zone, rounding rule, billing cycle, holidays."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rating.errors import ConfigError

ROUNDING_RULES = {"half_even": ROUND_HALF_EVEN, "half_up": ROUND_HALF_UP}
PRICE_DECIMALS = 6  # prices are stored as int64 counts of 10^-6 currency units
FUTURE_TOLERANCE_HOURS_MAX = 10 * 366 * 24  # ten years: beyond that the window means nothing


@dataclass(frozen=True)
class Cycle:
    """A billing cycle: calendar months, or months starting on an anchor day (1-28)."""

    anchor_day: int = 1  # 1 is the calendar month

    def __post_init__(self) -> None:
        if not 1 <= self.anchor_day <= 28:
            raise ConfigError(f"anchor day must be 1..28, got {self.anchor_day}")

    @classmethod
    def parse(cls, text: str, *, where: str) -> Cycle:
        """`calendar_month` or `anchor:<day>`."""
        text = text.strip()
        if text in ("", "calendar_month"):
            return cls(1)
        if text.startswith("anchor:") and text[7:].isdigit():
            day = int(text[7:])
            if 1 <= day <= 28:
                return cls(day)
        raise ConfigError(
            f"billing cycle {text!r} is neither 'calendar_month' nor 'anchor:<1..28>'",
            where=where,
        )

    def __str__(self) -> str:
        return "calendar_month" if self.anchor_day == 1 else f"anchor:{self.anchor_day}"


@dataclass(frozen=True)
class Site:
    name: str = "site"
    currency: str = "INR"
    minor_unit_exponent: int = 2
    time_zone: str = "UTC"
    rounding: str = "half_even"
    quantity_decimals: int = 3
    default_cycle: Cycle = Cycle()
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    # A reading later than now plus this is a `future_reading` (docs/semantics.md).
    future_tolerance_hours: int = 24

    def __post_init__(self) -> None:
        if not (type(self.future_tolerance_hours) is int
                and 0 <= self.future_tolerance_hours <= FUTURE_TOLERANCE_HOURS_MAX):
            raise ConfigError("future_tolerance_hours must be a whole number "
                              f"0..{FUTURE_TOLERANCE_HOURS_MAX}, got {self.future_tolerance_hours!r}")
        if self.rounding not in ROUNDING_RULES:
            raise ConfigError(f"rounding must be one of {sorted(ROUNDING_RULES)}, got {self.rounding!r}")
        if not 0 <= self.minor_unit_exponent <= 4:
            raise ConfigError(f"minor_unit_exponent must be 0..4, got {self.minor_unit_exponent}")
        if not 0 <= self.quantity_decimals <= 6:
            raise ConfigError(f"quantity_decimals must be 0..6, got {self.quantity_decimals}")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {self.time_zone!r}") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def rounding_mode(self) -> str:
        """The `decimal` rounding constant of the site's rule."""
        return ROUNDING_RULES[self.rounding]

    @property
    def minor_unit(self) -> Decimal:
        """The smallest amount of money, e.g. Decimal('0.01')."""
        return Decimal(1).scaleb(-self.minor_unit_exponent)

    @property
    def quantity_unit(self) -> Decimal:
        """The quantity resolution, e.g. Decimal('0.001')."""
        return Decimal(1).scaleb(-self.quantity_decimals)


_SITE_KEYS = {
    "name", "currency", "minor_unit_exponent", "time_zone", "rounding",
    "quantity_decimals", "billing_cycle", "holidays", "future_tolerance_hours",
}


def site_from_mapping(data: dict, *, where: str) -> Site:
    """Build a Site from the `[site]` table of a site file."""
    unknown = set(data) - _SITE_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)}", where=where)
    kwargs = {k: data[k] for k in _SITE_KEYS - {"billing_cycle", "holidays"} if k in data}
    for key in ("minor_unit_exponent", "quantity_decimals", "future_tolerance_hours"):
        if key in kwargs and not isinstance(kwargs[key], int):
            raise ConfigError(f"{key} must be an integer", where=f"{where}.{key}")
    holidays = []
    for i, day in enumerate(data.get("holidays", [])):
        if isinstance(day, dt.date) and not isinstance(day, dt.datetime):
            holidays.append(day)
            continue
        try:
            holidays.append(dt.date.fromisoformat(str(day)))
        except ValueError as exc:
            raise ConfigError(f"not a date: {day!r}", where=f"{where}.holidays[{i}]") from exc
    cycle = Cycle.parse(str(data.get("billing_cycle", "calendar_month")), where=f"{where}.billing_cycle")
    try:
        return Site(default_cycle=cycle, holidays=frozenset(holidays), **kwargs)
    except ConfigError as exc:
        raise ConfigError(exc.message, where=where) from None


def load_site_file(path: str | Path) -> tuple[Site, dict]:
    """Read a site TOML file; returns the Site and the whole parsed document.

    The document's other tables (tariff and registry paths) are read by
    `rating.config`.
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as exc:
        raise ConfigError(f"cannot read site file: {exc.strerror}", where=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=str(path)) from exc
    return site_from_mapping(doc.get("site", {}), where=f"{path}[site]"), doc
