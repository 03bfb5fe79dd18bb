"""Reversals, claims and refunds in the dues ledger, over SQL for both backends.

Each is an operation of its own under its idempotency key, checked inside
its transaction: a payment is reversed once, and a refund was paid from it
first refuses the reversal; a claim is confirmed or rejected once; a refund
never exceeds what is refundable (rating.billing.ledger_refunds) when it is
asked for, approved or paid, and is decided by an approver who did not ask.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from rating.billing import ledger_refunds as refunds
from rating.billing import ledger_rows as rows
from rating.billing.allocation import AllocationRule
from rating.billing.documents import BillLine, LineKind
from rating.billing.interest import Paid
from rating.billing.ledger import NoteRequest, NotFound, OpResult
from rating.billing.ledger_payment_types import (
    AllocationRow,
    Claim,
    ClaimRequest,
    Method,
    Payment,
    PaymentRequest,
    Refund,
    RefundRequest,
    ReversalRequest,
)
from rating.billing.ledger_payments import AMOUNT_MINOR_MAX, SqlPaymentsLedger, Written, payment_payload
from rating.billing.ledger_sql import Tx, _one
from rating.billing.numbering import DocType, Numbering
from rating.errors import InputError

REVERSAL_KINDS = ("bounce", "refund", "chargeback")
CLAIMS_MAX = 1_000_000  # claims or refunds one read returns at most (a page asks for fewer)
_PAYMENT_SELECT = ("SELECT receipt, site_id, account_id, method, amount_minor, received_on, reference, "
                   "details, tag, suspense, seq, actor FROM dues_payments")


class SqlMoneyLedger(SqlPaymentsLedger):
    # ------------------------------------------------------------ reversals

    async def reverse(self, request: ReversalRequest) -> OpResult:
        payload = _reversal_payload(request)
        async with self._writing(request.site_id) as tx:
            first = await self._replay(tx, request.key, "reverse", payload)
            if first is not None:
                return first
            payment = await self._payment(tx, request.site_id, request.receipt)
            await _check_reversible(tx, request, payment)
            note = ""
            if request.charge_minor:
                note = await self._charge_note(tx, request, payment)
            written = Written(request.site_id)
            reopened = await _undo_allocations(tx, request, payment, written)
            if not payment.suspense:
                written.credits.append(("", request.site_id, payment.account_id, payment.receipt, payment.tag,
                                        -payment.amount_minor, request.on, request.kind))
            summary = {"receipt": payment.receipt, "kind": request.kind, "amount_minor": payment.amount_minor,
                       "reopened_minor": reopened, "charge_note": note}
            seq = await self._op(tx, request.key, "reverse", request.site_id, request.actor, payload, summary)
            await self._write(tx, written, {}, seq)
            await tx.execute("INSERT INTO dues_reversals (site_id, receipt, kind, on_date, reason, seq, "
                             "actor) "
                             "VALUES ($1, $2, $3, $4, $5, $6, $7)", request.site_id, payment.receipt,
                             request.kind, request.on, request.reason, seq, request.actor)
            await self._audit(tx, request.site_id, request.actor, "reverse", payment.receipt,
                              rows.canonical({**summary, "reason": request.reason}), seq)
        return OpResult(seq, request.key, "reverse", summary)

    async def _charge_note(self, tx: Tx, request: ReversalRequest, payment: Payment) -> str:
        """The bounce charge as a debit note, carried by the account's next bill."""
        line = BillLine(request.charge_head, LineKind.CHARGE, request.charge_minor,
                        f"Cheque {payment.reference or payment.receipt} returned: {request.reason}")
        note = NoteRequest(f"{request.key}:charge", request.site_id, DocType.DEBIT_NOTE, payment.account_id,
                           (line,), request.on, request.on, request.reason, request.actor, request.numbering)
        lines, body, payload = rows.note_payload(note)
        result = await self._write_note(tx, "note", note, lines, body, payload, cancels=False)
        return str(result.summary["number"])

    async def _payment(self, tx: Tx, site_id: str, receipt: str) -> Payment:
        found = await _one(tx, f"{_PAYMENT_SELECT} WHERE site_id = $1 AND receipt = $2", site_id, receipt)
        if found is None:
            raise NotFound(f"no receipt {receipt!r} in site {site_id!r}; nothing was written", where=receipt)
        return _payment_of(found)

    # ------------------------------------------------------------ claims

    async def claim(self, request: ClaimRequest) -> OpResult:
        rows.check_key(request.key)
        _check_amount(request.amount_minor, f"claim {request.key}")
        Method(request.method)
        payload = rows.sha256(rows.canonical(["claim", request.site_id, request.account_id,
                                              request.amount_minor,
                                              request.paid_on.isoformat(), request.method.value,
                                              request.reference, request.note]))
        async with self._writing(request.site_id) as tx:
            first = await self._replay(tx, request.key, "claim", payload)
            if first is not None:
                return first
            seq = await self._op(tx, request.key, "claim", request.site_id, request.actor, payload, {})
            claim_id = f"CL-{seq}"
            await self._claim_row(tx, request.site_id, claim_id, "claimed", request.account_id,
                                  request.amount_minor, request.paid_on, request.method.value,
                                  request.reference, request.note, "", seq, request.actor)
            await self._audit(tx, request.site_id, request.actor, "claim", claim_id,
                              f"{request.account_id} says it paid {request.amount_minor}", seq)
        return OpResult(seq, request.key, "claim", {"claim": claim_id})

    async def confirm_claim(self, key: str, site_id: str, claim_id: str, *, actor: str, numbering: Numbering,
                            rule: AllocationRule) -> OpResult:
        async with self._writing(site_id) as tx:
            claim = await self._open_claim(tx, site_id, claim_id)
            request = PaymentRequest(key, site_id, claim.account_id, Method(claim.method), claim.amount_minor,
                                     claim.paid_on, actor, numbering, rule, reference=claim.reference,
                                     note=f"claim {claim_id}")
            payload = payment_payload(request)
            first = await self._replay(tx, key, "pay", payload)
            if first is not None:
                return first
            _check_open(claim)
            (result,) = await self._pay_in(tx, site_id, [request], [payload])
            await self._claim_row(tx, site_id, claim_id, "confirmed", claim.account_id, claim.amount_minor,
                                  claim.paid_on, claim.method, claim.reference, "", result.summary["receipt"],
                                  result.seq, actor)
        return result

    async def reject_claim(self, key: str, site_id: str, claim_id: str, *, reason: str,
                           actor: str) -> OpResult:
        rows.check_key(key)
        if not reason.strip():
            raise InputError("a rejection needs its reason", where=claim_id)
        payload = rows.sha256(rows.canonical(["reject", site_id, claim_id, reason]))
        async with self._writing(site_id) as tx:
            first = await self._replay(tx, key, "reject_claim", payload)
            if first is not None:
                return first
            claim = await self._open_claim(tx, site_id, claim_id)
            _check_open(claim)
            summary = {"claim": claim_id, "status": "rejected", "reason": reason}
            seq = await self._op(tx, key, "reject_claim", site_id, actor, payload, summary)
            await self._claim_row(tx, site_id, claim_id, "rejected", claim.account_id, claim.amount_minor,
                                  claim.paid_on, claim.method, claim.reference, reason, "", seq, actor)
            await self._audit(tx, site_id, actor, "reject_claim", claim_id, reason, seq)
        return OpResult(seq, key, "reject_claim", summary)

    async def _open_claim(self, tx: Tx, site_id: str, claim_id: str) -> Claim:
        found = _claims(await tx.fetch(f"{_CLAIM_SELECT} WHERE site_id = $1 AND claim_id = $2", site_id,
                                       claim_id))
        if not found:
            raise NotFound(f"no claim {claim_id!r} in site {site_id!r}; nothing was written", where=claim_id)
        return found[0]

    @staticmethod
    async def _claim_row(tx: Tx, *values: object) -> None:
        await tx.execute("INSERT INTO dues_claims (site_id, claim_id, event, account_id, amount_minor, "
                         "paid_on, method, reference, note, receipt, seq, actor) "
                         f"VALUES ({_marks(12)})", *values)

    # ------------------------------------------------------------ refunds

    async def request_refund(self, request: RefundRequest) -> OpResult:
        payload = refunds.request_payload(request)
        async with self._writing(request.site_id) as tx:
            first = await self._replay(tx, request.key, "refund_request", payload)
            if first is not None:
                return first
            await refunds.check_refundable(tx, request, exclude="")
            seq = await self._op(tx, request.key, "refund_request", request.site_id, request.actor, payload,
                                 {})
            refund_id = f"RF-{seq}"
            await refunds.row(tx, request.site_id, refund_id, "requested", request.account_id,
                              request.amount_minor, request.source.value, request.head, request.reason,
                              request.method, "", request.on, seq, request.actor,
                              rows.canonical(refunds.request_detail(request)))
            await self._audit(tx, request.site_id, request.actor, "refund_request", refund_id,
                              rows.canonical(refunds.request_detail(request)), seq)
        return OpResult(seq, request.key, "refund_request", {"refund": refund_id, "status": "requested"})

    async def decide_refund(self, key: str, site_id: str, refund_id: str, *, approve: bool, reason: str,
                            actor: str, approvers: frozenset[str]) -> OpResult:
        rows.check_key(key)
        payload = rows.sha256(rows.canonical(["decide", site_id, refund_id, approve, reason]))
        async with self._writing(site_id) as tx:
            first = await self._replay(tx, key, "refund_decision", payload)
            if first is not None:
                return first
            refund, request = await refunds.current(tx, site_id, refund_id)
            refunds.check_decider(refund, actor, approvers, approve=approve, reason=reason)
            if approve:
                await refunds.check_refundable(tx, request, exclude=refund_id)
            status = "approved" if approve else "rejected"
            summary = {"refund": refund_id, "status": status}
            seq = await self._op(tx, key, "refund_decision", site_id, actor, payload, summary)
            await refunds.row(tx, site_id, refund_id, status, refund.account_id, refund.amount_minor,
                              refund.source, refund.head, reason, refund.method, "", request.on, seq, actor)
            await self._audit(tx, site_id, actor, f"refund_{status}", refund_id, reason, seq)
        return OpResult(seq, key, "refund_decision", summary)

    async def pay_refund(self, key: str, site_id: str, refund_id: str, *, method: str, reference: str,
                         on: dt.date, actor: str) -> OpResult:
        rows.check_key(key)
        payload = rows.sha256(rows.canonical(["refund_pay", site_id, refund_id, method, reference,
                                              on.isoformat()]))
        async with self._writing(site_id) as tx:
            first = await self._replay(tx, key, "refund_pay", payload)
            if first is not None:
                return first
            refund, request = await refunds.current(tx, site_id, refund_id)
            if refund.status != "approved":
                raise InputError(f"refund {refund_id} is {refund.status}: only an approved refund is paid; "
                                 "nothing was written", where=refund_id, reason="NOT_APPROVED")
            await refunds.check_refundable(tx, request, exclude=refund_id, paying=True)
            summary = {"refund": refund_id, "status": "paid", "amount_minor": refund.amount_minor}
            seq = await self._op(tx, key, "refund_pay", site_id, actor, payload, summary)
            written = Written(site_id)
            await refunds.debit_credits(tx, request, on, written)
            await self._write(tx, written, {}, seq)
            await refunds.row(tx, site_id, refund_id, "paid", refund.account_id, refund.amount_minor,
                              refund.source, refund.head, refund.reason, method, reference, on, seq, actor)
            await self._audit(tx, site_id, actor, "refund_paid", refund_id, f"{method} {reference}", seq)
        return OpResult(seq, key, "refund_pay", summary)

    # ------------------------------------------------------------ reads

    async def payments(self, site_id: str, account_id: str = "", *, receipt: str = "",
                       limit: int = 1000, offset: int = 0) -> list[Payment]:
        sql, args = f"{_PAYMENT_SELECT} WHERE site_id = $1", list[object]([site_id])
        for column, value in (("account_id", account_id), ("receipt", receipt)):
            if value:
                args.append(value)
                sql += f" AND {column} = ${len(args)}"
        async with self._reading() as tx:
            found = await tx.fetch(f"{sql} ORDER BY fy, serial LIMIT ${len(args) + 1} "
                                   f"OFFSET ${len(args) + 2}", *args, limit, offset)
        return [_payment_of(r) for r in found]

    async def allocations(self, site_id: str, account_id: str = "", *,
                          receipt: str = "") -> list[AllocationRow]:
        sql, args = ("SELECT seq, account_id, receipt, credit_ref, bill_ref, head, kind, due_date, "
                     "amount_minor, "
                     "on_date FROM dues_allocations WHERE site_id = $1"), [site_id]
        for column, value in (("account_id", account_id), ("receipt", receipt)):
            if value:
                args.append(value)
                sql += f" AND {column} = ${len(args)}"
        async with self._reading() as tx:
            found = await tx.fetch(f"{sql} ORDER BY seq, due_date, bill_ref, head", *args)
        return [AllocationRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], rows.day(r[7]), int(r[8]),
                              rows.day(r[9]))
                for r in found]

    async def advances(self, site_id: str, account_id: str = "") -> dict[tuple[str, str], int]:
        sql = "SELECT account_id, tag, SUM(amount_minor) FROM dues_credits WHERE site_id = $1"
        args = [site_id]
        if account_id:
            sql += " AND account_id = $2"
            args.append(account_id)
        async with self._reading() as tx:
            found = await tx.fetch(f"{sql} GROUP BY account_id, tag HAVING SUM(amount_minor) <> 0", *args)
        return {(a, t): int(total) for a, t, total in found}

    async def paid_late(self, site_id: str, until: dt.date) -> dict[str, list[Paid]]:
        async with self._reading() as tx:
            found = await tx.fetch(
                "SELECT account_id, head, kind, bill_ref, due_date, on_date, SUM(amount_minor) "
                "FROM dues_allocations WHERE site_id = $1 AND on_date > due_date AND on_date <= $2 "
                "AND receipt NOT IN (SELECT receipt FROM dues_reversals WHERE site_id = $3) "
                "GROUP BY account_id, head, kind, bill_ref, due_date, on_date HAVING SUM(amount_minor) <> 0",
                site_id, until, site_id)
        paid: dict[str, list[Paid]] = {}
        for account, head, kind, bill, due, on, amount in found:
            paid.setdefault(account, []).append(Paid(head, LineKind(kind), bill, rows.day(due), rows.day(on),
                                                     int(amount)))
        return paid

    async def claims(self, site_id: str, *, status: str = "", account_id: str = "", limit: int = CLAIMS_MAX,
                     offset: int = 0) -> list[Claim]:
        sql, args = _claim_ids(site_id, status, account_id)
        async with self._reading() as tx:
            ids = [cid for (cid,) in await tx.fetch(f"{sql} ORDER BY c.seq LIMIT ${len(args) + 1} OFFSET "
                                                    f"${len(args) + 2}", *args, limit, offset)]
            if not ids:
                return []
            among, listed = tx.one_of(2, ids)
            return _claims(await tx.fetch(f"{_CLAIM_SELECT} WHERE site_id = $1 AND claim_id {among}", site_id,
                                          *listed))

    async def refunds(self, site_id: str, *, account_id: str = "", limit: int = CLAIMS_MAX,
                      offset: int = 0) -> list[Refund]:
        async with self._reading() as tx:
            return await refunds.page_of(tx, site_id, account_id, limit, offset)


