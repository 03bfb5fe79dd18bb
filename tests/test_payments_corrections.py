"""Corrections of recorded payments in the dues ledger, on SQLite and PostgreSQL:
a gateway's partial refunds (exact, once per refund, never more than the
payment), allocation run again over held money, a suspense payment assigned
once; every refusal writes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from rating.billing.allocation import AllocationRule
from rating.billing.ledger import DuesConflict, NotFound
from rating.billing.numbering import Numbering
from rating.errors import InputError
from rating.payments.gateway import GatewayEvent, apply_gateway_payment
from tests.billing_drafts import JUNE, SITE, run
from tests.test_payments_ledger import bills, owed, payment

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]
ON = dt.date(2025, 6, 20)


def gateway(payment_id: str, kind: str, account: str, amount: int, **more) -> GatewayEvent:
    return GatewayEvent("razorpay", payment_id, kind, SITE, account, amount, ON, **more)


async def captured_then_refunded(ledger, *refunds: tuple[str, int]):
    """A-101 owes May and June (2,500.00 each) and pays 6,000.00 by gateway; then the refunds."""
    await ledger.issue(bills("A-101"))
    await ledger.issue(bills("A-101", cycle=JUNE))
    paid = await apply_gateway_payment(ledger, gateway("pay_1", "captured", "A-101", 600_000),
                                       actor="webhook")
    done = [await apply_gateway_payment(ledger, gateway("pay_1", "refunded", "A-101", amount, refund_id=rid),
                                        actor="webhook") for rid, amount in refunds]
    return paid, done


def test_a_partial_refund_takes_the_advance_first_then_reopens_the_newest_due(make_ledger):
    async def go(ledger):
        paid, (first, second) = await captured_then_refunded(ledger, ("rfnd_1", 80_000), ("rfnd_2", 200_000))
        again = await apply_gateway_payment(ledger, gateway("pay_1", "refunded", "A-101", 80_000,
                                                            refund_id="rfnd_1", event_id="evt_retry"),
                                            actor="webhook")
        return paid, first, second, again, await owed(ledger, "A-101"), await ledger.advances(SITE), \
            await ledger.open_items(SITE)

    paid, first, second, again, left, advances, items = run(make_ledger, go)
    assert paid.status == "applied" and paid.summary["advance_minor"] == 100_000
    assert first.summary["reopened_minor"] == 0  # all of it from the 1,000.00 advance
    assert second.summary["reopened_minor"] == 180_000 and second.summary["refunded_minor"] == 280_000
    assert again.replayed and again.summary == first.summary
    assert advances == {} and left == 180_000
    assert [(i.bill_ref, i.amount_minor) for i in items["A-101"]] == [("B/25-26/000002", 180_000)]  # June


def test_refunds_above_what_is_left_and_other_payloads_under_a_key_are_refused(make_ledger):
    async def go(ledger):
        await captured_then_refunded(ledger, ("rfnd_1", 500_000))
        before = await ledger.counts()
        refused = {}
        for name, event in {
            "more than left": gateway("pay_1", "refunded", "A-101", 100_001, refund_id="rfnd_2"),
            "more than paid": gateway("pay_1", "refunded", "A-101", 600_001, refund_id="rfnd_3"),
            "the whole after a part": gateway("pay_1", "refunded", "A-101", 600_000, refund_id="rfnd_4"),
            "no refund id": gateway("pay_1", "refunded", "A-101", 1_000),
            "never captured": gateway("pay_9", "refunded", "A-101", 1_000, refund_id="rfnd_5"),
        }.items():
            with pytest.raises((InputError, NotFound)) as caught:
                await apply_gateway_payment(ledger, event, actor="webhook")
            refused[name] = caught.value
        with pytest.raises(DuesConflict):  # a refund id again with another amount
            await apply_gateway_payment(ledger, gateway("pay_1", "refunded", "A-101", 400_000,
                                                        refund_id="rfnd_1"), actor="webhook")
        return before, refused, await ledger.counts()

    before, refused, after = run(make_ledger, go)
    assert refused["more than left"].reason == "LIMIT_EXCEEDED" and "100000 of its 600000 left" in str(
        refused["more than left"])
    assert refused["more than paid"].reason == "LIMIT_EXCEEDED"
    assert refused["the whole after a part"].reason == "REFUNDED"
    assert "names its refund id" in str(refused["no refund id"])
    assert isinstance(refused["never captured"], NotFound)
    assert after == before


def test_the_last_part_refunds_exactly_what_was_paid(make_ledger):
    async def go(ledger):
        await captured_then_refunded(ledger, ("rfnd_1", 333_333), ("rfnd_2", 266_667))
        allocations = await ledger.allocations(SITE, "A-101")
        return await owed(ledger, "A-101"), await ledger.advances(SITE), allocations

    left, advances, allocations = run(make_ledger, go)
    assert left == 500_000 and advances == {}
    assert sum(a.amount_minor for a in allocations) == 0  # every allocation undone by a row of its own


def test_a_whole_refund_reverses_the_payment_once(make_ledger):
    async def go(ledger):
        _, (whole,) = await captured_then_refunded(ledger, ("rfnd_1", 600_000))
        again = await apply_gateway_payment(ledger, gateway("pay_1", "refunded", "A-101", 600_000,
                                                            refund_id="rfnd_1"), actor="webhook")
        return whole, again, await owed(ledger, "A-101"), await ledger.advances(SITE)

    whole, again, left, advances = run(make_ledger, go)
    assert whole.status == "reversed" and whole.summary["kind"] == "refund"
    assert whole.summary["reopened_minor"] == 500_000 and again.replayed
    assert left == 500_000 and advances == {}


def test_allocate_again_uses_held_money_once_per_key(make_ledger):
    rule = AllocationRule()

    async def go(ledger):
        await ledger.issue(bills("A-101"))
        held = await apply_gateway_payment(ledger, gateway("pay_2", "captured", "A-101", 100_000,
                                                           bill="B/25-26/000001"), actor="webhook")
        before = await owed(ledger, "A-101")
        first = await ledger.reallocate("alloc-1", SITE, "A-101", on=ON, actor="office", rule=rule)
        again = await ledger.reallocate("alloc-1", SITE, "A-101", on=ON, actor="office", rule=rule)
        with pytest.raises(DuesConflict):
            await ledger.reallocate("alloc-1", SITE, "", on=ON, actor="office", rule=rule)
        site_wide = await ledger.reallocate("alloc-2", SITE, on=ON, actor="office", rule=rule)
        return held, before, first, again, site_wide, await owed(ledger, "A-101")

    held, before, first, again, site_wide, after = run(make_ledger, go)
    assert held.status == "held" and before == 250_000
    assert first.summary == {"accounts": 1, "allocated_minor": 100_000,
                             "allocations": [["A-101", held.receipt, "B/25-26/000001", "maintenance",
                                              100_000]]}
    assert again.replayed and (site_wide.summary["accounts"], site_wide.summary["allocated_minor"]) == (0, 0)
    assert after == 150_000


def test_a_suspense_payment_is_assigned_once_and_counted_once(make_ledger):
    async def go(ledger):
        await ledger.issue(bills("A-101"))
        lost = await apply_gateway_payment(ledger, gateway("pay_3", "captured", "Z-999", 250_000),
                                           actor="webhook")
        assign = ledger.assign_suspense
        before = await ledger.counts()
        with pytest.raises(NotFound):
            await assign("as-0", SITE, lost.receipt, account_id="Z-998", bill="", on=ON, actor="office",
                         numbering=Numbering(), rule=AllocationRule())
        unchanged = await ledger.counts() == before
        first = await assign("as-1", SITE, lost.receipt, account_id="A-101", bill="", on=ON, actor="office",
                             numbering=Numbering(), rule=AllocationRule())
        with pytest.raises(InputError) as twice:
            await assign("as-2", SITE, lost.receipt, account_id="A-101", bill="", on=ON, actor="office",
                         numbering=Numbering(), rule=AllocationRule())
        await ledger.pay(payment("cash-1", "A-101", 100))
        with pytest.raises(InputError) as ordinary:
            await assign("as-3", SITE, "R/25-26/000003", account_id="A-101", bill="", on=ON, actor="office",
                         numbering=Numbering(), rule=AllocationRule())
        rows = await ledger.report_rows(SITE)
        return lost, unchanged, first, twice.value, ordinary.value, await owed(ledger, "A-101"), rows

    lost, unchanged, first, twice, ordinary, left, rows = run(make_ledger, go)
    assert lost.status == "suspense" and unchanged
    assert first.summary["from_receipt"] == lost.receipt and first.summary["receipt"] == "R/25-26/000002"
    assert first.summary["allocated_minor"] == 250_000 and left == 0
    assert twice.reason == "ALREADY_REVERSED" and ordinary.reason == "NOT_IN_SUSPENSE"
    assert sum(r[4] for r in rows.receipts) == 250_000 + 100  # the suspense money once, then the cash


def test_a_write_cancelled_while_its_commit_waits_for_the_sqlite_thread_commits(tmp_path):
    """A caller whose deadline passes while its COMMIT is queued on the ledger's thread
    must not leave the transaction open for the next caller (it commits: its work is done)."""
    import asyncio
    import threading

    from rating.billing.ledger_payment_types import ClaimRequest, Method
    from rating.billing.ledger_sqlite import SqliteDuesLedger

    async def go():
        ledger = SqliteDuesLedger(tmp_path / "ledger.db")
        await ledger.open()
        gate = threading.Event()

        async def write():
            async with ledger._writing(SITE) as tx:
                await ledger._op(tx, "first", "claim", SITE, "tester", b"x" * 32, {})
                ledger._thread.submit(gate.wait)  # the thread busy: the COMMIT waits behind it

        task = asyncio.ensure_future(write())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.01)
        gate.set()
        cancelled = await asyncio.gather(task, return_exceptions=True)
        after = await ledger.claim(ClaimRequest("second", SITE, "A-101", 500, ON, Method.CASH, "",
                                                "resident"))
        found = await ledger.find("first")
        await ledger.close()
        return cancelled, after, found

    cancelled, after, found = asyncio.run(go())
    assert isinstance(cancelled[0], asyncio.CancelledError)
    assert after.summary["claim"].startswith("CL-") and found is not None
