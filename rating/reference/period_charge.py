"""The charge of one billing period: slabs, TOU, fixed, area, fees, minimum, taxes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import (
    Decimal,
)
from fractions import Fraction

from rating.errors import AmountOverflowError, TariffError
from rating.model.registry import Account
from rating.model.site import Site
from rating.model.tariff import SlabSet, TariffVersion
from rating.reference.calendar import Period
from rating.reference.meters import qty_decimal
from rating.reference.records import INT64_MAX, ROUNDING


@dataclass(frozen=True)
class Days:
    """The days a period charges: `active` of its `period` days. A part period
    (0 < active < period, on a tariff that prorates) charges its per-period
    amounts × active / period and scales its slab bounds by the same ratio."""

    active: int
    period: int

    @property
    def part(self) -> bool:
        return 0 < self.active < self.period

# --------------------------------------------------------------------------- #
# The charge of a billing period
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Charge:
    """A line before it is given its account, meter, tariff and period."""

    component: str
    tou_index: int | None
    tou_name: str | None
    slab: int | None
    quantity: Decimal | None
    unit_price: Decimal | None
    amount: Decimal


def round_money(value: Decimal, site: Site) -> Decimal:
    """Each line is rounded on its own to the minor unit with the site's rule
    (half_even, or half_up = half away from zero)."""
    amount = value.quantize(site.minor_unit, rounding=site.rounding_mode, context=ROUNDING)
    if abs(amount.scaleb(site.minor_unit_exponent)) > INT64_MAX:
        raise AmountOverflowError(f"amount {amount} exceeds the int64 money range")
    return amount


def _slab_bounds(slabs: SlabSet, days: int, site: Site, *, tariff_id: str) -> list[int | None]:
    """Cumulative upper bounds in quantity units; `per_day` bounds are
    multiplied by the number of days of the billing period.
    CHOICE: a (scaled) bound finer than the quantity resolution, bounds that do
    not increase, or a last slab that is not open are a TariffError."""
    bounds: list[int | None] = []
    for i, bound in enumerate(slabs.bounds(days)):
        if bound is None:
            if i != len(slabs.slabs) - 1:
                raise TariffError("only the last slab may be open", where=f"tariff {tariff_id!r}")
            bounds.append(None)
            continue
        units = bound.scaleb(site.quantity_decimals)
        if units != units.to_integral_value():
            raise TariffError(
                f"slab bound {bound} is not a multiple of {site.quantity_unit}",
                where=f"tariff {tariff_id!r}",
            )
        if bounds and (bounds[-1] is None or int(units) <= bounds[-1]):
            raise TariffError("slab bounds must increase", where=f"tariff {tariff_id!r}")
        bounds.append(int(units))
    if not bounds or bounds[-1] is not None:
        raise TariffError(
            "the last slab must be open (no upper bound)", where=f"tariff {tariff_id!r}"
        )
    return bounds


def _part_bounds(bounds: list[int | None], days: Days) -> list[int | None]:
    """A part period's bounds: each × active / period days, rounded down to the
    quantity unit (a per-day bound, already × period days, becomes × active
    days exactly). Bounds may then repeat: a slab of width 0 holds nothing."""
    if not days.part:
        return bounds
    return [None if u is None else u * days.active // days.period for u in bounds]


def _slab_reached(total: int, bounds: Sequence[int | None]) -> int:
    """The 0-based slab `total` falls in: the first j with total <= u_j
    (a quantity equal to a bound belongs to that slab; 0 is in the first)."""
    for j, upper in enumerate(bounds):
        if upper is None or total <= upper:
            return j
    raise AssertionError("the last slab is open")


def _graduated_quantities(total: int, bounds: Sequence[int | None]) -> list[int]:
    """Graduated: slab j holds clamp(Q − u_j−1, 0, u_j − u_j−1)."""
    held = []
    lower = 0
    for upper in bounds:
        width = None if upper is None else upper - lower
        part = max(total - lower, 0)
        held.append(part if width is None else min(part, width))
        lower = upper if upper is not None else lower
    return held


def _volume_quantities(total: int, bounds: Sequence[int | None]) -> list[int]:
    """Volume: all of Q in the slab it reaches (the first j with Q <= u_j)."""
    held = [0] * len(bounds)
    held[_slab_reached(total, bounds)] = total
    return held


def _slab_quantities(slabs: SlabSet, total: int, bounds: Sequence[int | None]) -> list[int]:
    if slabs.mode == "graduated":
        return _graduated_quantities(total, bounds)
    if slabs.mode == "volume":
        return _volume_quantities(total, bounds)
    raise TariffError(f"unknown slab mode {slabs.mode!r}")


def _largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to `weights` at the quantity resolution:
    floors first, then one unit each to the largest remainders, ties to the
    earlier TOU period."""
    weight_sum = sum(weights)
    if total == 0 or weight_sum == 0:
        return [0] * len(weights)
    floors = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    left = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda k: (-remainders[k], k))
    for k in order[:left]:
        floors[k] += 1
    return floors


