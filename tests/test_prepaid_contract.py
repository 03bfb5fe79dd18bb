"""The contract every backend pair keeps, on the same tests: every pair `rating
serve` accepts (memory or Redis with AOF, SQLite or PostgreSQL), and the real
pair once more with the planner in a child process, as production runs it."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
import redis as sync_redis

from rating.config.loader import load_config
from rating.engine import rate
from rating.prepaid import errors
from rating.prepaid.idempotency import readings_sha256
from rating.prepaid.ledger.base import BalanceOutOfRange, NewOp, Settlement
from rating.prepaid.reconcile import reconcile
from rating.prepaid.records import Entries, Movement
from rating.prepaid.service import Limits
from rating.prepaid.sitedocs import SiteDocs
from rating.prepaid.store.base import StoreUnavailable
from rating.prepaid.store.memory import MemoryStore
from rating.prepaid.store.shards import shard_of
from rating.prepaid.wallets import BALANCE_LIMIT_MINOR, EventType, Status, WalletPolicy
from tests.prepaid_backends import ALL_PAIRS, make_backends
from tests.prepaid_site import AFTERNOON, HOLIDAY_NOON, NIGHT, Clock, batches, readings, write_site
from tests.servers import NEEDS_SERVERS

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: backends, redis_server, postgres_server


@pytest.fixture(params=ALL_PAIRS)
def backends(request, tmp_path):
    return make_backends(request, tmp_path)


@pytest.fixture
def site(tmp_path):
    return write_site(tmp_path / "site", flats=6)


async def empty_store(store, epoch: str = "test-ledger"):
    """A store bound to a ledger, empty but for its marker."""
    store.bind(epoch)
    await store.replace_all([])
    return store


def deduct(service, batch_id, table):
    return service.deduct(batch_id, table)


def ledger_balances(rows):
    return {(a, w): b for a, w, b in rows if b}


def expected_debits(site_file, table):
    """Batch rating of the whole table, summed per (account, wallet)."""
    config = load_config(site_file)
    wallet_of = {m.meter_id: m.wallet for m in config.registry.meters}
    charges = rate(table, config=config).charges
    totals: Counter = Counter()
    for account, meter, amount in zip(charges["account_id"].to_pylist(), charges["meter_id"].to_pylist(),
                                      charges["amount"].to_pylist(), strict=True):
        totals[(account, wallet_of.get(meter, "maintenance"))] += int(amount.scaleb(2))
    return {k: v for k, v in totals.items() if v}


def test_streamed_deductions_sum_exactly_to_batch_rating_and_balances_equal_the_ledger(backends, site):
    table = readings(6, 30)

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        debited: Counter = Counter()
        for i, part in enumerate(batches(table, 37)):  # batches cut across meters and periods
            result = await deduct(service, f"b{i}", part)
            for row in result.deductions.to_pylist():
                debited[(row["account_id"], row["wallet"])] += row["amount_minor"]
        await service.close()
        ledger, store = backends.ledger(), backends.store()
        await ledger.open()
        report = await reconcile(store, ledger) if backends.redis else None
        balances = ledger_balances(await ledger.balances())
        await ledger.close()
        await store.close()
        return debited, balances, report

    debited, balances, report = asyncio.run(go())
    assert {k: v for k, v in debited.items() if v} == expected_debits(site, table)
    assert balances == {k: -v for k, v in debited.items() if v}
    if report is not None:
        assert report.ok and report.pending == 0, report.lines()


def test_a_retried_batch_returns_its_first_result_and_a_changed_one_is_refused(backends, site):
    table = readings(6, 8)
    first, second = batches(table, 48)[:2]

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        a = await deduct(service, "b1", first)
        b = await deduct(service, "b2", second)
        counts = await service.ledger.counts()
        again = await deduct(service, "b2", second)
        await service.flush()
        again_settled = await deduct(service, "b1", first)
        with pytest.raises(errors.IdempotencyConflict) as conflict:
            await deduct(service, "b1", second)
        after = await service.ledger.counts()
        await service.close()
        return a, b, again, again_settled, counts, after, conflict.value

    a, b, again, again_settled, counts, after, conflict = asyncio.run(go())
    assert again.replayed and again.deductions.equals(b.deductions) and again.sequence == b.sequence
    assert again_settled.replayed and again_settled.deductions.equals(a.deductions)
    assert [e.to_json() for e in again_settled.events] == [e.to_json() for e in a.events]
    assert (after["ops"], after["entries"]) == (counts["ops"], counts["entries"])
    assert conflict.metadata["first_payload_sha256"] == readings_sha256(first, 3).hex()
    assert conflict.metadata["payload_sha256"] == readings_sha256(second, 3).hex()


def test_movements_are_idempotent_and_refunds_never_overdraw(backends, site):
    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        top = Movement("topup", "t1", "F0001", "electricity", 25_000, "cash", "counter", "R-17")
        first = await service.move(top)
        again = await service.move(top)
        with pytest.raises(errors.IdempotencyConflict):
            await service.move(Movement("topup", "t1", "F0001", "electricity", 26_000, "cash", "counter"))
        with pytest.raises(errors.IdempotencyConflict):  # same key, another kind
            await service.move(Movement("refund", "t1", "F0001", "electricity", 25_000, "cash", "x"))
        with pytest.raises(errors.InsufficientBalance):
            await service.move(Movement("refund", "r1", "F0001", "electricity", 25_001, "bank_transfer", "x"))
        refund = await service.move(
            Movement("refund", "r2", "F0001", "electricity", 5_000, "cheque", "moving"))
        adjust = await service.move(Movement("adjust", "a1", "F0001", "water", -700, "", "meter fault"))
        with pytest.raises(errors.NotFound):
            await service.move(Movement("topup", "t9", "NOPE", "electricity", 100, "cash"))
        with pytest.raises(errors.InvalidArgument):
            await service.move(Movement("topup", "t9", "F0001", "lottery", 100, "cash"))
        with pytest.raises(errors.InvalidArgument):
            await service.move(Movement("topup", "t9", "F0001", "water", 0, "cash"))
        wallets = {s.wallet: s.balance_minor for s, _ in await service.balance("F0001")}
        counts = await service.ledger.counts()
        await service.close()
        return first, again, refund, adjust, wallets, counts

    first, again, refund, adjust, wallets, counts = asyncio.run(go())
    assert not first.replayed and again.replayed and again.balance_minor == first.balance_minor == 25_000
    assert refund.change_minor == -5_000 and refund.balance_minor == 20_000
    assert adjust.balance_minor == -700
    assert wallets == {"electricity": 20_000, "water": -700}
    assert counts["ops"] == 3 and counts["entries"] == 3


def test_concurrent_duplicates_have_exactly_one_effect(backends, site):
    table = readings(6, 4)

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        top = Movement("topup", "dup", "F0002", "water", 1_000, "online", "app")
        results = await asyncio.gather(*[deduct(service, "same", table) for _ in range(12)],
                                       *[service.move(top) for _ in range(12)])
        await service.flush()
        wallets = {s.wallet: s.balance_minor for s, _ in await service.balance("F0002")}
        counts = await service.ledger.counts()
        await service.close()
        return results, wallets, counts

    results, wallets, counts = asyncio.run(go())
    deductions, tops = results[:12], results[12:]
    assert sum(not r.replayed for r in deductions) == 1 and sum(not r.replayed for r in tops) == 1
    assert all(r.deductions.equals(deductions[0].deductions) for r in deductions)
    assert len({r.balance_minor for r in tops}) == 1
    assert counts["ops"] == 2
    debit = {(r["account_id"], r["wallet"]): r["amount_minor"] for r in deductions[0].deductions.to_pylist()}
    assert wallets["water"] == 1_000 - debit[("F0002", "water")]


def test_low_balance_deferred_cut_off_sweep_and_restore(backends, site):
    clock = Clock(AFTERNOON)

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=clock)
        await service.start()

        async def adjust(key, amount):
            return await service.move(Movement("adjust", key, "F0003", "electricity", amount, "", "test"))

        seen = []
        seen.append(await service.move(Movement("topup", "k0", "F0003", "electricity", 15_000, "cash")))
        seen.append(await adjust("k1", -6_000))  # 9000 < 100.00: low
        clock.set(NIGHT)
        seen.append(await adjust("k2", -10_000))  # -1000: low, within the emergency credit of 20.00
        seen.append(await adjust("k3", -1_500))  # -2500 < -2000: exhausted at night: deferred
        assert await service.sweep() == []  # still night
        clock.set(AFTERNOON)
        swept = await service.sweep()
        seen.append(await service.move(Movement("topup", "k4", "F0003", "electricity", 1_000, "cash")))
        seen.append(await service.move(Movement("topup", "k5", "F0003", "electricity", 2_000, "cash")))
        clock.set(HOLIDAY_NOON)
        seen.append(await adjust("k6", -5_000))  # exhausted on a holiday: deferred again
        clock.set(AFTERNOON)
        await service.flush()
        events = [e async for e in service.events(stop_at_end=True)]
        middle = events[2].cursor
        resumed = [e async for e in service.events(middle, stop_at_end=True)]
        state = {s.wallet: s for s, _ in await service.balance("F0003")}["electricity"]
        await service.close()
        return seen, swept, events, resumed, state, middle

    seen, swept, events, resumed, state, middle = asyncio.run(go())
    assert [(r.balance_minor, r.status) for r in seen] == [
        (15_000, Status.OK), (9_000, Status.LOW), (-1_000, Status.LOW), (-2_500, Status.CUT_OFF_DEFERRED),
        (-1_500, Status.CUT_OFF), (500, Status.LOW), (-4_500, Status.CUT_OFF_DEFERRED)]
    assert [e.type for e in swept] == [EventType.CUT_OFF]
    assert [(e.type, e.balance_minor, e.cause) for e in events] == [
        (EventType.LOW_BALANCE, 9_000, "k1"), (EventType.CUT_OFF_DEFERRED, -2_500, "k3"),
        (EventType.CUT_OFF, -2_500, "sweep"), (EventType.RESTORED, 500, "k5"),
        (EventType.CUT_OFF_DEFERRED, -4_500, "k6")]
    assert [e.cursor for e in resumed] == [e.cursor for e in events if e.cursor > middle]
    assert state.status == Status.CUT_OFF_DEFERRED


def test_an_unknown_meter_is_refused_naming_it_and_changes_nothing(backends, site):
    table = readings(6, 6)
    good = batches(table, 36)
    ids = good[1].column("meter_id").to_pylist()
    bad = good[1].set_column(0, "meter_id", pa.array(ids[:5] + ["E-GHOST"] + ids[6:], pa.string()))

    async def go(with_bad: bool):
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        await deduct(service, "g0", good[0])
        await service.flush()
        counts = await service.ledger.counts()
        if with_bad:
            with pytest.raises(errors.InvalidArgument) as info:
                await deduct(service, "bad", bad)
            assert "E-GHOST" in info.value.message and "row 6" in info.value.message
            assert await service.ledger.counts() == counts
        result = await deduct(service, "g1", good[1])
        await service.close()
        return result.deductions

    with_bad = asyncio.run(go(True))
    backends.empty()
    assert with_bad.equals(asyncio.run(go(False)))


def test_a_restarted_service_continues_the_stream_where_the_ledger_left_it(backends, site):
    table = readings(6, 24)
    parts = batches(table, 29)

    async def go():
        debited: Counter = Counter()
        for lo, hi in ((0, len(parts) // 2), (len(parts) // 2, len(parts))):
            service = backends.service(SiteDocs.from_site_file(site) if lo == 0 else None,
                                       clock=Clock(AFTERNOON), limits=service_limits)
            await service.start()
            for i in range(lo, hi):
                for row in (await deduct(service, f"b{i}", parts[i])).deductions.to_pylist():
                    debited[(row["account_id"], row["wallet"])] += row["amount_minor"]
            await service.close()
        return debited

    service_limits = Limits(checkpoint_every_batches=3)  # restore from a checkpoint plus after-images
    debited = asyncio.run(go())
    assert {k: v for k, v in debited.items() if v} == expected_debits(site, table)


class FailingStore:
    """A store that dies after (or before) applying: a crash between the ledger
    commit and the answer."""

    def __init__(self, inner, *, apply_first: bool):
        self.inner, self.apply_first = inner, apply_first
        self.name = "failing"

    async def apply(self, seq, entries, policies, friendly, overrides=None):
        if self.apply_first:
            await self.inner.apply(seq, entries, policies, friendly, overrides)
        raise StoreUnavailable("crashed")

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("apply_first", [False, True], ids=["before-apply", "after-apply"])
def test_an_operation_committed_but_not_answered_is_applied_once_by_recovery(backends, site, apply_first):
    table = readings(6, 4)

    async def go():
        inner = backends.store()
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        service.store = FailingStore(inner, apply_first=apply_first)
        service.limits = type(service.limits)(apply_retry_s=0.05)
        await service.start()
        with pytest.raises(errors.Unavailable) as info:
            await deduct(service, "b0", table)
        assert info.value.committed
        for task in (service._settler, service._retrier, service._maintainer):
            task.cancel()
        service._settler = service._retrier = service._maintainer = None
        await service.ledger.close()  # the process dies here, its store keeps what it applied
        if backends.redis is None:
            backends_store = inner  # the embedded store dies with the process: rebuilt from the ledger
        else:
            await inner.close()
            backends_store = backends.store()
        restarted = backends.service(clock=Clock(AFTERNOON))
        restarted.store = backends_store if backends.redis else MemoryStore()
        await restarted.start()
        replay = await deduct(restarted, "b0", table)
        report = await reconcile(restarted.store, restarted.ledger)
        counts = await restarted.ledger.counts()
        await restarted.close()
        return replay, report, counts

    replay, report, counts = asyncio.run(go())
    assert replay.replayed and counts["ops"] == 1
    assert report.ok and report.pending == 0, report.lines()
    assert int(replay.deductions.column("balance_minor").to_numpy().sum()) == -replay.deducted_minor


def test_rebuild_restores_balances_and_cut_off_states_from_the_ledger(backends, site):
    clock = Clock(NIGHT)

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=clock)
        await service.start()
        await service.move(Movement("adjust", "a", "F0004", "water", -9_000, "", "fault"))  # cut off
        await service.move(Movement("adjust", "c", "F0005", "electricity", -9_000, "", "fault"))  # deferred
        await service.move(Movement("topup", "b", "F0004", "electricity", 9_000, "online"))
        await deduct(service, "d", readings(6, 4))
        await service.flush()
        before = {(s.account_id, s.wallet): s async for page in service.store.scan() for s in page}
        await service.store.replace_all([])
        broken = await reconcile(service.store, service.ledger)
        await service.rebuild_store()
        fixed = await reconcile(service.store, service.ledger)
        after = {(s.account_id, s.wallet): s async for page in service.store.scan() for s in page}
        clock.set(AFTERNOON)
        swept = await service.sweep()  # the rebuilt store still knows which cut-offs wait
        await service.close()
        return before, broken, fixed, after, swept

    before, broken, fixed, after, swept = asyncio.run(go())
    assert not broken.ok and fixed.ok
    assert after == before
    assert after[("F0004", "water")].status == Status.CUT_OFF
    assert after[("F0005", "electricity")].status == Status.CUT_OFF_DEFERRED
    assert [(e.type, e.account_id, e.wallet) for e in swept] == [(EventType.CUT_OFF, "F0005", "electricity")]


def test_loading_a_new_registry_keeps_the_meter_state_of_known_meters(backends, site, tmp_path):
    table = readings(6, 12)
    first, rest = table.slice(0, 72), table.slice(72)

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        a = await deduct(service, "a", first)
        meters = (site.parent / "meters.csv").read_bytes() + b"E-NEW,F0000,ELEC,register,electricity\n"
        version = await service.load_config(meters=meters)
        with pytest.raises(errors.InvalidArgument):
            await service.load_config(meters=b"meter_id,account_id,tariff_id\nX,NOPE,ELEC\n")
        b = await deduct(service, "b", rest)
        await service.close()
        restarted = backends.service(clock=Clock(AFTERNOON))
        await restarted.start()
        meters_known = len(restarted.config.registry.meters)
        await restarted.close()
        return a, b, version, meters_known

    a, b, version, meters_known = asyncio.run(go())
    assert version >= 2 and meters_known == 13
    debited: Counter = Counter()
    for result in (a, b):
        for row in result.deductions.to_pylist():
            debited[(row["account_id"], row["wallet"])] += row["amount_minor"]
    assert {k: v for k, v in debited.items() if v} == expected_debits(site, table)


@NEEDS_SERVERS
def test_the_redis_script_runs_the_same_wallet_state_machine_as_python(redis_server):
    """Random movements, friendly flags and accounts' own policies: Lua and
    Python agree on every balance, state and event, and a repeated sequence
    number changes nothing."""

    from rating.prepaid.store.redis import RedisStore

    sync_redis.Redis.from_url(redis_server.url).flushall()
    rng = random.Random(2025)
    wallets = ["electricity", "water"]
    policies = {"electricity": WalletPolicy("electricity", 1_000, 500, 200, True,
                                            warning_levels_minor=(1_000, 300, -200, -450)),
                "water": WalletPolicy("water", 0, 0, -100, True)}
    accounts = [f"A{i}" for i in range(7)] + ["odd|id:{x}"]
    own = {("A1", "electricity"): WalletPolicy("electricity", 0, 5_000, 0, True),  # a long credit
           ("A2", "electricity"): WalletPolicy("electricity", 1_000, 500, 200, False),  # never cut
           ("odd|id:{x}", "water"): WalletPolicy("water", 300, 100, 0, True, warning_levels_minor=(300, 50))}

    async def go():
        memory, redis_store = MemoryStore(), RedisStore(redis_server.url)
        for store in (memory, redis_store):
            await empty_store(store)
        for seq in range(1, 250):
            n = rng.randint(1, 6)
            pairs = rng.sample([(a, w) for a in accounts for w in wallets], n)
            entries = Entries([a for a, _ in pairs], [w for _, w in pairs],
                              np.array([rng.randint(-1_500, 1_200) for _ in pairs], dtype=np.int64))
            friendly = {w: rng.random() < 0.4 for w in wallets}
            overrides = {pair: p for pair, p in own.items() if pair in pairs}
            m = await memory.apply(seq, entries, policies, friendly, overrides)
            r = await redis_store.apply(seq, entries, policies, friendly, overrides)
            assert m.balances_minor.tolist() == r.balances_minor.tolist()
            assert m.statuses.tolist() == r.statuses.tolist()
            assert [e.to_json() for e in m.events] == [e.to_json() for e in r.events]
            again = await redis_store.apply(seq, entries, policies, friendly, overrides)
            assert again.balances_minor.tolist() == r.balances_minor.tolist()
            if seq % 25 == 0:
                unfriendly = {w: False for w in wallets}
                ms, _ = await memory.sweep(10_000 + seq, policies, unfriendly, own)
                rs, _ = await redis_store.sweep(10_000 + seq, policies, unfriendly, own)
                assert sorted(ms, key=repr) == sorted(rs, key=repr)
        mine = sorted((s for page in [p async for p in memory.scan()] for s in page), key=repr)
        theirs = sorted((s for page in [p async for p in redis_store.scan()] for s in page), key=repr)
        assert mine == theirs
        await redis_store.close()

    asyncio.run(go())


def test_settling_twice_records_events_once(backends, site):
    async def go():
        ledger = backends.ledger()
        await ledger.open()
        from rating.prepaid.ledger.base import NewOp
        from rating.prepaid.records import Event
        row, created = await ledger.commit(NewOp("k", "topup", b"x", Entries.one("A", "water", 5)))
        again, created_again = await ledger.commit(NewOp("k", "topup", b"y", Entries.one("A", "water", 7)))
        event = Event(EventType.RESTORED, "A", "water", 5, 1, "k")
        await ledger.settle([Settlement(row.seq, b"r", [event])])
        await ledger.settle([Settlement(row.seq, b"r", [event])])
        counts = await ledger.counts()
        found = await ledger.find("k")
        await ledger.close()
        return row, created, again, created_again, counts, found

    row, created, again, created_again, counts, found = asyncio.run(go())
    assert created and not created_again and again.seq == row.seq and again.payload_sha256 == b"x"
    assert counts == {"ops": 1, "entries": 1, "events": 1}
    assert found.applied and found.result == b"r"


def test_an_operation_unsettled_longer_than_the_store_remembers_is_applied_once(backends, site):
    table = readings(6, 4)
    later = Clock(AFTERNOON + dt.timedelta(days=8))  # past the store's 7-day memory of operations

    async def go():
        inner = backends.store()
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        service.store = FailingStore(inner, apply_first=True)
        service.limits = type(service.limits)(apply_retry_s=0.05)
        await service.start()
        with pytest.raises(errors.Unavailable):
            await deduct(service, "b0", table)
        for task in (service._settler, service._retrier, service._maintainer):
            task.cancel()
        await service.ledger.close()
        if backends.redis is not None:
            r = sync_redis.Redis.from_url(backends.redis.url)
            for key in r.scan_iter(match="{s*}:op:*"):
                r.delete(key)  # the store forgot it applied the operation
            await inner.close()
        restarted = backends.service(clock=later)
        await restarted.start()
        report = await reconcile(restarted.store, restarted.ledger)
        await restarted.close()
        return report

    report = asyncio.run(go())
    assert report.ok and report.pending == 0, report.lines()


class FlakyLedger:
    """A ledger whose commit of one batch fails once, as if the database went away."""

    def __init__(self, inner, fail_key: str, gate: asyncio.Event):
        self.inner, self.fail_key, self.gate, self.failed = inner, fail_key, gate, False
        self.name = inner.name

    async def commit(self, op):
        if op.key == self.fail_key and not self.failed:
            self.failed = True
            await self.gate.wait()  # fail only once the later batches are rated
            from rating.prepaid.ledger.base import LedgerUnavailable
            raise LedgerUnavailable("connection lost")
        return await self.inner.commit(op)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_failed_commit_voids_the_batches_rated_after_it_and_a_resend_rates_them_once(backends, site):
    table = readings(6, 20)
    parts = batches(table, 24)

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        gate = asyncio.Event()
        service.ledger = FlakyLedger(service.ledger, "batch:b3", gate)
        await service.start()
        begun = []
        for i, p in enumerate(parts[:7]):  # each rated before the next starts
            begun.append(service.start_deduct(f"b{i}", p))
            assert await begun[-1].rated
        gate.set()
        outcomes = []
        for started in begun:  # b0..b6 were all rated before b3's commit failed
            try:
                outcomes.append(await started.result)
            except errors.Unavailable as exc:
                outcomes.append(exc)
        resent = [await deduct(service, f"b{i}", p) for i, p in enumerate(parts) if i >= 3]
        debited: Counter = Counter()
        for result in [o for o in outcomes[:3]] + resent:
            for row in result.deductions.to_pylist():
                debited[(row["account_id"], row["wallet"])] += row["amount_minor"]
        await service.close()
        return outcomes, debited

    outcomes, debited = asyncio.run(go())
    assert [type(o).__name__ for o in outcomes] == ["DeductionResult"] * 3 + ["Unavailable"] * 4
    assert dict(+debited) == expected_debits(site, table)


def test_rating_in_a_child_process_debits_the_same_and_survives_its_death(backends, site):
    import os
    import signal

    table = readings(6, 16)
    parts = batches(table, 32)

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON), rating_process=True)
        await service.start()
        debited: Counter = Counter()

        def add(result):
            for row in result.deductions.to_pylist():
                debited[(row["account_id"], row["wallet"])] += row["amount_minor"]

        for i, part in enumerate(parts[:3]):
            add(await deduct(service, f"b{i}", part))
        os.kill(service.planner._process.pid, signal.SIGKILL)
        service.planner._process.join()
        with pytest.raises(errors.Unavailable, match="restarted"):
            await deduct(service, "b3", parts[3])
        for i, part in enumerate(parts[3:], start=3):  # the new child reloaded the meter state
            add(await deduct(service, f"b{i}", part))
        await service.close()
        return debited

    assert dict(+asyncio.run(go())) == expected_debits(site, table)


@pytest.mark.parametrize("rating_process", [False, True], ids=["thread", "child"])
def test_a_reading_ahead_of_the_servers_clock_debits_nothing_and_the_next_batch_prices_on(
        backends, site, rating_process):
    """The clock says 2025-05-05 10:00; a reading dated 2030 once debited a
    month of maintenance. It is a future_reading, and not the meter's last."""
    table = readings(6, 8)
    first, second = batches(table, 48)
    ahead = readings(6, 1, start=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)).slice(0, 1)

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON),
                                   rating_process=rating_process)
        await service.start()
        results = [await deduct(service, "b0", pa.concat_tables([first, ahead])),
                   await deduct(service, "b1", second)]
        await service.close()
        return results

    results = asyncio.run(go())
    assert results[0].anomalies["code"].to_pylist() == ["future_reading"]
    assert results[0].anomalies["meter_id"].to_pylist() == ahead["meter_id"].to_pylist()
    assert results[1].anomalies.num_rows == 0
    debited: Counter = Counter()
    for result in results:
        for row in result.deductions.to_pylist():
            debited[(row["account_id"], row["wallet"])] += row["amount_minor"]
    assert dict(+debited) == expected_debits(site, table)


