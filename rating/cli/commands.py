"""The `rating` command line: one function per subcommand, in a registry.

A subcommand is a function `(args) -> exit code` registered with
`@subcommand(name, help=..., arguments=...)`; `arguments` adds its options to
its argparse parser. Errors are one line on stderr and exit code 2:

    rating: error: <where>: <message>

Every `RatingError` (bad input, configuration, tariff, overflow) and every
file system error is reported that way, without a traceback, and leaves no
partial output behind.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rating import __version__
from rating.errors import InputError, RatingError
from rating.model.months import MONTHS_MAX, parse_months

EXIT_OK = 0
EXIT_ERROR = 2  # bad input or configuration: fix the input, run again
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str  # one line, in `rating --help`
    description: str  # the subcommand's own --help, examples included
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(
    name: str,
    *,
    help: str,
    description: str,
    arguments: Callable[[argparse.ArgumentParser], None],
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register `run(args) -> exit code` as `rating <name>`."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        if name in SUBCOMMANDS:
            raise ValueError(f"subcommand {name!r} is registered twice")
        SUBCOMMANDS[name] = Subcommand(name, help, textwrap.dedent(description).strip(),
                                       arguments, run)
        return run

    return register


# ------------------------------------------------------------------ rate

RATE_DESCRIPTION = """
    Rate meter readings: turn them into exact charge lines, report the
    readings that were not priced as they came (anomalies), and print a
    per-account summary.

    The site file names the tariffs, meters and accounts (see README.md).
    READINGS are Parquet, Arrow IPC (.arrow/.feather, .arrows for a stream)
    or CSV files with the columns meter_id, ts and value; several files are
    rated one after the other, in order. Outputs are written all-or-nothing:
    on any error no output file is created or changed. A symlink is followed
    (its target is replaced atomically); a device or FIFO (/dev/stdout, a
    named pipe) is written through, never replaced; one file given twice is
    an error.

    examples:
      rating rate --site site.toml readings.parquet
      rating rate --site site.toml day1.csv day2.csv --out results/
      rating rate --site site.toml readings.parquet --out results/ --format csv
      rating rate --site site.toml readings.arrow \\
          --charges may-charges.parquet --anomalies may-anomalies.csv
      rating rate --site site.toml readings.parquet --unknown-meters error --no-summary
      rating rate --site site.toml may.parquet --now 2025-06-01T00:00:00+05:30
      rating rate --site site.toml q2.parquet --period 2025-04..2025-06
      rating rate --site site.toml by-shard/ --dask tcp://scheduler:8786 --out results/

    exit codes: 0 done; 2 bad input, configuration or tariff (one line on
    stderr: "rating: error: <where>: <message>").
