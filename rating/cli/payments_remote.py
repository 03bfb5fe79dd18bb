"""The payments verbs through a running server (rating.cli.payments), as the
billing verbs go (rating.cli.billing_remote): with `--server HOST:PORT` (or
RATING_SERVER) `rating pay`, `rating refunds`, `rating claims` and `rating
bank import|review` call the server's PaymentsService and print what the local
verbs print. The server's site has its payments.toml (rule, bounce charge,
approvers); amounts are read in its currency (its minor unit comes from the
server). Keys are made as the local verbs make them, of what was entered.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from rating.cli import payments_text as text
from rating.cli.billing_remote import _calling, _site_id
from rating.cli.commands import EXIT_OK
from rating.cli.prepaid import _minor, _money
from rating.errors import InputError


def _exponent(client) -> int:
    """The site currency's minor unit exponent, as the server says it."""
    return next(iter(client.payment_pages(page_size=1))).minor_unit_exponent


def _moneys(client) -> text.Money:
    exponent = _exponent(client)
    return lambda minor: _money(minor, exponent)


def _summary(reply) -> dict:
    """A PaymentResult as the ledger's payment summary (what the receipt text reads)."""
    return {"receipt": reply.receipt, "account": reply.account_id, "amount_minor": reply.amount_minor,
            "advance_minor": reply.advance_minor, "flags": list(reply.flags),
            "allocations": [[a.bill, a.head, a.amount_minor] for a in reply.allocations]}


def _receipt(reply) -> str:
    exponent = reply.minor_unit_exponent
    return text.receipt(_summary(reply), reply.replayed, lambda minor: _money(minor, exponent))


def pay(args: argparse.Namespace, on: dt.date) -> int:
    from rating.client.payments import PaymentsClient

    if args.verb == "receipt":
        raise InputError("the server does not render receipts: run `rating pay receipt` where the ledger is "
                         "(without --server)", where="--server")

    def run(client) -> int:
        money = _moneys(client)
        if args.verb == "show":
            payments = client.payments(account_id=args.account or "", page_size=1000)
            sys.stdout.write(text.receipts(
                (((p.receipt, p.received_on, p.account_id, p.method, p.amount_minor, p.reference),
                  [(a.amount_minor, a.bill, a.head, a.on) for a in p.allocations]) for p in payments), money))
            return EXIT_OK
        if args.verb == "assign":
            text.check_assign(args)
            sys.stdout.write(_receipt(client.assign_suspense(args.receipt, args.account, on, bill=args.bill,
                                                             key=args.key or "", actor=args.actor)))
            return EXIT_OK
        if args.verb == "allocate":
            key = args.key or f"allocate:{_site_id(args)}:{args.account or '*'}:{on.isoformat()}"
            reply = client.allocate(key, on, account_id=args.account or "", actor=args.actor)
            sys.stdout.write(text.allocated(reply.accounts, reply.allocated_minor, [
                [a.account_id, a.receipt, a.bill, a.head, a.amount_minor] for a in reply.allocations], money))
            return EXIT_OK
        if args.verb == "bounce":
            text.check_bounce(args)
            reply = client.bounce(args.receipt, args.reason, on, key=args.key or "", actor=args.actor)
            print(text.bounced(reply.receipt, args.reason, reply.reopened_minor, reply.charge_note,
                               reply.charge_minor, money))
            return EXIT_OK
        text.check_record(args)
        amount = _minor(args.amount, _exponent(client), where="--amount")
        key = args.key or text.payment_key(_site_id(args), args, amount, on)
        reply = client.record(key, args.account, args.method, amount, on, reference=args.reference,
                              bank=args.bank, instrument_date=args.cheque_date, bill=args.bill, tag=args.tag,
                              actor=args.actor)
        sys.stdout.write(_receipt(reply))
        return EXIT_OK

    return _calling(args, run, PaymentsClient)


def refunds(args: argparse.Namespace, on: dt.date) -> int:
    from rating.client.payments import PaymentsClient

    def run(client) -> int:
        if args.verb == "request":
            text.check_refund_request(args)
            amount = _minor(args.amount, _exponent(client), where="--amount")
            key = args.key or text.refund_key(_site_id(args), args, amount, on)
            reply = client.request_refund(key, args.account, amount, args.reason, on, method=args.method,
                                          deposit_head=args.deposit or "", deposit_end=args.deposit_end,
                                          actor=args.actor)
        elif args.verb in ("approve", "reject"):
            reply = client.decide_refund(args.refund, approve=args.verb == "approve", reason=args.reason,
                                         key=args.key or "", actor=args.actor)
        else:
            reply = client.pay_refund(args.refund, args.method, args.reference, on, key=args.key or "",
                                      actor=args.actor)
        print(text.refund(reply.refund_id, reply.status, reply.replayed))
        return EXIT_OK

    return _calling(args, run, PaymentsClient)


def claims(args: argparse.Namespace) -> int:
    from rating.client.payments import PaymentsClient

    text.check_claim(args)

    def run(client) -> int:
        if args.verb == "list":
            money = _moneys(client)
            sys.stdout.write(text.claims(list(client.claims(status=args.status or "",
                                                           account_id=args.account or "")), money))
        elif args.verb == "confirm":
            sys.stdout.write(_receipt(client.confirm_claim(args.claim, key=args.key or "", actor=args.actor)))
        else:
            reply = client.reject_claim(args.claim, args.reason, key=args.key or "", actor=args.actor)
            print(text.claim_rejected(reply.claim_id, args.reason, reply.replayed))
        return EXIT_OK

    return _calling(args, run, PaymentsClient)


def bank(args: argparse.Namespace) -> int:
    from rating.client.payments import PaymentsClient

    def run(client) -> int:
        money = _moneys(client)
        if args.verb == "import":
            try:
                content = args.file.read_bytes()
            except OSError as exc:
                raise InputError(f"cannot read the statement: {exc.strerror}", where=str(args.file)) from None
            reply = client.reconcile(content, args.file.name, format=args.format or "", actor=args.actor)
            if not reply.sequence:
                print(text.imported_before(args.file.name, reply.known))
            else:
                print(text.imported(args.file.name, reply.statements, dict(reply.lines), reply.payments,
                                    reply.replayed))
        elif args.resolve:
            text.check_resolve(args)
            reply = client.resolve_bank_line(args.resolve, args.account, bill=args.bill, actor=args.actor)
            sys.stdout.write(_receipt(reply))
            return EXIT_OK
        elif args.dismiss:
            client.dismiss_bank_line(args.dismiss, args.reason, actor=args.actor)
            print(text.dismissed(args.dismiss, args.reason))
            return EXIT_OK
        sys.stdout.write(text.waiting(client.bank_lines(), money))
        return EXIT_OK

    return _calling(args, run, PaymentsClient)
