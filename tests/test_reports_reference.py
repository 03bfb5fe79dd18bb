"""The array reports equal their plain-loop reference (rating.reports.reference)
on any rows a ledger could hold: random entries, credits, receipts (some
reversed) and bills (some cancelled), any as-of day."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from rating.billing.ledger import ReportRows
from rating.reports import ageing, facts, kpis, reference

START = dt.date(2024, 1, 1)
days = st.integers(0, 400).map(lambda n: START + dt.timedelta(days=n))
accounts = st.sampled_from(["A-101", "A-102", "B-201"])
refs = st.sampled_from([f"B/{i}" for i in range(6)] + ["CN/1", "import"])
amounts = st.integers(-10**9, 10**9).filter(bool)


@st.composite
def ledgers(draw) -> ReportRows:
    entries = draw(st.lists(st.tuples(accounts, refs, days, st.integers(0, 1), days, amounts), max_size=40))
    credits = draw(st.lists(st.tuples(accounts, days, st.integers(-10**8, 10**9)), max_size=8))
    receipts = [(a, f"R/{i}", m, on, amount, back)
                for i, (a, m, on, amount, back) in enumerate(draw(st.lists(st.tuples(
                    accounts, st.sampled_from(["cash", "cheque", "transfer", "gateway"]), days,
                    st.integers(1, 10**9), st.none() | days), max_size=10)))]
    bills = [(f"B/{i}", a, f"cycle-{i % 3}", issued, issued + dt.timedelta(days=15), total, cancelled)
             for i, (a, issued, total, cancelled) in enumerate(draw(st.lists(st.tuples(
                 accounts, days, st.integers(-10**6, 10**9), st.booleans()), max_size=6)))]
    return ReportRows(entries, credits, receipts, bills)


@settings(max_examples=150, deadline=None)
@given(ledgers(), days, st.booleans())
def test_ageing_equals_its_reference(rows, as_of, every):
    table = ageing.ageing(facts.index("s", rows), as_of, every_account=every)
    expected = reference.ageing(rows, as_of, every_account=every)
    assert [tuple(r.values()) for r in table.to_pylist()] == expected


@settings(max_examples=100, deadline=None)
@given(ledgers(), days, st.integers(0, 20))
def test_kpis_equal_their_reference(rows, as_of, grace):
    found = facts.index("s", rows)
    assert kpis.kpis(found, as_of, grace_days=grace).to_pylist() == reference.kpis(rows, as_of,
                                                                                  grace_days=grace)


def test_overflowing_amounts_are_refused_not_wrapped():
    import pytest

    from rating.errors import AmountOverflowError

    big = [("A-101", "B/1", START, 0, START, 2**61)] * 4
    with pytest.raises(AmountOverflowError, match="2\\^62"):
        facts.index("s", ReportRows(big, [], [], []))
