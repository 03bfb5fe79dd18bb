"""Readings normalisation: every input type, unit, zone and value type, and every error."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.errors import AmountOverflowError, InputError
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Site
from rating.readings.batches import NormalizedReadings, meter_indexes, normalize_readings, to_fixed
from rating.readings.csv_text import parse_timestamps
from rating.readings.sources import count_readings, iter_reading_batches, iter_source_batches, source_name

SITE = Site(quantity_decimals=3)
T0_US = 1_746_057_600_000_000  # 2025-05-01T00:00:00Z


def registry(ids) -> Registry:
    return Registry([Meter(i, "A-1", "t") for i in ids], [Account("A-1")])


STR_REG = registry(["E-1", "E-2", "W-1"])
INT_REG = registry([101, 102, 7_000_000])


def batch(meter_id, ts=None, value=None, **extra) -> pa.RecordBatch:
    n = len(meter_id)
    if ts is None:
        ts = pa.array(T0_US + np.arange(n, dtype=np.int64) * 900_000_000, pa.timestamp("us"))
    if value is None:
        value = pa.array(np.arange(n, dtype=np.float64) + 0.5)
    return pa.record_batch({"meter_id": meter_id, "ts": ts, "value": value, **extra})


def norm(b, reg=STR_REG, **kwargs) -> NormalizedReadings:
    return normalize_readings(b, registry=reg, site=SITE, **kwargs)


# ---------------------------------------------------------------- meter ids


@pytest.mark.parametrize("id_type", [pa.string(), pa.large_string(), pa.string_view()])
def test_text_meter_ids_map_to_registry_index_unknown_is_minus_one(id_type):
    ids = pa.array(["W-1", "E-1", "nope", "E-2"], id_type)
    out = norm(batch(ids))
    assert out.meter_index.dtype == np.int32
    assert out.meter_index.tolist() == [2, 0, -1, 1]
    assert out.meter_id.equals(ids)


@pytest.mark.parametrize("index_type", [pa.int8(), pa.int16(), pa.int32(), pa.int64()])
def test_dictionary_meter_ids_are_looked_up_once_per_entry(index_type):
    ids = pa.DictionaryArray.from_arrays(
        pa.array([1, 0, 2, 1, 1], index_type), pa.array(["E-2", "E-1", "zz"])
    )
    assert norm(batch(ids)).meter_index.tolist() == [0, 1, -1, 0, 0]


def test_dictionary_slice_uses_its_offset():
    ids = pa.array(["E-1", "E-2", "W-1", "E-1"]).dictionary_encode().slice(1, 3)
    assert norm(batch(ids)).meter_index.tolist() == [1, 2, 0]


@pytest.mark.parametrize("id_type", [pa.int64(), pa.int32()])
def test_integer_meter_ids_dense_lookup(id_type):
    ids = pa.array([102, 101, 5, 7_000_000, -(2**31), 103], id_type)
    assert norm(batch(ids), INT_REG).meter_index.tolist() == [1, 0, -1, 2, -1, -1]


def test_integer_meter_ids_extremes_never_alias():
    reg = registry([-(2**63), 2**63 - 1, 0])
    ids = pa.array([2**63 - 1, -(2**63), 0, 1, -1, 2**62], pa.int64())
    assert norm(batch(ids), reg).meter_index.tolist() == [1, 0, 2, -1, -1, -1]


def test_sparse_integer_ids_fall_back_to_hashing():
    reg = registry([10**15, 3, 10**17])
    ids = pa.array([3, 10**17, 4, 10**15], pa.int64())
    assert norm(batch(ids), reg).meter_index.tolist() == [1, 2, -1, 0]


def test_integer_readings_against_text_registry_compare_as_text():
    reg = registry(["101", "0102"])
    assert norm(batch(pa.array([101, 102])), reg).meter_index.tolist() == [0, -1]
    assert norm(batch(pa.array(["101", "x", "7000000"])), INT_REG).meter_index.tolist() == [0, -1, 2]


def test_chunked_table_columns_are_combined():
    table = pa.Table.from_batches([batch(pa.array(["E-1", "E-2"])), batch(pa.array(["W-1"]))])
    out = norm(table)
    assert out.meter_index.tolist() == [0, 1, 2]
    assert out.value_qty.tolist() == [500, 1500, 500]
    assert len(out) == 3


# ---------------------------------------------------------------- timestamps

INSTANT = dt.datetime(2025, 5, 1, 6, 30, 15, 123456, tzinfo=dt.timezone.utc)
INSTANT_US = int(INSTANT.timestamp()) * 1_000_000 + 123456


@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Kolkata", "America/New_York", "+05:30"])
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamps_of_every_unit_and_zone_become_utc_microseconds(unit, tz):
    per_second = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[unit]
    whole = int(INSTANT.timestamp()) * per_second
    frac = {"s": 0, "ms": 123, "us": 123456, "ns": 123456789}[unit]
    ts = pa.array([whole + frac, -per_second], pa.timestamp(unit, tz=tz))
    out = norm(batch(pa.array(["E-1", "E-1"]), ts=ts))
    expected_first = {"s": 0, "ms": 123000, "us": 123456, "ns": 123456}[unit]
    assert out.ts_us.dtype == np.int64
    assert out.ts_us.tolist() == [int(INSTANT.timestamp()) * 10**6 + expected_first, -(10**6)]


def test_nanoseconds_are_floored_not_truncated_before_the_epoch():
    ts = pa.array([-1, -1000, -1001, 1999], pa.timestamp("ns"))
    out = norm(batch(pa.array(["E-1"] * 4), ts=ts))
    assert out.ts_us.tolist() == [-1, -1, -2, 1]


def test_microseconds_are_a_view_of_the_arrow_buffer():
    b = batch(pa.array(["E-1", "E-2"]))
    out = norm(b)
    assert not out.ts_us.flags.writeable  # zero copy: pyarrow's buffer, read-only
    assert np.shares_memory(out.ts_us, np.frombuffer(b.column(1).buffers()[1], np.int64))


def test_second_timestamps_outside_microsecond_range_saturate_for_the_window_to_report():
    ts = pa.array([0, 2**62, -(2**62), 2**63 - 1], pa.timestamp("s"))
    limit = (2**63 - 1) // 10**6
    out = norm(batch(pa.array(["E-1"] * 4), ts=ts))
    assert out.ts_us.tolist() == [0, limit * 10**6, -limit * 10**6, limit * 10**6]


# ---------------------------------------------------------------- values


def test_float64_values_round_half_even_at_quantity_resolution():
    values = pa.array([0.0, 1.5, 2.0005, 0.0025, 0.0035, -1.0015, 12345.678, None])
    out = norm(batch(pa.array(["E-1"] * 8), value=values))
    # 0.0025 * 1000 = 2.5 exactly in binary? no: the double product decides.
    expected = [int(np.rint(v * 1000)) if v is not None else 0 for v in values.to_pylist()]
    assert out.value_qty.tolist() == expected
    assert out.value_qty[1] == 1500 and out.value_qty[6] == 12345678
    assert out.value_null.tolist() == [False] * 7 + [True]


@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                          st.floats(-1e16, 1e16)), max_size=40),
       st.integers(0, 6))
def test_float_values_follow_the_double_rule_or_name_the_first_bad_one(values, decimals):
    """The one-pass conversion equals numpy's rint(value x 10^d), and fails
    where that is not finite (first such row), else where it leaves int64."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = [None if v is None else np.rint(np.float64(v) * float(10**decimals)) for v in values]
    bad = [i for i, v in enumerate(values) if v is not None and not np.isfinite(v)] or [
        i for i, x in enumerate(scaled) if x is not None and not (-(2.0**63) <= x < 2.0**63)]
    if bad:
        with pytest.raises((InputError, AmountOverflowError)) as caught:
            to_fixed(pa.array(values, pa.float64()), decimals, where="x.csv", row_offset=10)
        assert caught.value.details["row"] == str(10 + bad[0] + 1)
        return
    got, null = to_fixed(pa.array(values, pa.float64()), decimals)
    assert got.tolist() == [0 if x is None else int(x) for x in scaled]
    assert null.tolist() == [v is None for v in values]


