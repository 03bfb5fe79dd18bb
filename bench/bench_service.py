"""The prepaid service end to end: a streaming client sends 10k-reading Arrow
batches to `rating serve`, on Redis (AOF on) + PostgreSQL and on the
embedded default, and beside it the ceiling of the same Redis for the
balance script alone.

Workloads (100k meters, one account wallet per meter, a telescopic tariff):
- quarter: every batch holds one 15-minute read of 10,000 meters
  (10,000 account-deductions per batch);
- hour: an aggregator sends an hour of reads per meter, 4 per meter, so a
  batch holds 2,500 meters (2,500 account-deductions per batch).
The first two rounds (baseline readings, then every wallet's first debit
with its low-balance and cut-off events) warm up and are not timed.

    .venv/bin/python -m bench.bench_service                   # everything, ~5 minutes
    .venv/bin/python -m bench.bench_service --backends redis --workloads hour --repeats 3

Printed: readings/s and account-deductions/s end to end (medians of the
repeats), batch latency p50 and p99 (from the moment the client takes a
batch to send it to its answer; WINDOW batches in flight per stream), the
Redis script ceiling in deductions/s from the same run, and the ratio of
the service to it. JSON lands in bench/results/service.json.
`suite_figures` is the hook `rating bench` calls (bench/suite_service.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
BATCH_READINGS = 10_000
# Batches in flight per stream: enough to overlap rating, commit and apply. On the 2-core
# machine 4 gave ~8 % fewer deductions/s and 6 no more than 5, with a longer p99.
WINDOW = 5
START = dt.datetime(2025, 5, 5, tzinfo=dt.timezone.utc)

SITE_TOML = """\
[site]
name = "Bench Estate"
currency = "INR"
time_zone = "Asia/Kolkata"

[files]
tariffs = "tariffs.toml"
meters = "meters.csv"
accounts = "accounts.csv"

[prepaid.wallets.electricity]
low_balance = 100
emergency_credit = 50
"""
TARIFFS_TOML = """\
[[tariff]]
id = "ELEC"
unit = "kWh"
effective_from = 2024-01-01

[tariff.energy]
mode = "graduated"
slabs = [{ upto = 100, price = 4.50 }, { upto = 300, price = 9.25 }, { price = 12.80 }]
"""


def write_site(folder: Path, meters: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.toml").write_text(SITE_TOML)
    (folder / "tariffs.toml").write_text(TARIFFS_TOML)
    accounts = pa.array([f"A{i:07d}" for i in range(meters)])
    pacsv.write_csv(pa.table({"account_id": accounts}), folder / "accounts.csv")
    meter_ids = pa.array([f"M{i:07d}" for i in range(meters)])
    pacsv.write_csv(pa.table({"meter_id": meter_ids, "account_id": accounts,
                              "tariff_id": pa.array(["ELEC"] * meters),
                              "wallet": pa.array(["electricity"] * meters)}), folder / "meters.csv")
    return folder / "site.toml"


@dataclass
class Workload:
    name: str
    meters: int
    reads_per_meter: int  # per batch: 1 (quarter) or 4 (hour)

    @property
    def meters_per_batch(self) -> int:
        return BATCH_READINGS // self.reads_per_meter

    @property
    def batches_per_round(self) -> int:
        return -(-self.meters // self.meters_per_batch)

    def rounds(self, count: int) -> list[list[bytes]]:
        """`count` rounds, each every meter once (`reads_per_meter` reads), as Arrow IPC."""
        from rating.prepaid.records import table_bytes

        ids = pa.array([f"M{i:07d}" for i in range(self.meters)])
        rng = np.random.default_rng(2025)
        value = np.full(self.meters, 1000.0)
        base_us = int(START.timestamp() * 1_000_000)
        step_us = 15 * 60 * 1_000_000
        out = []
        for r in range(count):
            batches = []
            for first in range(0, self.meters, self.meters_per_batch):
                meters = np.arange(first, min(first + self.meters_per_batch, self.meters))
                ts, values, index = [], [], []
                for q in range(self.reads_per_meter):
                    value[meters] += rng.integers(0, 600, len(meters)) / 1000.0  # up to 0.6 kWh a quarter
                    ts.append(np.full(len(meters), base_us + (r * self.reads_per_meter + q) * step_us))
                    values.append(value[meters].copy())
                    index.append(meters)
                table = pa.table({"meter_id": ids.take(pa.array(np.concatenate(index))),
                                  "ts": pa.array(np.concatenate(ts), pa.timestamp("us", tz="UTC")),
                                  "value": pa.array(np.concatenate(values))})
                batches.append(table_bytes(table))
            out.append(batches)
        return out


class Serve:
    """`rating serve` in its own process (the client must not share its GIL)."""

    def __init__(self, folder: Path, args: list[str]):
        self.folder, self.args = folder, args

    def __enter__(self) -> Serve:
        port_file = self.folder / "port"
        port_file.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RATING_LOG_LEVEL": "warning"}
        self.log = open(self.folder / "serve.log", "ab")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen([sys.executable, "-m", "rating", "serve", "--port", "0", "--port-file",
                                      str(port_file), *self.args], stdout=self.log, stderr=self.log,
                                     cwd=self.folder, env=env)
        deadline = time.monotonic() + 120
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rating serve did not start: " + (self.folder / "serve.log").read_text())
            time.sleep(0.05)
        self.target = f"127.0.0.1:{int(port_file.read_text())}"
        return self

    def wait_idle(self, *, quiet_s: float = 0.3, limit_s: float = 30.0) -> None:
        """Until the server and its children have used no CPU for `quiet_s`
        (it settles answered batches after the stream ends)."""
        deadline = time.monotonic() + limit_s
        last = _cpu_ticks(self.proc.pid)
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            now = _cpu_ticks(self.proc.pid)
            if now == last:
                return
            last = now

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _cpu_ticks(pid: int) -> int:
    """CPU ticks of a process and its children (Linux /proc; elsewhere 0, so
    wait_idle returns at once)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_redis_quiet(url: str, *, limit_s: float = 60.0) -> None:
    """Until Redis is not rewriting its AOF (a forked child that competes for the CPU)."""
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
                return
            time.sleep(0.2)
    finally:
        client.close()


