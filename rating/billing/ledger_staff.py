"""Staff corrections of the payments side of the dues ledger, over SQL for both backends.

- `reallocate`: allocation run again over the money an account (or every
  account of a site) holds unallocated, its advances and held payments, by
  the site's rule: one operation under its key, each allocation a row of its
  own as a payment's are; what nothing takes stays the advance.
- `assign_suspense`: a payment kept in suspense (it named no account the
  books know) given to its account: in one transaction the suspense receipt
  is closed by a reversal row (`assigned`), never updated, and the money is
  booked as that account's payment (a new receipt, allocated by the rule,
  naming the first), so the money is counted once.
"""

from __future__ import annotations

import datetime as dt

from rating.billing import ledger_rows as rows
from rating.billing.allocation import AllocationRule
from rating.billing.ledger import OpResult
from rating.billing.ledger_bank import SqlBankLedger
from rating.billing.ledger_payment_types import Method, Payment, PaymentRequest
from rating.billing.ledger_payments import payment_payload
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