def _energy_line(
    qty: int, price: Decimal, *, slab: int | None, tou: tuple[int, str] | None, site: Site
) -> _Charge:
    """A line's amount is round(quantity × unit_price), computed exactly."""
    quantity = qty_decimal(qty, site)
    return _Charge(
        component="energy",
        tou_index=None if tou is None else tou[0],
        tou_name=None if tou is None else tou[1],
        slab=slab,
        quantity=quantity,
        unit_price=price,
        amount=round_money(quantity * price, site),
    )


def _slab_fee_line(
    slabs: SlabSet, total: int, bounds: Sequence[int | None], *, tou: tuple[int, str] | None,
    site: Site,
) -> list[_Charge]:
    """Slab fee: the fee of the slab Q falls in, once (Q = 0 is the first).
    CHOICE: no line when that slab's fee is 0. quantity and unit_price are None."""
    j = _slab_reached(total, bounds)
    fee = slabs.slabs[j].fee
    if fee == 0:
        return []
    return [
        _Charge(
            component="slab_fee",
            tou_index=None if tou is None else tou[0],
            tou_name=None if tou is None else tou[1],
            slab=j + 1,
            quantity=None,
            unit_price=None,
            amount=round_money(fee, site),
        )
    ]


def _slab_lines(
    slabs: SlabSet, total: int, days: Days, *, tou: tuple[int, str] | None, site: Site,
    tariff_id: str,
) -> list[_Charge]:
    """Energy over one slab set (graduated or volume): one line per slab holding
    a positive quantity, at that slab's price; then the slab fee."""
    bounds = _part_bounds(_slab_bounds(slabs, days.period, site, tariff_id=tariff_id), days)
    held = _slab_quantities(slabs, total, bounds)
    lines = [
        _energy_line(qty, slab.price, slab=j + 1, tou=tou, site=site)
        for j, (qty, slab) in enumerate(zip(held, slabs.slabs, strict=True))
        if qty > 0
    ]
    return lines + _slab_fee_line(slabs, total, bounds, tou=tou, site=site)


def _tou_price_lines(version: TariffVersion, tou_qty: Sequence[int], site: Site) -> list[_Charge]:
    """TOU mode `price`: line q_k × price_k for each TOU period k.
    CHOICE: no line for a TOU period with q_k = 0 (like zero slab lines)."""
    assert version.tou is not None
    lines = []
    for k, period in enumerate(version.tou.periods):
        if period.price is None:
            raise TariffError(
                f"TOU period {period.name!r} has no price", where=f"tariff {version.tariff_id!r}"
            )
        if tou_qty[k] > 0:
            lines.append(
                _energy_line(tou_qty[k], period.price, slab=None, tou=(k, period.name), site=site)
            )
    return lines


