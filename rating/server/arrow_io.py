"""Arrow IPC bytes in and out of the API, validated before anything reads them."""

from __future__ import annotations

import pyarrow as pa

from rating.errors import InputError
from rating.inputs.tables import check_arrow
from rating.prepaid.errors import InvalidArgument
from rating.prepaid.records import read_table_bytes, table_bytes

__all__ = ["read_ipc", "table_bytes"]


def read_ipc(data: bytes, *, what: str = "readings") -> pa.Table:
    """A table from Arrow IPC stream or file bytes; INVALID_ARGUMENT when they
    are empty, not Arrow IPC, or structurally invalid (checked in full, as
    files are (rating.inputs.tables.check_arrow), so no kernel ever reads a bad
    offset, length or dictionary index)."""
    if not data:
        raise InvalidArgument(f"{what} is empty: send an Arrow IPC stream", reason="BAD_ARROW", field=what)
    try:
        table = read_table_bytes(data)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidArgument(f"{what} is not valid Arrow IPC: {exc}", reason="BAD_ARROW",
                              field=what) from None
    try:
        check_arrow(table, where=what)
    except InputError as exc:
        raise InvalidArgument.of(exc, field=what) from None
    return table
