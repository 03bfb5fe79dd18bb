"""Reading tabular files (CSV, Parquet, Arrow IPC) with errors that name the file.

Arrow data from outside (a file, API bytes) is checked in full with
`check_arrow` before anything reads its values: a bit flipped in a file can
leave an offset, a length or a dictionary index pointing outside its
buffer, and code that trusts it reads another row's data or crashes.

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

from rating.errors import InputError
from rating.inputs import cells
from rating.inputs.textfile import decode_utf8

HEADER_BYTES_MAX = 1 << 20  # a header line longer than this is not a header
TableLike = TypeVar("TableLike", pa.Table, pa.RecordBatch)

# What every Arrow IPC stream writer writes last (a continuation marker and a
# zero length); a stream file that lacks it was cut short.
IPC_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"
# What pyarrow raises on a damaged file; UnicodeDecodeError for names in its
# metadata (columns, fields) that are not UTF-8.
ARROW_READ_ERRORS = (pa.ArrowException, OSError, UnicodeDecodeError)


def check_arrow(data: pa.RecordBatch | pa.Table, *, where: str) -> None:
    """Full structural validation (column names in UTF-8, then per column
    buffer sizes, offsets, UTF-8, dictionary indices in range, ...), as an
    InputError naming `where` and the column."""
    try:
        names = data.schema.names
        data.validate()  # the columns' lengths
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise InputError(f"invalid Arrow data: {exc}", where=where, reason="BAD_ARROW") from None
    for name, column in zip(names, data.columns, strict=True):
        try:
            column.validate(full=True)
        except pa.ArrowException as exc:
            raise InputError(f"invalid Arrow data: {exc}", where=f"{where}, column {name}",
                             reason="BAD_ARROW", column=name) from None


def open_ipc_stream_file(path: Path, source: pa.NativeFile) -> ipc.RecordBatchStreamReader:
    """A reader of an Arrow IPC stream file that ends as every writer ends it:
    a stream cut at a message boundary would otherwise read as a shorter one."""
    size = source.size()
    if size >= len(IPC_END_OF_STREAM):
        source.seek(size - len(IPC_END_OF_STREAM))
    if source.read(len(IPC_END_OF_STREAM)) != IPC_END_OF_STREAM:
        raise InputError("Arrow IPC stream has no end-of-stream marker: the file is truncated",
                         where=str(path))
    source.seek(0)
    return ipc.open_stream(source)


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
            table = pq.read_table(path)
        elif suffix in (".arrow", ".feather", ".ipc"):
            with pa.memory_map(str(path)) as source:
                table = ipc.open_file(source).read_all()
        elif suffix == ".arrows":
            with pa.OSFile(str(path)) as source:
                table = open_ipc_stream_file(path, source).read_all()
        else:
            raise InputError(
                f"unknown file type {suffix!r} (use .csv, .parquet, .arrow/.feather or .arrows)",
                where=str(path),
            )
    except FileNotFoundError:
        raise InputError("file not found", where=str(path)) from None
    except ARROW_READ_ERRORS as exc:
        raise InputError(f"cannot read {suffix[1:]} file: {exc}", where=str(path)) from None
    check_arrow(table, where=str(path))
    return table


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
