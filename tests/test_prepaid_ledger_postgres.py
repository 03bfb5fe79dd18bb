"""The PostgreSQL ledger's wallet sums: entries folded into `wallet_sums` up to
a mark, plus the entries after it, are every wallet's ledger sum, for
balances, rebuilds and the refund floor (rating/prepaid/ledger/postgres.py)."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
import numpy as np
import pytest

from rating.prepaid.ledger.base import LimitExceeded, NewOp, Settlement
from rating.prepaid.ledger.postgres import PostgresLedger
from rating.prepaid.records import Entries
from tests.servers import NEEDS_SERVERS

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: postgres_server
pytestmark = NEEDS_SERVERS
_schemas = itertools.count()


def deduction(key: str, rng: np.random.Generator, accounts: int = 40) -> NewOp:
    picked = sorted(rng.choice(accounts, size=12, replace=False).tolist())
    return NewOp(key, "deduct", b"h", Entries([f"A{i:03d}" for i in picked], ["water"] * 12,
                                              -rng.integers(1, 900, 12)))


async def summed_directly(con, schema: str, where: str = "") -> dict:
    rows = await con.fetch(f"SELECT account_id, wallet, SUM(amount_minor)::bigint FROM {schema}.entries "
                           f"{where} GROUP BY 1, 2")
    return {(a, w): b for a, w, b in rows}


def test_folds_between_and_during_commits_keep_every_balance_the_sum_of_its_entries(postgres_server):
    schema = f"fold{next(_schemas)}"
    rng = np.random.default_rng(11)

    async def go():
        ledger = PostgresLedger(postgres_server.dsn, schema=schema)
        await ledger.open()
        con = await asyncpg.connect(postgres_server.dsn)
        seen = []
        for round_ in range(4):
            ops = [deduction(f"r{round_}-{k}", rng) for k in range(30)]

            async def commit_all(ops=ops):
                for op in ops:
                    await ledger.commit(op)
            await asyncio.gather(commit_all(), ledger.fold(), ledger.fold())  # folds while committing
            seen.append((dict(((a, w), b) for a, w, b in await ledger.balances()),
                         await summed_directly(con, schema)))
        unsettled = (await ledger.pending())[:5]
        settled = [row for row in await ledger.pending() if row not in unsettled]
        await ledger.settle([Settlement(row.seq, b"r", []) for row in settled])
        mark = await ledger.fold()
        settled_only = dict(((a, w), b) for a, w, b in await ledger.balances(settled_only=True))
        unsettled_seqs = ",".join(str(r.seq) for r in unsettled)
        expected_settled = await summed_directly(con, schema, f"WHERE seq NOT IN ({unsettled_seqs})")
        folded = await con.fetchval(f"SELECT COUNT(*) FROM {schema}.wallet_sums")
        await con.close()
        await ledger.close()
        return seen, settled_only, expected_settled, mark, folded

    seen, settled_only, expected_settled, mark, folded = asyncio.run(go())
    for balances, direct in seen:
        assert balances == direct and len(direct) == 40
    assert settled_only == expected_settled and mark >= 120 and folded == 40


def test_the_refund_floor_sees_folded_and_later_entries(postgres_server):
    schema = f"fold{next(_schemas)}"

    def refund(key, amount):
        return NewOp(key, "refund", b"h", Entries.one("A1", "water", -amount), floor=("A1", "water", 0))

    async def go():
        ledger = PostgresLedger(postgres_server.dsn, schema=schema)
        await ledger.open()
        await ledger.commit(NewOp("t1", "topup", b"h", Entries.one("A1", "water", 500)))
        await ledger.fold()
        await ledger.commit(refund("r1", 400))  # 500 folded: leaves 100
        with pytest.raises(LimitExceeded) as over:
            await ledger.commit(refund("r2", 200))
        await ledger.fold()
        await ledger.commit(refund("r3", 100))  # all folded now: leaves 0
        with pytest.raises(LimitExceeded) as empty:
            await ledger.commit(refund("r4", 1))
        balances = await ledger.balances()
        counts = await ledger.counts()
        await ledger.close()
        return over.value, empty.value, balances, counts

    over, empty, balances, counts = asyncio.run(go())
    assert over.balance_minor == 100 and empty.balance_minor == 0
    assert balances == [("A1", "water", 0)] and counts["ops"] == 3  # the refused ones wrote nothing


def test_kill9_of_postgres_under_concurrent_calls_answers_only_ok_or_unavailable(tmp_path):
    """Concurrent movements and reads while PostgreSQL is killed -9 and
    restarted: every call either succeeds or is UNAVAILABLE (never an
    unexpected error, which clients see as UNKNOWN), and calls succeed again
    once it is back."""
    from rating.prepaid import errors
    from rating.prepaid.records import Movement
    from rating.prepaid.service import Limits, PrepaidService
    from rating.prepaid.sitedocs import SiteDocs
    from rating.prepaid.store.memory import MemoryStore
    from tests.prepaid_site import AFTERNOON, Clock, write_site
    from tests.servers import PostgresServer

    server = PostgresServer().start()
    site = write_site(tmp_path / "site", flats=4)

    async def go():
        service = PrepaidService(MemoryStore(), PostgresLedger(server.dsn, timeout_s=5.0),
                                 docs=SiteDocs.from_site_file(site), clock=Clock(AFTERNOON),
                                 limits=Limits(apply_retry_s=0.2))
        await service.start()
        outcomes: dict[str, int] = {}
        running = True

        async def call(n: int) -> None:
            i = 0
            while running:
                i += 1
                try:
                    if i % 3:
                        await service.move(Movement("topup", f"w{n}-{i}", f"F000{n % 4}", "water", 100,
                                                    "cash"))
                    else:
                        [e async for e in service.events(0, stop_at_end=True)]
                    outcome = "ok"
                except errors.Unavailable:
                    outcome = "unavailable"
                    await asyncio.sleep(0.01)
                except Exception as exc:  # noqa: BLE001 - what the test looks for
                    outcome = f"{type(exc).__name__}: {exc}"
                outcomes[outcome] = outcomes.get(outcome, 0) + 1

        workers = [asyncio.create_task(call(n)) for n in range(12)]
        await asyncio.sleep(0.3)
        for _ in range(3):
            await asyncio.to_thread(server.kill9)
            await asyncio.sleep(0.2)
            await asyncio.to_thread(server.start)
            await asyncio.sleep(0.4)
        running = False
        await asyncio.gather(*workers)
        after = await service.move(Movement("topup", "after", "F0001", "water", 100, "cash"))
        await service.close()
        return outcomes, after

    try:
        outcomes, after = asyncio.run(go())
    finally:
        server.close()
    assert set(outcomes) == {"ok", "unavailable"}, outcomes
    assert after.balance_minor > 0