"""


def _rate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", required=True, type=Path, metavar="SITE.toml",
                        help="site file: [site] settings and [files] (tariffs, meters, accounts)")
    parser.add_argument("readings", nargs="+", type=Path, metavar="READINGS",
                        help="readings files (.parquet, .arrow/.feather, .arrows, .csv)")
    _output_arguments(parser)
    parser.add_argument("--unknown-meters", choices=("report", "error"), default="report",
                        help="a reading of a meter the registry lacks: report it as an "
                             "anomaly (default) or stop with an error")
    parser.add_argument("--now", type=_instant, metavar="ISO-8601",
                        help="the instant readings may not be later than (plus the site's "
                             "future_tolerance_hours) without being future_reading anomalies; "
                             "default: the wall clock. Without an offset it is UTC")
    parser.add_argument("--period", metavar="YYYY-MM[..YYYY-MM]",
                        help="charge these billing periods only (a month, or a range of at most "
                             f"{MONTHS_MAX} months): every active meter and account in each, "
                             "readings or not; readings outside them are outside_periods anomalies")
    _dask_arguments(parser)


def _dask_arguments(parser: argparse.ArgumentParser) -> None:
    from rating.cli.partition import dask_arguments

    dask_arguments(parser)


def _instant(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date and time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("outputs (none: only the summary is printed)")
    out.add_argument("--out", type=Path, metavar="DIR",
                     help="write DIR/charges.<ext>, DIR/anomalies.<ext> and, for sites with "
                          "groups, DIR/apportionment.<ext> (DIR is created)")
    out.add_argument("--charges", type=Path, metavar="FILE", help="write the charge lines to FILE")
    out.add_argument("--anomalies", type=Path, metavar="FILE", help="write the anomalies to FILE")
    out.add_argument("--apportionment", type=Path, metavar="FILE",
                     help="write the shared-area problems to FILE (sites with a groups file)")
    out.add_argument("--format", choices=("parquet", "csv", "arrow"),
                     help="output format (default: from each FILE's suffix; parquet with --out)")
    shown = parser.add_argument_group("summary")
    shown.add_argument("--no-summary", action="store_true", help="do not print the summary")
    shown.add_argument("--accounts", type=int, metavar="N",
                       help="show at most N accounts in detail (default: all)")


# RatingResult tables a run can write, in this order.
OUTPUT_TABLES = ("charges", "anomalies", "apportionment")


@subcommand("rate", help="rate readings into charges and anomalies",
            description=RATE_DESCRIPTION, arguments=_rate_arguments)
def rate_command(args: argparse.Namespace) -> int:
    from rating.config.loader import load_config

    if args.dask is not None:
        if args.period is not None:
            raise InputError("--period is not taken with --dask: rate the periods in one process",
                             where="--period")
        return _rate_on_dask(args)
    outputs = _planned_outputs(args)
    config = load_config(args.site)
    months = None if args.period is None else parse_months(args.period)
    result = _rate(args.readings, config, args.unknown_meters, args.now, months)
    _write_outputs(result, outputs)
    if not args.no_summary:
        _print_summary(result, config, args.accounts)
    return EXIT_OK


def _rate_on_dask(args: argparse.Namespace) -> int:
    from rating.cli.partition import rate_on_dask

    return rate_on_dask(args)


def _planned_outputs(args: argparse.Namespace) -> list[tuple[str, Path, str]]:
    """(table name, path, format) to write; checked before any work is done."""
    from rating.cli.output import EXTENSIONS, destinations, format_of

    if args.out is not None and any(getattr(args, name) is not None for name in OUTPUT_TABLES):
        raise InputError("give either --out DIR or --charges/--anomalies/--apportionment FILE, not both")
    if args.accounts is not None and args.accounts < 0:
        raise InputError("--accounts must be 0 or more")
    if args.out is not None:
        fmt = args.format or "parquet"
        planned = [(name, args.out / f"{name}{EXTENSIONS[fmt]}", fmt) for name in OUTPUT_TABLES]
    else:
        planned = []
        for name in OUTPUT_TABLES:
            path = getattr(args, name)
            if path is not None:
                planned.append((name, path, format_of(path, args.format)))
        for _, path, _ in planned:
            if not path.parent.is_dir():
                raise InputError("folder does not exist", where=str(path.parent))
    destinations([path for _, path, _ in planned])  # one file given twice, a folder: fail now
    return planned


def _rate(readings: Sequence[Path], config, unknown_meters: str, now: dt.datetime | None = None,
          months: Sequence[dt.date] | None = None):
    from rating.cli.progress import Progress
    from rating.engine import rate
    from rating.readings.sources import count_readings

    sources = [str(path) for path in readings]
    source = sources[0] if len(sources) == 1 else sources
    with Progress(total=count_readings(source)) as progress:
        return rate(source, config=config, unknown_meters=unknown_meters, progress=progress, now=now,
                    periods=months)


def _write_outputs(result, outputs: list[tuple[str, Path, str]]) -> None:
    from rating.cli.output import write_tables

    # the apportionment table exists only for sites with groups
    outputs = [output for output in outputs if getattr(result, output[0]) is not None]
    if not outputs:
        return
    created: list[Path] = []
    for _, path, _ in outputs:
        folder = path.parent
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
    try:
        write_tables([(getattr(result, name), path, fmt) for name, path, fmt in outputs])
    except BaseException:
        for folder in reversed(created):  # leave nothing behind, not even the folder
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _print_summary(result, config, max_accounts: int | None) -> None:
    from rating.cli.summary import render_summary

    sys.stdout.write(render_summary(result.charges, result.anomalies, config,
                                    max_accounts=max_accounts))
    sys.stdout.flush()


# ------------------------------------------------------------------ demo

DEMO_DESCRIPTION = """
    Generate a synthetic housing society (Green Meadows Co-operative Housing
    Society, Pune: towers of flats with electricity and water meters read
    every 15 minutes for a month, common-area and lift meters, a few faulty
    readings), rate it and print the summary; then bill it for the month
    (a SQLite dues ledger in the folder), print the bills' summary and
    write three PDF bills to bills/ there.

    Without --out the files live in a temporary folder that is removed at the
    end; with --out DIR they are kept there (site.toml, tariffs.toml,
    billing.toml, meters.csv, accounts.csv, readings.parquet) with the results
    (charges.parquet, anomalies.parquet), ready for `rating rate`.

    examples:
      rating demo
      rating demo --out green-meadows/ --towers 8 --seed 7
      rating rate --site green-meadows/site.toml green-meadows/readings.parquet
