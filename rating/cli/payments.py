"""Command-line verbs of payments, registered in rating.cli.commands:

    rating pay            record an offline payment (cash, cheque, transfer), bounce a cheque, list receipts
    rating refunds        request, approve, reject and pay out refunds of dues (`rating refund` is
                          the prepaid wallets' immediate refund)
    rating bank import    reconcile a bank statement file against the dues ledger
    rating bank review    the lines waiting for staff: resolve or dismiss them
    rating claims         residents' "I have paid" claims: list, confirm, reject with a reason

They open the dues ledger as `rating bills` does (the SQLite file, or
--postgres DSN) and read the site's payments.toml (rating.payments.settings);
with --server (or RATING_SERVER) they go through the running server that
holds the ledger (rating.cli.payments_remote).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from rating.cli import billing_remote, payments_remote
from rating.cli import payments_text as text
from rating.cli.billing import _ledger_arguments, _with_ledger
from rating.cli.commands import EXIT_OK, subcommand
from rating.errors import InputError


def _society(args: argparse.Namespace):
    from rating.billing.inputs import load_site_billing
    from rating.payments.settings import load_payment_settings

    society = load_site_billing(args.site)
    return society, load_payment_settings(args.site, society.config.site)


def _amount(text: str, society, where: str) -> int:
    from rating.billing.config import amount_minor

    return amount_minor(text, society.config.site, where=where)


def _money(minor: int, society) -> str:
    from rating.billing.money import major

    return str(major(minor, society.config.site.minor_unit_exponent))


def _moneys(society) -> text.Money:
    return lambda minor: _money(minor, society)


# ---------------------------------------------------------------- pay

PAY_DESCRIPTION = """
    Record money received at the office, allocated at once by the site's
    rule (payments.toml [allocation]; default: oldest bill first, charges
    before interest), with a numbered receipt. What no due takes is the
    unit's advance, used by its next bills.

      record   (the default) a cash, cheque or bank transfer payment
      bounce   a cheque came back: its receipt is reversed, the dues reopen,
               and the bounce charge ([cheque] bounce_charge) goes on the
               next bill as a debit note
      show     the receipts of the site or of --account, and what each paid
      receipt  write a receipt as PDF or HTML (--out FILE.pdf or FILE.html)
      assign   a payment kept in suspense (it named no unit the books know)
               is --account's: booked as its payment under a new receipt
               (paying --bill first, when given), the suspense one closed
      allocate allocate again, by the rule, the money --account (default:
               every account) holds unallocated: advances, held payments

    Running the same command again (the same values and --on, which is
    today when not given) changes nothing: it prints the first receipt;
    give --key to record a second, identical payment.

    examples:
      rating pay --site site.toml --account A-0101 --amount 4500.00 --method cash
      rating pay --site site.toml --account A-0101 --amount 4500 --method cheque \\
          --reference 004512 --bank "State Bank" --cheque-date 2025-06-09
      rating pay --site site.toml --account A-0101 --amount 9000 --method transfer \\
          --reference UTR2506100042 --bill B/25-26/000001
      rating pay bounce R/25-26/000007 --site site.toml --reason "insufficient funds"
      rating pay show --site site.toml --account A-0101
      rating pay receipt R/25-26/000007 --site site.toml --out R-000007.pdf
      rating pay assign R/25-26/000031 --site site.toml --account A-0101
      rating pay allocate --site site.toml --account A-0101

    exit codes: 0 done; 2 bad input (an unknown unit or bill, an amount
    that is not money), nothing written; 3 the ledger cannot be reached.
