"""PaymentsService handlers: decode, call the dues ledger's payments API, encode.

The site, its numbering and its ledger are the BillingService's
(`BillingServicer.site`); the allocation rule, bounce charge, refund
deadline and approvers are the site's `payments.toml`, read at start
(rating.payments.settings). Roles are the interceptor's: a resident's Claim
and ListPayments are about its own unit (`account_id`) before the handler
runs. Each write's idempotency key is the request's, or for a decision on
an existing claim, receipt or refund made of what it decides, as the CLI
makes it, so that a retry is never a second write. Errors become statuses
in rating.server.status.
"""

from __future__ import annotations

import datetime as dt

import grpc

from rating.billing.ledger_payment_types import (
    AllocationRow,
    ClaimRequest,
    Method,
    PaymentRequest,
    RefundRequest,
    RefundSource,
    ReversalRequest,
)
from rating.billing.ledger_payments import AMOUNT_MINOR_MAX
from rating.payments.settings import PaymentSettings
from rating.prepaid.errors import InvalidArgument
from rating.prepaid.idempotency import check_key
from rating.server import roles
from rating.server.billing_servicer import (
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    BillingServicer,
    _actor,
    _before_writing,
    _bounded,
    _day,
    _offset,
)
from rating.server.servicers import unary
from rating.server.status import StatusError
from rating.v1 import payments_pb2 as pb
from rating.v1 import payments_pb2_grpc

OFFLINE_METHODS = (Method.CASH, Method.CHEQUE, Method.TRANSFER)
REFUND_METHODS = ("transfer", "cheque", "cash")
CLAIM_STATUSES = ("", "open", "confirmed", "rejected")


