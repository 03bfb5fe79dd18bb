"""Parking events rated per second in batch, beside the pyarrow decode of the
same file, and per-use debits through the prepaid service per second.

    .venv/bin/python -m bench.bench_usage [--events 1000000] [--plates 20000] [--uses 2000] [--repeats 5]

Events: residents' and visitors' stays (entry, then exit 5 minutes to 3 days
later, some lost tickets, 1 % unknown plates), written to an Arrow IPC file
with `plate` dictionary-encoded as a camera exporter writes it. Timed from
one run, medians over repeats, in turn:
- decode: `pyarrow.ipc.open_file(...).read_all()` of the file (the ceiling:
  reading the file at all);
- rate: decode plus `rate_parking` (plates looked up, pairing, pricing,
  the sessions and anomalies tables);
- arrow sort: decode plus pyarrow's sort of the table by (plate, ts), the
  least a pairing by plate could cost done by pyarrow;
- pair and price: the vectorised core alone, on the decoded arrays.
Uses: `UsageService.use` one after another on the embedded backends (an
in-process store, an SQLite ledger), beside `PrepaidService.move` of the
same amounts as top-ups (the movement path without the usage layer).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from rating.usage.parking import ParkingRater, rate_parking
from rating.usage.parking_events import decode_events
from rating.usage.parking_pairing import Carried, pair
from rating.usage.settings import usage_from_toml

USAGE_TOML = """\
[site]
time_zone = "Asia/Kolkata"
rounding = "half_up"

[parking]
plates = "plates.csv"
visitor_account = "GATE"

[parking.tariffs.resident]
free_minutes = 30
step_minutes = 60
price = 20
daily_cap = 100
lost_ticket = 300
bands = [{ span = "22:00-24:00", price = 5 }, { span = "00:00-06:00", price = 5 }]

[parking.tariffs.visitor]
step_minutes = 1
price = 0.75
daily_cap = 400
lost_ticket = 500

