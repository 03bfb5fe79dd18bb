"""Tariffs of rising complexity for the benchmark suite, and the plain tables
(boundaries, bucket slots, slab bounds and prices) that the numpy and
pyarrow peers rate with.

The tariffs are built from the `rating.model.tariff` dataclasses, like
`bench.workloads.graduated_tariff` (the 4-slab case, reused as is):

    flat        one price for every unit
    slabs_4     4 graduated slabs of 100 kWh (bench.workloads.graduated_tariff)
    slabs_12    12 graduated slabs of 25 kWh
    tou_slabs   3 time-of-use periods (off-peak, normal, peak; weekends all
                off-peak), each with its own 4 graduated slabs
    tou_matrix  the same 3 periods × 4 tiers over the period's total as an
                energy rate matrix (tou mode matrix: a price per period and tier)

The numpy and pyarrow peers rate graduated slabs per TOU period only, so the
matrix runs beside the kernel's ceiling and the reference alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from bench.workloads import graduated_tariff
from rating.config.loader import Config
from rating.consumption.timeline import build_timeline
from rating.model.site import PRICE_DECIMALS
from rating.model.tariff import Slab, SlabSet, Tariff, TariffVersion, TimeOfUse, TouPeriod, TouRule

ALL_MONTHS = frozenset(range(1, 13))
OPEN_SLAB_QTY = np.iinfo(np.int64).max // 4  # the open slab's upper bound, in quantity units


def _graduated(count: int, width_kwh: int, first_price: Decimal, step: Decimal) -> SlabSet:
    slabs = tuple(
        Slab(Decimal(width_kwh * (i + 1)) if i < count - 1 else None, first_price + step * i)
        for i in range(count)
    )
    return SlabSet("graduated", "period", slabs)


def flat_tariff() -> Tariff:
    version = TariffVersion("DOM", dt.date(2020, 1, 1), unit="kWh",
                            energy=SlabSet("graduated", "period", (Slab(None, Decimal("6.35")),)))
    return Tariff("DOM", "domestic, flat", (version,))


def slabs_tariff(count: int) -> Tariff:
    """`count` graduated slabs of 25 kWh (12 slabs: 0-25, 25-50, ... 275+)."""
    version = TariffVersion("DOM", dt.date(2020, 1, 1), unit="kWh",
                            energy=_graduated(count, 25, Decimal("2.10"), Decimal("0.85")))
    return Tariff("DOM", f"domestic, {count} slabs", (version,))


_TOU_RULES = (
    TouRule(ALL_MONTHS, frozenset({"weekday"}),
            ((0, 360, 0), (360, 1080, 1), (1080, 1320, 2), (1320, 1440, 0))),
    TouRule(ALL_MONTHS, frozenset({"weekend", "holiday"}), ((0, 1440, 0),)),
)
_TOU_PRICES = (("offpeak", Decimal("2.40"), Decimal("1.10")), ("normal", Decimal("3.90"), Decimal("1.25")),
               ("peak", Decimal("5.75"), Decimal("1.60")))


def tou_slabs_tariff() -> Tariff:
    """Off-peak 22:00-06:00, normal 06:00-18:00, peak 18:00-22:00 on weekdays;
    weekends and holidays off-peak all day. Each period has 4 slabs."""
    periods = tuple(TouPeriod(name, slabs=_graduated(4, 50, first, step))
                    for name, first, step in _TOU_PRICES)
    version = TariffVersion("DOM", dt.date(2020, 1, 1), unit="kWh",
                            tou=TimeOfUse("slabs", periods, _TOU_RULES))
    return Tariff("DOM", "domestic, time of use x 4 slabs", (version,))


def tou_matrix_tariff() -> Tariff:
    """The periods of `tou_slabs_tariff`, 4 tiers of 50 kWh over the period's
    total, each (period, tier) at the price that period's slab has there."""
    tiers = SlabSet("graduated", "period", tuple(
        Slab(Decimal(50 * (i + 1)) if i < 3 else None, Decimal(0)) for i in range(4)))
    periods = tuple(TouPeriod(name, tier_prices=tuple(first + step * i for i in range(4)))
                    for name, first, step in _TOU_PRICES)
    version = TariffVersion("DOM", dt.date(2020, 1, 1), unit="kWh", energy=tiers,
                            tou=TimeOfUse("matrix", periods, _TOU_RULES))
    return Tariff("DOM", "domestic, time of use x 4 tiers, rate matrix", (version,))


