"""The service scenario of the suite: streaming deduction end to end and the
raw ceilings beside it, with latency percentiles from an HDR histogram.

The service benchmark itself lives in `bench/bench_service.py` (the prepaid
gRPC service's own bench: it starts Redis and PostgreSQL on free ports).
The suite calls it through one function, the hook:

    def suite_figures(*, quick: bool, work_dir: pathlib.Path) -> dict

returning

    {
      "servers": {"redis": "7.0.15", "postgresql": "15.20"},   # what it started (optional)
      "note": "how it was measured",                           # added to the description (optional)
      "figures": {
        "<name>": {                        # e.g. stream_embedded, stream_redis_postgres,
          "label": "what was measured",    #      redis_script_ceiling, postgres_copy_ceiling
          "kind": "end_to_end" | "ceiling",
          "unit": "deductions/s",          # or "rows/s", ...
          "items": 100000,                 # items one run processes
          "runs_s": [1.02, 0.98, 1.01],    # seconds of each run
          "latencies_us": [...],           # optional: one latency per request/batch (µs)
        },
      },
    }

`quick` asks for seconds, not minutes (CI smoke run); `work_dir` is an
empty temporary folder for data directories and logs, readable by other
users (PostgreSQL refuses to run as root and runs as `postgres`), removed
after the hook returns.

The raw PostgreSQL COPY ceiling is measured here unless the hook gives a
`postgres_copy_ceiling` figure itself: `copy_records_to_table` of
pre-built rows, 10,000 per call, into a table shaped like the ledger's
`entries` (same columns and indexes, rating/prepaid/ledger/postgres.py),
on a throwaway server (tests/servers.py: free port, fsync off). The suite turns each figure into
its median throughput with spread, HDR percentiles (p50, p90, p99, p99.9,
max) of the latencies, and each end-to-end figure's ratio to every ceiling.
Until `bench/bench_service.py` provides the hook, the scenario records why
it was skipped and the rest of the suite runs on.
"""

from __future__ import annotations

import importlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from bench.measure import figure

SERVICE_MODULE = "bench.bench_service"
HOOK = "suite_figures"
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}
KINDS = ("end_to_end", "ceiling")


def latency_percentiles(latencies_us: Iterable[float]) -> dict:
    """HDR histogram (3 significant digits, 1 µs .. 1 h) of latencies in µs."""
    from hdrh.histogram import HdrHistogram

    histogram = HdrHistogram(1, 3_600_000_000, 3)
    for value in latencies_us:
        histogram.record_value(max(1, min(int(math.ceil(value)), 3_600_000_000)))
    count = histogram.get_total_count()
    if count == 0:
        return {"count": 0}
    result = {name: histogram.get_value_at_percentile(p) for name, p in PERCENTILES.items()}
    result.update(count=count, min=histogram.get_min_value(), max=histogram.get_max_value(),
                  mean=histogram.get_mean_value(), unit="us")
    return result


