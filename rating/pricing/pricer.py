"""Exact pricing of billing periods: TOU quantities in, charge lines out.

Implements "The charge of a billing period" of docs/semantics.md. The periods
priced on one tariff version are priced together with numpy in int64 fixed
point: quantities in 10^-quantity_decimals units, prices in 10^-6 currency
units (`_micro`), amounts in minor units (`_minor`). A product that could
leave int64 is computed with Python integers instead, so every result is
exact or an `AmountOverflowError`, never wrapped. docs/tariffs.md says which
lines are emitted and in which order.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.consumption.quantities import PeriodQuantities
from rating.errors import AmountOverflowError, TariffError
from rating.fixedpoint import INT64_MAX, checked_mul, decimal_array, round_div, round_div_array
from rating.model.days import date_of, day_number
from rating.model.registry import Registry
from rating.model.site import PRICE_DECIMALS, Site
from rating.model.tariff import SlabSet, Tariff, TariffVersion, Tax, component_order
from rating.schema import charges_schema

NO_TOU = -1  # tou index of lines outside any TOU period
NO_SLAB = 0  # slab number of lines outside any slab (slabs count from 1)
PERCENT_DIVISOR_MICRO = 100 * 10**PRICE_DECIMALS  # percent in 10^-6 units, as a fraction


@dataclass(frozen=True)
class LineAmounts:
    """What each charge line charges whom, in no particular order (price_line_amounts)."""

    account_rank: np.ndarray  # int64, position of the account among the registry's sorted account ids
    meter_index: np.ndarray  # int64, registry index; -1 on an account's own lines
    amount_minor: np.ndarray  # int64


def price_periods(
    periods: PeriodQuantities, *, registry: Registry, tariffs: Mapping[str, Tariff], site: Site
) -> pa.Table:
    """Charge lines (`rating.schema.charges_schema`) of every touched meter
    period, and of every account's own tariff once per touched account period."""
    rows, lines = _price(periods, registry, tariffs, site)
    return lines.table(rows, site)


def price_line_amounts(
    periods: PeriodQuantities, *, registry: Registry, tariffs: Mapping[str, Tariff], site: Site
) -> LineAmounts:
    """The amounts of the lines `price_periods` lists, without building its
    table: for callers that only sum them (prepaid deductions, per batch)."""
    rows, lines = _price(periods, registry, tariffs, site)
    return lines.amounts(rows)


def _price(periods: PeriodQuantities, registry: Registry, tariffs: Mapping[str, Tariff],
           site: Site) -> tuple[_Rows, _Lines]:
    _check_periods(periods, len(registry))
    rows = _Rows.build(periods, registry, tariffs)
    lines = _Lines()
    pricer = _Pricer(site, rows, lines)
    for version, group in rows.version_groups(tariffs):
        pricer.price(version, group)
    return rows, lines


def _check_periods(periods: PeriodQuantities, meter_count: int) -> None:
    """The engine's own invariants: a failure is a bug upstream, not bad input."""
    n = len(periods.meter_index)
    if periods.qty.ndim != 2 or periods.qty.shape[0] != n:
        raise ValueError(f"qty must have shape (n, T) with n = {n}, got {periods.qty.shape}")
    if len(periods.period_start) != n or len(periods.period_end) != n:
        raise ValueError("meter_index, period_start and period_end must have the same length")
    if n == 0:
        return
    if periods.meter_index.min() < 0 or periods.meter_index.max() >= meter_count:
        raise ValueError("meter_index outside the registry")
    if (periods.period_end <= periods.period_start).any():
        raise ValueError("every period must end after it starts")
    if (periods.qty < 0).any():
        raise ValueError("quantities must not be negative")


# -- the rows to price --------------------------------------------------------


