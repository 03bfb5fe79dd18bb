"""The engine (Cython kernel + exact pricing) equals the Decimal reference,
and incremental rating sums to rating at once (docs/semantics.md)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from rating.config import Config
from rating.engine import Rater
from rating.pricing import price_line_amounts, price_periods
from rating.reference import RefReading, reference_rate
from tests.strategies import World, worlds

LINE_FIELDS = ("account_id", "meter_id", "tariff_id", "period_start", "period_end", "component",
               "tou_period", "slab", "quantity", "unit_price", "amount")


def config_of(world: World) -> Config:
    return Config(site=world.site, registry=world.registry, tariffs=world.tariffs, groups_path=None)


def readings_table(rows) -> pa.Table:
    return pa.table({
        "meter_id": pa.array([r[0] for r in rows], pa.string()),
        "ts": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        "value": pa.array([r[2] for r in rows], pa.decimal128(18, 3)),
    })


def engine_lines(charges: pa.Table) -> Counter:
    return Counter(tuple(row[f] for f in LINE_FIELDS) for row in charges.to_pylist())


def reference_lines(world: World):
    readings = [RefReading(meter_id=m, ts=t, value=v) for m, t, v in world.readings]
    return reference_rate(readings, ts_unit="us", site=world.site, registry=world.registry,
                          tariffs=world.tariffs, now=world.now)


def comparable(lines) -> Counter:
    """Lines as tuples whose Decimals compare by value, not by exponent."""
    return Counter(
        tuple(v.normalize() if isinstance(v, Decimal) else v for v in line) for line in lines
    )


@given(worlds())
def test_engine_charges_equal_the_reference_exactly(world):
    rater = Rater(config_of(world))
    rater.ingest(readings_table(world.readings), now=world.now)
    ref_lines, _ = reference_lines(world)
    expected = comparable(tuple(getattr(line, f) for f in LINE_FIELDS) for line in ref_lines)
    assert comparable(engine_lines(rater.charges()).elements()) == expected


@given(worlds())
def test_engine_anomalies_equal_the_reference(world):
    rater = Rater(config_of(world))
    _, anomalies = rater.ingest(readings_table(world.readings), now=world.now)
    _, ref_anomalies = reference_lines(world)
    fields = ["row", "code", "delta", "priced"]  # ts may lie past what Python dates hold
    got = [(a["row"], a["code"], a["delta"], a["priced"]) for a in anomalies.select(fields).to_pylist()]
    want = [(a.row, a.code, a.delta, a.priced) for a in ref_anomalies]
    assert got == want


@given(worlds(), st.lists(st.integers(0, 40), max_size=5))
def test_chunked_incremental_charges_sum_to_rating_at_once(world, cuts):
    config = config_of(world)
    once = Rater(config)
    once.ingest(readings_table(world.readings), now=world.now)
    total = Counter()
    for line in once.charges().to_pylist():
        total[_key(line)] += line["amount"]

    chunked = Rater(config)
    increments = Counter()
    edges = sorted({0, len(world.readings), *(c for c in cuts if c < len(world.readings))})
    for start, end in zip(edges, edges[1:], strict=False):
        part = chunked.feed(readings_table(world.readings[start:end]), now=world.now)
        for line in part.charges.to_pylist():
            increments[_key(line)] += line["amount"]
    assert {k: v for k, v in increments.items() if v} == {k: v for k, v in total.items() if v}
    assert engine_lines(chunked.charges()) == engine_lines(once.charges())


@given(worlds())
def test_line_amounts_are_the_charges_tables_amounts_line_for_line(world):
    config = config_of(world)
    rater = Rater(config)
    rater.ingest(readings_table(world.readings), now=world.now)
    periods = rater.totals.as_quantities()
    table = price_periods(periods, registry=config.registry, tariffs=config.tariffs, site=config.site)
    amounts = price_line_amounts(periods, registry=config.registry, tariffs=config.tariffs, site=config.site)
    accounts = sorted(config.registry.accounts)
    meters = [m.meter_id for m in config.registry.meters]
    from_amounts = Counter(
        (accounts[a], None if m < 0 else meters[m], Decimal(v).scaleb(-world.site.minor_unit_exponent))
        for a, m, v in zip(amounts.account_rank.tolist(), amounts.meter_index.tolist(),
                           amounts.amount_minor.tolist(), strict=True))
    from_table = Counter((line["account_id"], line["meter_id"], line["amount"]) for line in table.to_pylist())
    assert comparable(from_amounts.elements()) == comparable(from_table.elements())


def _key(line: dict) -> tuple:
    return tuple(line[f] for f in LINE_FIELDS[:8])
