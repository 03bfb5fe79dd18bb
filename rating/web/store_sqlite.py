"""The web rows in the SQLite ledger file (its own connection, as the dues ledger has).

Its commits are not fsynced one by one (`synchronous=NORMAL` in WAL mode:
durable at the next checkpoint). Nothing here is money: an event row lost
to a power cut makes the gateway's retry go to the ledger, which answers
the payment's first result; an order lost so is created again by its key.
"""

from __future__ import annotations

from rating.prepaid.ledger.sqlite_file import SqliteFile
from rating.web.store import (
    EVENT_COLUMNS,
    ORDER_COLUMNS,
    TABLES,
    EventRow,
    Order,
    WebStore,
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

    async def counts(self) -> dict[str, int]:
        return {t: (await self._run(lambda t=t: self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()))[0]
                for t in TABLES}
