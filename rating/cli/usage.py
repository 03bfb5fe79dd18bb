"""Command-line verbs of the usage path (docs/usage.md), registered in rating.cli.commands:

    rating parking rate EVENTS   price a file of parking events (no server, no ledger)
    rating use ACCOUNT FACILITY  debit one priced use of a facility on the server
    rating instalments schedule  the instalments of a plans file, exact to the minor unit
    rating instalments funds     per fund: scheduled, due, billed, used and the balance
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from rating.cli.commands import EXIT_OK, subcommand
from rating.cli.output import format_of, write_tables

PARKING_DESCRIPTION = """
    Price a file of parking events (.csv, .parquet, .arrow; columns plate,
    ts, event = entry | exit | lost_ticket) by the tariffs and plates of a
    usage file. Prints a JSON summary (sessions, amount, anomalies per
    code); --sessions and --anomalies write the tables (all or nothing).
    Stays still open at the end of the file are left out.

    examples:
      rating parking rate gate-2026-05.csv --usage usage.toml
      rating parking rate gate.parquet --usage usage.toml --sessions s.parquet --anomalies a.csv
"""


def _parking_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=("rate",))
    parser.add_argument("events", type=Path, metavar="EVENTS")
    parser.add_argument("--usage", type=Path, required=True, metavar="USAGE.toml")
    parser.add_argument("--sessions", type=Path, metavar="FILE", help="write the priced sessions here")
    parser.add_argument("--anomalies", type=Path, metavar="FILE", help="write the anomalies here")


@subcommand("parking", help="price parking events from number-plate cameras",
            description=PARKING_DESCRIPTION, arguments=_parking_arguments)
def parking_command(args: argparse.Namespace) -> int:
    from rating.inputs.tables import read_table
    from rating.usage.parking import rate_parking
    from rating.usage.settings import load_usage_file

    outputs = [(name, path) for name, path in (("sessions", args.sessions), ("anomalies", args.anomalies))
               if path is not None]
    formats = [format_of(path) for _, path in outputs]  # refused before any work
    settings = load_usage_file(args.usage)
    result = rate_parking(read_table(args.events), settings, where=str(args.events))
    write_tables([(getattr(result, name), path, fmt) for (name, path), fmt in zip(outputs, formats,
                                                                                  strict=True)])
    print(json.dumps(result.totals(settings.site.minor_unit_exponent)))
    return EXIT_OK


USE_DESCRIPTION = """
    Debit one priced use of a facility (a [facilities.<name>] of the
    server's usage.toml) from the account's wallet. --key is the reader's
    transaction id: the same key again changes nothing and prints the first
    result; a wallet that cannot pay refuses the use and nothing changes.

    examples:
      rating use F-101 gym --key GYM-0042 --source card --reference C-7781
      rating use F-101 ev 7.25 --key EV-2026-05-04-3 --source qr
"""


def _use_arguments(parser: argparse.ArgumentParser) -> None:
    from rating.cli.prepaid import _client_arguments

    _client_arguments(parser)
    parser.add_argument("account")
    parser.add_argument("facility")
    parser.add_argument("quantity", nargs="?", default="1", help="uses, kWh or minutes (default 1)")
    parser.add_argument("--key", required=True, help="idempotency key (the reader's transaction id)")
    parser.add_argument("--source", choices=("card", "qr", "staff"), default="card")
    parser.add_argument("--reference", default="", help="the card number or the QR code's payload")


@subcommand("use", help="debit one priced use of a facility", description=USE_DESCRIPTION,
            arguments=_use_arguments)
def use_command(args: argparse.Namespace) -> int:
    from rating.cli.prepaid import STATUS_NAMES, _client, _client_failure, _money
    from rating.client.calls import ClientError
    from rating.client.usage import UsageClient

    with _client(args, UsageClient) as client:
        try:
            reply = client.use(args.key, args.account, args.facility, quantity=args.quantity,
                               source=args.source, reference=args.reference)
            exponent = client.balance(args.account).minor_unit_exponent
        except ClientError as exc:
            return _client_failure(exc)
    note = " (already recorded: first result)" if reply.replayed else ""
    print(f"use {reply.account_id} {reply.wallet} {_money(reply.amount_minor, exponent)}: balance "
          f"{_money(reply.balance_minor, exponent)} {STATUS_NAMES[reply.status]} [#{reply.sequence}]{note}")
    return EXIT_OK


INSTALMENTS_DESCRIPTION = """
    The instalments of a plans file (docs/usage.md): `schedule` lists every
    instalment (plan, fund, account, number, due date, amount), exact to the
    minor unit; `funds` reports per fund, as of --on (default today), what
    the plans scheduled, what is due, billed under item heads and used, and
    the balance. Instalments paid from wallets are movements of the prepaid
    service (the Python API and the server pay them); `rating bills run
    --instalments PLANS` bills the ones with an item head.

    examples:
      rating instalments schedule plans.toml --usage usage.toml
      rating instalments schedule plans.toml --usage usage.toml --out instalments.csv
      rating instalments funds plans.toml --usage usage.toml --on 2026-09-30
"""


def _instalments_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=("schedule", "funds"))
    parser.add_argument("plans", type=Path, metavar="PLANS.toml")
    parser.add_argument("--usage", type=Path, required=True, metavar="USAGE.toml",
                        help="the site's money rules (its [site] table)")
    parser.add_argument("--on", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help="funds: as of this day")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="write the table here (.csv, .parquet, .arrow)")


@subcommand("instalments", help="split fees and fund contributions into instalments",
            description=INSTALMENTS_DESCRIPTION, arguments=_instalments_arguments)
def instalments_command(args: argparse.Namespace) -> int:
    from rating.errors import TariffError
    from rating.inputs.textfile import load_toml
    from rating.usage.funds import fund_report, funds_from_document
    from rating.usage.instalments import plans_from_document, schedule
    from rating.usage.settings import load_usage_file

    fmt = format_of(args.out) if args.out is not None else None
    site = load_usage_file(args.usage).site
    doc = load_toml(args.plans, error=TariffError, what="plans file")
    plans = plans_from_document(doc, site, where=str(args.plans))
    table = schedule(plans)
    if args.verb == "funds":
        funds = funds_from_document(doc, site, where=str(args.plans))
        table = fund_report(plans, table, funds, on=args.on or dt.date.today(), paid_keys=set())
    if args.out is not None and fmt is not None:
        write_tables([(table, args.out, fmt)])
    else:
        _print_rows(table.to_pylist(), site.minor_unit_exponent)
    return EXIT_OK


def _print_rows(rows: list[dict], exponent: int) -> None:
    from rating.billing.money import major

    for row in rows:
        sys.stdout.write("  ".join(major(v, exponent) if k.endswith("_minor") else str(v)
                                   for k, v in row.items()) + "\n")
