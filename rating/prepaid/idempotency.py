"""Idempotency: a key applied once returns its first result on every retry.

As TigerBeetle and Stripe do it: the client chooses the id (a batch id, a
top-up or refund key); the first request under it is committed with a hash
of its payload; a retry with the same payload gets the stored result back,
a reuse with a different payload is refused (IdempotencyConflict, which the
server sends as ALREADY_EXISTS with the two hashes in its details).

A deduction batch's payload is its content, not its bytes (`readings_sha256`):
the same readings framed, chunked or compressed otherwise by another Arrow
writer are the same batch, so a client that rebuilds a batch can retry it.

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
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.errors import InputError
from rating.prepaid.errors import IdempotencyConflict, InvalidArgument
from rating.prepaid.ledger.base import OpRow
from rating.readings.batches import column_of, timestamps_us, to_fixed

KEY_CHARS_MAX = 200


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


READINGS_HASH_TAG = b"rating.v1 readings\0"  # names the canonical form below (change it with it)


def readings_sha256(readings: pa.Table, quantity_decimals: int, *, where: str = "readings") -> bytes:
    """SHA-256 of a batch's readings in canonical form, column by column, each
    in row order: the row count (int64), then `meter_id` as text, `ts` as
    int64 UTC microseconds, `value` as int64 counts of 10^-quantity_decimals
    with its null mask, then `reading_id` as text if the batch has one. Text
    is its UTF-8 byte lengths (int64, -1 for null) then its bytes. Little
    endian throughout; no Python object per row."""
    parts: list[Any] = [READINGS_HASH_TAG, _int64(np.int64(readings.num_rows))]  # bytes-like, contiguous
    parts += _text_parts(column_of(readings, "meter_id", where), "meter_id", where)
    parts.append(_int64(timestamps_us(column_of(readings, "ts", where), where=where)))
    value_qty, value_null = to_fixed(column_of(readings, "value", where), quantity_decimals, where=where)
    parts += [_int64(value_qty), value_null.view(np.uint8)]
    if "reading_id" in readings.schema.names:
        parts += [b"reading_id", *_text_parts(column_of(readings, "reading_id", where), "reading_id", where)]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)  # buffers as they are: no copy
    return digest.digest()


def _int64(values) -> np.ndarray:
    """Little-endian int64, contiguous (a view when it already is)."""
    return np.ascontiguousarray(values, dtype="<i8").reshape(-1)


def _text_parts(column: pa.Array, name: str, where: str) -> list:
    """A column as text: its byte lengths (-1: null) and its UTF-8 bytes."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    try:
        text = column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"{name} has type {column.type}; accepted: string or integer",
                         where=f"{where} column {name}") from None
    lengths = pc.fill_null(pc.binary_length(text), -1).to_numpy(zero_copy_only=False)
    text = pc.fill_null(text, "")
    if len(text) == 0 or text.buffers()[2] is None:
        return [_int64(lengths)]
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:text.offset + len(text) + 1]
    return [_int64(lengths), memoryview(text.buffers()[2])[offsets[0]:offsets[-1]]]


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
    """One asyncio lock per key while anyone holds or waits for it. A key is
    held only as a context (`hold`): released by the code that took it. The
    map holds the keys of running operations only, so the service's bound on
    them (Limits.ops_pending_max) bounds it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            self._leave(key)

    def _leave(self, key: str) -> None:
        lock, users = self._locks[key]
        if users == 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
