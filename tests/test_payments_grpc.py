"""The PaymentsService over a real server with roles: an offline payment is
recorded once under retries and a reused key with another payload is
refused; bad requests name their field and write nothing; a resident claims
for its own unit only and staff confirm or reject; a cheque bounces once;
a refund is decided by an approver who did not ask for it and paid once;
lists page in order; each role makes the calls it may and no other; the
docs list exactly the reasons the service adds."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sqlite3
from pathlib import Path

import grpc
import pytest

from rating.billing.ledger_payment_types import ClaimRequest, Method
from rating.billing.ledger_sqlite import SqliteDuesLedger
from rating.client.billing import BillingClient
from rating.client.payments import PaymentsClient
from rating.server import roles, status
from rating.v1 import payments_pb2 as pb
from rating.v1 import payments_pb2_grpc
from tests.billing_server import SITE_NAME, failure, serving, settings, write_society
from tests.test_roles import _channel, _code

ROOT = Path(__file__).resolve().parent.parent
S = grpc.StatusCode
TOKENS = f"""plain-admin
tok-staff     role=staff     site="{SITE_NAME}" name=office
tok-meena     role=approver  site="{SITE_NAME}" name=meena
tok-ravi      role=approver  site="{SITE_NAME}" name=ravi
tok-resident  role=resident  site="{SITE_NAME}" unit=A-0101
tok-machine   role=machine   site="{SITE_NAME}" name=aggregator
"""
UNIT = "A-0101"
PAID_ON = dt.date(2025, 6, 10)


pytest_plugins = ["tests.prepaid_backends"]  # backends: the embedded pair, Redis and PostgreSQL


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The demo society with its May bills issued (every unit owes), tokens of every role."""
    folder = tmp_path_factory.mktemp("payments")
    site = write_society(folder / "society")
    (folder / "tokens").write_text(TOKENS, encoding="utf-8")
    with serving(settings(site, folder / "data", token_file=str(folder / "tokens"))) as served:
        with BillingClient(served.target, token="tok-staff") as staff:
            staff.issue("2025-05")
            served.bills = {b.account_id: b for b in staff.bills(cycle="2025-05")}
        yield served


def _client(served, token: str) -> PaymentsClient:
    return PaymentsClient(served.target, token=token, timeout_s=20)


def _due(served, account: str) -> int:
    return served.bills[account].total_due_minor


def test_a_payment_is_recorded_once_under_retries_and_a_reused_key_is_refused(served):
    due = _due(served, "A-0102")
    with _client(served, "tok-staff") as staff:
        before = served.counts()
        first = staff.record("pay-a0102-1", "A-0102", "cheque", due, PAID_ON, reference="004512",
                             bank="State Bank", instrument_date=PAID_ON, actor="Kiran")
        again = [staff.record("pay-a0102-1", "A-0102", "cheque", due, PAID_ON, reference="004512",
                              bank="State Bank", instrument_date=PAID_ON) for _ in range(3)]
        after = served.counts()
        other = failure(lambda: staff.record("pay-a0102-1", "A-0102", "cheque", due + 1, PAID_ON,
                                             reference="004512", bank="State Bank", instrument_date=PAID_ON))
        listed = list(staff.payments(receipt=first.receipt))
    assert after["dues_ops"] == before["dues_ops"] + 1 and served.counts() == after
    assert not first.replayed and all(a.replayed for a in again)
    assert {(a.receipt, a.sequence) for a in again} == {(first.receipt, first.sequence)}
    assert first.amount_minor == first.allocated_minor == due and first.advance_minor == 0
    assert sum(a.amount_minor for a in first.allocations) == due
    assert {a.bill for a in first.allocations} == {served.bills["A-0102"].number}
    assert (other.code, other.reason) == (S.ALREADY_EXISTS, "IDEMPOTENCY_CONFLICT")
    (payment,) = listed
    assert (payment.method, payment.reference, payment.bank, payment.instrument_date) == (
        "cheque", "004512", "State Bank", "2025-06-10")
    assert payment.actor == "Kiran via office" and sum(a.amount_minor for a in payment.allocations) == due
    assert [(a.bill, a.head, a.amount_minor) for a in payment.allocations] == [
        (a.bill, a.head, a.amount_minor) for a in first.allocations]