class _Names:
    """Distinct strings and their codes, in first-seen order."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, name: str) -> int:
        if name not in self._codes:
            self._codes[name] = len(self.names)
            self.names.append(name)
        return self._codes[name]

    def array(self) -> pa.Array:
        return pa.array(self.names, pa.string())


@dataclass(frozen=True)
class _RegistryColumns:
    """The registry as the pricer needs it: codes and ranks per meter and account."""

    account_ids: pa.Array  # sorted, so a position is a rank in id order
    account_tariff: np.ndarray  # (accounts,) code into tariff_ids, -1 without a tariff
    meter_account: np.ndarray  # (meters,) position in account_ids
    meter_rank: np.ndarray  # (meters,) rank in meter id order
    meter_tariff: np.ndarray  # (meters,) code into tariff_ids
    tariff_ids: list[str]

    @classmethod
    def of(cls, registry: Registry) -> _RegistryColumns:
        # Built once per registry (a Python pass over every meter): streaming
        # prices many small chunks against the same registry.
        cached = _REGISTRY_COLUMNS.get(registry)
        if cached is None:
            cached = _REGISTRY_COLUMNS[registry] = cls._build(registry)
        return cached

    @classmethod
    def _build(cls, registry: Registry) -> _RegistryColumns:
        account_ids = sorted(registry.accounts)
        account_rank = {a: i for i, a in enumerate(account_ids)}
        tariff_ids = _Names()
        return cls(
            account_ids=pa.array(account_ids, pa.string()),
            account_tariff=np.array(
                [-1 if (t := registry.accounts[a].tariff_id) is None else tariff_ids.code(t)
                 for a in account_ids],
                dtype=np.int64,
            ),
            meter_account=np.array([account_rank[m.account_id] for m in registry.meters], dtype=np.int64),
            meter_rank=_ranks(registry.meter_ids),
            meter_tariff=np.array([tariff_ids.code(m.tariff_id) for m in registry.meters], dtype=np.int64),
            tariff_ids=tariff_ids.names,
        )

    def check_tariffs(self, registry: Registry, tariffs: Mapping[str, Tariff]) -> None:
        """Every tariff the registry names must exist, used in this call or not,
        so that an error never depends on which meters happened to read."""
        missing = {t for t in self.tariff_ids if t not in tariffs}
        if not missing:
            return
        owners: list[tuple[str, str | None]] = [
            (f"meter {m.meter_id!r}", m.tariff_id) for m in registry.meters
        ]
        owners += [(f"account {a.account_id!r}", a.tariff_id) for a in registry.accounts.values()]
        owner, tariff_id = next((o, t) for o, t in owners if t in missing)
        raise TariffError(f"{owner} refers to unknown tariff {tariff_id!r}")


_REGISTRY_COLUMNS: weakref.WeakKeyDictionary[Registry, _RegistryColumns] = weakref.WeakKeyDictionary()


@dataclass
class _Rows:
    """Everything priced: the touched meter periods, then the account periods.

    Account rows have meter -1 and come after the meter rows, so `qty` (one
    row per meter period) is indexed by the same row numbers.
    """

    registry: Registry
    columns: _RegistryColumns
    account: np.ndarray  # position in columns.account_ids
    meter: np.ndarray  # registry index, -1 on account rows
    meter_rank: np.ndarray  # rank in meter id order; account rows rank last
    tariff: np.ndarray  # code into columns.tariff_ids
    start: np.ndarray
    end: np.ndarray
    qty: np.ndarray

    @classmethod
    def build(cls, periods: PeriodQuantities, registry: Registry, tariffs: Mapping[str, Tariff]) -> _Rows:
        columns = _RegistryColumns.of(registry)
        columns.check_tariffs(registry, tariffs)
        meter = periods.meter_index.astype(np.int64)
        account = columns.meter_account[meter]
        start = periods.period_start.astype(np.int64)
        end = periods.period_end.astype(np.int64)
        # An account with its own tariff is charged once per distinct touched period.
        charged = columns.account_tariff[account] >= 0
        account_periods = _distinct(account[charged], start[charged], end[charged])
        extra = len(account_periods[0])
        return cls(
            registry=registry,
            columns=columns,
            account=np.concatenate([account, account_periods[0]]),
            meter=np.concatenate([meter, np.full(extra, -1, dtype=np.int64)]),
            meter_rank=np.concatenate([columns.meter_rank[meter], np.full(extra, len(registry))]),
            tariff=np.concatenate([columns.meter_tariff[meter],
                                   columns.account_tariff[account_periods[0]]]),
            start=np.concatenate([start, account_periods[1]]),
            end=np.concatenate([end, account_periods[2]]),
            qty=periods.qty,
        )

    def owner(self, row: int) -> str:
        """Where the meter or account a row charges is defined, for errors."""
        if self.meter[row] >= 0:
            return self.registry.meter_place(int(self.meter[row]))
        return self.registry.account_place(self.columns.account_ids[self.account[row]].as_py())

    def version_groups(self, tariffs: Mapping[str, Tariff]) -> Iterator[tuple[TariffVersion, np.ndarray]]:
        """(version, rows) for each tariff version in force on some row's period start."""
        for rows in _groups(self.tariff):
            tariff = tariffs[self.columns.tariff_ids[self.tariff[rows[0]]]]
            effective = np.array([day_number(v.effective_from) for v in tariff.versions])
            which = np.searchsorted(effective, self.start[rows], side="right") - 1
            if which.min() < 0:
                row = rows[np.argmin(which)]
                day = date_of(int(self.start[row]))
                raise tariff.no_version_error(day, owner=self.owner(row))
            for part in _groups(which):
                yield tariff.versions[which[part[0]]], rows[part]

    def order(self) -> np.ndarray:
        """Each row's position in output order: account, meter (accounts last), period."""
        order = np.lexsort((self.start, self.meter_rank, self.account))
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        return position


