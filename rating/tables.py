"""Reading tabular files (CSV, Parquet, Arrow IPC) with errors that name the file.

CSV files are read as text, one way for every table (registries, groups,
LoadConfig's documents, readings): the header is decoded and split here, so
that a name that is not UTF-8 is named by its position; cells are read as
bytes and checked as UTF-8 a column at a time (`csv_as_text`), so a bad
cell is named by its row and column. Blank cells and the placeholders
spreadsheets write for a missing value (`#N/A`, `NA`, `NULL`, `NaN`, ...:
pyarrow's default null values) are null.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from rating import cells
from rating.errors import InputError
from rating.textfile import decode_utf8

HEADER_BYTES_MAX = 1 << 20  # a header line longer than this is not a header
TableLike = TypeVar("TableLike", pa.Table, pa.RecordBatch)


def read_table(path: str | Path, *, strings: bool = False) -> pa.Table:
    """Read a whole table; the format follows the file name's suffix.

    With `strings=True` CSV columns are read as text (registry files, where
    "007" must stay "007"); Parquet and Arrow keep their own types.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv" and strings:
            return read_csv_text(path, where=str(path))
        if suffix == ".csv":
            convert = pacsv.ConvertOptions(strings_can_be_null=True, auto_dict_encode=False)
            return pacsv.read_csv(path, convert_options=convert)
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix in (".arrow", ".feather", ".ipc"):
            with pa.memory_map(str(path)) as source:
                return ipc.open_file(source).read_all()
        if suffix == ".arrows":
            with pa.OSFile(str(path)) as source:
                return ipc.open_stream(source).read_all()
    except FileNotFoundError:
        raise InputError("file not found", where=str(path)) from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read {suffix[1:]} file: {exc}", where=str(path)) from None
    raise InputError(
        f"unknown file type {suffix!r} (use .csv, .parquet, .arrow/.feather or .arrows)", where=str(path)
    )


def csv_names(source: Path | bytes, *, where: str) -> list[str]:
    """The column names in the first line of a CSV file (or its bytes)."""
    if isinstance(source, bytes):
        head = source[:HEADER_BYTES_MAX]
    else:
        with open(source, "rb") as handle:
            head = handle.read(HEADER_BYTES_MAX)
    line = head.split(b"\n", 1)[0]
    return next(csv.reader([decode_utf8(line, where=where, error=InputError).rstrip("\r")]), [])


def csv_convert_options(names: list[str]) -> pacsv.ConvertOptions:
    """Every column as bytes (checked as UTF-8 by `csv_as_text`), blanks and
    placeholders null."""
    return pacsv.ConvertOptions(column_types={name: pa.binary() for name in names}, strings_can_be_null=True)


def csv_as_text(table: TableLike, *, where: str, row_offset: int = 0) -> TableLike:
    """A table read with `csv_convert_options`, its columns as UTF-8 strings;
    a cell that is not UTF-8 is an error naming its row and column."""
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        try:
            columns.append(column.cast(pa.string()))
        except pa.ArrowInvalid:
            position = cells.first_refused(column, lambda part: part.cast(pa.string()))
            raise cells.error_at("not UTF-8 text; save the file as UTF-8", where,
                                              row_offset + position, name) from None
    return type(table).from_arrays(columns, names=table.column_names)


def read_csv_text(source: Path | bytes, *, where: str) -> pa.Table:
    """A whole CSV file (or its bytes) with every column as text."""
    names = csv_names(source, where=where)
    if isinstance(source, bytes):
        if not source.endswith(b"\n"):  # pyarrow cannot read a last row without one
            source += b"\n"
        table = pacsv.read_csv(io.BytesIO(source), convert_options=csv_convert_options(names))
    else:
        table = pacsv.read_csv(source, convert_options=csv_convert_options(names))
    return csv_as_text(table, where=where)
