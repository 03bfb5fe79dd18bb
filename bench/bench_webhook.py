"""Gateway webhook payments end to end over HTTP, on both dues ledgers, beside
each ledger's raw insert rate measured in the same run.

    .venv/bin/python -m bench.bench_webhook                       # both ledgers, ~2 minutes
    .venv/bin/python -m bench.bench_webhook --ledger sqlite --payments 2000 --repeat 3

A society of flats, each with an issued bill (maintenance and water). `rating
serve --http-port` runs in its own process (the load must not share its GIL);
this process is the gateway: every request is built and signed before the
clock starts, then sent over keep-alive HTTP/1.1 connections by a small
asyncio client, and a payment counts once its 200 answer (committed,
allocated) is read. Each payment pays one bill exactly; each run pays bills
no run paid before.

- closed:  `--connections` requests in flight (the gateway's retries
  and bursts): payments/s, and each request's latency;
- offered: `--rate` payments/s offered on a fixed schedule (an open loop:
  a request's latency runs from its planned send time, so queueing shows);
- direct:  the same kind of payments through `apply_gateway_payment` in
  this process, one at a time (the ledger's path without HTTP);
- ceiling: one row INSERT and COMMIT at a time into a table of the same
  database (the ledger's raw insert rate, durable commits as the ledger's).

Printed: medians of the repeats, latency p50/p99, the ratios to the ceiling.
`suite_figures` is the hook of `rating bench` (scenario `webhook`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = "Test Towers"  # tests/prepaid_site.py's society
BILL_MINOR = 262_000
SECRET = "whsec_bench_0123456789abcdef"
TARGET_PER_S = 1_000
OFFERED_P99_MS = 50.0


def _issue(ledger, flats: int) -> dict[str, str]:
    """Issue May's bills of every flat; account -> its bill's number."""
    from rating.billing.documents import Cycle
    from tests.billing_drafts import batch, draft
    from tests.prepaid_site import account_ids

    may = Cycle(SITE, dt.date(2025, 5, 1), dt.date(2025, 5, 31), dt.date(2025, 6, 1), dt.date(2025, 6, 15))
    bills = [draft(a, may, maintenance=250_000, water=12_000) for a in account_ids(flats)]

    async def go() -> dict[str, str]:
        await ledger.open()
        try:
            await ledger.issue(batch(bills, may))
            issued = await ledger.documents(SITE, cycle_id=may.cycle_id, limit=flats)
            return {d.account_id: d.number for d in issued}
        finally:
            await ledger.close()
    return asyncio.run(go())


def _events(bills: dict[str, str], first: int, count: int, tag: str) -> list[tuple[str, bytes]]:
    """(unit, body) of captured payments of the bills of flats first .. first + count - 1."""
    from tests.prepaid_site import account_ids

    accounts = account_ids(first + count)
    created = int(time.time())
    return [(accounts[n], json.dumps({
        "id": f"evt_{tag}_{n}", "type": "payment.captured", "created": created,
        "data": {"payment_id": f"pay_{tag}_{n}", "amount_minor": BILL_MINOR, "currency": "INR",
                 "unit": accounts[n], "bill": bills[accounts[n]]}}, separators=(",", ":")).encode())
            for n in range(first, first + count)]


def _requests(events: list[tuple[str, bytes]]) -> list[bytes]:
    from rating.payments.webhook import SIGNATURE_HEADER, sign

    now = int(time.time())
    key = [SECRET.encode()]
    return [(f"POST /webhooks/razorpay HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
             f"content-length: {len(body)}\r\n{SIGNATURE_HEADER}: {sign(key, now, body)}\r\n\r\n"
             ).encode() + body for _, body in events]


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    body = await reader.readexactly(length)
    if not head.startswith(b"HTTP/1.1 200") or b'"status":"applied"' not in body:
        status = head.partition(b"\r\n")[0]
        raise RuntimeError(f"webhook answered {status!r}: {body[:300]!r}")


async def closed_loop(port: int, requests: list[bytes], connections: int) -> tuple[float, list[float]]:
    """Seconds for all requests with `connections` in flight; each one's latency (µs)."""
    queue = list(reversed(requests))
    latencies: list[float] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            request = queue.pop()
            start = time.perf_counter()
            await _exchange(reader, writer, request)
            latencies.append((time.perf_counter() - start) * 1e6)
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - began, latencies


