"""The postpaid part of `rating demo`: bill Green Meadows for the demo's
month on a SQLite dues ledger in the demo folder, print the bills' summary
and write the first few bills as PDF (with their meters' readings and
slabs) to `bills/` there."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

PDFS_WRITTEN = 3


def bill_demo(site_file: Path, readings_file: Path, charges, folder: Path, *,
              pdfs: int = PDFS_WRITTEN) -> None:
    """Issue the month's bills from the rated `charges` and write `pdfs` of them."""
    from rating.billing import bill_text, render
    from rating.billing.inputs import load_site_billing, run_cycle
    from rating.billing.ledger_sqlite import SqliteDuesLedger
    from rating.billing.render.usage_detail import usage_detail
    from rating.billing.run import RunInputs, issue_cycle
    from rating.cli.billing_documents import file_name

    society = load_site_billing(site_file)
    first = min(charges["period_start"].to_pylist())
    cycle = run_cycle(society.site_id, f"{first.year}-{first.month:02d}", society.billing)
    detail = usage_detail(charges, [str(readings_file)], society.config, cycle.period_start, cycle.period_end)
    usage = {account: found.lines for account, found in detail.items()}
    inputs = RunInputs(cycle, society.billing, society.numbering, society.units(), usage,
                       rules_text=society.rules_text)
    exponent = society.config.site.minor_unit_exponent

    async def go() -> list:
        ledger = SqliteDuesLedger(folder / "ledger.db")
        await ledger.open()
        try:
            result = await issue_cycle(ledger, inputs, actor="rating demo")
            sys.stdout.write("\n" + bill_text.issued(result, exponent))
            return await ledger.documents(society.site_id, cycle_id=cycle.cycle_id, limit=1_000_000)
        finally:
            await ledger.close()

    documents = asyncio.run(go())
    sys.stdout.write(bill_text.listing(documents[:pdfs], exponent))
    out = folder / "bills"
    out.mkdir(exist_ok=True)
    for document in documents[:pdfs]:
        view = render.bill_view(document, society.document, detail.get(document.account_id))
        (out / file_name(document.number, ".pdf")).write_bytes(render.bill_pdf(view))
    due = sum(d.body["total_due_minor"] for d in documents)
    sys.stdout.write(f"postpaid: {len(documents)} bills for {cycle.cycle_id}, due {cycle.due_date}, "
                     f"{society.document.money(due)} in all; {min(pdfs, len(documents))} PDFs in {out}\n")
