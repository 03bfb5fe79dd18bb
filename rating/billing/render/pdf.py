"""Bills and statements as PDF: a layout drawn with reportlab from the same
view the HTML template reads (rating.billing.render.view).

A separate layout rather than the HTML template through an HTML-to-PDF
engine, for speed: drawing a bill directly takes a few milliseconds, an
HTML engine (WeasyPrint) some hundreds, and fpdf2 subsets its fonts with
fontTools on every document (about 100 ms a bill measured here). Fonts and
scripts: rating.billing.render.fonts. A4, one column; long bills flow onto
more pages, each page numbered.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from rating.billing.render import fonts
from rating.billing.render.view import BillView, Row

MARGIN_PT = 42.0
BODY_PT = 9.0
SMALL_PT = 7.5
LEADING = 1.45  # line height over font size


class Page:
    """A cursor down A4 pages: lines of text at the left, amounts at the right."""

    def __init__(self, title: str, subject: str):
        self.buffer = io.BytesIO()
        self.canvas = Canvas(self.buffer, pagesize=A4, pageCompression=1, invariant=1)
        self.canvas.setTitle(title)
        self.canvas.setSubject(subject)
        self.width, self.height = A4
        self.right = self.width - MARGIN_PT
        self.y = self.height - MARGIN_PT
        self.page = 1
        self.footer = title

    def need(self, points: float) -> None:
        if self.y - points < MARGIN_PT + 12:
            self._foot()
            self.canvas.showPage()
            self.page += 1
            self.y = self.height - MARGIN_PT

    def _foot(self) -> None:
        fonts.draw(self.canvas, MARGIN_PT, MARGIN_PT - 10, f"{self.footer} · page {self.page}", SMALL_PT)

    def line(self, left: str, right: str = "", *, size: float = BODY_PT, bold: bool = False,
             indent: float = 0.0) -> None:
        self.need(size * LEADING)
        self.y -= size * LEADING
        if left:
            fonts.draw(self.canvas, MARGIN_PT + indent, self.y, left, size, bold=bold)
        if right:
            fonts.draw(self.canvas, self.right, self.y, right, size, bold=bold, align="right")

    def wrapped(self, text: str, *, size: float = SMALL_PT, indent: float = 12.0,
                room: float = 110.0) -> None:
        """A long text over as many lines as it needs, leaving `room` for the amounts."""
        limit = self.right - MARGIN_PT - indent - room
        words, current = text.split(" "), ""
        for word in words:
            candidate = f"{current} {word}" if current else word
            if current and fonts.width(candidate, size) > limit:
                self.line(current, size=size, indent=indent)
                candidate = word
            current = candidate
        if current:
            self.line(current, size=size, indent=indent)

    def rule(self, gap: float = 4.0) -> None:
        self.need(gap * 2)
        self.y -= gap
        self.canvas.setLineWidth(0.5)
        self.canvas.line(MARGIN_PT, self.y, self.right, self.y)
        self.y -= gap

    def finish(self) -> bytes:
        if self.page > 1:
            self._foot()
        self.canvas.showPage()
        self.canvas.save()
        return self.buffer.getvalue()


def bill_pdf(bill: BillView) -> bytes:
    """The bill (or note) as a PDF document."""
    fonts.faces()
    page = Page(f"{bill.title} {bill.number}", f"{bill.site.name}: {bill.account_id}")
    _header(page, bill)
    _rows(page, "Charges", bill.charges)
    _meters(page, bill)
    _shares(page, bill)
    _rows(page, "Interest and late fees", bill.interest)
    _rows(page, "Taxes", bill.taxes)
    _rows(page, "Rounding", bill.rounding)
    _rows(page, "Arrears brought forward", bill.arrears)
    _totals(page, bill)
    return page.finish()


def _header(page: Page, bill: BillView) -> None:
    site = bill.site
    title = f"{bill.title}  DRAFT" if bill.draft else bill.title
    page.line(site.name, title, size=13, bold=True)
    right = [f"No. {bill.number}", f"Date {bill.bill_date.isoformat()}"]
    if bill.period:
        right.append(f"Period {bill.period[0].isoformat()} to {bill.period[1].isoformat()}")
    right.append(f"Due {bill.due_date.isoformat()}")
    left = list(site.address) + ([f"Reg. {site.registration}"] if site.registration else [])
    left += [f"{label}: {value}" for label, value in bill.invoice]
    for i in range(max(len(left), len(right))):
        page.line(left[i] if i < len(left) else "", right[i] if i < len(right) else "")
    page.rule()
    page.line("To", bold=True)
    page.line(bill.bill_to, size=11)
    for line in bill.address:
        page.line(line)
    page.line(f"Unit {bill.account_id}")
    for note in bill.notes:
        page.line(note)


def _section(page: Page, title: str) -> None:
    page.need(BODY_PT * LEADING * 3)
    page.y -= 4
    page.line(title, size=10, bold=True)


def _rows(page: Page, title: str, rows: Sequence[Row]) -> None:
    if not rows:
        return
    _section(page, title)
    for row in rows:
        page.line(row.description, row.amount, indent=6)
        if row.basis:
            page.wrapped(" · ".join(f"{key} {value}" for key, value in row.basis))


def _meters(page: Page, bill: BillView) -> None:
    if not bill.meters:
        return
    _section(page, "Metered usage")
    for meter in bill.meters:
        page.line(f"{meter.head}: meter {meter.meter_id} ({meter.tariff_id})", meter.amount, indent=6)
        detail = []
        if meter.readings is not None:
            detail.append(f"readings {meter.readings.first} → {meter.readings.last}")
        if meter.multiplier is not None:
            detail.append(f"multiplier × {meter.multiplier}")
        if meter.quantity:
            detail.append(f"usage {meter.quantity}")
        if detail:
            page.wrapped(" · ".join(detail))
        for slab in meter.slabs:
            basis = " · ".join(f"{key} {value}" for key, value in slab.basis)
            page.line(f"{slab.description} · {basis}", slab.amount, size=SMALL_PT, indent=18)
    if not bill.has_usage_detail:
        page.line("Readings and slabs: rendered with the cycle's readings.", size=SMALL_PT, indent=6)


def _shares(page: Page, bill: BillView) -> None:
    if not bill.shares:
        return
    _section(page, "Shared areas")
    for share in bill.shares:
        page.line(f"{share.head}: {share.group_id}", share.amount, indent=6)
        if share.method:
            page.wrapped(f"split by {share.method}: your share {share.weight} of {share.weight_total}")


def _totals(page: Page, bill: BillView) -> None:
    page.rule(6)
    what = "This bill" if bill.title in ("Bill", "Tax invoice") else "This note"
    page.line(what, bill.this_cycle, bold=True)
    if bill.arrears:
        page.line("Arrears", bill.arrears_total)
    page.line(f"Total due by {bill.due_date.isoformat()}", bill.total_due, size=12, bold=True)
    page.y -= 6
    page.line(f"Payment reference: {bill.payment_reference}", bold=True)
    if bill.site.payment_note:
        page.wrapped(bill.site.payment_note, size=BODY_PT, indent=0, room=0)
    for anomaly in bill.anomalies:
        page.wrapped(f"! {anomaly}", indent=0, room=0)
