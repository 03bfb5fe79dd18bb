"""Per-meter rating state as ledger rows: after-images of what a batch moved.

A deduction batch stores, in the same ledger transaction as its entries, the
new state of every meter it moved (last reading time and value) and the new
period totals of every (meter, billing period) it touched. Every so often a
batch stores a whole checkpoint instead. The server's Rater is restored from
the latest checkpoint and the after-images recorded after it, in ledger
order; later images win. The Rater makes and folds the images (Rater.image_of,
Rater.load); this module stores them with meters named by id, not registry
position, so a new registry (meters added or removed) restores too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rating.consumption.quantities import PeriodQuantities
from rating.engine import READING_DTYPE, READING_FIELDS, Rater, RaterImage
from rating.prepaid.records import pack_parts, read_table_bytes, table_bytes, unpack_parts
from rating.readings.batches import meter_indexes


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


def image_table(rater: Rater, image: RaterImage) -> StateImage:
    """`image` with meters named by id."""
    meter_ids = rater.config.registry.meter_ids
    meter_table = pa.table({"meter_id": meter_ids.take(pa.array(image.meters)),
                            **{name: pa.array(image.readings[name]) for name in READING_FIELDS}})
    totals = image.totals
    columns = {
        "meter_id": meter_ids.take(pa.array(totals.meter_index.astype(np.int64))),
        "period_start": pa.array(totals.period_start),
        "period_end": pa.array(totals.period_end),
    }
    for k in range(totals.qty.shape[1]):
        columns[f"q{k}"] = pa.array(np.ascontiguousarray(totals.qty[:, k]))
    return StateImage(image.rows_seen, meter_table, pa.table(columns))


def rater_image(rater: Rater, table: StateImage) -> RaterImage:
    """`table` by registry position; meters the registry no longer has are left out."""
    registry = rater.config.registry
    meters, totals = table.meters, table.totals
    index = meter_indexes(meters.column("meter_id").combine_chunks(), registry)
    known = index >= 0
    readings = np.zeros(int(known.sum()), dtype=READING_DTYPE)
    for name in READING_FIELDS:
        readings[name] = meters.column(name).to_numpy()[known]
    total_index = meter_indexes(totals.column("meter_id").combine_chunks(), registry)
    kept = total_index >= 0
    width = totals.num_columns - 3
    qty = np.zeros((int(kept.sum()), width), dtype=np.int64)
    for k in range(width):
        qty[:, k] = totals.column(f"q{k}").to_numpy()[kept]
    periods = PeriodQuantities(meter_index=total_index[kept].astype(np.int32),
                               period_start=totals.column("period_start").to_numpy()[kept],
                               period_end=totals.column("period_end").to_numpy()[kept], qty=qty)
    return RaterImage(index[known].astype(np.int64), readings, periods, table.rows_seen)
