"""`rating report defaulters|kpis|receipts|forecast`: the reports of
rating.reports on the command line, printed as a table or written with
--out as CSV, XLSX or Parquet.

They open the dues ledger directly, read-only, like `rating statement`
(the SQLite file, or PostgreSQL with --postgres): when a running server
holds the SQLite file they say so and stop. There are no report calls on
the server yet, so --server is not offered.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from rating.cli.billing import _with_ledger
from rating.cli.commands import EXIT_OK, subcommand
from rating.errors import InputError

VERBS = ("defaulters", "kpis", "receipts", "forecast")
DESCRIPTION = """
    Reports over the dues ledger of a site (docs/reports.md), as of a day
    (default today):

      defaulters  who owes what, by age from each due date (not yet due,
                  0-30, 31-60, 61-90, 90+ days), principal and interest
                  apart, credit and net; --all lists every account,
                  --account ID one
      kpis        per cycle: collection efficiency, on-time ratio (paid in
                  full by the due date + --grace-days), late share, days
                  sales outstanding, each with its change; the trend
      receipts    receipts per cycle and channel (online, cash, cheque,
                  transfer), reversed amounts beside
      forecast    expected collections by week of the next --cycles-ahead
                  cycles from each account's history; --backtest prints
                  the forecast of each past cycle beside what came in

    Amounts are integer minor units (paisa, cents); ratios are decimals.

    examples:
      rating report defaulters --site site.toml --as-of 2025-06-30
      rating report defaulters --site site.toml --out defaulters.xlsx
      rating report kpis --site site.toml --grace-days 5 --out kpis.csv
      rating report receipts --site site.toml --out receipts.parquet
      rating report forecast --site site.toml --cycles-ahead 3 --backtest

    exit codes: 0 done; 2 bad input (an unknown account, a bad date or
    file type), nothing written; 3 the ledger cannot be reached.
"""


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=VERBS)
    parser.add_argument("--site", type=Path, metavar="SITE.toml", required=True, help="the site file")
    parser.add_argument("--ledger", type=Path, metavar="FILE", default=Path("rating-data") / "ledger.db",
                        help="SQLite ledger file (default rating-data/ledger.db)")
    parser.add_argument("--postgres", metavar="DSN", help="PostgreSQL ledger instead of the SQLite file")
    parser.add_argument("--postgres-schema", metavar="NAME", default="rating")
    parser.add_argument("--as-of", metavar="YYYY-MM-DD", help="the day the report is as of (default today)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write .csv, .xlsx or .parquet instead of "
                                                                 "printing")
    parser.add_argument("--account", default="", help="defaulters: this account only")
    parser.add_argument("--all", action="store_true", help="defaulters: every account, not only defaulters")
    parser.add_argument("--grace-days", type=int, default=0, help="kpis: days after the due date a payment "
                                                                  "is still on time (default 0)")
    parser.add_argument("--cycles-ahead", type=int, default=2, help="forecast: cycles to forecast")
    parser.add_argument("--backtest", action="store_true", help="forecast: the back-test instead")


@subcommand("report", help="defaulters with ageing, collection KPIs, receipts by channel, cash-flow forecast",
            description=DESCRIPTION, arguments=_arguments)
def report_command(args: argparse.Namespace) -> int:
    as_of = _day(args.as_of)
    if not 0 <= args.grace_days <= 366:
        raise InputError(f"give 0..366 days, got {args.grace_days}", where="--grace-days")
    if not 1 <= args.cycles_ahead <= 24:
        raise InputError(f"give 1..24 cycles, got {args.cycles_ahead}", where="--cycles-ahead")
    if args.out is not None:
        from rating.reports.export import FORMATS

        if args.out.suffix.lower() not in FORMATS:
            raise InputError(f"write a report as {', '.join(FORMATS)}; got {args.out.name!r}", where="--out")
    from rating.config.loader import load_config

    site_id = load_config(args.site).site.name

    async def run(ledger) -> int:
        from rating.reports import facts

        found = await facts.load(ledger, site_id)
        table, summary = build(args.verb, found, as_of, args)
        if not found.rows.bills:
            sys.stderr.write(f"rating: note: site {site_id!r} has no bills in the ledger\n")
        _emit(table, summary, args.out, args.verb)
        return EXIT_OK

    return _with_ledger(args, run)


def build(verb: str, found, as_of: dt.date, args: argparse.Namespace) -> tuple[pa.Table, str]:
    """The verb's table and its one-line summary."""
    from rating.reports import ageing, forecast, kpis, receipts

    if verb == "defaulters":
        table = ageing.ageing(found, as_of, every_account=args.all, account_id=args.account)
        sums = ageing.totals(table)
        return table, (f"{table.num_rows} accounts as of {as_of}; overdue {sums['overdue_minor']}, "
                       f"principal {sums['principal_minor']}, interest {sums['interest_minor']} "
                       "(minor units)")
    if verb == "kpis":
        table = kpis.kpis(found, as_of, grace_days=args.grace_days)
        trends = {k: kpis.trend(table, k) for k in kpis.RATIOS}
        return table, "trend per cycle: " + ", ".join(f"{k} {v if v is not None else '-'}"
                                                      for k, v in trends.items())
    if verb == "receipts":
        table = receipts.receipts(found, as_of)
        count, amount = sum(table["receipts"].to_pylist()), sum(table["amount_minor"].to_pylist())
        return table, f"{count} receipts, {amount} minor units"
    if args.backtest:
        table, mean = forecast.backtest(found, as_of)
        error = "-" if mean is None else str(mean)
        return table, f"back-test of {table.num_rows} cycles: mean error {error}"
    table = forecast.forecast(found, as_of, cycles_ahead=args.cycles_ahead)
    return table, f"expected over {args.cycles_ahead} cycles: {sum(table['expected_minor'].to_pylist())}"


def _day(text: str | None) -> dt.date:
    if text is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"a day is YYYY-MM-DD, got {text!r}", where="--as-of") from None


def _emit(table: pa.Table, summary: str, out: Path | None, verb: str) -> None:
    if out is not None:
        from rating.reports.export import write

        write(table, out, sheet=verb)
        print(f"wrote {table.num_rows} rows to {out}; {summary}")
        return
    rows = [[_text(v) for v in row.values()] for row in table.to_pylist()]
    widths = [max([len(name)] + [len(r[i]) for r in rows]) for i, name in enumerate(table.column_names)]
    for line in [table.column_names, *rows]:
        print("  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)))
    print(summary)


def _text(value: object) -> str:
    if value is None:
        return "-"
    return str(value) if not isinstance(value, Decimal) else f"{value}"
