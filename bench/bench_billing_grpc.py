"""A bill run through the BillingService beside the same run in process, and
how the server answers other calls while it drafts.

    .venv/bin/python -m bench.bench_billing_grpc [--towers 10 --floors 20 --flats 10] [--repeat 3]

The society: the demo's (rating demo), its shared-area groups left out (the
prepaid service refuses a site with groups), without readings (metered
heads at zero): the run's own work, not rating's. Each repeat starts from
an empty SQLite ledger. Timed, as medians of wall clock:

- ceiling: `draft_cycle`, then `issue_cycle` (which drafts again), called in
  process on the ledger;
- gRPC:    `RunCycle` (the totals and 20 drafts), then `IssueCycle`, from a
  blocking client to a server on this machine (rating.server.app), so the
  difference is the server's part: the call, the drafts on its worker
  thread, the answer;
- while RunCycle drafts, another client calls GetBalance in a loop: the
  median and the slowest answer say whether the server's loop kept serving.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.served import alternating, served, society_parser
from rating.billing.inputs import load_site_billing, run_cycle
from rating.billing.ledger_sqlite import SqliteDuesLedger
from rating.billing.run import RunInputs, draft_cycle, issue_cycle
from rating.cli.demo import generate_demo
from rating.client.billing import BillingClient

CYCLE = "2025-05"


def society(folder: Path, towers: int, floors: int, flats: int) -> Path:
    site = generate_demo(folder, towers=towers, floors=floors, flats_per_floor=flats, seed=1).site_file
    lines = site.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith("groups =")]
    site.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return site


def in_process(site: Path, ledger_path: Path) -> tuple[float, float, int]:
    """(draft s, issue s, bills) called on the ledger itself."""
    found = load_site_billing(site)
    inputs = RunInputs(run_cycle(found.site_id, CYCLE, found.billing), found.billing, found.numbering,
                       found.units(), rules_text=found.rules_text)

    async def go():
        ledger = SqliteDuesLedger(ledger_path)
        await ledger.open()
        try:
            started = time.perf_counter()
            drafts = await draft_cycle(ledger, inputs)
            drafted = time.perf_counter()
            await issue_cycle(ledger, inputs, actor="bench")
            return drafted - started, time.perf_counter() - drafted, len(drafts)
        finally:
            await ledger.close()
    return asyncio.run(go())


def over_grpc(site: Path, data: Path) -> tuple[float, float, list[float]]:
    """(RunCycle s, IssueCycle s, GetBalance latencies in s during RunCycle)."""
    with served(site, data) as running:
        target, latencies, drafting = f"127.0.0.1:{running.port}", [], threading.Event()

        def probe() -> None:
            with BillingClient(target) as client:
                client.balance("A-0101")
                drafting.wait()
                while drafting.is_set():
                    started = time.perf_counter()
                    client.balance("A-0101")
                    latencies.append(time.perf_counter() - started)
        prober = threading.Thread(target=probe)
        prober.start()
        try:
            with BillingClient(target, timeout_s=600) as client:
                client.health()
                drafting.set()
                started = time.perf_counter()
                client.run(CYCLE)
                ran = time.perf_counter()
                drafting.clear()
                client.issue(CYCLE, actor="bench")
                issued = time.perf_counter()
            return ran - started, issued - ran, latencies
        finally:
            drafting.clear()
            prober.join()


def main() -> None:
    args = society_parser(__doc__, towers=10, floors=20).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        site = society(folder / "society", args.towers, args.floors, args.flats)
        pairs = alternating(args.repeat, lambda n: in_process(site, folder / f"local{n}" / "ledger.db"),
                            lambda n: over_grpc(site, folder / f"served{n}"))
    rows = [(*local[:2], *remote) for local, remote in pairs]
    bills = pairs[-1][0][2]
    median = lambda i: statistics.median(r[i] for r in rows)  # noqa: E731
    probes = [x for r in rows for x in r[4]]
    print(f"{bills} bills, {args.repeat} repeats, medians:")
    for what, local, remote, name in (("draft", 0, 2, "RunCycle  "), ("issue", 1, 3, "IssueCycle")):
        print(f"  {what}   in process {median(local):7.3f} s   {name} {median(remote):7.3f} s   "
              f"ratio {median(remote) / median(local):.2f}")
    if probes:
        print(f"  GetBalance while drafting: {len(probes)} calls, median "
              f"{statistics.median(probes) * 1000:.1f} ms, slowest {max(probes) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
