"""Allocate a month's payments for 100,000 flats, on both dues ledgers, beside
each ledger's raw insert ceiling measured in the same run.

    .venv/bin/python -m bench.bench_allocation [--flats 100000] [--repeat 3] [--chunk 10000]
                                               [--ledger sqlite --ledger postgres]

Each repeat starts from a fresh ledger with two issued months for every flat
(untimed): May, which a fifth of the flats have not paid, and June. Then,
timed, one payment per flat (`DuesLedger.pay_many`, --chunk payments a
transaction): most pay June's bill exactly, some pay part of it, some pay
both months, some pay more than all they owe (an advance), some name their
bill; each payment is numbered, allocated by the default rule (oldest bill
first, charges before interest) and written with its receipt, credit,
allocations, entries and audit row.

The ceiling: the rows the payments wrote (read back from the ledger) inserted
into empty copies of the tables by the bulk path alone, in one transaction
(executemany on SQLite, COPY on PostgreSQL). Prints medians (wall clock),
allocation / ceiling, payments per second, against the 30 s target.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.bench_billing import backends, empty_copies
from rating.billing import ledger_rows
from rating.billing.documents import BillLine, Cycle, DraftBill, LineKind
from rating.billing.ledger import IssueBatch
from rating.billing.ledger_payment_types import Method, PaymentRequest
from rating.billing.ledger_payments import ALLOCATION_COLUMNS, CREDIT_COLUMNS, PAYMENT_COLUMNS
from rating.billing.ledger_sql import SqlDuesLedger
from rating.billing.numbering import Numbering

TARGET_S = 30.0
SITE = "Bench Towers"
MAY = Cycle(SITE, dt.date(2025, 5, 1), dt.date(2025, 5, 31), dt.date(2025, 6, 1), dt.date(2025, 6, 15))
JUNE = Cycle(SITE, dt.date(2025, 6, 1), dt.date(2025, 6, 30), dt.date(2025, 7, 1), dt.date(2025, 7, 15))
OP_COLUMNS = ("seq", "op_key", "kind", "site_id", "actor", "payload_sha256", "created_us", "summary")
AUDIT_COLUMNS = ("site_id", "actor", "at_us", "action", "subject", "detail", "seq")
WRITTEN = (("dues_ops", OP_COLUMNS), ("dues_payments", PAYMENT_COLUMNS), ("dues_allocations",
                                                                          ALLOCATION_COLUMNS),
           ("dues_credits", CREDIT_COLUMNS), ("dues_entries", ledger_rows.ENTRY_COLUMNS),
           ("dues_audit", AUDIT_COLUMNS))


def accounts(flats: int) -> list[str]:
    return [f"T{i // 1000:03d}-{i % 1000:04d}" for i in range(flats)]


def bills(flats: int, cycle: Cycle, seed: int) -> tuple[IssueBatch, dict[str, int]]:
    """A cycle's bills (maintenance, water, and interest on a tenth) and each flat's total."""
    rng = random.Random(seed)
    drafts, totals = [], {}
    for i, account in enumerate(accounts(flats)):
        lines = [BillLine("maintenance", LineKind.CHARGE, rng.randrange(150_000, 600_000), "Maintenance"),
                 BillLine("water", LineKind.CHARGE, rng.randrange(5_000, 40_000), "Water")]
        if i % 10 == 7:
            lines.append(BillLine("interest", LineKind.INTEREST, rng.randrange(500, 9_000), "Interest"))
        drafts.append(DraftBill(cycle, account, f"Owner {i}", tuple(lines)))
        totals[account] = sum(line.amount_minor for line in lines)
    key = f"issue:{SITE}:{cycle.cycle_id}"
    return IssueBatch(key, SITE, cycle.cycle_id, cycle.period_start, cycle.period_end, cycle.bill_date,
                      drafts,
                      Numbering(), "bench"), totals


def month_of_payments(flats: int, may: dict[str, int], june: dict[str, int],
                      seed: int) -> list[PaymentRequest]:
    """One payment per flat: the shapes a month's collections take."""
    rng = random.Random(seed)
    payments = []
    for i, account in enumerate(accounts(flats)):
        owed = june[account] + (may[account] if i % 5 == 0 else 0)
        shape = i % 10
        amount = owed if shape < 6 else owed // 2 if shape < 8 else owed + rng.randrange(1_000, 200_000)
        bill = f"B/25-26/{flats + i + 1:06d}" if shape == 1 else ""  # June's number
        payments.append(PaymentRequest(f"pay:{account}:2025-07", SITE, account,
                                       (Method.TRANSFER, Method.CASH, Method.CHEQUE)[i % 3], amount,
                                       dt.date(2025, 7,
                                               1 + i % 28), "bench", reference=f"UTR{i:09d}", bill=bill))
    return payments


