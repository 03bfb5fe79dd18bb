"""Reports for a large society: the ledger's rows read (the ceiling: every
report needs them at least once) beside the reports computed from them, in
the same run, medians of `--repeat` runs.

    python -m bench.bench_reports --flats 100000 --cycles 3 --repeat 3

The ledger is filled once by rating.reports.history (the bill run and
payments through the real SQLite dues ledger), in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from rating.billing.ledger_sqlite import SqliteDuesLedger
from rating.reports import ageing, facts, forecast, kpis, receipts
from rating.reports.history import make_history


def reports(found: facts.Facts, as_of) -> int:
    """Every dues report of the site; the rows they make."""
    tables = [ageing.ageing(found, as_of), kpis.kpis(found, as_of), receipts.receipts(found, as_of),
              forecast.forecast(found, as_of), forecast.backtest(found, as_of, depth=1)[0]]
    return sum(t.num_rows for t in tables)


async def measure(flats: int, cycles: int, repeat: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    ledger = SqliteDuesLedger(folder / "ledger.db")
    await ledger.open()
    try:
        started = time.perf_counter()
        history = await make_history(ledger, flats=flats, cycles=cycles)
        filled_s = time.perf_counter() - started
        read_s, total_s, rows = [], [], 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            raw = await ledger.report_rows(history.site_id)
            t1 = time.perf_counter()
            found = facts.index(history.site_id, raw)
            rows = reports(found, history.end)
            t2 = time.perf_counter()
            read_s.append(t1 - t0)
            total_s.append(t2 - t0)
        entries = len(raw.entries)
    finally:
        await ledger.close()
    read, total = statistics.median(read_s), statistics.median(total_s)
    return {"flats": flats, "cycles": cycles, "entries": entries, "fill_s": filled_s, "read_s": read,
            "reports_s": total, "compute_s": total - read, "ratio": total / read, "report_rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flats", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    r = asyncio.run(measure(args.flats, args.cycles, args.repeat))
    print(f"{r['flats']} flats, {r['cycles']} cycles, {r['entries']} dated entry rows "
          f"(ledger filled in {r['fill_s']:.1f} s)")
    print(f"read the rows (ceiling): {r['read_s']:.2f} s median")
    print(f"read + every dues report: {r['reports_s']:.2f} s median "
          f"(compute {r['compute_s']:.2f} s; {r['ratio']:.2f}x the read); target <= 10 s")


if __name__ == "__main__":
    main()
