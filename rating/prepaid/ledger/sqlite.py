"""SQLite ledger: one file, the embedded default.

WAL journal with `synchronous=FULL`: a committed transaction is on disk
before `commit` returns. All statements run on one worker thread with one
connection (rating.prepaid.ledger.sqlite_file), so the event loop never blocks on the file
and writes are serialised (sequences and event ids increase in commit order).

The balance limit (rating.prepaid.ledger.base.Headroom) starts from the sum of
every entry's absolute amount, read at open.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rating.prepaid.ledger.base import (
    Headroom,
    Ledger,
    LedgerBusy,
    LimitExceeded,
    NewOp,
    OpRow,
    Settlement,
    abs_total_minor,
    check_range,
    wallet_changes,
)
from rating.prepaid.ledger.sqlite_file import SqliteFile
from rating.prepaid.records import Entries, Event
from rating.prepaid.wallets import EventType

SCHEMA = """
CREATE TABLE IF NOT EXISTS ops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload_sha256 BLOB NOT NULL,
    created_us INTEGER NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0,
    request BLOB NOT NULL,
    meter_state BLOB,
    result BLOB
);
CREATE INDEX IF NOT EXISTS ops_pending ON ops (seq) WHERE applied = 0;
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    wallet TEXT NOT NULL,
    amount_minor INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_wallet ON entries (account_id, wallet);