async def open_loop(port: int, requests: list[bytes], rate_per_s: float, connections: int) -> list[float]:
    """Latencies (µs) of requests offered at `rate_per_s`, each from its planned send time."""
    idle: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    start = time.perf_counter() + 0.05

    async def one(i: int, request: bytes) -> None:
        planned = start + i / rate_per_s
        await asyncio.sleep(max(0.0, planned - time.perf_counter()))
        reader, writer = await idle.get()  # none idle: the wait is part of the latency
        await _exchange(reader, writer, request)
        latencies.append((time.perf_counter() - planned) * 1e6)
        idle.put_nowait((reader, writer))

    await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    while not idle.empty():
        idle.get_nowait()[1].close()
    return latencies


async def direct(ledger, events: list[tuple[str, bytes]]) -> float:
    """Seconds to apply the payments through the dues ledger's gateway path, one at a time."""
    from rating.web.dues_payments import DuesGatewayPayments
    from rating.web.payments_port import GatewayPayment

    payments = DuesGatewayPayments(ledger)
    on = dt.date(2025, 6, 10)
    work = []
    for unit, body in events:
        data = json.loads(body)["data"]
        work.append(GatewayPayment(SITE, "razorpay", f"evt_{data['payment_id']}", "captured",
                                   data["payment_id"], unit, data["bill"], "", data["amount_minor"], on, "",
                                   "gateway:razorpay"))
    began = time.perf_counter()
    for payment in work:
        outcome = await payments.apply_gateway_payment(payment)
        if outcome.status != "applied":
            raise RuntimeError(f"direct payment {payment.payment_id}: {outcome}")
    return time.perf_counter() - began


async def sqlite_ceiling(path: Path, rows: int) -> float:
    """Seconds for `rows` one-row transactions (BEGIN IMMEDIATE, INSERT, COMMIT) in the
    ledger's file, with its settings (WAL, synchronous=FULL)."""
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS bench_inserts (seq INTEGER PRIMARY KEY, account_id TEXT, "
                   "amount_minor INTEGER, reference TEXT)")
        began = time.perf_counter()
        for i in range(rows):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO bench_inserts (account_id, amount_minor, reference) VALUES (?, ?, ?)",
                       (f"F{i:05d}", BILL_MINOR, f"pay_{i}"))
            db.execute("COMMIT")
        return time.perf_counter() - began
    finally:
        db.close()


async def postgres_ceiling(dsn: str, schema: str, rows: int) -> float:
    """Seconds for `rows` one-row INSERTs, each its own committed transaction."""
    import asyncpg

    con = await asyncpg.connect(dsn)
    try:
        await con.execute(f"CREATE TABLE IF NOT EXISTS {schema}.bench_inserts (seq bigserial "
                          "PRIMARY KEY, account_id text, amount_minor bigint, reference text)")
        insert = await con.prepare(f"INSERT INTO {schema}.bench_inserts (account_id, amount_minor, "
                                   "reference) VALUES ($1, $2, $3)")
        began = time.perf_counter()
        for i in range(rows):
            await insert.fetch(f"F{i:05d}", BILL_MINOR, f"pay_{i}")
        return time.perf_counter() - began
    finally:
        await con.close()


class Plan:
    def __init__(self, *, payments: int, repeats: int, rate_per_s: float, offered_s: float, direct: int,
                 connections: int) -> None:
        self.payments, self.repeats, self.rate_per_s = payments, repeats, rate_per_s
        self.offered = int(rate_per_s * offered_s)
        self.direct, self.connections = direct, connections
        self.warmup = min(200, payments)

    @property
    def flats(self) -> int:
        return self.warmup + self.repeats * (self.payments + self.direct) + self.offered


QUICK = dict(payments=100, repeats=2, rate_per_s=500, offered_s=0.5, direct=50, connections=16)
FULL = dict(payments=3000, repeats=3, rate_per_s=500, offered_s=6.0, direct=1000, connections=32)


def _write_secrets(path: Path) -> Path:
    path.write_text(f'[razorpay]\nsecrets = ["{SECRET}"]\n', encoding="utf-8")
    return path


def _wait_file(path: Path, limit_s: float = 120.0) -> int:
    deadline = time.monotonic() + limit_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear: the HTTP listener did not start")
        time.sleep(0.02)
    return int(path.read_text())


