"""Readings sources as record batches of a bounded size, each named for errors.

`iter_reading_batches` reads a source (an Arrow table, batch, reader, an
iterable of those, or Parquet / Arrow IPC / CSV files) as record batches of at
most `batch_rows` rows; `iter_source_batches` adds each batch's name and row
offset, so an error can name the file and the row. CSV cells are typed by
rating.readings.csv_text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from rating.errors import InputError
from rating.inputs.tables import ARROW_READ_ERRORS, csv_convert_options, csv_names, open_ipc_stream_file
from rating.readings.csv_text import typed_csv_batch

BATCH_ROWS_DEFAULT = 1_000_000
_READING_SUFFIXES = (".parquet", ".arrow", ".feather", ".ipc", ".arrows", ".csv")

@dataclass(frozen=True)
class SourceBatch:
    """A batch with what errors need to name it."""

    batch: pa.RecordBatch
    where: str  # the file, or "readings" / "readings batch 3" in memory
    row_offset: int  # rows of the same `where` before this batch


def iter_reading_batches(
    source, *, batch_rows: int = BATCH_ROWS_DEFAULT
) -> Iterator[pa.RecordBatch]:
    """Record batches of at most `batch_rows` rows from any readings source.

    `source` is a pa.Table, a pa.RecordBatch, a pa.RecordBatchReader, a path
    (.parquet, .arrow/.feather/.ipc for the IPC file format, .arrows for the
    IPC stream format, .csv), or an iterable of any of those (batches, or
    several files rated one after the other, in order).
    """
    for item in iter_source_batches(source, batch_rows=batch_rows):
        yield item.batch


def iter_source_batches(source, *, batch_rows: int = BATCH_ROWS_DEFAULT) -> Iterator[SourceBatch]:
    """Like `iter_reading_batches`, with each batch's name and row offset."""
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    if isinstance(source, (str, Path)):
        yield from _file_batches(Path(source), batch_rows)
    elif isinstance(source, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        yield from _labelled(_split(_batches_of(source), batch_rows), "readings")
    elif isinstance(source, Iterable):
        for number, item in enumerate(source, start=1):
            if isinstance(item, (str, Path)):
                yield from _file_batches(Path(item), batch_rows)
            elif isinstance(item, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
                name = f"readings batch {number}"
                yield from _labelled(_split(_batches_of(item), batch_rows), name)
            else:
                raise InputError(
                    f"item {number} is a {type(item).__name__}; expected an Arrow table, "
                    "record batch, reader or a file path",
                    where="readings",
                )
    else:
        raise InputError(
            f"cannot read readings from a {type(source).__name__}; expected an Arrow table, "
            "record batch, reader, a file path or an iterable of those",
            where="readings",
        )


def count_readings(source) -> int | None:
    """The number of readings in `source` when it is cheap to know, else None.

    Tables, batches, Parquet and Arrow IPC files know their length; CSV
    files, IPC streams, readers and generators do not.
    """
    if isinstance(source, (pa.Table, pa.RecordBatch)):
        return source.num_rows
    if isinstance(source, (str, Path)):
        path = Path(source)
        suffix = path.suffix.lower()
        try:
            if suffix == ".parquet":
                return pq.ParquetFile(path).metadata.num_rows
            if suffix in (".arrow", ".feather", ".ipc"):
                with pa.memory_map(str(path)) as handle:
                    return ipc.open_file(handle).count_rows()
        except ARROW_READ_ERRORS:
            return None  # reading it will report the problem
        return None
    if isinstance(source, (list, tuple)):
        total = 0
        for item in source:
            count = count_readings(item)
            if count is None:
                return None
            total += count
        return total
    return None


def source_name(source) -> str:
    """How errors name a source: the file, or "readings"."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, (list, tuple)) and len(source) == 1:
        return source_name(source[0])
    return "readings"


def _batches_of(source) -> Iterator[pa.RecordBatch]:
    if isinstance(source, pa.RecordBatch):
        yield source
    elif isinstance(source, pa.Table):
        yield from source.to_batches()
    else:
        yield from source


def _split(batches: Iterable[pa.RecordBatch], batch_rows: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if isinstance(batch, pa.Table):
            yield from _split(batch.to_batches(), batch_rows)
            continue
        if not isinstance(batch, pa.RecordBatch):
            raise InputError(
                f"expected Arrow record batches, got a {type(batch).__name__}", where="readings"
            )
        if batch.num_rows <= batch_rows:
            yield batch
        else:
            for start in range(0, batch.num_rows, batch_rows):
                yield batch.slice(start, batch_rows)


def _labelled(batches: Iterable[pa.RecordBatch], where: str) -> Iterator[SourceBatch]:
    offset = 0
    for batch in batches:
        yield SourceBatch(batch, where, offset)
        offset += batch.num_rows


def _file_batches(path: Path, batch_rows: int) -> Iterator[SourceBatch]:
    suffix = path.suffix.lower()
    where = str(path)
    if suffix not in _READING_SUFFIXES:
        raise InputError(
            f"unknown file type {suffix or '(none)'!r}; use .parquet, .arrow/.feather/.ipc "
            "(Arrow IPC file), .arrows (Arrow IPC stream) or .csv",
            where=where,
        )
    if not path.is_file():
        raise InputError("file not found", where=where)
    offset = 0
    try:
        for batch in _split(_open_file(path, suffix, batch_rows), batch_rows):
            if suffix == ".csv":
                batch = typed_csv_batch(batch, where, offset)
            yield SourceBatch(batch, where, offset)
            offset += batch.num_rows
    except ARROW_READ_ERRORS as exc:
        raise InputError(f"cannot read {suffix[1:]} file: {exc}", where=where) from None


def _open_file(path: Path, suffix: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    if suffix == ".parquet":
        parquet = pq.ParquetFile(path)
        rows = 0
        for batch in parquet.iter_batches(batch_size=batch_rows):
            rows += batch.num_rows
            yield batch
        # a damaged column chunk can end the batches early, silently
        if rows != parquet.metadata.num_rows:
            raise InputError(f"the file says it holds {parquet.metadata.num_rows} rows, but only {rows} "
                             "could be read: it is damaged", where=str(path))
    elif suffix == ".arrows":
        with pa.OSFile(str(path)) as handle:
            yield from open_ipc_stream_file(path, handle)
    elif suffix == ".csv":
        yield from _csv_reader(path, batch_rows)
    else:
        with pa.memory_map(str(path)) as handle:
            reader = ipc.open_file(handle)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)


def _csv_reader(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    # Every column is read as text and typed per batch (`typed_csv_batch`): a
    # column typed from the first block alone would fail on a later "1.5"
    # after "1", and text lets an error name its row.
    names = csv_names(path, where=str(path))
    block_size = min(max(batch_rows * 48, 1 << 16), 1 << 28)  # ~48 bytes a line
    # Placeholders become null in `typed_csv_batch` (a hash lookup per cell), not in
    # the reader, whose per-cell check against the list costs more than decoding.
    convert = csv_convert_options(names)
    convert.strings_can_be_null = False
    yield from pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=block_size),
                              convert_options=convert)
