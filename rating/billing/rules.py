"""The typed rules of a site's billing: charge heads, late fee and interest
rules, taxes and the rounding-off line, as `rating.billing.config` reads them
from `billing.toml`. Rates are kept exact twice: as Decimal (for the
reference and the rendered bill) and as integers times 10^6 (the fast path).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from rating.billing.documents import Occupancy
from rating.model.site import Site

RATE_DECIMALS = 6  # rates, percentages and areas are exact at 10^-6
RATE_SCALE = 10**RATE_DECIMALS


class HeadKind(StrEnum):
    AREA = "area"  # rate per area unit per month
    FIXED = "fixed"  # amount per month
    COUNT = "count"  # rate per piece per month (parking slots)
    FUND = "fund"  # percent per annum of the construction cost
    NON_OCCUPANCY = "non_occupancy"  # percent of named service heads, units let out
    METERED = "metered"  # the rated lines of named tariffs
    SHARE = "share"  # the shared-area share lines of named groups
    ITEM = "item"  # one-off items given per unit and cycle


class Method(StrEnum):
    SIMPLE_DAILY = "simple_daily"  # rate per annum, actual/365, per day late
    MONTHLY_PERCENT = "monthly_percent"  # rate per whole month in arrears
    FLAT = "flat"  # amount per late bill
    PER_DAY = "per_day"  # amount per day late


@dataclass(frozen=True)
class Applies:
    """Which units and cycles a head or rule applies to; empty means all."""

    tags: frozenset[str] = frozenset()
    occupancy: frozenset[Occupancy] = frozenset()
    active_from: dt.date | None = None
    active_until: dt.date | None = None
    everywhere: bool = field(init=False)  # no condition: every unit, every cycle

    def __post_init__(self) -> None:
        everywhere = not (self.tags or self.occupancy or self.active_from or self.active_until)
        object.__setattr__(self, "everywhere", everywhere)


@dataclass(frozen=True)
class Head:
    """A charge head. `rate` is per month (area, fixed, count), percent per
    annum (fund) or percent (non_occupancy); `rate_u` is it times 10^6."""

    name: str
    kind: HeadKind
    title: str
    where: str
    rate: Decimal = Decimal(0)
    rate_u: int = 0
    prorate: bool = True
    rounding: str = "half_up"
    applies: Applies = Applies()
    area_unit: str = "m²"
    count: str = ""  # COUNT: the Unit.counts name
    cost_per_area: Decimal | None = None  # FUND: construction cost per area unit; None: the unit's own
    cost_per_area_u: int | None = None
    of: tuple[str, ...] = ()  # NON_OCCUPANCY: the service heads it is a percent of
    amount_max_minor: int | None = None  # NON_OCCUPANCY: cap per month
    tariffs: tuple[str, ...] = ()  # METERED
    groups: tuple[str, ...] = ()  # SHARE
    basis: tuple[tuple[str, str], ...] = field(init=False)  # what every line of the head shows

    def __post_init__(self) -> None:
        rate = {HeadKind.AREA: f"{self.rate} per {self.area_unit} a month",
                HeadKind.FIXED: f"{self.rate} a month", HeadKind.COUNT: f"{self.rate} each a month",
                HeadKind.FUND: f"{self.rate} % a year",
                HeadKind.NON_OCCUPANCY: f"{self.rate} %"}.get(self.kind)
        shown = (("rate", rate),) if rate else ()
        object.__setattr__(self, "basis", shown + (("rounding", self.rounding),))


@dataclass(frozen=True)
class InterestRule:
    """A late fee or interest rule (docs/billing.md, "Late fees and interest")."""

    name: str
    method: Method
    head: str
    where: str
    title: str = ""
    rate: Decimal = Decimal(0)  # percent: per annum (simple_daily) or per month (monthly_percent)
    rate_u: int = 0
    amount_minor: int = 0  # flat: per bill; per_day: per day
    grace_days: int = 0
    grace_for: str = "all"  # all | current (dues falling due inside the cycle)
    interest_from: str = "due_date"  # due_date | grace_end
    minimum_outstanding_minor: int = 0
    amount_max_minor: int | None = None
    rate_max: Decimal | None = None  # percent per annum the rule's charge may not exceed
    rate_max_u: int | None = None
    on_heads: tuple[str, ...] = ()  # empty: every charge head
    on_interest: bool = False  # interest and late fees bear it too
    compounding: str = "none"  # none | annual
    once: bool = False  # flat: only in the cycle the bill falls late
    rounding: str = "half_up"


@dataclass(frozen=True)
class TaxPart:
    name: str  # the head of its line, e.g. cgst
    title: str
    rate: Decimal
    rate_u: int


@dataclass(frozen=True)
class Turnover:
    """A dated setting: from this day the society's turnover does (not) exceed its limit."""

    since: dt.date
    exceeds: bool


@dataclass(frozen=True)
class TaxRule:
    name: str
    where: str
    parts: tuple[TaxPart, ...]
    on_heads: tuple[str, ...]
    pass_through: tuple[str, ...] = ()  # heads left out of the threshold test (water, property tax)
    threshold_monthly_minor: int | None = None  # per unit per month; None: always
    excess_only: bool = False  # tax only what exceeds the threshold
    turnover: tuple[Turnover, ...] | None = None  # None: no turnover condition
    rounding: str = "half_up"
    invoice: tuple[tuple[str, str], ...] = ()  # what a tax invoice must show (GSTIN, SAC, place of supply)

    def turnover_holds(self, day: dt.date) -> bool:
        """The turnover condition on `day`: the latest setting since then; none: it does not hold."""
        if self.turnover is None:
            return True
        held = [t.exceeds for t in self.turnover if t.since <= day]
        return bool(held) and held[-1]


@dataclass(frozen=True)
class RoundOff:
    head: str = "round_off"
    to_minor: int = 100  # the bill's charges are rounded to a multiple of this
    rounding: str = "half_up"
    to_text: str = "1.00"  # to_minor in major units, as the line shows it

    @property
    def basis(self) -> tuple[tuple[str, str], ...]:
        return (("to", self.to_text), ("rounding", self.rounding))


@dataclass(frozen=True)
class BillingConfig:
    path: str
    site: Site
    heads: dict[str, Head]
    interest: tuple[InterestRule, ...] = ()
    taxes: tuple[TaxRule, ...] = ()
    round_off: RoundOff | None = None
    due_days: int = 15
    prepaid_tariffs: frozenset[str] = frozenset()  # debited from wallets, never billed here
    rated_only_tariffs: frozenset[str] = frozenset()  # rated, but the heads bill what they charge

    head_of_tariff: dict[str, Head] = field(init=False)
    head_of_group: dict[str, Head] = field(init=False)
    unbilled_tariffs: frozenset[str] = field(init=False)  # whose rated lines a bill leaves out

    def __post_init__(self) -> None:
        object.__setattr__(self, "unbilled_tariffs", self.prepaid_tariffs | self.rated_only_tariffs)
        by_tariff = {t: h for h in self.heads.values() for t in h.tariffs}
        by_group = {g: h for h in self.heads.values() for g in h.groups}
        object.__setattr__(self, "head_of_tariff", by_tariff)
        object.__setattr__(self, "head_of_group", by_group)
