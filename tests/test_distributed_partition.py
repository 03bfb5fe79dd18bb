"""Partitioning readings by account shard, and the changes of a re-rating: no cluster needed."""

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating.cli.demo import generate_demo
from rating.config.loader import load_config
from rating.distributed import partition_readings
from rating.distributed.changes import aligned, charge_changes
from rating.distributed.layout import bucket_files
from rating.errors import InputError
from rating.prepaid.store.shards import shard_of


@pytest.fixture(scope="module")
def society(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("society"), towers=1, floors=2, flats_per_floor=2)


@pytest.fixture(scope="module")
def config(society):
    return load_config(society.site_file)


def test_every_reading_lands_once_in_its_accounts_shard_in_input_order(society, config, tmp_path):
    summary = partition_readings(society.readings_file, config=config, out=tmp_path / "ds", batch_rows=777)
    source = pq.read_table(society.readings_file)
    account = {str(m.meter_id): m.account_id for m in config.registry.meters}
    seen = []
    for bucket, rows in summary.buckets.items():
        table = pa.concat_tables(pq.read_table(f) for f in bucket_files(tmp_path / "ds", bucket))
        assert table.num_rows == rows
        positions = table.column("reading_row").to_pylist()
        assert positions == sorted(positions)  # input order within the bucket
        for meter in set(table.column("meter_id").to_pylist()):
            expected = "unknown" if meter not in account else f"{shard_of(account[meter]):02d}"
            assert bucket == expected, meter
        original = source.take(pa.array(positions))
        assert table.column("meter_id").to_pylist() == original.column("meter_id").to_pylist()
        seen += positions
    assert sorted(seen) == list(range(source.num_rows)) and summary.readings == source.num_rows
    manifest = json.loads((tmp_path / "ds" / "_partition.json").read_text())
    assert manifest["sources"] == [[str(society.readings_file), source.num_rows]]


def test_meter_ids_of_another_type_are_unknown_and_kept_as_rate_reports_them(config, tmp_path):
    readings = pa.table({"meter_id": pa.array([7, 8], pa.int64()),
                         "ts": pa.array([dt.datetime(2025, 5, 1, tzinfo=dt.timezone.utc)] * 2),
                         "value": pa.array([1.5, 2.0])})
    summary = partition_readings(readings, config=config, out=tmp_path / "ds")
    assert summary.buckets == {"unknown": 2}
    (part,) = bucket_files(tmp_path / "ds", "unknown")
    table = pq.read_table(part)
    assert table.column("meter_id").to_pylist() == ["7", "8"]  # rate()'s anomalies cast them so
    assert table.column("value").to_pylist() == [Decimal("1.500"), Decimal("2.000")]


def test_a_folder_in_the_way_or_a_bad_reading_leaves_nothing(society, config, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InputError, match="already exists"):
        partition_readings(society.readings_file, config=config, out=tmp_path / "full")
    bad = pa.table({"meter_id": ["E-A-0101", "E-A-0101"],
                    "ts": pa.array([dt.datetime(2025, 5, 1, tzinfo=dt.timezone.utc), None]),
                    "value": [1.0, 2.0]})
    with pytest.raises(InputError, match="row 2"):
        partition_readings([society.readings_file, bad], config=config, out=tmp_path / "ds")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def _lines(amounts: list[tuple[str, str]]) -> pa.Table:
    return pa.table({"account_id": [a for a, _ in amounts], "quantity": pa.array([None] * len(amounts),
                     pa.decimal128(38, 3)), "amount": pa.array([Decimal(x) for _, x in amounts],
                                                              pa.decimal128(38, 2))})


def test_changes_match_lines_as_a_multiset():
    before = _lines([("A", "10.00"), ("A", "10.00"), ("B", "5.00")])
    now = _lines([("A", "10.00"), ("B", "6.00"), ("C", "1.00")])
    changes = charge_changes(before, now)
    assert changes.select(["account_id", "amount", "change"]).to_pylist() == [
        {"account_id": "A", "amount": Decimal("-10.00"), "change": "reversal"},
        {"account_id": "B", "amount": Decimal("-5.00"), "change": "reversal"},
        {"account_id": "B", "amount": Decimal("6.00"), "change": "replacement"},
        {"account_id": "C", "amount": Decimal("1.00"), "change": "replacement"},
    ]
    assert charge_changes(now, now).num_rows == 0


def test_previous_charges_with_columns_rating_does_not_write_are_refused():
    previous = _lines([("A", "1.00")]).append_column("note", pa.array(["x"]))
    with pytest.raises(InputError, match="note"):
        aligned(previous, _lines([]).schema, "old.parquet")