async def stream(target: str, batches: list[tuple[str, bytes]],
                 window: int = WINDOW) -> tuple[float, list[float], int, int]:
    """Seconds, per-batch latencies (µs), readings and account-deductions."""
    from rating.client.calls import AsyncRatingClient

    sent: dict[str, float] = {}

    async def source():
        for batch_id, payload in batches:
            sent[batch_id] = time.perf_counter()
            yield batch_id, payload

    latencies, readings, deductions = [], 0, 0
    async with AsyncRatingClient(target, timeout_s=600) as client:
        began = time.perf_counter()
        async for reply in client.stream(source(), window=window):
            latencies.append((time.perf_counter() - sent[reply.batch_id]) * 1e6)
            readings += reply.readings
            deductions += reply.deductions.num_rows
        return time.perf_counter() - began, latencies, readings, deductions


WARMUP_ROUNDS = 2  # the baselines, then the first debit of every wallet (its low-balance events)
# Rounds per timed segment: 10 rounds of 100k meters are a million ledger entries, about one
# fold of the PostgreSQL ledger's wallet sums (FOLD_ENTRIES_MIN), so each segment pays its share.
SEGMENT_ROUNDS = {"hour": 10, "quarter": 10}


def run_service(workload: Workload, target: str, *, repeats: int, segment_rounds: int, tag: str,
                window: int = WINDOW, between=None) -> dict:
    """Warm-up rounds, then `repeats` timed segments of `segment_rounds` rounds;
    `between()`, if given, runs before each segment and after the last."""
    rounds = workload.rounds(WARMUP_ROUNDS + repeats * segment_rounds)
    ids = iter(range(10**9))
    named = [[(f"{tag}-{next(ids)}", b) for b in r] for r in rounds]
    for warmup in named[:WARMUP_ROUNDS]:
        asyncio.run(stream(target, warmup, window))
    runs_s, latencies, readings, deductions = [], [], 0, 0
    for k in range(repeats):
        if between is not None:
            between()
        first = WARMUP_ROUNDS + k * segment_rounds
        segment = [b for r in named[first: first + segment_rounds] for b in r]
        seconds, lat, n_readings, n_deductions = asyncio.run(stream(target, segment, window))
        runs_s.append(seconds)
        latencies += lat
        readings, deductions = n_readings, n_deductions
    if between is not None:
        between()
    return {"runs_s": runs_s, "latencies_us": latencies, "readings": readings, "deductions": deductions}


CEILING_CLIENTS = 4  # enough to keep Redis busy: one client leaves it waiting on the client's Python


