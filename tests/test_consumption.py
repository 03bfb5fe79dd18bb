import datetime as dt
from decimal import Decimal as D

import numpy as np
import pytest

from rating.consumption.kernel import (
    ANOMALY_CODES,
    NULL_VALUE_INDEX,
    STATE_DTYPE,
    TimelineKeys,
    new_meter_states,
    rate_consumption,
)
from rating.errors import AmountOverflowError
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Site
from rating.model.tariff import Slab, SlabSet, Tariff, TariffVersion, TimeOfUse, TouPeriod, TouRule

SITE = Site(time_zone="Asia/Kolkata", quantity_decimals=3)
FLAT = Tariff("E", "e", (TariffVersion("E", dt.date(2020, 1, 1),
                                       energy=SlabSet("graduated", "period", (Slab(None, D(3)),))),))
PEAK = Tariff("T", "t", (TariffVersion("T", dt.date(2020, 1, 1), tou=TimeOfUse(
    "price", (TouPeriod("off", D(2)), TouPeriod("peak", D(9))),
    (TouRule(frozenset(range(1, 13)), frozenset({"weekday", "weekend", "holiday"}),
             ((0, 18 * 60, 0), (18 * 60, 22 * 60, 1), (22 * 60, 1440, 0))),))),))


def us(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * 1_000_000


def setup(*meters: Meter):
    registry = Registry(list(meters), [Account("a")])
    keys = TimelineKeys(registry, SITE, {"E": FLAT, "T": PEAK})
    return registry, keys, new_meter_states(registry, SITE)


def run(registry, keys, states, rows):
    index = np.array([registry.meter_ids.to_pylist().index(m) if m in registry.meter_ids.to_pylist()
                      else -1 for m, _, _ in rows], dtype=np.int32)
    ts = np.array([us(t) for _, t, _ in rows], dtype=np.int64)
    values = np.array([v for _, _, v in rows], dtype=np.int64)
    return rate_consumption(index, ts, values, states, keys)


def codes(anomalies) -> list[tuple[int, str, int]]:
    return [(int(r), ANOMALY_CODES[c], int(d))
            for r, c, d in zip(anomalies.row, anomalies.code, anomalies.deltas(), strict=True)]


def test_state_record_matches_the_kernel_struct():
    assert STATE_DTYPE.itemsize == 64


def test_register_delta_split_pro_rata_over_the_month_boundary():
    registry, keys, states = setup(Meter("m", "a", "E"))
    periods, anomalies = run(registry, keys, states, [
        ("m", "2026-10-31T23:30:00+05:30", 1_000),
        ("m", "2026-11-01T06:00:00+05:30", 6_000),
    ])
    # 5.000 kWh over 6.5 h, 0.5 h in October: floor(5000 * 0.5 / 6.5) = 384
    assert periods.qty[:, 0].tolist() == [384, 4616]
    epoch = dt.date(1970, 1, 1)
    assert periods.period_start.tolist() == [(dt.date(2026, 10, 1) - epoch).days,
                                             (dt.date(2026, 11, 1) - epoch).days]
    assert codes(anomalies) == []


def test_tou_split_and_every_anomaly_code():
    registry, keys, states = setup(Meter("r", "a", "T", register_digits=5, multiplier=2),
                                   Meter("i", "a", "E", mode="interval"))
    periods, anomalies = run(registry, keys, states, [
        ("r", "2026-11-02T17:00:00+05:30", 99_999_000),    # baseline near the top of 5 digits
        ("r", "2026-11-02T19:00:00+05:30", 1_000),         # rollover: 1.000 + 1.000 kWh, x2
        ("r", "2026-11-02T19:00:00+05:30", 1_000),         # duplicate
        ("r", "2026-11-02T19:00:00+05:30", 2_000),         # conflicting duplicate
        ("r", "2026-11-02T18:30:00+05:30", 1_000),         # out of order
        ("r", "2026-11-02T20:00:00+05:30", 500),           # negative delta, no rollover
        ("r", "2026-11-02T20:30:00+05:30", 100_000_000),   # out of range
        ("i", "2026-11-02T10:15:00+05:30", -5),            # negative interval quantity
        ("i", "2026-11-02T10:15:00+05:30", 750),           # first interval reading
        ("x", "2026-11-02T10:15:00+05:30", 1),             # unknown meter
    ])
    assert codes(anomalies) == [
        (1, "rollover", 4_000), (2, "duplicate", 0), (3, "conflicting_duplicate", 0),
        (4, "out_of_order", 0), (5, "negative_delta", -1_000), (6, "out_of_range", 0),
        (7, "negative_quantity", 0), (9, "unknown_meter", 0),
    ]
    r_row = periods.meter_index.tolist().index(0)
    assert periods.qty[r_row].tolist() == [2_000, 2_000]  # 17-18 off-peak, 18-19 peak
    i_row = periods.meter_index.tolist().index(1)
    assert periods.qty[i_row, 0] == 750


def test_spike_is_reported_and_does_not_move_the_meter():
    registry, keys, states = setup(Meter("m", "a", "E", max_rate_per_hour=D("4")))
    periods, anomalies = run(registry, keys, states, [
        ("m", "2026-11-02T10:00:00+05:30", 0),
        ("m", "2026-11-02T11:00:00+05:30", 4_001),   # 4.001 kWh in an hour: spike
        ("m", "2026-11-02T12:00:00+05:30", 8_000),   # 8 kWh in two hours from the last good read
    ])
    assert codes(anomalies) == [(1, "spike", 4_001)]
    assert periods.qty[0, 0] == 8_000


def test_state_carries_across_batches():
    registry, keys, states = setup(Meter("m", "a", "E"))
    run(registry, keys, states, [("m", "2026-11-02T10:00:00+05:30", 1_000)])
    assert states["has_last"][0] == 1
    periods, _ = run(registry, keys, states, [("m", "2026-11-02T10:15:00+05:30", 1_250)])
    assert periods.qty[0, 0] == 250


def test_overflow_stops_the_batch_and_names_the_row():
    registry, keys, states = setup(Meter("m", "a", "E", multiplier=2**31 - 1))
    run(registry, keys, states, [("m", "2026-11-02T10:00:00+05:30", 0)])
    with pytest.raises(AmountOverflowError, match="row 2"):
        run(registry, keys, states, [("m", "2026-11-02T10:15:00+05:30", 5),
                                     ("m", "2026-11-02T10:30:00+05:30", 2**62)])


def test_null_values_are_reported_not_priced():
    registry, keys, states = setup(Meter("m", "a", "E"))
    index = np.array([NULL_VALUE_INDEX], dtype=np.int32)
    periods, anomalies = rate_consumption(index, np.array([us("2026-11-02T10:00:00+05:30")]),
                                          np.array([0]), states, keys)
    assert codes(anomalies) == [(0, "null_value", 0)]
    assert len(periods.meter_index) == 0


def test_chunked_kernel_runs_give_the_same_result(monkeypatch):
    rows = [("m", "2026-11-02T10:00:00+05:30", 0), ("m", "2026-11-02T10:15:00+05:30", 100),
            ("m", "2026-11-02T10:15:00+05:30", 100), ("m", "2026-11-02T10:30:00+05:30", 50),
            ("m", "2026-11-02T10:45:00+05:30", 400), ("x", "2026-11-02T10:45:00+05:30", 1)]
    registry, keys, states = setup(Meter("m", "a", "E"))
    whole, whole_anomalies = run(registry, keys, states, rows)
    monkeypatch.setattr("rating.consumption.kernel.CHUNK_ROWS", 2)
    registry, keys, states = setup(Meter("m", "a", "E"))
    chunked, chunked_anomalies = run(registry, keys, states, rows)
    assert codes(chunked_anomalies) == codes(whole_anomalies) == [
        (2, "duplicate", 0), (3, "negative_delta", -50), (5, "unknown_meter", 0)]
    assert chunked.qty.tolist() == whole.qty.tolist() == [[400]]


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PLAIN = Site(time_zone="UTC", quantity_decimals=0)


def rate_pair(first: int, second: int, multiplier: int = 1):
    """Two readings an hour apart of a register meter without digits, in quantity units."""
    registry = Registry([Meter("m", "a", "E", multiplier=multiplier)], [Account("a")])
    keys = TimelineKeys(registry, PLAIN, {"E": FLAT})
    states = new_meter_states(registry, PLAIN)
    ts = np.array([us("2026-11-02T10:00:00+00:00"), us("2026-11-02T11:00:00+00:00")], dtype=np.int64)
    return rate_consumption(np.zeros(2, np.int32), ts, np.array([first, second], np.int64), states, keys)


@pytest.mark.parametrize(("first", "second", "multiplier"), [
    (5 * 10**18, -5 * 10**18, 1),        # the difference wraps to +8.4e18 in int64
    (INT64_MAX, INT64_MIN, 1),           # the largest fall: 2^64 - 1
    (INT64_MAX, INT64_MIN, 2**31 - 1),   # and times the largest multiplier
    (10**18, -(10**18), 40),             # fits int64, but not times the multiplier
    (0, INT64_MIN, 1),                   # -2^63 itself fits
])
def test_a_fall_between_far_apart_values_is_a_negative_delta_never_priced(first, second, multiplier):
    periods, anomalies = rate_pair(first, second, multiplier)
    assert codes(anomalies) == [(1, "negative_delta", (second - first) * multiplier)]
    assert len(periods.meter_index) == 0


@pytest.mark.parametrize(("first", "second", "multiplier"), [
    (-5 * 10**18, 5 * 10**18, 1),   # the difference wraps to -8.4e18 in int64
    (INT64_MIN, INT64_MAX, 1),
    (0, INT64_MAX, 2),
])
def test_a_rise_past_int64_is_an_overflow_error_never_a_wrap(first, second, multiplier):
    with pytest.raises(AmountOverflowError, match="row 2"):
        rate_pair(first, second, multiplier)


def test_the_largest_rise_that_fits_is_priced():
    periods, anomalies = rate_pair(INT64_MIN + 1, 0)  # 2^63 - 1
    assert codes(anomalies) == []
    assert periods.qty[:, 0].tolist() == [INT64_MAX]
