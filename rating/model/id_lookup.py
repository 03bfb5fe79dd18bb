"""Meter ids to registry positions at C speed, for every id kind.

One `MeterLookup` per registry (`registry.meter_lookup`, its text index
built when the registry is, since it also finds repeated ids), and one over
its account ids:

- text ids: a hash index over the registry's ids (ext/_lookup.pyx), built
  once, probed per batch;
- dictionary-encoded ids: each distinct dictionary is looked up once and
  its positions kept; a batch whose dictionary equals a kept one (the same
  buffers, or a copy: Parquet copies a row group's dictionary into each
  batch) reuses them;
- integer ids: a direct table when the registry's integer ids are dense,
  a hash index otherwise. A registry of text ids indexes its canonical
  integer texts ("7", "-12"; not "007" or "+7") as integers too, so int64
  readings match them without being cast to text.

Readings and registry ids of different kinds compare as text: meter 7 is
"7". Unknown ids are -1; nulls are the caller's to mask.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating._ext._lookup import IntIndex, TextIndex, dense_lookup

DICTIONARIES_KEPT = 8  # a Parquet file has one dictionary per row group and column
_DENSE_SPAN_MIN = 1 << 16
_CANONICAL_INTEGER = r"^(0|-?[1-9][0-9]{0,18})$"  # at most 19 digits; int64 has 19
_INT64_MAX_TEXT = str(np.iinfo(np.int64).max)


def _offsets_and_data(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A pa.string array's int32 offsets (len + 1, from its own offset) and bytes."""
    _, offsets, data = text.buffers()
    offsets_view = np.frombuffer(offsets, dtype=np.int32, count=text.offset + len(text) + 1)
    data_view = np.frombuffer(data, dtype=np.uint8) if data is not None and data.size else (
        np.zeros(1, np.uint8))
    return offsets_view[text.offset:], data_view


class _IntTable:
    """Registry positions of integer ids: a direct table when dense, else hashed."""

    def __init__(self, keys: np.ndarray, positions: np.ndarray):
        self.low = int(keys.min()) if len(keys) else 0
        span = int(keys.max()) - self.low + 1 if len(keys) else 0
        self.table: np.ndarray | None = None
        self.index: IntIndex | None = None
        if span <= max(8 * len(keys), _DENSE_SPAN_MIN):
            # a trailing -1 slot takes every id outside [low, low + span)
            self.table = np.full(span + 1, -1, dtype=np.int32)
            self.table[keys - self.low] = positions
        else:
            self.keys, self.positions = np.ascontiguousarray(keys, dtype=np.int64), positions
            self.index = IntIndex(self.keys)

    def lookup(self, values: np.ndarray) -> np.ndarray:
        out = np.empty(len(values), dtype=np.int32)
        if self.table is not None:
            dense_lookup(np.ascontiguousarray(values, dtype=np.int64), self.low, self.table, out)
            return out
        assert self.index is not None
        self.index.lookup(np.ascontiguousarray(values, dtype=np.int64), out)
        hit = out >= 0
        out[hit] = self.positions[out[hit]]
        return out


