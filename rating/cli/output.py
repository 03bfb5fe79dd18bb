"""Writing result tables all-or-nothing.

Each table is written to a temporary file in its destination's folder, then
every temporary file is renamed over its destination (`os.replace`, atomic
on POSIX and Windows). If anything fails before the renames, the temporary
files are removed and no destination is touched: a reader never sees a
half-written file, and a failed run leaves nothing behind.

Only regular files are renamed over. A destination that is a symlink is
followed: its target is written atomically (the link stays a link). A
device, FIFO or socket (`/dev/null`, `/dev/stdout`, a named pipe) is written
through, never replaced: after every file is ready and before any is renamed
into place (what a stream received cannot be taken back). Two destinations
that are one file, however spelled (`x.csv`, `./x.csv`, a symlink or a hard
link to it), are an error before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import BinaryIO

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


@dataclass(frozen=True)
class _Destination:
    path: Path  # as given
    target: Path  # where the bytes go: a regular file's real path, or the stream as given
    stream: bool  # a device, FIFO or socket: written through
    identity: tuple  # equal for two spellings of one file


def _destination(path: Path) -> _Destination:
    try:
        stat_ = path.stat()  # follows symlinks, /proc/self/fd/N included
    except FileNotFoundError:
        real = Path(os.path.realpath(path))  # a new file, or a dangling link's target
        return _Destination(path, real, False, ("new", str(real)))
    if S_ISDIR(stat_.st_mode):
        raise InputError("is a folder, not a file name", where=str(path))
    identity = ("existing", stat_.st_dev, stat_.st_ino)
    if S_ISREG(stat_.st_mode):
        return _Destination(path, Path(os.path.realpath(path)), False, identity)
    return _Destination(path, path, True, identity)


def destinations(paths: Sequence[str | Path]) -> list[_Destination]:
    """Where each path writes; InputError when two are one file (checked
    before anything is written, so callers can check before any work)."""
    found: dict[tuple, Path] = {}
    result = []
    for path in map(Path, paths):
        destination = _destination(path)
        first = found.setdefault(destination.identity, path)
        if first is not path:
            same = "" if str(first) == str(path) else f" (as {first} and {path})"
            raise InputError(f"given twice{same}: one file cannot hold two tables", where=str(path))
        result.append(destination)
    return result


def write_tables(outputs: Sequence[tuple[pa.Table, Path, str]]) -> None:
    """Write every (table, path, format) or, on any error, none of them
    (streams excepted: see the module's docstring)."""
    targets = destinations([path for _, path, _ in outputs])
    temporaries: list[tuple[Path, Path]] = []
    try:
        for (table, _, fmt), destination in zip(outputs, targets, strict=True):
            if destination.stream:
                continue
            target = destination.target
            handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(handle)
            temporaries.append((Path(name), target))
            with _named(destination.path), open(name, "wb") as sink:
                _write(table, sink, fmt)
                sink.flush()
                os.fsync(sink.fileno())  # the data is on disk before the rename makes it visible
            os.chmod(name, _mode_for(target))
        for (table, _, fmt), destination in zip(outputs, targets, strict=True):
            if destination.stream:
                with _named(destination.path), open(destination.target, "wb") as sink:
                    _write(table, sink, fmt)
        for temporary, target in temporaries:
            os.replace(temporary, target)
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


@contextlib.contextmanager
def _named(path: Path):
    """pyarrow's write errors carry no file name: name the destination."""
    try:
        yield
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise OSError(exc.errno, reason, str(path)) from None


def _write(table: pa.Table, sink: BinaryIO, fmt: str) -> None:
    """Sequential writes only: a FIFO cannot seek."""
    if fmt == "parquet":
        pq.write_table(table, sink)
    elif fmt == "csv":
        pacsv.write_csv(table, sink)
    elif fmt == "arrow":
        with ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    else:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
