"""What apportionment hands on: its line and anomaly schemas, a planned split, the prepared result."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from rating.config.loader import Config
from rating.consumption.quantities import PeriodQuantities
from rating.model.groups import WEIGHT_DECIMALS, Group
from rating.schema import charges_schema

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
        ("method", pa.string()),  # area | consumption | equal | weight | mixed
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
class Split:
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
    consumption_weights: list[int] | None = None  # method mixed: `weights` are areas, these
    # weigh the part of the cost that is split by consumption (docs/apportionment.md)


@dataclass(frozen=True)
class Prepared:
    """What `prepare` decided; hand it to `shared_area_lines` after pricing."""

    quantity_delta: PeriodQuantities  # add to the period totals before pricing
    anomalies: pa.Table  # apportion_anomalies_schema
    quantity_lines: pa.Table  # shared_lines_schema: lines of the quantity-basis splits
    cost_splits: list[Split]
    config: Config