def test_money_in_and_back_out_on_each_pair_of_backends(backends, tmp_path):
    site = write_society(tmp_path / "society")
    (tmp_path / "tokens").write_text(TOKENS, encoding="utf-8")
    server_settings = backends.settings(site=str(site), rating_process=0, token_file=str(tmp_path / "tokens"))
    with (serving(server_settings) as served, BillingClient(served.target, token="tok-staff") as billing,
          _client(served, "tok-staff") as staff, _client(served, "tok-meena") as meena,
          _client(served, "tok-ravi") as ravi):
        billing.issue("2025-05")
        due = next(b for b in billing.bills() if b.account_id == "A-0102").total_due_minor
        paid = [staff.record("pay-1", "A-0102", "transfer", due + 900, PAID_ON, reference="UTR9")
                for _ in range(2)]
        conflict = failure(lambda: staff.record("pay-1", "A-0102", "cash", due, PAID_ON))
        asked = meena.request_refund("rf-1", "A-0102", 900, "paid too much", dt.date(2025, 6, 12))
        own = failure(lambda: meena.decide_refund(asked.refund_id, approve=True))
        ravi.decide_refund(asked.refund_id, approve=True)
        payout = staff.pay_refund(asked.refund_id, "transfer", "UTR10", dt.date(2025, 6, 13))
        more = failure(lambda: meena.request_refund("rf-2", "A-0102", 1, "again", dt.date(2025, 6, 14)))
        (listed,) = list(staff.payments(account_id="A-0102"))
        (refund,) = list(staff.refunds(account_id="A-0102"))
    assert not paid[0].replayed and paid[1].replayed and paid[0].receipt == paid[1].receipt
    assert (paid[0].allocated_minor, paid[0].advance_minor) == (due, 900)
    assert (conflict.code, own.code, more.code) == (S.ALREADY_EXISTS, S.PERMISSION_DENIED, S.INVALID_ARGUMENT)
    assert more.reason == "LIMIT_EXCEEDED" and payout.status == "paid"
    assert listed.receipt == paid[0].receipt and sum(a.amount_minor for a in listed.allocations) == due
    assert (refund.status, refund.requested_by, refund.decided_by) == ("paid", "meena", "ravi")


def test_a_payment_sent_with_deadlines_too_short_then_again_is_recorded_at_most_once(served):
    stub = payments_pb2_grpc.PaymentsServiceStub(grpc.insecure_channel(served.target))
    request = pb.RecordPaymentRequest(idempotency_key="pay-a0103-short", account_id="A-0103", method="cash",
                                      amount_minor=700, received_on="2025-06-11")
    before = served.counts()["dues_ops"]
    outcomes = []
    for _ in range(3):
        try:
            stub.RecordPayment(request, metadata=(("authorization", "Bearer tok-staff"),), timeout=0.0005)
            outcomes.append("recorded")
        except grpc.RpcError as exc:
            outcomes.append(exc.code())
    with _client(served, "tok-staff") as staff:
        reply = staff.record("pay-a0103-short", "A-0103", "cash", 700, dt.date(2025, 6, 11))
        listed = [p.receipt for p in staff.payments(account_id="A-0103")]
    assert set(outcomes) <= {"recorded", S.DEADLINE_EXCEEDED}
    assert served.counts()["dues_ops"] == before + 1 and listed == [reply.receipt]


def test_a_write_cancelled_while_it_begins_leaves_the_sqlite_ledger_writable(tmp_path):
    """A call whose deadline passes while its BEGIN waits on the ledger's thread
    (another writer holds the file) must not leave that transaction open."""
    path = tmp_path / "ledger.db"

    def claim(key: str) -> ClaimRequest:
        return ClaimRequest(key, SITE_NAME, UNIT, 500, PAID_ON, Method.CASH, "", "resident")

    async def go():
        ledger = SqliteDuesLedger(path)
        await ledger.open()
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            cancelled = asyncio.create_task(ledger.claim(claim("claim-cancelled")))
            await asyncio.sleep(0.3)  # its BEGIN now waits for the other writer
            cancelled.cancel()
            other.execute("ROLLBACK")
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            written = await ledger.claim(claim("claim-next"))
            return written, await ledger.claims(SITE_NAME)
        finally:
            other.close()
            await ledger.close()

    written, claims = asyncio.run(go())
    assert [c.claim_id for c in claims] == [f"CL-{written.seq}"]


