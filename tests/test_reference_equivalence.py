"""The engine (Cython kernel + exact pricing) equals the Decimal reference,
and incremental rating sums to rating at once (docs/semantics.md).

Reading values span the whole range the readings layer accepts; where a
result leaves the int64 fixed-point range, both sides raise
AmountOverflowError (never a wrapped number), and the tests check they agree
on that too."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.config.loader import Config
from rating.engine import Rater
from rating.errors import AmountOverflowError
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Site
from rating.model.tariff import Slab, SlabSet, Tariff, TariffVersion
from rating.pricing.pricer import price_line_amounts, price_periods
from rating.reference.charges import RefReading, reference_rate
from tests.strategies import INT64_MAX, INT64_MIN, US, World, value_type, worlds

LINE_FIELDS = ("account_id", "meter_id", "tariff_id", "period_start", "period_end", "component",
               "tou_period", "slab", "quantity", "unit_price", "amount")


def config_of(world: World) -> Config:
    return Config(site=world.site, registry=world.registry, tariffs=world.tariffs)


OVERFLOW = "AmountOverflowError"


def readings_table(rows, quantity_decimals: int) -> pa.Table:
    values = [r[2] for r in rows]
    if quantity_decimals == 0:  # an int64 column, the one type that carries all of int64
        values = [None if v is None else int(v) for v in values]
    return pa.table({
        "meter_id": pa.array([r[0] for r in rows], pa.string()),
        "ts": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        "value": pa.array(values, value_type(quantity_decimals)),
    })


def outcome(compute):
    """What `compute` returns, or OVERFLOW if it raises AmountOverflowError."""
    try:
        return compute()
    except AmountOverflowError:
        return OVERFLOW


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


def engine_outcome(world: World):
    """(charge lines, anomaly rows) of rating the world at once, or OVERFLOW."""
    def run():
        rater = Rater(config_of(world))
        table = readings_table(world.readings, world.site.quantity_decimals)
        _, anomalies = rater.ingest(table, now=world.now)
        lines = comparable(engine_lines(rater.charges()).elements())
        fields = ["row", "code", "delta", "priced"]  # ts may lie past what Python dates hold
        rows = anomalies.select(fields).to_pylist()
        return lines, [(a["row"], a["code"], a["delta"], a["priced"]) for a in rows]
    return outcome(run)


def reference_outcome(world: World):
    def run():
        ref_lines, ref_anomalies = reference_lines(world)
        lines = comparable(tuple(getattr(line, f) for f in LINE_FIELDS) for line in ref_lines)
        return lines, [(a.row, a.code, a.delta, a.priced) for a in ref_anomalies]
    return outcome(run)


@given(worlds())
def test_engine_charges_equal_the_reference_exactly(world):
    engine, reference = engine_outcome(world), reference_outcome(world)
    if OVERFLOW in (engine, reference):
        assert engine == reference
    else:
        assert engine[0] == reference[0]


@given(worlds())
def test_engine_anomalies_equal_the_reference(world):
    engine, reference = engine_outcome(world), reference_outcome(world)
    if OVERFLOW in (engine, reference):
        assert engine == reference
    else:
        assert engine[1] == reference[1]


@given(worlds(), st.lists(st.integers(0, 40), max_size=5))
def test_chunked_incremental_charges_sum_to_rating_at_once(world, cuts):
    config = config_of(world)
    qd = world.site.quantity_decimals

    def at_once():
        rater = Rater(config)
        rater.ingest(readings_table(world.readings, qd), now=world.now)
        return rater, rater.charges()

    def in_chunks():
        rater = Rater(config)
        increments = Counter()
        edges = sorted({0, len(world.readings), *(c for c in cuts if c < len(world.readings))})
        for start, end in zip(edges, edges[1:], strict=False):
            part = rater.feed(readings_table(world.readings[start:end], qd), now=world.now)
            for line in part.charges.to_pylist():
                increments[_key(line)] += line["amount"]
        return rater, increments

    once, chunked = outcome(at_once), outcome(in_chunks)
    if OVERFLOW in (once, chunked):
        assert once == chunked
        return
    total = Counter()
    for line in once[1].to_pylist():
        total[_key(line)] += line["amount"]
    assert {k: v for k, v in chunked[1].items() if v} == {k: v for k, v in total.items() if v}
    assert engine_lines(chunked[0].charges()) == engine_lines(once[1])


@given(worlds())
def test_line_amounts_are_the_charges_tables_amounts_line_for_line(world):
    config = config_of(world)
    rater = Rater(config)
    table_in = readings_table(world.readings, world.site.quantity_decimals)
    if outcome(lambda: rater.ingest(table_in, now=world.now)) == OVERFLOW:
        return  # the other tests hold the engine's overflows to the reference's
    periods = rater.totals.as_quantities()
    table = outcome(lambda: price_periods(periods, registry=config.registry, tariffs=config.tariffs,
                                          site=config.site))
    amounts = outcome(lambda: price_line_amounts(periods, registry=config.registry,
                                                 tariffs=config.tariffs, site=config.site))
    if OVERFLOW in (table, amounts):
        assert table == amounts
        return
    accounts = sorted(config.registry.accounts)
    meters = [m.meter_id for m in config.registry.meters]
    from_amounts = Counter(
        (accounts[a], None if m < 0 else meters[m], Decimal(v).scaleb(-world.site.minor_unit_exponent))
        for a, m, v in zip(amounts.account_rank.tolist(), amounts.meter_index.tolist(),
                           amounts.amount_minor.tolist(), strict=True))
    from_table = Counter((line["account_id"], line["meter_id"], line["amount"]) for line in table.to_pylist())
    assert comparable(from_amounts.elements()) == comparable(from_table.elements())


EDGE_UNITS = [INT64_MIN, -INT64_MAX, -5 * 10**18, -1, 0, 1, 5 * 10**18, INT64_MAX]


def edge_world(first: int, second: int, multiplier: int) -> World:
    """Two readings an hour apart of a register meter without digits."""
    site = Site(time_zone="UTC", quantity_decimals=0)
    energy = SlabSet("graduated", "period", (Slab(None, Decimal("0.000001")),))
    tariffs = {"E": Tariff("E", "e", (TariffVersion("E", dt.date(2020, 1, 1), energy=energy),))}
    registry = Registry([Meter("m", "a", "E", multiplier=multiplier)], [Account("a")])
    start = int(dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc).timestamp()) * US
    readings = [("m", start, Decimal(first)), ("m", start + 3600 * US, Decimal(second))]
    return World(site, registry, tariffs, readings, now=dt.datetime(2026, 11, 3, tzinfo=dt.timezone.utc))


@pytest.mark.parametrize("multiplier", [1, 40])
def test_register_values_at_the_ends_of_the_range_agree_with_the_reference(multiplier):
    for first, second in itertools.product(EDGE_UNITS, repeat=2):
        world = edge_world(first, second, multiplier)
        assert engine_outcome(world) == reference_outcome(world), (first, second)


def _key(line: dict) -> tuple:
    return tuple(line[f] for f in LINE_FIELDS[:8])
