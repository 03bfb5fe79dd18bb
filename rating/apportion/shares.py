"""Shared-area apportionment ("公摊"): exact splits of common consumption or cost.

`split` is the exact largest-remainder split of many groups at once (the
Cython kernel behind a checking front). `split_amount` splits one Decimal
total for interactive use. The engine integration (`prepare`,
`shared_area_lines`) is below them; docs/apportionment.md describes the
methods, the policies and the tie-break with worked examples.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import lcm

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating._ext._apportion import split_largest_remainder
from rating.config.loader import Config
from rating.consumption.quantities import PeriodQuantities, period_key, period_keys
from rating.errors import AmountOverflowError, InputError
from rating.fixedpoint import decimal_array, decimal_units
from rating.model.days import date_of
from rating.model.groups import WEIGHT_DECIMALS, Group, Groups
from rating.schema import charges_schema

INT64_MAX = np.iinfo(np.int64).max
# A group's weights must sum below this (checked in float64 first, which
# cannot misjudge a sum this far from the int64 limit, then exactly).
WEIGHT_SUM_MAX = 2**62


def _int64_vector(values, name: str) -> np.ndarray:
    """A contiguous 1-D int64 array, refusing floats and out-of-range integers."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got {array.ndim} dimensions")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise InputError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.dtype == np.uint64 and int(array.max()) > INT64_MAX:
        raise AmountOverflowError(f"{name} exceeds the int64 range")
    return np.ascontiguousarray(array, dtype=np.int64)


def group_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Σ values over each group (exact while each group's sum fits int64:
    wrapping in the running sum cancels in the difference)."""
    running = np.concatenate((np.zeros(1, values.dtype), np.cumsum(values)))
    return running[offsets[1:]] - running[offsets[:-1]]


def _float_group_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Σ values of each non-empty group in float64, group by group (a bound:
    relative error below len × 2^-53, so no cross-group running total)."""
    starts = offsets[:-1][np.diff(offsets) > 0]
    if len(starts) == 0:
        return np.zeros(0)
    return np.add.reduceat(values.astype(np.float64), starts)


def _keys_unique(keys: np.ndarray, offsets: np.ndarray) -> bool:
    """Whether no key repeats within a group: O(n) when keys already rise
    within every group (as `prepare` lays them out), a sort otherwise."""
    if len(keys) < 2:
        return True
    same_group = np.ones(len(keys), dtype=bool)
    starts = offsets[1:-1]
    same_group[starts[starts < len(keys)]] = False  # members i-1 and i in different groups
    same_group = same_group[1:]
    if (np.diff(keys) > 0)[same_group].all():
        return True
    group_of = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    order = np.lexsort((keys, group_of))
    return not ((np.diff(group_of[order]) == 0) & (np.diff(keys[order]) == 0)).any()


def split(totals, offsets, weights, keys) -> np.ndarray:
    """Split each group's integer total over its members in proportion to
    their integer weights, exactly, by the largest-remainder method.

    Group g owns members `offsets[g]` to `offsets[g+1] - 1` of `weights` and
    `keys`. Totals and weights are >= 0 and integers (minor units of money,
    or quantity units); a group whose weights are all zero must have a zero
    total. Keys (e.g. the rank of each unit id) must be unique within a
    group: the lower key wins a tie of equal remainder and equal weight.
    Returns the int64 shares; each group's shares sum to its total and each
    share is within one unit of `total × weight / Σ weights`.
    """
    totals = _int64_vector(totals, "totals")
    offsets = _int64_vector(offsets, "offsets")
    weights = _int64_vector(weights, "weights")
    keys = _int64_vector(keys, "keys")
    n = len(weights)
    if len(offsets) != len(totals) + 1:
        raise InputError(f"offsets has {len(offsets)} entries, expected len(totals) + 1 = {len(totals) + 1}")
    if offsets[0] != 0 or offsets[-1] != n or (np.diff(offsets) < 0).any():
        raise InputError(f"offsets must rise from 0 to len(weights) = {n}")
    if len(keys) != n:
        raise InputError(f"keys has {len(keys)} entries, weights {n}")
    if (totals < 0).any():
        raise InputError(f"totals must be >= 0; group {int(np.argmax(totals < 0))} is negative")
    if (weights < 0).any():
        raise InputError(f"weights must be >= 0; member {int(np.argmax(weights < 0))} is negative")
    if _float_group_sums(weights, offsets).max(initial=0) > WEIGHT_SUM_MAX:
        raise AmountOverflowError(f"a group's weights sum beyond {WEIGHT_SUM_MAX}")
    weight_sums = group_sums(weights, offsets)
    stranded = (weight_sums == 0) & (totals != 0)
    if stranded.any():
        raise InputError(
            f"group {int(np.argmax(stranded))} has a non-zero total but no weight to split it by"
        )
    if not _keys_unique(keys, offsets):
        raise InputError("keys must be unique within each group")

    shares = np.empty(n, dtype=np.int64)
    split_largest_remainder(offsets, totals, weights, keys, shares)
    # The invariant the kernel promises, checked after it as well as argued in it.
    if not np.array_equal(group_sums(shares, offsets), totals) or (shares < 0).any():
        raise AssertionError("apportionment kernel broke its invariant")
    return shares