def _marks(count: int) -> str:
    return ", ".join(f"${n}" for n in range(1, count + 1))


_CLAIM_SELECT = ("SELECT claim_id, site_id, account_id, amount_minor, paid_on, method, reference, event, "
                 "receipt, "
                 "note, actor, seq FROM dues_claims")


def _claim_ids(site_id: str, status: str, account_id: str) -> tuple[str, list[object]]:
    """The query of the claims' ids in claim order, of one status and account when given."""
    sql, args = ("SELECT c.claim_id FROM dues_claims c WHERE c.site_id = $1 AND c.event = 'claimed'",
                 list[object]([site_id]))
    if account_id:
        args.append(account_id)
        sql += f" AND c.account_id = ${len(args)}"
    later = "SELECT 1 FROM dues_claims d WHERE d.site_id = c.site_id AND d.claim_id = c.claim_id AND d.event"
    if status == "open":
        sql += f" AND NOT EXISTS ({later} <> 'claimed')"
    elif status:
        args.append(status)
        sql += f" AND EXISTS ({later} = ${len(args)})"
    return sql, args


def _claims(found: list[tuple]) -> list[Claim]:
    """Each claim as its rows leave it (claimed, then confirmed or rejected), in claim order."""
    claims: dict[str, Claim] = {}
    for r in sorted(found, key=lambda r: r[11]):
        cid, site, account, amount, paid_on, method, reference, event, receipt, note, actor, _ = r
        if event == "claimed":
            claims[cid] = Claim(cid, site, account, int(amount), rows.day(paid_on), method, reference, "open",
                                "", "", actor)
        elif cid in claims:
            claims[cid] = dataclasses.replace(claims[cid], status=event, receipt=receipt, reason=note)
    return list(claims.values())


