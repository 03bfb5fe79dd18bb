"""An SQLite ledger file: one connection on one worker thread.

All statements run on the worker, so the event loop never blocks on the
file and writes are serialised. WAL journal with `synchronous=FULL`: a
committed transaction is on disk before it returns. The prepaid ledger and
the dues ledger (the same file) both hold their connection this way.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rating.prepaid.ledger.base import LedgerUnavailable


class SqliteFile:
    """The connection and its thread; `what` names the ledger in errors."""

    what = "sqlite ledger"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.what.replace(" ", "-"))

    async def _run(self, fn, *args):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, fn, *args)
        except sqlite3.OperationalError as exc:
            raise LedgerUnavailable(f"{self.what} {self.path}: {exc}") from exc

    async def _open_file(self, schema: str) -> None:
        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(schema)
            self._db = db
        await self._run(connect)

    async def _close_file(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._thread.shutdown(wait=True)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise LedgerUnavailable(f"{self.what} is not open")
        return self._db