def split_amount(
    total: Decimal | int | str, weights: Mapping[str, Decimal | int | str], *, exponent: int = 2
) -> dict[str, Decimal]:
    """Split a Decimal total at resolution 10^-exponent over named units.

    Ties go to the lower unit id. A negative total (a credit) is split like a
    positive one, with the sign flipped.

    >>> split_amount("100.00", {"A-101": 1, "A-102": 1, "A-103": 1})
    {'A-101': Decimal('33.34'), 'A-102': Decimal('33.33'), 'A-103': Decimal('33.33')}
    """
    resolution = Decimal(1).scaleb(-exponent)
    units = Fraction(Decimal(str(total))) * 10**exponent
    if units.denominator != 1:
        raise InputError(f"total {total} has more than {exponent} decimals")
    ids = sorted(weights)
    fractions = [Fraction(Decimal(str(weights[i]))) for i in ids]
    if any(f < 0 for f in fractions):
        raise InputError("weights must be >= 0")
    scale = lcm(*(f.denominator for f in fractions)) if fractions else 1
    integer_weights = [int(f * scale) for f in fractions]
    if sum(integer_weights) > WEIGHT_SUM_MAX:
        raise AmountOverflowError("weights too large or too finely divided to split exactly")
    if abs(units) > INT64_MAX:
        raise AmountOverflowError(f"total {total} exceeds the int64 fixed-point range")
    sign = -1 if units < 0 else 1
    shares = split([abs(int(units))], [0, len(ids)], integer_weights, np.arange(len(ids)))
    return {i: (sign * int(s) * resolution) for i, s in zip(ids, shares, strict=True)}


# -- engine integration ---------------------------------------------------------
#
# The engine calls `prepare` on the consumption of the periods it is about to
# price, adds `Prepared.quantity_delta` to its period totals (masters netted,
# quantity-split common consumption moved onto the units' meters), prices, then
# calls `shared_area_lines` with the charges to split the costs. Every split of
# a (group, billing period) is one kernel group; all of them go through the
# kernel in one call per basis.

ROLE_SHARE = "share"  # a member's share
ROLE_SOURCE = "source"  # the common meter's side: what left its account

ANOMALY_REASONS = {
    "unknown_unit": "member is not an account of the registry",
    "cycle_mismatch": "the group's accounts do not share one billing cycle, so periods do not line up",
    "negative_common": "sub-meters exceed the master meter: a metering problem, not a share",
    "no_area": "member has no floor area (area method)",
    "zero_weights": "every member's weight is zero: nothing to split by",
    "no_target_meter": "quantity split: the member has no meter of the group's meter unit",
}


