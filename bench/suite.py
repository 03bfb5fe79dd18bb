"""The benchmark suite behind `rating bench`: peers side by side, scaling
curves, peak memory, a results.json, a Markdown report and PNG plots.

Every point rates the same data with each implementation in the same run:

    kernel                   Cython consumption kernel + exact pricing (rating's hot path)
    kernel_consumption_only  the consumption kernel alone (no pricing)
    rater_from_arrow         rating.engine.Rater from an Arrow table (normalisation included)
    numpy                    careful vectorised numpy (bench/numpy_rater.py, bench/numpy_tou.py)
    pyarrow                  a pyarrow.compute pipeline (bench/arrow_rater.py)
    reference                the Decimal reference (rating/reference/charges.py) on a sample of the data
    bandwidth                a memory-bandwidth pass over the same columns: the physical limit

and checks, before timing, that the totals agree (kernel, numpy, pyarrow and
Rater to the paisa on the whole point; the reference on its sample). A
disagreement fails the run; speed never does.

Scenarios (`--only` takes a comma-separated subset):

    files      rate() on Parquet (string, dictionary, int64 ids), CSV and Arrow IPC files
               beside pyarrow decoding each file (bench/bench_files.py)
    readings   readings 10^4 .. 10^8 (as far as memory allows), 4 slabs, time order
    meters     meters 10^3 .. 10^7 at ~10^7 readings, time order (and the kernel on grouped input)
    many_meters  10^6 and 10^7 meters read 10 times each: the kernel (reordering by meter when
               it pays) beside careful numpy
    tariffs    flat, 4 slabs, 12 slabs, TOU x slabs at the main size
    order      time order vs grouped by meter at the main size
    apportion  largest-remainder split of 10^6 units in groups of 2 .. 16384
    service    streaming deduction end to end and the Redis/PostgreSQL ceilings (bench/suite_service.py)
    webhook    gateway webhook payments over HTTP on both dues ledgers, beside their insert ceilings
               (bench/bench_webhook.py)

Sizes are in `QUICK` (CI smoke: seconds) and `FULL` (under 15 minutes on a
2-core machine). Methods of measurement: bench/measure.py.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.arrow_rater import rate_registers_arrow, total_amount_minor
from bench.bench_apportion import make_groups
from bench.bench_rating import Scenario, energy_total_minor, reference_inputs, run_reference
from bench.measure import (
    ROOT,
    Impl,
    figure,
    machine,
    memory_available_bytes,
    run_with_peak,
    time_round_robin,
    timed,
    utc_now,
)
from bench.numpy_apportion import split_numpy
from bench.numpy_tou import rate_registers_tou
from bench.tariff_workloads import PEERLESS, TARIFFS, rating_tables
from bench.workloads import Readings, bench_config, register_readings
from rating._ext._apportion import split_largest_remainder
from rating.apportion.largest_remainder import split
from rating.consumption.kernel import grouping_pays
from rating.reference.apportion import split_groups_reference

SCHEMA = "rating-bench/1"
SCENARIOS = ("files", "readings", "meters", "many_meters", "tariffs", "order", "apportion", "service",
             "webhook")
KERNEL = "kernel"
LIMIT = "bandwidth"

LABELS = {
    "kernel": "Cython kernel (consumption + exact pricing)",
    "kernel_grouped": "Cython kernel, input grouped by meter",
    "kernel_consumption_only": "Cython consumption kernel alone",
    "rater_from_arrow": "rating.engine.Rater from Arrow (normalisation included)",
    "api_split": "rating.apportion.split (checks included)",
    "numpy": "careful numpy",
    "pyarrow": "pyarrow.compute",
    "reference": "Decimal reference (sampled)",
    "bandwidth": "memory-bandwidth pass (the limit)",
    "rate_cli": "rating.engine.rate() on the file (the CLI's path)",
    "pyarrow_decode": "pyarrow decoding the file only",
}

# Bytes per reading an implementation needs beyond its inputs, rounded up
# from measured peaks: a point is skipped for an implementation that would
# not fit in the memory available when the point starts.
NEED_BYTES_PER_ITEM = {
    "kernel": 40, "kernel_grouped": 40, "kernel_reordered": 80, "kernel_direct": 40,
    "kernel_consumption_only": 40, "rater_from_arrow": 140,
    "numpy": 120, "pyarrow": 170, "bandwidth": 0, "reference": 0,
}
INPUT_BYTES_PER_READING = 20 + 24  # kernel arrays, plus the Arrow table of rater_from_arrow
MANY_READS = 10  # many_meters scenario: reads per meter (issue 11: at least 10)
GROUPED_READS_MIN = 10  # meters curve: the kernel on grouped input only with this many reads per meter


@dataclass(frozen=True)
class Plan:
    mode: str
    repeats: int
    min_repeats: int  # for runs slower than slow_run_s on warm-up
    slow_run_s: float
    readings: tuple[int, ...]  # readings curve
    readings_meters_max: int  # readings curve: meters = readings / 100, within [100, this]
    meters: tuple[int, ...]  # meters curve
    meters_readings: int  # meters curve: readings per point (at least 2 reads per meter)
    main_meters: int  # tariffs and order scenarios
    main_reads: int
    apportion_units: int
    apportion_group_sizes: tuple[int, ...]
    reference_readings: int  # size of the reference's sample
    reference_repeats: int
    apportion_reference_units: int
    pyarrow_readings_max: int  # above this, pyarrow is left out (minutes per run)
    files_readings: int  # files scenario: readings per file
    files_meters: int
    many_meters: tuple[int, ...] = ()  # many_meters scenario: meters per point
    many_reads: int = MANY_READS
    peak: bool = True

    def describe(self) -> dict:
        return asdict(self)


QUICK = Plan(
    mode="quick", repeats=3, min_repeats=2, slow_run_s=0.5,
    readings=(10**4, 10**5), readings_meters_max=1_000,
    meters=(10**3, 10**4), meters_readings=4 * 10**4,
    main_meters=500, main_reads=96,
    apportion_units=20_000, apportion_group_sizes=(2, 32, 512),
    reference_readings=2_000, reference_repeats=1, apportion_reference_units=2_000,
    pyarrow_readings_max=10**6, files_readings=20_000, files_meters=1_000,
    many_meters=(2_000,),
)
FULL = Plan(
    mode="full", repeats=5, min_repeats=3, slow_run_s=2.0,
    readings=(10**4, 10**5, 10**6, 10**7, 10**8), readings_meters_max=100_000,
    meters=(10**3, 10**4, 10**5, 10**6, 10**7), meters_readings=10**7,
    main_meters=100_000, main_reads=100,
    apportion_units=10**6, apportion_group_sizes=(2, 8, 32, 128, 512, 2048, 16384),
    reference_readings=20_000, reference_repeats=3, apportion_reference_units=20_000,
    pyarrow_readings_max=10**7, files_readings=10**7, files_meters=100_000,
    many_meters=(10**6, 10**7),
)


class CheckFailed(Exception):
    pass


class Run:
    """One suite run: its plan, its output folder, the checks and a progress log."""

    def __init__(self, plan: Plan, out: Path, log: Callable[[str], None]):
        self.plan = plan
        self.out = out
        self.log = log
        self.checks: list[dict] = []

    # -------------------------------------------------------------- points

    def measure(self, scenario: str, label: str, impls: dict[str, Impl], *, unit: str,
                skipped: dict[str, str], expected: dict[str, object] | None = None,
                summaries: dict[str, Callable[[object], object]] | None = None,
                repeats: dict[str, int] | None = None) -> dict:
        """Warm up and check, time round robin, take peaks: a point's figures."""
        plan = self.plan
        summaries = summaries or {}
        expected = dict(expected or {})
        warmup_s: dict[str, float] = {}
        peaks: dict[str, int] = {}
        for name, impl in impls.items():
            gc.collect()
            if plan.peak and impl.peak:
                result, warmup_s[name], peaks[name] = run_with_peak(impl.run)
            else:
                result, warmup_s[name] = timed(impl.run)
            if name in summaries:
                value = summaries[name](result)
                if name == KERNEL:
                    expected.setdefault(KERNEL, value)
                want = expected.get(name, expected.get(KERNEL))
                if name != KERNEL and want is not None:
                    self._check(scenario, label, name, value, want)
            del result
        runs = time_round_robin(impls, warmup_s, repeats=plan.repeats, min_repeats=plan.min_repeats,
                                slow_run_s=plan.slow_run_s)
        for name, count in (repeats or {}).items():
            if name in runs:
                runs[name] = runs[name][:count]
        figures = {}
        for name, impl in impls.items():
            entry = figure(impl.items, unit, runs[name], sampled=impl.sampled)
            entry["label"] = LABELS.get(name, name)
            if name in peaks:
                entry["peak_bytes"] = peaks[name]
                entry["bytes_per_item"] = peaks[name] / impl.items
            figures[name] = entry
        if KERNEL in figures:
            kernel_rate = figures[KERNEL]["median"]
            for entry in figures.values():
                entry["ratio_to_kernel"] = entry["median"] / kernel_rate
        self.log(f"  {scenario:<9} {label:<22} " + "  ".join(
            f"{name} {f['median'] / 1e6:,.3g}M" for name, f in figures.items()))
        return {"label": label, "figures": figures, "skipped": skipped}

    def _check(self, scenario: str, label: str, name: str, value: object, want: object) -> None:
        ok = value == want
        self.checks.append({"scenario": scenario, "point": label, "impl": name,
                            "what": f"{name} agrees with the kernel", "ok": ok,
                            "value": str(value), "expected": str(want)})
        if not ok:
            self.log(f"  CHECK FAILED: {scenario} {label}: {name} gives {value}, the kernel {want}")

    # -------------------------------------------------------------- rating

    def rating_point(self, scenario: str, label: str, readings: Readings, tariff_name: str,
                     impl_names: tuple[str, ...]) -> dict:
        plan = self.plan
        _, build = TARIFFS[tariff_name]
        meters = int(readings.meter_index.max()) + 1
        config = bench_config(meters, build())
        scenario_obj = Scenario(config, readings)
        n = len(readings)
        impls: dict[str, Impl] = {}
        skipped: dict[str, str] = {}
        summaries: dict[str, Callable[[object], object]] = {}
        expected: dict[str, object] = {}
        available = memory_available_bytes()
        for name in impl_names:
            need = NEED_BYTES_PER_ITEM.get(name, 0) * n
            if available is not None and need > 0.7 * available:
                skipped[name] = f"needs ~{need / 2**30:.1f} GiB, {available / 2**30:.1f} GiB available"
                continue
            if name == "pyarrow" and n > plan.pyarrow_readings_max:
                skipped[name] = f"left out above {plan.pyarrow_readings_max:,} readings (minutes per run)"
                continue
            if name == KERNEL:
                impls[name] = Impl(scenario_obj.kernel, n)
                summaries[name] = energy_total_minor
            elif name == "kernel_consumption_only":
                impls[name] = Impl(scenario_obj.kernel_consumption_only, n)
            elif name == "kernel_reordered":
                impls[name] = Impl(lambda: scenario_obj.kernel(grouped=True), n)
                summaries[name] = energy_total_minor
            elif name == "kernel_direct":
                impls[name] = Impl(lambda: scenario_obj.kernel(grouped=False), n)
                summaries[name] = energy_total_minor
            elif name == "kernel_grouped":
                grouped = _grouped(readings)
                impls[name] = Impl(Scenario(config, grouped).kernel, n)
                summaries[name] = energy_total_minor
            elif name == "rater_from_arrow":
                table = readings.table()
                impls[name] = Impl(lambda t=table: scenario_obj.end_to_end(t), n)
                summaries[name] = energy_total_minor
            elif name == "numpy":
                impls[name] = Impl(_numpy_run(config, readings, scenario_obj, tariff_name), n)
                summaries[name] = lambda result: int(result[2].sum())
            elif name == "pyarrow":
                impls[name] = Impl(_arrow_run(config, readings), n)
                summaries[name] = total_amount_minor
            elif name == "reference":
                sample_config, sample, want = self._reference_sample(readings, build)
                impls[name] = Impl(lambda c=sample_config, s=sample: run_reference(c, s), len(sample),
                                   sampled=True)
                summaries[name] = lambda result: sum(line.amount for line in result[0])
                expected[name] = want
            elif name == LIMIT:
                impls[name] = Impl(scenario_obj.bandwidth, n)
            else:
                raise ValueError(f"unknown implementation {name!r}")
        point = self.measure(scenario, label, impls, unit="readings/s", skipped=skipped,
                             summaries=summaries, expected=expected,
                             repeats={"reference": plan.reference_repeats})
        point["params"] = {"readings": n, "meters": meters, "reads_per_meter": n // meters,
                           "tariff": tariff_name, "order": _order_of(readings)}
        return point

    def _reference_sample(self, readings: Readings, build) -> tuple[object, list, object]:
        """The first meters' readings (arrival order kept), their reference
        inputs, and what the kernel charges for them."""
        meters = int(readings.meter_index.max()) + 1
        reads = max(1, len(readings) // meters)
        sample_meters = max(1, min(meters, self.plan.reference_readings // reads))
        keep = readings.meter_index < sample_meters
        sample = Readings(np.ascontiguousarray(readings.meter_index[keep]),
                          np.ascontiguousarray(readings.ts_us[keep]),
                          np.ascontiguousarray(readings.value_qty[keep]))
        config = bench_config(sample_meters, build())
        kernel = Scenario(config, sample).kernel()
        return config, reference_inputs(sample), sum(kernel.column("amount").to_pylist())

    # -------------------------------------------------------------- scenarios

    def readings_curve(self) -> dict:
        points = []
        for n in self.plan.readings:
            meters = min(max(n // 100, 100), self.plan.readings_meters_max)
            reads = n // meters
            need = n * (INPUT_BYTES_PER_READING + 40)
            available = memory_available_bytes()
            if available is not None and need > 0.7 * available:
                self.log(f"  readings  {n:,}: skipped, needs ~{need / 2**30:.1f} GiB")
                points.append({"x": n, "label": f"{n:,}", "figures": {},
                               "skipped": {"all": f"needs ~{need / 2**30:.1f} GiB, "
                                                  f"{available / 2**30:.1f} GiB available"}})
                continue
            point = self.rating_point(
                "readings", f"{n:,} readings", register_readings(meters, reads, grouped=False), "slabs_4",
                (KERNEL, "rater_from_arrow", "numpy", "pyarrow", "reference", LIMIT))
            point["x"] = n
            points.append(point)
            gc.collect()
        return {
            "title": "Readings: throughput as the work grows",
            "description": "Register readings 15 minutes apart, time order (every meter once per "
                           "slot, meters shuffled within the slot), 4-slab graduated tariff; "
                           "meters = readings / 100 (at least 100, at most "
                           f"{self.plan.readings_meters_max:,}).",
            "x": {"name": "readings", "unit": "readings", "scale": "log"},
            "item_unit": "readings",
            "points": points,
        }

    def meters_curve(self) -> dict:
        points = []
        for meters in self.plan.meters:
            reads = max(2, self.plan.meters_readings // meters)
            impls: tuple[str, ...] = (KERNEL, "kernel_grouped", "numpy", "pyarrow", LIMIT)
            if reads < GROUPED_READS_MIN:  # minutes per run at 10^7 meters: within the time budget
                impls = tuple(name for name in impls if name != "kernel_grouped")
            point = self.rating_point(
                "meters", f"{meters:,} meters", register_readings(meters, reads, grouped=False), "slabs_4",
                impls)
            if reads < GROUPED_READS_MIN:
                point["skipped"]["kernel_grouped"] = (f"left out below {GROUPED_READS_MIN} reads per meter "
                                                      "(keeps the full run under 15 minutes)")
            point["x"] = meters
            points.append(point)
            gc.collect()
        return {
            "title": "Meters: per-meter state outgrows the caches",
            "description": f"About {self.plan.meters_readings:,} readings per point (at least 2 reads "
                           "per meter), time order, 4-slab graduated tariff; kernel_grouped rates "
                           f"the same readings sorted by meter (stable), from {GROUPED_READS_MIN} reads "
                           "per meter up.",
            "x": {"name": "meters", "unit": "meters", "scale": "log"},
            "item_unit": "readings",
            "points": points,
        }

    def many_meters_scenario(self) -> dict:
        """The kernel as rate() runs it (its own choice of reordering by meter)
        beside careful numpy, at 10^6 and 10^7 meters read 10 times each."""
        points = []
        for meters in self.plan.many_meters:
            readings = register_readings(meters, self.plan.many_reads, grouped=False)
            reorders = grouping_pays(meters, len(readings))
            # the forced other choice, to show the automatic one pays
            other = "kernel_direct" if reorders else "kernel_reordered"
            point = self.rating_point("many_meters", f"{meters:,} meters", readings, "slabs_4",
                                      (KERNEL, other, "numpy", LIMIT))
            point["x"] = meters
            point["params"]["kernel_reorders"] = reorders
            points.append(point)
            del readings
            gc.collect()
        return {
            "title": "Many meters: the kernel beside careful numpy",
            "description": f"{self.plan.many_reads} reads per meter, time order, 4-slab graduated tariff; "
                           "the kernel chooses whether to reorder the batch by meter (a radix sort, "
                           "timed with it: kernel_reordered and kernel_direct force either choice), "
                           "numpy sorts once and sums per (meter, period) segment; both give the same "
                           "per-(meter, period, slab) amounts (their total checked to the minor unit).",
            "x": {"name": "meters", "unit": "meters", "scale": "log"},
            "item_unit": "readings",
            "points": points,
        }

    def tariffs_scenario(self) -> dict:
        plan = self.plan
        readings = register_readings(plan.main_meters, plan.main_reads, grouped=False)
        points = []
        for name, (label, _) in TARIFFS.items():
            peers = () if name in PEERLESS else ("numpy", "pyarrow")
            point = self.rating_point("tariffs", label, readings, name, (KERNEL, *peers, "reference", LIMIT))
            if name in PEERLESS:
                point["skipped"].update({peer: PEERLESS[name] for peer in ("numpy", "pyarrow")})
            point["x"] = label
            points.append(point)
        return {
            "title": "Tariff complexity",
            "description": f"{len(readings):,} readings, {plan.main_meters:,} meters, time order; "
                           "flat price, 4 and 12 graduated slabs, 3 time-of-use periods x 4 slabs, "
                           "and the same 3 periods x 4 tiers as an energy rate matrix "
                           "(bench/tariff_workloads.py).",
            "x": {"name": "tariff", "unit": "", "scale": "category"},
            "item_unit": "readings",
            "points": points,
        }

    def order_scenario(self) -> dict:
        plan = self.plan
        points = []
        for grouped, label in ((False, "time order"), (True, "grouped by meter")):
            readings = register_readings(plan.main_meters, plan.main_reads, grouped=grouped)
            point = self.rating_point(
                "order", label, readings, "slabs_4",
                (KERNEL, "kernel_consumption_only", "rater_from_arrow", "numpy", "pyarrow", "reference",
                 LIMIT))
            point["x"] = label
            points.append(point)
            del readings
            gc.collect()
        return {
            "title": "Arrival order",
            "description": f"{plan.main_meters * plan.main_reads:,} readings, {plan.main_meters:,} "
                           "meters, 4-slab graduated tariff: as aggregators deliver them (time "
                           "order) and grouped by meter.",
            "x": {"name": "order", "unit": "", "scale": "category"},
            "item_unit": "readings",
            "points": points,
        }

    def apportion_scenario(self) -> dict:
        plan = self.plan
        units = plan.apportion_units
        points = []
        for size in plan.apportion_group_sizes:
            groups = max(1, units // size)
            totals, offsets, weights, keys = make_groups(units, groups)
            shares = np.empty_like(weights)
            sample_groups = int(np.searchsorted(offsets, plan.apportion_reference_units, side="right"))
            sample_groups = max(1, min(groups, sample_groups))
            end = int(offsets[sample_groups])
            sample = (totals[:sample_groups].tolist(), offsets[: sample_groups + 1].tolist(),
                      weights[:end].tolist(), keys[:end].tolist())

            def kernel(o=offsets, t=totals, w=weights, k=keys, s=shares):
                split_largest_remainder(o, t, w, k, s)
                return s

            impls = {
                KERNEL: Impl(kernel, units),
                "api_split": Impl(lambda t=totals, o=offsets, w=weights, k=keys: split(t, o, w, k), units),
                "numpy": Impl(lambda t=totals, o=offsets, w=weights, k=keys: split_numpy(t, o, w, k), units),
                "reference": Impl(lambda s=sample: split_groups_reference(*s), end, sampled=True),
                LIMIT: Impl(lambda t=totals, o=offsets, w=weights, k=keys:
                            int(w.sum()) + int(k.sum()) + int(t.sum()) + int(o.sum()), units),
            }
            kernel_shares = kernel().copy()
            point = self.measure(
                "apportion", f"groups of {size:,}", impls, unit="units/s", skipped={},
                summaries={KERNEL: _digest, "api_split": _digest, "numpy": _digest,
                           "reference": lambda result: _digest(np.array(result, dtype=np.int64))},
                expected={"reference": _digest(kernel_shares[:end])},
                repeats={"reference": plan.reference_repeats})
            point["x"] = units / groups
            point["params"] = {"units": units, "groups": groups, "mean_group_size": units / groups}
            points.append(point)
        return {
            "title": "Apportionment: group size",
            "description": f"Largest-remainder split of {units:,} units (floor areas 40-250 m2) in "
                           "groups of random size around the mean (bench/bench_apportion.py "
                           "make_groups); totals up to 1,00,000.00 per group.",
            "x": {"name": "mean group size", "unit": "units", "scale": "log"},
            "item_unit": "units",
            "points": points,
        }

    def files_scenario(self) -> dict:
        from bench.bench_files import files_scenario

        return files_scenario(self, self.plan.files_readings, self.plan.files_meters)

    def service_scenario(self) -> dict:
        from bench.suite_service import service_scenario

        return service_scenario(quick=self.plan.mode == "quick", log=self.log)

    def webhook_scenario(self) -> dict:
        from bench.bench_webhook import webhook_scenario

        return webhook_scenario(quick=self.plan.mode == "quick", log=self.log)


def _grouped(readings: Readings) -> Readings:
    order = np.argsort(readings.meter_index, kind="stable")
    return Readings(readings.meter_index[order], readings.ts_us[order], readings.value_qty[order])


def _order_of(readings: Readings) -> str:
    m = readings.meter_index
    return "grouped" if len(m) < 2 or bool((m[1:] >= m[:-1]).all()) else "time_order"


def _numpy_run(config, readings: Readings, scenario: Scenario, tariff_name: str) -> Callable[[], object]:
    if tariff_name != "tou_slabs":
        return scenario.numpy  # bench/numpy_rater.py: one sort, reduceat per (meter, period)

    def run():
        tables = rating_tables(config, int(readings.ts_us.min()), int(readings.ts_us.max()))
        return rate_registers_tou(readings.meter_index, readings.ts_us, readings.value_qty, tables)

    return run


def _arrow_run(config, readings: Readings) -> Callable[[], object]:
    columns = (pa.array(readings.meter_index), pa.array(readings.ts_us), pa.array(readings.value_qty))

    def run():
        span = pc.min_max(columns[1])
        tables = rating_tables(config, span["min"].as_py(), span["max"].as_py())
        return rate_registers_arrow(*columns, tables)

    return run


def _digest(shares: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(shares, dtype=np.int64).tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------ driver

def default_out() -> Path:
    return ROOT / "bench" / "results" / utc_now().strftime("%Y%m%dT%H%M%SZ")


def run_suite(plan: Plan, out: Path, *, only: tuple[str, ...] = SCENARIOS, command: str = "",
              log: Callable[[str], None] | None = None) -> dict:
    """Run the scenarios, write results.json, the report and the plots in `out`."""
    from bench.plots import render_plots
    from bench.report import write_report

    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    out.mkdir(parents=True, exist_ok=True)
    run = Run(plan, out, log)
    started = time.perf_counter()
    created = utc_now()
    log(f"rating bench ({plan.mode}) -> {out}")
    scenarios: dict[str, dict] = {}
    makers = {"files": run.files_scenario, "readings": run.readings_curve, "meters": run.meters_curve,
              "many_meters": run.many_meters_scenario,
              "tariffs": run.tariffs_scenario,
              "order": run.order_scenario, "apportion": run.apportion_scenario,
              "service": run.service_scenario, "webhook": run.webhook_scenario}
    for name in SCENARIOS:
        if name in only:
            log(f"{name}:")
            scenario_started = time.perf_counter()
            scenarios[name] = makers[name]()
            scenarios[name]["duration_s"] = time.perf_counter() - scenario_started
            # others' work on a shared machine shows here: read figures beside it
            scenarios[name]["load_average_after"] = list(os.getloadavg())
            gc.collect()
    results = {
        "schema": SCHEMA,
        "created_utc": created.isoformat(),
        "command": command,
        "mode": plan.mode,
        "plan": plan.describe(),
        "duration_s": time.perf_counter() - started,
        "machine": machine(),
        "method": {
            "timing": "after a warm-up run that also checks the result, implementations run in "
                      "turn (round robin); median of the runs; spread as min, max and IQR",
            "peak_memory": "new allocations at their peak during the warm-up run, beyond the "
                           "inputs: tracemalloc (numpy, Python) + the Arrow memory pool's peak",
            "ratio_to_kernel": "throughput of the implementation / throughput of the kernel at the "
                               "same point (the reference: its sample's throughput)",
            "scope": "the kernel and Rater figures include building the charges table (decimal128 "
                     "amounts, ids, dates, one line per slab); numpy and pyarrow stop at int64 amounts "
                     "per (meter, period, slab); all four give the same total to the minor unit",
        },
        "scenarios": scenarios,
        "checks": run.checks,
        "ok": all(check["ok"] for check in run.checks),
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default) + "\n")
    results["plots"] = render_plots(results, out)
    write_report(results, out)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default) + "\n")
    log(f"done in {results['duration_s']:.0f} s: {out / 'report.md'}")
    return results


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def parse_only(text: str | None) -> tuple[str, ...]:
    if not text:
        return SCENARIOS
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    return names


def plan_for(quick: bool, repeats: int | None = None) -> Plan:
    plan = QUICK if quick else FULL
    if repeats is not None:
        plan = replace(plan, repeats=repeats, min_repeats=min(plan.min_repeats, repeats))
    return plan


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.suite` (the same as `rating bench`)."""
    from rating.cli.commands import main as rating_main

    return rating_main(["bench", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