"""


def _pay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", nargs="?", default="record",
                        choices=("record", "bounce", "show", "receipt", "assign", "allocate"))
    parser.add_argument("receipt", nargs="?",
                        help="bounce: the cheque's receipt number; receipt: the number; "
                             "assign: the one in suspense")
    parser.add_argument("--out", type=Path, metavar="FILE.pdf|FILE.html", help="receipt: where to write it")
    _ledger_arguments(parser)
    parser.add_argument("--account", help="the unit that paid (record; show: its receipts)")
    parser.add_argument("--amount", help="in the site's currency, e.g. 4500.00")
    parser.add_argument("--method", choices=("cash", "cheque", "transfer"), default="cash")
    parser.add_argument("--reference", default="", help="cheque number, or the transfer's UTR")
    parser.add_argument("--bank", default="", help="cheque: the bank it is drawn on")
    parser.add_argument("--cheque-date", type=dt.date.fromisoformat, metavar="YYYY-MM-DD")
    parser.add_argument("--bill", default="", help="the bill the payer means (paid first)")
    parser.add_argument("--tag", default="", help="keep what is left as an advance for this head only")
    parser.add_argument("--on", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the day received (record) or returned (bounce); default today")
    parser.add_argument("--reason", default="", help="bounce: why the cheque came back")
    parser.add_argument("--key", help="idempotency key (default: made of what was entered)")


@subcommand("pay", help="record an offline payment, bounce a cheque, show receipts",
            description=PAY_DESCRIPTION, arguments=_pay_arguments)
def pay_command(args: argparse.Namespace) -> int:
    on = args.on or dt.date.today()
    if billing_remote.wanted(args):
        return payments_remote.pay(args, on)
    society, settings = _society(args)
    if args.verb == "show":
        return _with_ledger(args, lambda ledger: _show_receipts(ledger, society, args.account or ""))
    if args.verb == "bounce":
        return _bounce(args, society, settings, on)
    if args.verb == "receipt":
        return _with_ledger(args, lambda ledger: _write_receipt(ledger, args, society))
    if args.verb in ("assign", "allocate"):
        return _with_ledger(args, lambda ledger: _correct(ledger, args, society, settings, on))
    text.check_record(args)
    from rating.billing.ledger_payment_types import Method, PaymentRequest

    amount = _amount(args.amount, society, "--amount")
    key = args.key or text.payment_key(society.site_id, args, amount, on)
    request = PaymentRequest(key, society.site_id, args.account, Method(args.method), amount, on, args.actor,
                             society.numbering, settings.allocation, reference=args.reference, bank=args.bank,
                             instrument_date=args.cheque_date, bill=args.bill, tag=args.tag)

    async def run(ledger) -> int:
        result = await ledger.pay(request)
        sys.stdout.write(_receipt_text(result, society))
        return EXIT_OK

    return _with_ledger(args, run)


def _receipt_text(result, society) -> str:
    return text.receipt(result.summary, result.replayed, _moneys(society))


def _bounce(args: argparse.Namespace, society, settings, on: dt.date) -> int:
    from rating.billing.ledger_payment_types import ReversalRequest

    text.check_bounce(args)
    key = args.key or f"bounce:{society.site_id}:{args.receipt}"
    request = ReversalRequest(key, society.site_id, args.receipt, "bounce", on, args.reason, args.actor,
                              society.numbering, settings.bounce_charge_minor, settings.bounce_head)

    async def run(ledger) -> int:
        s = (await ledger.reverse(request)).summary
        print(text.bounced(s["receipt"], args.reason, s["reopened_minor"], s["charge_note"],
                           settings.bounce_charge_minor, _moneys(society)))
        return EXIT_OK

    return _with_ledger(args, run)


async def _correct(ledger, args: argparse.Namespace, society, settings, on: dt.date) -> int:
    """`pay assign` and `pay allocate`, keyed by what they correct (and the day)."""
    site = society.site_id
    if args.verb == "assign":
        text.check_assign(args)
        key = args.key or f"assign:{site}:{args.receipt}"
        result = await ledger.assign_suspense(key, site, args.receipt, account_id=args.account,
                                              bill=args.bill, on=on, actor=args.actor,
                                              numbering=society.numbering, rule=settings.allocation)
        sys.stdout.write(_receipt_text(result, society))
        return EXIT_OK
    key = args.key or f"allocate:{site}:{args.account or '*'}:{on.isoformat()}"
    s = (await ledger.reallocate(key, site, args.account or "", on=on, actor=args.actor,
                                 rule=settings.allocation)).summary
    sys.stdout.write(text.allocated(s["accounts"], s["allocated_minor"], s["allocations"], _moneys(society)))
    return EXIT_OK


async def _write_receipt(ledger, args: argparse.Namespace, society) -> int:
    from rating.payments.receipt import receipt_html, receipt_pdf, receipt_view

    if not args.receipt or args.out is None or args.out.suffix.lower() not in (".pdf", ".html"):
        raise InputError("pay receipt needs the RECEIPT number and --out FILE.pdf or FILE.html",
                         where="--out")
    found = await ledger.payments(society.site_id, receipt=args.receipt)
    if not found:
        raise InputError(f"no receipt {args.receipt!r} in site {society.site_id!r}", where=args.receipt,
                         reason="NOT_FOUND")
    view = receipt_view(found[0], await ledger.allocations(society.site_id, receipt=args.receipt),
                        society.document)
    if args.out.suffix.lower() == ".pdf":
        args.out.write_bytes(receipt_pdf(view))
    else:
        args.out.write_text(receipt_html(view, society.templates), encoding="utf-8")
    print(f"receipt {args.receipt} written to {args.out}")
    return EXIT_OK


async def _show_receipts(ledger, society, account: str) -> int:
    payments = await ledger.payments(society.site_id, account, limit=1_000_000)
    allocations: dict[str, list] = {}
    for a in await ledger.allocations(society.site_id, account):
        allocations.setdefault(a.receipt, []).append((a.amount_minor, a.bill_ref, a.head, a.on))
    sys.stdout.write(text.receipts(
        (((p.receipt, p.received_on, p.account_id, p.method, p.amount_minor, p.reference),
          allocations.get(p.receipt, [])) for p in payments), _moneys(society)))
    return EXIT_OK


# ---------------------------------------------------------------- refund

REFUND_DESCRIPTION = """
    Pay money back, in three steps each recorded in the ledger: a request
    (amount, reason, method), a decision by an approver of payments.toml
    [refunds] approvers who did not ask for it, and the payout. Refundable
    is the unit's advance (within [refunds] deadline_days of the payment it
    came from) or a deposit of a head in [refunds] deposits once its term
    ended (within the deadline of the end); never money that paid dues.

      request  --account --amount --reason [--method] [--deposit HEAD --deposit-end DATE]
      approve  REFUND_ID
      reject   REFUND_ID --reason
      pay      REFUND_ID --method --reference

    examples:
      rating refunds request --site site.toml --account A-0101 --amount 1500 --reason "paid twice"
      rating refunds approve RF-41 --site site.toml --actor treasurer
      rating refunds pay RF-41 --site site.toml --method transfer --reference UTR2507010007

    exit codes: 0 done; 2 refused (more than refundable, after the
    deadline, the wrong person, not approved), nothing written; 3 the
    ledger cannot be reached.
