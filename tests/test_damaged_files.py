"""Damaged readings files: every flipped bit of a real Arrow IPC file, stream
or Parquet file ends in a correct rating of what the file now says, or in a
RatingError naming the file; never another exception, never a crash."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal as D

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from rating.config.loader import Config
from rating.engine import rate
from rating.errors import RatingError
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Site
from rating.model.tariff import Slab, SlabSet, Tariff, TariffVersion

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
FLIPS = 250  # per format; ~2 ms each
TARIFF = Tariff("E", "energy", (TariffVersion(
    "E", dt.date(2025, 1, 1), fixed_charge=D(50),
    energy=SlabSet("graduated", "period", (Slab(D(100), D(5)), Slab(None, D(7))))),))
CONFIG = Config(
    site=Site(time_zone="Asia/Kolkata"),
    registry=Registry([Meter("E-1", "A-1", "E", register_digits=6), Meter("E-2", "A-2", "E"),
                       Meter("W-1", "A-1", "E", mode="interval", interval_minutes=60)],
                      [Account("A-1"), Account("A-2")]),
    tariffs={"E": TARIFF},
)


def readings() -> pa.Table:
    n = 48
    ids = pa.array(["E-1", "E-2", "W-1"] * (n // 3)).dictionary_encode()
    start_us = int(dt.datetime(2025, 5, 1, tzinfo=dt.timezone.utc).timestamp()) * 10**6
    ts = start_us + np.repeat(np.arange(n // 3, dtype=np.int64), 3) * 6 * 3600 * 10**6
    values = 100.0 + np.arange(n, dtype=np.float64) * 1.5
    return pa.table({"meter_id": ids, "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                     "value": pa.array(values)})


def write(table: pa.Table, path) -> bytes:
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        writer = ipc.new_file if path.suffix == ".arrow" else ipc.new_stream
        with writer(path, table.schema) as w:
            w.write_table(table, max_chunksize=20)
    return path.read_bytes()


def rebuilt(path) -> pa.Table:
    """The file's readings copied through Python values (and raw timestamps):
    a table that is valid by construction, whatever the file held."""
    table = pq.read_table(path) if path.suffix == ".parquet" else (
        ipc.open_file(path) if path.suffix == ".arrow" else ipc.open_stream(path)).read_all()
    ts = table.column("ts").combine_chunks()
    return pa.table({
        "meter_id": pa.array(table.column("meter_id").to_pylist()),
        "ts": pa.array(ts.cast(pa.int64()).to_numpy(zero_copy_only=False), ts.type),
        "value": pa.array(table.column("value").to_pylist(), table.column("value").type),
    })


def test_the_undamaged_file_rates_as_its_table(tmp_path):
    for suffix in (".arrow", ".arrows", ".parquet"):
        path = tmp_path / f"r{suffix}"
        write(readings(), path)
        assert rate(str(path), config=CONFIG, now=NOW).charges.equals(
            rate(readings(), config=CONFIG, now=NOW).charges)


@pytest.mark.parametrize("suffix", [".arrow", ".arrows", ".parquet"])
def test_every_flipped_bit_is_a_correct_rating_or_a_rating_error_naming_the_file(tmp_path, suffix):
    path = tmp_path / f"r{suffix}"
    whole = write(readings(), path)
    rng = random.Random(f"flips{suffix}")
    outcomes = {"rated": 0, "refused": 0}
    for _ in range(FLIPS):
        damaged = bytearray(whole)
        bit = rng.randrange(len(damaged) * 8)
        damaged[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(damaged)
        try:
            result = rate(str(path), config=CONFIG, now=NOW)
        except RatingError as exc:
            assert str(path) in str(exc), (bit, exc)
            outcomes["refused"] += 1
            continue
        clean = rate(rebuilt(path), config=CONFIG, now=NOW)
        assert result.charges.equals(clean.charges), bit
        assert result.anomalies.equals(clean.anomalies), bit
        outcomes["rated"] += 1
    assert outcomes["rated"] and outcomes["refused"], outcomes  # both kinds of damage were met
