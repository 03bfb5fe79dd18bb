"""PostgreSQL ledger through asyncpg: entries and events go in with COPY.

Every write transaction first takes one transaction-scoped advisory lock, so
writers (of this process or another) commit one after the other: sequences
and event ids are drawn inside the lock and therefore increase in commit
order, which is what makes `events_after(cursor)` miss nothing. Tables live
in their own schema (default `rating`).

Entries carry only a BRIN index on the sequence, to keep COPY fast: an index
by wallet cost more PostgreSQL time than the rest of a batch's commit. A
wallet's balance is instead `wallet_sums` (the sums of every entry up to the
sequence in `wallet_sums_mark`) plus its entries after that mark, read in one
statement, so one snapshot sees both. `maintain` folds the entries past the
mark into the sums now and then (FOLD_ENTRIES_MIN), in one transaction that
moves the mark with them; it takes no writer lock, so commits go on meanwhile.

The balance limit (rating.prepaid.ledger.base.Headroom) bounds every balance by
the largest |sum| at the mark plus the absolute amounts committed past it:
read at open, grown by each commit, brought down by each fold.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import numpy as np

from rating.prepaid.ledger.base import (
    BalanceOutOfRange,
    Headroom,
    Ledger,
    LedgerBusy,
    LedgerUnavailable,
    LimitExceeded,
    NewOp,
    OpRow,
    Settlement,
    abs_total_minor,
    check_range,
    wallet_changes,
)
from rating.prepaid.records import Entries, Event
from rating.prepaid.wallets import EventType

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE SEQUENCE IF NOT EXISTS {s}.op_seq;
CREATE TABLE IF NOT EXISTS {s}.ops (
    seq bigint PRIMARY KEY,
    op_key text NOT NULL UNIQUE,
    kind text NOT NULL,
    payload_sha256 bytea NOT NULL,
    created_us bigint NOT NULL,
    applied boolean NOT NULL DEFAULT false,
    request bytea NOT NULL,
    meter_state bytea,
    result bytea
);
ALTER TABLE {s}.ops ALTER COLUMN meter_state SET STORAGE EXTERNAL;
ALTER TABLE {s}.ops ALTER COLUMN result SET STORAGE EXTERNAL;
CREATE INDEX IF NOT EXISTS ops_pending ON {s}.ops (seq) WHERE NOT applied;
CREATE TABLE IF NOT EXISTS {s}.entries (
    seq bigint NOT NULL,
    account_id text NOT NULL,
    wallet text NOT NULL,
    amount_minor bigint NOT NULL
);
DROP INDEX IF EXISTS {s}.entries_wallet;
CREATE INDEX IF NOT EXISTS entries_seq ON {s}.entries USING brin (seq);
CREATE TABLE IF NOT EXISTS {s}.wallet_sums (
    account_id text NOT NULL,
    wallet text NOT NULL,
    balance_minor bigint NOT NULL,
    PRIMARY KEY (account_id, wallet)
) WITH (fillfactor = 50);
CREATE TABLE IF NOT EXISTS {s}.wallet_sums_mark (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq bigint NOT NULL
);
INSERT INTO {s}.wallet_sums_mark (seq) VALUES (0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS {s}.events (
    event_id bigserial PRIMARY KEY,
    seq bigint NOT NULL,
    type smallint NOT NULL,
    account_id text NOT NULL,
    wallet text NOT NULL,
    balance_minor bigint NOT NULL,
    at_us bigint NOT NULL,
    cause text NOT NULL
);
ALTER TABLE {s}.events ADD COLUMN IF NOT EXISTS level_minor bigint NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS events_wallet ON {s}.events (account_id, wallet, event_id);
CREATE TABLE IF NOT EXISTS {s}.checkpoints (seq bigint PRIMARY KEY, state bytea NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.anomaly_pages (
    seq bigint NOT NULL,
    page integer NOT NULL,
    rows bytea NOT NULL,
    PRIMARY KEY (seq, page)
);
ALTER TABLE {s}.anomaly_pages ALTER COLUMN rows SET STORAGE EXTERNAL;
CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO {s}.meta (key, value) VALUES ('epoch', md5(random()::text || clock_timestamp()::text))
    ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS {s}.configs (
    version bigserial PRIMARY KEY,
    docs bytea NOT NULL,
    created_us bigint NOT NULL
);
"""
_OP_COLUMNS = "seq, op_key, kind, payload_sha256, created_us, applied, result, request"
# Fold once this many entries lie past the mark: each fold upserts every wallet they touch,
# so a wallet should have several entries by then; a balance read scans at most about this many.
FOLD_ENTRIES_MIN = 1_000_000
FOLD_AFTER_S = 600.0  # and at least this often while any entry waits
# Connection loss. InternalClientError included: when PostgreSQL dies, an idle pooled
# connection may take in the server's last error report before it sees the socket close,
# and the next statement on it then fails with "cannot switch to state ...; another
# operation is in progress"; it is a lost connection like the others.
CONNECTION_LOST = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
         asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, asyncpg.AdminShutdownError,
         asyncpg.CrashShutdownError, asyncpg.InternalClientError)
