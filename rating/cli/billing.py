"""Command-line verbs of postpaid billing, registered in rating.cli.commands:

    rating bills run      draft a cycle's bills and print them (writes nothing)
    rating bills issue    issue a cycle: numbers, dues entries, audit (once)
    rating bills show     show an issued bill or note, or the bills of a cycle or account
    rating bills pdf      write a cycle's bills (or one bill or note) as PDF and/or HTML
    rating statement      an account's statement for a date range (PDF, HTML, CSV, Arrow)
    rating dues import    import unpaid dues of many units from CSV or XLSX

They open the dues ledger directly: the SQLite file beside the prepaid
ledger (default rating-data/ledger.db, or --ledger FILE), or PostgreSQL
with --postgres DSN (schema --postgres-schema, default rating); with
--server (or RATING_SERVER) they go through the running server that holds
it (rating.cli.billing_remote).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import os
import socket
import sys
from pathlib import Path

from rating.cli import billing_remote
from rating.cli.commands import EXIT_OK, subcommand
from rating.errors import InputError

EXIT_UNAVAILABLE = 3  # the ledger cannot be reached
DEFAULT_LEDGER = Path("rating-data") / "ledger.db"


def _ledger_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, metavar="SITE.toml",
                        help="site file; its billing.toml beside it holds the heads, rules and numbering "
                             "(with --server: optional, the server's site)")
    parser.add_argument("--ledger", type=Path, metavar="FILE", default=DEFAULT_LEDGER,
                        help=f"SQLite ledger file (default {DEFAULT_LEDGER}, the prepaid ledger's)")
    parser.add_argument("--postgres", metavar="DSN", help="PostgreSQL ledger instead of the SQLite file")
    parser.add_argument("--postgres-schema", metavar="NAME", default="rating")
    parser.add_argument("--actor", default=os.environ.get("RATING_ACTOR") or _process_name(),
                        help="who acts, recorded on every row and audit entry "
                             "(default: $RATING_ACTOR or user@host)")
    billing_remote.client_arguments(parser)


def _process_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _ledger(args: argparse.Namespace):
    if args.postgres:
        from rating.billing.ledger_postgres import PostgresDuesLedger

        return PostgresDuesLedger(args.postgres, schema=args.postgres_schema)
    from rating.billing.ledger_sqlite import SqliteDuesLedger

    return SqliteDuesLedger(args.ledger)


def _with_ledger(args: argparse.Namespace, action) -> int:
    """Open the ledger, await action(ledger) (it prints), close; exit 3 if unreachable."""
    from rating.prepaid.ledger.base import LedgerUnavailable

    if not args.postgres and (refused := billing_remote.refuse_held(args.ledger)) is not None:
        return refused

    async def go() -> int:
        ledger = _ledger(args)
        await ledger.open()
        try:
            return await action(ledger)
        finally:
            await ledger.close()

    try:
        return asyncio.run(go())
    except LedgerUnavailable as exc:
        sys.stderr.write(f"rating: error: {exc}\n")
        return EXIT_UNAVAILABLE


# ---------------------------------------------------------------- bills

BILLS_DESCRIPTION = """
    Bill every unit of a site for a cycle (a calendar month): maintenance,
    funds, fixed and metered heads, arrears, interest, taxes, rounding-off,
    by the site's billing.toml (docs/billing.md).

      run     draft the cycle and print the bills; writes nothing, run it
              as often as you like (late readings, corrected fees)
      issue   draft and issue: numbers the bills (one series per financial
              year), posts their dues, audits; issuing again changes
              nothing and prints the first result
      show    an issued bill or note by number, or the bills of --cycle or
              --account
      pdf     write the issued bills of --cycle (or one bill or note by
              number) to --out DIR as PDF and/or HTML (--format); --draft
              writes a cycle's drafts, marked DRAFT; with --readings each
              meter shows its readings, multiplier and slabs

    examples:
      rating bills run --site site.toml --cycle 2025-05
      rating bills run --site site.toml --cycle 2025-05 --readings may.parquet
      rating bills issue --site site.toml --cycle 2025-05 --actor treasurer
      rating bills show B/25-26/000001 --site site.toml
      rating bills show --site site.toml --cycle 2025-05
      rating bills pdf --site site.toml --cycle 2025-05 --readings may.parquet --out bills/
      rating bills pdf B/25-26/000001 --site site.toml --out bills/ --format html
      rating bills pdf --site site.toml --cycle 2025-06 --draft --out drafts/
      rating bills issue --site site.toml --cycle 2025-05 --postgres postgresql://rating@db/rating
      rating bills issue --cycle 2025-05 --server 127.0.0.1:50051 --token-file office.token

    While `rating serve` holds the ledger, give --server (or RATING_SERVER):
    the verbs then go through it and print the same.

    exit codes: 0 done; 2 bad input (a cycle already issued or before an
    issued one, an account without area, ...), nothing written; 3 the
    ledger or the server cannot be reached (or a server holds the ledger:
    go through it); 5 the server did not answer in time: run the same
    command again, it is applied at most once.
