"""CSV readings cells read as text, typed per batch: `ts` as UTC timestamps,
`value` as int64 (exact) or float64, placeholders (`#N/A`, `NA`, blank) as null.
Each refused cell is named by file, row and column."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from rating.inputs import cells
from rating.inputs.tables import csv_as_text

# A zone designator after a time of day: "...12:00Z", "...12:00:00.5+05:30", "...12:00-0400".
_ZONE_SUFFIX = re.compile(r"\d\d:\d\d(:\d\d(\.\d*)?)?\s*(Z|[+-]\d\d(:?\d\d)?)\s*$")
_LONG_YEAR = re.compile(r"^\s*[+-]?\d{5,}-\d\d-\d\d")  # ISO 8601 expanded years: 10000-01-01
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError)
# The span of timestamp[ns], which CSV timestamps are parsed into.
CSV_TS_MIN, CSV_TS_MAX = "1677-09-21T00:12:43.145224192Z", "2262-04-11T23:47:16.854775807Z"
_CSV_NULLS = pa.array(pacsv.ConvertOptions().null_values, pa.binary())


def typed_csv_batch(batch: pa.RecordBatch, where: str, row_offset: int) -> pa.RecordBatch:
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