class RedisCeiling:
    """The balance script alone: RedisStore.apply of `entries` account wallets
    (spread over the 64 shards, one script call per shard, all in one pipeline),
    `ops` times per client, CEILING_CLIENTS clients at once. Each `sample()`
    is one timed run; the service bench takes them between its segments, so
    the ceiling and the service see the same machine (a shared one drifts)."""

    def __init__(self, url: str, *, entries: int, ops: int):
        self.url, self.entries, self.ops = url, entries, ops
        self.runs_s: list[float] = []
        self._rng = np.random.default_rng(9)
        self._seqs = iter(range(2_000_000_000, 3_000_000_000))

    @property
    def items(self) -> int:
        return self.entries * self.ops * CEILING_CLIENTS

    def sample(self) -> None:
        self.runs_s.append(asyncio.run(self._measure()))

    async def _measure(self) -> float:
        from rating.prepaid.records import Entries
        from rating.prepaid.store.redis import RedisStore
        from rating.prepaid.wallets import WalletPolicy

        policy = {"electricity": WalletPolicy("electricity", 10_000, 5_000, 0, True)}
        friendly = {"electricity": False}
        stores = [RedisStore(self.url) for _ in range(CEILING_CLIENTS)]
        for store in stores:
            store.bind("bench")  # the epoch a ledger would give it
        await stores[0].replace_all([])  # an empty store with its marker

        async def client(store, count):
            for _ in range(count):
                picked = self._rng.choice(100_000, self.entries, replace=False)
                accounts = [f"C{i:07d}" for i in picked]
                debits = -self._rng.integers(1, 500, self.entries)
                op = Entries(accounts, ["electricity"] * self.entries, debits)
                await store.apply(next(self._seqs), op, policy, friendly)

        try:
            await asyncio.gather(*(client(s, 2) for s in stores))  # warm-up: connections, scripts loaded
            began = time.perf_counter()
            await asyncio.gather(*(client(s, self.ops) for s in stores))
            return time.perf_counter() - began
        finally:
            for s in stores:
                await s.close()


def median_rate(items: int, runs_s: list[float]) -> float:
    return items / statistics.median(runs_s)


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(np.array(values), p)) if values else float("nan")


def measure(work_dir: Path, *, meters: int, workloads: list[str], backends: list[str], repeats: int,
            segment_rounds: dict[str, int], ceiling: bool = True, ceiling_ops: int = 10, window: int = WINDOW,
            log=print) -> dict:
    """Run everything; returns the hook's answer (see bench/suite_service.py)."""
    from tests.servers import PostgresServer, RedisServer, postgres_bin, redis_binary

    work_dir.mkdir(parents=True, exist_ok=True)
    site = write_site(work_dir / "site", meters)
    figures: dict = {}
    servers: dict = {}
    redis = postgres = None
    if ("redis" in backends or ceiling) and (redis_binary() is None or postgres_bin() is None):
        log("redis+postgres skipped: redis-server or PostgreSQL binaries not found")
        backends, ceiling = [b for b in backends if b != "redis"], False
    try:
        if "redis" in backends or ceiling:
            redis = RedisServer(work_dir / "redis").start()
            servers["redis"] = _redis_version(redis.url)
        ceiling_runs = RedisCeiling(redis.url, entries=2_500, ops=ceiling_ops) if ceiling and redis else None
        if "redis" in backends:
            postgres = PostgresServer(work_dir / "postgres").start()
            servers["postgresql"] = _pg_version(postgres.dsn)
        for backend in backends:
            for name in workloads:
                workload = Workload(name, meters, 1 if name == "quarter" else 4)
                folder = work_dir / f"{backend}-{name}"
                folder.mkdir(parents=True, exist_ok=True)
                args = ["--site", str(site), "--data-dir", str(folder / "data")]
                if backend == "redis":
                    args += ["--redis", redis.url, "--postgres", postgres.dsn,
                             "--postgres-schema", f"bench_{name}"]
                with Serve(folder, args) as serve:
                    def between(serve=serve, backend=backend):
                        """Measure from a quiet machine: the server idle, Redis not rewriting;
                        a ceiling sample in between the Redis segments."""
                        serve.wait_idle()
                        if redis is not None:
                            wait_redis_quiet(redis.url)
                        if ceiling_runs is not None and backend == "redis":
                            ceiling_runs.sample()
                            wait_redis_quiet(redis.url)

                    result = run_service(workload, serve.target, repeats=repeats,
                                         segment_rounds=segment_rounds[name], tag=f"{backend}-{name}",
                                         window=window, between=between)
                _record(figures, name, backend, result)
                log(_summary(name, backend, result))
        if ceiling_runs is not None:
            while len(ceiling_runs.runs_s) < 3:  # no Redis segment took samples
                ceiling_runs.sample()
            log(f"redis script ceiling, {CEILING_CLIENTS} clients: "
                f"{median_rate(ceiling_runs.items, ceiling_runs.runs_s):,.0f} deductions/s")
            figures["redis_script_ceiling"] = {
                "label": f"Redis balance script alone (2,500 deductions an op, 64 shard calls a pipeline, "
                         f"{CEILING_CLIENTS} clients; sampled between the service runs)",
                "kind": "ceiling", "unit": "deductions/s", "items": ceiling_runs.items,
                "runs_s": ceiling_runs.runs_s}
    finally:
        if redis is not None:
            redis.close()
        if postgres is not None:
            postgres.close()
    return {"servers": servers, "figures": figures}