def shared_lines_schema(site, meter_id_type: pa.DataType | None = None) -> pa.Schema:
    """`rating.schema.charges_schema` plus the columns that explain a share."""
    extra = [
        ("group_id", pa.string()),
        ("method", pa.string()),  # area | consumption | equal | weight
        ("basis", pa.string()),  # quantity | cost
        ("role", pa.string()),  # share | source
        ("base_quantity", pa.decimal128(38, site.quantity_decimals)),  # the group's common quantity
        ("base_amount", pa.decimal128(38, site.minor_unit_exponent)),  # its cost (basis cost)
        ("weight", pa.decimal128(38, WEIGHT_DECIMALS)),  # this member's weight
        ("weight_total", pa.decimal128(38, WEIGHT_DECIMALS)),  # Σ weights of the group
    ]
    base = charges_schema(site, meter_id_type or pa.string())
    return pa.schema(list(base) + [pa.field(n, t) for n, t in extra])


def apportion_anomalies_schema(meter_id_type: pa.DataType | None = None) -> pa.Schema:
    """One row per problem found while apportioning; `action` says what was done."""
    return pa.schema(
        [
            ("group_id", pa.string()),
            ("period_start", pa.date32()),  # null: the problem concerns every period
            ("period_end", pa.date32()),
            ("account_id", pa.string()),
            ("meter_id", meter_id_type or pa.string()),
            ("code", pa.string()),
            ("reason", pa.string()),
            ("action", pa.string()),  # held | excluded | clamped | zero_weight | equal_shares
        ]
    )


@dataclass
class _Split:
    """One (group, billing period) to split: members sorted by account id."""

    group: Group
    start: int  # period start, days since 1970-01-01; end exclusive
    end: int
    base_qty: int  # common quantity (clamped to >= 0)
    accounts: list[str]
    weights: list[int]  # in weight units (see _weight_scale)
    weight_scale: int  # decimals of the weight units
    keys: list[int]
    sources: list[tuple[int, int]]  # (meter index, quantity that left it) per source meter
    targets: list[int] | None = None  # quantity basis: the member's target meter index


@dataclass(frozen=True)
class Prepared:
    """What `prepare` decided; hand it to `shared_area_lines` after pricing."""

    quantity_delta: PeriodQuantities  # add to the period totals before pricing
    anomalies: pa.Table  # apportion_anomalies_schema
    quantity_lines: pa.Table  # shared_lines_schema: lines of the quantity-basis splits
    cost_splits: list[_Split]
    config: Config


class _Consumption:
    """The engine's consumption table as int64 quantities per (meter, period)."""

    def __init__(self, table: pa.Table, config: Config, width: int, sources: set[int]):
        site, registry = config.site, config.registry
        self.meter = registry.index_of(table.column("meter_id").combine_chunks()).astype(np.int64)
        if (self.meter < 0).any():
            row = int(np.argmax(self.meter < 0))
            raise InputError(f"consumption row {row + 1}: meter not in the registry")
        self.start = table.column("period_start").cast(pa.int32()).to_numpy().astype(np.int64)
        self.end = table.column("period_end").cast(pa.int32()).to_numpy().astype(np.int64) + 1
        qty, null = decimal_units(table.column("quantity"), site.quantity_decimals, site.rounding)
        if null.any():
            raise InputError("consumption has a null quantity")
        tou = _tou_index(table, config)
        key = period_keys(self.meter, self.start)
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        self.qty = np.zeros((len(unique), width), dtype=np.int64)
        np.add.at(self.qty, (inverse, tou), qty)
        self.row_of = dict(zip(unique.tolist(), range(len(unique)), strict=True))
        self.row_totals = self.qty.sum(axis=1).tolist()
        self.periods: dict[int, dict[int, int]] = {}  # source meter -> {start: end}
        of_source = first[np.isin(self.meter[first], np.fromiter(sources, np.int64, len(sources)))]
        for m, start, end in zip(self.meter[of_source].tolist(), self.start[of_source].tolist(),
                                 self.end[of_source].tolist(), strict=True):
            self.periods.setdefault(m, {})[start] = end

    def row(self, meter: int, start: int) -> int:
        """Row of (meter, period) in `qty`, -1 if the meter has no consumption then."""
        return self.row_of.get(period_key(meter, start), -1)

    def total(self, meter: int, start: int) -> int:
        r = self.row_of.get(period_key(meter, start), -1)
        return 0 if r < 0 else self.row_totals[r]

    def vector(self, meter: int, start: int) -> np.ndarray:
        """Quantity per TOU index of (meter, period); zeros if none."""
        r = self.row(meter, start)
        return np.zeros(self.qty.shape[1], dtype=np.int64) if r < 0 else self.qty[r]


