"""The fast path of a bill (integer minor units) equals the Decimal reference."""

from __future__ import annotations

from hypothesis import given

from rating.billing.compute import draft_bill
from rating.billing.reference import reference_bill
from tests.billing_strategies import BillCase, bill_cases


@given(bill_cases())
def test_a_draft_bill_equals_the_decimal_reference(case: BillCase):
    bill = draft_bill(case.cycle, case.unit, case.config, case.usage, case.dues, items=case.items)
    fast = [(line.head, line.kind, line.amount_minor, line.ref) for line in bill.lines]
    assert fast == reference_bill(case.cycle, case.unit, case.config, case.usage, case.dues, case.items)
