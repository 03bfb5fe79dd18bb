"""The user's path: `rating.engine.rate()` on a readings file, as `rating rate`
runs it, beside pyarrow merely decoding the same file in the same run.

A site folder (site.toml, tariffs.toml, meters.csv, accounts.csv) is loaded
with `rating.config.loader.load_config`, as the CLI loads it: meter ids are
integer-looking text in meters.csv ("1000000", "1000001", ...). The same
readings are written as Parquet with string, dictionary and int64 meter ids,
as CSV (ISO 8601 times, decimal values) and as an Arrow IPC file. The
decode-only peer reads each file with the reader and the batch size
`rate()` uses (CSV typed by pyarrow: text ids, timestamps, float64 values)
and keeps nothing: the ratio decode time / rate time is the share of
pyarrow's own pace that the whole rating keeps.

    .venv/bin/python -m bench.bench_files --readings 5000000   # one pass, printed
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from bench.bench_rating import Scenario
from bench.bench_rating import energy_total_minor as energy_total_minor_of
from bench.measure import Impl
from bench.workloads import Readings, bench_config, register_readings
from rating.config.loader import Config, load_config
from rating.engine import rate
from rating.readings.sources import BATCH_ROWS_DEFAULT

METER_ID_BASE = 1_000_000  # meter ids are 1000000, 1000001, ...: integer-looking text in meters.csv
FORMATS = ("parquet_string", "parquet_dictionary", "parquet_int64", "csv", "arrow_ipc")
SUFFIXES = {"parquet_string": "parquet", "parquet_dictionary": "parquet", "parquet_int64": "parquet",
            "csv": "csv", "arrow_ipc": "arrow"}
LABELS = {
    "parquet_string": "Parquet, string meter ids",
    "parquet_dictionary": "Parquet, dictionary meter ids",
    "parquet_int64": "Parquet, int64 meter ids",
    "csv": "CSV",
    "arrow_ipc": "Arrow IPC file, string meter ids",
}
RATE = "rate_cli"
DECODE = "pyarrow_decode"
ROW_GROUP_ROWS = BATCH_ROWS_DEFAULT

SITE_TOML = """\
[site]
name = "bench"
currency = "INR"
time_zone = "Asia/Kolkata"

[files]
tariffs = ["tariffs.toml"]
meters = "meters.csv"
accounts = "accounts.csv"
"""
TARIFFS_TOML = """\
[[tariff]]
id = "DOM"
name = "domestic"
unit = "kWh"
effective_from = 2020-01-01

