"""Deduction planning: debits per account wallet from the Rater, rollback,
meter-state images, and the registry lookups it relies on."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.config.loader import load_config
from rating.model.registry import Account, Meter, Registry
from rating.prepaid.meterstate import StateImage
from rating.prepaid.planning import DeductionPlanner
from rating.prepaid.sitedocs import SiteDocs
from rating.readings.batches import meter_indexes
from tests.prepaid_site import batches, readings, write_site


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return write_site(tmp_path_factory.mktemp("site"), flats=5)


def planner_for(site):
    config, policy = SiteDocs.from_site_file(site).build()
    return DeductionPlanner(config, policy)


def debits(plans) -> dict:
    out: dict = {}
    for plan in plans:
        entries = plan.entries
        for a, w, x in zip(entries.account_ids, entries.wallets, entries.changes_minor.tolist(), strict=True):
            out[(a, w)] = out.get((a, w), 0) - x
    return {k: v for k, v in out.items() if v}


@given(cuts=st.lists(st.integers(1, 119), max_size=6, unique=True))
def test_any_split_of_the_readings_debits_the_same_per_wallet(site, cuts):
    table = readings(5, 12)  # 120 readings
    bounds = [0, *sorted(cuts), table.num_rows]
    planner = planner_for(site)
    split = [planner.plan(table.slice(lo, hi - lo)) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    whole = planner_for(site).plan(table)
    assert debits(split) == debits([whole])


def test_entries_come_ordered_by_account_then_wallet(site):
    plan = planner_for(site).plan(readings(5, 3))
    pairs = list(zip(plan.entries.account_ids, plan.entries.wallets, strict=True))
    assert pairs == sorted(pairs) and len(pairs) == len(set(pairs)) > 0


def test_rollback_returns_the_rater_to_before_the_batch(site):
    table = readings(5, 8)
    first, second = batches(table, 40)[:2]
    planner = planner_for(site)
    planner.plan(first)
    states, totals = planner.rater.states.copy(), planner.rater.totals
    undone = planner.plan(second)
    planner.rollback(undone)
    assert np.array_equal(planner.rater.states, states) and planner.rater.totals is totals
    again = planner.plan(second)
    assert debits([again]) == debits([undone])


def test_rolling_back_a_plan_takes_back_the_later_ones_and_never_a_finished_one(site):
    parts = batches(readings(5, 8), 10)
    planner = planner_for(site)
    first = planner.plan(parts[0])
    states, totals = planner.rater.states.copy(), planner.rater.totals
    second, third = planner.plan(parts[1]), planner.plan(parts[2])
    planner.finished(first)
    planner.rollback(second)
    assert (planner.rater.states == states).all() and planner.rater.totals is totals
    with pytest.raises(RuntimeError, match="committed or already rolled back"):
        planner.rollback(first)
    again = [planner.plan(p) for p in parts[1:3]]
    assert debits(again) == debits([second, third])


def test_checkpoint_plus_images_restore_the_rater(site):
    table = readings(5, 10)
    parts = batches(table, 17)
    planner = planner_for(site)
    plans = [planner.plan(p) for p in parts[:3]]
    checkpoint = planner.checkpoint()
    plans += [planner.plan(p) for p in parts[3:6]]
    images = [StateImage.from_bytes(checkpoint.to_bytes())] + [
        StateImage.from_bytes(p.state.to_bytes()) for p in plans[3:]]
    restored = planner_for(site)
    restored.restore(images)
    live = planner.rater
    for name in ("last_ts", "last_value", "has_last"):
        assert np.array_equal(restored.rater.states[name], live.states[name])
    mine, theirs = restored.rater.totals.as_quantities(), live.totals.as_quantities()
    assert np.array_equal(mine.meter_index, theirs.meter_index) and np.array_equal(mine.qty, theirs.qty)
    rest = parts[6:]
    assert debits([restored.plan(p) for p in rest]) == debits([planner.plan(p) for p in rest])


def test_a_batch_with_an_unknown_meter_changes_nothing(site):
    from rating.errors import InputError

    table = readings(5, 2)
    bad = table.set_column(0, "meter_id", pa.array(table.column("meter_id").to_pylist()[:-1] + ["NOPE"]))
    planner = planner_for(site)
    states = planner.rater.states.copy()
    with pytest.raises(InputError, match="NOPE"):
        planner.plan(bad)
    assert np.array_equal(planner.rater.states, states) and len(planner.rater.totals) == 0


def test_large_text_registries_are_looked_up_like_index_in(site):
    n = 6000  # over the size where a dict built once replaces hashing the registry per batch
    ids = [f"M{i:05d}" for i in range(n)]
    registry = Registry([Meter(m, "A", "T") for m in ids], [Account("A")])
    rng = np.random.default_rng(3)
    asked = pa.array([ids[i] if i < n else f"X{i}" for i in rng.integers(0, n + 50, 3000)] + [None])
    expected = pc.index_in(asked, value_set=registry.meter_ids).fill_null(-1).to_numpy(zero_copy_only=False)
    assert np.array_equal(meter_indexes(asked, registry), expected.astype(np.int32))
    assert np.array_equal(meter_indexes(asked.dictionary_encode(), registry), expected.astype(np.int32))
    assert np.array_equal(meter_indexes(pa.array([], pa.string()), registry), np.empty(0, np.int32))


def test_the_site_used_here_rates_like_the_file_config(site):
    docs_config, _ = SiteDocs.from_site_file(site).build()
    file_config = load_config(site)
    assert [m.meter_id for m in docs_config.registry.meters] == [
        m.meter_id for m in file_config.registry.meters]
    assert set(docs_config.tariffs) == set(file_config.tariffs)
