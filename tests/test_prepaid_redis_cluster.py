"""The Redis balance store on a real local Redis Cluster (three masters, a
replica each; tests/redis_cluster.py): the same wallet state machine as the
in-process store while slots migrate and a replica takes over, and scripts
reloaded on a master that lacks them."""

from __future__ import annotations

import asyncio
import random
import time

import numpy as np
import pytest
import redis as sync_redis

from rating.client.calls import RatingClient
from rating.prepaid.records import Entries
from rating.prepaid.store.base import StoreUnavailable
from rating.prepaid.store.memory import MemoryStore
from rating.prepaid.store.redis import RedisStore
from rating.prepaid.store.shards import SHARDS, shard_of
from rating.prepaid.wallets import WalletPolicy
from tests.prepaid_site import batches, readings, write_site
from tests.redis_cluster import RedisClusterServers
from tests.servers import NEEDS_SERVERS
from tests.test_prepaid_crash import ServeProcess, _cli, expected_debits, stream_until

pytestmark = [pytest.mark.cluster, NEEDS_SERVERS]
pytest_plugins = ["tests.prepaid_backends"]  # the postgres_server fixture

POLICIES = {"electricity": WalletPolicy("electricity", 1_000, 500, 200, True),
            "water": WalletPolicy("water", 0, 0, -100, True)}
ACCOUNTS = [f"A{i}" for i in range(40)]


@pytest.fixture(scope="module")
def cluster():
    servers = RedisClusterServers().start()
    yield servers
    servers.close()


async def bound(store):
    store.bind("test-ledger")
    await store.replace_all([])
    return store


def movements(rng: random.Random) -> Entries:
    pairs = rng.sample([(a, w) for a in ACCOUNTS for w in POLICIES], rng.randint(1, 12))
    return Entries([a for a, _ in pairs], [w for _, w in pairs],
                   np.array([rng.randint(-1_500, 1_200) for _ in pairs], dtype=np.int64))


async def both_apply(memory, store, seq, entries, friendly):
    mine = await memory.apply(seq, entries, POLICIES, friendly)
    theirs = await applied(store, seq, entries, friendly)
    assert mine.balances_minor.tolist() == theirs.balances_minor.tolist(), seq
    assert mine.statuses.tolist() == theirs.statuses.tolist(), seq
    assert [e.to_json() for e in mine.events] == [e.to_json() for e in theirs.events], seq
    again = await applied(store, seq, entries, friendly)  # a repeat changes nothing
    assert again.balances_minor.tolist() == theirs.balances_minor.tolist(), seq


async def applied(store, seq, entries, friendly):
    """The store's answer, retried with the same sequence while it is unavailable,
    as the service settles an operation whose outcome was unknown."""
    for _ in range(50):
        try:
            return await store.apply(seq, entries, POLICIES, friendly)
        except StoreUnavailable:
            await asyncio.sleep(0.1)
    raise AssertionError(f"the cluster store stayed unavailable for operation {seq}")


async def all_states(store):
    return sorted((s for page in [p async for p in store.scan(page_size=7)] for s in page), key=repr)


def test_the_accounts_spread_over_every_master(cluster):
    """The test's accounts reach several shards, and the shards several masters:
    each script call stays in its shard's slot, on whichever master holds it."""
    shards = {shard_of(a) for a in ACCOUNTS}
    raw = sync_redis.RedisCluster.from_url(cluster.url.replace("+cluster", ""))
    owners = {raw.keyslot(f"{{s{s}}}") for s in shards}
    nodes = {raw.get_node_from_key(f"{{s{s}}}").port for s in shards}
    raw.close()
    assert len(shards) > 20 and len(owners) == len(shards) and len(nodes) == 3


