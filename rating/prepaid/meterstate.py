"""Per-meter rating state as ledger rows: after-images of what a batch moved.

A deduction batch stores, in the same ledger transaction as its entries, the
new state of every meter it moved (last reading time and value) and the new
period totals of every (meter, billing period) it touched. Every so often a
batch stores a whole checkpoint instead. The server's Rater is restored from
the latest checkpoint and the after-images recorded after it, in ledger
order; later images win. Meters are named by id, not registry position, so a
new registry (meters added or removed) restores too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rating.consumption.kernel import new_meter_states
from rating.consumption.period_totals import PeriodTotals
from rating.consumption.quantities import PeriodQuantities, period_keys
from rating.engine import BatchUndo, Rater, RaterState
from rating.prepaid.records import pack_parts, read_table_bytes, table_bytes, unpack_parts
from rating.readings.batches import meter_indexes

_DYNAMIC = ("last_ts", "last_value", "has_last")


@dataclass(frozen=True)
class StateImage:
    """Meter states and period totals of some meters (a batch's, or all)."""

    rows_seen: int
    meters: pa.Table  # meter_id, last_ts, last_value, has_last
    totals: pa.Table  # meter_id, period_start, period_end, q0..q{T-1}

    def to_bytes(self) -> bytes:
        head = json.dumps({"rows_seen": self.rows_seen}).encode()
        return pack_parts(head, table_bytes(self.meters, compression="zstd"),
                          table_bytes(self.totals, compression="zstd"))

    @classmethod
    def from_bytes(cls, data: bytes) -> StateImage:
        head, meters, totals = unpack_parts(data)
        return cls(json.loads(head)["rows_seen"], read_table_bytes(meters), read_table_bytes(totals))


def moved_meters(undo: BatchUndo, states: np.ndarray) -> np.ndarray:
    """The meters of a batch whose reading state it moved (`undo` holds their
    records before it). An accepted reading changes `last_ts` (duplicates and
    older readings are refused) or, for a first reading, `has_last`; the
    scratch fields are ignored."""
    before, after = undo.meter_states, states[undo.meters]
    moved = (before["last_ts"] != after["last_ts"]) | (before["has_last"] != after["has_last"])
    return undo.meters[moved]


def image_of(rater: Rater, meters: np.ndarray, rows: np.ndarray | None) -> StateImage:
    """The state of `meters` and the period totals at `rows` of the Rater's
    totals (all totals when None), as the Rater holds them now."""
    registry = rater.config.registry
    states = rater.states
    ids = registry.meter_ids.take(pa.array(meters, type=pa.int64()))
    meter_table = pa.table({
        "meter_id": ids,
        "last_ts": pa.array(states["last_ts"][meters]),
        "last_value": pa.array(states["last_value"][meters]),
        "has_last": pa.array(states["has_last"][meters]),
    })
    totals = rater.totals.as_quantities()
    if rows is not None:
        totals = take_rows(totals, rows)
    columns = {
        "meter_id": registry.meter_ids.take(pa.array(totals.meter_index.astype(np.int64))),
        "period_start": pa.array(totals.period_start),
        "period_end": pa.array(totals.period_end),
    }
    for k in range(totals.qty.shape[1]):
        columns[f"q{k}"] = pa.array(np.ascontiguousarray(totals.qty[:, k]))
    return StateImage(rater.rows_seen, meter_table, pa.table(columns))


def take_rows(periods: PeriodQuantities, rows: np.ndarray) -> PeriodQuantities:
    return PeriodQuantities(meter_index=periods.meter_index[rows], period_start=periods.period_start[rows],
                            period_end=periods.period_end[rows], qty=periods.qty[rows])


def checkpoint_of(rater: Rater) -> StateImage:
    """Every meter with a reading, and every total."""
    return image_of(rater, np.flatnonzero(rater.states["has_last"][: len(rater.config.registry)]), None)


def restore(rater: Rater, images: list[StateImage]) -> None:
    """Set `rater` to the fold of `images` (oldest first) over fresh state."""
    config = rater.config
    registry = config.registry
    states = new_meter_states(registry, config.site)
    width = rater.tou_width
    keys, starts, ends, qty, index = [], [], [], [], []
    rows_seen = 0
    for image in images:
        rows_seen = image.rows_seen
        if image.meters.num_rows:
            idx = meter_indexes(image.meters.column("meter_id").combine_chunks(), registry)
            known = idx >= 0
            for name in _DYNAMIC:
                values = image.meters.column(name).to_numpy()
                states[name][idx[known]] = values[known]
        totals = image.totals
        if totals.num_rows:
            idx = meter_indexes(totals.column("meter_id").combine_chunks(), registry)
            known = idx >= 0
            start = totals.column("period_start").to_numpy()[known]
            index.append(idx[known])
            starts.append(start)
            ends.append(totals.column("period_end").to_numpy()[known])
            q = np.zeros((int(known.sum()), width), dtype=np.int64)
            for k in range(min(width, totals.num_columns - 3)):
                q[:, k] = totals.column(f"q{k}").to_numpy()[known]
            qty.append(q)
            keys.append(period_keys(idx[known], start))
    if keys:
        all_keys = np.concatenate(keys)
        # the last image of each key wins: unique over the reversed order keeps first = latest
        reversed_keys = all_keys[::-1]
        _, first = np.unique(reversed_keys, return_index=True)
        pick = len(all_keys) - 1 - first  # sorted by key, as PeriodTotals keeps them
        totals_q = PeriodQuantities(
            meter_index=np.concatenate(index)[pick].astype(np.int32),
            period_start=np.concatenate(starts)[pick].astype(np.int32),
            period_end=np.concatenate(ends)[pick].astype(np.int32),
            qty=np.concatenate(qty)[pick],
        )
        totals = PeriodTotals(totals_q)
    else:
        totals = PeriodTotals.empty(width)
    rater.restore(RaterState(states, totals, rows_seen))
