"""SQLite dues ledger: the `dues_*` tables in the prepaid ledger's file.

The connection is held as the prepaid ledger holds its own
(rating.prepaid.ledger.sqlite_file: WAL, `synchronous=FULL`, one worker thread). A write
is one `BEGIN IMMEDIATE` transaction: SQLite's one writer at a time is the
site's writer lock. Triggers refuse any UPDATE or
DELETE of the money tables: the ledger is append-only in the file itself.
Dates are stored as ISO 8601 text, which sorts and compares as dates.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator, Sequence

from rating.billing import ledger_payment_schema as payment_schema
from rating.billing.ledger_staff import SqlStaffLedger
from rating.prepaid.ledger.sqlite_file import SqliteFile

_APPEND_ONLY = ("dues_ops", "dues_entries", "dues_documents", "dues_cycles", "dues_carried", "dues_rules",
                "dues_audit", *payment_schema.APPEND_ONLY)
SCHEMA = """
CREATE TABLE IF NOT EXISTS dues_ops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    site_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    payload_sha256 BLOB NOT NULL,
    created_us INTEGER NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dues_entries (
    seq INTEGER NOT NULL,
    site_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    head TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    due_date TEXT NOT NULL,
    ref TEXT NOT NULL,
    note TEXT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dues_entries_account ON dues_entries (site_id, account_id, head);
CREATE TABLE IF NOT EXISTS dues_documents (
    number TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    site_id TEXT NOT NULL,
    fy TEXT NOT NULL,
    serial INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    cycle_id TEXT NOT NULL,
    issued_on TEXT NOT NULL,
    due_date TEXT NOT NULL,
    total_minor INTEGER NOT NULL,
    body TEXT NOT NULL,
    corrects TEXT NOT NULL,
    cancels INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (site_id, number),
    UNIQUE (site_id, doc_type, fy, serial)
);
CREATE INDEX IF NOT EXISTS dues_documents_account ON dues_documents (site_id, account_id, seq);
CREATE INDEX IF NOT EXISTS dues_documents_cycle ON dues_documents (site_id, cycle_id);
CREATE INDEX IF NOT EXISTS dues_documents_notes ON dues_documents (site_id, account_id)
    WHERE doc_type <> 'bill';  -- the notes the next bills carry: few, found without a scan
CREATE UNIQUE INDEX IF NOT EXISTS dues_documents_one_cancel ON dues_documents (site_id, corrects)
    WHERE cancels = 1;
CREATE INDEX IF NOT EXISTS dues_documents_corrects ON dues_documents (site_id, corrects);
    -- "is this bill cancelled" (`AND cancels`) cannot use the partial index above: SQLite
    -- matches only `cancels = 1`; without this, each payment naming a bill scanned every document
CREATE TABLE IF NOT EXISTS dues_series (
    site_id TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    fy TEXT NOT NULL,
    last_serial INTEGER NOT NULL,
    PRIMARY KEY (site_id, doc_type, fy)
);
CREATE TABLE IF NOT EXISTS dues_cycles (
    site_id TEXT NOT NULL,
    cycle_id TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (site_id, cycle_id)
);
CREATE TABLE IF NOT EXISTS dues_carried (
    site_id TEXT NOT NULL,
    note_number TEXT NOT NULL,
    bill_number TEXT NOT NULL,
    PRIMARY KEY (site_id, note_number)
);
CREATE TABLE IF NOT EXISTS dues_rules (
    site_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    rules TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (site_id, sha256)
);
CREATE TABLE IF NOT EXISTS dues_audit (
    audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    seq INTEGER NOT NULL
);
""" + payment_schema.tables(payment_schema.SQLITE_TYPES) + "".join(
    f"CREATE TRIGGER IF NOT EXISTS {t}_no_{verb.lower()} BEFORE {verb} ON {t} "
    f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END;\n"
    for t in _APPEND_ONLY for verb in ("UPDATE", "DELETE"))
_PLACEHOLDER = re.compile(r"\$(\d+)")


def _qmarks(sql: str) -> str:
    """`$1, $2, ...` (in order of appearance) as SQLite's `?`."""
    found = [int(n) for n in _PLACEHOLDER.findall(sql)]
    assert found == list(range(1, len(found) + 1)), sql  # each parameter once, in order
    return _PLACEHOLDER.sub("?", sql)


def _sqlite_value(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value


class _SqliteTx:
    def __init__(self, ledger: SqliteDuesLedger):
        self.ledger = ledger

    async def fetch(self, sql: str, *args: object) -> list[tuple]:
        db = self.ledger.db
        values = [_sqlite_value(a) for a in args]
        return await self.ledger._run(lambda: db.execute(_qmarks(sql), values).fetchall())

    async def execute(self, sql: str, *args: object) -> None:
        await self.fetch(sql, *args)

    @staticmethod
    def one_of(first: int, values: Sequence[str]) -> tuple[str, list]:
        return f"IN ({', '.join(f'${n}' for n in range(first, first + len(values)))})", list(values)

    async def insert_many(self, table: str, columns: Sequence[str], records: list[tuple]) -> None:
        if not records:
            return
        dates = [i for i, v in enumerate(records[0]) if isinstance(v, dt.date)]
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        db = self.ledger.db

        def insert() -> None:
            if dates:  # a cycle's bills share a few dates: each converted once
                texts: dict[dt.date, str] = {}
                converted = []
                for record in records:
                    row = list(record)
                    for i in dates:
                        text = texts.get(row[i])
                        if text is None:
                            text = texts[row[i]] = row[i].isoformat()
                        row[i] = text
                    converted.append(row)
                db.executemany(sql, converted)
            else:
                db.executemany(sql, records)
        await self.ledger._run(insert)


class SqliteDuesLedger(SqliteFile, SqlStaffLedger):
    name = "sqlite"
    what = "sqlite dues ledger"

    _date_value = staticmethod(dt.date.isoformat)  # type: ignore[assignment]

    async def open(self) -> None:
        # One connection serves every caller: a transaction holds it to its end, so two
        # callers never interleave statements in one transaction (concurrent webhooks,
        # gRPC calls), and no read sees another's uncommitted rows.
        self._turn = asyncio.Lock()
        self._holder: asyncio.Task | None = None
        await self._open_file(SCHEMA)

    async def close(self) -> None:
        await self._close_file()

    @contextlib.asynccontextmanager
    async def _connection_turn(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if self._holder is task:  # a read inside the task's own write
            yield
            return
        async with self._turn:
            self._holder = task
            try:
                yield
            finally:
                self._holder = None

    @contextlib.asynccontextmanager
    async def _writing(self, site_id: str) -> AsyncIterator[_SqliteTx]:
        async with self._connection_turn():
            try:  # a call cancelled while its BEGIN runs on the thread rolls back too, once BEGIN is done
                await self._run(self.db.execute, "BEGIN IMMEDIATE")
                yield _SqliteTx(self)
            except BaseException:
                await self._run(self._rollback)
                raise
            # Shielded: a caller cancelled while its COMMIT waits for the thread would leave the
            # transaction open for the next caller's BEGIN; its work is done, so it commits.
            await asyncio.shield(self._run(self._commit))

    def _commit(self) -> None:
        try:
            self.db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[_SqliteTx]:
        async with self._connection_turn():
            yield _SqliteTx(self)
