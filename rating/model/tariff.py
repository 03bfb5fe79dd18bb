"""Tariffs as data: slabs, time of use, fixed and custom charges, taxes.

These are the validated, in-memory form. `rating.config.tariff_file` reads them
from TOML; `docs/tariffs.md` documents the file format and
`docs/semantics.md` what each component charges.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from rating.errors import TariffError

SlabMode = Literal["graduated", "volume"]
LimitBasis = Literal["period", "per_day"]
TouMode = Literal["price", "slabs", "split_total", "matrix"]
DayType = Literal["weekday", "weekend", "holiday"]
DAY_TYPES: tuple[DayType, ...] = ("weekday", "weekend", "holiday")
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Slab:
    """One tier. `upper` is the cumulative upper bound in quantity units
    (kWh, m³, ...; per day when the slab set's basis is `per_day`), None for
    the last, open slab. A quantity equal to `upper` belongs to this slab."""

    upper: Decimal | None
    price: Decimal
    fee: Decimal = Decimal(0)


@dataclass(frozen=True)
class SlabSet:
    mode: SlabMode
    limit_basis: LimitBasis
    slabs: tuple[Slab, ...]

    def bounds(self, days_in_period: int) -> list[Decimal | None]:
        """Cumulative upper bounds for a period of that many days."""
        scale = days_in_period if self.limit_basis == "per_day" else 1
        return [None if s.upper is None else s.upper * scale for s in self.slabs]


@dataclass(frozen=True)
class TouPeriod:
    name: str
    price: Decimal | None = None  # price (mode price) or adder (mode split_total)
    slabs: SlabSet | None = None  # own slabs (mode slabs)
    tier_prices: tuple[Decimal, ...] | None = None  # one price per energy tier (mode matrix)


@dataclass(frozen=True)
class TouRule:
    """Applies to these months and day types; `spans` are
    (start_minute, end_minute, tou_index) covering the local day exactly."""

    months: frozenset[int]
    day_types: frozenset[DayType]
    spans: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class TimeOfUse:
    mode: TouMode
    periods: tuple[TouPeriod, ...]
    rules: tuple[TouRule, ...]

    def period_at(self, month: int, day_type: DayType, minute: int) -> int:
        """Index of the TOU period in force at `minute` of a local day."""
        for rule in self.rules:
            if month in rule.months and day_type in rule.day_types:
                for start, end, index in rule.spans:
                    if start <= minute < end:
                        return index
        raise TariffError(f"no time-of-use period for month {month}, {day_type}, minute {minute}")

    def day_spans(self, month: int, day_type: DayType) -> tuple[tuple[int, int, int], ...]:
        """The (start_minute, end_minute, tou_index) spans of one local day."""
        for rule in self.rules:
            if month in rule.months and day_type in rule.day_types:
                return rule.spans
        raise TariffError(f"no time-of-use schedule for month {month}, {day_type}")


@dataclass(frozen=True)
class Tax:
    name: str
    percent: Decimal
    on: tuple[str, ...]  # component names: energy, slab_fee, fixed_charge, area_charge, ...


@dataclass(frozen=True)
class Package:
    """A price per started block of `block` units of the period's total,
    after `free` units (docs/tariffs.md, "package")."""

    free: Decimal
    block: Decimal
    price: Decimal


@dataclass(frozen=True)
class TariffVersion:
    tariff_id: str
    effective_from: dt.date
    unit: str = ""
    energy: SlabSet | None = None  # without TOU; or the total's slabs in split_total
    tou: TimeOfUse | None = None
    package: Package | None = None
    export_price: Decimal | None = None  # an export register's credit per unit (docs/tariffs.md, "export")
    fixed_charge: Decimal | None = None
    area_charge_rate: Decimal | None = None
    fees: tuple[tuple[str, Decimal], ...] = ()
    minimum_charge: Decimal | None = None
    minimum_on: tuple[str, ...] | None = None  # None: every non-tax line
    taxes: tuple[Tax, ...] = ()
    prorate: bool = True  # part periods prorate amounts and slab bounds (docs/tariffs.md)

    @property
    def tou_count(self) -> int:
        return len(self.tou.periods) if self.tou else 1

    @property
    def measures(self) -> bool:
        """Whether some component prices the period's consumption."""
        return (self.energy is not None or self.tou is not None or self.package is not None
                or self.export_price is not None)


@dataclass(frozen=True)
class Tariff:
    id: str
    name: str
    versions: tuple[TariffVersion, ...]  # sorted by effective_from, distinct dates
    source: str = field(default="", compare=False)  # the file (or document) defining it, for errors

    def version_on(self, day: dt.date, *, owner: str = "") -> TariffVersion:
        """The version in force on `day`: the latest effective_from <= day.
        `owner` names who asked (a meter and its registry row) in the error."""
        chosen = None
        for version in self.versions:
            if version.effective_from <= day:
                chosen = version
        if chosen is None:
            raise self.no_version_error(day, owner=owner)
        return chosen

    def no_version_error(self, day: dt.date, *, owner: str = "") -> TariffError:
        """The error for a day before this tariff's first version."""
        source = f" (defined in {self.source})" if self.source else ""
        return TariffError(
            f"tariff {self.id!r}{source} has no version in force on {day.isoformat()} (the first is "
            f"{self.versions[0].effective_from.isoformat()}); add a version from that day or earlier",
            where=owner or None, tariff=self.id)

    @property
    def charges_per_area(self) -> bool:
        """Whether some version has an area charge (accounts then need an area)."""
        return any(v.area_charge_rate is not None for v in self.versions)

    @property
    def tou_count(self) -> int:
        """Bucket width: the most TOU periods any version has."""
        return max(v.tou_count for v in self.versions)


def component_order(version: TariffVersion) -> tuple[str, ...]:
    """The components a version charges, in the order its lines are listed."""
    names = []
    if version.energy is not None or version.tou is not None:
        names.append("energy")
    if any(slab.fee for slab_set in slab_sets(version) for slab in slab_set.slabs):
        names.append("slab_fee")
    if version.package is not None:
        names.append("package")
    if version.export_price is not None:
        names.append("export")
    if version.fixed_charge is not None:
        names.append("fixed_charge")
    if version.area_charge_rate is not None:
        names.append("area_charge")
    names += [f"fee:{name}" for name, _ in version.fees]
    if version.minimum_charge is not None:
        names.append("minimum_charge")
    names += [f"tax:{tax.name}" for tax in version.taxes]
    return tuple(names)


def slab_sets(version: TariffVersion) -> list[SlabSet]:
    """Every slab set a version prices with: its own, or each TOU period's."""
    sets = [version.energy] if version.energy is not None else []
    if version.tou is not None:
        sets += [p.slabs for p in version.tou.periods if p.slabs is not None]
    return sets