def _tou_index(table: pa.Table, config: Config) -> np.ndarray:
    """Position of each row's tou_period in its tariff version's TOU periods."""
    names = table.column("tou_period").fill_null("")
    keys = pc.binary_join_element_wise(
        table.column("tariff_id"), table.column("period_start").cast(pa.string()), names, "\x1f"
    ).combine_chunks().dictionary_encode()
    lookup = []
    for key in keys.dictionary.to_pylist():
        tariff_id, start, name = key.split("\x1f")
        periods = _tou_names(config, tariff_id, dt.date.fromisoformat(start))
        if name not in periods:
            raise InputError(f"consumption: TOU period {name!r} is not in tariff {tariff_id!r}")
        lookup.append(periods.index(name))
    return np.asarray(lookup, dtype=np.int64)[keys.indices.to_numpy()]


def _tou_names(config: Config, tariff_id: str, day: dt.date) -> list[str]:
    version = config.tariffs[tariff_id].version_on(day)
    return [p.name for p in version.tou.periods] if version.tou else [""]


class _Site:
    """Registry look-ups shared by every group of one `prepare` call."""

    def __init__(self, config: Config, groups: Groups):
        self.config = config
        self.registry = registry = config.registry
        self.rank = {a: i for i, a in enumerate(sorted(registry.accounts))}
        self.index_by_text = {str(m.meter_id): i for i, m in enumerate(registry.meters)}
        self._tou_names: dict[tuple[str, int], list[str]] = {}
        self.meters_of: dict[str, list[int]] = {}
        for i in sorted(range(len(registry.meters)), key=lambda i: _id_order(registry.meters[i].meter_id)):
            self.meters_of.setdefault(registry.meters[i].account_id, []).append(i)
        self.sources = {g.group_id: self.meter_indices(g.source_meters, g) for g in groups}
        self.all_sources = {m for meters in self.sources.values() for m in meters}

    def meter_indices(self, ids, group: Group) -> list[int]:
        """Registry indices of meter ids given as text (a file) or as the registry's own ids."""
        found = []
        for meter_id in ids:
            index = self.index_by_text.get(str(meter_id))
            if index is None:
                raise InputError(
                    f"meter {meter_id!r} is not in the registry", where=f"group {group.group_id!r}"
                )
            found.append(index)
        return found

    def tou_names(self, meter: int, start: int) -> list[str]:
        """TOU period names of the meter's tariff version in force on day `start`."""
        key = (self.registry.meters[meter].tariff_id, start)
        names = self._tou_names.get(key)
        if names is None:
            day = date_of(start)
            names = self._tou_names[key] = _tou_names(self.config, key[0], day)
        return names

    def unit(self, meter: int) -> str:
        return self.registry.meters[meter].unit

    def account(self, meter: int) -> str:
        return self.registry.meters[meter].account_id

    def own_meters(self, account: str, unit: str) -> list[int]:
        """The account's meters of that unit that are no group's source, lowest id first."""
        return [
            m for m in self.meters_of.get(account, [])
            if self.unit(m) == unit and m not in self.all_sources
        ]


def _id_order(meter_id) -> tuple:
    return (0, meter_id, "") if isinstance(meter_id, int) else (1, 0, str(meter_id))


