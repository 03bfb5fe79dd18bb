"""The same register rating written as careful vectorised numpy, for comparison.

Sort by a packed (meter << 40 | arrival position) key, take deltas within a
meter, drop backwards and non-increasing reads, sum per (meter, period)
segment, then clip the totals into graduated slabs in place. Exact int64
throughout, like the kernel. It covers what the benchmark workload needs:
register meters, one graduated slab set, no time of use or splits.
"""

from __future__ import annotations

import numpy as np

from rating.fixedpoint import round_div_array

POSITION_BITS = 40


def sorted_register_deltas(meter_index: np.ndarray, ts_us: np.ndarray, value_qty: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Readings in (meter, arrival) order by one sort of a packed key: their
    meters and timestamps, and per reading after the first the delta (0 where
    it is rejected: another meter, not later in time, or backwards) and
    whether it was accepted."""
    key = (meter_index.astype(np.int64) << POSITION_BITS) | np.arange(len(meter_index), dtype=np.int64)
    key.sort()
    order = key & ((1 << POSITION_BITS) - 1)
    meters = key >> POSITION_BITS
    ts = ts_us[order]
    values = value_qty[order]
    delta = values[1:] - values[:-1]
    accepted = (meters[1:] == meters[:-1]) & (ts[1:] > ts[:-1]) & (delta >= 0)
    delta[~accepted] = 0
    return meters, ts, delta, accepted


def rate_registers(meter_index: np.ndarray, ts_us: np.ndarray, value_qty: np.ndarray,
                   period_bounds_us: np.ndarray, slab_upper_qty: np.ndarray,
                   slab_price_micro: np.ndarray, amount_divisor: int, rounding: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (meter, period): meter, period index and the amount per slab (minor units)."""
    meters, ts, delta, accepted = sorted_register_deltas(meter_index, ts_us, value_qty)
    period = np.searchsorted(period_bounds_us, ts[1:], side="left") - 1
    segment_meter, segment_period = meters[1:], period
    starts = np.flatnonzero(
        np.concatenate(([True], (segment_meter[1:] != segment_meter[:-1])
                        | (segment_period[1:] != segment_period[:-1])))
    )
    totals = np.add.reduceat(delta, starts)
    touched = np.add.reduceat(accepted.astype(np.int64), starts) > 0
    lower = np.concatenate(([0], slab_upper_qty[:-1]))
    amounts = np.empty((len(totals), len(slab_price_micro)), dtype=np.int64)
    for j, (low, high, price) in enumerate(zip(lower, slab_upper_qty, slab_price_micro, strict=True)):
        in_slab = np.clip(totals - low, 0, high - low, out=amounts[:, j])
        in_slab *= price
        amounts[:, j] = round_div_array(in_slab, amount_divisor, rounding)
    keep = touched
    return segment_meter[starts][keep], segment_period[starts][keep], amounts[keep]
