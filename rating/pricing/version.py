"""Pricing the rows of one tariff version: slabs, TOU, fixed and area charges, fees, minimums, taxes."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from rating.errors import AmountOverflowError, TariffError
from rating.fixedpoint import INT64_MAX, checked_mul, round_div, round_div_array
from rating.model.site import PRICE_DECIMALS, Site
from rating.model.tariff import Package, SlabSet, TariffVersion, Tax, component_order
from rating.pricing.exact import int64, largest_remainder, round_product, round_ratio, sum_exact, units
from rating.pricing.lines import NO_SLAB, NO_TOU, Lines
from rating.pricing.rows import Rows

PERCENT_DIVISOR_MICRO = 100 * 10**PRICE_DECIMALS  # percent in 10^-6 units, as a fraction


@dataclass(frozen=True)
class _SlabPrices:
    """A slab set in fixed point."""

    graduated: bool
    per_day: bool
    upper_qty: np.ndarray  # (m - 1,) cumulative bounds; the last slab is open
    price_micro: np.ndarray  # (m,)
    fee_micro: np.ndarray  # (m,)


@dataclass
class _Group:
    """The rows priced on one tariff version, and their running component totals."""

    version: TariffVersion
    label: str  # "tariff X (2026-04-01)", for errors
    rows: np.ndarray  # row numbers in Rows
    lines: Lines
    days: np.ndarray  # days in each row's billing period
    part: np.ndarray  # positions of the part periods (docs/tariffs.md, "Part periods")
    part_days: list[int]  # their active days, as Python integers
    account: np.ndarray
    qty: np.ndarray | None  # (g, tou_count); None when the version charges no energy
    rank: dict[str, int] = field(init=False)
    tou_names: tuple[str, ...] = field(init=False)
    totals: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rank = {name: i for i, name in enumerate(component_order(self.version))}
        tou = self.version.tou
        self.tou_names = tuple(p.name for p in tou.periods) if tou else ()

    def emit(self, component: str, local: np.ndarray, amount_minor: np.ndarray, *,
             tou: np.ndarray | int = NO_TOU, slab: np.ndarray | int = NO_SLAB,
             qty: np.ndarray | None = None, price_micro: np.ndarray | int | None = None) -> None:
        """Lines of `component` for the group's rows `local` (positions in the group)."""
        self.lines.add(self.rows[local], component, self.rank[component], amount_minor, tou=tou,
                       tou_names=self.tou_names, slab=slab, qty=qty, price_micro=price_micro)

    def charge(self, component: str, amount_minor_per_row: np.ndarray) -> None:
        """Record amounts that minimum charges and taxes may name."""
        self.totals.setdefault(component, []).append(amount_minor_per_row)

    def total(self, components: tuple[str, ...]) -> np.ndarray:
        """Per row, the sum of the named components (see `sum_exact`)."""
        return sum_exact([t for c in components for t in self.totals.get(c, [])], len(self.rows))