class _Anomalies:
    def __init__(self):
        self.rows: list[tuple] = []

    def add(self, group: Group, start: int | None, end: int | None, code: str, action: str,
            account: str | None = None, meter=None) -> None:
        self.rows.append((group.group_id, start, None if end is None else end - 1, account, meter, code,
                          ANOMALY_REASONS[code], action))

    def table(self, meter_id_type: pa.DataType) -> pa.Table:
        schema = apportion_anomalies_schema(meter_id_type)
        columns = list(zip(*self.rows, strict=True)) if self.rows else [()] * len(schema)
        return pa.Table.from_arrays(
            [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
        )


class _Delta:
    """Quantities to add per (meter, period) and TOU index before pricing."""

    def __init__(self, width: int):
        self.width = width
        self.rows: dict[tuple[int, int], tuple[int, np.ndarray]] = {}

    def add(self, meter: int, start: int, end: int, qty: np.ndarray) -> None:
        if not qty.any():
            return
        row = self.rows.get((meter, start))
        if row is None:
            row = self.rows[(meter, start)] = (end, np.zeros(self.width, dtype=np.int64))
        row[1][: len(qty)] += qty

    def periods(self) -> PeriodQuantities:
        keys = sorted(self.rows)
        return PeriodQuantities(
            meter_index=np.array([k[0] for k in keys], dtype=np.int32),
            period_start=np.array([k[1] for k in keys], dtype=np.int32),
            period_end=np.array([self.rows[k][0] for k in keys], dtype=np.int32),
            qty=np.array([self.rows[k][1] for k in keys], dtype=np.int64).reshape(len(keys), self.width),
        )


def prepare(consumption: pa.Table, groups: Groups, *, config: Config) -> Prepared:
    """Plan every (group, billing period) split from the engine's consumption
    table (one row per meter, billing period and TOU period, as
    `rating.engine.consumption_table` makes it).

    Returns the quantities the engine adds to its period totals before
    pricing (master meters netted to master − Σ sub-meters; quantity-basis
    common consumption moved from the common meters onto each member's own
    meter), the anomalies found, the shared-area lines of the quantity-basis
    groups, and the cost-basis splits that `shared_area_lines` finishes.
    """
    width = max((t.tou_count for t in config.tariffs.values()), default=1)
    site = _Site(config, groups)
    usage = _Consumption(consumption, config, width, site.all_sources)
    anomalies = _Anomalies()
    delta = _Delta(width)
    quantity_splits: list[_Split] = []
    cost_splits: list[_Split] = []
    for group in groups:
        for split in _plan_group(group, site, usage, anomalies, delta):
            (quantity_splits if group.basis == "quantity" else cost_splits).append(split)
    quantity_lines = _quantity_lines(quantity_splits, site, usage, delta)
    meter_type = config.registry.meter_ids.type
    return Prepared(delta.periods(), anomalies.table(meter_type), quantity_lines, cost_splits, config)


def _plan_group(group: Group, site: _Site, usage: _Consumption, anomalies: _Anomalies,
                delta: _Delta) -> list[_Split]:
    """The splits of one group, one per billing period of its source meters;
    what cannot be split is reported and held (left on the source's account)."""
    registry = site.registry
    sources = site.sources[group.group_id]
    master = sources[0] if group.master_meter is not None else None
    unit = group.meter_unit if group.meter_unit is not None else site.unit(sources[0])
    held_always = False
    members = []
    for m in group.members:
        if m.account_id in registry.accounts:
            members.append(m)
        else:
            action = "excluded" if group.on_unknown_unit == "exclude" else "held"
            anomalies.add(group, None, None, "unknown_unit", action, account=m.account_id)
            held_always |= action == "held"
    members.sort(key=lambda m: m.account_id)
    accounts = [m.account_id for m in members]
    if master is None:
        subs: list[int] = []
    elif group.sub_meters is not None:
        subs = site.meter_indices(group.sub_meters, group)
    else:
        subs = [s for a in accounts for s in site.own_meters(a, unit)]
    cycles = {registry.cycle_of(site.account(m), site.config.site) for m in sources + subs}
    cycles |= {registry.cycle_of(a, site.config.site) for a in accounts}
    if len(cycles) > 1:
        anomalies.add(group, None, None, "cycle_mismatch", "held")
        held_always = True
    targets = None
    if group.basis == "quantity":
        targets = []
        for a in accounts:
            own = site.own_meters(a, unit)
            if not own:
                anomalies.add(group, None, None, "no_target_meter", "held", account=a)
                held_always = True
            targets.append(own[0] if own else -1)
    if not members:
        held_always = True

    periods: dict[int, int] = {}
    for s in sources:
        periods.update(usage.periods.get(s, {}))
    splits = []
    for start, end in sorted(periods.items()):
        if master is not None:
            net = usage.total(master, start) - sum(usage.total(s, start) for s in subs)
        else:
            net = sum(usage.total(s, start) for s in sources)
        held = held_always
        base = net
        if net < 0:
            action = "clamped" if group.on_negative == "clamp" else "held"
            meter_id = None if master is None else registry.meters[master].meter_id
            anomalies.add(group, start, end, "negative_common", action, meter=meter_id)
            held |= action == "held"
            base = 0
        weighed = None if held else _weights(group, members, start, end, unit, site, usage, anomalies)
        held = weighed is None
        moved = not held and group.basis == "quantity"
        if master is not None:  # the master is priced on what is left of it
            raw = usage.vector(master, start)
            left = 0 if moved else base
            delta.add(master, start, end, _spread(left, raw) - raw)
        elif moved:
            for s in sources:
                delta.add(s, start, end, -usage.vector(s, start))
        if weighed is None:
            continue
        weights, scale = weighed
        splits.append(_Split(
            group=group, start=start, end=end, base_qty=base, accounts=accounts, weights=weights,
            weight_scale=scale, keys=[site.rank[a] for a in accounts],
            sources=[(s, base if master is not None else usage.total(s, start)) for s in sources],
            targets=targets,
        ))
    return splits


def _spread(total: int, profile: np.ndarray) -> np.ndarray:
    """`total` over TOU indices in proportion to `profile` (all to the first if it is zero)."""
    weights = np.maximum(profile, 0)
    if not weights.any():
        weights = np.zeros_like(profile)
        weights[0] = 1
    return split([total], [0, len(weights)], weights, np.arange(len(weights)))


def _weights(group: Group, members, start: int, end: int, unit: str, site: _Site,
             usage: _Consumption, anomalies: _Anomalies) -> tuple[list[int], int] | None:
    """Each member's weight in integer units and the units' decimals, or None
    when the group's policy holds this period."""
    equal = ([1] * len(members), 0)
    if group.method == "equal":
        return equal
    if group.method == "weight":
        weights, scale = [_units(m.weight, WEIGHT_DECIMALS) for m in members], WEIGHT_DECIMALS
    elif group.method == "area":
        weights, scale = [], WEIGHT_DECIMALS
        for m in members:
            area = m.area if m.area is not None else site.registry.accounts[m.account_id].area
            # no area (blank in both files) weighs 0: the group's on_missing_area policy decides
            weights.append(0 if area is None else
                           _units(area, WEIGHT_DECIMALS, where=f"account {m.account_id!r} area"))
        action = {"report": "held", "zero": "zero_weight", "equal": "equal_shares"}[group.on_missing_area]
        for m, w in zip(members, weights, strict=True):
            if w == 0:
                anomalies.add(group, start, end, "no_area", action, account=m.account_id)
        if 0 in weights and action != "zero_weight":
            return None if action == "held" else equal
    else:  # consumption of the members' own meters of the group's unit
        scale = site.config.site.quantity_decimals
        weights = [sum(usage.total(s, start) for s in site.own_meters(m.account_id, unit)) for m in members]
    if not any(weights):
        action = "equal_shares" if group.on_zero_weights == "equal" else "held"
        anomalies.add(group, start, end, "zero_weights", action)
        return equal if action == "equal_shares" else None
    return weights, scale


def _units(value: Decimal, decimals: int, *, where: str = "weight") -> int:
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value() or scaled < 0 or scaled > WEIGHT_SUM_MAX:
        raise InputError(f"must be a number >= 0 with at most {decimals} decimals, got {value}", where=where)
    return int(scaled)


class _Lines:
    """Shared-area lines as Python columns; quantities and amounts in units."""

    NAMES = ("account_id", "meter_id", "tariff_id", "start", "quantity", "amount", "split", "role",
             "base_amount", "weight")

    def __init__(self):
        self.cols: dict[str, list] = {n: [] for n in self.NAMES}

    def add(self, **values) -> None:
        for name in self.NAMES:
            self.cols[name].append(values.get(name))

    def table(self, config: Config) -> pa.Table:
        site, registry = config.site, config.registry
        schema = shared_lines_schema(site, registry.meter_ids.type)
        c = self.cols
        splits: list[_Split] = c["split"]
        n = len(splits)

        def units(values, scale):
            mask = np.array([v is None for v in values], dtype=bool)
            filled = np.array([0 if v is None else v for v in values], dtype=np.int64)
            return decimal_array(filled, scale, mask)

        weight, weight_total = [], []
        for split, w in zip(splits, c["weight"], strict=True):
            factor = 10 ** (WEIGHT_DECIMALS - split.weight_scale)
            total = sum(split.weights) * factor
            if total > INT64_MAX:
                raise AmountOverflowError(f"group {split.group.group_id!r}: weights too large to show")
            weight.append(None if w is None else w * factor)
            weight_total.append(None if w is None else total)
        arrays = {
            "account_id": pa.array(c["account_id"], pa.string()),
            "meter_id": pa.array(c["meter_id"], registry.meter_ids.type),
            "tariff_id": pa.array(c["tariff_id"], pa.string()),
            "period_start": pa.array([s.start for s in splits], pa.int32()).cast(pa.date32()),
            "period_end": pa.array([s.end - 1 for s in splits], pa.int32()).cast(pa.date32()),
            "component": pa.array(["shared_area"] * n, pa.string()),
            "tou_period": pa.nulls(n, pa.string()),
            "slab": pa.nulls(n, pa.int16()),
            "quantity": units(c["quantity"], site.quantity_decimals),
            "unit_price": pa.nulls(n, schema.field("unit_price").type),
            "amount": units(c["amount"], site.minor_unit_exponent),
            "group_id": pa.array([s.group.group_id for s in splits], pa.string()),
            "method": pa.array([s.group.method for s in splits], pa.string()),
            "basis": pa.array([s.group.basis for s in splits], pa.string()),
            "role": pa.array(c["role"], pa.string()),
            "base_quantity": units([s.base_qty for s in splits], site.quantity_decimals),
            "base_amount": units(c["base_amount"], site.minor_unit_exponent),
            "weight": units(weight, WEIGHT_DECIMALS),
            "weight_total": units(weight_total, WEIGHT_DECIMALS),
        }
        return pa.Table.from_arrays([arrays[f.name] for f in schema], schema=schema)


def _layout(splits: list[_Split]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """offsets, weights and keys of all splits, for one kernel call."""
    sizes = [len(s.weights) for s in splits]
    offsets = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))
    weights = np.array([w for s in splits for w in s.weights], dtype=np.int64)
    keys = np.array([k for s in splits for k in s.keys], dtype=np.int64)
    return offsets, weights, keys


