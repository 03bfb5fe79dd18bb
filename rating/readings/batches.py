"""Readings in any supported form, turned into the flat arrays the kernel takes.

`iter_reading_batches` reads a source (an Arrow table, batch, reader, an
iterable of those, or Parquet / Arrow IPC / CSV files) as record batches of a
bounded size. `normalize_readings` validates one batch and converts it:

- `meter_id` (string, large_string, string_view, int64, int32, or a
  dictionary of those) becomes the registry index of each meter (-1: unknown);
- `ts` (Arrow timestamp, any unit; naive means UTC) becomes int64
  microseconds since the epoch. Nanoseconds are floor-divided: anything
  below a microsecond is dropped (the engine works at µs resolution);
- `value` (float64, int64 or decimal128; float32 and narrower integers are
  widened) becomes int64 quantity units of 10^-quantity_decimals, by the
  `to_fixed` rule of docs/semantics.md. A null value is not an error: the
  kernel reports it as a `null_value` anomaly.

Malformed input raises `InputError` naming the file or batch, the row
(counting from 1) and the column; arithmetic overflow raises
`AmountOverflowError`. Nothing is copied that need not be: numeric columns
without nulls are read straight from their Arrow buffers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from rating.errors import AmountOverflowError, InputError, RatingError, SchemaError
from rating.fixedpoint import decimal_units
from rating.inputs import cells
from rating.inputs.tables import (
    ARROW_READ_ERRORS,
    check_arrow,
    csv_as_text,
    csv_convert_options,
    csv_names,
    open_ipc_stream_file,
)
from rating.model.registry import Registry
from rating.model.site import Site
from rating.readings.meter_lookup import lookup_for

REQUIRED_COLUMNS = ("meter_id", "ts", "value")
BATCH_ROWS_DEFAULT = 1_000_000
_US_PER = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
_TWO_POW_63 = float(2**63)
_METER_ID_TYPES = "string, large_string, string_view, int64, int32, or a dictionary of those"
_VALUE_TYPES = "float64, int64, decimal128 (float32 and narrower integers are widened)"
# A zone designator after a time of day: "...12:00Z", "...12:00:00.5+05:30", "...12:00-0400".
_ZONE_SUFFIX = re.compile(r"\d\d:\d\d(:\d\d(\.\d*)?)?\s*(Z|[+-]\d\d(:?\d\d)?)\s*$")
_LONG_YEAR = re.compile(r"^\s*[+-]?\d{5,}-\d\d-\d\d")  # ISO 8601 expanded years: 10000-01-01
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError)
# The span of timestamp[ns], which CSV timestamps are parsed into.
CSV_TS_MIN, CSV_TS_MAX = "1677-09-21T00:12:43.145224192Z", "2262-04-11T23:47:16.854775807Z"
_CSV_NULLS = pa.array(pacsv.ConvertOptions().null_values, pa.binary())
_READING_SUFFIXES = (".parquet", ".arrow", ".feather", ".ipc", ".arrows", ".csv")


@dataclass(frozen=True)
class NormalizedReadings:
    """One batch of readings as the consumption kernel takes them."""

    meter_id: pa.Array  # as given (one chunk), for anomaly rows
    meter_index: np.ndarray  # int32 registry index, -1 where the meter is unknown
    ts_us: np.ndarray  # int64 microseconds since the epoch, UTC
    value_qty: np.ndarray  # int64 quantity units (10^-site.quantity_decimals); 0 where null
    value_null: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.ts_us)


# --------------------------------------------------------------------------- normalising


def normalize_readings(
    batch: pa.RecordBatch | pa.Table,
    *,
    registry: Registry,
    site: Site,
    where: str = "readings",
    row_offset: int = 0,
) -> NormalizedReadings:
    """Validate one batch of readings and convert it to kernel arrays.

    `where` names the batch in errors (a file name, "readings batch 3");
    `row_offset` is the number of rows of the same `where` before this
    batch, so that error rows count from 1 in the whole file.
    """
    check_arrow(batch, where=f"{where} rows {row_offset + 1}-{row_offset + batch.num_rows}")
    columns = {name: column_of(batch, name, where) for name in REQUIRED_COLUMNS}
    meter_id = columns["meter_id"]
    _check_meter_id_type(meter_id, where)
    _check_no_nulls(meter_id, "meter_id", where, row_offset)
    ts_us = timestamps_us(columns["ts"], where=where, row_offset=row_offset)
    value_qty, value_null = to_fixed(
        columns["value"], site.quantity_decimals, where=where, row_offset=row_offset
    )
    return NormalizedReadings(
        meter_id=meter_id,
        meter_index=meter_indexes(meter_id, registry),
        ts_us=ts_us,
        value_qty=value_qty,
        value_null=value_null,
    )


def column_of(batch: pa.RecordBatch | pa.Table, name: str, where: str) -> pa.Array:
    """Column `name` as one array; an error names `where` when it is missing or repeated."""
    names = batch.schema.names
    if name not in names:
        raise SchemaError(
            f"missing column {name!r} (found: {', '.join(names) or 'no columns'})", where=where, column=name
        )
    if names.count(name) > 1:
        raise SchemaError(f"column {name!r} appears {names.count(name)} times; keep one", where=where,
                          file=where, column=name)
    column = batch.column(names.index(name))
    if isinstance(column, pa.ChunkedArray):
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def _cell_error(kind: type[RatingError], message: str, where: str, row_offset: int, position: int,
                column: str) -> RatingError:
    """An error naming the row (from 1, within the batch as sent) and column, in words and as details."""
    row = row_offset + position + 1
    return kind(message, where=f"{where} row {row}, column {column}", row=row, column=column)


def _first_true(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _null_mask(array: pa.Array) -> np.ndarray | None:
    """Bool mask of nulls, or None when there are none."""
    if array.null_count == 0:
        return None
    return array.is_null().to_numpy(zero_copy_only=False)


def _check_no_nulls(array: pa.Array, name: str, where: str, row_offset: int) -> None:
    mask = _null_mask(array)
    if mask is None and pa.types.is_dictionary(array.type) and array.dictionary.null_count:
        # A valid index may still point at a null dictionary entry.
        mask = array.dictionary.is_null().to_numpy(zero_copy_only=False)[_codes(array)]
    if mask is not None and mask.any():
        raise _cell_error(InputError, f"{name} is null", where, row_offset, _first_true(mask), name)


def _buffer_view(array: pa.Array, dtype) -> np.ndarray:
    """The values buffer of a primitive array as numpy, without copying.

    Slots under nulls hold unspecified values; callers mask them.
    """
    n = len(array)
    if n == 0:
        return np.empty(0, dtype=dtype)
    view = np.frombuffer(array.buffers()[1], dtype=dtype, count=array.offset + n)[array.offset :]
    view.flags.writeable = False  # the caller's data: never written through
    return view


def _codes(array: pa.DictionaryArray) -> np.ndarray:
    indices = array.indices
    return _buffer_view(indices, indices.type.to_pandas_dtype())


def _check_meter_id_type(array: pa.Array, where: str) -> None:
    value_type = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
    if not (_is_text(value_type) or value_type in (pa.int64(), pa.int32())):
        raise SchemaError(
            f"meter_id has type {array.type}; accepted: {_METER_ID_TYPES}",
            where=f"{where} column meter_id", column="meter_id",
        )


def _is_text(dtype: pa.DataType) -> bool:
    types = pa.types
    return types.is_string(dtype) or types.is_large_string(dtype) or types.is_string_view(dtype)


# --------------------------------------------------------------------------- meter ids


def meter_indexes(meter_id: pa.Array, registry: Registry) -> np.ndarray:
    """Registry index (int32) of each meter id, -1 where the registry lacks it
    (or the id is null). Ids of another kind than the registry's compare as
    text: meter 7 is "7" (rating.readings.meter_lookup)."""
    positions = lookup_for(registry).positions(meter_id)
    if meter_id.null_count:
        positions = np.where(meter_id.is_null().to_numpy(zero_copy_only=False), -1, positions)
    return positions.astype(np.int32, copy=False)


# --------------------------------------------------------------------------- timestamps


def timestamps_us(ts: pa.Array, *, where: str = "readings", row_offset: int = 0) -> np.ndarray:
    """int64 microseconds since the epoch (UTC) of an Arrow timestamp column.

    Arrow stores timestamps as UTC instants whatever the zone, so a zone only
    labels the column. `us` is a view of the buffer; `ns` is floor-divided
    (sub-microsecond parts are dropped); `s` and `ms` are multiplied, a
    result outside int64 saturating at its ends (a `future_reading` or
    `ancient_reading` then, like every instant outside the reading window).
    """
    if not pa.types.is_timestamp(ts.type):
        raise SchemaError(
            f"ts has type {ts.type}; accepted: timestamp (s, ms, us or ns; any time zone or none)",
            where=f"{where} column ts", column="ts",
        )
    _check_no_nulls(ts, "ts", where, row_offset)
    raw = _buffer_view(ts, np.int64)
    unit = ts.type.unit
    if unit == "us":
        return raw
    if unit == "ns":
        return np.floor_divide(raw, 1000)
    factor = _US_PER[unit]
    limit = _INT64_MAX // factor
    if len(raw) and (raw.max() > limit or raw.min() < -limit):
        # ~292,000 years from 1970: far outside the reading window, which reports them
        raw = np.clip(raw, -limit, limit)
    return raw * factor


# --------------------------------------------------------------------------- values


def to_fixed(
    value: pa.Array, quantity_decimals: int, *, where: str = "readings", row_offset: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Reading values as int64 counts of 10^-quantity_decimals, and the null mask.

    - float64: `rint(value × 10^d)` in double precision, ties to even; every
      decimal with at most d decimals below 2^50 / 10^d comes back exactly;
      NaN and ±inf are errors;
    - int64: exactly `value × 10^d`; overflow is an error;
    - decimal128(p, s): exact for s ≤ d, finer scales rounded half-to-even.
    Null values give 0 with the mask set.
    """
    dtype = value.type
    if pa.types.is_dictionary(dtype) or not (
        pa.types.is_floating(dtype) or pa.types.is_integer(dtype) or pa.types.is_decimal128(dtype)
    ) or dtype in (pa.float16(), pa.uint64()):
        raise SchemaError(
            f"value has type {dtype}; accepted: {_VALUE_TYPES}", where=f"{where} column value", column="value"
        )
    mask = _null_mask(value)
    nulls = np.zeros(len(value), dtype=bool) if mask is None else mask
    if pa.types.is_decimal128(dtype):
        return _decimal_to_fixed(value, quantity_decimals, where, row_offset), nulls
    if pa.types.is_floating(dtype):
        data = _buffer_view(value, np.float64 if dtype == pa.float64() else np.float32)
        return _float_to_fixed(data, mask, quantity_decimals, where, row_offset), nulls
    data = _buffer_view(value, dtype.to_pandas_dtype())
    return _int_to_fixed(data, mask, quantity_decimals, where, row_offset), nulls


