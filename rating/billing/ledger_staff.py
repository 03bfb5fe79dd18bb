"""Corrections of recorded payments in the dues ledger, over SQL for both backends.

- `reallocate`: allocation run again over the money an account (or every
  account of a site) holds unallocated, its advances and held payments, by
  the site's rule: one operation under its key, each allocation a row of its
  own as a payment's are; what nothing takes stays the advance.
- `assign_suspense`: a payment kept in suspense (it named no account the
  books know) given to its account: in one transaction the suspense receipt
  is closed by a reversal row (`assigned`), never updated, and the money is
  booked as that account's payment (a new receipt, allocated by the rule,
  naming the first), so the money is counted once.
- `refund_part`: a gateway's refund of part of a payment, once per refund:
  what the receipt holds unallocated goes first, then its allocations are
  undone newest due first (those dues open again) until the part is covered;
  never more in all than the payment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rating.billing import ledger_rows as rows
from rating.billing.allocation import AllocationRule
from rating.billing.ledger import OpResult
from rating.billing.ledger_bank import SqlBankLedger
from rating.billing.ledger_payment_types import Method, Payment, PaymentRequest
from rating.billing.ledger_payments import AMOUNT_MINOR_MAX, CREDIT_COLUMNS, Written, payment_payload
from rating.billing.ledger_sql import Tx, _one
from rating.billing.numbering import Numbering
from rating.errors import InputError

ALLOCATIONS_LISTED_MAX = 1000  # a site-wide run lists its first allocations; the totals cover all


class SqlStaffLedger(SqlBankLedger):
    async def reallocate(self, key: str, site_id: str, account_id: str = "", *, on: dt.date, actor: str,
                         rule: AllocationRule) -> OpResult:
        rows.check_key(key)
        payload = rows.sha256(rows.canonical(["reallocate", site_id, account_id, on.isoformat(),
                                              list(rule.order), rule.kinds, list(rule.heads)]))
        async with self._writing(site_id) as tx:
            first = await self._replay(tx, key, "reallocate", payload)
            if first is not None:
                return first
            holders = await self._credit_holders(tx, site_id)
            accounts = holders & {account_id} if account_id else holders
            written = await self._use_credits(tx, site_id, accounts, on, actor, rule)
            paid = [r for r in written.allocations if r[3]]  # a receipt's money (not a credit note)
            summary = {"accounts": len(accounts), "allocated_minor": sum(r[9] for r in paid),
                       "allocations": [[r[2], r[3], r[5], r[6], r[9]] for r in paid[:ALLOCATIONS_LISTED_MAX]]}
            seq = await self._op(tx, key, "reallocate", site_id, actor, payload, summary)
            await self._write(tx, written, {}, seq)
            await self._audit(tx, site_id, actor, "reallocate", account_id or "site",
                              f"{summary['allocated_minor']} of {len(accounts)} accounts' money allocated",
                              seq)
        return OpResult(seq, key, "reallocate", summary)

    async def assign_suspense(self, key: str, site_id: str, receipt: str, *, account_id: str, bill: str,
                              on: dt.date, actor: str, numbering: Numbering,
                              rule: AllocationRule) -> OpResult:
        rows.check_key(key)
        if not account_id:
            raise InputError("assigning a payment in suspense names the account it is for", where=receipt)
        payload = rows.sha256(rows.canonical(["assign", site_id, receipt, account_id, bill, on.isoformat()]))
        async with self._writing(site_id) as tx:
            first = await self._replay(tx, key, "assign", payload)
            if first is not None:
                return first
            payment = await self._payment(tx, site_id, receipt)
            await _check_in_suspense(tx, site_id, payment)
            request = PaymentRequest(f"{key}:payment", site_id, account_id, Method(payment.method),
                                     payment.amount_minor, payment.received_on, actor, numbering, rule,
                                     reference=payment.reference, bill=bill, note=f"from suspense {receipt}")
            (paid,) = await self._pay_in(tx, site_id, [request], [payment_payload(request)])
            summary = {**paid.summary, "from_receipt": receipt}
            seq = await self._op(tx, key, "assign", site_id, actor, payload, summary)
            await tx.execute("INSERT INTO dues_reversals (site_id, receipt, kind, on_date, reason, seq, "
                             "actor) VALUES ($1, $2, $3, $4, $5, $6, $7)", site_id, receipt, "assigned", on,
                             f"assigned to {account_id} as {paid.summary['receipt']}", seq, actor)
            await self._audit(tx, site_id, actor, "assign", receipt, rows.canonical(summary), seq)
        return OpResult(seq, key, "assign", summary)

    async def refund_part(self, key: str, site_id: str, receipt: str, amount_minor: int, *, on: dt.date,
                          reason: str, actor: str) -> OpResult:
        rows.check_key(key)
        if type(amount_minor) is not int or not 0 < amount_minor <= AMOUNT_MINOR_MAX:
            raise InputError(f"a refund is 1..{AMOUNT_MINOR_MAX} minor units, got {amount_minor!r}",
                             where=receipt)
        payload = rows.sha256(rows.canonical(["refund_part", site_id, receipt, amount_minor, on.isoformat(),
                                              reason]))
        async with self._writing(site_id) as tx:
            first = await self._replay(tx, key, "refund_part", payload)
            if first is not None:
                return first
            payment = await self._payment(tx, site_id, receipt)
            refunded = await _refundable(tx, site_id, payment, amount_minor)
            written = Written(site_id)
            from_dues = amount_minor - refunded.unallocated
            reopened = await _undo_newest(tx, site_id, payment, from_dues, on, actor, written)
            summary = {"receipt": receipt, "kind": "refund", "amount_minor": amount_minor,
                       "reopened_minor": reopened, "refunded_minor": refunded.before + amount_minor}
            seq = await self._op(tx, key, "refund_part", site_id, actor, payload, summary)
            await self._write(tx, written, {}, seq)
            # not netted: the refund's own row says how much of the receipt went back
            credits = [(seq, site_id, payment.account_id, receipt, payment.tag, -amount_minor, on, "refund")]
            if reopened:  # the reopened dues' money back in the receipt's credit, then all of it out
                credits.insert(0, (seq, site_id, payment.account_id, receipt, payment.tag, reopened, on,
                                   "reversal"))
            await tx.insert_many("dues_credits", CREDIT_COLUMNS, credits)
            await self._audit(tx, site_id, actor, "refund_part", receipt,
                              rows.canonical({**summary, "reason": reason}), seq)
        return OpResult(seq, key, "refund_part", summary)


@dataclass(frozen=True)
class _Refunded:
    before: int  # of the payment refunded before
    unallocated: int  # of the part, what the receipt holds unallocated


async def _refundable(tx: Tx, site_id: str, payment: Payment, amount_minor: int) -> _Refunded:
    """Refuse a part of a payment in suspense, reversed, or beyond what is left of it."""
    where = payment.receipt
    if payment.suspense:
        raise InputError(f"receipt {where} is in suspense: assign it to its account first", where=where,
                         reason="NOT_IN_SUSPENSE")
    done = await _one(tx, "SELECT kind FROM dues_reversals WHERE site_id = $1 AND receipt = $2", site_id,
                      where)
    if done is not None:
        raise InputError(f"receipt {where} was reversed already ({done[0]}); nothing was written",
                         where=where, reason="ALREADY_REVERSED")
    found = await _one(tx, "SELECT COALESCE(SUM(CASE WHEN why = 'refund' THEN -amount_minor ELSE 0 END), 0), "
                           "COALESCE(SUM(amount_minor), 0) FROM dues_credits WHERE site_id = $1 "
                           "AND receipt = $2", site_id, where)
    before, held = (int(found[0]), int(found[1])) if found else (0, 0)
    if before + amount_minor > payment.amount_minor:
        left = payment.amount_minor - before
        raise InputError(f"receipt {where}: {amount_minor} asked back, {left} of its "
                         f"{payment.amount_minor} left to refund; nothing was written", where=where,
                         reason="LIMIT_EXCEEDED")
    return _Refunded(before, min(held, amount_minor))


async def _undo_newest(tx: Tx, site_id: str, payment: Payment, amount_minor: int, on: dt.date, actor: str,
                       written: Written) -> int:
    """Undo `amount_minor` of the payment's allocations, the newest due first; what was reopened."""
    found = await tx.fetch("SELECT bill_ref, head, kind, due_date, SUM(amount_minor) FROM dues_allocations "
                           "WHERE site_id = $1 AND receipt = $2 GROUP BY bill_ref, head, kind, due_date "
                           "HAVING SUM(amount_minor) > 0 ORDER BY due_date DESC, bill_ref DESC, head DESC, "
                           "kind DESC", site_id, payment.receipt)
    left, account, receipt = amount_minor, payment.account_id, payment.receipt
    for bill, head, kind, due, allocated in found:
        if left <= 0:
            break
        undo, due = min(left, int(allocated)), rows.day(due)
        written.entries.append(("", site_id, account, head, kind, undo, due, bill, f"refund {receipt}",
                                actor))
        written.allocations.append(("", site_id, account, receipt, "", bill, head, kind, due, -undo, on))
        left -= undo
    assert left == 0, "a receipt's allocations hold what of it is neither refunded nor unallocated"
    return amount_minor


async def _check_in_suspense(tx: Tx, site_id: str, payment: Payment) -> None:
    where = payment.receipt
    if not payment.suspense:
        raise InputError(f"receipt {where} is {payment.account_id}'s payment, not one in suspense; nothing "
                         "was written", where=where, reason="NOT_IN_SUSPENSE")
    done = await _one(tx, "SELECT kind, reason FROM dues_reversals WHERE site_id = $1 AND receipt = $2",
                      site_id, where)
    if done is not None:
        raise InputError(f"receipt {where} was {done[0]} already ({done[1]}); nothing was written",
                         where=where, reason="ALREADY_REVERSED")