class MeterLookup:
    """Registry position (int32, -1 when unknown) of meter ids of any kind."""

    def __init__(self, registry_ids: pa.Array):
        self.registry_ids = registry_ids
        self._text: TextIndex | None = None
        self._text_ids: pa.Array | None = None  # kept alive: the index points into its buffers
        self._ints: _IntTable | None = None
        # (type, length) -> the latest dictionaries of that shape and their positions
        self._dictionaries: OrderedDict[tuple, list[tuple[pa.Array, np.ndarray]]] = OrderedDict()

    def __reduce__(self):
        # the indexes are built lazily and hold C buffers: a copy (a Dask task's
        # Config, a child process) rebuilds them from the ids
        return (MeterLookup, (self.registry_ids,))

    def positions(self, meter_id: pa.Array) -> np.ndarray:
        """Positions of a string, large_string, string_view, int64, int32 or
        dictionary array (values under nulls are unspecified)."""
        if pa.types.is_dictionary(meter_id.type):
            return self._dictionary(meter_id)
        if pa.types.is_integer(meter_id.type):
            values = meter_id.cast(pa.int64()).fill_null(0) if meter_id.null_count or (
                meter_id.type != pa.int64()) else meter_id
            return self._int_table().lookup(_int64_view(values))
        if not pa.types.is_string(meter_id.type):
            meter_id = meter_id.cast(pa.string())
        return self._text_positions(meter_id)

    def first_repeat(self) -> tuple[int, int] | None:
        """(row, earlier row) of the first id that repeats an earlier one, in
        registry order (rows from 0); None when the ids are distinct."""
        ids = self.registry_ids
        if pa.types.is_integer(ids.type):
            keys = _int64_view(ids.cast(pa.int64()))
            order = np.argsort(keys, kind="stable")  # equal ids in registry order
            ranked = keys[order]
            new = np.concatenate([[True], ranked[1:] != ranked[:-1]])
            repeats = np.flatnonzero(~new)
            if len(repeats) == 0:
                return None
            slot = repeats[np.argmin(order[repeats])]
            starts = np.flatnonzero(new)
            return int(order[slot]), int(order[starts[np.searchsorted(starts, slot, side="right") - 1]])
        # the index keeps the first of equal ids: a later one finds it, not itself
        found = self._text_positions(ids)
        repeats = np.flatnonzero(found != np.arange(len(found), dtype=np.int32))
        return None if len(repeats) == 0 else (int(repeats[0]), int(found[repeats[0]]))

    def _dictionary(self, meter_id: pa.DictionaryArray) -> np.ndarray:
        dictionary = meter_id.dictionary
        key = (str(dictionary.type), len(dictionary))
        # Parquet gives each batch its own copy of the row group's dictionary:
        # comparing it with a kept one (a memcmp) is cheaper than looking it up
        kept = next((k for k in self._dictionaries.get(key, ()) if k[0].equals(dictionary)), None)
        if kept is None:
            kept = (dictionary, self.positions(dictionary))
            self._dictionaries.setdefault(key, []).insert(0, kept)
            self._dictionaries.move_to_end(key)
            del self._dictionaries[key][DICTIONARIES_KEPT:]
            if len(self._dictionaries) > DICTIONARIES_KEPT:
                self._dictionaries.popitem(last=False)
        positions = kept[1]
        if len(positions) == 0:
            return np.full(len(meter_id), -1, dtype=np.int32)
        indices = meter_id.indices
        codes = indices.fill_null(0) if indices.null_count else indices
        return positions[codes.to_numpy(zero_copy_only=False)]

    def _text_positions(self, text: pa.Array) -> np.ndarray:
        if self._text is None:
            ids = self.registry_ids.cast(pa.string())  # integer registries match as text: 7 is "7"
            self._text_ids = ids
            self._text = TextIndex(*_offsets_and_data(ids))
        out = np.empty(len(text), dtype=np.int32)
        if len(text):
            self._text.lookup(*_offsets_and_data(text), out)
        return out

    def _int_table(self) -> _IntTable:
        if self._ints is None:
            ids = self.registry_ids
            if pa.types.is_integer(ids.type):
                keys = _int64_view(ids.cast(pa.int64()))
                positions = np.arange(len(ids), dtype=np.int32)
            else:
                keys, positions = _integer_texts(ids)
            self._ints = _IntTable(keys, positions)
        return self._ints


def _int64_view(values: pa.Array) -> np.ndarray:
    return np.frombuffer(values.buffers()[1], dtype=np.int64, count=values.offset + len(values))[
        values.offset:]


def _integer_texts(ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The text ids that an int64 spells exactly (str(int(text)) == text), as
    (int64 values, registry positions)."""
    canonical = pc.fill_null(pc.match_substring_regex(ids, _CANONICAL_INTEGER), False)
    positions = np.flatnonzero(canonical.to_numpy(zero_copy_only=False)).astype(np.int32)
    texts = ids.take(pa.array(positions))
    # 19 digits may exceed int64: keep those up to its bounds (same length: compare as text)
    digits = pc.utf8_length(pc.utf8_ltrim(texts, characters="-")).to_numpy(zero_copy_only=False)
    longest = digits == len(_INT64_MAX_TEXT)
    if longest.any():
        fits = np.array([t.lstrip("-") <= (_INT64_MAX_TEXT if not t.startswith("-") else
                                           str(-np.iinfo(np.int64).min))
                         for t in texts.filter(pa.array(longest)).to_pylist()], dtype=bool)
        keep = ~longest
        keep[np.flatnonzero(longest)[fits]] = True
        positions, texts = positions[keep], texts.filter(pa.array(keep))
    return texts.cast(pa.int64()).to_numpy(zero_copy_only=False), positions