@given(st.lists(st.decimals(-(2**40), 2**40, places=3, allow_nan=False, allow_infinity=False), max_size=40))
def test_decimal_texts_as_float64_come_back_exact(values):
    """A value with at most d decimals below 2^50 / 10^d is exact after the
    double rule: the Decimal reference's units."""
    got, _ = to_fixed(pa.array([float(v) for v in values], pa.float64()), 3)
    assert got.tolist() == [int(v * 1000) for v in values]


def test_ties_go_to_even_in_double_precision():
    # 0.5 and 2.5 quantity units are exact binary ties.
    values = pa.array([0.0005, 0.0025, 0.0015, -0.0005])
    out = to_fixed(values, 3)[0]
    assert out.tolist() == [int(np.rint(v * 1000)) for v in values.to_pylist()]
    assert to_fixed(pa.array([0.5, 1.5, 2.5, -0.5]), 0)[0].tolist() == [0, 2, 2, 0]


def test_float32_is_widened():
    out = to_fixed(pa.array([1.25, None, 3.0], pa.float32()), 3)
    assert out[0].tolist() == [1250, 0, 3000]
    assert out[1].tolist() == [False, True, False]


@pytest.mark.parametrize("int_type", [pa.int64(), pa.int32(), pa.int16(), pa.int8(), pa.uint32()])
def test_integer_values_are_exact(int_type):
    out = to_fixed(pa.array([0, 7, None, 100], int_type), 3)
    assert out[0].tolist() == [0, 7000, 0, 100000]
    assert out[1].tolist() == [False, False, True, False]


