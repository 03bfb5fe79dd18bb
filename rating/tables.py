"""Reading tabular files (CSV, Parquet, Arrow IPC) with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from rating.errors import InputError


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
