"""What may be refunded, checked inside the refund's transaction.

Refundable is, for an account:
- its advance: the unallocated money of its payments, each within
  `deadline_days` of the day it was received (counted on the request's day);
- a deposit: what its payments paid of a head the site marks refundable (a
  move-in security deposit), once the deposit's term has ended and within
  `deadline_days` of that end;
less what refunds already asked for, approved or paid take of the same
money. Money allocated to dues is never refundable: it paid them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from rating.billing import ledger_rows as rows
from rating.billing.ledger import NotFound
from rating.billing.ledger_payment_types import Refund, RefundRequest, RefundSource
from rating.billing.ledger_sql import Tx
from rating.errors import InputError

PENDING = ("requested", "approved")
_SELECT = ("SELECT refund_id, event, account_id, amount_minor, source, head, reason, method, reference, "
           "on_date, "
           "terms, seq, actor FROM dues_refunds WHERE site_id = $1")


def request_payload(request: RefundRequest) -> bytes:
    rows.check_key(request.key)
    where = f"refund {request.key}"
    if type(request.amount_minor) is not int or request.amount_minor <= 0:
        raise InputError(f"amount must be a positive whole number of minor units, got "
                         f"{request.amount_minor!r}",
                         where=where)
    if not request.reason.strip() or not request.method.strip():
        raise InputError("a refund request needs its reason and the method to pay it by", where=where)
    if type(request.deadline_days) is not int or request.deadline_days < 0:
        raise InputError(f"deadline_days must be a whole number >= 0, got {request.deadline_days!r}",
                         where=where)
    return rows.sha256(rows.canonical(request_detail(request)))


def request_detail(request: RefundRequest) -> dict:
    return {"site": request.site_id, "account": request.account_id, "amount_minor": request.amount_minor,
            "source": request.source.value, "head": request.head, "reason": request.reason,
            "method": request.method, "on": request.on.isoformat(),
            "deposit_end": request.deposit_end.isoformat() if request.deposit_end else "",
            "deadline_days": request.deadline_days, "refundable_heads": sorted(request.refundable_heads)}


async def row(tx: Tx, site_id: str, refund_id: str, event: str, account_id: str, amount_minor: int,
              source: str, head: str, reason: str, method: str, reference: str, on: dt.date, seq: int,
              actor: str, terms: str = "") -> None:
    await tx.execute("INSERT INTO dues_refunds (site_id, refund_id, event, account_id, amount_minor, source, "
                     "head, reason, method, reference, on_date, terms, seq, actor) VALUES ($1, $2, $3, $4, "
                     "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14)", site_id, refund_id, event, account_id,
                     amount_minor, source, head, reason, method, reference, on, terms, seq, actor)


async def check_refundable(tx: Tx, request: RefundRequest, *, exclude: str, paying: bool = False) -> None:
    """Raise (nothing written) unless `request` fits what is refundable now,
    beside the other refunds pending (all but `exclude`)."""
    where = f"account {request.account_id}"
    pending = sum(r.amount_minor for r in await all_of(tx, request.site_id)
                  if r.account_id == request.account_id and r.status in PENDING and r.refund_id != exclude
                  and r.source == request.source.value and r.head == request.head)
    if request.source is RefundSource.ADVANCE:
        credits = await _credits(tx, request.site_id, request.account_id)
        total = sum(amount for _, amount, _ in credits)
        within = sum(amount for _, amount, received in credits
                     if paying or received + dt.timedelta(days=request.deadline_days) >= request.on)
        if request.amount_minor <= within - pending:
            return
        if request.amount_minor <= total - pending:
            raise InputError(f"{request.amount_minor} asked, but only {within - pending} of the advance "
                             f"came from payments of the last {request.deadline_days} days; the refund "
                             "deadline has passed for the rest", where=where, reason="DEADLINE_PASSED")
        raise InputError(f"{request.amount_minor} asked, {max(total - pending, 0)} refundable (the advance, "
                         f"less refunds pending); money allocated to dues is not refundable", where=where,
                         reason="LIMIT_EXCEEDED")
    await _check_deposit(tx, request, pending, paying=paying)


async def _check_deposit(tx: Tx, request: RefundRequest, pending: int, *, paying: bool) -> None:
    where = f"account {request.account_id}, head {request.head}"
    if request.head not in request.refundable_heads:
        raise InputError(f"head {request.head!r} is not refundable; refundable: "
                         f"{', '.join(sorted(request.refundable_heads)) or 'none'}", where=where,
                         reason="NOT_REFUNDABLE")
    end = request.deposit_end
    if end is None or end > request.on:
        raise InputError(f"the deposit's term has not ended (ends {end}); asked on {request.on}", where=where,
                         reason="TERM_NOT_ENDED")
    if not paying and request.on > end + dt.timedelta(days=request.deadline_days):
        raise InputError(f"asked on {request.on}, more than {request.deadline_days} days after the deposit's "
                         f"end on {end}: the refund deadline has passed", where=where,
                         reason="DEADLINE_PASSED")
    paid = await tx.fetch("SELECT SUM(amount_minor) FROM dues_allocations WHERE site_id = $1 AND account_id "
                          "= $2 "
                          "AND head = $3", request.site_id, request.account_id, request.head)
    refunded = sum(r.amount_minor for r in await all_of(tx, request.site_id)
                   if r.account_id == request.account_id and r.status == "paid" and r.head == request.head
                   and r.source == RefundSource.DEPOSIT.value)
    held = int(paid[0][0] or 0) - refunded
    if request.amount_minor > held - pending:
        raise InputError(f"{request.amount_minor} asked, {max(held - pending, 0)} of the deposit is held "
                         "(paid, less refunds paid or pending)", where=where, reason="LIMIT_EXCEEDED")


async def _credits(tx: Tx, site_id: str, account_id: str) -> list[tuple[str, int, dt.date]]:
    """(receipt, unallocated amount, day received) of the account's receipts with money left, oldest first."""
    found = await tx.fetch("SELECT c.receipt, SUM(c.amount_minor), p.received_on FROM dues_credits c "
                           "JOIN dues_payments p ON p.site_id = c.site_id AND p.receipt = c.receipt "
                           "WHERE c.site_id = $1 AND c.account_id = $2 GROUP BY c.receipt, p.received_on "
                           "HAVING SUM(c.amount_minor) > 0 ORDER BY MIN(c.seq)", site_id, account_id)
    return [(r, int(a), rows.day(d)) for r, a, d in found]


