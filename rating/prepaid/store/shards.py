"""Shard tags: an account's shard is a stable hash of its id (64 shards).

Every store key of an account carries its shard tag (`{s17}:bal:<account>`),
so that one script call per batch per shard stays in one Redis Cluster slot,
and a shard can later move to another server with its keys.
"""

from __future__ import annotations

import zlib

SHARDS = 64


def shard_of(account_id: str) -> int:
    """CRC-32 of the UTF-8 id, modulo SHARDS: stable across processes and versions."""
    return zlib.crc32(account_id.encode("utf-8")) % SHARDS


def tag(shard: int) -> str:
    return f"{{s{shard}}}"