def _quantity_lines(splits: list[_Split], site: _Site, usage: _Consumption, delta: _Delta) -> pa.Table:
    """Split each quantity-basis common quantity over the members, add every
    share to the member's target meter (spread over its TOU periods) and
    write the explaining lines."""
    config = site.config
    lines = _Lines()
    if not splits:
        return lines.table(config)
    offsets, weights, keys = _layout(splits)
    shares = split([s.base_qty for s in splits], offsets, weights, keys).tolist()
    # Spread each share over its target meter's TOU periods: all in one kernel call.
    spread_totals, spread_weights, spread_sizes, owners = [], [], [], []
    position = 0
    for s in splits:
        source_names = site.tou_names(s.sources[0][0], s.start)
        source_profile = np.sum([usage.vector(m, s.start) for m, _ in s.sources], axis=0)
        for account, target, weight in zip(s.accounts, s.targets or [], s.weights, strict=True):
            share = shares[position]
            position += 1
            names = site.tou_names(target, s.start)
            owners.append((s, account, target, weight, share, len(names) > 1))
            if len(names) == 1:  # nothing to spread
                continue
            profile = source_profile if names == source_names else usage.vector(target, s.start)
            profile = np.maximum(profile[: len(names)], 0)
            if not profile.any():
                profile = np.eye(1, len(names), dtype=np.int64)[0]
            spread_totals.append(share)
            spread_weights.append(profile)
            spread_sizes.append(len(names))
        for meter, moved in s.sources:
            lines.add(account_id=site.account(meter), meter_id=site.registry.meters[meter].meter_id,
                      tariff_id=site.registry.meters[meter].tariff_id, quantity=-moved, amount=0,
                      split=s, role=ROLE_SOURCE)
    spread_offsets = np.concatenate(([0], np.cumsum(spread_sizes, dtype=np.int64)))
    parts = split(spread_totals, spread_offsets,
                  np.concatenate(spread_weights) if spread_weights else [],
                  np.concatenate([np.arange(k) for k in spread_sizes]) if spread_sizes else [])
    spread = 0
    for s, account, target, weight, share, spreads in owners:
        if spreads:
            delta.add(target, s.start, s.end, parts[spread_offsets[spread] : spread_offsets[spread + 1]])
            spread += 1
        else:
            delta.add(target, s.start, s.end, np.array([share], dtype=np.int64))
        own = site.registry.meters[target]
        lines.add(account_id=account, meter_id=own.meter_id, tariff_id=own.tariff_id,
                  quantity=share, amount=0, split=s, role=ROLE_SHARE, weight=weight)
    return lines.table(config)