def test_one_service_per_ledger_the_second_is_refused_until_the_first_lets_go(backends, site):
    async def go():
        first = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await first.start()
        await first.move(Movement("topup", "t1", "F0001", "water", 500))
        second = backends.service(clock=Clock(AFTERNOON), limits=Limits(claim_wait_s=0.3))
        with pytest.raises(errors.Unavailable, match="ledger is in use: .* held by rating pid") as refused:
            await second.start()
        counts = await first.ledger.counts()  # the refused one changed nothing
        await first.close()
        third = backends.service(clock=Clock(AFTERNOON), limits=Limits(claim_wait_s=0.3))
        await third.start()
        balance = await third.balance("F0001")
        await third.close()
        return refused.value, counts, balance

    refused, counts, balance = asyncio.run(go())
    assert str(os.getpid()) in refused.message and counts["ops"] == 1
    assert {s.wallet: s.balance_minor for s, _ in balance}["water"] == 500


def test_an_accounts_own_policy_decides_its_cut_off_deferral_and_sweep(backends, site):
    """F0001 has 500.00 of emergency credit, F0002 is never cut (say, a medical
    need); F0000 follows the site (20.00). F0003 (credit 30.00) is deferred at
    night, then its credit is raised to 1,000.00: the sweep restores it."""
    accounts = (site.parent / "accounts.csv").read_text().splitlines()
    header, rows = accounts[0] + ",electricity.emergency_credit,electricity.cut_off", accounts[1:]
    own = {"F0001": ",500,", "F0002": ",,false", "F0003": ",30,"}
    (site.parent / "accounts.csv").write_text("\n".join(
        [header] + [r + own.get(r.split(",")[0], ",,") for r in rows]) + "\n")
    clock = Clock(AFTERNOON)

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=clock)
        await service.start()
        after = {}
        for account in ("F0000", "F0001", "F0002"):
            after[account] = await service.move(Movement("adjust", f"a-{account}", account, "electricity",
                                                         -30_000, "", "test"))  # -300.00
        shown = {a: {s.wallet: p for s, p in await service.balance(a)}["electricity"]
                 for a in ("F0000", "F0001", "F0002")}
        clock.set(NIGHT)
        deferred = await service.move(Movement("adjust", "a-F0003", "F0003", "electricity", -5_000, "", "t"))
        text = (site.parent / "accounts.csv").read_text().replace("F0003,Flat F0003,80,MAINT,30,",
                                                                   "F0003,Flat F0003,80,MAINT,1000,")
        await service.load_config(accounts=text.encode())
        clock.set(AFTERNOON)
        swept = await service.sweep()
        state = {s.wallet: s for s, _ in await service.balance("F0003")}["electricity"]
        await service.close()
        return after, shown, deferred, swept, state

    after, shown, deferred, swept, state = asyncio.run(go())
    assert {a: r.status for a, r in after.items()} == {
        "F0000": Status.CUT_OFF, "F0001": Status.LOW, "F0002": Status.LOW}
    assert shown["F0001"].cut_below_minor == -50_000 and not shown["F0002"].cut_off
    assert shown["F0000"].cut_below_minor == -2_000
    assert deferred.status == Status.CUT_OFF_DEFERRED  # -50.00 is past its own 30.00 of credit, at night
    assert [(e.type, e.account_id) for e in swept] == [(EventType.RESTORED, "F0003")]
    assert state.status == Status.LOW and state.balance_minor == -5_000


