"""Owner tags: each rule on hand-made histories, and histories read from both
dues ledgers after real payments (their days and means from the allocations)."""

from __future__ import annotations

import datetime as dt

import pytest

from rating.billing.ledger_payment_types import Method, PaymentRequest
from rating.notify.bills import bills, open_by_bill, owed
from rating.notify.outbox import Outbox
from rating.notify.tags import BillHistory, TagRules, histories, owner_tags
from tests.billing_drafts import JUNE, MAY, SITE, batch, draft, run

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger
TODAY = dt.date(2025, 9, 1)


def bill(month: int, *, open_minor: int = 0, paid_day: int | None = None, offline: bool | None = None,
         year: int = 2025) -> BillHistory:
    paid = None if paid_day is None else dt.date(year, month, paid_day)
    return BillHistory(dt.date(year, month, 1), dt.date(year, month, 15), 1000, open_minor, paid, offline)


@pytest.mark.parametrize(("bills", "tags"), [
    ([], set()),
    ([bill(5, paid_day=2), bill(6, paid_day=3), bill(7, paid_day=1)],
     {"on_time", "early_payer", "new_owner"}),
    ([bill(5, paid_day=14), bill(6, paid_day=15), bill(7, paid_day=10)], {"on_time", "new_owner"}),
    ([bill(5, paid_day=20), bill(6, open_minor=1000), bill(7, paid_day=2)], {"habitual_late", "new_owner"}),
    ([bill(5, paid_day=20), bill(6, paid_day=2)], {"new_owner"}),  # one late bill is not a habit
    ([bill(8, open_minor=400)], {"partial_payer", "new_owner"}),  # not yet due: not late
    ([bill(5, year=2019, paid_day=1), bill(5, paid_day=1, offline=True), bill(6, paid_day=1, offline=True),
      bill(7, paid_day=1, offline=False)], {"long_tenure", "on_time", "early_payer", "prefers_offline"}),
])
def test_each_tag_is_earned_by_its_rule(bills, tags):
    assert owner_tags(bills, TODAY) == tags


def test_tenure_counts_whole_years_and_the_thresholds_are_the_sites():
    four_years = [bill(9, year=2021, paid_day=2), bill(5, paid_day=2), bill(6, paid_day=2)]
    four = TagRules(long_tenure_years=4)
    assert "long_tenure" not in owner_tags(four_years, dt.date(2025, 8, 31), four)  # a day short
    assert "long_tenure" in owner_tags(four_years, dt.date(2025, 9, 1), four)
    assert "long_tenure" not in owner_tags(four_years, dt.date(2025, 9, 1))  # five by default


def test_histories_from_the_ledger_see_early_offline_late_and_partial_payments(make_ledger):
    def pay(key, account, amount, day, method, bill_number):
        return PaymentRequest(key, SITE, account, method, amount, day, "desk", bill=bill_number,
                              reference=f"ref-{key}")

    async def go(ledger):
        await ledger.issue(batch([draft("F0001"), draft("F0002"), draft("F0003")]))
        await ledger.issue(batch([draft(a, JUNE) for a in ("F0001", "F0002", "F0003")], JUNE))
        may = {d.account_id: d.number for d in await ledger.documents(SITE, cycle_id=MAY.cycle_id)}
        june = {d.account_id: d.number for d in await ledger.documents(SITE, cycle_id=JUNE.cycle_id)}
        await ledger.pay(pay("p1", "F0001", 250_000, dt.date(2025, 6, 5), Method.CASH, may["F0001"]))
        await ledger.pay(pay("p2", "F0001", 250_000, dt.date(2025, 7, 2), Method.CHEQUE, june["F0001"]))
        await ledger.pay(pay("p3", "F0002", 100_000, dt.date(2025, 6, 30), Method.GATEWAY, may["F0002"]))
        tables = Outbox(ledger).tables
        sums = await open_by_bill(tables, SITE)
        still = {ref: owed for refs in sums.values() for ref, owed in refs.items()}
        found = histories(await bills(tables, SITE), still, await ledger.allocations(SITE),
                          await ledger.payments(SITE))
        balances = await ledger.balances(SITE)
        by_ledger = {a: sum(v for (acc, _), v in balances.items() if acc == a) for a in ("F0001", "F0002")}
        assert await owed(tables, SITE, ["F0001", "F0002", "F9999"]) == {**by_ledger, "F9999": 0}
        return {account: owner_tags(h, dt.date(2025, 8, 1), TagRules(history_bills_min=2))
                for account, h in found.items()}

    tags = run(make_ledger, go)
    assert tags["F0001"] == {"on_time", "early_payer", "prefers_offline", "new_owner"}
    assert tags["F0002"] == {"habitual_late", "partial_payer", "new_owner"}
    assert tags["F0003"] == {"habitual_late", "new_owner"}
