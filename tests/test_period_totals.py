import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.consumption.period_totals import PeriodTotals
from rating.consumption.quantities import PeriodQuantities
from rating.errors import AmountOverflowError


def periods(rows) -> PeriodQuantities:
    """rows: (meter, period_start, [qty per TOU])"""
    return PeriodQuantities(
        meter_index=np.array([r[0] for r in rows], np.int32),
        period_start=np.array([r[1] for r in rows], np.int32),
        period_end=np.array([r[1] + 30 for r in rows], np.int32),
        qty=np.array([r[2] for r in rows], np.int64).reshape(len(rows), -1 if rows else 2),
    )


def as_rows(totals: PeriodTotals) -> list:
    p = totals.as_quantities()
    rows = zip(p.meter_index, p.period_start, p.qty, strict=True)
    return [(int(m), int(s), q.tolist()) for m, s, q in rows]


def test_known_periods_add_in_place_of_a_copy_and_new_ones_join_in_key_order():
    first = PeriodTotals.empty(2).merge(periods([(3, 100, [1, 2]), (1, 100, [5, 0])]))
    assert as_rows(first) == [(1, 100, [5, 0]), (3, 100, [1, 2])]
    known = first.merge(periods([(3, 100, [10, 0]), (1, 100, [0, 7])]))  # mid-period batch
    assert as_rows(known) == [(1, 100, [5, 7]), (3, 100, [11, 2])]
    opened = known.merge(periods([(1, 130, [4, 4]), (3, 100, [1, 1])]))  # a new period opens
    assert as_rows(opened) == [(1, 100, [5, 7]), (1, 130, [4, 4]), (3, 100, [12, 3])]
    assert as_rows(first) == [(1, 100, [5, 0]), (3, 100, [1, 2])]  # snapshots stay as they were


def test_a_sum_past_int64_raises():
    big = PeriodTotals.empty(1).merge(periods([(0, 100, [2**62])]))
    with pytest.raises(AmountOverflowError):
        big.merge(periods([(0, 100, [2**62])]))


BATCH_ROWS = st.lists(st.tuples(st.integers(0, 6), st.sampled_from([100, 130, 161]),
                                st.lists(st.integers(-1000, 1000), min_size=2, max_size=2)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(BATCH_ROWS, max_size=6), st.lists(st.integers(0, 2), min_size=7, max_size=7), BATCH_ROWS)
def test_merges_and_selections_equal_a_dict_of_sums(batches, accounts, probe):
    totals, want = PeriodTotals.empty(2), {}
    for rows in batches:
        before = as_rows(totals)
        totals_next = totals.merge(periods(rows))
        assert as_rows(totals) == before  # never written into
        totals = totals_next
        for meter, start, qty in rows:
            old = want.get((meter, start), [0, 0])
            want[(meter, start)] = [a + b for a, b in zip(old, qty, strict=True)]
    assert as_rows(totals) == [(m, s, q) for (m, s), q in sorted(want.items())]
    account_of_meter = np.array(accounts, np.int32)
    wanted = {(accounts[m], s) for m, s, _ in probe}
    picked = totals.select_like(periods(probe), account_of_meter)
    got = [(int(m), int(s)) for m, s in zip(picked.meter_index, picked.period_start, strict=True)]
    assert got == [(m, s) for (m, s) in sorted(want) if (accounts[m], s) in wanted]
