"""Reading tabular files (CSV, Parquet, Arrow IPC) with errors that name the file.

Arrow data from outside (a file, API bytes) is checked in full with
`check_arrow` before anything reads its values: a bit flipped in a file can
leave an offset, a length or a dictionary index pointing outside its
buffer, and code that trusts it reads another row's data or crashes.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from rating.errors import InputError

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
        raise InputError(f"invalid Arrow data: {exc}", where=where) from None
    for name, column in zip(names, data.columns, strict=True):
        try:
            column.validate(full=True)
        except pa.ArrowException as exc:
            raise InputError(f"invalid Arrow data: {exc}", where=f"{where}, column {name}") from None


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
        if suffix == ".csv":
            convert = pacsv.ConvertOptions(
                column_types=None, strings_can_be_null=True, auto_dict_encode=False
            )
            if strings:
                header = pacsv.read_csv(path, read_options=pacsv.ReadOptions(skip_rows_after_names=10**9))
                convert = pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header.column_names},
                    strings_can_be_null=True,
                )
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
