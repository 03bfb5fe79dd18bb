"""Register rating with time of use x slabs, as careful vectorised numpy.

The same first steps as `bench.numpy_rater.rate_registers` (sort a packed
meter << 40 | arrival position key, deltas within a meter), then each delta
goes to its timeline segment's bucket (billing period x TOU period). Within
a meter the buckets alternate (off-peak, normal, peak, off-peak...), so runs
of equal (meter, bucket) are summed first with `reduceat` and the far fewer
run sums are gathered per bucket after a sort of their packed keys. Each
bucket's total is clipped into its TOU period's slabs. Exact int64.

It covers what the benchmark workloads need: register meters, graduated
slabs over the period, readings on the TOU grid. A delta that straddles a
segment boundary would be split pro rata by the kernel; here it raises.
"""

from __future__ import annotations

import numpy as np

from bench.numpy_rater import sorted_register_deltas
from bench.tariff_workloads import RatingTables
from rating.fixedpoint import round_div_array


class StraddleError(ValueError):
    """A priced delta crosses a segment boundary: outside what the peers cover."""


def sorted_deltas(meter_index: np.ndarray, ts_us: np.ndarray, value_qty: np.ndarray, bounds_us: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per reading after a meter's first, in (meter, arrival) order: meter,
    timeline segment, delta (0 where rejected) and whether it was accepted."""
    meters, ts, delta, accepted = sorted_register_deltas(meter_index, ts_us, value_qty)
    segment = np.searchsorted(bounds_us, ts[1:], side="left") - 1
    start_segment = np.searchsorted(bounds_us, ts[:-1], side="right") - 1
    if (accepted & (start_segment != segment)).any():
        raise StraddleError("a delta straddles a period or TOU boundary; the numpy peer does not split")
    return meters[1:], segment, delta, accepted


def price_buckets(bucket_slot: np.ndarray, total_qty: np.ndarray, tables: RatingTables) -> np.ndarray:
    """Amount per bucket and slab (minor units), each rounded as its own line."""
    tou = bucket_slot % tables.tou_count
    lower = tables.lower_qty[tou]
    width = tables.upper_qty[tou] - lower
    amounts = np.empty(lower.shape, dtype=np.int64)
    for k in range(lower.shape[1]):
        in_slab = np.clip(total_qty - lower[:, k], 0, width[:, k], out=amounts[:, k])
        in_slab *= tables.price_micro[tou, k]
        amounts[:, k] = round_div_array(in_slab, tables.amount_divisor, tables.rounding)
    return amounts


def rate_registers_tou(meter_index: np.ndarray, ts_us: np.ndarray, value_qty: np.ndarray,
                       tables: RatingTables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per touched (meter, bucket): meter, bucket slot, amount per slab (minor units)."""
    meters, segment, delta, accepted = sorted_deltas(meter_index, ts_us, value_qty, tables.bounds_us)
    slot = tables.segment_slots[segment]
    run_starts = np.flatnonzero(np.concatenate(
        ([True], (meters[1:] != meters[:-1]) | (slot[1:] != slot[:-1]))))
    run_qty = np.add.reduceat(delta, run_starts)
    run_accepted = np.add.reduceat(accepted.astype(np.int64), run_starts)
    run_key = meters[run_starts] * tables.slot_count + slot[run_starts]
    order = np.argsort(run_key, kind="stable")
    run_key = run_key[order]
    firsts = np.flatnonzero(np.concatenate(([True], run_key[1:] != run_key[:-1])))
    total_qty = np.add.reduceat(run_qty[order], firsts)
    touched = np.add.reduceat(run_accepted[order], firsts) > 0
    keys = run_key[firsts][touched]
    bucket_slot = keys % tables.slot_count
    return keys // tables.slot_count, bucket_slot, price_buckets(bucket_slot, total_qty[touched], tables)