def _float_to_fixed(
    data: np.ndarray, mask: np.ndarray | None, decimals: int, where: str, row_offset: int
) -> np.ndarray:
    if mask is not None:
        data = np.where(mask, 0.0, data)
    scaled = np.multiply(data, float(10**decimals), dtype=np.float64)
    np.rint(scaled, out=scaled)  # round half to even
    if len(scaled):
        low, high = scaled.min(), scaled.max()  # NaN makes both comparisons false
        if not (low >= -_TWO_POW_63 and high < _TWO_POW_63):
            bad = ~np.isfinite(data)
            if bad.any():
                position = _first_true(bad)
                message = f"value is {data[position]!r}; a reading must be finite (or null)"
                raise _cell_error(InputError, message, where, row_offset, position, "value")
            position = _first_true((scaled < -_TWO_POW_63) | (scaled >= _TWO_POW_63))
            message = f"value {data[position]!r} exceeds the int64 quantity range"
            raise _cell_error(AmountOverflowError, message, where, row_offset, position, "value")
    return scaled.astype(np.int64)


def _int_to_fixed(
    data: np.ndarray, mask: np.ndarray | None, decimals: int, where: str, row_offset: int
) -> np.ndarray:
    data = data.astype(np.int64, copy=False)
    if mask is not None:
        data = np.where(mask, 0, data)
    if decimals == 0:
        return data
    factor = 10**decimals
    limit = _INT64_MAX // factor
    if len(data) and (data.max() > limit or data.min() < -limit):
        position = _first_true((data > limit) | (data < -limit))
        message = f"value {int(data[position])} exceeds the int64 quantity range"
        raise _cell_error(AmountOverflowError, message, where, row_offset, position, "value")
    return data * factor


