"""rate() given periods, with part periods, equals the Decimal reference
(docs/semantics.md "Asked periods", docs/tariffs.md "Part periods"): worlds of
tests.strategies with dated meters and accounts, tariffs that prorate or not,
and a month or a range of months asked."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from rating.config.loader import Config
from rating.engine import rate
from rating.model.months import parse_months
from rating.model.registry import Registry
from rating.model.tariff import Tariff
from rating.reference.charges import RefReading, reference_rate
from tests.strategies import World, worlds
from tests.test_reference_equivalence import LINE_FIELDS, comparable, engine_lines, outcome, readings_table

# Around the worlds' readings (28 November 2026 on): move-ins, move-outs, a sale.
DATES = [None, None, dt.date(2026, 11, 1), dt.date(2026, 11, 20), dt.date(2026, 11, 29),
         dt.date(2026, 11, 30), dt.date(2026, 12, 1), dt.date(2026, 12, 5), dt.date(2026, 12, 31)]
MONTHS = ["2026-11", "2026-12", "2026-11..2026-12", "2026-10..2027-01", "2027-01"]


@st.composite
def dates(draw):
    first, last = draw(st.sampled_from(DATES)), draw(st.sampled_from(DATES))
    if first is not None and last is not None and last < first:
        first, last = last, first
    return {"active_from": first, "active_until": last}


@st.composite
def dated_worlds(draw) -> tuple[World, str]:
    world = draw(worlds(max_readings=30))
    registry = world.registry
    meters = [dataclasses.replace(m, **draw(dates())) for m in registry.meters]
    accounts = [dataclasses.replace(a, **draw(dates())) for a in registry.accounts.values()]
    tariffs = {tariff_id: _prorating(tariff, draw) for tariff_id, tariff in world.tariffs.items()}
    world = dataclasses.replace(world, registry=Registry(meters, accounts), tariffs=tariffs)
    return world, draw(st.sampled_from(MONTHS))


def _prorating(tariff: Tariff, draw) -> Tariff:
    versions = tuple(dataclasses.replace(v, prorate=draw(st.sampled_from([True, True, False])))
                     for v in tariff.versions)
    return dataclasses.replace(tariff, versions=versions)


def engine_outcome(world: World, months: str):
    def run():
        config = Config(site=world.site, registry=world.registry, tariffs=world.tariffs)
        table = readings_table(world.readings, world.site.quantity_decimals)
        result = rate(table, config=config, now=world.now, periods=months)
        rows = result.anomalies.select(["row", "code", "delta", "priced"]).to_pylist()
        lines = comparable(engine_lines(result.charges).elements())
        return lines, [(a["row"], a["code"], a["delta"], a["priced"]) for a in rows]
    return outcome(run)


def reference_outcome(world: World, months: str):
    def run():
        readings = [RefReading(meter_id=m, ts=t, value=v) for m, t, v in world.readings]
        lines, anomalies = reference_rate(readings, ts_unit="us", site=world.site, registry=world.registry,
                                          tariffs=world.tariffs, now=world.now, months=parse_months(months))
        return (comparable(tuple(getattr(line, f) for f in LINE_FIELDS) for line in lines),
                [(a.row, a.code, a.delta, a.priced) for a in anomalies])
    return outcome(run)


@given(dated_worlds())
def test_asked_periods_and_part_periods_equal_the_reference(case):
    world, months = case
    assert engine_outcome(world, months) == reference_outcome(world, months)
