"""A billion readings from one Parquet file through `rating rate`, by hand
(not in CI, not in `rating bench`: minutes of disk and CPU).

100,000 register meters read every 15 minutes for 10,000 slots (104 days)
in time order, meters shuffled within each slot, written slot group by
slot group (memory stays bounded while writing). `rating rate` then runs
in a child process exactly as a user types it, and its peak resident
memory (the child's ru_maxrss) is reported beside the wall time. The
file is written only when the disk has room for it and a margin; else
the run stops before writing anything.

    .venv/bin/python -m bench.bench_billion                        # 10^9 readings
    .venv/bin/python -m bench.bench_billion --readings 100000000   # 10^8: a few minutes
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.bench_files import METER_ID_BASE, write_site
from bench.workloads import READ_INTERVAL_US, START_US

METERS_DEFAULT = 100_000
READINGS_DEFAULT = 10**9
FILE_BYTES_PER_READING = 12  # int64 ids, timestamps, float64 values after Parquet's encodings (measured ~9)
DISK_MARGIN_BYTES = 2 * 2**30
PEAK_TARGET_BYTES = 2 * 2**30  # issue 11: a billion readings rated in under 2 GiB
SLOTS_PER_GROUP = 10  # one row group: 10 slots of every meter (10^6 rows at 10^5 meters)


class DiskShort(Exception):
    pass


def check_disk(folder: Path, readings: int) -> int:
    """The bytes the file needs; DiskShort when the disk lacks them and a margin."""
    need = readings * FILE_BYTES_PER_READING
    free = shutil.disk_usage(folder).free
    if free < need + DISK_MARGIN_BYTES:
        raise DiskShort(f"{folder}: {free / 2**30:.1f} GiB free, the file needs ~{need / 2**30:.1f} GiB "
                        f"and {DISK_MARGIN_BYTES / 2**30:.0f} GiB to spare")
    return need


def write_readings(path: Path, meters: int, slots: int, seed: int = 11) -> int:
    """Cumulative registers of `meters` meters over `slots` 15-minute slots,
    time order; the rows written."""
    rng = np.random.default_rng(seed)
    registers = rng.integers(0, 10**8, size=meters, dtype=np.int64)
    schema = pa.schema([("meter_id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC")),
                        ("value", pa.float64())])
    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for first in range(0, slots, SLOTS_PER_GROUP):
            count = min(SLOTS_PER_GROUP, slots - first)
            use = rng.integers(0, 2000, size=(count, meters), dtype=np.int64)
            values = registers + np.cumsum(use, axis=0)
            registers = values[-1]
            order = np.argsort(rng.random((count, meters)), axis=1)
            ts = START_US + (first + np.arange(count, dtype=np.int64)) * READ_INTERVAL_US
            writer.write_table(pa.table({
                "meter_id": pa.array(order.reshape(-1) + METER_ID_BASE),
                "ts": pa.array(np.repeat(ts, meters), pa.timestamp("us", tz="UTC")),
                "value": pa.array(np.take_along_axis(values, order, axis=1).reshape(-1) / 1000),
            }, schema=schema))
            rows += count * meters
    return rows


def rate_in_child(site: Path, readings: Path, out: Path) -> tuple[float, int]:
    """`rating rate` as a user runs it: wall seconds and the child's peak RSS in bytes."""
    command = [sys.executable, "-m", "rating", "rate", "--site", str(site), str(readings),
               "--out", str(out), "--no-summary"]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    return seconds, peak_kib * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=READINGS_DEFAULT)
    parser.add_argument("--meters", type=int, default=METERS_DEFAULT)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/rating-bench-billion"))
    parser.add_argument("--keep", action="store_true", help="keep the readings file afterwards")
    args = parser.parse_args(argv)
    slots = max(1, args.readings // args.meters)
    args.folder.mkdir(parents=True, exist_ok=True)
    try:
        need = check_disk(args.folder, slots * args.meters)
    except DiskShort as exc:
        print(f"skipped: {exc}")
        return 0
    site = write_site(args.folder / "site", args.meters)
    path = args.folder / "readings.parquet"
    print(f"writing {slots * args.meters:,} readings ({args.meters:,} meters x {slots:,} slots, "
          f"~{need / 2**30:.1f} GiB) to {path}", flush=True)
    start = time.perf_counter()
    rows = write_readings(path, args.meters, slots)
    size_gib = path.stat().st_size / 2**30
    print(f"written in {time.perf_counter() - start:.0f} s: {size_gib:.2f} GiB", flush=True)
    try:
        seconds, peak = rate_in_child(site, path, args.folder / "out")
    finally:
        if not args.keep:
            path.unlink()
    verdict = "met" if peak < PEAK_TARGET_BYTES else "missed"
    print(f"rating rate: {rows:,} readings in {seconds:.1f} s ({rows / seconds / 1e6:.1f}M readings/s), "
          f"peak RSS {peak / 2**30:.2f} GiB (target < {PEAK_TARGET_BYTES / 2**30:.0f} GiB: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
