"""The kernel on a batch grouped by meter (rating.consumption.kernel `grouped`)
gives what it gives in arrival order: the same charges, the same anomalies
in reading order, the same first error, the same meter states after."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings

from rating._ext._order import group_by_meter
from rating.consumption import kernel as consumption
from rating.engine import Rater
from rating.errors import AmountOverflowError
from tests.strategies import World, worlds
from tests.test_reference_equivalence import config_of, engine_lines, readings_table


def rated(world: World, grouped: bool):
    with mock.patch.object(consumption, "grouping_pays", lambda meters, readings: grouped):
        rater = Rater(config_of(world))
        table = readings_table(world.readings, world.site.quantity_decimals)
        try:  # a world past the exact range fails in rating or in pricing, the same either way
            _, anomalies = rater.ingest(table, now=world.now)
            lines = engine_lines(rater.charges())
        except AmountOverflowError as exc:
            return "error", exc.message, exc.where
        rows = anomalies.select(["row", "code", "delta", "priced"]).to_pylist()
        return lines, rows, rater.states.tobytes()


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_grouped_and_arrival_order_agree_on_everything(world):
    assert rated(world, grouped=True) == rated(world, grouped=False)


def test_grouping_is_stable_and_puts_rejected_readings_first():
    rng = np.random.default_rng(3)
    for meters in (1, 1000, 3000, 2**21):  # one, two and three radix passes
        index = rng.integers(-3, min(meters, 5000), size=20_000).astype(np.int32)
        ts = np.arange(len(index), dtype=np.int64)
        grouped_index, grouped_ts, grouped_value, rows = group_by_meter(index, ts, ts * 7, meters)
        order = np.argsort(np.where(index < 0, -1, index), kind="stable")
        assert rows.tolist() == order.tolist()
        assert grouped_index.tolist() == index[order].tolist()
        assert grouped_ts.tolist() == order.tolist() and grouped_value.tolist() == (order * 7).tolist()


def test_the_choice_is_automatic_by_meters_read():
    assert not consumption.grouping_pays(100_000, 10_000_000)
    assert consumption.grouping_pays(consumption.GROUPED_METERS_MIN, 4 * consumption.GROUPED_METERS_MIN)
    assert not consumption.grouping_pays(consumption.GROUPED_METERS_MIN, consumption.GROUPED_METERS_MIN)