# What an operation may end with and leave its connection fit for the next one: the
# server's own refusal (the transaction was rolled back) and the ledger's limits.
_CLEAN_ENDS = (asyncpg.PostgresError, LimitExceeded, BalanceOutOfRange)


async def schema_pool(dsn: str, schema: str, schema_sql: str, *, lock_name: bytes, pool_size: int,
                      command_timeout_s: float | None = None) -> asyncpg.Pool:
    """A pool whose connections work in `schema`, after creating its tables once:
    one creation at a time under an advisory lock (CREATE ... IF NOT EXISTS races
    with itself); a lost server is LedgerUnavailable."""
    try:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size, timeout=30,
                                         command_timeout=command_timeout_s,
                                         server_settings={"search_path": schema})
        async with pool.acquire() as con, con.transaction():
            await con.execute(f"SELECT pg_advisory_xact_lock({zlib.crc32(lock_name)})")
            await con.execute(schema_sql)
    except CONNECTION_LOST as exc:
        raise LedgerUnavailable(f"postgres: {exc}") from exc
    return pool


@contextlib.asynccontextmanager
async def pooled_connection(pool: asyncpg.Pool, *, clean_ends: tuple[type[BaseException], ...]
                            ) -> AsyncIterator[asyncpg.Connection]:
    """A connection of `pool` for one operation (the prepaid and the dues ledger
    both take theirs so). An operation that ends other than by `clean_ends` was
    broken off (connection lost, timeout, cancelled): the protocol may still be
    inside it, so that connection never serves another one and the pool opens a
    fresh one. Connection loss is LedgerUnavailable."""
    try:
        async with pool.acquire() as con:
            try:
                yield con
            except clean_ends:
                raise
            except BaseException:
                con.terminate()
                raise
    except CONNECTION_LOST as exc:
        raise LedgerUnavailable(f"postgres: {exc}") from exc


async def _keep_session(con) -> None:
    """The pool's reset between uses: nothing to do, since the ledger leaves no
    session state behind (its advisory locks are transaction-scoped; no
    LISTEN, no SET). asyncpg still rolls back an open transaction first;
    skipping its reset query saves a round trip per call."""


def _row(r) -> OpRow:
    return OpRow(r["seq"], r["op_key"], r["kind"], bytes(r["payload_sha256"]), r["created_us"],
                 r["applied"], None if r["result"] is None else bytes(r["result"]), bytes(r["request"]))


