"""Python client of the PaymentsService (blocking).

```python
import datetime as dt
from rating.client.payments import PaymentsClient

with PaymentsClient("127.0.0.1:50051", token="k7-office") as client:
    paid = client.record("cash-2025-06-10-a0101", "A-0101", "cash", 450_000, dt.date(2025, 6, 10))
    print(paid.receipt, paid.advance_minor)
    for payment in client.payments(account_id="A-0101"):
        print(payment.receipt, [(a.bill, a.head, a.amount_minor) for a in payment.allocations])
```

It is a RatingClient with the payments calls added: the same channel,
token, TLS, deadlines and retries. Every write carries its idempotency key
(given, or for a decision made of the claim, receipt or refund it decides),
so a retry of an unanswered call returns its first result. Failures raise
rating.client.calls.ClientError (OutcomeUnknown when unanswered in time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from rating.client.calls import RatingClient
from rating.v1 import payments_pb2 as pb
from rating.v1 import payments_pb2_grpc


class PaymentsClient(RatingClient):
    """`site_id`: the site the caller means ("": whichever the server serves)."""

    def __init__(self, target: str, *, site_id: str = "", **kwargs):
        super().__init__(target, **kwargs)
        self.payments_stub = payments_pb2_grpc.PaymentsServiceStub(self.channel)
        self.site_id = site_id

    def record(self, key: str, account_id: str, method: str, amount_minor: int, received_on: dt.date, *,
               reference: str = "", bank: str = "", instrument_date: dt.date | None = None, bill: str = "",
               tag: str = "", actor: str = "") -> pb.PaymentResult:
        request = pb.RecordPaymentRequest(
            site_id=self.site_id, idempotency_key=key, account_id=account_id, method=method,
            amount_minor=amount_minor, received_on=received_on.isoformat(), reference=reference, bank=bank,
            instrument_date=instrument_date.isoformat() if instrument_date else "", bill=bill, tag=tag,
            actor=actor)
        return self._call(self.payments_stub.RecordPayment, request, key=key)

    def claim(self, key: str, amount_minor: int, paid_on: dt.date, method: str, *, account_id: str = "",
              reference: str = "", note: str = "", actor: str = "") -> pb.ClaimResult:
        request = pb.ClaimRequest(site_id=self.site_id, idempotency_key=key, account_id=account_id,
                                  amount_minor=amount_minor, paid_on=paid_on.isoformat(), method=method,
                                  reference=reference, note=note, actor=actor)
        return self._call(self.payments_stub.Claim, request, key=key)

    def confirm_claim(self, claim_id: str, *, key: str = "", actor: str = "") -> pb.PaymentResult:
        request = pb.DecideClaimRequest(site_id=self.site_id, claim_id=claim_id, idempotency_key=key,
                                        actor=actor)
        return self._call(self.payments_stub.ConfirmClaim, request, key=key or f"confirm {claim_id}")

    def reject_claim(self, claim_id: str, reason: str, *, key: str = "", actor: str = "") -> pb.ClaimResult:
        request = pb.DecideClaimRequest(site_id=self.site_id, claim_id=claim_id, reason=reason,
                                        idempotency_key=key, actor=actor)
        return self._call(self.payments_stub.RejectClaim, request, key=key or f"reject {claim_id}")

    def bounce(self, receipt: str, reason: str, returned_on: dt.date, *, key: str = "",
               actor: str = "") -> pb.BounceResult:
        request = pb.BounceRequest(site_id=self.site_id, receipt=receipt, reason=reason,
                                   returned_on=returned_on.isoformat(), idempotency_key=key, actor=actor)
        return self._call(self.payments_stub.Bounce, request, key=key or f"bounce {receipt}")

    def request_refund(self, key: str, account_id: str, amount_minor: int, reason: str, on: dt.date, *,
                       method: str = "", deposit_head: str = "", deposit_end: dt.date | None = None,
                       actor: str = "") -> pb.RefundResult:
        request = pb.RequestRefundRequest(
            site_id=self.site_id, idempotency_key=key, account_id=account_id, amount_minor=amount_minor,
            reason=reason, method=method, on=on.isoformat(), deposit_head=deposit_head,
            deposit_end=deposit_end.isoformat() if deposit_end else "", actor=actor)
        return self._call(self.payments_stub.RequestRefund, request, key=key)

    def decide_refund(self, refund_id: str, *, approve: bool, reason: str = "", key: str = "",
                      actor: str = "") -> pb.RefundResult:
        request = pb.DecideRefundRequest(site_id=self.site_id, refund_id=refund_id, approve=approve,
                                         reason=reason, idempotency_key=key, actor=actor)
        return self._call(self.payments_stub.DecideRefund, request, key=key or f"decide {refund_id}")

    def pay_refund(self, refund_id: str, method: str, reference: str, paid_on: dt.date, *, key: str = "",
                   actor: str = "") -> pb.RefundResult:
        request = pb.PayRefundRequest(site_id=self.site_id, refund_id=refund_id, method=method,
                                      reference=reference, paid_on=paid_on.isoformat(), idempotency_key=key,
                                      actor=actor)
        return self._call(self.payments_stub.PayRefund, request, key=key or f"pay {refund_id}")

    def payments(self, *, account_id: str = "", receipt: str = "",
                 page_size: int = 0) -> Iterator[pb.Payment]:
        """Receipts in number order with their allocations, fetched a page at a time."""
        for page in self.payment_pages(account_id=account_id, receipt=receipt, page_size=page_size):
            yield from page.payments

    def payment_pages(self, *, account_id: str = "", receipt: str = "",
                      page_size: int = 0) -> Iterator[pb.ListPaymentsResponse]:
        return self._pages(lambda token: self._call(self.payments_stub.ListPayments, pb.ListPaymentsRequest(
            site_id=self.site_id, account_id=account_id, receipt=receipt, page_size=page_size,
            page_token=token)))

    def claims(self, *, status: str = "", account_id: str = "") -> Iterator[pb.ClaimRecord]:
        for page in self._pages(lambda token: self._call(self.payments_stub.ListClaims, pb.ListClaimsRequest(
                site_id=self.site_id, status=status, account_id=account_id, page_token=token))):
            yield from page.claims

    def refunds(self, *, account_id: str = "") -> Iterator[pb.RefundRecord]:
        stub = self.payments_stub
        for page in self._pages(lambda token: self._call(stub.ListRefunds, pb.ListRefundsRequest(
                site_id=self.site_id, account_id=account_id, page_token=token))):
            yield from page.refunds

    def allocate(self, key: str, on: dt.date, *, account_id: str = "", actor: str = "") -> pb.AllocateResult:
        """Allocate again the unallocated money of `account_id` (empty: every account)."""
        request = pb.AllocateRequest(site_id=self.site_id, idempotency_key=key, account_id=account_id,
                                     on=on.isoformat(), actor=actor)
        return self._call(self.payments_stub.Allocate, request, key=key)

    def assign_suspense(self, receipt: str, account_id: str, on: dt.date, *, bill: str = "", key: str = "",
                        actor: str = "") -> pb.PaymentResult:
        request = pb.AssignSuspenseRequest(site_id=self.site_id, receipt=receipt, account_id=account_id,
                                           bill=bill, on=on.isoformat(), idempotency_key=key, actor=actor)
        return self._call(self.payments_stub.AssignSuspense, request, key=key or f"assign {receipt}")

    def reconcile(self, content: bytes, file_name: str, *, format: str = "", actor: str = ""
                  ) -> pb.ReconcileResult:
        """Import a statement file: a retry is safe (a statement imported before changes nothing)."""
        request = pb.ReconcileRequest(site_id=self.site_id, content=content, file_name=file_name,
                                      format=format, actor=actor)
        return self._call(self.payments_stub.Reconcile, request, key=f"statement {file_name}")

    def bank_lines(self, *, status: str = "") -> Iterator[pb.BankLine]:
        stub = self.payments_stub
        for page in self._pages(lambda token: self._call(stub.ListBankLines, pb.ListBankLinesRequest(
                site_id=self.site_id, status=status, page_token=token))):
            yield from page.lines

    def resolve_bank_line(self, line_id: str, account_id: str, *, bill: str = "", key: str = "",
                          actor: str = "") -> pb.PaymentResult:
        request = pb.ResolveBankLineRequest(site_id=self.site_id, line_id=line_id, account_id=account_id,
                                            bill=bill, idempotency_key=key, actor=actor)
        return self._call(self.payments_stub.ResolveBankLine, request, key=key or f"resolve {line_id}")

    def dismiss_bank_line(self, line_id: str, reason: str, *, key: str = "", actor: str = "") -> pb.BankLine:
        request = pb.DismissBankLineRequest(site_id=self.site_id, line_id=line_id, reason=reason,
                                            idempotency_key=key, actor=actor)
        return self._call(self.payments_stub.DismissBankLine, request, key=key or f"dismiss {line_id}")

    @staticmethod
    def _pages(fetch: Callable[[str], object]) -> Iterator:
        token = ""
        while True:
            page = fetch(token)
            yield page
            token = page.next_page_token  # type: ignore[attr-defined]
            if not token:
                return