async def debit_credits(tx: Tx, request: RefundRequest, on: dt.date, written) -> None:
    """An advance's payout taken from its receipts' credit, oldest first (a deposit's moves no credit)."""
    if request.source is not RefundSource.ADVANCE:
        return
    left = request.amount_minor
    for receipt, amount, _ in await _credits(tx, request.site_id, request.account_id):
        take = min(left, amount)
        written.credits.append(("", request.site_id, request.account_id, receipt, "", -take, on, "refund"))
        left -= take
        if not left:
            return


async def all_of(tx: Tx, site_id: str) -> list[Refund]:
    return [refund for refund, _ in (await _folded(tx, site_id)).values()]


async def current(tx: Tx, site_id: str, refund_id: str) -> tuple[Refund, RefundRequest]:
    found = (await _folded(tx, site_id)).get(refund_id)
    if found is None:
        raise NotFound(f"no refund {refund_id!r} in site {site_id!r}; nothing was written", where=refund_id)
    return found


def check_decider(refund: Refund, actor: str, approvers: frozenset[str], *, approve: bool,
                  reason: str) -> None:
    where = refund.refund_id
    if refund.status != "requested":
        raise InputError(f"refund {where} is {refund.status}; nothing was written", where=where,
                         reason="REFUND_DECIDED")
    if actor not in approvers:
        known = ", ".join(sorted(approvers))
        raise InputError(f"{actor!r} is not an approver of this site (approvers: {known})", where=where,
                         reason="PERMISSION_DENIED")
    if actor == refund.requested_by:
        raise InputError(f"{actor!r} asked for this refund: another approver decides it", where=where,
                         reason="PERMISSION_DENIED")
    if not approve and not reason.strip():
        raise InputError("a rejection needs its reason", where=where)


async def page_of(tx: Tx, site_id: str, account_id: str, limit: int, offset: int) -> list[Refund]:
    """Refunds in request order, `limit` of them after the first `offset`: only their rows are read."""
    sql, args = ("SELECT refund_id FROM dues_refunds WHERE site_id = $1 AND event = 'requested'",
                 list[object]([site_id]))
    if account_id:
        args.append(account_id)
        sql += f" AND account_id = ${len(args)}"
    ids = [rid for (rid,) in await tx.fetch(f"{sql} ORDER BY seq LIMIT ${len(args) + 1} OFFSET "
                                            f"${len(args) + 2}", *args, limit, offset)]
    if not ids:
        return []
    among, listed = tx.one_of(2, ids)
    found = await tx.fetch(f"{_SELECT} AND refund_id {among}", site_id, *listed)
    return [refund for refund, _ in _fold(site_id, found).values()]


async def _folded(tx: Tx, site_id: str) -> dict[str, tuple[Refund, RefundRequest]]:
    return _fold(site_id, await tx.fetch(_SELECT, site_id))


def _fold(site_id: str, found: list[tuple]) -> dict[str, tuple[Refund, RefundRequest]]:
    """Each refund as its rows leave it, with the request it began as."""
    refunds: dict[str, tuple[Refund, RefundRequest]] = {}
    for rid, event, account, amount, source, head, reason, method, reference, on, terms, _, actor in sorted(
            found, key=lambda r: r[11]):
        if event == "requested":
            t = json.loads(terms)
            request = RefundRequest("", site_id, account, int(amount), RefundSource(source), reason, method,
                                    rows.day(on), actor, t["deadline_days"], head,
                                    rows.day(t["deposit_end"]) if t["deposit_end"] else None,
                                    frozenset(t["refundable_heads"]))
            refunds[rid] = (Refund(rid, site_id, account, int(amount), source, head, reason, method,
                                   "requested",
                                   actor, "", "", "", rows.day(on)), request)
        elif rid in refunds:
            refund, request = refunds[rid]
            if event == "paid":
                refund = dataclasses.replace(refund, status="paid",
                                             paid_reference=f"{method} {reference}".strip())
            else:
                refund = dataclasses.replace(refund, status=event, decided_by=actor, decision_reason=reason)
            refunds[rid] = (refund, request)
    return refunds
