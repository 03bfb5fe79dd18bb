"""Rating a bucketed dataset on a Dask distributed client: the driver's side.

One task per bucket (rating.distributed.tasks.rate_bucket): the data is
bucketed by account already, so nothing is shuffled; each worker reads its
bucket's files from the shared folder. Then one task per connected set of
shared-area groups, which takes the grouped accounts' period totals from
every bucket task (small: a row per grouped meter and period). The
configuration is sent to every worker once. `rate_readings` first
partitions readings that are not a dataset yet (the one step that moves
every reading: on the driver, in bounded memory).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from rating.config.loader import Config
from rating.distributed.groups import GroupSet, group_sets
from rating.distributed.layout import (
    UNKNOWN_BUCKET,
    Partitioned,
    bucket_files,
    bucket_name,
    read_partition_manifest,
    source_row,
    staged,
    write_results_manifest,
)
from rating.distributed.partition import account_shards, partition_readings
from rating.distributed.tasks import MeterRouting, Previous, TaskOutcome, rate_bucket, rate_group_set
from rating.engine import UNKNOWN_METER_POLICIES
from rating.errors import InputError, UnknownMeterError
from rating.prepaid.store.shards import shard_of


@dataclass(frozen=True)
class RunSummary:
    out: Path
    readings: int
    tasks: list[TaskOutcome]  # bucket tasks, then group tasks
    seconds: float

    def lines(self, table: str) -> int:
        return sum(t.rows.get(table, 0) for t in self.tasks)


def rate_readings(readings, *, config: Config, client, out: str | Path, work: str | Path | None = None,
                  **options) -> RunSummary:
    """Partition `readings` (anything rate() reads) into a scratch dataset in
    `work` (default: beside `out`; workers must see it), rate it, remove it."""
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix=".rating-buckets-", dir=work or out.parent) as scratch:
        dataset = Path(scratch) / "readings"
        partition_readings(readings, config=config, out=dataset)
        return rate_dataset(config, dataset, client, out=out, **options)


def rate_dataset(config: Config, dataset: str | Path, client, *, out: str | Path,
                 previous: str | Path | None = None, now: dt.datetime | None = None,
                 unknown_meters: str = "report") -> RunSummary:
    """Rate a bucketed readings dataset (rating.distributed.partition) into the
    new results folder `out` (rating.distributed.layout), as rate() would rate
    the same readings in one process; `read_results(out)` gives its tables.
    With `previous` (a charges Parquet file or folder, e.g. an earlier `out`'s
    charges/) it also writes the changes (rating.distributed.changes)."""
    if unknown_meters not in UNKNOWN_METER_POLICIES:
        raise ValueError(f"unknown_meters must be one of {UNKNOWN_METER_POLICIES}")
    started = time.perf_counter()
    dataset, out = Path(dataset), Path(out)
    manifest = read_partition_manifest(dataset)
    if unknown_meters == "error":
        _refuse_unknown(dataset, manifest)
    now = dt.datetime.now(dt.timezone.utc) if now is None else now
    sets = group_sets(config)
    before = _previous_accounts(previous, config, sets)
    buckets = sorted(set(manifest.buckets) | {b for b in before if not b.startswith("groups-")})
    with staged(out) as staging:
        outcomes = _run(client, config, dataset, buckets, sets, staging, before, previous, now,
                        unknown_meters)
        rows: dict[str, int] = {}
        for outcome in outcomes:
            for name, count in outcome.rows.items():
                rows[name] = rows.get(name, 0) + count
        write_results_manifest(staging, [o.task for o in outcomes],
                               [g.group_id for s in sets for g in s.groups], rows)
    return RunSummary(out, manifest.readings, outcomes, time.perf_counter() - started)


def _run(client, config: Config, dataset: Path, buckets: list[str], sets: list[GroupSet], staging: Path,
         before: dict[str, list[str]], previous: str | Path | None, now: dt.datetime,
         unknown_meters: str) -> list[TaskOutcome]:
    run = uuid.uuid4().hex[:8]  # keys unique per run: a client may rate twice
    config_f = client.scatter(config, broadcast=True, hash=False)
    meters = client.scatter(MeterRouting(account_shards(config), _set_of_meter(config, sets)), broadcast=True,
                            hash=False)

    def prior(name: str) -> Previous | None:
        return None if previous is None else Previous(str(previous), before.get(name, []))

    futures = [client.submit(rate_bucket, config_f, str(dataset), bucket, str(staging), now=now,
                             unknown_meters=unknown_meters, meters=meters,
                             previous=prior(bucket), key=f"rate-bucket-{bucket}-{run}")
               for bucket in buckets]
    futures += [client.submit(rate_group_set, config_f, group_set, i, futures[: len(buckets)],
                              str(staging), previous=prior(f"groups-{i}"), key=f"rate-groups-{i}-{run}")
                for i, group_set in enumerate(sets)]
    try:
        return client.gather(futures)
    except BaseException:
        client.cancel(futures)  # nothing more is written into the staging folder removed next
        raise


def _set_of_meter(config: Config, sets: list[GroupSet]) -> np.ndarray:
    """Each registry meter's group set index, -1 when no group touches its account."""
    of_account = {account: i for i, s in enumerate(sets) for account in s.accounts}
    return np.array([of_account.get(m.account_id, -1) for m in config.registry.meters], dtype=np.int64)


def _previous_accounts(previous: str | Path | None, config: Config,
                       sets: list[GroupSet]) -> dict[str, list[str]]:
    """The accounts of the previous charges, by the task that rates them now:
    a bucket name, or `groups-N`."""
    if previous is None:
        return {}
    path = Path(previous)
    if not path.exists():
        raise InputError("previous charges not found", where=str(path))
    try:
        accounts = pads.dataset(path, format="parquet").to_table(columns=["account_id"])
    except (OSError, ValueError) as exc:  # pyarrow's errors are both
        raise InputError(f"cannot read the previous charges: {exc}", where=str(path)) from None
    of_account = {account: i for i, s in enumerate(sets) for account in s.accounts}
    tasks: dict[str, list[str]] = {}
    for account in accounts.column("account_id").unique().drop_null().to_pylist():
        i = of_account.get(account)
        task = bucket_name(shard_of(account)) if i is None else f"groups-{i}"
        tasks.setdefault(task, []).append(account)
    return tasks


def _refuse_unknown(dataset: Path, manifest: Partitioned) -> None:
    """--unknown-meters error: the first reading of a meter the registry lacks."""
    if not manifest.buckets.get(UNKNOWN_BUCKET):
        return
    first = pq.ParquetFile(bucket_files(dataset, UNKNOWN_BUCKET)[0]).read_row_group(0).slice(0, 1)
    meter, row = first.column("meter_id")[0].as_py(), first.column("reading_row")[0].as_py()
    where, row = source_row(manifest, row)
    raise UnknownMeterError(f"unknown meter {meter!r}", where=f"{where} row {row}", meter=meter, row=row,
                            column="meter_id")