@pytest.mark.parametrize(("name", "value", "code", "metadata"), [
    ("idempotency_key", "", S.INVALID_ARGUMENT, {"field": "idempotency_key"}),
    ("idempotency_key", "k" * 201, S.INVALID_ARGUMENT, {"field": "idempotency_key"}),
    ("method", "gateway", S.INVALID_ARGUMENT, {"field": "method"}),
    ("method", "", S.INVALID_ARGUMENT, {"field": "method"}),
    ("amount_minor", 0, S.INVALID_ARGUMENT, {"field": "amount_minor"}),
    ("amount_minor", -500, S.INVALID_ARGUMENT, {"field": "amount_minor"}),
    ("amount_minor", 2**63 - 1, S.INVALID_ARGUMENT, {"field": "amount_minor"}),
    ("received_on", "2025-13-01", S.INVALID_ARGUMENT, {"field": "received_on"}),
    ("received_on", "", S.INVALID_ARGUMENT, {"field": "received_on"}),
    ("instrument_date", "10/06/2025", S.INVALID_ARGUMENT, {"field": "instrument_date"}),
    ("account_id", "", S.INVALID_ARGUMENT, {"field": "account_id"}),
    ("site_id", "Elsewhere Towers", S.NOT_FOUND, {"site_id": "Elsewhere Towers"}),
])
def test_a_bad_payment_names_its_field_and_writes_nothing(served, name, value, code, metadata):
    request = pb.RecordPaymentRequest(idempotency_key="bad-1", account_id="A-0103", method="cash",
                                      amount_minor=1000, received_on="2025-06-10")
    setattr(request, name, value)
    before = served.counts()
    with _client(served, "tok-staff") as staff:
        error = failure(lambda: staff._call(staff.payments_stub.RecordPayment, request))
    assert (error.code, error.metadata) == (code, metadata), error
    assert served.counts() == before


def test_a_payment_of_an_unknown_unit_or_bill_is_not_found_and_writes_nothing(served):
    before = served.counts()
    with _client(served, "tok-staff") as staff:
        unit = failure(lambda: staff.record("pay-z", "Z-9999", "cash", 1000, PAID_ON))
        bill = failure(lambda: staff.record("pay-y", "A-0103", "cash", 1000, PAID_ON, bill="B/25-26/999999"))
    assert (unit.code, bill.code) == (S.NOT_FOUND, S.NOT_FOUND)
    assert "Z-9999" in unit.message and "B/25-26/999999" in bill.message
    assert served.counts() == before