"""


def _bills_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=("run", "issue", "show", "pdf"))
    parser.add_argument("number", nargs="?", help="show, pdf: the bill or note number (right after the verb)")
    _ledger_arguments(parser)
    parser.add_argument("--cycle", metavar="YYYY-MM", help="the cycle's month (run, issue; show: its bills)")
    parser.add_argument("--bill-date", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the bills' date (default: the day after the cycle)")
    parser.add_argument("--readings", nargs="+", type=Path, metavar="READINGS",
                        help="run, issue: the cycle's readings files, rated as `rating rate` does; "
                             "without them metered heads are billed at zero, with an anomaly")
    parser.add_argument("--instalments", type=Path, metavar="PLANS.toml",
                        help="run, issue: bill the instalments due in the cycle under their item heads")
    parser.add_argument("--account", help="show: the documents of one account")
    parser.add_argument("--accounts", type=int, default=20, metavar="N",
                        help="run: show at most N bills in detail (default 20)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="pdf: the folder to write to (created)")
    parser.add_argument("--format", choices=("pdf", "html", "both"), default="pdf",
                        help="pdf: what to write (default pdf)")
    parser.add_argument("--draft", action="store_true", help="pdf: the cycle's drafts, marked DRAFT")


@subcommand("bills", help="draft, issue and show a cycle's postpaid bills",
            description=BILLS_DESCRIPTION, arguments=_bills_arguments)
def bills_command(args: argparse.Namespace) -> int:
    from rating.billing import bill_text
    from rating.billing.inputs import load_site_billing, run_cycle
    from rating.billing.run import RunInputs, draft_cycle, issue_cycle

    if args.verb == "show":
        _show_check(args)
    elif args.verb == "pdf":
        from rating.cli.billing_documents import write_documents

        if billing_remote.wanted(args):
            return billing_remote.documents(args)
        return write_documents(args, site_file(args), _with_ledger)
    elif not args.cycle:
        raise InputError(f"bills {args.verb} needs --cycle YYYY-MM", where="--cycle")
    elif args.number:
        raise InputError(f"bills {args.verb} takes no number", where=args.number)
    if billing_remote.wanted(args):
        return billing_remote.bills(args)
    if args.verb == "show":
        return _show(args)
    society = load_site_billing(site_file(args))
    cycle = run_cycle(society.site_id, args.cycle, society.billing, bill_date=args.bill_date)
    from rating.payments.settings import load_payment_settings

    allocation = load_payment_settings(args.site, society.config.site).allocation  # how advances pay
    usage = _usage(args, society, cycle)
    inputs = RunInputs(cycle, society.billing, society.numbering, society.units(), usage,
                       items=_instalment_items(args, society, cycle), rules_text=society.rules_text,
                       allocation=allocation)
    exponent = society.config.site.minor_unit_exponent

    async def run(ledger) -> int:
        if args.verb == "run":
            drafts = await draft_cycle(ledger, inputs)
            sys.stdout.write(bill_text.drafts(drafts, exponent, shown_max=args.accounts))
        else:
            from rating.cli.reminders import attach_issue_notices

            await attach_issue_notices(args.site, ledger)  # a bill's "issued" notice commits with it
            result = await issue_cycle(ledger, inputs, actor=args.actor)
            sys.stdout.write(bill_text.issued(result, exponent))
        return EXIT_OK

    return _with_ledger(args, run)


def _instalment_items(args: argparse.Namespace, society, cycle) -> dict:
    """The instalments due in the cycle of the plans given, as items of their heads (docs/usage.md)."""
    if args.instalments is None:
        return {}
    from rating.usage.instalments import billed_items, load_plans, schedule

    plans = load_plans(args.instalments, society.config.site)
    return billed_items(plans, schedule(plans), cycle)


def _usage(args: argparse.Namespace, society, cycle) -> dict:
    """The accounts' rated lines of the readings given (none: no usage), the
    run's months rated for every meter and account, readings or not."""
    if not args.readings:
        return {}
    from rating.billing.usage import usage_by_account
    from rating.cli.commands import _rate

    result = _rate(args.readings, society.config, "report", months=society.run_months(cycle))
    return usage_by_account(result.charges, society.config.site)


# ---------------------------------------------------------------- statement

STATEMENT_DESCRIPTION = """
    An account's statement for a date range: the opening balance, every
    bill, note, interest and other entry of the range (payments too, once
    the ledger holds them), the closing balance. Written as PDF, HTML,
    CSV or Arrow IPC to --out FILE (the format from its suffix or
    --format), or printed as CSV without --out.

    examples:
      rating statement --site site.toml --account A-0101 --from 2025-04-01 --to 2026-03-31 --out a-0101.pdf
      rating statement --site site.toml --account A-0101 --from 2025-05-01 --to 2025-06-30

    exit codes: 0 done; 2 bad input (an unknown account, a range that ends
    before it starts), nothing written; 3 the ledger cannot be reached.
"""


