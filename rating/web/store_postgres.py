"""The web rows in the PostgreSQL ledger's schema, through asyncpg."""

from __future__ import annotations

import time
import zlib

import asyncpg

from rating.prepaid.ledger.base import LedgerUnavailable
from rating.prepaid.ledger.postgres import CONNECTION_LOST, schema_pool
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
    event_of,
    event_values,
    order_of,
    order_values,
)

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {s};
SET search_path TO {s};
CREATE TABLE IF NOT EXISTS web_orders (
    order_id text PRIMARY KEY,
    site_id text NOT NULL,
    op_key text NOT NULL,
    account_id text NOT NULL,
    bill text NOT NULL,
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    reference text NOT NULL,
    created_us bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS web_events (
    gateway text NOT NULL,
    event_id text NOT NULL,
    kind text NOT NULL,
    op_key text NOT NULL,
    body_sha256 bytea NOT NULL,
    status integer NOT NULL,
    answer text NOT NULL,
    received_us bigint NOT NULL,
    PRIMARY KEY (gateway, event_id)
);
CREATE INDEX IF NOT EXISTS web_events_key ON web_events (op_key);
CREATE TABLE IF NOT EXISTS web_settlement_lines (
    gateway text NOT NULL,
    settlement_id text NOT NULL,
    payment_id text NOT NULL,
    amount_minor bigint NOT NULL,
    fee_minor bigint NOT NULL,
    tax_minor bigint NOT NULL,
    settled_on date NOT NULL,
    imported_us bigint NOT NULL,
    PRIMARY KEY (gateway, payment_id)
);
CREATE INDEX IF NOT EXISTS web_settlement_lines_payout ON web_settlement_lines (gateway, settlement_id);
CREATE TABLE IF NOT EXISTS web_fee_expenses (
    gateway text NOT NULL,
    settlement_id text NOT NULL,
    fee_minor bigint NOT NULL,
    tax_minor bigint NOT NULL,
    booked_on date NOT NULL,
    imported_us bigint NOT NULL,
    PRIMARY KEY (gateway, settlement_id)
);
CREATE OR REPLACE FUNCTION web_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;
""" + "".join(
    f"CREATE OR REPLACE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
    "FOR EACH STATEMENT EXECUTE FUNCTION web_append_only();\n" for t in TABLES)


def _marks(count: int) -> str:
    return ", ".join(f"${i}" for i in range(1, count + 1))


class PostgresWebStore(WebStore):
    name = "postgres"

    def __init__(self, dsn: str, *, schema: str = "rating", pool_size: int = 4) -> None:
        if not schema.isidentifier():
            raise ValueError(f"schema {schema!r} must be a plain identifier")
        self.dsn, self.schema, self.pool_size = dsn, schema, pool_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await schema_pool(self.dsn, self.schema, SCHEMA.format(s=self.schema),
                                       lock_name=b"rating-web-schema", pool_size=self.pool_size)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _fetchrow(self, sql: str, *args: object):
        if self._pool is None:
            raise LedgerUnavailable("postgres web store is not open")
        try:
            return await self._pool.fetchrow(sql, *args)
        except CONNECTION_LOST as exc:
            raise LedgerUnavailable(f"postgres: {exc}") from exc

    async def _insert_or_first(self, table: str, columns: str, values: tuple, key_sql: str,
                               key_count: int) -> tuple:
        found = await self._fetchrow(f"INSERT INTO {table} ({columns}) VALUES ({_marks(len(values))}) "
                                     f"ON CONFLICT DO NOTHING RETURNING {columns}", *values)
        if found is None:  # stored before (the key columns come first)
            found = await self._fetchrow(f"SELECT {columns} FROM {table} WHERE {key_sql}",
                                         *values[:key_count])
        return tuple(found)

    async def add_order(self, order: Order) -> Order:
        return order_of(await self._insert_or_first("web_orders", ORDER_COLUMNS, order_values(order),
                                                    "order_id = $1", 1))

    async def order(self, order_id: str) -> Order | None:
        found = await self._fetchrow(f"SELECT {ORDER_COLUMNS} FROM web_orders WHERE order_id = $1", order_id)
        return None if found is None else order_of(tuple(found))

    async def add_event(self, row: EventRow) -> EventRow:
        return event_of(await self._insert_or_first("web_events", EVENT_COLUMNS, event_values(row),
                                                    "gateway = $1 AND event_id = $2", 2))

    async def event(self, gateway: str, event_id: str) -> EventRow | None:
        found = await self._fetchrow(f"SELECT {EVENT_COLUMNS} FROM web_events WHERE gateway = $1 "
                                     "AND event_id = $2", gateway, event_id)
        return None if found is None else event_of(tuple(found))

    async def book_payouts(self, payouts: tuple[Payout, ...]) -> tuple[list[Payout], int]:
        if self._pool is None:
            raise LedgerUnavailable("postgres web store is not open")
        gateway = payouts[0].gateway
        payment_ids = [line.payment_id for p in payouts for line in p.lines]
        try:
            async with self._pool.acquire() as con, con.transaction():
                # one import at a time per gateway: two of one report must not both book it
                lock_id = zlib.crc32(f"rating-web:{gateway}".encode())
                await con.execute("SELECT pg_advisory_xact_lock($1)", lock_id)
                found = []
                settlement_ids = [p.settlement_id for p in payouts]
                for column, ids in (("payment_id", payment_ids), ("settlement_id", settlement_ids)):
                    sql = BOOKED_SELECT.format(gateway="$1", column=column, marks="SELECT unnest($2::text[])")
                    found += [tuple(r) for r in await con.fetch(sql, gateway, ids)]
                new = classify(payouts, booked_of(found))
                now_us = time.time_ns() // 1000
                await con.copy_records_to_table("web_settlement_lines", schema_name=self.schema,
                                                columns=list(LINE_COLUMNS), records=line_rows(new, now_us))
                await con.copy_records_to_table("web_fee_expenses", schema_name=self.schema,
                                                columns=list(FEE_COLUMNS), records=fee_rows(new, now_us))
        except CONNECTION_LOST as exc:
            raise LedgerUnavailable(f"postgres: {exc}") from exc
        return new, len(payouts) - len(new)

    async def captured_payment_ids(self, gateway: str, payment_ids: list[str]) -> set[str]:
        if self._pool is None:
            raise LedgerUnavailable("postgres web store is not open")
        keys = [captured_key(gateway, p) for p in payment_ids]
        rows = await self._pool.fetch("SELECT op_key FROM web_events WHERE gateway = $1 AND status = 200 "
                                      "AND op_key = ANY($2::text[])", gateway, keys)
        found = {r[0] for r in rows}
        return {p for p in payment_ids if captured_key(gateway, p) in found}

    async def counts(self) -> dict[str, int]:
        return {t: (await self._fetchrow(f"SELECT COUNT(*) FROM {t}"))[0] for t in TABLES}