async def ceiling(ledger: SqlDuesLedger, schema_sql: str, since_seq: int) -> float:
    """Seconds to insert the rows the payments wrote into empty copies of the tables, bulk path only."""
    found = {}
    async with ledger._reading() as tx:
        for table, columns in WRITTEN:
            found[table] = [tuple(r) for r in await tx.fetch(
                f"SELECT {', '.join(columns)} FROM {table} WHERE seq > $1", since_seq)]
    await empty_copies(ledger, schema_sql)
    start = time.perf_counter()
    async with ledger._writing(SITE) as tx:
        for table, columns in WRITTEN:
            await tx.insert_many(table.replace("dues_", "bench_"), columns, found[table])
    return time.perf_counter() - start


async def one_run(make_ledger, schema_sql: str, flats: int, chunk: int) -> dict[str, float]:
    ledger = make_ledger()
    await ledger.open()
    try:
        may, may_totals = bills(flats, MAY, 1)
        june, june_totals = bills(flats, JUNE, 2)
        await ledger.issue(may)
        paid_may = [PaymentRequest(f"may:{a}", SITE, a, Method.CASH, t, dt.date(2025, 6, 10), "bench")
                    for i, (a, t) in enumerate(may_totals.items()) if i % 5]
        for at in range(0, len(paid_may), chunk):
            await ledger.pay_many(paid_may[at:at + chunk])
        last = await ledger.issue(june)
        payments = month_of_payments(flats, may_totals, june_totals, 3)
        start, cpu = time.perf_counter(), time.process_time()
        results = []
        for at in range(0, len(payments), chunk):
            results += await ledger.pay_many(payments[at:at + chunk])
        wall, used = time.perf_counter() - start, time.process_time() - cpu
        assert len(results) == flats and not any(r.replayed for r in results)
        allocated = sum(r.summary["allocated_minor"] for r in results)
        raw = await ceiling(ledger, schema_sql, last.seq)
        return {"allocate": wall, "ceiling": raw, "cpu": used, "allocated": allocated,
                "advances": sum(1 for r in results if r.summary["advance_minor"])}
    finally:
        await ledger.close()


def report(name: str, flats: int, runs: list[dict[str, float]]) -> None:
    medians = {k: statistics.median(r[k] for r in runs) for k in ("allocate", "ceiling", "cpu")}
    spread = ", ".join(f"{r['allocate']:.2f}" for r in runs)
    verdict = "met" if medians["allocate"] <= TARGET_S else "MISSED"
    print(f"{name}: {flats:,} payments, {int(runs[0]['advances']):,} leave an advance")
    rate = flats / medians["allocate"]
    print(f"  allocate {medians['allocate']:6.2f} s  (runs {spread}); {rate:,.0f} payments/s "
          f"(target {TARGET_S:.0f} s: {verdict})")
    print(f"  ceiling  {medians['ceiling']:6.2f} s  (the same rows, bulk insert alone); "
          f"allocate / ceiling {medians['allocate'] / medians['ceiling']:.1f}x")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  this process's CPU {medians['cpu']:.2f} s; load average {load}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--flats", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=10_000, help="payments a transaction")
    parser.add_argument("--ledger", action="append", choices=("sqlite", "postgres"))
    args = parser.parse_args(argv)
    print(f"{args.flats:,} flats, one payment each, {args.chunk:,} a transaction; "
          f"medians of {args.repeat} runs")
    with tempfile.TemporaryDirectory(prefix="bench-allocation-") as folder:
        for name, make, schema, _ in backends(args.ledger or ["sqlite", "postgres"], Path(folder)):
            runs = [asyncio.run(one_run(make, schema, args.flats, args.chunk)) for _ in range(args.repeat)]
            report(name, args.flats, runs)


if __name__ == "__main__":
    main()
