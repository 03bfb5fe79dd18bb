"""The web rows in SQLite: `web.db` beside the ledger file, on a connection of its own.

Not in the ledger file itself: SQLite has one writer per file, and an event
row written beside each payment would wait for the payment's transaction (and
it for the row), halving what the webhook commits per second. Its commits are
not fsynced one by one (`synchronous=NORMAL` in WAL mode:
durable at the next checkpoint). Nothing here is money: an event row lost
to a power cut makes the gateway's retry go to the ledger, which answers
the payment's first result; an order lost so is created again by its key.
"""

from __future__ import annotations

import datetime as dt
import time

from rating.prepaid.ledger.sqlite_file import SqliteFile
from rating.web.settlement import FEE_COLUMNS, LINE_COLUMNS, Payout, classify, fee_rows, line_rows
from rating.web.store import (
    BOOKED_SELECT,
    EVENT_COLUMNS,
    ORDER_COLUMNS,
    TABLES,
    EventRow,
    Order,
    WebStore,
    booked_of,
    captured_key,
    chunks,
    event_of,
    event_values,
    order_of,
    order_values,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_orders (
    order_id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    op_key TEXT NOT NULL,
    account_id TEXT NOT NULL,
    bill TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    reference TEXT NOT NULL,
    created_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS web_events (
    gateway TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    op_key TEXT NOT NULL,
    body_sha256 BLOB NOT NULL,
    status INTEGER NOT NULL,
    answer TEXT NOT NULL,
    received_us INTEGER NOT NULL,
    PRIMARY KEY (gateway, event_id)
);
CREATE INDEX IF NOT EXISTS web_events_key ON web_events (op_key);
CREATE TABLE IF NOT EXISTS web_settlement_lines (
    gateway TEXT NOT NULL,
    settlement_id TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    fee_minor INTEGER NOT NULL,
    tax_minor INTEGER NOT NULL,
    settled_on TEXT NOT NULL,
    imported_us INTEGER NOT NULL,
    PRIMARY KEY (gateway, payment_id)
);
CREATE INDEX IF NOT EXISTS web_settlement_lines_payout ON web_settlement_lines (gateway, settlement_id);
CREATE TABLE IF NOT EXISTS web_fee_expenses (
    gateway TEXT NOT NULL,
    settlement_id TEXT NOT NULL,
    fee_minor INTEGER NOT NULL,
    tax_minor INTEGER NOT NULL,
    booked_on TEXT NOT NULL,
    imported_us INTEGER NOT NULL,
    PRIMARY KEY (gateway, settlement_id)
);
""" + "".join(
    f"CREATE TRIGGER IF NOT EXISTS {t}_no_{verb.lower()} BEFORE {verb} ON {t} "
    f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END;\n"
    for t in TABLES for verb in ("UPDATE", "DELETE"))


class SqliteWebStore(SqliteFile, WebStore):
    name = "sqlite"
    what = "sqlite web store"

    async def open(self) -> None:
        await self._open_file(SCHEMA)
        await self._run(self.db.execute, "PRAGMA synchronous=NORMAL")

    async def close(self) -> None:
        await self._close_file()

    async def _insert_or_first(self, table: str, columns: str, values: tuple, key_sql: str,
                               key: tuple) -> tuple:
        db = self.db

        def insert() -> tuple:
            marks = ", ".join("?" * len(values))
            db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING", values)
            return db.execute(f"SELECT {columns} FROM {table} WHERE {key_sql}", key).fetchone()
        return await self._run(insert)

    async def add_order(self, order: Order) -> Order:
        return order_of(await self._insert_or_first("web_orders", ORDER_COLUMNS, order_values(order),
                                                    "order_id = ?", (order.order_id,)))

    async def order(self, order_id: str) -> Order | None:
        found = await self._run(lambda: self.db.execute(
            f"SELECT {ORDER_COLUMNS} FROM web_orders WHERE order_id = ?", (order_id,)).fetchone())
        return None if found is None else order_of(found)

    async def add_event(self, row: EventRow) -> EventRow:
        return event_of(await self._insert_or_first("web_events", EVENT_COLUMNS, event_values(row),
                                                    "gateway = ? AND event_id = ?",
                                                    (row.gateway, row.event_id)))

    async def event(self, gateway: str, event_id: str) -> EventRow | None:
        found = await self._run(lambda: self.db.execute(
            f"SELECT {EVENT_COLUMNS} FROM web_events WHERE gateway = ? AND event_id = ?",
            (gateway, event_id)).fetchone())
        return None if found is None else event_of(found)

    async def book_payouts(self, payouts: tuple[Payout, ...]) -> tuple[list[Payout], int]:
        db = self.db
        payment_ids = [line.payment_id for p in payouts for line in p.lines]
        settlement_ids = [p.settlement_id for p in payouts]
        gateway = payouts[0].gateway

        def book() -> list[Payout]:
            db.execute("BEGIN IMMEDIATE")
            try:
                found: list[tuple] = []
                for column, ids in (("payment_id", payment_ids), ("settlement_id", settlement_ids)):
                    for chunk in chunks(ids):
                        marks = ", ".join("?" * len(chunk))
                        sql = BOOKED_SELECT.format(gateway="?", column=column, marks=marks)
                        found += db.execute(sql, (gateway, *chunk)).fetchall()
                new = classify(payouts, booked_of(found))
                now_us = time.time_ns() // 1000
                for table, columns, rows in (("web_settlement_lines", LINE_COLUMNS, line_rows(new, now_us)),
                                             ("web_fee_expenses", FEE_COLUMNS, fee_rows(new, now_us))):
                    marks = ", ".join("?" * len(columns))
                    db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                                   [tuple(_text_day(v) for v in r) for r in rows])
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return new
        new = await self._run(book)
        return new, len(payouts) - len(new)

    async def captured_payment_ids(self, gateway: str, payment_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks([captured_key(gateway, p) for p in payment_ids]):
            sql = (f"SELECT op_key FROM web_events WHERE gateway = ? AND status = 200 "
                   f"AND op_key IN ({', '.join('?' * len(chunk))})")
            rows = await self._run(lambda sql=sql, chunk=chunk:
                                   self.db.execute(sql, (gateway, *chunk)).fetchall())
            found |= {r[0] for r in rows}
        return {p for p in payment_ids if captured_key(gateway, p) in found}

    async def counts(self) -> dict[str, int]:
        return {t: (await self._run(lambda t=t: self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()))[0]
                for t in TABLES}


def _text_day(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value
