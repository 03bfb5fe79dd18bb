"""What the payments verbs print and check, one text whether they open the
ledger (rating.cli.payments) or go through a server (rating.cli.payments_remote).
`money` turns minor units into the site currency's text ("4500.00")."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable

from rating.errors import InputError

Money = Callable[[int], str]


def default_key(kind: str, *parts: object) -> str:
    """A key made of what was entered: the same command again is a retry, never a second payment."""
    return f"{kind}:" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def payment_key(site_id: str, args: argparse.Namespace, amount_minor: int, on: dt.date) -> str:
    return default_key("pay", site_id, args.account, args.method, amount_minor, on, args.reference, args.bank,
                       args.cheque_date, args.bill, args.tag)


def refund_key(site_id: str, args: argparse.Namespace, amount_minor: int, on: dt.date) -> str:
    return default_key("refund", site_id, args.account, amount_minor, args.reason, on, args.deposit,
                       args.deposit_end)


def check_record(args: argparse.Namespace) -> None:
    if not args.account or not args.amount:
        raise InputError("pay needs --account and --amount",
                         where="--account" if not args.account else "--amount")


def check_bounce(args: argparse.Namespace) -> None:
    if not args.receipt or not args.reason:
        raise InputError("pay bounce needs the RECEIPT and --reason",
                         where="--reason" if args.receipt else "RECEIPT")


def check_refund_request(args: argparse.Namespace) -> None:
    if not args.account or not args.amount or not args.reason:
        raise InputError("refunds request needs --account, --amount and --reason", where="refunds request")


def check_claim(args: argparse.Namespace) -> None:
    if args.verb != "list" and not args.claim:
        raise InputError(f"claims {args.verb} needs the CLAIM id (CL-...)", where="CLAIM")
    if args.verb == "reject" and not args.reason.strip():
        raise InputError("claims reject needs --reason (the resident is told why)", where="--reason")


def check_assign(args: argparse.Namespace) -> None:
    if not args.receipt or not args.account:
        raise InputError("pay assign needs the suspense RECEIPT and the --account it is for",
                         where="--account" if args.receipt else "RECEIPT")


def check_resolve(args: argparse.Namespace) -> None:
    if args.resolve and not args.account:
        raise InputError("--resolve needs the --account the line is a payment of", where="--account")


def receipt(summary: dict, replayed: bool, money: Money) -> str:
    """A payment's receipt and what it paid (the ledger's payment summary)."""
    s = summary
    again = " (recorded before: the first receipt)" if replayed else ""
    lines = [f"receipt {s['receipt']}: {money(s['amount_minor'])} from {s['account']}{again}"]
    lines += [f"  paid {money(amount):>12}  {bill} {head}" for bill, head, amount in s["allocations"]]
    if s["advance_minor"]:
        lines.append(f"  advance {money(s['advance_minor']):>9}  (used by the next bills)")
    if s["flags"]:
        lines.append(f"  flagged: {', '.join(s['flags'])}")
    return "\n".join(lines) + "\n"


def receipts(found: Iterable[tuple[tuple, list[tuple]]], money: Money) -> str:
    """Receipts, each (receipt, day, account, method, amount, reference) with its
    allocations (amount, bill, head, day)."""
    lines, count = [], 0
    for (number, on, account, method, amount, reference), paid in found:
        count += 1
        lines.append(f"{number}  {on}  {account:<10} {method:<8} {money(amount):>12}  {reference}")
        for minor, bill, head, day in paid:
            what = "paid" if minor > 0 else "undone"
            lines.append(f"    {what} {money(abs(minor)):>10}  {bill} {head} ({day})")
    lines.append(f"{count} receipts")
    return "\n".join(lines) + "\n"


def allocated(accounts: int, allocated_minor: int, allocations: Iterable[list], money: Money) -> str:
    """An allocation run again: [[account, receipt, bill, head, amount], ...] and its totals."""
    lines = [f"  {account:<10} {receipt}  paid {money(amount):>12}  {bill} {head}"
             for account, receipt, bill, head, amount in allocations]
    lines.append(f"{money(allocated_minor)} of {accounts} accounts' unallocated money allocated")
    return "\n".join(lines) + "\n"


def bounced(number: str, reason: str, reopened_minor: int, charge_note: str, charge_minor: int,
            money: Money) -> str:
    note = f"; charge {money(charge_minor)} on {charge_note}" if charge_note else ""
    return f"receipt {number} reversed ({reason}): {money(reopened_minor)} of dues open again{note}"


def refund(refund_id: str, status: str, replayed: bool) -> str:
    return f"refund {refund_id}: {status}{' (recorded before)' if replayed else ''}"


def claims(found: Iterable, money: Money) -> str:
    """Claims (claim_id, account_id, amount_minor, paid_on, method, reference, status, receipt, reason)."""
    lines, count = [], 0
    for c in found:
        count += 1
        outcome = f"  -> {c.receipt}" if c.receipt else f"  ({c.reason})" if c.reason else ""
        lines.append(f"{c.claim_id:<8} {c.status:<9} {c.account_id:<10} {money(c.amount_minor):>12}  "
                     f"{c.paid_on}  {c.method} {c.reference}{outcome}")
    lines.append(f"{count} claims")
    return "\n".join(lines) + "\n"


def claim_rejected(claim_id: str, reason: str, replayed: bool) -> str:
    return f"claim {claim_id}: rejected ({reason}){' (recorded before)' if replayed else ''}"


def imported_before(name: str, known: int) -> str:
    return f"{name}: its {known} statements were imported before; nothing changed"


def imported(name: str, statements: int, lines: dict[str, int], payments: int, replayed: bool) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(lines.items()))
    again = " (imported before: the first result)" if replayed else ""
    return f"{name}: {statements} statements, lines: {counts}; {payments} payments recorded{again}"


def dismissed(line_id: str, reason: str) -> str:
    return f"{line_id}: dismissed ({reason})"


def waiting(lines: Iterable, money: Money) -> str:
    """The bank lines waiting for staff (review or unmatched), in the ledger's order."""
    shown = [line for line in lines if line.status in ("review", "unmatched")]
    out = []
    for line in shown:
        candidates = f"  candidates: {', '.join(line.candidates)}" if line.candidates else ""
        out.append(f"{line.status:<9} {line.line_id}  {line.booking_date}  {money(line.amount_minor):>12}  "
                   f"{line.reason}  {line.text}{candidates}")
    out.append(f"{len(shown)} lines wait for staff")
    return "\n".join(out) + "\n"
