"""Interest on the declining balance from each payment date: the fast path
equals the Decimal reference, and a payment lowers the interest from its day."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from rating.billing.compute import draft_bill
from rating.billing.config import billing_from_mapping
from rating.billing.documents import Cycle, DuesItem, LineKind, Unit
from rating.billing.interest import Paid
from rating.billing.reference import reference_bill
from tests.billing_strategies import SITE, BillCase, bill_cases


@st.composite
def cases_with_payments(draw) -> tuple[BillCase, tuple[Paid, ...]]:
    case = draw(bill_cases())
    paid = []
    for item in case.dues + tuple(dataclasses.replace(i, amount_minor=0) for i in case.dues[:1]):
        for _ in range(draw(st.integers(0, 2))):
            after = draw(st.integers(1, max(1, (case.cycle.period_end - item.due_date).days)))
            paid.append(Paid(item.head, item.kind, item.bill_ref, item.due_date,
                             item.due_date + dt.timedelta(days=after), draw(st.integers(-10**4, 10**6))))
    settled = DuesItem("maintenance", LineKind.CHARGE, 0, case.cycle.period_start - dt.timedelta(days=40),
                       "B/9")
    if draw(st.booleans()):  # a due paid off late: no longer open, its late days still bear interest
        paid.append(Paid(settled.head, settled.kind, settled.bill_ref, settled.due_date,
                         settled.due_date + dt.timedelta(days=draw(st.integers(1, 60))), draw(st.integers(1,
                                                                                                          10**6))))
    return case, tuple(paid)


@settings(max_examples=200, deadline=None)
@given(cases_with_payments())
def test_interest_with_payments_equals_the_decimal_reference(case_paid):
    case, paid = case_paid
    bill = draft_bill(case.cycle, case.unit, case.config, case.usage, case.dues, items=case.items, paid=paid)
    fast = [(line.head, line.kind, line.amount_minor, line.ref) for line in bill.lines]
    assert fast == reference_bill(case.cycle, case.unit, case.config, case.usage, case.dues, case.items, paid)


JUNE = Cycle("s", dt.date(2025, 6, 1), dt.date(2025, 6, 30), dt.date(2025, 7, 1), dt.date(2025, 7, 15))
SIMPLE = {"method": "simple_daily", "rate": "36.5", "on": ["maintenance"]}
RULES = billing_from_mapping({"heads": {"maintenance": {"kind": "fixed", "rate": "0"}},
                              "interest": {"interest": SIMPLE}}, where="billing.toml", site=SITE)


def interest(dues, paid) -> int:
    bill = draft_bill(JUNE, Unit("A-101"), RULES, (), dues, paid=paid)
    return sum(line.amount_minor for line in bill.lines if line.kind is LineKind.INTEREST)


def test_a_payment_lowers_the_balance_interest_runs_on_from_its_day():
    due = dt.date(2025, 5, 31)  # late from 1 June: 30 days in June at 0.1 % a day
    owed = [DuesItem("maintenance", LineKind.CHARGE, 100_000, due, "B/1")]
    half = [DuesItem("maintenance", LineKind.CHARGE, 50_000, due, "B/1")]
    paid_16th = [Paid("maintenance", LineKind.CHARGE, "B/1", due, dt.date(2025, 6, 16), 50_000)]
    paid_all = [Paid("maintenance", LineKind.CHARGE, "B/1", due, dt.date(2025, 6, 11), 100_000)]
    assert interest(owed, ()) == 3_000  # 100,000 x 0.1 % x 30
    assert interest(half, paid_16th) == 1_500 + 750  # 15 days on 100,000, then 15 on 50,000
    assert interest((), paid_all) == 1_000  # paid off on the 11th: 10 late days
