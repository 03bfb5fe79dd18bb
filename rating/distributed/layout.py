"""The folders and files of a bucketed readings dataset and of its results.

A readings dataset (`rating partition`):

    DATASET/_partition.json          what was partitioned: shards, sources, rows per bucket
    DATASET/shard=07/part-00000.parquet
    DATASET/shard=unknown/part-00000.parquet   meters the registry lacks

A bucket's files, read in name order, hold its readings in their original
order, with `reading_row`: the reading's position in the whole input, from 0
(the `row` of rate()'s anomalies).

Results (`rating rate --dask`): one file per task and table,

    OUT/_rating.json                 the tasks, the groups' order, the row counts
    OUT/charges/shard-07.parquet     OUT/charges/groups-00.parquet ...
    OUT/anomalies/shard-07.parquet   OUT/apportionment/groups-00.parquet
    OUT/changes/shard-07.parquet     (with a previous charges dataset)

Every folder is written beside its destination and renamed into place at
the end (`staged`): a failed run leaves nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rating.errors import InputError
from rating.prepaid.store.shards import SHARDS

UNKNOWN_BUCKET = "unknown"
PARTITION_FILE = "_partition.json"
RESULTS_FILE = "_rating.json"
LAYOUT_VERSION = 1
RESULT_TABLES = ("charges", "anomalies", "apportionment", "changes")


def bucket_name(shard: int | None) -> str:
    """`07` for shard 7, `unknown` for meters without an account."""
    return UNKNOWN_BUCKET if shard is None else f"{shard:02d}"


def bucket_folder(dataset: Path, bucket: str) -> Path:
    return dataset / f"shard={bucket}"


def bucket_files(dataset: Path, bucket: str) -> list[Path]:
    """A bucket's Parquet files in reading order."""
    return sorted(bucket_folder(dataset, bucket).glob("part-*.parquet"))


@dataclass(frozen=True)
class Partitioned:
    """What `_partition.json` records."""

    shards: int
    readings: int
    sources: list[tuple[str, int]]  # (where, rows) in input order
    buckets: dict[str, int]  # bucket name -> rows


def write_partition_manifest(dataset: Path, manifest: Partitioned) -> None:
    doc = {"version": LAYOUT_VERSION, "shards": manifest.shards, "readings": manifest.readings,
           "sources": [list(s) for s in manifest.sources], "buckets": manifest.buckets}
    (dataset / PARTITION_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def read_partition_manifest(dataset: Path) -> Partitioned:
    path = dataset / PARTITION_FILE
    if not path.is_file():
        raise InputError(f"not a bucketed readings dataset (no {PARTITION_FILE}); "
                         "write one with `rating partition`", where=str(dataset))
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["version"] != LAYOUT_VERSION:
            raise InputError(f"layout version {doc['version']}, this rating reads {LAYOUT_VERSION}",
                             where=str(path))
        manifest = Partitioned(int(doc["shards"]), int(doc["readings"]),
                               [(str(w), int(n)) for w, n in doc["sources"]],
                               {str(b): int(n) for b, n in doc["buckets"].items()})
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"damaged: {exc}", where=str(path)) from None
    if manifest.shards != SHARDS:
        raise InputError(f"partitioned into {manifest.shards} shards; accounts now hash to {SHARDS}: "
                         "partition again", where=str(path))
    return manifest


def source_row(manifest: Partitioned, reading_row: int) -> tuple[str, int]:
    """The source and its row (from 1) of a reading's position in the whole input."""
    for where, rows in manifest.sources:
        if reading_row < rows:
            return where, reading_row + 1
        reading_row -= rows
    raise InputError(f"reading_row {reading_row} is past the partitioned readings", where=PARTITION_FILE)


@contextlib.contextmanager
def staged(destination: Path) -> Iterator[Path]:
    """A fresh folder beside `destination`, renamed to it when the block ends
    well and removed when it does not. `destination` must not exist (or be an
    empty folder): results are never mixed with older ones."""
    if destination.exists() and not (destination.is_dir() and not any(destination.iterdir())):
        raise InputError("already exists: give a new folder", where=str(destination))
    if not destination.parent.is_dir():
        raise InputError("folder does not exist", where=str(destination.parent))
    staging = destination.parent / f".{destination.name}.{uuid.uuid4().hex[:12]}.partial"
    staging.mkdir()
    try:
        yield staging
        if destination.exists():
            destination.rmdir()
        os.replace(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def task_file(out: Path, table: str, task: str) -> Path:
    return out / table / f"{task}.parquet"


def write_results_manifest(out: Path, tasks: list[str], groups: list[str], rows: dict[str, int]) -> None:
    doc = {"version": LAYOUT_VERSION, "tasks": tasks, "groups": groups, "rows": rows}
    (out / RESULTS_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def read_results(out: str | Path) -> dict[str, pa.Table]:
    """The result tables of `rate_dataset` in the order a single-process
    rate() lists them: charges (and changes) by account, each account's lines
    in the order of the task that rated it; anomalies by reading; the
    apportionment problems by group, in the groups file's order."""
    out = Path(out)
    path = out / RESULTS_FILE
    if not path.is_file():
        raise InputError(f"not a results dataset (no {RESULTS_FILE})", where=str(out))
    doc = json.loads(path.read_text(encoding="utf-8"))
    tables = {}
    for name in RESULT_TABLES:
        files = [task_file(out, name, task) for task in doc["tasks"]]
        parts = [pq.read_table(f) for f in files if f.is_file()]
        if parts:
            tables[name] = _in_rate_order(name, pa.concat_tables(parts), doc["groups"])
    return tables


def _in_rate_order(name: str, table: pa.Table, groups: list[str]) -> pa.Table:
    # sort_indices is stable: the order within a task is rate()'s already
    if name == "anomalies":
        return table.sort_by("row")
    if name == "apportionment":
        position = pc.index_in(table.column("group_id"), value_set=pa.array(groups, pa.string()))
        return table.take(pc.sort_indices(position))
    return table.sort_by("account_id")
