"""`rating bench`: the benchmark suite (bench/suite.py) from the command line.

The suite lives in the source checkout's `bench/` folder, beside this
package, not in the installed package: `rating bench` finds it there.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path
from types import ModuleType

from rating.cli.commands import EXIT_OK, subcommand
from rating.errors import InputError

CHECKOUT = Path(__file__).resolve().parent.parent
EXIT_CHECK_FAILED = 1  # the implementations disagreed: a bug, whatever the speed

BENCH_DESCRIPTION = """
    Run the benchmark suite: the Cython kernel side by side with careful
    numpy, pyarrow.compute, the Decimal reference (sampled) and a
    memory-bandwidth pass over the same columns, on the same data in the same
    run; `rate()` on Parquet, CSV and Arrow IPC files beside pyarrow decoding
    the same files (the CLI's path end to end); scaling curves over readings
    (10^4 .. 10^8), meters (10^3 .. 10^7; 10^6 and 10^7 read 10 times each
    beside numpy), tariff complexity, arrival order
    and apportionment group sizes; peak
    memory per scenario; the prepaid service end to end when
    bench/bench_service.py is there; gateway webhook payments over HTTP
    (bench/bench_webhook.py).

    It writes results.json (machine, versions, every figure with its unit,
    runs, median and spread), report.md and PNG plots to
    bench/results/<UTC timestamp>/ or to --out DIR. Before timing, every
    point checks that the implementations agree to the minor unit; a
    disagreement exits with 1. Speed never fails the run.

    scenarios: files, readings, meters, many_meters, tariffs, order, apportion, service, webhook

    examples:
      rating bench --quick --out /tmp/bench        seconds: the CI smoke run
      rating bench                                 the full run (under 15 minutes on 2 cores)
      rating bench --only tariffs,order --repeats 3
      rating bench --update-readme                 full run, then README + docs/bench/
      rating bench --update-readme --from bench/results/20260101T120000Z

    exit codes: 0 done; 1 implementations disagreed; 2 bad arguments.
"""


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few runs (seconds; for CI smoke runs)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write the results here (default: bench/results/<UTC timestamp>/)")
    parser.add_argument("--only", metavar="LIST",
                        help="comma-separated scenarios to run (default: all)")
    parser.add_argument("--repeats", type=int, metavar="N",
                        help="timed runs per implementation and point (default: 5, quick 3)")
    parser.add_argument("--update-readme", action="store_true",
                        help="after a full run, copy its plots and report to docs/bench/ and "
                             "regenerate the README's performance section")
    parser.add_argument("--from", dest="from_dir", type=Path, metavar="DIR",
                        help="with --update-readme: use this finished run instead of running")


def load_bench_module(name: str) -> ModuleType:
    """Import bench.<name> from the source checkout beside the package."""
    try:
        return importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench", f"bench.{name}") or not (CHECKOUT / "bench" / "suite.py").is_file():
            raise
    sys.path.insert(0, str(CHECKOUT))
    try:
        return importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name in ("bench", f"bench.{name}"):
            raise InputError("rating bench runs from a source checkout (its bench/ folder)") from exc
        raise


@subcommand("bench", help="run the benchmark suite (report, plots, results.json)",
            description=BENCH_DESCRIPTION, arguments=_bench_arguments)
def bench_command(args: argparse.Namespace) -> int:
    if args.repeats is not None and args.repeats < 1:
        raise InputError("--repeats must be 1 or more")
    if args.from_dir is not None and not args.update_readme:
        raise InputError("--from DIR goes with --update-readme")
    if args.update_readme and args.quick:
        raise InputError("--update-readme publishes full runs only; drop --quick")
    report = load_bench_module("report")
    if args.from_dir is not None:
        return _update_readme(report, args.from_dir)
    suite = load_bench_module("suite")
    try:
        only = suite.parse_only(args.only)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    out = args.out if args.out is not None else suite.default_out()
    command = _command_line(args)
    results = suite.run_suite(suite.plan_for(args.quick, args.repeats), out, only=only, command=command)
    sys.stdout.write(f"{out / 'report.md'}\n")
    if not results["ok"]:
        sys.stderr.write("rating: error: the implementations disagree (see checks in results.json)\n")
        return EXIT_CHECK_FAILED
    if args.update_readme:
        return _update_readme(report, out)
    return EXIT_OK


def _command_line(args: argparse.Namespace) -> str:
    """The command as a user would type it again (recorded in the results)."""
    words = ["rating", "bench"]
    if args.quick:
        words.append("--quick")
    if args.only:
        words += ["--only", args.only]
    if args.repeats is not None:
        words += ["--repeats", str(args.repeats)]
    if args.out is not None:
        words += ["--out", str(args.out)]
    if args.update_readme:
        words.append("--update-readme")
    return shlex.join(words)


def _update_readme(report: ModuleType, results_dir: Path) -> int:
    try:
        readme = report.update_readme(results_dir, CHECKOUT / "README.md", CHECKOUT / "docs" / "bench")
    except report.ReadmeError as exc:
        raise InputError(str(exc)) from exc
    sys.stderr.write(f"bench: updated {readme} and docs/bench/ from {results_dir}\n")
    return EXIT_OK