def _check_open(claim: Claim) -> None:
    if claim.status != "open":
        raise InputError(f"claim {claim.claim_id} is {claim.status}; nothing was written",
                         where=claim.claim_id,
                         reason="CLAIM_DECIDED")


def _payment_of(r: tuple) -> Payment:
    return Payment(r[0], r[1], r[2], r[3], int(r[4]), rows.day(r[5]), r[6], json.loads(r[7]), r[8],
                   bool(r[9]),
                   r[10], r[11])


def _check_amount(amount: object, where: str) -> None:
    if type(amount) is not int or not 0 < amount <= AMOUNT_MINOR_MAX:
        raise InputError(f"amount must be a whole number of minor units, 1..{AMOUNT_MINOR_MAX}, got "
                         f"{amount!r}",
                         where=where)


def _reversal_payload(request: ReversalRequest) -> bytes:
    rows.check_key(request.key)
    if request.kind not in REVERSAL_KINDS:
        raise InputError(f"a reversal is one of {', '.join(REVERSAL_KINDS)}, got {request.kind!r}",
                         where=request.receipt)
    if request.charge_minor:
        _check_amount(request.charge_minor, f"bounce charge of {request.receipt}")
    if not request.reason.strip():
        raise InputError("a reversal needs its reason", where=request.receipt)
    return rows.sha256(rows.canonical(["reverse", request.site_id, request.receipt, request.kind,
                                       request.on.isoformat(), request.reason, request.charge_minor,
                                       request.charge_head]))


