"""The PaymentsService's staff calls over a real server with roles: allocation
run again over held money, a suspense payment given to its account once, a
bank statement reconciled and its review queue resolved, pages read by
offset; each refused call (another role, bad input, a replayed key with
another payload) changes nothing."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from rating.client.billing import BillingClient
from rating.client.payments import PaymentsClient
from rating.payments.gateway import GatewayEvent, apply_gateway_payment
from tests.billing_server import SITE_NAME, failure, serving, settings, write_society
from tests.test_payments_cli import PAYMENTS_TOML

S = grpc.StatusCode
TOKENS = f"""tok-staff     role=staff     site="{SITE_NAME}" name=office
tok-meena     role=approver  site="{SITE_NAME}" name=meena
tok-resident  role=resident  site="{SITE_NAME}" unit=A-0101
"""
ON = dt.date(2025, 6, 12)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("staff")
    site = write_society(folder / "society")
    (site.parent / "payments.toml").write_text(PAYMENTS_TOML, encoding="utf-8")
    (folder / "tokens").write_text(TOKENS, encoding="utf-8")
    with serving(settings(site, folder / "data", token_file=str(folder / "tokens"))) as served:
        with BillingClient(served.target, token="tok-staff") as staff:
            staff.issue("2025-05")
            served.bills = {b.account_id: b for b in staff.bills(cycle="2025-05")}
        yield served


def _client(served, token: str) -> PaymentsClient:
    return PaymentsClient(served.target, token=token, timeout_s=20)


def _gateway(served, payment_id: str, account: str, amount_minor: int, bill: str = ""):
    event = GatewayEvent("razorpay", payment_id, "captured", SITE_NAME, account, amount_minor, ON, bill=bill)
    return served.run(apply_gateway_payment(served.running.dues, event, actor="webhook"))


def test_allocate_runs_again_over_held_money_once_per_key(served):
    bill = served.bills["A-0103"]
    held = _gateway(served, "pay_held_1", "A-0103", bill.total_due_minor - 1, bill=bill.number)
    with _client(served, "tok-staff") as staff, _client(served, "tok-meena") as meena:
        before = served.counts()
        denied = failure(lambda: meena.allocate("alloc-1", ON, account_id="A-0103"))
        unknown = failure(lambda: staff.allocate("alloc-1", ON, account_id="Z-999"))
        assert served.counts() == before
        first = staff.allocate("alloc-1", ON, account_id="A-0103")
        again = staff.allocate("alloc-1", ON, account_id="A-0103")
        other = failure(lambda: staff.allocate("alloc-1", ON))  # the key again, another payload
        nothing_left = staff.allocate("alloc-2", ON, account_id="A-0103")
    assert held.status == "held" and held.flags == ("AMOUNT_MISMATCH",)
    assert denied.code == S.PERMISSION_DENIED and "may not call Allocate" in denied.message
    assert (unknown.code, unknown.metadata) == (S.INVALID_ARGUMENT, {"field": "account_id"})
    assert first.accounts == 1 and first.allocated_minor == bill.total_due_minor - 1
    assert {a.receipt for a in first.allocations} == {held.receipt}
    assert {a.bill for a in first.allocations} == {bill.number}
    assert again.replayed and again.sequence == first.sequence
    assert other.code == S.ALREADY_EXISTS
    assert (nothing_left.accounts, nothing_left.allocated_minor) == (0, 0)


def test_a_suspense_payment_is_assigned_to_its_account_once(served):
    bill = served.bills["A-0104"]
    lost = _gateway(served, "pay_lost_1", "Z-999", bill.total_due_minor)
    with _client(served, "tok-staff") as staff, _client(served, "tok-resident") as resident:
        ordinary = staff.record("cash-a0301", "A-0301", "cash", 100, ON)
        before = served.counts()
        refused = {
            "resident": failure(lambda: resident.assign_suspense(lost.receipt, "A-0101", ON)),
            "not in suspense": failure(lambda: staff.assign_suspense(ordinary.receipt, "A-0104", ON)),
            "unknown receipt": failure(lambda: staff.assign_suspense("R/99-00/000001", "A-0104", ON)),
            "unknown account": failure(lambda: staff.assign_suspense(lost.receipt, "Z-998", ON)),
            "no account": failure(lambda: staff.assign_suspense(lost.receipt, "", ON)),
        }
        assert served.counts() == before
        assigned = staff.assign_suspense(lost.receipt, "A-0104", ON, bill=bill.number)
        again = staff.assign_suspense(lost.receipt, "A-0104", ON, bill=bill.number)
        twice = failure(lambda: staff.assign_suspense(lost.receipt, "A-0104", ON, key="another-key"))
        other_payload = failure(lambda: staff.assign_suspense(lost.receipt, "A-0103", ON))  # the same key
        listed = {p.receipt: p for p in staff.payments()}
    with BillingClient(served.target, token="tok-staff") as billing:
        shown = billing.statement("A-0104", dt.date(2025, 4, 1), dt.date(2026, 3, 31))
    assert lost.status == "suspense"
    assert refused["resident"].code == S.PERMISSION_DENIED
    assert (refused["not in suspense"].code, refused["not in suspense"].reason) == (
        S.FAILED_PRECONDITION, "NOT_IN_SUSPENSE")
    assert refused["unknown receipt"].code == S.NOT_FOUND
    assert refused["unknown account"].code == S.NOT_FOUND
    assert refused["no account"].metadata == {"field": "account_id"}
    assert assigned.account_id == "A-0104" and assigned.receipt != lost.receipt
    assert assigned.allocated_minor == bill.total_due_minor and assigned.advance_minor == 0
    assert {a.bill for a in assigned.allocations} == {bill.number}
    assert again.replayed and again.receipt == assigned.receipt
    assert (twice.code, twice.reason) == (S.FAILED_PRECONDITION, "ALREADY_REVERSED")
    assert other_payload.code == S.ALREADY_EXISTS
    assert listed[lost.receipt].suspense and listed[assigned.receipt].amount_minor == bill.total_due_minor
    by_receipt = [p for p in shown.paid if p.paid_by == assigned.receipt]  # beside a rounding credit's
    assert {p.bill for p in by_receipt} == {bill.number}
    assert sum(p.amount_minor for p in by_receipt) == bill.total_due_minor


def _major(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _statement(rows: list[tuple[str, str, str, int]]) -> bytes:
    balance, text = 100_000_00, "Date,Narration,Ref,Amount,Balance\n"
    for day, narration, ref, amount in rows:
        balance += amount
        text += f"{day},{narration},{ref},{_major(amount)},{_major(balance)}\n"
    return text.encode()


def test_a_statement_is_reconciled_once_and_its_review_queue_resolved(served):
    bill = served.bills["A-0201"]
    june = _statement([("2025-06-05", f"NEFT A-0201 {bill.number}", "UTR1", bill.total_due_minor),
                       ("2025-06-06", "IMPS A-0202 june", "UTR2", 12_345),
                       ("2025-06-06", "UPI festival gift", "UTR3", 10_000)])
    with _client(served, "tok-staff") as staff, _client(served, "tok-meena") as meena:
        before = served.counts()
        broken = failure(lambda: staff.reconcile(june.replace(b"UTR2,123.45", b"UTR2,123.46"), "june.csv"))
        not_xml = failure(lambda: staff.reconcile(b"<Document><Stmt>", "june.xml"))
        by_approver = failure(lambda: meena.reconcile(june, "june.csv"))
        assert served.counts() == before
        done = staff.reconcile(june, "june.csv")
        again = staff.reconcile(june, "june (1).csv")
        queue = list(meena.bank_lines(status="review"))
        unmatched = list(staff.bank_lines(status="unmatched"))
        resolved = staff.resolve_bank_line(queue[0].line_id, "A-0202")
        resolved_again = staff.resolve_bank_line(queue[0].line_id, "A-0202")
        dismissed = staff.dismiss_bank_line(unmatched[0].line_id, "festival gift")
        no_reason = failure(lambda: staff.dismiss_bank_line(unmatched[0].line_id, " "))
        waiting = list(staff.bank_lines(status="review")) + list(staff.bank_lines(status="unmatched"))
    assert broken.code == S.INVALID_ARGUMENT and "Balance" in broken.message
    assert not_xml.code == S.INVALID_ARGUMENT and "june.xml" in not_xml.message
    assert by_approver.code == S.PERMISSION_DENIED
    assert (done.statements, done.payments) == (1, 1)
    assert dict(done.lines) == {"matched": 1, "review": 1, "unmatched": 1}
    assert (again.sequence, again.known) == (0, 1)
    assert [line.amount_minor for line in queue] == [12_345] and queue[0].reason.startswith("AMOUNT_MISMATCH")
    assert resolved.account_id == "A-0202" and resolved.amount_minor == 12_345
    assert resolved_again.replayed and resolved_again.receipt == resolved.receipt
    assert (dismissed.status, dismissed.reason) == ("dismissed", "festival gift")
    assert no_reason.metadata == {"field": "reason"}
    assert waiting == []


def test_claims_refunds_and_bank_lines_page_by_offset(served):
    with _client(served, "tok-staff") as staff, _client(served, "tok-resident") as resident:
        for n in range(5):
            resident.claim(f"claim-page-{n}", 100 + n, ON, "transfer", reference=f"UTR-C{n}")
        claims = list(staff.claims(account_id="A-0101"))
        staff.reject_claim(claims[0].claim_id, "no such transfer")
        pages = list(staff._pages(lambda token: staff._call(staff.payments_stub.ListClaims, _claims_page(
            staff.site_id, token))))
        still_open = [c.claim_id for c in staff.claims(status="open", account_id="A-0101")]
        rejected = [c.claim_id for c in staff.claims(status="rejected")]
    assert [c.amount_minor for c in claims] == [100, 101, 102, 103, 104]
    assert [len(p.claims) for p in pages] == [2, 2, 1]
    assert [p.next_page_token for p in pages] == ["2", "4", ""]
    assert [c.claim_id for p in pages for c in p.claims] == [c.claim_id for c in claims]
    assert still_open == [c.claim_id for c in claims[1:]] and rejected == [claims[0].claim_id]


def _claims_page(site_id: str, token: str):
    from rating.v1 import payments_pb2 as pb

    return pb.ListClaimsRequest(site_id=site_id, account_id="A-0101", page_size=2, page_token=token)
