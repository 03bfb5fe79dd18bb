"""`rating report defaulters|kpis|receipts|forecast|consumption`: the
reports of rating.reports on the command line, printed as a table or
written with --out as CSV, XLSX or Parquet.

`consumption` rates the readings given (rate(), the site's groups applied)
and reports on its charges and anomalies; it needs no ledger.

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

VERBS = ("defaulters", "kpis", "receipts", "forecast", "consumption")
CONSUMPTION_VIEWS = ("unit", "tower", "common")
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
      consumption READINGS...  rates the readings, then per unit, utility
                  and month: metered quantity, change on the month
                  before, anomalies, outliers (beyond 3.5 MADs of the
                  unit's own months or of its tower's units in the
                  month); --by tower or --by common (shared areas)
                  sums; --tower-pattern REGEX finds the tower in an
                  account id (default ^([A-Za-z]+)- : A-0101 -> A)

    Amounts are integer minor units (paisa, cents); ratios and quantities
    are decimals.

    examples:
      rating report defaulters --site site.toml --as-of 2025-06-30
      rating report defaulters --site site.toml --out defaulters.xlsx
      rating report kpis --site site.toml --grace-days 5 --out kpis.csv
      rating report receipts --site site.toml --out receipts.parquet
      rating report forecast --site site.toml --cycles-ahead 3 --backtest
      rating report consumption --site site.toml readings.parquet --out usage.xlsx
      rating report consumption --site site.toml may.parquet june.parquet --by tower

    exit codes: 0 done; 2 bad input (an unknown account, a bad date or
    file type), nothing written; 3 the ledger cannot be reached.
"""


def _arguments(parser: argparse.ArgumentParser) -> None:
    # one parser per verb: consumption's READINGS may then follow its options
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--site", type=Path, metavar="SITE.toml", required=True, help="the site file")
    shared.add_argument("--out", type=Path, metavar="FILE", help="write .csv, .xlsx or .parquet instead of "
                                                                 "printing")
    dues = argparse.ArgumentParser(add_help=False)
    dues.add_argument("--ledger", type=Path, metavar="FILE", default=Path("rating-data") / "ledger.db",
                      help="SQLite ledger file (default rating-data/ledger.db)")
    dues.add_argument("--postgres", metavar="DSN", help="PostgreSQL ledger instead of the SQLite file")
    dues.add_argument("--postgres-schema", metavar="NAME", default="rating")
    dues.add_argument("--as-of", metavar="YYYY-MM-DD", help="the day the report is as of (default today)")
    dues.add_argument("--account", default="", help="defaulters: this account only")
    dues.add_argument("--all", action="store_true", help="defaulters: every account, not only defaulters")
    dues.add_argument("--grace-days", type=int, default=0, help="kpis: days after the due date a payment "
                                                                "is still on time (default 0)")
    dues.add_argument("--cycles-ahead", type=int, default=2, help="forecast: cycles to forecast")
    dues.add_argument("--backtest", action="store_true", help="forecast: the back-test instead")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in VERBS[:-1]:
        verbs.add_parser(verb, parents=[shared, dues], help=f"the {verb} report of the dues ledger")
    usage = verbs.add_parser("consumption", parents=[shared],
                             help="rate readings, then consumption analytics")
    usage.add_argument("readings", nargs="+", type=Path, metavar="READINGS",
                       help="the readings files to rate")
    usage.add_argument("--by", choices=CONSUMPTION_VIEWS, default="unit",
                       help="per unit (default), tower or common area")
    usage.add_argument("--tower-pattern", metavar="REGEX",
                       help="the tower in an account id: group 1, or the whole match "
                            "(default ^([A-Za-z]+)-)")


@subcommand("report", help="defaulters with ageing, collection KPIs, receipts by channel, cash-flow "
                           "forecast, consumption",
            description=DESCRIPTION, arguments=_arguments)
def report_command(args: argparse.Namespace) -> int:
    if args.out is not None:
        from rating.reports.export import FORMATS

        if args.out.suffix.lower() not in FORMATS:
            raise InputError(f"write a report as {', '.join(FORMATS)}; got {args.out.name!r}", where="--out")
    from rating.config.loader import load_config

    config = load_config(args.site)
    if args.verb == "consumption":
        table, summary = consumption(config, args)
        _emit(table, summary, args.out, f"consumption-{args.by}")
        return EXIT_OK
    return _dues(config.site.name, args)


def _dues(site_id: str, args: argparse.Namespace) -> int:
    as_of = _day(args.as_of)
    if not 0 <= args.grace_days <= 366:
        raise InputError(f"give 0..366 days, got {args.grace_days}", where="--grace-days")
    if not 1 <= args.cycles_ahead <= 24:
        raise InputError(f"give 1..24 cycles, got {args.cycles_ahead}", where="--cycles-ahead")

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


def consumption(config, args: argparse.Namespace) -> tuple[pa.Table, str]:
    from rating.engine import rate
    from rating.reports import consumption as rules
    from rating.reports import usage

    pattern = rules.TOWER_PATTERN if args.tower_pattern is None else args.tower_pattern
    rules.tower_rule(pattern)  # a bad pattern is refused before the readings are rated
    result = rate([str(p) for p in args.readings], config=config)
    units = usage.units(result.charges, result.anomalies, config, tower_pattern=pattern)
    flagged = [r["account_id"] for r in units.to_pylist() if r["own_outlier"] or r["tower_outlier"]]
    summary = (f"{units.num_rows} unit-months, {len(flagged)} outliers "
               f"({', '.join(dict.fromkeys(flagged)) or 'none'}), {result.anomalies.num_rows} anomalies")
    if args.by == "tower":
        return usage.towers(units, config.site.quantity_decimals), summary
    if args.by == "common":
        return usage.common_areas(result.charges, config), summary
    return units, summary


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