def _tou_slabs_lines(
    version: TariffVersion, tou_qty: Sequence[int], days: Days, site: Site
) -> list[_Charge]:
    """TOU mode `slabs`: each TOU period has its own slabs over its own q_k
    (and its own slab fee, on the slab q_k falls in)."""
    assert version.tou is not None
    lines = []
    for k, period in enumerate(version.tou.periods):
        if period.slabs is None:
            raise TariffError(
                f"TOU period {period.name!r} has no slabs", where=f"tariff {version.tariff_id!r}"
            )
        lines += _slab_lines(
            period.slabs, tou_qty[k], days, tou=(k, period.name), site=site,
            tariff_id=version.tariff_id,
        )
    return lines


def _tou_split_total_lines(
    version: TariffVersion, tou_qty: Sequence[int], days: Days, site: Site
) -> list[_Charge]:
    """TOU mode `split_total`: the tariff's slabs apply to Q; each slab's
    quantity is split over the TOU periods in proportion to q_k (largest
    remainder), each part priced at slab price + adder_k. One line per
    (TOU period, slab) with a positive part; the slab fee on Q. A Q past
    int64 is an overflow error."""
    assert version.tou is not None
    slabs = version.energy
    if slabs is None:
        raise TariffError("split_total needs energy slabs", where=f"tariff {version.tariff_id!r}")
    total = _checked_total(tou_qty, version)
    bounds = _part_bounds(_slab_bounds(slabs, days.period, site, tariff_id=version.tariff_id), days)
    held = _slab_quantities(slabs, total, bounds)
    lines = []
    for j, (slab_qty, slab) in enumerate(zip(held, slabs.slabs, strict=True)):
        shares = _largest_remainder(slab_qty, tou_qty)
        for k, part in enumerate(shares):
            if part > 0:
                period = version.tou.periods[k]
                adder = period.price if period.price is not None else Decimal(0)
                price = slab.price + adder
                lines.append(_energy_line(part, price, slab=j + 1, tou=(k, period.name), site=site))
    return lines + _slab_fee_line(slabs, total, bounds, tou=None, site=site)


def _tou_matrix_lines(
    version: TariffVersion, tou_qty: Sequence[int], days: Days, site: Site
) -> list[_Charge]:
    """TOU mode `matrix`: the tier bounds of `version.energy` apply to Q; tier
    k holds q_k, and each (TOU period p, tier k) piece is q_k × Q_p / Q,
    priced at its own price: amount = round(price(p, k) × q_k × Q_p / Q),
    exact, rounded once. One line per piece with q_k × Q_p > 0; its quantity
    column is the piece rounded to the quantity resolution (the amount uses
    the exact piece). The slab fee on Q."""
    assert version.tou is not None and version.energy is not None  # the file reader's checks
    slabs = version.energy
    total = _checked_total(tou_qty, version)
    bounds = _part_bounds(_slab_bounds(slabs, days.period, site, tariff_id=version.tariff_id), days)
    held = _slab_quantities(slabs, total, bounds)
    unit = Fraction(1, 10**site.quantity_decimals)
    lines = []
    for j, tier_qty in enumerate(held):
        for k, period in enumerate(version.tou.periods):
            if tier_qty * tou_qty[k] == 0:
                continue
            assert period.tier_prices is not None
            piece = Fraction(tier_qty * tou_qty[k], total) * unit
            price = period.tier_prices[j]
            lines.append(_Charge("energy", k, period.name, j + 1, round_quantity(piece, site), price,
                                 round_fraction(piece * Fraction(price), site)))
    return lines + _slab_fee_line(slabs, total, bounds, tou=None, site=site)


def _checked_total(tou_qty: Sequence[int], version: TariffVersion) -> int:
    """Q = Σ q_k; a quantity like any other, it must fit the int64 range."""
    total = sum(tou_qty)
    if total > INT64_MAX:
        raise AmountOverflowError(
            f"the period's total consumption {total} exceeds the int64 quantity range",
            where=f"tariff {version.tariff_id!r}",
        )
    return total