"""


def _refund_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=("request", "approve", "reject", "pay"))
    parser.add_argument("refund", nargs="?", help="approve, reject, pay: the refund's id (RF-...)")
    _ledger_arguments(parser)
    parser.add_argument("--account")
    parser.add_argument("--amount")
    parser.add_argument("--reason", default="")
    parser.add_argument("--method", default="transfer", help="how it is (to be) paid: transfer, cheque, cash")
    parser.add_argument("--reference", default="", help="pay: the payout's UTR or cheque number")
    parser.add_argument("--deposit", metavar="HEAD", help="request: refund the deposit of this head")
    parser.add_argument("--deposit-end", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help="request: the day the deposit's term ended (move-out)")
    parser.add_argument("--on", type=dt.date.fromisoformat, metavar="YYYY-MM-DD", help="default today")
    parser.add_argument("--key", help="idempotency key (default: made of what was entered)")


@subcommand("refunds", help="request, approve, reject and pay refunds of dues (advances, deposits)",
            description=REFUND_DESCRIPTION,
            arguments=_refund_arguments)
def refund_command(args: argparse.Namespace) -> int:
    on = args.on or dt.date.today()
    if args.verb != "request" and not args.refund:
        raise InputError(f"refunds {args.verb} needs the REFUND id", where="REFUND")
    if billing_remote.wanted(args):
        return payments_remote.refunds(args, on)
    society, settings = _society(args)
    site = society.site_id
    if args.verb == "request":
        request = _refund_request(args, society, settings, on)

        async def act(ledger):
            return await ledger.request_refund(request)
    elif args.verb in ("approve", "reject"):
        key = args.key or f"refund-{args.verb}:{site}:{args.refund}"

        async def act(ledger):
            return await ledger.decide_refund(key, site, args.refund, approve=args.verb == "approve",
                                              reason=args.reason, actor=args.actor,
                                              approvers=settings.approvers)
    else:
        key = args.key or f"refund-pay:{site}:{args.refund}"

        async def act(ledger):
            return await ledger.pay_refund(key, site, args.refund, method=args.method,
                                           reference=args.reference,
                                           on=on, actor=args.actor)

    async def run(ledger) -> int:
        result = await act(ledger)
        print(text.refund(result.summary["refund"], result.summary["status"], result.replayed))
        return EXIT_OK

    return _with_ledger(args, run)


def _refund_request(args: argparse.Namespace, society, settings, on: dt.date):
    from rating.billing.ledger_payment_types import RefundRequest, RefundSource

    text.check_refund_request(args)
    amount = _amount(args.amount, society, "--amount")
    source = RefundSource.DEPOSIT if args.deposit else RefundSource.ADVANCE
    key = args.key or text.refund_key(society.site_id, args, amount, on)
    return RefundRequest(key, society.site_id, args.account, amount, source, args.reason, args.method, on,
                         args.actor, settings.refund_deadline_days, args.deposit or "", args.deposit_end,
                         settings.deposit_heads)


# ---------------------------------------------------------------- claims

CLAIMS_DESCRIPTION = """
    A resident's "I have paid" is a claim: nothing moves until staff look at
    the bank or the counter and decide it.

      list     the claims, in order (--status open|confirmed|rejected, --account)
      confirm  CLAIM_ID: its payment is recorded with a receipt and allocated
               by the site's rule, as `rating pay` does
      reject   CLAIM_ID --reason: set aside, the resident told why

    Deciding a claim again changes nothing and prints the first result.

    examples:
      rating claims list --site site.toml --status open
      rating claims confirm CL-41 --site site.toml
      rating claims reject CL-42 --site site.toml --reason "no such transfer in the bank"

    exit codes: 0 done; 2 refused (an unknown claim, one decided already),
    nothing written; 3 the ledger cannot be reached.
