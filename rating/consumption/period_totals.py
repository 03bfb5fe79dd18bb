"""Consumption totals per (meter, billing period), carried from batch to batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rating.consumption.quantities import PeriodQuantities, period_keys
from rating.errors import AmountOverflowError


def _keys(periods: PeriodQuantities) -> np.ndarray:
    return period_keys(periods.meter_index, periods.period_start)


def _account_keys(meter_index: np.ndarray, period_start: np.ndarray,
                  account_of_meter: np.ndarray) -> np.ndarray:
    return period_keys(account_of_meter[meter_index], period_start)


def _sums_fit(old_qty: np.ndarray, new_qty: np.ndarray) -> bool:
    """No sum can leave int64: a (meter, period) appears at most once in each
    side, so the largest sum is at most max + max."""
    bound = int(np.abs(old_qty).max(initial=0)) + int(np.abs(new_qty).max(initial=0))
    return bound <= np.iinfo(np.int64).max


def _as_int64(qty: np.ndarray) -> np.ndarray:
    """Sums computed in Python integers (when they might leave int64) back as
    int64, refusing any that left it."""
    if qty.dtype != object:
        return qty
    info = np.iinfo(np.int64)
    if ((qty > info.max) | (qty < info.min)).any():
        raise AmountOverflowError("a period's consumption exceeds the int64 fixed-point range")
    return qty.astype(np.int64)


@dataclass(frozen=True)
class PeriodTotals:
    """Sorted by (meter, period start), one row per touched period."""

    periods: PeriodQuantities

    @classmethod
    def empty(cls, tou_width: int) -> PeriodTotals:
        return cls(PeriodQuantities(
            meter_index=np.empty(0, np.int32), period_start=np.empty(0, np.int32),
            period_end=np.empty(0, np.int32), qty=np.empty((0, tou_width), np.int64),
        ))

    def __len__(self) -> int:
        return len(self.periods.meter_index)

    def merge(self, new: PeriodQuantities) -> PeriodTotals:
        """These totals plus one batch's quantities (new periods join, known ones add).

        Returns new totals and never writes into these (callers keep them as
        snapshots)."""
        old = self.periods
        width = max(old.qty.shape[1], new.qty.shape[1])
        # Sums that might leave int64 are made in Python integers, then checked.
        dtype = np.int64 if _sums_fit(old.qty, new.qty) else object
        keys = _keys(old)
        new_keys = _keys(new)
        if len(keys) and width == old.qty.shape[1] and len(np.unique(new_keys)) == len(new_keys):
            position = np.minimum(np.searchsorted(keys, new_keys), len(keys) - 1)
            if (keys[position] == new_keys).all():  # mid-period: no new (meter, period)
                qty = old.qty.astype(dtype)  # a copy: these totals are never written
                qty[position, : new.qty.shape[1]] += new.qty.astype(dtype)
                return PeriodTotals(PeriodQuantities(old.meter_index, old.period_start, old.period_end,
                                                     _as_int64(qty)))
        unique, first, inverse = np.unique(np.concatenate([keys, new_keys]), return_index=True,
                                           return_inverse=True)
        stacked = np.zeros((len(inverse), width), dtype=dtype)
        stacked[: len(old.qty), : old.qty.shape[1]] = old.qty
        stacked[len(old.qty):, : new.qty.shape[1]] = new.qty
        qty = np.zeros((len(unique), width), dtype=dtype)
        np.add.at(qty, inverse, stacked)
        qty = _as_int64(qty)

        def pick(name: str) -> np.ndarray:
            return np.concatenate([getattr(old, name), getattr(new, name)])[first]

        return PeriodTotals(PeriodQuantities(
            meter_index=pick("meter_index"), period_start=pick("period_start"),
            period_end=pick("period_end"), qty=qty,
        ))

    def select_like(self, periods: PeriodQuantities, account_of_meter: np.ndarray) -> PeriodQuantities:
        """The carried totals of every meter whose account has a period in
        `periods`, for those periods. Whole accounts, because account-level
        lines (area charge, fees) depend on all of an account's meters."""
        mine = self.periods
        wanted = _account_keys(periods.meter_index, periods.period_start, account_of_meter)
        hit = np.isin(_account_keys(mine.meter_index, mine.period_start, account_of_meter), wanted)
        return PeriodQuantities(
            meter_index=mine.meter_index[hit], period_start=mine.period_start[hit],
            period_end=mine.period_end[hit], qty=mine.qty[hit],
        )

    def as_quantities(self) -> PeriodQuantities:
        return self.periods