def _record(figures: dict, name: str, backend: str, result: dict) -> None:
    label = "Redis (AOF) + PostgreSQL" if backend == "redis" else "embedded (memory + SQLite)"
    for unit, items in (("deductions/s", result["deductions"]), ("readings/s", result["readings"])):
        figure = {"label": f"{name} batches, {label}", "kind": "end_to_end", "unit": unit, "items": items,
                  "runs_s": result["runs_s"]}
        if unit == "deductions/s":
            figure["latencies_us"] = result["latencies_us"]
        figures[f"stream_{name}_{backend}_{unit.split('/')[0]}"] = figure


def _summary(name: str, backend: str, result: dict) -> str:
    lat = result["latencies_us"]
    readings = median_rate(result["readings"], result["runs_s"])
    deductions = median_rate(result["deductions"], result["runs_s"])
    return (f"{backend:>8} {name:>7}: {readings:>12,.0f} readings/s {deductions:>10,.0f} deductions/s  "
            f"p50 {percentile(lat, 50) / 1000:6.1f} ms  p99 {percentile(lat, 99) / 1000:6.1f} ms")


def _redis_version(url: str) -> str:
    import redis

    return str(redis.Redis.from_url(url).info("server")["redis_version"])


def _pg_version(dsn: str) -> str:
    import asyncpg

    async def version():
        con = await asyncpg.connect(dsn)
        try:
            return await con.fetchval("SHOW server_version")
        finally:
            await con.close()
    return str(asyncio.run(version()))


def suite_figures(*, quick: bool, work_dir: Path) -> dict:
    """The hook of `rating bench` (bench/suite_service.py)."""
    if quick:  # a smoke run: the embedded server, a small site, the script ceiling briefly
        return measure(work_dir, meters=2_500, workloads=["hour"], backends=["embedded"], repeats=2,
                       segment_rounds={"hour": 1, "quarter": 1}, ceiling_ops=2, log=lambda _line: None)
    result = measure(work_dir, meters=100_000, workloads=["hour", "quarter"], backends=["embedded", "redis"],
                     repeats=3, segment_rounds=SEGMENT_ROUNDS, log=lambda _line: None)
    result["note"] = (f"100,000 meters, 10,000-reading batches, {WINDOW} in flight per stream; medians of 3 "
                      f"timed segments of {SEGMENT_ROUNDS['hour']} rounds of every meter (a million ledger "
                      "entries each: the PostgreSQL ledger's wallet-sum folds and Redis AOF rewrites fall "
                      "inside them); the Redis ceiling is sampled between the segments.")
    return result


def report(result: dict) -> list[str]:
    figures = result["figures"]
    lines = ["| figure | readings/s | deductions/s | p50 ms | p99 ms | of Redis ceiling |",
             "|---|---|---|---|---|---|"]
    ceiling = figures.get("redis_script_ceiling")
    ceiling_rate = median_rate(ceiling["items"], ceiling["runs_s"]) if ceiling else None
    for key, f in figures.items():
        if not key.endswith("_deductions"):
            continue
        readings = figures[key.replace("_deductions", "_readings")]
        rate = median_rate(f["items"], f["runs_s"])
        lat = f.get("latencies_us", [])
        share = f"{rate / ceiling_rate:.2f}" if ceiling_rate and "redis" in key else "-"
        per_s = median_rate(readings["items"], readings["runs_s"])
        lines.append(f"| {f['label']} | {per_s:,.0f} | {rate:,.0f} | {percentile(lat, 50) / 1000:.1f} | "
                     f"{percentile(lat, 99) / 1000:.1f} | {share} |")
    if ceiling_rate:
        lines.append(f"| {ceiling['label']} | - | {ceiling_rate:,.0f} | - | - | 1.00 |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--workloads", default="hour,quarter")
    parser.add_argument("--backends", default="redis,embedded")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hour-rounds", type=int, default=SEGMENT_ROUNDS["hour"],
                        help="rounds (hours of every meter) per repeat")
    parser.add_argument("--quarter-rounds", type=int, default=SEGMENT_ROUNDS["quarter"])
    parser.add_argument("--window", type=int, default=WINDOW, help="batches in flight per stream")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "results" / "service-work")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "service.json")
    args = parser.parse_args(argv)
    import shutil

    shutil.rmtree(args.work_dir, ignore_errors=True)
    result = measure(args.work_dir, meters=args.meters, workloads=args.workloads.split(","),
                     backends=args.backends.split(","), repeats=args.repeats,
                     segment_rounds={"hour": args.hour_rounds, "quarter": args.quarter_rounds},
                     window=args.window)
    print("\n".join(report(result)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    shutil.rmtree(args.work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