"""


def _claims_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=("list", "confirm", "reject"))
    parser.add_argument("claim", nargs="?", help="confirm, reject: the claim's id (CL-...)")
    _ledger_arguments(parser)
    parser.add_argument("--status", choices=("open", "confirmed", "rejected"), help="list: only these")
    parser.add_argument("--account", help="list: one unit's claims")
    parser.add_argument("--reason", default="", help="reject: why (the resident is told)")
    parser.add_argument("--key", help="idempotency key (default: made of the claim and the decision)")


@subcommand("claims", help="list, confirm and reject residents' \"I have paid\" claims",
            description=CLAIMS_DESCRIPTION, arguments=_claims_arguments)
def claims_command(args: argparse.Namespace) -> int:
    text.check_claim(args)
    if billing_remote.wanted(args):
        return payments_remote.claims(args)
    society, settings = _society(args)
    site = society.site_id

    async def run(ledger) -> int:
        if args.verb == "list":
            found = await ledger.claims(site, status=args.status or "", account_id=args.account or "")
            sys.stdout.write(text.claims(found, _moneys(society)))
        elif args.verb == "confirm":
            result = await ledger.confirm_claim(args.key or f"claim-confirm:{site}:{args.claim}", site,
                                                args.claim, actor=args.actor, numbering=society.numbering,
                                                rule=settings.allocation)
            sys.stdout.write(_receipt_text(result, society))
        else:
            result = await ledger.reject_claim(args.key or f"claim-reject:{site}:{args.claim}", site,
                                               args.claim, reason=args.reason, actor=args.actor)
            print(text.claim_rejected(args.claim, args.reason, result.replayed))
        return EXIT_OK

    return _with_ledger(args, run)


# ---------------------------------------------------------------- bank

BANK_DESCRIPTION = """
    Reconcile the society's bank account with the books.

      import FILE   read a CAMT.053 (.xml), MT940 (.sta, .940) or CSV
                    statement (its columns in payments.toml [bank.csv]),
                    refuse it whole if its balances do not chain, and match
                    each credit to the open bills and the transfers and
                    cheques recorded: an exact match to a bill is recorded
                    as a transfer paying it; an ambiguous line goes to the
                    review queue; importing a statement again changes nothing
      review        list the lines waiting for staff; --resolve LINE
                    --account ID [--bill NO] books one as that unit's
                    payment, --dismiss LINE --reason sets it aside

    examples:
      rating bank import april.xml --site site.toml
      rating bank review --site site.toml
      rating bank review --site site.toml --resolve "IN55HDFC/2026-04-01..2026-04-30#3" --account B-202
      rating bank review --site site.toml --dismiss "IN55HDFC/2026-04-01..2026-04-30#5" \
          --reason "festival gift"

    exit codes: 0 done; 2 a file that cannot be read or does not add up,
    nothing imported; 3 the ledger cannot be reached.