def test_balances_stop_at_the_limit_on_both_sides_and_a_restart_reads_them_back(backends, site):
    """A top-up to 2^53 - 1 minor units is held exactly; one more unit, an
    adjustment past -(2^53 - 1), or a deduction from a wallet at it is refused
    before anything is committed; a restart starts and reads the same."""
    limit = BALANCE_LIMIT_MINOR
    first, second = batches(readings(6, 8), 48)

    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        debit = (await deduct(service, "b0", first)).deductions.to_pylist()[0]
        account, wallet = debit["account_id"], debit["wallet"]
        held = {s.wallet: s.balance_minor for s, _ in await service.balance(account)}[wallet]
        top = await service.move(Movement("topup", "up", "F0005", "parking", limit, "cash"))
        down = await service.move(Movement("adjust", "down", account, wallet, -limit - held, "", "test"))
        await service.flush()
        counts = await service.ledger.counts()
        refused = []
        for attempt in (service.move(Movement("topup", "up2", "F0005", "parking", 1, "cash")),
                        service.move(Movement("adjust", "down2", account, wallet, -1, "", "test")),
                        deduct(service, "b1", second)):
            with pytest.raises(errors.BalanceLimit) as info:
                await attempt
            refused.append(info.value)
        await service.flush()
        assert await service.ledger.counts() == counts  # nothing committed
        await service.close()
        restarted = backends.service(clock=Clock(AFTERNOON))
        await restarted.start()
        after = {(a, s.wallet): s.balance_minor for a in ("F0005", account)
                 for s, _ in await restarted.balance(a)}
        report = await reconcile(restarted.store, restarted.ledger)
        await restarted.close()
        return top, down, refused, after, report, (account, wallet)

    top, down, refused, after, report, (account, wallet) = asyncio.run(go())
    assert top.balance_minor == limit and down.balance_minor == -limit
    assert after[("F0005", "parking")] == limit and after[(account, wallet)] == -limit
    assert report.ok, report.lines()
    assert [(e.reason, e.metadata["wallet"]) for e in refused] == [
        ("LIMIT_EXCEEDED", "parking"), ("LIMIT_EXCEEDED", wallet), ("LIMIT_EXCEEDED", wallet)]
    assert refused[0].metadata["balance_minor"] == str(limit) and "limit" in refused[0].message


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=NEEDS_SERVERS)])
def test_a_store_refuses_a_balance_past_the_limit_in_its_atomic_step(kind, request):
    """The ledger refuses first; the store's own check (its Lua script, or its
    one synchronous step) keeps it from ever holding an inexact number."""
    from rating.prepaid.store.redis import RedisStore

    async def go():
        if kind == "redis":
            server = request.getfixturevalue("redis_server")
            sync_redis.Redis.from_url(server.url).flushall()
            store = RedisStore(server.url)
        else:
            store = MemoryStore()
        await empty_store(store)
        policies, friendly = {"water": WalletPolicy("water")}, {"water": True}
        b = next(f"B{i}" for i in range(10**4) if shard_of(f"B{i}") == shard_of("A"))  # one script call
        two = Entries(["A", b], ["water", "water"], np.array([5, BALANCE_LIMIT_MINOR - 5], dtype=np.int64))
        await store.apply(1, two, policies, friendly)
        with pytest.raises(StoreUnavailable, match=f"'water' of account '{b}' would hold 9007199254740992"):
            await store.apply(2, Entries(["A", b], ["water", "water"], np.array([1, 6], dtype=np.int64)),
                              policies, friendly)
        states = await store.wallets("A") + await store.wallets(b)
        held = sorted((s.account_id, s.balance_minor) for s in states)
        await store.close()
        return held

    assert [balance for _, balance in asyncio.run(go())] == [5, BALANCE_LIMIT_MINOR - 5]  # A's +1 not applied