"""


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="keep the generated society and its results in DIR")
    parser.add_argument("--towers", type=int, default=4, metavar="N",
                        help="towers of 8 floors x 4 flats (1-26, default 4: 128 flats)")
    parser.add_argument("--seed", type=int, default=2025, metavar="S",
                        help="random seed; the same seed gives the same society (default 2025)")
    parser.add_argument("--accounts", type=int, default=6, metavar="N",
                        help="accounts shown in detail (default 6)")
    parser.add_argument("--format", choices=("parquet", "csv", "arrow"), default="parquet",
                        help="format of the results written with --out (default parquet)")


@subcommand("demo", help="generate a demo society, rate it and print the summary",
            description=DEMO_DESCRIPTION, arguments=_demo_arguments)
def demo_command(args: argparse.Namespace) -> int:
    from rating.cli.demo import generate_demo
    from rating.cli.output import EXTENSIONS
    from rating.config.loader import load_config

    if not 1 <= args.towers <= 26:
        raise InputError("--towers must be 1..26")
    with contextlib.ExitStack() as stack:
        folder = args.out
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rating-demo-")))
        society = generate_demo(folder, towers=args.towers, seed=args.seed)
        sys.stderr.write(
            f"demo: {society.flats} flats, {society.meters} meters, "
            f"{society.readings:,} readings in {society.folder}\n"
        )
        config = load_config(society.site_file)
        result = _rate([society.readings_file], config, "report")
        if args.out is not None:
            ext = EXTENSIONS[args.format]
            _write_outputs(result, [(name, folder / f"{name}{ext}", args.format)
                                    for name in OUTPUT_TABLES])
        _print_summary(result, config, args.accounts)
        from rating.cli.demo_postpaid import bill_demo

        bill_demo(society.site_file, society.readings_file, result.charges, folder)
        if args.out is None:
            sys.stderr.write("demo: pass --out DIR to keep the files and the results\n")
    return EXIT_OK


# ------------------------------------------------------------------ main

# Modules that register more subcommands when imported (serve, bench, topup...).
SUBCOMMAND_MODULES: tuple[str, ...] = ("rating.cli.bench", "rating.cli.prepaid", "rating.cli.billing",
                                        "rating.cli.partition", "rating.cli.payments", "rating.cli.reminders",
                                        "rating.cli.reports", "rating.cli.usage")

MAIN_DESCRIPTION = """
    rating: exact, high-throughput metering and rating for housing societies,
    property managers and utilities. Meter readings in, exact charges out.

    examples:
      rating demo                                  try it on a synthetic society
      rating rate --site site.toml readings.parquet --out results/
      rating rate --help                           everything about one subcommand
"""


def build_parser() -> argparse.ArgumentParser:
    import importlib

    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module)
    parser = argparse.ArgumentParser(
        prog="rating",
        description=textwrap.dedent(MAIN_DESCRIPTION).strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rating {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in SUBCOMMANDS.values():
        sub = commands.add_parser(
            command.name, help=command.help, description=command.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except RatingError as exc:
        return _fail(f"{exc.where}: {exc.message}" if exc.where else exc.message)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else ""
        message = exc.strerror or str(exc)
        return _fail(f"{where}: {message}" if where else message)
    except KeyboardInterrupt:
        sys.stderr.write("rating: interrupted\n")
        return EXIT_INTERRUPTED


def _fail(text: str) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"rating: error: {text}\n")
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
