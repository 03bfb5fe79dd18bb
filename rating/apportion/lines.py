"""The splits as charge lines: quantity moved onto members meters, costs split over
members accounts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rating.apportion.largest_remainder import INT64_MAX, PERCENT_UNITS, split, split_two_ways
from rating.apportion.shapes import ROLE_SHARE, ROLE_SOURCE, Prepared, Split, shared_lines_schema
from rating.apportion.views import Consumption, Delta, RegistryView
from rating.config.loader import Config
from rating.errors import AmountOverflowError
from rating.fixedpoint import decimal_array, decimal_units
from rating.model.groups import WEIGHT_DECIMALS


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
        splits: list[Split] = c["split"]
        n = len(splits)

        def units(values, scale):
            mask = np.array([v is None for v in values], dtype=bool)
            filled = np.array([0 if v is None else v for v in values], dtype=np.int64)
            return decimal_array(filled, scale, mask)

        weight, weight_total = [], []
        for planned, w in zip(splits, c["weight"], strict=True):
            factor = 10 ** (WEIGHT_DECIMALS - planned.weight_scale)
            total = sum(planned.weights) * factor
            if total > INT64_MAX:
                raise AmountOverflowError(f"group {planned.group.group_id!r}: weights too large to show")
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


def _layout(splits: list[Split]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """offsets, weights and keys of all splits, for one kernel call."""
    sizes = [len(s.weights) for s in splits]
    offsets = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))
    weights = np.array([w for s in splits for w in s.weights], dtype=np.int64)
    keys = np.array([k for s in splits for k in s.keys], dtype=np.int64)
    return offsets, weights, keys


def moved_quantity_lines(splits: list[Split], site: RegistryView, usage: Consumption,
                         delta: Delta) -> pa.Table:
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
        offsets = _layout(splits)[0]
        money = _cost_shares(np.abs(totals), splits) * np.repeat(sign, np.diff(offsets))
        qty = _cost_shares([s.base_qty for s in splits], splits)
        registry = config.registry
        for i, (s, total) in enumerate(zip(splits, totals, strict=True)):
            tariff = registry.meters[s.sources[0][0]].tariff_id
            for j, account in enumerate(s.accounts):
                k = offsets[i] + j
                lines.add(account_id=account, tariff_id=tariff, quantity=int(qty[k]), amount=int(money[k]),
                          split=s, role=ROLE_SHARE, base_amount=total,
                          weight=None if s.consumption_weights is not None else s.weights[j])
            for meter, moved in s.sources:
                m = registry.meters[meter]
                lines.add(account_id=m.account_id, meter_id=m.meter_id, tariff_id=m.tariff_id,
                          quantity=-moved, amount=-cost.get((meter, s.start), 0), split=s,
                          role=ROLE_SOURCE, base_amount=total)
    table = pa.concat_tables([prepared.quantity_lines, lines.table(config)])
    return table, prepared.anomalies


def _cost_shares(totals, splits: list[Split]) -> np.ndarray:
    """Each split's total over its members by its weights; a mixed split's
    area_percent of it by area, the rest by consumption."""
    offsets, weights, keys = _layout(splits)
    if all(s.consumption_weights is None for s in splits):
        return split(totals, offsets, weights, keys)
    percent = [PERCENT_UNITS if s.group.area_percent is None or s.consumption_weights is None
               else int(s.group.area_percent.scaleb(6)) for s in splits]
    second = np.array([w for s in splits for w in (s.consumption_weights or s.weights)], dtype=np.int64)
    return split_two_ways(totals, offsets, weights, second, percent, keys)


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
