"""Consumption: readings -> quantities per (meter, billing period, TOU period).

Validates and lays out what the Cython kernel (`ext/_consumption.pyx`) needs,
runs it, and turns its buckets back into touched periods. The kernel's
semantics are in docs/semantics.md; `rating.reference.charges` is its slow twin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating._ext._consumption import accumulate, survey
from rating._ext._order import group_by_meter
from rating.consumption.quantities import PeriodQuantities
from rating.consumption.timeline import US_PER_SECOND, Timeline, build_timeline
from rating.consumption.window import first_priced_us
from rating.errors import AmountOverflowError, InputError, TariffError
from rating.model.days import day_number
from rating.model.registry import Registry
from rating.model.site import Cycle, Site
from rating.model.tariff import Tariff

# Index = the kernel's code; 0 is "no anomaly". future_reading and ancient_reading
# are found before the kernel, outside_periods after it (rate() given periods).
ANOMALY_CODES = (
    "", "unknown_meter", "null_value", "out_of_range", "negative_quantity", "duplicate",
    "conflicting_duplicate", "out_of_order", "negative_delta", "rollover", "spike",
    "future_reading", "ancient_reading", "outside_periods",
)
ANOMALY_REASONS = {
    "unknown_meter": "meter is not in the registry",
    "null_value": "reading has no value",
    "out_of_range": "register value outside 0 .. 10^register_digits",
    "negative_quantity": "interval quantity is negative",
    "duplicate": "same meter and timestamp as the previous reading, same value",
    "conflicting_duplicate": "same meter and timestamp as the previous reading, other value",
    "out_of_order": "older than the meter's last accepted reading",
    "negative_delta": "register went backwards and is no rollover",
    "rollover": "register rolled over; priced as consumption",
    "spike": "consumption per hour above the meter's max_rate_per_hour",
    "future_reading": "later than now plus the site's future_tolerance_hours",
    "ancient_reading": "before the first billing period the meter's tariffs price",
    "outside_periods": "outside the periods asked; moves the meter's state, charged only inside them",
}
ROLLOVER_CODE = ANOMALY_CODES.index("rollover")
UNTOUCHED = np.iinfo(np.int64).min  # the kernel's mark of a bucket no reading reached
CHUNK_ROWS = 1 << 20
# From this many meters in a batch their records (64 bytes each) and buckets
# outgrow the caches far enough for grouping the batch by meter to pay for
# its two or three radix passes (bench/: the meters curve).
GROUPED_METERS_MIN = 1 << 21
# A reading the front rejects gets meter index -code: the kernel reports it
# (as unknown or null) and moves nothing; `_run_chunks` restores its code.
UNKNOWN_METER_INDEX = -1
NULL_VALUE_INDEX = -2
FUTURE_READING_INDEX = -ANOMALY_CODES.index("future_reading")
ANCIENT_READING_INDEX = -ANOMALY_CODES.index("ancient_reading")
INT32_MAX = np.iinfo(np.int32).max

# Mirrors MeterState in ext/_types.pxd field for field (64 bytes, aligned).
STATE_DTYPE = np.dtype(
    [
        ("last_ts", "<i8"), ("last_value", "<i8"), ("rollover_qty", "<i8"), ("max_rate", "<i8"),
        ("bucket_base", "<i8"), ("interval_us", "<i8"), ("multiplier", "<i4"), ("cursor", "<i4"),
        ("timeline_end", "<i4"), ("has_last", "u1"), ("is_interval", "u1"),
    ],
    align=True,
)
assert STATE_DTYPE.itemsize == 64


def new_meter_states(registry: Registry, site: Site) -> np.ndarray:
    """One state record per registry meter, with its static settings filled in."""
    columns = registry.columns(site)
    if (columns["multiplier"] > INT32_MAX).any():
        bad = registry.meter_ids[int(np.argmax(columns["multiplier"] > INT32_MAX))].as_py()
        raise InputError(f"multiplier of meter {bad!r} exceeds {INT32_MAX}")
    states = np.zeros(max(len(registry), 1), dtype=STATE_DTYPE)
    n = len(registry)
    states["rollover_qty"][:n] = columns["rollover_qty"]
    states["max_rate"][:n] = columns["max_rate_qty_per_hour"]
    states["multiplier"][:n] = columns["multiplier"]
    states["interval_us"][:n] = columns["interval_minutes"] * 60 * US_PER_SECOND
    states["is_interval"][:n] = columns["is_interval"]
    return states


@dataclass(frozen=True)
class _Place:
    """What a kernel error needs to name its reading and meter."""

    registry: Registry
    where: str  # the readings file or batch
    row_offset: int  # its rows before this batch


@dataclass(frozen=True)
class Anomalies:
    """Rejected (or rollover) readings of one kernel run, in reading order."""

    row: np.ndarray  # int64, position in the rated readings
    code: np.ndarray  # uint8, index into ANOMALY_CODES
    # int64 (n, 2): the consumption the reading implied, in quantity units, as
    # 128-bit two's complement (low word, high word), decimal128's layout: a
    # negative delta between far-apart register values can leave int64.
    delta_words: np.ndarray

    def deltas(self) -> list[int]:
        """The deltas as Python integers."""
        return [(high << 64) | (low & 0xFFFF_FFFF_FFFF_FFFF) for low, high in self.delta_words.tolist()]


class TimelineKeys:
    """Each meter's (billing cycle, tariff) pair: meters sharing it share a
    timeline. Also each meter's (billing cycle, tariff, account's tariff), the
    tariffs that price it (`priced_by`, for the reading window)."""

    def __init__(self, registry: Registry, site: Site, tariffs: dict[str, Tariff]):
        # column-wise: registries grow to 10^7 meters
        anchor_day = registry.account_anchor_days(site)[registry.account_of_meter]
        meter_tariff = registry.meter_tariffs.dictionary_encode()
        account_tariff = registry.account_tariffs.dictionary_encode()
        tariff_code = _codes(meter_tariff)
        own_code = _codes(account_tariff)[registry.account_of_meter]
        self.of_meter, first = _first_seen(anchor_day, tariff_code)
        self.keys = [(Cycle(int(anchor_day[i])), meter_tariff.dictionary[int(tariff_code[i])].as_py())
                     for i in first]
        self.priced_by, first = _first_seen(anchor_day, tariff_code, own_code)
        account_tariffs = account_tariff.dictionary.to_pylist()
        self.priced_keys = [(*self.keys[self.of_meter[i]],
                             None if own_code[i] < 0 else account_tariffs[own_code[i]]) for i in first]
        self.registry = registry
        self.site = site
        self.tariffs = tariffs

    def build(self, key: int, start_us: int, end_us: int) -> Timeline:
        """The key's timeline over [start_us, end_us], from its tariff's first
        priced period at the earliest: the run's range is over every meter,
        and the reading window keeps this key's readings after that point."""
        cycle, tariff_id = self.keys[key]
        tariff = self.tariffs[tariff_id]
        start_us = max(start_us, first_priced_us(cycle, [tariff], self.site))
        return build_timeline(cycle, tariff, self.site, start_us, end_us)


