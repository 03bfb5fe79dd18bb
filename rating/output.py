"""Writing result tables all-or-nothing.

Each table is written to a temporary file in its destination's folder, then
every temporary file is renamed over its destination (`os.replace`, atomic
on POSIX and Windows). If anything fails before the renames, the temporary
files are removed and no destination is touched: a reader never sees a
half-written file, and a failed run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from rating.errors import InputError

FORMATS = ("parquet", "csv", "arrow")
SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".arrow": "arrow", ".feather": "arrow",
            ".ipc": "arrow"}
EXTENSIONS = {"parquet": ".parquet", "csv": ".csv", "arrow": ".arrow"}


def format_of(path: str | Path, given: str | None = None) -> str:
    """The output format: `given`, else the one the file name's suffix names."""
    if given is not None:
        if given not in FORMATS:
            raise InputError(f"unknown format {given!r}; use one of {', '.join(FORMATS)}")
        return given
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            f"cannot tell the format from {suffix or 'no suffix'!r}; name the file .parquet, "
            ".csv or .arrow, or pass --format",
            where=str(path),
        )
    return SUFFIXES[suffix]


def write_table(table: pa.Table, path: str | Path, fmt: str) -> None:
    """Write one table atomically."""
    write_tables([(table, Path(path), fmt)])


def write_tables(outputs: Sequence[tuple[pa.Table, Path, str]]) -> None:
    """Write every (table, path, format) or, on any error, none of them."""
    temporaries: list[tuple[Path, Path]] = []
    try:
        for table, path, fmt in outputs:
            path = Path(path)
            if path.is_dir():
                raise InputError("is a folder, not a file name", where=str(path))
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(handle)
            temporaries.append((Path(name), path))
            try:
                _write(table, Path(name), fmt)
            except OSError as exc:  # pyarrow's errors carry no file name: name the destination
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                raise OSError(exc.errno, reason, str(path)) from None
            os.chmod(name, _mode_for(path))
        for temporary, path in temporaries:
            os.replace(temporary, path)
    except BaseException:
        for temporary, _ in temporaries:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        raise


def _mode_for(path: Path) -> int:
    """An existing file keeps its permissions; a new one gets the umask's
    (mkstemp's temporary files are private, 0600)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        pacsv.write_csv(table, path)
    elif fmt == "arrow":
        with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    else:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    with open(path, "rb+") as handle:  # the data is on disk before the rename makes it visible
        os.fsync(handle.fileno())
