"""The parking stays carried between batches, kept in a file so that a
restart does not forget the cars still inside: per plate (by its text, so a
changed plates file keeps the plates it still has), the latest instant and
whether a stay is open. Written after a batch's movements, atomically (a
temporary file, fsync, rename): a crash before the write leaves the state of
the batch before, so the batch sent again is rated again and its movements
replay by their keys."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from rating.errors import InputError
from rating.inputs.tables import read_table
from rating.usage.parking_pairing import Carried
from rating.usage.plates import Plates

_SCHEMA = pa.schema([("plate", pa.string()), ("last_us", pa.int64()), ("open", pa.bool_())])


def save_carried(path: Path, carried: Carried, plates: Plates) -> None:
    table = pa.table([plates.plates.take(pa.array(carried.plates)), pa.array(carried.last_us),
                      pa.array(carried.open)], schema=_SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as sink:
            with ipc.new_file(sink, _SCHEMA) as writer:
                writer.write_table(table)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def load_carried(path: Path, plates: Plates) -> Carried:
    """The stays of the file (empty when there is none); plates the site no longer has are dropped."""
    if not path.exists():
        return Carried.empty()
    table = read_table(path)
    if table.schema != _SCHEMA:
        raise InputError(f"not a file of parking stays (columns {', '.join(table.schema.names)})",
                         where=str(path))
    index = plates.index_of(table.column("plate").combine_chunks())
    kept = index >= 0
    last_us = table.column("last_us").to_numpy()
    is_open = table.column("open").to_numpy(zero_copy_only=False)
    return Carried(index[kept], np.ascontiguousarray(last_us[kept]), is_open[kept])