# name -> (label, builder), in order of complexity
TARIFFS = {
    "flat": ("flat", flat_tariff),
    "slabs_4": ("4 slabs", graduated_tariff),
    "slabs_12": ("12 slabs", lambda: slabs_tariff(12)),
    "tou_slabs": ("TOU 3 x 4 slabs", tou_slabs_tariff),
    "tou_matrix": ("TOU 3 x 4 rate matrix", tou_matrix_tariff),
}
PEERLESS = {"tou_matrix": "the numpy and pyarrow peers rate graduated slabs per TOU period only"}


@dataclass(frozen=True)
class RatingTables:
    """One tariff's rating over a time range as plain arrays.

    Segment j of the timeline is (bounds_us[j], bounds_us[j+1]] and adds to
    bucket slot `segment_slots[j]` = period × tou_count + tou. Slab k of TOU
    period t covers quantities (lower_qty[t, k], upper_qty[t, k]] at
    price_micro[t, k] (10^-6 currency units per quantity unit of 10^-3)."""

    bounds_us: np.ndarray  # int64 (S + 1,)
    segment_slots: np.ndarray  # int64 (S,)
    slot_count: int
    tou_count: int
    lower_qty: np.ndarray  # int64 (tou_count, K)
    upper_qty: np.ndarray  # int64 (tou_count, K)
    price_micro: np.ndarray  # int64 (tou_count, K)
    amount_divisor: int  # qty units x price micro -> minor units
    rounding: str


def rating_tables(config: Config, start_us: int, end_us: int) -> RatingTables:
    """Tables of the config's single (graduated, single-version) tariff."""
    (tariff,) = config.tariffs.values()
    (version,) = tariff.versions
    site = config.site
    timeline = build_timeline(site.default_cycle, tariff, site, start_us, end_us)
    slab_sets = [p.slabs for p in version.tou.periods] if version.tou else [version.energy]
    width = max(len(s.slabs) for s in slab_sets if s is not None)
    scale = 10**site.quantity_decimals
    lower = np.zeros((len(slab_sets), width), dtype=np.int64)
    upper = np.zeros((len(slab_sets), width), dtype=np.int64)  # padding: empty slabs
    price = np.zeros((len(slab_sets), width), dtype=np.int64)
    for t, slab_set in enumerate(slab_sets):
        if slab_set is None or slab_set.mode != "graduated" or slab_set.limit_basis != "period":
            raise ValueError("the peers rate graduated slabs over the period only")
        previous = 0
        for k, slab in enumerate(slab_set.slabs):
            top = OPEN_SLAB_QTY if slab.upper is None else int(slab.upper * scale)
            lower[t, k], upper[t, k] = previous, top
            price[t, k] = int(slab.price * 10**PRICE_DECIMALS)
            previous = top
        lower[t, len(slab_set.slabs):] = previous
        upper[t, len(slab_set.slabs):] = previous
    return RatingTables(
        bounds_us=timeline.bounds_us,
        segment_slots=timeline.slots.astype(np.int64),
        slot_count=timeline.bucket_count,
        tou_count=timeline.tou_count,
        lower_qty=lower,
        upper_qty=upper,
        price_micro=price,
        amount_divisor=10 ** (site.quantity_decimals + PRICE_DECIMALS - site.minor_unit_exponent),
        rounding=site.rounding,
    )