def test_int64_values_near_the_limit_are_exact_then_overflow():
    limit = (2**63 - 1) // 1000
    assert to_fixed(pa.array([limit, -limit]), 3)[0].tolist() == [limit * 1000, -limit * 1000]
    with pytest.raises(AmountOverflowError) as err:
        to_fixed(pa.array([1, limit + 1]), 3, where="x.csv", row_offset=4)
    assert err.value.where == "x.csv row 6, column value"
    with pytest.raises(AmountOverflowError) as err:
        to_fixed(pa.array([1, 2, -(2**63)]), 3)
    assert err.value.where == "readings row 3, column value"


def test_int64_with_zero_decimals_is_untouched():
    assert to_fixed(pa.array([-(2**63), 2**63 - 1]), 0)[0].tolist() == [-(2**63), 2**63 - 1]


def test_decimal_values_exact_and_finer_scales_round_half_even():
    values = pa.array(
        [Decimal("1.2345"), Decimal("1.2355"), Decimal("-0.0005"), Decimal("0.0015"), None],
        pa.decimal128(10, 4),
    )
    qty, nulls = to_fixed(values, 3)
    assert qty.tolist() == [1234, 1236, 0, 2, 0]
    assert nulls.tolist() == [False, False, False, False, True]
    coarse = pa.array([Decimal("12.5"), Decimal("-3.1")], pa.decimal128(5, 1))
    assert to_fixed(coarse, 3)[0].tolist() == [12500, -3100]


def test_decimal_overflow_names_the_row():
    values = pa.array([Decimal(1), None, Decimal(10**17)], pa.decimal128(38, 0))
    with pytest.raises(AmountOverflowError) as err:
        to_fixed(values, 3, where="r.arrow")
    assert err.value.where == "r.arrow row 3, column value"
    huge = pa.array([Decimal(0), Decimal(10**30)], pa.decimal128(38, 6))
    with pytest.raises(AmountOverflowError, match="exceeds"):
        to_fixed(huge, 3)


@given(
    st.integers(min_value=0, max_value=6).flatmap(
        lambda d: st.tuples(
            st.just(d), st.integers(min_value=-(2**50) + 1, max_value=2**50 - 1)
        )
    )
)
def test_every_decimal_with_d_decimals_below_2_pow_50_over_10_pow_d_is_exact(case):
    """units / 10^d, written as a decimal with d places and parsed as a float64,
    comes back as exactly `units` — the to_fixed guarantee of docs/semantics.md."""
    decimals, units = case
    text = str(Decimal(units).scaleb(-decimals))
    qty, _ = to_fixed(pa.array([float(text)], pa.float64()), decimals)
    assert qty[0] == units


@given(st.lists(st.decimals(min_value=-(10**9), max_value=10**9, places=5), min_size=1))
def test_decimal128_values_match_python_decimal_half_even(values):
    array = pa.array(values, pa.decimal128(20, 5))
    qty, _ = to_fixed(array, 3)
    expected = [int((v * 1000).quantize(Decimal(1), rounding="ROUND_HALF_EVEN")) for v in values]
    assert qty.tolist() == expected


