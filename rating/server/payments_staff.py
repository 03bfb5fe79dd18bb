"""The PaymentsService's staff calls: allocation run again, suspense assigned,
bank statements reconciled and their review queue. Roles are the
interceptor's (rating.server.roles: staff); each write is one ledger
operation under its key, the request's or one made of what it decides.
"""

from __future__ import annotations

from rating.billing.ledger_payment_types import BankLine
from rating.payments.bank_import import FORMATS
from rating.payments.bank_reconcile import import_bank_data
from rating.prepaid.errors import InvalidArgument
from rating.prepaid.idempotency import check_key
from rating.server.billing_servicer import _actor, _before_writing, _day
from rating.server.payments_servicer import PaymentsServicer, _key, _next, _page, _payment_result, _required
from rating.server.servicers import unary
from rating.v1 import payments_pb2 as pb

BANK_STATUSES = ("", "matched", "review", "unmatched", "resolved", "dismissed")


class PaymentsStaffServicer(PaymentsServicer):
    @unary("Allocate")
    async def Allocate(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        key = check_key(request.idempotency_key, "idempotency_key")
        if request.account_id and request.account_id not in society.config.registry.accounts:
            raise InvalidArgument(f"no account {request.account_id!r} in site {society.site_id!r}",
                                  field="account_id")
        on = _day(request.on, "on")
        _before_writing(context)
        result = await ledger.reallocate(key, society.site_id, request.account_id, on=on,
                                         actor=_actor(request.actor), rule=self.settings.allocation)
        s = result.summary
        return pb.AllocateResult(
            idempotency_key=result.key, sequence=result.seq, accounts=s["accounts"],
            allocated_minor=s["allocated_minor"], replayed=result.replayed,
            allocations=[pb.AllocatedLine(account_id=a, receipt=r, bill=b, head=h, amount_minor=m)
                         for a, r, b, h, m in s["allocations"]])

    @unary("AssignSuspense")
    async def AssignSuspense(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        receipt = _required(request.receipt, "receipt")
        account = _required(request.account_id, "account_id")
        key = _key(request.idempotency_key, f"assign:{society.site_id}:{receipt}")
        on = _day(request.on, "on")
        _before_writing(context)
        result = await ledger.assign_suspense(key, society.site_id, receipt, account_id=account,
                                              bill=request.bill, on=on, actor=_actor(request.actor),
                                              numbering=society.numbering, rule=self.settings.allocation)
        return _payment_result(result, society)

    @unary("Reconcile")
    async def Reconcile(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        name = _required(request.file_name, "file_name")
        if request.format not in ("", *FORMATS):
            raise InvalidArgument(f"format must be empty or one of {', '.join(FORMATS)}, got "
                                  f"{request.format!r}", field="format")
        _before_writing(context)
        done = await import_bank_data(ledger, request.content, file=name, site_id=society.site_id,
                                      actor=_actor(request.actor), settings=self.settings,
                                      numbering=society.numbering, format=request.format or None)
        if done.result is None:
            return pb.ReconcileResult(known=done.known)
        s = done.result.summary
        return pb.ReconcileResult(sequence=done.result.seq, statements=s["statements"], known=done.known,
                                  lines=s["lines"], payments=s["payments"], replayed=done.result.replayed)

    @unary("ListBankLines")
    async def ListBankLines(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        if request.status not in BANK_STATUSES:
            raise InvalidArgument(f"status must be empty or one of {', '.join(BANK_STATUSES[1:])}, got "
                                  f"{request.status!r}", field="status")
        size, offset = _page(request)
        found = await ledger.bank_lines(society.site_id, status=request.status)
        return pb.ListBankLinesResponse(lines=[_bank_line(line) for line in found[offset:offset + size]],
                                        next_page_token=_next(offset, size, len(found)))

    @unary("ResolveBankLine")
    async def ResolveBankLine(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        line = _required(request.line_id, "line_id")
        account = _required(request.account_id, "account_id")
        key = _key(request.idempotency_key, f"bank-resolve:{society.site_id}:{line}")
        _before_writing(context)
        result = await ledger.resolve_bank_line(key, society.site_id, line, account_id=account,
                                                bill=request.bill, actor=_actor(request.actor),
                                                numbering=society.numbering, rule=self.settings.allocation)
        return _payment_result(result, society)

    @unary("DismissBankLine")
    async def DismissBankLine(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        line_id = _required(request.line_id, "line_id")
        reason = _required(request.reason.strip(), "reason")
        key = _key(request.idempotency_key, f"bank-dismiss:{society.site_id}:{line_id}")
        _before_writing(context)
        await ledger.dismiss_bank_line(key, society.site_id, line_id, reason=reason,
                                       actor=_actor(request.actor))
        found = [line for line in await ledger.bank_lines(society.site_id) if line.line_id == line_id]
        return _bank_line(found[0])


def _bank_line(line: BankLine) -> pb.BankLine:
    return pb.BankLine(line_id=line.line_id, booking_date=line.booking_date.isoformat(),
                       amount_minor=line.amount_minor, reference=line.reference, text=line.text,
                       status=line.status, reason=line.reason, candidates=list(line.candidates),
                       receipt=line.receipt)