[facilities.gym]
price = 50
wallet = "facilities"
"""
T0_US = 1_777_000_000 * 1_000_000


def write_site(folder: Path, plates: int) -> None:
    lines = ["plate,kind,account_id,tariff_id"]
    for i in range(plates):
        resident = i % 5 != 0
        lines.append(f"KA{i:08d},{'resident' if resident else 'visitor'},"
                     f"{f'F{i // 2:05d}' if resident else ''},{'resident' if resident else 'visitor'}")
    (folder / "plates.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "usage.toml").write_text(USAGE_TOML, encoding="utf-8")


def write_events(path: Path, events: int, plates: int, seed: int = 7) -> None:
    """Each plate's stays one after another (stays about 4 hours, gaps about 10), 1 % of exits
    lost tickets, 1 % of events from a plate the site does not know; sorted by time, as cameras send."""
    rng = np.random.default_rng(seed)
    stays = events // 2
    plate = np.arange(stays) % plates
    stay_us = (300 + rng.exponential(4 * 3600, stays).astype(np.int64)) * 1_000_000
    gap_us = (60 + rng.exponential(10 * 3600, stays).astype(np.int64)) * 1_000_000
    order = np.argsort(plate, kind="stable")  # each plate's stays in sequence
    step = np.zeros(stays, np.int64)
    step[order] = stay_us[order] + gap_us[order]
    running = np.zeros(stays, np.int64)
    sorted_steps = step[order]
    first = np.r_[True, plate[order][1:] != plate[order][:-1]]
    cumulative = np.cumsum(sorted_steps)
    base = np.maximum.accumulate(np.where(first, cumulative - sorted_steps, 0))
    running[order] = cumulative - sorted_steps - base
    entry = T0_US + rng.integers(0, 86400, plates)[plate] * 1_000_000 + running
    exit_ = entry + stay_us
    kinds = np.where(rng.random(stays) < 0.01, 2, 1).astype(np.int8)
    names = np.array([f"KA{i:08d}" for i in range(plates)] + ["XX00000000"])
    ts = np.concatenate((entry, exit_))
    codes = np.concatenate((plate, plate))
    codes[rng.random(len(codes)) < 0.01] = plates  # unknown plates
    words = np.concatenate((np.zeros(stays, np.int8), kinds))
    by_time = np.argsort(ts, kind="stable")
    table = pa.table({
        "plate": pa.DictionaryArray.from_arrays(pa.array(codes[by_time].astype(np.int32)), pa.array(names)),
        "ts": pa.array(ts[by_time], pa.timestamp("us", tz="UTC")),
        "event": pa.DictionaryArray.from_arrays(pa.array(words[by_time]),
                                                pa.array(["entry", "exit", "lost_ticket"])),
    })
    with ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)


def median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def read(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return ipc.open_file(source).read_all()


def arrow_sort(table: pa.Table) -> pa.Table:
    """The table in (plate code, ts) order, by pyarrow alone."""
    keys = pa.table({"p": table.column("plate").combine_chunks().indices, "ts": table.column("ts")})
    return table.take(pc.sort_indices(keys, sort_keys=[("p", "ascending"), ("ts", "ascending")]))


def parking(folder: Path, events: int, plates: int, repeats: int) -> None:
    write_site(folder, plates)
    settings = usage_from_toml((folder / "usage.toml").read_text(), where="usage.toml", folder=folder)
    path = folder / "events.arrow"
    write_events(path, events, plates)
    table = read(path)
    result = rate_parking(table, settings)  # warm-up, and the figures' context
    decoded = decode_events(table, settings.need_plates(), where="events")
    rater = ParkingRater(settings)
    paired = lambda: pair(decoded.plates, decoded.ts_us, decoded.kinds, Carried.empty())  # noqa: E731
    timings = {
        "decode": median_s(lambda: read(path), repeats),
        "arrow sort": median_s(lambda: arrow_sort(read(path)), repeats),
        "rate": median_s(lambda: rate_parking(read(path), settings), repeats),
        "pair": median_s(paired, repeats),
        "pair+price": median_s(lambda: rater.amounts_minor(paired()), repeats),
    }
    print(f"parking: {events:,} events, {plates:,} plates -> {result.sessions.num_rows:,} sessions, "
          f"{result.anomalies.num_rows:,} anomalies")
    for name, seconds in timings.items():
        print(f"  {name:<11} {seconds * 1000:8.1f} ms  {events / seconds / 1e6:6.2f} M events/s")
    print(f"  rate / arrow sort: {timings['rate'] / timings['arrow sort']:.2f}x the time pyarrow takes to "
          "sort the same file by plate and time")


async def uses(folder: Path, count: int) -> None:
    from rating.prepaid.ledger.sqlite import SqliteLedger
    from rating.prepaid.records import Movement
    from rating.prepaid.service import PrepaidService
    from rating.prepaid.sitedocs import SiteDocs
    from rating.prepaid.store.memory import MemoryStore
    from rating.usage.facilities import Use
    from rating.usage.service import UsageService
    from tests.usage_site import write_usage_site

    site, usage_file = write_usage_site(folder / "site")
    prepaid = PrepaidService(MemoryStore(), SqliteLedger(folder / "ledger.db"),
                             docs=SiteDocs.from_site_file(site))
    await prepaid.start()
    try:
        from rating.usage.settings import load_usage_file

        usage = UsageService(prepaid, load_usage_file(usage_file))
        accounts = [f"F{i:04d}" for i in range(6)]
        for a in accounts:
            await prepaid.move(Movement("topup", f"T-{a}", a, "facilities", 10**12, method="cash"))
        use_s, move_s = [], []  # in turn, rounds of 100, so the ledger's growth and noise fall on both
        for r in range(max(1, count // 100)):
            start = time.perf_counter()
            for i in range(r * 100, r * 100 + 100):
                await usage.use(Use(f"gym-{i}", accounts[i % 6], "gym", reference=f"C-{i}"))
            use_s.append((time.perf_counter() - start) / 100)
            start = time.perf_counter()
            for i in range(r * 100, r * 100 + 100):
                await prepaid.move(Movement("topup", f"M-{i}", accounts[i % 6], "facilities", 5000,
                                            method="cash"))
            move_s.append((time.perf_counter() - start) / 100)
        start = time.perf_counter()  # and all at once, 100 in flight: the ledger commits them in groups
        for r in range(max(1, count // 100)):
            await asyncio.gather(*(usage.use(Use(f"many-{i}", accounts[i % 6], "gym"))
                                   for i in range(r * 100, r * 100 + 100)))
        many_s = (time.perf_counter() - start) / (max(1, count // 100) * 100)
        batch = _gate_batch(count)
        start = time.perf_counter()
        parked = await usage.park(batch)
        park_s = time.perf_counter() - start
        await prepaid.flush()
    finally:
        await prepaid.close()
    use, move = statistics.median(use_s), statistics.median(move_s)
    print(f"uses: {count:,} one after another on the embedded backends (medians of rounds of 100)")
    print(f"  UsageService.use    {1 / use:8.0f} /s  ({use * 1e6:.0f} µs each)")
    print(f"  PrepaidService.move {1 / move:8.0f} /s  (a top-up: the movement path alone; "
          f"use / move time {use / move:.2f}x)")
    print(f"  UsageService.use, 100 in flight {1 / many_s:8.0f} /s")
    print(f"  UsageService.park: {batch.num_rows:,} events, {len(parked.movements):,} sessions debited in "
          f"{park_s:.2f} s ({len(parked.movements) / park_s:.0f} sessions/s)")


def _gate_batch(events: int) -> pa.Table:
    """Stays of the usage test site's three resident plates, one after another (each 2 hours)."""
    plates = ["KA01AB1234", "KA01CD5678", "KA05EF0002"]
    rows = [(plates[i % 3], T0_US + (i // 3) * 3 * 3600 * 1_000_000 + k * 2 * 3600 * 1_000_000, word)
            for i in range(events // 2) for k, word in ((0, "entry"), (1, "exit"))]
    return pa.table({"plate": [r[0] for r in rows], "ts": pa.array([r[1] for r in rows], pa.timestamp("us")),
                     "event": [r[2] for r in rows]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--plates", type=int, default=20_000)
    parser.add_argument("--uses", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        parking(Path(folder), args.events, args.plates, args.repeats)
        asyncio.run(uses(Path(folder), args.uses))


if __name__ == "__main__":
    main()