def _decimal_to_fixed(value: pa.Array, decimals: int, where: str, row_offset: int) -> np.ndarray:
    # Range check first, on the 128-bit words, so that an overflow names its row.
    n = len(value)
    if n:
        words = np.frombuffer(value.buffers()[1], dtype=np.int64, count=2 * (value.offset + n))
        words = words.reshape(-1, 2)[value.offset :]
        low, high = words[:, 0], words[:, 1]
        limit = _INT64_MAX // 10 ** max(decimals - value.type.scale, 0)
        bad = (high != (low >> 63)) | (low > limit) | (low < -limit)
        if value.null_count:
            bad &= value.is_valid().to_numpy(zero_copy_only=False)
        if bad.any():
            position = _first_true(bad)
            raise _cell_error(AmountOverflowError,
                              f"value {value[position].as_py()} exceeds the int64 quantity range",
                              where, row_offset, position, "value")
    units, _ = decimal_units(value, decimals, "half_even")
    return units


# --------------------------------------------------------------------------- sources


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
                batch = _csv_types(batch, where, offset)
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
    # Every column is read as text and typed per batch (`_csv_types`): a
    # column typed from the first block alone would fail on a later "1.5"
    # after "1", and text lets an error name its row.
    names = csv_names(path, where=str(path))
    block_size = min(max(batch_rows * 48, 1 << 16), 1 << 28)  # ~48 bytes a line
    # Placeholders become null in `_csv_types` (a hash lookup per cell), not in
    # the reader, whose per-cell check against the list costs more than decoding.
    convert = csv_convert_options(names)
    convert.strings_can_be_null = False
    yield from pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=block_size),
                              convert_options=convert)


