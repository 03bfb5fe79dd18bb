"""Unknown outcomes: calls that may already be committed are retried with the
same key and backoff until the timeout (rating.client.retry), converge to exactly
one movement, and give up with an exit status that names the key."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import grpc
import pyarrow.parquet as pq
import pytest

from rating.cli.prepaid import EXIT_OUTCOME_UNKNOWN
from rating.client.calls import AsyncRatingClient, RatingClient
from rating.client.retry import BACKOFF_MAX_S, BACKOFF_S, Attempts, outcome_unknown
from rating.prepaid.ledger.sqlite import SqliteLedger
from rating.server import app
from tests.prepaid_site import AFTERNOON, Clock, readings, write_site
from tests.test_prepaid_cli import rating
from tests.test_prepaid_crash import ServeProcess, expected_debits

S = grpc.StatusCode


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_attempt_deadlines_double_and_pauses_are_jittered_within_bounds():
    clock = FakeClock()
    attempts = Attempts(10.0, 0.001, clock=clock, rand=lambda: 1.0)
    deadlines, pauses = [], []
    while True:
        deadlines.append(attempts.timeout_s())
        clock.now += deadlines[-1]
        pause = attempts.pause_s()
        if pause is None:
            break
        pauses.append(pause)
        clock.now += pause
    assert deadlines[:4] == [0.001, 0.002, 0.004, 0.008]
    assert pauses[:3] == [BACKOFF_S, 2 * BACKOFF_S, 4 * BACKOFF_S] and max(pauses) == BACKOFF_MAX_S
    assert clock.now == pytest.approx(110.0, abs=0.01)  # gave up at the overall timeout, not past it
    half = Attempts(10.0, clock=FakeClock(), rand=lambda: 0.5)
    assert half.timeout_s() == 10.0 and half.pause_s() == BACKOFF_S / 2  # full jitter: a fraction


def test_which_codes_leave_the_outcome_unknown():
    unknown = {c for c in S if outcome_unknown(c, {})}
    assert unknown == {S.DEADLINE_EXCEEDED, S.CANCELLED, S.UNKNOWN, S.INTERNAL, S.UNAVAILABLE}
    assert not outcome_unknown(S.UNAVAILABLE, {"committed": "false"})  # the server said: not applied
    assert outcome_unknown(S.UNAVAILABLE, {"committed": "true"})  # applied later: retry for the answer


def test_tiny_attempt_deadlines_still_converge_to_exactly_one_movement(tmp_path):
    site = write_site(tmp_path / "site", flats=6)
    table = readings(6, 8)

    async def go():
        settings = app.Settings(port=0, data_dir=str(tmp_path / "data"), site=str(site), log_format="text",
                                sweep_interval_s=3600.0).check()
        running = await app.start(settings, app.make_service(settings, clock=Clock(AFTERNOON)))
        async with AsyncRatingClient(f"127.0.0.1:{running.port}", attempt_timeout_s=0.001) as client:
            started = time.monotonic()
            moves = [await client.topup("F0001", "water", 100 + i, key=f"tiny-{i}") for i in range(20)]
            deductions = [await client.deduct(f"b{i}", part) for i, part in enumerate(
                [table.slice(0, 16), table.slice(16, 16), table.slice(32, 16)])]
            took_s = time.monotonic() - started
            balance = await client.balance("F0001")
        await running.service.flush()
        counts = await running.service.ledger.counts()
        await running.stop(1)
        return moves, deductions, balance, counts, took_s

    moves, deductions, balance, counts, took_s = asyncio.run(go())
    assert [m.sequence for m in moves] == list(range(1, 21))  # each key committed once, in order
    assert [d.sequence for d in deductions] == [21, 22, 23]
    assert counts["ops"] == 23
    water = {w.wallet: w.balance_minor for w in balance.wallets}["water"]
    debited = sum(row["amount_minor"] for d in deductions for row in d.deductions.to_pylist()
                  if row["account_id"] == "F0001" and row["wallet"] == "water")
    assert water == sum(100 + i for i in range(20)) - debited
    assert took_s < 60


def test_the_cli_converges_with_tiny_attempts_and_gives_up_naming_the_key(tmp_path):
    site = write_site(tmp_path / "site", flats=3)
    server = ServeProcess(tmp_path, ["--site", str(site)]).start()
    at = ["--server", server.target]
    try:
        tiny = [rating("topup", "F0001", "water", "5.00", "--key", f"TINY-{i}", "--attempt-timeout", "0.001",
                       *at, cwd=tmp_path) for i in range(2)]
        with HeldLedger(tmp_path):  # the commit waits, so no attempt is answered in time
            stuck = rating("topup", "F0001", "water", "7.00", "--key", "STUCK-1", "--timeout", "2",
                           "--attempt-timeout", "0.2", *at, cwd=tmp_path)
        again = rating("topup", "F0001", "water", "7.00", "--key", "STUCK-1", *at, cwd=tmp_path)
        with RatingClient(server.target) as client:
            water = {w.wallet: w.balance_minor for w in client.balance("F0001").wallets}["water"]
    finally:
        assert server.stop() == 0
    assert [t.returncode for t in tiny] == [0, 0], [t.stderr for t in tiny]
    assert stuck.returncode == EXIT_OUTCOME_UNKNOWN, stuck.stderr
    assert "outcome unknown" in stuck.stderr and "--key STUCK-1" in stuck.stderr
    assert again.returncode == 0 and "already recorded" in again.stdout, again.stdout + again.stderr
    assert water == 2 * 500 + 700  # the stuck top-up was committed once, when the ledger was free


class HeldLedger:
    """Another writer holding the embedded ledger: a commit waits for it, so no call is answered."""

    def __init__(self, folder):
        self.db = sqlite3.connect(folder / "rating-data" / "ledger.db", isolation_level=None, timeout=5)

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, *exc):
        self.db.execute("ROLLBACK")
        self.db.close()


def test_the_stream_verb_gives_up_naming_the_first_unanswered_batch_and_resends_it_once(tmp_path):
    site = write_site(tmp_path / "site", flats=3)
    table = readings(3, 30)
    pq.write_table(table, tmp_path / "day.parquet")
    server = ServeProcess(tmp_path, ["--site", str(site)]).start()
    at = ["--server", server.target, "--batch-rows", "25"]
    try:
        with HeldLedger(tmp_path):
            stuck = rating("stream", "day.parquet", "--batch-prefix", "day", "--timeout", "1", "--retry", "2",
                           *at, cwd=tmp_path)
        again = rating("stream", "day.parquet", "--batch-prefix", "day", *at, cwd=tmp_path)
        replay = rating("stream", "day.parquet", "--batch-prefix", "day", *at, cwd=tmp_path)
    finally:
        assert server.stop() == 0

    async def balances():
        ledger = SqliteLedger(tmp_path / "rating-data" / "ledger.db")
        await ledger.open()
        try:
            return {(a, w): -b for a, w, b in await ledger.balances() if b}
        finally:
            await ledger.close()

    assert stuck.returncode == EXIT_OUTCOME_UNKNOWN, stuck.stderr
    assert "no answer for batch 'day-000000'" in stuck.stderr and "resends from day-000000" in stuck.stderr
    assert again.returncode == 0 and "8 batches (" in again.stderr, again.stderr
    assert replay.returncode == 0 and "8 batches (8 already applied)" in replay.stderr, replay.stderr
    assert asyncio.run(balances()) == expected_debits(site, table)
