"""Reconcile a 100,000-line bank statement: parsing alone beside parsing plus matching.

    .venv/bin/python -m bench.bench_reconcile [--lines 100000] [--repeat 3] [--format camt.053]

Writes one synthetic month of a society's account (bench.statement_files:
80% bills paid by reference, 5% gateway settlements of 20 payments each, the
rest payments quoting a unit, wrong amounts and debits) as a CAMT.053, MT940
or CSV file, then times, in turns so machine noise lands on both, `parse`
(read the file into checked Statements) and `parse + reconcile` (the same,
then match every line to the month's open items). Prints the medians, the
matcher's share, and how the lines were sorted; the target is 30 s for the
whole at 100,000 lines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

from bench.statement_files import camt053, csv_text, mt940, synthetic_month
from rating.payments import CsvLayout, parse_statements, reconcile

TARGET_S = 30.0
LAYOUT = CsvLayout(account="IN12HDFC0001234567890", currency="INR", date="Date", amount="Amount",
                   balance="Balance", reference="Ref", narration="Narration")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", choices=("camt.053", "mt940", "csv"), default="camt.053")
    args = parser.parse_args(argv)

    month = synthetic_month(args.lines)
    data, name = {
        "camt.053": lambda: (camt053([month.statement]), "month.xml"),
        "mt940": lambda: (mt940([month.statement]).encode(), "month.sta"),
        "csv": lambda: (csv_text(month.statement, LAYOUT).encode(), "month.csv"),
    }[args.format]()

    def parse():
        return parse_statements(data, file=name, layout=LAYOUT)

    def parse_and_reconcile():
        return reconcile(parse(), month.items)

    result = parse_and_reconcile()  # warm-up, and the figures below
    runs: dict[str, list[float]] = {"parse": [], "parse + reconcile": []}
    for _ in range(args.repeat):
        for label, run in (("parse", parse), ("parse + reconcile", parse_and_reconcile)):
            start = time.perf_counter()
            run()
            runs[label].append(time.perf_counter() - start)

    medians = {label: statistics.median(seconds) for label, seconds in runs.items()}
    print(f"{args.lines:,} lines, {args.format}, {len(data) / 1e6:.1f} MB, {len(month.items):,} open items, "
          f"medians of {args.repeat} runs")
    for label, median in medians.items():
        spread = ", ".join(f"{s:.2f}" for s in runs[label])
        print(f"  {label:<18} {median:6.2f} s  {args.lines / median:>9,.0f} lines/s  (runs {spread})")
    whole = medians["parse + reconcile"]
    matching = whole - medians["parse"]
    verdict = "met" if whole <= TARGET_S else "MISSED"
    print(f"  matching           {matching:6.2f} s  ({matching / whole:.0%} of the whole; "
          f"target {TARGET_S:.0f} s for the whole: {verdict})")
    bases = Counter(m.basis for m in result.matched)
    reasons = Counter(r.reason for r in result.review)
    print(f"  matched {len(result.matched):,} {dict(bases)}; review {len(result.review):,} {dict(reasons)}; "
          f"unmatched credits {len(result.unmatched_credits):,}, debits {len(result.unmatched_debits):,}")


if __name__ == "__main__":
    main()