def _distinct(*keys: np.ndarray) -> list[np.ndarray]:
    """The distinct tuples of equally long key columns, sorted."""
    order = np.lexsort(keys[::-1])
    keys_sorted = [k[order] for k in keys]
    repeat = np.ones(max(len(order) - 1, 0), dtype=bool)
    for k in keys_sorted:
        repeat &= k[1:] == k[:-1]
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = ~repeat
    return [k[keep] for k in keys_sorted]


def _ranks(values: pa.Array) -> np.ndarray:
    order = pc.sort_indices(values).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _groups(keys: np.ndarray) -> list[np.ndarray]:
    """Positions of each distinct key, keys ascending, positions ascending within."""
    if len(keys) == 0:
        return []
    order = np.argsort(keys, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(keys[order])) + 1)


# -- charge lines -------------------------------------------------------------


class _Lines:
    """Charge lines collected as column chunks, sorted and converted at the end."""

    _COLUMNS = ("row", "rank", "component", "tou", "tou_name", "slab",
                "qty", "qty_null", "price_micro", "price_null", "amount_minor")

    def __init__(self) -> None:
        self.components = _Names()
        self.tou_names = _Names()
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in self._COLUMNS}

    def add(self, rows: np.ndarray, component: str, rank: int, amount_minor: np.ndarray, *,
            tou: np.ndarray | int, tou_names: tuple[str, ...], slab: np.ndarray | int,
            qty: np.ndarray | None, price_micro: np.ndarray | int | None) -> None:
        n = len(rows)
        if n == 0:
            return
        tou = np.broadcast_to(np.asarray(tou, dtype=np.int64), (n,))
        # The trailing -1 is what NO_TOU (index -1) picks: a null tou_period.
        name_codes = np.array([self.tou_names.code(name) for name in tou_names] + [-1], dtype=np.int64)
        chunk = {
            "row": rows,
            "rank": np.full(n, rank, dtype=np.int64),
            "component": np.full(n, self.components.code(component), dtype=np.int64),
            "tou": tou,
            "tou_name": name_codes[tou],
            "slab": np.broadcast_to(np.asarray(slab, dtype=np.int64), (n,)),
            "qty": np.zeros(n, dtype=np.int64) if qty is None else qty,
            "qty_null": np.full(n, qty is None),
            "price_micro": np.zeros(n, dtype=np.int64) if price_micro is None
            else np.broadcast_to(np.asarray(price_micro, dtype=np.int64), (n,)),
            "price_null": np.full(n, price_micro is None),
            "amount_minor": amount_minor,
        }
        for name in self._COLUMNS:
            self._chunks[name].append(chunk[name])

    def amounts(self, rows: _Rows) -> LineAmounts:
        if not self._chunks["row"]:
            empty = np.empty(0, dtype=np.int64)
            return LineAmounts(empty, empty, empty)
        row = np.concatenate(self._chunks["row"])
        return LineAmounts(rows.account[row], rows.meter[row], np.concatenate(self._chunks["amount_minor"]))

    def table(self, rows: _Rows, site: Site) -> pa.Table:
        schema = charges_schema(site, rows.registry.meter_ids.type)
        if not self._chunks["row"]:
            return schema.empty_table()
        col = {name: np.concatenate(chunks) for name, chunks in self._chunks.items()}
        order = _line_order(rows.order()[col["row"]], col["rank"], col["tou"] - NO_TOU, col["slab"])
        col = {name: values[order] for name, values in col.items() if name not in ("rank", "tou")}
        row = col["row"]
        meter = rows.meter[row]
        arrays = [
            rows.columns.account_ids.take(rows.account[row]),
            rows.registry.meter_ids.take(pa.array(meter, mask=meter < 0)),
            pa.array(rows.columns.tariff_ids, pa.string()).take(rows.tariff[row]),
            pa.array(rows.start[row].astype(np.int32), pa.date32()),
            pa.array((rows.end[row] - 1).astype(np.int32), pa.date32()),
            self.components.array().take(col["component"]),
            self.tou_names.array().take(pa.array(col["tou_name"], mask=col["tou_name"] < 0)),
            pa.array(col["slab"].astype(np.int16), mask=col["slab"] == NO_SLAB),
            decimal_array(col["qty"], site.quantity_decimals, col["qty_null"]),
            decimal_array(col["price_micro"], PRICE_DECIMALS, col["price_null"]),
            decimal_array(col["amount_minor"], site.minor_unit_exponent),
        ]
        return pa.Table.from_arrays(arrays, schema=schema)


