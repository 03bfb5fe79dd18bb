"""Office payments through the PaymentsService beside the same payments in process.

    .venv/bin/python -m bench.bench_payments_grpc [--towers 2 --floors 10 --flats 10] [--repeat 3]

The society: the demo's, as bench.bench_billing_grpc makes it, its May bills
issued on an empty SQLite dues ledger. Then one cash payment per flat,
each its own call, one after the other (the office's path: a person at a
desk), timed as payments per second, medians of the repeats:

- ceiling: `DuesLedger.pay` called in process on the ledger;
- gRPC:    `RecordPayment` from a blocking client (rating.client.payments)
  to a server on this machine (rating.server.app) on its own ledger, so the
  difference is the server's part: the call, the checks, the answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from bench.bench_billing_grpc import CYCLE, society
from bench.served import alternating, served, society_parser
from rating.billing.inputs import load_site_billing, run_cycle
from rating.billing.ledger_payment_types import Method, PaymentRequest
from rating.billing.ledger_sqlite import SqliteDuesLedger
from rating.billing.run import RunInputs, issue_cycle
from rating.client.billing import BillingClient
from rating.client.payments import PaymentsClient

PAID_ON = dt.date(2025, 6, 10)
AMOUNT_MINOR = 150_000


def in_process(site: Path, ledger_path: Path) -> float:
    """Payments per second called on the ledger itself, after issuing the cycle."""
    found = load_site_billing(site)
    inputs = RunInputs(run_cycle(found.site_id, CYCLE, found.billing), found.billing, found.numbering,
                       found.units(), rules_text=found.rules_text)
    accounts = sorted(found.config.registry.accounts)

    async def go() -> float:
        ledger = SqliteDuesLedger(ledger_path)
        await ledger.open()
        try:
            await issue_cycle(ledger, inputs, actor="bench")
            started = time.perf_counter()
            for account in accounts:
                await ledger.pay(PaymentRequest(f"bench-{account}", found.site_id, account, Method.CASH,
                                                AMOUNT_MINOR, PAID_ON, "bench", found.numbering))
            return len(accounts) / (time.perf_counter() - started)
        finally:
            await ledger.close()
    return asyncio.run(go())


def over_grpc(site: Path, data: Path) -> float:
    """RecordPayment calls per second, after IssueCycle on the served ledger."""
    with served(site, data) as running:
        accounts = sorted(running.service.config.registry.accounts)
        with PaymentsClient(f"127.0.0.1:{running.port}", timeout_s=600) as client:
            with BillingClient(f"127.0.0.1:{running.port}", timeout_s=600) as billing:
                billing.issue(CYCLE, actor="bench")
            started = time.perf_counter()
            for account in accounts:
                client.record(f"bench-{account}", account, "cash", AMOUNT_MINOR, PAID_ON)
            return len(accounts) / (time.perf_counter() - started)


def main() -> None:
    args = society_parser(__doc__, towers=2, floors=10).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        site = society(folder / "society", args.towers, args.floors, args.flats)
        rows = alternating(args.repeat, lambda n: in_process(site, folder / f"local{n}" / "ledger.db"),
                           lambda n: over_grpc(site, folder / f"served{n}"))
    local, remote = (statistics.median(r[i] for r in rows) for i in (0, 1))
    flats = args.towers * args.floors * args.flats
    print(f"{flats} flats, one payment each, {args.repeat} repeats, medians:")
    print(f"  ledger.pay in process {local:8.1f}/s   RecordPayment {remote:8.1f}/s   "
          f"ratio {remote / local:.2f}")


if __name__ == "__main__":
    main()
