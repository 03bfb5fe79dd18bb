"""Durability with real processes killed the hard way (docs/durability.md).

`rating serve` runs as a child process; SIGKILL hits it (or Redis) in the
middle of a stream; after a restart the client resends from the last
acknowledged batch. Whatever was acknowledged is there exactly once, and
the ledger and the balances equal rating the whole stream once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import redis

from rating.client.calls import ClientError, RatingClient
from rating.config.loader import load_config
from rating.engine import rate
from rating.prepaid.reconcile import reconcile
from tests.prepaid_site import batches, readings, write_site
from tests.servers import NEEDS_SERVERS

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: backends, redis_server, postgres_server
ROOT = Path(__file__).resolve().parent.parent


class ServeProcess:
    """`python -m rating serve` on a free port, with its log in a file."""

    def __init__(self, folder: Path, args: list[str], env: dict[str, str] | None = None):
        self.folder, self.args, self.env = folder, args, env or {}
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> ServeProcess:
        port_file = self.folder / "port"
        port_file.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RATING_APPLY_RETRY_S": "0.5", **self.env}
        log = open(self.folder / "serve.log", "ab")  # noqa: SIM115 - closed after Popen
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rating", "serve", "--port", "0", "--port-file", str(port_file),
             "--log-format", "text", *self.args], stdout=log, stderr=log, cwd=self.folder, env=env)
        log.close()
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rating serve did not start:\n" + (self.folder / "serve.log").read_text())
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        return self

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        return self.proc.returncode


def expected_debits(site, table) -> dict:
    config = load_config(site)
    wallet_of = {m.meter_id: m.wallet for m in config.registry.meters}
    charges = rate(table, config=config).charges
    totals: Counter = Counter()
    for a, m, amount in zip(charges["account_id"].to_pylist(), charges["meter_id"].to_pylist(),
                            charges["amount"].to_pylist(), strict=True):
        totals[(a, wallet_of.get(m, "maintenance"))] += int(amount.scaleb(2))
    return dict(+totals)


def stream_until(client: RatingClient, parts, start: int, stop_after: int | None, on_stop) -> int:
    """Stream parts[start:]; after `stop_after` answers call on_stop() (the
    kill) while the rest are in flight. Returns how many were answered."""
    acked = start
    try:
        for reply in client.stream([(f"b{i}", p) for i, p in enumerate(parts)][start:], window=8):
            assert reply.batch_id == f"b{acked}"
            acked += 1
            if stop_after is not None and acked - start == stop_after:
                on_stop()
    except ClientError as exc:
        assert exc.code == grpc.StatusCode.UNAVAILABLE, exc
    return acked


def ledger_state(backends):
    async def read():
        ledger, store = backends.ledger(), backends.store()
        await ledger.open()
        balances = {(a, w): -b for a, w, b in await ledger.balances() if b}
        pending = await ledger.pending()
        report = await reconcile(store, ledger) if backends.redis is not None else None
        await ledger.close()
        await store.close()
        return balances, pending, report
    return asyncio.run(read())


def serve_args(backends, site) -> list[str]:
    args = ["--site", str(site), "--data-dir", str(backends.folder / "data")]
    if backends.redis is not None:
        args += ["--redis", backends.redis.url, "--postgres", backends.postgres.dsn,
                 "--postgres-schema", backends.schema]
    return args


def test_kill9_of_the_server_mid_stream_then_resend_from_the_last_answer(backends, tmp_path):
    site = write_site(tmp_path / "site", flats=8)
    table = readings(8, 60)
    parts = batches(table, 40)  # 24 batches
    server = ServeProcess(tmp_path, serve_args(backends, site)).start()
    try:
        with RatingClient(server.target) as client:
            acked = stream_until(client, parts, 0, 7, server.kill9)
        assert 7 <= acked < len(parts)
        server.start()  # same ledger (and Redis): recovers what was committed and not applied
        with RatingClient(server.target) as client:
            replies = list(client.stream([(f"b{i}", p) for i, p in enumerate(parts)][acked:], window=8))
            assert [r.batch_id for r in replies] == [f"b{i}" for i in range(acked, len(parts))]
        assert server.stop() == 0
    finally:
        if server.proc.poll() is None:
            server.kill9()
    balances, pending, report = ledger_state(backends)
    assert pending == []
    assert balances == expected_debits(site, table)
    if report is not None:
        assert report.ok, report.lines()


def _cli(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rating", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


@NEEDS_SERVERS
def test_kill9_of_redis_mid_stream_then_reconcile_and_rebuild_from_the_ledger(tmp_path, postgres_server):
    from tests.servers import RedisServer

    site = write_site(tmp_path / "site", flats=8)
    table = readings(8, 60)
    parts = batches(table, 40)
    store = RedisServer(tmp_path / "redis").start()  # AOF on, appendfsync everysec
    schema = "crash_redis"
    backend = ["--redis", store.url, "--postgres", postgres_server.dsn, "--postgres-schema", schema]
    server = ServeProcess(tmp_path, ["--site", str(site), *backend]).start()
    try:
        with RatingClient(server.target) as client:
            acked = stream_until(client, parts, 0, 6, store.kill9)
            assert acked < len(parts)
            store.start()  # same port, same AOF
            deadline = time.monotonic() + 30
            while acked < len(parts):  # the client resends from its last answer until it is through
                acked = stream_until(client, parts, acked, None, None)
                assert time.monotonic() < deadline, "the stream did not get through after Redis came back"
        assert server.stop() == 0
        after_restart = _cli("reconcile", *backend)
        assert after_restart.returncode == 0, after_restart.stdout + after_restart.stderr
        redis.Redis.from_url(store.url).flushall()  # Redis loses everything
        lost = _cli("reconcile", *backend)
        assert lost.returncode == 4 and "mismatches" in lost.stdout
        rebuilt = _cli("rebuild", *backend)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert _cli("reconcile", *backend).returncode == 0
        client_view = {}
        server.start()
        with RatingClient(server.target) as client:
            for account in [f"F{i:04d}" for i in range(8)]:
                for w in client.balance(account).wallets:
                    if w.balance_minor:
                        client_view[(account, w.wallet)] = -w.balance_minor
        server.stop()
    finally:
        if server.proc.poll() is None:
            server.kill9()
        store.close()
    assert client_view == expected_debits(site, table)


@NEEDS_SERVERS
def test_a_backend_down_answers_unavailable_and_applies_nothing(tmp_path):
    from rating.client.calls import AsyncRatingClient
    from rating.prepaid.ledger.postgres import PostgresLedger
    from rating.server import app
    from rating.server.settings import Settings
    from tests.servers import PostgresServer, RedisServer

    site = write_site(tmp_path / "site", flats=2)
    store = RedisServer(tmp_path / "redis").start()
    ledger = PostgresServer().start()  # its own folder under /tmp: the postgres user must reach it
    settings = Settings(port=0, site=str(site), redis_url=store.url, postgres_dsn=ledger.dsn,
                        log_format="text", apply_retry_s=0.2, rating_process=0).check()

    async def counts():
        check = PostgresLedger(ledger.dsn)
        await check.open()
        try:
            return await check.counts()
        finally:
            await check.close()

    async def go():
        running = await app.start(settings)
        codes = {}
        async with AsyncRatingClient(f"127.0.0.1:{running.port}", timeout_s=10) as client:
            await client.topup("F0001", "water", 1_000, key="first")
            before = await counts()
            store.kill9()
            await asyncio.sleep(0.1)  # past the store's freshness window
            for name, call in (("topup", client.topup("F0001", "water", 1_000, key="k-redis")),
                               ("deduct", client.deduct("b-redis", readings(2, 2)))):
                try:
                    await call
                except ClientError as exc:
                    codes[name] = (exc.code, exc.metadata.get("committed"))
            after_redis = await counts()
            store.start()
            ledger.kill9()
            try:
                await client.topup("F0001", "water", 1_000, key="k-pg")
            except ClientError as exc:
                codes["topup-pg"] = (exc.code, exc.metadata.get("committed"))
            ledger.start()
            balance = await client.balance("F0001")
        await running.stop(1)
        return codes, before, after_redis, await counts(), balance

    try:
        codes, before, after_redis, final, balance = asyncio.run(go())
    finally:
        store.close()
        ledger.close()
    unavailable = (grpc.StatusCode.UNAVAILABLE, "false")
    assert codes == {"topup": unavailable, "deduct": unavailable, "topup-pg": unavailable}
    assert after_redis == before and final["ops"] == before["ops"]  # nothing applied, not even in part
    assert {w.wallet: w.balance_minor for w in balance.wallets}["water"] == 1_000


@NEEDS_SERVERS
def test_rebuild_refuses_while_a_server_holds_the_ledger_and_runs_once_it_is_gone(tmp_path, postgres_server):
    from tests.servers import RedisServer

    site = write_site(tmp_path / "site", flats=2)
    store = RedisServer(tmp_path / "redis").start()
    backend = ["--redis", store.url, "--postgres", postgres_server.dsn, "--postgres-schema", "claimed"]
    server = ServeProcess(tmp_path, ["--site", str(site), *backend]).start()
    try:
        with RatingClient(server.target) as client:
            client.topup("F0001", "water", 700, key="t1")
        refused = _cli("rebuild", *backend)
        second = ServeProcess(tmp_path / "second", ["--site", str(site), *backend])
        (tmp_path / "second").mkdir()
        try:
            second.start()
            raise AssertionError("a second server started on a held ledger")
        except RuntimeError as exc:
            second_log = str(exc)
        server.kill9()  # a dead holder lets go at once
        rebuilt = _cli("rebuild", *backend)
    finally:
        if server.proc.poll() is None:
            server.kill9()
        store.close()
    assert refused.returncode == 3 and "the ledger is in use" in refused.stderr, refused.stderr
    assert "stop it first" in refused.stderr and "held by rating pid" in refused.stderr
    assert "the ledger is in use" in second_log
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