class PaymentsServicer(payments_pb2_grpc.PaymentsServiceServicer):
    def __init__(self, billing: BillingServicer, settings: PaymentSettings):
        self.billing, self.settings = billing, settings

    @unary("RecordPayment")
    async def RecordPayment(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        payment = PaymentRequest(
            check_key(request.idempotency_key, "idempotency_key"), society.site_id,
            _required(request.account_id, "account_id"), _method(request.method, OFFLINE_METHODS),
            _amount(request.amount_minor), _day(request.received_on, "received_on"), _actor(request.actor),
            society.numbering, self.settings.allocation, reference=request.reference, bank=request.bank,
            instrument_date=_day(request.instrument_date, "instrument_date") if request.instrument_date
            else None, bill=request.bill, tag=request.tag)
        _before_writing(context)
        return _payment_result(await ledger.pay(payment), society)

    @unary("Claim")
    async def Claim(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        claim = ClaimRequest(check_key(request.idempotency_key, "idempotency_key"), society.site_id,
                             _account(society, request.account_id), _amount(request.amount_minor),
                             _day(request.paid_on, "paid_on"), _method(request.method, OFFLINE_METHODS),
                             request.reference, _actor(request.actor), request.note)
        _before_writing(context)
        result = await ledger.claim(claim)
        return _claim_result(result, "open")

    @unary("ConfirmClaim")
    async def ConfirmClaim(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        claim_id = _required(request.claim_id, "claim_id")
        key = _key(request.idempotency_key, f"claim-confirm:{society.site_id}:{claim_id}")
        _before_writing(context)
        result = await ledger.confirm_claim(key, society.site_id, claim_id, actor=_actor(request.actor),
                                            numbering=society.numbering, rule=self.settings.allocation)
        return _payment_result(result, society)

    @unary("RejectClaim")
    async def RejectClaim(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        claim_id = _required(request.claim_id, "claim_id")
        reason = _required(request.reason.strip(), "reason")
        key = _key(request.idempotency_key, f"claim-reject:{society.site_id}:{claim_id}")
        _before_writing(context)
        result = await ledger.reject_claim(key, society.site_id, claim_id, reason=reason,
                                           actor=_actor(request.actor))
        return _claim_result(result, "rejected")

    @unary("Bounce")
    async def Bounce(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        receipt = _required(request.receipt, "receipt")
        reversal = ReversalRequest(
            _key(request.idempotency_key, f"bounce:{society.site_id}:{receipt}"), society.site_id, receipt,
            "bounce", _day(request.returned_on, "returned_on"), _required(request.reason.strip(), "reason"),
            _actor(request.actor), society.numbering, self.settings.bounce_charge_minor,
            self.settings.bounce_head)
        _before_writing(context)
        result = await ledger.reverse(reversal)
        s = result.summary
        return pb.BounceResult(idempotency_key=result.key, sequence=result.seq, receipt=s["receipt"],
                               amount_minor=s["amount_minor"], reopened_minor=s["reopened_minor"],
                               charge_note=s["charge_note"], replayed=result.replayed,
                               charge_minor=reversal.charge_minor if s["charge_note"] else 0)

    @unary("RequestRefund")
    async def RequestRefund(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        head = request.deposit_head
        if head and not request.deposit_end:
            raise InvalidArgument("a deposit's refund names the day its term ended", field="deposit_end")
        refund = RefundRequest(
            check_key(request.idempotency_key, "idempotency_key"), society.site_id,
            _account(society, request.account_id), _amount(request.amount_minor),
            RefundSource.DEPOSIT if head else RefundSource.ADVANCE,
            _required(request.reason.strip(), "reason"),
            _refund_method(request.method), _day(request.on, "on"), _actor(request.actor),
            self.settings.refund_deadline_days, head,
            _day(request.deposit_end, "deposit_end") if head else None, self.settings.deposit_heads)
        _before_writing(context)
        return _refund_result(await ledger.request_refund(refund), "requested")

    @unary("DecideRefund")
    async def DecideRefund(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        refund_id = _required(request.refund_id, "refund_id")
        decider, approvers = self._decider(request.actor)
        await _not_own_request(ledger, society.site_id, refund_id, decider)
        verb = "approve" if request.approve else "reject"
        key = _key(request.idempotency_key, f"refund-{verb}:{society.site_id}:{refund_id}")
        _before_writing(context)
        result = await ledger.decide_refund(key, society.site_id, refund_id, approve=request.approve,
                                            reason=request.reason, actor=decider, approvers=approvers)
        return _refund_result(result, "approved" if request.approve else "rejected")

    def _decider(self, actor: str) -> tuple[str, frozenset[str]]:
        """Who decides, and who may: a token's name (its role let it call), else the
        request's `actor`, one of payments.toml's approvers (authentication off)."""
        name = roles.CALLER.get().name
        if name:
            return name, self.settings.approvers | {name}
        return _required(actor, "actor"), self.settings.approvers

    @unary("PayRefund")
    async def PayRefund(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        refund_id = _required(request.refund_id, "refund_id")
        key = _key(request.idempotency_key, f"refund-pay:{society.site_id}:{refund_id}")
        method, reference = _refund_method(request.method), _required(request.reference, "reference")
        on = _day(request.paid_on, "paid_on")
        _before_writing(context)
        result = await ledger.pay_refund(key, society.site_id, refund_id, method=method, reference=reference,
                                         on=on, actor=_actor(request.actor))
        return _refund_result(result, "paid")

    @unary("ListPayments")
    async def ListPayments(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        size, offset = _page(request)
        found = await ledger.payments(society.site_id, request.account_id, receipt=request.receipt,
                                      limit=size + 1, offset=offset)  # one more: is there a next page
        page = found[:size]
        paid = await _allocations(ledger, society.site_id, request, [p.receipt for p in page])
        site = society.config.site
        return pb.ListPaymentsResponse(
            payments=[_payment(p, paid.get(p.receipt, ())) for p in page],
            next_page_token=_next_after(offset, size, found), currency=site.currency,
            minor_unit_exponent=site.minor_unit_exponent)

    @unary("ListClaims")
    async def ListClaims(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        size, offset = _page(request)
        if request.status not in CLAIM_STATUSES:
            raise InvalidArgument(f"status must be empty or one of {', '.join(CLAIM_STATUSES[1:])}, got "
                                  f"{request.status!r}", field="status")
        found = await ledger.claims(society.site_id, status=request.status, account_id=request.account_id,
                                    limit=size + 1, offset=offset)
        return pb.ListClaimsResponse(
            claims=[pb.ClaimRecord(claim_id=c.claim_id, account_id=c.account_id, amount_minor=c.amount_minor,
                                   paid_on=c.paid_on.isoformat(), method=c.method, reference=c.reference,
                                   status=c.status, receipt=c.receipt, reason=c.reason, actor=c.actor)
                    for c in found[:size]],
            next_page_token=_next_after(offset, size, found))

    @unary("ListRefunds")
    async def ListRefunds(self, request, context):
        society, ledger = self.billing.site(request.site_id)
        size, offset = _page(request)
        found = await ledger.refunds(society.site_id, account_id=request.account_id, limit=size + 1,
                                     offset=offset)
        return pb.ListRefundsResponse(
            refunds=[pb.RefundRecord(
                refund_id=r.refund_id, account_id=r.account_id, amount_minor=r.amount_minor, source=r.source,
                head=r.head, reason=r.reason, method=r.method, status=r.status, requested_by=r.requested_by,
                decided_by=r.decided_by, decision_reason=r.decision_reason, paid_reference=r.paid_reference,
                requested_on=r.requested_on.isoformat()) for r in found[:size]],
            next_page_token=_next_after(offset, size, found))


async def _allocations(ledger, site_id: str, request, receipts: list[str]) -> dict[str, list[AllocationRow]]:
    """receipt -> what it paid: the account's (or receipt's) in one read; a page of the
    whole site's receipt by receipt, never every allocation of the site."""
    if request.account_id or request.receipt:
        rows = await ledger.allocations(site_id, request.account_id, receipt=request.receipt)
    else:
        rows = [row for receipt in receipts for row in await ledger.allocations(site_id, receipt=receipt)]
    paid: dict[str, list[AllocationRow]] = {}
    for row in rows:
        if row.receipt in receipts:
            paid.setdefault(row.receipt, []).append(row)
    return paid


async def _not_own_request(ledger, site_id: str, refund_id: str, decider: str) -> None:
    """The ledger refuses a decider named as the requester; a token that asked for the
    refund on someone's behalf (`X via <token>`) is its requester too."""
    for refund in await ledger.refunds(site_id):
        if refund.refund_id == refund_id and refund.requested_by.endswith(f" via {decider}"):
            raise StatusError(grpc.StatusCode.PERMISSION_DENIED, f"{decider!r} asked for this refund: "
                              "another approver decides it", reason="PERMISSION_DENIED", field="refund_id")


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is empty", field=field)
    return value


def _key(given: str, default: str) -> str:
    return check_key(given, "idempotency_key") if given else default


def _account(society, account_id: str) -> str:
    """An account of the site (a claim or refund of an unknown unit is refused, not kept)."""
    _required(account_id, "account_id")
    if account_id not in society.config.registry.accounts:
        raise InvalidArgument(f"no account {account_id!r} in site {society.site_id!r}", field="account_id")
    return account_id


def _amount(amount_minor: int) -> int:
    if not 0 < amount_minor <= AMOUNT_MINOR_MAX:
        raise InvalidArgument(f"amount_minor must be 1..{AMOUNT_MINOR_MAX} minor units, got {amount_minor}",
                              field="amount_minor")
    return amount_minor


def _method(given: str, allowed: tuple[Method, ...]) -> Method:
    if given not in allowed:
        raise InvalidArgument(f"method must be one of {', '.join(allowed)}, got {given!r}", field="method")
    return Method(given)


def _refund_method(given: str) -> str:
    method = given or REFUND_METHODS[0]
    if method not in REFUND_METHODS:
        raise InvalidArgument(f"method must be one of {', '.join(REFUND_METHODS)}, got {given!r}",
                              field="method")
    return method


def _page(request) -> tuple[int, int]:
    return (_bounded(request.page_size, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, "page_size"),
            _offset(request.page_token))


def _next(offset: int, size: int, found: int) -> str:
    return str(offset + size) if found > offset + size else ""


def _next_after(offset: int, size: int, page: list) -> str:
    """The next page's token, `page` read with one row more than `size` (is there a next page)."""
    return str(offset + size) if len(page) > size else ""


def _day_text(day: dt.date | None) -> str:
    return day.isoformat() if day else ""


def _allocation(row: AllocationRow) -> pb.Allocation:
    return pb.Allocation(bill=row.bill_ref, head=row.head, kind=row.kind, due_date=_day_text(row.due_date),
                         amount_minor=row.amount_minor, on=_day_text(row.on), credit_ref=row.credit_ref)


def _payment(p, allocations) -> pb.Payment:
    d = p.details
    return pb.Payment(receipt=p.receipt, account_id=p.account_id, method=p.method,
                      amount_minor=p.amount_minor, received_on=p.received_on.isoformat(),
                      reference=p.reference, bank=d.get("bank", ""),
                      instrument_date=d.get("instrument_date", ""), bill=d.get("bill", ""), tag=p.tag,
                      flags=d.get("flags", []), suspense=p.suspense, sequence=p.seq, actor=p.actor,
                      allocations=[_allocation(a) for a in allocations])


def _payment_result(result, society) -> pb.PaymentResult:
    s, site = result.summary, society.config.site
    return pb.PaymentResult(
        idempotency_key=result.key, sequence=result.seq, receipt=s["receipt"], account_id=s["account"],
        amount_minor=s["amount_minor"], allocated_minor=s["allocated_minor"],
        advance_minor=s["advance_minor"],
        allocations=[pb.Allocation(bill=bill, head=head, amount_minor=amount)
                     for bill, head, amount in s["allocations"]],
        flags=s["flags"], replayed=result.replayed, currency=site.currency,
        minor_unit_exponent=site.minor_unit_exponent)


def _claim_result(result, status: str) -> pb.ClaimResult:
    # the ledger replays a claim's first summary, which holds no id: it is CL-<sequence>
    return pb.ClaimResult(idempotency_key=result.key, sequence=result.seq,
                          claim_id=result.summary.get("claim", f"CL-{result.seq}"), status=status,
                          replayed=result.replayed)


def _refund_result(result, status: str) -> pb.RefundResult:
    return pb.RefundResult(idempotency_key=result.key, sequence=result.seq,
                           refund_id=result.summary.get("refund", f"RF-{result.seq}"),
                           status=result.summary.get("status", status), replayed=result.replayed)