def measure_backend(name: str, plan: Plan, folder: Path, *, postgres=None, log=print) -> dict:
    """The figures of one ledger: closed loop, offered load, direct path, insert ceiling."""
    from bench.bench_service import Serve
    from rating.billing.ledger_postgres import PostgresDuesLedger
    from rating.billing.ledger_sqlite import SqliteDuesLedger
    from tests.prepaid_site import write_site

    folder.mkdir(parents=True, exist_ok=True)
    site = write_site(folder / "site", flats=plan.flats)
    data, schema = folder / "data", f"bench_webhook_{os.getpid()}"
    args = ["--site", str(site), "--data-dir", str(data), "--http-port", "0",
            "--http-port-file", str(folder / "http_port"), "--webhook-secrets-file",
            str(_write_secrets(folder / "webhooks.toml")), "--log-format", "text"]
    if postgres is not None:
        args += ["--postgres", postgres.dsn, "--postgres-schema", schema]

    def ledger():
        if postgres is None:
            return SqliteDuesLedger(data / "ledger.db")
        return PostgresDuesLedger(postgres.dsn, schema=schema)

    bills = _issue(ledger(), plan.flats)
    first = 0

    def take(count: int, tag: str) -> list[tuple[str, bytes]]:
        nonlocal first
        events, first = _events(bills, first, count, tag), first + count
        return events

    closed_s, closed_us = [], []
    with Serve(folder, args):
        port = _wait_file(folder / "http_port")
        asyncio.run(closed_loop(port, _requests(take(plan.warmup, "warm")), plan.connections))
        for r in range(plan.repeats):
            seconds, latencies = asyncio.run(closed_loop(port, _requests(take(plan.payments, f"c{r}")),
                                                         plan.connections))
            closed_s.append(seconds)
            closed_us += latencies
        offered = _requests(take(plan.offered, "offered"))
        started = time.perf_counter()
        offered_us = asyncio.run(open_loop(port, offered, plan.rate_per_s, 4 * plan.connections))
        offered_s = time.perf_counter() - started

    async def in_process() -> tuple[list[float], list[float]]:
        direct_s, ceiling_s = [], []
        for r in range(plan.repeats):
            dues = ledger()
            await dues.open()
            try:
                direct_s.append(await direct(dues, take(plan.direct, f"d{r}")))
            finally:
                await dues.close()
            if postgres is None:
                ceiling_s.append(await sqlite_ceiling(data / "ledger.db", plan.payments))
            else:
                ceiling_s.append(await postgres_ceiling(postgres.dsn, schema, plan.payments))
        return direct_s, ceiling_s
    direct_s, ceiling_s = asyncio.run(in_process())
    where = "SQLite (WAL, synchronous=FULL)" if postgres is None else "PostgreSQL"
    return {
        f"webhook_{name}": {"label": f"webhook payments over HTTP, {plan.connections} in flight, {where}",
                            "kind": "end_to_end", "unit": "payments/s", "items": plan.payments,
                            "runs_s": closed_s, "latencies_us": closed_us},
        f"webhook_{name}_offered": {"label": f"webhook payments offered at {plan.rate_per_s:.0f}/s, {where}",
                                    "kind": "end_to_end", "unit": "payments/s", "items": plan.offered,
                                    "runs_s": [offered_s], "latencies_us": offered_us},
        f"direct_{name}": {"label": f"apply_gateway_payment in process, one at a time, {where}",
                           "kind": "ceiling", "unit": "payments/s", "items": plan.direct, "runs_s": direct_s},
        f"insert_ceiling_{name}": {"label": f"one-row INSERT + COMMIT, one at a time, {where}",
                                   "kind": "ceiling", "unit": "payments/s", "items": plan.payments,
                                   "runs_s": ceiling_s},
    }


def measure(work_dir: Path, plan: Plan, ledgers: list[str], log=print) -> dict:
    from tests.servers import PostgresServer, postgres_bin

    figures: dict = {}
    servers: dict = {}
    if "sqlite" in ledgers:
        figures |= measure_backend("sqlite", plan, work_dir / "sqlite", log=log)
    if "postgres" in ledgers:
        if postgres_bin() is None:
            log("postgres skipped: PostgreSQL binaries not found")
        else:
            postgres = PostgresServer(work_dir / "postgres").start()
            try:
                servers["postgresql"] = "fsync off (tests/servers.py)"
                figures |= measure_backend("postgres", plan, work_dir / "pg", postgres=postgres, log=log)
            finally:
                postgres.close()
    return {"servers": servers, "figures": figures,
            "note": "Each payment pays one issued bill exactly (allocated, receipt numbered); requests are "
                    "signed before the clock starts; latencies of the offered load run from each "
                    "request's planned send time."}


