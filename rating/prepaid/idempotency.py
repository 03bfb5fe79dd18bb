"""Idempotency: a key applied once returns its first result on every retry.

As TigerBeetle and Stripe do it: the client chooses the id (a batch id, a
top-up or refund key); the first request under it is committed with a hash
of its payload; a retry with the same payload gets the stored result back,
a reuse with a different payload is refused (IdempotencyConflict, which the
server sends as ALREADY_EXISTS with the two hashes in its details).

Duplicates arriving together are serialised twice over: in one process by
`KeyLocks` (the second waits for the first, then finds its result), across
processes by the ledger's unique key (the second commit writes nothing and
gets the first row back).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rating.prepaid.errors import IdempotencyConflict, InvalidArgument
from rating.prepaid.ledger.base import OpRow

KEY_CHARS_MAX = 200


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def check_key(key: str, what: str) -> str:
    if not key:
        raise InvalidArgument(f"{what} is empty", field=what)
    if len(key) > KEY_CHARS_MAX:
        raise InvalidArgument(f"{what} is longer than {KEY_CHARS_MAX} characters", field=what)
    return key


def check_replay(row: OpRow, kind: str, payload_sha256: bytes, key: str) -> None:
    """Raise IdempotencyConflict unless `row` is the same request again."""
    if row.kind != kind or row.payload_sha256 != payload_sha256:
        raise IdempotencyConflict(
            f"{key!r} was first used for another {'request' if row.kind == kind else row.kind}",
            key=key, first_kind=row.kind, first_payload_sha256=row.payload_sha256.hex(),
            payload_sha256=payload_sha256.hex(), sequence=row.seq,
        )


class KeyLocks:
    """One asyncio lock per key while anyone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        release = await self.acquire(key)
        try:
            yield
        finally:
            release()

    async def acquire(self, key: str):
        """Wait for the key; returns the function that releases it (a second call does nothing)."""
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._leave(key)
            raise

        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                lock.release()
                self._leave(key)
        return release

    def _leave(self, key: str) -> None:
        lock, users = self._locks[key]
        if users == 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