def _line_order(*keys: np.ndarray) -> np.ndarray:
    """The permutation that sorts lines by the (non-negative) keys, first key
    first, through one packed int64 key: much faster than a lexsort."""
    key = np.zeros(len(keys[0]), dtype=np.int64)
    bound = 1
    for values in keys:
        radix = int(values.max()) + 1
        bound *= radix
        if bound > INT64_MAX:
            raise ValueError("too many charge lines to order in one call")
        key = key * radix + values
    return np.argsort(key)  # keys are distinct per line, so any sort is deterministic


# -- pricing one tariff version -----------------------------------------------


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
    rows: np.ndarray  # row numbers in _Rows
    lines: _Lines
    days: np.ndarray  # days in each row's billing period
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
        """Per row, the sum of the named components (see `_sum_exact`)."""
        return _sum_exact([t for c in components for t in self.totals.get(c, [])], len(self.rows))


class _Pricer:
    def __init__(self, site: Site, rows: _Rows, lines: _Lines) -> None:
        self.rule = site.rounding
        self.site = site
        self.rows = rows
        self.lines = lines
        # qty × price_micro is in 10^-(quantity_decimals + 6); micro amounts in 10^-6.
        self.line_divisor = 10 ** (site.quantity_decimals + PRICE_DECIMALS - site.minor_unit_exponent)
        self.micro_per_minor = 10 ** (PRICE_DECIMALS - site.minor_unit_exponent)

    def price(self, version: TariffVersion, rows: np.ndarray) -> None:
        label = f"tariff {version.tariff_id} ({version.effective_from.isoformat()})"
        group = _Group(
            version, label, rows, self.lines,
            days=self.rows.end[rows] - self.rows.start[rows],
            account=self.rows.account[rows],
            qty=self._quantities(version, label, rows),
        )
        self._energy(group)
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
        if version.energy is None and version.tou is None:
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
        if group.qty is None:
            return
        if version.tou is None:
            self._slab_lines(group, version.energy, group.qty[:, 0], "energy", NO_TOU)
        elif version.tou.mode == "price":
            self._tou_price_lines(group)
        elif version.tou.mode == "slabs":
            for k, period in enumerate(version.tou.periods):
                self._slab_lines(group, period.slabs, group.qty[:, k], f"tou.periods[{k}].energy", k)
        else:
            self._split_total_lines(group)

    def _slab_lines(self, group: _Group, slab_set: SlabSet | None, qty: np.ndarray,
                    where: str, tou: int) -> None:
        slabs = self._slab_prices(slab_set, group.label, where)
        held, reached = _slab_quantities(slabs, qty, group.days)
        amount_minor = self._line_amount(held, slabs.price_micro)
        r, j = np.nonzero(held)
        group.emit("energy", r, amount_minor[r, j], tou=tou, slab=j + 1, qty=held[r, j],
                   price_micro=slabs.price_micro[j])
        group.charge("energy", _sum_exact(list(amount_minor.T), len(qty)))
        self._slab_fee_lines(group, slabs, reached, tou)

    def _tou_price_lines(self, group: _Group) -> None:
        assert group.version.tou is not None and group.qty is not None  # the caller's dispatch
        periods = group.version.tou.periods
        price_micro = np.array([self._micro(p.price, group.label, f"tou.periods[{k}].price")
                                for k, p in enumerate(periods)], dtype=np.int64)
        amount_minor = self._line_amount(group.qty, price_micro)
        r, k = np.nonzero(group.qty)
        group.emit("energy", r, amount_minor[r, k], tou=k, qty=group.qty[r, k], price_micro=price_micro[k])
        group.charge("energy", _sum_exact(list(amount_minor.T), len(group.rows)))

    def _split_total_lines(self, group: _Group) -> None:
        assert group.version.tou is not None and group.qty is not None  # the caller's dispatch
        periods = group.version.tou.periods
        slabs = self._slab_prices(group.version.energy, group.label, "energy")
        adder_micro = np.array([self._micro(p.price or Decimal(0), group.label, f"tou.periods[{k}].price")
                                for k, p in enumerate(periods)], dtype=np.int64)
        total_qty = _int64(_sum_exact(list(group.qty.T), len(group.rows)), "a period's total consumption")
        held, reached = _slab_quantities(slabs, total_qty, group.days)
        amounts_minor = []
        for j, slab_price in enumerate(slabs.price_micro):
            parts = _largest_remainder(held[:, j], group.qty, total_qty)
            price_micro = slab_price + adder_micro
            amount_minor = self._line_amount(parts, price_micro)
            r, k = np.nonzero(parts)
            group.emit("energy", r, amount_minor[r, k], tou=k, slab=j + 1, qty=parts[r, k],
                       price_micro=price_micro[k])
            amounts_minor += list(amount_minor.T)
        group.charge("energy", _sum_exact(amounts_minor, len(group.rows)))
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
        return _round_product(qty, price_micro, self.line_divisor, self.rule)

    # -- other components --

    def _constant(self, group: _Group, component: str, amount: Decimal) -> None:
        amount_minor = round_div(self._micro(amount, group.label, component), self.micro_per_minor,
                                 self.rule)
        per_row = np.full(len(group.rows), amount_minor, dtype=np.int64)
        group.emit(component, np.arange(len(group.rows)), per_row)
        group.charge(component, per_row)

    def _area_charge(self, group: _Group, rate: Decimal) -> None:
        rate_micro = self._micro(rate, group.label, "area_charge")
        accounts, inverse = np.unique(group.account, return_inverse=True)
        amount_minor, area_qty = [], []
        for account in accounts.tolist():
            owner = self.rows.registry.accounts[self.rows.columns.account_ids[account].as_py()]
            area = owner.area_for(group.label)
            num, den = area.as_integer_ratio()
            amount_minor.append(round_div(rate_micro * num * 10**self.site.minor_unit_exponent,
                                          den * 10**PRICE_DECIMALS, self.rule))
            # The quantity column shows the area at the quantity resolution; the amount is exact.
            area_qty.append(round_div(num * 10**self.site.quantity_decimals, den, self.rule))
        per_row = _int64(amount_minor, "an area charge")[inverse]
        group.emit("area_charge", np.arange(len(group.rows)), per_row,
                   qty=_int64(area_qty, "an account area")[inverse], price_micro=rate_micro)
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
            per_row = _int64([max(round_div(minimum_micro - n * self.micro_per_minor, self.micro_per_minor,
                                            self.rule), 0) for n in named_minor.tolist()],
                             "a minimum charge")
        r = np.flatnonzero(per_row)
        group.emit("minimum_charge", r, per_row[r])
        group.charge("minimum_charge", per_row)

    def _tax(self, group: _Group, tax: Tax) -> None:
        percent_micro = self._micro(tax.percent, group.label, f"tax {tax.name} percent")
        per_row = _round_product(group.total(tax.on), percent_micro, PERCENT_DIVISOR_MICRO, self.rule)
        group.emit(f"tax:{tax.name}", np.arange(len(group.rows)), per_row)

    # -- tariff numbers in fixed point --

    def _micro(self, value: Decimal | None, label: str, where: str) -> int:
        if value is None:
            raise TariffError("has no price", where=f"{label} {where}")
        return _units(value, PRICE_DECIMALS, f"{label} {where}", "the 10^-6 price resolution")

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
                upper_qty.append(_units(slab.upper, qd, at, f"the site's quantity resolution 10^-{qd}"))
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