class PostgresLedger(Ledger):
    name = "postgres"

    def __init__(self, dsn: str, *, schema: str = "rating", pool_size: int = 4, timeout_s: float = 30.0):
        if not schema.isidentifier():
            raise ValueError(f"schema {schema!r} must be a plain identifier")
        self.dsn, self.schema, self.pool_size, self.timeout_s = dsn, schema, pool_size, timeout_s
        self._pool: asyncpg.Pool | None = None
        self._lock_id = zlib.crc32(f"rating-ledger:{schema}".encode())  # one writer lock per schema
        self._owner_lock_id = zlib.crc32(f"rating-owner:{schema}".encode())  # Ledger.claim
        self._owner: asyncpg.Connection | None = None  # holds the claim for as long as it is open
        self._owner_name = ""  # set once claimed: a claim lost with its connection is taken again
        self._reclaiming = asyncio.Lock()  # one call takes a lost claim again; the others wait for it
        self._unfolded: int | None = None  # entries committed past the mark (None: unknown, fold first)
        self._folded_at = time.monotonic()
        self._headroom = Headroom()
        self._sums_abs_max = 0  # a bound on |wallet_sums.balance_minor|, part of the headroom
        # awaited in each settle's transaction that records events, with the connection and the
        # sequences whose events it recorded
        self.settle_hooks: tuple[Callable[[asyncpg.Connection, list[int]], Awaitable[None]], ...] = ()

    def _t(self, table: str) -> str:
        return f"{self.schema}.{table}"

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size,
                                                   command_timeout=self.timeout_s, timeout=self.timeout_s,
                                                   reset=_keep_session)
            async with self._pool.acquire() as con:
                async with self._writing(con):
                    await con.execute(SCHEMA.format(s=self.schema))
                sums_max, moved = await con.fetchrow(
                    f"SELECT (SELECT COALESCE(MAX(ABS(balance_minor)), 0) FROM {self._t('wallet_sums')}), "
                    f"(SELECT COALESCE(SUM(ABS(amount_minor)), 0) FROM {self._t('entries')} "
                    f"WHERE seq > (SELECT seq FROM {self._t('wallet_sums_mark')}))")
                self._sums_abs_max = int(sums_max)
                self._headroom = Headroom(int(sums_max) + int(moved))
        except CONNECTION_LOST as exc:
            raise LedgerUnavailable(f"postgres: {exc}") from exc

    async def close(self) -> None:
        self._owner_name = ""
        if self._owner is not None:
            await self._owner.close()  # lets go of the claim
            self._owner = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def claim(self, owner: str, *, wait_s: float = 5.0) -> None:
        """A session advisory lock on a connection of its own: PostgreSQL
        releases it when the connection closes, also when its process dies."""
        try:
            con = await asyncpg.connect(self.dsn, timeout=self.timeout_s,
                                        server_settings={"application_name": owner[:63]})
        except CONNECTION_LOST as exc:
            raise LedgerUnavailable(f"postgres: {exc}") from exc
        try:
            deadline = time.monotonic() + wait_s
            while not await con.fetchval("SELECT pg_try_advisory_lock($1)", self._owner_lock_id):
                if time.monotonic() >= deadline:
                    raise LedgerBusy(f"postgres schema {self.schema!r} is held by "
                                     f"{await self._holder(con)}")
                await asyncio.sleep(0.2)
        except BaseException:
            await con.close()
            raise
        self._owner, self._owner_name = con, owner

    async def _keep_claim(self) -> None:
        """Take the claim again if its connection was lost (PostgreSQL restarted):
        at once, or refuse the call if another process holds the ledger now."""
        if not self._owner_name or (self._owner is not None and not self._owner.is_closed()):
            return
        async with self._reclaiming:
            if self._owner is not None and not self._owner.is_closed():
                return  # another call took it again meanwhile
            self._owner = None
            try:
                await self.claim(self._owner_name, wait_s=0)
            except LedgerBusy as exc:
                raise LedgerUnavailable(f"this process lost its claim on the ledger: {exc}") from None

    async def _holder(self, con) -> str:
        r = await con.fetchrow(
            "SELECT a.application_name, a.client_addr::text AS addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = 0 AND l.objid = $1::bigint::oid AND l.objsubid = 1", self._owner_lock_id)
        if r is None:
            return "another process"
        return (f"{r['application_name'] or 'another process'} (from {r['addr'] or 'a local socket'}, "
                f"connected {r['backend_start']:%Y-%m-%d %H:%M:%S %Z})")

    @contextlib.asynccontextmanager
    async def _writing(self, con):
        """A write transaction holding the writer lock: BEGIN and the lock in
        one round trip, COMMIT on success, ROLLBACK on any error."""
        await con.execute(f"BEGIN; SELECT pg_advisory_xact_lock({self._lock_id})")
        try:
            yield
        except BaseException:
            if not con.is_closed():
                with contextlib.suppress(Exception):  # else the pool's release rolls back
                    await con.execute("ROLLBACK")
            raise
        await con.execute("COMMIT")

    async def _call(self, fn, *args):
        if self._pool is None:
            raise LedgerUnavailable("postgres ledger is not open")
        await self._keep_claim()
        async with pooled_connection(self._pool, clean_ends=_CLEAN_ENDS) as con:
            return await fn(con, *args)

    async def identity(self) -> tuple[str, int]:
        r = await self._call(lambda con: con.fetchrow(
            f"SELECT (SELECT value FROM {self._t('meta')} WHERE key = 'epoch'), "
            f"(SELECT COALESCE(MAX(seq), 0) FROM {self._t('ops')})"))
        return r[0], int(r[1])

    async def find(self, key: str) -> OpRow | None:
        async def find(con):
            r = await con.fetchrow(f"SELECT {_OP_COLUMNS} FROM {self._t('ops')} WHERE op_key = $1", key)
            return None if r is None else _row(r)
        return await self._call(find)

    async def commit(self, op: NewOp) -> tuple[OpRow, bool]:
        return await self._call(self._commit, op)

    async def _commit(self, con, op: NewOp) -> tuple[OpRow, bool]:
        created = op.created_us or time.time_ns() // 1000
        async with self._writing(con):
            if op.floor is not None:
                account, wallet, floor = op.floor
                balance = await con.fetchval(self._wallet_balance_sql(), account, wallet)
                change = int(sum(a for acc, w, a in zip(op.entries.account_ids, op.entries.wallets,
                                                        op.entries.changes_minor.tolist(), strict=True)
                                 if acc == account and w == wallet))
                if await self._exists(con, op.key) is None and balance + change < floor:
                    raise LimitExceeded(account, wallet, int(balance), floor)
            seq = await con.fetchval(
                f"INSERT INTO {self._t('ops')} (seq, op_key, kind, payload_sha256, created_us, request, "
                f"meter_state) VALUES (nextval('{self._t('op_seq')}'), $1, $2, $3, $4, $5, $6) "
                "ON CONFLICT (op_key) DO NOTHING RETURNING seq",
                op.key, op.kind, op.payload_sha256, created, op.request, op.meter_state)
            if seq is None:
                existing = await self._exists(con, op.key)
                assert existing is not None  # the conflict was with this key's row, in this transaction
                return existing, False
            moved = abs_total_minor(op.entries)
            if not self._headroom.fits(moved):
                changes = wallet_changes(op.entries)
                check_range(await self._balances_of(con, changes), changes)
            if len(op.entries):
                await con.copy_records_to_table(
                    "entries", schema_name=self.schema,
                    columns=("seq", "account_id", "wallet", "amount_minor"),
                    records=zip([seq] * len(op.entries), op.entries.account_ids, op.entries.wallets,
                                op.entries.changes_minor.tolist(), strict=True))
            if op.checkpoint is not None:
                await con.execute(f"INSERT INTO {self._t('checkpoints')} (seq, state) VALUES ($1, $2)",
                                  seq, op.checkpoint)
            if op.anomaly_pages:
                await con.copy_records_to_table(
                    "anomaly_pages", schema_name=self.schema, columns=("seq", "page", "rows"),
                    records=[(seq, page, rows) for page, rows in enumerate(op.anomaly_pages, start=1)])
            self._headroom.add(moved)
        if self._unfolded is not None:
            self._unfolded += len(op.entries)
        return OpRow(seq, op.key, op.kind, op.payload_sha256, created, False, None, op.request), True

    async def _exists(self, con, key: str) -> OpRow | None:
        r = await con.fetchrow(f"SELECT {_OP_COLUMNS} FROM {self._t('ops')} WHERE op_key = $1", key)
        return None if r is None else _row(r)

    async def entries_of(self, seq: int) -> Entries:
        rows = await self._call(lambda con: con.fetch(
            f"SELECT account_id, wallet, amount_minor FROM {self._t('entries')} WHERE seq = $1 "
            'ORDER BY account_id COLLATE "C", wallet COLLATE "C"', seq))
        return Entries([r[0] for r in rows], [r[1] for r in rows],
                       np.array([r[2] for r in rows], dtype=np.int64))

    async def anomaly_page(self, seq: int, page: int) -> bytes:
        rows = await self._call(lambda con: con.fetchval(
            f"SELECT rows FROM {self._t('anomaly_pages')} WHERE seq = $1 AND page = $2", seq, page))
        if rows is None:
            raise KeyError(f"operation {seq} has no anomaly page {page}")
        return bytes(rows)

    async def settle(self, items: list[Settlement]) -> None:
        if items:
            await self._call(self._settle, items)

    async def _settle(self, con, items: list[Settlement]) -> None:
        update = (f"UPDATE {self._t('ops')} AS o SET applied = true, result = v.result "
                  "FROM unnest($1::bigint[], $2::bytea[]) AS v(seq, result) "
                  "WHERE o.seq = v.seq AND NOT o.applied RETURNING o.seq")
        seqs, results = [i.seq for i in items], [i.result for i in items]
        if not any(i.events for i in items):
            # No event ids to draw, so no writer lock: one statement, one round trip
            # (row locks keep a concurrent settle of the same operation apart).
            await con.execute(update, seqs, results)
            return
        async with self._writing(con):
            done = await con.fetch(update, seqs, results)
            fresh = {r[0] for r in done}  # an operation settled before (after a crash) gets no new events
            records = [(i.seq, int(e.type), e.account_id, e.wallet, e.balance_minor, e.at_us, e.cause,
                        e.level_minor)
                       for i in sorted(items, key=lambda i: i.seq) if i.seq in fresh for e in i.events]
            if records:
                await con.copy_records_to_table(
                    "events", schema_name=self.schema,
                    columns=("seq", "type", "account_id", "wallet", "balance_minor", "at_us", "cause",
                             "level_minor"),
                    records=records)
                for hook in self.settle_hooks:
                    await hook(con, sorted({r[0] for r in records}))

    async def pending(self) -> list[OpRow]:
        rows = await self._call(lambda con: con.fetch(
            f"SELECT {_OP_COLUMNS} FROM {self._t('ops')} WHERE NOT applied ORDER BY seq"))
        return [_row(r) for r in rows]

    async def _balances_of(self, con, changes: dict[tuple[str, str], int]) -> list:
        """(account, wallet, balance) of the given wallets, in one statement."""
        pairs = list(changes)
        return await con.fetch(
            f"WITH t (account_id, wallet) AS (SELECT * FROM unnest($1::text[], $2::text[])), "
            f"past AS (SELECT e.account_id, e.wallet, SUM(e.amount_minor) AS s FROM {self._t('entries')} e "
            "JOIN t USING (account_id, wallet) "
            f"WHERE e.seq > (SELECT seq FROM {self._t('wallet_sums_mark')}) "
            "GROUP BY 1, 2) "
            "SELECT t.account_id, t.wallet, COALESCE(w.balance_minor, 0) + COALESCE(past.s, 0) FROM t "
            f"LEFT JOIN {self._t('wallet_sums')} w USING (account_id, wallet) "
            "LEFT JOIN past USING (account_id, wallet)",
            [a for a, _ in pairs], [w for _, w in pairs])

    def _wallet_balance_sql(self) -> str:
        """One wallet's balance ($1 account, $2 wallet): its sum up to the mark
        plus its entries after it, in one statement (one snapshot)."""
        return (f"SELECT COALESCE((SELECT balance_minor FROM {self._t('wallet_sums')} "
                "WHERE account_id = $1 AND wallet = $2), 0) + "
                f"COALESCE((SELECT SUM(amount_minor) FROM {self._t('entries')} "
                f"WHERE seq > (SELECT seq FROM {self._t('wallet_sums_mark')}) "
                "AND account_id = $1 AND wallet = $2), 0)")

    async def balances(self, *, settled_only: bool = False) -> list[tuple[str, str, int]]:
        mark = f"(SELECT seq FROM {self._t('wallet_sums_mark')})"
        parts = [f"SELECT account_id, wallet, balance_minor AS b FROM {self._t('wallet_sums')}",
                 f"SELECT account_id, wallet, amount_minor FROM {self._t('entries')} WHERE seq > {mark}"]
        if settled_only:  # less the entries of operations committed and not settled yet
            unsettled = f"(SELECT seq FROM {self._t('ops')} WHERE NOT applied)"
            parts.append(f"SELECT account_id, wallet, -amount_minor FROM {self._t('entries')} "
                         f"WHERE seq IN {unsettled}")
        rows = await self._call(lambda con: con.fetch(
            f"SELECT account_id, wallet, SUM(b)::bigint FROM ({' UNION ALL '.join(parts)}) t "
            "GROUP BY account_id, wallet"))
        return [(r[0], r[1], int(r[2])) for r in rows]

    async def maintain(self) -> None:
        """Fold the entries past the mark into the wallet sums, when enough wait."""
        due = (self._unfolded is None or self._unfolded >= FOLD_ENTRIES_MIN
               or (self._unfolded > 0 and time.monotonic() - self._folded_at >= FOLD_AFTER_S))
        if due:
            await self.fold()

    async def fold(self) -> int:
        """Fold now; returns the new mark. Every operation up to the newest one
        this snapshot sees is committed (sequences are drawn in commit order),
        so the entries between the marks are complete."""
        async def fold(con):
            async with con.transaction():
                mark = await con.fetchval(f"SELECT seq FROM {self._t('wallet_sums_mark')} FOR UPDATE")
                newest = await con.fetchval(f"SELECT COALESCE(MAX(seq), 0) FROM {self._t('ops')}")
                folded_abs = sums_max = 0
                if newest > mark:
                    folded_abs = await con.fetchval(
                        f"SELECT COALESCE(SUM(ABS(amount_minor)), 0) FROM {self._t('entries')} "
                        "WHERE seq > $1 AND seq <= $2", mark, newest)
                    sums_max = await con.fetchval(
                        f"WITH up AS (INSERT INTO {self._t('wallet_sums')} AS s "
                        "(account_id, wallet, balance_minor) "
                        f"SELECT account_id, wallet, SUM(amount_minor) FROM {self._t('entries')} "
                        "WHERE seq > $1 AND seq <= $2 GROUP BY account_id, wallet "
                        "ON CONFLICT (account_id, wallet) DO UPDATE SET balance_minor = "
                        "s.balance_minor + EXCLUDED.balance_minor RETURNING s.balance_minor) "
                        "SELECT COALESCE(MAX(ABS(balance_minor)), 0) FROM up", mark, newest)
                    await con.execute(f"UPDATE {self._t('wallet_sums_mark')} SET seq = $1", newest)
                return max(newest, mark), int(folded_abs), int(sums_max)
        unfolded_before = self._unfolded or 0
        mark, folded_abs, sums_max = await self._call(fold)
        # the headroom loses what moved into the sums and gains the sums' new largest (an upper
        # bound: wallets the fold did not touch stay within the old one)
        new_sums_max = max(self._sums_abs_max, sums_max)
        self._headroom.add(new_sums_max - self._sums_abs_max - folded_abs)
        self._sums_abs_max = new_sums_max
        # entries committed while it ran stay counted (an estimate: enough to schedule the next fold)
        self._unfolded = max((self._unfolded or 0) - unfolded_before, 0)
        self._folded_at = time.monotonic()
        return mark

    async def last_events(self) -> dict[tuple[str, str], EventType]:
        rows = await self._call(lambda con: con.fetch(
            f"SELECT DISTINCT ON (account_id, wallet) account_id, wallet, type FROM {self._t('events')} "
            "ORDER BY account_id, wallet, event_id DESC"))
        return {(r[0], r[1]): EventType(r[2]) for r in rows}

    async def events_after(self, cursor: int, *, limit: int = 1000, types: tuple[int, ...] = (),
                           account_id: str = "") -> list[Event]:
        sql = (f"SELECT event_id, type, account_id, wallet, balance_minor, at_us, cause, level_minor "
               f"FROM {self._t('events')} WHERE event_id > $1")
        args: list = [cursor]
        if types:
            args.append(list(types))
            sql += f" AND type = ANY(${len(args)}::smallint[])"
        if account_id:
            args.append(account_id)
            sql += f" AND account_id = ${len(args)}"
        args.append(limit)
        sql += f" ORDER BY event_id LIMIT ${len(args)}"
        rows = await self._call(lambda con: con.fetch(sql, *args))
        return [Event(EventType(r[1]), r[2], r[3], r[4], r[5], r[6], r[0], r[7]) for r in rows]

    async def meter_images(self) -> list[bytes]:
        async def images(con):
            cp = await con.fetchrow(
                f"SELECT seq, state FROM {self._t('checkpoints')} ORDER BY seq DESC LIMIT 1")
            after = 0 if cp is None else cp[0]
            rows = await con.fetch(
                f"SELECT meter_state FROM {self._t('ops')} WHERE kind = 'deduct' AND seq > $1 "
                "AND meter_state IS NOT NULL ORDER BY seq", after)
            return ([] if cp is None else [bytes(cp[1])]) + [bytes(r[0]) for r in rows]
        return await self._call(images)

    async def save_config(self, docs: bytes) -> int:
        async def save(con):
            async with self._writing(con):
                return await con.fetchval(
                    f"INSERT INTO {self._t('configs')} (docs, created_us) VALUES ($1, $2) RETURNING version",
                    docs, time.time_ns() // 1000)
        return await self._call(save)

    async def load_config(self) -> tuple[int, bytes] | None:
        r = await self._call(lambda con: con.fetchrow(
            f"SELECT version, docs FROM {self._t('configs')} ORDER BY version DESC LIMIT 1"))
        return None if r is None else (r[0], bytes(r[1]))

    async def counts(self) -> dict[str, int]:
        async def count(con):
            return {t: await con.fetchval(f"SELECT COUNT(*) FROM {self._t(t)}")
                    for t in ("ops", "entries", "events")}
        return await self._call(count)