def test_the_cluster_store_runs_the_same_state_machine_while_slots_move_and_a_replica_takes_over(cluster):
    rng = random.Random(17)

    async def go():
        memory, store = await bound(MemoryStore()), await bound(RedisStore(cluster.url))
        masters = cluster.master_ports()
        seq = 0

        async def stream(count: int) -> None:
            nonlocal seq
            for _ in range(count):
                seq += 1
                friendly = {w: rng.random() < 0.4 for w in POLICIES}
                await both_apply(memory, store, seq, movements(rng), friendly)
        moving = asyncio.create_task(asyncio.to_thread(cluster.reshard, masters[0], masters[1], 2_000))
        await stream(60)  # MOVED and ASK answers while the slots migrate
        await moving
        await stream(20)
        promoted = await asyncio.to_thread(cluster.failover, masters[2])
        await stream(40)  # the old master's slots now answer from its former replica
        changed_mine, _ = await memory.sweep(10_000, POLICIES, dict.fromkeys(POLICIES, False))
        changed_theirs, _ = await store.sweep(10_000, POLICIES, dict.fromkeys(POLICIES, False))
        assert sorted(changed_mine, key=repr) == sorted(changed_theirs, key=repr)
        mine, theirs = await all_states(memory), await all_states(store)
        await store.close()
        return mine, theirs, promoted

    mine, theirs, promoted = asyncio.run(go())
    assert mine == theirs and len(mine) > 40
    assert promoted in cluster.master_ports()


def test_scripts_are_loaded_again_on_masters_that_lost_them(cluster):
    account = next(f"R{i}" for i in range(10**4) if shard_of(f"R{i}") == 5)

    async def go():
        store = await bound(RedisStore(cluster.url))
        first = await store.apply(1, Entries.one(account, "water", -120), POLICIES, {"water": True})
        for port in cluster.master_ports():
            cluster.cli(port, "script", "flush")
        second = await store.apply(2, Entries.one(account, "water", 30), POLICIES, {"water": True})
        for port in cluster.master_ports():
            cluster.cli(port, "script", "flush")
        changed, _ = await store.sweep(3, POLICIES, {"water": False})
        marks = await store.marker_state(3)
        await store.close()
        return first, second, changed, marks

    first, second, changed, marks = asyncio.run(go())
    assert first.balances_minor.tolist() == [-120] and second.balances_minor.tolist() == [-90]
    assert marks == "ok" and SHARDS == 64


def test_kill9_of_a_master_mid_stream_the_replica_takes_over_and_the_ledger_decides(cluster, tmp_path,
                                                                                      postgres_server):
    """`rating serve --redis redis+cluster://...`: a master is killed while a stream
    runs; its replica is promoted by the cluster itself, the client resends from its
    last answer, and afterwards the store agrees with the ledger (rebuilt from it when
    the promoted replica had not received the last writes). Runs last: it changes the
    cluster's shape."""
    site = write_site(tmp_path / "site", flats=8)
    table = readings(8, 60)
    parts = batches(table, 40)
    cluster.wait_ok()  # every replica in sync: the one of the killed master may take over
    cluster.flush()  # an empty store: the new ledger binds it
    backend = ["--redis", cluster.url, "--postgres", postgres_server.dsn, "--postgres-schema", "cluster_kill"]
    server = ServeProcess(tmp_path, ["--site", str(site), *backend]).start()
    victim = next(n for n in cluster.nodes if n.port == cluster.master_ports()[0])
    try:
        with RatingClient(server.target) as client:
            acked = stream_until(client, parts, 0, 6, victim.kill9)
            deadline = time.monotonic() + 60
            while acked < len(parts):  # UNAVAILABLE until the replica is promoted, then through
                acked = stream_until(client, parts, acked, None, None)
                assert time.monotonic() < deadline, "the stream did not get through after the failover"
        assert server.stop() == 0
    finally:
        if server.proc.poll() is None:
            server.kill9()
        victim.start()  # it rejoins as a replica of the promoted one
    checked = _cli("reconcile", *backend)
    if checked.returncode == 4:  # writes the replica had not received: the ledger decides
        assert _cli("rebuild", *backend).returncode == 0
        checked = _cli("reconcile", *backend)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert store_debits(cluster.url) == expected_debits(site, table)


def store_debits(url: str) -> dict:
    async def read():
        store = RedisStore(url)
        states = [s for page in [p async for p in store.scan()] for s in page]
        await store.close()
        return {(s.account_id, s.wallet): -s.balance_minor for s in states if s.balance_minor}
    return asyncio.run(read())