def _package_lines(version: TariffVersion, tou_qty: Sequence[int], days: Days, site: Site) -> list[_Charge]:
    """package: price × the started blocks of `block` units in Q beyond the
    free units (free units × active / period days, rounded down, on a part
    period). The line's quantity is the number of blocks, its unit_price the
    block price. A count of blocks past the int64 quantity range is an
    overflow error."""
    package = version.package
    if package is None:
        return []
    total = _checked_total(tou_qty, version)
    free = _whole_units(package.free, site, version, "package.free")
    block = _whole_units(package.block, site, version, "package.block")
    if days.part:
        free = free * days.active // days.period
    blocks = -(-max(total - free, 0) // block)
    if blocks * 10**site.quantity_decimals > INT64_MAX:
        raise AmountOverflowError(f"{blocks} blocks exceed the int64 quantity range",
                                  where=f"tariff {version.tariff_id!r}")
    return [_Charge("package", None, None, None, Decimal(blocks), package.price,
                    round_money(blocks * package.price, site))]


def _export_lines(version: TariffVersion, tou_qty: Sequence[int], site: Site) -> list[_Charge]:
    """export: an export register's Q credited at the export price, one line
    per touched period: amount = −round(Q × price) (a credit), quantity Q."""
    if version.export_price is None:
        return []
    quantity = qty_decimal(_checked_total(tou_qty, version), site)
    return [_Charge("export", None, None, None, quantity, version.export_price,
                    -round_money(quantity * version.export_price, site))]


def _whole_units(value: Decimal, site: Site, version: TariffVersion, field: str) -> int:
    """A quantity of the tariff in quantity units; finer than the site's resolution is an error."""
    units = value.scaleb(site.quantity_decimals)
    if units != units.to_integral_value():
        raise TariffError(f"{value} is not a multiple of {site.quantity_unit}",
                          where=f"tariff {version.tariff_id!r} {field}")
    return int(units)


def _energy_lines(
    version: TariffVersion, tou_qty: Sequence[int], days: Days, site: Site
) -> list[_Charge]:
    """Energy and slab fee lines of one period. A version without TOU prices
    Q = q_0 over its slabs; one without energy slabs has no energy lines.
    CHOICE: with TOU mode `price` or `slabs`, `version.energy` is not used."""
    if version.tou is None:
        if version.energy is None:
            return []
        return _slab_lines(
            version.energy, tou_qty[0], days, tou=None, site=site, tariff_id=version.tariff_id
        )
    if version.tou.mode == "price":
        return _tou_price_lines(version, tou_qty, site)
    if version.tou.mode == "slabs":
        return _tou_slabs_lines(version, tou_qty, days, site)
    if version.tou.mode == "split_total":
        return _tou_split_total_lines(version, tou_qty, days, site)
    if version.tou.mode == "matrix":
        return _tou_matrix_lines(version, tou_qty, days, site)
    raise TariffError(
        f"unknown TOU mode {version.tou.mode!r}", where=f"tariff {version.tariff_id!r}"
    )


def _plain_line(component: str, amount: Decimal) -> _Charge:
    return _Charge(component, None, None, None, None, None, amount)


def _part(amount: Decimal, days: Days) -> Fraction:
    """A per-period amount on a part period: × active / period days, exact."""
    return Fraction(amount) * days.active / days.period if days.part else Fraction(amount)


def round_quantity(value: Fraction, site: Site) -> Decimal:
    """An exact quantity shown at the quantity resolution, rounded by the site's rule."""
    return _round_to(value, site.quantity_decimals, site.rounding)


def _round_to(value: Fraction, places: int, rule: str) -> Decimal:
    """The nearest multiple of 10^-places, a tie by `rule` (half_even: to the
    even unit; half_up: away from zero)."""
    scaled = value * 10**places
    low = math.floor(scaled)
    rest = scaled - low
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and (
            low % 2 == 1 if rule == "half_even" else scaled > 0)):
        low += 1
    return Decimal(low).scaleb(-places)