# -- exact integer kernels ----------------------------------------------------


def _units(value: Decimal, decimals: int, where: str, resolution: str) -> int:
    """`value` as an integer count of 10^-decimals, refusing anything inexact."""
    scaled = value.scaleb(decimals)
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise TariffError(f"{value} is finer than {resolution}", where=where)
    if abs(scaled) > INT64_MAX:
        raise TariffError(f"{value} is beyond the int64 fixed-point range", where=where)
    return int(scaled)


def _int64(values: list[int] | np.ndarray, what: str) -> np.ndarray:
    """Integers (a list, or an array of int64 or of Python integers) as int64, refusing any past it."""
    if isinstance(values, np.ndarray):
        if values.dtype != object:
            return values
        values = values.tolist()
    if values and max(abs(v) for v in values) > INT64_MAX:
        raise AmountOverflowError(f"{what} exceeds the int64 fixed-point range")
    return np.array(values, dtype=np.int64)


def _sum_exact(arrays: list[np.ndarray], n: int) -> np.ndarray:
    """Elementwise sum, never wrapped: int64 when no sum can leave int64, else
    Python integers (an object array). A tax or minimum charge on a base past
    int64 may itself fit again, so such a base is kept exact, not refused."""
    bound = sum(int(np.abs(a).max(initial=0)) for a in arrays)
    dtype = np.int64 if bound <= INT64_MAX else object
    total = np.zeros(n, dtype=dtype)
    for a in arrays:
        total += a.astype(dtype)
    return total