def test_the_ledger_keeps_the_limit_across_a_reopen_and_a_fold(backends):
    """The ledger's bound on balances is read back at open and survives a fold
    of PostgreSQL's wallet sums: the exact check still sees the wallet."""
    def op(key, amount):
        return NewOp(f"move:{key}", "adjust", b"", Entries.one("A", "water", amount))

    async def go():
        ledger = backends.ledger()
        await ledger.open()
        await ledger.commit(op("a", BALANCE_LIMIT_MINOR - 1))
        await ledger.close()
        ledger = backends.ledger()
        await ledger.open()
        if hasattr(ledger, "fold"):
            await ledger.fold()
        await ledger.commit(op("b", 1))  # exactly at the limit
        with pytest.raises(BalanceOutOfRange, match="'water' of account 'A' holds 9007199254740991"):
            await ledger.commit(op("c", 1))
        retried, created = await ledger.commit(op("b", 1))  # a known key is no new movement
        await ledger.commit(op("d", -2 * BALANCE_LIMIT_MINOR))
        with pytest.raises(BalanceOutOfRange):
            await ledger.commit(op("e", -1))
        balances, counts = await ledger.balances(), await ledger.counts()
        await ledger.close()
        return created, balances, counts

    created, balances, counts = asyncio.run(go())
    assert not created and balances == [("A", "water", -BALANCE_LIMIT_MINOR)] and counts["ops"] == 3