def test_a_resident_claims_for_its_own_unit_only_and_staff_decide_once(served):
    with _client(served, "tok-resident") as resident, _client(served, "tok-staff") as staff:
        before = served.counts()
        other = failure(lambda: resident.claim("claim-x", 1000, PAID_ON, "transfer", account_id="A-0102",
                                               reference="UTR1"))
        assert served.counts() == before
        utr = "UTR2506100042"
        own = resident.claim("claim-1", _due(served, UNIT), PAID_ON, "transfer", reference=utr)
        retried = resident.claim("claim-1", _due(served, UNIT), PAID_ON, "transfer", reference=utr)
        confirm_by_resident = failure(lambda: resident.confirm_claim(own.claim_id))
        listed = [c for c in staff.claims(status="open") if c.account_id == UNIT]
        confirmed = staff.confirm_claim(own.claim_id, actor="Kiran")
        confirmed_again = staff.confirm_claim(own.claim_id)
        reject_after = failure(lambda: staff.reject_claim(own.claim_id, "no such transfer"))
        second = resident.claim("claim-2", 500, PAID_ON, "cash")
        no_reason = failure(lambda: staff.reject_claim(second.claim_id, "  "))
        rejected = staff.reject_claim(second.claim_id, "not received at the office")
        shown = {c.claim_id: c for c in staff.claims(account_id=UNIT)}
        own_payments = list(resident.payments())
        others = failure(lambda: list(resident.payments(account_id="A-0102")))
        site_wide = {p.receipt: p for p in staff.payments(page_size=1)}
    assert (other.code, other.reason) == (S.PERMISSION_DENIED, "PERMISSION_DENIED")
    assert "may not see account_id 'A-0102'" in other.message
    assert own.status == "open" and own.claim_id.startswith("CL-")
    assert retried.replayed and retried.claim_id == own.claim_id
    assert confirm_by_resident.code == S.PERMISSION_DENIED
    assert [c.claim_id for c in listed] == [own.claim_id] and listed[0].reference == "UTR2506100042"
    assert confirmed.allocated_minor == _due(served, UNIT) and confirmed_again.replayed
    assert confirmed_again.receipt == confirmed.receipt
    assert (reject_after.code, reject_after.reason) == (S.FAILED_PRECONDITION, "CLAIM_DECIDED")
    assert (no_reason.code, no_reason.metadata) == (S.INVALID_ARGUMENT, {"field": "reason"})
    assert rejected.status == "rejected"
    assert (shown[own.claim_id].status, shown[own.claim_id].receipt) == ("confirmed", confirmed.receipt)
    assert (shown[second.claim_id].status, shown[second.claim_id].reason) == (
        "rejected", "not received at the office")
    assert {p.account_id for p in own_payments} == {UNIT}
    assert confirmed.receipt in [p.receipt for p in own_payments]
    assert (others.code, others.reason) == (S.PERMISSION_DENIED, "PERMISSION_DENIED")
    assert [(a.bill, a.amount_minor) for a in site_wide[confirmed.receipt].allocations] == [
        (a.bill, a.amount_minor) for a in confirmed.allocations]


def test_a_cheque_bounces_once_and_only_a_cheque(served):
    due = _due(served, "A-0104")
    with _client(served, "tok-staff") as staff:
        cheque = staff.record("pay-a0104", "A-0104", "cheque", due, PAID_ON, reference="000777", bank="HDFC")
        cash = staff.record("pay-a0104-cash", "A-0104", "cash", 100, PAID_ON)
        bounced = staff.bounce(cheque.receipt, "insufficient funds", dt.date(2025, 6, 14))
        again = staff.bounce(cheque.receipt, "insufficient funds", dt.date(2025, 6, 14))
        before = served.counts()
        not_cheque = failure(lambda: staff.bounce(cash.receipt, "returned", dt.date(2025, 6, 14)))
        twice = failure(lambda: staff.bounce(cheque.receipt, "again", dt.date(2025, 6, 15), key="bounce-2"))
        unknown = failure(lambda: staff.bounce("R/25-26/999999", "returned", dt.date(2025, 6, 14)))
        assert served.counts() == before
        (shown,) = list(staff.payments(receipt=cheque.receipt))
    assert (bounced.receipt, bounced.amount_minor, bounced.reopened_minor) == (cheque.receipt, due, due)
    assert again.replayed and again.sequence == bounced.sequence
    assert (not_cheque.code, not_cheque.reason) == (S.INVALID_ARGUMENT, "NOT_A_CHEQUE")
    assert (twice.code, twice.reason) == (S.FAILED_PRECONDITION, "ALREADY_REVERSED")
    assert unknown.code == S.NOT_FOUND
    assert sorted(a.amount_minor for a in shown.allocations) == sorted(
        [*(a.amount_minor for a in cheque.allocations), *(-a.amount_minor for a in cheque.allocations)])


