"""The balance store's marker of the ledger it mirrors (the ledger's epoch and
the last sequence applied per shard), on a real throwaway redis-server: an
emptied Redis is rebuilt from the ledger, at start or as soon as a call finds
it; a Redis that mirrors another ledger is refused until `rating rebuild`."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis as sync_redis

from rating.prepaid import errors
from rating.prepaid.reconcile import reconcile
from rating.prepaid.records import Movement
from rating.prepaid.sitedocs import SiteDocs
from tests.prepaid_backends import Backends
from tests.prepaid_site import AFTERNOON, Clock, batches, readings, write_site
from tests.servers import NEEDS_SERVERS

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: redis_server
pytestmark = NEEDS_SERVERS
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pair(redis_server, tmp_path) -> Backends:
    """Redis and an SQLite ledger (the marker is the store's: any ledger does)."""
    backends = Backends("redis+sqlite", tmp_path, redis=redis_server)
    backends.empty()
    return backends


@pytest.fixture
def site(tmp_path):
    return write_site(tmp_path / "site", flats=4)


async def fill(service) -> None:
    for i, part in enumerate(batches(readings(4, 8), 32)):
        await service.deduct(f"b{i}", part)
    await service.move(Movement("topup", "t1", "F0001", "water", 12_345, "cash"))


async def wallets(service) -> dict:
    return {(a, s.wallet): (s.balance_minor, s.status) for a in ("F0000", "F0001", "F0002", "F0003")
            for s, _ in await service.balance(a)}


def test_an_emptied_redis_is_rebuilt_from_the_ledger_at_start_and_says_so(pair, site, caplog):
    async def go():
        service = pair.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        await fill(service)
        before = await wallets(service)
        await service.close()
        sync_redis.Redis.from_url(pair.redis.url).flushall()
        with caplog.at_level(logging.WARNING, logger="rating.prepaid"):
            restarted = pair.service(clock=Clock(AFTERNOON))
            await restarted.start()
        after = await wallets(restarted)
        report = await reconcile(restarted.store, restarted.ledger)
        await restarted.close()
        return before, after, report

    before, after, report = asyncio.run(go())
    assert after == before and any(v != (0, 1) for v in after.values())
    assert report.ok, report.lines()
    assert "balance store marker: missing" in caplog.text and "rebuilt the balance store" in caplog.text


def test_a_redis_of_another_ledger_is_refused_until_rating_rebuild(pair, site, tmp_path, caplog):
    other = Backends("redis+sqlite", tmp_path / "other", redis=pair.redis)

    async def first():
        service = other.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        await service.move(Movement("topup", "t1", "F0001", "water", 999, "cash"))
        await service.close()
        service = pair.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        with caplog.at_level(logging.ERROR, logger="rating.prepaid"):
            with pytest.raises(errors.Unavailable) as info:
                await service.start()
        return info.value

    refused = asyncio.run(first())
    assert "mirrors another ledger" in refused.message and "rating rebuild" in refused.message
    assert "mirrors another ledger" in caplog.text
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rebuilt = subprocess.run([sys.executable, "-m", "rating", "rebuild", "--redis", pair.redis.url,
                              "--data-dir", str(pair.folder / "data")], capture_output=True, text=True,
                             env=env, cwd=ROOT, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr

    async def second():
        service = pair.service(clock=Clock(AFTERNOON))
        await service.start()
        held = await wallets(service)
        report = await reconcile(service.store, service.ledger)
        await service.close()
        return held, report

    held, report = asyncio.run(second())
    assert held[("F0001", "water")][0] == 0  # this ledger's balance, not the other one's 999
    assert report.ok and report.wallets == 0, report.lines()


def test_redis_emptied_while_the_server_runs_is_found_by_the_next_call_and_rebuilt(pair, site):
    async def go():
        service = pair.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        await fill(service)
        await service.flush()
        before = await wallets(service)
        sync_redis.Redis.from_url(pair.redis.url).flushall()
        with pytest.raises(errors.Unavailable, match="no marker of this ledger"):
            await service.balance("F0001")  # the next read finds it...
        for _ in range(100):  # ...and the rebuild runs in the background
            await asyncio.sleep(0.02)
            try:
                rebuilt = await wallets(service)
                break
            except errors.Unavailable:
                continue
        sync_redis.Redis.from_url(pair.redis.url).flushall()
        moved = await service.move(Movement("topup", "t2", "F0001", "water", 5, "cash"))  # a write finds it
        report = await reconcile(service.store, service.ledger)
        await service.close()
        return before, rebuilt, moved, report

    before, rebuilt, moved, report = asyncio.run(go())
    assert rebuilt == before
    assert moved.balance_minor == before[("F0001", "water")][0] + 5  # applied once, on the rebuilt store
    assert report.ok, report.lines()