@NEEDS_SERVERS
def test_the_redis_scripts_answer_arrays_and_are_reloaded_when_redis_lost_them(redis_server):
    """The apply script's kept result is arrays of integers (balances, states,
    event item, type and level), no text to parse; after SCRIPT FLUSH (as after a
    Redis restart) the next apply and sweep load their scripts again, and a
    repeated sequence returns its first answer."""
    from rating.prepaid.store.redis import RedisStore

    raw = sync_redis.Redis.from_url(redis_server.url)
    raw.flushall()
    policies = {"water": WalletPolicy("water", 100, 50, 0, True)}
    account = next(f"R{i}" for i in range(10**4) if shard_of(f"R{i}") == 5)

    async def go():
        store = await empty_store(RedisStore(redis_server.url))
        first = await store.apply(1, Entries.one(account, "water", -120), policies, {"water": True})
        raw.script_flush()
        second = await store.apply(2, Entries.one(account, "water", 30), policies, {"water": True})
        raw.script_flush()
        changed, _ = await store.sweep(3, policies, {"water": False})
        replayed = await store.apply(1, Entries.one(account, "water", -120), policies, {"water": True})
        await store.close()
        return first, second, changed, replayed

    first, second, changed, replayed = asyncio.run(go())
    kept = raw.eval("return cmsgpack.unpack(redis.call('GET', KEYS[1]))", 1, "{s5}:op:1")
    assert kept == [[-120], [int(Status.CUT_OFF_DEFERRED)],
                    [1, int(EventType.LOW_BALANCE), 100, 1, int(EventType.CUT_OFF_DEFERRED), 0]]
    assert [e.type for e in first.events] == [EventType.LOW_BALANCE, EventType.CUT_OFF_DEFERRED]
    assert first.balances_minor.tolist() == [-120] and second.balances_minor.tolist() == [-90]
    assert [(c.account_id, c.balance_minor, c.status) for c in changed] == [(account, -90, Status.CUT_OFF)]
    assert replayed.balances_minor.tolist() == [-120] and replayed.events == first.events
