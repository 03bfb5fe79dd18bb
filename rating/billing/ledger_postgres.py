"""PostgreSQL dues ledger through asyncpg: the `dues_*` tables in the prepaid
ledger's schema (default `rating`), bulk rows in with COPY.

Every write transaction first takes a transaction-scoped advisory lock of
its site, so two writers of one site (of this process or another) commit
one after the other: the overlap check, the serial allocation and the
cancel-once check see everything committed before them. Writers of other
sites do not wait. Triggers refuse UPDATE and DELETE of the money tables.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator, Sequence

import asyncpg

from rating.billing import ledger_payment_schema as payment_schema
from rating.billing.ledger_staff import SqlStaffLedger
from rating.errors import RatingError
from rating.prepaid.ledger.base import LedgerUnavailable
from rating.prepaid.ledger.postgres import pooled_connection, schema_pool

_APPEND_ONLY = ("dues_ops", "dues_entries", "dues_documents", "dues_cycles", "dues_carried", "dues_rules",
                "dues_audit", *payment_schema.APPEND_ONLY)
SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {s};
SET search_path TO {s};
CREATE TABLE IF NOT EXISTS dues_ops (
    seq bigserial PRIMARY KEY,
    op_key text NOT NULL UNIQUE,
    kind text NOT NULL,
    site_id text NOT NULL,
    actor text NOT NULL,
    payload_sha256 bytea NOT NULL,
    created_us bigint NOT NULL,
    summary text NOT NULL
);
CREATE TABLE IF NOT EXISTS dues_entries (
    seq bigint NOT NULL,
    site_id text NOT NULL,
    account_id text NOT NULL,
    head text NOT NULL,
    kind text NOT NULL,
    amount_minor bigint NOT NULL,
    due_date date NOT NULL,
    ref text NOT NULL,
    note text NOT NULL,
    actor text NOT NULL
);
CREATE INDEX IF NOT EXISTS dues_entries_account ON dues_entries (site_id, account_id, head);
CREATE TABLE IF NOT EXISTS dues_documents (
    number text NOT NULL,
    doc_type text NOT NULL,
    site_id text NOT NULL,
    fy text NOT NULL,
    serial integer NOT NULL,
    account_id text NOT NULL,
    cycle_id text NOT NULL,
    issued_on date NOT NULL,
    due_date date NOT NULL,
    total_minor bigint NOT NULL,
    body text NOT NULL,
    corrects text NOT NULL,
    cancels boolean NOT NULL,
    seq bigint NOT NULL,
    actor text NOT NULL,
    PRIMARY KEY (site_id, number),
    UNIQUE (site_id, doc_type, fy, serial)
);
CREATE INDEX IF NOT EXISTS dues_documents_account ON dues_documents (site_id, account_id, seq);
CREATE INDEX IF NOT EXISTS dues_documents_cycle ON dues_documents (site_id, cycle_id);
CREATE INDEX IF NOT EXISTS dues_documents_notes ON dues_documents (site_id, account_id)
    WHERE doc_type <> 'bill';  -- the notes the next bills carry: few, found without a scan
CREATE UNIQUE INDEX IF NOT EXISTS dues_documents_one_cancel ON dues_documents (site_id, corrects)
    WHERE cancels;
CREATE TABLE IF NOT EXISTS dues_series (
    site_id text NOT NULL,
    doc_type text NOT NULL,
    fy text NOT NULL,
    last_serial integer NOT NULL,
    PRIMARY KEY (site_id, doc_type, fy)
);
CREATE TABLE IF NOT EXISTS dues_cycles (
    site_id text NOT NULL,
    cycle_id text NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (site_id, cycle_id)
);
CREATE TABLE IF NOT EXISTS dues_carried (
    site_id text NOT NULL,
    note_number text NOT NULL,
    bill_number text NOT NULL,
    PRIMARY KEY (site_id, note_number)
);
CREATE TABLE IF NOT EXISTS dues_rules (
    site_id text NOT NULL,
    sha256 text NOT NULL,
    rules text NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (site_id, sha256)
);
CREATE TABLE IF NOT EXISTS dues_audit (
    audit_id bigserial PRIMARY KEY,
    site_id text NOT NULL,
    actor text NOT NULL,
    at_us bigint NOT NULL,
    action text NOT NULL,
    subject text NOT NULL,
    detail text NOT NULL,
    seq bigint NOT NULL
);
""" + payment_schema.tables(payment_schema.POSTGRES_TYPES) + """
CREATE OR REPLACE FUNCTION dues_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;
""" + "".join(
    f"CREATE OR REPLACE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
    "FOR EACH STATEMENT EXECUTE FUNCTION dues_append_only();\n" for t in _APPEND_ONLY)


class _PostgresTx:
    def __init__(self, con: asyncpg.Connection, schema: str):
        self.con, self.schema = con, schema

    async def fetch(self, sql: str, *args: object) -> list[tuple]:
        return [tuple(r) for r in await self.con.fetch(sql, *args)]

    async def execute(self, sql: str, *args: object) -> None:
        await self.con.execute(sql, *args)

    @staticmethod
    def one_of(first: int, values: Sequence[str]) -> tuple[str, list]:
        return f"= ANY(${first}::text[])", [list(values)]

    async def insert_many(self, table: str, columns: Sequence[str], records: list[tuple]) -> None:
        if records:
            await self.con.copy_records_to_table(table, schema_name=self.schema, columns=list(columns),
                                                 records=records)


class PostgresDuesLedger(SqlStaffLedger):
    name = "postgres"

    def __init__(self, dsn: str, *, schema: str = "rating", pool_size: int = 4, timeout_s: float = 300.0):
        if not schema.isidentifier():
            raise ValueError(f"schema {schema!r} must be a plain identifier")
        self.dsn, self.schema, self.pool_size, self.timeout_s = dsn, schema, pool_size, timeout_s
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await schema_pool(self.dsn, self.schema, SCHEMA.format(s=self.schema),
                                       lock_name=b"rating-dues-schema", pool_size=self.pool_size,
                                       command_timeout_s=self.timeout_s)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise LedgerUnavailable("postgres dues ledger is not open")
        async with pooled_connection(self._pool, clean_ends=(asyncpg.PostgresError, RatingError)) as con:
            yield con

    @contextlib.asynccontextmanager
    async def _writing(self, site_id: str) -> AsyncIterator[_PostgresTx]:
        lock_id = zlib.crc32(f"rating-dues:{self.schema}:{site_id}".encode())
        async with self._connection() as con, con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock($1)", lock_id)
            yield _PostgresTx(con, self.schema)

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[_PostgresTx]:
        async with self._connection() as con:
            yield _PostgresTx(con, self.schema)
