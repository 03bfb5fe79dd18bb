"""Apportion 1M units in 50k groups: units/s of the kernel and of the reference.

    .venv/bin/python -m bench.bench_apportion [--units 1000000] [--groups 50000] [--repeats 7]
    .venv/bin/python -m bench.bench_apportion --pipeline 100000   # also the engine path

Prints, from one run, the median over repeats of: the bare kernel
(`rating._ext._apportion.split_largest_remainder`), the checked API
(`rating.apportion.split`, validation and post-check included) and the
pure-Python reference (`rating.reference.apportion`) on a sample of groups.
With `--pipeline N` it also times the engine integration (`prepare` and
`shared_area_lines`, pricing excluded) on a synthetic site of N flats in
groups of 20, half cost-split by area, half quantity-split by consumption.
Weights are floor areas in 0.001 m² (40-250 m²), totals are costs in paisa
up to ₹1,00,000 per group, group sizes vary (random cut points, at least 1).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rating._ext._apportion import split_largest_remainder
from rating.apportion.largest_remainder import split
from rating.reference.apportion import split_groups_reference


def make_groups(units: int, groups: int, seed: int = 20260101):
    rng = np.random.default_rng(seed)
    # groups - 1 distinct cut points: every group has at least one member
    cuts = np.sort(rng.choice(np.arange(1, units), groups - 1, replace=False))
    offsets = np.concatenate(([0], cuts, [units])).astype(np.int64)
    weights = rng.integers(40_000, 250_001, units).astype(np.int64)
    totals = rng.integers(0, 10_000_001, groups).astype(np.int64)
    # keys: rank of the unit id within the site, rising within every group as
    # rating.apportion lays members out (sorted by group, then unit id)
    group_of = np.repeat(np.arange(groups), np.diff(offsets))
    keys = rng.permutation(units).astype(np.int64)
    keys = keys[np.lexsort((keys, group_of))]
    return totals, offsets, weights, keys


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pipeline_seconds(units: int) -> tuple[float, float]:
    """Seconds of `prepare` and of `shared_area_lines` on a synthetic site."""
    import datetime as dt
    from decimal import Decimal

    from rating.apportion.lines import shared_area_lines
    from rating.apportion.plan import prepare
    from rating.config.loader import Config
    from rating.config.tariff_file import tariffs_from_toml
    from rating.consumption.period_totals import PeriodTotals
    from rating.consumption.quantities import PeriodQuantities
    from rating.engine import consumption_table
    from rating.model.groups import Group, Groups, Member
    from rating.model.registry import Account, Meter, Registry
    from rating.model.site import Site
    from rating.pricing.pricer import price_periods

    tariffs = tariffs_from_toml(
        '[[tariff]]\nid = "DOM"\neffective_from = 2025-01-01\n[tariff.energy]\nmode = "graduated"\n'
        "slabs = [{ upto = 50, price = 5 }, { price = 7 }]\n", where="bench")
    rng = np.random.default_rng(1)
    groups = units // 20
    meters = [Meter(f"M{i}", f"U{i}", "DOM", unit="kWh") for i in range(units)]
    meters += [Meter(f"L{g}", "SOC", "DOM", unit="kWh") for g in range(groups)]
    accounts = [Account(f"U{i}", area=Decimal(int(a))) for i, a in enumerate(rng.integers(40, 200, units))]
    config = Config(Site(), Registry(meters, accounts + [Account("SOC")]), tariffs)
    groups_ = Groups.of(
        Group(f"g{g}", tuple(Member(f"U{i}") for i in range(20 * g, 20 * g + 20)),
              method="area" if g % 2 else "consumption", basis="cost" if g % 2 else "quantity",
              common_meters=(f"L{g}",))
        for g in range(groups)
    )
    start = (dt.date(2026, 1, 1) - dt.date(1970, 1, 1)).days
    n = len(meters)
    periods = PeriodQuantities(np.arange(n, dtype=np.int32), np.full(n, start, np.int32),
                               np.full(n, start + 31, np.int32),
                               rng.integers(0, 300_000, (n, 1)).astype(np.int64))
    consumption = consumption_table(periods, config)
    began = time.perf_counter()
    prepared = prepare(consumption, groups_, config=config)
    prepare_s = time.perf_counter() - began
    totals = PeriodTotals.empty(1).merge(periods).merge(prepared.quantity_delta)
    charges = price_periods(totals.as_quantities(), registry=config.registry, tariffs=tariffs,
                            site=config.site)
    began = time.perf_counter()
    shared_area_lines(prepared, charges)
    return prepare_s, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pipeline", type=int, default=0, help="flats for the engine-path timing")
    parser.add_argument("--sample-groups", type=int, default=1_000, help="groups the reference splits")
    args = parser.parse_args()

    totals, offsets, weights, keys = make_groups(args.units, args.groups)
    shares = np.empty_like(weights)
    kernel_s = median_seconds(
        lambda: split_largest_remainder(offsets, totals, weights, keys, shares), args.repeats
    )
    api_s = median_seconds(lambda: split(totals, offsets, weights, keys), args.repeats)

    g = min(args.sample_groups, args.groups)
    end = int(offsets[g])
    sample = (totals[:g].tolist(), offsets[: g + 1].tolist(), weights[:end].tolist(), keys[:end].tolist())
    reference_s = median_seconds(lambda: split_groups_reference(*sample), max(1, args.repeats // 2))
    # Same answer on the sample: the benchmark measures the thing the tests check.
    assert shares[:end].tolist() == split_groups_reference(*sample)

    print(f"apportion: {args.units:,} units in {args.groups:,} groups, median of {args.repeats}")
    print(f"  kernel     {args.units / kernel_s:>14,.0f} units/s  ({kernel_s * 1e3:.1f} ms)")
    print(f"  split()    {args.units / api_s:>14,.0f} units/s  ({api_s * 1e3:.1f} ms, checks included)")
    print(f"  reference  {end / reference_s:>14,.0f} units/s  ({end:,} units in {g:,} groups)")
    print(f"  kernel / reference: {(args.units / kernel_s) / (end / reference_s):,.0f}x")
    if args.pipeline:
        prepare_s, lines_s = pipeline_seconds(args.pipeline)
        print(f"engine path, {args.pipeline:,} flats in groups of 20 (one run)")
        print(f"  prepare              {args.pipeline / prepare_s:>12,.0f} members/s  ({prepare_s:.2f} s)")
        print(f"  shared_area_lines    {args.pipeline / lines_s:>12,.0f} members/s  ({lines_s:.2f} s)")


if __name__ == "__main__":
    main()
