"""Meter-id lookup (rating.model.id_lookup) against a plain dict, for every id
kind: text, dictionary-encoded, int64 and int32, registries of text or
integer ids, dense or sparse; bad dictionary indices stay input errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.errors import InputError
from rating.model import id_lookup as meter_lookup
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Site
from rating.readings.batches import meter_indexes, normalize_readings
from rating.readings.sources import iter_source_batches

INT64 = st.integers(-(2**63), 2**63 - 1)
# text ids: short, integer-looking ("7", "007", "-0", "+7") among them, any unicode
TEXT = st.one_of(st.text(max_size=12), st.integers(-1000, 1000).map(str),
                 st.sampled_from(["007", "-0", "+7", " 7", "9223372036854775807", "9223372036854775808",
                                  "-9223372036854775808", "-9223372036854775809", ""]))
SMALL_INT = st.integers(-50, 50)


def registry(ids) -> Registry:
    return Registry([Meter(i, "A-1", "t") for i in ids], [Account("A-1")])


def expected(readings: list, registry_ids: list) -> list[int]:
    """A dict lookup; ids of another kind than the registry's compare as text."""
    integers = bool(registry_ids) and all(isinstance(i, int) for i in registry_ids)
    index = {i if integers else str(i): n for n, i in enumerate(registry_ids)}
    text = {str(i): n for n, i in enumerate(registry_ids)}
    return [-1 if value is None else index.get(value, -1) if integers and isinstance(value, int)
            else text.get(str(value), -1) for value in readings]


def _pick(data, pool: list, other) -> list:
    """Readings drawn from the registry's ids and from other values."""
    return data.draw(st.lists(st.one_of(st.sampled_from(pool), other) if pool else other, max_size=40))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_text_ids_equal_a_dict_lookup(data):
    ids = data.draw(st.lists(TEXT, unique=True, max_size=30))
    readings = _pick(data, ids, st.one_of(TEXT, st.none()))
    id_type = data.draw(st.sampled_from([pa.string(), pa.large_string(), pa.string_view()]))
    got = meter_indexes(pa.array(readings, id_type), registry(ids))
    assert got.dtype == np.int32
    assert got.tolist() == expected(readings, ids)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_dictionary_ids_equal_a_dict_lookup_sliced_and_with_null_codes(data):
    ids = data.draw(st.lists(TEXT, unique=True, max_size=30))
    dictionary = data.draw(st.lists(st.one_of(st.sampled_from(ids), TEXT) if ids else TEXT, unique=True,
                                    min_size=1, max_size=20))
    codes = data.draw(st.lists(st.one_of(st.integers(0, len(dictionary) - 1), st.none()), max_size=40))
    index_type = data.draw(st.sampled_from([pa.int8(), pa.int16(), pa.int32(), pa.int64()]))
    array = pa.DictionaryArray.from_arrays(pa.array(codes, index_type), pa.array(dictionary))
    start = data.draw(st.integers(0, len(codes)))
    array = array.slice(start)
    values = [None if c is None else dictionary[c] for c in codes[start:]]
    reg = registry(ids)
    assert meter_indexes(array, reg).tolist() == expected(values, ids)
    assert meter_indexes(array, reg).tolist() == expected(values, ids)  # from the kept positions


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_integer_ids_equal_a_dict_lookup_dense_or_sparse(data):
    ids = data.draw(st.one_of(st.lists(SMALL_INT, unique=True, max_size=30),
                              st.lists(INT64, unique=True, max_size=30)))
    readings = _pick(data, ids, st.one_of(INT64, SMALL_INT, st.none()))
    id_type = pa.int32() if all(r is None or -(2**31) <= r < 2**31 for r in readings) and data.draw(
        st.booleans()) else pa.int64()
    got = meter_indexes(pa.array(readings, id_type), registry(ids))
    assert got.tolist() == expected(readings, ids)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_integers_against_text_registries_and_text_against_integer_registries(data):
    text_ids = data.draw(st.lists(TEXT, unique=True, max_size=30))
    ints = _pick(data, [int(t) for t in text_ids if _canonical(t)], st.one_of(INT64, SMALL_INT, st.none()))
    assert meter_indexes(pa.array(ints, pa.int64()), registry(text_ids)).tolist() == expected(ints, text_ids)
    int_ids = data.draw(st.lists(INT64, unique=True, max_size=30))
    texts = _pick(data, [str(i) for i in int_ids], st.one_of(TEXT, st.none()))
    assert meter_indexes(pa.array(texts, pa.string()), registry(int_ids)).tolist() == expected(texts, int_ids)


def _canonical(text: str) -> bool:
    try:
        return str(int(text)) == text and -(2**63) <= int(text) < 2**63
    except ValueError:
        return False


def test_integer_looking_text_ids_are_indexed_as_integers_once():
    reg = registry(["7", "007", "-3", "x", "9223372036854775807", "99999999999999999999"])
    lookup = reg.meter_lookup
    as_text = []
    real = lookup._text_positions
    lookup._text_positions = lambda text: as_text.append(text) or real(text)
    ids = pa.array([7, -3, 9223372036854775807, 0, 3], pa.int64())
    assert meter_indexes(ids, reg).tolist() == [0, 2, 4, -1, -1]
    assert reg.meter_lookup is lookup and as_text == []  # never cast to text


def test_large_sparse_registry_uses_the_hash_index():
    keys = np.arange(0, 10**6, dtype=np.int64) * 1_000_003
    reg_ids = pa.array(keys)
    table = meter_lookup._IntTable(keys, np.arange(len(keys), dtype=np.int32))
    assert table.table is None and table.index is not None
    probe = np.array([keys[5], keys[-1], 1, -keys[3]], dtype=np.int64)
    assert table.lookup(probe).tolist() == [5, len(keys) - 1, -1, -1]
    assert len(reg_ids) == len(keys)


def test_a_files_dictionary_is_looked_up_once_per_row_group(tmp_path, monkeypatch):
    reg = registry([f"M{i}" for i in range(100)])
    ids = pa.array([f"M{i % 120}" for i in range(2_000)]).dictionary_encode()
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"meter_id": ids, "ts": pa.array(np.arange(2_000), pa.timestamp("us")),
                             "value": pa.array(np.ones(2_000))}), path, row_group_size=1_000)
    lookup = reg.meter_lookup
    calls = []
    real = lookup._text_positions
    monkeypatch.setattr(lookup, "_text_positions", lambda text: calls.append(len(text)) or real(text))
    batches = list(iter_source_batches(path, batch_rows=250))
    assert len(batches) == 8
    for item in batches:
        got = meter_indexes(item.batch.column("meter_id"), reg)
        want = [int(m[1:]) if int(m[1:]) < 100 else -1 for m in item.batch.column("meter_id").to_pylist()]
        assert got.tolist() == want
    assert len(calls) <= 2  # one per row group's dictionary, not per batch


@pytest.mark.parametrize("bad_index", [-1, -128, 3, 2**31 - 1])
def test_dictionary_index_outside_the_dictionary_stays_an_input_error(bad_index):
    array = pa.DictionaryArray.from_arrays(pa.array([0, bad_index, 1], pa.int32()), pa.array(["a", "b", "c"]),
                                           safe=False)
    batch = pa.record_batch({"meter_id": array, "ts": pa.array([1, 2, 3], pa.timestamp("us")),
                             "value": pa.array([1.0, 2.0, 3.0])})
    with pytest.raises(InputError) as err:
        normalize_readings(batch, registry=registry(["a", "b"]), site=Site(), where="r.arrow")
    assert err.value.where == "r.arrow rows 1-3, column meter_id" and "out of bounds" in err.value.message