def test_a_refund_is_decided_by_an_approver_who_did_not_ask_and_paid_once(served):
    due = _due(served, "A-0201")
    with (_client(served, "tok-staff") as staff, _client(served, "tok-meena") as meena,
          _client(served, "tok-ravi") as ravi):
        paid = staff.record("pay-a0105", "A-0201", "transfer", due + 3000, PAID_ON, reference="UTR7")
        asked_on = dt.date(2025, 6, 20)
        too_much = failure(lambda: meena.request_refund("rf-big", "A-0201", 3001, "paid twice", asked_on))
        asked = meena.request_refund("rf-1", "A-0201", 2000, "paid twice", asked_on)
        on_behalf = meena.request_refund("rf-2", "A-0201", 500, "paid twice", asked_on, actor="Asha")
        before = served.counts()
        own = failure(lambda: meena.decide_refund(asked.refund_id, approve=True))
        own_behalf = failure(lambda: meena.decide_refund(on_behalf.refund_id, approve=True))
        by_staff = failure(lambda: staff.decide_refund(asked.refund_id, approve=True))
        unpaid = failure(lambda: staff.pay_refund(asked.refund_id, "transfer", "UTR8", asked_on))
        assert served.counts() == before
        approved = ravi.decide_refund(asked.refund_id, approve=True)
        rejected = ravi.decide_refund(on_behalf.refund_id, approve=False, reason="the same transfer")
        payout = staff.pay_refund(asked.refund_id, "transfer", "UTR2507010007", dt.date(2025, 6, 25))
        payout_again = staff.pay_refund(asked.refund_id, "transfer", "UTR2507010007", dt.date(2025, 6, 25))
        refunds = {r.refund_id: r for r in staff.refunds(account_id="A-0201")}
    assert paid.advance_minor == 3000
    assert (too_much.code, too_much.reason) == (S.INVALID_ARGUMENT, "LIMIT_EXCEEDED")
    assert asked.status == "requested" and asked.refund_id.startswith("RF-")
    for refused in (own, own_behalf):
        assert (refused.code, refused.reason) == (S.PERMISSION_DENIED, "PERMISSION_DENIED"), refused
        assert "asked for this refund: another approver decides it" in refused.message
    assert by_staff.code == S.PERMISSION_DENIED and "may not call DecideRefund" in by_staff.message
    assert (unpaid.code, unpaid.reason) == (S.FAILED_PRECONDITION, "NOT_APPROVED")
    assert (approved.status, rejected.status, payout.status) == ("approved", "rejected", "paid")
    assert payout_again.replayed and payout_again.sequence == payout.sequence
    assert (refunds[asked.refund_id].status, refunds[asked.refund_id].decided_by) == ("paid", "ravi")
    assert refunds[asked.refund_id].requested_by == "meena"
    assert refunds[asked.refund_id].paid_reference == "transfer UTR2507010007"
    assert refunds[on_behalf.refund_id].requested_by == "Asha via meena"


def test_receipts_page_in_number_order(served):
    with _client(served, "tok-staff") as staff:
        for n in range(5):
            staff.record(f"pay-a0106-{n}", "A-0202", "cash", 100 + n, PAID_ON)
        pages = list(staff.payment_pages(account_id="A-0202", page_size=2))
        everything = [p.receipt for p in staff.payments()]
        bad_token = failure(lambda: staff._call(staff.payments_stub.ListPayments,
                                                pb.ListPaymentsRequest(page_token="x")))
        bad_size = failure(lambda: list(staff.payment_pages(page_size=1001)))
        bad_status = failure(lambda: list(staff.claims(status="pending")))
    receipts = [p.receipt for page in pages for p in page.payments]
    assert [len(page.payments) for page in pages] == [2, 2, 1]
    assert [page.next_page_token for page in pages] == ["2", "4", ""]
    assert [p.amount_minor for page in pages for p in page.payments] == [100, 101, 102, 103, 104]
    assert receipts == sorted(receipts) and len(set(receipts)) == 5
    assert everything == sorted(everything) and set(receipts) <= set(everything)
    assert all(len(p.allocations) >= 1 for page in pages for p in page.payments)
    assert (bad_token.code, bad_token.metadata) == (S.INVALID_ARGUMENT, {"field": "page_token"})
    assert (bad_size.code, bad_size.metadata) == (S.INVALID_ARGUMENT, {"field": "page_size"})
    assert (bad_status.code, bad_status.metadata) == (S.INVALID_ARGUMENT, {"field": "status"})