async def _check_reversible(tx: Tx, request: ReversalRequest, payment: Payment) -> None:
    where = payment.receipt
    if request.kind == "bounce" and payment.method != Method.CHEQUE.value:
        raise InputError(f"receipt {where} is a {payment.method} payment: only a cheque bounces",
                         where=where, reason="NOT_A_CHEQUE")
    done = await _one(tx, "SELECT kind FROM dues_reversals WHERE site_id = $1 AND receipt = $2",
                      request.site_id, where)
    if done is not None:
        raise InputError(f"receipt {where} was reversed already ({done[0]}); nothing was written",
                         where=where,
                         reason="ALREADY_REVERSED")
    refunded = await _one(tx, "SELECT COUNT(*) FROM dues_credits WHERE site_id = $1 AND receipt = $2 "
                              "AND why = 'refund'", request.site_id, where)
    if refunded is not None and refunded[0]:
        raise InputError(f"receipt {where}: part of it was refunded; record the money owed back by a debit "
                         "note instead", where=where, reason="REFUNDED")


async def _undo_allocations(tx: Tx, request: ReversalRequest, payment: Payment, written: Written) -> int:
    """The payment's allocations undone (the dues open again, its credit restored); what was reopened."""
    found = await tx.fetch("SELECT bill_ref, head, kind, due_date, SUM(amount_minor) FROM dues_allocations "
                           "WHERE site_id = $1 AND receipt = $2 GROUP BY bill_ref, head, kind, due_date "
                           "HAVING SUM(amount_minor) <> 0", request.site_id, payment.receipt)
    site, account, receipt = request.site_id, payment.account_id, payment.receipt
    for bill, head, kind, due, amount in found:
        amount, due = int(amount), rows.day(due)
        written.entries.append(("", site, account, head, kind, amount, due, bill, f"{request.kind} {receipt}",
                                request.actor))
        written.allocations.append(("", site, account, receipt, "", bill, head, kind, due, -amount,
                                    request.on))
        written.credits.append(("", site, account, receipt, payment.tag, amount, request.on, "reversal"))
    return sum(int(r[4]) for r in found)
