"""The Rater's incremental rating: what a batch changes (change_of), the money
it adds (added_amounts, added_charges), and its state in parts (image_of, load)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import numpy as np

from rating.config.loader import Config
from rating.engine import READING_FIELDS, Rater, rate
from rating.model.registry import Account, Meter, Registry
from rating.pricing.pricer import price_line_amounts
from tests.test_engine import ENERGY, MAINTENANCE, SITE, readings


def config() -> Config:
    registry = Registry(
        [Meter("e1", "A", "E"), Meter("w1", "A", "E"), Meter("b1", "B", "E")],
        [Account("A", area=D("100"), tariff_id="M"), Account("B", area=D("40"), tariff_id="M")],
    )
    return Config(site=SITE, registry=registry, tariffs={"E": ENERGY, "M": MAINTENANCE})


NOW = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)  # after every reading: none is in the future
NOV = "2026-11-{:02d}T00:00:00+05:30"
DEC = "2026-12-{:02d}T00:00:00+05:30"
BATCHES = [
    readings(("e1", NOV.format(2), 0.0), ("w1", NOV.format(2), 0.0), ("b1", NOV.format(2), 0.0),
             ("w1", NOV.format(4), 5.0), ("b1", NOV.format(4), 3.0)),
    readings(("e1", NOV.format(9), 80.0)),
    readings(("e1", DEC.format(3), 150.0), ("w1", DEC.format(3), 12.0)),
    readings(("e1", DEC.format(20), 400.0), ("e1", DEC.format(20), 400.0)),
]


def ingest(rater: Rater, batch):
    periods, _anomalies, undo = rater.ingest_undoable(batch, now=NOW)
    return rater.change_of(periods, undo)


def money_by_line(amounts) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for key in zip(amounts.account_rank.tolist(), amounts.meter_index.tolist(), amounts.amount_minor.tolist(),
                   strict=True):
        out[key[:2]] = out.get(key[:2], 0) + key[2]
    return {k: v for k, v in out.items() if v}


def test_the_money_each_batch_adds_sums_to_rating_everything_at_once():
    rater = Rater(config())
    added: dict[tuple[int, int], int] = {}
    for batch in BATCHES:
        for key, minor in money_by_line(rater.added_amounts(ingest(rater, batch))).items():
            added[key] = added.get(key, 0) + minor
    c = config()
    everything = price_line_amounts(rater.totals.as_quantities(), registry=c.registry, tariffs=c.tariffs,
                                    site=c.site)
    assert {k: v for k, v in added.items() if v} == money_by_line(everything)
    whole = rate(BATCHES, config=c, now=NOW)
    assert sum(added.values()) == int(sum(whole.charges.column("amount").to_pylist()) * 100) > 0


def test_a_change_holds_only_the_accounts_and_periods_the_batch_touched():
    rater = Rater(config())
    ingest(rater, BATCHES[0])
    same_month = ingest(rater, BATCHES[1])  # e1 in November
    assert set(same_month.after.meter_index.tolist()) == {0, 1}  # all of account A, nothing of B
    assert set(same_month.before.meter_index.tolist()) == {1}  # e1's first reading made no total
    ingest(rater, BATCHES[2])  # account A: the end of November and the start of December
    december = ingest(rater, BATCHES[3])  # e1 within December
    assert len(set(december.periods.period_start.tolist())) == 1
    assert len(rater.totals) == 5  # three November totals, two December ones
    for carried in (december.after, december.before):
        assert set(carried.meter_index.tolist()) == {0, 1}  # November stays out
        assert set(carried.period_start.tolist()) == set(december.periods.period_start.tolist())
    assert added_lines_match(rater, december)


def added_lines_match(rater: Rater, change) -> bool:
    """added_charges lists the same money as added_amounts."""
    lines_minor = int(sum(rater.added_charges(change).column("amount").to_pylist()) * 100)
    return lines_minor == int(rater.added_amounts(change).amount_minor.sum()) != 0


def test_only_meters_whose_reading_state_moved_are_listed():
    rater = Rater(config())
    ingest(rater, BATCHES[0])
    repeat = ingest(rater, readings(("e1", NOV.format(2), 0.0), ("b1", NOV.format(5), 9.0)))
    assert repeat.moved.tolist() == [2]  # e1's reading is a duplicate: refused, nothing moved


def test_a_checkpoint_and_later_after_images_load_into_the_same_rater():
    live = Rater(config())
    ingest(live, BATCHES[0])
    images = [live.image_of()]
    images += [live.image_of(ingest(live, batch)) for batch in BATCHES[1:3]]
    rebuilt = Rater(config())
    rebuilt.load(images)
    for name in READING_FIELDS:
        assert np.array_equal(rebuilt.states[name], live.states[name])
    mine, theirs = rebuilt.totals.as_quantities(), live.totals.as_quantities()
    assert np.array_equal(mine.meter_index, theirs.meter_index) and np.array_equal(mine.qty, theirs.qty)
    assert rebuilt.rows_seen == live.rows_seen == 8
    assert rebuilt.feed(BATCHES[3], now=NOW).charges.equals(live.feed(BATCHES[3], now=NOW).charges)


def test_loading_no_image_is_a_fresh_rater():
    rater = Rater(config())
    ingest(rater, BATCHES[0])
    rater.load([])
    fresh = Rater(config())
    assert (rater.states == fresh.states).all() and len(rater.totals) == 0 and rater.rows_seen == 0