def _codes(encoded: pa.DictionaryArray) -> np.ndarray:
    """int64 dictionary codes, -1 for null."""
    return encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _first_seen(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's key (int32), keys numbered in order of first appearance, and
    each key's first row. Every column is small non-negative-or--1 codes."""
    combined = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        combined = combined * (int(column.max(initial=0)) + 2) + (column.astype(np.int64) + 1)
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # unique's keys by first appearance
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank[inverse.reshape(-1)], first[order]


def _time_range(first_us: int, last_us: int, states: np.ndarray, present: np.ndarray) -> tuple[int, int]:
    """Earliest interval start and latest reading a run can touch."""
    carried = states["has_last"][present] == 1
    if carried.any():
        first_us = min(first_us, int(states["last_ts"][present][carried].min()))
    intervals = states["interval_us"][present][states["is_interval"][present] == 1]
    if len(intervals):
        first_us -= int(intervals.max())
    return first_us, last_us


def rate_consumption(
    meter_index: np.ndarray,
    ts_us: np.ndarray,
    value_qty: np.ndarray,
    states: np.ndarray,
    keys: TimelineKeys,
    *,
    where: str = "readings",
    row_offset: int = 0,
    grouped: bool | None = None,
) -> tuple[PeriodQuantities, Anomalies]:
    """Run the kernel over one batch on top of `states`, which it moves in
    place (only the records of the batch's meters). After an error those
    records may be part-way: callers that must change nothing on error save
    them first (as `rating.engine.Rater` does). Errors name `where` and the
    row, counted from `row_offset`.

    `grouped` reorders the batch by meter first (a stable counting sort), so
    that the kernel walks the meters' records in order rather than at random:
    faster once they outgrow the caches. None chooses by the number of
    meters the batch reads (`grouping_pays`). The results are the same
    either way, anomalies in reading order and errors included.
    """
    present = np.zeros(len(keys.of_meter), dtype=np.uint8)
    first_us, last_us = survey(meter_index, ts_us, present)
    present_meters = np.flatnonzero(present)
    if len(present_meters) == 0:
        return _empty_periods(), _anomalies_only(meter_index)
    start_us, end_us = _time_range(first_us, last_us, states, present_meters)
    place = _Place(keys.registry, where, row_offset)
    try:
        layout = _Layout(keys, present_meters, start_us, end_us, states)
    except TariffError as exc:
        raise _no_version_at(exc, place, meter_index, ts_us) from None
    bucket_qty = np.full(layout.bucket_total, UNTOUCHED, dtype=np.int64)
    if grouped if grouped is not None else grouping_pays(len(present_meters), len(meter_index)):
        anomalies = _run_grouped(meter_index, ts_us, value_qty, states, layout, bucket_qty, place,
                                 present_meters)
    else:
        anomalies = _run_chunks(meter_index, ts_us, value_qty, states, layout, bucket_qty, place)
    return layout.touched_periods(bucket_qty), anomalies


def grouping_pays(meters: int, readings: int) -> bool:
    """Whether to reorder a batch by meter: when the state records and
    buckets of the meters it reads outgrow the caches, and it reads them
    more than once on average (the reordering then pays for itself)."""
    return meters >= GROUPED_METERS_MIN and readings >= 2 * meters


def _run_grouped(meter_index, ts_us, value_qty, states, layout: _Layout, bucket_qty, place: _Place,
                 present_meters: np.ndarray) -> Anomalies:
    """`_run_chunks` on the batch grouped by meter. Each meter still sees its
    readings in arrival order, and bucket sums do not depend on the order,
    so only the anomaly rows need mapping back. An error found in meter order
    may not be the first in reading order: the records are put back and the
    batch rerun in arrival order, which raises the error it would have."""
    grouped_meter, grouped_ts, grouped_value, order = group_by_meter(meter_index, ts_us, value_qty,
                                                                     len(states))
    saved = states[present_meters]
    try:
        found = _run_chunks(grouped_meter, grouped_ts, grouped_value, states, layout, bucket_qty, place)
    except AmountOverflowError:
        states[present_meters] = saved
        bucket_qty[:] = UNTOUCHED
        return _run_chunks(meter_index, ts_us, value_qty, states, layout, bucket_qty, place)
    rows = order[found.row]
    by_row = np.argsort(rows, kind="stable")
    return Anomalies(rows[by_row], found.code[by_row], found.delta_words[by_row])


def _no_version_at(exc: TariffError, place: _Place, meter_index: np.ndarray,
                   ts_us: np.ndarray) -> TariffError:
    """A tariff without a version for some period, named at the earliest
    reading of a meter that uses it (a reading's period may start before
    the reading itself)."""
    tariff_id = exc.details.get("tariff")
    registry = place.registry
    same = pc.equal(registry.meter_tariffs, pa.scalar(tariff_id, pa.string())).fill_null(False)
    uses = np.append(same.to_numpy(zero_copy_only=False), False)
    rows = np.flatnonzero(uses[meter_index])  # unknown meters (-1, -2) land on the False slot
    if tariff_id is None or len(rows) == 0:
        return exc
    position = int(rows[np.argmin(ts_us[rows])])
    meter = int(meter_index[position])
    row = place.row_offset + position + 1
    return TariffError(f"{registry.meter_place(meter)}: {exc.message}",
                       where=f"{place.where} row {row}, column ts", file=place.where, row=row, column="ts",
                       meter=registry.meter_ids[meter].as_py(), tariff=tariff_id)


def _run_chunks(meter_index, ts_us, value_qty, states, layout: _Layout, bucket_qty,
                place: _Place) -> Anomalies:
    """The kernel over slices of CHUNK_ROWS readings, so its anomaly buffers
    stay small whatever the batch size."""
    size = min(len(meter_index), CHUNK_ROWS)
    row, code, delta = np.empty(size, np.int64), np.empty(size, np.uint8), np.empty(2 * size, np.int64)
    found: list[Anomalies] = []
    for start in range(0, len(meter_index), CHUNK_ROWS):
        chunk = slice(start, start + CHUNK_ROWS)
        count, error, error_row = accumulate(
            meter_index[chunk], ts_us[chunk], value_qty[chunk], states, layout.bounds_us,
            layout.slots, bucket_qty, row, code, delta,
        )
        if error:
            meter = int(meter_index[start + error_row])
            what = "its delta times the multiplier" if error == 1 else "the period's consumption"
            at = place.row_offset + start + error_row + 1
            raise AmountOverflowError(
                f"{place.registry.meter_place(meter)}: {what} exceeds the int64 fixed-point range",
                where=f"{place.where} row {at}, column value", file=place.where, row=at, column="value",
                meter=place.registry.meter_ids[meter].as_py())
        if count:
            rows = row[:count]
            rejected = meter_index[chunk][rows]  # < 0: rejected before the kernel, code = -index
            codes = np.where(rejected < 0, -rejected, code[:count]).astype(np.uint8)
            found.append(Anomalies(rows + start, codes, delta[: 2 * count].reshape(count, 2).copy()))
    if not found:
        return Anomalies(np.empty(0, np.int64), np.empty(0, np.uint8), np.empty((0, 2), np.int64))
    return Anomalies(
        row=np.concatenate([a.row for a in found]),
        code=np.concatenate([a.code for a in found]),
        delta_words=np.concatenate([a.delta_words for a in found]),
    )


class _Layout:
    """Timelines of one run and each present meter's block of buckets."""

    def __init__(self, keys: TimelineKeys, present: np.ndarray, start_us: int, end_us: int,
                 states: np.ndarray):
        key_of = keys.of_meter[present]
        self.groups: list[tuple[Timeline, np.ndarray, np.ndarray]] = []
        bounds, slots = [], []
        offset = 0
        bucket_base = np.zeros(len(present), dtype=np.int64)
        block_sizes = np.zeros(len(present), dtype=np.int64)
        for key in np.unique(key_of):
            timeline = keys.build(int(key), start_us, end_us)
            members = key_of == key
            block_sizes[members] = timeline.bucket_count
            meters = present[members]
            states["cursor"][meters] = offset
            states["timeline_end"][meters] = offset + len(timeline.slots)
            bounds.append(timeline.bounds_us)
            # slots and bounds share positions; the extra slot is never read
            slots.append(np.append(timeline.slots, 0))
            self.groups.append((timeline, meters, members))
            offset += len(timeline.bounds_us)
        bucket_base[1:] = np.cumsum(block_sizes)[:-1]
        self.bucket_total = int(block_sizes.sum())
        states["bucket_base"][present] = bucket_base
        self.bucket_base = bucket_base
        self.bounds_us = np.concatenate(bounds)
        self.slots = np.concatenate(slots).astype(np.int32)

    def touched_periods(self, bucket_qty: np.ndarray) -> PeriodQuantities:
        """(meter, period) pairs with any touched bucket; untouched TOU slots count 0."""
        tou_width = max(t.tou_count for t, _, _ in self.groups)
        parts = []
        for timeline, meters, members in self.groups:
            n_periods, tou = len(timeline.period_starts), timeline.tou_count
            bases = self.bucket_base[members]
            cells = bases[:, None] + np.arange(n_periods * tou)
            qty = bucket_qty[cells].reshape(len(meters), n_periods, tou)
            untouched = qty == UNTOUCHED
            rows, periods = np.nonzero(~untouched.all(axis=2))
            qty[untouched] = 0
            padded = np.zeros((len(rows), tou_width), dtype=np.int64)
            padded[:, :tou] = qty[rows, periods]
            starts = np.array([day_number(d) for d in timeline.period_starts], dtype=np.int32)
            ends = np.array([day_number(d) for d in timeline.period_ends], dtype=np.int32)
            parts.append((meters[rows].astype(np.int32), starts[periods], ends[periods], padded))
        return PeriodQuantities(
            meter_index=np.concatenate([p[0] for p in parts]),
            period_start=np.concatenate([p[1] for p in parts]),
            period_end=np.concatenate([p[2] for p in parts]),
            qty=np.concatenate([p[3] for p in parts]),
        )



def _empty_periods() -> PeriodQuantities:
    return PeriodQuantities(
        meter_index=np.empty(0, np.int32), period_start=np.empty(0, np.int32),
        period_end=np.empty(0, np.int32), qty=np.empty((0, 1), np.int64),
    )


def _anomalies_only(meter_index: np.ndarray) -> Anomalies:
    rows = np.flatnonzero(meter_index < 0)
    codes = (-meter_index[rows]).astype(np.uint8)
    return Anomalies(rows.astype(np.int64), codes, np.zeros((len(rows), 2), dtype=np.int64))
