"""A statement of account as a reader sees it (HTML template, PDF layout),
from rating.billing.statements.Statement."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rating.billing.render import fonts
from rating.billing.render.pdf import BODY_PT, MARGIN_PT, SMALL_PT, Page
from rating.billing.render_settings import DocumentSettings
from rating.billing.statements import Statement


@dataclass(frozen=True)
class StatementLine:
    on: dt.date
    reference: str
    description: str
    debit: str  # owed
    credit: str  # credited
    balance: str


@dataclass(frozen=True)
class PaidView:
    on: dt.date
    payer: str  # the receipt (or credit note) whose money paid it
    bill: str
    head: str
    amount: str


@dataclass(frozen=True)
class StatementView:
    site: DocumentSettings
    account_id: str
    name: str
    first: dt.date
    last: dt.date
    opening: str
    closing: str
    lines: tuple[StatementLine, ...]
    paid: tuple[PaidView, ...] = ()  # what paid what


def statement_view(found: Statement, site: DocumentSettings, name: str = "") -> StatementView:
    lines = tuple(StatementLine(row.on, row.reference, row.description,
                                site.money(row.amount_minor) if row.amount_minor > 0 else "",
                                site.money(-row.amount_minor) if row.amount_minor < 0 else "",
                                site.money(row.balance_minor)) for row in found.rows)
    paid = tuple(PaidView(p.on, p.payer, p.bill, p.head, site.money(p.amount_minor)) for p in found.paid)
    return StatementView(site, found.account_id, name, found.first, found.last,
                         site.money(found.opening_minor), site.money(found.closing_minor), lines, paid)


COLUMNS_PT = (0.0, 62.0, 150.0)  # date, reference, description; amounts right-aligned after


def statement_pdf(view: StatementView) -> bytes:
    fonts.faces()
    page = Page(f"Statement {view.account_id}", f"{view.site.name}: {view.account_id}")
    page.line(view.site.name, "Statement of account", size=13, bold=True)
    for address in view.site.address:
        page.line(address)
    page.rule()
    page.line(view.name or view.account_id, f"{view.first.isoformat()} to {view.last.isoformat()}", size=11)
    page.line(f"Unit {view.account_id}")
    page.y -= 6
    _row(page, ("Date", "Reference", "Description"), ("Owed", "Credited", "Balance"), bold=True)
    page.rule(2)
    _row(page, (view.first.isoformat(), "", "Opening balance"), ("", "", view.opening))
    for line in view.lines:
        _row(page, (line.on.isoformat(), line.reference, line.description),
             (line.debit, line.credit, line.balance))
    page.rule(2)
    _row(page, (view.last.isoformat(), "", "Closing balance"), ("", "", view.closing), bold=True)
    if view.paid:
        page.y -= 8
        _row(page, ("Date", "Paid by", "Bill and head"), ("", "", "Paid"), bold=True)
        page.rule(2)
        for p in view.paid:
            _row(page, (p.on.isoformat(), p.payer, f"{p.bill} {p.head}"), ("", "", p.amount))
    return page.finish()


def _row(page: Page, left: tuple[str, str, str], right: tuple[str, str, str], *, bold: bool = False) -> None:
    size = SMALL_PT if not bold else BODY_PT
    page.line("", size=size)
    for offset, text in zip(COLUMNS_PT, left, strict=True):
        fonts.draw(page.canvas, MARGIN_PT + offset, page.y, text, size, bold=bold)
    for i, text in enumerate(right):
        fonts.draw(page.canvas, page.right - 75.0 * (2 - i), page.y, text, size, bold=bold, align="right")
