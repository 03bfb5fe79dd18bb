"""Site configuration: currency, time zone, rounding rule, billing cycle, holidays."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rating.errors import ConfigError
from rating.inputs.textfile import load_toml

ROUNDING_RULES = {"half_even": ROUND_HALF_EVEN, "half_up": ROUND_HALF_UP}
PRICE_DECIMALS = 6  # prices are stored as int64 counts of 10^-6 currency units
FUTURE_TOLERANCE_HOURS_MAX = 10 * 366 * 24  # ten years: beyond that the window means nothing


@dataclass(frozen=True)
class Cycle:
    """A billing cycle: calendar months, or months starting on an anchor day (1-28).

    `months` is how many months a bill covers: 1, or 3 for quarterly bills
    (quarters start in January, April, July and October, on the anchor day).
    Rating periods are always the months from the anchor day; a quarterly
    bill carries its three months' rated lines (docs/billing.md).
    """

    anchor_day: int = 1  # 1 is the calendar month
    months: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.anchor_day <= 28:
            raise ConfigError(f"anchor day must be 1..28, got {self.anchor_day}")
        if self.months not in (1, 3):
            raise ConfigError(f"a billing cycle is 1 or 3 months, got {self.months}")

    @classmethod
    def parse(cls, text: str, *, where: str) -> Cycle:
        """`calendar_month` (or `monthly`), `anchor:<day>`, `quarterly` or
        `quarterly:anchor:<day>`."""
        given = text = text.strip()
        months = 1
        if text.startswith("quarterly"):
            months, text = 3, text[len("quarterly"):].removeprefix(":")
        if text in ("", "calendar_month", "monthly"):
            return cls(1, months)
        if text.startswith("anchor:") and text[7:].isascii() and text[7:].isdigit():
            day = int(text[7:])
            if 1 <= day <= 28:
                return cls(day, months)
        raise ConfigError(
            f"billing cycle {given!r} is none of 'calendar_month', 'monthly', 'anchor:<1..28>', "
            "'quarterly', 'quarterly:anchor:<1..28>'",
            where=where,
        )

    def __str__(self) -> str:
        monthly = "calendar_month" if self.anchor_day == 1 else f"anchor:{self.anchor_day}"
        if self.months == 1:
            return monthly
        return "quarterly" if self.anchor_day == 1 else f"quarterly:{monthly}"


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
            raise ConfigError(f"rounding must be one of {sorted(ROUNDING_RULES)}, got {self.rounding!r}",
                              field="rounding")
        if not 0 <= self.minor_unit_exponent <= 4:
            raise ConfigError(f"minor_unit_exponent must be 0..4, got {self.minor_unit_exponent}",
                              field="minor_unit_exponent")
        if not 0 <= self.quantity_decimals <= 6:
            raise ConfigError(f"quantity_decimals must be 0..6, got {self.quantity_decimals}",
                              field="quantity_decimals")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a folder ("America")
            raise ConfigError(f"unknown time zone {self.time_zone!r}", field="time_zone") from exc

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


# The [site] table: each key and the TOML type its value must have. This is
# the file's one schema: a value of the right type is then checked by Site
# itself (ranges, rule names, time zone), and every error names the key.
_SITE_SCHEMA: dict[str, tuple[type, str]] = {
    "name": (str, "a string"),
    "currency": (str, "a string"),
    "minor_unit_exponent": (int, "an integer"),
    "time_zone": (str, "a string"),
    "rounding": (str, "a string"),
    "quantity_decimals": (int, "an integer"),
    "billing_cycle": (str, "a string"),
    "holidays": (list, "an array of dates"),
    "future_tolerance_hours": (int, "an integer"),
}


def site_from_mapping(data: object, *, where: str) -> Site:
    """Build a Site from the `[site]` table of a site file."""
    if not isinstance(data, dict):
        raise ConfigError(f"must be a table ([site]), got {data!r}", where=where)
    unknown = sorted(set(data) - set(_SITE_SCHEMA))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}; known: {', '.join(_SITE_SCHEMA)}", where=where)
    for key, value in data.items():
        kind, expected = _SITE_SCHEMA[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ConfigError(f"must be {expected}, got {value!r}", where=f"{where}.{key}", field=key)
    holidays = frozenset(_holiday(day, where=f"{where}.holidays[{i}]")
                         for i, day in enumerate(data.get("holidays", [])))
    cycle = Cycle.parse(data.get("billing_cycle", "calendar_month"), where=f"{where}.billing_cycle")
    settings = {k: v for k, v in data.items() if k not in ("billing_cycle", "holidays")}
    try:
        return Site(default_cycle=cycle, holidays=holidays, **settings)
    except ConfigError as exc:
        field = exc.details.get("field")
        raise ConfigError(exc.message, where=f"{where}.{field}" if field else where, field=field) from None


def _holiday(day: object, *, where: str) -> dt.date:
    """A TOML date, or a string holding an ISO date."""
    if isinstance(day, dt.date) and not isinstance(day, dt.datetime):
        return day
    try:
        if isinstance(day, str):
            return dt.date.fromisoformat(day)
    except ValueError:
        pass
    raise ConfigError(f"not a date: {day!r}", where=where)


def load_site_file(path: str | Path) -> tuple[Site, dict]:
    """Read a site TOML file; returns the Site and the whole parsed document.

    The document's other tables (tariff and registry paths) are read by
    `rating.config.loader`.
    """
    path = Path(path)
    doc = load_toml(path, error=ConfigError, what="site file")
    return site_from_mapping(doc.get("site", {}), where=f"{path}[site]"), doc