def shared_area_lines(prepared: Prepared, charges: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The shared-area lines of every group and the apportionment anomalies.

    `charges` are the charge lines priced on the period totals plus
    `prepared.quantity_delta` (whole periods, not an incremental diff). A
    cost-basis group splits the money of every line of its source meters in
    the period; each member gets a `share` line and each source meter a
    `source` line with the opposite amount, so the lines of one split sum to
    zero. Lines follow `shared_lines_schema`; `.select(charges_schema names)`
    gives plain charge lines.
    """
    config = prepared.config
    lines = _Lines()
    splits = prepared.cost_splits
    if splits:
        cost = _cost_by_meter_period(charges, config)
        totals = [sum(cost.get((m, s.start), 0) for m, _ in s.sources) for s in splits]
        sign = np.array([-1 if t < 0 else 1 for t in totals], dtype=np.int64)
        offsets, weights, keys = _layout(splits)
        money = split(np.abs(totals), offsets, weights, keys) * np.repeat(sign, np.diff(offsets))
        qty = split([s.base_qty for s in splits], offsets, weights, keys)
        registry = config.registry
        for i, (s, total) in enumerate(zip(splits, totals, strict=True)):
            tariff = registry.meters[s.sources[0][0]].tariff_id
            for j, account in enumerate(s.accounts):
                k = offsets[i] + j
                lines.add(account_id=account, tariff_id=tariff, quantity=int(qty[k]), amount=int(money[k]),
                          split=s, role=ROLE_SHARE, base_amount=total, weight=s.weights[j])
            for meter, moved in s.sources:
                m = registry.meters[meter]
                lines.add(account_id=m.account_id, meter_id=m.meter_id, tariff_id=m.tariff_id,
                          quantity=-moved, amount=-cost.get((meter, s.start), 0), split=s,
                          role=ROLE_SOURCE, base_amount=total)
    table = pa.concat_tables([prepared.quantity_lines, lines.table(config)])
    return table, prepared.anomalies


def _cost_by_meter_period(charges: pa.Table, config: Config) -> dict[tuple[int, int], int]:
    """Σ amount (minor units) of the charge lines of each (meter, period start)."""
    meter_ids = charges.column("meter_id").combine_chunks()
    has_meter = meter_ids.is_valid().to_numpy(zero_copy_only=False)
    meter = config.registry.index_of(meter_ids.filter(has_meter)) if has_meter.any() else np.zeros(0)
    start = charges.column("period_start").cast(pa.int32()).to_numpy()[has_meter]
    amount, _ = decimal_units(charges.column("amount"), config.site.minor_unit_exponent)
    amount = amount[has_meter]
    cost: dict[tuple[int, int], int] = {}
    for m, d, a in zip(meter.tolist(), start.tolist(), amount.tolist(), strict=True):
        cost[(m, d)] = cost.get((m, d), 0) + a
    return cost
