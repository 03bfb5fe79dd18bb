"""Any report table written as CSV, XLSX (openpyxl) or Parquet, chosen by the
file's suffix. Money stays integer minor units, ratios Decimal (XLSX cells
take them as numbers). The file appears whole or not at all: written beside
its place, then renamed over it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rating.errors import InputError

FORMATS = (".csv", ".xlsx", ".parquet")


def write(table: pa.Table, path: Path, *, sheet: str = "report") -> None:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"write a report as {', '.join(FORMATS)}; got {path.name!r}", where="--out")
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        if suffix == ".csv":
            pacsv.write_csv(table, temp)
        elif suffix == ".parquet":
            pq.write_table(table, temp)
        else:
            _xlsx(table, Path(temp), sheet)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _xlsx(table: pa.Table, path: Path, sheet: str) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    page = book.create_sheet(sheet[:31])
    page.append(table.column_names)
    for row in table.to_pylist():
        page.append(list(row.values()))
    book.save(path)
