"""Rating throughput, side by side in one run: the Cython kernel, careful numpy,
the Decimal reference (on a sample) and a memory-bandwidth pass over the same
columns; `rate()` from Arrow without and with asked periods (`--period`: every
meter charged in the month). Prints medians, ratios to the kernel and peak memory.

    .venv/bin/python -m bench.bench_rating                 # 10M readings, 100k meters
    .venv/bin/python -m bench.bench_rating --meters 1000 --repeats 3   # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

import numpy as np

from bench.numpy_rater import rate_registers
from bench.workloads import (
    READ_INTERVAL_US,
    START_US,
    Readings,
    bench_config,
    register_readings,
)
from rating.consumption.kernel import TimelineKeys, new_meter_states, rate_consumption
from rating.consumption.timeline import build_timeline
from rating.engine import Rater, rate
from rating.model.site import PRICE_DECIMALS
from rating.pricing.pricer import price_periods
from rating.reference.charges import RefReading, reference_rate


def median_seconds(run, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def peak_bytes(run) -> int:
    """Peak of numpy/Python allocations during one run (tracemalloc)."""
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


class Scenario:
    def __init__(self, config, readings: Readings):
        self.config = config
        self.readings = readings
        self.keys = TimelineKeys(config.registry, config.site, config.tariffs)
        # set up once per engine, as a Rater does; each run starts from a copy
        self.fresh_states = new_meter_states(config.registry, config.site)

    def kernel(self, grouped: bool | None = None):
        """Consumption kernel plus exact pricing, from typed arrays; `grouped`
        forces the reordering by meter on or off (None: the kernel's choice)."""
        states = self.fresh_states.copy()
        r = self.readings
        periods, _ = rate_consumption(r.meter_index, r.ts_us, r.value_qty, states, self.keys,
                                      grouped=grouped)
        return price_periods(periods, registry=self.config.registry, tariffs=self.config.tariffs,
                             site=self.config.site)

    def kernel_consumption_only(self):
        states = self.fresh_states.copy()
        r = self.readings
        return rate_consumption(r.meter_index, r.ts_us, r.value_qty, states, self.keys)

    def numpy(self):
        site, tariff = self.config.site, next(iter(self.config.tariffs.values()))
        version = tariff.versions[0]
        scale = 10**site.quantity_decimals
        uppers = [s.upper for s in version.energy.slabs]
        upper_qty = np.array([int(u * scale) if u is not None else np.iinfo(np.int64).max // 4
                              for u in uppers], dtype=np.int64)
        price_micro = np.array([int(s.price * 10**PRICE_DECIMALS) for s in version.energy.slabs],
                               dtype=np.int64)
        timeline = build_timeline(site.default_cycle, tariff, site, int(self.readings.ts_us.min()),
                                  int(self.readings.ts_us.max()))
        r = self.readings
        divisor = 10 ** (site.quantity_decimals + PRICE_DECIMALS - site.minor_unit_exponent)
        return rate_registers(r.meter_index, r.ts_us, r.value_qty, timeline.bounds_us, upper_qty,
                              price_micro, divisor, site.rounding)

    def bandwidth(self):
        r = self.readings
        return int(r.meter_index.sum()) + int(r.ts_us.sum()) + int(r.value_qty.sum())

    def end_to_end(self, table):
        """From an Arrow table through a ready Rater (built once, like a server's)."""
        if not hasattr(self, "rater"):
            self.rater = Rater(self.config)
            self.rater_start = self.rater.snapshot()
        self.rater.restore(self.rater_start)
        self.rater.ingest(table)
        return self.rater.charges()


    def rate_from_arrow(self, table, periods: str | None = None):
        """The user's path: rate() on the table (a fresh Rater per call), with
        or without asked periods."""
        return rate(table, config=self.config, now=RATE_NOW, periods=periods).charges


RATE_NOW = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)  # after every workload reading
RATE_PERIODS = "2026-11"  # the month of the workloads' readings (bench.workloads.START_US)


def energy_total_minor(charges) -> int:
    amounts = charges.column("amount").to_pylist()
    return int(sum(amounts) * 100)


def reference_inputs(readings: Readings) -> list[RefReading]:
    """The readings as the Decimal reference takes them (values in kWh)."""
    ids = readings.meter_index.tolist()
    return [RefReading(meter_id=m, ts=t, value=Decimal(v) / 1000)
            for m, t, v in zip(ids, readings.ts_us.tolist(), readings.value_qty.tolist(), strict=True)]