def suite_figures(*, quick: bool, work_dir: Path) -> dict:
    """The hook of `rating bench` (bench/suite_service.py's shape)."""
    return measure(work_dir, Plan(**(QUICK if quick else FULL)), ["sqlite", "postgres"])


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(result: dict) -> list[str]:
    figures = result["figures"]
    lines = []
    for name, f in figures.items():
        rate = f["items"] / statistics.median(f["runs_s"])
        backend = name.rsplit("_", 1)[-1] if not name.endswith("_offered") else name.split("_")[1]
        ceiling = figures.get(f"insert_ceiling_{backend}")
        ratio = rate / (ceiling["items"] / statistics.median(ceiling["runs_s"])) if ceiling else float("nan")
        latency = ""
        if f.get("latencies_us"):
            p50, p99 = (_percentile(f["latencies_us"], p) / 1000 for p in (50, 99))
            latency = f"  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
        lines.append(f"{f['label']:<72} {rate:9,.0f} payments/s  {ratio:5.2f} of the insert ceiling{latency}")
    for backend in ("sqlite", "postgres"):
        closed, offered = figures.get(f"webhook_{backend}"), figures.get(f"webhook_{backend}_offered")
        if closed and offered:
            rate = closed["items"] / statistics.median(closed["runs_s"])
            p99 = _percentile(offered["latencies_us"], 99) / 1000
            lines.append(f"{backend}: {rate:,.0f}/s against the {TARGET_PER_S:,}/s target "
                         f"({'met' if rate >= TARGET_PER_S else 'missed'}); p99 {p99:.1f} ms at "
                         f"{offered['items'] / offered['runs_s'][0]:,.0f}/s offered against "
                         f"{OFFERED_P99_MS:.0f} ms "
                         f"({'met' if p99 < OFFERED_P99_MS else 'missed'})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledger", action="append", choices=("sqlite", "postgres"),
                        help="the ledgers to measure (default: both)")
    parser.add_argument("--payments", type=int, default=FULL["payments"], help="payments per closed-loop run")
    parser.add_argument("--repeat", type=int, default=FULL["repeats"])
    parser.add_argument("--rate", type=float, default=FULL["rate_per_s"], help="offered payments/s")
    parser.add_argument("--offered-s", type=float, default=FULL["offered_s"], help="seconds of offered load")
    parser.add_argument("--connections", type=int, default=FULL["connections"])
    parser.add_argument("--direct", type=int, default=FULL["direct"], help="in-process payments per run")
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes")
    args = parser.parse_args(argv)
    plan = Plan(**QUICK) if args.quick else Plan(
        payments=args.payments, repeats=args.repeat, rate_per_s=args.rate, offered_s=args.offered_s,
        direct=args.direct, connections=args.connections)
    with tempfile.TemporaryDirectory(prefix="rating-bench-webhook-") as work_dir:
        os.chmod(work_dir, 0o755)  # PostgreSQL runs as its own user
        result = measure(Path(work_dir), plan, args.ledger or ["sqlite", "postgres"])
    print("\n".join(report(result)))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    summary = {name: {**{k: v for k, v in f.items() if k != "latencies_us"},
                      "p50_ms": _percentile(f.get("latencies_us", []), 50) / 1000,
                      "p99_ms": _percentile(f.get("latencies_us", []), 99) / 1000}
               for name, f in result["figures"].items()}
    (out / "webhook.json").write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def webhook_scenario(*, quick: bool, log) -> dict:
    """The `webhook` scenario of `rating bench`: the figures above, as the service scenario shows them."""
    from bench.suite_service import normalise

    scenario = {"title": "Webhook payments end to end over HTTP, beside the ledger's insert ceiling",
                "description": "Signed gateway webhooks paying issued bills through `rating serve "
                               "--http-port` (SQLite and PostgreSQL dues ledgers), next to the ledger's "
                               "gateway path in process and one-row INSERT+COMMIT into the same database "
                               "(bench/bench_webhook.py).",
                "x": {"name": "figure", "unit": "", "scale": "category"}, "item_unit": "payments",
                "points": []}
    with tempfile.TemporaryDirectory(prefix="rating-bench-webhook-") as work_dir:
        os.chmod(work_dir, 0o755)
        raw = suite_figures(quick=quick, work_dir=Path(work_dir))
    result = normalise(raw)
    scenario["description"] += " " + raw["note"]
    scenario["servers"] = result["servers"]
    scenario["points"] = [{"x": "webhook", "label": "webhook", "figures": result["figures"], "skipped": {}}]
    log("  webhook   " + "  ".join(f"{name} {f['median']:,.0f} {f['unit']}"
                                   for name, f in result["figures"].items()))
    return scenario
