"""The same register rating as a pyarrow.compute pipeline, for comparison.

What a user who already holds Arrow data would write: a stable
`sort_indices` by meter (arrival order kept within a meter), `take`, deltas
of shifted slices, a filter of accepted deltas, `group_by(meter, bucket)`
sum, then slab clipping with element-wise min/max and an exact
round-to-nearest division, all with the overflow-checked kernels. Arrow has
no binary search, so the bucket of each delta is looked up with
`numpy.searchsorted` on a zero-copy view of the timestamps.

Coverage as `bench.numpy_tou`: register meters, graduated slabs over the
period, readings on the TOU grid (a straddling delta raises).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.numpy_tou import StraddleError
from bench.tariff_workloads import RatingTables


def round_div(numerator: pa.Array, divisor: int, rounding: str) -> pa.Array:
    """numerator / divisor rounded to the nearest integer (ties: rule), for numerator >= 0."""
    quotient = pc.divide(numerator, divisor)  # truncates: the floor for numerator >= 0
    twice_remainder = pc.multiply(pc.subtract(numerator, pc.multiply(quotient, divisor)), 2)
    up = pc.greater(twice_remainder, divisor)
    tie = pc.equal(twice_remainder, divisor)
    if rounding == "half_even":
        tie = pc.and_(tie, pc.equal(pc.bit_wise_and(quotient, 1), 1))
    return pc.add(quotient, pc.cast(pc.or_(up, tie), pa.int64()))


def rate_registers_arrow(meter_index: pa.Array, ts_us: pa.Array, value_qty: pa.Array,
                         tables: RatingTables) -> pa.Table:
    """Per touched (meter, bucket): meter, slot and the amount of each slab (minor units)."""
    order = pc.sort_indices(meter_index)  # stable
    meters = pc.take(meter_index, order)
    ts = pc.take(ts_us, order)
    values = pc.take(value_qty, order)
    n = len(meters)
    meter = meters.slice(1)
    ts_end = ts.slice(1)
    delta = pc.subtract_checked(values.slice(1), values.slice(0, n - 1))
    accepted = pc.and_(
        pc.and_(pc.equal(meter, meters.slice(0, n - 1)), pc.greater(ts_end, ts.slice(0, n - 1))),
        pc.greater_equal(delta, 0),
    )
    ts_np = ts.to_numpy(zero_copy_only=True)
    segment = np.searchsorted(tables.bounds_us, ts_np[1:], side="left") - 1
    start_segment = np.searchsorted(tables.bounds_us, ts_np[:-1], side="right") - 1
    if pc.any(pc.and_(accepted, pa.array(start_segment != segment))).as_py():
        raise StraddleError("a delta straddles a period or TOU boundary; the pyarrow peer does not split")
    deltas = pa.table({"meter": meter, "slot": pa.array(tables.segment_slots[segment]), "qty": delta})
    totals = deltas.filter(accepted).group_by(["meter", "slot"]).aggregate([("qty", "sum")])
    slot = totals.column("slot")
    tou = pc.modulo(slot, tables.tou_count)
    total_qty = totals.column("qty_sum")
    columns = {"meter": totals.column("meter"), "slot": slot}
    for k in range(tables.lower_qty.shape[1]):
        lower = pc.take(pa.array(tables.lower_qty[:, k]), tou)
        width = pc.subtract(pc.take(pa.array(tables.upper_qty[:, k]), tou), lower)
        in_slab = pc.min_element_wise(pc.max_element_wise(pc.subtract(total_qty, lower), 0), width)
        product = pc.multiply_checked(in_slab, pc.take(pa.array(tables.price_micro[:, k]), tou))
        columns[f"slab_{k + 1}"] = round_div(product, tables.amount_divisor, tables.rounding)
    return pa.table(columns)


def total_amount_minor(table: pa.Table) -> int:
    return sum(pc.sum(table.column(name)).as_py() or 0
               for name in table.column_names if name.startswith("slab_"))