def _statement_arguments(parser: argparse.ArgumentParser) -> None:
    _ledger_arguments(parser)
    parser.add_argument("--account", required=True, help="the account (unit)")
    parser.add_argument("--from", dest="first", required=True, type=dt.date.fromisoformat,
                        metavar="YYYY-MM-DD", help="the first day")
    parser.add_argument("--to", dest="last", required=True, type=dt.date.fromisoformat,
                        metavar="YYYY-MM-DD", help="the last day (included)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write here (default: CSV to stdout)")
    parser.add_argument("--format", choices=("pdf", "html", "csv", "arrow"),
                        help="the format (default: from --out's suffix; csv without --out)")


@subcommand("statement", help="an account's statement for a date range (PDF, HTML, CSV, Arrow)",
            description=STATEMENT_DESCRIPTION, arguments=_statement_arguments)
def statement_command(args: argparse.Namespace) -> int:
    from rating.cli.billing_documents import write_statement

    if billing_remote.wanted(args):
        return billing_remote.statement(args)
    return write_statement(args, site_file(args), _with_ledger)


def site_file(args: argparse.Namespace) -> Path:
    if not args.site:
        raise InputError("give --site SITE.toml (or --server HOST:PORT to go through a running server)",
                         where="--site")
    return args.site


def _show_check(args: argparse.Namespace) -> None:
    if bool(args.number) + bool(args.cycle) + bool(args.account) != 1:
        raise InputError("bills show takes one of: a NUMBER, --cycle YYYY-MM or --account ID")


def _show(args: argparse.Namespace) -> int:
    from rating.billing import bill_text
    from rating.billing.inputs import load_site_billing

    society = load_site_billing(site_file(args))
    exponent = society.config.site.minor_unit_exponent

    async def show(ledger) -> int:
        if args.number:
            document = await ledger.document(society.site_id, args.number)
            if document is None:
                raise InputError(f"no bill or note {args.number!r} in site {society.site_id!r}",
                                 where=args.number, reason="NOT_FOUND")
            carried = await ledger.carried(society.site_id, document.number)
            sys.stdout.write(bill_text.document(document, exponent, carried))
            return EXIT_OK
        cycle_id = ""
        if args.cycle:
            from rating.billing.inputs import run_cycle

            cycle_id = run_cycle(society.site_id, args.cycle, society.billing).cycle_id
        documents = await ledger.documents(society.site_id, cycle_id=cycle_id, account_id=args.account or "",
                                           limit=1_000_000)
        sys.stdout.write(bill_text.listing(documents, exponent))
        return EXIT_OK

    return _with_ledger(args, show)


# ---------------------------------------------------------------- dues

DUES_DESCRIPTION = """
    Import unpaid dues of many units at once (opening arrears, fees billed
    outside rating) from a CSV file or an XLSX workbook (its first sheet):
    a header row and one row per due with the columns unit, head, amount,
    due_date and, optionally, note. Every row is checked first; one bad
    row and nothing is imported, each error naming the file, row and
    column. Importing the same file again changes nothing.

    examples:
      rating dues import --site site.toml opening-arrears.xlsx
      rating dues import --site site.toml april-fees.csv --actor "office (Meena)"

    unit,head,amount,due_date,note
    A-0101,maintenance,4500.00,2025-03-31,arrears before rating
    A-0102,water,125.50,2025-04-15,

    exit codes: 0 done; 2 bad input, nothing imported; 3 the ledger or the
    server (--server, RATING_SERVER) cannot be reached; 5 the server did
    not answer in time: run the same command again.
"""


def _dues_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=("import",))
    parser.add_argument("file", type=Path, metavar="FILE", help="dues file (.csv or .xlsx)")
    _ledger_arguments(parser)


@subcommand("dues", help="import unpaid dues of many units from CSV or XLSX",
            description=DUES_DESCRIPTION, arguments=_dues_arguments)
def dues_command(args: argparse.Namespace) -> int:
    from rating.billing.dues_import import import_dues, read_dues
    from rating.billing.inputs import load_site_billing
    from rating.billing.money import major

    if billing_remote.wanted(args):
        return billing_remote.dues(args)
    society = load_site_billing(site_file(args))
    dues = read_dues(args.file, units=set(society.config.registry.accounts), heads=set(society.billing.heads),
                     exponent=society.config.site.minor_unit_exponent)

    async def run(ledger) -> int:
        result = await import_dues(ledger, dues, site_id=society.site_id, actor=args.actor)
        note = " (already imported: first result)" if result.replayed else ""
        total = major(result.summary["amount_minor"], society.config.site.minor_unit_exponent)
        print(f"imported {result.summary['entries']} dues of {args.file.name}, {total} in all "
              f"[#{result.seq}]{note}")
        return EXIT_OK

    return _with_ledger(args, run)