def _csv_types(batch: pa.RecordBatch, where: str, row_offset: int) -> pa.RecordBatch:
    """Type a CSV batch read as text: ts as timestamp, value as int64 or float64."""
    batch = pa.RecordBatch.from_arrays([_placeholders_null(c) for c in batch.columns],
                                       names=batch.schema.names)
    batch = csv_as_text(batch, where=where, row_offset=row_offset)
    names = batch.schema.names
    arrays = list(batch.columns)
    if "ts" in names:
        i = names.index("ts")
        arrays[i] = parse_timestamps(arrays[i], where=where, row_offset=row_offset)
    if "value" in names:
        i = names.index("value")
        arrays[i] = _parse_values(arrays[i], where=where, row_offset=row_offset)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _placeholders_null(cells: pa.Array) -> pa.Array:
    """Blank cells and pyarrow's default placeholders (`#N/A`, `NA`, ...) as null,
    as `csv_convert_options` reads them."""
    placeholder = pc.is_in(cells, value_set=_CSV_NULLS)
    if not pc.any(placeholder).as_py():
        return cells
    return pc.if_else(placeholder, pa.scalar(None, cells.type), cells)


def parse_timestamps(text: pa.Array, *, where: str = "readings", row_offset: int = 0) -> pa.Array:
    """ISO 8601 text as timestamp[ns, UTC]. Text without a zone offset is UTC;
    `Z` and `+05:30` style offsets are honoured; a file may mix both. A time
    outside what nanoseconds hold (1677-09-21 to 2262-04-11) is out of range."""
    try:
        return _iso_timestamps(text)
    except _ARROW_ERRORS:
        pass
    position = cells.first_refused(text, _iso_timestamps)
    item = text[position].as_py()
    if _is_iso_out_of_ns_range(item):
        message = (f"timestamp {item!r} is out of range: CSV timestamps must lie between "
                   f"{CSV_TS_MIN} and {CSV_TS_MAX}")
    else:
        message = f"not an ISO 8601 timestamp: {item!r}"
    raise cells.error_at(message, where, row_offset + position, "ts")


def _iso_timestamps(text: pa.Array) -> pa.Array:
    """`parse_timestamps` without the error message: raises ArrowInvalid."""
    utc = pa.timestamp("ns", tz="UTC")
    casts = [lambda: text.cast(pa.timestamp("ns")).cast(utc), lambda: text.cast(utc)]
    if _ZONE_SUFFIX.search(_first_text(text)):
        casts.reverse()  # a cast that fails costs seconds a batch: try the likely one first
    for cast in casts:
        try:
            return cast()
        except _ARROW_ERRORS:
            pass
    with_zone = pc.fill_null(pc.match_substring_regex(text, _ZONE_SUFFIX.pattern), False)
    naive = pc.if_else(with_zone, None, text).cast(pa.timestamp("ns")).cast(utc)
    zoned = pc.if_else(with_zone, text, None).cast(utc)
    return pc.if_else(with_zone, zoned, naive)


def _first_text(text: pa.Array) -> str:
    """The first non-null cell ("" when none)."""
    valid = text.drop_null()
    return valid[0].as_py() if len(valid) else ""


def _is_iso_out_of_ns_range(item: str) -> bool:
    """Whether `item` is an ISO 8601 time that only its range keeps out:
    microseconds hold it, or its year has more than four digits."""
    unit = pa.timestamp("us", tz="UTC") if _ZONE_SUFFIX.search(item) else pa.timestamp("us")
    try:
        pa.array([item]).cast(unit)
        return True
    except _ARROW_ERRORS:
        return _LONG_YEAR.match(item) is not None


def _parse_values(text: pa.Array, *, where: str, row_offset: int) -> pa.Array:
    """Integers stay exact as int64; anything else is read as float64."""
    try:
        if not _first_text(text).strip().lstrip("+-").isdigit():
            # no integer column (a failed cast costs seconds a batch)
            raise pa.ArrowInvalid("not an integer")
        values = text.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    else:
        # Arrow's integer parser also reads hexadecimal ("0x10" as 16,
        # "0xffffffffffffffff" as -1); a reading is decimal text.
        hexadecimal = pc.or_(pc.match_substring(text, "x"), pc.match_substring(text, "X"))
        cells.refuse(hexadecimal, text, where, "value", lambda item: f"not a number: {item!r}",
                     row_offset=row_offset)
        return values
    try:
        return text.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    position = cells.first_refused(text, lambda part: part.cast(pa.float64()))
    raise cells.error_at(f"not a number: {text[position].as_py()!r}", where, row_offset + position, "value")
