"""Bucketing readings by their account's shard into a Parquet dataset (rating.distributed.layout).

Batch by batch, in bounded memory: each batch is validated and normalised as
rate() does it (so a bad cell is reported here, naming its file and row),
split by the shard of each meter's account, and appended to that bucket's
open Parquet file. A meter the registry lacks has no account: its readings
go to the `unknown` bucket, where rating reports them as anomalies (or stops,
with --unknown-meters error). Bucketing by account, not by meter, keeps the
meters whose lines belong together (an account's own charges) in one task.

The written columns are canonical: `meter_id` as the registry types it,
`ts` as UTC microseconds, `value` as decimal128 at the site's quantity
decimals (exactly the quantity rate() would have read), and `reading_row`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rating.config.loader import Config
from rating.distributed.layout import (
    Partitioned,
    bucket_folder,
    bucket_name,
    staged,
    write_partition_manifest,
)
from rating.fixedpoint import decimal_array
from rating.prepaid.store.shards import SHARDS, shard_of
from rating.readings.batches import NormalizedReadings, normalize_readings
from rating.readings.sources import BATCH_ROWS_DEFAULT, iter_source_batches

UNKNOWN_CODE = SHARDS  # the bucket code of meters without an account


@dataclass(frozen=True)
class PartitionSummary:
    dataset: Path
    readings: int
    buckets: dict[str, int]  # bucket name -> rows


def account_shards(config: Config) -> np.ndarray:
    """Each registry meter's bucket code: its account's shard."""
    registry = config.registry
    shards = np.array([shard_of(a) for a in registry.account_ids.to_pylist()], dtype=np.int64)
    return shards[registry.account_of_meter]


def partition_readings(readings, *, config: Config, out: str | Path,
                       batch_rows: int = BATCH_ROWS_DEFAULT) -> PartitionSummary:
    """Write `readings` (anything rate() reads) as a bucketed dataset in the new
    folder `out`, all or nothing."""
    out = Path(out)
    meter_bucket = account_shards(config)
    writers = _BucketWriters()
    sources: list[tuple[str, int]] = []
    rows_seen = 0
    with staged(out) as staging:
        writers.folder = staging
        try:
            for item in iter_source_batches(readings, batch_rows=batch_rows):
                normalized = normalize_readings(item.batch, registry=config.registry, site=config.site,
                                                where=item.where, row_offset=item.row_offset)
                if not sources or sources[-1][0] != item.where or item.row_offset == 0:
                    sources.append((item.where, 0))
                sources[-1] = (item.where, sources[-1][1] + item.batch.num_rows)
                table = _canonical(normalized, config, rows_seen)
                writers.write(table, _bucket_codes(normalized.meter_index, meter_bucket))
                rows_seen += item.batch.num_rows
        finally:
            writers.close()
        buckets = {bucket_name(_shard(code)): rows for code, rows in sorted(writers.rows.items())}
        write_partition_manifest(staging, Partitioned(SHARDS, rows_seen, sources, buckets))
    return PartitionSummary(out, rows_seen, buckets)


def _shard(code: int) -> int | None:
    return None if code == UNKNOWN_CODE else code


def _bucket_codes(meter_index: np.ndarray, meter_bucket: np.ndarray) -> np.ndarray:
    known = meter_index >= 0
    codes = np.full(len(meter_index), UNKNOWN_CODE, dtype=np.int64)
    codes[known] = meter_bucket[meter_index[known]]
    return codes


def _canonical(readings: NormalizedReadings, config: Config, rows_seen: int) -> pa.Table:
    meter_id = readings.meter_id
    if pa.types.is_dictionary(meter_id.type):
        meter_id = meter_id.dictionary_decode()
    # an id of another type than the registry's is an unknown meter: kept as text
    wanted = config.registry.meter_ids.type
    meter_id = meter_id.cast(wanted if _castable(meter_id.type, wanted) else pa.string())
    n = len(readings)
    return pa.table({
        "meter_id": meter_id,
        "ts": pa.array(readings.ts_us, pa.timestamp("us", tz="UTC")),
        "value": decimal_array(readings.value_qty, config.site.quantity_decimals, readings.value_null),
        "reading_row": pa.array(np.arange(rows_seen, rows_seen + n, dtype=np.int64)),
    })


def _castable(given: pa.DataType, wanted: pa.DataType) -> bool:
    text = (pa.types.is_string(given) or pa.types.is_large_string(given)
            or pa.types.is_string_view(given))
    return text == pa.types.is_string(wanted)


class _BucketWriters:
    """One open Parquet file per bucket; a batch of another schema (an unknown
    meter's id typed differently) starts the bucket's next file."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.open: dict[int, pq.ParquetWriter] = {}
        self.parts: dict[int, int] = {}
        self.rows: dict[int, int] = {}

    def write(self, table: pa.Table, codes: np.ndarray) -> None:
        order = np.argsort(codes, kind="stable")  # each bucket's rows keep their order
        sorted_codes = codes[order]
        cuts = np.flatnonzero(np.diff(sorted_codes)) + 1
        for rows in np.split(order, cuts):
            if len(rows):
                self._append(int(codes[rows[0]]), table.take(pa.array(rows)))

    def _append(self, code: int, part: pa.Table) -> None:
        writer = self.open.get(code)
        if writer is not None and writer.schema != part.schema:
            writer.close()
            writer = None
        if writer is None:
            assert self.folder is not None
            folder = bucket_folder(self.folder, bucket_name(_shard(code)))
            folder.mkdir(exist_ok=True)
            number = self.parts.get(code, 0)
            self.parts[code] = number + 1
            writer = self.open[code] = pq.ParquetWriter(folder / f"part-{number:05d}.parquet", part.schema)
        writer.write_table(part)
        self.rows[code] = self.rows.get(code, 0) + part.num_rows

    def close(self) -> None:
        for writer in self.open.values():
            writer.close()
        self.open.clear()
