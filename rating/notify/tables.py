"""The notification tables on the dues ledger's own connection.

Notifications live in the dues ledger's database so that a cause and its
notice commit in one transaction (a bill and its "bill issued" row). Writes
take the ledger's writer transaction under one lock name of their own
(`notify`), so they never wait on a site's bill run and relays of several
processes write one after the other; PostgreSQL claims with SKIP LOCKED too.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from rating.billing.ledger_sql import SqlDuesLedger, Tx
from rating.notify.schema import statements

_LOCK = "notify"
_scratch = itertools.count()


def placeholders(first: int, count: int) -> str:
    """`$first, ..., $(first + count - 1)`: a list of values in a statement."""
    return ", ".join(f"${first + i}" for i in range(count))


def now_us() -> int:
    return time.time_ns() // 1000


class NotifyTables:
    def __init__(self, ledger: SqlDuesLedger):
        self.ledger = ledger
        self.postgres = ledger.name == "postgres"

    async def create(self) -> None:
        """Create the tables if missing (the ledger is open)."""
        async with self.writing() as tx:
            for statement in statements(self.postgres):
                await tx.execute(statement)

    def writing(self) -> AbstractAsyncContextManager[Tx]:
        return self.ledger._writing(_LOCK)  # the ledger's transaction: same file or server

    def reading(self) -> AbstractAsyncContextManager[Tx]:
        return self.ledger._reading()

    @property
    def skip_locked(self) -> str:
        return " FOR UPDATE SKIP LOCKED" if self.postgres else ""


async def insert_ignore(tx: Tx, columns: Sequence[str], records: list[tuple], *, table: str) -> int:
    """Insert the records that are new by their unique key; how many were."""
    if not records:
        return 0
    con = getattr(tx, "con", None)
    if con is not None:  # PostgreSQL: COPY into a scratch table, then one INSERT of the new ones
        scratch = f"incoming_{next(_scratch)}"
        names = ", ".join(columns)
        await con.execute(f"CREATE TEMP TABLE {scratch} ON COMMIT DROP AS SELECT {names} FROM {table} "
                          "WITH NO DATA")
        await con.copy_records_to_table(scratch, records=records, columns=list(columns))
        status = await con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {scratch} "
                                   "ON CONFLICT DO NOTHING")
        return int(status.rsplit(" ", 1)[1])  # "INSERT 0 <rows>"
    ledger = tx.ledger  # type: ignore[attr-defined]  # SQLite: executemany on the worker thread
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
           "ON CONFLICT DO NOTHING")

    def insert() -> int:
        before = ledger.db.total_changes
        ledger.db.executemany(sql, records)
        return ledger.db.total_changes - before
    return await ledger._run(insert)
