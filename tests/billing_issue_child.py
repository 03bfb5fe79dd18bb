"""A child process that issues a synthetic cycle, for tests/test_billing_crash.py:

    python -m tests.billing_issue_child sqlite PATH FLATS [--pause]
    python -m tests.billing_issue_child postgres DSN SCHEMA FLATS [--pause]

With --pause it stops in the middle of the issue's transaction (the bills'
documents are written, their entries not yet, nothing is committed), says
so on stdout and waits on stdin, so the test can kill it there.
"""

from __future__ import annotations

import asyncio
import sys

from rating.billing.ledger_sql import SqlDuesLedger
from tests.billing_drafts import MAY, batch, draft


def flats(n: int) -> list:
    return [draft(f"F{i:06d}", MAY, water=1_000 + i) for i in range(n)]


def pause_before_entries(ledger: SqlDuesLedger) -> None:
    """Wrap the ledger's transactions so the first entries insert waits for stdin."""
    writing = ledger._writing

    def paused(site_id: str):
        context = writing(site_id)

        class Paused:
            async def __aenter__(self):
                tx = await context.__aenter__()
                insert_many = tx.insert_many

                async def insert(table, columns, records):
                    if table == "dues_entries":
                        print("in transaction", flush=True)
                        sys.stdin.readline()
                    await insert_many(table, columns, records)
                tx.insert_many = insert
                return tx

            async def __aexit__(self, *exc):
                return await context.__aexit__(*exc)
        return Paused()
    ledger._writing = paused  # type: ignore[method-assign]


async def main(argv: list[str]) -> None:
    from rating.billing.ledger_postgres import PostgresDuesLedger
    from rating.billing.ledger_sqlite import SqliteDuesLedger

    pause = "--pause" in argv
    argv = [a for a in argv if a != "--pause"]
    if argv[0] == "sqlite":
        ledger: SqlDuesLedger = SqliteDuesLedger(argv[1])
        n = int(argv[2])
    else:
        ledger = PostgresDuesLedger(argv[1], schema=argv[2])
        n = int(argv[3])
    await ledger.open()
    if pause:
        pause_before_entries(ledger)
    result = await ledger.issue(batch(flats(n)))
    await ledger.close()
    print("done", result.summary["bills"], result.replayed, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
