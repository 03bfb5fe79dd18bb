"""Rendered bills a second on one core, PDF and HTML, beside their ceilings
measured in the same run.

    .venv/bin/python -m bench.bench_render [--towers 4] [--repeat 5]

The bills: the demo society's month (rating demo: 32 flats a tower, each
with an electricity meter of telescopic, time-of-day slabs and a water
meter, shared-area shares, maintenance, funds, GST where due), issued on a
SQLite ledger, with their usage detail (readings, multipliers, slabs).
Timed, per bill (the user's path of `rating bills pdf`):

- pdf:     `bill_view` + `bill_pdf` (fonts by script, Devanagari shaped);
- html:    `bill_view` + `bill_html` (the package's Jinja2 template);
- ceilings: the same view's text lines drawn by reportlab in one built-in
  font with no script runs or shaping (PDF), and the compiled template
  rendered from a view built once (HTML).

Prints medians (bills a second) of the repeats and the ratios to the
ceilings, against the target of 50 PDF bills a second per core.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from rating.billing import render
from rating.billing.inputs import load_site_billing, run_cycle
from rating.billing.ledger_sqlite import SqliteDuesLedger
from rating.billing.render.usage_detail import usage_detail
from rating.billing.run import RunInputs, issue_cycle
from rating.cli.demo import generate_demo
from rating.engine import rate

TARGET_PDF_PER_S = 50.0


def bills(folder: Path, towers: int):
    """The demo month's issued bills, the site's settings and each account's usage detail."""
    demo = generate_demo(folder, towers=towers, seed=2025)
    society = load_site_billing(demo.site_file)
    cycle = run_cycle(society.site_id, "2025-05", society.billing)
    result = rate(str(demo.readings_file), config=society.config, unknown_meters="report")
    detail = usage_detail(result.charges, [str(demo.readings_file)], society.config, cycle.period_start,
                          cycle.period_end)
    inputs = RunInputs(cycle, society.billing, society.numbering, society.units(),
                       {a: u.lines for a, u in detail.items()}, rules_text=society.rules_text)

    async def issue() -> list:
        ledger = SqliteDuesLedger(folder / "ledger.db")
        await ledger.open()
        try:
            await issue_cycle(ledger, inputs, actor="bench")
            return await ledger.documents(society.site_id, limit=1_000_000)
        finally:
            await ledger.close()

    return asyncio.run(issue()), society, detail


def per_second(action, items) -> float:
    start = time.process_time()  # one core's time: the machine is shared
    for item in items:
        action(item)
    return len(items) / (time.process_time() - start)


def flat_pdf(lines: list[str]) -> bytes:
    """The ceiling: the lines in Helvetica, no script runs, no shaping, one page flow."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1, invariant=1)
    canvas.setFont("Helvetica", 9)
    y = A4[1] - 42
    for line in lines:
        y -= 13
        if y < 54:
            canvas.showPage()
            canvas.setFont("Helvetica", 9)
            y = A4[1] - 55
        canvas.drawString(42, y, line.encode("latin-1", "replace").decode("latin-1"))
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--towers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-render-") as folder:
        documents, society, detail = bills(Path(folder), args.towers)
    site, templates = society.document, society.templates

    def view(doc):
        return render.bill_view(doc, site, detail.get(doc.account_id))

    views = [view(doc) for doc in documents]
    texts = [render.bill_html(v, templates).splitlines() for v in views]  # the ceiling's lines
    render.bill_pdf(views[0])  # fonts read once, outside the timing
    runs = {name: [] for name in ("pdf", "pdf ceiling", "html", "html ceiling")}
    for _ in range(args.repeat):
        runs["pdf"].append(per_second(lambda doc: render.bill_pdf(view(doc)), documents))
        runs["pdf ceiling"].append(per_second(flat_pdf, texts))
        runs["html"].append(per_second(lambda doc: render.bill_html(view(doc), templates), documents))
        runs["html ceiling"].append(per_second(lambda v: render.bill_html(v, templates), views))
    report(len(documents), runs)


def report(count: int, runs: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(values) for name, values in runs.items()}
    print(f"{count} bills; medians of {len(runs['pdf'])} runs, bills a second of one core's CPU time")
    for name, median in medians.items():
        print(f"  {name:<13} {median:8.0f} /s  (runs {', '.join(f'{v:.0f}' for v in runs[name])})")
    verdict = "met" if medians["pdf"] >= TARGET_PDF_PER_S else "MISSED"
    print(f"  pdf / ceiling {medians['pdf'] / medians['pdf ceiling']:.2f}, html / ceiling "
          f"{medians['html'] / medians['html ceiling']:.2f}; pdf target {TARGET_PDF_PER_S:.0f} /s: {verdict}")


if __name__ == "__main__":
    main()
