"""Consumption totals per (meter, billing period), carried from batch to batch.

Held as one block per period start (its meters sorted, their end days and
quantities): a batch only touches the blocks of the periods it reads, so
merging it costs the size of those blocks, never of every period seen so
far. Blocks are never written after they are built; totals that share a
block share it (snapshots cost nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rating.consumption.quantities import PeriodQuantities
from rating.errors import AmountOverflowError

_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class _Block:
    """The totals of one period start: meters sorted and distinct."""

    meter_index: np.ndarray  # int32
    period_end: np.ndarray  # int32
    qty: np.ndarray  # int64 (n, width)


def _sums_fit(old_qty: np.ndarray, new_qty: np.ndarray) -> bool:
    """No sum can leave int64: a (meter, period) appears at most once in each
    side, so the largest sum is at most max + max."""
    bound = int(np.abs(old_qty).max(initial=0)) + int(np.abs(new_qty).max(initial=0))
    return bound <= _INT64_MAX


def _as_int64(qty: np.ndarray) -> np.ndarray:
    """Sums computed in Python integers (when they might leave int64) back as
    int64, refusing any that left it."""
    if qty.dtype != object:
        return qty
    info = np.iinfo(np.int64)
    if ((qty > info.max) | (qty < info.min)).any():
        raise AmountOverflowError("a period's consumption exceeds the int64 fixed-point range")
    return qty.astype(np.int64)


def _widened(qty: np.ndarray, width: int) -> np.ndarray:
    if qty.shape[1] == width:
        return qty
    wide = np.zeros((len(qty), width), dtype=qty.dtype)
    wide[:, : qty.shape[1]] = qty
    return wide


def _distinct(meter: np.ndarray, end: np.ndarray, qty: np.ndarray) -> tuple[np.ndarray, ...]:
    """Rows sorted by meter, repeated meters summed (the first row's end kept)."""
    order = np.argsort(meter, kind="stable")
    meter, end, qty = meter[order], end[order], qty[order]
    if len(meter) < 2 or (meter[1:] != meter[:-1]).all():
        return meter, end, qty
    unique, first, inverse = np.unique(meter, return_index=True, return_inverse=True)
    dtype = np.int64 if 2 * int(np.abs(qty).max(initial=0)) * len(meter) <= _INT64_MAX else object
    summed = np.zeros((len(unique), qty.shape[1]), dtype=dtype)
    np.add.at(summed, inverse, qty.astype(dtype))
    return unique, end[first], _as_int64(summed)


def _merged(old: _Block | None, meter: np.ndarray, end: np.ndarray, qty: np.ndarray,
            width: int) -> _Block:
    """A block with one batch's rows of its period added (never written into `old`)."""
    meter, end, qty = _distinct(meter, end, _widened(qty, width))
    if old is None:
        return _Block(meter, end, qty)
    old_qty = _widened(old.qty, width)
    dtype = np.int64 if _sums_fit(old_qty, qty) else object
    position = np.searchsorted(old.meter_index, meter)
    found = position < len(old.meter_index)
    found[found] = old.meter_index[position[found]] == meter[found]
    if found.all():  # mid-period: no new meter
        summed = old_qty.astype(dtype)  # a copy: blocks are never written
        summed[position] += qty.astype(dtype)
        return _Block(old.meter_index, old.period_end, _as_int64(summed))
    joined_meter = np.concatenate([old.meter_index, meter[~found]])
    order = np.argsort(joined_meter, kind="stable")
    summed = np.concatenate([old_qty, qty[~found]]).astype(dtype)
    summed[position[found]] += qty[found].astype(dtype)
    return _Block(joined_meter[order], np.concatenate([old.period_end, end[~found]])[order],
                  _as_int64(summed[order]))


class PeriodTotals:
    """Totals per (meter, period start); `as_quantities` lists them sorted by
    (meter, period start), one row per touched period."""

    def __init__(self, periods: PeriodQuantities | None = None, *,
                 blocks: dict[int, _Block] | None = None, width: int = 1):
        if periods is not None:
            width = periods.qty.shape[1]
            blocks = {}
            for start, rows in _rows_by_start(periods.period_start):
                blocks[start] = _merged(None, periods.meter_index[rows], periods.period_end[rows],
                                        periods.qty[rows], width)
        self._blocks: dict[int, _Block] = blocks or {}
        self.width = width
        self._sorted: PeriodQuantities | None = None

    @classmethod
    def empty(cls, tou_width: int) -> PeriodTotals:
        return cls(blocks={}, width=tou_width)

    def __len__(self) -> int:
        return sum(len(b.meter_index) for b in self._blocks.values())

    @property
    def periods(self) -> PeriodQuantities:
        return self.as_quantities()

    def merge(self, new: PeriodQuantities) -> PeriodTotals:
        """These totals plus one batch's quantities (new periods join, known ones add).

        Returns new totals and never writes into these (callers keep them as
        snapshots)."""
        width = max(self.width, new.qty.shape[1])
        blocks = dict(self._blocks)
        for start, rows in _rows_by_start(new.period_start):
            blocks[start] = _merged(blocks.get(start), new.meter_index[rows], new.period_end[rows],
                                    new.qty[rows], width)
        if width != self.width:
            blocks = {start: _Block(b.meter_index, b.period_end, _widened(b.qty, width))
                      for start, b in blocks.items()}
        return PeriodTotals(blocks=blocks, width=width)

    def select_like(self, periods: PeriodQuantities, account_of_meter: np.ndarray) -> PeriodQuantities:
        """The carried totals of every meter whose account has a period in
        `periods`, for those periods. Whole accounts, because account-level
        lines (area charge, fees) depend on all of an account's meters."""
        parts = []
        for start, rows in _rows_by_start(periods.period_start):
            block = self._blocks.get(start)
            if block is None:
                continue
            wanted = np.unique(account_of_meter[periods.meter_index[rows]])
            hit = np.isin(account_of_meter[block.meter_index], wanted)
            parts.append((start, block, hit))
        return _sorted_quantities([(s, b.meter_index[h], b.period_end[h], b.qty[h]) for s, b, h in parts],
                                  self.width)

    def as_quantities(self) -> PeriodQuantities:
        if self._sorted is None:
            self._sorted = _sorted_quantities(
                [(s, b.meter_index, b.period_end, b.qty) for s, b in self._blocks.items()], self.width)
        return self._sorted


def _rows_by_start(period_start: np.ndarray) -> list[tuple[int, np.ndarray | slice]]:
    """(period start, its rows) for each distinct start; a batch has few."""
    if len(period_start) == 0:
        return []
    first = period_start[0]
    if (period_start == first).all():
        return [(int(first), slice(None))]
    starts = np.unique(period_start)
    return [(int(s), np.flatnonzero(period_start == s)) for s in starts]


def _sorted_quantities(parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
                       width: int) -> PeriodQuantities:
    """Rows of several period starts, sorted by (meter, period start)."""
    if not parts:
        return PeriodQuantities(meter_index=np.empty(0, np.int32), period_start=np.empty(0, np.int32),
                                period_end=np.empty(0, np.int32), qty=np.empty((0, width), np.int64))
    meter = np.concatenate([p[1] for p in parts]).astype(np.int32, copy=False)
    start = np.concatenate([np.full(len(p[1]), p[0], dtype=np.int32) for p in parts])
    end = np.concatenate([p[2] for p in parts]).astype(np.int32, copy=False)
    qty = np.concatenate([p[3] for p in parts]) if parts else np.empty((0, width), np.int64)
    if len(parts) > 1:
        order = np.lexsort((start, meter))
        meter, start, end, qty = meter[order], start[order], end[order], qty[order]
    return PeriodQuantities(meter_index=meter, period_start=start, period_end=end, qty=qty)