def test_values_without_nulls_skip_the_mask_copy_and_nulls_read_as_zero():
    values = pa.array([1.0, None, 3.0])
    qty, nulls = to_fixed(values, 3)
    assert qty.tolist() == [1000, 0, 3000]
    assert nulls.tolist() == [False, True, False]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float_values_are_errors(bad):
    values = pa.array([1.0, None, bad])
    with pytest.raises(InputError) as err:
        norm(batch(pa.array(["E-1"] * 3), value=values), where="x.parquet", row_offset=100)
    assert err.value.where == "x.parquet row 103, column value"
    assert "finite" in err.value.message


def test_float_values_beyond_int64_quantities_overflow():
    with pytest.raises(AmountOverflowError) as err:
        to_fixed(pa.array([1.0, 1e17]), 3)
    assert err.value.where == "readings row 2, column value"


def test_empty_batch():
    out = norm(pa.record_batch(
        {"meter_id": pa.array([], pa.string()), "ts": pa.array([], pa.timestamp("ms")),
         "value": pa.array([], pa.float64())}
    ))
    assert len(out) == 0 and out.ts_us.dtype == np.int64 and out.value_qty.dtype == np.int64


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("missing", ["meter_id", "ts", "value"])
def test_missing_column_is_named(missing):
    b = batch(pa.array(["E-1"]))
    b = b.drop_columns([missing])
    with pytest.raises(InputError) as err:
        norm(b, where="day1.parquet")
    assert err.value.where == "day1.parquet"
    assert f"missing column {missing!r}" in err.value.message


@pytest.mark.parametrize(
    ("column", "array", "found"),
    [
        ("meter_id", pa.array([1.5]), "double"),
        ("meter_id", pa.array([True]), "bool"),
        ("ts", pa.array([1], pa.int64()), "int64"),
        ("ts", pa.array(["2025-05-01"]), "string"),
        ("ts", pa.array([dt.date(2025, 5, 1)]), "date32"),
        ("value", pa.array(["1.5"]), "string"),
        ("value", pa.array([2**63], pa.uint64()), "uint64"),
        ("value", pa.array([1], pa.int8()).dictionary_encode(), "dictionary"),
    ],
)
def test_wrong_type_says_what_was_found_and_what_is_accepted(column, array, found):
    b = batch(pa.array(["E-1"]))
    b = b.set_column(b.schema.names.index(column), column, array)
    with pytest.raises(InputError) as err:
        norm(b, where="r.csv")
    assert err.value.where == f"r.csv column {column}"
    assert found in err.value.message and "accepted:" in err.value.message


@pytest.mark.parametrize("column", ["meter_id", "ts"])
def test_null_meter_id_or_ts_names_the_first_bad_row(column):
    if column == "meter_id":
        ids = pa.array(["E-1", "E-1", None, None])
        ts = pa.array([T0_US] * 4, pa.timestamp("us"))
    else:
        ids = pa.array(["E-1"] * 4)
        ts = pa.array([T0_US, None, None, T0_US], pa.timestamp("us"))
    with pytest.raises(InputError) as err:
        norm(batch(ids, ts=ts), where="r.csv", row_offset=1000)
    expected_row = 1003 if column == "meter_id" else 1002
    assert err.value.where == f"r.csv row {expected_row}, column {column}"
    assert "null" in err.value.message


def test_null_meter_id_through_dictionary_entry():
    ids = pa.DictionaryArray.from_arrays(pa.array([0, 1]), pa.array(["E-1", None]))
    with pytest.raises(InputError) as err:
        norm(batch(ids))
    assert err.value.where == "readings row 2, column meter_id"


def test_null_values_are_not_errors():
    out = norm(batch(pa.array(["E-1", "E-2"]), value=pa.array([None, None], pa.float64())))
    assert out.value_null.all() and out.value_qty.tolist() == [0, 0]


# ---------------------------------------------------------------- sources