def _load_hook() -> tuple[Callable[..., dict] | None, str]:
    try:
        module = importlib.import_module(SERVICE_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != SERVICE_MODULE:
            return None, f"{SERVICE_MODULE} needs a module that is not installed: {exc.name}"
        return None, f"{SERVICE_MODULE.replace('.', '/')}.py is not there yet"
    hook = getattr(module, HOOK, None)
    if hook is None:
        return None, f"{SERVICE_MODULE.replace('.', '/')}.py has no {HOOK}(*, quick, work_dir)"
    return hook, ""


def normalise(raw: dict) -> dict:
    """The hook's answer as suite figures; raises ValueError on a malformed answer."""
    if not isinstance(raw, dict) or not isinstance(raw.get("figures"), dict):
        raise ValueError(f"{HOOK} must return a dict with a 'figures' dict")
    figures = {}
    for name, given in raw["figures"].items():
        runs = given.get("runs_s")
        if not runs or any(not isinstance(s, (int, float)) or s <= 0 for s in runs):
            raise ValueError(f"figure {name!r}: runs_s must be a non-empty list of positive seconds")
        if given.get("kind") not in KINDS:
            raise ValueError(f"figure {name!r}: kind must be one of {KINDS}")
        if not isinstance(given.get("items"), int) or given["items"] <= 0 or not given.get("unit"):
            raise ValueError(f"figure {name!r}: needs items (a positive int) and a unit")
        entry = figure(given["items"], given["unit"], [float(s) for s in runs])
        entry["label"] = given.get("label", name)
        entry["kind"] = given["kind"]
        if given.get("latencies_us") is not None:
            entry["latency_us"] = latency_percentiles(given["latencies_us"])
        figures[name] = entry
    ceilings = {name: f for name, f in figures.items() if f["kind"] == "ceiling"}
    for entry in figures.values():
        if entry["kind"] == "end_to_end":
            entry["ratio_to_ceiling"] = {name: entry["median"] / c["median"] for name, c in ceilings.items()
                                         if c["unit"] == entry["unit"]}
    return {"servers": dict(raw.get("servers", {})), "figures": figures}


COPY_BATCH_ROWS = 10_000
ENTRIES_TABLE = """
CREATE TABLE entries (
    seq bigint NOT NULL,
    account_id text NOT NULL,
    wallet text NOT NULL,
    amount_minor bigint NOT NULL
);
CREATE INDEX entries_wallet ON entries (account_id, wallet);
CREATE INDEX entries_seq ON entries USING brin (seq);
"""


def postgres_copy_ceiling(*, quick: bool) -> tuple[dict, str]:
    """The raw COPY ceiling as a hook figure, and the server's version."""
    import asyncio

    from tests.servers import PostgresServer

    rows = 40_000 if quick else 400_000
    repeats = 2 if quick else 5
    rng = np.random.default_rng(5)
    accounts = [f"A-{i:06d}" for i in rng.integers(0, 100_000, rows)]
    wallets = ["energy", "water"]
    amounts = rng.integers(-50_000, -1, rows).tolist()
    records = [(i // 100, accounts[i], wallets[i & 1], amounts[i]) for i in range(rows)]
    batches = [records[i:i + COPY_BATCH_ROWS] for i in range(0, rows, COPY_BATCH_ROWS)]

    async def measure(dsn: str) -> tuple[list[float], list[float], str]:
        import asyncpg

        con = await asyncpg.connect(dsn)
        try:
            version = await con.fetchval("SHOW server_version")
            runs_s, latencies_us = [], []
            for _ in range(repeats + 1):  # the first is a warm-up
                await con.execute("DROP TABLE IF EXISTS entries")
                await con.execute(ENTRIES_TABLE)
                began = time.perf_counter()
                for batch in batches:
                    start = time.perf_counter()
                    await con.copy_records_to_table(
                        "entries", records=batch, columns=("seq", "account_id", "wallet", "amount_minor"))
                    latencies_us.append((time.perf_counter() - start) * 1e6)
                runs_s.append(time.perf_counter() - began)
            count = await con.fetchval("SELECT count(*) FROM entries")
            if count != rows:
                raise RuntimeError(f"COPY ceiling: {count} rows in the table, {rows} sent")
            return runs_s[1:], latencies_us[len(batches):], str(version)
        finally:
            await con.close()

    server = PostgresServer().start()  # its own temporary folder, which the server's user can reach
    try:
        runs_s, latencies_us, version = asyncio.run(measure(server.dsn))
    finally:
        server.close()
    return {
        "label": f"PostgreSQL COPY ceiling ({COPY_BATCH_ROWS:,} rows per call, ledger-shaped table)",
        "kind": "ceiling",
        "unit": "rows/s",
        "items": rows,
        "runs_s": runs_s,
        "latencies_us": latencies_us,
    }, version


def _copy_ceiling_unavailable() -> str | None:
    try:
        from tests.servers import postgres_bin
    except ImportError as exc:  # a checkout without the test helpers or pytest
        return f"tests/servers.py cannot be imported ({exc})"
    return None if postgres_bin() is not None else "PostgreSQL binaries (initdb, postgres) not found"


def service_scenario(*, quick: bool, log: Callable[[str], None], copy_ceiling: bool = True) -> dict:
    scenario = {
        "title": "Service: streaming deduction end to end, beside the raw ceilings",
        "description": "Prepaid streaming deduction through the gRPC service (embedded default; "
                       "Redis + PostgreSQL started on free ports), next to the raw Redis script "
                       "ceiling and the raw PostgreSQL COPY ceiling measured in the same run "
                       f"({SERVICE_MODULE.replace('.', '/')}.py).",
        "x": {"name": "figure", "unit": "", "scale": "category"},
        "item_unit": "deductions",
        "points": [],
    }
    raw: dict = {"servers": {}, "figures": {}}
    skipped: dict[str, str] = {}
    hook, reason = _load_hook()
    if hook is None:
        log(f"  service   end to end skipped: {reason}")
        skipped["end_to_end"] = reason
    else:
        with tempfile.TemporaryDirectory(prefix="rating-bench-service-") as work_dir:
            os.chmod(work_dir, 0o755)
            raw = hook(quick=quick, work_dir=Path(work_dir))
    if copy_ceiling and "postgres_copy_ceiling" not in raw.get("figures", {}):
        unavailable = _copy_ceiling_unavailable()
        if unavailable is not None:
            log(f"  service   COPY ceiling skipped: {unavailable}")
            skipped["postgres_copy_ceiling"] = unavailable
        else:
            copy_figure, version = postgres_copy_ceiling(quick=quick)
            raw = {"servers": {**raw.get("servers", {}), "postgresql": version},
                   "figures": {**raw["figures"], "postgres_copy_ceiling": copy_figure}}
    if not raw["figures"]:
        scenario["skipped"] = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        return scenario
    result = normalise(raw)
    if raw.get("note"):
        scenario["description"] += " " + raw["note"]
    scenario["servers"] = result["servers"]
    scenario["points"] = [{"x": "service", "label": "service", "figures": result["figures"],
                           "skipped": skipped}]
    log("  service   " + "  ".join(f"{name} {f['median']:,.0f} {f['unit']}"
                                   for name, f in result["figures"].items()))
    return scenario
