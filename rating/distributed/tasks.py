"""The work of one task, on a worker: rate a bucket, or split a set of groups.

A bucket task runs the engine's Rater over the bucket's files in order (the
kernel, the reading window, the tariffs: rate() batch by batch), writes the
charges of its accounts that no group touches and its anomalies (`row` put
back to the reading's position in the whole input), and hands back the period
totals of the grouped accounts' meters. A group task loads those totals from
every bucket and prices them as rate() does with groups (apportioned_charges).
Both write the changes against the previous charges of their accounts.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from rating.apportion.shapes import shared_lines_schema
from rating.config.loader import Config
from rating.consumption.quantities import PeriodQuantities
from rating.distributed.changes import aligned, changes_schema, charge_changes
from rating.distributed.groups import GroupSet
from rating.distributed.layout import UNKNOWN_BUCKET, bucket_files, task_file
from rating.engine import READING_DTYPE, Rater, RaterImage, RaterState, apportioned_charges
from rating.errors import InputError
from rating.readings.batches import REQUIRED_COLUMNS
from rating.readings.sources import BATCH_ROWS_DEFAULT, iter_source_batches


@dataclass(frozen=True)
class Previous:
    """Where the previous charges are, and the accounts of this task that have some."""

    path: str
    accounts: list[str]


@dataclass(frozen=True)
class TaskOutcome:
    task: str
    rows: dict[str, int]  # table -> lines written
    readings: int
    seconds: float
    # group set index -> the period totals of its accounts' meters rated here
    grouped: dict[int, PeriodQuantities] = field(default_factory=dict)


@dataclass(frozen=True)
class MeterRouting:
    """Per registry meter, what the driver works out once for every task."""

    shard: np.ndarray  # its account's shard
    group_set: np.ndarray  # the group set touching its account, -1: none


_FRESH = threading.local()  # a thread's fresh Rater of the configuration it rates


def fresh_rater(config: Config, unknown_meters: str) -> Rater:
    """A Rater with nothing rated. Building one costs a Python pass over the
    registry; the tasks of one run on a worker share one configuration
    object (sent once), so a thread builds it once and resets it after."""
    cached = getattr(_FRESH, "rater", None)
    if cached is None or cached[0] is not config or cached[1].unknown_meters != unknown_meters:
        rater = Rater(config, unknown_meters=unknown_meters)
        cached = _FRESH.rater = (config, rater, rater.snapshot())
    _, rater, state = cached
    rater.restore(RaterState(state.meter_states, state.totals, 0))  # restore copies the records
    return rater


def rate_bucket(config: Config, dataset: str, bucket: str, out: str, *, now: dt.datetime,
                unknown_meters: str, meters: MeterRouting, previous: Previous | None,
                batch_rows: int = BATCH_ROWS_DEFAULT) -> TaskOutcome:
    """Rate one bucket of the dataset into the results folder `out`."""
    started = time.perf_counter()
    task = f"shard-{bucket}"
    rater = fresh_rater(config, unknown_meters)
    set_of_meter = meters.group_set
    anomalies = []
    files = [str(f) for f in bucket_files(Path(dataset), bucket)]
    for item in iter_source_batches(files, batch_rows=batch_rows) if files else ():
        rows_before = rater.rows_seen
        _, found = rater.ingest(item.batch.select(REQUIRED_COLUMNS), where=item.where,
                                row_offset=item.row_offset, now=now)
        reading_row = item.batch.column("reading_row").to_numpy()
        local = found.column("row").to_numpy() - rows_before
        anomalies.append(found.set_column(0, "row", pa.array(reading_row[local], pa.int64())))
    _check_bucket(rater, config, meters.shard, bucket, dataset)
    totals = rater.totals.as_quantities()
    grouped_rows = set_of_meter[totals.meter_index] >= 0
    charges = rater.price(_rows(totals, ~grouped_rows))
    if config.groups is not None:  # rate() lists every line of such a site in the shared-area schema
        charges = aligned(charges, shared_lines_schema(config.site, config.registry.meter_ids.type), task)
    rows = {"charges": _write(charges, Path(out), "charges", task)}
    if anomalies:
        rows["anomalies"] = _write(pa.concat_tables(anomalies), Path(out), "anomalies", task)
    if previous is not None:
        rows["changes"] = _write_changes(previous, charges, Path(out), task)
    grouped = _rows(totals, grouped_rows)
    sets = set_of_meter[grouped.meter_index]
    by_set = {int(k): _rows(grouped, sets == k) for k in np.unique(sets)}
    return TaskOutcome(task, rows, rater.rows_seen, time.perf_counter() - started, by_set)


def rate_group_set(config: Config, group_set: GroupSet, index: int, buckets: list[TaskOutcome],
                   out: str, *, previous: Previous | None) -> TaskOutcome:
    """Split one set of groups over the totals its accounts have in every bucket."""
    started = time.perf_counter()
    task = f"groups-{index:02d}"
    rater = Rater(group_set.config(config))
    no_meters, no_readings = np.empty(0, dtype=np.int64), np.zeros(0, dtype=READING_DTYPE)
    rater.load([RaterImage(no_meters, no_readings, outcome.grouped[index], 0)
                for outcome in buckets if index in outcome.grouped])
    charges, problems = apportioned_charges(rater)
    rows = {"charges": _write(charges, Path(out), "charges", task),
            "apportionment": _write(problems, Path(out), "apportionment", task)}
    if previous is not None:
        rows["changes"] = _write_changes(previous, charges, Path(out), task)
    return TaskOutcome(task, rows, 0, time.perf_counter() - started)


def _check_bucket(rater: Rater, config: Config, shard_of_meter: np.ndarray, bucket: str,
                  dataset: str) -> None:
    """Every meter rated here belongs here: a registry changed since the
    dataset was partitioned (a meter moved, a new meter) would split an
    account's meters over two tasks."""
    meters = np.flatnonzero(rater.states["has_last"][: len(config.registry)])
    if len(meters) == 0:
        return
    expected = -1 if bucket == UNKNOWN_BUCKET else int(bucket)
    found = shard_of_meter[meters]
    wrong = np.flatnonzero(found != expected)
    if len(wrong):
        meter = config.registry.meters[int(meters[wrong[0]])]
        raise InputError(f"meter {meter.meter_id!r} (account {meter.account_id!r}) is in bucket "
                         f"{bucket}, its account is in shard {int(found[wrong[0]])}: the registry "
                         "changed since the readings were partitioned; partition them again",
                         where=dataset)


def _rows(periods: PeriodQuantities, mask: np.ndarray) -> PeriodQuantities:
    return PeriodQuantities(meter_index=periods.meter_index[mask], period_start=periods.period_start[mask],
                            period_end=periods.period_end[mask], qty=periods.qty[mask])


def _write(table: pa.Table, out: Path, name: str, task: str) -> int:
    path = task_file(out, name, task)
    path.parent.mkdir(exist_ok=True)
    pq.write_table(table, path)
    return table.num_rows


def _write_changes(previous: Previous, charges: pa.Table, out: Path, task: str) -> int:
    if previous.accounts:
        source = pads.dataset(previous.path, format="parquet")
        before = source.to_table(filter=pads.field("account_id").isin(previous.accounts))
        before = aligned(before, charges.schema, previous.path)
    else:
        before = charges.schema.empty_table()
    changes = charge_changes(before, charges)
    return _write(changes.cast(changes_schema(charges.schema)), out, "changes", task)
