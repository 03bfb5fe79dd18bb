"""Bounced cheques, "I have paid" claims and refunds in the dues ledger, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest

from rating.billing.allocation import AllocationRule
from rating.billing.ledger_payment_types import (
    ClaimRequest,
    Method,
    RefundRequest,
    RefundSource,
    ReversalRequest,
)
from rating.billing.numbering import Numbering
from rating.errors import InputError
from tests.billing_drafts import JUNE, SITE, batch, draft, run
from tests.test_payments_ledger import bills, owed, payment

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]
APPROVERS = frozenset({"treasurer", "secretary"})


def bounce(key: str, receipt: str, charge: int = 50_000) -> ReversalRequest:
    return ReversalRequest(key, SITE, receipt, "bounce", dt.date(2025, 6, 20), "insufficient funds",
                           "cashier",
                           charge_minor=charge)


def test_a_bounced_cheque_reopens_the_dues_and_its_charge_is_carried_by_the_next_bill(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        await ledger.pay(payment("p1", "A-101", 250_000, method=Method.CHEQUE, reference="000123",
                                 bank="State Bank", instrument_date=dt.date(2025, 6, 9)))
        paid_off = await owed(ledger, "A-101")
        first = await ledger.reverse(bounce("b1", "R/25-26/000001"))
        again = await ledger.reverse(bounce("b1", "R/25-26/000001"))
        with pytest.raises(InputError) as twice:
            await ledger.reverse(bounce("b2", "R/25-26/000001"))
        await ledger.issue(bills("A-101", cycle=JUNE))
        return paid_off, first, again, twice.value, await owed(ledger, "A-101"), \
            await ledger.carried(SITE, "B/25-26/000002"), await ledger.advances(SITE)

    paid_off, first, again, twice, left, carried, advances = run(make_ledger, go)
    assert paid_off == 0
    assert first.summary == {"receipt": "R/25-26/000001", "kind": "bounce", "amount_minor": 250_000,
                             "reopened_minor": 250_000, "charge_note": "DN/25-26/00001"}
    assert again.replayed and twice.reason == "ALREADY_REVERSED"
    assert left == 250_000 + 50_000 + 250_000 and carried == ["DN/25-26/00001"] and advances == {}


def test_only_a_cheque_bounces(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        await ledger.pay(payment("p1", "A-101", 1_000))
        with pytest.raises(InputError) as refused:
            await ledger.reverse(bounce("b1", "R/25-26/000001"))
        return refused.value

    assert run(make_ledger, go).reason == "NOT_A_CHEQUE"


def claim(key: str, amount: int = 250_000) -> ClaimRequest:
    return ClaimRequest(key, SITE, "A-101", amount, dt.date(2025, 6, 8), Method.TRANSFER, "UTR123",
                        "resident")


def test_a_claim_moves_nothing_until_staff_confirm_it_and_is_decided_once(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        made = await ledger.claim(claim("c1"))
        other = await ledger.claim(claim("c2", 1_000))
        before = await owed(ledger, "A-101")
        claim_id = made.summary["claim"]
        confirmed = await ledger.confirm_claim("k1", SITE, claim_id, actor="staff", numbering=Numbering(),
                                               rule=AllocationRule())
        retry = await ledger.confirm_claim("k1", SITE, claim_id, actor="staff", numbering=Numbering(),
                                           rule=AllocationRule())
        with pytest.raises(InputError) as decided:
            await ledger.reject_claim("k2", SITE, claim_id, reason="no such transfer", actor="staff")
        rejected = await ledger.reject_claim("k3", SITE, other.summary["claim"], reason="no such transfer",
                                             actor="staff")
        return before, confirmed, retry, decided.value, rejected, await owed(ledger, "A-101"), \
            await ledger.claims(SITE)

    before, confirmed, retry, decided, rejected, left, claims = run(make_ledger, go)
    assert before == 250_000 and left == 0
    assert confirmed.summary["receipt"] == "R/25-26/000001" and retry.replayed
    assert decided.reason == "CLAIM_DECIDED" and rejected.summary["status"] == "rejected"
    assert [(c.status, c.receipt, c.reason) for c in claims] == [
        ("confirmed", "R/25-26/000001", ""), ("rejected", "", "no such transfer")]


def refund(key: str, amount: int, *, on=dt.date(2025, 6, 20), source=RefundSource.ADVANCE, **fields):
    return RefundRequest(key, SITE, "A-101", amount, source, "overpaid", "transfer", on, "staff",
                         fields.pop("deadline_days", 30), **fields)


def test_an_advance_is_refunded_after_approval_by_another_approver_and_never_more(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        await ledger.pay(payment("p1", "A-101", 300_000))  # 50,000 over
        with pytest.raises(InputError) as too_much:
            await ledger.request_refund(refund("r0", 50_001))
        asked = await ledger.request_refund(refund("r1", 30_000))
        with pytest.raises(InputError) as pending:
            await ledger.request_refund(refund("r2", 20_001))  # 30,000 already asked
        rid = asked.summary["refund"]
        errors = []
        for actor in ("staff", "cashier"):  # who asked; not an approver
            with pytest.raises(InputError) as refused:
                await ledger.decide_refund(f"d-{actor}", SITE, rid, approve=True, reason="", actor=actor,
                                           approvers=APPROVERS | {"staff"})
            errors.append(refused.value.reason)
        with pytest.raises(InputError) as early:
            await ledger.pay_refund("pay0", SITE, rid, method="transfer", reference="UTR9", on=dt.date(2025,
                                                                                                       6, 21),
                                    actor="cashier")
        await ledger.decide_refund("d1", SITE, rid, approve=True, reason="ok", actor="treasurer",
                                   approvers=APPROVERS)
        paid = await ledger.pay_refund("pay1", SITE, rid, method="transfer", reference="UTR9",
                                       on=dt.date(2025, 6, 22), actor="cashier")
        return too_much.value, pending.value, errors, early.value, paid, await ledger.advances(SITE), \
            await ledger.refunds(SITE)

    too_much, pending, errors, early, paid, advances, refunds = run(make_ledger, go)
    assert too_much.reason == "LIMIT_EXCEEDED" and "50000 refundable" in too_much.message
    assert pending.reason == "LIMIT_EXCEEDED"
    assert errors == ["PERMISSION_DENIED", "PERMISSION_DENIED"] and early.reason == "NOT_APPROVED"
    assert paid.summary["amount_minor"] == 30_000 and advances == {("A-101", ""): 20_000}
    (done,) = refunds
    assert (done.status, done.requested_by, done.decided_by, done.paid_reference) == (
        "paid", "staff", "treasurer", "transfer UTR9")


def test_a_refund_after_its_deadline_or_of_allocated_money_is_refused(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        await ledger.pay(payment("p1", "A-101", 300_000))
        with pytest.raises(InputError) as late:
            await ledger.request_refund(refund("r1", 10_000, on=dt.date(2025, 8, 1)))
        with pytest.raises(InputError) as allocated:
            await ledger.request_refund(refund("r2", 60_000))
        return late.value, allocated.value

    late, allocated = run(make_ledger, go)
    assert late.reason == "DEADLINE_PASSED" and allocated.reason == "LIMIT_EXCEEDED"


def test_a_deposit_is_refundable_once_its_term_ends_within_the_deadline(make_ledger):
    deposit = {"source": RefundSource.DEPOSIT, "head": "deposit", "refundable_heads": frozenset({"deposit"})}

    async def go(ledger):
        await ledger.issue(batch([draft("A-101", maintenance=500_000)]))  # stands in for a deposit head
        await ledger.pay(payment("p1", "A-101", 500_000))
        outcomes = []
        for key, fields in (("r1", {"deposit_end": dt.date(2025, 7, 1)}),  # not ended on 20 June
                            ("r2", {"deposit_end": dt.date(2025, 4, 1)}),  # ended too long ago
                            ("r3", {"deposit_end": dt.date(2025, 6, 1), "head": "maintenance"})):
            with pytest.raises(InputError) as refused:
                await ledger.request_refund(refund(key, 100_000, **{**deposit, **fields}))
            outcomes.append(refused.value.reason)
        kept = {**deposit, "head": "maintenance", "refundable_heads": frozenset({"maintenance"}),
                "deposit_end": dt.date(2025, 6, 1)}
        with pytest.raises(InputError) as too_much:
            await ledger.request_refund(refund("r4", 500_001, **kept))
        asked = await ledger.request_refund(refund("r5", 500_000, **kept))
        return outcomes, too_much.value, asked

    outcomes, too_much, asked = run(make_ledger, go)
    assert outcomes == ["TERM_NOT_ENDED", "DEADLINE_PASSED", "NOT_REFUNDABLE"]
    assert too_much.reason == "LIMIT_EXCEEDED" and asked.summary["status"] == "requested"
