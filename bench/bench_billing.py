"""Bill 100,000 flats and issue the bills, on both dues ledgers, beside each
ledger's raw insert ceiling measured in the same run.

    .venv/bin/python -m bench.bench_billing [--flats 100000] [--repeat 3] [--ledger sqlite --ledger postgres]

The society: the demo's billing rules (maintenance per m², sinking and
repair funds, parking for a third of the flats, non-occupancy for let-out
ones, electricity and water, 21 % interest and a late fee, GST over the
threshold, rounding to the rupee). Each flat has its month's electricity
and water usage lines (as rating's engine writes them from the register
reads; the engine itself is benchmarked by `rating bench`), and a fifth of
the flats owe an imported April due, so their bills carry arrears, interest
and a late fee. Each repeat starts from a fresh ledger (an SQLite file, a
PostgreSQL schema on a throwaway server): the dues are posted (untimed),
then timed:

- compute: `draft_cycle` (the open dues read from the ledger, every bill drafted);
- issue:   `DuesLedger.issue` (bodies, numbers, documents, entries, audit: one transaction);
- ceiling: the same document and entry rows inserted into empty copies of
  the ledger's tables by its bulk path alone, in one transaction
  (executemany on SQLite, COPY on PostgreSQL).

Prints the medians (wall clock), issue / ceiling, compute + issue against
the 60 s target, this process's CPU seconds and the load average (the
machine is shared: a loaded one stretches the wall clock, not the CPU
time), and the process's peak resident memory against 4 GiB.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import resource
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from rating.billing import ledger_rows
from rating.billing.config import billing_from_mapping
from rating.billing.documents import Occupancy, Unit, UsageLine
from rating.billing.inputs import run_cycle
from rating.billing.ledger import DuesPost, Entry, IssueBatch
from rating.billing.ledger_sql import SqlDuesLedger
from rating.billing.numbering import Numbering
from rating.billing.run import RunInputs, draft_cycle
from rating.cli.demo import BILLING_TOML
from rating.errors import ConfigError
from rating.inputs.textfile import parse_toml
from rating.model.site import Site

TARGET_S = 60.0
MEMORY_TARGET_GIB = 4.0
SITE = Site(name="Bench Towers", currency="INR", minor_unit_exponent=2, time_zone="Asia/Kolkata",
            rounding="half_up")


def society(flats: int, seed: int = 7) -> tuple[RunInputs, DuesPost]:
    """The run's inputs and the April dues of a fifth of the flats."""
    rules = BILLING_TOML.replace("@GROUPS@", '"COMMON"')
    billing = billing_from_mapping(parse_toml(rules, where="billing.toml", error=ConfigError),
                                   where="billing.toml", site=SITE)
    cycle = run_cycle(SITE.name, "2025-05", billing)
    rng = random.Random(seed)
    units, usage, dues = [], {}, []
    for i in range(flats):
        account = f"T{i // 1000:03d}-{i % 1000:04d}"
        units.append(Unit(account, owner=f"Owner {i}", area=Decimal(rng.randrange(4_000, 22_000)) / 100,
                          occupancy=Occupancy.LET_OUT if i % 10 == 3 else Occupancy.OWNER,
                          meters=((f"E{i}", "RES-LT1"), (f"W{i}", "WATER-DOM")),
                          counts=(("parking_slots", 1),) if i % 3 == 0 else ()))
        kwh, kl = rng.randrange(80_000, 400_000), rng.randrange(8_000, 30_000)
        usage[account] = (
            UsageLine(f"E{i}", "RES-LT1", "energy", cycle.period_start, cycle.period_end,
                      Decimal(kwh) / 1000, kwh * 7 // 10),
            UsageLine(f"W{i}", "WATER-DOM", "energy", cycle.period_start, cycle.period_end,
                      Decimal(kl) / 1000, kl * 2 // 10))
        if i % 5 == 0:
            dues.append(Entry(account, "maintenance", "charge", rng.randrange(100_000, 900_000),
                              dt.date(2025, 4, 15), f"APR-{i}", "April, before rating"))
    inputs = RunInputs(cycle, billing, Numbering(), units, usage, rules_text=rules)
    return inputs, DuesPost("import:april", "import", SITE.name, "bench", tuple(dues), "april dues")


def issue_batch(inputs: RunInputs, drafts) -> IssueBatch:
    run = inputs.run
    return IssueBatch(inputs.key, run.site_id, run.cycle_id, run.period_start, run.period_end, run.bill_date,
                      drafts, inputs.numbering, "bench", inputs.rules_text)


async def empty_copies(ledger: SqlDuesLedger, schema_sql: str) -> None:
    """Empty copies of the dues tables and indexes (dues_x as bench_x), without the
    append-only triggers, which cost nothing on INSERT."""
    tables = schema_sql.split("CREATE OR REPLACE FUNCTION")[0].split("CREATE TRIGGER")[0]
    async with ledger._writing("bench-schema") as tx:
        for statement in tables.replace("dues_", "bench_").split(";"):
            if statement.strip():
                await tx.execute(statement)


async def ceiling(ledger: SqlDuesLedger, schema_sql: str, batch: IssueBatch) -> float:
    """Seconds to insert the issue's rows into empty copies of the tables, bulk path only."""
    fy = batch.numbering.financial_year(batch.bill_date)
    docs, entries = ledger_rows.bill_rows(batch, ledger_rows.prepare_issue(batch), fy, 1, 0,
                                          date_value=ledger._date_value)
    await empty_copies(ledger, schema_sql)
    start = time.perf_counter()
    async with ledger._writing(batch.site_id) as tx:
        await tx.insert_many("bench_documents", ledger_rows.DOC_COLUMNS, docs)
        await tx.insert_many("bench_entries", ledger_rows.ENTRY_COLUMNS, entries)
    return time.perf_counter() - start


async def one_run(make_ledger, schema_sql: str, inputs: RunInputs, dues: DuesPost) -> dict[str, float]:
    ledger = make_ledger()
    await ledger.open()
    try:
        await ledger.post(dues)
        start, cpu = time.perf_counter(), time.process_time()
        drafts = await draft_cycle(ledger, inputs)
        compute, compute_cpu = time.perf_counter() - start, time.process_time() - cpu
        batch = issue_batch(inputs, drafts)
        start, cpu = time.perf_counter(), time.process_time()
        result = await ledger.issue(batch)
        issue, issue_cpu = time.perf_counter() - start, time.process_time() - cpu
        assert result.summary["bills"] == len(inputs.units) and not result.replayed
        raw = await ceiling(ledger, schema_sql, batch)
        return {"compute": compute, "issue": issue, "ceiling": raw, "entries": result.summary["entries"],
                "compute cpu": compute_cpu, "issue cpu": issue_cpu}
    finally:
        await ledger.close()


def backends(names: list[str], folder: Path):
    """(name, factory of a fresh ledger per call, schema text, cleanup)."""
    from rating.billing import ledger_postgres, ledger_sqlite

    counter = iter(range(1_000_000))
    if "sqlite" in names:
        yield ("sqlite", lambda: ledger_sqlite.SqliteDuesLedger(folder / f"ledger{next(counter)}.db"),
               ledger_sqlite.SCHEMA, None)
    if "postgres" in names:
        from tests.servers import PostgresServer, postgres_bin

        if postgres_bin() is None:
            print("postgres skipped: PostgreSQL binaries not found")
            return
        server = PostgresServer().start()
        try:
            schema = ledger_postgres.SCHEMA.split("\n", 3)[3]  # the tables, in the search path's schema
            yield ("postgres", lambda: ledger_postgres.PostgresDuesLedger(
                server.dsn, schema=f"bench{next(counter)}"), schema, server)
        finally:
            server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--flats", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ledger", action="append", choices=("sqlite", "postgres"))
    args = parser.parse_args(argv)
    inputs, dues = society(args.flats)
    print(f"{args.flats:,} flats, {len(dues.entries):,} with April dues; medians of {args.repeat} runs")
    with tempfile.TemporaryDirectory(prefix="bench-billing-") as folder:
        for name, make, schema, _ in backends(args.ledger or ["sqlite", "postgres"], Path(folder)):
            runs = [asyncio.run(one_run(make, schema, inputs, dues)) for _ in range(args.repeat)]
            report(name, runs)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)
    verdict = "met" if peak_gib <= MEMORY_TARGET_GIB else "MISSED"
    print(f"peak resident memory {peak_gib:.2f} GiB (target {MEMORY_TARGET_GIB:.0f} GiB: {verdict})")


def report(name: str, runs: list[dict[str, float]]) -> None:
    medians = {k: statistics.median(r[k] for r in runs) for k in ("compute", "issue", "ceiling")}
    entries = int(runs[0]["entries"])
    print(f"{name}: {entries:,} entries a run")
    for label, median in medians.items():
        spread = ", ".join(f"{r[label]:.2f}" for r in runs)
        print(f"  {label:<8} {median:6.2f} s  (runs {spread})")
    whole = medians["compute"] + medians["issue"]
    verdict = "met" if whole <= TARGET_S else "MISSED"
    print(f"  issue / ceiling {medians['issue'] / medians['ceiling']:.1f}x; compute + issue {whole:.2f} s "
          f"(target {TARGET_S:.0f} s: {verdict})")
    cpu = {k: statistics.median(r[k] for r in runs) for k in ("compute cpu", "issue cpu")}
    print(f"  this process's CPU: compute {cpu['compute cpu']:.2f} s, issue {cpu['issue cpu']:.2f} s "
          f"(with SQLite's thread; without the PostgreSQL server's); load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
