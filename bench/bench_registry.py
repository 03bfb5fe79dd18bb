"""Loading a meter and account registry, as `rating rate` loads it, beside
pyarrow merely reading the same files in the same run.

The registry has `--meters` meters (two per account) with the columns a
utility's export carries (meter_id, account_id, tariff_id, mode,
multiplier, unit) and accounts with a name, an area, a billing cycle and
the billing columns (tenant, bill_to, address, email). It is written as
Parquet and as CSV. For each format the runs alternate: pyarrow reading
both files (`pq.read_table`, `pacsv.read_csv`: the ceiling), then
`load_registry` (the same reads, every column typed and checked, the ids
unique, every meter's account known) followed by the first `columns(site)`
and the meter-id index the first batch of readings builds. Figures are
medians; the ratio is load / read.

    .venv/bin/python -m bench.bench_registry --meters 10000000   # one pass, printed
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
import pyarrow.parquet as pq

from rating.model.registry import load_registry
from rating.model.site import Site

SITE = Site()
FORMATS = ("parquet", "csv")
LOAD_TARGET_S = 10.0  # issue 11: a 10^7-meter registry loaded in under 10 s


def registry_tables(meters: int) -> tuple[pa.Table, pa.Table]:
    """`meters` meters, two per account, every tenth account let to a tenant."""
    index = np.arange(meters, dtype=np.int64)
    meter_accounts = pa.array(np.char.add("A", (index // 2).astype(str)))
    meter_table = pa.table({
        "meter_id": pa.array(np.char.add("M", index.astype(str))),
        "account_id": meter_accounts,
        "tariff_id": pa.array(np.where(index % 2 == 0, "DOM", "WAT")),
        "mode": pa.array(np.where(index % 7 == 0, "interval", "register")),
        "multiplier": pa.array(1 + index % 3),
        "unit": pa.array(np.where(index % 2 == 0, "kWh", "kL")),
    })
    accounts = (meters + 1) // 2
    account_index = np.arange(accounts, dtype=np.int64)
    let = account_index % 10 == 0
    account_table = pa.table({
        "account_id": pa.array(np.char.add("A", account_index.astype(str))),
        "name": pa.array(np.char.add("Owner ", account_index.astype(str))),
        "area": pa.array(40 + account_index % 160),
        "billing_cycle": pa.array(np.where(account_index % 3 == 0, "monthly", "quarterly")),
        "tenant": pa.array(np.where(let, "Tenant", ""), pa.string()),
        "bill_to": pa.array(np.where(let, "tenant", "owner")),
        "address": pa.array(np.char.add("Flat ", account_index.astype(str))),
        "email": pa.array(np.char.add(np.char.add("a", account_index.astype(str)), "@example.org")),
    })
    return meter_table, account_table


def write_registry(folder: Path, meters: int) -> dict[str, tuple[Path, Path]]:
    """The registry written as Parquet and CSV; {format: (meters, accounts)}."""
    meter_table, account_table = registry_tables(meters)
    paths = {}
    for name in FORMATS:
        pair = folder / f"meters.{name}", folder / f"accounts.{name}"
        for table, path in zip((meter_table, account_table), pair, strict=True):
            if name == "parquet":
                pq.write_table(table, path)
            else:
                pacsv.write_csv(table, path)
        paths[name] = pair
    return paths


def read_only(pair: tuple[Path, Path]) -> Callable[[], int]:
    """pyarrow reading both files with its own type inference, keeping nothing."""
    def run() -> int:
        read = pq.read_table if pair[0].suffix == ".parquet" else pacsv.read_csv
        return sum(read(path).num_rows for path in pair)
    return run


def load(pair: tuple[Path, Path]) -> Callable[[], int]:
    """What `load_config` does with the two files, then what the first batch
    of readings needs: the kernel's columns and the meter-id index."""
    def run() -> int:
        registry = load_registry(*pair, SITE)
        registry.columns(SITE)
        registry.meter_lookup.positions(pa.array(["M0"]))
        return len(registry)
    return run


def registry_scenario(meters: int, *, repeats: int = 3, folder: Path | None = None) -> dict:
    """Median seconds of reading and of loading each format, and their ratio."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        paths = write_registry(Path(scratch), meters)
        figures = {}
        for name, pair in paths.items():
            runs: dict[str, list[float]] = {"pyarrow_read": [], "load_registry": []}
            for _ in range(repeats):
                for label, run in (("pyarrow_read", read_only(pair)), ("load_registry", load(pair))):
                    start = time.perf_counter()
                    run()
                    runs[label].append(time.perf_counter() - start)
            read_s, load_s = (statistics.median(runs[label]) for label in ("pyarrow_read", "load_registry"))
            figures[name] = {"meters": meters, "read_s": read_s, "load_s": load_s,
                             "load_over_read": load_s / read_s, "under_target": load_s < LOAD_TARGET_S}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10**6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    for name, point in registry_scenario(args.meters, repeats=args.repeats).items():
        print(f"{name:8} {point['meters']:>10,} meters: pyarrow reads {point['read_s']:.2f} s, "
              f"load_registry {point['load_s']:.2f} s ({point['load_over_read']:.1f}x the read; "
              f"target {LOAD_TARGET_S:.0f} s: {'met' if point['under_target'] else 'missed'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