def _calls(channel: grpc.Channel) -> dict:
    """One call of every method, each refused by its handler or answered without writing."""
    stub = payments_pb2_grpc.PaymentsServiceStub(channel)
    return {
        "RecordPayment": lambda: stub.RecordPayment(pb.RecordPaymentRequest(account_id=UNIT)),
        "Claim": lambda: stub.Claim(pb.ClaimRequest(account_id=UNIT)),
        "ConfirmClaim": lambda: stub.ConfirmClaim(pb.DecideClaimRequest()),
        "RejectClaim": lambda: stub.RejectClaim(pb.DecideClaimRequest()),
        "Bounce": lambda: stub.Bounce(pb.BounceRequest()),
        "RequestRefund": lambda: stub.RequestRefund(pb.RequestRefundRequest(account_id=UNIT)),
        "DecideRefund": lambda: stub.DecideRefund(pb.DecideRefundRequest()),
        "PayRefund": lambda: stub.PayRefund(pb.PayRefundRequest()),
        "ListPayments": lambda: stub.ListPayments(pb.ListPaymentsRequest(account_id=UNIT)),
        "ListClaims": lambda: stub.ListClaims(pb.ListClaimsRequest()),
        "ListRefunds": lambda: stub.ListRefunds(pb.ListRefundsRequest()),
        "Allocate": lambda: stub.Allocate(pb.AllocateRequest()),
        "AssignSuspense": lambda: stub.AssignSuspense(pb.AssignSuspenseRequest()),
        "Reconcile": lambda: stub.Reconcile(pb.ReconcileRequest()),
        "ListBankLines": lambda: stub.ListBankLines(pb.ListBankLinesRequest(status="pending")),
        "ResolveBankLine": lambda: stub.ResolveBankLine(pb.ResolveBankLineRequest()),
        "DismissBankLine": lambda: stub.DismissBankLine(pb.DismissBankLineRequest()),
    }


STAFF_CALLS = {"Allocate", "AssignSuspense", "Reconcile", "ResolveBankLine", "DismissBankLine"}
EVERY = {"RecordPayment", "Claim", "ConfirmClaim", "RejectClaim", "Bounce", "RequestRefund", "DecideRefund",
         "PayRefund", "ListPayments", "ListClaims", "ListRefunds", "ListBankLines", *STAFF_CALLS}
# What each token may call, written out here as docs/api.md states it.
ALLOWED = {
    "plain-admin": EVERY,
    "tok-staff": {"RecordPayment", "ConfirmClaim", "RejectClaim", "Bounce", "RequestRefund", "PayRefund",
                  "ListPayments", "ListClaims", "ListRefunds", "ListBankLines", *STAFF_CALLS},
    "tok-meena": {"RequestRefund", "DecideRefund", "ListPayments", "ListClaims", "ListRefunds",
                  "ListBankLines"},
    "tok-resident": {"Claim", "ListPayments"},
    "tok-machine": set(),
}


def test_each_role_makes_its_payment_calls_and_every_other_is_denied(served):
    before = served.counts()
    got = {}
    for token in ALLOWED:
        with _channel(served.target, token) as channel:
            got[token] = {name: _code(call) for name, call in _calls(channel).items()}
    assert served.counts() == before
    for token, allowed in ALLOWED.items():
        denied = {name for name, code in got[token].items() if code == S.PERMISSION_DENIED}
        assert denied == EVERY - allowed, token
    service = pb.DESCRIPTOR.services_by_name["PaymentsService"]
    assert {m.name for m in service.methods} == EVERY
    assert {f"/{service.full_name}/{m}" for m in EVERY} <= set(roles.METHODS)


def test_the_docs_list_exactly_the_reasons_payments_add():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("\n## Errors of payments\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", section, re.MULTILINE)
    documented = {reason: set(re.findall(r"`([A-Z_]+)`", codes)) for reason, codes in rows}
    code = {reason: {c.name for c in codes} for reason, codes in status.PAYMENTS_REASONS.items()}
    assert documented == code
    assert not set(status.PAYMENTS_REASONS) & (set(status.REASONS) | set(status.BILLING_REASONS))


def test_the_ledgers_refusals_keep_their_reason_and_get_their_status():
    from rating.errors import InputError

    errors = [InputError("decided", where="RF-3", reason="REFUND_DECIDED"),
              InputError("asked it", where="RF-3", reason="PERMISSION_DENIED"),
              InputError("cash", where="R/25-26/000001", reason="NOT_A_CHEQUE")]
    got = [(status.code_of(e := status.as_prepaid_error(exc)), e.reason) for exc in errors]
    assert got == [(S.FAILED_PRECONDITION, "REFUND_DECIDED"), (S.PERMISSION_DENIED, "PERMISSION_DENIED"),
                   (S.INVALID_ARGUMENT, "NOT_A_CHEQUE")]