def _round_product(a: np.ndarray, b: np.ndarray | int, divisor: int, rule: str) -> np.ndarray:
    """round(a × b / divisor) elementwise, exact, as int64; `a` may hold Python integers."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b, dtype=np.int64))
    if a.dtype != object and int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0)) <= INT64_MAX:
        return round_div_array(a * b, divisor, rule)
    # Huge quantities at high prices: Python integers keep the product exact.
    pairs = zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)
    exact = [round_div(x * y, divisor, rule) for x, y in pairs]
    return _int64(exact, "a charge").reshape(a.shape)


def _slab_quantities(slabs: _SlabPrices, qty: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the quantity each slab holds (g, m), and the slab `qty` reaches
    (0-based: the first slab whose bound is at least `qty`)."""
    g, m = len(qty), len(slabs.price_micro)
    upper = slabs.upper_qty[None, :]
    if slabs.per_day:
        upper = checked_mul(days[:, None], upper, what="a per-day slab bound × days")
    upper = np.broadcast_to(upper, (g, m - 1))
    reached = (qty[:, None] > upper).sum(axis=1)
    if not slabs.graduated:  # volume: the whole quantity at the slab it reaches
        held = np.zeros((g, m), dtype=np.int64)
        held[np.arange(g), reached] = qty
        return held, reached
    lower = np.concatenate([np.zeros((g, 1), dtype=np.int64), upper], axis=1)
    size = np.concatenate([upper, np.full((g, 1), INT64_MAX)], axis=1) - lower
    return np.minimum(np.maximum(qty[:, None] - lower, 0), size), reached


def _largest_remainder(total: np.ndarray, weights: np.ndarray, weight_sum: np.ndarray) -> np.ndarray:
    """Split each row's `total` over its `weights` in proportion, in whole units:
    the floors, then one more unit to each of the largest remainders, ties to
    the lower column."""
    g, t = weights.shape
    divisor = np.maximum(weight_sum, 1)[:, None]  # rows without weight have nothing to split
    if int(total.max(initial=0)) * int(weights.max(initial=0)) <= INT64_MAX:
        product = total[:, None] * weights
    else:  # past int64: Python integers, exact
        product = total.astype(object)[:, None] * weights.astype(object)
    floor = (product // divisor).astype(np.int64)
    remainder = product % divisor
    short = total - floor.sum(axis=1)
    order = np.argsort(-remainder, axis=1, kind="stable")
    rank = np.empty((g, t), dtype=np.int64)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(t), (g, t)), axis=1)
    return floor + (rank < short[:, None])
