"""Payments in the dues ledger, on SQLite and PostgreSQL alike: receipts,
allocation, advances, replays, races, cancelled bills, gateway events."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from rating.billing.allocation import AllocationRule
from rating.billing.ledger import DuesConflict, NotFound
from rating.billing.ledger_payment_types import Method, PaymentRequest
from rating.billing.numbering import Numbering
from rating.errors import InputError
from rating.payments.gateway import GatewayEvent, apply_gateway_payment
from tests.billing_drafts import JUNE, MAY, SITE, batch, draft, run

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]
PAID_ON = dt.date(2025, 6, 10)


def payment(key: str, account: str, amount: int, **fields) -> PaymentRequest:
    return PaymentRequest(key, SITE, account, fields.pop("method", Method.CASH), amount,
                          fields.pop("received_on", PAID_ON), "cashier", **fields)


def bills(*accounts: str, cycle=MAY, **amounts):
    return batch([draft(a, cycle, **amounts) for a in accounts], cycle)


async def owed(ledger, account: str) -> int:
    return sum(i.amount_minor for i in (await ledger.open_items(SITE)).get(account, ()))


def test_a_partial_payment_pays_the_oldest_bill_first_and_numbers_its_receipt(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101", water=12_000))
        await ledger.issue(bills("A-101", cycle=JUNE, water=8_000))
        first = await ledger.pay(payment("p1", "A-101", 255_000))
        second = await ledger.pay(payment("p2", "A-101", 1_000, received_on=dt.date(2025, 7, 2)))
        return first, second, await ledger.open_items(SITE), await ledger.allocations(SITE, "A-101")

    first, second, items, allocations = run(make_ledger, go)
    assert first.summary["receipt"] == "R/25-26/000001" and second.summary["receipt"] == "R/25-26/000002"
    assert first.summary["allocations"] == [["B/25-26/000001", "maintenance", 250_000],
                                            ["B/25-26/000001", "water", 5_000]]
    assert first.summary["allocated_minor"] == 255_000 and first.summary["advance_minor"] == 0
    assert second.summary["allocations"] == [["B/25-26/000001", "water", 1_000]]
    left = {(i.bill_ref, i.head): i.amount_minor for i in items["A-101"]}
    assert left == {("B/25-26/000001", "water"): 6_000, ("B/25-26/000002", "maintenance"): 250_000,
                    ("B/25-26/000002", "water"): 8_000}
    assert sum(a.amount_minor for a in allocations) == 256_000
    assert {a.receipt for a in allocations} == {"R/25-26/000001", "R/25-26/000002"}


def test_a_payment_larger_than_all_dues_leaves_an_advance_that_the_next_bill_uses(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        paid = await ledger.pay(payment("p1", "A-101", 400_000))
        before = await ledger.advances(SITE)
        await ledger.issue(bills("A-101", cycle=JUNE))
        return paid, before, await ledger.advances(SITE), await owed(ledger, "A-101"), \
            await ledger.allocations(SITE, "A-101")

    paid, before, after, left, allocations = run(make_ledger, go)
    assert paid.summary["allocated_minor"] == 250_000 and paid.summary["advance_minor"] == 150_000
    assert "ADVANCE" in paid.summary["flags"]
    assert before == {("A-101", ""): 150_000} and after == {}
    assert left == 100_000  # June's 250,000 less the advance
    june = [a for a in allocations if a.bill_ref == "B/25-26/000002"]
    assert [(a.receipt, a.amount_minor, a.on) for a in june] == [("R/25-26/000001", 150_000, JUNE.bill_date)]


def test_a_payment_against_a_cancelled_bill_is_flagged_and_goes_to_what_is_owed(make_ledger):
    numbering = Numbering()

    async def go(ledger):
        await ledger.issue(bills("A-101", "B-202"))
        await ledger.cancel(SITE, "B/25-26/000001", key="c1", on=dt.date(2025, 6, 5), reason="wrong area",
                            actor="committee", numbering=numbering)
        counter = await ledger.pay(payment("p1", "A-101", 100_000, bill="B/25-26/000001"))
        return counter, await ledger.advances(SITE), await owed(ledger, "A-101")

    counter, advances, left = run(make_ledger, go)
    assert counter.summary["flags"] == ["BILL_CANCELLED", "ADVANCE"]
    assert counter.summary["allocated_minor"] == 0 and advances == {("A-101", ""): 100_000}
    assert left == 0


def test_a_payment_naming_another_accounts_bill_or_an_unknown_account_is_refused(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101", "B-202"))
        counts = await ledger.counts()
        with pytest.raises(NotFound) as other:
            await ledger.pay(payment("p1", "B-202", 100_000, bill="B/25-26/000001"))
        with pytest.raises(NotFound) as unknown:
            await ledger.pay(payment("p2", "Z-999", 100_000))
        with pytest.raises(InputError):
            await ledger.pay(payment("p3", "A-101", -5))
        return other.value, unknown.value, counts, await ledger.counts()

    other, unknown, counts, after = run(make_ledger, go)
    assert "no bill 'B/25-26/000001' of account 'B-202'" in other.message
    assert "account 'Z-999' has no dues or bills" in unknown.message
    assert after == counts


def test_a_retry_returns_the_first_receipt_and_another_payment_under_the_key_is_refused(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        first = await ledger.pay(payment("p1", "A-101", 100_000))
        counts = await ledger.counts()
        again = await ledger.pay(payment("p1", "A-101", 100_000))
        with pytest.raises(DuesConflict):
            await ledger.pay(payment("p1", "A-101", 100_001))
        return first, again, counts, await ledger.counts()

    first, again, counts, after = run(make_ledger, go)
    assert again.replayed and again.summary == first.summary and after == counts


def test_two_payments_racing_for_one_bill_from_two_connections_are_both_exact(make_ledger):
    async def go():
        setup = make_ledger()
        await setup.open()
        await setup.issue(bills("A-101"))
        ledgers = [make_ledger(), make_ledger()]
        for ledger in ledgers:
            await ledger.open()
        results = await asyncio.gather(*(ledger.pay(payment(f"race-{n}", "A-101", 200_000))
                                         for n, ledger in enumerate(ledgers)))
        state = await setup.advances(SITE), await owed(setup, "A-101"), await setup.allocations(SITE)
        for ledger in [setup, *ledgers]:
            await ledger.close()
        return results, state

    results, (advances, left, allocations) = asyncio.run(go())
    assert sorted(r.summary["allocated_minor"] for r in results) == [50_000, 200_000]
    assert sorted(r.summary["receipt"] for r in results) == ["R/25-26/000001", "R/25-26/000002"]
    assert advances == {("A-101", ""): 150_000} and left == 0
    assert sum(a.amount_minor for a in allocations) == 250_000


def test_credits_in_the_dues_are_set_against_them_before_money_is_taken(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101", water=12_345, rounding=-45))
        paid = await ledger.pay(payment("p1", "A-101", 262_300))
        return paid, await ledger.open_items(SITE), await ledger.advances(SITE)

    paid, items, advances = run(make_ledger, go)
    assert "A-101" not in items and advances == {}
    assert paid.summary["allocated_minor"] == 262_300


def test_the_allocation_rule_orders_heads_and_interest(make_ledger):
    rule = AllocationRule(order=("head", "due", "kind"), heads=("water", "maintenance"))

    async def go(ledger):
        await ledger.issue(bills("A-101", water=10_000))
        await ledger.issue(bills("A-101", cycle=JUNE, water=20_000))
        return await ledger.pay(payment("p1", "A-101", 40_000, rule=rule))

    paid = run(make_ledger, go)
    assert paid.summary["allocations"] == [["B/25-26/000001", "water", 10_000],
                                           ["B/25-26/000002", "water", 20_000],
                                           ["B/25-26/000001", "maintenance", 10_000]]


def test_a_month_of_payments_in_one_call_is_all_or_nothing(make_ledger):
    async def go(ledger):
        await ledger.issue(bills(*(f"F{i:03d}" for i in range(30))))
        month = [payment(f"m{i}", f"F{i:03d}", 250_000 - i) for i in range(30)]
        counts = await ledger.counts()
        with pytest.raises(NotFound):
            await ledger.pay_many([*month, payment("bad", "NOBODY", 1)])
        unchanged = await ledger.counts() == counts
        results = await ledger.pay_many(month)
        return unchanged, results, await ledger.open_items(SITE)

    unchanged, results, items = run(make_ledger, go)
    assert unchanged
    assert [r.summary["receipt"] for r in results][-1] == "R/25-26/000030"
    assert {a: [i.amount_minor for i in v] for a, v in items.items()} == {f"F{i:03d}": [i] for i in range(1,
                                                                                                          30)}


# ---------------------------------------------------------------- gateway events

def event(payment_id: str, amount: int, **fields) -> GatewayEvent:
    return GatewayEvent("razorpay", payment_id, fields.pop("kind", "captured"), SITE,
                        fields.pop("account", "A-101"), amount, PAID_ON, **fields)


def test_a_gateway_payment_is_applied_once_whatever_its_event_id(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        first = await apply_gateway_payment(ledger, event("pay_1", 250_000, bill="B/25-26/000001",
                                                          event_id="evt_1"), actor="webhook")
        retry = await apply_gateway_payment(ledger, event("pay_1", 250_000, bill="B/25-26/000001",
                                                          event_id="evt_2"), actor="webhook")
        with pytest.raises(DuesConflict):
            await apply_gateway_payment(ledger, event("pay_1", 1, bill="B/25-26/000001"), actor="webhook")
        return first, retry, await owed(ledger, "A-101")

    first, retry, left = run(make_ledger, go)
    assert (first.status, first.receipt, first.replayed) == ("applied", "R/25-26/000001", False)
    assert retry.replayed and retry.receipt == first.receipt and left == 0


@pytest.mark.parametrize(("fields", "status", "flag"), [
    ({"account": "Z-999"}, "suspense", "UNKNOWN_ACCOUNT"),
    ({"bill": "B/25-26/000777"}, "held", "UNKNOWN_BILL"),
    ({"bill": "B/25-26/000001", "amount": 1_000}, "held", "AMOUNT_MISMATCH"),
])
def test_an_authentic_gateway_payment_that_does_not_match_is_kept_and_flagged(make_ledger, fields, status,
                                                                              flag):
    fields = dict(fields)  # the parameters are shared by both ledgers' runs
    amount = fields.pop("amount", 250_000)

    async def go(ledger):
        await ledger.issue(bills("A-101"))
        result = await apply_gateway_payment(ledger, event("pay_9", amount, **fields), actor="webhook")
        return result, await ledger.payments(SITE), await owed(ledger, "A-101"), await ledger.advances(SITE)

    result, payments, left, advances = run(make_ledger, go)
    assert result.status == status and result.flags[0] == flag
    assert [(p.receipt, p.amount_minor, p.suspense) for p in payments] == [
        ("R/25-26/000001", amount, status == "suspense")]
    assert left == 250_000  # nothing allocated until staff look
    assert advances == ({} if status == "suspense" else {("A-101", ""): amount})


def test_a_gateway_chargeback_reverses_the_payment_and_reopens_the_bill(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        await apply_gateway_payment(ledger, event("pay_1", 250_000, bill="B/25-26/000001"), actor="webhook")
        back = await apply_gateway_payment(ledger, event("pay_1", 250_000, kind="chargeback",
                                                         reason="fraud"), actor="webhook")
        again = await apply_gateway_payment(ledger, event("pay_1", 250_000, kind="chargeback",
                                                          reason="fraud"), actor="webhook")
        with pytest.raises(NotFound):
            await apply_gateway_payment(ledger, event("pay_2", 5, kind="refunded"), actor="webhook")
        return back, again, await owed(ledger, "A-101"), await ledger.advances(SITE)

    back, again, left, advances = run(make_ledger, go)
    assert back.status == "reversed" and back.summary["reopened_minor"] == 250_000
    assert again.replayed and left == 250_000 and advances == {}


def test_a_failed_gateway_event_moves_nothing(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        counts = await ledger.counts()
        result = await apply_gateway_payment(ledger, event("pay_1", 250_000, kind="failed"), actor="webhook")
        return result, counts, await ledger.counts()

    result, counts, after = run(make_ledger, go)
    assert result.status == "failed" and after == counts


def test_the_payment_tables_refuse_updates_and_deletes(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        await ledger.pay(payment("p1", "A-101", 300_000))
        refused = []
        for sql in ("UPDATE dues_payments SET amount_minor = 1", "DELETE FROM dues_allocations",
                    "UPDATE dues_credits SET amount_minor = 0", "DELETE FROM dues_payments"):
            try:
                async with ledger._writing(SITE) as tx:
                    await tx.execute(sql)
            except Exception as exc:  # sqlite3.IntegrityError, asyncpg.RaiseError
                refused.append("append-only" in str(exc))
        return refused, await ledger.advances(SITE), await owed(ledger, "A-101")

    refused, advances, left = run(make_ledger, go)
    assert refused == [True] * 4 and advances == {("A-101", ""): 50_000} and left == 0
