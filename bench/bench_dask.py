"""Re-rating on a local Dask cluster beside single-process rate(), on the same readings.

    .venv/bin/python -m bench.bench_dask [--meters 20000] [--reads 480] [--workers 2] [--repeat 3]

Writes register readings (bench.workloads: every meter every 15 minutes,
meters shuffled within a slot) as one Parquet file, partitions it by account
shard once (timed), rates it once as "before", then times in turns, so noise
on a shared machine lands on both:

- `rate()`: one process rates the file with a dearer tariff and diffs the
  new charges against the previous ones (rating.distributed.changes), the
  ceiling one core reaches;
- `dask`: rate_dataset on a LocalCluster of `--workers` processes (one
  thread each): one task per bucket, results and changes written as Parquet.

Prints the medians, readings/s and readings/s per worker, the ratio, the
scaling efficiency against `workers` x rate(), and the overhead per task:
the wall time the workers were not rating, over the tasks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from bench.workloads import bench_config, graduated_tariff, register_readings
from rating.distributed import partition_readings, rate_dataset
from rating.distributed.changes import charge_changes
from rating.engine import rate

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def dearer(config):
    """The same tariff with every slab 0.25 a kWh dearer (the "tariff ruling")."""
    (tariff,) = config.tariffs.values()
    version = tariff.versions[0]
    slabs = tuple(replace(s, price=s.price + Decimal("0.25")) for s in version.energy.slabs)
    new = replace(tariff, versions=(replace(version, energy=replace(version.energy, slabs=slabs)),))
    return replace(config, tariffs={new.id: new})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--reads", type=int, default=480, help="reads per meter (480: five days)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import distributed

    config = bench_config(args.meters, graduated_tariff())
    raised = dearer(config)
    readings = register_readings(args.meters, args.reads, grouped=False)
    n = len(readings)
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as scratch:
        folder = Path(scratch)
        source = folder / "readings.parquet"
        pq.write_table(readings.table(), source)
        start = time.perf_counter()
        partition_readings(source, config=config, out=folder / "by-shard")
        partition_s = time.perf_counter() - start
        previous = rate(source, config=config, now=NOW).charges
        pq.write_table(previous, folder / "previous.parquet")

        def single() -> None:
            charge_changes(previous, rate(source, config=raised, now=NOW).charges)

        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=40) as cluster, \
                distributed.Client(cluster) as client:
            runs = {"rate()": [], "dask": []}
            task_s: list[float] = []
            tasks = 0
            for turn in range(args.repeat + 1):  # the first turn warms up
                start = time.perf_counter()
                single()
                single_s = time.perf_counter() - start
                start = time.perf_counter()
                run = rate_dataset(raised, folder / "by-shard", client, out=folder / f"out-{turn}",
                                   previous=folder / "previous.parquet", now=NOW)
                dask_s = time.perf_counter() - start
                if turn:
                    runs["rate()"].append(single_s)
                    runs["dask"].append(dask_s)
                    task_s.append(sum(t.seconds for t in run.tasks))
                    tasks = len(run.tasks)
    report(args, n, partition_s, runs, task_s, tasks)


def report(args, n: int, partition_s: float, runs: dict[str, list[float]], task_s: list[float],
           tasks: int) -> None:
    median = {label: statistics.median(s) for label, s in runs.items()}
    print(f"{n:,} readings ({args.meters:,} meters x {args.reads}), {args.workers} workers, "
          f"medians of {args.repeat} runs")
    print(f"  partition (once)  {partition_s:6.2f} s  {n / partition_s:>12,.0f} readings/s")
    for label, seconds in median.items():
        cores = 1 if label == "rate()" else args.workers
        spread = ", ".join(f"{s:.2f}" for s in runs[label])
        print(f"  {label:<16}  {seconds:6.2f} s  {n / seconds:>12,.0f} readings/s  "
              f"{n / seconds / cores:>12,.0f} per core  (runs {spread})")
    speedup = median["rate()"] / median["dask"]
    print(f"  dask / rate(): {speedup:.2f}x the throughput; efficiency {speedup / args.workers:.0%} "
          f"of {args.workers} x rate()")
    busy = statistics.median(task_s)
    overhead = (median["dask"] - busy / args.workers) / tasks
    print(f"  {tasks} tasks, {busy:.2f} s rating in them; overhead {overhead * 1000:.0f} ms a task "
          f"(wall time not spent rating, per task, {args.workers} at a time)")


if __name__ == "__main__":
    main()
