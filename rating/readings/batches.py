"""Readings in any supported form, turned into the flat arrays the kernel takes.

`normalize_readings` validates one batch (from rating.readings.sources) and
converts it:

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

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rating._ext._fixed import float_to_fixed
from rating.errors import AmountOverflowError, InputError, RatingError, SchemaError
from rating.fixedpoint import decimal_units
from rating.inputs.tables import check_arrow
from rating.model.registry import Registry
from rating.model.site import Site

REQUIRED_COLUMNS = ("meter_id", "ts", "value")
_US_PER = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
_TWO_POW_63 = float(2**63)
_METER_ID_TYPES = "string, large_string, string_view, int64, int32, or a dictionary of those"
_VALUE_TYPES = "float64, int64, decimal128 (float32 and narrower integers are widened)"


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
    text: meter 7 is "7" (rating.model.id_lookup)."""
    positions = registry.meter_lookup.positions(meter_id)
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
    if data.dtype == np.float64:
        # one pass in C; a bad value is named by the numpy pass below
        fixed = np.empty(len(data), dtype=np.int64)
        if float_to_fixed(np.ascontiguousarray(data), float(10**decimals), fixed) < 0:
            return fixed
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
