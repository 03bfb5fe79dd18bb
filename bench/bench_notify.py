"""Plan a cycle's reminders for 100,000 flats, and relay sends through the
webhook channel to a local HTTP sink, on both dues ledgers, each beside its
ceiling measured in the same run.

    .venv/bin/python -m bench.bench_notify [--flats 100000] [--sends 20000] [--repeat 3]
                                           [--ledger sqlite --ledger postgres]

The site: every flat has an issued bill (maintenance and water) due in a
week, an email contact (never asked: service email allowed), half an SMS
number with an opt-in, a tenth a staff tag that picks another tone. Set up
untimed on a fresh ledger (an SQLite file, a PostgreSQL schema on a
throwaway server). Timed, medians of the repeats:

- plan:  `planner.plan` for the day: the ledger's bills, open items and
         history, contacts, consent, tags read, every notice made with its
         template's fields (nothing written);
- reads: the same reads alone, the planner's ceiling;
- queue: the notices written to the outbox (`Outbox.enqueue`, one transaction);
- relay: `Relay.run_once` over `--sends` queued rows: claim, gate (a
         balance read per account, quiet hours, cap), send, record;
- channel: the same number of messages through the webhook channel alone,
         the relay's ceiling.

The sink is a threading HTTP/1.1 server in a child process (tests/notify_servers.py),
answering each POST with an id as a provider does.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.bench_billing import backends
from rating.billing.documents import BillLine, Cycle, DraftBill, LineKind
from rating.billing.ledger import IssueBatch
from rating.billing.ledger_sql import SqlDuesLedger
from rating.billing.numbering import Numbering
from rating.model.site import Site
from rating.notify.bills import bills
from rating.notify.channel import Message
from rating.notify.directory import Directory
from rating.notify.gate import ReminderGate, renderer
from rating.notify.outbox import Notice, Outbox
from rating.notify.planner import Planner, audience, plan
from rating.notify.relay import Relay, RelayPolicy
from rating.notify.rules import load_reminders
from rating.notify.tables import insert_ignore
from rating.notify.webhook import WebhookChannel

PLAN_TARGET_S = 10.0
SENDS_TARGET_PER_S = 500.0
SITE_ID = "bench-towers"
SITE = Site(name="Bench Towers", currency="INR", time_zone="Asia/Kolkata")
CYCLE = Cycle(SITE_ID, dt.date(2025, 5, 1), dt.date(2025, 5, 31), dt.date(2025, 6, 1), dt.date(2025, 6, 15))
DAY = dt.date(2025, 6, 8)  # a week before the due date: the d-7 step, email and SMS
DEMO = Path(__file__).resolve().parent.parent / "examples" / "reminders"
WORKERS = 8


def _sink(port_queue) -> None:
    from tests.notify_servers import HttpSink

    sink = HttpSink(record=False)
    port_queue.put(sink.server.server_address[1])
    sink.server.serve_forever()


def start_sink() -> tuple[multiprocessing.Process, str]:
    ports: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=_sink, args=(ports,), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{ports.get(timeout=30)}/send"


def rules_for(url: str):
    text = (DEMO / "reminders.toml").read_text(encoding="utf-8").replace("http://127.0.0.1:8099/sms", url)
    folder = Path(tempfile.mkdtemp(prefix="bench-notify-site-"))
    (folder / "reminders.toml").write_text(text, encoding="utf-8")
    (folder / "templates").symlink_to(DEMO / "templates")
    return load_reminders(folder / "reminders.toml", SITE)


async def setup(ledger: SqlDuesLedger, outbox: Outbox, flats: int) -> None:
    """Bills, contacts, consent and tags of every flat (untimed)."""
    bills = [DraftBill(CYCLE, f"F{i:06d}", f"Owner {i}", (
        BillLine("maintenance", LineKind.CHARGE, 250_000 + i % 1000, "Maintenance"),
        BillLine("water", LineKind.CHARGE, 12_345, "Water"))) for i in range(flats)]
    await ledger.issue(IssueBatch(f"issue:{SITE_ID}:{CYCLE.cycle_id}", SITE_ID, CYCLE.cycle_id,
                                  CYCLE.period_start, CYCLE.period_end, CYCLE.bill_date, bills, Numbering(),
                                  "bench"))
    contacts, consents, tags = [], [], []
    for i in range(flats):
        account = f"F{i:06d}"
        contacts.append((SITE_ID, account, "email", f"owner{i}@example.org", f"Owner {i}", "en", "", "", 0))
        if i % 2 == 0:
            contacts.append((SITE_ID, account, "sms", f"+9198{i:08d}", f"Owner {i}", "hi", "", "", 0))
            consents.append((SITE_ID, account, "sms", "in", "bench", 0))
        if i % 10 == 0:
            tags.append((SITE_ID, account, "habitual_late", "bench", 0))
    async with outbox.tables.writing() as tx:
        await insert_ignore(tx, ("site_id", "account_id", "channel", "address", "name", "language",
                                 "time_zone", "invalid", "updated_us"), contacts, table="notify_contacts")
        await insert_ignore(tx, ("site_id", "account_id", "channel", "state", "source", "at_us"), consents,
                            table="notify_consent")
        await insert_ignore(tx, ("site_id", "account_id", "tag", "actor", "at_us"), tags, table="notify_tags")


async def planning(ledger: SqlDuesLedger, outbox: Outbox, planner: Planner) -> dict[str, float]:
    directory = Directory(outbox)
    began, cpu = time.perf_counter(), time.process_time()
    notices = await plan(ledger, directory, planner, today=DAY, now_us=0)
    planned, plan_cpu = time.perf_counter(), time.process_time() - cpu
    written = await outbox.enqueue(notices, 0)
    queued = time.perf_counter()
    await audience(ledger, directory, SITE_ID, DAY, await bills(outbox.tables, SITE_ID))  # the reads alone
    read = time.perf_counter()
    assert written == len(notices)
    async with outbox.tables.writing() as tx:
        await tx.execute("DELETE FROM notify_outbox")
    return {"plan": planned - began, "queue": queued - planned, "reads": read - queued,
            "plan cpu": plan_cpu, "notices": len(notices)}


async def sending(ledger: SqlDuesLedger, outbox: Outbox, rules, url: str, sends: int) -> dict[str, float]:
    notices = [Notice(SITE_ID, f"F{i:06d}", "due_step", f"B{i}", "d-7", "sms", f"+9198{i:08d}", "reminder.hi",
                      {"amount_due": "INR 2,500.00", "due_date": "2025-06-15", "name": f"Owner {i}",
                       "payment_link": "https://pay.example.org/x", "unit": f"F{i:06d}"}, 0)
               for i in range(sends)]
    await outbox.enqueue(notices, 0)
    noon = dt.datetime(2025, 6, 8, 12, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))).timestamp()
    channel = WebhookChannel(url, workers=WORKERS)
    relay = Relay(outbox, {"sms": channel}, render=renderer(rules), site_id=SITE_ID, clock=lambda: noon,
                  gate=ReminderGate(outbox, rules, SITE_ID), policy=RelayPolicy(concurrency=64))
    began = time.perf_counter()
    report = await relay.run_once()
    relayed = time.perf_counter()
    assert report.outcomes["sent"] == sends, report
    messages = [Message(n.address, "reminder", n.fields, f"ceiling-{i}") for i, n in enumerate(notices)]
    slots = asyncio.Semaphore(64)

    async def one(message: Message) -> None:
        async with slots:
            await channel.send(message)
    await asyncio.gather(*(one(m) for m in messages))
    ceiling = time.perf_counter()
    await channel.close()
    async with outbox.tables.writing() as tx:
        await tx.execute("DELETE FROM notify_outbox")
    return {"relay": sends / (relayed - began), "channel": sends / (ceiling - relayed)}


async def one_backend(make, flats: int, sends: int, repeat: int, url: str) -> list[dict[str, float]]:
    rules = rules_for(url)
    ledger = make()
    await ledger.open()
    try:
        outbox = Outbox(ledger)
        await outbox.open()
        await setup(ledger, outbox, flats)
        planner = Planner(rules, SITE, SITE_ID)
        runs = []
        for _ in range(repeat):
            run = await planning(ledger, outbox, planner)
            run.update(await sending(ledger, outbox, rules, url, sends))
            runs.append(run)
        return runs
    finally:
        await ledger.close()


def report(name: str, runs: list[dict[str, float]]) -> None:
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    spread = {k: ", ".join(f"{r[k]:.2f}" if k not in ("relay", "channel") else f"{r[k]:.0f}" for r in runs)
              for k in runs[0]}
    print(f"{name}: {int(median['notices']):,} notices planned a run")
    for label in ("plan", "reads", "queue"):
        print(f"  {label:<8} {median[label]:6.2f} s  (runs {spread[label]})")
    whole = median["plan"] + median["queue"]
    verdict = "met" if whole <= PLAN_TARGET_S else "MISSED"
    print(f"  plan / reads {median['plan'] / median['reads']:.1f}x; plan + queue {whole:.2f} s "
          f"(target {PLAN_TARGET_S:.0f} s: {verdict})")
    print(f"  this process's CPU in plan: {median['plan cpu']:.2f} s (with SQLite's thread; without the "
          f"PostgreSQL server's); load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for label in ("relay", "channel"):
        print(f"  {label:<8} {median[label]:6.0f} sends/s  (runs {spread[label]})")
    verdict = "met" if median["relay"] >= SENDS_TARGET_PER_S else "MISSED"
    print(f"  relay / channel {median['relay'] / median['channel']:.2f}; "
          f"target {SENDS_TARGET_PER_S:.0f} sends/s: {verdict}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--flats", type=int, default=100_000)
    parser.add_argument("--sends", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ledger", action="append", choices=("sqlite", "postgres"))
    args = parser.parse_args(argv)
    print(f"{args.flats:,} flats, {args.sends:,} sends; medians of {args.repeat} runs")
    sink, url = start_sink()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-notify-") as folder:
            for name, make, _, _ in backends(args.ledger or ["sqlite", "postgres"], Path(folder)):
                report(name, asyncio.run(one_backend(make, args.flats, args.sends, args.repeat, url)))
    finally:
        sink.terminate()
        sink.join()


if __name__ == "__main__":
    main()
