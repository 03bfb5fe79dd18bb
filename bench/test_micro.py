"""pytest-benchmark micro-benchmarks of the kernels, comparable across commits.

Not part of the test suite (pytest's testpaths is tests/): run them on
purpose, on a quiet machine, and compare runs with pytest-benchmark:

    make micro                                          # = the first line below
    .venv/bin/pytest bench/test_micro.py --benchmark-autosave
        # saves .benchmarks/<machine>/NNNN_<commit>_<date>.json
    .venv/bin/pytest bench/test_micro.py --benchmark-compare
        # this commit against the last saved run, side by side
    .venv/bin/pytest bench/test_micro.py --benchmark-compare=0001 --benchmark-compare-fail=median:15%
        # fail when a median got more than 15% slower than run 0001
    .venv/bin/pytest-benchmark compare 0001 0002 --columns=median,iqr,rounds --sort=name
        # two saved runs, without running anything

Each benchmark sets `extra_info["items"]` (readings or units per call), so
items per second = items / median. The workloads are bench/workloads.py's
(15-minute register reads, 4-slab tariff) at sizes that take milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_apportion import make_groups
from bench.bench_rating import Scenario
from bench.workloads import bench_config, register_readings
from rating._ext._apportion import split_largest_remainder
from rating.consumption.kernel import new_meter_states, rate_consumption
from rating.engine import Rater
from rating.pricing.pricer import price_periods
from rating.readings.batches import normalize_readings

METERS = 10_000
READS = 100  # per meter: 10^6 readings


@pytest.fixture(scope="module", params=["time_order", "grouped"])
def scenario(request) -> Scenario:
    readings = register_readings(METERS, READS, grouped=request.param == "grouped")
    return Scenario(bench_config(METERS), readings)


def test_consumption_kernel(benchmark, scenario):
    """ext/_consumption.pyx via rating.consumption.kernel.rate_consumption, fresh meter states per round."""
    config, r = scenario.config, scenario.readings

    def setup():
        return (r.meter_index, r.ts_us, r.value_qty, new_meter_states(config.registry, config.site),
                scenario.keys), {}

    benchmark.extra_info["items"] = len(r)
    periods, _ = benchmark.pedantic(rate_consumption, setup=setup, rounds=15, warmup_rounds=1)
    assert len(periods.meter_index) == METERS


def test_pricing(benchmark, scenario):
    """rating.pricing.pricer.price_periods over the touched (meter, period) rows of 10^6 readings."""
    periods, _ = scenario.kernel_consumption_only()
    config = scenario.config
    benchmark.extra_info["items"] = len(periods.meter_index)
    charges = benchmark(price_periods, periods, registry=config.registry, tariffs=config.tariffs,
                        site=config.site)
    assert charges.num_rows > 0


def test_kernel_and_pricing(benchmark, scenario):
    """Consumption and exact pricing from typed arrays: the suite's `kernel`."""
    benchmark.extra_info["items"] = len(scenario.readings)
    benchmark(scenario.kernel)


def test_normalize_readings(benchmark, scenario):
    """rating.readings.batches.normalize_readings: Arrow table to kernel arrays."""
    table = scenario.readings.table()
    config = scenario.config
    benchmark.extra_info["items"] = table.num_rows
    benchmark(normalize_readings, table, registry=config.registry, site=config.site)


def test_rater_from_arrow(benchmark, scenario):
    """rating.engine.Rater.ingest + charges from an Arrow table (the public API)."""
    table = scenario.readings.table()
    benchmark.extra_info["items"] = table.num_rows

    def run():
        rater = Rater(scenario.config)
        rater.ingest(table)
        return rater.charges()

    benchmark(run)


@pytest.mark.parametrize("group_size", [4, 64, 1024])
def test_apportion_kernel(benchmark, group_size):
    """ext/_apportion.pyx: largest-remainder split of 10^5 units."""
    units = 100_000
    totals, offsets, weights, keys = make_groups(units, units // group_size)
    shares = np.empty_like(weights)
    benchmark.extra_info["items"] = units
    benchmark(split_largest_remainder, offsets, totals, weights, keys, shares)
    assert int(shares.sum()) == int(totals.sum())