class Pricer:
    def __init__(self, site: Site, rows: Rows, lines: Lines) -> None:
        self.rule = site.rounding
        self.site = site
        self.rows = rows
        self.lines = lines
        # qty × price_micro is in 10^-(quantity_decimals + 6); micro amounts in 10^-6.
        self.line_divisor = 10 ** (site.quantity_decimals + PRICE_DECIMALS - site.minor_unit_exponent)
        self.micro_per_minor = 10 ** (PRICE_DECIMALS - site.minor_unit_exponent)

    def price(self, version: TariffVersion, rows: np.ndarray) -> None:
        label = f"tariff {version.tariff_id} ({version.effective_from.isoformat()})"
        days = self.rows.end[rows] - self.rows.start[rows]
        part, part_days = np.empty(0, np.int64), []
        if version.prorate and self.rows.active is not None:
            active = self.rows.active[rows]
            part = np.flatnonzero((active < days) & (active > 0))
            part_days = active[part].tolist()
        group = _Group(
            version, label, rows, self.lines,
            days=days, part=part, part_days=part_days,
            account=self.rows.account[rows],
            qty=self._quantities(version, label, rows),
        )
        self._energy(group)
        if version.package is not None:
            self._package(group, version.package)
        if version.export_price is not None:
            self._export(group, version.export_price)
        if version.fixed_charge is not None:
            self._constant(group, "fixed_charge", version.fixed_charge)
        if version.area_charge_rate is not None:
            self._area_charge(group, version.area_charge_rate)
        for name, amount in version.fees:
            self._constant(group, f"fee:{name}", amount)
        if version.minimum_charge is not None:
            self._minimum_charge(group, version.minimum_charge)
        for tax in version.taxes:
            self._tax(group, tax)

    def _quantities(self, version: TariffVersion, label: str, rows: np.ndarray) -> np.ndarray | None:
        """(g, tou_count) quantities; an account row measures nothing, so it has zeros."""
        if not version.measures:
            return None
        width = version.tou_count
        is_meter = self.rows.meter[rows] >= 0
        measured = self.rows.qty[rows[is_meter]]
        if measured.shape[1] < width or measured[:, width:].any():
            raise ValueError(f"qty has {measured.shape[1]} TOU columns in use; {label} has {width}")
        qty = np.zeros((len(rows), width), dtype=np.int64)
        qty[is_meter] = measured[:, :width]
        return qty

    # -- energy --

    def _energy(self, group: _Group) -> None:
        version = group.version
        if group.qty is None or (version.energy is None and version.tou is None):  # a package alone
            return
        if version.tou is None:
            self._slab_lines(group, version.energy, group.qty[:, 0], "energy", NO_TOU)
        elif version.tou.mode == "price":
            self._tou_price_lines(group)
        elif version.tou.mode == "slabs":
            for k, period in enumerate(version.tou.periods):
                self._slab_lines(group, period.slabs, group.qty[:, k], f"tou.periods[{k}].energy", k)
        elif version.tou.mode == "matrix":
            self._matrix_lines(group)
        else:
            self._split_total_lines(group)

    def _slab_lines(self, group: _Group, slab_set: SlabSet | None, qty: np.ndarray,
                    where: str, tou: int) -> None:
        slabs = self._slab_prices(slab_set, group.label, where)
        held, reached = _slab_quantities(slabs, qty, group)
        amount_minor = self._line_amount(held, slabs.price_micro)
        r, j = np.nonzero(held)
        group.emit("energy", r, amount_minor[r, j], tou=tou, slab=j + 1, qty=held[r, j],
                   price_micro=slabs.price_micro[j])
        group.charge("energy", sum_exact(list(amount_minor.T), len(qty)))
        self._slab_fee_lines(group, slabs, reached, tou)

    def _tou_price_lines(self, group: _Group) -> None:
        assert group.version.tou is not None and group.qty is not None  # the caller's dispatch
        periods = group.version.tou.periods
        price_micro = np.array([self._micro(p.price, group.label, f"tou.periods[{k}].price")
                                for k, p in enumerate(periods)], dtype=np.int64)
        amount_minor = self._line_amount(group.qty, price_micro)
        r, k = np.nonzero(group.qty)
        group.emit("energy", r, amount_minor[r, k], tou=k, qty=group.qty[r, k], price_micro=price_micro[k])
        group.charge("energy", sum_exact(list(amount_minor.T), len(group.rows)))

    def _split_total_lines(self, group: _Group) -> None:
        assert group.version.tou is not None and group.qty is not None  # the caller's dispatch
        periods = group.version.tou.periods
        slabs = self._slab_prices(group.version.energy, group.label, "energy")
        adder_micro = np.array([self._micro(p.price or Decimal(0), group.label, f"tou.periods[{k}].price")
                                for k, p in enumerate(periods)], dtype=np.int64)
        total_qty = _total_qty(group)
        held, reached = _slab_quantities(slabs, total_qty, group)
        amounts_minor = []
        for j, slab_price in enumerate(slabs.price_micro):
            parts = largest_remainder(held[:, j], group.qty, total_qty)
            price_micro = slab_price + adder_micro
            amount_minor = self._line_amount(parts, price_micro)
            r, k = np.nonzero(parts)
            group.emit("energy", r, amount_minor[r, k], tou=k, slab=j + 1, qty=parts[r, k],
                       price_micro=price_micro[k])
            amounts_minor += list(amount_minor.T)
        group.charge("energy", sum_exact(amounts_minor, len(group.rows)))
        self._slab_fee_lines(group, slabs, reached, NO_TOU)

    def _matrix_lines(self, group: _Group) -> None:
        """amount = round(price(p, k) × t_k × q_p / Q) per (TOU period p, tier k), rounded once
        (t_k: what tier k holds of Q; q_p: the consumption of TOU period p)."""
        assert group.version.tou is not None and group.qty is not None  # the caller's dispatch
        periods = group.version.tou.periods
        slabs = self._slab_prices(group.version.energy, group.label, "energy")
        price_micro = np.array([[self._micro(price, group.label, f"tou.periods[{k}].prices[{j}]")
                                 for j, price in enumerate(p.tier_prices or ())]
                                for k, p in enumerate(periods)], dtype=np.int64)  # (T, m)
        total_qty = _total_qty(group)
        held, reached = _slab_quantities(slabs, total_qty, group)
        per_row = np.maximum(total_qty, 1)[:, None]  # a row with Q = 0 has no pieces
        wide = int(per_row.max(initial=0)) * self.line_divisor > INT64_MAX // 2
        amount_divisor = (per_row.astype(object) if wide else per_row) * self.line_divisor
        amounts_minor = []
        for j in range(len(slabs.price_micro)):
            tier = held[:, j:j + 1]
            amount_minor = round_ratio([tier, group.qty, price_micro[:, j]], amount_divisor, self.rule)
            r, k = np.nonzero((tier > 0) & (group.qty > 0))
            piece_qty = round_ratio([tier[r, 0], group.qty[r, k]], per_row[r, 0], self.rule)
            group.emit("energy", r, amount_minor[r, k], tou=k, slab=j + 1, qty=piece_qty,
                       price_micro=price_micro[k, j])
            amounts_minor += list(amount_minor.T)
        group.charge("energy", sum_exact(amounts_minor, len(group.rows)))
        self._slab_fee_lines(group, slabs, reached, NO_TOU)

    def _slab_fee_lines(self, group: _Group, slabs: _SlabPrices, reached: np.ndarray, tou: int) -> None:
        if not slabs.fee_micro.any():
            return
        fee_minor = round_div_array(slabs.fee_micro, self.micro_per_minor, self.rule)
        charged = slabs.fee_micro[reached] != 0
        r = np.flatnonzero(charged)
        group.emit("slab_fee", r, fee_minor[reached[r]], tou=tou, slab=reached[r] + 1)
        group.charge("slab_fee", np.where(charged, fee_minor[reached], 0))

    def _line_amount(self, qty: np.ndarray, price_micro: np.ndarray) -> np.ndarray:
        """round(quantity × price) in minor units, one amount per element."""
        return round_product(qty, price_micro, self.line_divisor, self.rule)

    # -- other components --

    def _package(self, group: _Group, package: Package) -> None:
        """price × the started blocks of the total beyond the free units."""
        qd = self.site.quantity_decimals
        resolution = f"the site's quantity resolution 10^-{qd}"
        free = units(package.free, qd, f"{group.label} package.free", resolution)
        block = units(package.block, qd, f"{group.label} package.block", resolution)
        free_qty = np.full(len(group.rows), free, dtype=np.int64)
        for r, d in zip(group.part.tolist(), group.part_days, strict=True):
            free_qty[r] = free * d // int(group.days[r])  # part periods: free units × d / D, down
        blocks = -(-np.maximum(_total_qty(group) - free_qty, 0) // block)
        if int(blocks.max(initial=0)) * 10**qd > INT64_MAX:
            raise AmountOverflowError(f"{int(blocks.max())} blocks exceed the int64 quantity range",
                                      where=f"{group.label} package")
        price_micro = self._micro(package.price, group.label, "package.price")
        per_row = round_product(blocks, price_micro, self.micro_per_minor, self.rule)
        group.emit("package", np.arange(len(group.rows)), per_row, qty=blocks * 10**qd,
                   price_micro=price_micro)
        group.charge("package", per_row)

    def _export(self, group: _Group, price: Decimal) -> None:
        """An export register's Q credited: −round(Q × price), a negative amount."""
        total_qty = _total_qty(group)
        price_micro = self._micro(price, group.label, "export.price")
        per_row = -round_product(total_qty, price_micro, self.line_divisor, self.rule)
        group.emit("export", np.arange(len(group.rows)), per_row, qty=total_qty, price_micro=price_micro)
        group.charge("export", per_row)

    def _constant(self, group: _Group, component: str, amount: Decimal) -> None:
        amount_micro = self._micro(amount, group.label, component)
        amount_minor = round_div(amount_micro, self.micro_per_minor, self.rule)
        per_row = np.full(len(group.rows), amount_minor, dtype=np.int64)
        self._prorated(group, per_row, amount_micro, self.micro_per_minor)
        group.emit(component, np.arange(len(group.rows)), per_row)
        group.charge(component, per_row)

    def _area_charge(self, group: _Group, rate: Decimal) -> None:
        rate_micro = self._micro(rate, group.label, "area_charge")
        accounts, inverse = np.unique(group.account, return_inverse=True)
        amount_minor, area_qty, area_ratio = [], [], []
        for account in accounts.tolist():
            area = self.rows.registry.area_for(int(self.rows.columns.account_row[account]), group.label)
            num, den = area.as_integer_ratio()
            area_ratio.append((num, den))
            amount_minor.append(round_div(rate_micro * num * 10**self.site.minor_unit_exponent,
                                          den * 10**PRICE_DECIMALS, self.rule))
            # The quantity column shows the area at the quantity resolution; the amount is exact.
            area_qty.append(round_div(num * 10**self.site.quantity_decimals, den, self.rule))
        per_row = int64(amount_minor, "an area charge")[inverse]
        if len(group.part):
            for r, d in zip(group.part.tolist(), group.part_days, strict=True):
                num, den = area_ratio[inverse[r]]
                per_row[r] = round_div(rate_micro * num * 10**self.site.minor_unit_exponent * d,
                                       den * 10**PRICE_DECIMALS * int(group.days[r]), self.rule)
        group.emit("area_charge", np.arange(len(group.rows)), per_row,
                   qty=int64(area_qty, "an account area")[inverse], price_micro=rate_micro)
        group.charge("area_charge", per_row)

    def _minimum_charge(self, group: _Group, minimum: Decimal) -> None:
        on = group.version.minimum_on
        if on is None:  # every line listed before the minimum charge
            on = tuple(c for c, rank in group.rank.items() if rank < group.rank["minimum_charge"])
        named_minor = group.total(on)
        minimum_micro = self._micro(minimum, group.label, "minimum_charge")
        # Rounded after the subtraction: a half-even tie depends on the whole difference.
        if int(np.abs(named_minor).max(initial=0)) * self.micro_per_minor + abs(minimum_micro) <= INT64_MAX:
            short_micro = minimum_micro - named_minor.astype(np.int64) * self.micro_per_minor
            per_row = np.maximum(round_div_array(short_micro, self.micro_per_minor, self.rule), 0)
        else:  # a base past int64 micro units: Python integers, exact
            per_row = int64([max(round_div(minimum_micro - n * self.micro_per_minor, self.micro_per_minor,
                                            self.rule), 0) for n in named_minor.tolist()],
                             "a minimum charge")
        if len(group.part):
            for r, d in zip(group.part.tolist(), group.part_days, strict=True):
                days = int(group.days[r])  # the minimum × d / D less the named lines, rounded once
                short = minimum_micro * d - int(named_minor[r]) * self.micro_per_minor * days
                per_row[r] = max(round_div(short, self.micro_per_minor * days, self.rule), 0)
        r = np.flatnonzero(per_row)
        group.emit("minimum_charge", r, per_row[r])
        group.charge("minimum_charge", per_row)

    def _tax(self, group: _Group, tax: Tax) -> None:
        percent_micro = self._micro(tax.percent, group.label, f"tax {tax.name} percent")
        per_row = round_product(group.total(tax.on), percent_micro, PERCENT_DIVISOR_MICRO, self.rule)
        group.emit(f"tax:{tax.name}", np.arange(len(group.rows)), per_row)

    def _prorated(self, group: _Group, per_row: np.ndarray, amount_micro: int, divisor: int) -> None:
        """A per-period amount on the part periods: round(amount × d / D), rounded once."""
        for r, d in zip(group.part.tolist(), group.part_days, strict=True):
            per_row[r] = round_div(amount_micro * d, divisor * int(group.days[r]), self.rule)

    # -- tariff numbers in fixed point --

    def _micro(self, value: Decimal | None, label: str, where: str) -> int:
        if value is None:
            raise TariffError("has no price", where=f"{label} {where}")
        return units(value, PRICE_DECIMALS, f"{label} {where}", "the 10^-6 price resolution")

    def _slab_prices(self, slab_set: SlabSet | None, label: str, where: str) -> _SlabPrices:
        if slab_set is None or not slab_set.slabs:
            raise TariffError("has no slabs", where=f"{label} {where}")
        slabs = slab_set.slabs
        qd = self.site.quantity_decimals
        upper_qty = []
        for j, slab in enumerate(slabs):
            at = f"{label} {where}.slabs[{j}]"
            if (slab.upper is None) != (j == len(slabs) - 1):
                raise TariffError("only the last slab is open (upper None)", where=at)
            if slab.upper is not None:
                upper_qty.append(units(slab.upper, qd, at, f"the site's quantity resolution 10^-{qd}"))
                if upper_qty[-1] <= (upper_qty[-2] if j else 0):
                    raise TariffError("slab bounds must be positive and increasing", where=at)
        return _SlabPrices(
            graduated=slab_set.mode == "graduated",
            per_day=slab_set.limit_basis == "per_day",
            upper_qty=np.array(upper_qty, dtype=np.int64),
            price_micro=np.array([self._micro(s.price, label, f"{where}.slabs[{j}].price")
                                  for j, s in enumerate(slabs)], dtype=np.int64),
            fee_micro=np.array([self._micro(s.fee, label, f"{where}.slabs[{j}].fee")
                                for j, s in enumerate(slabs)], dtype=np.int64),
        )


def _total_qty(group: _Group) -> np.ndarray:
    """Q = Σ q_k per row; a quantity like any other, it must fit int64."""
    assert group.qty is not None
    return int64(sum_exact(list(group.qty.T), len(group.rows)), "a period's total consumption")


def _slab_quantities(slabs: _SlabPrices, qty: np.ndarray, group: _Group) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the quantity each slab holds (g, m), and the slab `qty` reaches
    (0-based: the first slab whose bound is at least `qty`)."""
    g, m = len(qty), len(slabs.price_micro)
    upper = slabs.upper_qty[None, :]
    if slabs.per_day:
        upper = checked_mul(group.days[:, None], upper, what="a per-day slab bound × days")
    upper = np.broadcast_to(upper, (g, m - 1))
    if len(group.part):  # part periods: bounds × d / D, rounded down (per day: × d exactly)
        upper = upper.copy()
        for r, d in zip(group.part.tolist(), group.part_days, strict=True):
            days = 1 if slabs.per_day else int(group.days[r])
            base = slabs.upper_qty.tolist() if slabs.per_day else upper[r].tolist()
            upper[r] = int64([u * d // days for u in base], "a prorated slab bound")
    reached = (qty[:, None] > upper).sum(axis=1)
    if not slabs.graduated:  # volume: the whole quantity at the slab it reaches
        held = np.zeros((g, m), dtype=np.int64)
        held[np.arange(g), reached] = qty
        return held, reached
    lower = np.concatenate([np.zeros((g, 1), dtype=np.int64), upper], axis=1)
    size = np.concatenate([upper, np.full((g, 1), INT64_MAX)], axis=1) - lower
    return np.minimum(np.maximum(qty[:, None] - lower, 0), size), reached


