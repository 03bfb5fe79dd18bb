"""Drafts and issue batches built by hand, for the dues ledger tests."""

from __future__ import annotations

import asyncio
import datetime as dt

from rating.billing.documents import BillLine, Cycle, DraftBill, LineKind
from rating.billing.ledger import DuesLedger, IssueBatch
from rating.billing.numbering import Numbering

SITE = "green-meadows"
MAY = Cycle(SITE, dt.date(2025, 5, 1), dt.date(2025, 5, 31), dt.date(2025, 6, 1), dt.date(2025, 6, 15))
DEFAULT_NUMBERING = Numbering()
JUNE = Cycle(SITE, dt.date(2025, 6, 1), dt.date(2025, 6, 30), dt.date(2025, 7, 1), dt.date(2025, 7, 15))


def run(make_ledger, action):
    """Open a ledger, await action(ledger), close it."""
    async def go():
        ledger: DuesLedger = make_ledger()
        await ledger.open()
        try:
            return await action(ledger)
        finally:
            await ledger.close()
    return asyncio.run(go())


def draft(account: str, cycle: Cycle = MAY, *, maintenance: int = 250_000, water: int = 0,
          arrears: int = 0, rounding: int = 0) -> DraftBill:
    lines = [BillLine("maintenance", LineKind.CHARGE, maintenance, "Maintenance", (("area", "83.6 m²"),))]
    if water:
        lines.append(BillLine("water", LineKind.CHARGE, water, "Water"))
    if rounding:
        lines.append(BillLine("round_off", LineKind.ROUNDING, rounding, "Rounding off"))
    if arrears:
        lines.append(BillLine("maintenance", LineKind.ARREARS, arrears, "Arrears: maintenance"))
    return DraftBill(cycle, account, f"Owner of {account}", tuple(lines))


def batch(bills, cycle: Cycle = MAY, *, key: str | None = None, numbering: Numbering = DEFAULT_NUMBERING,
          rules: str = "[heads]\n") -> IssueBatch:
    return IssueBatch(key or f"issue:{cycle.site_id}:{cycle.cycle_id}", cycle.site_id, cycle.cycle_id,
                      cycle.period_start, cycle.period_end, cycle.bill_date, bills, numbering, "tester",
                      rules_text=rules)