CREATE INDEX IF NOT EXISTS entries_seq ON entries (seq);
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    type INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    wallet TEXT NOT NULL,
    balance_minor INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    cause TEXT NOT NULL,
    level_minor INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS checkpoints (seq INTEGER PRIMARY KEY, state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS anomaly_pages (
    seq INTEGER NOT NULL,
    page INTEGER NOT NULL,
    rows BLOB NOT NULL,
    PRIMARY KEY (seq, page)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS configs (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    docs BLOB NOT NULL,
    created_us INTEGER NOT NULL
);
"""
_OP_COLUMNS = "seq, op_key, kind, payload_sha256, created_us, applied, result, request"


def _row(r) -> OpRow:
    return OpRow(r[0], r[1], r[2], bytes(r[3]), r[4], bool(r[5]), None if r[6] is None else bytes(r[6]),
                 bytes(r[7]))


class SqliteLedger(SqliteFile, Ledger):
    name = "sqlite"

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._owner_fd: int | None = None  # the claim: an flock on <ledger>.lock
        self._headroom = Headroom()
        # called in each settle's transaction, on the ledger's thread, with the connection and the
        # sequences settled for the first time (their events are in the events table)
        self.settle_hooks: tuple[Callable[[sqlite3.Connection, list[int]], None], ...] = ()

    async def open(self) -> None:
        await self._open_file(SCHEMA)
        await self._run(self._add_level_column)
        await self._run(self._read_marks)

    def _add_level_column(self) -> None:
        """A file from before warning levels gains the events' level (0 for its events)."""
        if "level_minor" not in {row[1] for row in self.db.execute("PRAGMA table_info(events)")}:
            self.db.execute("ALTER TABLE events ADD COLUMN level_minor INTEGER NOT NULL DEFAULT 0")

    def _read_marks(self) -> None:
        """The ledger's epoch (made once, with the file) and the balance headroom."""
        db = self.db
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", (uuid.uuid4().hex,))
        try:
            moved = db.execute("SELECT COALESCE(SUM(ABS(amount_minor)), 0) FROM entries").fetchone()[0]
        except sqlite3.OperationalError:  # integer overflow: far past any limit, check every commit
            moved = 2**63
        self._headroom = Headroom(moved)

    async def close(self) -> None:
        await self._close_file()
        if self._owner_fd is not None:
            os.close(self._owner_fd)  # lets go of the claim
            self._owner_fd = None

    async def claim(self, owner: str, *, wait_s: float = 5.0) -> None:
        """An exclusive flock on `<ledger>.lock`, which the kernel releases
        when the file is closed, also when the process dies."""
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    os.close(fd)
                    raise LedgerBusy(f"{self.path} is held by {holder}") from None
                await asyncio.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{owner}\n".encode(), 0)
        self._owner_fd = fd

    async def identity(self) -> tuple[str, int]:
        def read() -> tuple[str, int]:
            epoch = self.db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0]
            return epoch, self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM ops").fetchone()[0]
        return await self._run(read)

    async def find(self, key: str) -> OpRow | None:
        return await self._run(self._find, key)

    def _find(self, key: str) -> OpRow | None:
        r = self.db.execute(f"SELECT {_OP_COLUMNS} FROM ops WHERE op_key = ?", (key,)).fetchone()
        return None if r is None else _row(r)

    async def commit(self, op: NewOp) -> tuple[OpRow, bool]:
        return await self._run(self._commit, op)

    def _commit(self, op: NewOp) -> tuple[OpRow, bool]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            existing = self._find(op.key)
            if existing is not None:
                db.execute("ROLLBACK")
                return existing, False
            if op.floor is not None:
                account, wallet, floor = op.floor
                balance = self._balance(account, wallet)
                change = int(sum(a for acc, w, a in zip(op.entries.account_ids, op.entries.wallets,
                                                        op.entries.changes_minor.tolist(), strict=True)
                                 if acc == account and w == wallet))
                if balance + change < floor:
                    raise LimitExceeded(account, wallet, balance, floor)
            moved = abs_total_minor(op.entries)
            if not self._headroom.fits(moved):
                changes = wallet_changes(op.entries)
                check_range([(a, w, self._balance(a, w)) for a, w in changes], changes)
            created = op.created_us or time.time_ns() // 1000
            cur = db.execute(
                "INSERT INTO ops (op_key, kind, payload_sha256, created_us, request, meter_state) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (op.key, op.kind, op.payload_sha256, created, op.request, op.meter_state),
            )
            seq = cur.lastrowid
            assert seq is not None  # an INSERT that went through has a row id
            db.executemany(
                "INSERT INTO entries (seq, account_id, wallet, amount_minor) VALUES (?, ?, ?, ?)",
                zip([seq] * len(op.entries), op.entries.account_ids, op.entries.wallets,
                    op.entries.changes_minor.tolist(), strict=True),
            )
            if op.checkpoint is not None:
                db.execute("INSERT INTO checkpoints (seq, state) VALUES (?, ?)", (seq, op.checkpoint))
            db.executemany("INSERT INTO anomaly_pages (seq, page, rows) VALUES (?, ?, ?)",
                           [(seq, page, rows) for page, rows in enumerate(op.anomaly_pages, start=1)])
            self._headroom.add(moved)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return OpRow(seq, op.key, op.kind, op.payload_sha256, created, False, None, op.request), True

    def _balance(self, account_id: str, wallet: str) -> int:
        return self.db.execute(
            "SELECT COALESCE(SUM(amount_minor), 0) FROM entries WHERE account_id = ? AND wallet = ?",
            (account_id, wallet),
        ).fetchone()[0]

    async def entries_of(self, seq: int) -> Entries:
        rows = await self._run(lambda: self.db.execute(
            "SELECT account_id, wallet, amount_minor FROM entries WHERE seq = ? ORDER BY account_id, wallet",
            (seq,)
        ).fetchall())
        return Entries([r[0] for r in rows], [r[1] for r in rows],
                       np.array([r[2] for r in rows], dtype=np.int64))

    async def anomaly_page(self, seq: int, page: int) -> bytes:
        row = await self._run(lambda: self.db.execute(
            "SELECT rows FROM anomaly_pages WHERE seq = ? AND page = ?", (seq, page)).fetchone())
        if row is None:
            raise KeyError(f"operation {seq} has no anomaly page {page}")
        return bytes(row[0])

    async def settle(self, items: list[Settlement]) -> None:
        if items:
            await self._run(self._settle, items)

    def _settle(self, items: list[Settlement]) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            fresh = []
            for item in items:
                cur = db.execute("UPDATE ops SET applied = 1, result = ? WHERE seq = ? AND applied = 0",
                                 (item.result, item.seq))
                if cur.rowcount == 0:
                    continue  # settled before (a retry after a crash)
                fresh.append(item.seq)
                db.executemany(
                    "INSERT INTO events (seq, type, account_id, wallet, balance_minor, at_us, cause, "
                    "level_minor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(item.seq, int(e.type), e.account_id, e.wallet, e.balance_minor, e.at_us, e.cause,
                      e.level_minor) for e in item.events],
                )
            if fresh and self.settle_hooks:
                for hook in self.settle_hooks:
                    hook(db, fresh)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    async def pending(self) -> list[OpRow]:
        rows = await self._run(lambda: self.db.execute(
            f"SELECT {_OP_COLUMNS} FROM ops WHERE applied = 0 ORDER BY seq").fetchall())
        return [_row(r) for r in rows]

    async def balances(self, *, settled_only: bool = False) -> list[tuple[str, str, int]]:
        where = "WHERE seq IN (SELECT seq FROM ops WHERE applied = 1)" if settled_only else ""
        return await self._run(lambda: [tuple(r) for r in self.db.execute(
            f"SELECT account_id, wallet, SUM(amount_minor) FROM entries {where} GROUP BY account_id, wallet"
        ).fetchall()])

    async def last_events(self) -> dict[tuple[str, str], EventType]:
        rows = await self._run(lambda: self.db.execute(
            "SELECT account_id, wallet, type FROM events WHERE event_id IN "
            "(SELECT MAX(event_id) FROM events GROUP BY account_id, wallet)").fetchall())
        return {(a, w): EventType(t) for a, w, t in rows}

    async def events_after(self, cursor: int, *, limit: int = 1000, types: tuple[int, ...] = (),
                           account_id: str = "") -> list[Event]:
        sql = ("SELECT event_id, type, account_id, wallet, balance_minor, at_us, cause, level_minor "
               "FROM events WHERE event_id > ?")
        args: list = [cursor]
        if types:
            sql += f" AND type IN ({', '.join('?' * len(types))})"
            args += list(types)
        if account_id:
            sql += " AND account_id = ?"
            args.append(account_id)
        sql += " ORDER BY event_id LIMIT ?"
        args.append(limit)
        rows = await self._run(lambda: self.db.execute(sql, args).fetchall())
        return [Event(EventType(t), a, w, b, at, cause, eid, level)
                for eid, t, a, w, b, at, cause, level in rows]

    async def meter_images(self) -> list[bytes]:
        return await self._run(self._meter_images)

    def _meter_images(self) -> list[bytes]:
        db = self.db
        cp = db.execute("SELECT seq, state FROM checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
        after = 0 if cp is None else cp[0]
        rows = db.execute("SELECT meter_state FROM ops WHERE kind = 'deduct' AND seq > ? "
                          "AND meter_state IS NOT NULL ORDER BY seq", (after,)).fetchall()
        return ([] if cp is None else [bytes(cp[1])]) + [bytes(r[0]) for r in rows]

    async def save_config(self, docs: bytes) -> int:
        def save() -> int:
            cur = self.db.execute("INSERT INTO configs (docs, created_us) VALUES (?, ?)",
                                  (docs, time.time_ns() // 1000))
            assert cur.lastrowid is not None  # an INSERT that went through has a row id
            return cur.lastrowid
        return await self._run(save)

    async def load_config(self) -> tuple[int, bytes] | None:
        row = await self._run(lambda: self.db.execute(
            "SELECT version, docs FROM configs ORDER BY version DESC LIMIT 1").fetchone())
        return None if row is None else (row[0], bytes(row[1]))

    async def counts(self) -> dict[str, int]:
        def count() -> dict[str, int]:
            return {t: self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                    for t in ("ops", "entries", "events")}
        return await self._run(count)
