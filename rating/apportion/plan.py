"""Planning the splits: which (group, billing period) to split, its common quantity and
the members weights, from the consumption about to be priced."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa

from rating.apportion.largest_remainder import WEIGHT_SUM_MAX, split
from rating.apportion.lines import moved_quantity_lines
from rating.apportion.shapes import Prepared, Split
from rating.apportion.views import Consumption, Delta, GroupAnomalies, RegistryView
from rating.config.loader import Config
from rating.errors import InputError
from rating.model.groups import WEIGHT_DECIMALS, Group, Groups


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
    site = RegistryView(config, groups)
    usage = Consumption(consumption, config, width, site.all_sources)
    anomalies = GroupAnomalies()
    delta = Delta(width)
    quantity_splits: list[Split] = []
    cost_splits: list[Split] = []
    for group in groups:
        for planned in _plan_group(group, site, usage, anomalies, delta):
            (quantity_splits if group.basis == "quantity" else cost_splits).append(planned)
    quantity_lines = moved_quantity_lines(quantity_splits, site, usage, delta)
    meter_type = config.registry.meter_ids.type
    return Prepared(delta.periods(), anomalies.table(meter_type), quantity_lines, cost_splits, config)


def _plan_group(group: Group, site: RegistryView, usage: Consumption, anomalies: GroupAnomalies,
                delta: Delta) -> list[Split]:
    """The splits of one group, one per billing period of its source meters;
    what cannot be split is reported and held (left on the source's account)."""
    setup = _setup(group, site, anomalies)
    periods: dict[int, int] = {}
    for s in setup.sources:
        periods.update(usage.periods.get(s, {}))
    splits = []
    for start, end in sorted(periods.items()):
        planned = _plan_period(group, setup, start, end, site, usage, anomalies, delta)
        if planned is not None:
            splits.append(planned)
    return splits


@dataclass
class _Setup:
    """What a group's splits share in every period."""

    sources: list[int]  # meter indices of the common meters (the master first)
    master: int | None
    unit: str
    members: list  # known members, sorted by account id
    accounts: list[str]
    subs: list[int]  # sub-meters netted off the master
    targets: list[int] | None  # quantity basis: each member's target meter (-1: none)
    held: bool  # held in every period


def _setup(group: Group, site: RegistryView, anomalies: GroupAnomalies) -> _Setup:
    registry = site.registry
    sources = site.sources[group.group_id]
    master = sources[0] if group.master_meter is not None else None
    unit = group.meter_unit if group.meter_unit is not None else site.unit(sources[0])
    held = False
    members = []
    for m in group.members:
        if m.account_id in registry.accounts:
            members.append(m)
        else:
            action = "excluded" if group.on_unknown_unit == "exclude" else "held"
            anomalies.add(group, None, None, "unknown_unit", action, account=m.account_id)
            held |= action == "held"
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
        held = True
    targets = None
    if group.basis == "quantity":
        targets = []
        for a in accounts:
            own = site.own_meters(a, unit)
            if not own:
                anomalies.add(group, None, None, "no_target_meter", "held", account=a)
                held = True
            targets.append(own[0] if own else -1)
    return _Setup(sources, master, unit, members, accounts, subs, targets, held or not members)


def _plan_period(group: Group, setup: _Setup, start: int, end: int, site: RegistryView,
                 usage: Consumption, anomalies: GroupAnomalies, delta: Delta) -> Split | None:
    """The split of one billing period, None when it is held; the master (or the
    moved sources) get their quantity delta either way."""
    master, sources = setup.master, setup.sources
    if master is not None:
        net = usage.total(master, start) - sum(usage.total(s, start) for s in setup.subs)
    else:
        net = sum(usage.total(s, start) for s in sources)
    held = setup.held
    base = net
    if net < 0:
        action = "clamped" if group.on_negative == "clamp" else "held"
        meter_id = None if master is None else site.registry.meters[master].meter_id
        anomalies.add(group, start, end, "negative_common", action, meter=meter_id)
        held |= action == "held"
        base = 0
    weighed = None if held else _weights(group, setup.members, start, end, setup.unit, site, usage, anomalies)
    moved = weighed is not None and group.basis == "quantity"
    if master is not None:  # the master is priced on what is left of it
        raw = usage.vector(master, start)
        delta.add(master, start, end, _spread(0 if moved else base, raw) - raw)
    elif moved:
        for s in sources:
            delta.add(s, start, end, -usage.vector(s, start))
    if weighed is None:
        return None
    weights, scale, consumption_weights = weighed
    return Split(
        group=group, start=start, end=end, base_qty=base, accounts=setup.accounts, weights=weights,
        weight_scale=scale, keys=[site.rank[a] for a in setup.accounts],
        sources=[(s, base if master is not None else usage.total(s, start)) for s in sources],
        targets=setup.targets, consumption_weights=consumption_weights,
    )


def _spread(total: int, profile: np.ndarray) -> np.ndarray:
    """`total` over TOU indices in proportion to `profile` (all to the first if it is zero)."""
    weights = np.maximum(profile, 0)
    if not weights.any():
        weights = np.zeros_like(profile)
        weights[0] = 1
    return split([total], [0, len(weights)], weights, np.arange(len(weights)))


_Weighed = tuple[list[int], int, list[int] | None]


def _weights(group: Group, members, start: int, end: int, unit: str, site: RegistryView,
             usage: Consumption, anomalies: GroupAnomalies) -> _Weighed | None:
    """Each member's weight in integer units, the units' decimals and, for
    method mixed, the consumption weights of the part split by consumption
    (the first weights are then the areas); None when the group's policy
    holds this period."""
    if group.method == "mixed":
        area = _weights_by(group, "area", members, start, end, unit, site, usage, anomalies)
        consumption = _weights_by(group, "consumption", members, start, end, unit, site, usage, anomalies)
        if area is None or consumption is None:
            return None
        return area[0], area[1], consumption[0]
    weighed = _weights_by(group, group.method, members, start, end, unit, site, usage, anomalies)
    return None if weighed is None else (*weighed, None)


def _weights_by(group: Group, method: str, members, start: int, end: int, unit: str,
                site: RegistryView, usage: Consumption,
                anomalies: GroupAnomalies) -> tuple[list[int], int] | None:
    """The weights of one method (area, consumption, equal, weight)."""
    equal = ([1] * len(members), 0)
    if method == "equal":
        return equal
    if method == "weight":
        weights, scale = [_units(m.weight, WEIGHT_DECIMALS) for m in members], WEIGHT_DECIMALS
    elif method == "area":
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