def run_reference(config, sample: list[RefReading]):
    return reference_rate(sample, ts_unit="us", site=config.site, registry=config.registry,
                          tariffs=config.tariffs)


def reference_agrees(config, readings: Readings, lines) -> bool:
    """The kernel's charges on `readings` sum to the reference's `lines`."""
    kernel = Scenario(config, readings).kernel()
    return sum(line.amount for line in lines) == sum(kernel.column("amount").to_pylist())


def reference_sample(meters: int, reads: int, repeats: int) -> tuple[float, int]:
    """Readings per second of the Decimal reference on a small workload, and
    a check that the kernel gives the same charges on it."""
    config = bench_config(meters)
    readings = register_readings(meters, reads, grouped=False, seed=11)
    sample = reference_inputs(readings)
    seconds, _ = median_seconds(lambda: run_reference(config, sample), repeats)
    lines, _ = run_reference(config, sample)
    if not reference_agrees(config, readings, lines):
        raise SystemExit("the kernel and the reference disagree on the reference sample")
    return len(readings) / seconds, len(readings)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=100, help="reads per meter (15-minute apart)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-meters", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    config = bench_config(args.meters)
    n = args.meters * args.reads
    results: dict = {
        "workload": f"{n:,} register readings, {args.meters:,} meters, 15-minute reads, "
                    f"4-slab graduated tariff",
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
                   f"numpy {np.__version__}",
        "span_hours": args.reads * READ_INTERVAL_US / 3.6e9,
        "start_us": START_US,
        "figures": {},
    }
    for order in ("time_order", "grouped"):
        readings = register_readings(args.meters, args.reads, grouped=order == "grouped")
        scenario = Scenario(config, readings)
        kernel_charges = scenario.kernel()
        _, _, numpy_amounts = scenario.numpy()
        if int(numpy_amounts.sum()) != energy_total_minor(kernel_charges):
            raise SystemExit(f"{order}: numpy and kernel totals differ")
        table = readings.table()
        runs = {
            "kernel": scenario.kernel,
            "kernel_consumption_only": scenario.kernel_consumption_only,
            "end_to_end_from_arrow": lambda t=table, s=scenario: s.end_to_end(t),
            "rate_from_arrow": lambda t=table, s=scenario: s.rate_from_arrow(t),
            "rate_with_periods": lambda t=table, s=scenario: s.rate_from_arrow(t, RATE_PERIODS),
            "numpy": scenario.numpy,
            "memory_bandwidth_sum": scenario.bandwidth,
        }
        figures = {}
        for name, run in runs.items():
            seconds, times = median_seconds(run, args.repeats)
            figures[name] = {
                "readings_per_s": n / seconds,
                "median_s": seconds,
                "runs_s": times,
                "peak_bytes": peak_bytes(run),
            }
        kernel_rate = figures["kernel"]["readings_per_s"]
        for entry in figures.values():
            entry["ratio_to_kernel"] = entry["readings_per_s"] / kernel_rate
        results["figures"][order] = figures

    rate, count = reference_sample(args.reference_meters, args.reads, max(1, args.repeats // 2))
    results["reference"] = {"readings_per_s": rate, "sample_readings": count}
    print_report(results, n)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


def print_report(results: dict, n: int) -> None:
    print(results["workload"])
    print(results["machine"])
    header = f"{'order':<11} {'implementation':<24} {'readings/s':>14} {'median s':>9} " \
             f"{'x kernel':>9} {'peak MiB':>9} {'B/reading':>9}"
    print(header)
    for order, figures in results["figures"].items():
        for name, f in figures.items():
            print(f"{order:<11} {name:<24} {f['readings_per_s'] / 1e6:>12.1f}M "
                  f"{f['median_s']:>9.3f} {f['ratio_to_kernel']:>9.2f} "
                  f"{f['peak_bytes'] / 2**20:>9.1f} {f['peak_bytes'] / n:>9.1f}")
    ref = results["reference"]
    kernel = results["figures"]["time_order"]["kernel"]["readings_per_s"]
    print(f"{'time_order':<11} {'decimal_reference':<24} {ref['readings_per_s'] / 1e6:>12.3f}M "
          f"{'':>9} {ref['readings_per_s'] / kernel:>9.4f}   (sample of {ref['sample_readings']:,})")


if __name__ == "__main__":
    main()