def readings_table(n=10) -> pa.Table:
    return pa.table(
        {
            "meter_id": pa.array(["E-1", "E-2"] * (n // 2)),
            "ts": pa.array(T0_US + np.arange(n, dtype=np.int64) * 10**6, pa.timestamp("us")),
            "value": pa.array(np.arange(n, dtype=np.float64) / 4),
            "reading_id": pa.array([f"r{i}" for i in range(n)]),
        }
    )


def test_iter_splits_tables_batches_and_readers():
    table = readings_table(10)
    for source in (table, table.to_batches()[0], pa.RecordBatchReader.from_batches(
        table.schema, table.to_batches())):
        batches = list(iter_reading_batches(source, batch_rows=4))
        assert [b.num_rows for b in batches] == [4, 4, 2]
        assert pa.Table.from_batches(batches).equals(table)


def test_iter_iterable_of_batches_labels_each_batch():
    table = readings_table(6)
    items = list(iter_source_batches(iter(table.to_batches(max_chunksize=2)), batch_rows=10))
    assert [(i.where, i.row_offset) for i in items] == [
        ("readings batch 1", 0), ("readings batch 2", 0), ("readings batch 3", 0)
    ]


def write_all_formats(table: pa.Table, folder) -> list:
    paths = []
    pq.write_table(table, folder / "r.parquet", row_group_size=3)
    feather.write_feather(table, folder / "r.feather", chunksize=3)
    with ipc.new_file(folder / "r.arrow", table.schema) as w:
        w.write_table(table, max_chunksize=3)
    with ipc.new_stream(folder / "r.arrows", table.schema) as w:
        w.write_table(table, max_chunksize=3)
    paths = [folder / n for n in ("r.parquet", "r.feather", "r.arrow", "r.arrows")]
    return paths


def test_iter_files_of_every_format(tmp_path):
    table = readings_table(10)
    for path in write_all_formats(table, tmp_path):
        items = list(iter_source_batches(path, batch_rows=4))
        assert all(i.where == str(path) for i in items)
        offsets = [i.row_offset for i in items]
        assert offsets == sorted(offsets) and offsets[0] == 0
        assert all(i.batch.num_rows <= 4 for i in items)
        got = pa.Table.from_batches([i.batch for i in items])
        assert got.equals(table), path
        assert count_readings(path) in (10, None)
    assert count_readings(tmp_path / "r.parquet") == 10
    assert count_readings(tmp_path / "r.arrow") == 10
    assert count_readings([tmp_path / "r.arrow", tmp_path / "r.parquet"]) == 20
    assert count_readings(tmp_path / "r.arrows") is None


def test_several_files_in_order(tmp_path):
    table = readings_table(4)
    paths = write_all_formats(table, tmp_path)
    items = list(iter_source_batches([str(paths[0]), paths[3]], batch_rows=100))
    assert [i.where for i in items] == [str(paths[0])] + [str(paths[3])] * 2
    assert [i.row_offset for i in items] == [0, 0, 3]
    assert sum(i.batch.num_rows for i in items) == 8


CSV = """meter_id,ts,value,reading_id
007,2025-05-01T00:00:00,1.5,a
E-2,2025-05-01T05:30:00+05:30,2,b
E-1,2025-05-01 00:15:00Z,,c
E-1,2025-05-01 00:30:00.0000015,12,d
"""


def test_csv_meter_ids_stay_text_ts_parsed_values_typed(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(CSV)
    (item,) = iter_source_batches(path)
    b = item.batch
    assert b.column(0).to_pylist() == ["007", "E-2", "E-1", "E-1"]
    assert b.column(1).type == pa.timestamp("ns", tz="UTC")
    out = norm(b)
    base = 1_746_057_600_000_000
    assert out.ts_us.tolist() == [base, base, base + 900 * 10**6, base + 1800 * 10**6 + 1]
    assert out.value_qty.tolist() == [1500, 2000, 0, 12000]
    assert out.value_null.tolist() == [False, False, True, False]
    assert out.meter_index.tolist() == [-1, 1, 0, 0]


def test_csv_value_types_may_change_between_batches(tmp_path):
    lines = ["meter_id,ts,value"] + [f"E-1,2025-05-01T00:{i:02d}:00,{i}" for i in range(50)]
    lines.append("E-1,2025-05-01T01:00:00,50.25")
    path = tmp_path / "r.csv"
    path.write_text("\n".join(lines) + "\n")
    items = list(iter_source_batches(path, batch_rows=1))  # small blocks
    qty = np.concatenate([norm(i.batch, where=i.where, row_offset=i.row_offset).value_qty
                          for i in items])
    assert qty.tolist() == [i * 1000 for i in range(50)] + [50250]


def test_csv_bad_timestamp_names_the_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("meter_id,ts,value\nE-1,2025-05-01T00:00:00,1\nE-1,yesterday,2\n")
    with pytest.raises(InputError) as err:
        list(iter_reading_batches(path))
    assert err.value.where == f"{path} row 2, column ts"
    assert "yesterday" in err.value.message


def test_csv_bad_value_names_the_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("meter_id,ts,value\nE-1,2025-05-01T00:00:00,1\nE-1,2025-05-01T00:15:00,1,5\n")
    with pytest.raises(InputError) as err:
        list(iter_reading_batches(path))
    assert err.value.where == str(path)  # too many fields: the CSV parser's own message
    path.write_text("meter_id,ts,value\nE-1,2025-05-01T00:00:00,1\nE-1,2025-05-01T00:15:00,abc\n")
    with pytest.raises(InputError) as err:
        list(iter_reading_batches(path))
    assert err.value.where == f"{path} row 2, column value"


@pytest.mark.parametrize("ts", ["2262-04-12T00:00:00", "1677-09-20T00:00:00Z", "10000-01-01T00:00:00",
                                "0000-03-01T00:00:00", "0001-01-01T00:00:00+05:30"])
def test_csv_timestamps_outside_the_nanosecond_range_are_named_out_of_range(tmp_path, ts):
    path = tmp_path / "r.csv"
    path.write_text(f"meter_id,ts,value\nE-1,2025-05-01T00:00:00,1\nE-1,{ts},2\n")
    with pytest.raises(InputError) as err:
        list(iter_reading_batches(path))
    assert err.value.where == f"{path} row 2, column ts"
    assert err.value.message.startswith(f"timestamp {ts!r} is out of range: CSV timestamps must lie between "
                                        "1677-09-21")
    assert err.value.details == {"file": str(path), "row": "2", "column": "ts"}


@pytest.mark.parametrize("value", ["0x10", "0X1F", "0xffffffffffffffff"])
def test_csv_hexadecimal_values_are_not_numbers(tmp_path, value):
    path = tmp_path / "r.csv"
    path.write_text(f"meter_id,ts,value\nE-1,2025-05-01T00:00:00,1\nE-1,2025-05-01T00:15:00,{value}\n")
    with pytest.raises(InputError) as err:
        list(iter_reading_batches(path))
    assert (err.value.where, err.value.message) == (f"{path} row 2, column value", f"not a number: {value!r}")


def test_a_column_given_twice_is_refused_in_any_source(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("meter_id,ts,value,value\nE-1,2025-05-01T00:00:00,1,5\n")
    with pytest.raises(InputError, match="column 'value' appears 2 times"):
        [norm(i.batch, where=i.where) for i in iter_source_batches(path)]
    arrow = pa.Table.from_arrays([pa.array(["E-1"]), pa.array([0], pa.timestamp("us")), pa.array([1.0]),
                                  pa.array([5.0])], names=["meter_id", "ts", "value", "value"])
    with pytest.raises(InputError, match="column 'value' appears 2 times"):
        norm(arrow)


def test_non_utf8_bytes_in_a_csv_header_or_cell_name_where(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"meter_id,ts,value,note\xff\nE-1,2025-05-01T00:00:00,1,x\n")
    with pytest.raises(InputError) as err:
        list(iter_reading_batches(path))
    assert (err.value.where, err.value.message) == (
        str(path), "not UTF-8 text: byte 0xff at line 1, column 23; save the file as UTF-8")
    path.write_bytes(b"meter_id,ts,value\nE-1,2025-05-01T00:00:00,1\nE-\xff,2025-05-01T00:15:00,2\n")
    with pytest.raises(InputError) as err:
        list(iter_reading_batches(path))
    assert err.value.where == f"{path} row 2, column meter_id"


def test_csv_missing_column_and_null_rows(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("meter_id,value\nE-1,1\n")
    (item,) = iter_source_batches(path)
    with pytest.raises(InputError, match="missing column 'ts'"):
        norm(item.batch, where=item.where)
    path.write_text("meter_id,ts,value\nE-1,2025-05-01T00:00:00,1\n,2025-05-01T00:15:00,2\n")
    (item,) = iter_source_batches(path)
    with pytest.raises(InputError) as err:
        norm(item.batch, where=item.where, row_offset=item.row_offset)
    assert err.value.where == f"{path} row 2, column meter_id"


def test_parse_timestamps_mixed_zones():
    out = parse_timestamps(pa.array(["2025-05-01T05:30:00+05:30", "2025-05-01T00:00:00", None]))
    assert out.to_pylist()[:2] == [dt.datetime(2025, 5, 1, tzinfo=dt.timezone.utc)] * 2
    assert out.null_count == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [("r.txt", "unknown file type"), ("missing.parquet", "file not found"), ("r", "unknown")],
)
def test_bad_paths(tmp_path, name, message):
    path = tmp_path / name
    if name != "missing.parquet":
        path.write_text("x")
    with pytest.raises(InputError) as err:
        list(iter_reading_batches(path))
    assert message in err.value.message and err.value.where == str(path)


def test_corrupt_file_is_an_input_error(tmp_path):
    path = tmp_path / "r.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(InputError) as err:
        list(iter_reading_batches(path))
    assert err.value.where == str(path) and "cannot read parquet file" in err.value.message


def test_unsupported_sources():
    with pytest.raises(InputError, match="cannot read readings from a int"):
        list(iter_reading_batches(42))
    with pytest.raises(InputError, match="item 2 is a dict"):
        list(iter_reading_batches([readings_table(2), {"a": 1}]))


def test_source_name():
    assert source_name("a.csv") == "a.csv"
    assert source_name(["a.csv"]) == "a.csv"
    assert source_name(readings_table(2)) == "readings"


def test_meter_indexes_is_usable_alone():
    assert meter_indexes(pa.array(["W-1"]), STR_REG).tolist() == [2]


def test_ten_million_readings_normalise_quickly():
    """A coarse guard (the real figure is ~0.1 s; see README): int64 ids,
    µs timestamps, float64 values."""
    import time

    n = 2_000_000
    reg = registry(list(range(20_000)))
    b = pa.record_batch(
        {
            "meter_id": pa.array(np.arange(n, dtype=np.int64) % 20_011),
            "ts": pa.array(np.arange(n, dtype=np.int64), pa.timestamp("us")),
            "value": pa.array(np.arange(n, dtype=np.float64) / 8),
        }
    )
    start = time.perf_counter()
    out = norm(b, reg)
    elapsed = time.perf_counter() - start
    assert out.value_qty[-1] == (n - 1) * 125
    assert elapsed < 1.0


def test_parse_timestamps_accepts_iso_variants_mixed_in_one_batch():
    text = pa.array(["2025-05-01 00:15", "2025-05-01", "2025-05-01T01:00:00+0530",
                     "2025-05-01T01:00:00.5Z", "2025-05-01T01:00-04:00"])
    utc = dt.timezone.utc
    assert parse_timestamps(text).to_pylist() == [
        dt.datetime(2025, 5, 1, 0, 15, tzinfo=utc),
        dt.datetime(2025, 5, 1, tzinfo=utc),
        dt.datetime(2025, 4, 30, 19, 30, tzinfo=utc),
        dt.datetime(2025, 5, 1, 1, 0, 0, 500000, tzinfo=utc),
        dt.datetime(2025, 5, 1, 5, tzinfo=utc),
    ]


def test_csv_with_byte_order_mark_crlf_and_no_rows(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xef\xbb\xbfmeter_id,ts,value\r\n007,2025-05-01T00:00:00,1\r\n")
    (item,) = iter_source_batches(path)
    assert item.batch.column(0).to_pylist() == ["007"]  # text, not 7
    assert item.batch.column(2).type == pa.int64()
    path.write_text("meter_id,ts,value\n")
    assert list(iter_reading_batches(path)) == []


def test_meter_indexes_of_null_ids_are_minus_one():
    assert meter_indexes(pa.array([None, 101, None], pa.int64()), INT_REG).tolist() == [-1, 0, -1]
    assert meter_indexes(pa.array(["E-2", None]), STR_REG).tolist() == [1, -1]
    ids = pa.DictionaryArray.from_arrays(pa.array([0, None, 1]), pa.array(["W-1", None]))
    assert meter_indexes(ids, STR_REG).tolist() == [2, -1, -1]


# ---------------------------------------------------------------- structurally invalid Arrow


def raw_dictionary(indices: list[int]) -> pa.DictionaryArray:
    """Dictionary-encoded ids with indices as given, unchecked (as a writer may produce them)."""
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(["E-1", "E-2"]),
                                          safe=False)


@pytest.mark.parametrize("bad_index", [-1, 2, 2**31 - 1])
def test_dictionary_index_outside_the_dictionary_names_batch_and_column(bad_index):
    with pytest.raises(InputError) as err:
        norm(batch(raw_dictionary([0, 1, bad_index])), where="r.arrow", row_offset=4)
    assert err.value.where == "r.arrow rows 5-7, column meter_id"
    assert "out of bounds" in err.value.message


@pytest.mark.parametrize("name", ["r.arrow", "r.arrows"])
@pytest.mark.parametrize("bad_index", [-1, 5])
def test_ipc_files_with_a_bad_dictionary_index_are_input_errors(tmp_path, name, bad_index):
    table = pa.table({"meter_id": raw_dictionary([0, 1, bad_index, 0]),
                      "ts": pa.array(T0_US + np.arange(4) * 10**9, pa.timestamp("us")),
                      "value": pa.array([1.0, 2.0, 3.0, 4.0])})
    path = tmp_path / name
    writer = ipc.new_file if name == "r.arrow" else ipc.new_stream
    with writer(path, table.schema) as w:
        w.write_table(table)
    (item,) = iter_source_batches(path)
    with pytest.raises(InputError) as err:
        norm(item.batch, where=item.where, row_offset=item.row_offset)
    assert err.value.where == f"{path} rows 1-4, column meter_id"


def test_ipc_stream_cut_at_a_message_boundary_is_truncated_not_shorter(tmp_path):
    table = readings_table(10)
    path = tmp_path / "r.arrows"
    with ipc.new_stream(path, table.schema) as w:
        w.write_table(table, max_chunksize=5)
    whole = path.read_bytes()
    assert len(list(iter_reading_batches(path))) == 2
    for cut in range(len(whole) - 1, -1, -1):  # every cut, message boundaries included
        path.write_bytes(whole[:cut])
        with pytest.raises(InputError) as err:
            list(iter_reading_batches(path))
        assert err.value.where == str(path), cut


@pytest.mark.parametrize("name", ["r.arrow", "r.parquet"])
def test_ipc_and_parquet_files_cut_anywhere_are_input_errors(tmp_path, name):
    (path,) = [p for p in write_all_formats(readings_table(10), tmp_path) if p.name == name]
    whole = path.read_bytes()
    for cut in range(0, len(whole), 7):
        path.write_bytes(whole[:cut])
        with pytest.raises(InputError) as err:
            list(iter_reading_batches(path))
        assert err.value.where == str(path), cut


def test_column_name_that_is_not_utf8_is_an_input_error(tmp_path):
    table = readings_table(2).rename_columns(["meter_id", "ts", "value", "reading_\xe9"])
    path = tmp_path / "r.arrow"
    with ipc.new_file(path, table.schema) as w:
        w.write_table(table)
    data = path.read_bytes()
    path.write_bytes(data.replace("reading_\xe9".encode(), b"reading_\xff\xfe"))
    (item,) = iter_source_batches(path)
    with pytest.raises(InputError) as err:
        norm(item.batch, where=item.where)
    assert err.value.where.startswith(str(path)) and "invalid Arrow data" in err.value.message


def test_api_bytes_get_the_same_check_as_files():
    from rating.prepaid.errors import InvalidArgument
    from rating.server.arrow_io import read_ipc

    table = pa.table({"meter_id": raw_dictionary([0, -1])})
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    with pytest.raises(InvalidArgument) as err:
        read_ipc(sink.getvalue().to_pybytes())
    assert "column meter_id" in err.value.message and "out of bounds" in err.value.message
    assert err.value.metadata == {"field": "readings", "column": "meter_id"}
    assert err.value.reason == "BAD_ARROW"


def test_csv_placeholders_and_blanks_are_null_in_every_column(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('meter_id,ts,value\nE-1,2025-05-01T00:00:00Z,#N/A\nE-2,2025-05-01T00:15:00Z,"NA"\n'
                    "E-1,2025-05-01T00:30:00Z,\nNULL,2025-05-01T00:45:00Z,1.5\nE-1,n/a,2\n")
    (item,) = iter_source_batches(path)
    assert item.batch.column("value").to_pylist() == [None, None, None, 1.5, 2.0]
    assert item.batch.column("meter_id").to_pylist() == ["E-1", "E-2", "E-1", None, "E-1"]
    assert item.batch.column("ts").null_count == 1
    with pytest.raises(InputError) as err:
        norm(item.batch, where=str(path))
    assert err.value.where == f"{path} row 4, column meter_id"
