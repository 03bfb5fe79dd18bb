"""Columns of input tables, typed and checked a whole column at a time.

Tables arrive as text (CSV, every column read as a string: rating.inputs.tables)
or as typed Arrow (Parquet, Arrow IPC, LoadConfig). Each function here
turns one column into the type its reader keeps with pyarrow compute over
the whole column (registries grow to 10^7 meters: no Python object per row)
and raises `InputError` naming the file, the row (data rows from 1) and the
column of the first bad cell.

A blank cell, or a placeholder spreadsheets write for a missing value
(`#N/A`, `NA`, `NULL`, `NaN`, ...: the CSV reader's null values, PLACEHOLDERS),
is null in every source, never 0; the caller says what null means in its column.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from rating.errors import InputError, SchemaError

# Plain decimal notation with an optional exponent, where Decimal and Arrow
# agree. Not hex (Arrow's integer parser reads "0x10" as 16), inf or nan.
NUMBER_TEXT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
PLACEHOLDERS = tuple(pacsv.ConvertOptions().null_values)
_BLANKS = pa.array(["", *PLACEHOLDERS], pa.string())
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
_EDGE_BYTES = np.zeros(256, dtype=bool)  # bytes a trimmed cell may lose: ASCII space or control, not ASCII
_EDGE_BYTES[:0x21] = _EDGE_BYTES[0x80:] = True


def error_at(message: str, where: str, position: int, column: str) -> InputError:
    """An error about one cell: `where` is the file, `position` the row from 0."""
    row = position + 1
    return InputError(message, where=f"{where} row {row}, column {column}", file=where, row=row,
                      column=column)


def column(table: pa.Table, name: str, *, where: str) -> pa.Array | None:
    """One column as a single array; None when the table lacks it."""
    count = table.column_names.count(name)
    if count == 0:
        return None
    if count > 1:
        raise SchemaError(f"column {name!r} appears {count} times; keep one", where=where, file=where,
                          column=name)
    array = table.column(name)
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def text(table: pa.Table, name: str, *, where: str) -> pa.Array | None:
    """The column as strings, null where blank or a placeholder; typed
    columns (Parquet numbers, booleans) as their text, a float NaN (pandas'
    missing value) null."""
    array = column(table, name, where=where)
    if array is None:
        return None
    if pa.types.is_floating(array.type):
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
    try:
        array = array.cast(pa.string())
    except _ARROW_ERRORS:
        raise SchemaError(f"has type {array.type}; expected text or numbers", where=f"{where} column {name}",
                          file=where, column=name) from None
    blank = _blanks(array)
    return array if blank is None else pc.if_else(pa.array(blank), pa.scalar(None, pa.string()), array)


def _blanks(array: pa.Array) -> np.ndarray | None:
    """Which strings are blank or a placeholder once trimmed; None: none is.
    Only the strings that begin or end with a byte that may be (part of)
    whitespace are trimmed: at 10^7 rows, trimming them all costs more than
    the rest of the check."""
    blank = pc.is_in(array, value_set=_BLANKS).to_numpy(zero_copy_only=False)
    _, offsets, data = array.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32, count=array.offset + len(array) + 1)[array.offset:]
    text = np.frombuffer(data, dtype=np.uint8) if data is not None and data.size else np.zeros(1, np.uint8)
    last = len(text) - 1
    first_byte = text[np.minimum(ends[:-1], last)]  # an empty string reads a neighbour: masked below
    last_byte = text[np.clip(ends[1:] - 1, 0, last)]
    suspect = _EDGE_BYTES[first_byte] | _EDGE_BYTES[last_byte]
    suspect &= ends[1:] > ends[:-1]
    padded = np.flatnonzero(suspect)
    if len(padded):
        trimmed = pc.utf8_trim_whitespace(array.take(pa.array(padded)))
        blank[padded] |= pc.is_in(trimmed, value_set=_BLANKS).to_numpy(zero_copy_only=False)
    return blank if blank.any() else None


def numbers(table: pa.Table, name: str, *, where: str, decimals: int, minimum: Decimal,
            maximum: Decimal) -> pa.Array | None:
    """The column as decimal128(38, decimals), each value in [minimum,
    maximum] with at most `decimals` decimals; null where blank."""
    array = text(table, name, where=where)
    if array is None:
        return None
    array = pc.utf8_trim_whitespace(array)
    refuse(pc.invert(pc.match_substring_regex(array, NUMBER_TEXT)), array, where, name,
           lambda value: f"not a number: {value!r}")
    out_of_range = f"out of range: {name} must be {minimum}..{maximum}"
    # First in float64 (well-formed text always converts; 1e400 is inf), so that a
    # value too large for decimal128 is named as out of range, not as inexact.
    approx = array.cast(pa.float64())
    refuse(pc.or_(pc.less(approx, float(minimum)), pc.greater(approx, float(maximum))), array, where, name,
           lambda value: f"{value} is {out_of_range}")
    exact_type = pa.decimal128(38, decimals)
    try:
        exact = array.cast(exact_type)
    except _ARROW_ERRORS:
        position = first_refused(array, lambda part: part.cast(exact_type))
        value = array[position].as_py()
        message = f"{value} is not a whole number" if decimals == 0 else (
            f"{value} has more than {decimals} decimals")
        raise error_at(message, where, position, name) from None
    low, high = pa.scalar(minimum, exact_type), pa.scalar(maximum, exact_type)
    refuse(pc.or_(pc.less(exact, low), pc.greater(exact, high)), array, where, name,
           lambda value: f"{value} is {out_of_range}")
    return exact


def whole_numbers(table: pa.Table, name: str, *, where: str, minimum: int, maximum: int) -> pa.Array | None:
    """The column as int64 in [minimum, maximum]; null where blank."""
    typed = column(table, name, where=where)
    if typed is not None and pa.types.is_integer(typed.type):  # Parquet, Arrow: no text to parse
        out_of_range = f"is out of range: {name} must be {minimum}..{maximum}"
        try:
            whole = typed.cast(pa.int64())
        except _ARROW_ERRORS:  # a uint64 beyond int64
            position = first_refused(typed, lambda part: part.cast(pa.int64()))
            raise error_at(f"{typed[position].as_py()} {out_of_range}", where, position, name) from None
        refuse(pc.or_(pc.less(whole, minimum), pc.greater(whole, maximum)), whole, where, name,
               lambda value: f"{value} {out_of_range}")
        return whole
    exact = numbers(table, name, where=where, decimals=0, minimum=Decimal(minimum), maximum=Decimal(maximum))
    return None if exact is None else exact.cast(pa.int64())


def present(array: pa.Array, *, where: str, name: str) -> None:
    """No null (blank) cell."""
    refuse(array.is_null(), array, where, name, lambda _: f"{name} is empty")


def one_of(array: pa.Array, options: tuple[str, ...], *, where: str, name: str) -> None:
    """Every non-null value is one of `options`."""
    unknown = pc.and_(array.is_valid(), pc.invert(pc.is_in(array, value_set=pa.array(options))))
    refuse(unknown, array, where, name,
           lambda value: f"{name} must be {' or '.join(map(repr, options))}, got {value!r}")


def unique(ids: pa.Array, *, where: str, name: str) -> None:
    """Each id once: a repeat names itself, its row and the first row."""
    encoded = pc.dictionary_encode(ids)
    if len(encoded.dictionary) == len(ids):
        return
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(codes, return_index=True)  # each code's first row, by code
    repeat = int(np.argmax(first[codes] != np.arange(len(codes))))
    raise error_at(f"duplicate {name} {ids[repeat].as_py()!r} (first in row {first[codes[repeat]] + 1})",
                     where, repeat, name)


def first_true(mask: pa.Array) -> int | None:
    """Position of the first true value (nulls count as false), or None."""
    mask = mask.fill_null(False)
    if not pc.any(mask).as_py():
        return None
    return pc.index(mask, True).as_py()


def refuse(bad: pa.Array, array: pa.Array, where: str, name: str, message: Callable[[object], str], *,
           row_offset: int = 0) -> None:
    """Raise naming the first row where `bad` holds, with `message(value)`;
    rows count from `row_offset` (the rows of the file before this batch)."""
    position = first_true(bad)
    if position is not None:
        raise error_at(message(array[position].as_py()), where, row_offset + position, name)


def first_refused(array: pa.Array, convert: Callable[[pa.Array], object]) -> int:
    """Position of the first value `convert` refuses, given that it refuses
    the whole array: halving, so about log2(n) conversions of ever smaller slices."""
    start, stop = 0, len(array)  # a refused value lies in [start, stop)
    while stop - start > 1:
        middle = (start + stop) // 2
        try:
            convert(array.slice(start, middle - start))
        except _ARROW_ERRORS:
            stop = middle
        else:
            start = middle
    return start
