"""Parking events in: a table (a file, or Arrow IPC over gRPC) with columns
`plate` (text, dictionary-encoded allowed), `ts` (an Arrow timestamp, any
unit; naive means UTC) and `event` (`entry`, `exit` or `lost_ticket`) to
arrays: plate index (-1: unknown), UTC microseconds, event code.

A null cell or an unknown event word is bad input (an error naming the row);
an unknown plate is an anomaly of the pairing, not an error. Plates are
normalised once per distinct plate, not once per event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.errors import SchemaError
from rating.inputs import cells
from rating.readings.batches import column_of, timestamps_us
from rating.usage.plates import Plates, normalise

EVENT_WORDS = ("entry", "exit", "lost_ticket")  # codes 0, 1, 2 (parking_reference)
_EVENTS = pa.array(EVENT_WORDS)


@dataclass(frozen=True)
class Events:
    plates: np.ndarray  # int32 index into Plates, -1 unknown
    ts_us: np.ndarray  # int64
    kinds: np.ndarray  # int8
    plate_text: pa.Array  # the normalised plate of each event (dictionary)


def decode_events(table: pa.Table | pa.RecordBatch, plates: Plates, *, where: str) -> Events:
    if table.num_rows == 0:
        return _no_events(table, where)
    plate = _dictionary(column_of(table, "plate", where), "plate", where)
    event = _dictionary(column_of(table, "event", where), "event", where)
    ts_us = timestamps_us(column_of(table, "ts", where), where=where)
    normal = normalise(plate.dictionary)
    known = plates.index_of(normal)
    codes = plate.indices.to_numpy(zero_copy_only=False)
    words = pc.index_in(event.dictionary, value_set=_EVENTS).fill_null(-1).to_numpy(zero_copy_only=False)
    kinds = words[event.indices.to_numpy(zero_copy_only=False)].astype(np.int8)
    if (kinds < 0).any():
        position = int(np.argmax(kinds < 0))
        raise cells.error_at(f"event must be {', '.join(EVENT_WORDS)}; got {event[position].as_py()!r}",
                             where, position, "event")
    text = pa.DictionaryArray.from_arrays(plate.indices, normal)
    return Events(known[codes], ts_us, kinds, text)


def _no_events(table: pa.Table | pa.RecordBatch, where: str) -> Events:
    """A file of a header alone (its columns may not even have a type)."""
    for name in ("plate", "ts", "event"):
        column_of(table, name, where)
    return Events(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int8),
                  pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], pa.string())))


def _dictionary(array: pa.Array, name: str, where: str) -> pa.DictionaryArray:
    """The text column dictionary-encoded (work per distinct value after), nulls refused."""
    value_type = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        raise SchemaError(f"{name} has type {array.type}; accepted: text (dictionary-encoded allowed)",
                          where=f"{where} column {name}", column=name)
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    nulls = array.is_null()
    if array.dictionary.null_count:
        nulls = pc.or_(nulls, array.dictionary.is_null().take(array.indices.fill_null(0)))
    position = cells.first_true(nulls)
    if position is not None:
        raise cells.error_at(f"{name} is empty", where, position, name)
    return array