[tariff.energy]
mode = "graduated"
slabs = [
    { upto = 100, price = 3.05 },
    { upto = 200, price = 5.05 },
    { upto = 300, price = 7.05 },
    { price = 9.05 },
]
"""


def write_site(folder: Path, meters: int) -> Path:
    """The site folder of `meters` register meters, two per account; its site.toml."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.toml").write_text(SITE_TOML)
    (folder / "tariffs.toml").write_text(TARIFFS_TOML)
    index = np.arange(meters, dtype=np.int64)
    accounts = pa.array(np.char.add("A", (index // 2).astype(str)))
    pacsv.write_csv(pa.table({"meter_id": pa.array((index + METER_ID_BASE).astype(str)),
                              "account_id": accounts,
                              "tariff_id": pa.array(["DOM"] * meters)}), folder / "meters.csv")
    pacsv.write_csv(pa.table({"account_id": accounts.unique()}), folder / "accounts.csv")
    return folder / "site.toml"


def readings_table(readings: Readings, meter_ids: str) -> pa.Table:
    """The readings with meter ids as "string", "dictionary" or "int64"."""
    ids = readings.meter_index.astype(np.int64) + METER_ID_BASE
    if meter_ids == "int64":
        column = pa.array(ids)
    else:
        column = pa.array(ids.astype(str))
        if meter_ids == "dictionary":
            column = column.dictionary_encode()
    return pa.table({
        "meter_id": column,
        "ts": pa.array(readings.ts_us, pa.timestamp("us", tz="UTC")),
        "value": pa.array(readings.value_qty.astype(np.float64) / 1000),
    })


def write_files(folder: Path, readings: Readings, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """The readings written in each format; {format: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in formats:
        path = folder / f"readings_{name}.{SUFFIXES[name]}"
        kind = name.removeprefix("parquet_") if name.startswith("parquet_") else "string"
        table = readings_table(readings, kind)
        if name.startswith("parquet_"):
            pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS)
        elif name == "csv":
            pacsv.write_csv(table, path)
        else:
            with ipc.new_file(path, table.schema) as writer:
                writer.write_table(table, max_chunksize=BATCH_ROWS_DEFAULT)
        paths[name] = path
        del table
    return paths


def decode_only(path: Path) -> Callable[[], int]:
    """pyarrow reading the whole file batch by batch, typed, keeping nothing."""
    suffix = path.suffix

    def run() -> int:
        rows = 0
        if suffix == ".parquet":
            for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS_DEFAULT):
                rows += batch.num_rows
        elif suffix == ".csv":
            convert = pacsv.ConvertOptions(column_types={
                "meter_id": pa.string(), "ts": pa.timestamp("ns", tz="UTC"), "value": pa.float64()})
            block = pacsv.ReadOptions(block_size=BATCH_ROWS_DEFAULT * 48)
            for batch in pacsv.open_csv(path, read_options=block, convert_options=convert):
                rows += batch.num_rows
        else:
            with pa.memory_map(str(path)) as handle:
                reader = ipc.open_file(handle)
                for i in range(reader.num_record_batches):
                    batch = reader.get_batch(i)
                    rows += batch.num_rows
                    # touch the columns as rating does: an IPC file maps, it does not decode
                    for column in batch.columns:
                        column.validate(full=True)
        return rows

    return run


def rate_file(path: Path, config: Config) -> Callable[[], object]:
    """`rate()` on the file: what `rating rate --site ... FILE` runs."""
    return lambda: rate(path, config=config)


def energy_total_minor(result) -> int:
    """The charges' total in minor units (the check that every format agrees)."""
    return energy_total_minor_of(result.charges)


def files_scenario(run, readings_count: int, meters: int) -> dict:
    """The suite's `files` scenario (bench/suite.py): one point per format,
    `rate()` beside decoding only; every format's charges must agree."""
    readings = register_readings(meters, max(1, readings_count // meters), grouped=False)
    # the kernel on the same readings as arrays: every file's charges must sum to its total
    want = energy_total_minor_of(Scenario(bench_config(meters), readings).kernel())
    with tempfile.TemporaryDirectory(prefix="rating-bench-files-") as folder:
        config = load_config(write_site(Path(folder) / "site", meters))
        paths = write_files(Path(folder), readings)
        n = len(readings)
        del readings
        points = []
        for name, path in paths.items():
            impls = {RATE: Impl(rate_file(path, config), n), DECODE: Impl(decode_only(path), n)}
            point = run.measure("files", LABELS[name], impls, unit="readings/s", skipped={},
                                summaries={RATE: energy_total_minor},
                                expected={RATE: want})
            figures = point["figures"]
            figures[RATE]["ratio_to_decode"] = figures[RATE]["median"] / figures[DECODE]["median"]
            point["x"] = LABELS[name]
            point["params"] = {"readings": n, "meters": meters, "format": name,
                               "file_bytes": path.stat().st_size}
            points.append(point)
    return {
        "title": "From files: what `rating rate` achieves",
        "description": f"`rating.engine.rate()` on a {n:,}-reading file ({meters:,} register meters "
                       "read every 15 minutes, time order, 4-slab tariff, registry from meters.csv "
                       "through load_config), the CLI's path from file to charges table, beside "
                       "pyarrow decoding the same file with the same reader and threads and keeping "
                       "nothing; the ratio is decode time / rate time (bench/bench_files.py).",
        "x": {"name": "file", "unit": "", "scale": "category"},
        "item_unit": "readings",
        "points": points,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=5_000_000)
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/rating-bench-files"))
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args(argv)
    formats = tuple(args.formats.split(","))
    readings = register_readings(args.meters, max(1, args.readings // args.meters), grouped=False)
    config = load_config(write_site(args.folder / "site", args.meters))
    paths = write_files(args.folder, readings, formats)
    n = len(readings)
    print(f"{n:,} register readings, {args.meters:,} meters; medians of {args.repeats}")
    for name in formats:
        runs: dict[str, list[float]] = {"rate": [], "decode": []}
        impls = {"rate": rate_file(paths[name], config), "decode": decode_only(paths[name])}
        for _ in range(args.repeats):
            for key, run in impls.items():
                start = time.perf_counter()
                run()
                runs[key].append(time.perf_counter() - start)
        rate_s, decode_s = statistics.median(runs["rate"]), statistics.median(runs["decode"])
        print(f"{LABELS[name]:<34} rate {rate_s:6.3f} s ({n / rate_s / 1e6:5.1f}M/s)  "
              f"decode {decode_s:6.3f} s ({n / decode_s / 1e6:5.1f}M/s)  ratio {decode_s / rate_s:.2f}")


if __name__ == "__main__":
    main()
