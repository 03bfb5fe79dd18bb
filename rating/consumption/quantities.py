"""What consumption hands to pricing: quantities per touched (meter, billing period)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PeriodQuantities:
    """Touched (meter, billing period) pairs with their consumption per TOU period."""

    meter_index: np.ndarray  # int32, registry index (registry.meters[i])
    period_start: np.ndarray  # int32, first local day, days since 1970-01-01 (Arrow date32)
    period_end: np.ndarray  # int32, exclusive end: the next period's first day
    qty: np.ndarray  # int64 (n, T): quantity units per TOU index; T >= every tariff's tou_count


@dataclass(frozen=True)
class AccountPeriods:
    """(account, billing period) pairs charged whether or not a meter of the
    account is touched (rate() given periods: an account without meters still
    owes its own tariff's charges)."""

    account_index: np.ndarray  # int64, position in registry.account_ids (registry order)
    period_start: np.ndarray  # int32, as PeriodQuantities
    period_end: np.ndarray  # int32


# (index, period start) packed into one int64 that sorts as the pair: the index
# (a meter's or an account's) in the high word, the start day shifted to
# non-negative in the low word.
_START_OFFSET = 1 << 31


def period_keys(index: np.ndarray, period_start: np.ndarray) -> np.ndarray:
    """One int64 key per (index, period start day) pair."""
    return (index.astype(np.int64) << 32) | (period_start.astype(np.int64) + _START_OFFSET)


def period_key(index: int, period_start: int) -> int:
    """The key of one pair, as a Python int."""
    return (index << 32) | (period_start + _START_OFFSET)


def index_key_bounds(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[low, high) of the keys of each index, whatever its periods."""
    low = index.astype(np.int64) << 32
    return low, low + (1 << 32)