def round_fraction(value: Fraction, site: Site) -> Decimal:
    """`round_money` of an exact rational: the nearest minor unit, a tie by the
    site's rule (half_even: to the even unit; half_up: away from zero)."""
    return round_money(_round_to(value, site.minor_unit_exponent, site.rounding), site)


def _fixed_lines(version: TariffVersion, days: Days, site: Site) -> list[_Charge]:
    """fixed_charge: its amount, once per touched period.
    CHOICE: a line whenever the tariff sets it (even to 0)."""
    if version.fixed_charge is None:
        return []
    return [_plain_line("fixed_charge", round_fraction(_part(version.fixed_charge, days), site))]


def _area_lines(version: TariffVersion, account: Account, days: Days, site: Site) -> list[_Charge]:
    """area_charge: rate × account area; quantity = area, unit_price = rate.
    CHOICE: a line whenever the tariff sets a rate (even for area 0). The
    amount uses the exact area; the quantity column shows the area at the
    quantity resolution (rounded by the site's rule), as it is stored."""
    rate = version.area_charge_rate
    if rate is None:
        return []
    area = account.area_for(f"tariff {version.tariff_id} ({version.effective_from.isoformat()})")
    shown_area = area.quantize(site.quantity_unit, rounding=site.rounding_mode, context=ROUNDING)
    return [
        _Charge(
            "area_charge", None, None, None, shown_area, rate,
            round_fraction(_part(area * rate, days), site),
        )
    ]


def _fee_lines(version: TariffVersion, days: Days, site: Site) -> list[_Charge]:
    """Custom fees: a line `fee:<name>` per fee, in the tariff's order."""
    return [_plain_line(f"fee:{name}", round_fraction(_part(amount, days), site))
            for name, amount in version.fees]


def _minimum_lines(version: TariffVersion, lines: Sequence[_Charge], days: Days,
                   site: Site) -> list[_Charge]:
    """minimum_charge: max(0, minimum − Σ named lines), by default over every
    line above; a line only when positive. The sum is of the rounded amounts.
    CHOICE: "positive" is judged on the rounded amount (no 0.00 line)."""
    if version.minimum_charge is None:
        return []
    named = version.minimum_on
    covered = sum(
        (ln.amount for ln in lines if named is None or ln.component in named), Decimal(0)
    )
    shortfall = _part(version.minimum_charge, days) - Fraction(covered)
    if shortfall <= 0:
        return []
    amount = round_fraction(shortfall, site)
    return [_plain_line("minimum_charge", amount)] if amount > 0 else []


def _tax_lines(version: TariffVersion, lines: Sequence[_Charge], site: Site) -> list[_Charge]:
    """tax:<name> = round(percent / 100 × Σ amounts of the named components).
    CHOICE: a tax line per touched period even when its base is 0; a tax is
    never levied on another tax."""
    result = []
    for tax in version.taxes:
        base = sum((ln.amount for ln in lines if ln.component in tax.on), Decimal(0))
        result.append(_plain_line(f"tax:{tax.name}", round_money(tax.percent * base / 100, site)))
    return result


def period_charge(
    version: TariffVersion, tou_qty: Sequence[int], period: Period, account: Account, site: Site,
    active_days: int | None = None,
) -> list[_Charge]:
    """The charge of one billing period: a function of its TOU quantities.
    `active_days` (None: all) are the days its meter and account are active;
    a tariff with `prorate = false` charges every period whole."""
    whole = active_days is None or not version.prorate
    days = Days(period.days, period.days) if active_days is None or whole else Days(active_days, period.days)
    lines = _energy_lines(version, tou_qty, days, site)
    lines += _package_lines(version, tou_qty, days, site)
    lines += _export_lines(version, tou_qty, site)
    lines += _fixed_lines(version, days, site)
    lines += _area_lines(version, account, days, site)
    lines += _fee_lines(version, days, site)
    lines += _minimum_lines(version, lines, days, site)
    lines += _tax_lines(version, lines, site)
    return lines