"""


def _bank_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=("import", "review"))
    parser.add_argument("file", nargs="?", type=Path, help="import: the statement file")
    _ledger_arguments(parser)
    parser.add_argument("--format", choices=("camt.053", "mt940", "csv"), help="default: from the file")
    parser.add_argument("--resolve", metavar="LINE")
    parser.add_argument("--dismiss", metavar="LINE")
    parser.add_argument("--account")
    parser.add_argument("--bill", default="")
    parser.add_argument("--reason", default="")


@subcommand("bank", help="import and reconcile bank statements, review what needs staff",
            description=BANK_DESCRIPTION, arguments=_bank_arguments)
def bank_command(args: argparse.Namespace) -> int:
    if args.verb == "import" and not args.file:
        raise InputError("bank import needs the statement FILE", where="FILE")
    if billing_remote.wanted(args):
        return payments_remote.bank(args)
    society, settings = _society(args)
    if args.verb == "import":
        return _with_ledger(args, lambda ledger: _import(ledger, args, society, settings))
    return _with_ledger(args, lambda ledger: _review(ledger, args, society, settings))


async def _import(ledger, args: argparse.Namespace, society, settings) -> int:
    from rating.payments.bank_reconcile import import_bank_file

    done = await import_bank_file(ledger, args.file, site_id=society.site_id, actor=args.actor,
                                  settings=settings,
                                  numbering=society.numbering, format=args.format)
    if done.result is None:
        print(text.imported_before(args.file.name, done.known))
        return EXIT_OK
    s = done.result.summary
    print(text.imported(args.file.name, s["statements"], s["lines"], s["payments"], done.result.replayed))
    return await _list_waiting(ledger, society)


async def _review(ledger, args: argparse.Namespace, society, settings) -> int:
    site = society.site_id
    if args.resolve:
        text.check_resolve(args)
        result = await ledger.resolve_bank_line(f"bank-resolve:{site}:{args.resolve}", site, args.resolve,
                                                account_id=args.account, bill=args.bill, actor=args.actor,
                                                numbering=society.numbering, rule=settings.allocation)
        sys.stdout.write(_receipt_text(result, society))
        return EXIT_OK
    if args.dismiss:
        await ledger.dismiss_bank_line(f"bank-dismiss:{site}:{args.dismiss}", site, args.dismiss,
                                       reason=args.reason, actor=args.actor)
        print(text.dismissed(args.dismiss, args.reason))
        return EXIT_OK
    return await _list_waiting(ledger, society)


async def _list_waiting(ledger, society) -> int:
    sys.stdout.write(text.waiting(await ledger.bank_lines(society.site_id), _moneys(society)))
    return EXIT_OK
